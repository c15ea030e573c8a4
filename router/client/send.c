/* send.c - "codeswarm send" and "codeswarm interrupt"
 *
 * Both write one inbox record per node (a prompt or an interrupt), through
 * the router when one listens, else straight into the inboxes, and print
 * one line per node with the id it was given.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/client/client.h"
#include "slurm/swarm.h"

static void nodes_for (const char *sdir_or_null, const char *spec, int count,
                       struct rc_nodes *nodes)
{
    cs_error_t error;
    if (rc_nodes_parse_str (spec, count > 0 ? count : RT_MAX_NODES, nodes,
                            &error) < 0)
        log_msg_exit ("nodes '%s': %s", spec, error.text);
}

static int router_node_count (const char *swarm)
{
    cJSON *p = cJSON_CreateObject (), *o;
    const cJSON *v;
    int n;
    json_add_str (p, "swarm_id", swarm);
    o = router_wait (router_send ("swarm_status", p), "swarm_status");
    if (!strcmp (ev_name (o), "command_rejected"))
        die_rejected (o);
    v = cJSON_GetObjectItemCaseSensitive (ev_data (o), "node_count");
    n = cJSON_IsNumber (v) ? (int)v->valuedouble : 0;
    cJSON_Delete (o);
    return n;
}

static void send_usage (FILE *f)
{
    fprintf (f,
             "usage: codeswarm send SWARM NODES TEXT [--steer] [--key KEY]\n"
             "                      [--retry-on-loss]\n"
             "\n"
             "Queue TEXT as a prompt for each node in NODES (all, an index, or "
             "a list of\n"
             "indexes and ranges: 0,2-5); prints one line per node, \"nK "
             "INJECTION-ID\".\n"
             "A node busy with a turn starts it when that turn ends.\n"
             "\n"
             "      --steer      inject TEXT into the turn in flight instead\n"
             "      --key KEY    idempotency key: a second send with the same "
             "key is\n"
             "                   refused as a duplicate, with or without a "
             "router\n"
             "      --retry-on-loss  when the node is lost with this prompt's "
             "turn in\n"
             "                   flight, run it once more on the node's next "
             "worker\n"
             "  -h, --help       this text\n"
             "\n"
             "Exit status: 0, 1 when it could not be sent (unknown swarm or "
             "node, a\n"
             "swarm that has ended, a rejected command), 2 on a usage "
             "error.\n");
}

static void interrupt_usage (FILE *f)
{
    fprintf (f,
             "usage: codeswarm interrupt SWARM NODES\n"
             "\n"
             "Interrupt the turn in flight on each node in NODES (all, an "
             "index, or a list\n"
             "of indexes and ranges: 0,2-5); prints one line per node, \"nK "
             "INTERRUPT-ID\".\n"
             "A node without a turn in flight is left as it is.\n"
             "\n"
             "  -h, --help       this text\n"
             "\n"
             "Exit status: 0, 1 when it could not be done (unknown swarm or "
             "node, a\n"
             "rejected command), 2 on a usage error.\n");
}

static int send_or_interrupt (int argc, char **argv, bool interrupt)
{
    static const struct option longopts[] = {
        { "steer", no_argument, NULL, 's' },
        { "key", required_argument, NULL, 'k' },
        { "retry-on-loss", no_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *key = NULL;
    bool steer = false, retry = false;
    struct rc_nodes nodes;
    const char *swarm, *spec, *text = NULL;
    int c, count, expected, dups = 0;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long (argc, argv, ":h", longopts,
                             NULL)) != -1) {
        switch (c) {
        case 's':
        case 'k':
        case 'r':
            if (interrupt) {
                log_msg ("unknown option '%s' (see 'codeswarm interrupt "
                         "--help')",
                         argv[optind - 1]);
                return 2;
            }
            if (c == 's')
                steer = true;
            else if (c == 'r')
                retry = true;
            else
                key = optarg;
            break;
        case 'h':
            (interrupt ? interrupt_usage : send_usage) (stdout);
            return 0;
        case ':':
            log_msg ("option '%s' needs a value", argv[optind - 1]);
            return 2;
        default:
            log_msg ("unknown option '%s' (see 'codeswarm %s --help')",
                     argv[optind - 1], interrupt ? "interrupt" : "send");
            return 2;
        }
    }
    if (argc - optind != (interrupt ? 2 : 3)) {
        (interrupt ? interrupt_usage : send_usage) (stderr);
        return 2;
    }
    swarm = argv[optind];
    spec = argv[optind + 1];
    if (!interrupt) {
        text = argv[optind + 2];
        if (!*text) {
            log_msg ("nothing to send: TEXT is empty");
            return 2;
        }
    }
    if (router_open ()) {
        cJSON *p = cJSON_CreateObject (), *o;
        const char *rid;
        int got = 0;
        count = router_node_count (swarm);
        nodes_for (NULL, spec, count, &nodes);
        expected = nodes.all ? count : (int)nodes.count;
        json_add_str (p, "swarm_id", swarm);
        json_add_str (p, "nodes", spec);
        if (!interrupt) {
            json_add_str (p, "content", text);
            json_add_str (p, "mode", steer ? "steer" : "queue");
            if (key)
                json_add_str (p, "idempotency_key", key);
            if (retry)
                json_add_bool (p, "retry_on_loss", true);
        }
        rid = router_send (interrupt ? "interrupt" : "inject", p);
        while (got < expected && (o = router_recv (30000))) {
            if (is_reply_to (o, rid)) {
                const cJSON *d = ev_data (o);
                if (!strcmp (ev_name (o), "command_rejected"))
                    die_rejected (o);
                printf ("n%d %s\n",
                        (int)cJSON_GetObjectItemCaseSensitive (d, "node_id")
                            ->valuedouble,
                        dstr (d, interrupt ? "interrupt_id" : "injection_id"));
                got++;
            }
            cJSON_Delete (o);
        }
        rc_nodes_release (&nodes);
        if (got < expected)
            log_msg_exit ("the router acknowledged %d of %d nodes", got,
                          expected);
        return 0;
    }
    {
        char sdir[PATH_MAX], state[32];
        swarm_dir (swarm, sdir, sizeof (sdir));
        if (!interrupt && swarm_has_ended (sdir, state, sizeof (state)))
            log_msg_exit ("swarm '%s' has ended (%s); nothing was sent",
                          swarm, state);
        if (!interrupt) {
            char why[160];
            if (swarm_unserved (sdir, why, sizeof (why)))
                log_msg_exit ("swarm '%s' has no live worker (%s); nothing "
                              "was sent", swarm, why);
        }
        count = swarm_node_count (sdir);
        if (count == 0)
            log_msg_exit ("swarm '%s' has no nodes", swarm);
        nodes_for (sdir, spec, count, &nodes);
        expected = nodes.all ? count : (int)nodes.count;
        for (int i = 0; i < expected; i++) {
            int k = nodes.all ? i : nodes.list[i];
            char id[128];
            cJSON *p = cJSON_CreateObject ();
            if (key && !interrupt)
                rc_key_injection_id (swarm, key, k, id, sizeof (id));
            else
                new_id (interrupt ? "int" : "inj", k, id, sizeof (id));
            json_add_str (p, "id", id);
            if (!interrupt) {
                json_add_str (p, "content", text);
                json_add_str (p, "mode", steer ? "steer" : "queue");
                if (retry)
                    json_add_bool (p, "retry_on_loss", true);
            }
            if (direct_append (sdir, k, interrupt ? "interrupt" : "user", p)
                == 0) {
                log_msg ("n%d %s: this idempotency key was used already; "
                         "nothing was sent again", k, id);
                dups++;
            }
            else
                printf ("n%d %s\n", k, id);
            cJSON_Delete (p);
        }
        rc_nodes_release (&nodes);
        if (dups > 0)
            return 1;
    }
    return 0;
}

int cmd_send (int argc, char **argv)
{
    return send_or_interrupt (argc, argv, false);
}

int cmd_interrupt (int argc, char **argv)
{
    return send_or_interrupt (argc, argv, true);
}
