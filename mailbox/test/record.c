/* test/record.c - mb_record_parse and mb_utf8_invalid */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/libtap/tap.h"
#include "mailbox/mailbox.h"
#include "mailbox/private.h"

#define SLEN ((size_t)-1)

static int parse (const char *line, struct mb_record *rec, cs_error_t *err)
{
    return mb_record_parse (line, strlen (line), MB_DEFAULT_MAX_RECORD, rec,
                            err);
}

/* The line must be rejected with an error text containing want. */
static void bad (const char *line, size_t len, const char *want,
                 const char *what)
{
    struct mb_record rec;
    cs_error_t err = { { 0 } };
    if (len == SLEN)
        len = strlen (line);
    errno = 0;
    int rc = mb_record_parse (line, len, MB_DEFAULT_MAX_RECORD, &rec, &err);
    ok (rc == -1 && errno == EINVAL && strstr (err.text, want) != NULL,
        "%s: rejected with '%s'", what, err.text);
}

static void test_good (void)
{
    struct mb_record rec;
    cs_error_t err = { { 0 } };
    const char *line = "{\"v\":1,\"seq\":42,\"epoch\":3,\"ts\":1700000000.25,"
                       "\"type\":\"rpc\",\"msg\":{\"id\":1}}";

    ok (parse (line, &rec, &err) == 0, "a good record parses");
    cmp_ok (rec.seq, "==", 42, "seq");
    cmp_ok (rec.epoch, "==", 3, "epoch");
    ok (rec.ts == 1700000000.25, "ts");
    is (rec.type, "rpc", "type");
    ok (rec.line == line && rec.len == strlen (line), "line and len");
    ok (cJSON_IsObject (cJSON_GetObjectItem (rec.json, "msg")),
        "payload member is in json");
    cJSON_Delete (rec.json);

    ok (parse ("  {\"v\":1,\"seq\":0,\"epoch\":0,\"ts\":0,\"type\":\"x\"} \r",
               &rec, &err) == 0,
        "surrounding whitespace and seq 0 accepted");
    cJSON_Delete (rec.json);

    ok (parse ("{\"v\":1,\"seq\":9007199254740991,\"epoch\":1,\"ts\":1,"
               "\"type\":\"x\"}", &rec, &err) == 0
        && rec.seq == 9007199254740991ULL,
        "seq 2^53-1 accepted");
    cJSON_Delete (rec.json);

    ok (parse ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"h\\u00e9\","
               "\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", &rec, &err)
            == 0,
        "multibyte UTF-8 accepted");
    cJSON_Delete (rec.json);
}

static void test_bad (void)
{
    char *big;
    size_t n;
    struct mb_record rec;
    cs_error_t err;

    bad ("", SLEN, "empty line", "empty line");
    bad ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"x\"", SLEN,
         "not valid JSON near byte", "truncated line");
    bad ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"x\xff\"}", SLEN,
         "invalid UTF-8 at byte 41", "invalid UTF-8");
    bad ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"\xc0\xaf\"}", SLEN,
         "invalid UTF-8 at byte 40", "overlong UTF-8");
    bad ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"\xed\xa0\x80\"}", SLEN,
         "invalid UTF-8 at byte 40", "UTF-8 surrogate");
    bad ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"\xe2\x82", SLEN,
         "invalid UTF-8 at byte 40", "UTF-8 truncated at the end");
    bad ("{\"v\"\0:1}", 9, "NUL byte at byte 4", "NUL byte");
    bad ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"x\"} x", SLEN,
         "trailing data after JSON at byte 44", "trailing garbage");
    bad ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"x\"}{}", SLEN,
         "trailing data after JSON at byte 43", "two objects");
    bad ("[1,2]", SLEN, "not a JSON object", "array");
    bad ("17", SLEN, "not a JSON object", "number");
    bad ("{\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"x\"}", SLEN, "missing \"v\"",
         "missing v");
    bad ("{\"v\":2,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"x\"}", SLEN,
         "\"v\" is not 1", "v 2");
    bad ("{\"v\":1,\"epoch\":1,\"ts\":1,\"type\":\"x\"}", SLEN, "missing \"seq\"",
         "missing seq");
    bad ("{\"v\":1,\"seq\":\"1\",\"epoch\":1,\"ts\":1,\"type\":\"x\"}", SLEN,
         "\"seq\" is not a non-negative integer", "string seq");
    bad ("{\"v\":1,\"seq\":-1,\"epoch\":1,\"ts\":1,\"type\":\"x\"}", SLEN,
         "\"seq\" is not a non-negative integer", "negative seq");
    bad ("{\"v\":1,\"seq\":1.5,\"epoch\":1,\"ts\":1,\"type\":\"x\"}", SLEN,
         "\"seq\" is not a non-negative integer", "fractional seq");
    bad ("{\"v\":1,\"seq\":9007199254740992,\"epoch\":1,\"ts\":1,\"type\":\"x\"}",
         SLEN, "\"seq\" is not below 2^53", "seq 2^53");
    bad ("{\"v\":1,\"seq\":1,\"seq\":2,\"epoch\":1,\"ts\":1,\"type\":\"x\"}", SLEN,
         "duplicate \"seq\"", "duplicate seq");
    bad ("{\"v\":1,\"seq\":1,\"ts\":1,\"type\":\"x\"}", SLEN, "missing \"epoch\"",
         "missing epoch");
    bad ("{\"v\":1,\"seq\":1,\"epoch\":null,\"ts\":1,\"type\":\"x\"}", SLEN,
         "\"epoch\" is not a non-negative integer", "null epoch");
    bad ("{\"v\":1,\"seq\":1,\"epoch\":1,\"type\":\"x\"}", SLEN, "missing \"ts\"",
         "missing ts");
    bad ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":\"now\",\"type\":\"x\"}", SLEN,
         "\"ts\" is not a number", "string ts");
    bad ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1}", SLEN, "missing \"type\"",
         "missing type");
    bad ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":7}", SLEN,
         "\"type\" is not a string", "numeric type");
    bad ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"\"}", SLEN,
         "\"type\" is empty", "empty type");

    /* over the limit (newline included in the count) */
    n = 100;
    big = malloc (n);
    memset (big, ' ', n);
    err.text[0] = '\0';
    ok (mb_record_parse (big, n, 100, &rec, &err) == -1
            && strstr (err.text, "record of 101 bytes is over the limit of 100"),
        "line over max_record rejected: '%s'", err.text);
    ok (mb_record_parse ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"x\"}",
                         43, 44, &rec, NULL) == 0,
        "a line of exactly max_record bytes (with newline) is accepted");
    cJSON_Delete (rec.json);
    ok (mb_record_parse ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"x\"}",
                         43, 43, &rec, NULL) == -1,
        "one byte more is not");
    free (big);

    /* the parser must respect len: valid JSON followed by more bytes */
    const char *two = "{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,\"type\":\"x\"}"
                      "GARBAGE";
    ok (mb_record_parse (two, 43, 0, &rec, NULL) == 0,
        "bytes after len are ignored");
    cJSON_Delete (rec.json);
}

static void test_utf8 (void)
{
    ok (mb_utf8_invalid ("", 0) == -1, "empty is valid");
    ok (mb_utf8_invalid ("hello, world, a long ascii run", 30) == -1,
        "ascii is valid");
    ok (mb_utf8_invalid ("\xf4\x8f\xbf\xbf", 4) == -1, "U+10FFFF is valid");
    ok (mb_utf8_invalid ("abc\xf4\x90\x80\x80", 7) == 3,
        "above U+10FFFF is invalid");
    ok (mb_utf8_invalid ("abcdefghij\x80", 11) == 10,
        "stray continuation byte at its offset");
    ok (mb_utf8_invalid ("\xe0\x80\x80", 3) == 0, "overlong 3-byte invalid");
    ok (mb_utf8_invalid ("\xf0\x80\x80\x80", 4) == 0, "overlong 4-byte invalid");
    ok (mb_utf8_invalid ("\xc3", 1) == 0, "truncated 2-byte invalid");
    ok (mb_utf8_invalid ("\xc3\xa9x\xf0\x9f\x98", 6) == 3,
        "truncated 4-byte at its offset");
}

static void test_u64 (void)
{
    char buf[32];
    uint64_t v;
    size_t n = mb_u64_format (buf, 18446744073709551615ULL);
    buf[n] = '\0';
    is (buf, "18446744073709551615", "u64 format max");
    n = mb_u64_format (buf, 0);
    buf[n] = '\0';
    is (buf, "0", "u64 format 0");
    ok (mb_u64_parse ("123", 3, &v) == 0 && v == 123, "u64 parse");
    ok (mb_u64_parse ("", 0, &v) < 0, "u64 parse rejects empty");
    ok (mb_u64_parse ("-1", 2, &v) < 0, "u64 parse rejects sign");
    ok (mb_u64_parse ("9007199254740992", 16, &v) < 0,
        "u64 parse rejects 2^53");
}

int main (void)
{
    plan (NO_PLAN);
    test_good ();
    test_bad ();
    test_utf8 ();
    test_u64 ();
    done_testing ();
}
