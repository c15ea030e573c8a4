/* translate-worker.c - the worker's own records
 *
 * worker_started, ready, inject_accepted, turn_queued, turn_aborted,
 * approvals, app_server_exited/restarted, walltime warnings, checkpoints,
 * worker_stopped and errors; on_record dispatches every record type
 * (the "rpc" records to translate-appserver.c).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/translate-private.h"

#define DEGRADED_OUTBOX 1u
#define DEGRADED_INBOX 2u

/* node_degraded / node_recovered: which part of the mailbox */
static unsigned degraded_bit (const cJSON *rec)
{
    const char *r = get_str (rec, "reason");
    if (r && !strcmp (r, "inbox_unreadable"))
        return DEGRADED_INBOX;
    return DEGRADED_OUTBOX;
}

static void simple_event (rt_trans_t *t, int k, struct node *n,
                          const char *name, const cJSON *rec,
                          const char *const *members)
{
    cJSON *d = tr_ev_new (t, k, n, n->turn_injection);
    if (!d)
        return;
    for (; members && *members; members++)
        tr_add_copy (d, *members, rec, *members);
    tr_ev_emit (t, name, d);
}

static void on_worker_started (rt_trans_t *t, int k, struct node *n,
                               const cJSON *rec)
{
    static const char *const m[] = { "host", "pid", "codex_version", NULL };
    const cJSON *job = cJSON_GetObjectItemCaseSensitive (rec, "job_id");
    cJSON *d;

    if (cJSON_IsString (job))
        tr_set_str (&n->job_id, job->valuestring);
    n->starts++;
    n->ready = false;
    n->stopped = false;
    n->degraded = 0;
    /* whatever was in flight died with the previous worker */
    if (n->turn_id) {
        char *tid = tr_xstrdup (n->turn_id);
        cJSON *err = cJSON_CreateObject ();
        if (err) {
            tr_add_s (err, "message", "the worker restarted");
            tr_add_s (err, "code", "worker_restarted");
        }
        tr_end_turn (t, k, n, tid, "failed", err, NULL);
        cJSON_Delete (err);
        free (tid);
    }
    tr_flush_held (t, k, n, false);
    tr_drop_approvals (n, NULL);
    if (n->starts > 1) {
        if ((d = tr_ev_new (t, k, n, NULL))) {
            tr_add_s (d, "reason", "worker");
            for (const char *const *p = m; *p; p++)
                tr_add_copy (d, *p, rec, *p);
            tr_ev_emit (t, "node_restarted", d);
        }
    }
    else
        simple_event (t, k, n, "node_started", rec, m);
}

static void on_inject_accepted (rt_trans_t *t, int k, struct node *n,
                                const cJSON *rec)
{
    static const char *const m[] = { "action", "turn_id", "inbox_seq",
                                     "request_id", NULL };
    const char *inj = get_str (rec, "injection_id");
    const char *turn_id = get_str (rec, "turn_id");
    const char *action = get_str (rec, "action");
    cJSON *d;

    if (turn_id && inj && action
        && (!strcmp (action, "turn/start") || !strcmp (action, "turn/steer"))
        && !tr_ring_get (&n->turn_inj, turn_id)) {
        tr_ring_put (&n->turn_inj, turn_id, inj);
        if (n->turn_id && !strcmp (n->turn_id, turn_id) && !n->turn_injection)
            tr_set_str (&n->turn_injection, inj);
        /* the turn is about to start: what comes before turn/started
         * (thread/status/changed) belongs to it */
        if (!n->turn_id)
            tr_set_str (&n->turn_injection, inj);
    }
    if (!(d = tr_ev_new (t, k, n, inj)))
        return;
    for (const char *const *p = m; *p; p++)
        tr_add_copy (d, *p, rec, *p);
    tr_ev_emit (t, "inject_delivered", d);
}

/* The execpolicy amendment an approval offers among its decisions (a new
 * array), or null.
 */
static cJSON *offered_amendment (const cJSON *rec)
{
    const cJSON *e;
    cJSON_ArrayForEach (e, cJSON_GetObjectItemCaseSensitive (
                               rec, "available_decisions")) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive (
            cJSON_GetObjectItemCaseSensitive (e,
                                              "acceptWithExecpolicyAmendment"),
            "execpolicy_amendment");
        if (cJSON_IsArray (a))
            return cJSON_Duplicate (a, true);
    }
    return cJSON_CreateNull ();
}

static void on_approval_requested (rt_trans_t *t, int k, struct node *n,
                                   const cJSON *rec)
{
    const char *id = get_str (rec, "approval_id");
    const char *method = get_str (rec, "method");
    const char *turn_id = get_str (rec, "turn_id");
    cJSON *d, *c;

    if (!id || cJSON_GetObjectItemCaseSensitive (n->approvals, id))
        return;
    if (turn_id && tr_ring_find (&n->done_turns, turn_id) >= 0)
        return;
    if (!(d = tr_ev_new (t, k, n, tr_turn_injection (n, turn_id))))
        return;
    tr_add_s (d, "approval_id", id);
    tr_add_s (d, "call_id", id);
    tr_add_s (d, "kind",
                             method && strstr (method, "fileChange")
                                 ? "file_change" : "command");
    tr_add_copy (d, "method", rec, "method");
    tr_add_copy (d, "thread_id", rec, "thread_id");
    tr_add_copy (d, "turn_id", rec, "turn_id");
    tr_add_copy (d, "item_id", rec, "item_id");
    tr_add_copy (d, "command", rec, "command");
    tr_add_copy (d, "cwd", rec, "cwd");
    tr_add_copy (d, "reason", rec, "reason");
    tr_add_copy (d, "available_decisions", rec, "available_decisions");
    tr_put_item (d, "proposed_execpolicy_amendment", offered_amendment (rec));
    if ((c = cJSON_Duplicate (d, true))
        && !cJSON_AddItemToObject (n->approvals, id, c))
        cJSON_Delete (c);
    tr_ev_emit (t, "exec_approval_required", d);
}

static void on_approval_resolved (rt_trans_t *t, int k, struct node *n,
                                  const cJSON *rec)
{
    static const char *const m[] = { "approval_id", "decision", "by", NULL };
    const char *id = get_str (rec, "approval_id");
    const cJSON *a;
    char *inj = NULL;
    cJSON *d;

    if (!id)
        return;
    a = cJSON_GetObjectItemCaseSensitive (n->approvals, id);
    if (a)
        inj = tr_xstrdup (get_str (a, "injection_id"));
    cJSON_DeleteItemFromObjectCaseSensitive (n->approvals, id);
    if ((d = tr_ev_new (t, k, n, inj))) {
        const cJSON *dec = cJSON_GetObjectItemCaseSensitive (rec,
                                                             "decision");
        for (const char *const *p = m; *p; p++)
            tr_add_copy (d, *p, rec, *p);
        tr_add_s (d, "call_id", id);
        /* upstream's members: approved, and the approve_execution's id */
        tr_add_b (d, "approved", cJSON_IsObject (dec)
                              || (cJSON_IsString (dec)
                                  && !strncmp (dec->valuestring, "accept",
                                               6)));
        tr_add_copy (d, "request_id", rec, "request_id");
        tr_ev_emit (t, "exec_approval_resolved", d);
    }
    free (inj);
}

static void on_turn_aborted (rt_trans_t *t, int k, struct node *n,
                             const cJSON *rec)
{
    const char *turn_id = get_str (rec, "turn_id");
    const char *inj = get_str (rec, "injection_id");
    const char *reason = get_str (rec, "reason");
    cJSON *err;

    if (!turn_id)
        turn_id = n->turn_id;
    if (!turn_id)
        return;
    if (inj && !tr_ring_get (&n->turn_inj, turn_id))
        tr_ring_put (&n->turn_inj, turn_id, inj);
    if (!(err = cJSON_CreateObject ()))
        return;
    tr_add_s (err, "message",
                             reason ? reason : "the app-server exited");
    if (reason && !strcmp (reason, "node_lost")) {
        /* the node's index went on on a spare */
        tr_add_s (err, "code", "node_lost");
        tr_end_turn_why (t, k, n, turn_id, "failed", err, "node_lost");
    } else {
        tr_add_s (err, "code", "turn_aborted");
        tr_end_turn (t, k, n, turn_id, "failed", err, NULL);
    }
    cJSON_Delete (err);
}

static void on_worker_error (rt_trans_t *t, int k, struct node *n,
                             const cJSON *rec)
{
    static const char *const m[] = { "code", "message", "inbox_seq", NULL };
    const char *inj = get_str (rec, "injection_id");
    cJSON *d = tr_ev_new (t, k, n, inj ? inj : n->turn_injection);
    if (!d)
        return;
    tr_add_s (d, "source", "worker");
    for (const char *const *p = m; *p; p++)
        tr_add_copy (d, *p, rec, *p);
    tr_ev_emit (t, "agent_error", d);
    /* an injection that could not start a turn: upstream's inject_failed,
     * with the inject's request id */
    if (inj && (d = tr_ev_new (t, k, n, inj))) {
        tr_add_copy (d, "request_id", rec, "request_id");
        tr_add_copy (d, "error", rec, "message");
        tr_add_copy (d, "code", rec, "code");
        tr_add_copy (d, "inbox_seq", rec, "inbox_seq");
        tr_ev_emit (t, "inject_failed", d);
    }
}

static int debug_record (rt_trans_t *t, int k, struct node *n,
                         const cJSON *rec)
{
    return tr_debug_event (t, k, n, "debug_record", "record", rec);
}

void tr_on_record (rt_trans_t *t, int k, struct node *n, const char *type,
                   const cJSON *rec)
{
    if (!strcmp (type, "rpc")) {
        const cJSON *msg = get_obj (rec, "msg");
        if (msg)
            tr_on_rpc (t, k, n, msg);
        else
            debug_record (t, k, n, rec);
    }
    else if (!strcmp (type, "heartbeat"))
        ;                       /* liveness only */
    else if (!strcmp (type, "worker_started"))
        on_worker_started (t, k, n, rec);
    else if (!strcmp (type, "ready")) {
        static const char *const m[] = { "thread_id", "resumed",
                                         "rollout_path", NULL };
        tr_set_str (&n->thread_id, get_str (rec, "thread_id"));
        n->ready = true;
        simple_event (t, k, n, "node_ready", rec, m);
    }
    else if (!strcmp (type, "inject_accepted"))
        on_inject_accepted (t, k, n, rec);
    else if (!strcmp (type, "turn_queued")) {
        static const char *const m[] = { "inbox_seq", "position",
                                         "request_id", NULL };
        cJSON *d = tr_ev_new (t, k, n, get_str (rec, "injection_id"));
        if (d) {
            for (const char *const *p = m; *p; p++)
                tr_add_copy (d, *p, rec, *p);
            tr_ev_emit (t, "inject_queued", d);
        }
    }
    else if (!strcmp (type, "turn_aborted"))
        on_turn_aborted (t, k, n, rec);
    else if (!strcmp (type, "approval_requested"))
        on_approval_requested (t, k, n, rec);
    else if (!strcmp (type, "approval_resolved"))
        on_approval_resolved (t, k, n, rec);
    else if (!strcmp (type, "app_server_exited")) {
        static const char *const m[] = { "code", "signal", "stderr_tail",
                                         NULL };
        const cJSON *code = cJSON_GetObjectItemCaseSensitive (rec, "code");
        const cJSON *sig = cJSON_GetObjectItemCaseSensitive (rec, "signal");
        cJSON *d = NULL;
        /* a clean exit (the worker stopping it) is not an error */
        if (!(cJSON_IsNumber (code) && code->valuedouble == 0
              && !cJSON_IsNumber (sig) && !n->turn_id))
            d = tr_ev_new (t, k, n, n->turn_injection);
        else
            debug_record (t, k, n, rec);
        if (d) {
            tr_add_s (d, "source", "worker");
            tr_add_s (d, "code", "app_server_exited");
            for (const char *const *p = m + 1; *p; p++)
                tr_add_copy (d, *p, rec, *p);
            tr_add_copy (d, "exit_code", rec, "code");
            tr_ev_emit (t, "agent_error", d);
        }
    }
    else if (!strcmp (type, "app_server_restarted")) {
        cJSON *d = tr_ev_new (t, k, n, NULL);
        if (d) {
            tr_add_s (d, "reason", "app_server");
            tr_add_copy (d, "attempt", rec, "attempt");
            tr_add_copy (d, "backoff", rec, "backoff");
            tr_ev_emit (t, "node_restarted", d);
        }
    }
    else if (!strcmp (type, "walltime_warning"))
        simple_event (t, k, n, "walltime_warning", rec, NULL);
    else if (!strcmp (type, "checkpoint")) {
        static const char *const m[] = { "thread_id", "epoch", NULL };
        simple_event (t, k, n, "node_checkpoint", rec, m);
    }
    else if (!strcmp (type, "worker_stopped")) {
        static const char *const m[] = { "reason", "status", NULL };
        if (n->turn_id) {
            char *tid = tr_xstrdup (n->turn_id);
            cJSON *err = cJSON_CreateObject ();
            if (err) {
                tr_add_s (err, "message", "the worker stopped");
                tr_add_s (err, "code", "worker_stopped");
            }
            tr_end_turn (t, k, n, tid, "interrupted", err, NULL);
            cJSON_Delete (err);
            free (tid);
        }
        tr_flush_held (t, k, n, false);
        tr_drop_approvals (n, NULL);
        n->stopped = true;
        n->ready = false;
        simple_event (t, k, n, "node_stopped", rec, m);
    }
    else if (!strcmp (type, "error"))
        on_worker_error (t, k, n, rec);
    else if (!strcmp (type, "node_degraded")) {
        static const char *const m[] = { "reason", "error", "held", NULL };
        n->degraded |= degraded_bit (rec);
        simple_event (t, k, n, "node_degraded", rec, m);
    }
    else if (!strcmp (type, "node_recovered")) {
        static const char *const m[] = { "reason", "held", "dropped_deltas",
                                         "seconds", NULL };
        n->degraded &= ~degraded_bit (rec);
        simple_event (t, k, n, "node_recovered", rec, m);
    }
    else
        debug_record (t, k, n, rec);
}
