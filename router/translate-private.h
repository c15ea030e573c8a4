/* translate-private.h - the translator's state, shared by its files
 *
 * Nothing here is used outside router/translate*.c.
 */
#ifndef CODESWARM_ROUTER_TRANSLATE_PRIVATE_H
#define CODESWARM_ROUTER_TRANSLATE_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/json.h"
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
    rt_emit_text_f emit_text;   /* the hot events as text (or NULL) */
    void *text_arg;
    struct jbuf text;           /* the text event being built */
    bool debug;
    struct node **nodes;
    int nnodes;                 /* allocated slots */
    int count;                  /* events emitted by the current call */
    bool swarm_seen;            /* the swarm stream */
    uint64_t swarm_last_seq;
};

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

static inline const char *get_str (const cJSON *o, const char *key)
{
    const cJSON *v = member (o, key);
    return cJSON_IsString (v) ? v->valuestring : NULL;
}

static inline const cJSON *get_obj (const cJSON *o, const char *key)
{
    const cJSON *v = member (o, key);
    return cJSON_IsObject (v) ? v : NULL;
}

static inline bool get_num (const cJSON *o, const char *key, double *val)
{
    const cJSON *v = member (o, key);
    if (!cJSON_IsNumber (v))
        return false;
    *val = v->valuedouble;
    return true;
}

static inline bool get_u64 (const cJSON *o, const char *key, uint64_t *val)
{
    double d;
    if (!get_num (o, key, &d) || !(d >= 0) || d >= 9007199254740992.0
        || d != (double)(uint64_t)d)
        return false;
    *val = (uint64_t)d;
    return true;
}

/* ---- translate-node.c ---- */

char *tr_xstrdup (const char *s);
void tr_set_str (char **dst, const char *s);
int tr_ring_find (const struct ring *r, const char *key);
void tr_ring_put (struct ring *r, const char *key, const char *val);
const char *tr_ring_get (const struct ring *r, const char *key);
cJSON *tr_ring_to_json (const struct ring *r, bool with_val);
void tr_ring_from_json (struct ring *r, const cJSON *a, bool with_val);
void tr_held_clear (struct node *n);
void tr_node_destroy (struct node *n);
struct node *tr_node_get (rt_trans_t *t, int k, bool create);
void tr_put_item (cJSON *o, const char *key, cJSON *item);
void tr_add_s (cJSON *o, const char *key, const char *val);
void tr_add_n (cJSON *o, const char *key, double val);
void tr_add_null (cJSON *o, const char *key);
void tr_add_b (cJSON *o, const char *key, bool val);

/* ---- translate-event.c ---- */

cJSON *tr_ev_new (rt_trans_t *t, int k, struct node *n,
                  const char *injection_id);
void tr_ev_emit (rt_trans_t *t, const char *name, cJSON *d);
/* The same event as text (t->emit_text set): begin writes the common
 * members into t->text, the tr_text_* add members (key: a literal that
 * needs no escaping), end closes the object and hands it over.  The text is
 * byte for byte what json_print() makes of the tree tr_ev_new() and the
 * tr_add_* would build.  Returns -1 when out of memory (nothing emitted).
 */
int tr_text_begin (rt_trans_t *t, int k, struct node *n,
                   const char *injection_id);
int tr_text_str_or_null (rt_trans_t *t, const char *key, const char *s);
int tr_text_end (rt_trans_t *t, const char *name);
void tr_add_str_or_null (cJSON *d, const char *key, const char *s);
void tr_add_copy (cJSON *d, const char *dkey, const cJSON *src,
                  const char *key);
const char *tr_turn_injection (struct node *n, const char *turn_id);
void tr_flush_held (rt_trans_t *t, int k, struct node *n, bool final);
void tr_drop_approvals (struct node *n, const char *turn_id);
void tr_end_turn (rt_trans_t *t, int k, struct node *n,
                  const char *turn_id, const char *status,
                  const cJSON *error, const cJSON *duration);
/* The same with a "reason" member (no duration). */
void tr_end_turn_why (rt_trans_t *t, int k, struct node *n,
                      const char *turn_id, const char *status,
                      const cJSON *error, const char *reason);
/* The turn in flight on node k, lost after silent seconds: turn_complete
 * "failed", error.code and reason "node_lost" (once: a later end of the
 * same turn says nothing).
 */
void tr_end_turn_lost (rt_trans_t *t, int k, struct node *n, double silent);
/* The same without an event: it was logged before a restart. */
void tr_end_turn_quietly (struct node *n);

/* ---- translate-appserver.c ---- */

int tr_debug_event (rt_trans_t *t, int k, struct node *n,
                    const char *name, const char *key, const cJSON *what);
void tr_on_rpc (rt_trans_t *t, int k, struct node *n, const cJSON *msg);

/* ---- translate-worker.c ---- */

void tr_on_record (rt_trans_t *t, int k, struct node *n, const char *type,
                   const cJSON *rec);

#endif
