/* json.h - small helpers on cJSON.
 *
 * Numbers in cJSON are doubles: integers here are accepted only when they
 * are whole and below 2^53.
 */
#ifndef CODESWARM_JSON_H
#define CODESWARM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"

/* Parse exactly one JSON value from buf[0..len) (trailing whitespace ok).
 * Errors say "not valid JSON near byte N" / "trailing data at byte N".
 * Result: cJSON_Delete.
 */
cJSON *json_parse (const char *buf, size_t len, cs_error_t *errp);

/* Unformatted print; free().  Unlike cJSON_PrintUnformatted(), integers
 * below 2^53 are printed exactly and strings are always valid UTF-8.
 */
char *json_print (const cJSON *item);

/* Typed member access: 0 on success, -1 when missing or of the wrong type
 * (errp: "missing \"key\"" / "\"key\" is not a string" ...).
 */
int json_get_str (const cJSON *obj, const char *key, const char **val,
                  cs_error_t *errp);
int json_get_u64 (const cJSON *obj, const char *key, uint64_t *val,
                  cs_error_t *errp);
int json_get_i64 (const cJSON *obj, const char *key, int64_t *val,
                  cs_error_t *errp);
int json_get_double (const cJSON *obj, const char *key, double *val,
                     cs_error_t *errp);
int json_get_bool (const cJSON *obj, const char *key, bool *val,
                   cs_error_t *errp);
/* Optional variants: missing -> default, wrong type -> -1 */
int json_opt_str (const cJSON *obj, const char *key, const char **val,
                  const char *dflt, cs_error_t *errp);
int json_opt_u64 (const cJSON *obj, const char *key, uint64_t *val,
                  uint64_t dflt, cs_error_t *errp);

/* A number that is a whole value in [0, 2^53). */
bool json_is_u64 (const cJSON *item, uint64_t *val);

/* Build objects with error checking: each returns 0 or -1 (ENOMEM;
 * json_add_u64: EOVERFLOW for 2^53 and above).
 */
int json_add_str (cJSON *obj, const char *key, const char *val);
int json_add_u64 (cJSON *obj, const char *key, uint64_t val);
int json_add_double (cJSON *obj, const char *key, double val);
int json_add_bool (cJSON *obj, const char *key, bool val);
/* Adds item and takes ownership; on failure item is deleted. */
int json_add_item (cJSON *obj, const char *key, cJSON *item);

/* A growable buffer to build records without a tree.  data is always
 * NUL-terminated once anything was appended; jbuf_release() frees it.
 * jbuf_append_jstr() appends the JSON string form of s[0..len) (quotes
 * included): '"', '\\' and control characters escaped (RFC 8259), valid
 * UTF-8 copied, each byte of invalid UTF-8 replaced by U+FFFD.
 */
struct jbuf {
    char *data;
    size_t len;
    size_t size;
};
#define JBUF_INIT { NULL, 0, 0 }
int jbuf_append (struct jbuf *b, const char *s, size_t len);
int jbuf_printf (struct jbuf *b, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
int jbuf_append_jstr (struct jbuf *b, const char *s, size_t len);
void jbuf_reset (struct jbuf *b);
void jbuf_release (struct jbuf *b);

/* Current time: wall clock seconds (double), and monotonic seconds. */
double time_now (void);
double time_mono (void);

/* "10s", "500ms", "100us", "2m", "1h", "1d", "1.5" (seconds) -> seconds;
 * -1 with EINVAL on error (no sign, no exponent, no spaces), ERANGE above
 * DURATION_MAX (366 days: no timeout, interval or grace is longer).
 */
#define DURATION_MAX (366.0 * 86400)
#define DURATION_MAX_TEXT "366d"
int parse_duration (const char *s, double *secs);
/* "64MiB", "10k", "1.5G", "4096", "4096B" -> bytes.  k, M, G, T, P, E are
 * powers of 1024, with or without "i" and "B".  -1 with EINVAL, or ERANGE
 * above 2^64 - 1.
 */
int parse_size (const char *s, uint64_t *bytes);

#endif
