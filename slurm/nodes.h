/* nodes.h - what the node outboxes say about each node of a swarm:
 * lifecycle (started, ready, stopped), turns and tokens, activity.
 */
#ifndef CODESWARM_SLURM_NODES_H
#define CODESWARM_SLURM_NODES_H

#include <stdbool.h>
#include <stdint.h>

#include "common/errprintf.h"
#include "mailbox/mailbox.h"

enum node_phase {
    NODE_NONE = 0, /* nothing heard */
    NODE_STARTED,  /* worker_started */
    NODE_READY,    /* ready */
    NODE_STOPPED,  /* worker_stopped */
};

#define NODE_APPROVALS_MAX 8

struct node_state {
    enum node_phase phase;
    unsigned degraded; /* node_degraded not recovered: 1 outbox, 2 inbox */
    char host[64];
    char job_id[32];
    char thread_id[64];
    uint64_t turns;  /* turn/completed seen */
    uint64_t tokens; /* last thread/tokenUsage total */
    bool turn_active;
    double last_activity; /* ts of the last turn-related record */
    double turn_started;  /* ts of the running turn's turn/started */
    int approvals;        /* approval requests not answered yet */
    char approval_id[NODE_APPROVALS_MAX][64]; /* the first of them, oldest
                                                 first */
    char answer[160];     /* the last line of the latest answer */
    char line[160];       /* (the line being streamed) */
    char last_event[64];  /* what the node last did: "turn 3 completed" */
    double last_event_ts;
    uint64_t records;
    /* counters for metrics (status --prometheus, the router's
     * --metrics-file): over every incarnation of the node */
    uint64_t turns_started;    /* turn/started */
    uint64_t turns_failed;     /* turn/completed with status "failed" */
    uint64_t tokens_in;        /* last thread/tokenUsage total input */
    uint64_t tokens_out;       /* ... and output */
    uint64_t approvals_decided; /* approval_resolved */
    uint64_t restarts;         /* app_server_restarted */
    uint64_t inbox_acted;      /* highest inbox_seq a record names */
    double last_heartbeat;     /* ts of the last heartbeat record */
    double last_record;        /* ts of the last record */
    mb_reader_t *reader;
};

#define NODES_MAX_JOBS 64

struct nodes {
    int count;
    struct node_state *node;
    /* the distinct job ids of the worker_started records, oldest first
     * (by the ts of the first record naming each), and the job of the
     * newest worker_started record
     */
    char jobs[NODES_MAX_JOBS][32];
    double jobs_ts[NODES_MAX_JOBS];
    int njobs;
    char newest_job[32];
    double newest_job_ts;
};

/* Open readers on outbox/0..count-1 from the beginning. */
int nodes_open (struct nodes *ns, const char *swarmdir, int count,
                cs_error_t *errp);
void nodes_close (struct nodes *ns);

/* Read what is new.  cb (may be NULL) is told about each node whose phase
 * changed.  Returns the number of records read, or -1.
 */
typedef void (*nodes_change_f) (int k, const struct node_state *n, void *arg);
int nodes_update (struct nodes *ns, nodes_change_f cb, void *arg,
                  cs_error_t *errp);

/* Nodes in phase; a degraded node does not count as NODE_READY. */
int nodes_count_phase (const struct nodes *ns, enum node_phase phase);

/* Add node k's phase and counters to o (the members of "codeswarm status
 * --json"'s node_states that slurm/prom.h turns into metrics).
 */
void nodes_metrics_json (cJSON *o, const struct node_state *n,
                         const char *swarmdir, int k);

/* The seq of the last record of inbox/<k>.jsonl (0: none yet). */
uint64_t nodes_inbox_last (const char *swarmdir, int k);

/* The node count of a swarm as its mailbox shows it (a swarm started by
 * "srun codeswarm-worker" without "codeswarm launch" has no swarm.json):
 * one more than the highest K of outbox/K.jsonl; 0 when there is none,
 * -1 (errp) when outbox/ cannot be read.
 */
int nodes_outbox_count (const char *swarmdir, cs_error_t *errp);

#endif
