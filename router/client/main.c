/* main.c - codeswarm-client: the human verbs of "codeswarm"
 *
 *   send SWARM NODES TEXT [--steer] [--key K]
 *   attach SWARM [--json] [--since N] [--turns N]
 *   approvals [SWARM] [--json]
 *   approve ID DECISION
 *   interrupt SWARM NODES
 *   rpc [--until EVENT] [--timeout SECS] JSON...   (scripts and tests)
 *
 * With a router listening on the per-user socket, every verb goes through
 * it (connection.c).  Without one, the verbs act on the mailbox directly
 * (direct.c).  Each verb is in the file named after it.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "router/client/client.h"

char client_home[PATH_MAX];
volatile sig_atomic_t client_stop;

static const struct verb {
    const char *name;
    int (*fn) (int argc, char **argv);
} verbs[] = {
    { "send", cmd_send },
    { "interrupt", cmd_interrupt },
    { "attach", cmd_attach },
    { "approvals", cmd_approvals },
    { "approve", cmd_approve },
    { "rpc", cmd_rpc },
    { NULL, NULL },
};

static void usage (FILE *f)
{
    fprintf (f,
             "usage: codeswarm-client VERB ARGS (normally run as "
             "\"codeswarm VERB\")\n"
             "  send SWARM NODES TEXT [--steer] [--key KEY]\n"
             "  attach SWARM [--json] [--since N] [--turns N] [--node K]\n"
             "  approvals [SWARM] [--json]\n"
             "  approve ID accept|acceptForSession|decline|cancel\n"
             "  interrupt SWARM NODES\n"
             "  rpc [--until EVENT [--count N]] [--timeout SECS] JSON...\n");
}

int main (int argc, char **argv)
{
    cs_error_t error;
    const char *verb;
    char prog[64];

    log_init ("codeswarm");
    signal (SIGPIPE, SIG_IGN);
    if (argc < 2 || !strcmp (argv[1], "-h") || !strcmp (argv[1], "--help")) {
        usage (argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    verb = argv[1];
    snprintf (prog, sizeof (prog), "codeswarm %s", verb);
    log_init (prog);
    if (mb_home (client_home, sizeof (client_home), false, &error) < 0)
        log_msg_exit ("%s", error.text);
    argc--;
    argv++;
    for (const struct verb *v = verbs; v->name; v++)
        if (!strcmp (verb, v->name))
            return v->fn (argc, argv);
    log_msg ("unknown verb '%s'", verb);
    usage (stderr);
    return 2;
}
