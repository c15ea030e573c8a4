/* fuzz_record.c - libFuzzer target for the mailbox record parser
 *
 * Feeds each input to mb_record_parse() as one line (from an exact-size
 * heap copy, so that AddressSanitizer catches any read past the end), and
 * checks what a successful parse promises.  Built by "make fuzz" with
 * $(FUZZ_CC) -fsanitize=fuzzer,address,undefined; run by "make fuzz-run".
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mailbox/mailbox.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void check_one (const char *line, size_t len, size_t max)
{
    struct mb_record rec;
    cs_error_t err;

    memset (&rec, 0, sizeof (rec));
    err.text[0] = '\0';
    if (mb_record_parse (line, len, max, &rec, &err) == 0) {
        /* a record is a JSON object with the envelope, and valid UTF-8 */
        if (!rec.json || !cJSON_IsObject (rec.json) || !rec.type
            || rec.line != line || rec.len != len
            || rec.seq >= (1ULL << 53) || rec.epoch >= (1ULL << 53)
            || len + 1 > max || memchr (line, '\0', len)
            || mb_utf8_invalid (line, len) != -1)
            abort ();
        cJSON_Delete (rec.json);
    }
    else {
        /* a failure always says why */
        if (err.text[0] == '\0' || !memchr (err.text, '\0', sizeof (err.text)))
            abort ();
    }
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *line = malloc (size ? size : 1);

    if (!line)
        return 0;
    memcpy (line, data, size);
    check_one (line, size, MB_DEFAULT_MAX_RECORD);
    /* the limit path: a limit just below and just at the line's size */
    if (size > 0) {
        check_one (line, size, size);
        check_one (line, size, size + 1);
    }
    free (line);
    return 0;
}
