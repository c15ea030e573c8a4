/* yamlnode.h - reading a libyaml document tree, as codeswarm.yaml and the
 * task file of "codeswarm run" do: node kinds for messages, plain nulls,
 * checked scalars, booleans, repeated keys, parser errors and the file
 * itself.  Every error is "file:line:col: what" (1-based).
 */
#ifndef CODESWARM_COMMON_YAMLNODE_H
#define CODESWARM_COMMON_YAMLNODE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

#include "common/errprintf.h"

/* "a scalar", "a list", "a mapping" or "empty" */
const char *yamlnode_kind (const yaml_node_t *n);

/* A plain null: "", "~", "null", "Null", "NULL" */
bool yamlnode_is_null (const yaml_node_t *n);

/* -1 with errno EINVAL and errp "file:line:col: <fmt>" */
int yamlnode_err (cs_error_t *errp, const char *file, yaml_mark_t m,
                  const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
int yamlnode_verr (cs_error_t *errp, const char *file, yaml_mark_t m,
                   const char *fmt, va_list ap)
    __attribute__ ((format (printf, 4, 0)));

/* A scalar's text in *val, checked for embedded NULs; otherwise -1 and
 * "key: expected <what>, not a list".
 */
int yamlnode_scalar (cs_error_t *errp, const char *file, const yaml_node_t *n,
                     const char *key, const char *what, const char **val);

/* true/yes/on, false/no/off (any case); -1 otherwise */
int yamlnode_bool (const char *s, bool *b);

/* Is the key of pair (a scalar) repeated among the earlier pairs of map? */
bool yamlnode_duplicate_key (yaml_document_t *doc, const yaml_node_t *map,
                             const yaml_node_pair_t *pair);

/* The key of pair, one of map's: a string, not repeated in map.  Its text
 * goes to *name, and "PREFIX.NAME" (NAME when prefix is NULL or "") to
 * keyname[size], for messages.  0, or -1 with errp filled
 * ("PREFIX: key is not a string", "duplicate key \"PREFIX.NAME\"").
 */
int yamlnode_key (cs_error_t *errp, const char *file, yaml_document_t *doc,
                  const yaml_node_t *map, const yaml_node_pair_t *pair,
                  const char *prefix, const char **name, char *keyname,
                  size_t size);

/* The parser's error, buf[0..len) being its input: always -1. */
int yamlnode_parse_error (cs_error_t *errp, const char *file,
                          const yaml_parser_t *p, const char *buf, size_t len);

/* The whole file, NUL-terminated, its length in *lenp; at most max bytes.
 * Result: free(); NULL with errno and errp.
 */
char *yamlnode_read_file (const char *path, size_t max, size_t *lenp,
                          cs_error_t *errp);

#endif
