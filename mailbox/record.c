/* record.c - parse and validate one mailbox record line */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "mailbox/mailbox.h"
#include "mailbox/private.h"

/* UTF-8 per RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF.  ASCII runs are skipped eight bytes at a time.
 */
ssize_t mb_utf8_invalid (const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        if (s[i] < 0x80) {
            while (i + 8 <= len) {
                uint64_t w;
                memcpy (&w, s + i, 8);
                if (w & 0x8080808080808080ULL)
                    break;
                i += 8;
            }
            while (i < len && s[i] < 0x80)
                i++;
            continue;
        }
        unsigned char c = s[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        }
        else
            return (ssize_t)i;
        if (i + need >= len)
            return (ssize_t)i;  /* truncated sequence */
        if (s[i + 1] < lo || s[i + 1] > hi)
            return (ssize_t)i;
        for (size_t k = 2; k <= need; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return (ssize_t)i;
        }
        i += need + 1;
    }
    return -1;
}

size_t mb_u64_format (char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

int mb_u64_parse (const char *s, size_t len, uint64_t *v)
{
    uint64_t x = 0;

    if (len == 0 || len > 16)   /* 2^53 has 16 digits */
        goto inval;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            goto inval;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (x >= (1ULL << 53))
        goto inval;
    *v = x;
    return 0;
inval:
    errno = EINVAL;
    return -1;
}

/* A JSON number that is a non-negative integer below 2^53. */
static int get_uint (const cJSON *item, const char *name, uint64_t *v,
                     cs_error_t *errp)
{
    if (!item)
        return errprintf (errp, "missing \"%s\"", name);
    if (!cJSON_IsNumber (item))
        return errprintf (errp, "\"%s\" is not a non-negative integer", name);
    double d = item->valuedouble;
    if (!isfinite (d) || d < 0)
        return errprintf (errp, "\"%s\" is not a non-negative integer", name);
    if (d >= MB_MAX_SAFE_INT)
        return errprintf (errp, "\"%s\" is not below 2^53", name);
    if ((double)(uint64_t)d != d)
        return errprintf (errp, "\"%s\" is not a non-negative integer", name);
    *v = (uint64_t)d;
    return 0;
}

int mb_record_parse (const char *line, size_t len, size_t max_record,
                     struct mb_record *rec, cs_error_t *errp)
{
    const char *end = NULL;
    const char *nul;
    ssize_t bad;
    cJSON *o = NULL;
    cJSON *v = NULL, *seq = NULL, *epoch = NULL, *ts = NULL, *type = NULL;
    struct mb_record r = { 0 };

    if (max_record > 0 && len >= max_record) {
        errprintf (errp, "record of %zu bytes is over the limit of %zu",
                   len + 1, max_record);
        goto inval;
    }
    if ((nul = memchr (line, '\0', len))) {
        errprintf (errp, "NUL byte at byte %zu", (size_t)(nul - line));
        goto inval;
    }
    if ((bad = mb_utf8_invalid (line, len)) >= 0) {
        errprintf (errp, "invalid UTF-8 at byte %zd", bad);
        goto inval;
    }
    size_t n = len;
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'
                     || line[n - 1] == '\r'))
        n--;
    if (n == 0) {
        errprintf (errp, "empty line");
        goto inval;
    }
    /* require_null_terminated semantics on the given length: cJSON wants
     * the NUL inside the buffer for that, so check the parse end instead.
     */
    if (!(o = cJSON_ParseWithLengthOpts (line, n, &end, false))) {
        size_t off = end && end >= line && end <= line + n
                         ? (size_t)(end - line)
                         : 0;
        errprintf (errp, "not valid JSON near byte %zu", off);
        goto inval;
    }
    if (end) {
        while (end < line + n
               && (*end == ' ' || *end == '\t' || *end == '\r'
                   || *end == '\n'))
            end++;
        if (end != line + n) {
            errprintf (errp, "trailing data after JSON at byte %zu",
                       (size_t)(end - line));
            goto inval;
        }
    }
    if (!cJSON_IsObject (o)) {
        errprintf (errp, "not a JSON object");
        goto inval;
    }
    for (cJSON *m = o->child; m; m = m->next) {
        const char *k = m->string;
        cJSON **slot = NULL;
        if (!k || k[0] == '\0')
            continue;
        switch (k[0]) {
            case 'v':
                if (k[1] == '\0')
                    slot = &v;
                break;
            case 's':
                if (!strcmp (k, "seq"))
                    slot = &seq;
                break;
            case 'e':
                if (!strcmp (k, "epoch"))
                    slot = &epoch;
                break;
            case 't':
                if (!strcmp (k, "ts"))
                    slot = &ts;
                else if (!strcmp (k, "type"))
                    slot = &type;
                break;
        }
        if (slot) {
            if (*slot) {
                errprintf (errp, "duplicate \"%s\"", k);
                goto inval;
            }
            *slot = m;
        }
    }
    if (!v) {
        errprintf (errp, "missing \"v\"");
        goto inval;
    }
    if (!cJSON_IsNumber (v) || v->valuedouble != MB_RECORD_VERSION) {
        errprintf (errp, "unsupported record version (\"v\" is not %d)",
                   MB_RECORD_VERSION);
        goto inval;
    }
    if (get_uint (seq, "seq", &r.seq, errp) < 0
        || get_uint (epoch, "epoch", &r.epoch, errp) < 0)
        goto inval;
    if (!ts) {
        errprintf (errp, "missing \"ts\"");
        goto inval;
    }
    if (!cJSON_IsNumber (ts) || !isfinite (ts->valuedouble)) {
        errprintf (errp, "\"ts\" is not a number");
        goto inval;
    }
    r.ts = ts->valuedouble;
    if (!type) {
        errprintf (errp, "missing \"type\"");
        goto inval;
    }
    if (!cJSON_IsString (type) || !type->valuestring) {
        errprintf (errp, "\"type\" is not a string");
        goto inval;
    }
    if (type->valuestring[0] == '\0') {
        errprintf (errp, "\"type\" is empty");
        goto inval;
    }
    r.type = type->valuestring;
    r.json = o;
    r.line = line;
    r.len = len;
    *rec = r;
    return 0;
inval:
    cJSON_Delete (o);
    errno = EINVAL;
    return -1;
}
