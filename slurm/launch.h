/* launch.h - shared pieces of codeswarm-launch's verbs */
#ifndef CODESWARM_SLURM_LAUNCH_H
#define CODESWARM_SLURM_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"
#include "common/path.h"
#include "slurm/job.h"

#define LAUNCH_PATH_MAX 4096

/* <home> (created when create is true) */
int launch_home (char *buf, size_t len, bool create);

/* <home>/swarms/<id> of an existing swarm (one with a swarm.json, or an
 * outbox/ only when the user's own batch script started its workers),
 * with a clear error */
int launch_swarm_dir (const char *home, const char *id, char *buf, size_t len,
                      cs_error_t *errp);

/* Absolute path of this program (for the batch script and supervisor). */
const char *launch_self (void);

/* The codeswarm-worker to run: $CODESWARM_WORKER, the installed tree's
 * own (found relative to this program, common/prefix.h), the first in
 * $PATH, or the configured bindir's.  Returns env or buf.
 */
const char *launch_worker_path (char *buf, size_t len);

/* Build the job spec of a swarm from its swarm.json (options, script).
 * Strings in *spec borrow from swarm and from *script_text (free()).
 * env: a NULL-terminated environment to free with launch_env_free().
 */
int launch_job_spec (const cJSON *swarm, const char *swarmdir,
                     struct job_spec *spec, char **script_text,
                     cs_error_t *errp);
char **launch_job_env (const char *home);
void launch_env_free (char **env);

/* Set state unless it is final already; *changed tells whether it did.
 * reason (may be NULL) goes to "end_reason".
 */
int launch_set_state (const char *swarmdir, const char *state,
                      const char *reason, bool *changed, cs_error_t *errp);

/* Event with a few string members: key, value, ..., NULL */
int launch_event (const char *swarmdir, const char *type, ...)
    __attribute__ ((sentinel));

/* verbs */
int cmd_launch (int argc, char **argv);
int cmd_cancel (int argc, char **argv);
int cmd_status (int argc, char **argv);
int cmd_doctor (int argc, char **argv);
int cmd_setup_codex (int argc, char **argv);
int cmd_forget (int argc, char **argv);
/* internal verbs (batch script and local supervisor) */
int cmd_job_event (int argc, char **argv);
int cmd_idle_watch (int argc, char **argv);
int cmd_supervise (int argc, char **argv);

#endif
