/* translate.h - worker outbox records -> codeswarm.router.v1 events
 *
 * A translator holds the per-node state of one swarm (the turn in flight,
 * which injection started which turn, the last agent message of a turn held
 * back until the turn ends, pending approvals, liveness) and turns every
 * outbox record of node k into zero or more router events.  It is pure: no
 * I/O, no clock of its own (the caller passes "now"), no globals.
 *
 * Events are handed to an emit callback as (name, data).  data is a JSON
 * object that always has "swarm_id", "job_id" (string or null), "node_id"
 * (integer) and "injection_id" (string or null) first, then the event's own
 * members; the callback takes ownership of data (cJSON_Delete).  The router
 * puts its own "seq" on the envelope.
 *
 * Records are deduplicated by (node, outbox seq): a record whose seq is not
 * above the last one translated for that node produces nothing, so records
 * replayed after a reconnect never repeat an event.
 */
#ifndef CODESWARM_ROUTER_TRANSLATE_H
#define CODESWARM_ROUTER_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"

#define RT_MAX_NODES 100000

typedef struct rt_trans rt_trans_t;

/* name is a static string; data is owned by the callee. */
typedef void (*rt_emit_f) (const char *name, cJSON *data, void *arg);

/* The same event as JSON text: data is what json_print() makes of the
 * object the rt_emit_f would get (len bytes, NUL-terminated), borrowed for
 * the call.
 */
typedef void (*rt_emit_text_f) (const char *name, const char *data,
                                size_t len, void *arg);

/* Create a translator for swarm_id.  Free with rt_trans_destroy(). */
rt_trans_t *rt_trans_create (const char *swarm_id, rt_emit_f emit, void *arg);
void rt_trans_destroy (rt_trans_t *t);

const char *rt_trans_swarm (rt_trans_t *t);

/* Hand the events of the hot records (agent and reasoning deltas) to
 * emit_text, written as text without building a cJSON tree; every other
 * event still goes to the rt_emit_f.  Records are parsed and checked the
 * same either way, and the order of events is kept.
 */
void rt_trans_set_emit_text (rt_trans_t *t, rt_emit_text_f emit_text,
                             void *arg);

/* With debug on, messages that would be dropped become "debug_rpc" (an
 * app-server message) or "debug_record" (a worker record) events.
 */
void rt_trans_set_debug (rt_trans_t *t, bool debug);

/* Job id used for nodes that have not announced one (from swarm.json). */
int rt_trans_set_job (rt_trans_t *t, const char *job_id);

/* Translate one outbox record of node (the whole record object).  Returns
 * the number of events emitted (0: nothing to say, or a duplicate), -1 when
 * the record is not usable (errp says why; nothing emitted).
 */
int rt_trans_record (rt_trans_t *t, int node, const cJSON *rec, double now,
                     cs_error_t *errp);

/* Same from a raw outbox line (without '\n'). */
int rt_trans_line (rt_trans_t *t, int node, const char *line, size_t len,
                   double now, cs_error_t *errp);

/* A record of the swarm's own stream (outbox/swarm.jsonl: launcher and
 * batch-script events such as session_migrating).  It becomes an event
 * named after the record type, with node_id null and the record's payload
 * members.  Deduplicated by seq like node records; state node index -1.
 */
int rt_trans_swarm_record (rt_trans_t *t, const cJSON *rec, double now,
                           cs_error_t *errp);

/* Liveness: emit node_lost for every node that has been heard from, is not
 * stopped, and has been silent for more than lost_after seconds, and for a
 * turn in flight there its turn_complete ("failed", reason "node_lost";
 * the node's own end of that turn, should it come back, says nothing
 * more).  Returns the number of events.  rt_trans_next_deadline gives the earliest time at
 * which a node would be declared lost (-1: none).
 */
int rt_trans_check_lost (rt_trans_t *t, double now, double lost_after);

/* Mark node lost without an event: its node_lost (and the turn_complete
 * of its turn in flight) was emitted before the router restarted.  -1 if the node is unknown.
 */
int rt_trans_set_lost (rt_trans_t *t, int node);
double rt_trans_next_deadline (rt_trans_t *t, double lost_after);

/* Last outbox seq translated for node (0: none; -1: the swarm stream). */
uint64_t rt_trans_last_seq (rt_trans_t *t, int node);

/* Per-node state as JSON (for a durable cursor file), and back.  state
 * returns NULL when the node is unknown; free with cJSON_Delete.  restore
 * marks the node as just heard from at now.  Node -1: the swarm stream.
 */
cJSON *rt_trans_state (rt_trans_t *t, int node);
int rt_trans_restore (rt_trans_t *t, int node, const cJSON *state, double now,
                      cs_error_t *errp);

/* Pending approvals: look one up (the stored exec_approval_required data,
 * borrowed; *node set), or list all of them (a new array, cJSON_Delete).
 */
const cJSON *rt_trans_approval (rt_trans_t *t, const char *approval_id,
                                int *node);
cJSON *rt_trans_approvals (rt_trans_t *t);

/* A summary of every node for swarm_status (a new array, cJSON_Delete):
 * [{"node_id","state","job_id","thread_id","turn_active","turn_id",
 *   "turns","total_tokens","pending_approvals"}...]
 */
cJSON *rt_trans_nodes (rt_trans_t *t);

/* Highest node index seen, -1 when none. */
int rt_trans_max_node (rt_trans_t *t);

#endif
