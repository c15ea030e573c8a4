/* translate.c - worker outbox records -> router events (see translate.h)
 *
 * The public calls: create, feed a record (or a line), liveness, the
 * node and approval summaries.  The translation itself is split by what
 * is translated: translate-appserver.c (app-server messages),
 * translate-worker.c (the worker's records), translate-event.c (events
 * and turn ends), translate-node.c (per-node state), translate-state.c
 * (durable state).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/translate-private.h"

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
            tr_node_destroy (t->nodes[i]);
        free (t->nodes);
        free (t->swarm_id);
        free (t->job_id);
        jbuf_release (&t->text);
        free (t);
        errno = saved_errno;
    }
}

const char *rt_trans_swarm (rt_trans_t *t)
{
    return t->swarm_id;
}

void rt_trans_set_emit_text (rt_trans_t *t, rt_emit_text_f emit_text,
                             void *arg)
{
    t->emit_text = emit_text;
    t->text_arg = arg;
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
    if (!(n = tr_node_get (t, node, true)))
        return errprintf (errp, "out of memory");
    if (n->seen && seq <= n->last_seq)
        return 0;                               /* replayed: said already */
    n->seen = true;
    n->last_seq = seq;
    n->last_heard = now;
    t->count = 0;
    if (n->lost) {
        cJSON *d = tr_ev_new (t, node, n, NULL);
        n->lost = false;
        if (d)
            tr_ev_emit (t, "node_recovered", d);
    }
    tr_on_record (t, node, n, type, rec);
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
    if (!(d = tr_ev_new (t, 0, NULL, NULL)))
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
    tr_ev_emit (t, type, d);
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
        if ((d = tr_ev_new (t, k, n, n->turn_injection))) {
            tr_add_n (d, "silent_for", now - n->last_heard);
            tr_ev_emit (t, "node_lost", d);
        }
        /* what was in flight there is reported now, not when (if ever)
         * the node comes back */
        tr_end_turn_lost (t, k, n, now - n->last_heard);
    }
    return t->count;
}

int rt_trans_set_lost (rt_trans_t *t, int node)
{
    struct node *n = tr_node_get (t, node, false);
    if (!n || !n->seen) {
        errno = ENOENT;
        return -1;
    }
    if (!n->stopped) {
        n->lost = true;
        tr_end_turn_quietly (n);        /* its turn_complete was logged too */
    }
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
    n = tr_node_get (t, node, false);
    return n ? n->last_seq : 0;
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
        tr_add_n (o, "node_id", k);
        tr_add_s (o, "state", state);
        tr_add_str_or_null (o, "job_id", n->job_id ? n->job_id : t->job_id);
        tr_add_str_or_null (o, "thread_id", n->thread_id);
        tr_add_b (o, "turn_active", n->turn_id != NULL);
        tr_add_str_or_null (o, "turn_id", n->turn_id);
        tr_add_n (o, "turns", (double)n->turns);
        tr_add_n (o, "total_tokens", (double)n->total_tokens);
        tr_add_n (o, "pending_approvals",
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
