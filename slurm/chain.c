/* chain.c - the job chain of a swarm: the batch script's hooks
 * ("job-event"), the idle watcher, and "codeswarm cancel".
 *
 * Persistence: when the walltime warning (--signal=B:USR1@W) reaches the
 * batch shell, "job-event warning" submits a successor job with the same
 * name and --dependency=singleton, so it starts as soon as this job has
 * ended, and records it in swarm.json's "jobs".  Then the script sends
 * SIGUSR2 to the workers (scancel --signal=USR2): each finishes, or after
 * its grace period interrupts, the running turn, checkpoints its thread
 * and inbox cursor and exits, and the successor's workers resume every
 * node's thread from state/<k>.json and the inbox cursors.  The batch
 * script's own timer ("job-timer") gives the same warning at the job's end
 * time less --warn, read from Slurm's job record; Slurm's signal stays the
 * fallback, and whichever comes second finds the successor submitted.
 *
 * Requeue: the job is submitted with --requeue (and its log opened for
 * append).  When Slurm requeues it (a node lost, "scontrol requeue"), the
 * end hook sees the job's restart count above this run's
 * (SLURM_RESTART_COUNT) and leaves the swarm "requeued", not ended, with a
 * job_requeued event; the restarted run's start hook takes the swarm over
 * again (even one its end hook did end, when that hook could not tell) and
 * says session_resumed: every node resumes its thread.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "slurm/idle.h"
#include "slurm/job.h"
#include "slurm/launch.h"
#include "slurm/nodes.h"
#include "slurm/swarm.h"

/* ---- swarm.json updates -----------------------------------------------------
 */

struct start_arg {
    const char *jobid;
    const char *nodelist;
    unsigned restarts;  /* SLURM_RESTART_COUNT: > 0 in a requeued run */
    char prev[32];
    bool refused;
    char state[32];
    char was[32];       /* the swarm's state before */
};

static const char *chain_last (const cJSON *swarm);

/* A requeued run of the job that ended the swarm as "job_ended" (its end
 * hook did not see the requeue) takes the swarm over again. */
static bool start_reopens (const cJSON *swarm, const struct start_arg *a)
{
    const char *reason = swarm_str (swarm, "end_reason");
    const char *state = swarm_str (swarm, "state");
    const char *last = chain_last (swarm);

    return a->restarts > 0 && state && !strcmp (state, "ended") && reason && !strcmp (reason, "job_ended") && last &&
           !strcmp (last, a->jobid);
}

static int start_cb (cJSON *swarm, void *arg, cs_error_t *errp)
{
    struct start_arg *a = arg;
    const char *state = swarm_str (swarm, "state");
    const cJSON *it;
    cJSON *jobs;
    bool known = false;

    if (swarm_state_final (state) && !start_reopens (swarm, a)) {
        a->refused = true;
        snprintf (a->state, sizeof (a->state), "%s", state);
        return 1;
    }
    if (!(jobs = swarm_jobs (swarm)))
        return errprintf (errp, "out of memory");
    cJSON_ArrayForEach (it, jobs)
    {
        if (!cJSON_IsString (it))
            continue;
        if (!strcmp (it->valuestring, a->jobid)) {
            known = true;
            break;
        }
        snprintf (a->prev, sizeof (a->prev), "%s", it->valuestring);
    }
    if (!known) {
        cJSON *s = cJSON_CreateString (a->jobid);
        if (!s || !cJSON_AddItemToArray (jobs, s)) {
            cJSON_Delete (s);
            return errprintf (errp, "out of memory");
        }
    }
    snprintf (a->was, sizeof (a->was), "%s", state ? state : "");
    if (swarm_state_final (state))
        cJSON_DeleteItemFromObject (swarm, "end_reason");
    cJSON_DeleteItemFromObject (swarm, "job_id");
    cJSON_DeleteItemFromObject (swarm, "state");
    cJSON_DeleteItemFromObject (swarm, "nodelist");
    if (json_add_str (swarm, "job_id", a->jobid) < 0 ||
        json_add_str (swarm, "state", "running") < 0 ||
        json_add_str (swarm, "nodelist", a->nodelist) < 0)
        return errprintf (errp, "out of memory");
    return 0;
}

/* last job of the chain (the successor once one was submitted) */
static const char *chain_last (const cJSON *swarm)
{
    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive (swarm, "jobs");
    int n = cJSON_IsArray (jobs) ? cJSON_GetArraySize (jobs) : 0;
    const cJSON *last = n > 0 ? cJSON_GetArrayItem (jobs, n - 1) : NULL;

    return cJSON_IsString (last) ? last->valuestring : NULL;
}

static bool opt_true (const cJSON *swarm, const char *key)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive (swarm, "options");
    return cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (o, key));
}

/* scancel every job of the chain that may still run, except one */
static void cancel_chain (const cJSON *swarm, const char *except)
{
    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive (swarm, "jobs");
    const cJSON *it;
    cs_error_t e;

    cJSON_ArrayForEach (it, jobs)
    {
        struct job_status ji;
        if (!cJSON_IsString (it) ||
            (except && !strcmp (except, it->valuestring)))
            continue;
        if (job_query (it->valuestring, &ji, &e) < 0) {
            log_msg ("%s", e.text);
            continue;
        }
        if (ji.found && !job_state_final (ji.state) &&
            job_signal (it->valuestring, 0, false, &e) < 0)
            log_msg ("%s", e.text);
    }
}

/* ---- job-event --------------------------------------------------------------
 */

/* This run's SLURM_RESTART_COUNT (0: the job's first run) */
static unsigned chain_restarts (void)
{
    const char *s = getenv ("SLURM_RESTART_COUNT");

    return s && *s ? (unsigned)strtoul (s, NULL, 10) : 0;
}

/* Slurm has requeued this job (its restart count is above this run's):
 * the count goes to buf.
 */
static bool chain_requeued (const char *jobid, char *buf, size_t len)
{
    struct job_status ji;
    cs_error_t e;

    if (!*jobid)
        return false;
    if (job_query (jobid, &ji, &e) < 0) {
        log_msg ("%s", e.text);
        return false;
    }
    if (!ji.found || ji.restart_cnt <= chain_restarts ())
        return false;
    snprintf (buf, len, "%u", (unsigned)ji.restart_cnt);
    return true;
}

static int open_swarm (const char *id, char *home, size_t hlen, char *dir,
                       size_t dlen)
{
    cs_error_t e;

    if (launch_home (home, hlen, false) < 0)
        return -1;
    if (launch_swarm_dir (home, id, dir, dlen, &e) < 0) {
        log_msg ("%s", e.text);
        return -1;
    }
    return 0;
}

static int submit_successor (const char *home, const char *dir,
                             const char *jobid)
{
    cJSON *sw;
    struct job_spec spec;
    char *text = NULL;
    char **env = NULL;
    char succ[32];
    cs_error_t e;
    int rc = -1;

    if (!(sw = swarm_load (dir, &e))) {
        log_msg ("%s", e.text);
        return -1;
    }
    if (swarm_state_final (swarm_str (sw, "state"))) {
        log_msg ("swarm is %s: no successor", swarm_str (sw, "state"));
        goto done;
    }
    if (launch_job_spec (sw, dir, &spec, &text, &e) < 0 ||
        !(env = launch_job_env (home))) {
        log_msg ("cannot prepare the successor job: %s", e.text);
        goto done;
    }
    spec.env = env;
    spec.singleton = true;
    if (job_submit (&spec, succ, sizeof (succ), &e) < 0) {
        log_msg ("cannot submit the successor job: %s", e.text);
        launch_event (dir, "error", "code", "successor_failed", "message",
                      e.text, NULL);
        goto done;
    }
    if (swarm_add_job (dir, succ, "state", "migrating", &e) < 0) {
        log_msg ("%s", e.text);
        goto done;
    }
    launch_event (dir, "job_submitted", "job_id", succ, "predecessor", jobid,
                  NULL);
    printf ("successor job %s\n", succ);
    rc = 0;
done:
    free (text);
    launch_env_free (env);
    cJSON_Delete (sw);
    return rc;
}

int cmd_job_event (int argc, char **argv)
{
    char home[LAUNCH_PATH_MAX], dir[LAUNCH_PATH_MAX];
    const char *jobid = getenv ("SLURM_JOB_ID");
    const char *what;
    cs_error_t e;

    if (argc < 3) {
        log_msg ("usage: job-event SWARM start|warning|migrating|end [RC]");
        return 2;
    }
    what = argv[2];
    if (!jobid)
        jobid = "";
    if (open_swarm (argv[1], home, sizeof (home), dir, sizeof (dir)) < 0)
        return 1;

    if (!strcmp (what, "start")) {
        const char *nl = getenv ("SLURM_JOB_NODELIST");
        struct start_arg a = {.jobid = jobid, .nodelist = nl ? nl : "",
                              .restarts = chain_restarts ()};
        char rcount[16];
        if (!*jobid) {
            log_msg ("job-event start: SLURM_JOB_ID is not set");
            return 1;
        }
        if (swarm_update (dir, start_cb, &a, &e) < 0) {
            log_msg ("%s", e.text);
            return 1;
        }
        if (a.refused) {
            log_msg ("swarm %s is %s: not starting its workers", argv[1],
                     a.state);
            return 3;
        }
        snprintf (rcount, sizeof (rcount), "%u", a.restarts);
        /* the first run's end hook did not record the requeue: say it now */
        if (a.restarts && strcmp (a.was, "requeued"))
            launch_event (dir, "job_requeued", "job_id", jobid,
                          "restart_count", rcount, NULL);
        launch_event (dir, "job_started", "job_id", jobid, "nodes", a.nodelist,
                      NULL);
        if (a.restarts)
            launch_event (dir, "session_resumed", "job_id", jobid,
                          "previous_job_id", jobid, "restart_count", rcount,
                          NULL);
        else if (a.prev[0])
            launch_event (dir, "session_resumed", "job_id", jobid,
                          "previous_job_id", a.prev, NULL);
        return 0;
    }
    if (!strcmp (what, "warning")) {
        /* [timer|slurm]: the job's own timer, or Slurm's signal */
        const char *source = argc > 3 ? argv[3] : "slurm";
        cJSON *sw = swarm_load (dir, &e);
        const char *last;
        bool persist, done;
        if (!sw) {
            log_msg ("%s", e.text);
            return 1;
        }
        persist = opt_true (sw, "persist");
        last = chain_last (sw);
        /* the other path came first: its successor stands (it may be
         * running already)
         */
        done = last && *jobid && strcmp (last, jobid);
        if (done)
            log_msg ("walltime warning (%s): successor job %s is already "
                     "submitted", source, last);
        cJSON_Delete (sw);
        if (done)
            return 0;
        launch_event (dir, "walltime_warning", "job_id", jobid, "source",
                      source, NULL);
        if (persist && submit_successor (home, dir, jobid) < 0)
            return 1;
        return 0;
    }
    if (!strcmp (what, "migrating")) {
        cJSON *sw = swarm_load (dir, &e);
        const char *last;
        if (!sw) {
            log_msg ("%s", e.text);
            return 1;
        }
        last = chain_last (sw);
        if (!strcmp (swarm_str (sw, "state") ? swarm_str (sw, "state") : "",
                     "migrating"))
            launch_event (dir, "session_migrating", "job_id", jobid,
                          "successor_job_id", last, NULL);
        cJSON_Delete (sw);
        return 0;
    }
    if (!strcmp (what, "end")) {
        const char *code = argc > 3 ? argv[3] : "0";
        cJSON *sw = swarm_load (dir, &e);
        const char *last;
        char restarts[16];
        bool changed = false;
        if (!sw) {
            log_msg ("%s", e.text);
            return 1;
        }
        launch_event (dir, "job_ended", "job_id", jobid, "exit_code", code,
                      NULL);
        if (chain_requeued (jobid, restarts, sizeof (restarts))) {
            /* Slurm runs the job again: the session goes on there */
            if (launch_set_state (dir, "requeued", NULL, &changed, &e) < 0)
                log_msg ("%s", e.text);
            if (changed)
                launch_event (dir, "job_requeued", "job_id", jobid,
                              "restart_count", restarts, NULL);
            cJSON_Delete (sw);
            return 0;
        }
        last = chain_last (sw);
        /* the chain goes on when a successor was submitted, whether it
         * is still queued (migrating) or has taken the session over
         */
        if (!(last && strcmp (last, jobid))) {
            if (launch_set_state (dir, "ended", "job_ended", &changed, &e) < 0)
                log_msg ("%s", e.text);
            if (changed)
                launch_event (dir, "swarm_ended", "reason", "job_ended",
                              "job_id", jobid, NULL);
        }
        cJSON_Delete (sw);
        return 0;
    }
    log_msg ("job-event: unknown event '%s'", what);
    return 2;
}

/* ---- idle-watch ---------------------------------------------------------- */

static volatile sig_atomic_t idle_stop;

static void idle_sig (int sig)
{
    (void)sig;
    idle_stop = 1;
}

int cmd_idle_watch (int argc, char **argv)
{
    char home[LAUNCH_PATH_MAX], dir[LAUNCH_PATH_MAX];
    struct nodes ns;
    struct idle_inbox ib;
    cJSON *sw;
    cs_error_t e;
    double secs, created, first_start = 0;
    pid_t pid = 0;
    int count;

    if (argc < 3 || parse_duration (argv[2], &secs) < 0 || secs <= 0) {
        log_msg ("usage: idle-watch SWARM SECONDS [--pid PID]");
        return 2;
    }
    if (argc > 4 && !strcmp (argv[3], "--pid"))
        pid = (pid_t)atoi (argv[4]);
    if (open_swarm (argv[1], home, sizeof (home), dir, sizeof (dir)) < 0)
        return 1;
    if (!(sw = swarm_load (dir, &e))) {
        log_msg ("%s", e.text);
        return 1;
    }
    count = swarm_int (sw, "nodes", 0);
    created = swarm_num (sw, "created", time_now ());
    cJSON_Delete (sw);
    if (nodes_open (&ns, dir, count, &e) < 0) {
        log_msg ("%s", e.text);
        return 1;
    }
    if (idle_inbox_open (&ib, dir, count, &e) < 0) {
        log_msg ("%s", e.text);
        nodes_close (&ns);
        return 1;
    }
    signal (SIGTERM, idle_sig);
    signal (SIGINT, idle_sig);
    /* the clock runs across the chain: from the mailbox, not this job */
    while (!idle_stop) {
        double last, now;
        bool active;
        if (first_start == 0 &&
            idle_first_event (dir, "job_started", &first_start, &e) < 0)
            log_msg ("%s", e.text);
        if (nodes_update (&ns, NULL, NULL, &e) < 0 ||
            idle_inbox_update (&ib, &e) < 0) {
            log_msg ("%s", e.text);
            break;
        }
        now = time_now ();
        last =
            idle_since (&ns, ib.last_prompt, first_start, created, &active);
        if (!active && now - last >= secs) {
            bool changed = false;
            const char *jobid = getenv ("SLURM_JOB_ID");
            log_msg ("no turn for %.0f s: ending swarm %s", now - last,
                     argv[1]);
            if (launch_set_state (dir, "ended", "idle_timeout", &changed, &e) <
                0)
                log_msg ("%s", e.text);
            if (changed)
                launch_event (dir, "swarm_ended", "reason", "idle_timeout",
                              NULL);
            if ((sw = swarm_load (dir, &e))) {
                cancel_chain (sw, jobid);
                cJSON_Delete (sw);
            }
            /* stop the workers gently: SIGTERM through Slurm to the steps
             * (SIGTERM to srun would make it kill the step outright) */
            if (jobid && *jobid) {
                if (job_signal (jobid, SIGTERM, true, &e) < 0)
                    log_msg ("%s", e.text);
            } else if (pid > 0)
                kill (pid, SIGTERM);
            idle_inbox_close (&ib);
            nodes_close (&ns);
            return 0;
        }
        if (pid > 0 && kill (pid, 0) < 0 && errno == ESRCH)
            break;
        sleep (1);
    }
    idle_inbox_close (&ib);
    nodes_close (&ns);
    return 1;
}

/* ---- cancel -------------------------------------------------------------- */

/* The workers of swarm id that still write its outboxes, however they were
 * started (the supervisor gone, or by hand): each holds the lock of its
 * outbox, which names its pid.  SIGTERM, up to the deadline, SIGKILL.
 */
static void stop_stream_writers (const char *dir, const char *id,
                                 double deadline)
{
    pid_t pids[256];
    int n = 0;
    char path[4300];
    DIR *d;
    struct dirent *de;

    if (pathf (path, sizeof (path), "%s/outbox", dir) < 0
        || !(d = opendir (path)))
        return;
    while ((de = readdir (d)) && n < (int)(sizeof (pids) / sizeof (pids[0]))) {
        char text[32] = "";
        size_t l = strlen (de->d_name);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        int fd;
        long v;
        if (l < 11 || strcmp (de->d_name + l - 11, ".jsonl.lock") != 0
            || pathf (path, sizeof (path), "%s/outbox/%s", dir,
                      de->d_name) < 0
            || (fd = open (path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) < 0)
            continue;
        /* held: someone writes the stream now */
        if (fcntl (fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK
            && pread (fd, text, sizeof (text) - 1, 0) > 0
            && (v = strtol (text, NULL, 10)) > 1
            && swarm_proc_is_worker ((pid_t)v, id)) {
            pids[n++] = (pid_t)v;
            log_msg ("stopping worker %ld (it writes %s)", v, de->d_name);
            kill ((pid_t)v, SIGTERM);
        }
        close (fd);
    }
    closedir (d);
    for (int i = 0; i < n; i++) {
        while (swarm_proc_is_worker (pids[i], id) && time_mono () < deadline)
            usleep (100000);
        if (swarm_proc_is_worker (pids[i], id)) {
            log_msg ("worker %d did not stop in time: killing it",
                     (int)pids[i]);
            kill (pids[i], SIGKILL);
        }
    }
}

/* Slurm jobs of a swarm (a JSON array of job ids): SIGTERM to the steps
 * of running ones and scancel of pending ones, up to grace for them to
 * end, then scancel.  -1 when something failed (logged).
 */
static int cancel_jobs (const cJSON *jobs, double grace)
{
    const cJSON *it;
    cs_error_t e;
    double deadline;
    bool waiting = true;
    int rc = 0;

    /* first TERM to the steps of running jobs, cancel pending ones */
    cJSON_ArrayForEach (it, jobs)
    {
        struct job_status ji;
        if (!cJSON_IsString (it))
            continue;
        if (job_query (it->valuestring, &ji, &e) < 0) {
            log_msg ("%s", e.text);
            rc = -1;
            continue;
        }
        if (!ji.found || job_state_final (ji.state))
            continue;
        if ((!strcmp (ji.state, "RUNNING")
                 ? job_signal (it->valuestring, SIGTERM, true, &e)
                 : job_signal (it->valuestring, 0, false, &e)) < 0) {
            log_msg ("%s", e.text);
            rc = -1;
        }
    }
    /* then wait for them to end, and scancel what is left */
    deadline = time_mono () + grace;
    while (waiting) {
        waiting = false;
        cJSON_ArrayForEach (it, jobs)
        {
            struct job_status ji;
            if (!cJSON_IsString (it))
                continue;
            if (job_query (it->valuestring, &ji, &e) < 0) {
                log_msg ("%s", e.text);
                rc = -1;
                continue;
            }
            if (!ji.found || job_state_final (ji.state))
                continue;
            if (time_mono () < deadline)
                waiting = true;
            else if (job_signal (it->valuestring, 0, false, &e) < 0) {
                log_msg ("%s", e.text);
                rc = -1;
            }
        }
        if (waiting)
            usleep (250000);
    }
    return rc;
}

/* A swarm without swarm.json, started by the user's own batch script: its
 * jobs are those its workers recorded in their worker_started records
 * (the newest is the one that matters; older ones of a chain of the
 * user's are stopped too when they still run).
 */
static int cancel_user_swarm (const char *id, const char *dir, double grace)
{
    struct nodes ns = {0};
    cJSON *jobs = NULL;
    cs_error_t e;
    bool live = false;
    int count, rc = 1;

    if (swarm_half_made (dir)) {
        log_msg ("swarm %s: its launch did not finish, nothing of it runs",
                 id);
        return 0;
    }
    if ((count = nodes_outbox_count (dir, &e)) < 0 ||
        nodes_open (&ns, dir, count, &e) < 0 ||
        nodes_update (&ns, NULL, NULL, &e) < 0) {
        log_msg ("swarm %s: %s", id, e.text);
        goto done;
    }
    if (!ns.newest_job[0]) {
        log_msg ("swarm %s has no swarm.json and none of its workers "
                 "recorded a Slurm job id: nothing to cancel (stop its "
                 "workers yourself)",
                 id);
        goto done;
    }
    if (!(jobs = cJSON_CreateArray ())) {
        log_msg ("out of memory");
        goto done;
    }
    for (int i = 0; i < ns.njobs; i++) {
        struct job_status ji;
        if (job_query (ns.jobs[i], &ji, &e) < 0) {
            log_msg ("%s", e.text);
            goto done;
        }
        if (ji.found && !job_state_final (ji.state)) {
            live = true;
            cJSON_AddItemToArray (jobs, cJSON_CreateString (ns.jobs[i]));
        }
    }
    if (!live) {
        printf ("swarm %s: already ended (job %s)\n", id, ns.newest_job);
        rc = 0;
        goto done;
    }
    {
        cJSON *p = cJSON_CreateObject ();
        if (!p || json_add_str (p, "reason", "cancelled") < 0 ||
            json_add_str (p, "job_id", ns.newest_job) < 0 ||
            swarm_event (dir, "swarm_ended", p, &e) < 0)
            log_msg ("cannot record event 'swarm_ended'");
        cJSON_Delete (p);
    }
    rc = cancel_jobs (jobs, grace) < 0 ? 1 : 0;
    printf ("swarm %s: cancelled (job %s)\n", id, ns.newest_job);
done:
    cJSON_Delete (jobs);
    nodes_close (&ns);
    return rc;
}

static void cancel_usage (FILE *f)
{
    fprintf (f, "usage: codeswarm cancel SWARM [--grace D]\n"
                "\n"
                "Stop a swarm: SIGTERM to its workers (they finish or "
                "interrupt the running\n"
                "turn and checkpoint), up to D (default 30s) for them to exit, "
                "then scancel.\n"
                "Pending successors are cancelled, so the chain stops.  "
                "Cancelling a swarm\n"
                "that has ended already is not an error.  A swarm of your own "
                "batch script\n"
                "(no swarm.json) is found through the job id its workers "
                "recorded.\n");
}

int cmd_cancel (int argc, char **argv)
{
    static const struct option longopts[] = {
        {"grace", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char home[LAUNCH_PATH_MAX], dir[LAUNCH_PATH_MAX];
    double grace = 30, deadline;
    bool grace_given = false;
    const char *id, *backend, *state;
    cJSON *sw;
    cs_error_t e;
    bool changed = false;
    int c, rc = 0;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long (argc, argv, ":g:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'g':
            if (parse_duration (optarg, &grace) < 0 || grace < 0) {
                log_msg ("--grace: '%s' is not a duration", optarg);
                return 2;
            }
            grace_given = true;
            break;
        case 'h':
            cancel_usage (stdout);
            return 0;
        case ':':
            log_msg ("option '%s' needs a value", argv[optind - 1]);
            return 2;
        default:
            log_msg ("unknown option '%s'", argv[optind - 1]);
            return 2;
        }
    }
    if (optind != argc - 1) {
        cancel_usage (stderr);
        return 2;
    }
    id = argv[optind];
    if ((rc = cancel_via_router (id, grace, grace_given)) >= 0)
        return rc;
    rc = 0;
    if (open_swarm (id, home, sizeof (home), dir, sizeof (dir)) < 0)
        return 1;
    if (!(sw = swarm_load (dir, &e))) {
        if (errno == ENOENT)
            return cancel_user_swarm (id, dir, grace);
        log_msg ("%s", e.text);
        return 1;
    }
    state = swarm_str (sw, "state");
    backend = swarm_str (sw, "backend");
    if (launch_set_state (dir, "cancelled", "cancelled", &changed, &e) < 0) {
        log_msg ("%s", e.text);
        cJSON_Delete (sw);
        return 1;
    }
    if (changed)
        launch_event (dir, "swarm_ended", "reason", "cancelled", NULL);
    deadline = time_mono () + grace + 10;

    if (backend && !strcmp (backend, "local")) {
        pid_t pid = (pid_t)swarm_int (sw, "supervisor_pid", 0);
        if (pid > 0 && swarm_proc_is_supervisor (pid, id)) {
            kill (pid, SIGTERM);
            while (swarm_proc_is_supervisor (pid, id) && time_mono () < deadline)
                usleep (100000);
            if (swarm_proc_is_supervisor (pid, id)) {
                log_msg ("supervisor %d did not stop in time: killing it",
                         (int)pid);
                kill (pid, SIGKILL);
                rc = 1;
            }
        }
        /* and whatever worker of the swarm the supervisor did not own */
        stop_stream_writers (dir, id, deadline);
    } else {
        if (cancel_jobs (cJSON_GetObjectItemCaseSensitive (sw, "jobs"),
                         grace) < 0)
            rc = 1;
    }
    if (state && swarm_state_final (state) && !changed)
        printf ("swarm %s: already %s\n", id, state);
    else {
        launch_audit (dir, "cancel", NULL);
        printf ("swarm %s: cancelled\n", id);
    }
    cJSON_Delete (sw);
    return rc ? 1 : 0;
}
