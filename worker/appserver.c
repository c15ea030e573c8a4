/* appserver.c - the codex app-server child: spawn, JSON-RPC 2.0 over its
 * stdio, the handshake, approvals, exits and restarts.
 *
 * Every line the child writes on stdout that is a JSON object goes to the
 * outbox unchanged as an "rpc" record (zero-copy: the line is spliced into
 * the record as it is, after cJSON has checked it).  A line that is not
 * JSON, or is over worker.max_line, becomes an "error" record with a short
 * excerpt.  stderr is stripped of ANSI sequences, appended to the node's
 * codex log and kept in a bounded tail for "app_server_exited".
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "mailbox/audit.h"
#include "worker/worker.h"

static const char *approval_methods[] = {
    "item/commandExecution/requestApproval",
    "item/fileChange/requestApproval",
    "execCommandApproval",
    "applyPatchApproval",
    NULL,
};

static bool is_approval_method (const char *m)
{
    for (int i = 0; approval_methods[i]; i++)
        if (!strcmp (m, approval_methods[i]))
            return true;
    return false;
}

static const char *req_name (enum req_kind k)
{
    switch (k) {
    case REQ_INITIALIZE: return "initialize";
    case REQ_THREAD_START: return "thread/start";
    case REQ_THREAD_RESUME: return "thread/resume";
    case REQ_TURN_START: return "turn/start";
    case REQ_TURN_STEER: return "turn/steer";
    case REQ_TURN_INTERRUPT: return "turn/interrupt";
    }
    return "?";
}

/* ---- sending ------------------------------------------------------------ */

void as_send (struct worker *w, cJSON *msg)
{
    char *s = NULL;

    if (!msg)
        goto nomem;
    if (!w->as || spawn_stdin_fd (w->as) < 0) {
        log_debug ("app-server is not running: message dropped");
        cJSON_Delete (msg);
        return;
    }
    if (!(s = cJSON_PrintUnformatted (msg)))
        goto nomem;
    log_trace ("-> %s", s);
    if (outbuf_append (w->as_in, s, strlen (s)) < 0
        || outbuf_append (w->as_in, "\n", 1) < 0)
        goto nomem;
    if (outbuf_flush (w->as_in, spawn_stdin_fd (w->as)) < 0 && errno != EAGAIN)
        log_err ("cannot write to the app-server");
    free (s);
    cJSON_Delete (msg);
    return;
nomem:
    log_msg ("out of memory sending to the app-server");
    free (s);
    cJSON_Delete (msg);
}

struct pending *as_request (struct worker *w, const char *method,
                            cJSON *params, enum req_kind kind,
                            struct item *item)
{
    struct pending *p = calloc (1, sizeof (*p));
    cJSON *msg = cJSON_CreateObject ();

    if (!p || !msg || !params) {
        free (p);
        cJSON_Delete (msg);
        cJSON_Delete (params);
        return NULL;
    }
    p->id = ++w->next_id;
    p->kind = kind;
    p->sent = time_mono ();
    p->item = item;
    if (json_add_u64 (msg, "id", p->id) < 0
        || json_add_str (msg, "method", method) < 0
        || json_add_item (msg, "params", params) < 0) {
        free (p);
        cJSON_Delete (msg);
        return NULL;
    }
    /* append: responses usually come in order */
    struct pending **pp = &w->pending;
    while (*pp)
        pp = &(*pp)->next;
    *pp = p;
    as_send (w, msg);
    return p;
}

static void respond (struct worker *w, const cJSON *rpc_id, cJSON *result)
{
    cJSON *msg = cJSON_CreateObject ();
    cJSON *id = cJSON_Duplicate (rpc_id, true);

    if (!msg || !id || json_add_item (msg, "id", id) < 0) {
        if (msg && !cJSON_GetObjectItem (msg, "id"))
            cJSON_Delete (id);
        cJSON_Delete (msg);
        cJSON_Delete (result);
        return;
    }
    if (json_add_item (msg, "result", result) < 0) {
        cJSON_Delete (msg);
        return;
    }
    as_send (w, msg);
}

static void respond_error (struct worker *w, const cJSON *rpc_id, int code,
                           const char *message)
{
    cJSON *msg = cJSON_CreateObject ();
    cJSON *err = cJSON_CreateObject ();
    cJSON *id = cJSON_Duplicate (rpc_id, true);

    if (!msg || !err || !id || json_add_item (msg, "id", id) < 0) {
        cJSON_Delete (err);
        cJSON_Delete (msg);
        return;
    }
    if (!cJSON_AddNumberToObject (err, "code", code)
        || json_add_str (err, "message", message) < 0
        || json_add_item (msg, "error", err) < 0) {
        cJSON_Delete (msg);
        return;
    }
    as_send (w, msg);
}

/* ---- starting ---------------------------------------------------------------- */

static void as_release (struct worker *w)
{
    spawn_destroy (w->as);
    w->as = NULL;
    lineio_destroy (w->as_out);
    lineio_destroy (w->as_err);
    outbuf_destroy (w->as_in);
    w->as_out = w->as_err = NULL;
    w->as_in = NULL;
    w->state = AS_DOWN;
}

int as_start (struct worker *w)
{
    char *argv[CS_CONFIG_MAX_LIST + 3];
    struct spawn_opts opts = SPAWN_OPTS_INIT;
    cs_error_t err;
    size_t n = 0;

    argv[n++] = w->codex_bin;
    static char app_server[] = "app-server";
    argv[n++] = app_server;
    for (size_t i = 0; i < w->cfg.codex_nargs && n < CS_CONFIG_MAX_LIST + 2; i++)
        argv[n++] = w->cfg.codex_args[i];
    argv[n] = NULL;

    opts.cwd = w->workspace;
    opts.env_set = w->codex_env;
    opts.pipe_stdin = opts.pipe_stdout = opts.pipe_stderr = true;
    /* Slurm delivers a step signal (scancel --signal=USR1, the walltime
     * warning forwarded by the batch script) to every process of the
     * step; codex would die of SIGUSR1/SIGUSR2.  The worker handles them.
     */
    static const int ignore[] = { SIGUSR1, SIGUSR2, 0 };
    opts.ignore_signals = ignore;

    w->incarnation++;
    w->out_eof = w->err_eof = false;
    tail_clear (&w->tail);
    if (!(w->as_out = lineio_create (w->cfg.max_line))
        || !(w->as_err = lineio_create (64 * 1024))
        || !(w->as_in = outbuf_create ())) {
        log_msg ("out of memory");
        as_release (w);
        return -1;
    }
    if (!(w->as = spawn_start (argv, &opts, &err))) {
        log_msg ("%s", err.text);
        worker_error (w, "app_server_spawn", 0, "%s", err.text);
        as_release (w);
        return -1;
    }
    log_debug ("app-server started (pid %d, incarnation %d)",
               (int)spawn_pid (w->as), w->incarnation);
    w->state = AS_STARTING;

    cJSON *params = cJSON_CreateObject ();
    cJSON *ci = cJSON_AddObjectToObject (params, "clientInfo");
    if (!ci || json_add_str (ci, "name", "codeswarm-worker") < 0
        || json_add_str (ci, "title", "codeswarm worker") < 0
        || json_add_str (ci, "version", PACKAGE_VERSION) < 0) {
        cJSON_Delete (params);
        as_kill (w, "out of memory");
        return -1;
    }
    as_request (w, "initialize", params, REQ_INITIALIZE, NULL);
    return 0;
}

static cJSON *thread_params (struct worker *w, const char *cwd)
{
    cJSON *p = cJSON_CreateObject ();

    if (!p)
        return NULL;
    json_add_str (p, "cwd", cwd ? cwd : w->workspace);
    if (w->cfg.model)
        json_add_str (p, "model", w->cfg.model);
    if (w->cfg.model_provider)
        json_add_str (p, "modelProvider", w->cfg.model_provider);
    if (w->cfg.approval_policy)
        json_add_str (p, "approvalPolicy", w->cfg.approval_policy);
    if (w->cfg.sandbox)
        json_add_str (p, "sandbox", w->cfg.sandbox);
    if (w->dev_instructions)
        json_add_str (p, "developerInstructions", w->dev_instructions);
    return p;
}

/* A user record with new_thread: thread/start first (the item rides on the
 * request; inbox_new_thread() starts its turn on the new thread).
 */
void as_new_thread (struct worker *w, struct item *it)
{
    cJSON *p = thread_params (w, it->cwd);

    if (!p || !as_request (w, "thread/start", p, REQ_THREAD_START, it)) {
        log_msg ("cannot start a new thread for injection '%s'", it->id);
        it->new_thread = false;
        queue_push_front (w, it);
    }
}

static void send_thread_request (struct worker *w)
{
    cJSON *p = cJSON_CreateObject ();
    bool resume = w->thread_id != NULL;

    if (!p)
        return;
    if (resume)
        json_add_str (p, "threadId", w->thread_id);
    json_add_str (p, "cwd", w->workspace);
    if (w->cfg.model)
        json_add_str (p, "model", w->cfg.model);
    if (w->cfg.model_provider)
        json_add_str (p, "modelProvider", w->cfg.model_provider);
    if (w->cfg.approval_policy)
        json_add_str (p, "approvalPolicy", w->cfg.approval_policy);
    if (w->cfg.sandbox)
        json_add_str (p, "sandbox", w->cfg.sandbox);
    if (w->dev_instructions)
        json_add_str (p, "developerInstructions", w->dev_instructions);
    w->state = AS_THREAD;
    as_request (w, resume ? "thread/resume" : "thread/start", p,
                resume ? REQ_THREAD_RESUME : REQ_THREAD_START, NULL);
}

static void set_str (char **dst, const char *src)
{
    char *n = src ? strdup (src) : NULL;
    free (*dst);
    *dst = n;
}

/* The thread of a thread/start or thread/resume result becomes the
 * node's: 0, or -1 when the result has no thread id.
 */
int as_thread_adopt (struct worker *w, const cJSON *result)
{
    const cJSON *thread = cJSON_GetObjectItemCaseSensitive (result, "thread");
    const char *id = NULL, *path = NULL;

    if (json_get_str (thread, "id", &id, NULL) < 0)
        return -1;
    (void)json_get_str (thread, "path", &path, NULL);
    set_str (&w->thread_id, id);
    set_str (&w->rollout_path, path);
    return 0;
}

/* thread/start or thread/resume answered */
static void thread_ready (struct worker *w, const cJSON *result, bool resumed)
{
    const cJSON *thread = cJSON_GetObjectItemCaseSensitive (result, "thread");

    if (as_thread_adopt (w, result) < 0) {
        worker_error (w, "app_server_protocol", 0,
                      "thread response without a thread id");
        as_kill (w, "bad thread response");
        return;
    }

    /* injection ids the thread already holds: replays of these are skipped */
    const cJSON *turns = cJSON_GetObjectItemCaseSensitive (thread, "turns");
    const cJSON *turn, *it;
    cJSON_Delete (w->accepted_turns);
    w->accepted_turns = cJSON_CreateObject ();
    cJSON_ArrayForEach (turn, turns) {
        const cJSON *items = cJSON_GetObjectItemCaseSensitive (turn, "items");
        const char *tid = NULL;
        (void)json_get_str (turn, "id", &tid, NULL);
        cJSON_ArrayForEach (it, items) {
            const char *type = NULL, *cid = NULL;
            if (json_get_str (it, "type", &type, NULL) == 0
                && !strcmp (type, "userMessage")
                && json_get_str (it, "clientId", &cid, NULL) == 0) {
                (void)strset_add (&w->accepted, cid);
                if (tid && w->accepted_turns
                    && !cJSON_GetObjectItemCaseSensitive (w->accepted_turns,
                                                          cid))
                    (void)json_add_str (w->accepted_turns, cid, tid);
            }
        }
    }
    w->state = AS_READY;
    w->ready_at = time_mono ();
    w->failed_starts = 0;
    log_msg ("thread %s %s", w->thread_id, resumed ? "resumed" : "started");
    worker_write_ready (w, resumed);
    (void)worker_checkpoint (w);
    inbox_try_start (w);
}

/* ---- reading ------------------------------------------------------------------ */

static void excerpt (char *dst, size_t size, const char *s, size_t len)
{
    size_t n = len < size - 1 ? len : size - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    dst[n] = '\0';
}

static struct pending *pending_take (struct worker *w, uint64_t id)
{
    for (struct pending **pp = &w->pending; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct pending *p = *pp;
            *pp = p->next;
            p->next = NULL;
            return p;
        }
    }
    return NULL;
}

static void handle_response (struct worker *w, const cJSON *msg)
{
    const cJSON *idj = cJSON_GetObjectItemCaseSensitive (msg, "id");
    const cJSON *result = cJSON_GetObjectItemCaseSensitive (msg, "result");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive (msg, "error");
    uint64_t id;
    struct pending *p;

    if (!json_is_u64 (idj, &id) || !(p = pending_take (w, id))) {
        log_debug ("response to an unknown request id");
        return;
    }
    const char *emsg = NULL;
    if (error)
        (void)json_get_str (error, "message", &emsg, NULL);
    switch (p->kind) {
    case REQ_INITIALIZE:
        if (error) {
            worker_error (w, "app_server_handshake", 0,
                          "initialize failed: %s", emsg ? emsg : "?");
            as_kill (w, "initialize failed");
            break;
        }
        if (!strcmp (w->codex_version, "unknown")) {
            const char *ua = NULL;
            if (json_get_str (result, "userAgent", &ua, NULL) == 0) {
                const char *slash = strchr (ua, '/');
                if (slash)
                    snprintf (w->codex_version, sizeof (w->codex_version),
                              "%.*s", (int)strcspn (slash + 1, " "), slash + 1);
            }
        }
        {
            cJSON *n = cJSON_CreateObject ();
            if (n && json_add_str (n, "method", "initialized") == 0)
                as_send (w, n);
            else
                cJSON_Delete (n);
        }
        send_thread_request (w);
        break;
    case REQ_THREAD_START:
        if (p->item) {
            inbox_new_thread (w, p, result, error);
            break;
        }
        if (error) {
            worker_error (w, "thread_start_failed", 0, "thread/start: %s",
                          emsg ? emsg : "?");
            as_kill (w, "thread/start failed");
            break;
        }
        thread_ready (w, result, false);
        break;
    case REQ_THREAD_RESUME:
        if (error) {
            worker_error (w, "resume_failed", 0,
                          "thread/resume of %s: %s; starting a new thread",
                          w->thread_id, emsg ? emsg : "?");
            free (w->thread_id);
            w->thread_id = NULL;
            free (w->rollout_path);
            w->rollout_path = NULL;
            send_thread_request (w);
            break;
        }
        thread_ready (w, result, true);
        break;
    case REQ_TURN_START:
        inbox_turn_started (w, p, result, error);
        break;
    case REQ_TURN_STEER:
        inbox_steer_done (w, p, result, error);
        break;
    case REQ_TURN_INTERRUPT:
        inbox_interrupt_done (w, p, result, error);
        break;
    }
    item_free (p->item);
    free (p);
}

static char *json_str_or_join (const cJSON *v)
{
    if (cJSON_IsString (v))
        return strdup (v->valuestring);
    if (cJSON_IsArray (v)) {
        struct jbuf b = JBUF_INIT;
        const cJSON *e;
        cJSON_ArrayForEach (e, v) {
            if (!cJSON_IsString (e))
                continue;
            if (b.len)
                jbuf_append (&b, " ", 1);
            jbuf_append (&b, e->valuestring, strlen (e->valuestring));
        }
        if (!b.data)
            return strdup ("");
        return b.data;          /* jbuf data is NUL-terminated */
    }
    return NULL;
}

static void add_opt_str (cJSON *o, const char *key, const cJSON *params,
                         const char *k1, const char *k2)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (params, k1);
    if (!v && k2)
        v = cJSON_GetObjectItemCaseSensitive (params, k2);
    if (cJSON_IsString (v))
        json_add_str (o, key, v->valuestring);
    else
        cJSON_AddNullToObject (o, key);
}


/* The audit entry of an approval the policy decided (mailbox/audit.h): the
 * rule is the one whose decision policy_decide () returned.
 */
static void policy_audit (struct worker *w, const char *approval_id,
                          const cJSON *params, const char *decision)
{
    cJSON *o = cJSON_CreateObject (), *rule;
    char *cmd = json_str_or_join (cJSON_GetObjectItemCaseSensitive (params,
                                                                    "command"));
    cs_error_t error;

    if (!o)
        goto done;
    json_add_str (o, "action", "approval");
    json_add_str (o, "swarm", w->swarm);
    mb_audit_identity (o, getuid (), "worker", w->host);
    cJSON_AddNumberToObject (o, "node", w->node);
    json_add_str (o, "approval_id", approval_id);
    json_add_str (o, "decision", decision);
    json_add_str (o, "decided_by", "policy");
    if (cmd)
        json_add_str (o, "command", cmd);
    for (size_t i = 0; i < w->cfg.nrules; i++) {
        if (w->cfg.rules[i].decision != decision)
            continue;
        if ((rule = cJSON_AddObjectToObject (o, "rule"))) {
            json_add_u64 (rule, "index", i);
            json_add_str (rule, "prefix", w->cfg.rules[i].prefix);
            json_add_str (rule, "decision", w->cfg.rules[i].decision);
            json_add_bool (rule, "in_workspace", w->cfg.rules[i].in_workspace);
        }
        break;
    }
    json_add_str (o, "result", "ok");
    if (mb_audit_append (w->swarmdir, o, &error) < 0)
        log_msg ("audit: %s", error.text);
done:
    free (cmd);
    cJSON_Delete (o);
}

static void handle_approval_request (struct worker *w, const cJSON *msg,
                                     const char *method)
{
    const cJSON *rpc_id = cJSON_GetObjectItemCaseSensitive (msg, "id");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive (msg, "params");
    struct approval *a = calloc (1, sizeof (*a));
    char idtext[64], aid[160];
    cJSON *rec = cJSON_CreateObject ();

    if (!a || !rec)
        goto nomem;
    if (cJSON_IsNumber (rpc_id))
        snprintf (idtext, sizeof (idtext), "%.0f", rpc_id->valuedouble);
    else if (cJSON_IsString (rpc_id))
        snprintf (idtext, sizeof (idtext), "%s", rpc_id->valuestring);
    else
        snprintf (idtext, sizeof (idtext), "x");
    snprintf (aid, sizeof (aid), "n%d-%llu-%d-%s", w->node,
              (unsigned long long)mb_writer_epoch (w->out), w->incarnation,
              idtext);
    if (!(a->approval_id = strdup (aid))
        || !(a->rpc_id = cJSON_Duplicate (rpc_id, true))
        || !(a->method = strdup (method)))
        goto nomem;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive (params, "turnId");
    if (cJSON_IsString (t))
        a->turn_id = strdup (t->valuestring);
    a->deadline = time_mono () + w->cfg.approval_timeout;

    json_add_str (rec, "approval_id", aid);
    cJSON_AddItemToObject (rec, "rpc_id", cJSON_Duplicate (rpc_id, true));
    json_add_str (rec, "method", method);
    add_opt_str (rec, "thread_id", params, "threadId", "conversationId");
    add_opt_str (rec, "turn_id", params, "turnId", NULL);
    add_opt_str (rec, "item_id", params, "itemId", "callId");
    char *cmd = json_str_or_join (cJSON_GetObjectItemCaseSensitive (params,
                                                                    "command"));
    if (cmd)
        json_add_str (rec, "command", cmd);
    else
        cJSON_AddNullToObject (rec, "command");
    free (cmd);
    add_opt_str (rec, "cwd", params, "cwd", NULL);
    add_opt_str (rec, "reason", params, "reason", NULL);
    const cJSON *ad = cJSON_GetObjectItemCaseSensitive (params,
                                                        "availableDecisions");
    if (ad)
        cJSON_AddItemToObject (rec, "available_decisions",
                               cJSON_Duplicate (ad, true));
    else {
        const char *dflt[] = { "accept", "acceptForSession", "decline",
                               "cancel" };
        cJSON_AddItemToObject (rec, "available_decisions",
                               cJSON_CreateStringArray (dflt, 4));
    }
    worker_record (w, "approval_requested", rec);
    cJSON_Delete (rec);

    a->next = w->approvals;
    w->approvals = a;

    const char *d = policy_decide (w->cfg.rules, w->cfg.nrules, params,
                                   w->workspace);
    if (d && decision_valid (d)) {
        policy_audit (w, a->approval_id, params, d);
        approval_answer_str (w, a, d, "policy");
    }
    return;
nomem:
    log_msg ("out of memory");
    cJSON_Delete (rec);
    if (a) {
        free (a->approval_id);
        cJSON_Delete (a->rpc_id);
        free (a->method);
        free (a);
    }
    respond_error (w, rpc_id, -32603, "codeswarm-worker: out of memory");
}

struct approval *approval_find (struct worker *w, const char *approval_id)
{
    for (struct approval *a = w->approvals; a; a = a->next)
        if (!strcmp (a->approval_id, approval_id))
            return a;
    return NULL;
}

static void approval_unlink_free (struct worker *w, struct approval *a)
{
    for (struct approval **pp = &w->approvals; *pp; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    }
    free (a->approval_id);
    cJSON_Delete (a->rpc_id);
    free (a->method);
    free (a->turn_id);
    free (a);
}

void approval_answer (struct worker *w, struct approval *a,
                      const cJSON *decision, const char *by,
                      const char *request_id)
{
    const cJSON *amend = decision_amendment (decision);
    cJSON *wire = amend ? decision_amendment_wire (a->method, amend)
                  : cJSON_IsString (decision)
                      ? decision_wire (a->method, decision->valuestring)
                      : NULL;
    cJSON *result = cJSON_CreateObject ();
    cJSON *rec = cJSON_CreateObject ();

    if (wire && result && json_add_item (result, "decision", wire) == 0) {
        respond (w, a->rpc_id, result);
        result = NULL;
    }
    else
        cJSON_Delete (wire);
    cJSON_Delete (result);
    if (rec) {
        json_add_str (rec, "approval_id", a->approval_id);
        json_add_item (rec, "decision", cJSON_Duplicate (decision, true));
        json_add_str (rec, "by", by);
        if (request_id)
            json_add_str (rec, "request_id", request_id);
        worker_record (w, "approval_resolved", rec);
        cJSON_Delete (rec);
    }
    log_debug ("approval %s: %s by %s", a->approval_id,
               cJSON_IsString (decision) ? decision->valuestring
                                         : "an execpolicy amendment", by);
    approval_unlink_free (w, a);
}

void approval_answer_str (struct worker *w, struct approval *a,
                          const char *decision, const char *by)
{
    cJSON *d = cJSON_CreateString (decision);
    if (!d) {
        log_msg ("out of memory");
        return;
    }
    approval_answer (w, a, d, by, NULL);
    cJSON_Delete (d);
}

static void handle_notification (struct worker *w, const cJSON *msg,
                                 const char *method)
{
    if (!strcmp (method, "turn/completed")) {
        const cJSON *params = cJSON_GetObjectItemCaseSensitive (msg, "params");
        const cJSON *turn = cJSON_GetObjectItemCaseSensitive (params, "turn");
        const char *id = NULL;
        if (json_get_str (turn, "id", &id, NULL) == 0)
            inbox_turn_completed (w, id);
    }
    else if (!strcmp (method, "turn/started") && !w->turn_id) {
        /* the turn/start response normally comes first; nothing to do */
    }
}

static void handle_line (struct worker *w, const char *line, size_t len,
                         bool overlong)
{
    char ex[161];
    cs_error_t err;
    cJSON *msg;
    ssize_t bad;

    if (overlong) {
        excerpt (ex, sizeof (ex), line, len);
        worker_error (w, "bad_app_server_line", 0,
                      "app-server line over %llu bytes: %s",
                      (unsigned long long)w->cfg.max_line, ex);
        return;
    }
    if (len == 0)
        return;
    if ((bad = mb_utf8_invalid (line, len)) >= 0) {
        excerpt (ex, sizeof (ex), line, len);
        worker_error (w, "bad_app_server_line", 0,
                      "app-server line with invalid UTF-8 at byte %zd: %s",
                      bad, ex);
        return;
    }
    if (!(msg = json_parse (line, len, &err)) || !cJSON_IsObject (msg)) {
        excerpt (ex, sizeof (ex), line, len);
        worker_error (w, "bad_app_server_line", 0,
                      "app-server line is not a JSON object (%s): %s",
                      msg ? "another JSON value" : err.text, ex);
        cJSON_Delete (msg);
        return;
    }
    /* forward unchanged, in the batch of this chunk */
    outbox_batch_add (w, line, len);

    /* route: server requests, notifications, responses */
    const cJSON *method = cJSON_GetObjectItemCaseSensitive (msg, "method");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive (msg, "id");
    if (cJSON_IsString (method) && id) {
        if (is_approval_method (method->valuestring))
            handle_approval_request (w, msg, method->valuestring);
        else {
            respond_error (w, id, -32601,
                           "method not supported by codeswarm-worker");
            worker_error (w, "unsupported_request", 0,
                          "app-server request '%s' is not supported; "
                          "answered with an error", method->valuestring);
        }
    }
    else if (cJSON_IsString (method))
        handle_notification (w, msg, method->valuestring);
    else if (id)
        handle_response (w, msg);
    cJSON_Delete (msg);
}

void as_read_stdout (struct worker *w, bool drain)
{
    const char *line;
    size_t len;
    bool overlong;
    int rounds = 0;

    if (!w->as || w->out_eof || spawn_stdout_fd (w->as) < 0)
        return;
    for (;;) {
        ssize_t n = lineio_fill (w->as_out, spawn_stdout_fd (w->as));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN) {
            log_err ("reading the app-server's stdout");
            n = 0;
        }
        while (w->as_out && lineio_next (w->as_out, &line, &len, &overlong) == 1)
            handle_line (w, line, len, overlong);
        outbox_flush (w);
        if (!w->as)
            return;
        if (n == 0) {
            if (lineio_rest (w->as_out, &line, &len) == 1)
                handle_line (w, line, len, false);
            outbox_flush (w);
            w->out_eof = true;
            spawn_close_stdout (w->as);
            return;
        }
        if (n < 0)              /* EAGAIN */
            return;
        /* a short read has most likely emptied the pipe: back to poll()
         * (level-triggered) rather than a read that says EAGAIN
         */
        if (!drain && (n < 4096 || ++rounds >= 16))
            return;
    }
}

static void stderr_line (struct worker *w, const char *line, size_t len)
{
    char buf[4096];
    size_t n = len < sizeof (buf) - 1 ? len : sizeof (buf) - 1;

    memcpy (buf, line, n);
    n = ansi_strip (buf, n);
    buf[n++] = '\n';
    tail_append (&w->tail, buf, n);
    if (w->log_fd >= 0 && fd_write_all (w->log_fd, buf, n) < 0)
        log_err ("cannot write '%s'", w->log_path);
    if (log_verbose () >= 2)
        log_trace ("codex: %.*s", (int)(n - 1), buf);
}

void as_read_stderr (struct worker *w, bool drain)
{
    const char *line;
    size_t len;
    bool overlong;
    int rounds = 0;

    if (!w->as || w->err_eof || spawn_stderr_fd (w->as) < 0)
        return;
    for (;;) {
        ssize_t n = lineio_fill (w->as_err, spawn_stderr_fd (w->as));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            n = 0;
        while (lineio_next (w->as_err, &line, &len, &overlong) == 1)
            stderr_line (w, line, len);
        if (n == 0) {
            if (lineio_rest (w->as_err, &line, &len) == 1)
                stderr_line (w, line, len);
            w->err_eof = true;
            spawn_close_stderr (w->as);
            return;
        }
        if (n < 0 || (!drain && ++rounds >= 16))
            return;
    }
}

/* ---- exits, timeouts, restarts -------------------------------------------- */

void as_kill (struct worker *w, const char *why)
{
    if (!w->as)
        return;
    log_msg ("killing the app-server: %s", why);
    (void)spawn_kill (w->as, SIGKILL);
}

bool as_busy (struct worker *w)
{
    if (w->turn_id)
        return true;
    for (struct pending *p = w->pending; p; p = p->next)
        if (p->kind == REQ_TURN_START
            || (p->kind == REQ_THREAD_START && p->item))
            return true;
    return false;
}

static double backoff_for (struct worker *w, int attempt)
{
    double b = w->cfg.restart_backoff_min;
    for (int i = 0; i < attempt && b < w->cfg.restart_backoff_max; i++)
        b *= 2;
    if (b > w->cfg.restart_backoff_max)
        b = w->cfg.restart_backoff_max;
    return b;
}

/* The child is gone (st says how): report, clean up what depended on it,
 * and decide about a restart.
 */
static void as_exited (struct worker *w, const struct spawn_status *st)
{
    char sbuf[64];
    bool was_ready = w->state == AS_READY;
    double now = time_mono ();

    /* what it wrote before dying is still part of the stream */
    as_read_stdout (w, true);
    as_read_stderr (w, true);

    log_msg ("app-server exited: %s", spawn_status_str (st, sbuf, sizeof (sbuf)));
    cJSON *rec = cJSON_CreateObject ();
    if (rec) {
        if (st->exited)
            json_add_u64 (rec, "code", (uint64_t)st->code);
        if (st->signaled)
            json_add_u64 (rec, "signal", (uint64_t)st->signal);
        char *t = tail_str (&w->tail);
        json_add_str (rec, "stderr_tail", t ? t : "");
        free (t);
        worker_record (w, "app_server_exited", rec);
        cJSON_Delete (rec);
    }

    /* the running turn died with it */
    if (w->turn_id) {
        worker_turn_aborted (w, w->turn_id,
                             w->turn_item ? w->turn_item->id : NULL,
                             w->stopping ? "shutdown" : "app_server_exited");
        free (w->turn_id);
        w->turn_id = NULL;
        item_free (w->turn_item);
        w->turn_item = NULL;
    }
    if (w->waiting_interrupt) {
        item_done (w, w->waiting_interrupt->seq, w->waiting_interrupt->id);
        item_free (w->waiting_interrupt);
        w->waiting_interrupt = NULL;
    }
    /* requests in flight: user records go back to the head of the queue,
     * in their order; an interrupt has nothing left to interrupt
     */
    struct item *back = NULL, **bt = &back;
    while (w->pending) {
        struct pending *p = w->pending;
        w->pending = p->next;
        if ((p->kind == REQ_TURN_START || p->kind == REQ_TURN_STEER
             || p->kind == REQ_THREAD_START)
            && p->item) {
            *bt = p->item;
            bt = &p->item->next;
            p->item->next = NULL;
            p->item = NULL;
        }
        else if (p->kind == REQ_TURN_INTERRUPT && p->item)
            item_done (w, p->item->seq, p->item->id);
        item_free (p->item);
        free (p);
    }
    if (back) {
        /* push in reverse so that the first stays first */
        struct item *rev = NULL;
        while (back) {
            struct item *n = back->next;
            back->next = rev;
            rev = back;
            back = n;
        }
        while (rev) {
            struct item *n = rev->next;
            queue_push_front (w, rev);
            rev = n;
        }
    }
    while (w->approvals) {
        struct approval *a = w->approvals;
        cJSON *r = cJSON_CreateObject ();
        if (r) {
            json_add_str (r, "approval_id", a->approval_id);
            json_add_str (r, "decision", "cancel");
            json_add_str (r, "by", "app_server_exited");
            worker_record (w, "approval_resolved", r);
            cJSON_Delete (r);
        }
        approval_unlink_free (w, a);
    }

    as_release (w);
    (void)worker_checkpoint (w);

    if (w->stopping)
        return;                 /* the main loop finishes the stop */
    if (was_ready) {
        if (now - w->ready_at >= w->cfg.healthy_after)
            w->attempt = 0;
    }
    else
        w->failed_starts++;
    if (w->failed_starts >= w->cfg.max_failed_starts) {
        worker_error (w, "app_server_failed", 0,
                      "the app-server failed to start %d times in a row "
                      "(last: %s)", w->failed_starts, sbuf);
        w->exit_code = 1;
        worker_stop (w, "app_server_failed");
        return;
    }
    double b = backoff_for (w, w->attempt);
    w->restart_at = now + b;
    log_msg ("restarting the app-server in %.3gs", b);
}

void as_reap (struct worker *w)
{
    struct spawn_status st;

    if (!w->as)
        return;
    if (spawn_poll (w->as, &st) == 1)
        as_exited (w, &st);
}

static void as_restart (struct worker *w)
{
    double b = backoff_for (w, w->attempt);
    cJSON *rec = cJSON_CreateObject ();

    w->restart_at = 0;
    w->attempt++;
    if (rec) {
        json_add_u64 (rec, "attempt", (uint64_t)w->attempt);
        json_add_double (rec, "backoff", b);
        worker_record (w, "app_server_restarted", rec);
        cJSON_Delete (rec);
    }
    as_launch (w);
}

void as_launch (struct worker *w)
{
    if (as_start (w) < 0) {
        struct spawn_status st = { .exited = true, .code = 127 };
        w->state = AS_STARTING;             /* counts as a failed start */
        as_exited (w, &st);
    }
}

double as_next_timer (struct worker *w)
{
    double t = -1;
    if (w->restart_at > 0)
        t = w->restart_at;
    for (struct pending *p = w->pending; p; p = p->next) {
        double d = p->sent + w->cfg.request_timeout;
        if (t < 0 || d < t)
            t = d;
    }
    for (struct approval *a = w->approvals; a; a = a->next)
        if (t < 0 || a->deadline < t)
            t = a->deadline;
    return t;
}

void as_timers (struct worker *w, double now)
{
    if (w->restart_at > 0 && now >= w->restart_at && !w->as)
        as_restart (w);
    for (struct pending *p = w->pending; p; p = p->next) {
        if (now - p->sent >= w->cfg.request_timeout) {
            worker_error (w, "app_server_timeout", 0,
                          "no answer to %s (request %llu) within %gs",
                          req_name (p->kind), (unsigned long long)p->id,
                          w->cfg.request_timeout);
            p->sent = now + 1e9;            /* report once */
            as_kill (w, "request timed out");
            break;
        }
    }
    struct approval *a = w->approvals;
    while (a) {
        struct approval *next = a->next;
        if (now >= a->deadline)
            approval_answer_str (w, a, "decline", "timeout");
        a = next;
    }
}

/* Orderly end: close stdin, give it a moment, then TERM/KILL. */
void as_finish (struct worker *w)
{
    struct spawn_status st;
    double deadline = time_mono () + 5.0;

    if (!w->as)
        return;
    outbuf_flush (w->as_in, spawn_stdin_fd (w->as));
    spawn_close_stdin (w->as);
    while (time_mono () < deadline) {
        struct pollfd pfd[2];
        int n = 0;
        if (spawn_poll (w->as, &st) == 1)
            goto done;
        if (!w->out_eof && spawn_stdout_fd (w->as) >= 0)
            pfd[n++] = (struct pollfd){ spawn_stdout_fd (w->as), POLLIN, 0 };
        if (!w->err_eof && spawn_stderr_fd (w->as) >= 0)
            pfd[n++] = (struct pollfd){ spawn_stderr_fd (w->as), POLLIN, 0 };
        (void)poll (pfd, n, 20);
        as_read_stdout (w, false);
        as_read_stderr (w, false);
    }
    (void)spawn_stop (w->as, 2.0, &st);
done:
    {
        char sbuf[64];
        cJSON *rec = cJSON_CreateObject ();
        log_debug ("app-server ended: %s",
                   spawn_status_str (&st, sbuf, sizeof (sbuf)));
        if (rec) {
            if (st.exited)
                json_add_u64 (rec, "code", (uint64_t)st.code);
            if (st.signaled)
                json_add_u64 (rec, "signal", (uint64_t)st.signal);
            char *t = tail_str (&w->tail);
            json_add_str (rec, "stderr_tail", t ? t : "");
            free (t);
            worker_record (w, "app_server_exited", rec);
            cJSON_Delete (rec);
        }
    }
    as_release (w);
}
