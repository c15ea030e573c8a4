/* worker.h - state shared by the parts of codeswarm-worker.
 *
 * worker.c owns the program: options, node identity, the poll() loop,
 * signals, timers, the outbox and the checkpoint.  appserver.c drives the
 * codex app-server child (spawn, JSON-RPC, restarts).  inbox.c turns inbox
 * records into JSON-RPC and keeps the exactly-once bookkeeping.
 */
#ifndef CODESWARM_WORKER_WORKER_H
#define CODESWARM_WORKER_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/configfile.h"
#include "common/json.h"
#include "common/lineio.h"
#include "common/spawn.h"
#include "mailbox/mailbox.h"
#include "common/ansi.h"
#include "common/fnv.h"
#include "common/pathtemplate.h"
#include "common/strset.h"
#include "common/tail.h"
#include "worker/policy.h"

enum req_kind {
    REQ_INITIALIZE,
    REQ_THREAD_START,
    REQ_THREAD_RESUME,
    REQ_TURN_START,
    REQ_TURN_STEER,
    REQ_TURN_INTERRUPT,
};

/* An inbox record being worked on (user or interrupt). */
struct item {
    uint64_t seq;
    char *id;                   /* injection id */
    char *content;              /* user: the text */
    char *request_id;           /* the client's, echoed in records */
    bool steer;                 /* user: mode steer */
    char *cwd;                  /* user: the turn's directory, or NULL */
    bool new_thread;            /* user: start a new thread for the turn */
    char *retry_of;             /* user: the injection this one reruns */
    struct item *next;          /* FIFO link */
};

/* A request we sent and whose response we wait for. */
struct pending {
    uint64_t id;
    enum req_kind kind;
    double sent;                /* monotonic */
    struct item *item;          /* owned: the record behind it, or NULL */
    struct pending *next;
};

/* A server->client approval request waiting for its answer. */
struct approval {
    char *approval_id;
    cJSON *rpc_id;              /* the request's id, as the server sent it */
    char *method;
    char *turn_id;
    double deadline;            /* monotonic */
    struct approval *next;
};

/* Inbox records in seq order, to know how far the checkpoint cursor may
 * advance: only past records that are done.
 */
struct track {
    uint64_t seq;               /* 0 for a corrupt line */
    struct mb_cursor cursor;    /* reader position after the record */
    char *id;
    bool done;
    struct track *next;
};

/* An outbox record that could not be written yet (the outbox is full or
 * unwritable): kept in memory, in order, until it can be.
 */
struct held {
    char *type;
    char *members;              /* serialized payload members, no braces */
    size_t len;
    struct held *next;
};

enum as_state {
    AS_DOWN = 0,                /* not running (restart pending, or stopped) */
    AS_STARTING,                /* spawned, initialize sent */
    AS_THREAD,                  /* thread/start or thread/resume sent */
    AS_READY,
};

struct worker {
    struct cs_config cfg;
    bool cfg_loaded;
    char home[4096];
    char swarmdir[4096];
    const char *swarm;
    int node;
    char *job_id;
    char host[256];

    char *workspace;
    char *codex_bin;
    char codex_version[128];
    char schema_hash[32];
    char *dev_instructions;
    char **codex_env;           /* NULL-terminated, for spawn */

    char state_path[4200];
    char log_path[4200];
    char inbox_path[4200];
    char outbox_path[4200];

    struct mb_options mbopt;
    mb_writer_t *out;
    mb_follower_t *fol;
    mb_reader_t *inbox;
    int sigfd;

    /* the app-server */
    spawn_t *as;
    lineio_t *as_out;
    lineio_t *as_err;
    outbuf_t *as_in;
    int log_fd;
    struct tail tail;
    enum as_state state;
    bool out_eof, err_eof;
    int incarnation;            /* app-server starts in this run */
    int failed_starts;          /* consecutive */
    int attempt;                /* backoff exponent */
    double ready_at;            /* monotonic, when AS_READY was reached */
    double restart_at;          /* monotonic, 0 = none */
    uint64_t next_id;
    struct pending *pending;
    struct approval *approvals;
    bool fenced;                /* PMIx fence passed (or not needed) */
    bool fencing;               /* PMIx fence under way: ready waits */
    bool ready_resumed;         /* the ready record's "resumed" then */
    int fence_fd;               /* the fence's status arrives here */
    long fence_gen;             /* the home's generation (fence.c) */
    struct strset retry_ids;    /* injections cut by a restart (retry.c) */

    /* the thread */
    char *thread_id;
    char *rollout_path;
    char *turn_id;              /* the running turn */
    struct item *turn_item;     /* the user record that started it */
    struct item *queue_head, *queue_tail;
    size_t queued;
    struct item *waiting_interrupt;  /* interrupt until the turn id is known */
    struct strset accepted;     /* injection ids the thread already holds */
    struct strset done_ids;     /* ids done past the checkpointed cursor */
    struct track *track_head, *track_tail;
    struct mb_cursor ckpt_cursor;
    char *last_injection_id;
    uint64_t ckpt_outbox_seq;   /* from a checkpoint: the outbox then */
    bool ckpt_has_outbox_seq;
    bool outbox_scanned;        /* outbox_scan ran: what it lacks, is lost */
    cJSON *accepted_turns;      /* injection id -> turn id, from the thread */
    char *aborted_turn;         /* from a checkpoint: turn cut by a crash */
    char *aborted_injection;

    /* stopping */
    bool stopping;
    char *stop_reason;
    double stop_deadline;       /* interrupt the turn after this */
    double stop_hard;           /* give up waiting after this */
    bool stop_interrupted;
    int exit_code;

    /* the outbox while it cannot be written (see outbox.c) */
    struct held *held_head, *held_tail;
    size_t held_count;
    size_t held_bytes;
    uint64_t held_total;        /* records held in this episode */
    uint64_t held_dropped;      /* deltas dropped over the memory bound */
    double held_since;          /* monotonic: the episode began */
    double out_retry_at;        /* monotonic: next attempt */
    double out_backoff;
    bool out_degraded_said;     /* node_degraded written this episode */
    char out_error[512];
    bool ckpt_dirty;            /* a checkpoint is due once it flushed */

    /* the inbox while it cannot be read */
    bool inbox_broken;
    double inbox_retry_at;      /* monotonic */
    double inbox_backoff;
    struct mb_cursor inbox_pos; /* after the last inbox event handled */
    char inbox_error[512];

    double next_heartbeat;

    /* app-server lines handled but not yet appended ("rpc" records, in
     * order): appended in one batch once the chunk read is handled, or
     * before any other record or checkpoint (see outbox.c)
     */
    struct jbuf batch;
    size_t *batch_ends;         /* where each record's members end */
    struct mb_members *batch_recs;
    size_t batch_n, batch_cap;
};

/* fence.c: CODESWARM_FENCE into fence_gen (-1: bad value); whether
 * state/<node>.fence names a newer home than ours
 */
int fence_init (struct worker *w);
bool fence_superseded (const struct worker *w);
/* why a turn the previous worker left running ended: "node_lost" in a
 * worker that took the index over from a lost node (CODESWARM_MOVED_FROM),
 * else "worker_restarted"
 */
const char *fence_restart_reason (const struct worker *w);

/* retry.c: note an injection whose turn a restart cut; queue the noted
 * ones that ask for a retry (once, at startup)
 */
void retry_note (struct worker *w, const char *injection_id);
void retry_queue (struct worker *w);

/* outbox.c */
void worker_record (struct worker *w, const char *type, cJSON *payload);
void worker_record_members (struct worker *w, const char *type,
                            const char *members, size_t len);
void outbox_batch_add (struct worker *w, const char *line, size_t len);
void outbox_flush (struct worker *w);
bool outbox_degraded (struct worker *w);
void outbox_retry (struct worker *w, double now);
double outbox_next_timer (struct worker *w);
void outbox_release (struct worker *w);
int outbox_scan (struct worker *w, uint64_t after);
void inbox_stream_stopped (struct worker *w, const char *why);
void inbox_retry (struct worker *w, double now);
double inbox_next_timer (struct worker *w);

/* worker.c */
void worker_turn_aborted (struct worker *w, const char *turn_id,
                          const char *injection_id, const char *reason);
void worker_error (struct worker *w, const char *code, uint64_t inbox_seq,
                   const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
int worker_checkpoint (struct worker *w);
void worker_stop (struct worker *w, const char *reason);
void worker_write_ready (struct worker *w, bool resumed);

/* The PMIx fence that worker_write_ready() started has ended (its pipe is
 * readable): write the ready record and start the queued work.
 */
void worker_fence_done (struct worker *w);

/* appserver.c */
int as_start (struct worker *w);
void as_launch (struct worker *w);    /* as_start, a failure counts */
void as_send (struct worker *w, cJSON *msg);        /* takes msg */
struct pending *as_request (struct worker *w, const char *method,
                            cJSON *params, enum req_kind kind,
                            struct item *item);     /* takes params */
void as_kill (struct worker *w, const char *why);
void as_new_thread (struct worker *w, struct item *it);    /* takes it */
int as_thread_adopt (struct worker *w, const cJSON *result);
void as_read_stdout (struct worker *w, bool drain);
void as_read_stderr (struct worker *w, bool drain);
void as_reap (struct worker *w);
void as_finish (struct worker *w);                  /* orderly stop */
void as_timers (struct worker *w, double now);
double as_next_timer (struct worker *w);
bool as_busy (struct worker *w);
/* Answer an approval: decision is a string (accept, acceptForSession,
 * decline, cancel) or an amendment object (decision_amendment); the
 * approval_resolved record carries request_id when not NULL.  Frees a.
 */
void approval_answer (struct worker *w, struct approval *a,
                      const cJSON *decision, const char *by,
                      const char *request_id);
void approval_answer_str (struct worker *w, struct approval *a,
                          const char *decision, const char *by);
struct approval *approval_find (struct worker *w, const char *approval_id);

/* inbox.c */
void inbox_event (mb_follower_t *f, mb_reader_t *r, const struct mb_event *ev,
                  void *arg);
void inbox_try_start (struct worker *w);
void inbox_new_thread (struct worker *w, struct pending *p,
                       const cJSON *result, const cJSON *error);
void inbox_turn_started (struct worker *w, struct pending *p,
                         const cJSON *result, const cJSON *error);
void inbox_steer_done (struct worker *w, struct pending *p,
                       const cJSON *result, const cJSON *error);
void inbox_interrupt_done (struct worker *w, struct pending *p,
                           const cJSON *result, const cJSON *error);
void inbox_turn_completed (struct worker *w, const char *turn_id);
void inbox_send_interrupt (struct worker *w, struct item *it);
void item_done (struct worker *w, uint64_t seq, const char *id);
void item_free (struct item *it);
void queue_push_front (struct worker *w, struct item *it);
void track_release (struct worker *w);

#endif
