/* strset.c - a hash set of strings (see strset.h) */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/strset.h"
#include "common/fnv.h"

static int strset_grow (struct strset *s)
{
    size_t nsize = s->size ? s->size * 2 : 64;
    char **nslot = calloc (nsize, sizeof (*nslot));
    if (!nslot)
        return -1;
    for (size_t i = 0; i < s->size; i++) {
        if (!s->slot[i])
            continue;
        size_t j = fnv1a (FNV1A_INIT, s->slot[i]) & (nsize - 1);
        while (nslot[j])
            j = (j + 1) & (nsize - 1);
        nslot[j] = s->slot[i];
    }
    free (s->slot);
    s->slot = nslot;
    s->size = nsize;
    return 0;
}

bool strset_has (const struct strset *s, const char *str)
{
    if (!s->size || !str)
        return false;
    size_t j = fnv1a (FNV1A_INIT, str) & (s->size - 1);
    while (s->slot[j]) {
        if (!strcmp (s->slot[j], str))
            return true;
        j = (j + 1) & (s->size - 1);
    }
    return false;
}

int strset_add (struct strset *s, const char *str)
{
    if (strset_has (s, str))
        return 0;
    if ((s->count + 1) * 2 > s->size && strset_grow (s) < 0)
        return -1;
    size_t j = fnv1a (FNV1A_INIT, str) & (s->size - 1);
    while (s->slot[j])
        j = (j + 1) & (s->size - 1);
    if (!(s->slot[j] = strdup (str)))
        return -1;
    s->count++;
    return 1;
}

void strset_release (struct strset *s)
{
    int saved = errno;
    for (size_t i = 0; i < s->size; i++)
        free (s->slot[i]);
    free (s->slot);
    memset (s, 0, sizeof (*s));
    errno = saved;
}
