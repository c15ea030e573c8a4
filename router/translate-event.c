/* translate-event.c - building and emitting events; ending turns
 *
 * Every event carries the common members (ev_new); the last agent message
 * of a turn is held until the turn ends (flush_held) so that it can be
 * marked final; end_turn emits turn_complete once per turn.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/translate-private.h"

/* A new data object with the common members. */
cJSON *tr_ev_new (rt_trans_t *t, int k, struct node *n,
                  const char *injection_id)
{
    cJSON *d = cJSON_CreateObject ();
    const char *job = n && n->job_id ? n->job_id : t->job_id;
    if (!d)
        return NULL;
    tr_add_s (d, "swarm_id", t->swarm_id);
    if (job)
        tr_add_s (d, "job_id", job);
    else
        tr_add_null (d, "job_id");
    tr_add_n (d, "node_id", k);
    if (injection_id)
        tr_add_s (d, "injection_id", injection_id);
    else
        tr_add_null (d, "injection_id");
    return d;
}

void tr_ev_emit (rt_trans_t *t, const char *name, cJSON *d)
{
    if (!d)
        return;
    t->count++;
    t->emit (name, d, t->arg);
}

/* ,"key": */
static int text_key (struct jbuf *b, const char *key)
{
    char tmp[64];
    size_t l = strlen (key);
    if (l + 4 > sizeof (tmp)) {
        errno = EINVAL;
        return -1;
    }
    tmp[0] = ',';
    tmp[1] = '"';
    memcpy (tmp + 2, key, l);
    tmp[l + 2] = '"';
    tmp[l + 3] = ':';
    return jbuf_append (b, tmp, l + 4);
}

int tr_text_str_or_null (rt_trans_t *t, const char *key, const char *s)
{
    if (text_key (&t->text, key) < 0)
        return -1;
    if (!s)
        return jbuf_append (&t->text, "null", 4);
    return jbuf_append_jstr (&t->text, s, strlen (s));
}

int tr_text_begin (rt_trans_t *t, int k, struct node *n,
                   const char *injection_id)
{
    const char *job = n && n->job_id ? n->job_id : t->job_id;
    char num[24], *p = num + sizeof (num);
    unsigned long v = k < 0 ? -(unsigned long)k : (unsigned long)k;
    struct jbuf *b = &t->text;

    jbuf_reset (b);
    do {
        *--p = '0' + v % 10;
        v /= 10;
    } while (v);
    if (k < 0)
        *--p = '-';
    if (jbuf_append (b, "{\"swarm_id\":", 12) < 0
        || jbuf_append_jstr (b, t->swarm_id, strlen (t->swarm_id)) < 0
        || tr_text_str_or_null (t, "job_id", job) < 0
        || text_key (b, "node_id") < 0
        || jbuf_append (b, p, num + sizeof (num) - p) < 0
        || tr_text_str_or_null (t, "injection_id", injection_id) < 0)
        return -1;
    return 0;
}

int tr_text_end (rt_trans_t *t, const char *name)
{
    if (jbuf_append (&t->text, "}", 1) < 0)
        return -1;
    t->count++;
    t->emit_text (name, t->text.data, t->text.len, t->text_arg);
    return 0;
}

void tr_add_str_or_null (cJSON *d, const char *key, const char *s)
{
    if (s)
        tr_add_s (d, key, s);
    else
        tr_add_null (d, key);
}

/* Copy member src[key] into d as dkey (null when missing). */
void tr_add_copy (cJSON *d, const char *dkey, const cJSON *src,
                  const char *key)
{
    const cJSON *v = src ? member (src, key) : NULL;
    tr_put_item (d, dkey, v ? cJSON_Duplicate (v, true) : cJSON_CreateNull ());
}

/* The injection that a turn belongs to. */
const char *tr_turn_injection (struct node *n, const char *turn_id)
{
    const char *inj = tr_ring_get (&n->turn_inj, turn_id);
    if (inj)
        return inj;
    if (turn_id && n->turn_id && !strcmp (turn_id, n->turn_id))
        return n->turn_injection;
    if (!turn_id)
        return n->turn_injection;
    return NULL;
}

void tr_flush_held (rt_trans_t *t, int k, struct node *n, bool final)
{
    cJSON *d;
    if (!n->held_item)
        return;
    if ((d = tr_ev_new (t, k, n, n->held_injection))) {
        tr_add_str_or_null (d, "turn_id", n->held_turn);
        tr_add_s (d, "item_id", n->held_item);
        tr_add_s (d, "text", n->held_text ? n->held_text : "");
        tr_add_s (d, "content", n->held_text ? n->held_text : "");
        tr_add_b (d, "final_answer", final);
        if (n->held_phase)
            tr_add_s (d, "phase", n->held_phase);
        tr_ev_emit (t, "assistant", d);
    }
    tr_held_clear (n);
}

/* Drop pending approvals of a turn that ended (NULL: all of the node's). */
void tr_drop_approvals (struct node *n, const char *turn_id)
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
 * turn_complete (with member "reason" when reason is not NULL).  error may
 * be NULL.
 */
static void end_turn (rt_trans_t *t, int k, struct node *n,
                      const char *turn_id, const char *status,
                      const cJSON *error, const cJSON *duration,
                      const char *reason)
{
    const char *inj;
    char *inj_copy;
    cJSON *d;

    if (!turn_id || tr_ring_find (&n->done_turns, turn_id) >= 0)
        return;
    inj_copy = tr_xstrdup (tr_turn_injection (n, turn_id));
    inj = inj_copy;
    tr_ring_put (&n->done_turns, turn_id, NULL);
    if (n->held_turn && !strcmp (n->held_turn, turn_id))
        tr_flush_held (t, k, n, !strcmp (status, "completed"));
    tr_drop_approvals (n, turn_id);
    if (n->turn_id && !strcmp (n->turn_id, turn_id)) {
        free (n->turn_id);
        free (n->turn_injection);
        n->turn_id = n->turn_injection = NULL;
    }
    n->turns++;
    if ((d = tr_ev_new (t, k, n, inj))) {
        tr_add_s (d, "turn_id", turn_id);
        tr_add_s (d, "status", status);
        if (error && !cJSON_IsNull (error)) {
            cJSON *c = cJSON_Duplicate (error, true);
            if (c && !cJSON_AddItemToObject (d, "error", c))
                cJSON_Delete (c);
        }
        else
            tr_add_null (d, "error");
        if (duration && cJSON_IsNumber (duration))
            tr_add_n (d, "duration_ms", duration->valuedouble);
        else
            tr_add_null (d, "duration_ms");
        if (reason)
            tr_add_s (d, "reason", reason);
        tr_ev_emit (t, "turn_complete", d);
    }
    free (inj_copy);
}

void tr_end_turn (rt_trans_t *t, int k, struct node *n,
                  const char *turn_id, const char *status,
                  const cJSON *error, const cJSON *duration)
{
    end_turn (t, k, n, turn_id, status, error, duration, NULL);
}

void tr_end_turn_why (rt_trans_t *t, int k, struct node *n,
                      const char *turn_id, const char *status,
                      const cJSON *error, const char *reason)
{
    end_turn (t, k, n, turn_id, status, error, NULL, reason);
}

void tr_end_turn_lost (rt_trans_t *t, int k, struct node *n, double silent)
{
    char *tid, msg[128];
    cJSON *err;

    if (!n->turn_id || !(tid = tr_xstrdup (n->turn_id)))
        return;
    if ((err = cJSON_CreateObject ())) {
        snprintf (msg, sizeof (msg), "node %d was lost (silent for %.0f s) "
                  "with this turn in flight", k, silent);
        tr_add_s (err, "message", msg);
        tr_add_s (err, "code", "node_lost");
    }
    end_turn (t, k, n, tid, "failed", err, NULL, "node_lost");
    cJSON_Delete (err);
    free (tid);
}

void tr_end_turn_quietly (struct node *n)
{
    if (!n->turn_id)
        return;
    tr_ring_put (&n->done_turns, n->turn_id, NULL);
    if (n->held_turn && !strcmp (n->held_turn, n->turn_id))
        tr_held_clear (n);
    tr_drop_approvals (n, n->turn_id);
    free (n->turn_id);
    free (n->turn_injection);
    n->turn_id = n->turn_injection = NULL;
    n->turns++;
}
