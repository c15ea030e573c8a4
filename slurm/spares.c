/* spares.c - "codeswarm spare-watch": the workers of a swarm launched with
 * --spares, one Slurm step per node, and the move of a lost node's index
 * to a spare node of the same allocation.
 *
 * The batch script runs it in place of the one srun of all the workers.
 * The allocation's first NODES hosts get indexes 0..NODES-1, the others
 * are spares and start nothing.  Each index runs as its own one-node step
 * ("srun --nodes=1 --nodelist=HOST"), its worker told its index by
 * CODESWARM_NODE, so that a node that fails ends its own step only (the
 * job is submitted with --no-kill, so Slurm removes the node, not the
 * job).  An index moves to a spare when its step ends without the worker
 * having stopped (worker_stopped), or when its outbox has been silent for
 * longer than router.node_lost_after (the router's node_lost) after it had
 * spoken from its current home.  The move: the next generation goes to
 * state/<k>.fence (see worker/fence.c), the old step's srun is killed, a
 * step on the spare starts a worker with CODESWARM_FENCE set (and
 * CODESWARM_MOVED_FROM, so that the turn the lost node left running ends
 * with reason "node_lost"), and a
 * "node_moved" event goes to the swarm's stream.  The new worker resumes
 * the thread from state/<k>.json once it holds the outbox's writer lock,
 * which a still-living old worker gives up when it sees the fence; the
 * healthy nodes are not touched.  A lost host is not used again by this
 * job.  Without a spare left, a lost index stays lost (event "node_lost",
 * "no_spare": true).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/configfile.h"
#include "common/json.h"
#include "common/log.h"
#include "common/path.h"
#include "common/spawn.h"
#include "slurm/launch.h"
#include "slurm/nodes.h"
#include "slurm/run.h"
#include "slurm/swarm.h"

#define SPARES_MAX_HOSTS 1024

struct home {
    int host;               /* index into hosts */
    long gen;               /* fence generation */
    spawn_t *step;          /* our srun */
    double started;         /* wall clock, when the step began */
    bool done;              /* ended after worker_stopped: not moved */
};

struct watch {
    const char *id;
    char dir[LAUNCH_PATH_MAX];
    char *hosts[SPARES_MAX_HOSTS];
    bool used[SPARES_MAX_HOSTS];
    int nhosts;
    int nodes;
    struct home *home;
    char **worker_argv;     /* launcher run-worker WORKER ARGS... */
    int worker_argc;
    double lost_after;
};

static volatile sig_atomic_t watch_stop;

static void watch_sig (int sig)
{
    (void)sig;
    watch_stop = 1;
}

/* SLURM_JOB_NODELIST expanded by "scontrol show hostnames". */
static int watch_hosts (struct watch *w)
{
    const char *list = getenv ("SLURM_JOB_NODELIST");
    char *av[] = {(char *)"scontrol", (char *)"show", (char *)"hostnames",
                  (char *)list, NULL};
    struct run_result res;
    cs_error_t e;
    char *save = NULL;

    if (!list || !*list) {
        log_msg ("SLURM_JOB_NODELIST is not set: not inside a job");
        return -1;
    }
    if (run_capture (av, NULL, NULL, 30, &res, &e) < 0) {
        log_msg ("%s", e.text);
        return -1;
    }
    if (!run_ok (&res)) {
        char line[256];
        log_msg ("scontrol show hostnames '%s': %s", list,
                 run_first_line (res.err, line, sizeof (line)));
        run_result_release (&res);
        return -1;
    }
    for (char *t = strtok_r (res.out, " \t\r\n", &save);
         t && w->nhosts < SPARES_MAX_HOSTS;
         t = strtok_r (NULL, " \t\r\n", &save)) {
        if (!(w->hosts[w->nhosts++] = strdup (t)))
            log_msg_exit ("out of memory");
    }
    run_result_release (&res);
    return 0;
}

/* The generation state/<k>.fence says (0: none yet). */
static long fence_get (const struct watch *w, int k)
{
    char path[LAUNCH_PATH_MAX + 64];
    FILE *f;
    long g = 0;

    if (pathf (path, sizeof (path), "%s/state/%d.fence", w->dir, k) < 0
        || !(f = fopen (path, "re")))
        return 0;
    if (fscanf (f, "%ld", &g) != 1 || g < 0)
        g = 0;
    fclose (f);
    return g;
}

static int fence_put (const struct watch *w, int k, long g)
{
    char path[LAUNCH_PATH_MAX + 64], buf[32];
    cs_error_t e;
    int n = snprintf (buf, sizeof (buf), "%ld\n", g);

    if (pathf (path, sizeof (path), "%s/state/%d.fence", w->dir, k) < 0
        || atomic_file_write (path, buf, (size_t)n, ATOMIC_FILE_SYNC_DIR, &e)
               < 0) {
        log_msg ("node %d: cannot write its fence: %s", k, e.text);
        return -1;
    }
    return 0;
}

static int step_start (struct watch *w, int k, const char *from)
{
    struct home *h = &w->home[k];
    char nodelist[300], env_node[32], env_fence[48], env_from[300];
    char *env[] = {env_node, env_fence, NULL, NULL};
    char **av;
    int n = 0;
    struct spawn_opts o = SPAWN_OPTS_INIT;
    cs_error_t e;

    if (!(av = calloc ((size_t)w->worker_argc + 8, sizeof (*av))))
        log_msg_exit ("out of memory");
    snprintf (nodelist, sizeof (nodelist), "--nodelist=%s", w->hosts[h->host]);
    snprintf (env_node, sizeof (env_node), "CODESWARM_NODE=%d", k);
    snprintf (env_fence, sizeof (env_fence), "CODESWARM_FENCE=%ld", h->gen);
    if (from) {
        snprintf (env_from, sizeof (env_from), "CODESWARM_MOVED_FROM=%s",
                  from);
        env[2] = env_from;
    }
    av[n++] = (char *)"srun";
    av[n++] = (char *)"--nodes=1";
    av[n++] = (char *)"--ntasks=1";
    av[n++] = nodelist;
    av[n++] = (char *)"--kill-on-bad-exit=0";
    for (int i = 0; i < w->worker_argc; i++)
        av[n++] = w->worker_argv[i];
    av[n] = NULL;
    o.env_set = env;
    h->step = spawn_start (av, &o, &e);
    free (av);
    if (!h->step) {
        log_msg ("node %d on %s: %s", k, w->hosts[h->host], e.text);
        return -1;
    }
    h->started = time_now ();
    h->done = false;
    log_msg ("node %d on %s (generation %ld)", k, w->hosts[h->host], h->gen);
    return 0;
}

/* The next unused host, or -1. */
static int spare_take (struct watch *w)
{
    for (int i = 0; i < w->nhosts; i++) {
        if (!w->used[i]) {
            w->used[i] = true;
            return i;
        }
    }
    return -1;
}

static void watch_move (struct watch *w, int k, const char *why)
{
    struct home *h = &w->home[k];
    const char *from = w->hosts[h->host];
    int spare = spare_take (w);
    char gen[32], nb[16];

    if (h->step) {
        /* the step's srun: gone with its node, or to be given up */
        spawn_kill (h->step, SIGKILL);
        spawn_destroy (h->step);
        h->step = NULL;
    }
    snprintf (nb, sizeof (nb), "%d", k);
    if (spare < 0) {
        log_msg ("node %d lost on %s (%s), and no spare is left", k, from,
                 why);
        launch_event (w->dir, "node_lost", "node", nb, "host", from, "reason",
                      why, "no_spare", "true", NULL);
        h->done = true;
        return;
    }
    h->gen = (fence_get (w, k) > h->gen ? fence_get (w, k) : h->gen) + 1;
    if (fence_put (w, k, h->gen) < 0) {
        h->done = true;
        return;
    }
    snprintf (gen, sizeof (gen), "%ld", h->gen);
    log_msg ("node %d lost on %s (%s): moving it to spare %s", k, from, why,
             w->hosts[spare]);
    launch_event (w->dir, "node_moved", "node", nb, "from", from, "to",
                  w->hosts[spare], "reason", why, "generation", gen, NULL);
    h->host = spare;
    if (step_start (w, k, from) < 0)
        h->done = true;
}

/* The swarm is over (cancelled, ended): nothing moves any more. */
static bool watch_swarm_final (const struct watch *w)
{
    cs_error_t e;
    cJSON *sw = swarm_load (w->dir, &e);
    bool final = sw && swarm_state_final (swarm_str (sw, "state"));

    cJSON_Delete (sw);
    return final;
}

static int watch_run (struct watch *w)
{
    struct nodes ns;
    cs_error_t e;
    int rc = 0;

    if (nodes_open (&ns, w->dir, w->nodes, &e) < 0) {
        log_msg ("%s", e.text);
        return 1;
    }
    for (int k = 0; k < w->nodes; k++)
        (void)step_start (w, k, NULL);
    while (!watch_stop) {
        int live = 0;
        double now;

        if (nodes_update (&ns, NULL, NULL, &e) < 0)
            log_msg ("%s", e.text);
        now = time_now ();
        for (int k = 0; k < w->nodes; k++) {
            struct home *h = &w->home[k];
            struct node_state *n = &ns.node[k];
            struct spawn_status st;
            char why[96], sb[64];

            if (h->done)
                continue;
            if (h->step && spawn_poll (h->step, &st) == 1) {
                spawn_destroy (h->step);
                h->step = NULL;
                /* read what the worker said last before judging */
                (void)nodes_update (&ns, NULL, NULL, &e);
                if (n->phase == NODE_STOPPED || watch_swarm_final (w)
                    || watch_stop) {
                    h->done = true;
                    continue;
                }
                snprintf (why, sizeof (why), "step ended: %s",
                          spawn_status_str (&st, sb, sizeof (sb)));
                watch_move (w, k, why);
            }
            else if (h->step && n->last_record >= h->started
                     && (n->phase == NODE_STARTED || n->phase == NODE_READY)
                     && now - n->last_record > w->lost_after
                     && !watch_swarm_final (w)) {
                snprintf (why, sizeof (why), "silent for %.0f s",
                          now - n->last_record);
                watch_move (w, k, why);
            }
            if (!h->done)
                live++;
        }
        if (live == 0)
            break;
        usleep (500 * 1000);
    }
    /* told to stop: the steps end through Slurm's own signals; wait */
    for (int k = 0; k < w->nodes; k++) {
        struct spawn_status st;
        if (w->home[k].step) {
            if (spawn_wait (w->home[k].step, &st) == 0 && st.signaled)
                rc = 1;
            spawn_destroy (w->home[k].step);
        }
    }
    nodes_close (&ns);
    return rc;
}

/* spare-watch SWARM NODES -- LAUNCHER run-worker WORKER ARGS... */
int cmd_spare_watch (int argc, char **argv)
{
    struct watch w;
    struct cs_config cfg;
    char home[LAUNCH_PATH_MAX];
    cs_error_t e;
    char *end;
    long nodes;
    int i, rc;

    memset (&w, 0, sizeof (w));
    if (argc < 5 || strcmp (argv[3], "--")) {
        log_msg ("usage: spare-watch SWARM NODES -- PROGRAM [ARGS...]");
        return 2;
    }
    w.id = argv[1];
    errno = 0;
    nodes = strtol (argv[2], &end, 10);
    if (errno || *end || nodes <= 0 || nodes > SPARES_MAX_HOSTS) {
        log_msg ("spare-watch: '%s' is not a node count", argv[2]);
        return 2;
    }
    w.nodes = (int)nodes;
    w.worker_argv = argv + 4;
    w.worker_argc = argc - 4;
    if (launch_home (home, sizeof (home), false) < 0)
        return 1;
    if (launch_swarm_dir (home, w.id, w.dir, sizeof (w.dir), &e) < 0) {
        log_msg ("%s", e.text);
        return 1;
    }
    w.lost_after = 45;
    if (config_load (&cfg, getenv ("CODESWARM_CONFIG"), &e) == 0) {
        if (cfg.node_lost_after > 0)
            w.lost_after = cfg.node_lost_after;
        config_release (&cfg);
    } else
        log_msg ("%s (node loss judged after 45 s)", e.text);
    if (watch_hosts (&w) < 0)
        return 1;
    if (w.nhosts < w.nodes) {
        log_msg ("the job has %d nodes, the swarm needs %d", w.nhosts,
                 w.nodes);
        return 1;
    }
    if (!(w.home = calloc ((size_t)w.nodes, sizeof (*w.home))))
        log_msg_exit ("out of memory");
    for (i = 0; i < w.nodes; i++) {
        w.home[i].host = i;
        w.home[i].gen = fence_get (&w, i);
        w.used[i] = true;
    }
    log_msg ("swarm %s: %d nodes, %d spare%s, node loss after %.0f s", w.id,
             w.nodes, w.nhosts - w.nodes, w.nhosts - w.nodes == 1 ? "" : "s",
             w.lost_after);
    signal (SIGTERM, watch_sig);
    signal (SIGINT, watch_sig);
    rc = watch_run (&w);
    for (i = 0; i < w.nhosts; i++)
        free (w.hosts[i]);
    free (w.home);
    return rc;
}
