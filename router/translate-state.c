/* translate-state.c - the translator's durable state per node
 *
 * rt_trans_state() and rt_trans_restore(): what the router keeps in a
 * stream's state file so that a restart translates on where it stopped.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/translate-private.h"

static void put_str (cJSON *o, const char *key, const char *s)
{
    if (s)
        tr_add_s (o, key, s);
}

cJSON *rt_trans_state (rt_trans_t *t, int node)
{
    struct node *n;
    cJSON *o, *c;

    if (node == -1) {
        if (!t->swarm_seen || !(o = cJSON_CreateObject ()))
            return NULL;
        tr_add_n (o, "last_seq", (double)t->swarm_last_seq);
        put_str (o, "job_id", t->job_id);
        return o;
    }
    n = tr_node_get (t, node, false);

    if (!n || !n->seen)
        return NULL;
    if (!(o = cJSON_CreateObject ()))
        return NULL;
    tr_add_n (o, "last_seq", (double)n->last_seq);
    put_str (o, "job_id", n->job_id);
    put_str (o, "thread_id", n->thread_id);
    tr_add_n (o, "starts", n->starts);
    tr_add_b (o, "ready", n->ready);
    tr_add_b (o, "stopped", n->stopped);
    tr_add_b (o, "lost", n->lost);
    put_str (o, "turn_id", n->turn_id);
    put_str (o, "turn_injection", n->turn_injection);
    tr_add_n (o, "turns", (double)n->turns);
    tr_add_n (o, "total_tokens", (double)n->total_tokens);
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
    cJSON_AddItemToObject (o, "turn_inj", tr_ring_to_json (&n->turn_inj, true));
    cJSON_AddItemToObject (o, "done_turns",
                           tr_ring_to_json (&n->done_turns, false));
    cJSON_AddItemToObject (o, "done_items",
                           tr_ring_to_json (&n->done_items, false));
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
    if (!(n = tr_node_get (t, node, true)))
        return errprintf (errp, "node %d: out of memory or out of range",
                          node);
    n->seen = true;
    n->last_seq = u;
    n->last_heard = now;
    tr_set_str (&n->job_id, get_str (st, "job_id"));
    tr_set_str (&n->thread_id, get_str (st, "thread_id"));
    n->starts = get_u64 (st, "starts", &u) && u < 1000000 ? (int)u : 0;
    n->ready = cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (st, "ready"));
    n->stopped = cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (st,
                                                                 "stopped"));
    n->lost = cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (st, "lost"));
    tr_set_str (&n->turn_id, get_str (st, "turn_id"));
    tr_set_str (&n->turn_injection, get_str (st, "turn_injection"));
    n->turns = get_u64 (st, "turns", &u) ? u : 0;
    n->total_tokens = get_u64 (st, "total_tokens", &u) ? u : 0;
    tr_held_clear (n);
    if ((h = get_obj (st, "held")) && get_str (h, "item_id")) {
        n->held_turn = tr_xstrdup (get_str (h, "turn_id"));
        n->held_item = tr_xstrdup (get_str (h, "item_id"));
        n->held_text = tr_xstrdup (get_str (h, "text"));
        n->held_injection = tr_xstrdup (get_str (h, "injection_id"));
        n->held_phase = tr_xstrdup (get_str (h, "phase"));
    }
    tr_ring_from_json (&n->turn_inj,
                       cJSON_GetObjectItemCaseSensitive (st, "turn_inj"), true);
    tr_ring_from_json (&n->done_turns,
                       cJSON_GetObjectItemCaseSensitive (st, "done_turns"),
                       false);
    tr_ring_from_json (&n->done_items,
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
