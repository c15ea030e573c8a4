/* launch.c - "codeswarm launch": create a swarm, submit its job (or start
 * the local supervisor) and show progress until every node is ready.
 * This file owns the verb: the defaults of codeswarm.yaml, the checks that
 * need the configuration, the swarm's id, and the order of the steps, which
 * live in the files named in launch_steps.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/configfile.h"
#include "common/log.h"
#include "common/path.h"
#include "slurm/job.h"
#include "slurm/launch.h"
#include "slurm/launch_steps.h"
#include "slurm/nodes.h"
#include "slurm/walltime.h"

int launch_read_file (const char *path, char **text)
{
    FILE *f = fopen (path, "r");
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;

    if (!f)
        return -1;
    {
        FILE *m = open_memstream (&buf, &len);
        char chunk[8192];
        size_t n;
        if (!m) {
            fclose (f);
            return -1;
        }
        while ((n = fread (chunk, 1, sizeof (chunk), f)) > 0)
            fwrite (chunk, 1, n, m);
        if (ferror (f))
            rc = -1;
        fclose (m);
    }
    fclose (f);
    if (rc < 0) {
        free (buf);
        return -1;
    }
    *text = buf;
    return 0;
}

static void make_id (char *buf, size_t len)
{
    time_t now = time (NULL);
    struct tm tm;
    unsigned r;
    int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);

    if (fd < 0 || read (fd, &r, sizeof (r)) != (ssize_t)sizeof (r))
        r = (unsigned)getpid () ^ (unsigned)now;
    if (fd >= 0)
        close (fd);
    gmtime_r (&now, &tm);
    snprintf (buf, len, "sw-%04d%02d%02d-%02d%02d%02d-%04x", tm.tm_year + 1900,
              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
              r & 0xffff);
}

/* codeswarm.yaml: defaults for what the command line did not say, and
 * whether the options fit the backend.
 */
static int launch_configure (struct launch *l)
{
    struct launch_opts *o = &l->o;
    struct cs_config *cfg = &l->cfg;
    const char *opt;
    cs_error_t e;

    if (config_load (cfg, o->config, &e) < 0) {
        log_msg ("%s", e.text);
        return LAUNCH_USAGE;
    }
    l->have_cfg = true;
    l->local = o->local || (!o->slurm && !strcmp (cfg->backend, "local"));
    l->backend = l->local ? "local" : "slurm";
    if (l->local && (opt = launch_opts_slurm_only (o))) {
        if (o->local)
            log_msg ("%s is a Slurm option: it means nothing with --local",
                     opt);
        else
            log_msg ("%s is a Slurm option, and slurm.backend is 'local' "
                     "in '%s': drop it, or add --slurm",
                     opt, cfg->path ? cfg->path : "codeswarm.yaml");
        return LAUNCH_USAGE;
    }
    if (l->local)
        return 0;
    if (!o->partition && cfg->partition)
        o->partition = cfg->partition;
    if (!o->account && cfg->account)
        o->account = cfg->account;
    if (!o->qos && cfg->qos)
        o->qos = cfg->qos;
    if (!o->time && cfg->time_limit) {
        o->time = cfg->time_limit;
        if (walltime_parse (o->time, &o->time_secs, &e) < 0) {
            log_msg ("slurm.time: %s", e.text);
            return LAUNCH_USAGE;
        }
    }
    if (!o->template && cfg->sbatch_template) {
        o->template = cfg->sbatch_template;
        if (launch_readable_file ("slurm.template", o->template) < 0)
            return LAUNCH_USAGE;
    }
    if (o->persist) {
        l->warn = o->warn_given ? (int)o->warn : cfg->warn_seconds;
        if (l->warn <= 0 || l->warn > 65535) {
            log_msg ("--warn must be between 1 and 65535 seconds");
            return LAUNCH_USAGE;
        }
        if (o->time_secs && o->time_secs != WALLTIME_INFINITE &&
            (uint64_t)l->warn >= o->time_secs) {
            log_msg ("--warn (%d s) must be shorter than --time (%llu s)",
                     l->warn, (unsigned long long)o->time_secs);
            return LAUNCH_USAGE;
        }
    } else if (o->warn_given) {
        log_msg ("--warn is only meaningful with --persist");
        return LAUNCH_USAGE;
    }
    return 0;
}

/* Slurm must answer: never fall back to local processes on a login node. */
static int launch_check_slurm (struct launch *l)
{
    cs_error_t e;

    if (l->local || job_slurm_ping (&e) == 0)
        return 0;
    log_msg ("cannot reach Slurm: %s", e.text);
    fprintf (stderr,
             "hint: make Slurm's commands and configuration available "
             "(e.g. 'module load slurm',\n"
             "hint: or SLURM_CONF), or run the agents as processes on "
             "this machine with --local\n"
             "hint: (slurm.backend: local in codeswarm.yaml makes that "
             "the default)\n");
    return LAUNCH_FAILED;
}

/* Everything to read and render, before anything is created: AGENTS.md,
 * the swarm id (which must be new), the batch script.
 */
static int launch_prepare (struct launch *l)
{
    const struct launch_opts *o = &l->o;

    if (o->agents_md && launch_read_file (o->agents_md, &l->agents) < 0) {
        log_msg ("--agents-md: cannot read '%s': %s", o->agents_md,
                 strerror (errno));
        return LAUNCH_USAGE;
    }
    if (o->name)
        snprintf (l->id, sizeof (l->id), "%s", o->name);
    else
        make_id (l->id, sizeof (l->id));
    pathf (l->swarmdir, sizeof (l->swarmdir), "%s/swarms/%s", l->home, l->id);
    if (!o->resume && access (l->swarmdir, F_OK) == 0) {
        log_msg ("swarm '%s' already exists in '%s/swarms'", l->id, l->home);
        return LAUNCH_USAGE;
    }
    if (!l->local)
        return launch_render_script (l);
    return 0;
}

/* What was started, in the form asked for. */
static void launch_report (const struct launch *l)
{
    const struct launch_opts *o = &l->o;

    if (o->progress_json) {
        char msg[256], nodes[16];
        snprintf (nodes, sizeof (nodes), "%d", o->nodes);
        if (!l->local)
            snprintf (msg, sizeof (msg), "swarm %s: submitted as job %s",
                      l->id, l->jobid);
        else
            snprintf (msg, sizeof (msg), "swarm %s: started locally", l->id);
        launch_progress_emit ("created", -1, "swarm_id", l->id, "backend",
                       l->backend, "job_id", l->jobid, "nodes", nodes,
                       "message", msg, NULL);
    }
    else if (o->parsable)
        printf ("%s;%s\n", l->id, l->jobid);
    else if (!l->local)
        printf ("swarm %s: submitted as job %s (%d node%s)\n", l->id,
                l->jobid, o->nodes, o->nodes == 1 ? "" : "s");
    else
        printf ("swarm %s: started locally (%d node%s)\n", l->id, o->nodes,
                o->nodes == 1 ? "" : "s");
    fflush (stdout);
}

static void launch_release (struct launch *l)
{
    if (l->have_resumed)
        nodes_close (&l->resumed);
    cJSON_Delete (l->request);
    free (l->agents);
    free (l->script);
    if (l->have_cfg)
        config_release (&l->cfg);
}

int cmd_launch (int argc, char **argv)
{
    struct launch l = { .mpi = "" };
    int rc;

    if (launch_opts_parse (argc, argv, &l.o) < 0)
        return LAUNCH_USAGE;
    launch_progress_json (l.o.progress_json);
    if (l.o.request && launch_request_apply (l.o.request, &l.o, &l.request,
                                             &l.agents, &l.skills) < 0)
        return LAUNCH_USAGE;
    rc = LAUNCH_USAGE;
    if (l.o.local && l.o.slurm) {
        log_msg ("--local and --slurm exclude each other");
        goto out;
    }
    if (l.o.name && !launch_valid_id (l.o.name)) {
        log_msg ("--name '%s' is not a valid swarm id (use 1-64 of "
                 "A-Z a-z 0-9 . _ - not starting with '.')",
                 l.o.name);
        goto out;
    }
    if (launch_via_router_possible (&l.o)) {
        char *md = NULL;
        if (l.o.agents_md && launch_read_file (l.o.agents_md, &md) < 0) {
            log_msg ("--agents-md: cannot read '%s': %s", l.o.agents_md,
                     strerror (errno));
            goto out;
        }
        rc = launch_via_router (&l.o, md);
        free (md);
        if (rc >= 0)
            goto out;
    }
    if (l.o.progress_json)
        l.o.parsable = true;    /* nothing for humans on stdout */
    rc = LAUNCH_FAILED;
    if (launch_home (l.home, sizeof (l.home), true) < 0)
        goto out;
    if ((rc = launch_configure (&l)) || (rc = launch_check_slurm (&l))
        || (rc = launch_prepare (&l)) || (rc = launch_create (&l))
        || (rc = l.local ? launch_supervise (&l) : launch_submit (&l)))
        goto out;
    launch_report (&l);
    if (!l.o.no_wait)
        rc = launch_wait_ready (l.id, l.swarmdir, l.o.nodes, l.o.parsable,
                         l.o.pending_timeout, l.o.detach,
                         l.have_resumed ? &l.resumed : NULL);
out:
    launch_release (&l);
    return rc;
}
