/* template.c - fill @NAME@ placeholders */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "slurm/template.h"

struct buf {
    char *data;
    size_t len, size;
};

static int buf_add (struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->size) {
        size_t size = b->size ? b->size : 1024;
        char *d;
        while (size < b->len + n + 1)
            size *= 2;
        if (!(d = realloc (b->data, size)))
            return -1;
        b->data = d;
        b->size = size;
    }
    memcpy (b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static size_t placeholder_len (const char *p)
{
    size_t i = 1;

    if (p[0] != '@' || !(p[1] >= 'A' && p[1] <= 'Z'))
        return 0;
    while ((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
           p[i] == '_')
        i++;
    return p[i] == '@' ? i + 1 : 0;
}

char *template_render (const char *text, const struct template_var *vars,
                       size_t n, cs_error_t *errp)
{
    struct buf b = {NULL, 0, 0};
    const char *p = text;
    int line = 1;

    while (*p) {
        size_t len = placeholder_len (p);
        if (len == 0) {
            if (*p == '\n')
                line++;
            if (buf_add (&b, p, 1) < 0)
                goto nomem;
            p++;
            continue;
        }
        size_t i;
        for (i = 0; i < n; i++)
            if (strlen (vars[i].name) == len - 2 &&
                !strncmp (vars[i].name, p + 1, len - 2))
                break;
        if (i == n) {
            errprintf (errp, "unknown placeholder %.*s on line %d", (int)len, p,
                       line);
            free (b.data);
            errno = EINVAL;
            return NULL;
        }
        if (buf_add (&b, vars[i].value ? vars[i].value : "",
                     vars[i].value ? strlen (vars[i].value) : 0) < 0)
            goto nomem;
        p += len;
    }
    if (buf_add (&b, "", 0) < 0)
        goto nomem;
    if (!b.data && !(b.data = strdup ("")))
        goto nomem;
    return b.data;
nomem:
    free (b.data);
    errprintf (errp, "out of memory");
    errno = ENOMEM;
    return NULL;
}

char *template_shell_quote (const char *s)
{
    size_t n = 3;
    char *q, *o;

    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 4 : 1;
    if (!(q = malloc (n)))
        return NULL;
    o = q;
    *o++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy (o, "'\\''", 4);
            o += 4;
        } else
            *o++ = *p;
    }
    *o++ = '\'';
    *o = '\0';
    return q;
}
