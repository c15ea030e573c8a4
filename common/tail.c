/* tail.c - a ring keeping the last bytes written (see tail.h) */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/tail.h"

int tail_init (struct tail *t, size_t size)
{
    memset (t, 0, sizeof (*t));
    if (size == 0)
        size = 1;
    if (!(t->buf = malloc (size)))
        return -1;
    t->size = size;
    return 0;
}

void tail_release (struct tail *t)
{
    int saved = errno;
    free (t->buf);
    memset (t, 0, sizeof (*t));
    errno = saved;
}

void tail_clear (struct tail *t)
{
    t->start = t->len = 0;
}

void tail_append (struct tail *t, const char *data, size_t len)
{
    if (!t->buf)
        return;
    if (len >= t->size) {
        memcpy (t->buf, data + len - t->size, t->size);
        t->start = 0;
        t->len = t->size;
        return;
    }
    for (size_t i = 0; i < len; i++) {
        size_t end = (t->start + t->len) % t->size;
        t->buf[end] = data[i];
        if (t->len < t->size)
            t->len++;
        else
            t->start = (t->start + 1) % t->size;
    }
}

char *tail_str (const struct tail *t)
{
    char *s = malloc (t->len + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < t->len; i++)
        s[i] = t->buf[(t->start + i) % t->size];
    s[t->len] = '\0';
    return s;
}
