/* translate.c - worker outbox records -> router events (see translate.h) */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/translate.h"

#define RECENT 16               /* ring sizes: turns, items, injections */

struct ring {
    char *key[RECENT];
    char *val[RECENT];
    int next;
};

struct node {
    bool seen;
    uint64_t last_seq;
    char *job_id;
    char *thread_id;
    int starts;                 /* worker_started records seen */
    bool ready;
    bool stopped;
    bool lost;
    unsigned degraded;          /* DEGRADED_* bits: the mailbox fails it */
    double last_heard;

    char *turn_id;              /* turn in flight (turn/started seen) */
    char *turn_injection;
    uint64_t turns;             /* turns completed */
    uint64_t total_tokens;

    /* the last agent message of a turn, held until the turn ends */
    char *held_turn;
    char *held_item;
    char *held_text;
    char *held_injection;
    char *held_phase;

    struct ring turn_inj;       /* turn id -> injection id */
    struct ring done_turns;     /* turns that got turn_complete */
    struct ring done_items;     /* agent messages already emitted */

    cJSON *approvals;           /* approval_id -> exec_approval_required data */
};

struct rt_trans {
    char *swarm_id;
    char *job_id;
    rt_emit_f emit;
    void *arg;
    bool debug;
    struct node **nodes;
    int nnodes;                 /* allocated slots */
    int count;                  /* events emitted by the current call */
    bool swarm_seen;            /* the swarm stream */
    uint64_t swarm_last_seq;
};

/* ---- small helpers ---------------------------------------------------- */

static char *xstrdup (const char *s)
{
    return s ? strdup (s) : NULL;
}

static void set_str (char **dst, const char *s)
{
    char *cpy = xstrdup (s);
    if (s && !cpy)
        return;                 /* ENOMEM: keep the old value */
    free (*dst);
    *dst = cpy;
}

/* cJSON_GetObjectItemCaseSensitive without the library call and with a
 * first-byte check before strcmp: the first member named key, NULL when
 * none (or o is no object).  The lookups are most of the translator's own
 * work on the hot records (deltas).
 */
static inline const cJSON *member (const cJSON *o, const char *key)
{
    const cJSON *c;
    if (!o || !key)
        return NULL;
    for (c = o->child; c && c->string; c = c->next)
        if (c->string[0] == key[0] && !strcmp (c->string, key))
            return c;
    return NULL;
}

static const char *get_str (const cJSON *o, const char *key)
{
    const cJSON *v = member (o, key);
    return cJSON_IsString (v) ? v->valuestring : NULL;
}

static const cJSON *get_obj (const cJSON *o, const char *key)
{
    const cJSON *v = member (o, key);
    return cJSON_IsObject (v) ? v : NULL;
}

static bool get_num (const cJSON *o, const char *key, double *val)
{
    const cJSON *v = member (o, key);
    if (!cJSON_IsNumber (v))
        return false;
    *val = v->valuedouble;
    return true;
}

static bool get_u64 (const cJSON *o, const char *key, uint64_t *val)
{
    double d;
    if (!get_num (o, key, &d) || !(d >= 0) || d >= 9007199254740992.0
        || d != (double)(uint64_t)d)
        return false;
    *val = (uint64_t)d;
    return true;
}

static void ring_release (struct ring *r)
{
    for (int i = 0; i < RECENT; i++) {
        free (r->key[i]);
        free (r->val[i]);
        r->key[i] = r->val[i] = NULL;
    }
    r->next = 0;
}

static int ring_find (const struct ring *r, const char *key)
{
    if (!key)
        return -1;
    for (int i = 0; i < RECENT; i++)
        if (r->key[i] && !strcmp (r->key[i], key))
            return i;
    return -1;
}

static void ring_put (struct ring *r, const char *key, const char *val)
{
    int i = ring_find (r, key);
    if (!key)
        return;
    if (i < 0) {
        i = r->next;
        r->next = (r->next + 1) % RECENT;
        set_str (&r->key[i], key);
    }
    set_str (&r->val[i], val);
}

static const char *ring_get (const struct ring *r, const char *key)
{
    int i = ring_find (r, key);
    return i < 0 ? NULL : r->val[i];
}

static cJSON *ring_to_json (const struct ring *r, bool with_val)
{
    cJSON *a = cJSON_CreateArray ();
    if (!a)
        return NULL;
    /* oldest first, so that restoring in order keeps the ring order */
    for (int k = 0; k < RECENT; k++) {
        int i = (r->next + k) % RECENT;
        cJSON *e;
        if (!r->key[i])
            continue;
        if (with_val) {
            e = cJSON_CreateArray ();
            if (e) {
                cJSON_AddItemToArray (e, cJSON_CreateString (r->key[i]));
                cJSON_AddItemToArray (e, r->val[i]
                                          ? cJSON_CreateString (r->val[i])
                                          : cJSON_CreateNull ());
            }
        }
        else
            e = cJSON_CreateString (r->key[i]);
        if (e)
            cJSON_AddItemToArray (a, e);
    }
    return a;
}

static void ring_from_json (struct ring *r, const cJSON *a, bool with_val)
{
    const cJSON *e;
    ring_release (r);
    if (!cJSON_IsArray (a))
        return;
    cJSON_ArrayForEach (e, a) {
        if (with_val) {
            const cJSON *k = cJSON_GetArrayItem (e, 0);
            const cJSON *v = cJSON_GetArrayItem (e, 1);
            if (cJSON_IsArray (e) && cJSON_IsString (k))
                ring_put (r, k->valuestring,
                          cJSON_IsString (v) ? v->valuestring : NULL);
        }
        else if (cJSON_IsString (e))
            ring_put (r, e->valuestring, NULL);
    }
}

static void held_clear (struct node *n)
{
    free (n->held_turn);
    free (n->held_item);
    free (n->held_text);
    free (n->held_injection);
    free (n->held_phase);
    n->held_turn = n->held_item = n->held_text = NULL;
    n->held_injection = n->held_phase = NULL;
}

static void node_destroy (struct node *n)
{
    if (n) {
        free (n->job_id);
        free (n->thread_id);
        free (n->turn_id);
        free (n->turn_injection);
        held_clear (n);
        ring_release (&n->turn_inj);
        ring_release (&n->done_turns);
        ring_release (&n->done_items);
        cJSON_Delete (n->approvals);
        free (n);
    }
}

static struct node *node_get (rt_trans_t *t, int k, bool create)
{
    if (k < 0 || k >= RT_MAX_NODES)
        return NULL;
    if (k >= t->nnodes) {
        int want;
        struct node **p;
        if (!create)
            return NULL;
        want = t->nnodes ? t->nnodes : 8;
        while (want <= k)
            want *= 2;
        if (want > RT_MAX_NODES)
            want = RT_MAX_NODES;
        if (!(p = realloc (t->nodes, want * sizeof (*p))))
            return NULL;
        memset (p + t->nnodes, 0, (want - t->nnodes) * sizeof (*p));
        t->nodes = p;
        t->nnodes = want;
    }
    if (!t->nodes[k] && create) {
        struct node *n = calloc (1, sizeof (*n));
        if (!n || !(n->approvals = cJSON_CreateObject ())) {
            free (n);
            return NULL;
        }
        t->nodes[k] = n;
    }
    return t->nodes[k];
}

/* Members with literal keys: cJSON need not copy (and free) the key. */
static void put_item (cJSON *o, const char *key, cJSON *item)
{
    if (item && !cJSON_AddItemToObjectCS (o, key, item))
        cJSON_Delete (item);
}

static void add_s (cJSON *o, const char *key, const char *val)
{
    put_item (o, key, cJSON_CreateString (val));
}

static void add_n (cJSON *o, const char *key, double val)
{
    put_item (o, key, cJSON_CreateNumber (val));
}

static void add_null (cJSON *o, const char *key)
{
    put_item (o, key, cJSON_CreateNull ());
}

static void add_b (cJSON *o, const char *key, bool val)
{
    put_item (o, key, cJSON_CreateBool (val));
}

/* ---- events ------------------------------------------------------------ */

/* A new data object with the common members. */
static cJSON *ev_new (rt_trans_t *t, int k, struct node *n,
                      const char *injection_id)
{
    cJSON *d = cJSON_CreateObject ();
    const char *job = n && n->job_id ? n->job_id : t->job_id;
    if (!d)
        return NULL;
    add_s (d, "swarm_id", t->swarm_id);
    if (job)
        add_s (d, "job_id", job);
    else
        add_null (d, "job_id");
    add_n (d, "node_id", k);
    if (injection_id)
        add_s (d, "injection_id", injection_id);
    else
        add_null (d, "injection_id");
    return d;
}

static void ev_emit (rt_trans_t *t, const char *name, cJSON *d)
{
    if (!d)
        return;
    t->count++;
    t->emit (name, d, t->arg);
}

static void add_str_or_null (cJSON *d, const char *key, const char *s)
{
    if (s)
        add_s (d, key, s);
    else
        add_null (d, key);
}

/* Copy member src[key] into d as dkey (null when missing). */
static void add_copy (cJSON *d, const char *dkey, const cJSON *src,
                      const char *key)
{
    const cJSON *v = src ? member (src, key) : NULL;
    put_item (d, dkey, v ? cJSON_Duplicate (v, true) : cJSON_CreateNull ());
}

/* The injection that a turn belongs to. */
static const char *turn_injection (struct node *n, const char *turn_id)
{
    const char *inj = ring_get (&n->turn_inj, turn_id);
    if (inj)
        return inj;
    if (turn_id && n->turn_id && !strcmp (turn_id, n->turn_id))
        return n->turn_injection;
    if (!turn_id)
        return n->turn_injection;
    return NULL;
}

static void flush_held (rt_trans_t *t, int k, struct node *n, bool final)
{
    cJSON *d;
    if (!n->held_item)
        return;
    if ((d = ev_new (t, k, n, n->held_injection))) {
        add_str_or_null (d, "turn_id", n->held_turn);
        add_s (d, "item_id", n->held_item);
        add_s (d, "text", n->held_text ? n->held_text : "");
        add_b (d, "final_answer", final);
        if (n->held_phase)
            add_s (d, "phase", n->held_phase);
        ev_emit (t, "assistant", d);
    }
    held_clear (n);
}

/* Drop pending approvals of a turn that ended (NULL: all of the node's). */
static void drop_approvals (struct node *n, const char *turn_id)
{
    cJSON *a = n->approvals ? n->approvals->child : NULL;
    while (a) {
        cJSON *next = a->next;
        const char *tid = get_str (a, "turn_id");
        if (!turn_id || (tid && !strcmp (tid, turn_id)))
            cJSON_Delete (cJSON_DetachItemViaPointer (n->approvals, a));
        a = next;
    }
}

/* End a turn once: the held message (final when completed), then
 * turn_complete.  error may be NULL.
 */
static void end_turn (rt_trans_t *t, int k, struct node *n,
                      const char *turn_id, const char *status,
                      const cJSON *error, const cJSON *duration)
{
    const char *inj;
    char *inj_copy;
    cJSON *d;

    if (!turn_id || ring_find (&n->done_turns, turn_id) >= 0)
        return;
    inj_copy = xstrdup (turn_injection (n, turn_id));
    inj = inj_copy;
    ring_put (&n->done_turns, turn_id, NULL);
    if (n->held_turn && !strcmp (n->held_turn, turn_id))
        flush_held (t, k, n, !strcmp (status, "completed"));
    drop_approvals (n, turn_id);
    if (n->turn_id && !strcmp (n->turn_id, turn_id)) {
        free (n->turn_id);
        free (n->turn_injection);
        n->turn_id = n->turn_injection = NULL;
    }
    n->turns++;
    if ((d = ev_new (t, k, n, inj))) {
        add_s (d, "turn_id", turn_id);
        add_s (d, "status", status);
        if (error && !cJSON_IsNull (error)) {
            cJSON *c = cJSON_Duplicate (error, true);
            if (c && !cJSON_AddItemToObject (d, "error", c))
                cJSON_Delete (c);
        }
        else
            add_null (d, "error");
        if (duration && cJSON_IsNumber (duration))
            add_n (d, "duration_ms", duration->valuedouble);
        else
            add_null (d, "duration_ms");
        ev_emit (t, "turn_complete", d);
    }
    free (inj_copy);
}

/* ---- app-server messages ------------------------------------------------ */

/* --debug: pass something the translator does not know on as an event
 * (name) holding a copy of it under key
 */
static int debug_event (rt_trans_t *t, int k, struct node *n,
                        const char *name, const char *key, const cJSON *what)
{
    cJSON *d, *c;
    if (!t->debug)
        return 0;
    if (!(d = ev_new (t, k, n, n->turn_injection)))
        return 0;
    if ((c = cJSON_Duplicate (what, true))
        && !cJSON_AddItemToObject (d, key, c))
        cJSON_Delete (c);
    ev_emit (t, name, d);
    return 0;
}

static int debug_rpc (rt_trans_t *t, int k, struct node *n, const cJSON *msg)
{
    return debug_event (t, k, n, "debug_rpc", "msg", msg);
}

static void on_turn_started (rt_trans_t *t, int k, struct node *n,
                             const cJSON *p)
{
    const char *turn_id = get_str (get_obj (p, "turn"), "id");
    cJSON *d;

    if (!turn_id || ring_find (&n->done_turns, turn_id) >= 0)
        return;
    if (n->turn_id && !strcmp (n->turn_id, turn_id))
        return;                                 /* said already */
    if (n->held_turn && strcmp (n->held_turn, turn_id))
        flush_held (t, k, n, false);            /* a turn that never ended */
    set_str (&n->turn_id, turn_id);
    set_str (&n->turn_injection, ring_get (&n->turn_inj, turn_id));
    if ((d = ev_new (t, k, n, n->turn_injection))) {
        add_s (d, "turn_id", turn_id);
        add_str_or_null (d, "thread_id", get_str (p, "threadId"));
        ev_emit (t, "turn_started", d);
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
    if (turn_id && ring_find (&n->done_turns, turn_id) >= 0)
        return;
    if ((d = ev_new (t, k, n, turn_injection (n, turn_id)))) {
        add_str_or_null (d, "turn_id", turn_id);
        add_str_or_null (d, "item_id", get_str (p, "itemId"));
        add_s (d, "delta", delta);
        ev_emit (t, name, d);
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
    if (turn_id && ring_find (&n->done_turns, turn_id) >= 0)
        return;                                 /* late: the turn is over */
    inj = turn_injection (n, turn_id);

    if (!strcmp (type, "agentMessage")) {
        const char *text = get_str (item, "text");
        if (!completed || !text)
            return;
        if (ring_find (&n->done_items, item_id) >= 0)
            return;
        ring_put (&n->done_items, item_id, NULL);
        flush_held (t, k, n, false);
        n->held_turn = xstrdup (turn_id);
        n->held_item = xstrdup (item_id);
        n->held_text = xstrdup (text);
        n->held_injection = xstrdup (inj);
        n->held_phase = xstrdup (get_str (item, "phase"));
        return;
    }
    if (!strcmp (type, "commandExecution")) {
        if (!(d = ev_new (t, k, n, inj)))
            return;
        add_str_or_null (d, "turn_id", turn_id);
        add_s (d, "item_id", item_id);
        add_copy (d, "command", item, "command");
        add_copy (d, "cwd", item, "cwd");
        if (completed) {
            add_copy (d, "status", item, "status");
            add_copy (d, "output", item, "aggregatedOutput");
            add_copy (d, "exit_code", item, "exitCode");
            add_copy (d, "duration_ms", item, "durationMs");
        }
        ev_emit (t, completed ? "command_completed" : "command_started", d);
        return;
    }
    if (!strcmp (type, "fileChange")) {
        if (!(d = ev_new (t, k, n, inj)))
            return;
        add_str_or_null (d, "turn_id", turn_id);
        add_s (d, "item_id", item_id);
        add_copy (d, "status", item, "status");
        add_copy (d, "changes", item, "changes");
        ev_emit (t, completed ? "filechange_completed" : "filechange_started",
                 d);
        return;
    }
    if (!strcmp (type, "reasoning") && completed) {
        char *summary = join_strings (
            cJSON_GetObjectItemCaseSensitive (item, "summary"));
        char *content = join_strings (
            cJSON_GetObjectItemCaseSensitive (item, "content"));
        if ((summary && *summary) || (content && *content)) {
            if ((d = ev_new (t, k, n, inj))) {
                add_str_or_null (d, "turn_id", turn_id);
                add_s (d, "item_id", item_id);
                add_s (d, "text", summary ? summary : "");
                add_str_or_null (d, "content", content);
                ev_emit (t, "reasoning", d);
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
            add_n (d, name, v);
        else
            add_null (d, name);
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
    if (!(d = ev_new (t, k, n, turn_injection (n, turn_id))))
        return;
    add_str_or_null (d, "turn_id", turn_id);
    add_usage (d, false, total);
    add_usage (d, true, get_obj (u, "last"));
    add_copy (d, "model_context_window", u, "modelContextWindow");
    add_s (d, "usage_source", "thread/tokenUsage/updated");
    ev_emit (t, "usage", d);
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
    end_turn (t, k, n, turn_id, status,
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
    if (!(d = ev_new (t, k, n, n->turn_injection)))
        return;
    add_str_or_null (d, "thread_id", get_str (p, "threadId"));
    add_s (d, "status", type);
    if (cJSON_IsArray (cJSON_GetObjectItemCaseSensitive (st, "activeFlags")))
        add_copy (d, "active_flags", st, "activeFlags");
    else
        cJSON_AddItemToObject (d, "active_flags", cJSON_CreateArray ());
    ev_emit (t, "thread_status", d);
}

static void on_error_notification (rt_trans_t *t, int k, struct node *n,
                                   const cJSON *p)
{
    const cJSON *err = get_obj (p, "error");
    const char *turn_id = params_turn (n, p);
    const cJSON *retry = cJSON_GetObjectItemCaseSensitive (p, "willRetry");
    cJSON *d;

    if (!(d = ev_new (t, k, n, turn_injection (n, turn_id))))
        return;
    add_s (d, "source", "codex");
    add_str_or_null (d, "turn_id", turn_id);
    add_str_or_null (d, "message", err ? get_str (err, "message")
                                       : get_str (p, "message"));
    add_copy (d, "codex_error_info", err, "codexErrorInfo");
    add_b (d, "will_retry", cJSON_IsTrue (retry));
    ev_emit (t, "agent_error", d);
}

static void on_rpc (rt_trans_t *t, int k, struct node *n, const cJSON *msg)
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

/* ---- worker records ------------------------------------------------------ */

#define DEGRADED_OUTBOX 1u
#define DEGRADED_INBOX 2u

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
    cJSON *d = ev_new (t, k, n, n->turn_injection);
    if (!d)
        return;
    for (; members && *members; members++)
        add_copy (d, *members, rec, *members);
    ev_emit (t, name, d);
}

static void on_worker_started (rt_trans_t *t, int k, struct node *n,
                               const cJSON *rec)
{
    static const char *const m[] = { "host", "pid", "codex_version", NULL };
    const cJSON *job = cJSON_GetObjectItemCaseSensitive (rec, "job_id");
    cJSON *d;

    if (cJSON_IsString (job))
        set_str (&n->job_id, job->valuestring);
    n->starts++;
    n->ready = false;
    n->stopped = false;
    n->degraded = 0;
    /* whatever was in flight died with the previous worker */
    if (n->turn_id) {
        char *tid = xstrdup (n->turn_id);
        cJSON *err = cJSON_CreateObject ();
        if (err)
            add_s (err, "message", "the worker restarted");
        end_turn (t, k, n, tid, "failed", err, NULL);
        cJSON_Delete (err);
        free (tid);
    }
    flush_held (t, k, n, false);
    drop_approvals (n, NULL);
    if (n->starts > 1) {
        if ((d = ev_new (t, k, n, NULL))) {
            add_s (d, "reason", "worker");
            for (const char *const *p = m; *p; p++)
                add_copy (d, *p, rec, *p);
            ev_emit (t, "node_restarted", d);
        }
    }
    else
        simple_event (t, k, n, "node_started", rec, m);
}

static void on_inject_accepted (rt_trans_t *t, int k, struct node *n,
                                const cJSON *rec)
{
    static const char *const m[] = { "action", "turn_id", "inbox_seq", NULL };
    const char *inj = get_str (rec, "injection_id");
    const char *turn_id = get_str (rec, "turn_id");
    const char *action = get_str (rec, "action");
    cJSON *d;

    if (turn_id && inj && action
        && (!strcmp (action, "turn/start") || !strcmp (action, "turn/steer"))
        && !ring_get (&n->turn_inj, turn_id)) {
        ring_put (&n->turn_inj, turn_id, inj);
        if (n->turn_id && !strcmp (n->turn_id, turn_id) && !n->turn_injection)
            set_str (&n->turn_injection, inj);
        /* the turn is about to start: what comes before turn/started
         * (thread/status/changed) belongs to it */
        if (!n->turn_id)
            set_str (&n->turn_injection, inj);
    }
    if (!(d = ev_new (t, k, n, inj)))
        return;
    for (const char *const *p = m; *p; p++)
        add_copy (d, *p, rec, *p);
    ev_emit (t, "inject_delivered", d);
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
    if (turn_id && ring_find (&n->done_turns, turn_id) >= 0)
        return;
    if (!(d = ev_new (t, k, n, turn_injection (n, turn_id))))
        return;
    add_s (d, "approval_id", id);
    add_s (d, "call_id", id);
    add_s (d, "kind",
                             method && strstr (method, "fileChange")
                                 ? "file_change" : "command");
    add_copy (d, "method", rec, "method");
    add_copy (d, "thread_id", rec, "thread_id");
    add_copy (d, "turn_id", rec, "turn_id");
    add_copy (d, "item_id", rec, "item_id");
    add_copy (d, "command", rec, "command");
    add_copy (d, "cwd", rec, "cwd");
    add_copy (d, "reason", rec, "reason");
    add_copy (d, "available_decisions", rec, "available_decisions");
    if ((c = cJSON_Duplicate (d, true))
        && !cJSON_AddItemToObject (n->approvals, id, c))
        cJSON_Delete (c);
    ev_emit (t, "exec_approval_required", d);
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
        inj = xstrdup (get_str (a, "injection_id"));
    cJSON_DeleteItemFromObjectCaseSensitive (n->approvals, id);
    if ((d = ev_new (t, k, n, inj))) {
        for (const char *const *p = m; *p; p++)
            add_copy (d, *p, rec, *p);
        add_s (d, "call_id", id);
        ev_emit (t, "exec_approval_resolved", d);
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
    if (inj && !ring_get (&n->turn_inj, turn_id))
        ring_put (&n->turn_inj, turn_id, inj);
    if (!(err = cJSON_CreateObject ()))
        return;
    add_s (err, "message",
                             reason ? reason : "the app-server exited");
    add_s (err, "code", "turn_aborted");
    end_turn (t, k, n, turn_id, "failed", err, NULL);
    cJSON_Delete (err);
}

static void on_worker_error (rt_trans_t *t, int k, struct node *n,
                             const cJSON *rec)
{
    static const char *const m[] = { "code", "message", "inbox_seq", NULL };
    cJSON *d = ev_new (t, k, n, n->turn_injection);
    if (!d)
        return;
    add_s (d, "source", "worker");
    for (const char *const *p = m; *p; p++)
        add_copy (d, *p, rec, *p);
    ev_emit (t, "agent_error", d);
}

static int debug_record (rt_trans_t *t, int k, struct node *n,
                         const cJSON *rec)
{
    return debug_event (t, k, n, "debug_record", "record", rec);
}

static void on_record (rt_trans_t *t, int k, struct node *n, const char *type,
                       const cJSON *rec)
{
    if (!strcmp (type, "rpc")) {
        const cJSON *msg = get_obj (rec, "msg");
        if (msg)
            on_rpc (t, k, n, msg);
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
        set_str (&n->thread_id, get_str (rec, "thread_id"));
        n->ready = true;
        simple_event (t, k, n, "node_ready", rec, m);
    }
    else if (!strcmp (type, "inject_accepted"))
        on_inject_accepted (t, k, n, rec);
    else if (!strcmp (type, "turn_queued")) {
        static const char *const m[] = { "inbox_seq", "position", NULL };
        cJSON *d = ev_new (t, k, n, get_str (rec, "injection_id"));
        if (d) {
            for (const char *const *p = m; *p; p++)
                add_copy (d, *p, rec, *p);
            ev_emit (t, "inject_queued", d);
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
            d = ev_new (t, k, n, n->turn_injection);
        else
            debug_record (t, k, n, rec);
        if (d) {
            add_s (d, "source", "worker");
            add_s (d, "code", "app_server_exited");
            for (const char *const *p = m + 1; *p; p++)
                add_copy (d, *p, rec, *p);
            add_copy (d, "exit_code", rec, "code");
            ev_emit (t, "agent_error", d);
        }
    }
    else if (!strcmp (type, "app_server_restarted")) {
        cJSON *d = ev_new (t, k, n, NULL);
        if (d) {
            add_s (d, "reason", "app_server");
            add_copy (d, "attempt", rec, "attempt");
            add_copy (d, "backoff", rec, "backoff");
            ev_emit (t, "node_restarted", d);
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
            char *tid = xstrdup (n->turn_id);
            cJSON *err = cJSON_CreateObject ();
            if (err)
                add_s (err, "message",
                                         "the worker stopped");
            end_turn (t, k, n, tid, "interrupted", err, NULL);
            cJSON_Delete (err);
            free (tid);
        }
        flush_held (t, k, n, false);
        drop_approvals (n, NULL);
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

/* ---- public ---------------------------------------------------------- */

rt_trans_t *rt_trans_create (const char *swarm_id, rt_emit_f emit, void *arg)
{
    rt_trans_t *t;
    if (!swarm_id || !emit) {
        errno = EINVAL;
        return NULL;
    }
    if (!(t = calloc (1, sizeof (*t))))
        return NULL;
    if (!(t->swarm_id = strdup (swarm_id))) {
        free (t);
        return NULL;
    }
    t->emit = emit;
    t->arg = arg;
    return t;
}

void rt_trans_destroy (rt_trans_t *t)
{
    if (t) {
        int saved_errno = errno;
        for (int i = 0; i < t->nnodes; i++)
            node_destroy (t->nodes[i]);
        free (t->nodes);
        free (t->swarm_id);
        free (t->job_id);
        free (t);
        errno = saved_errno;
    }
}

const char *rt_trans_swarm (rt_trans_t *t)
{
    return t->swarm_id;
}

void rt_trans_set_debug (rt_trans_t *t, bool debug)
{
    t->debug = debug;
}

int rt_trans_set_job (rt_trans_t *t, const char *job_id)
{
    char *cpy = NULL;
    if (job_id && !(cpy = strdup (job_id)))
        return -1;
    free (t->job_id);
    t->job_id = cpy;
    return 0;
}

int rt_trans_record (rt_trans_t *t, int node, const cJSON *rec, double now,
                     cs_error_t *errp)
{
    struct node *n;
    const char *type;
    uint64_t seq;

    if (node < 0 || node >= RT_MAX_NODES) {
        errno = EINVAL;
        return errprintf (errp, "node %d is out of range", node);
    }
    if (!cJSON_IsObject (rec)) {
        errno = EINVAL;
        return errprintf (errp, "record is not a JSON object");
    }
    if (!(type = get_str (rec, "type"))) {
        errno = EINVAL;
        return errprintf (errp, "record has no \"type\"");
    }
    if (!get_u64 (rec, "seq", &seq)) {
        errno = EINVAL;
        return errprintf (errp, "record has no valid \"seq\"");
    }
    if (!(n = node_get (t, node, true)))
        return errprintf (errp, "out of memory");
    if (n->seen && seq <= n->last_seq)
        return 0;                               /* replayed: said already */
    n->seen = true;
    n->last_seq = seq;
    n->last_heard = now;
    t->count = 0;
    if (n->lost) {
        cJSON *d = ev_new (t, node, n, NULL);
        n->lost = false;
        if (d)
            ev_emit (t, "node_recovered", d);
    }
    on_record (t, node, n, type, rec);
    return t->count;
}

static bool event_name_ok (const char *s)
{
    size_t n = strlen (s);
    if (n == 0 || n > 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'
              || (i > 0 && s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

int rt_trans_swarm_record (rt_trans_t *t, const cJSON *rec, double now,
                           cs_error_t *errp)
{
    static const char *const envelope[] = { "v", "seq", "epoch", "ts",
                                            "type", NULL };
    const char *type;
    const cJSON *m;
    uint64_t seq;
    cJSON *d;

    if (!cJSON_IsObject (rec) || !(type = get_str (rec, "type"))
        || !get_u64 (rec, "seq", &seq)) {
        errno = EINVAL;
        return errprintf (errp, "not a record (no \"type\" or \"seq\")");
    }
    if (t->swarm_seen && seq <= t->swarm_last_seq)
        return 0;
    t->swarm_seen = true;
    t->swarm_last_seq = seq;
    t->count = 0;
    if (!event_name_ok (type) || !strncmp (type, "debug_", 6)) {
        errno = EINVAL;
        return errprintf (errp, "swarm record type \"%.40s\" is not an "
                          "event name", type);
    }
    if ((m = cJSON_GetObjectItemCaseSensitive (rec, "job_id"))
        && cJSON_IsString (m))
        rt_trans_set_job (t, m->valuestring);
    if (!(d = ev_new (t, 0, NULL, NULL)))
        return errprintf (errp, "out of memory");
    cJSON_ReplaceItemInObjectCaseSensitive (d, "node_id", cJSON_CreateNull ());
    cJSON_ArrayForEach (m, rec) {
        const char *const *e;
        cJSON *c;
        for (e = envelope; *e; e++)
            if (!strcmp (m->string, *e))
                break;
        if (*e || cJSON_GetObjectItemCaseSensitive (d, m->string))
            continue;
        if ((c = cJSON_Duplicate (m, true))
            && !cJSON_AddItemToObject (d, m->string, c))
            cJSON_Delete (c);
    }
    ev_emit (t, type, d);
    return t->count;
}

int rt_trans_line (rt_trans_t *t, int node, const char *line, size_t len,
                   double now, cs_error_t *errp)
{
    const char *end = NULL;
    cJSON *rec;
    int rc;

    if (!line) {
        errno = EINVAL;
        return errprintf (errp, "no line");
    }
    rec = cJSON_ParseWithLengthOpts (line, len, &end, false);
    if (!rec) {
        errno = EINVAL;
        return errprintf (errp, "not valid JSON near byte %zu",
                          end ? (size_t)(end - line) : (size_t)0);
    }
    rc = rt_trans_record (t, node, rec, now, errp);
    cJSON_Delete (rec);
    return rc;
}

int rt_trans_check_lost (rt_trans_t *t, double now, double lost_after)
{
    t->count = 0;
    for (int k = 0; k < t->nnodes; k++) {
        struct node *n = t->nodes[k];
        cJSON *d;
        if (!n || !n->seen || n->stopped || n->lost)
            continue;
        if (now - n->last_heard <= lost_after)
            continue;
        n->lost = true;
        if ((d = ev_new (t, k, n, n->turn_injection))) {
            add_n (d, "silent_for", now - n->last_heard);
            ev_emit (t, "node_lost", d);
        }
    }
    return t->count;
}

int rt_trans_set_lost (rt_trans_t *t, int node)
{
    struct node *n = node_get (t, node, false);
    if (!n || !n->seen) {
        errno = ENOENT;
        return -1;
    }
    if (!n->stopped)
        n->lost = true;
    return 0;
}

double rt_trans_next_deadline (rt_trans_t *t, double lost_after)
{
    double next = -1;
    for (int k = 0; k < t->nnodes; k++) {
        struct node *n = t->nodes[k];
        if (!n || !n->seen || n->stopped || n->lost)
            continue;
        if (next < 0 || n->last_heard + lost_after < next)
            next = n->last_heard + lost_after;
    }
    return next;
}

uint64_t rt_trans_last_seq (rt_trans_t *t, int node)
{
    struct node *n;
    if (node == -1)
        return t->swarm_last_seq;
    n = node_get (t, node, false);
    return n ? n->last_seq : 0;
}

static void put_str (cJSON *o, const char *key, const char *s)
{
    if (s)
        add_s (o, key, s);
}

cJSON *rt_trans_state (rt_trans_t *t, int node)
{
    struct node *n;
    cJSON *o, *c;

    if (node == -1) {
        if (!t->swarm_seen || !(o = cJSON_CreateObject ()))
            return NULL;
        add_n (o, "last_seq", (double)t->swarm_last_seq);
        put_str (o, "job_id", t->job_id);
        return o;
    }
    n = node_get (t, node, false);

    if (!n || !n->seen)
        return NULL;
    if (!(o = cJSON_CreateObject ()))
        return NULL;
    add_n (o, "last_seq", (double)n->last_seq);
    put_str (o, "job_id", n->job_id);
    put_str (o, "thread_id", n->thread_id);
    add_n (o, "starts", n->starts);
    add_b (o, "ready", n->ready);
    add_b (o, "stopped", n->stopped);
    add_b (o, "lost", n->lost);
    put_str (o, "turn_id", n->turn_id);
    put_str (o, "turn_injection", n->turn_injection);
    add_n (o, "turns", (double)n->turns);
    add_n (o, "total_tokens", (double)n->total_tokens);
    if (n->held_item) {
        cJSON *h = cJSON_AddObjectToObject (o, "held");
        if (h) {
            put_str (h, "turn_id", n->held_turn);
            put_str (h, "item_id", n->held_item);
            put_str (h, "text", n->held_text);
            put_str (h, "injection_id", n->held_injection);
            put_str (h, "phase", n->held_phase);
        }
    }
    cJSON_AddItemToObject (o, "turn_inj", ring_to_json (&n->turn_inj, true));
    cJSON_AddItemToObject (o, "done_turns",
                           ring_to_json (&n->done_turns, false));
    cJSON_AddItemToObject (o, "done_items",
                           ring_to_json (&n->done_items, false));
    if ((c = cJSON_Duplicate (n->approvals, true))
        && !cJSON_AddItemToObject (o, "approvals", c))
        cJSON_Delete (c);
    return o;
}

int rt_trans_restore (rt_trans_t *t, int node, const cJSON *st, double now,
                      cs_error_t *errp)
{
    struct node *n;
    const cJSON *h, *a;
    uint64_t u;

    if (!cJSON_IsObject (st) || !get_u64 (st, "last_seq", &u)) {
        errno = EINVAL;
        return errprintf (errp, "translator state has no \"last_seq\"");
    }
    if (node == -1) {
        t->swarm_seen = true;
        t->swarm_last_seq = u;
        if (get_str (st, "job_id") && !t->job_id)
            rt_trans_set_job (t, get_str (st, "job_id"));
        return 0;
    }
    if (!(n = node_get (t, node, true)))
        return errprintf (errp, "node %d: out of memory or out of range",
                          node);
    n->seen = true;
    n->last_seq = u;
    n->last_heard = now;
    set_str (&n->job_id, get_str (st, "job_id"));
    set_str (&n->thread_id, get_str (st, "thread_id"));
    n->starts = get_u64 (st, "starts", &u) && u < 1000000 ? (int)u : 0;
    n->ready = cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (st, "ready"));
    n->stopped = cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (st,
                                                                 "stopped"));
    n->lost = cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (st, "lost"));
    set_str (&n->turn_id, get_str (st, "turn_id"));
    set_str (&n->turn_injection, get_str (st, "turn_injection"));
    n->turns = get_u64 (st, "turns", &u) ? u : 0;
    n->total_tokens = get_u64 (st, "total_tokens", &u) ? u : 0;
    held_clear (n);
    if ((h = get_obj (st, "held")) && get_str (h, "item_id")) {
        n->held_turn = xstrdup (get_str (h, "turn_id"));
        n->held_item = xstrdup (get_str (h, "item_id"));
        n->held_text = xstrdup (get_str (h, "text"));
        n->held_injection = xstrdup (get_str (h, "injection_id"));
        n->held_phase = xstrdup (get_str (h, "phase"));
    }
    ring_from_json (&n->turn_inj,
                    cJSON_GetObjectItemCaseSensitive (st, "turn_inj"), true);
    ring_from_json (&n->done_turns,
                    cJSON_GetObjectItemCaseSensitive (st, "done_turns"),
                    false);
    ring_from_json (&n->done_items,
                    cJSON_GetObjectItemCaseSensitive (st, "done_items"),
                    false);
    if ((a = get_obj (st, "approvals"))) {
        cJSON *c = cJSON_Duplicate (a, true);
        if (c) {
            cJSON_Delete (n->approvals);
            n->approvals = c;
        }
    }
    return 0;
}

const cJSON *rt_trans_approval (rt_trans_t *t, const char *approval_id,
                                int *node)
{
    if (!approval_id)
        return NULL;
    for (int k = 0; k < t->nnodes; k++) {
        struct node *n = t->nodes[k];
        const cJSON *a;
        if (!n)
            continue;
        a = cJSON_GetObjectItemCaseSensitive (n->approvals, approval_id);
        if (a) {
            if (node)
                *node = k;
            return a;
        }
    }
    return NULL;
}

cJSON *rt_trans_approvals (rt_trans_t *t)
{
    cJSON *arr = cJSON_CreateArray ();
    if (!arr)
        return NULL;
    for (int k = 0; k < t->nnodes; k++) {
        struct node *n = t->nodes[k];
        const cJSON *a;
        if (!n)
            continue;
        cJSON_ArrayForEach (a, n->approvals) {
            cJSON *c = cJSON_Duplicate (a, true);
            if (c)
                cJSON_AddItemToArray (arr, c);
        }
    }
    return arr;
}

cJSON *rt_trans_nodes (rt_trans_t *t)
{
    cJSON *arr = cJSON_CreateArray ();
    if (!arr)
        return NULL;
    for (int k = 0; k < t->nnodes; k++) {
        struct node *n = t->nodes[k];
        cJSON *o;
        const char *state;
        if (!n || !n->seen)
            continue;
        if (!(o = cJSON_CreateObject ()))
            break;
        state = n->stopped ? "stopped" : n->lost ? "lost"
              : n->degraded ? "degraded"
              : n->turn_id ? "busy" : n->ready ? "ready" : "starting";
        add_n (o, "node_id", k);
        add_s (o, "state", state);
        add_str_or_null (o, "job_id", n->job_id ? n->job_id : t->job_id);
        add_str_or_null (o, "thread_id", n->thread_id);
        add_b (o, "turn_active", n->turn_id != NULL);
        add_str_or_null (o, "turn_id", n->turn_id);
        add_n (o, "turns", (double)n->turns);
        add_n (o, "total_tokens", (double)n->total_tokens);
        add_n (o, "pending_approvals",
                                 cJSON_GetArraySize (n->approvals));
        cJSON_AddItemToArray (arr, o);
    }
    return arr;
}

int rt_trans_max_node (rt_trans_t *t)
{
    for (int k = t->nnodes - 1; k >= 0; k--)
        if (t->nodes[k] && t->nodes[k]->seen)
            return k;
    return -1;
}
