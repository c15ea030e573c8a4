/* launcher.h - codeswarm-launch as a child of the router
 *
 * The router does not link the launcher's code (nor libslurm): for
 * swarm_launch, swarm_terminate and providers_list it runs
 * "codeswarm-launch VERB ..." (common/spawn.c) and reads what it prints —
 * one line at a time on stdout (JSON for the verbs that print JSON), the
 * last words of its stderr for a failure.  Non-blocking: the router's poll
 * loop watches the child's pipes with launcher_pollfds/launcher_handle.
 */
#ifndef CODESWARM_ROUTER_LAUNCHER_H
#define CODESWARM_ROUTER_LAUNCHER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/errprintf.h"
#include "common/spawn.h"

typedef struct launcher launcher_t;

struct launcher_ops {
    /* one line of stdout (without its newline) */
    void (*line) (launcher_t *l, const char *line, size_t len, void *arg);
    /* the child ended: its status and the last line of its stderr that
     * says what went wrong ("" when none); called once */
    void (*done) (launcher_t *l, const struct spawn_status *st,
                  const char *error, void *arg);
};

/* The codeswarm-launch program: $CODESWARM_LAUNCH, else the first in the
 * directories of $CODESWARM_EXEC_PATH, else PKGLIBEXECDIR's.
 */
const char *launcher_program (char *buf, size_t len);

/* Run codeswarm-launch with args (NULL-terminated, without the program)
 * and env_set ("NAME=VALUE" added to its environment, NULL-terminated, may
 * be NULL).  Returns a handle (launcher_destroy) or NULL with errp.
 */
launcher_t *launcher_start (const char *const *args,
                            const char *const *env_set,
                            const struct launcher_ops *ops, void *arg,
                            cs_error_t *errp);

/* poll() integration: fill up to max pollfds (2 at most), then pass the
 * same ones back.  done() is called from launcher_handle.
 */
int launcher_pollfds (launcher_t *l, struct pollfd *pfd, int max);
void launcher_handle (launcher_t *l, const struct pollfd *pfd, int n);
bool launcher_finished (launcher_t *l);

/* Kills a child still running (TERM, then KILL to its process group) and
 * frees l.  NULL is a no-op.
 */
void launcher_destroy (launcher_t *l);

#endif
