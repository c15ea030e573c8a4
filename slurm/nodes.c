/* nodes.c - node state from the node outboxes */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "slurm/nodes.h"

int nodes_open (struct nodes *ns, const char *swarmdir, int count,
                cs_error_t *errp)
{
    struct mb_options opt;

    mb_options_init (&opt);
    memset (ns, 0, sizeof (*ns));
    if (!(ns->node =
              calloc ((size_t)(count > 0 ? count : 1), sizeof (*ns->node))))
        return errprintf (errp, "out of memory");
    for (int k = 0; k < count; k++) {
        char path[4096];
        if (mb_stream_path (swarmdir, "outbox", k, path, sizeof (path), errp) <
            0)
            goto error;
        if (!(ns->node[k].reader =
                  mb_reader_open (path, MB_START_BEGIN, NULL, &opt, errp)))
            goto error;
        ns->count = k + 1;
    }
    ns->count = count;
    return 0;
error:
    nodes_close (ns);
    return -1;
}

void nodes_close (struct nodes *ns)
{
    int saved = errno;

    if (ns->node) {
        for (int k = 0; k < ns->count; k++)
            mb_reader_close (ns->node[k].reader);
        free (ns->node);
    }
    ns->node = NULL;
    ns->count = 0;
    errno = saved;
}

static const char *str_member (const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
    return cJSON_IsString (v) ? v->valuestring : NULL;
}

static void copy (char *dst, size_t len, const char *src)
{
    if (src)
        snprintf (dst, len, "%s", src);
}

static void node_event (struct node_state *n, double ts, const char *fmt,
                        ...) __attribute__ ((format (printf, 3, 4)));

static void node_event (struct node_state *n, double ts, const char *fmt, ...)
{
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (n->last_event, sizeof (n->last_event), fmt, ap);
    va_end (ap);
    n->last_event_ts = ts;
}

/* The answer's last line that has text: text appended to the line being
 * written (a delta), or a whole message (append false).
 */
static void node_answer (struct node_state *n, const char *text, bool append)
{
    if (!text)
        return;
    if (!append)
        n->line[0] = '\0';
    for (;;) {
        const char *nl = strchr (text, '\n');
        size_t seg = nl ? (size_t)(nl - text) : strlen (text);
        size_t len = strlen (n->line);
        if (seg && len < sizeof (n->line) - 1)
            snprintf (n->line + len, sizeof (n->line) - len, "%.*s", (int)seg,
                      text);
        if (n->line[0])
            memcpy (n->answer, n->line, sizeof (n->answer));
        if (!nl)
            break;
        n->line[0] = '\0';
        text = nl + 1;
    }
}

/* Returns true when the phase changed. */
static bool node_feed (struct node_state *n, const struct mb_record *rec)
{
    enum node_phase old = n->phase;
    const char *t = rec->type;

    n->records++;
    n->last_record = rec->ts;
    {
        const cJSON *is =
            cJSON_GetObjectItemCaseSensitive (rec->json, "inbox_seq");
        if (cJSON_IsNumber (is) && is->valuedouble > (double)n->inbox_acted)
            n->inbox_acted = (uint64_t)is->valuedouble;
    }
    if (!strcmp (t, "app_server_restarted"))
        n->restarts++;
    if (!strcmp (t, "worker_started")) {
        const cJSON *job =
            cJSON_GetObjectItemCaseSensitive (rec->json, "job_id");
        n->phase = NODE_STARTED;
        n->degraded = 0;
        n->turn_active = false;
        copy (n->host, sizeof (n->host), str_member (rec->json, "host"));
        n->job_id[0] = '\0';
        copy (n->job_id, sizeof (n->job_id),
              cJSON_IsString (job) ? job->valuestring : NULL);
        n->approvals = 0;
        node_event (n, rec->ts, "started on %s", n->host[0] ? n->host : "?");
    } else if (!strcmp (t, "ready")) {
        n->phase = NODE_READY;
        copy (n->thread_id, sizeof (n->thread_id),
              str_member (rec->json, "thread_id"));
        node_event (n, rec->ts, "ready");
    } else if (!strcmp (t, "worker_stopped")) {
        n->phase = NODE_STOPPED;
        n->turn_active = false;
        n->approvals = 0;
        node_event (n, rec->ts, "stopped");
    } else if (!strcmp (t, "node_degraded") || !strcmp (t, "node_recovered")) {
        const char *why = str_member (rec->json, "reason");
        unsigned bit = why && !strcmp (why, "inbox_unreadable") ? 2u : 1u;
        if (!strcmp (t, "node_degraded")) {
            n->degraded |= bit;
            node_event (n, rec->ts, "degraded: %s", why ? why : "?");
        } else {
            n->degraded &= ~bit;
            node_event (n, rec->ts, "recovered: %s", why ? why : "?");
        }
    } else if (!strcmp (t, "approval_requested")) {
        if (n->approvals < NODE_APPROVALS_MAX)
            copy (n->approval_id[n->approvals],
                  sizeof (n->approval_id[0]),
                  str_member (rec->json, "approval_id"));
        n->approvals++;
        node_event (n, rec->ts, "approval requested");
    } else if (!strcmp (t, "approval_resolved")) {
        const char *id = str_member (rec->json, "approval_id");
        int m = n->approvals < NODE_APPROVALS_MAX ? n->approvals
                                                  : NODE_APPROVALS_MAX;
        for (int i = 0; id && i < m; i++) {
            if (!strcmp (n->approval_id[i], id)) {
                memmove (n->approval_id[i], n->approval_id[i + 1],
                         (size_t)(m - i - 1) * sizeof (n->approval_id[0]));
                n->approval_id[m - 1][0] = '\0';
                break;
            }
        }
        if (n->approvals > 0)
            n->approvals--;
        n->approvals_decided++;
        node_event (n, rec->ts, "approval: %s",
                    str_member (rec->json, "decision")
                        ? str_member (rec->json, "decision")
                        : "answered");
    } else if (!strcmp (t, "turn_aborted")) {
        n->turn_active = false;
        node_event (n, rec->ts, "turn %llu aborted",
                    (unsigned long long)n->turns + 1);
    } else if (!strcmp (t, "inject_accepted") || !strcmp (t, "turn_queued")) {
        n->last_activity = rec->ts;
    } else if (!strcmp (t, "heartbeat")) {
        n->last_heartbeat = rec->ts;
        const cJSON *a =
            cJSON_GetObjectItemCaseSensitive (rec->json, "turn_active");
        n->turn_active = cJSON_IsTrue (a);
        if (n->turn_active)
            n->last_activity = rec->ts;
    } else if (!strcmp (t, "rpc")) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive (rec->json, "msg");
        const char *m = str_member (msg, "method");
        if (!m)
            return false;
        if (!strcmp (m, "turn/started")) {
            n->turns_started++;
            n->turn_active = true;
            n->last_activity = rec->ts;
            n->turn_started = rec->ts;
            n->answer[0] = n->line[0] = '\0';
            node_event (n, rec->ts, "turn %llu started",
                        (unsigned long long)n->turns + 1);
        } else if (!strcmp (m, "turn/completed")) {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive (msg, "params");
            const cJSON *tu = cJSON_GetObjectItemCaseSensitive (p, "turn");
            const char *st = str_member (tu, "status");
            if (st && !strcmp (st, "failed"))
                n->turns_failed++;
            n->turn_active = false;
            n->turns++;
            n->last_activity = rec->ts;
            node_event (n, rec->ts, "turn %llu completed",
                        (unsigned long long)n->turns);
        } else if (!strcmp (m, "item/agentMessage/delta")) {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive (msg, "params");
            node_answer (n, str_member (p, "delta"), true);
        } else if (!strcmp (m, "item/completed")) {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive (msg, "params");
            const cJSON *it = cJSON_GetObjectItemCaseSensitive (p, "item");
            const char *ty = str_member (it, "type");
            if (ty && !strcmp (ty, "agentMessage"))
                node_answer (n, str_member (it, "text"), false);
        } else if (!strcmp (m, "thread/tokenUsage/updated")) {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive (msg, "params");
            const cJSON *u = cJSON_GetObjectItemCaseSensitive (p, "tokenUsage");
            const cJSON *tot = cJSON_GetObjectItemCaseSensitive (u, "total");
            const cJSON *tt =
                cJSON_GetObjectItemCaseSensitive (tot, "totalTokens");
            const cJSON *ti =
                cJSON_GetObjectItemCaseSensitive (tot, "inputTokens");
            const cJSON *to =
                cJSON_GetObjectItemCaseSensitive (tot, "outputTokens");
            if (cJSON_IsNumber (tt) && tt->valuedouble >= 0)
                n->tokens = (uint64_t)tt->valuedouble;
            if (cJSON_IsNumber (ti) && ti->valuedouble >= 0)
                n->tokens_in = (uint64_t)ti->valuedouble;
            if (cJSON_IsNumber (to) && to->valuedouble >= 0)
                n->tokens_out = (uint64_t)to->valuedouble;
        }
    }
    return n->phase != old;
}

/* remember the job of a worker_started record */
static void nodes_note_job (struct nodes *ns, const struct node_state *n,
                            double ts)
{
    int i;

    if (!n->job_id[0])
        return;
    if (ts >= ns->newest_job_ts) {
        snprintf (ns->newest_job, sizeof (ns->newest_job), "%s", n->job_id);
        ns->newest_job_ts = ts;
    }
    for (i = 0; i < ns->njobs; i++) {
        if (!strcmp (ns->jobs[i], n->job_id)) {
            if (ts >= ns->jobs_ts[i])
                return;
            /* seen earlier on this node: move it to its place */
            memmove (&ns->jobs[i], &ns->jobs[i + 1],
                     (size_t)(ns->njobs - i - 1) * sizeof (ns->jobs[0]));
            memmove (&ns->jobs_ts[i], &ns->jobs_ts[i + 1],
                     (size_t)(ns->njobs - i - 1) * sizeof (ns->jobs_ts[0]));
            ns->njobs--;
            break;
        }
    }
    if (ns->njobs == NODES_MAX_JOBS) /* keep the newest */
        return;
    for (i = ns->njobs; i > 0 && ns->jobs_ts[i - 1] > ts; i--) {
        memcpy (ns->jobs[i], ns->jobs[i - 1], sizeof (ns->jobs[0]));
        ns->jobs_ts[i] = ns->jobs_ts[i - 1];
    }
    snprintf (ns->jobs[i], sizeof (ns->jobs[i]), "%s", n->job_id);
    ns->jobs_ts[i] = ts;
    ns->njobs++;
}

int nodes_update (struct nodes *ns, nodes_change_f cb, void *arg,
                  cs_error_t *errp)
{
    int total = 0;

    for (int k = 0; k < ns->count; k++) {
        struct node_state *n = &ns->node[k];
        struct mb_event ev;
        int rc;
        while ((rc = mb_reader_next (n->reader, &ev, errp)) > 0) {
            if (ev.type != MB_EV_RECORD)
                continue;
            total++;
            if (node_feed (n, &ev.rec) && cb)
                cb (k, n, arg);
            if (!strcmp (ev.rec.type, "worker_started"))
                nodes_note_job (ns, n, ev.rec.ts);
        }
        if (rc < 0)
            return -1;
    }
    return total;
}

int nodes_count_phase (const struct nodes *ns, enum node_phase phase)
{
    int c = 0;

    for (int k = 0; k < ns->count; k++)
        if (ns->node[k].phase == phase
            && !(phase == NODE_READY && ns->node[k].degraded))
            c++;
    return c;
}

int nodes_outbox_count (const char *swarmdir, cs_error_t *errp)
{
    char path[4096];
    DIR *d;
    struct dirent *de;
    int count = 0;

    if (snprintf (path, sizeof (path), "%s/outbox", swarmdir) >=
        (int)sizeof (path)) {
        errno = ENAMETOOLONG;
        return errprintf (errp, "swarm directory path too long");
    }
    if (!(d = opendir (path)))
        return errprintf (errp, "cannot read '%s': %s", path,
                          strerror (errno));
    while ((de = readdir (d))) {
        const char *nm = de->d_name;
        size_t digits = strspn (nm, "0123456789");
        long k;
        if (digits == 0 || digits > 6 || strcmp (nm + digits, ".jsonl"))
            continue;
        k = strtol (nm, NULL, 10);
        if (k + 1 > count)
            count = (int)k + 1;
    }
    closedir (d);
    return count;
}

uint64_t nodes_inbox_last (const char *swarmdir, int k)
{
    char path[4096];
    struct mb_options opt;
    struct mb_event ev;
    mb_reader_t *r;
    uint64_t last = 0;

    if (mb_stream_path (swarmdir, "inbox", k, path, sizeof (path), NULL) < 0 ||
        access (path, F_OK) < 0)
        return 0;
    mb_options_init (&opt);
    if (!(r = mb_reader_open (path, MB_START_BEGIN, NULL, &opt, NULL)))
        return 0;
    while (mb_reader_next (r, &ev, NULL) > 0)
        if (ev.type == MB_EV_RECORD && ev.rec.seq > last)
            last = ev.rec.seq;
    mb_reader_close (r);
    return last;
}

void nodes_metrics_json (cJSON *o, const struct node_state *n,
                         const char *swarmdir, int k)
{
    static const char *phases[] = {"none", "started", "ready", "stopped"};
    uint64_t il = nodes_inbox_last (swarmdir, k);

    if (!cJSON_GetObjectItemCaseSensitive (o, "phase"))
        json_add_str (o, "phase", phases[n->phase]);
    if (!cJSON_GetObjectItemCaseSensitive (o, "turns"))
        json_add_u64 (o, "turns", n->turns);
    if (!cJSON_GetObjectItemCaseSensitive (o, "approvals"))
        json_add_u64 (o, "approvals", (uint64_t)n->approvals);
    json_add_u64 (o, "turns_started", n->turns_started);
    json_add_u64 (o, "turns_failed", n->turns_failed);
    json_add_u64 (o, "tokens_in", n->tokens_in);
    json_add_u64 (o, "tokens_out", n->tokens_out);
    json_add_u64 (o, "approvals_decided", n->approvals_decided);
    json_add_u64 (o, "restarts", n->restarts);
    json_add_u64 (o, "inbox_lag", il > n->inbox_acted ? il - n->inbox_acted : 0);
    /* before the first heartbeat: the node's last record */
    if (n->last_heartbeat > 0 || n->last_record > 0)
        json_add_double (o, "last_heartbeat_ts", n->last_heartbeat > 0
                                                     ? n->last_heartbeat
                                                     : n->last_record);
}
