/* jobtimer.c - the batch script's own walltime timer ("codeswarm-launch
 * job-timer SWARM WARN --pid PID").
 *
 * Slurm delivers --signal=B:USR1@WARN on a periodic tick of its own, up to
 * a minute late or early, so a short job could spend much of its walltime
 * before the warning came.  This timer reads the job's end time from
 * Slurm's job record (slurm_load_job's EndTime, or squeue --json, or
 * $SLURM_JOB_END_TIME), reads it again every 30 s (a time limit may be
 * changed while the job runs), and at end - WARN sends SIGALRM to the
 * batch shell (PID), whose trap checkpoints the workers and submits the
 * successor as on Slurm's signal ("job-event warning timer").  Slurm's
 * signal, which comes up to a tick early, is the fallback: the batch shell
 * acts on it only when this timer is not running.  Exits when it fired,
 * when PID is gone, on SIGTERM, or (status 1) when Slurm gives no end time
 * three times in a row.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "slurm/job.h"
#include "slurm/launch.h"

/* re-read the end time at least this often */
#define JOBTIMER_REREAD 30.0

static volatile sig_atomic_t jobtimer_stop;

static void jobtimer_sig (int sig)
{
    (void)sig;
    jobtimer_stop = 1;
}

/* The job's end time (epoch seconds), 0 when Slurm does not say. */
static double jobtimer_end (const char *jobid)
{
    struct job_status ji;
    const char *env = getenv ("SLURM_JOB_END_TIME");
    cs_error_t e;

    if (job_query (jobid, &ji, &e) == 0 && ji.found && ji.end_time > 0)
        return ji.end_time;
    if (env && *env && strtod (env, NULL) > 0)
        return strtod (env, NULL);
    return 0;
}

static void jobtimer_pause (double secs)
{
    struct timespec ts;

    if (secs <= 0)
        return;
    ts.tv_sec = (time_t)secs;
    ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
    nanosleep (&ts, NULL);      /* a signal ends it early: that is fine */
}

int cmd_job_timer (int argc, char **argv)
{
    const char *jobid = getenv ("SLURM_JOB_ID");
    double warn, end = 0, shown = 0;
    int unknown = 0;
    pid_t pid;

    if (argc != 5 || parse_duration (argv[2], &warn) < 0 || warn <= 0 ||
        strcmp (argv[3], "--pid") || (pid = (pid_t)atoi (argv[4])) <= 0) {
        log_msg ("usage: job-timer SWARM WARN --pid PID");
        return 2;
    }
    if (!jobid || !*jobid) {
        log_msg ("job-timer: SLURM_JOB_ID is not set");
        return 1;
    }
    signal (SIGTERM, jobtimer_sig);
    signal (SIGINT, jobtimer_sig);
    while (!jobtimer_stop) {
        double now, fire;
        if (kill (pid, 0) < 0 && errno == ESRCH)
            return 0;
        if ((end = jobtimer_end (jobid)) <= 0) {
            if (++unknown >= 3) {
                log_msg ("job %s: Slurm gives no end time; its signal alone "
                         "warns before the walltime", jobid);
                return 1;
            }
            jobtimer_pause (2.0 * unknown);
            continue;
        }
        unknown = 0;
        now = time_now ();
        fire = end - warn;
        if (end != shown) {
            log_msg ("job %s ends at %.0f: the timer warns at %.0f (in %.0f s)",
                     jobid, end, fire, fire > now ? fire - now : 0);
            shown = end;
        }
        if (now >= fire) {
            log_msg ("job %s: %.0f s before the end: the job's own timer "
                     "warns the batch script", jobid, end - now);
            if (kill (pid, SIGALRM) < 0) {
                log_msg ("cannot signal the batch script (pid %d): %s",
                         (int)pid, strerror (errno));
                return 1;
            }
            return 0;
        }
        jobtimer_pause (fire - now < JOBTIMER_REREAD ? fire - now
                                                     : JOBTIMER_REREAD);
    }
    return 0;
}
