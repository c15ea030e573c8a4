/* fuzz_json.c - libFuzzer target for json_parse() and json_print()
 *
 * Whatever parses prints, what prints parses back, and printing that
 * again gives the same text (the first print may differ from the input's
 * tree only where strings held invalid UTF-8, which becomes U+FFFD).
 * jbuf_append_jstr() of the raw input must always give a JSON string.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    struct jbuf b = JBUF_INIT;
    cs_error_t e;
    cJSON *j, *j2;
    char *s;

    if ((j = json_parse ((const char *)data, size, &e))) {
        if (!(s = json_print (j)))
            abort ();
        if (!(j2 = json_parse (s, strlen (s), &e))) {
            fprintf (stderr, "printed JSON does not parse: %s\n", e.text);
            abort ();
        }
        char *s2 = json_print (j2);
        if (!s2 || strcmp (s, s2) != 0) {
            fprintf (stderr, "print is not stable:\n%s\n%s\n", s, s2);
            abort ();
        }
        free (s2);
        cJSON_Delete (j2);
        free (s);
        cJSON_Delete (j);
    }
    else if (strncmp (e.text, "not valid JSON near byte ", 25) != 0
             && strncmp (e.text, "trailing data at byte ", 22) != 0)
        abort ();

    if (jbuf_append_jstr (&b, (const char *)data, size) < 0)
        abort ();
    if (!(j = json_parse (b.data, b.len, &e)) || !cJSON_IsString (j))
        abort ();
    cJSON_Delete (j);
    jbuf_release (&b);
    return 0;
}
