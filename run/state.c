/* state.c - the state stream of a run and its replay on resume
 *
 * The run's memory is its state stream, <output>/state/run.jsonl (an
 * append-only mailbox stream with one writer): run_started (the router
 * event seq the run began at), task_dispatched, task_acked,
 * task_attempt_failed, task_done.  A restarted run replays it, then asks
 * the router for every event since the run began: a task whose turn ended
 * meanwhile is finished from those events, a task whose turn still runs is
 * waited for (its inject is sent again with the same idempotency key,
 * which the router answers "duplicate" with the injection id), so no
 * finished task runs again and no task runs on two nodes at once.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fnv.h"
#include "common/json.h"
#include "common/log.h"
#include "run/private.h"

void state_append (struct run *r, const char *type, cJSON *p)
{
    cs_error_t e;

    if (mb_writer_append (r->state, type, p, NULL, &e) < 0)
        log_msg ("cannot record %s in the state stream: %s", type, e.text);
    cJSON_Delete (p);
}

/* ---- the state stream ------------------------------------------------------ */

static int find_task (struct run *r, const cJSON *p)
{
    const char *id = dstr (p, "task");
    return id ? taskfile_find (r->tf, id) : -1;
}

/* Replay <out>/state/run.jsonl into r. */
int replay (struct run *r, const char *path, const char *digest,
                   cs_error_t *errp)
{
    mb_reader_t *rd = mb_reader_open (path, MB_START_BEGIN, NULL, NULL, errp);
    struct mb_event ev;
    int rc;

    if (!rd)
        return -1;
    while ((rc = mb_reader_next (rd, &ev, errp)) == 1) {
        const cJSON *p = ev.rec.json;
        const char *type = ev.rec.type;
        int i;
        if (ev.type == MB_EV_CORRUPT) {
            log_msg ("%s: offset %llu: %s", path,
                     (unsigned long long)ev.offset, ev.reason);
            continue;
        }
        if (ev.type != MB_EV_RECORD)
            continue;
        if (!strcmp (type, "run_started")) {
            const char *dg = dstr (p, "digest");
            if (dg && strcmp (dg, digest) != 0) {
                mb_reader_close (rd);
                errno = EINVAL;
                return errprintf (errp, "the task file changed since run "
                                  "'%s' started (%s); use another --run or "
                                  "--output", r->o->run_id, path);
            }
            r->since = (uint64_t)dint (p, "since", 0);
            r->started = true;
            continue;
        }
        if ((i = find_task (r, p)) < 0)
            continue;
        if (!strcmp (type, "task_dispatched")) {
            r->t[i].attempt = dint (p, "attempt", r->t[i].attempt + 1);
            r->t[i].node = dint (p, "node", -1);
            r->t[i].acked = false;
            set_str (&r->t[i].start, dstr (p, "start"));
            free (r->t[i].injection_id);
            r->t[i].injection_id = NULL;
            if (r->t[i].wall0 == 0)
                r->t[i].wall0 = ev.rec.ts;
            r->t[i].st = T_RUNNING;
        }
        else if (!strcmp (type, "task_acked"))
            set_str (&r->t[i].injection_id, dstr (p, "injection_id"));
        else if (!strcmp (type, "task_attempt_failed")) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive (p, "counted");
            int k = dint (p, "node", -1);
            if (cJSON_IsFalse (c))
                r->t[i].cuts++;
            else
                r->t[i].failures++;
            if (k >= 0)
                r->t[i].node = -(k + 2);        /* resolved after status */
            r->t[i].st = T_READY;
            set_str (&r->t[i].reason, dstr (p, "reason"));
        }
        else if (!strcmp (type, "task_done")) {
            const cJSON *res = cJSON_GetObjectItemCaseSensitive (p, "result");
            const char *s = dstr (res, "status");
            r->t[i].st = !s ? T_FAILED : !strcmp (s, "passed") ? T_PASSED
                         : !strcmp (s, "skipped") ? T_SKIPPED : T_FAILED;
            r->t[i].node = -1;
            cJSON_Delete (r->t[i].result);
            r->t[i].result = cJSON_Duplicate (res, 1);
        }
    }
    mb_reader_close (rd);
    return rc < 0 ? -1 : 0;
}

void digest_of (const taskfile_t *tf, char *buf, size_t len)
{
    /* the basis digests have always started from (not FNV1A_INIT): the
     * digests recorded by earlier runs stay valid */
    uint64_t h = 1469598103934665603ULL;

    for (int i = 0; i < tf->ntasks; i++) {
        const struct task *t = &tf->tasks[i];
        const char *parts[] = { t->id, t->prompt, t->repo ? t->repo : "",
                                t->base ? t->base : "",
                                t->accept ? t->accept : "" };
        for (size_t p = 0; p < sizeof (parts) / sizeof (parts[0]); p++)
            h = fnv1a (fnv1a (h, parts[p]), "\xff");
        for (int j = 0; j < t->ndeps; j++)
            h = fnv1a (fnv1a (h, t->deps[j]), "\xfe");
    }
    snprintf (buf, len, "%016llx", (unsigned long long)h);
}

/* Once the swarm's nodes are known, resolve what the replay left: nodes
 * failed on, attempts in flight (waited for, their inject sent again when
 * no ack was recorded), tasks behind failed dependencies.
 */
void state_resume (struct run *r)
{
    for (int i = 0; i < r->n; i++) {
        struct trun *t = &r->t[i];
        if (t->node <= -2) {
            int k = -t->node - 2;
            if (k < r->nnodes)
                t->failed_on[k] = 1;
            t->node = -1;
        }
    }
    for (int q = 0; q < r->n; q++) {
        int i = r->tf->order[q];
        struct trun *t = &r->t[i];
        if (t->st == T_RUNNING) {
            if (t->node >= 0 && t->node < r->nnodes)
                r->nodes[t->node].task = i;
            if (t->injection_id) {
                char *id = t->injection_id;
                t->injection_id = NULL;
                bind_injection (r, i, t->attempt, id);
                free (id);
            }
            else
                redispatch (r, i);
        }
        else if (t->st == T_FAILED || t->st == T_SKIPPED)
            skip_dependants (r, i);
    }
}

/* vi: set ts=4 sw=4 expandtab: */
