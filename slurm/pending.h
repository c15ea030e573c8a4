/* pending.h - why a Slurm job waits, in words, and whether it ever can
 * start.
 *
 * Most pending reasons resolve on their own (Resources, Priority,
 * Dependency, a partition that is down for now).  Some never do: the
 * request exceeds a limit of the partition, the QOS or the association,
 * names an account or QOS the user may not use, or depends on a job that
 * can never satisfy it.  A launch that waits for such a job waits for ever;
 * it reports the limit and cancels the job instead.
 */
#ifndef CODESWARM_SLURM_PENDING_H
#define CODESWARM_SLURM_PENDING_H

#include <stdbool.h>
#include <stddef.h>

#include "slurm/job.h"

/* "pending (Resources)", or "pending (waiting for the scheduler)" when
 * Slurm gives no reason yet; never "(None)".
 */
const char *pending_words (const char *reason, char *buf, size_t len);

/* Can the job, pending for ji->reason, never start as it is?  Then true,
 * and buf says which limit it exceeds, e.g. "5 nodes requested; partition
 * 'debug' has 4 nodes" (the partition's figures
 * come from sinfo).  PartitionConfig ("not available now") is final only
 * when the partition has fewer nodes than the job asks for.
 */
bool pending_never (const struct job_status *ji, char *buf, size_t len);

#endif
