/* sacct.h - Slurm accounting of a swarm's job chain, from
 * "sacct --parsable2" (the documented machine-readable form).
 */
#ifndef CODESWARM_SLURM_SACCT_H
#define CODESWARM_SLURM_SACCT_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"

/* The fields asked for, in order (also the header of the output). */
#define SACCT_FIELDS                                                           \
    "JobID,JobName,State,Partition,Account,NNodes,NodeList,AllocTRES,"         \
    "Submit,Start,End,Elapsed,ElapsedRaw,ExitCode"

/* Run sacct for the jobs (job ids, comma separated, e.g. "12,13"),
 * every step included.  Returns 0 with *text (free()) the output, header
 * line first; -1 when accounting cannot be asked: errp then holds sacct's
 * own words (e.g. "Slurm accounting storage is disabled") or why it could
 * not run.
 */
int sacct_query (const char *jobids, char **text, cs_error_t *errp);

/* Parse --parsable2 output (a header line, then rows of '|'-separated
 * fields) into an array of objects keyed by the header's names, every
 * value a string (cJSON_Delete).  NULL (errp: "line N: ...") when a row
 * has a different number of fields than the header.
 */
cJSON *sacct_parse (const char *text, cs_error_t *errp);

/* Node-hours of the allocations (rows whose JobID has no '.'): the sum
 * of NNodes x ElapsedRaw / 3600.  *jobs is set to the number of
 * allocations counted.  Rows without numbers are skipped.
 */
double sacct_node_hours (const cJSON *rows, int *jobs);

/* "12,13,14": the chain of job ids of a swarm.json (free()), NULL when
 * there is none.
 */
char *sacct_chain_ids (const cJSON *swarm);

/* The accounting of a swarm (its swarm.json) joined with the tokens and
 * turns its nodes used: {"available": true, "jobs": [{JobID, NNodes,
 * ElapsedRaw, AllocTRES, State...}], "node_hours", "tokens",
 * "tokens_per_node_hour", "turns", "tokens_per_turn"}, or {"available":
 * false, "reason": "..."} when there is no accounting to join (a local
 * swarm, no job yet, sacct's own words).  cJSON_Delete.
 */
cJSON *sacct_accounting (const cJSON *swarm, uint64_t tokens, uint64_t turns);

#endif
