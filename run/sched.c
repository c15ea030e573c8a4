/* sched.c - dispatching the ready tasks of a run to idle nodes, and
 * handling the router's events and replies
 *
 * The task graph moves here: the ready queue, the states of tasks and
 * their dependants (task_final, attempt_failed), the nodes of the swarm
 * (swarm_status, node events), and the injections of the run's turns.
 * One turn per attempt: an inject to one node (idempotency key
 * <run>/<task>/<attempt>), in the task's worktree (results.c) when the task
 * names a repository.  The loop's step, pump(), reads the router and runs
 * the timers.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fnv.h"
#include "common/json.h"
#include "common/log.h"
#include "run/private.h"

const char *const tstate_names[] = {
    "waiting", "ready", "running", "checking", "passed", "failed", "skipped",
};

/* ---- the injections of the run's turns ---------------------------------- */

struct inj *inj_get (struct run *r, const char *id, bool create)
{
    unsigned b = fnv1a_32 (id) % INJ_BUCKETS;
    struct inj *i;

    for (i = r->itab[b]; i; i = i->next) {
        if (!strcmp (i->id, id))
            return i;
    }
    if (!create || !(i = calloc (1, sizeof (*i))) || !(i->id = strdup (id))) {
        free (i);
        return NULL;
    }
    i->task = -1;
    i->next = r->itab[b];
    r->itab[b] = i;
    return i;
}

void inj_free_all (struct run *r)
{
    for (int b = 0; b < INJ_BUCKETS; b++) {
        struct inj *i = r->itab[b], *nx;
        for (; i; i = nx) {
            nx = i->next;
            free (i->id);
            free (i->status);
            free (i->error_code);
            free (i->error_msg);
            free (i->final);
            free (i->last);
            cJSON_Delete (i->usage);
            free (i);
        }
    }
}

void set_state (struct run *r, int i, enum tstate st)
{
    if (is_active (st) && !is_active (r->t[i].st))
        r->active[r->nactive++] = i;
    else if (!is_active (st) && is_active (r->t[i].st)) {
        for (int j = 0; j < r->nactive; j++) {
            if (r->active[j] == i) {
                r->active[j] = r->active[--r->nactive];
                break;
            }
        }
    }
    r->counts[r->t[i].st]--;
    r->t[i].st = st;
    r->counts[st]++;
    progress (r, false);
}

/* ---- task events through the router ----------------------------------- */

void publish (struct run *r, const char *event, int i, cJSON *extra)
{
    cJSON *p = cJSON_CreateObject ();
    cJSON *d = extra ? extra : cJSON_CreateObject ();

    if (!r->link || !p || !d) {
        cJSON_Delete (p);
        cJSON_Delete (d);
        return;
    }
    json_add_str (p, "swarm_id", r->o->swarm);
    json_add_str (p, "event", event);
    if (r->t[i].node >= 0)
        cJSON_AddNumberToObject (p, "node_id", r->t[i].node);
    json_add_str (d, "run_id", r->o->run_id);
    json_add_str (d, "task_id", r->tf->tasks[i].id);
    cJSON_AddNumberToObject (d, "attempt", r->t[i].attempt);
    if (r->t[i].injection_id)
        json_add_str (d, "injection_id", r->t[i].injection_id);
    json_add_item (p, "data", d);
    (void)link_send (r->link, "publish", "publish", p);
}

/* ---- the ready queue and the graph -------------------------------------- */

void ready_push (struct run *r, int i)
{
    if (r->nready == r->ready_cap) {
        int cap = r->ready_cap ? r->ready_cap * 2 : 64;
        int *n = realloc (r->ready, cap * sizeof (int));
        if (!n)
            log_msg_exit ("out of memory");
        r->ready = n;
        r->ready_cap = cap;
    }
    r->ready[r->nready++] = i;
    set_state (r, i, T_READY);
}

void skip_dependants (struct run *r, int i)
{
    for (int j = 0; j < r->ndependants[i]; j++) {
        int d = r->dependants[i][j];
        char why[200];
        if (r->t[d].st >= T_PASSED)
            continue;
        snprintf (why, sizeof (why), "dependency \"%s\" %s",
                  r->tf->tasks[i].id, tstate_names[r->t[i].st]);
        task_final (r, d, T_SKIPPED, why);
    }
}

/* A task is done for good: recorded, reported, its dependants moved on. */
void task_final (struct run *r, int i, enum tstate st,
                        const char *reason)
{
    struct trun *t = &r->t[i];
    const struct task *tk = &r->tf->tasks[i];
    cJSON *res = t->result ? t->result : cJSON_CreateObject ();
    cJSON *p;

    t->result = NULL;
    if (!res)
        log_msg_exit ("out of memory");
    cJSON_DeleteItemFromObject (res, "id");
    cJSON_DeleteItemFromObject (res, "status");
    json_add_str (res, "id", tk->id);
    json_add_str (res, "status", tstate_names[st]);
    cJSON_AddNumberToObject (res, "attempts", t->attempt);
    if (reason && !cJSON_GetObjectItem (res, "reason"))
        json_add_str (res, "reason", reason);
    else if (!reason)
        cJSON_DeleteItemFromObject (res, "reason");
    if (t->wall0 > 0) {
        json_add_double (res, "started", t->wall0);
        json_add_double (res, "finished", time_now ());
    }
    if ((p = cJSON_CreateObject ())) {
        json_add_str (p, "task", tk->id);
        json_add_item (p, "result", cJSON_Duplicate (res, 1));
        state_append (r, "task_done", p);
    }
    results_line (r, res);
    set_state (r, i, st);
    if (st != T_SKIPPED) {
        cJSON *d = cJSON_CreateObject ();
        const char *fa = dstr (res, "final_answer");
        json_add_str (d, "status", tstate_names[st]);
        if (fa)
            json_add_str (d, "last_agent_message", fa);
        if (reason)
            json_add_str (d, "reason", reason);
        publish (r, "task_complete", i, d);
    }
    if (st == T_PASSED)
        log_debug ("task %s passed", tk->id);
    else
        log_msg ("task %s %s: %s", tk->id, tstate_names[st],
                 reason ? reason : "?");
    cJSON_Delete (res);
    if (st == T_PASSED) {
        for (int j = 0; j < r->ndependants[i]; j++) {
            int d = r->dependants[i][j];
            if (--r->t[d].waitdeps == 0 && r->t[d].st == T_WAITING)
                ready_push (r, d);
        }
    }
    else
        skip_dependants (r, i);
}

/* The current attempt failed.  counted: against retries (a cut turn is
 * not, once).
 */
void attempt_failed (struct run *r, int i, const char *reason,
                            bool counted)
{
    struct trun *t = &r->t[i];
    const struct task *tk = &r->tf->tasks[i];
    cJSON *p = cJSON_CreateObject ();

    if (p) {
        json_add_str (p, "task", tk->id);
        cJSON_AddNumberToObject (p, "attempt", t->attempt);
        cJSON_AddNumberToObject (p, "node", t->node);
        json_add_str (p, "reason", reason);
        json_add_bool (p, "counted", counted);
        state_append (r, "task_attempt_failed", p);
    }
    if (t->node >= 0 && t->node < r->nnodes) {
        t->failed_on[t->node] = 1;
        if (r->nodes[t->node].task == i)
            r->nodes[t->node].task = -1;
    }
    set_str (&t->reason, reason);
    if (counted)
        t->failures++;
    else
        t->cuts++;
    if (t->failures > tk->retries) {
        char why[600];
        if (t->attempt > 1)
            snprintf (why, sizeof (why), "%s (attempt %d of %d)", reason,
                      t->attempt, tk->retries + 1 + t->cuts);
        else
            snprintf (why, sizeof (why), "%s", reason);
        t->node = -1;
        task_final (r, i, T_FAILED, why);
        return;
    }
    log_msg ("task %s: attempt %d on node %d failed: %s; %s", tk->id,
             t->attempt, t->node, reason, counted ? "retrying on another "
             "node" : "running it once more");
    cJSON_Delete (t->result);
    t->result = NULL;
    t->node = -1;
    ready_push (r, i);
}

static void dispatch (struct run *r, int i, int k)
{
    struct trun *t = &r->t[i];
    const struct task *tk = &r->tf->tasks[i];
    char dir[PATH_MAX] = "", key[256], rid[64];
    cJSON *p;
    cs_error_t e;

    t->attempt++;
    t->node = k;
    t->acked = false;
    t->interrupted = false;
    free (t->injection_id);
    t->injection_id = NULL;
    r->nodes[k].task = i;
    if (t->wall0 == 0)
        t->wall0 = time_now ();
    set_state (r, i, T_RUNNING);
    t->t0 = time_mono ();
    if (tk->repo && prepare_worktree (r, i, dir, sizeof (dir), &e) < 0) {
        attempt_failed (r, i, e.text, true);
        return;
    }
    snprintf (key, sizeof (key), "%s/%s/%d", r->o->run_id, tk->id,
              t->attempt);
    if ((p = cJSON_CreateObject ())) {
        json_add_str (p, "task", tk->id);
        cJSON_AddNumberToObject (p, "attempt", t->attempt);
        cJSON_AddNumberToObject (p, "node", k);
        if (t->start)
            json_add_str (p, "start", t->start);
        state_append (r, "task_dispatched", p);
    }
    snprintf (rid, sizeof (rid), "t%d.%d", i, t->attempt);
    if (!(p = cJSON_CreateObject ()))
        log_msg_exit ("out of memory");
    json_add_str (p, "swarm_id", r->o->swarm);
    json_add_item (p, "nodes", cJSON_CreateIntArray (&k, 1));
    json_add_str (p, "content", tk->prompt);
    json_add_str (p, "idempotency_key", key);
    if (*dir)
        json_add_str (p, "cwd", dir);
    if (tk->fresh_thread)
        json_add_bool (p, "new_thread", true);
    log_debug ("task %s attempt %d -> node %d", tk->id, t->attempt, k);
    if (link_send (r->link, "inject", rid, p) < 0)
        log_err ("cannot write to the router");
    if (r->nodes[k].idle_since > 0) {
        if (r->nlat == r->lat_cap) {
            int cap = r->lat_cap ? r->lat_cap * 2 : 256;
            double *n = realloc (r->lat, cap * sizeof (double));
            if (n) {
                r->lat = n;
                r->lat_cap = cap;
            }
        }
        if (r->nlat < r->lat_cap)
            r->lat[r->nlat++] = time_mono () - r->nodes[k].idle_since;
        r->nodes[k].idle_since = 0;
    }
    publish (r, "task_started", i, NULL);
}

/* Resend the inject of an attempt found running after a restart: the
 * router answers "duplicate" with its injection id (or injects it now if
 * it never got it).
 */
void redispatch (struct run *r, int i)
{
    struct trun *t = &r->t[i];
    const struct task *tk = &r->tf->tasks[i];
    char key[256], rid[64], dir[PATH_MAX];
    cJSON *p = cJSON_CreateObject ();

    snprintf (key, sizeof (key), "%s/%s/%d", r->o->run_id, tk->id,
              t->attempt);
    snprintf (rid, sizeof (rid), "t%d.%d", i, t->attempt);
    snprintf (dir, sizeof (dir), "%s/work/%s", r->out, tk->id);
    json_add_str (p, "swarm_id", r->o->swarm);
    json_add_item (p, "nodes", cJSON_CreateIntArray (&t->node, 1));
    json_add_str (p, "content", tk->prompt);
    json_add_str (p, "idempotency_key", key);
    if (tk->repo)
        json_add_str (p, "cwd", dir);
    if (tk->fresh_thread)
        json_add_bool (p, "new_thread", true);
    if (link_send (r->link, "inject", rid, p) < 0)
        log_err ("cannot write to the router");
}

/* The turn of the current attempt of task i ended (in: its summary). */
void turn_done (struct run *r, int i, struct inj *in)
{
    struct trun *t = &r->t[i];
    char why[600];

    if (t->node >= 0 && r->nodes[t->node].task == i) {
        r->nodes[t->node].task = -1;
        r->nodes[t->node].idle_since = time_mono ();
    }
    if (in->status && !strcmp (in->status, "completed")) {
        after_turn (r, i, in);
        return;
    }
    if (t->interrupted) {
        snprintf (why, sizeof (why), "timed out after %gs",
                  r->tf->tasks[i].timeout);
        attempt_failed (r, i, why, true);
        return;
    }
    snprintf (why, sizeof (why), "turn %s%s%s",
              in->status ? in->status : "ended",
              in->error_msg ? ": " : "", in->error_msg ? in->error_msg : "");
    /* a turn cut by a worker restart, or interrupted by someone else (the
     * workers of a persistent swarm interrupt their turns at the walltime
     * warning), runs once more */
    {
        bool cut = (in->error_code && !strcmp (in->error_code,
                                               "turn_aborted"))
                   || (in->status && !strcmp (in->status, "interrupted"));
        attempt_failed (r, i, why, !(cut && t->cuts == 0));
    }
}

void bind_injection (struct run *r, int i, int attempt,
                            const char *id)
{
    struct trun *t = &r->t[i];
    struct inj *in;
    cJSON *p;

    if (t->attempt != attempt || t->st != T_RUNNING || t->acked)
        return;
    if (!(in = inj_get (r, id, true)))
        log_msg_exit ("out of memory");
    in->task = i;
    in->attempt = attempt;
    t->acked = true;
    set_str (&t->injection_id, id);
    if ((p = cJSON_CreateObject ())) {
        json_add_str (p, "task", r->tf->tasks[i].id);
        cJSON_AddNumberToObject (p, "attempt", attempt);
        json_add_str (p, "injection_id", id);
        state_append (r, "task_acked", p);
    }
    if (in->complete)
        turn_done (r, i, in);
}

/* ---- messages from the router -------------------------------------------- */

static void on_swarm_status (struct run *r, const cJSON *d)
{
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive (d, "nodes");
    const cJSON *n;
    int count = dint (d, "node_count", 0);

    r->status_pending = false;
    r->status_done = true;
    if (cJSON_GetArraySize (nodes) > count)
        count = cJSON_GetArraySize (nodes);
    if (count > r->nnodes) {
        struct node *nn = realloc (r->nodes, count * sizeof (*nn));
        if (!nn)
            log_msg_exit ("out of memory");
        for (int k = r->nnodes; k < count; k++)
            nn[k] = (struct node){ .up = false, .task = -1 };
        r->nodes = nn;
        for (int i = 0; i < r->n; i++) {
            unsigned char *f = realloc (r->t[i].failed_on, count);
            if (!f)
                log_msg_exit ("out of memory");
            memset (f + r->nnodes, 0, count - r->nnodes);
            r->t[i].failed_on = f;
        }
        r->nnodes = count;
    }
    cJSON_ArrayForEach (n, nodes) {
        int k = dint (n, "node_id", -1);
        const char *st = dstr (n, "state");
        const cJSON *ta = cJSON_GetObjectItemCaseSensitive (n, "turn_active");
        if (k < 0 || k >= r->nnodes || !st)
            continue;
        r->nodes[k].up = !strcmp (st, "ready") || !strcmp (st, "busy");
        r->nodes[k].foreign = cJSON_IsTrue (ta) && r->nodes[k].task < 0;
    }
}

static void on_event (struct run *r, const char *name, const cJSON *d)
{
    const char *sw = dstr (d, "swarm_id");
    const char *iid = dstr (d, "injection_id");
    int k = dint (d, "node_id", -1);
    struct inj *in;

    if (!sw || strcmp (sw, r->o->swarm) != 0)
        return;
    if (k >= 0 && k < r->nnodes) {
        if (!strcmp (name, "node_ready"))
            r->nodes[k].up = true;
        else if (!strcmp (name, "node_stopped") || !strcmp (name, "node_lost"))
            r->nodes[k].up = false;
        else if (!strcmp (name, "turn_complete") && r->nodes[k].task < 0)
            r->nodes[k].foreign = false;
    }
    if (!iid)
        return;
    if (strcmp (name, "assistant") && strcmp (name, "usage")
        && strcmp (name, "turn_complete"))
        return;
    if (!(in = inj_get (r, iid, true)))
        log_msg_exit ("out of memory");
    if (in->complete)
        return;
    if (!strcmp (name, "assistant")) {
        const cJSON *fa = cJSON_GetObjectItemCaseSensitive (d, "final_answer");
        set_str (&in->last, dstr (d, "text"));
        if (cJSON_IsTrue (fa))
            set_str (&in->final, dstr (d, "text"));
    }
    else if (!strcmp (name, "usage")) {
        static const char *const keys[] = {
            "total_tokens", "input_tokens", "cached_input_tokens",
            "output_tokens", "reasoning_output_tokens", NULL,
        };
        cJSON *u = cJSON_CreateObject ();
        for (int j = 0; u && keys[j]; j++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive (d, keys[j]);
            if (cJSON_IsNumber (v))
                cJSON_AddNumberToObject (u, keys[j], v->valuedouble);
        }
        cJSON_Delete (in->usage);
        in->usage = u;
    }
    else {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive (d, "error");
        in->complete = true;
        set_str (&in->status, dstr (d, "status"));
        if (cJSON_IsObject (err)) {
            set_str (&in->error_code, dstr (err, "code"));
            set_str (&in->error_msg, dstr (err, "message"));
        }
        if (in->task >= 0 && r->t[in->task].attempt == in->attempt
            && r->t[in->task].st == T_RUNNING)
            turn_done (r, in->task, in);
    }
}

void on_message (struct run *r, cJSON *o)
{
    const char *name = dstr (o, "event");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive (o, "data");
    const char *rid = dstr (d, "request_id");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive (o, "seq");
    int i, attempt;

    if (!name || !cJSON_IsObject (d))
        return;
    if (rid && !cJSON_IsNumber (seq)) {
        /* a reply to one of our commands */
        if (!strcmp (rid, "hello")) {
            if (!strcmp (name, "hello")) {
                if (!r->started)
                    r->since = (uint64_t)dint (d, "seq", 0);
                r->hello_done = true;
            }
            else
                log_msg_exit ("the router refused hello: %s",
                              dstr (d, "reason") ? dstr (d, "reason") : name);
            return;
        }
        if (!strcmp (rid, "status")) {
            if (!strcmp (name, "swarm_status"))
                on_swarm_status (r, d);
            else {
                const char *code = dstr (d, "code");
                r->status_pending = false;
                /* in a batch job the workers may not have made the swarm
                 * yet: wait for it a while */
                if (!r->status_done && code && !strcmp (code, "unknown_swarm")
                    && time_mono () - r->t_begin < SWARM_WAIT)
                    return;
                log_msg ("swarm_status refused: %s", dstr (d, "reason")
                         ? dstr (d, "reason") : name);
                if (!r->status_done)
                    log_msg_exit ("no swarm '%s' to run on", r->o->swarm);
            }
            return;
        }
        if (!strcmp (rid, "publish"))
            return;             /* events of our own, or an older router */
        if (sscanf (rid, "t%d.%d", &i, &attempt) != 2 || i < 0 || i >= r->n)
            return;
        if (!strcmp (name, "inject_ack"))
            bind_injection (r, i, attempt, dstr (d, "injection_id"));
        else if (!strcmp (name, "command_rejected")) {
            const char *code = dstr (d, "code");
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive (d,
                                                                "injections");
            const cJSON *first = cJSON_GetArrayItem (ids, 0);
            if (code && !strcmp (code, "duplicate") && dstr (first,
                                                             "injection_id"))
                bind_injection (r, i, attempt, dstr (first, "injection_id"));
            else if (r->t[i].attempt == attempt
                     && r->t[i].st == T_RUNNING) {
                char why[400];
                snprintf (why, sizeof (why), "the router refused the "
                          "inject: %s", dstr (d, "reason") ? dstr (d, "reason")
                          : "?");
                attempt_failed (r, i, why, true);
            }
        }
        return;
    }
    on_event (r, name, d);
}

/* ---- scheduling ------------------------------------------------------------ */

bool node_idle (struct run *r, int k)
{
    return r->nodes[k].up && !r->nodes[k].foreign && r->nodes[k].task < 0;
}

/* May task i go to node k?  Not to a node it failed on while another
 * allowed node it has not failed on is up.
 */
static bool task_fits (struct run *r, int i, int k)
{
    const struct task *tk = &r->tf->tasks[i];

    if (!tasks_node_allowed (tk->nodes, k))
        return false;
    if (!r->t[i].failed_on[k])
        return true;
    for (int j = 0; j < r->nnodes; j++) {
        if (j != k && r->nodes[j].up && !r->t[i].failed_on[j]
            && tasks_node_allowed (tk->nodes, j))
            return false;
    }
    return true;
}

void schedule (struct run *r)
{
    if (stop_signal)
        return;
    for (int k = 0; k < r->nnodes; k++) {
        if (!node_idle (r, k))
            continue;
        /* skip what left the queue */
        while (r->ready_head < r->nready
               && r->t[r->ready[r->ready_head]].st != T_READY)
            r->ready_head++;
        for (int q = r->ready_head; q < r->nready; q++) {
            int i = r->ready[q];
            if (r->t[i].st != T_READY || !task_fits (r, i, k))
                continue;
            dispatch (r, i, k);
            break;
        }
    }
}

/* Timeouts of turns; accept commands (results.c). */
static void tick (struct run *r)
{
    double now = time_mono ();

    for (int ai = r->nactive - 1; ai >= 0; ai--) {
        int i = r->active[ai];
        struct trun *t = &r->t[i];
        const struct task *tk = &r->tf->tasks[i];
        if (t->st == T_RUNNING && tk->timeout > 0 && !t->interrupted
            && now - t->t0 > tk->timeout && t->node >= 0) {
            cJSON *p = cJSON_CreateObject ();
            json_add_str (p, "swarm_id", r->o->swarm);
            json_add_item (p, "nodes", cJSON_CreateIntArray (&t->node, 1));
            log_msg ("task %s: over its timeout of %gs: interrupting",
                     tk->id, tk->timeout);
            (void)link_send (r->link, "interrupt", "interrupt", p);
            t->interrupted = true;
        }
        if (t->st == T_CHECKING && t->accept)
            accept_check (r, i, now);
    }
}

/* ---- the loop ------------------------------------------------------------ */

/* Wait up to timeout_ms for the router, handle what came, run timers. */
int pump (struct run *r, int timeout_ms)
{
    struct pollfd pfd = { .fd = link_fd (r->link), .events = POLLIN };
    cJSON *o;
    int n;

    if (pfd.fd < 0)
        return -1;
    if (r->nchecking > 0 && (timeout_ms < 0 || timeout_ms > 50))
        timeout_ms = 50;
    n = poll (&pfd, 1, timeout_ms);
    if (n < 0 && errno != EINTR)
        return -1;
    if (n > 0 && link_read (r->link) < 0)
        return -1;
    while ((o = link_next (r->link))) {
        on_message (r, o);
        cJSON_Delete (o);
    }
    tick (r);
    if (link_eof (r->link))
        return -1;
    return 0;
}

void ask_status (struct run *r)
{
    cJSON *p = cJSON_CreateObject ();

    json_add_str (p, "swarm_id", r->o->swarm);
    r->status_pending = true;
    r->status_at = time_mono ();
    if (link_send (r->link, "swarm_status", "status", p) < 0)
        log_err ("cannot write to the router");
}

static int cmp_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* -v: the run's own dispatch overhead, from a node going idle (its turn's
 * turn_complete handled) to the inject of its next task written */
void lat_report (struct run *r)
{
    if (r->nlat == 0)
        return;
    qsort (r->lat, r->nlat, sizeof (double), cmp_double);
    log_debug ("dispatch overhead (node idle -> next inject sent): %d "
               "dispatches, p50 %.3f ms, p99 %.3f ms, max %.3f ms", r->nlat,
               r->lat[(r->nlat - 1) / 2] * 1000,
               r->lat[(r->nlat * 99 + 99) / 100 - 1] * 1000,
               r->lat[r->nlat - 1] * 1000);
}

/* vi: set ts=4 sw=4 expandtab: */
