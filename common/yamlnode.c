/* yamlnode.c - reading a libyaml document tree (see yamlnode.h) */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/yamlnode.h"

const char *yamlnode_kind (const yaml_node_t *n)
{
    switch (n->type) {
        case YAML_SCALAR_NODE:
            return "a scalar";
        case YAML_SEQUENCE_NODE:
            return "a list";
        case YAML_MAPPING_NODE:
            return "a mapping";
        default:
            return "empty";
    }
}

bool yamlnode_is_null (const yaml_node_t *n)
{
    const char *v;

    if (n->type != YAML_SCALAR_NODE
        || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    v = (const char *)n->data.scalar.value;
    return !*v || !strcmp (v, "~") || !strcmp (v, "null")
           || !strcmp (v, "Null") || !strcmp (v, "NULL");
}

int yamlnode_verr (cs_error_t *errp, const char *file, yaml_mark_t m,
                   const char *fmt, va_list ap)
{
    char msg[400];

    vsnprintf (msg, sizeof (msg), fmt, ap);
    errno = EINVAL;
    return errprintf (errp, "%s:%zu:%zu: %s", file, m.line + 1,
                      m.column + 1, msg);
}

int yamlnode_err (cs_error_t *errp, const char *file, yaml_mark_t m,
                  const char *fmt, ...)
{
    va_list ap;

    va_start (ap, fmt);
    yamlnode_verr (errp, file, m, fmt, ap);
    va_end (ap);
    return -1;
}

int yamlnode_scalar (cs_error_t *errp, const char *file, const yaml_node_t *n,
                     const char *key, const char *what, const char **val)
{
    if (n->type != YAML_SCALAR_NODE)
        return yamlnode_err (errp, file, n->start_mark,
                             "%s: expected %s, not %s", key, what,
                             yamlnode_kind (n));
    if (strlen ((char *)n->data.scalar.value) != n->data.scalar.length)
        return yamlnode_err (errp, file, n->start_mark,
                             "%s: contains a NUL character", key);
    *val = (const char *)n->data.scalar.value;
    return 0;
}

int yamlnode_bool (const char *s, bool *b)
{
    static const char *const yes[] = { "true", "yes", "on", NULL };
    static const char *const no[] = { "false", "no", "off", NULL };
    int i;

    for (i = 0; yes[i]; i++) {
        if (!strcasecmp (s, yes[i])) {
            *b = true;
            return 0;
        }
    }
    for (i = 0; no[i]; i++) {
        if (!strcasecmp (s, no[i])) {
            *b = false;
            return 0;
        }
    }
    return -1;
}

bool yamlnode_duplicate_key (yaml_document_t *doc, const yaml_node_t *map,
                             const yaml_node_pair_t *pair)
{
    yaml_node_t *k = yaml_document_get_node (doc, pair->key);
    const yaml_node_pair_t *p;

    for (p = map->data.mapping.pairs.start; p < pair; p++) {
        yaml_node_t *k2 = yaml_document_get_node (doc, p->key);
        if (k2 && k2->type == YAML_SCALAR_NODE
            && k2->data.scalar.length == k->data.scalar.length
            && !memcmp (k2->data.scalar.value, k->data.scalar.value,
                        k->data.scalar.length))
            return true;
    }
    return false;
}

int yamlnode_key (cs_error_t *errp, const char *file, yaml_document_t *doc,
                  const yaml_node_t *map, const yaml_node_pair_t *pair,
                  const char *prefix, const char **name, char *keyname,
                  size_t size)
{
    yaml_node_t *k = yaml_document_get_node (doc, pair->key);
    bool top = !prefix || !*prefix;

    if (!k || k->type != YAML_SCALAR_NODE)
        return yamlnode_err (errp, file, k ? k->start_mark : map->start_mark,
                             "%s%skey is not a string", top ? "" : prefix,
                             top ? "" : ": ");
    *name = (const char *)k->data.scalar.value;
    snprintf (keyname, size, "%s%s%s", top ? "" : prefix, top ? "" : ".",
              *name);
    if (yamlnode_duplicate_key (doc, map, pair))
        return yamlnode_err (errp, file, k->start_mark,
                             "duplicate key \"%s\"", keyname);
    return 0;
}

/* Line and column (1-based) of byte offset off in buf. */
static void offset_position (const char *buf, size_t len, size_t off,
                             size_t *line, size_t *col)
{
    size_t i;

    *line = 1;
    *col = 1;
    for (i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            (*line)++;
            *col = 1;
        }
        else
            (*col)++;
    }
}

int yamlnode_parse_error (cs_error_t *errp, const char *file,
                          const yaml_parser_t *p, const char *buf, size_t len)
{
    const char *problem = p->problem ? p->problem : "cannot parse";

    errno = EINVAL;
    if (p->error == YAML_READER_ERROR) {
        size_t line, col;
        offset_position (buf, len, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            return errprintf (errp, "%s:%zu:%zu: %s (#%X)", file, line, col,
                              problem, (unsigned)p->problem_value);
        return errprintf (errp, "%s:%zu:%zu: %s", file, line, col, problem);
    }
    if (p->error == YAML_MEMORY_ERROR) {
        errno = ENOMEM;
        return errprintf (errp, "%s: out of memory", file);
    }
    if (p->context)
        return errprintf (errp, "%s:%zu:%zu: %s (%s at line %zu column %zu)",
                          file, p->problem_mark.line + 1,
                          p->problem_mark.column + 1, problem, p->context,
                          p->context_mark.line + 1,
                          p->context_mark.column + 1);
    return errprintf (errp, "%s:%zu:%zu: %s", file,
                      p->problem_mark.line + 1, p->problem_mark.column + 1,
                      problem);
}

char *yamlnode_read_file (const char *path, size_t max, size_t *lenp,
                          cs_error_t *errp)
{
    FILE *f;
    char *buf = NULL;
    size_t len = 0, size = 0;

    if (!(f = fopen (path, "re")))
        return errprintf (errp, "cannot open '%s': %s", path,
                          strerror (errno)), NULL;
    for (;;) {
        size_t n;
        if (size - len < 4096) {
            char *nbuf;
            size = size ? size * 2 : 8192;
            if (size > max + 8192) {
                errno = EFBIG;
                errprintf (errp, "%s: larger than %zu bytes", path, max);
                goto error;
            }
            if (!(nbuf = realloc (buf, size))) {
                errprintf (errp, "cannot read '%s': %s", path,
                           strerror (errno));
                goto error;
            }
            buf = nbuf;
        }
        n = fread (buf + len, 1, size - len - 1, f);
        len += n;
        if (n == 0) {
            if (ferror (f)) {
                errprintf (errp, "cannot read '%s': %s", path,
                           strerror (errno ? errno : EIO));
                goto error;
            }
            break;
        }
    }
    fclose (f);
    buf[len] = '\0';
    *lenp = len;
    return buf;
error:
    {
        int saved_errno = errno;
        fclose (f);
        free (buf);
        errno = saved_errno;
    }
    return NULL;
}
