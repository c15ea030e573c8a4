/* run.c - a run of a task graph over the nodes of a swarm, from start to
 * end: the output directory, the state replayed, the router link, the
 * loop until every task is final (or a signal stops it), --integrate, and
 * the teardown
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/json.h"
#include "common/log.h"
#include "run/private.h"

volatile sig_atomic_t stop_signal;

static void on_signal (int sig)
{
    stop_signal = sig;
}

static bool all_final (struct run *r)
{
    return r->counts[T_PASSED] + r->counts[T_FAILED] + r->counts[T_SKIPPED]
           == r->n;
}

static int make_dirs (struct run *r, cs_error_t *errp)
{
    char p[PATH_MAX + 16];
    const char *sub[] = { "", "/state", "/work", "/logs" };

    for (size_t j = 0; j < sizeof (sub) / sizeof (sub[0]); j++) {
        snprintf (p, sizeof (p), "%s%s", r->out, sub[j]);
        if (mkdir (p, 0700) < 0 && errno != EEXIST)
            return errprintf (errp, "cannot create '%s': %s", p,
                              strerror (errno));
    }
    snprintf (p, sizeof (p), "%s/state", r->out);
    return mb_secure_dir (p, false, errp);
}

int run_tasks (taskfile_t *tf, const struct run_opts *o, cs_error_t *errp)
{
    struct run rr, *r = &rr;
    char path[PATH_MAX + 32], digest[32];
    struct sigaction sa;
    int rc = 2;

    memset (r, 0, sizeof (*r));
    r->o = o;
    r->tf = tf;
    r->n = tf->ntasks;
    r->t_begin = time_mono ();
    {
        char real[PATH_MAX];
        if (!realpath (o->output, real)) {
            if (errno != ENOENT)
                return errprintf (errp, "cannot use '%s': %s", o->output,
                                  strerror (errno)), 2;
            if (mkdir (o->output, 0700) < 0 || !realpath (o->output, real))
                return errprintf (errp, "cannot create '%s': %s", o->output,
                                  strerror (errno)), 2;
        }
        if (strlen (real) >= sizeof (r->out))
            return errprintf (errp, "'%s': the path is too long", real), 2;
        strcpy (r->out, real);
    }
    if (make_dirs (r, errp) < 0)
        return 2;
    if (!(r->t = calloc (r->n, sizeof (*r->t)))
        || !(r->active = calloc (r->n, sizeof (int)))
        || !(r->dependants = calloc (r->n, sizeof (int *)))
        || !(r->ndependants = calloc (r->n, sizeof (int))))
        log_msg_exit ("out of memory");
    for (int i = 0; i < r->n; i++) {
        const struct task *tk = &tf->tasks[i];
        r->t[i].node = -1;
        r->t[i].failed_on = calloc (1, 1);
        for (int j = 0; j < tk->ndeps; j++) {
            int d = tk->dep[j];
            int *nd = realloc (r->dependants[d],
                               (r->ndependants[d] + 1) * sizeof (int));
            if (!nd)
                log_msg_exit ("out of memory");
            nd[r->ndependants[d]++] = i;
            r->dependants[d] = nd;
        }
    }

    /* the state so far */
    digest_of (tf, digest, sizeof (digest));
    snprintf (path, sizeof (path), "%s/state/run.jsonl", r->out);
    if (replay (r, path, digest, errp) < 0)
        goto done;
    if (!(r->state = mb_writer_open (path, NULL, errp))) {
        if (errno == EBUSY)
            errprintf (errp, "run '%s' is running already (%s)", o->run_id,
                       errp->text);
        goto done;
    }
    if (results_open (r, errp) < 0)
        goto done;

    /* the counts, the queue */
    for (int i = 0; i < r->n; i++) {
        r->counts[r->t[i].st]++;
        if (is_active (r->t[i].st))
            r->active[r->nactive++] = i;
    }
    for (int q = 0; q < r->n; q++) {
        int i = tf->order[q];
        struct trun *t = &r->t[i];
        for (int j = 0; j < tf->tasks[i].ndeps; j++) {
            if (r->t[tf->tasks[i].dep[j]].st != T_PASSED)
                t->waitdeps++;
        }
        if (t->st == T_READY) {
            r->counts[T_READY]--;
            r->counts[T_WAITING]++;
            t->st = T_WAITING;
        }
        if (t->st == T_WAITING) {
            bool dead = false;
            for (int j = 0; j < tf->tasks[i].ndeps; j++) {
                enum tstate ds = r->t[tf->tasks[i].dep[j]].st;
                dead |= ds == T_FAILED || ds == T_SKIPPED;
            }
            if (t->waitdeps == 0)
                ready_push (r, i);
            else if (dead) {
                /* finished below, once the link is there */
            }
        }
    }

    snprintf (path, sizeof (path), "%s/router.log", r->out);
    if (!(r->link = link_open (o->home, o->router, o->router_args, path,
                               errp)))
        goto done;
    memset (&sa, 0, sizeof (sa));
    sa.sa_handler = on_signal;
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGHUP, &sa, NULL);

    {
        cJSON *p = cJSON_CreateObject ();
        if (r->started)
            json_add_u64 (p, "since", r->since);
        if (link_send (r->link, "hello", "hello", p) < 0) {
            errprintf (errp, "cannot talk to the router (see %s)", path);
            goto done;
        }
    }
    while (!r->hello_done) {
        if (pump (r, 1000) < 0 || stop_signal) {
            errprintf (errp, "the router did not answer (see %s)", path);
            goto done;
        }
    }
    if (!r->started) {
        cJSON *p = cJSON_CreateObject ();
        json_add_str (p, "run", o->run_id);
        json_add_str (p, "swarm", o->swarm);
        json_add_str (p, "tasks_file", tf->path);
        json_add_str (p, "digest", digest);
        cJSON_AddNumberToObject (p, "ntasks", r->n);
        json_add_u64 (p, "since", r->since);
        state_append (r, "run_started", p);
        r->started = true;
        log_debug ("run %s started (router events after %llu)", o->run_id,
                   (unsigned long long)r->since);
    }
    else
        log_msg ("run %s resumed: %d passed, %d failed, %d skipped, %d in "
                 "flight", o->run_id, r->counts[T_PASSED],
                 r->counts[T_FAILED], r->counts[T_SKIPPED],
                 r->counts[T_RUNNING]);
    ask_status (r);
    while (!r->status_done) {
        if (pump (r, 1000) < 0 || stop_signal) {
            errprintf (errp, "no answer to swarm_status (see %s)", path);
            goto done;
        }
        if (!r->status_pending && !r->status_done
            && time_mono () - r->status_at >= 1)
            ask_status (r);
    }
    state_resume (r);

    /* the run */
    while (!all_final (r) && !stop_signal) {
        bool any_idle = false;
        schedule (r);
        for (int k = 0; k < r->nnodes; k++)
            any_idle |= node_idle (r, k);
        if (r->counts[T_READY] > 0 && !any_idle && !r->status_pending
            && time_mono () - r->status_at > 2)
            ask_status (r);
        if (pump (r, 1000) < 0) {
            if (!stop_signal) {
                errprintf (errp, "lost the router (see %s)", path);
                goto done;
            }
        }
    }
    if (stop_signal) {
        progress_end (r);
        log_msg ("stopped by signal %d: %d tasks passed, %d in flight; run "
                 "again to resume", (int)stop_signal, r->counts[T_PASSED],
                 r->counts[T_RUNNING] + r->counts[T_CHECKING]);
        rc = 1;
        goto done;
    }
    lat_report (r);
    rc = r->counts[T_PASSED] == r->n ? 0 : 1;
    if (o->integrate && integrate (r) < 0)
        rc = 1;
    progress_end (r);
    log_msg ("run %s: %d passed, %d failed, %d skipped (results in "
             "%s/results.jsonl)", o->run_id, r->counts[T_PASSED],
             r->counts[T_FAILED], r->counts[T_SKIPPED], r->out);
done:
    link_close (r->link);
    mb_writer_close (r->state);
    if (r->results)
        fclose (r->results);
    for (int i = 0; i < r->n; i++) {
        spawn_destroy (r->t[i].accept);
        free (r->t[i].failed_on);
        free (r->t[i].injection_id);
        free (r->t[i].start);
        free (r->t[i].reason);
        cJSON_Delete (r->t[i].result);
        free (r->dependants[i]);
    }
    free (r->t);
    free (r->active);
    free (r->lat);
    free (r->dependants);
    free (r->ndependants);
    free (r->ready);
    free (r->nodes);
    inj_free_all (r);
    return rc;
}

/* vi: set ts=4 sw=4 expandtab: */
