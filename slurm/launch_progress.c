/* launch_progress.c - what "codeswarm launch" shows while it waits for
 * the nodes: the job's state (pending and why, running, ended), a line per
 * node on a terminal (board.c) or JSON lines with --progress-json, and the
 * verdicts: a job Slurm will never start, or that did not start within
 * --pending-timeout, is cancelled; Ctrl-C cancels the swarm (or, with
 * --detach, leaves it be).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "slurm/board.h"
#include "slurm/job.h"
#include "slurm/launch.h"
#include "slurm/launch_steps.h"
#include "slurm/nodes.h"
#include "slurm/pending.h"
#include "slurm/swarm.h"
#include "slurm/walltime.h"

/* ---- progress ------------------------------------------------------------ */

static bool progress_json;

void launch_progress_json (bool on)
{
    progress_json = on;
}

void launch_progress_emit (const char *stage, int node, ...)
{
    cJSON *o;
    const char *k;
    va_list ap;
    char *text;

    if (!progress_json || !(o = cJSON_CreateObject ()))
        return;
    (void)json_add_str (o, "stage", stage);
    if (node >= 0)
        (void)json_add_u64 (o, "node_id", (uint64_t)node);
    va_start (ap, node);
    while ((k = va_arg (ap, const char *))) {
        const char *v = va_arg (ap, const char *);
        if (v)
            (void)json_add_str (o, k, v);
        else
            (void)cJSON_AddNullToObject (o, k);
    }
    va_end (ap);
    if ((text = cJSON_PrintUnformatted (o))) {
        printf ("%s\n", text);
        fflush (stdout);
        free (text);
    }
    cJSON_Delete (o);
}

struct progress {
    bool quiet;
    const char *swarmdir;
    double pending_timeout; /* --pending-timeout, 0: none */
    double started;         /* time_mono () when the wait began */
    char jobid[32];  /* current job (slurm backend) */
    char shown[512]; /* the last job line printed */
    char lasterr[512];
    bool running_shown;
    bool job_over; /* the job ended (reported) */
    board_t *board; /* line 0 the job, 1 + k node k; NULL when quiet */
};

/* The job will not start (or not in time): cancel it, the swarm failed. */
static void progress_give_up (struct progress *p, const char *reason)
{
    cs_error_t e;

    if (job_signal (p->jobid, 0, false, &e) < 0)
        log_msg ("%s", e.text);
    launch_set_state (p->swarmdir, "failed", reason, NULL, NULL);
    launch_event (p->swarmdir, "swarm_ended", "reason", reason, "job_id",
                  p->jobid, NULL);
    p->job_over = true;
}

/* Query the job and print its state when it changed.  Returns -1 when the
 * job is over before the swarm was ready, or was cancelled because it
 * cannot start (a limit it exceeds) or did not start in time.
 */
static int progress_job (struct progress *p)
{
    struct job_status ji;
    char line[sizeof (ji.nodes) + 128], words[128], why[512];
    cs_error_t e;

    if (!p->jobid[0])
        return 0;
    if (job_query (p->jobid, &ji, &e) < 0) {
        /* an error, not a verdict on the job: say so once, keep asking */
        if (strcmp (p->lasterr, e.text)) {
            if (board_live (p->board))
                board_note (p->board, "codeswarm launch: %s (still waiting)",
                            e.text);
            else
                log_msg ("%s (still waiting)", e.text);
        }
        snprintf (p->lasterr, sizeof (p->lasterr), "%s", e.text);
        return 0;
    }
    if (!ji.found)
        return 0;
    if (!strcmp (ji.state, "PENDING")) {
        if (pending_never (&ji, why, sizeof (why))) {
            log_msg ("job %s can never start: %s (%s); cancelled it",
                     p->jobid, why, ji.reason);
            progress_give_up (p, "unsatisfiable");
            return -1;
        }
        pending_words (ji.reason, words, sizeof (words));
        if (p->pending_timeout > 0 &&
            time_mono () - p->started >= p->pending_timeout) {
            log_msg ("job %s still %s after %.0fs (--pending-timeout); "
                     "cancelled it",
                     p->jobid, words, p->pending_timeout);
            progress_give_up (p, "pending_timeout");
            return -1;
        }
        snprintf (line, sizeof (line), "job %s: %s", p->jobid, words);
    } else if (!strcmp (ji.state, "RUNNING")) {
        snprintf (line, sizeof (line), "job %s: running on %s", p->jobid,
                  ji.nodes);
        p->running_shown = true;
    } else
        snprintf (line, sizeof (line), "job %s: %s", p->jobid, ji.state);
    if (strcmp (line, p->shown))
        board_set (p->board, 0, "%s", line);
    if (strcmp (line, p->shown)) {
        if (!strcmp (ji.state, "PENDING"))
            launch_progress_emit ("pending", -1, "job_id", p->jobid, "reason",
                           ji.reason[0] ? ji.reason : "None", "message",
                           line, NULL);
        else if (!strcmp (ji.state, "RUNNING"))
            launch_progress_emit ("running", -1, "job_id", p->jobid, "hosts",
                           ji.nodes, "message", line, NULL);
        else
            launch_progress_emit ("job_state", -1, "job_id", p->jobid, "state",
                           ji.state, "message", line, NULL);
    }
    snprintf (p->shown, sizeof (p->shown), "%s", line);
    if (job_state_final (ji.state)) {
        log_msg ("job %s ended (%s) before all nodes were ready; see "
                 "'%s/log/job-%s.out'",
                 p->jobid, ji.state, p->swarmdir, p->jobid);
        p->job_over = true;
        return -1;
    }
    return 0;
}

static void on_node_change (int k, const struct node_state *n, void *arg)
{
    struct progress *p = arg;

    /* a worker started before the job was seen running: show it first */
    if (n->phase == NODE_STARTED && !p->running_shown)
        progress_job (p);
    if (progress_json) {
        char msg[256];
        switch (n->phase) {
        case NODE_STARTED:
            snprintf (msg, sizeof (msg), "node %d: worker started on %s", k,
                      n->host[0] ? n->host : "?");
            launch_progress_emit ("node_started", k, "host", n->host, "message",
                           msg, NULL);
            break;
        case NODE_READY:
            snprintf (msg, sizeof (msg), "node %d: ready (thread %s)", k,
                      n->thread_id[0] ? n->thread_id : "?");
            launch_progress_emit ("node_ready", k, "thread_id", n->thread_id,
                           "message", msg, NULL);
            break;
        case NODE_STOPPED:
            snprintf (msg, sizeof (msg), "node %d: worker stopped", k);
            launch_progress_emit ("node_stopped", k, "message", msg, NULL);
            break;
        default:
            break;
        }
    }
    switch (n->phase) {
    case NODE_STARTED:
        board_set (p->board, 1 + k, "node %d: worker started on %s", k,
                   n->host[0] ? n->host : "?");
        break;
    case NODE_READY:
        board_set (p->board, 1 + k, "node %d: ready (thread %s)", k,
                   n->thread_id[0] ? n->thread_id : "?");
        break;
    case NODE_STOPPED:
        board_set (p->board, 1 + k, "node %d: worker stopped", k);
        break;
    default:
        break;
    }
}

static bool pid_alive (pid_t pid)
{
    return pid > 0 && (kill (pid, 0) == 0 || errno == EPERM);
}

static volatile sig_atomic_t wait_interrupted;

static void wait_sigint (int sig)
{
    (void)sig;
    wait_interrupted = 1;
}

/* Ctrl-C while waiting: cancel the swarm, or with --detach leave it be.
 * Returns launch's exit status.
 */
static int wait_interrupt (const char *id, const char *jobid, bool detach)
{
    char *av[] = {(char *)"cancel", (char *)id, (char *)"--grace",
                  (char *)"10s", NULL};
    char job[64] = "";

    if (jobid && strcmp (jobid, "local"))
        snprintf (job, sizeof (job), " (job %s)", jobid);
    if (isatty (STDERR_FILENO))
        fputc ('\n', stderr); /* after the terminal's "^C" */
    if (detach) {
        log_msg ("interrupted: swarm %s%s is left as it is (--detach); "
                 "'codeswarm status %s' shows it, 'codeswarm cancel %s' "
                 "stops it",
                 id, job, id, id);
        return 0;
    }
    log_msg ("interrupted: cancelling swarm %s%s (with --detach, Ctrl-C "
             "leaves it be)",
             id, job);
    signal (SIGINT, SIG_DFL);
    cmd_cancel (4, av);
    return 130;
}

/* Wait until every node is ready.  0 when ready, 1 when the swarm ended
 * first (reported), 130 when interrupted (and the swarm cancelled), 0 when
 * interrupted with detach.
 */
int launch_wait_ready (const char *id, const char *swarmdir, int count,
                       bool quiet, double pending_timeout, bool detach,
                       struct nodes *opened)
{
    struct progress p = {.quiet = quiet,
                         .swarmdir = swarmdir,
                         .pending_timeout = pending_timeout,
                         .started = time_mono ()};
    struct sigaction sa = {.sa_handler = wait_sigint}, old_sa;
    struct nodes ns;
    cs_error_t e;
    double next_query = 0;
    int rc = 1;

    if (opened) {
        ns = *opened; /* read up to now already (--resume): taken over */
        memset (opened, 0, sizeof (*opened));
    } else if (nodes_open (&ns, swarmdir, count, &e) < 0) {
        log_msg ("%s", e.text);
        return 1;
    }
    /* on a terminal, a line per node updated in place */
    if (!quiet && (p.board = board_create (stderr, count + 1)) &&
        board_live (p.board))
        for (int k = 0; k < count; k++)
            board_set (p.board, 1 + k, "node %d: waiting", k);
    sigemptyset (&sa.sa_mask);
    sigaction (SIGINT, &sa, &old_sa);
    for (;;) {
        if (wait_interrupted) {
            rc = wait_interrupt (id, p.jobid[0] ? p.jobid : NULL, detach);
            goto done;
        }
        if (time_mono () >= next_query) {
            cJSON *sw = swarm_load (swarmdir, &e);
            const char *backend = sw ? swarm_str (sw, "backend") : NULL;
            const char *jobid = sw ? swarm_str (sw, "job_id") : NULL;
            const char *state = sw ? swarm_str (sw, "state") : NULL;
            next_query = time_mono () + 1.0;
            if (!sw) {
                log_msg ("%s", e.text);
                goto done;
            }
            if (swarm_state_final (state)) {
                log_msg ("swarm %s %s before all nodes were ready%s%s; see "
                         "'%s/log'",
                         id, state, swarm_str (sw, "end_reason") ? ": " : "",
                         swarm_str (sw, "end_reason")
                             ? swarm_str (sw, "end_reason")
                             : "",
                         swarmdir);
                cJSON_Delete (sw);
                goto done;
            }
            if (backend && !strcmp (backend, "local")) {
                pid_t pid = (pid_t)swarm_int (sw, "supervisor_pid", 0);
                if (pid > 0 && !pid_alive (pid)) {
                    log_msg ("the local supervisor (pid %d) exited; see "
                             "'%s/log'",
                             (int)pid, swarmdir);
                    cJSON_Delete (sw);
                    goto done;
                }
            } else if (jobid) {
                if (strcmp (p.jobid, jobid)) {
                    snprintf (p.jobid, sizeof (p.jobid), "%s", jobid);
                    p.running_shown = false;
                }
                if (progress_job (&p) < 0) {
                    cJSON_Delete (sw);
                    goto done;
                }
            }
            cJSON_Delete (sw);
        }
        if (nodes_update (&ns, on_node_change, &p, &e) < 0) {
            log_msg ("%s", e.text);
            break;
        }
        if (p.job_over)
            goto done;
        if (nodes_count_phase (&ns, NODE_READY) == count) {
            char msg[128];
            snprintf (msg, sizeof (msg), "swarm %s: %d/%d nodes ready", id,
                      count, count);
            launch_progress_emit ("ready", -1, "swarm_id", id, "message", msg, NULL);
            if (!quiet)
                fprintf (stderr, "swarm %s: %d/%d nodes ready\n", id, count,
                         count);
            rc = 0;
            break;
        }
        for (int k = 0; k < count; k++) {
            if (ns.node[k].phase == NODE_STOPPED) {
                log_msg ("node %d stopped before it was ready; see '%s/log'", k,
                         swarmdir);
                goto done;
            }
        }
        usleep (200000);
    }
done:
    sigaction (SIGINT, &old_sa, NULL);
    board_destroy (p.board);
    nodes_close (&ns);
    return rc;
}
