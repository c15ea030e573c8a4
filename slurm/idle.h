/* idle.h - how long a swarm has gone without turns, across its job chain.
 *
 * Idleness is measured from the mailbox, not from the start of the current
 * job: the node outboxes hold every job's records, so the last turn
 * activity survives migrations to successor jobs.  When no node ever had a
 * turn, the swarm is idle since its first job started (the first
 * "job_started" record of outbox/swarm.jsonl: time spent pending in the
 * queue does not count), or since swarm.json's "created" when no job
 * started yet.  A prompt waiting in a node's inbox counts as activity from
 * the time it was sent: a prompt sent during the gap between two jobs of
 * a chain runs in the successor before the swarm may idle out.
 */
#ifndef CODESWARM_SLURM_IDLE_H
#define CODESWARM_SLURM_IDLE_H

#include <stdbool.h>

#include "common/errprintf.h"
#include "mailbox/mailbox.h"
#include "slurm/nodes.h"

/* ts of the first record of TYPE in outbox/swarm.jsonl: 1 when found, 0
 * when there is none (yet), -1 on error.
 */
int idle_first_event (const char *swarmdir, const char *type, double *ts,
                      cs_error_t *errp);

/* Readers of inbox/0..count-1: the ts of the newest "user" record. */
struct idle_inbox {
    int count;
    mb_reader_t **reader;
    double last_prompt; /* 0: none */
};

int idle_inbox_open (struct idle_inbox *ib, const char *swarmdir, int count,
                     cs_error_t *errp);
/* Read what is new; -1 on error. */
int idle_inbox_update (struct idle_inbox *ib, cs_error_t *errp);
void idle_inbox_close (struct idle_inbox *ib);

/* The time the swarm's idleness is counted from: the newest turn activity
 * of any node (ns read up to now) or prompt (last_prompt, 0: none), else
 * first_start (> 0), else created.  *active is set when a node is in a
 * turn.
 */
double idle_since (const struct nodes *ns, double last_prompt,
                   double first_start, double created, bool *active);

#endif
