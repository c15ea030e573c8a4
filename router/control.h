/* control.h - the commands that run the launcher (codeswarm-launch as a
 * child, launcher.h): swarm_launch, providers_list, and the end of
 * swarm_terminate.
 *
 * swarm_launch: the payload goes to "codeswarm-launch launch
 * --progress-json --request FILE", which checks it member by member and
 * prints its progress; every progress line becomes a swarm_launch_progress
 * event (stage, message, and swarm_id, job_id, node_id... as known) with
 * the command's request_id, logged and sent to every client like any
 * event.  Once every node is ready: swarm_launched, then the system_prompt
 * (if any) is injected into every node with the same request_id.  A
 * payload the launcher refuses is a command_rejected naming the member
 * ("bad_payload" or "unsupported"); a launch that fails later is a
 * command_rejected "launch_failed" (with swarm_id when the swarm exists).
 *
 * swarm_terminate: the router writes a shutdown record to every node's
 * inbox (router.c); for a swarm launched by codeswarm launch, "codeswarm-
 * launch cancel" also runs (the local supervisor or the Slurm jobs).  When
 * both are done: swarm_terminated with the request_id.
 */
#ifndef CODESWARM_ROUTER_CONTROL_H
#define CODESWARM_ROUTER_CONTROL_H

#include <poll.h>
#include <stdbool.h>

#include "router/command.h"

struct router;
typedef struct control control_t;
typedef struct control_term control_term_t;

control_t *control_create (struct router *r);
/* stops the children still running */
void control_destroy (control_t *c);

/* poll() integration: fill up to max pollfds, return how many; then hand
 * the same slice back to control_handle.
 */
int control_pollfds (control_t *c, struct pollfd *pfd, int max);
void control_handle (control_t *c, const struct pollfd *pfd, int n);

void control_launch (control_t *c, int client, const struct rc_command *cmd);
void control_providers (control_t *c, int client,
                        const struct rc_command *cmd);

/* A swarm_terminate under way: records shutdown records still to be
 * acknowledged (control_term_acked once each), cancel whether to run
 * "codeswarm-launch cancel".  With nothing to wait for, swarm_terminated
 * is sent at once and NULL returned.
 */
control_term_t *control_terminate (control_t *c, int client,
                                   const struct rc_command *cmd,
                                   const char *swarm_id, int records,
                                   bool cancel);
/* error: NULL when the record was written */
void control_term_acked (control_t *c, control_term_t *t, const char *error);

#endif
