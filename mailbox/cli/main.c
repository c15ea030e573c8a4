/* main.c - codeswarm-mailbox: append to, follow, check and describe mailbox
 * streams
 *
 * Verbs: append, follow, check, stat, serve (see codeswarm-mailbox(1)).
 * Each verb is in the file named after it (serve: mailbox/serve.c).
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "mailbox/cli/cli.h"
#include "mailbox/serve.h"

static const char *usage_text =
"Usage: codeswarm-mailbox [--home DIR] [-v] VERB [OPTIONS] ARGS\n"
"Verbs:\n"
"  append [--type T] [--fsync never|always|interval] [--fsync-interval SECS]\n"
"         [--rotate-bytes N] [--rotate-records N] [--max-record BYTES]\n"
"         [--print-seq] STREAM [JSON-OBJECT...]\n"
"  follow [--since CURSOR] [--from-start] [--cursor-file F | --reader NAME]\n"
"         [--mode auto|inotify|poll] [-n|--count N] [--timeout SECS]\n"
"         [--events] [--max-record BYTES] STREAM...\n"
"  check  [-q|--quiet] STREAM...\n"
"  stat   [--json] [--mode auto|inotify|poll] STREAM...\n"
"  serve  ...      (the login-node end of the router's ssh transport)\n"
"STREAM is a path to a .jsonl file or SWARM/BOX/K (e.g. myswarm/outbox/3).\n"
"Exit status: 0 ok, 1 check found problems / append had bad input,\n"
"2 usage error or a stream could not be used.  See codeswarm-mailbox(1).\n";

void usage (FILE *fp)
{
    fputs (usage_text, fp);
}

int main (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "home", required_argument, NULL, 'H' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *verb;
    int verbose = 0;
    int c;

    log_init ("codeswarm-mailbox");
    while ((c = getopt_long (argc, argv, "+vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'H':
            home_opt = optarg;
            break;
        case 'v':
            log_set_verbose (++verbose);
            break;
        case 'h':
            usage (stdout);
            return EXIT_OK;
        case 'V':
            printf ("codeswarm-mailbox (%s) %s\n", PACKAGE_NAME,
                    PACKAGE_VERSION);
            return EXIT_OK;
        default:
            usage (stderr);
            return EXIT_FAILED;
        }
    }
    if (optind >= argc) {
        usage (stderr);
        return EXIT_FAILED;
    }
    verb = argv[optind];
    argc -= optind;
    argv += optind;
    if (!strcmp (verb, "append"))
        return cmd_append (argc, argv);
    if (!strcmp (verb, "follow"))
        return cmd_follow (argc, argv);
    if (!strcmp (verb, "check"))
        return cmd_check (argc, argv);
    if (!strcmp (verb, "stat"))
        return cmd_stat (argc, argv);
    if (!strcmp (verb, "serve")) {
        optind = 1;
        return mailbox_serve_main (argc, argv);
    }
    if (!strcmp (verb, "help")) {
        usage (stdout);
        return EXIT_OK;
    }
    log_msg ("unknown verb '%s' (try --help)", verb);
    return EXIT_FAILED;
}
