/* idle.c - the idle clock of a swarm, from its mailbox */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mailbox/mailbox.h"
#include "slurm/idle.h"
#include "slurm/swarm.h"

int idle_first_event (const char *swarmdir, const char *type, double *ts,
                      cs_error_t *errp)
{
    char path[4096];
    struct stat st;
    mb_reader_t *r;
    struct mb_event ev;
    int rc;

    if (snprintf (path, sizeof (path), "%s/outbox/%s.jsonl", swarmdir,
                  SWARM_EVENTS) >= (int)sizeof (path)) {
        errno = ENAMETOOLONG;
        return errprintf (errp, "swarm directory path too long");
    }
    if (stat (path, &st) < 0 && errno == ENOENT)
        return 0;
    if (!(r = mb_reader_open (path, MB_START_BEGIN, NULL, NULL, errp)))
        return -1;
    while ((rc = mb_reader_next (r, &ev, errp)) > 0) {
        if (ev.type == MB_EV_RECORD && !strcmp (ev.rec.type, type)) {
            *ts = ev.rec.ts;
            rc = 1;
            break;
        }
    }
    mb_reader_close (r);
    return rc;
}

int idle_inbox_open (struct idle_inbox *ib, const char *swarmdir, int count,
                     cs_error_t *errp)
{
    memset (ib, 0, sizeof (*ib));
    if (!(ib->reader = calloc ((size_t)(count > 0 ? count : 1),
                               sizeof (*ib->reader))))
        return errprintf (errp, "out of memory");
    for (int k = 0; k < count; k++) {
        char path[4096];
        if (mb_stream_path (swarmdir, "inbox", k, path, sizeof (path), errp) <
                0 ||
            !(ib->reader[k] =
                  mb_reader_open (path, MB_START_BEGIN, NULL, NULL, errp))) {
            idle_inbox_close (ib);
            return -1;
        }
        ib->count = k + 1;
    }
    return 0;
}

int idle_inbox_update (struct idle_inbox *ib, cs_error_t *errp)
{
    for (int k = 0; k < ib->count; k++) {
        struct mb_event ev;
        int rc;
        while ((rc = mb_reader_next (ib->reader[k], &ev, errp)) > 0) {
            if (ev.type == MB_EV_RECORD && !strcmp (ev.rec.type, "user") &&
                ev.rec.ts > ib->last_prompt)
                ib->last_prompt = ev.rec.ts;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

void idle_inbox_close (struct idle_inbox *ib)
{
    int saved = errno;

    if (ib->reader) {
        for (int k = 0; k < ib->count; k++)
            mb_reader_close (ib->reader[k]);
        free (ib->reader);
    }
    ib->reader = NULL;
    ib->count = 0;
    errno = saved;
}

double idle_since (const struct nodes *ns, double last_prompt,
                   double first_start, double created, bool *active)
{
    double last = last_prompt > 0 ? last_prompt : 0;

    *active = false;
    for (int k = 0; k < ns->count; k++) {
        if (ns->node[k].last_activity > last)
            last = ns->node[k].last_activity;
        if (ns->node[k].turn_active)
            *active = true;
    }
    if (last > 0)
        return last;
    return first_start > 0 ? first_start : created;
}
