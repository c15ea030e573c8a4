/* jobtime.c - the node time of a swarm's job chain from its job events
 * (jobtime.h)
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/path.h"
#include "slurm/jobtime.h"
#include "slurm/swarm.h"

void jobtime_init (struct jobtime *jt)
{
    memset (jt, 0, sizeof (*jt));
}

static void jobtime_close_job (struct jobtime *jt, double ts)
{
    if (jt->open_since > 0 && ts > jt->open_since)
        jt->ended += ts - jt->open_since;
    jt->open_since = 0;
}

int jobtime_update (struct jobtime *jt, const char *swarmdir,
                    cs_error_t *errp)
{
    struct mb_event ev;
    int rc;

    if (!jt->reader) {
        char path[PATH_MAX];
        struct stat st;

        if (pathf (path, sizeof (path), "%s/outbox/%s.jsonl", swarmdir,
                   SWARM_EVENTS) < 0)
            return errprintf (errp, "'%s': path too long", swarmdir);
        if (stat (path, &st) < 0 && errno == ENOENT)
            return 0;
        if (!(jt->reader = mb_reader_open (path, MB_START_BEGIN, NULL, NULL,
                                           errp)))
            return -1;
    }
    while ((rc = mb_reader_next (jt->reader, &ev, errp)) > 0) {
        if (ev.type != MB_EV_RECORD)
            continue;
        if (!strcmp (ev.rec.type, "job_started")) {
            jobtime_close_job (jt, ev.rec.ts);
            jt->open_since = ev.rec.ts;
        }
        else if (!strcmp (ev.rec.type, "job_ended") ||
                 !strcmp (ev.rec.type, "swarm_ended"))
            jobtime_close_job (jt, ev.rec.ts);
    }
    return rc < 0 ? -1 : 0;
}

double jobtime_seconds (const struct jobtime *jt, double now, bool running)
{
    double s = jt->ended;

    if (running && jt->open_since > 0 && now > jt->open_since)
        s += now - jt->open_since;
    return s;
}

void jobtime_close (struct jobtime *jt)
{
    if (jt->reader)
        mb_reader_close (jt->reader);
    jobtime_init (jt);
}
