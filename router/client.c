/* client.c - codeswarm-client: the human verbs of "codeswarm"
 *
 *   send SWARM NODES TEXT [--steer] [--key K]
 *   attach SWARM [--json] [--since N] [--turns N]
 *   approvals [SWARM] [--json]
 *   approve ID DECISION
 *   interrupt SWARM NODES
 *   rpc [--until EVENT] [--timeout SECS] JSON...   (scripts and tests)
 *
 * With a router listening on the per-user socket, every verb goes through
 * it.  Without one, the verbs act on the mailbox directly: inbox records
 * are appended under each stream's writer lock, and outboxes are followed
 * with a private translator.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/lineio.h"
#include "common/log.h"
#include "mailbox/mailbox.h"
#include "router/command.h"
#include "router/paths.h"
#include "router/translate.h"

static char home[PATH_MAX];
static volatile sig_atomic_t stop;      /* SIGINT/SIGTERM seen */
static int router_fd = -1;
static lineio_t *router_in;
static int req_counter;

/* ---- talking to a router ------------------------------------------------- */

static bool router_open (void)
{
    char path[PATH_MAX];
    if (getenv ("CODESWARM_NO_ROUTER"))
        return false;
    if (router_socket_path (home, path, sizeof (path), false, NULL) < 0)
        return false;
    if ((router_fd = router_connect (path, NULL)) < 0)
        return false;
    if (!(router_in = lineio_create (RC_MAX_LINE * 16)))
        log_msg_exit ("out of memory");
    return true;
}

/* Send a command; returns its request id (static buffer). */
static const char *router_send (const char *command, cJSON *payload)
{
    static char rid[32];
    cJSON *o = cJSON_CreateObject ();
    char *s;

    snprintf (rid, sizeof (rid), "c%d-%d", (int)getpid (), ++req_counter);
    json_add_str (o, "protocol", RC_PROTOCOL);
    json_add_str (o, "type", "command");
    json_add_str (o, "command", command);
    json_add_str (o, "request_id", rid);
    json_add_item (o, "payload", payload ? payload : cJSON_CreateObject ());
    if (!(s = cJSON_PrintUnformatted (o)))
        log_msg_exit ("out of memory");
    if (fd_write_all (router_fd, s, strlen (s)) < 0
        || fd_write_all (router_fd, "\n", 1) < 0)
        log_err_exit ("cannot write to the router");
    free (s);
    cJSON_Delete (o);
    return rid;
}

/* Next message from the router (cJSON_Delete), NULL at EOF or timeout. */
static cJSON *router_recv (int timeout_ms)
{
    const char *line;
    size_t len;
    bool overlong;
    double until = time_mono () + timeout_ms / 1000.0;

    for (;;) {
        struct pollfd pfd = { .fd = router_fd, .events = POLLIN };
        ssize_t n;
        int t;
        if (lineio_next (router_in, &line, &len, &overlong) == 1) {
            cJSON *o;
            if (overlong || !(o = json_parse (line, len, NULL)))
                continue;
            return o;
        }
        if (lineio_eof (router_in))
            return NULL;
        t = timeout_ms < 0 ? -1 : (int)((until - time_mono ()) * 1000);
        if (timeout_ms >= 0 && t <= 0)
            return NULL;
        if ((t = poll (&pfd, 1, t)) < 0) {
            if (errno == EINTR && !stop)
                continue;
            return NULL;
        }
        if (t == 0)
            continue;
        n = lineio_fill (router_in, router_fd);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return NULL;
    }
}

static const char *ev_name (const cJSON *o)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive (o, "event");
    return cJSON_IsString (e) ? e->valuestring : "";
}

static const cJSON *ev_data (const cJSON *o)
{
    return cJSON_GetObjectItemCaseSensitive (o, "data");
}

static const char *dstr (const cJSON *d, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (d, key);
    return cJSON_IsString (v) ? v->valuestring : NULL;
}

static bool is_reply_to (const cJSON *o, const char *rid)
{
    const char *r = dstr (ev_data (o), "request_id");
    return r && !strcmp (r, rid);
}

/* Wait for the reply named name (or command_rejected) to rid. */
static cJSON *router_wait (const char *rid, const char *name)
{
    cJSON *o;
    while ((o = router_recv (30000))) {
        if (is_reply_to (o, rid)
            && (!strcmp (ev_name (o), name)
                || !strcmp (ev_name (o), "command_rejected")))
            return o;
        cJSON_Delete (o);
    }
    log_msg_exit ("no reply from the router");
}

static void die_rejected (const cJSON *o)
{
    const cJSON *d = ev_data (o);
    log_msg_exit ("%s: %s", dstr (d, "code") ? dstr (d, "code") : "rejected",
                  dstr (d, "reason") ? dstr (d, "reason") : "");
}

/* ---- the mailbox, directly -------------------------------------------------- */

static int swarm_dir (const char *swarm, char *buf, size_t len)
{
    cs_error_t error;
    if (mb_swarm_dir (home, swarm, false, buf, len, &error) < 0)
        log_msg_exit ("%s", error.text);
    return 0;
}

/* Node count: swarm.json "nodes", else the highest outbox/inbox + 1. */
static int swarm_node_count (const char *sdir)
{
    char path[PATH_MAX + 32];
    int n = 0;
    FILE *f;

    snprintf (path, sizeof (path), "%s/swarm.json", sdir);
    if ((f = fopen (path, "r"))) {
        char buf[65536];
        size_t len = fread (buf, 1, sizeof (buf) - 1, f);
        cJSON *o = json_parse (buf, len, NULL);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, "nodes");
        if (cJSON_IsNumber (v) && v->valuedouble > 0
            && v->valuedouble < RT_MAX_NODES)
            n = (int)v->valuedouble;
        cJSON_Delete (o);
        fclose (f);
    }
    for (int b = 0; b < 2; b++) {
        DIR *d;
        struct dirent *de;
        snprintf (path, sizeof (path), "%s/%s", sdir, b ? "inbox" : "outbox");
        if (!(d = opendir (path)))
            continue;
        while ((de = readdir (d))) {
            char *end;
            long k = strtol (de->d_name, &end, 10);
            if (end != de->d_name && !strcmp (end, ".jsonl") && k >= 0
                && k < RT_MAX_NODES && k + 1 > n)
                n = (int)k + 1;
        }
        closedir (d);
    }
    return n;
}

static void new_id (const char *prefix, int node, char *buf, size_t len)
{
    snprintf (buf, len, "%s-%llx-%x-%d-n%d", prefix,
              (unsigned long long)(time_now () * 1000), (unsigned)getpid (),
              ++req_counter, node);
}

static uint64_t direct_append (const char *sdir, int node, const char *type,
                               cJSON *payload)
{
    char path[PATH_MAX];
    cs_error_t error;
    mb_writer_t *w = NULL;
    uint64_t seq;
    struct mb_options opt;

    mb_options_init (&opt);
    opt.fsync = MB_FSYNC_ALWAYS;
    for (int tries = 0; tries < 100; tries++) {
        if (mb_stream_path (sdir, "inbox", node, path, sizeof (path),
                            &error) < 0)
            log_msg_exit ("%s", error.text);
        if ((w = mb_writer_open (path, &opt, &error)) || errno != EBUSY)
            break;
        usleep (50000);         /* another writer: take turns */
    }
    if (!w)
        log_msg_exit ("%s", error.text);
    if (mb_writer_append (w, type, payload, &seq, &error) < 0)
        log_msg_exit ("%s", error.text);
    mb_writer_close (w);
    return seq;
}

/* ---- a private translator over a swarm's outboxes -------------------------- */

struct follow {
    const char *swarm;
    char sdir[PATH_MAX];
    rt_trans_t *t;
    mb_follower_t *f;
    bool followed[RT_MAX_NODES / 8 + 1];
    bool sfollowed;
    enum mb_start start;
    void (*on_event) (const char *name, cJSON *data, void *arg);
    void *arg;
    uint64_t seq;
};

static void follow_cb (mb_follower_t *f, mb_reader_t *r,
                       const struct mb_event *ev, void *arg)
{
    struct follow *fo = arg;
    const char *p = mb_reader_path (r);
    const char *base = strrchr (p, '/');
    cs_error_t error;

    if (ev->type != MB_EV_RECORD)
        return;
    base = base ? base + 1 : p;
    if (!strcmp (base, "swarm.jsonl"))
        (void)rt_trans_swarm_record (fo->t, ev->rec.json, time_mono (),
                                     &error);
    else
        (void)rt_trans_record (fo->t, atoi (base), ev->rec.json, time_mono (),
                               &error);
}

static void follow_emit (const char *name, cJSON *data, void *arg)
{
    struct follow *fo = arg;
    fo->seq++;
    fo->on_event (name, data, fo->arg);
    cJSON_Delete (data);
}

static void follow_scan (struct follow *fo)
{
    char path[PATH_MAX + 32];
    cs_error_t error;
    DIR *d;
    struct dirent *de;

    snprintf (path, sizeof (path), "%s/outbox", fo->sdir);
    if (!(d = opendir (path)))
        return;
    while ((de = readdir (d))) {
        char *end;
        long k = strtol (de->d_name, &end, 10);
        bool sw = !strcmp (de->d_name, "swarm.jsonl");
        char sp[PATH_MAX * 2];
        if (!sw && (end == de->d_name || strcmp (end, ".jsonl") || k < 0
                    || k >= RT_MAX_NODES))
            continue;
        if (sw ? fo->sfollowed : fo->followed[k])
            continue;
        snprintf (sp, sizeof (sp), "%s/%s", path, de->d_name);
        if (!mb_follower_add (fo->f, sp, fo->start, NULL, follow_cb, fo,
                              &error)) {
            log_msg ("%s", error.text);
            continue;
        }
        if (sw)
            fo->sfollowed = true;
        else
            fo->followed[k] = true;
    }
    closedir (d);
}

static struct follow *follow_open (const char *swarm, enum mb_start start,
                                   void (*cb) (const char *, cJSON *, void *),
                                   void *arg)
{
    struct follow *fo = calloc (1, sizeof (*fo));
    cs_error_t error;
    if (!fo)
        log_msg_exit ("out of memory");
    fo->swarm = swarm;
    swarm_dir (swarm, fo->sdir, sizeof (fo->sdir));
    fo->start = start;
    fo->on_event = cb;
    fo->arg = arg;
    if (!(fo->t = rt_trans_create (swarm, follow_emit, fo)))
        log_msg_exit ("out of memory");
    if (!(fo->f = mb_follower_create (NULL, &error)))
        log_msg_exit ("%s", error.text);
    follow_scan (fo);
    return fo;
}

static void follow_close (struct follow *fo)
{
    if (fo) {
        mb_follower_destroy (fo->f);
        rt_trans_destroy (fo->t);
        free (fo);
    }
}

/* Read everything there is now. */
static void follow_drain (struct follow *fo)
{
    cs_error_t error;
    int n;
    do {
        if ((n = mb_follower_process (fo->f, &error)) < 0)
            log_msg_exit ("%s", error.text);
    } while (n > 0);
}

/* ---- send / interrupt --------------------------------------------------- */

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

static int cmd_send_or_interrupt (int argc, char **argv, bool interrupt)
{
    static const struct option longopts[] = {
        { "steer", no_argument, NULL, 's' },
        { "key", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *key = NULL;
    bool steer = false;
    struct rc_nodes nodes;
    const char *swarm, *spec, *text = NULL;
    int c, count, expected;

    optind = 1;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 's': steer = true; break;
        case 'k': key = optarg; break;
        case 'h':
            printf (interrupt ? "usage: codeswarm interrupt SWARM NODES\n"
                    : "usage: codeswarm send SWARM NODES TEXT [--steer] "
                      "[--key KEY]\n");
            return 0;
        default: return 1;
        }
    }
    if (argc - optind != (interrupt ? 2 : 3)) {
        fprintf (stderr, interrupt ? "usage: codeswarm interrupt SWARM NODES\n"
                 : "usage: codeswarm send SWARM NODES TEXT [--steer] "
                   "[--key KEY]\n");
        return 1;
    }
    swarm = argv[optind];
    spec = argv[optind + 1];
    if (!interrupt) {
        text = argv[optind + 2];
        if (!*text)
            log_msg_exit ("nothing to send");
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
        char sdir[PATH_MAX];
        swarm_dir (swarm, sdir, sizeof (sdir));
        count = swarm_node_count (sdir);
        if (count == 0)
            log_msg_exit ("swarm '%s' has no nodes", swarm);
        nodes_for (sdir, spec, count, &nodes);
        expected = nodes.all ? count : (int)nodes.count;
        for (int i = 0; i < expected; i++) {
            int k = nodes.all ? i : nodes.list[i];
            char id[128];
            cJSON *p = cJSON_CreateObject ();
            new_id (interrupt ? "int" : "inj", k, id, sizeof (id));
            json_add_str (p, "id", id);
            if (!interrupt) {
                json_add_str (p, "content", text);
                json_add_str (p, "mode", steer ? "steer" : "queue");
            }
            direct_append (sdir, k, interrupt ? "interrupt" : "user", p);
            cJSON_Delete (p);
            printf ("n%d %s\n", k, id);
        }
        rc_nodes_release (&nodes);
    }
    return 0;
}

/* ---- attach ----------------------------------------------------------- */

struct view {
    const char *swarm;
    bool json;
    bool colour;
    int open_node;              /* node whose delta line is open, -1 none */
    int turns;                  /* exit after this many turn_complete (0: never) */
    int turns_seen;
    char *open_item;
};

static void view_prefix (struct view *v, int node, FILE *f)
{
    if (node < 0) {
        fprintf (f, v->colour ? "\033[1m[swarm]\033[0m " : "[swarm] ");
        return;
    }
    if (v->colour)
        fprintf (f, "\033[%dm[n%d]\033[0m ", 31 + node % 6, node);
    else
        fprintf (f, "[n%d] ", node);
}

static void view_close_line (struct view *v)
{
    if (v->open_node >= 0) {
        fputc ('\n', stdout);
        v->open_node = -1;
    }
}

/* Print text with every line prefixed. */
static void view_lines (struct view *v, int node, const char *lead,
                        const char *text)
{
    const char *p = text;
    view_close_line (v);
    do {
        const char *nl = strchr (p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen (p);
        if (!nl && len == 0 && p != text)
            break;
        view_prefix (v, node, stdout);
        printf ("%s%.*s\n", lead, (int)len, p);
        p = nl ? nl + 1 : p + len;
    } while (*p);
}

static void view_event (struct view *v, const char *name, const cJSON *d,
                        const char *raw)
{
    const cJSON *nv = cJSON_GetObjectItemCaseSensitive (d, "node_id");
    const char *sw = dstr (d, "swarm_id");
    int node = cJSON_IsNumber (nv) ? (int)nv->valuedouble : -1;
    char buf[512];

    if (v->swarm && (!sw || strcmp (sw, v->swarm)))
        return;
    if (!strcmp (name, "turn_complete"))
        v->turns_seen++;
    if (v->json) {
        if (raw)
            fputs (raw, stdout);
        else {
            char *s = cJSON_PrintUnformatted (d);
            printf ("{\"event\":\"%s\",\"data\":%s}\n", name, s ? s : "null");
            free (s);
        }
        fflush (stdout);
        return;
    }
    if (!strcmp (name, "assistant_delta")) {
        const char *delta = dstr (d, "delta");
        const char *item = dstr (d, "item_id");
        if (!delta)
            return;
        if (v->open_node != node) {
            view_close_line (v);
            view_prefix (v, node, stdout);
            v->open_node = node;
        }
        free (v->open_item);
        v->open_item = item ? strdup (item) : NULL;
        for (const char *p = delta; *p; p++) {
            fputc (*p, stdout);
            if (*p == '\n' && p[1])
                view_prefix (v, node, stdout);
        }
        if (delta[0] && delta[strlen (delta) - 1] == '\n')
            v->open_node = -1, free (v->open_item), v->open_item = NULL;
        fflush (stdout);
        return;
    }
    if (!strcmp (name, "assistant")) {
        const char *item = dstr (d, "item_id");
        if (v->open_node == node && v->open_item && item
            && !strcmp (item, v->open_item)) {
            view_close_line (v);       /* the deltas showed it already */
        }
        else
            view_lines (v, node, "", dstr (d, "text") ? dstr (d, "text") : "");
        fflush (stdout);
        return;
    }
    view_close_line (v);
    if (!strcmp (name, "turn_started"))
        snprintf (buf, sizeof (buf), "-- turn started%s%s",
                  dstr (d, "injection_id") ? " for " : "",
                  dstr (d, "injection_id") ? dstr (d, "injection_id") : "");
    else if (!strcmp (name, "turn_complete")) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive (d, "error");
        snprintf (buf, sizeof (buf), "-- turn %s%s%s",
                  dstr (d, "status") ? dstr (d, "status") : "?",
                  cJSON_IsObject (e) ? ": " : "",
                  cJSON_IsObject (e) && dstr (e, "message")
                      ? dstr (e, "message") : "");
    }
    else if (!strcmp (name, "usage")) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive (d, "total_tokens");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive (d,
                                                           "last_total_tokens");
        snprintf (buf, sizeof (buf), "-- tokens: %.0f total, %.0f last",
                  cJSON_IsNumber (t) ? t->valuedouble : 0,
                  cJSON_IsNumber (l) ? l->valuedouble : 0);
    }
    else if (!strcmp (name, "command_started"))
        snprintf (buf, sizeof (buf), "$ %s",
                  dstr (d, "command") ? dstr (d, "command") : "?");
    else if (!strcmp (name, "command_completed")) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive (d, "exit_code");
        if (dstr (d, "output") && *dstr (d, "output"))
            view_lines (v, node, "| ", dstr (d, "output"));
        snprintf (buf, sizeof (buf), "-- %s, exit %.0f",
                  dstr (d, "status") ? dstr (d, "status") : "done",
                  cJSON_IsNumber (x) ? x->valuedouble : -1);
    }
    else if (!strcmp (name, "exec_approval_required"))
        snprintf (buf, sizeof (buf), "!! approval %s: %s (%s) -- codeswarm "
                  "approve %s accept|decline", dstr (d, "approval_id"),
                  dstr (d, "command") ? dstr (d, "command") : "?",
                  dstr (d, "reason") ? dstr (d, "reason") : "",
                  dstr (d, "approval_id"));
    else if (!strcmp (name, "agent_error"))
        snprintf (buf, sizeof (buf), "!! error: %s",
                  dstr (d, "message") ? dstr (d, "message")
                                      : dstr (d, "code") ? dstr (d, "code")
                                                         : "?");
    else if (!strcmp (name, "reasoning"))
        snprintf (buf, sizeof (buf), "(thinking) %.400s",
                  dstr (d, "text") ? dstr (d, "text") : "");
    else if (!strcmp (name, "thread_status") || !strcmp (name, "reasoning_delta")
             || !strcmp (name, "inject_delivered")
             || !strcmp (name, "inject_queued"))
        return;
    else
        snprintf (buf, sizeof (buf), "-- %s", name);
    view_lines (v, node, "", buf);
    fflush (stdout);
}

static void direct_view_cb (const char *name, cJSON *data, void *arg)
{
    view_event (arg, name, data, NULL);
}

static void on_signal (int sig)
{
    stop = 1;
}

static int cmd_attach (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "since", required_argument, NULL, 's' },
        { "turns", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct view v = { .open_node = -1 };
    const char *since = NULL;
    int c;

    optind = 1;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': v.json = true; break;
        case 's': since = optarg; break;
        case 't': v.turns = atoi (optarg); break;
        case 'h':
            printf ("usage: codeswarm attach SWARM [--json] [--since N] "
                    "[--turns N]\n");
            return 0;
        default: return 1;
        }
    }
    if (argc - optind != 1) {
        fprintf (stderr, "usage: codeswarm attach SWARM [--json] [--since N] "
                 "[--turns N]\n");
        return 1;
    }
    v.swarm = argv[optind];
    v.colour = !v.json && isatty (STDOUT_FILENO) && !getenv ("NO_COLOR");
    signal (SIGINT, on_signal);
    signal (SIGTERM, on_signal);
    if (router_open ()) {
        cJSON *p = cJSON_CreateObject (), *o = NULL;
        char *end;
        if (since) {
            unsigned long long n = strtoull (since, &end, 10);
            if (*end || end == since)
                log_msg_exit ("--since: '%s' is not a number", since);
            json_add_u64 (p, "since", n);
        }
        router_send ("subscribe", p);
        while (!stop && (o = router_recv (-1))) {
            const char *name = ev_name (o);
            if (cJSON_GetObjectItemCaseSensitive (o, "seq")) {
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
            }
            else if (!strcmp (name, "command_rejected"))
                die_rejected (o);
            cJSON_Delete (o);
            if (v.turns && v.turns_seen >= v.turns)
                break;
        }
        view_close_line (&v);
        free (v.open_item);
        if (!stop && !o && !(v.turns && v.turns_seen >= v.turns)) {
            log_msg ("the router went away");
            return 1;
        }
        return 0;
    }
    {
        struct follow *fo = follow_open (v.swarm,
                                         since ? MB_START_BEGIN : MB_START_END,
                                         direct_view_cb, &v);
        double next_scan = time_mono () + 1;
        while (!stop && !(v.turns && v.turns_seen >= v.turns)) {
            cs_error_t error;
            if (mb_follower_run (fo->f, 200, &error) < 0)
                log_msg_exit ("%s", error.text);
            if (time_mono () >= next_scan) {
                follow_scan (fo);
                next_scan = time_mono () + 1;
            }
        }
        view_close_line (&v);
        free (v.open_item);
        follow_close (fo);
    }
    return 0;
}

/* ---- approvals ----------------------------------------------------------- */

static void null_cb (const char *name, cJSON *data, void *arg)
{
}

/* All pending approvals, from the router or by reading the outboxes. */
static cJSON *pending_approvals (const char *only_swarm)
{
    cJSON *all;
    if (router_fd >= 0 || router_open ()) {
        cJSON *p = cJSON_CreateObject (), *o;
        if (only_swarm)
            json_add_str (p, "swarm_id", only_swarm);
        o = router_wait (router_send ("approvals_list", p), "approvals_list");
        if (!strcmp (ev_name (o), "command_rejected"))
            die_rejected (o);
        all = cJSON_Duplicate (cJSON_GetObjectItemCaseSensitive (ev_data (o),
                                                                 "approvals"),
                               true);
        cJSON_Delete (o);
        return all ? all : cJSON_CreateArray ();
    }
    all = cJSON_CreateArray ();
    {
        char path[PATH_MAX + 16];
        DIR *d;
        struct dirent *de;
        snprintf (path, sizeof (path), "%s/swarms", home);
        if (!(d = opendir (path)))
            return all;
        while ((de = readdir (d))) {
            struct follow *fo;
            cJSON *a, *e;
            if (de->d_name[0] == '.'
                || (only_swarm && strcmp (only_swarm, de->d_name)))
                continue;
            fo = follow_open (de->d_name, MB_START_BEGIN, null_cb, NULL);
            follow_drain (fo);
            if ((a = rt_trans_approvals (fo->t))) {
                while ((e = a->child)) {
                    cJSON_DetachItemViaPointer (a, e);
                    cJSON_AddItemToArray (all, e);
                }
                cJSON_Delete (a);
            }
            follow_close (fo);
        }
        closedir (d);
    }
    return all;
}

static int cmd_approvals (int argc, char **argv)
{
    bool json = false;
    const char *swarm = NULL;
    cJSON *all;
    const cJSON *a;

    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv[i], "--json"))
            json = true;
        else if (!strcmp (argv[i], "-h") || !strcmp (argv[i], "--help")) {
            printf ("usage: codeswarm approvals [SWARM] [--json]\n");
            return 0;
        }
        else if (argv[i][0] != '-' && !swarm)
            swarm = argv[i];
        else {
            fprintf (stderr, "usage: codeswarm approvals [SWARM] [--json]\n");
            return 1;
        }
    }
    all = pending_approvals (swarm);
    if (json) {
        char *s = cJSON_PrintUnformatted (all);
        printf ("%s\n", s ? s : "[]");
        free (s);
    }
    else {
        if (cJSON_GetArraySize (all) == 0)
            printf ("no pending approvals\n");
        cJSON_ArrayForEach (a, all) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive (a, "node_id");
            printf ("%s  %s n%d  %s", dstr (a, "approval_id"),
                    dstr (a, "swarm_id") ? dstr (a, "swarm_id") : "?",
                    cJSON_IsNumber (n) ? (int)n->valuedouble : -1,
                    dstr (a, "command") ? dstr (a, "command") : "?");
            if (dstr (a, "reason"))
                printf ("  (%s)", dstr (a, "reason"));
            printf ("\n");
        }
    }
    cJSON_Delete (all);
    return 0;
}

static int cmd_approve (int argc, char **argv)
{
    const char *id, *decision;
    if (argc != 3 || argv[1][0] == '-') {
        if (argc == 2 && (!strcmp (argv[1], "-h") || !strcmp (argv[1], "--help"))) {
            printf ("usage: codeswarm approve ID accept|acceptForSession|"
                    "decline|cancel\n");
            return 0;
        }
        fprintf (stderr, "usage: codeswarm approve ID accept|acceptForSession|"
                 "decline|cancel\n");
        return 1;
    }
    id = argv[1];
    decision = argv[2];
    if (!rc_decision_valid (decision))
        log_msg_exit ("'%s' is not a decision (accept, acceptForSession, "
                      "decline, cancel)", decision);
    if (router_open ()) {
        cJSON *p = cJSON_CreateObject (), *o;
        json_add_str (p, "approval_id", id);
        json_add_str (p, "decision", decision);
        o = router_wait (router_send ("approve_execution", p), "approval_ack");
        if (!strcmp (ev_name (o), "command_rejected"))
            die_rejected (o);
        printf ("%s %s\n", id, decision);
        cJSON_Delete (o);
        return 0;
    }
    {
        cJSON *all = pending_approvals (NULL), *p;
        const cJSON *a, *found = NULL;
        char sdir[PATH_MAX], rid[128];
        int node;
        cJSON_ArrayForEach (a, all) {
            if (dstr (a, "approval_id") && !strcmp (dstr (a, "approval_id"), id))
                found = a;
        }
        if (!found)
            log_msg_exit ("unknown_approval: no pending approval \"%s\"", id);
        node = (int)cJSON_GetObjectItemCaseSensitive (found, "node_id")
                   ->valuedouble;
        swarm_dir (dstr (found, "swarm_id"), sdir, sizeof (sdir));
        new_id ("apr", node, rid, sizeof (rid));
        p = cJSON_CreateObject ();
        json_add_str (p, "id", rid);
        json_add_str (p, "approval_id", id);
        json_add_str (p, "decision", decision);
        direct_append (sdir, node, "approval", p);
        cJSON_Delete (p);
        cJSON_Delete (all);
        printf ("%s %s\n", id, decision);
    }
    return 0;
}

/* ---- rpc: raw commands, for scripts --------------------------------------- */

static int cmd_rpc (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "until", required_argument, NULL, 'u' },
        { "timeout", required_argument, NULL, 't' },
        { "count", required_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    const char *until = NULL;
    double timeout = 5;
    int c, count = 1, seen = 0;
    cJSON *o;

    optind = 1;
    while ((c = getopt_long (argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'u': until = optarg; break;
        case 't':
            if (parse_duration (optarg, &timeout) < 0)
                log_msg_exit ("--timeout: bad duration '%s'", optarg);
            break;
        case 'n': count = atoi (optarg); break;
        default: return 1;
        }
    }
    if (!router_open ())
        log_msg_exit ("no router is listening");
    for (int i = optind; i < argc; i++) {
        if (fd_write_all (router_fd, argv[i], strlen (argv[i])) < 0
            || fd_write_all (router_fd, "\n", 1) < 0)
            log_err_exit ("write");
    }
    while ((o = router_recv ((int)(timeout * 1000)))) {
        char *s = cJSON_PrintUnformatted (o);
        printf ("%s\n", s);
        fflush (stdout);
        free (s);
        if (until && !strcmp (ev_name (o), until) && ++seen >= count) {
            cJSON_Delete (o);
            return 0;
        }
        cJSON_Delete (o);
    }
    return until ? 1 : 0;
}

/* ---- main ----------------------------------------------------------------- */

static void usage (FILE *f)
{
    fprintf (f,
             "usage: codeswarm-client VERB ARGS (normally run as "
             "\"codeswarm VERB\")\n"
             "  send SWARM NODES TEXT [--steer] [--key KEY]\n"
             "  attach SWARM [--json] [--since N] [--turns N]\n"
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
        return argc < 2 ? 1 : 0;
    }
    verb = argv[1];
    snprintf (prog, sizeof (prog), "codeswarm %s", verb);
    log_init (prog);
    if (mb_home (home, sizeof (home), false, &error) < 0)
        log_msg_exit ("%s", error.text);
    argc--;
    argv++;
    if (!strcmp (verb, "send"))
        return cmd_send_or_interrupt (argc, argv, false);
    if (!strcmp (verb, "interrupt"))
        return cmd_send_or_interrupt (argc, argv, true);
    if (!strcmp (verb, "attach"))
        return cmd_attach (argc, argv);
    if (!strcmp (verb, "approvals"))
        return cmd_approvals (argc, argv);
    if (!strcmp (verb, "approve"))
        return cmd_approve (argc, argv);
    if (!strcmp (verb, "rpc"))
        return cmd_rpc (argc, argv);
    log_msg ("unknown verb '%s'", verb);
    usage (stderr);
    return 1;
}
