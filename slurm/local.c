/* local.c - the local backend's supervisor ("codeswarm-launch supervise").
 *
 * Started by "codeswarm launch --local" with a double fork and setsid, so
 * it belongs to no terminal and no shell job.  It runs
 * "codeswarm-worker --swarm ID --node k" for k = 0..N-1, records its pid in
 * swarm.json, restarts a worker that crashed or was killed (not one that
 * exited 0: a shutdown) with the app-server's backoff policy
 * (worker.restart_backoff_min/max; a node whose worker ends within 10 s
 * worker.max_failed_starts times in a row is given up), and exits when the
 * swarm ends: every worker has exited for good, or
 * SIGTERM (codeswarm cancel) arrived and the workers were stopped (TERM,
 * grace, KILL), or the idle timeout passed.  Nothing is left behind.
 * Also how launch starts it (launch_supervise).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/configfile.h"
#include "common/json.h"
#include "common/log.h"
#include "common/spawn.h"
#include "slurm/idle.h"
#include "slurm/launch.h"
#include "slurm/launch_steps.h"
#include "slurm/nodes.h"
#include "slurm/swarm.h"

static volatile sig_atomic_t got_term;

static void on_term (int sig)
{
    (void)sig;
    got_term = 1;
}

static int pid_cb (cJSON *swarm, void *arg, cs_error_t *errp)
{
    cJSON_DeleteItemFromObject (swarm, "supervisor_pid");
    cJSON_DeleteItemFromObject (swarm, "state");
    if (json_add_u64 (swarm, "supervisor_pid", (uint64_t)getpid ()) < 0 ||
        json_add_str (swarm, "state", "running") < 0)
        return errprintf (errp, "out of memory");
    return 0;
}

#define QUICK_EXIT 10.0  /* seconds: a worker that ends sooner failed */

/* restart bookkeeping of one node */
struct supervised {
    double started;         /* monotonic */
    double restart_at;      /* monotonic, 0: none due */
    double backoff;
    int quick;              /* consecutive quick exits */
};

/* Start the worker of node k into workers[k]; false when it cannot. */
static bool worker_spawn (spawn_t **workers, int k, const char *worker,
                          const char *id, const char *config, const char *dir)
{
    char node[16], logp[LAUNCH_PATH_MAX];
    char *av[8];
    int n = 0, fd;
    cs_error_t e;
    struct spawn_opts so = SPAWN_OPTS_INIT;
    const char *unset[] = {"SLURM_JOB_ID", "SLURM_NODEID",   "SLURM_PROCID",
                           "PMIX_RANK",    "PMIX_NAMESPACE", NULL};

    snprintf (node, sizeof (node), "%d", k);
    av[n++] = (char *)worker;
    av[n++] = (char *)"--swarm";
    av[n++] = (char *)id;
    av[n++] = (char *)"--node";
    av[n++] = node;
    if (config) {
        av[n++] = (char *)"--config";
        av[n++] = (char *)config;
    }
    av[n] = NULL;
    pathf (logp, sizeof (logp), "%s/log/worker-%d.out", dir, k);
    fd = open (logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    so.stderr_fd = fd;
    so.env_unset = (char *const *)unset;
    so.cwd = dir;
    workers[k] = spawn_start (av, &so, &e);
    if (!workers[k])
        log_msg ("node %d: %s", k, e.text);
    if (fd >= 0)
        close (fd);
    return workers[k] != NULL;
}

int cmd_supervise (int argc, char **argv)
{
    char home[LAUNCH_PATH_MAX], dir[LAUNCH_PATH_MAX], wpath[LAUNCH_PATH_MAX];
    const char *id;
    const char *config = NULL;
    cJSON *sw = NULL;
    spawn_t **workers = NULL;
    struct nodes ns = {0};
    cs_error_t e;
    double idle = 0, grace = 30, start;
    int count, running = 0, failed = 0, restarts = 0, max_quick = 5;
    struct supervised *sup = NULL;
    double bmin = 1, bmax = 60;
    const char *worker;
    bool changed = false;
    const char *reason = "workers_exited";

    log_set_timestamps (1);
    if (argc != 2) {
        log_msg ("usage: supervise SWARM");
        return 2;
    }
    id = argv[1];
    if (launch_home (home, sizeof (home), false) < 0)
        return 1;
    if (launch_swarm_dir (home, id, dir, sizeof (dir), &e) < 0 ||
        !(sw = swarm_load (dir, &e))) {
        log_msg ("%s", e.text);
        return 1;
    }
    count = swarm_int (sw, "nodes", 0);
    {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive (sw, "options");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive (o, "config");
        const cJSON *it = cJSON_GetObjectItemCaseSensitive (o, "idle_timeout");
        if (cJSON_IsString (c))
            config = c->valuestring;
        if (cJSON_IsNumber (it))
            idle = it->valuedouble;
    }
    if (swarm_state_final (swarm_str (sw, "state"))) {
        log_msg ("swarm %s is %s already", id, swarm_str (sw, "state"));
        cJSON_Delete (sw);
        return 1;
    }
    if (swarm_update (dir, pid_cb, NULL, &e) < 0) {
        log_msg ("%s", e.text);
        cJSON_Delete (sw);
        return 1;
    }
    signal (SIGTERM, on_term);
    signal (SIGINT, on_term);
    signal (SIGHUP, SIG_IGN);
    launch_event (dir, "job_started", "job_id", NULL, "nodes", "local", NULL);
    log_msg ("swarm %s: starting %d workers", id, count);

    if (!(workers = calloc ((size_t)count + 1, sizeof (*workers)))
        || !(sup = calloc ((size_t)count + 1, sizeof (*sup))))
        goto out;
    {
        /* restarts follow the app-server's policy (worker.restart_*) */
        struct cs_config cfg;
        if (config_load (&cfg, config, &e) == 0) {
            bmin = cfg.restart_backoff_min > 0 ? cfg.restart_backoff_min : 1;
            bmax = cfg.restart_backoff_max > bmin ? cfg.restart_backoff_max
                                                  : bmin;
            max_quick = cfg.max_failed_starts > 0 ? cfg.max_failed_starts : 5;
            config_release (&cfg);
        }
        else
            log_msg ("%s (default restart policy)", e.text);
    }
    worker = launch_worker_path (wpath, sizeof (wpath));
    for (int k = 0; k < count && !got_term; k++) {
        if (worker_spawn (workers, k, worker, id, config, dir))
            running++;
        else
            failed++;
        sup[k].started = time_mono ();
        sup[k].backoff = bmin;
    }
    if (idle > 0 && nodes_open (&ns, dir, count, &e) < 0) {
        log_msg ("%s (idle timeout disabled)", e.text);
        idle = 0;
    }
    start = time_now ();
    while ((running > 0 || restarts > 0) && !got_term) {
        double now = time_mono ();
        for (int k = 0; k < count; k++) {
            struct spawn_status st;
            char buf[64];
            if (workers[k] && spawn_poll (workers[k], &st) == 1) {
                log_msg ("node %d: worker exited (%s)", k,
                         spawn_status_str (&st, buf, sizeof (buf)));
                spawn_destroy (workers[k]);
                workers[k] = NULL;
                running--;
                /* a clean exit (shutdown, SIGTERM) ends the node; a crash
                 * or a signal is restarted with capped backoff
                 */
                if (st.exited && st.code == 0)
                    continue;
                if (now - sup[k].started >= QUICK_EXIT) {
                    sup[k].quick = 0;
                    sup[k].backoff = bmin;
                }
                else if (++sup[k].quick >= max_quick) {
                    log_msg ("node %d: the worker failed %d times in a row: "
                             "not restarted", k, sup[k].quick);
                    continue;
                }
                sup[k].restart_at = now + sup[k].backoff;
                log_msg ("node %d: restarting the worker in %.1f s", k,
                         sup[k].backoff);
                sup[k].backoff = sup[k].backoff * 2 > bmax ? bmax
                                                           : sup[k].backoff * 2;
                restarts++;
            }
            if (!workers[k] && sup[k].restart_at > 0
                && now >= sup[k].restart_at) {
                sup[k].restart_at = 0;
                restarts--;
                sup[k].started = now;
                if (worker_spawn (workers, k, worker, id, config, dir))
                    running++;
                else if (++sup[k].quick < max_quick) {
                    sup[k].restart_at = now + sup[k].backoff;
                    restarts++;
                }
            }
        }
        if (idle > 0) {
            double last;
            bool active;
            if (nodes_update (&ns, NULL, NULL, &e) < 0)
                log_msg ("%s", e.text);
            /* a local swarm has one "job": the supervisor's */
            last = idle_since (&ns, 0, start, start, &active);
            if (!active && time_now () - last >= idle) {
                log_msg ("no turn for %.0f s: ending the swarm", idle);
                reason = "idle_timeout";
                if (launch_set_state (dir, "ended", "idle_timeout", &changed,
                                      &e) < 0)
                    log_msg ("%s", e.text);
                break;
            }
        }
        usleep (200000);
    }
    if (got_term)
        reason = "cancelled";
    if (running > 0) {
        /* stop: TERM to every worker at once, then wait for them together */
        double deadline = time_mono () + grace;
        for (int k = 0; k < count; k++)
            if (workers[k])
                spawn_kill (workers[k], SIGTERM);
        while (running > 0) {
            for (int k = 0; k < count; k++) {
                struct spawn_status st;
                if (workers[k] && spawn_poll (workers[k], &st) == 1) {
                    spawn_destroy (workers[k]);
                    workers[k] = NULL;
                    running--;
                }
            }
            if (running > 0 && time_mono () >= deadline) {
                log_msg ("%d workers ignored SIGTERM for %.0f s: killing them",
                         running, grace);
                for (int k = 0; k < count; k++) {
                    spawn_destroy (workers[k]); /* SIGKILL and reap */
                    workers[k] = NULL;
                }
                running = 0;
            }
            if (running > 0)
                usleep (100000);
        }
    }
out : {
    bool now_changed = false;
    if (launch_set_state (dir,
                          failed == count && count > 0 ? "failed" : "ended",
                          reason, &now_changed, &e) < 0)
        log_msg ("%s", e.text);
    changed |= now_changed;
}
    launch_event (dir, "job_ended", "job_id", NULL, NULL);
    if (changed)
        launch_event (dir, "swarm_ended", "reason", reason, NULL);
    log_msg ("swarm %s: supervisor exiting (%s)", id, reason);
    if (ns.node)
        nodes_close (&ns);
    free (workers);
    free (sup);
    cJSON_Delete (sw);
    return 0;
}

/* ---- the local supervisor: double fork, setsid ----------------------------
 */

static int start_supervisor (const char *id, const char *swarmdir,
                             cs_error_t *errp)
{
    char logpath[LAUNCH_PATH_MAX];
    pid_t pid;
    int status;

    pathf (logpath, sizeof (logpath), "%s/log/supervisor.log", swarmdir);
    if ((pid = fork ()) < 0)
        return errprintf (errp, "fork: %s", strerror (errno));
    if (pid == 0) {
        int fd;
        if (setsid () < 0)
            _exit (1);
        if ((pid = fork ()) < 0)
            _exit (1);
        if (pid > 0)
            _exit (0);
        if ((fd = open ("/dev/null", O_RDONLY)) >= 0) {
            dup2 (fd, 0);
            close (fd);
        }
        if ((fd = open (logpath, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
            close (fd);
        }
        if (chdir (swarmdir) < 0)
            _exit (1);
        /* nothing of the caller's (pipes of a shell, a test harness) may
         * stay open in a process that outlives it */
        for (int i = 3; i < 1024; i++)
            close (i);
        execl (launch_self (), "codeswarm-launch", "supervise", id,
               (char *)NULL);
        _exit (127);
    }
    if (waitpid (pid, &status, 0) < 0 || !WIFEXITED (status) ||
        WEXITSTATUS (status) != 0)
        return errprintf (errp, "cannot start the local supervisor");
    return 0;
}

/* Start the local supervisor (local). */
int launch_supervise (struct launch *l)
{
    cs_error_t e;

    snprintf (l->jobid, sizeof (l->jobid), "local");
    if (start_supervisor (l->id, l->swarmdir, &e) < 0) {
        log_msg ("%s", e.text);
        launch_set_state (l->swarmdir, "failed", "supervisor_failed", NULL,
                          NULL);
        return LAUNCH_FAILED;
    }
    return 0;
}
