/* spawn.h - child processes with separate pipes (after flux popen2 and git
 * run-command).
 *
 * argv, never "sh -c".  stdin/stdout/stderr are each a pipe (nonblocking,
 * CLOEXEC on our side) or inherited, as asked.  An exec failure is sent
 * back over a CLOEXEC pipe, so spawn_start() fails synchronously with the
 * child's errno ("cannot run 'codex': No such file or directory").  Only
 * async-signal-safe calls run between fork and exec.  The child gets its
 * own process group and default signal dispositions and mask.  SIGPIPE is
 * ignored in the parent by spawn_start().
 */
#ifndef CODESWARM_SPAWN_H
#define CODESWARM_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/errprintf.h"

typedef struct spawn spawn_t;

struct spawn_opts {
    const char *cwd;            /* NULL: inherit */
    char *const *env_set;       /* "KEY=VALUE" entries added/replaced; NULL-terminated */
    char *const *env_unset;     /* names removed; NULL-terminated */
    bool pipe_stdin;            /* else /dev/null */
    bool pipe_stdout;           /* else inherited */
    bool pipe_stderr;           /* else inherited */
    int stderr_fd;              /* >= 0 (and !pipe_stderr): dup'd onto 2 */
    const int *ignore_signals;  /* 0-terminated: set to SIG_IGN in the child
                                   (survives exec), e.g. so a signal sent to
                                   a whole Slurm step spares the child */
};
#define SPAWN_OPTS_INIT { .stderr_fd = -1 }

/* Start argv[0] (searched in PATH when it has no '/'; the PATH is the
 * child's, i.e. env_set may change it; relative names resolve in cwd).
 * Returns a handle to free with spawn_destroy(), or NULL with errno set
 * and errp saying why.
 */
spawn_t *spawn_start (char *const argv[], const struct spawn_opts *opts,
                      cs_error_t *errp);

pid_t spawn_pid (spawn_t *s);
int spawn_stdin_fd (spawn_t *s);    /* -1 when not piped or closed */
int spawn_stdout_fd (spawn_t *s);
int spawn_stderr_fd (spawn_t *s);
void spawn_close_stdin (spawn_t *s);
void spawn_close_stdout (spawn_t *s);
void spawn_close_stderr (spawn_t *s);

struct spawn_status {
    bool exited;                /* normal exit: code valid */
    int code;
    bool signaled;              /* killed: signal valid */
    int signal;
};

/* Reap without blocking: 1 if the child has ended (*st filled), 0 if still
 * running, -1 on error.  Safe to call again after it returned 1.
 */
int spawn_poll (spawn_t *s, struct spawn_status *st);

/* Block until the child ends. */
int spawn_wait (spawn_t *s, struct spawn_status *st);

/* Stop: SIGTERM to the child's process group, wait up to grace seconds,
 * then SIGKILL the group, and reap.  Returns 0 (and *st) once reaped.
 */
int spawn_stop (spawn_t *s, double grace, struct spawn_status *st);

/* Send a signal to the child's process group (ESRCH once reaped). */
int spawn_kill (spawn_t *s, int sig);

/* Kills (SIGKILL to the group) and reaps a child still running; closes fds.
 * NULL is a no-op; keeps errno.
 */
void spawn_destroy (spawn_t *s);

/* "exit 3", "signal 9 (Killed)" */
const char *spawn_status_str (const struct spawn_status *st, char *buf,
                              size_t len);

#endif
