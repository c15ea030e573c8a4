/* run.h - run a command and collect its output (for sbatch, squeue, npm). */
#ifndef CODESWARM_SLURM_RUN_H
#define CODESWARM_SLURM_RUN_H

#include "common/errprintf.h"
#include "common/spawn.h"

struct run_result {
    char *out; /* stdout, NUL-terminated; free() */
    char *err; /* stderr, NUL-terminated; free() */
    struct spawn_status status;
};

/* Run argv (env_set/env_unset as in spawn_opts, may be NULL) with stdin
 * from /dev/null, wait for it, and collect stdout and stderr (each capped
 * at 16 MiB).  Returns 0 once the command ran (whatever its exit status),
 * -1 when it could not be started (errp: "cannot run 'sbatch': ...").
 * timeout > 0: stop it (TERM, then KILL) after that many seconds.
 */
int run_capture (char *const argv[], char *const *env_set,
                 char *const *env_unset, double timeout, struct run_result *res,
                 cs_error_t *errp);
void run_result_release (struct run_result *res);

/* Did it exit 0? */
int run_ok (const struct run_result *res);

/* The first line of s, without trailing blanks, into buf (for messages). */
const char *run_first_line (const char *s, char *buf, size_t len);

#endif
