/* translate-appserver.c - app-server messages (outbox "rpc" records)
 *
 * The codex app-server's notifications become events: turn/started,
 * item deltas and completed items (agent messages, commands, reasoning),
 * token usage, turn/completed, thread status and error notifications.
 * What is not known here goes on as a debug event under --debug.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/translate-private.h"

/* --debug: pass something the translator does not know on as an event
 * (name) holding a copy of it under key
 */
int tr_debug_event (rt_trans_t *t, int k, struct node *n,
                    const char *name, const char *key, const cJSON *what)
{
    cJSON *d, *c;
    if (!t->debug)
        return 0;
    if (!(d = tr_ev_new (t, k, n, n->turn_injection)))
        return 0;
    if ((c = cJSON_Duplicate (what, true))
        && !cJSON_AddItemToObject (d, key, c))
        cJSON_Delete (c);
    tr_ev_emit (t, name, d);
    return 0;
}

static int debug_rpc (rt_trans_t *t, int k, struct node *n, const cJSON *msg)
{
    return tr_debug_event (t, k, n, "debug_rpc", "msg", msg);
}

static void on_turn_started (rt_trans_t *t, int k, struct node *n,
                             const cJSON *p)
{
    const char *turn_id = get_str (get_obj (p, "turn"), "id");
    cJSON *d;

    if (!turn_id || tr_ring_find (&n->done_turns, turn_id) >= 0)
        return;
    if (n->turn_id && !strcmp (n->turn_id, turn_id))
        return;                                 /* said already */
    if (n->held_turn && strcmp (n->held_turn, turn_id))
        tr_flush_held (t, k, n, false);            /* a turn that never ended */
    tr_set_str (&n->turn_id, turn_id);
    tr_set_str (&n->turn_injection, tr_ring_get (&n->turn_inj, turn_id));
    if ((d = tr_ev_new (t, k, n, n->turn_injection))) {
        tr_add_s (d, "turn_id", turn_id);
        tr_add_str_or_null (d, "thread_id", get_str (p, "threadId"));
        tr_ev_emit (t, "turn_started", d);
    }
}

static const char *params_turn (struct node *n, const cJSON *p)
{
    const char *tid = get_str (p, "turnId");
    return tid ? tid : n->turn_id;
}

static void on_agent_delta (rt_trans_t *t, int k, struct node *n,
                            const cJSON *p, const char *name)
{
    const char *delta = get_str (p, "delta");
    const char *turn_id = params_turn (n, p);
    cJSON *d;

    if (!delta)
        return;
    if (turn_id && tr_ring_find (&n->done_turns, turn_id) >= 0)
        return;
    if (t->emit_text) {
        const char *item_id = get_str (p, "itemId");
        if (tr_text_begin (t, k, n, tr_turn_injection (n, turn_id)) == 0
            && tr_text_str_or_null (t, "turn_id", turn_id) == 0
            && tr_text_str_or_null (t, "item_id", item_id) == 0
            && tr_text_str_or_null (t, "delta", delta) == 0
            && tr_text_str_or_null (t, "content", delta) == 0)
            (void)tr_text_end (t, name);
        return;
    }
    if ((d = tr_ev_new (t, k, n, tr_turn_injection (n, turn_id)))) {
        tr_add_str_or_null (d, "turn_id", turn_id);
        tr_add_str_or_null (d, "item_id", get_str (p, "itemId"));
        tr_add_s (d, "delta", delta);
        tr_add_s (d, "content", delta);            /* upstream's name */
        tr_ev_emit (t, name, d);
    }
}

static char *join_strings (const cJSON *a)
{
    const cJSON *e;
    size_t len = 0;
    char *s, *p;

    if (cJSON_IsString (a))
        return strdup (a->valuestring);
    if (!cJSON_IsArray (a))
        return NULL;
    cJSON_ArrayForEach (e, a) {
        const char *txt = cJSON_IsString (e) ? e->valuestring
                                             : get_str (e, "text");
        if (txt)
            len += strlen (txt) + 1;
    }
    if (!(s = malloc (len + 1)))
        return NULL;
    p = s;
    cJSON_ArrayForEach (e, a) {
        const char *txt = cJSON_IsString (e) ? e->valuestring
                                             : get_str (e, "text");
        if (txt) {
            size_t l = strlen (txt);
            if (p != s)
                *p++ = '\n';
            memcpy (p, txt, l);
            p += l;
        }
    }
    *p = '\0';
    return s;
}

static void on_item (rt_trans_t *t, int k, struct node *n, const cJSON *p,
                     bool completed)
{
    const cJSON *item = get_obj (p, "item");
    const char *type = get_str (item, "type");
    const char *item_id = get_str (item, "id");
    const char *turn_id = params_turn (n, p);
    const char *inj;
    cJSON *d;

    if (!type || !item_id)
        return;
    if (turn_id && tr_ring_find (&n->done_turns, turn_id) >= 0)
        return;                                 /* late: the turn is over */
    inj = tr_turn_injection (n, turn_id);

    if (!strcmp (type, "agentMessage")) {
        const char *text = get_str (item, "text");
        if (!completed || !text)
            return;
        if (tr_ring_find (&n->done_items, item_id) >= 0)
            return;
        tr_ring_put (&n->done_items, item_id, NULL);
        tr_flush_held (t, k, n, false);
        n->held_turn = tr_xstrdup (turn_id);
        n->held_item = tr_xstrdup (item_id);
        n->held_text = tr_xstrdup (text);
        n->held_injection = tr_xstrdup (inj);
        n->held_phase = tr_xstrdup (get_str (item, "phase"));
        return;
    }
    if (!strcmp (type, "commandExecution")) {
        if (!(d = tr_ev_new (t, k, n, inj)))
            return;
        tr_add_str_or_null (d, "turn_id", turn_id);
        tr_add_s (d, "item_id", item_id);
        tr_add_s (d, "call_id", item_id);
        tr_add_copy (d, "command", item, "command");
        tr_add_copy (d, "cwd", item, "cwd");
        if (completed) {
            double ms;
            tr_add_copy (d, "status", item, "status");
            tr_add_copy (d, "output", item, "aggregatedOutput");
            tr_add_copy (d, "exit_code", item, "exitCode");
            tr_add_copy (d, "duration_ms", item, "durationMs");
            /* upstream's members: codex aggregates stdout and stderr */
            tr_add_copy (d, "stdout", item, "aggregatedOutput");
            tr_add_null (d, "stderr");
            if (get_num (item, "durationMs", &ms) && ms >= 0) {
                cJSON *du = cJSON_CreateObject ();
                uint64_t us = (uint64_t)(ms * 1000 + 0.5);
                if (du) {
                    tr_add_n (du, "secs", (double)(us / 1000000));
                    tr_add_n (du, "nanos", (double)(us % 1000000 * 1000));
                }
                tr_put_item (d, "duration", du);
            }
            else
                tr_add_null (d, "duration");
        }
        tr_ev_emit (t, completed ? "command_completed" : "command_started", d);
        return;
    }
    if (!strcmp (type, "fileChange")) {
        if (!(d = tr_ev_new (t, k, n, inj)))
            return;
        tr_add_str_or_null (d, "turn_id", turn_id);
        tr_add_s (d, "item_id", item_id);
        tr_add_s (d, "call_id", item_id);
        tr_add_copy (d, "status", item, "status");
        tr_add_copy (d, "changes", item, "changes");
        tr_ev_emit (t,
                    completed ? "filechange_completed" : "filechange_started",
                    d);
        return;
    }
    if (!strcmp (type, "reasoning") && completed) {
        char *summary = join_strings (
            cJSON_GetObjectItemCaseSensitive (item, "summary"));
        char *content = join_strings (
            cJSON_GetObjectItemCaseSensitive (item, "content"));
        if ((summary && *summary) || (content && *content)) {
            if ((d = tr_ev_new (t, k, n, inj))) {
                tr_add_str_or_null (d, "turn_id", turn_id);
                tr_add_s (d, "item_id", item_id);
                tr_add_s (d, "text", summary ? summary : "");
                /* upstream's "content" is the reasoning text */
                tr_add_str_or_null (d, "content",
                                 summary && *summary ? summary : content);
                tr_add_str_or_null (d, "raw_content", content);
                tr_ev_emit (t, "reasoning", d);
            }
        }
        free (summary);
        free (content);
        return;
    }
}

static void add_usage (cJSON *d, bool last, const cJSON *u)
{
    static const char *const keys[][3] = {
        { "totalTokens", "total_tokens", "last_total_tokens" },
        { "inputTokens", "input_tokens", "last_input_tokens" },
        { "cachedInputTokens", "cached_input_tokens",
          "last_cached_input_tokens" },
        { "outputTokens", "output_tokens", "last_output_tokens" },
        { "reasoningOutputTokens", "reasoning_output_tokens",
          "last_reasoning_output_tokens" },
    };
    for (size_t i = 0; i < sizeof (keys) / sizeof (keys[0]); i++) {
        const char *name = keys[i][last ? 2 : 1];
        double v;
        if (u && get_num (u, keys[i][0], &v))
            tr_add_n (d, name, v);
        else
            tr_add_null (d, name);
    }
}

static void on_usage (rt_trans_t *t, int k, struct node *n, const cJSON *p)
{
    const cJSON *u = get_obj (p, "tokenUsage");
    const char *turn_id = params_turn (n, p);
    const cJSON *total;
    double v;
    cJSON *d;

    if (!u)
        return;
    total = get_obj (u, "total");
    if (total && get_num (total, "totalTokens", &v) && v >= 0)
        n->total_tokens = (uint64_t)v;
    /* a thread/resume announces the thread's usage again, naming the turn
     * before the restart: that turn had its usage event already
     */
    if (turn_id && tr_ring_find (&n->done_turns, turn_id) >= 0)
        return;
    if (!(d = tr_ev_new (t, k, n, tr_turn_injection (n, turn_id))))
        return;
    tr_add_str_or_null (d, "turn_id", turn_id);
    add_usage (d, false, total);
    add_usage (d, true, get_obj (u, "last"));
    tr_add_copy (d, "model_context_window", u, "modelContextWindow");
    tr_add_s (d, "usage_source", "thread/tokenUsage/updated");
    tr_ev_emit (t, "usage", d);
}

static void on_turn_completed (rt_trans_t *t, int k, struct node *n,
                               const cJSON *p)
{
    const cJSON *turn = get_obj (p, "turn");
    const char *turn_id = get_str (turn, "id");
    const char *status = get_str (turn, "status");

    if (!turn_id)
        return;
    if (!status || (strcmp (status, "completed") && strcmp (status, "failed")
                    && strcmp (status, "interrupted")))
        status = "failed";
    tr_end_turn (t, k, n, turn_id, status,
                 cJSON_GetObjectItemCaseSensitive (turn, "error"),
                 cJSON_GetObjectItemCaseSensitive (turn, "durationMs"));
}

static void on_thread_status (rt_trans_t *t, int k, struct node *n,
                              const cJSON *p)
{
    const cJSON *st = get_obj (p, "status");
    const char *type = get_str (st, "type");
    cJSON *d;

    if (!type)
        return;
    if (!(d = tr_ev_new (t, k, n, n->turn_injection)))
        return;
    tr_add_str_or_null (d, "thread_id", get_str (p, "threadId"));
    tr_add_copy (d, "status", p, "status");        /* codex's {type,...} */
    tr_add_s (d, "status_type", type);
    if (cJSON_IsArray (cJSON_GetObjectItemCaseSensitive (st, "activeFlags")))
        tr_add_copy (d, "active_flags", st, "activeFlags");
    else
        cJSON_AddItemToObject (d, "active_flags", cJSON_CreateArray ());
    tr_ev_emit (t, "thread_status", d);
}

static void on_error_notification (rt_trans_t *t, int k, struct node *n,
                                   const cJSON *p)
{
    const cJSON *err = get_obj (p, "error");
    const char *turn_id = params_turn (n, p);
    const cJSON *retry = cJSON_GetObjectItemCaseSensitive (p, "willRetry");
    cJSON *d;

    if (!(d = tr_ev_new (t, k, n, tr_turn_injection (n, turn_id))))
        return;
    tr_add_s (d, "source", "codex");
    tr_add_str_or_null (d, "turn_id", turn_id);
    tr_add_str_or_null (d, "message", err ? get_str (err, "message")
                                       : get_str (p, "message"));
    tr_add_copy (d, "codex_error_info", err, "codexErrorInfo");
    tr_add_copy (d, "error_code", err, "codexErrorInfo");     /* upstream's */
    tr_add_b (d, "will_retry", cJSON_IsTrue (retry));
    tr_ev_emit (t, "agent_error", d);
}

void tr_on_rpc (rt_trans_t *t, int k, struct node *n, const cJSON *msg)
{
    const char *method = get_str (msg, "method");
    const cJSON *p;
    bool is_request = member (msg, "id") != NULL;

    if (!method || is_request) {
        /* responses to the worker's requests, and server requests (the
         * worker announces approvals in its own records) */
        debug_rpc (t, k, n, msg);
        return;
    }
    p = get_obj (msg, "params");
    if (!p) {
        debug_rpc (t, k, n, msg);
        return;
    }
    if (!strcmp (method, "turn/started"))
        on_turn_started (t, k, n, p);
    else if (!strcmp (method, "item/agentMessage/delta"))
        on_agent_delta (t, k, n, p, "assistant_delta");
    else if (!strcmp (method, "item/reasoning/summaryTextDelta")
             || !strcmp (method, "item/reasoning/textDelta"))
        on_agent_delta (t, k, n, p, "reasoning_delta");
    else if (!strcmp (method, "item/started"))
        on_item (t, k, n, p, false);
    else if (!strcmp (method, "item/completed"))
        on_item (t, k, n, p, true);
    else if (!strcmp (method, "thread/tokenUsage/updated"))
        on_usage (t, k, n, p);
    else if (!strcmp (method, "turn/completed"))
        on_turn_completed (t, k, n, p);
    else if (!strcmp (method, "thread/status/changed"))
        on_thread_status (t, k, n, p);
    else if (!strcmp (method, "error"))
        on_error_notification (t, k, n, p);
    else
        debug_rpc (t, k, n, msg);
}
