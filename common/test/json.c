#include "config.h"

#define dabs(x) ((x) < 0 ? -(x) : (x))

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

#include "common/json.h"
#include "common/libtap/tap.h"

static void test_parse (void)
{
    cs_error_t e;
    cJSON *j;
    const char *s;

    s = "{\"a\":1}";
    j = json_parse (s, strlen (s), &e);
    ok (j != NULL && cJSON_IsObject (j), "parse an object");
    cJSON_Delete (j);

    s = "  [1,2]  \n";
    j = json_parse (s, strlen (s), &e);
    ok (j != NULL && cJSON_GetArraySize (j) == 2,
        "surrounding whitespace is fine");
    cJSON_Delete (j);

    /* not NUL-terminated: the length is what counts */
    char buf[] = { '{', '}', 'x' };
    j = json_parse (buf, 2, &e);
    ok (j != NULL, "parse uses the length, not a terminator");
    cJSON_Delete (j);

    s = "{\"a\":1} x";
    errno = 0;
    ok (json_parse (s, strlen (s), &e) == NULL && errno == EINVAL,
        "trailing data is an error");
    is (e.text, "trailing data at byte 8", "names the offset");

    s = "{\"a\":1}{}";
    ok (json_parse (s, strlen (s), &e) == NULL, "two values are an error");
    is (e.text, "trailing data at byte 7", "names the offset");

    s = "{\"a\":tru}";
    ok (json_parse (s, strlen (s), &e) == NULL, "bad literal");
    is (e.text, "not valid JSON near byte 5", "names the offset");

    s = "[1,2,";
    ok (json_parse (s, strlen (s), &e) == NULL, "truncated");
    ok (strncmp (e.text, "not valid JSON near byte ", 25) == 0
        && atoi (e.text + 25) >= 3 && atoi (e.text + 25) <= 5,
        "offset near the end: %s", e.text);

    ok (json_parse ("", 0, &e) == NULL, "empty input");
    is (e.text, "not valid JSON near byte 0 (no value)", "message");
    ok (json_parse ("   ", 3, &e) == NULL, "only whitespace");
    is (e.text, "not valid JSON near byte 3 (no value)", "message");

    char nul[] = "{\"a\":1}\0{}";
    ok (json_parse (nul, sizeof (nul) - 1, &e) == NULL,
        "a NUL after the value is trailing data");
    is (e.text, "trailing data at byte 7", "message");

    cJSON *j2 = json_parse ("{}", 2, NULL);
    ok (j2 != NULL, "errp may be NULL");
    cJSON_Delete (j2);
    ok (json_parse ("{", 1, NULL) == NULL, "errp may be NULL on error");
}

static void test_get (void)
{
    cs_error_t e;
    const char *s = "{\"s\":\"str\",\"u\":42,\"big\":9007199254740992,"
                    "\"neg\":-5,\"frac\":1.5,\"b\":true,\"n\":null,"
                    "\"max\":9007199254740991}";
    cJSON *j = json_parse (s, strlen (s), &e);
    const char *str;
    uint64_t u;
    int64_t i;
    double d;
    bool b;

    ok (j != NULL, "parsed");
    ok (json_get_str (j, "s", &str, &e) == 0 && !strcmp (str, "str"),
        "get_str");
    ok (json_get_str (j, "u", &str, &e) < 0 && errno == EINVAL, "wrong type");
    is (e.text, "\"u\" is not a string", "message");
    ok (json_get_str (j, "nope", &str, &e) < 0 && errno == ENOENT, "missing");
    is (e.text, "missing \"nope\"", "message");
    ok (json_get_str (j, "S", &str, &e) < 0, "keys are case-sensitive");

    ok (json_get_u64 (j, "u", &u, &e) == 0 && u == 42, "get_u64");
    ok (json_get_u64 (j, "max", &u, &e) == 0 && u == 9007199254740991ULL,
        "2^53-1 is fine");
    ok (json_get_u64 (j, "big", &u, &e) < 0, "2^53 is refused");
    ok (json_get_u64 (j, "neg", &u, &e) < 0, "negative is refused");
    ok (json_get_u64 (j, "frac", &u, &e) < 0, "fraction is refused");
    is (e.text, "\"frac\" is not a non-negative integer below 2^53", "message");
    ok (json_get_u64 (j, "s", &u, &e) < 0, "string is refused");

    ok (json_get_i64 (j, "neg", &i, &e) == 0 && i == -5, "get_i64");
    ok (json_get_i64 (j, "frac", &i, &e) < 0, "get_i64 refuses a fraction");
    ok (json_get_double (j, "frac", &d, &e) == 0 && d == 1.5, "get_double");
    ok (json_get_double (j, "s", &d, &e) < 0, "get_double refuses a string");
    ok (json_get_bool (j, "b", &b, &e) == 0 && b, "get_bool");
    ok (json_get_bool (j, "n", &b, &e) < 0, "null is not a bool");
    is (e.text, "\"n\" is not a boolean", "message");

    ok (json_opt_str (j, "nope", &str, "dflt", &e) == 0
        && !strcmp (str, "dflt"), "opt_str default");
    ok (json_opt_str (j, "s", &str, "dflt", &e) == 0 && !strcmp (str, "str"),
        "opt_str present");
    ok (json_opt_str (j, "u", &str, "dflt", &e) < 0, "opt_str wrong type");
    ok (json_opt_u64 (j, "nope", &u, 7, &e) == 0 && u == 7, "opt_u64 default");
    ok (json_opt_u64 (j, "u", &u, 7, &e) == 0 && u == 42, "opt_u64 present");
    ok (json_opt_u64 (j, "s", &u, 7, &e) < 0, "opt_u64 wrong type");

    cJSON *arr = cJSON_CreateArray ();
    ok (json_get_str (arr, "x", &str, &e) < 0 && errno == EINVAL,
        "lookup in a non-object fails");
    cJSON_Delete (arr);

    ok (json_is_u64 (cJSON_GetObjectItem (j, "u"), &u) && u == 42,
        "json_is_u64");
    ok (!json_is_u64 (cJSON_GetObjectItem (j, "s"), NULL),
        "json_is_u64 on a string");
    ok (!json_is_u64 (NULL, NULL), "json_is_u64 (NULL)");
    cJSON_Delete (j);
}

static void test_build (void)
{
    cJSON *o = cJSON_CreateObject ();
    char *s;

    ok (json_add_str (o, "s", "x\"y") == 0, "add_str");
    ok (json_add_u64 (o, "u", 9007199254740991ULL) == 0, "add_u64");
    errno = 0;
    ok (json_add_u64 (o, "big", 9007199254740992ULL) < 0
        && errno == EOVERFLOW, "add_u64 refuses 2^53");
    ok (json_add_double (o, "d", 0.25) == 0, "add_double");
    ok (json_add_bool (o, "b", false) == 0, "add_bool");
    ok (json_add_item (o, "a", cJSON_CreateArray ()) == 0, "add_item");
    ok (json_add_item (NULL, "a", cJSON_CreateArray ()) < 0,
        "add_item to NULL deletes the item (valgrind checks)");
    ok (json_add_item (o, "a", NULL) < 0 && errno == ENOMEM,
        "add_item of a failed create");
    ok (json_add_str (o, "s", NULL) < 0, "add_str NULL value");
    s = json_print (o);
    is (s, "{\"s\":\"x\\\"y\",\"u\":9007199254740991,\"d\":0.25,\"b\":false,"
        "\"a\":[]}", "json_print");
    free (s);
    cJSON_Delete (o);
    ok (json_print (NULL) == NULL, "json_print (NULL)");

    /* the printer round-trips what the parser reads */
    const char *in = "{\"a\":[1,-2,0.1,1e+300,-0.5,1763726401.123456,"
                     "{\"b\":null,\"c\":true}],\"\\u0001\\n\":\"\\u001f\","
                     "\"e\":{},\"f\":[],\"t\":1763726401.5}";
    cs_error_t e;
    cJSON *j = json_parse (in, strlen (in), &e);
    s = json_print (j);
    is (s, "{\"a\":[1,-2,0.1,1e+300,-0.5,"
        "1763726401.123456,{\"b\":null,\"c\":true}],\"\\u0001\\n\":"
        "\"\\u001f\",\"e\":{},\"f\":[],\"t\":1763726401.5}",
        "nested print");
    cJSON *j2 = s ? json_parse (s, strlen (s), &e) : NULL;
    ok (j2 && cJSON_Compare (j, j2, true), "print/parse round trip");
    free (s);
    cJSON_Delete (j);
    cJSON_Delete (j2);

    o = cJSON_CreateObject ();
    json_add_double (o, "nan", NAN);
    s = json_print (o);
    is (s, "{\"nan\":null}", "NaN prints as null");
    free (s);
    cJSON_Delete (o);
}

static void test_jbuf (void)
{
    struct jbuf b = JBUF_INIT;
    cs_error_t e;

    ok (jbuf_append (&b, "{", 1) == 0 && !strcmp (b.data, "{"), "append");
    ok (jbuf_printf (&b, "\"seq\":%d,", 42) == 0, "printf");
    ok (jbuf_append_jstr (&b, "k", 1) == 0, "jstr");
    ok (jbuf_append (&b, ":", 1) == 0, "append");
    const char in[] = "q\" b\\ n\n t\t c\x01 d\x1f u\xc3\xa9 e\xe2\x82\xac "
                      "p\xf0\x9f\x98\x80 del\x7f";
    ok (jbuf_append_jstr (&b, in, sizeof (in) - 1) == 0, "jstr with escapes");
    ok (jbuf_append (&b, "}", 1) == 0, "close");
    is (b.data, "{\"seq\":42,\"k\":\"q\\\" b\\\\ n\\n t\\t c\\u0001 d\\u001f "
        "u\xc3\xa9 e\xe2\x82\xac p\xf0\x9f\x98\x80 del\x7f\"}",
        "escaped per RFC 8259, UTF-8 passed through");
    ok (b.len == strlen (b.data), "len matches");

    /* round trip through cJSON */
    cJSON *j = json_parse (b.data, b.len, &e);
    const char *v = NULL;
    ok (j && json_get_str (j, "k", &v, &e) == 0 && !strcmp (v, in),
        "cJSON reads back the original string");
    cJSON_Delete (j);

    /* NUL inside and invalid UTF-8 */
    jbuf_reset (&b);
    ok (b.len == 0 && b.data[0] == '\0', "reset");
    const char bad[] = "a\0b\xff\xc3(\xed\xa0\x80\xe2\x82";
    ok (jbuf_append_jstr (&b, bad, sizeof (bad) - 1) == 0, "jstr of junk");
    is (b.data, "\"a\\u0000b\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd"
        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"",
        "NUL escaped, invalid UTF-8 bytes become U+FFFD");

    jbuf_reset (&b);
    ok (jbuf_append_jstr (&b, "", 0) == 0 && !strcmp (b.data, "\"\""),
        "empty string");

    /* growth */
    jbuf_reset (&b);
    char big[10000];
    memset (big, '\n', sizeof (big));
    ok (jbuf_append_jstr (&b, big, sizeof (big)) == 0
        && b.len == 2 * sizeof (big) + 2, "10000 newlines become 20002 bytes");
    jbuf_reset (&b);
    ok (jbuf_printf (&b, "%5000d", 1) == 0 && b.len == 5000,
        "printf grows the buffer");
    jbuf_release (&b);
    ok (b.data == NULL && b.len == 0, "release");
    jbuf_release (&b);
    pass ("release twice is fine");
}

static void test_time (void)
{
    double now = time_now ();
    double m1 = time_mono (), m2;
    struct timespec ts = { 0, 20000000 };

    ok (dabs (now - (double)time (NULL)) < 2, "time_now is wall clock");
    nanosleep (&ts, NULL);
    m2 = time_mono ();
    ok (m2 - m1 >= 0.019 && m2 - m1 < 10, "time_mono advances (%.4f)",
        m2 - m1);
}

static void test_units (void)
{
    static const struct {
        const char *s;
        double v;
    } durs[] = {
        { "250ms", 0.25 }, { "10s", 10 }, { "5m", 300 }, { "2h", 7200 },
        { "1d", 86400 }, { "1.5", 1.5 }, { "0", 0 }, { ".5s", 0.5 },
        { "100us", 0.0001 }, { "15", 15 },
    };
    static const char *baddurs[] = {
        "", "ten", "-1", "1x", "s", "1 s", "1.5.5", "0x10", "inf", "nan",
        "1e3", "+5", "10S",
    };
    static const struct {
        const char *s;
        uint64_t v;
    } sizes[] = {
        { "64MiB", 64ULL << 20 }, { "10k", 10240 }, { "1G", 1ULL << 30 },
        { "4096", 4096 }, { "4096B", 4096 }, { "2KB", 2048 },
        { "1.5k", 1536 }, { "8M", 8ULL << 20 }, { "1T", 1ULL << 40 },
        { "18446744073709551615", UINT64_MAX }, { "0", 0 },
        { "16EiB", 0 },
    };
    static const char *badsizes[] = {
        "", "k", "-1", "1.1", "10q", "1.1k", "64 MiB", "1kk", "0x10",
        "1e3",
    };
    double d;
    uint64_t u;
    size_t i;

    for (i = 0; i < sizeof (durs) / sizeof (durs[0]); i++)
        ok (parse_duration (durs[i].s, &d) == 0 && dabs (d - durs[i].v) < 1e-9,
            "duration \"%s\" = %g", durs[i].s, durs[i].v);
    for (i = 0; i < sizeof (baddurs) / sizeof (baddurs[0]); i++) {
        errno = 0;
        ok (parse_duration (baddurs[i], &d) < 0 && errno == EINVAL,
            "duration \"%s\" is refused", baddurs[i]);
    }
    ok (parse_duration (NULL, &d) < 0, "duration NULL is refused");
    errno = 0;
    ok (parse_duration ("99999999999999999999d", &d) < 0 && errno == ERANGE,
        "an absurd duration is refused (ERANGE)");
    ok (parse_duration ("367d", &d) < 0 && errno == ERANGE,
        "a duration over " DURATION_MAX_TEXT " is refused");
    ok (parse_duration ("366d", &d) == 0 && d == DURATION_MAX,
        DURATION_MAX_TEXT " itself is a duration");
    for (i = 0; i < sizeof (sizes) / sizeof (sizes[0]) - 1; i++)
        ok (parse_size (sizes[i].s, &u) == 0 && u == sizes[i].v,
            "size \"%s\" = %llu", sizes[i].s, (unsigned long long)sizes[i].v);
    errno = 0;
    ok (parse_size ("16EiB", &u) < 0 && errno == ERANGE, "16EiB overflows");
    errno = 0;
    ok (parse_size ("18446744073709551616", &u) < 0 && errno == ERANGE,
        "2^64 overflows");
    for (i = 0; i < sizeof (badsizes) / sizeof (badsizes[0]); i++) {
        errno = 0;
        ok (parse_size (badsizes[i], &u) < 0 && errno == EINVAL,
            "size \"%s\" is refused", badsizes[i]);
    }
}

int main (void)
{
    plan (NO_PLAN);
    test_parse ();
    test_get ();
    test_build ();
    test_jbuf ();
    test_time ();
    test_units ();
    done_testing ();
}
