/* json.c - small helpers on cJSON, a growable JSON text buffer, time and
 * unit parsing
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"

#define JSON_INT_LIMIT 9007199254740992.0      /* 2^53 */

static bool is_ws (char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

cJSON *json_parse (const char *buf, size_t len, cs_error_t *errp)
{
    const char *end = NULL;
    cJSON *item;
    size_t off;

    if (!buf && len > 0) {
        errno = EINVAL;
        errprintf (errp, "not valid JSON near byte 0");
        return NULL;
    }
    for (off = 0; off < len && is_ws (buf[off]); off++)
        ;
    if (off == len) {
        errno = EINVAL;
        errprintf (errp, "not valid JSON near byte %zu (no value)", off);
        return NULL;
    }
    item = cJSON_ParseWithLengthOpts (buf, len, &end, false);
    if (!item) {
        off = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        errno = EINVAL;
        errprintf (errp, "not valid JSON near byte %zu", off);
        return NULL;
    }
    off = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : len;
    while (off < len && is_ws (buf[off]))
        off++;
    if (off < len) {
        cJSON_Delete (item);
        errno = EINVAL;
        errprintf (errp, "trailing data at byte %zu", off);
        return NULL;
    }
    return item;
}

/* cJSON's printer writes integers >= 10^15 with 15 significant digits
 * (9007199254740991 comes out as 9.00719925474099e+15), so we print the
 * tree ourselves: whole numbers below 2^53 exactly, others with the
 * shortest of %.15g/%.17g that reads back the same, NaN/Inf as null.
 */
static int print_number (struct jbuf *b, double d)
{
    char tmp[64];

    if (!isfinite (d))
        return jbuf_append (b, "null", 4);
    if (d > -JSON_INT_LIMIT && d < JSON_INT_LIMIT && (double)(int64_t)d == d)
        return jbuf_printf (b, "%" PRId64, (int64_t)d);
    snprintf (tmp, sizeof (tmp), "%.15g", d);
    if (strtod (tmp, NULL) != d)
        snprintf (tmp, sizeof (tmp), "%.17g", d);
    return jbuf_append (b, tmp, strlen (tmp));
}

static int print_item (struct jbuf *b, const cJSON *item, int depth)
{
    const cJSON *c;

    if (depth > 10000) {
        errno = ELOOP;
        return -1;
    }
    switch (item->type & 0xff) {
        case cJSON_NULL:
            return jbuf_append (b, "null", 4);
        case cJSON_False:
            return jbuf_append (b, "false", 5);
        case cJSON_True:
            return jbuf_append (b, "true", 4);
        case cJSON_Number:
            return print_number (b, item->valuedouble);
        case cJSON_String:
            if (!item->valuestring)
                return jbuf_append (b, "\"\"", 2);
            return jbuf_append_jstr (b, item->valuestring,
                                     strlen (item->valuestring));
        case cJSON_Raw:
            if (!item->valuestring) {
                errno = EINVAL;
                return -1;
            }
            return jbuf_append (b, item->valuestring,
                                strlen (item->valuestring));
        case cJSON_Array:
        case cJSON_Object: {
            bool obj = (item->type & 0xff) == cJSON_Object;
            if (jbuf_append (b, obj ? "{" : "[", 1) < 0)
                return -1;
            for (c = item->child; c; c = c->next) {
                if (c != item->child && jbuf_append (b, ",", 1) < 0)
                    return -1;
                if (obj) {
                    const char *k = c->string ? c->string : "";
                    if (jbuf_append_jstr (b, k, strlen (k)) < 0
                        || jbuf_append (b, ":", 1) < 0)
                        return -1;
                }
                if (print_item (b, c, depth + 1) < 0)
                    return -1;
            }
            return jbuf_append (b, obj ? "}" : "]", 1);
        }
        default:
            errno = EINVAL;
            return -1;
    }
}

char *json_print (const cJSON *item)
{
    struct jbuf b = JBUF_INIT;

    if (!item) {
        errno = EINVAL;
        return NULL;
    }
    if (print_item (&b, item, 0) < 0) {
        jbuf_release (&b);
        return NULL;
    }
    return b.data;
}

/* Member of obj (case-sensitive), or -1 with "missing" */
static int get_member (const cJSON *obj, const char *key, const cJSON **item,
                       cs_error_t *errp)
{
    if (!obj || !key || !cJSON_IsObject (obj)) {
        errno = EINVAL;
        return errprintf (errp, "cannot look up \"%s\": not an object",
                          key ? key : "(null)");
    }
    if (!(*item = cJSON_GetObjectItemCaseSensitive (obj, key))) {
        errno = ENOENT;
        return errprintf (errp, "missing \"%s\"", key);
    }
    return 0;
}

static int wrong_type (const char *key, const char *what, cs_error_t *errp)
{
    errno = EINVAL;
    return errprintf (errp, "\"%s\" is not %s", key, what);
}

bool json_is_u64 (const cJSON *item, uint64_t *val)
{
    double d;

    if (!cJSON_IsNumber (item))
        return false;
    d = item->valuedouble;
    if (!(d >= 0 && d < JSON_INT_LIMIT) || (double)(uint64_t)d != d)
        return false;
    if (val)
        *val = (uint64_t)d;
    return true;
}

int json_get_str (const cJSON *obj, const char *key, const char **val,
                  cs_error_t *errp)
{
    const cJSON *item;

    if (get_member (obj, key, &item, errp) < 0)
        return -1;
    if (!cJSON_IsString (item) || !item->valuestring)
        return wrong_type (key, "a string", errp);
    if (val)
        *val = item->valuestring;
    return 0;
}

int json_get_u64 (const cJSON *obj, const char *key, uint64_t *val,
                  cs_error_t *errp)
{
    const cJSON *item;

    if (get_member (obj, key, &item, errp) < 0)
        return -1;
    if (!json_is_u64 (item, val))
        return wrong_type (key, "a non-negative integer below 2^53", errp);
    return 0;
}

int json_get_i64 (const cJSON *obj, const char *key, int64_t *val,
                  cs_error_t *errp)
{
    const cJSON *item;
    double d;

    if (get_member (obj, key, &item, errp) < 0)
        return -1;
    if (!cJSON_IsNumber (item))
        return wrong_type (key, "an integer", errp);
    d = item->valuedouble;
    if (!(d > -JSON_INT_LIMIT && d < JSON_INT_LIMIT)
        || (double)(int64_t)d != d)
        return wrong_type (key, "an integer of magnitude below 2^53", errp);
    if (val)
        *val = (int64_t)d;
    return 0;
}

int json_get_double (const cJSON *obj, const char *key, double *val,
                     cs_error_t *errp)
{
    const cJSON *item;

    if (get_member (obj, key, &item, errp) < 0)
        return -1;
    if (!cJSON_IsNumber (item))
        return wrong_type (key, "a number", errp);
    if (val)
        *val = item->valuedouble;
    return 0;
}

int json_get_bool (const cJSON *obj, const char *key, bool *val,
                   cs_error_t *errp)
{
    const cJSON *item;

    if (get_member (obj, key, &item, errp) < 0)
        return -1;
    if (!cJSON_IsBool (item))
        return wrong_type (key, "a boolean", errp);
    if (val)
        *val = cJSON_IsTrue (item);
    return 0;
}

int json_opt_str (const cJSON *obj, const char *key, const char **val,
                  const char *dflt, cs_error_t *errp)
{
    if (obj && key && cJSON_IsObject (obj)
        && !cJSON_GetObjectItemCaseSensitive (obj, key)) {
        if (val)
            *val = dflt;
        return 0;
    }
    return json_get_str (obj, key, val, errp);
}

int json_opt_u64 (const cJSON *obj, const char *key, uint64_t *val,
                  uint64_t dflt, cs_error_t *errp)
{
    if (obj && key && cJSON_IsObject (obj)
        && !cJSON_GetObjectItemCaseSensitive (obj, key)) {
        if (val)
            *val = dflt;
        return 0;
    }
    return json_get_u64 (obj, key, val, errp);
}

int json_add_item (cJSON *obj, const char *key, cJSON *item)
{
    if (!item) {
        errno = ENOMEM;
        return -1;
    }
    if (!obj || !key || !cJSON_IsObject (obj)) {
        cJSON_Delete (item);
        errno = EINVAL;
        return -1;
    }
    if (!cJSON_AddItemToObject (obj, key, item)) {
        cJSON_Delete (item);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

int json_add_str (cJSON *obj, const char *key, const char *val)
{
    if (!val) {
        errno = EINVAL;
        return -1;
    }
    return json_add_item (obj, key, cJSON_CreateString (val));
}

int json_add_u64 (cJSON *obj, const char *key, uint64_t val)
{
    if ((double)val >= JSON_INT_LIMIT) {
        errno = EOVERFLOW;
        return -1;
    }
    return json_add_item (obj, key, cJSON_CreateNumber ((double)val));
}

int json_add_double (cJSON *obj, const char *key, double val)
{
    return json_add_item (obj, key, cJSON_CreateNumber (val));
}

int json_add_bool (cJSON *obj, const char *key, bool val)
{
    return json_add_item (obj, key, cJSON_CreateBool (val));
}

/* Room for need more bytes and a NUL. */
static int jbuf_reserve (struct jbuf *b, size_t need)
{
    size_t nsize;
    char *ndata;

    if (b->len + need < b->len || b->len + need + 1 < need) {
        errno = ENOMEM;
        return -1;
    }
    if (b->size > b->len + need)
        return 0;
    nsize = b->size ? b->size : 256;
    while (nsize <= b->len + need) {
        if (nsize > SIZE_MAX / 2) {
            errno = ENOMEM;
            return -1;
        }
        nsize *= 2;
    }
    if (!(ndata = realloc (b->data, nsize)))
        return -1;
    b->data = ndata;
    b->size = nsize;
    return 0;
}

int jbuf_append (struct jbuf *b, const char *s, size_t len)
{
    if (!b || (!s && len > 0)) {
        errno = EINVAL;
        return -1;
    }
    if (jbuf_reserve (b, len) < 0)
        return -1;
    if (len > 0)
        memcpy (b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int jbuf_printf (struct jbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!b || !fmt) {
        errno = EINVAL;
        return -1;
    }
    if (jbuf_reserve (b, 64) < 0)
        return -1;
    va_start (ap, fmt);
    n = vsnprintf (b->data + b->len, b->size - b->len, fmt, ap);
    va_end (ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= b->size - b->len) {
        if (jbuf_reserve (b, n) < 0) {
            b->data[b->len] = '\0';
            return -1;
        }
        va_start (ap, fmt);
        n = vsnprintf (b->data + b->len, b->size - b->len, fmt, ap);
        va_end (ap);
        if (n < 0) {
            b->data[b->len] = '\0';
            return -1;
        }
    }
    b->len += n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid.
 * Rejects overlong forms, surrogates and code points above U+10FFFF.
 */
static size_t utf8_seq (const unsigned char *s, size_t len)
{
    unsigned char c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        if (len >= 2 && (s[1] & 0xc0) == 0x80)
            return 2;
        return 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if (len < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && s[1] < 0xa0)
            return 0;           /* overlong */
        if (c == 0xed && s[1] >= 0xa0)
            return 0;           /* surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (len < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80
            || (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90)
            return 0;           /* overlong */
        if (c == 0xf4 && s[1] >= 0x90)
            return 0;           /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* RFC 8259 section 7: '"', '\\' and U+0000..U+001F are escaped (the
 * short forms where there is one, else \u00XX); valid UTF-8 is copied as
 * is; each byte of an invalid sequence becomes U+FFFD, so the output is
 * always valid UTF-8 JSON.
 */
int jbuf_append_jstr (struct jbuf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run;

    if (!b || (!s && len > 0)) {
        errno = EINVAL;
        return -1;
    }
    /* worst case 6 bytes per input byte, but reserve as we go */
    if (jbuf_reserve (b, len + 2) < 0)
        return -1;
    b->data[b->len++] = '"';
    while (i < len) {
        /* copy a run of bytes that need nothing */
        run = i;
        while (run < len && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"'
               && p[run] != '\\')
            run++;
        if (run > i) {
            if (jbuf_reserve (b, run - i + 1) < 0)
                goto error;
            memcpy (b->data + b->len, p + i, run - i);
            b->len += run - i;
            i = run;
            continue;
        }
        if (jbuf_reserve (b, 7) < 0)
            goto error;
        char *o = b->data + b->len;
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t n = utf8_seq (p + i, len - i);
            if (n == 0) {
                memcpy (o, "\xef\xbf\xbd", 3);
                b->len += 3;
                i++;
            }
            else {
                memcpy (o, p + i, n);
                b->len += n;
                i += n;
            }
            continue;
        }
        o[0] = '\\';
        switch (c) {
            case '"':  o[1] = '"'; b->len += 2; break;
            case '\\': o[1] = '\\'; b->len += 2; break;
            case '\b': o[1] = 'b'; b->len += 2; break;
            case '\f': o[1] = 'f'; b->len += 2; break;
            case '\n': o[1] = 'n'; b->len += 2; break;
            case '\r': o[1] = 'r'; b->len += 2; break;
            case '\t': o[1] = 't'; b->len += 2; break;
            default:
                o[1] = 'u';
                o[2] = '0';
                o[3] = '0';
                o[4] = hex[c >> 4];
                o[5] = hex[c & 0xf];
                b->len += 6;
                break;
        }
        i++;
    }
    if (jbuf_reserve (b, 1) < 0)
        goto error;
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
    return 0;
error:
    b->data[b->len] = '\0';
    return -1;
}

void jbuf_reset (struct jbuf *b)
{
    if (b) {
        b->len = 0;
        if (b->data)
            b->data[0] = '\0';
    }
}

void jbuf_release (struct jbuf *b)
{
    if (b) {
        int saved_errno = errno;
        free (b->data);
        b->data = NULL;
        b->len = b->size = 0;
        errno = saved_errno;
    }
}

double time_now (void)
{
    struct timespec ts;

    clock_gettime (CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double time_mono (void)
{
    struct timespec ts;

    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Parse an unsigned decimal number "12", "1.5", ".5" at the start of s;
 * sets *end past it.  No sign, exponent, hex, inf or nan.
 */
static int parse_number (const char *s, double *val, const char **end)
{
    const char *p = s;
    size_t digits = 0;
    char tmp[64];

    while (*p >= '0' && *p <= '9') {
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
    }
    if (digits == 0 || (size_t)(p - s) >= sizeof (tmp))
        return -1;
    memcpy (tmp, s, p - s);
    tmp[p - s] = '\0';
    errno = 0;
    *val = strtod (tmp, NULL);
    if (errno != 0 || !isfinite (*val))
        return -1;
    *end = p;
    return 0;
}

int parse_duration (const char *s, double *secs)
{
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {
        { "", 1 }, { "s", 1 }, { "ms", 1e-3 }, { "us", 1e-6 },
        { "m", 60 }, { "h", 3600 }, { "d", 86400 },
    };
    const char *end;
    double v;
    size_t i;

    if (!s || parse_number (s, &v, &end) < 0)
        goto inval;
    for (i = 0; i < sizeof (units) / sizeof (units[0]); i++) {
        if (!strcmp (end, units[i].suffix)) {
            v *= units[i].mult;
            if (!isfinite (v))
                goto inval;
            if (v > DURATION_MAX) {
                errno = ERANGE;
                return -1;
            }
            if (secs)
                *secs = v;
            return 0;
        }
    }
inval:
    errno = EINVAL;
    return -1;
}

/* Multipliers are powers of 1024: k, K, KB, KiB (also M G T P E). */
int parse_size (const char *s, uint64_t *bytes)
{
    static const char prefixes[] = "kmgtpe";
    const char *end, *pfx;
    uint64_t mult = 1;
    int k;

    if (!s || !*s)
        goto inval;
    end = s + strspn (s, "0123456789.");
    if (*end) {
        if (*end == 'b' || *end == 'B') {
            if (end[1])
                goto inval;
        }
        else if ((pfx = strchr (prefixes, *end | 0x20))) {
            const char *p = end + 1;
            for (k = 0; k <= pfx - prefixes; k++)
                mult *= 1024;
            if (*p == 'i')
                p++;
            if (*p == 'B' || *p == 'b')
                p++;
            if (*p)
                goto inval;
        }
        else
            goto inval;
    }
    if (!memchr (s, '.', end - s)) {
        /* integers exactly, all the way to 2^64 - 1 */
        uint64_t v = 0;
        const char *p;
        if (end == s)
            goto inval;
        for (p = s; p < end; p++) {
            unsigned d = *p - '0';
            if (v > (UINT64_MAX - d) / 10)
                goto range;
            v = v * 10 + d;
        }
        if (v > UINT64_MAX / mult)
            goto range;
        if (bytes)
            *bytes = v * mult;
        return 0;
    }
    else {
        const char *nend;
        double v;
        if (parse_number (s, &v, &nend) < 0 || nend != end)
            goto inval;
        v *= (double)mult;
        if (v >= 18446744073709551616.0)
            goto range;
        if ((double)(uint64_t)v != v)
            goto inval;     /* "1.5" bytes */
        if (bytes)
            *bytes = (uint64_t)v;
        return 0;
    }
range:
    errno = ERANGE;
    return -1;
inval:
    errno = EINVAL;
    return -1;
}

/*
 * vi:ts=4 sw=4 expandtab
 */
