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

#define MAX_SBATCH_OPTS 64

struct launch_opts {
    int nodes;
    int spares;                 /* --spares: extra nodes that start no agent */
    const char *time;
    uint64_t time_secs;
    const char *partition, *account, *qos;
    int gpus_per_node;
    char *sbatch_opts[MAX_SBATCH_OPTS];
    size_t nsbatch_opts;
    const char *config;
    const char *agents_md;
    bool persist;
    double idle_timeout;
    double warn;
    bool warn_given;
    bool local;
    bool slurm;
    bool no_wait;
    bool detach;
    double pending_timeout;
    bool parsable;
    bool progress_json;
    const char *request;        /* --request FILE (the router's swarm_launch) */
    const char *template;
    const char *name;
    const char *resume;         /* --resume ID: relaunch an ended swarm */
};

/* viarouter.c: launch and cancel through a running router.  Each returns
 * -1 when no router listens (the caller then acts directly), else the
 * verb's exit status.
 */
bool launch_via_router_possible (const struct launch_opts *o);
int launch_via_router (const struct launch_opts *o, const char *agents);
int cancel_via_router (const char *id, double grace, bool grace_given);

/* A swarm id: 1-64 of A-Z a-z 0-9 . _ -, not starting with '.' */
bool launch_valid_id (const char *id);

/* --request FILE: a swarm_launch payload of the router protocol, applied
 * to *o member by member (request.c).  On success *req holds the parsed
 * request (the strings in *o borrow from it; cJSON_Delete), *agents the
 * AGENTS.md text or NULL (free), *skills the skills files or NULL (borrowed
 * from *req).  On failure prints the rejection ({"stage":"rejected",
 * "code","member","message"} with --progress-json) and returns -1.
 */
int launch_request_apply (const char *file, struct launch_opts *o,
                          cJSON **req, char **agents, const cJSON **skills);

/* <home> (created when create is true) */
int launch_home (char *buf, size_t len, bool create);

/* <home>/swarms/<id> of an existing swarm (one with a swarm.json, or an
 * outbox/ only when the user's own batch script started its workers),
 * with a clear error */
/* Why home/swarms/id (id NULL: home/swarms) cannot be used: the first
 * directory on the way that is not one or that cannot be read or searched
 * ("cannot access 'PATH': Permission denied"), else "no swarm".  Returns -1.
 */
int launch_access_error (const char *home, const char *id, cs_error_t *errp);
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
int cmd_providers (int argc, char **argv);  /* request.c */
int cmd_forget (int argc, char **argv);
int cmd_top (int argc, char **argv);
/* internal verbs (batch script and local supervisor) */
int cmd_job_event (int argc, char **argv);
int cmd_idle_watch (int argc, char **argv);
int cmd_job_timer (int argc, char **argv);  /* jobtimer.c */
int cmd_supervise (int argc, char **argv);
int cmd_spare_watch (int argc, char **argv);   /* spares.c */
int cmd_export (int argc, char **argv);
int cmd_audit (int argc, char **argv);
int cmd_report (int argc, char **argv);

/* An entry of the swarm's audit trail (mailbox/audit.h) by this program:
 * action, then "key", "value" pairs (a NULL value is left out), NULL.
 * Logs a failure; returns 0 or -1.
 */
int launch_audit (const char *swarmdir, const char *action, ...);
int cmd_import (int argc, char **argv);

#endif
