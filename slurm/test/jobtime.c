/* jobtime.c - the node time of a job chain from its job events */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/libtap/tap.h"
#include "mailbox/mailbox.h"
#include "slurm/jobtime.h"
#include "slurm/swarm.h"

static double wall (void)
{
    struct timespec ts;

    clock_gettime (CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void append (mb_writer_t *w, const char *type)
{
    cs_error_t e;

    if (mb_writer_append (w, type, NULL, NULL, &e) < 0)
        bail_out ("append %s: %s", type, e.text);
    usleep (20000); /* distinct timestamps */
}

int main (void)
{
    const char *tmpdir = getenv ("TMPDIR");
    char dir[4096], path[4096 + 64];
    struct jobtime jt;
    mb_writer_t *w;
    cs_error_t e;
    double t0, t1, t2, s1, s2;

    plan (NO_PLAN);
    snprintf (dir, sizeof (dir), "%s/jobtime.XXXXXX",
              tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp (dir))
        bail_out ("mkdtemp: %s", strerror (errno));
    snprintf (path, sizeof (path), "%s/outbox", dir);
    if (mkdir (path, 0700) < 0)
        bail_out ("mkdir: %s", strerror (errno));
    snprintf (path, sizeof (path), "%s/outbox/%s.jsonl", dir, SWARM_EVENTS);

    jobtime_init (&jt);
    ok (jobtime_update (&jt, dir, &e) == 0, "no swarm stream yet: no error");
    ok (jobtime_seconds (&jt, wall (), true) == 0, "and no time");

    if (!(w = mb_writer_open (path, NULL, &e)))
        bail_out ("%s", e.text);
    append (w, "job_submitted");
    t0 = wall ();
    append (w, "job_started");
    ok (jobtime_update (&jt, dir, &e) == 0, "a job started");
    t1 = wall ();
    s1 = jobtime_seconds (&jt, t1, true);
    ok (s1 > 0 && s1 <= t1 - t0, "running: counts from its start to now");
    ok (jobtime_seconds (&jt, t1 + 100, true) > s1 + 99,
        "and goes on with the clock");
    ok (jobtime_seconds (&jt, t1, false) == 0,
        "not counted once the swarm says no job holds nodes");
    append (w, "heartbeat");
    append (w, "job_ended");
    t2 = wall ();
    ok (jobtime_update (&jt, dir, &e) == 0, "the job ended");
    s2 = jobtime_seconds (&jt, t2, true);
    ok (s2 > s1 && s2 <= t2 - t0, "its whole run counts");
    ok (jobtime_seconds (&jt, t2 + 100, true) == s2,
        "and stops: no job is open");

    /* a successor job; the swarm ends without a job_ended */
    append (w, "job_started");
    append (w, "job_started");
    append (w, "swarm_ended");
    ok (jobtime_update (&jt, dir, &e) == 0, "two more starts, swarm_ended");
    s1 = jobtime_seconds (&jt, wall () + 100, true);
    ok (s1 > s2 && s1 < wall () - t0, "each start closes the job before, "
        "swarm_ended the last");
    mb_writer_close (w);
    jobtime_close (&jt);

    jobtime_init (&jt);
    ok (jobtime_update (&jt, dir, &e) == 0
        && jobtime_seconds (&jt, wall () + 100, true) == s1,
        "read again from the start: the same total");
    jobtime_close (&jt);

    unlink (path);
    snprintf (path, sizeof (path), "%s/outbox/%s.jsonl.lock", dir,
              SWARM_EVENTS);
    unlink (path);
    snprintf (path, sizeof (path), "%s/outbox", dir);
    rmdir (path);
    rmdir (dir);
    done_testing ();
}
