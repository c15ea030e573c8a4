/* job.h - submit, query and signal Slurm jobs.
 *
 * With libslurm (HAVE_LIBSLURM) jobs are submitted with
 * slurm_submit_batch_job() and queried with slurm_load_job(); without it,
 * or when the job needs options only sbatch understands (--sbatch-opt, a
 * user template with its own #SBATCH lines), "sbatch --parsable" submits
 * and "squeue --json" answers.  Signals go through scancel.  A query that
 * fails is an error; a job that Slurm no longer knows is reported as such
 * (found = false), never guessed to be finished.
 */
#ifndef CODESWARM_SLURM_JOB_H
#define CODESWARM_SLURM_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errprintf.h"

struct job_spec {
    const char *name;        /* job name (the swarm id) */
    const char *script;      /* batch script text */
    const char *script_path; /* the same script as a file (for sbatch) */
    const char *comment;
    const char *output; /* stdout/stderr file ("%j" allowed) */
    const char *workdir;
    const char *partition, *account, *qos; /* NULL: cluster default */
    uint64_t time_secs;                    /* 0: default */
    int nodes;
    int gpus_per_node;  /* 0: none */
    int warn_secs;      /* >0: --signal=B:USR1@warn_secs */
    bool singleton;     /* --dependency=singleton */
    bool requeue;       /* --requeue, the log kept across runs
                           (--open-mode=append) */
    bool no_kill;       /* --no-kill: a failed node leaves, the job stays */
    char **sbatch_opts; /* extra sbatch options (forces sbatch) */
    size_t nsbatch_opts;
    bool use_sbatch; /* force the sbatch path */
    char **env;      /* the job's environment, NULL-terminated */
};

/* Submit; writes the job id into jobid.  errp carries Slurm's words. */
int job_submit (const struct job_spec *spec, char *jobid, size_t len,
                cs_error_t *errp);

struct job_status {
    bool found;        /* Slurm knows the job */
    char state[32];    /* "PENDING", "RUNNING", "COMPLETED", ... */
    char reason[64];   /* why pending ("Resources", "Dependency") */
    char nodes[256];   /* node list once allocated */
    double start_time; /* 0 when unknown */
    double end_time;   /* expected end while running */
    char partition[64];  /* the job's partition ("" when unknown) */
    uint32_t req_nodes;  /* nodes requested (0 when unknown) */
    uint32_t time_limit; /* minutes (0 when unknown or unlimited) */
    uint32_t restart_cnt; /* times Slurm requeued the job (0 when unknown) */
};

int job_query (const char *jobid, struct job_status *ji, cs_error_t *errp);

/* The state is one the job never leaves. */
bool job_state_final (const char *state);

/* scancel: sig 0 cancels; otherwise signals the steps (steps_only) or the
 * whole job.  A job that already ended is not an error.
 */
int job_signal (const char *jobid, int sig, bool steps_only, cs_error_t *errp);

/* Is a Slurm controller reachable? (errp says why not) */
int job_slurm_ping (cs_error_t *errp);

/* "libslurm" or "sbatch" */
const char *job_backend_name (void);

#endif
