/* router-private.h - the router's state, shared by its files
 *
 * codeswarm-router is one program split by concern:
 *   router.c       main, options and the poll() loop
 *   state.c        state files: per-stream cursors, state.json, restart
 *   idempotency.c  the idempotency keys (idempotency.jsonl)
 *   commit.c       group commit: one sync, then the replies it covers
 *   streams.c      followed outbox streams, translation, emitting events
 *   swarms.c       swarm discovery and scans of <home>/swarms
 *   remote-link.c  the ssh link's callbacks (remote.h) into the router
 *   inbox.c        inbox writes and their acknowledgements
 *   commands.c     the command handlers, one table row per command
 *   clients.c      clients: socket, reading, replies, the event stream
 *   control.c      the commands that run the launcher (control.h)
 *   tcp.c          the loopback TCP listener (tcp.h)
 *   attach.c       --stdio relayed to a running router (attach.h)
 * Nothing here is used outside router/.
 */
#ifndef CODESWARM_ROUTER_ROUTER_PRIVATE_H
#define CODESWARM_ROUTER_ROUTER_PRIVATE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/strset.h"
#include "common/configfile.h"
#include "common/errprintf.h"
#include "common/json.h"
#include "common/lineio.h"
#include "mailbox/mailbox.h"
#ifdef HAVE_RELAY
#include "router/relay.h"
#endif
#include "router/audit.h"
#include "router/command.h"
#include "router/control.h"
#include "router/eventlog.h"
#include "router/remote.h"
#include "router/translate.h"

#define MAX_CLIENT_BACKLOG (256u * 1024 * 1024)  /* bytes queued per client */
#define SCAN_INTERVAL 1.0                        /* seconds between swarm scans */
#define FLUSH_INTERVAL 0.2                       /* state files at most every */
#define MAX_POLLFDS 1024
#define IDEM_MAX 10000                           /* idempotency keys kept ... */
#define IDEM_MAX_AGE 86400.0                     /* ... for at most a day */
#define HOLD_MAX_DEFAULT 10000                   /* --hold-max */
#define BATCH_EVENTS 1024                        /* events logged together */
#define BATCH_BYTES (256u * 1024)                /* ... at most */

struct swarm;

struct stream {
    struct swarm *sw;
    int node;                   /* -1: outbox/swarm.jsonl */
    char *path;                 /* the outbox stream (local mode) */
    char *state_path;           /* cursors/router.outbox-<k>.json */
    mb_reader_t *rd;            /* local mode */
    struct mb_cursor cur;       /* after the last record handled */
    char rcursor[128];          /* remote mode: the serve side's cursor */
    bool dirty;
    uint64_t sup_seq;           /* suppress events of records <= sup_seq ... */
    int sup_count;              /* ... and the first sup_count of sup_seq */
    uint64_t lost_seq;          /* node_lost logged after this record */
    mb_writer_t *inbox;         /* held open (local mode) */
    /* the keyed injection ids ("key-...") in the inbox, read once under
     * the writer lock that the router keeps from then on (inbox.c) */
    struct strset keyed;
    bool keyed_read;
};

struct swarm {
    struct router *r;
    char *id;
    char dir[PATH_MAX];
    rt_trans_t *t;
    int node_count;             /* swarm.json "nodes" (0: unknown) */
    char *state;                /* swarm.json "state" */
    char *job_id;
    struct stream **streams;    /* by node index */
    int nstreams;
    struct stream *sstream;     /* the swarm stream */
    bool terminating;
    struct swarm *next;
};

struct client {
    int id;
    int fd_in;
    int fd_out;
    bool stdio;
    lineio_t *in;
    outbuf_t *out;
    size_t out_peak;            /* most bytes out has held since emptied */
    bool started;               /* receives stream events */
    uint64_t sent_seq;          /* last stream seq sent */
    bool dead;
    bool half_closed;           /* socket: the peer sent all it will */
#ifdef HAVE_RELAY
    relay_t *relay;             /* a virtual client of the relay ... */
    void *vc;                   /* ... its output: relay_client_output */
#endif
    bool retry;                 /* its command being handled is a resend
                                   whose answer was lost: answer again */
    struct audit_who who;       /* who is at the other end (audit.h) */
    struct client *next;
};

struct suppress {
    char *swarm;
    int node;
    uint64_t seq;
    int count;
    uint64_t lost_seq;          /* a node_lost logged after record lost_seq */
};

struct idem {
    char *key;                  /* "<swarm>/<idempotency_key>" */
    double ts;                  /* wall clock when first used */
    cJSON *ids;                 /* [{"node_id","injection_id"}...] */
    struct idem *next;          /* newest first */
};

struct router {
    char home[PATH_MAX];
    char dir[PATH_MAX];         /* <home>/router */
    struct cs_config cfg;
    struct mb_options opt;
    bool debug;
    double lost_after;
    eventlog_t *log;
    struct jbuf env;
    mb_follower_t *fol;         /* local mode */
    remote_t *remote;           /* remote mode */
#ifdef HAVE_RELAY
    relay_t *relay;             /* --relay (relay.h) */
#endif
    struct swarm *swarms;
    struct client *clients;
    int next_client_id;
    int listen_fd;
    int tcp_fd;                 /* --tcp: the loopback listener */
    control_t *control;         /* launcher children (control.c) */
    char sock_path[PATH_MAX];
    bool use_stdio;
    int sig_fd;
    bool quit;
    double next_scan;
    double next_flush;
    bool dirty;
    uint64_t inj_counter;
    struct suppress *sup;
    size_t nsup;
    struct idem *idems;
    size_t nidem;               /* entries in idems */
    int idem_fd;                /* <home>/router/idempotency.jsonl */
    size_t idem_lines;          /* lines in that file */
    bool idem_unsynced;         /* lines written since the last idem_sync */
    /* the record being translated */
    struct stream *cur_stream;
    uint64_t cur_seq;
    int cur_idx;
    bool batching;              /* reading the streams: queue the events */
    /* events the log could not take yet (a full disk), oldest first */
    struct held_event *held;
    struct held_event **held_tail;
    size_t nheld;               /* events in held */
    size_t hold_max;            /* past it, no more records are read */
    size_t held_total;          /* held since the log last took an event */
    double held_since;          /* when the first of those was held */
    cs_error_t held_error;      /* why the log refused it */
    bool paused;                /* reading no record: held reached hold_max */
    double lost_grace_until;    /* after a pause: its silence not counted */
};

/* ---- state.c ---------------------------------------------------------- */

/* Read a JSON file (cJSON_Delete); NULL with errno set on failure. */
cJSON *state_read_json (const char *path, cs_error_t *errp);
/* Write the dirty state files, then state.json. */
void state_flush (struct router *r);
/* Read the event log after state.json's seq: what not to emit again. */
int state_load_suppress (struct router *r);

/* ---- idempotency.c ---------------------------------------------------- */

int idem_load (struct router *r);
struct idem *idem_find (struct router *r, const char *key);
/* Remember key with its injections (takes ids): written now, durable at
 * the next idem_sync () (remote mode: synced now).
 */
struct idem *idem_add (struct router *r, const char *key, cJSON *ids,
                       cs_error_t *errp);
/* fdatasync what idem_add () wrote since the last call (commit.c). */
int idem_sync (struct router *r, cs_error_t *errp);
void idem_free (struct idem *im);

/* ---- commit.c --------------------------------------------------------- */

/* Is anything written but not synced yet (idempotency keys, audit
 * entries)?  Then client_reply () holds its replies for commit_flush ().
 */
bool commit_pending (struct router *r);
/* Hold a reply of client_reply () (takes data). */
void commit_hold (struct router *r, int client_id, const char *name,
                  cJSON *data);
/* Sync what is pending, once, then send the held replies in order. */
void commit_flush (struct router *r);

/* ---- streams.c -------------------------------------------------------- */

/* The translator's emit callback (arg: the router). */
void router_emit (const char *name, cJSON *data, void *arg);
/* Log and broadcast the events held while the log could not be written;
 * true when none is left.
 */
bool router_emit_held (struct router *r);
/* Log the queued events, then send them to the clients (streams.c). */
void router_flush (struct router *r);
/* Whether the followed streams may be read: false while hold_max events
 * are held (back-pressure), until the log takes them.
 */
bool router_reading (struct router *r);
/* Free the held events (at exit: a restart reads their records again). */
void router_held_free (struct router *r);
/* The same for the events the translator writes as text. */
void router_emit_text (const char *name, const char *data, size_t len,
                       void *arg);
/* The stream of node (-1: the swarm stream), created (with its state file
 * read) when create is true.
 */
struct stream *stream_get (struct router *r, struct swarm *sw, int node,
                           bool create);
void stream_destroy (struct stream *s);
int stream_follow (struct router *r, struct stream *s);
void stream_handle_record (struct router *r, struct stream *s,
                           const cJSON *rec, uint64_t seq);

/* ---- swarms.c --------------------------------------------------------- */

struct swarm *swarm_find (struct router *r, const char *id);
struct swarm *swarm_add (struct router *r, const char *id);
void swarm_destroy (struct swarm *sw);
void swarm_info (struct swarm *sw, const cJSON *info);
/* Is name "<node>.jsonl" or "swarm.jsonl" (node -1)? */
bool swarm_name_is_node (const char *name, int *node);
/* Look for new swarms and streams under <home>/swarms (local mode). */
void swarms_scan (struct router *r);
/* Read swarm.json again (local mode): its state may have changed. */
void swarm_refresh (struct router *r, struct swarm *sw);
int swarm_nodes (struct swarm *sw);

/* ---- remote-link.c ---------------------------------------------------- */

/* Start the ssh link, then load the remote swarms of earlier runs. */
int remote_link_start (struct router *r, const struct remote_opts *o,
                       cs_error_t *errp);

/* ---- inbox.c ---------------------------------------------------------- */

/* An inbox append in flight, and the reply its acknowledgement gets. */
struct append_ctx {
    struct router *r;
    int client;
    char *request_id;
    char *swarm_id;
    int node;
    char *id;                   /* injection / interrupt / approval id */
    const char *what;           /* "inject", "interrupt", ... */
    char *extra;                /* approval_id, decision... */
    char *extra2;
    cJSON *decision;            /* approval: a string or an amendment */
    bool steer;
    control_term_t *term;       /* shutdown: the terminate it belongs to */
    struct audit_who who;       /* the client's identity (audit.h) */
};

struct append_ctx *append_ctx_new (struct router *r, int client,
                                   const char *request_id,
                                   const char *swarm_id, int node,
                                   const char *id, const char *what);
void append_ctx_free (struct append_ctx *a);
/* The remote_done_f for an append_ctx: replies to its client. */
void append_done (uint64_t seq, const char *error, void *arg);
/* Append to node's inbox; done is called (maybe before this returns). */
/* Whether node's inbox holds a record with this id (local mode; read under
 * the stream's writer lock, which the router then keeps).  -1 on error.
 */
int inbox_has_id (struct router *r, struct swarm *sw, int node,
                  const char *id, bool *found, cs_error_t *errp);
int inbox_append (struct router *r, struct swarm *sw, int node,
                  const char *type, const cJSON *payload,
                  remote_done_f done, void *arg);
/* The same, unless a record with the payload's "id" is in the inbox
 * already (then done is called with its seq): for writing again what a
 * router that died may or may not have written.
 */
int inbox_append_check (struct router *r, struct swarm *sw, int node,
                        const char *type, const cJSON *payload,
                        remote_done_f done, void *arg);
void inbox_new_id (struct router *r, const char *prefix, int node, char *buf,
                   size_t len);

/* ---- commands.c ------------------------------------------------------- */

/* Parse and carry out one command line of client c. */
void commands_handle (struct router *r, struct client *c, const char *line,
                      size_t len);

/* ---- clients.c -------------------------------------------------------- */

struct client *client_add (struct router *r, int fd_in, int fd_out,
                           bool stdio);
void client_destroy (struct client *c);
void client_read (struct router *r, struct client *c);
void clients_reap (struct router *r);
int clients_listen (struct router *r, cs_error_t *errp);
void clients_accept (struct router *r);
/* A reply (no seq) to one client; takes data. */
void client_reply (struct router *r, int client_id, const char *name,
                   cJSON *data);
void client_reject (struct router *r, int client_id, const char *request_id,
                    const char *code, const char *reason);
/* command_rejected naming the member at fault ("payload.nodes"; NULL or
 * "" when the fault is not one member's).
 */
void client_reject_member (struct router *r, int client_id,
                           const char *request_id, const char *code,
                           const char *member, const char *reason);
/* {"request_id": ...} to add a reply's members to (cJSON_Delete). */
cJSON *client_reply_data (const char *request_id);
/* An event line with seq to every started client that lacks it. */
void clients_broadcast (struct router *r, uint64_t seq, const char *line,
                        size_t len);
/* The events a flush logged, to every started client that lacks them. */
void clients_broadcast_batch (struct router *r,
                              const struct eventlog_out *out);
/* Start (or restart) a client's stream after since (else live). */
void client_start (struct router *r, struct client *c, bool has_since,
                   uint64_t since);
/* Accept a connection on the --tcp listener (tcp.h checks its uid). */
void clients_accept_tcp (struct router *r);

/* ---- for control.c (commands.c, streams.c) ---------------------------- */

/* An event for every client, logged with its seq (takes data). */
void router_event (struct router *r, const char *name, cJSON *data);
/* inject content into every node of swarm_id, acknowledged to client */
void router_inject_text (struct router *r, int client, const char *request_id,
                         const char *swarm_id, const char *content);

#endif
