/* fuzz_config.c - libFuzzer target for the codeswarm.yaml loader
 *
 * Any input either loads (and is released) or fails with a message that
 * names the input and a position.  ASan/UBSan catch the rest.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/configfile.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    struct cs_config cfg;
    cs_error_t e;

    setenv ("CODESWARM_HOME", "/nonexistent/home", 1);
    setenv ("HOME", "/nonexistent", 1);
    if (config_load_string (&cfg, "fuzz.yaml", (const char *)data, size,
                            &e) == 0) {
        if (!cfg.workspace || !cfg.sandbox || cfg.nrules > CS_CONFIG_MAX_RULES
            || cfg.codex_nargs > CS_CONFIG_MAX_LIST
            || cfg.codex_nenv > CS_CONFIG_MAX_LIST || cfg.max_line == 0)
            abort ();
        for (size_t i = 0; i < cfg.nrules; i++) {
            if (!cfg.rules[i].prefix || !cfg.rules[i].decision)
                abort ();
        }
        config_release (&cfg);
    }
    else if (strncmp (e.text, "fuzz.yaml:", 10) != 0) {
        fprintf (stderr, "message without a position: %s\n", e.text);
        abort ();
    }
    return 0;
}
