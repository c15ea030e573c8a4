/* fuzz_command.c - libFuzzer target: router command lines -> rc_parse, and
 * node selections -> rc_nodes_parse_str.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/command.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    struct rc_command cmd;
    struct rc_reject rej;
    struct rc_nodes nodes;
    char *s;

    (void)rc_parse ((const char *)data, size, &cmd, &rej);
    rc_release (&cmd);
    if ((s = malloc (size + 1))) {
        memcpy (s, data, size);
        s[size] = '\0';
        if (rc_nodes_parse_str (s, 1000, &nodes, NULL) == 0)
            rc_nodes_release (&nodes);
        free (s);
    }
    return 0;
}
