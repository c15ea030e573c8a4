/* relaycmd.c - codeswarm-relay: "codeswarm relay keygen FILE" writes a new
 * seal key for the relay (mode 0600, never over an existing file).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "router/seal.h"

static void usage (FILE *f)
{
    fprintf (f, "usage: codeswarm relay keygen FILE\n"
                "Write a new relay seal key to FILE (mode 0600; an existing "
                "FILE is not\noverwritten).  Copy it, by a channel you "
                "trust, to both sides of the relay\nand name it in "
                "relay.seal_key_file of codeswarm.yaml.\n");
}

int main (int argc, char **argv)
{
    cs_error_t error;

    log_init ("codeswarm relay");
    if (argc > 1 && !strcmp (argv[1], "relay")) {  /* run by codeswarm */
        argv++;
        argc--;
    }
    if (argc == 2 && (!strcmp (argv[1], "-h") || !strcmp (argv[1], "--help"))) {
        usage (stdout);
        return 0;
    }
    if (argc != 3 || strcmp (argv[1], "keygen")) {
        usage (stderr);
        return 2;
    }
    if (seal_key_generate (argv[2], &error) < 0)
        log_msg_exit ("%s", error.text);
    return 0;
}
