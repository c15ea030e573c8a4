/* jobtime.h - the node time a swarm's job chain has held so far, from its
 * job events (outbox/swarm.jsonl), without asking Slurm.
 *
 * A job's time runs from its "job_started" record to its "job_ended" (or
 * the next "job_started", or "swarm_ended", whichever comes first).  A job
 * still running counts up to now.  This is what the router's metrics show
 * while a job runs; sacct (slurm/sacct.h) gives the measured figure.
 */
#ifndef CODESWARM_SLURM_JOBTIME_H
#define CODESWARM_SLURM_JOBTIME_H

#include <stdbool.h>

#include "common/errprintf.h"
#include "mailbox/mailbox.h"

struct jobtime {
    mb_reader_t *reader;    /* outbox/swarm.jsonl, read incrementally */
    double ended;           /* seconds of the jobs that have ended */
    double open_since;      /* ts of the running job's start, 0: none */
};

void jobtime_init (struct jobtime *jt);

/* Read the swarm's new job events (a swarm stream that does not exist yet
 * is no error).  0, or -1 with errp filled.
 */
int jobtime_update (struct jobtime *jt, const char *swarmdir,
                    cs_error_t *errp);

/* Seconds the chain's jobs have run; a job still open counts up to now
 * when running is true (the swarm's state says a job holds its nodes).
 */
double jobtime_seconds (const struct jobtime *jt, double now, bool running);

void jobtime_close (struct jobtime *jt);

#endif
