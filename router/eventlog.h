/* eventlog.h - the router's durable event stream
 *
 * Every stream event the router emits is appended to <home>/router/
 * events.jsonl (a mailbox stream: rotated, sealed segments compressed) as a
 * record of type "event" with members "event", "timestamp", "data" and, for
 * events translated from an outbox record, "src":{"swarm","node","seq",
 * "idx"}.  The record's seq is the router seq clients see, so a client that
 * reconnects with "since" N is sent the records after N from this log.
 */
#ifndef CODESWARM_ROUTER_EVENTLOG_H
#define CODESWARM_ROUTER_EVENTLOG_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"
#include "common/json.h"
#include "mailbox/mailbox.h"

typedef struct eventlog eventlog_t;

struct ev_src {
    const char *swarm;
    int node;                   /* -1: the swarm's own stream */
    uint64_t seq;               /* outbox seq */
    int idx;                    /* n-th event made from that record */
};

/* Open (create) the log at path.  Free with eventlog_close(). */
eventlog_t *eventlog_open (const char *path, const struct mb_options *opt,
                           cs_error_t *errp);
void eventlog_close (eventlog_t *el);

/* Append an event (data borrowed; src may be NULL).  On success *seq is
 * the router seq and env holds the client envelope line with its '\n'
 * (reset first; the caller owns the buffer).
 */
int eventlog_append (eventlog_t *el, const char *name, const cJSON *data,
                     const struct ev_src *src, uint64_t *seq,
                     struct jbuf *env, cs_error_t *errp);

/* The same with data as JSON text (dlen bytes, one object). */
int eventlog_append_text (eventlog_t *el, const char *name, const char *data,
                          size_t dlen, const struct ev_src *src,
                          uint64_t *seq, struct jbuf *env, cs_error_t *errp);

/* Batching: events queued with eventlog_queue_text are written to the log
 * together by eventlog_flush (one write, one sync where the policy syncs
 * each append), which then has their client envelopes; nothing queued is
 * sent anywhere before it is logged.  Queued events must be flushed before
 * anything else is appended.  eventlog_queued: their count and bytes.
 */
int eventlog_queue_text (eventlog_t *el, const char *name, const char *data,
                         size_t dlen, const struct ev_src *src,
                         cs_error_t *errp);
size_t eventlog_queued (eventlog_t *el, size_t *bytes);

/* The envelope lines of the events a flush logged: event i (seq
 * first_seq + i) is env[start(i)..ends[i]) with start(0) = 0 and
 * start(i) = ends[i - 1]; valid until the next queue or flush.
 */
struct eventlog_out {
    uint64_t first_seq;
    size_t n;
    const char *env;
    const size_t *ends;
};

/* Called by a flush for each queued event that it could not log, in order
 * (data: the event's data text).
 */
typedef void (*eventlog_unlogged_f) (const char *name, const char *data,
                                     size_t dlen, const struct ev_src *src,
                                     void *arg);

/* Log the queued events; out gets the logged ones (maybe none).  On -1
 * (errp says why) the events not logged went to unlogged.  The queue is
 * empty afterwards either way.
 */
int eventlog_flush (eventlog_t *el, struct eventlog_out *out,
                    eventlog_unlogged_f unlogged, void *arg,
                    cs_error_t *errp);

uint64_t eventlog_seq (eventlog_t *el);
const char *eventlog_path (eventlog_t *el);
int eventlog_sync (eventlog_t *el);
double eventlog_sync_due (eventlog_t *el);

/* Client envelope of a logged record (rec: the whole record object). */
int eventlog_envelope (const cJSON *rec, uint64_t seq, struct jbuf *env);

/* Called for each logged record after since, up to the current end. */
typedef int (*eventlog_replay_f) (uint64_t seq, const cJSON *rec, void *arg);
int eventlog_replay (const char *path, uint64_t since,
                     const struct mb_options *opt, eventlog_replay_f cb,
                     void *arg, cs_error_t *errp);

/* ISO 8601 UTC with microseconds: "2026-11-21T12:00:00.123456Z" */
void eventlog_timestamp (double t, char *buf, size_t len);

#endif
