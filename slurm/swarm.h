/* swarm.h - a swarm's swarm.json and its swarm-level event stream.
 *
 * swarm.json (in <home>/swarms/<id>/) describes what was launched and is
 * shared by the launcher on the login node, the batch script on the first
 * node of each job and the local supervisor.  Every change is a
 * read-modify-write under an fcntl lock on "swarm.json.lock", written to a
 * temporary file and rename(2)d into place, so a reader never sees half a
 * file.  Members:
 *   "id", "created", "updated" (seconds), "nodes", "backend" ("slurm" or
 *   "local"), "state" (see below), "end_reason", "options" {...},
 *   "jobs" (the chain of job ids, oldest first, strings), "job_id" (the
 *   current one), "supervisor_pid" (local), "script" (the batch script).
 * States: "submitted" -> "running" -> ("migrating" -> "running")... ->
 * "ended" (or "cancelled", "failed").
 *
 * Swarm-level events go to outbox/swarm.jsonl, a mailbox stream of its own
 * (records as in the node outboxes), opened for each append: its writers
 * take turns through the stream's writer lock.
 */
#ifndef CODESWARM_SLURM_SWARM_H
#define CODESWARM_SLURM_SWARM_H

#include <stdbool.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"

#define SWARM_EVENTS "swarm" /* outbox/swarm.jsonl */

/* Load swarm.json.  Result: cJSON_Delete. */
cJSON *swarm_load (const char *swarmdir, cs_error_t *errp);

/* Called with the current contents (an empty object when the file does
 * not exist yet); returns 0 to write it back, 1 to leave the file as it
 * is, -1 (with errp) to fail.
 */
typedef int (*swarm_update_f) (cJSON *swarm, void *arg, cs_error_t *errp);

/* Locked read-modify-write; sets "updated". */
int swarm_update (const char *swarmdir, swarm_update_f cb, void *arg,
                  cs_error_t *errp);

/* Append one record to outbox/swarm.jsonl (payload borrowed, may be
 * NULL).  Waits up to 10 s for another writer to finish.
 */
int swarm_event (const char *swarmdir, const char *type, const cJSON *payload,
                 cs_error_t *errp);

/* The chain of job ids ("jobs"), made an empty array when it is missing
 * or not an array; NULL when out of memory.  Owned by swarm.
 */
cJSON *swarm_jobs (cJSON *swarm);

/* Add jobid to the end of the chain and set key to val ("job_id" to the
 * job itself when it is submitted, "state" to "migrating" when it is a
 * successor), in one swarm_update.
 */
int swarm_add_job (const char *swarmdir, const char *jobid, const char *key,
                   const char *val, cs_error_t *errp);

/* Convenience accessors on a loaded swarm.json. */
const char *swarm_str (const cJSON *swarm, const char *key);
int swarm_int (const cJSON *swarm, const char *key, int dflt);
double swarm_num (const cJSON *swarm, const char *key, double dflt);
/* The state is final: "ended", "cancelled" or "failed". */
bool swarm_state_final (const char *state);

/* A swarm directory that codeswarm launch began (swarm.json.lock is
 * there) but never finished writing swarm.json (a full filesystem, a
 * crash): nothing was started from it.
 */
bool swarm_half_made (const char *swarmdir);

/* pid runs "supervise <id>" (read from /proc; false when it cannot be told) */
bool swarm_proc_is_supervisor (pid_t pid, const char *id);
/* pid runs codeswarm-worker for swarm id (--swarm id; the same way) */
bool swarm_proc_is_worker (pid_t pid, const char *id);

/* A local swarm that nothing serves: its swarm.json says it runs, but its
 * supervisor is gone and no worker holds the lock of any of its outboxes,
 * so that a prompt written to its inboxes would never be read.  why gets
 * the words ("its local supervisor (pid N) is gone and no worker ...").
 * False for every other swarm (Slurm swarms wait for their jobs).
 */
bool swarm_unserved (const char *swarmdir, char *why, size_t len);

#endif
