/* launch_steps.h - one "codeswarm launch", step by step: the state the
 * steps share, and the steps, each in the file that owns its concern:
 *   launch.c          the verb: configuration, the order of the steps
 *   launch_opts.c     the command line (and --resume's options)
 *   launch_script.c   the batch script, rendered from its template
 *   launch_create.c   the swarm directory and swarm.json
 *   launch_submit.c   the job spec and its submission (also successors)
 *   launch_progress.c what launch shows while it waits for the nodes
 *   local.c           the local backend (its supervisor)
 * Private to codeswarm-launch's launch verb; launch.h has what the other
 * verbs use.
 */
#ifndef CODESWARM_SLURM_LAUNCH_STEPS_H
#define CODESWARM_SLURM_LAUNCH_STEPS_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "common/configfile.h"
#include "slurm/launch.h"
#include "slurm/nodes.h"

/* One launch, from its options to the started swarm. */
struct launch {
    struct launch_opts o;
    struct cs_config cfg;
    bool have_cfg;
    bool local;
    const char *backend;        /* "local" or "slurm" */
    int warn;                   /* --warn seconds (0: none) */
    bool use_sbatch;
    const char *mpi;
    char home[LAUNCH_PATH_MAX];
    char swarmdir[LAUNCH_PATH_MAX];
    char id[80];
    char jobid[32];
    char *agents;               /* --agents-md contents */
    char *script;               /* the rendered batch script (slurm) */
    cJSON *request;             /* --request */
    const cJSON *skills;        /* the request's skills bundle (in request) */
    struct nodes resumed;       /* --resume: the nodes' state before */
    bool have_resumed;
};

/* Exit codes of the steps: 0, LAUNCH_FAILED or LAUNCH_USAGE. */
enum { LAUNCH_FAILED = 1, LAUNCH_USAGE = 2 };

/* launch.c: the whole file at path into *text (free), 0 or -1 (errno) */
int launch_read_file (const char *path, char **text);

/* launch_opts.c */
/* Parse the command line into *o (--resume applied); -1 when it is wrong
 * (said on stderr).  --help prints the usage and exits.
 */
int launch_opts_parse (int argc, char **argv, struct launch_opts *o);
/* opt names the option or setting in the message; 0 or -1 (said) */
int launch_readable_file (const char *opt, const char *path);
/* The first option of the command line only Slurm can honour, or NULL. */
const char *launch_opts_slurm_only (const struct launch_opts *o);

/* launch_script.c: fill the batch script template into l->script (slurm);
 * sets l->use_sbatch and l->mpi.  0 or LAUNCH_USAGE (said).
 */
int launch_render_script (struct launch *l);

/* launch_create.c: the swarm directory: log/, work/<k>/ (with AGENTS.md
 * and skills), job.sbatch, swarm.json and the swarm_created (or
 * swarm_resumed) event.  0 or LAUNCH_FAILED (said).
 */
int launch_create (struct launch *l);

/* launch_submit.c: submit the job (slurm) into l->jobid, recorded in
 * swarm.json and as job_submitted.  0 or LAUNCH_FAILED (said).
 */
int launch_submit (struct launch *l);

/* local.c: start the local supervisor (local).  0 or LAUNCH_FAILED. */
int launch_supervise (struct launch *l);

/* launch_progress.c */
/* --progress-json: one object per line on stdout, {"stage":...}, members
 * key/value string pairs (NULL value: null), then "node_id" when node >= 0.
 * Prints nothing unless launch_progress_json (true) was called.
 */
void launch_progress_json (bool on);
void launch_progress_emit (const char *stage, int node, ...)
    __attribute__ ((sentinel));
/* Wait until every node is ready.  0 when ready, 1 when the swarm ended
 * first (reported), 130 when interrupted (and the swarm cancelled), 0 when
 * interrupted with detach.  opened (may be NULL): the nodes read up to now,
 * taken over.
 */
int launch_wait_ready (const char *id, const char *swarmdir, int count,
                       bool quiet, double pending_timeout, bool detach,
                       struct nodes *opened);

#endif
