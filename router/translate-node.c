/* translate-node.c - the translator's per-node state and its small helpers
 *
 * struct node (translate-private.h) holds what the translator knows of one
 * node; the rings remember the last RECENT turns, items and injections
 * so that a record seen twice does not yield its events twice.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/translate-private.h"

char *tr_xstrdup (const char *s)
{
    return s ? strdup (s) : NULL;
}

void tr_set_str (char **dst, const char *s)
{
    char *cpy = tr_xstrdup (s);
    if (s && !cpy)
        return;                 /* ENOMEM: keep the old value */
    free (*dst);
    *dst = cpy;
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

int tr_ring_find (const struct ring *r, const char *key)
{
    if (!key)
        return -1;
    for (int i = 0; i < RECENT; i++)
        if (r->key[i] && !strcmp (r->key[i], key))
            return i;
    return -1;
}

void tr_ring_put (struct ring *r, const char *key, const char *val)
{
    int i = tr_ring_find (r, key);
    if (!key)
        return;
    if (i < 0) {
        i = r->next;
        r->next = (r->next + 1) % RECENT;
        tr_set_str (&r->key[i], key);
    }
    tr_set_str (&r->val[i], val);
}

const char *tr_ring_get (const struct ring *r, const char *key)
{
    int i = tr_ring_find (r, key);
    return i < 0 ? NULL : r->val[i];
}

cJSON *tr_ring_to_json (const struct ring *r, bool with_val)
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

void tr_ring_from_json (struct ring *r, const cJSON *a, bool with_val)
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
                tr_ring_put (r, k->valuestring,
                             cJSON_IsString (v) ? v->valuestring : NULL);
        }
        else if (cJSON_IsString (e))
            tr_ring_put (r, e->valuestring, NULL);
    }
}

void tr_held_clear (struct node *n)
{
    free (n->held_turn);
    free (n->held_item);
    free (n->held_text);
    free (n->held_injection);
    free (n->held_phase);
    n->held_turn = n->held_item = n->held_text = NULL;
    n->held_injection = n->held_phase = NULL;
}

void tr_node_destroy (struct node *n)
{
    if (n) {
        free (n->job_id);
        free (n->thread_id);
        free (n->turn_id);
        free (n->turn_injection);
        tr_held_clear (n);
        ring_release (&n->turn_inj);
        ring_release (&n->done_turns);
        ring_release (&n->done_items);
        cJSON_Delete (n->approvals);
        free (n);
    }
}

struct node *tr_node_get (rt_trans_t *t, int k, bool create)
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
void tr_put_item (cJSON *o, const char *key, cJSON *item)
{
    if (item && !cJSON_AddItemToObjectCS (o, key, item))
        cJSON_Delete (item);
}

void tr_add_s (cJSON *o, const char *key, const char *val)
{
    tr_put_item (o, key, cJSON_CreateString (val));
}

void tr_add_n (cJSON *o, const char *key, double val)
{
    tr_put_item (o, key, cJSON_CreateNumber (val));
}

void tr_add_null (cJSON *o, const char *key)
{
    tr_put_item (o, key, cJSON_CreateNull ());
}

void tr_add_b (cJSON *o, const char *key, bool val)
{
    tr_put_item (o, key, cJSON_CreateBool (val));
}
