/* attach.c - "codeswarm attach": a swarm's events, readable or as JSON
 *
 * From the router (subscribe, optionally --since a seq) or, without one,
 * by following the outboxes.  view.c turns events into lines prefixed
 * with their node; --json prints them as they are.  Without --since, each
 * node's latest turn is shown first (a replay from the start, of which
 * view.c keeps the latest turns), then what comes.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router/client/client.h"
#include "router/client/view.h"

/* A swarm that a local router does not know is an error, as it is without
 * a router (a router over ssh may not have seen it yet: it is waited for).
 * Asked on a connection of its own, closed after, so that the session's
 * connection starts with its subscription.
 */
static void attach_check_swarm (const char *swarm)
{
    cJSON *p = cJSON_CreateObject (), *h = cJSON_CreateObject (), *o;
    const char *code, *transport;
    bool local;

    cJSON_AddFalseToObject (h, "subscribe");
    o = router_wait (router_send ("hello", h), "hello");
    transport = dstr (ev_data (o), "transport");
    local = transport && !strcmp (transport, "local");
    cJSON_Delete (o);
    json_add_str (p, "swarm_id", swarm);
    o = router_wait (router_send ("swarm_status", p), "swarm_status");
    code = dstr (ev_data (o), "code");
    if (!strcmp (ev_name (o), "command_rejected") && local && code
        && (!strcmp (code, "unknown_swarm") || !strcmp (code, "unavailable")))
        die_rejected (o);
    cJSON_Delete (o);
    router_close ();
    if (!router_open ())
        log_msg_exit ("the router went away");
}

static void direct_view_cb (const char *name, cJSON *data, void *arg)
{
    view_event (arg, name, data, NULL);
}

static void on_signal (int sig)
{
    client_stop = 1;
}

static void attach_usage (FILE *f)
{
    fprintf (f,
             "usage: codeswarm attach SWARM [--json] [--since N] [--turns N] "
             "[--node K]\n"
             "                        [--give-up-after DURATION]\n"
             "\n"
             "Follow a swarm's events: first each node's latest turn, then "
             "what comes,\n"
             "a line per node prefixed [nK] (an answer's lines are never "
             "split by another\n"
             "node's output), until Ctrl-C.\n"
             "\n"
             "      --json       the router's events as JSON lines, as they "
             "are\n"
             "      --since N    start after router event N instead (0: "
             "everything from the\n"
             "                   beginning); with the seq of the last event "
             "seen, a client\n"
             "                   reconnects without a gap or a repeat\n"
             "      --turns N    exit after N turns have completed\n"
             "      --node K     only node K's events\n"
             "      --give-up-after DURATION\n"
             "                   when the router goes away, reconnect (and "
             "resume after the\n"
             "                   last event) for this long at most; default: "
             "for ever\n"
             "  -h, --help       this text\n"
             "\n"
             "Exit status: 0; 1 when it gave up waiting for the router, or "
             "when a router on\n"
             "this machine does not know SWARM (or nothing serves it); 2 on a "
             "usage error.\n");
}

static int parse_count (const char *opt, const char *s, int min)
{
    char *end;
    long n;

    errno = 0;
    n = strtol (s, &end, 10);
    if (errno || end == s || *end || n < min || n > 1000000) {
        log_msg ("%s: '%s' is not a number (%d or more)", opt, s, min);
        return -1;
    }
    return (int)n;
}

int cmd_attach (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "since", required_argument, NULL, 's' },
        { "turns", required_argument, NULL, 't' },
        { "node", required_argument, NULL, 'n' },
        { "give-up-after", required_argument, NULL, 'g' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct view v;
    const char *since = NULL;
    bool json = false;
    int c, turns = 0, only_node = -1;
    double give_up = 0;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 's': since = optarg; break;
        case 't':
            if ((turns = parse_count ("--turns", optarg, 1)) < 0)
                return 2;
            break;
        case 'n':
            if ((only_node = parse_count ("--node", optarg, 0)) < 0)
                return 2;
            break;
        case 'g':
            if (parse_duration (optarg, &give_up) < 0 || give_up <= 0) {
                log_msg ("--give-up-after: '%s' is not a duration (up to "
                         DURATION_MAX_TEXT ")", optarg);
                return 2;
            }
            break;
        case 'h':
            attach_usage (stdout);
            return 0;
        default:
            log_msg ("unknown option '%s' (see 'codeswarm attach --help')",
                     argv[optind - 1]);
            return 2;
        }
    }
    if (argc - optind != 1) {
        attach_usage (stderr);
        return 2;
    }
    if (since) {
        char *end;
        (void)strtoull (since, &end, 10);
        if (*end || end == since || *since == '-') {
            log_msg ("--since: '%s' is not a number", since);
            return 2;
        }
    }
    view_init (&v, argv[optind], only_node, json);
    signal (SIGINT, on_signal);
    signal (SIGTERM, on_signal);
    if (router_open ()) {
        cJSON *p = cJSON_CreateObject (), *o = NULL;
        char *end;
        uint64_t replay_until = 0, last_seq = 0;
        bool have_seq = false, first = true;
        double backoff = 0.1;
        if (since)
            json_add_u64 (p, "since", strtoull (since, &end, 10));
        else {
            /* everything, of which the view shows each node's latest turn */
            json_add_u64 (p, "since", 0);
            view_replay_start (&v);
        }
        attach_check_swarm (v.swarm);
        router_send ("subscribe", p);
        for (;;) {
            bool eof = false;
            while (!client_stop) {
                if (!(o = router_recv (-1))) {
                    eof = true;
                    break;
                }
                const char *name = ev_name (o);
                const cJSON *seq = cJSON_GetObjectItemCaseSensitive (o, "seq");
                if (!strcmp (name, "subscribed") && first) {
                    const cJSON *rs =
                        cJSON_GetObjectItemCaseSensitive (ev_data (o), "seq");
                    replay_until = cJSON_IsNumber (rs)
                                       ? (uint64_t)rs->valuedouble : 0;
                    if (replay_until == 0)
                        view_replay_done (&v);
                }
                if (seq) {
                    if (cJSON_IsNumber (seq)) {
                        last_seq = (uint64_t)seq->valuedouble;
                        have_seq = true;
                    }
                    if (v.json) {
                        char *s = cJSON_PrintUnformatted (o);
                        size_t len = strlen (s);
                        s = realloc (s, len + 2);
                        s[len] = '\n';
                        s[len + 1] = '\0';
                        view_event (&v, name, ev_data (o), s);
                        free (s);
                    }
                    else
                        view_event (&v, name, ev_data (o), NULL);
                    if (cJSON_IsNumber (seq) && replay_until &&
                        (uint64_t)seq->valuedouble >= replay_until)
                        view_replay_done (&v);
                }
                else if (!strcmp (name, "command_rejected"))
                    die_rejected (o);
                cJSON_Delete (o);
                if (turns && v.turns_seen >= turns)
                    break;
            }
            if (!eof || client_stop)
                break;
            /* the router went away: wait for one to come back (never the
             * mailbox in the middle of a session), resume after the last
             * event seen
             */
            router_close ();
            log_msg ("the router went away: reconnecting");
            double gone = time_mono ();
            while (!client_stop && !router_open ()) {
                if (give_up > 0 && time_mono () - gone >= give_up) {
                    view_close (&v);
                    log_msg ("no router for %.0f s: giving up", give_up);
                    return 1;
                }
                usleep ((useconds_t)(backoff * 1e6));
                backoff = backoff * 2 > 5 ? 5 : backoff * 2;
            }
            if (client_stop)
                break;
            backoff = 0.1;
            first = false;
            log_msg ("reconnected to the router");
            p = cJSON_CreateObject ();
            json_add_u64 (p, "since", have_seq ? last_seq
                          : since ? strtoull (since, &end, 10) : 0);
            router_send ("subscribe", p);
        }
        view_close (&v);
        return 0;
    }
    {
        struct follow *fo;
        double next_scan = time_mono () + 1;
        if (!since)
            view_replay_start (&v);
        fo = follow_open (v.swarm, MB_START_BEGIN, direct_view_cb, &v);
        follow_drain (fo);
        view_replay_done (&v);
        while (!client_stop && !(turns && v.turns_seen >= turns)) {
            cs_error_t error;
            if (mb_follower_run (fo->f, 200, &error) < 0)
                log_msg_exit ("%s", error.text);
            if (time_mono () >= next_scan) {
                follow_scan (fo);
                next_scan = time_mono () + 1;
            }
        }
        view_close (&v);
        follow_close (fo);
    }
    return 0;
}
