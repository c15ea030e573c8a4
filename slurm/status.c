/* status.c - "codeswarm status [SWARM] [--json]": the swarms of this user
 * from swarm.json, Slurm and the node outboxes.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/configfile.h"
#include "common/json.h"
#include "slurm/prom.h"
#include "slurm/sacct.h"
#include "common/log.h"
#include "slurm/job.h"
#include "slurm/launch.h"
#include "slurm/pending.h"
#include "slurm/nodes.h"
#include "slurm/swarm.h"
#include "slurm/walltime.h"

static const char *phase_name (enum node_phase p)
{
    switch (p) {
    case NODE_STARTED:
        return "starting";
    case NODE_READY:
        return "ready";
    case NODE_STOPPED:
        return "stopped";
    default:
        return "waiting";
    }
}

static void lower (char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* The last record of outbox/swarm.jsonl (what launch, the batch script
 * and cancel recorded) in words; false when there is none.  Once the swarm
 * ended, that is its last word (*ended): the records of its shutdown that
 * follow are not shown.
 */
static bool swarm_last_event (const char *dir, char *what, size_t len,
                              double *ts, bool *ended)
{
    char path[LAUNCH_PATH_MAX];
    struct mb_options opt;
    struct mb_event ev;
    mb_reader_t *r;
    bool found = false;

    mb_options_init (&opt);
    pathf (path, sizeof (path), "%s/outbox/%s.jsonl", dir, SWARM_EVENTS);
    if (access (path, F_OK) < 0 ||
        !(r = mb_reader_open (path, MB_START_BEGIN, NULL, &opt, NULL)))
        return false;
    while (mb_reader_next (r, &ev, NULL) > 0) {
        const cJSON *j;
        const char *job, *reason;
        if (ev.type != MB_EV_RECORD)
            continue;
        if (*ended)
            continue;
        j = cJSON_GetObjectItemCaseSensitive (ev.rec.json, "job_id");
        job = cJSON_IsString (j) ? j->valuestring : NULL;
        j = cJSON_GetObjectItemCaseSensitive (ev.rec.json, "reason");
        reason = cJSON_IsString (j) ? j->valuestring : NULL;
        if (!strcmp (ev.rec.type, "swarm_launched"))
            snprintf (what, len, "launched");
        else if (!strncmp (ev.rec.type, "job_", 4) && job)
            snprintf (what, len, "job %s %s", job, ev.rec.type + 4);
        else if (!strncmp (ev.rec.type, "job_", 4))
            snprintf (what, len, "workers %s", ev.rec.type + 4);
        else if (!strcmp (ev.rec.type, "swarm_ended")) {
            snprintf (what, len, "ended: %s", reason ? reason : "?");
            *ended = true;
        } else {
            snprintf (what, len, "%s", ev.rec.type);
            for (char *p = what; *p; p++)
                if (*p == '_')
                    *p = ' ';
        }
        *ts = ev.rec.ts;
        found = true;
    }
    mb_reader_close (r);
    return found;
}

/* "5s", "3m", "2h", "4d" */
static void span_str (double a, char *buf, size_t len)
{
    if (a < 0)
        a = 0;
    if (a < 120)
        snprintf (buf, len, "%.0fs", a);
    else if (a < 7200)
        snprintf (buf, len, "%.0fm", a / 60);
    else if (a < 2 * 86400)
        snprintf (buf, len, "%.0fh", a / 3600);
    else
        snprintf (buf, len, "%.0fd", a / 86400);
}

/* The state column: the swarm's state, then its lost nodes with how long
 * each has been silent: "running, n1 lost (silent 50s)".
 */
static void state_cell (const cJSON *s, char *buf, size_t len)
{
    const cJSON *n, *arr = cJSON_GetObjectItemCaseSensitive (s, "node_states");
    size_t off;

    snprintf (buf, len, "%s",
              swarm_str (s, "state") ? swarm_str (s, "state") : "?");
    off = strlen (buf);
    cJSON_ArrayForEach (n, arr)
    {
        const cJSON *sf = cJSON_GetObjectItemCaseSensitive (n, "silent_for");
        const char *ph = swarm_str (n, "phase");
        char span[16];
        if (!ph || strcmp (ph, "lost") || !cJSON_IsNumber (sf) || off >= len)
            continue;
        span_str (sf->valuedouble, span, sizeof (span));
        off += (size_t)snprintf (buf + off, len - off,
                                 ", n%d lost (silent %s)",
                                 swarm_int (n, "node", 0), span);
    }
}

/* "5s ago", "3m ago", "2h ago", "4d ago" */
static void age_str (double ts, char *buf, size_t len)
{
    char span[16];

    span_str (time_now () - ts, span, sizeof (span));
    snprintf (buf, len, "%s ago", span);
}

/* The router's node-lost threshold for a swarm: router.node_lost_after of
 * the configuration it was launched with (config, may be NULL: the usual
 * search), as the router reads it.
 */
static double swarm_lost_after (const char *id, const char *config)
{
    struct cs_config cfg;
    cs_error_t e;
    double v;

    if (config_load (&cfg, config, &e) < 0) {
        log_msg ("swarm %s: %s (node loss judged after 45s)", id, e.text);
        return 45;
    }
    v = cfg.node_lost_after > 0 ? cfg.node_lost_after : 45;
    config_release (&cfg);
    return v;
}

/* A node that has started and not stopped, silent for more than lost_after
 * seconds (the router's node_lost): the seconds of silence, else -1.
 */
static double node_silence (const struct node_state *n, double lost_after,
                            double now)
{
    if ((n->phase != NODE_STARTED && n->phase != NODE_READY)
        || n->last_record <= 0 || lost_after <= 0
        || now - n->last_record <= lost_after)
        return -1;
    return now - n->last_record;
}

/* The nodes of a swarm into out: "node_states", "ready", "lost", "turns",
 * "tokens", and "last_event" / "last_event_ts" (the newest of the nodes'
 * and the swarm's own, dir's outbox/swarm.jsonl).  ns is read up to now.
 * While the swarm is live, a node silent for more than lost_after seconds
 * is "lost" (with "silent_for" and "lost_since").
 */
static void add_nodes (cJSON *out, const struct nodes *ns, const char *dir,
                       double lost_after, bool live)
{
    cJSON *arr = cJSON_CreateArray ();
    uint64_t turns = 0, tokens = 0, ready = 0, lost = 0;
    char last[128] = "", what[96];
    double last_ts = 0, ts, now = time_now ();
    bool ended = false;

    for (int k = 0; arr && k < ns->count; k++) {
        const struct node_state *n = &ns->node[k];
        cJSON *o = cJSON_CreateObject ();
        double silent = live ? node_silence (n, lost_after, now) : -1;
        if (!o)
            break;
        json_add_u64 (o, "node", (uint64_t)k);
        json_add_str (o, "phase", silent >= 0 ? "lost"
                                  : n->degraded && n->phase != NODE_STOPPED
                                  ? "degraded" : phase_name (n->phase));
        if (silent >= 0) {
            json_add_double (o, "silent_for", silent);
            json_add_double (o, "lost_since", n->last_record + lost_after);
            lost++;
        } else if (n->phase == NODE_READY && !n->degraded)
            ready++;
        if (n->last_record > 0)
            json_add_double (o, "last_heard", n->last_record);
        json_add_str (o, "host", n->host);
        json_add_str (o, "thread_id", n->thread_id);
        json_add_u64 (o, "turns", n->turns);
        json_add_u64 (o, "tokens", n->tokens);
        json_add_bool (o, "turn_active", n->turn_active);
        if (n->turn_active)
            json_add_double (o, "turn_started", n->turn_started);
        json_add_u64 (o, "approvals", (uint64_t)n->approvals);
        nodes_metrics_json (o, n, dir, k);
        json_add_str (o, "answer", n->answer);
        if (n->last_event[0]) {
            json_add_str (o, "last_event", n->last_event);
            json_add_double (o, "last_event_ts", n->last_event_ts);
            if (n->last_event_ts >= last_ts) {
                snprintf (last, sizeof (last), "n%d %s", k, n->last_event);
                last_ts = n->last_event_ts;
            }
        }
        cJSON_AddItemToArray (arr, o);
        turns += n->turns;
        tokens += n->tokens;
    }
    if (swarm_last_event (dir, what, sizeof (what), &ts, &ended) &&
        (ts >= last_ts || ended)) {
        snprintf (last, sizeof (last), "%s", what);
        last_ts = ts;
    }
    if (last[0]) {
        json_add_str (out, "last_event", last);
        json_add_double (out, "last_event_ts", last_ts);
    } else
        cJSON_AddNullToObject (out, "last_event");
    json_add_item (out, "node_states", arr ? arr : cJSON_CreateArray ());
    json_add_u64 (out, "ready", ready);
    json_add_u64 (out, "lost", lost);
    json_add_u64 (out, "turns", turns);
    json_add_u64 (out, "tokens", tokens);
}

/* A swarm without swarm.json: its workers were started by the user's own
 * batch script ("srun codeswarm-worker --swarm ID").  Everything comes
 * from the mailbox: the nodes from outbox/K.jsonl, the jobs from the
 * worker_started records, the state from Slurm for the newest of them.
 */
static cJSON *mailbox_swarm_status (const char *id, const char *dir,
                                    bool *qerr)
{
    struct nodes ns = {0};
    cJSON *out = NULL, *jobs;
    cs_error_t e;
    char shown[96];
    const char *swarm_state = "running";
    double left = -1;
    int count;

    if (swarm_half_made (dir)) {
        /* a launch that failed before it wrote swarm.json */
        if ((out = cJSON_CreateObject ())) {
            json_add_str (out, "id", id);
            json_add_str (out, "backend", "none");
            json_add_u64 (out, "nodes", 0);
            json_add_item (out, "jobs", cJSON_CreateArray ());
            cJSON_AddNullToObject (out, "job_id");
            json_add_str (out, "state", "failed: launch did not finish");
            json_add_str (out, "swarm_state", "failed");
            cJSON_AddNullToObject (out, "last_event");
            json_add_item (out, "node_states", cJSON_CreateArray ());
            json_add_u64 (out, "ready", 0);
            json_add_u64 (out, "turns", 0);
            json_add_u64 (out, "tokens", 0);
            cJSON_AddNullToObject (out, "time_left");
        }
        return out;
    }
    if ((count = nodes_outbox_count (dir, &e)) < 0) {
        log_msg ("swarm %s: no swarm.json, and %s", id, e.text);
        return NULL;
    }
    if (nodes_open (&ns, dir, count, &e) < 0 ||
        nodes_update (&ns, NULL, NULL, &e) < 0) {
        log_msg ("swarm %s: %s", id, e.text);
        nodes_close (&ns);
        return NULL;
    }
    if (!(out = cJSON_CreateObject ()) || !(jobs = cJSON_CreateArray ())) {
        log_msg ("out of memory");
        cJSON_Delete (out);
        nodes_close (&ns);
        return NULL;
    }
    json_add_str (out, "id", id);
    json_add_str (out, "backend", "user");
    json_add_u64 (out, "nodes", (uint64_t)count);
    for (int i = 0; i < ns.njobs; i++)
        cJSON_AddItemToArray (jobs, cJSON_CreateString (ns.jobs[i]));
    json_add_item (out, "jobs", jobs);
    if (ns.newest_job[0])
        json_add_str (out, "job_id", ns.newest_job);
    else
        cJSON_AddNullToObject (out, "job_id");

    if (ns.newest_job[0]) {
        struct job_status ji;
        if (job_query (ns.newest_job, &ji, &e) < 0) {
            log_msg ("swarm %s: %s", id, e.text);
            *qerr = true;
            snprintf (shown, sizeof (shown), "unknown");
        } else if (!ji.found) {
            snprintf (shown, sizeof (shown), "job %s unknown to Slurm",
                      ns.newest_job);
            swarm_state = "ended";
        } else {
            json_add_str (out, "job_state", ji.state);
            if (!strcmp (ji.state, "PENDING"))
                pending_words (ji.reason, shown, sizeof (shown));
            else if (!strcmp (ji.state, "RUNNING")) {
                snprintf (shown, sizeof (shown), "running");
                if (ji.end_time > 0)
                    left = ji.end_time - time_now ();
                if (left < 0)
                    left = 0;
            } else {
                snprintf (shown, sizeof (shown), "job %s", ji.state);
                lower (shown + 4);
                if (job_state_final (ji.state))
                    swarm_state = "ended";
            }
        }
    } else {
        /* workers outside Slurm: only their records tell */
        bool alive = false;
        for (int k = 0; k < ns.count; k++)
            if (ns.node[k].phase == NODE_STARTED ||
                ns.node[k].phase == NODE_READY)
                alive = true;
        swarm_state = alive ? "running" : "ended";
        snprintf (shown, sizeof (shown), "%s", alive ? "running" : "stopped");
    }
    json_add_str (out, "state", shown);
    json_add_str (out, "swarm_state", swarm_state);
    add_nodes (out, &ns, dir, swarm_lost_after (id, NULL),
               !strcmp (swarm_state, "running"));
    if (left >= 0)
        json_add_double (out, "time_left", left);
    else
        cJSON_AddNullToObject (out, "time_left");
    nodes_close (&ns);
    return out;
}

/* One swarm as a JSON object (cJSON_Delete), or NULL (logged). *qerr is
 * set when Slurm could not be asked.
 */
/* --json and --prometheus join the Slurm accounting (sacct.h) */
static bool status_accounting;

static cJSON *swarm_status (const char *home, const char *id, bool *qerr)
{
    char dir[LAUNCH_PATH_MAX];
    cJSON *sw = NULL, *out = NULL, *jobs;
    struct nodes ns = {0};
    cs_error_t e;
    const char *state, *backend, *jobid;
    char shown[96];
    int count;
    double left = -1;

    if (launch_swarm_dir (home, id, dir, sizeof (dir), &e) < 0) {
        log_msg ("%s", e.text);
        return NULL;
    }
    if (!(sw = swarm_load (dir, &e))) {
        if (errno == ENOENT)
            return mailbox_swarm_status (id, dir, qerr);
        log_msg ("%s", e.text);
        return NULL;
    }
    state = swarm_str (sw, "state");
    backend = swarm_str (sw, "backend");
    jobid = swarm_str (sw, "job_id");
    count = swarm_int (sw, "nodes", 0);
    snprintf (shown, sizeof (shown), "%s", state ? state : "?");
    if (!(out = cJSON_CreateObject ()))
        goto nomem;
    json_add_str (out, "id", id);
    json_add_str (out, "backend", backend ? backend : "?");
    json_add_u64 (out, "nodes", (uint64_t)(count > 0 ? count : 0));
    jobs = cJSON_GetObjectItemCaseSensitive (sw, "jobs");
    json_add_item (out, "jobs",
                   jobs ? cJSON_Duplicate (jobs, 1) : cJSON_CreateArray ());
    if (jobid)
        json_add_str (out, "job_id", jobid);
    else
        cJSON_AddNullToObject (out, "job_id");

    if (backend && !strcmp (backend, "local")) {
        pid_t pid = (pid_t)swarm_int (sw, "supervisor_pid", 0);
        if (!swarm_state_final (state) && pid > 0 && kill (pid, 0) < 0 &&
            errno == ESRCH)
            snprintf (shown, sizeof (shown), "lost");
    } else if (jobid && !swarm_state_final (state)) {
        struct job_status ji;
        if (job_query (jobid, &ji, &e) < 0) {
            log_msg ("swarm %s: %s", id, e.text);
            *qerr = true;
            snprintf (shown, sizeof (shown), "unknown");
        } else if (!ji.found)
            snprintf (shown, sizeof (shown), "%s (job %s unknown to Slurm)",
                      state ? state : "?", jobid);
        else {
            json_add_str (out, "job_state", ji.state);
            if (!strcmp (ji.state, "PENDING")) {
                json_add_str (out, "reason", ji.reason);
                pending_words (ji.reason, shown, sizeof (shown));
            } else if (!strcmp (ji.state, "RUNNING")) {
                if (state && !strcmp (state, "migrating"))
                    snprintf (shown, sizeof (shown), "migrating");
                else
                    snprintf (shown, sizeof (shown), "running");
                if (ji.end_time > 0)
                    left = ji.end_time - time_now ();
                if (left < 0)
                    left = 0;
            } else {
                snprintf (shown, sizeof (shown), "job %s", ji.state);
                lower (shown + 4);
            }
        }
    }
    json_add_str (out, "state", shown);
    json_add_str (out, "swarm_state", state ? state : "?");

    if (count > 0 && nodes_open (&ns, dir, count, &e) == 0) {
        if (nodes_update (&ns, NULL, NULL, &e) < 0)
            log_msg ("swarm %s: %s", id, e.text);
    } else if (count > 0)
        log_msg ("swarm %s: %s", id, e.text);
    {
        const char *cpath = swarm_str (
            cJSON_GetObjectItemCaseSensitive (sw, "options"), "config");
        add_nodes (out, &ns, dir,
                   swarm_lost_after (id, cpath && access (cpath, R_OK) == 0
                                         ? cpath : NULL),
                   !swarm_state_final (state));
    }
    nodes_close (&ns);
    if (status_accounting) {
        const cJSON *tk = cJSON_GetObjectItemCaseSensitive (out, "tokens");
        const cJSON *tu = cJSON_GetObjectItemCaseSensitive (out, "turns");
        cJSON *acc = sacct_accounting (
            sw, cJSON_IsNumber (tk) ? (uint64_t)tk->valuedouble : 0,
            cJSON_IsNumber (tu) ? (uint64_t)tu->valuedouble : 0);
        if (acc)
            json_add_item (out, "accounting", acc);
    }
    if (left >= 0)
        json_add_double (out, "time_left", left);
    else
        cJSON_AddNullToObject (out, "time_left");
    cJSON_Delete (sw);
    return out;
nomem:
    log_msg ("out of memory");
    cJSON_Delete (out);
    cJSON_Delete (sw);
    return NULL;
}

static int cmp_str (const void *a, const void *b)
{
    return strcmp (*(char *const *)a, *(char *const *)b);
}

#define STATUS_COLS 8

/* The table, each column as wide as its widest cell: long ids and pending
 * reasons never push the columns out of line.
 */
static void print_table (const cJSON *arr)
{
    static const char *head[STATUS_COLS] = {
        "SWARM", "STATE", "JOBS", "READY", "TURNS", "TOKENS", "TIME LEFT",
        "LAST EVENT",
    };
    static const bool right[STATUS_COLS] = {false, false, false, false,
                                            true,  true,  true,  false};
    int rows = cJSON_GetArraySize (arr), r = 0;
    char *(*cell)[STATUS_COLS] = calloc ((size_t)rows + 1, sizeof (*cell));
    size_t width[STATUS_COLS] = {0};
    const cJSON *s;

    if (!cell) {
        log_msg ("out of memory");
        return;
    }
    for (int c = 0; c < STATUS_COLS; c++)
        cell[0][c] = strdup (head[c]);
    cJSON_ArrayForEach (s, arr)
    {
        const cJSON *jobs = cJSON_GetObjectItemCaseSensitive (s, "jobs");
        const cJSON *j, *tl = cJSON_GetObjectItemCaseSensitive (s, "time_left");
        const cJSON *lts = cJSON_GetObjectItemCaseSensitive (s, "last_event_ts");
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive (s, "tokens");
        char chain[256] = "", ready[32], left[32] = "-", age[32] = "";
        char last[192] = "-", num[2][32], state[256];
        size_t off = 0;
        r++;
        cJSON_ArrayForEach (j, jobs)
        {
            if (cJSON_IsString (j) && off < sizeof (chain))
                off +=
                    (size_t)snprintf (chain + off, sizeof (chain) - off, "%s%s",
                                      off ? "," : "", j->valuestring);
        }
        if (!strcmp (swarm_str (s, "backend") ? swarm_str (s, "backend") : "",
                     "local"))
            snprintf (chain, sizeof (chain), "local");
        if (!chain[0])
            snprintf (chain, sizeof (chain), "-");
        snprintf (ready, sizeof (ready), "%d/%d", swarm_int (s, "ready", 0),
                  swarm_int (s, "nodes", 0));
        if (cJSON_IsNumber (tl))
            walltime_format ((uint64_t)tl->valuedouble, left, sizeof (left));
        if (swarm_str (s, "last_event") && cJSON_IsNumber (lts)) {
            age_str (lts->valuedouble, age, sizeof (age));
            snprintf (last, sizeof (last), "%s (%s)",
                      swarm_str (s, "last_event"), age);
        }
        snprintf (num[0], sizeof (num[0]), "%d", swarm_int (s, "turns", 0));
        snprintf (num[1], sizeof (num[1]), "%.0f",
                  cJSON_IsNumber (tok) ? tok->valuedouble : 0);
        cell[r][0] = strdup (swarm_str (s, "id") ? swarm_str (s, "id") : "?");
        state_cell (s, state, sizeof (state));
        cell[r][1] = strdup (state);
        cell[r][2] = strdup (chain);
        cell[r][3] = strdup (ready);
        cell[r][4] = strdup (num[0]);
        cell[r][5] = strdup (num[1]);
        cell[r][6] = strdup (left);
        cell[r][7] = strdup (last);
    }
    for (r = 0; r <= rows; r++)
        for (int c = 0; c < STATUS_COLS; c++)
            if (cell[r][c] && strlen (cell[r][c]) > width[c])
                width[c] = strlen (cell[r][c]);
    for (r = 0; r <= rows; r++) {
        for (int c = 0; c < STATUS_COLS; c++) {
            const char *v = cell[r][c] ? cell[r][c] : "?";
            if (c == STATUS_COLS - 1)
                printf ("%s\n", v);
            else
                printf (right[c] ? "%*s  " : "%-*s  ", (int)width[c], v);
            free (cell[r][c]);
        }
    }
    free (cell);
}

static void status_usage (FILE *f)
{
    fprintf (f, "usage: codeswarm status [SWARM] [--json | --prometheus]\n"
                "\n"
                "Show swarms (all of them, or SWARM): id, state (with Slurm's "
                "reason while\n"
                "pending), the chain of job ids, nodes ready/total, turns "
                "completed, tokens\n"
                "used, the time left in the current job, and the last event "
                "(what the\n"
                "swarm or one of its nodes last did, and when).  A node "
                "silent for longer\n"
                "than router.node_lost_after is shown lost, with how long it "
                "has been silent.  --json prints "
                "one JSON array\n"
                "with per-node detail and the Slurm accounting of the job "
                "chain joined\n"
                "with the tokens (or why there is none); --prometheus the "
                "same as metrics\n"
                "in Prometheus' text format.  Exit status 1 when Slurm could "
                "not be asked.\n"
                "Swarms started by a batch script of your own (no swarm.json) "
                "are shown\n"
                "from their mailbox, with backend \"user\".\n");
}

int cmd_status (int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"prometheus", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char home[LAUNCH_PATH_MAX], path[LAUNCH_PATH_MAX];
    bool json = false, prom = false, qerr = false;
    cJSON *arr;
    char **ids = NULL;
    size_t nids = 0;
    int c, rc = 0;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long (argc, argv, "jh", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'P':
            prom = true;
            break;
        case 'h':
            status_usage (stdout);
            return 0;
        default:
            log_msg ("unknown option '%s'", argv[optind - 1]);
            return 2;
        }
    }
    if (argc - optind > 1) {
        status_usage (stderr);
        return 2;
    }
    if (json && prom) {
        log_msg ("--json and --prometheus exclude each other");
        return 2;
    }
    status_accounting = json || prom;
    if (launch_home (home, sizeof (home), false) < 0)
        return 1;
    if (!(arr = cJSON_CreateArray ()))
        return 1;
    if (optind < argc) {
        cJSON *s = swarm_status (home, argv[optind], &qerr);
        if (!s) {
            cJSON_Delete (arr);
            return 1;
        }
        cJSON_AddItemToArray (arr, s);
    } else {
        DIR *d;
        struct dirent *de;
        pathf (path, sizeof (path), "%s/swarms", home);
        if (!(d = opendir (path)) && errno != ENOENT) {
            cs_error_t e;
            launch_access_error (home, NULL, &e);
            log_msg ("%s", e.text);
            cJSON_Delete (arr);
            return 1;
        }
        if (d) {
            while ((de = readdir (d))) {
                char **n;
                if (de->d_name[0] == '.')
                    continue;
                if (!(n = realloc (ids, (nids + 1) * sizeof (*ids))))
                    break;
                ids = n;
                if (!(ids[nids] = strdup (de->d_name)))
                    break;
                nids++;
            }
            closedir (d);
        }
        qsort (ids, nids, sizeof (*ids), cmp_str);
        for (size_t i = 0; i < nids; i++) {
            cJSON *s;
            char obox[LAUNCH_PATH_MAX];
            pathf (path, sizeof (path), "%s/swarms/%s/swarm.json", home,
                     ids[i]);
            pathf (obox, sizeof (obox), "%s/swarms/%s/outbox", home, ids[i]);
            if (access (path, F_OK) == 0 || access (obox, F_OK) == 0
                || errno != ENOENT) {
                /* one that cannot be read is said (swarm_status logs) */
                if ((s = swarm_status (home, ids[i], &qerr)))
                    cJSON_AddItemToArray (arr, s);
                else
                    rc = 1;
            }
            free (ids[i]);
        }
        free (ids);
    }
    if (prom) {
        prom_write_swarms (stdout, arr, time_now ());
        if (fflush (stdout) != 0 || ferror (stdout))
            rc = 1;
    } else if (json) {
        char *t = cJSON_Print (arr);
        if (t)
            printf ("%s\n", t);
        free (t);
    } else if (cJSON_GetArraySize (arr) == 0 && rc == 0)
        printf ("no swarms in '%s/swarms'\n", home);
    else
        print_table (arr);
    if (qerr)
        rc = 1;
    cJSON_Delete (arr);
    return rc;
}
