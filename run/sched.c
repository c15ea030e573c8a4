/* sched.c - a run of a task graph over the nodes of a swarm
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
 *
 * One turn per attempt: an inject to one node (idempotency key
 * <run>/<task>/<attempt>), in the task's worktree <output>/work/<task> on
 * branch codeswarm/<run>/<task> when the task names a repository.  After
 * the turn the run commits what the agent left uncommitted, records the
 * commits and diff stat, and runs the accept command there.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "mailbox/mailbox.h"
#include "run/run.h"

enum tstate {
    T_WAITING = 0,      /* dependencies not done */
    T_READY,            /* in the ready queue */
    T_RUNNING,          /* its turn is on a node */
    T_CHECKING,         /* the accept command runs */
    T_PASSED,
    T_FAILED,
    T_SKIPPED,
};

static const char *const tstate_names[] = {
    "waiting", "ready", "running", "checking", "passed", "failed", "skipped",
};

struct trun {
    enum tstate st;
    int attempt;            /* attempts dispatched so far */
    int failures;           /* attempts that count against retries */
    int cuts;               /* attempts cut short (turn_aborted) */
    int node;               /* node of the current attempt, or -1 */
    int waitdeps;           /* dependencies not yet passed */
    unsigned char *failed_on;  /* nodes an attempt failed on */
    char *injection_id;
    char *start;            /* commit the attempt started from */
    char *reason;           /* why the last attempt failed */
    double t0;              /* monotonic start of the attempt */
    double wall0;           /* wall-clock start of the task */
    bool interrupted;       /* timeout: interrupt sent */
    bool acked;
    spawn_t *accept;
    int accept_code;
    cJSON *result;          /* the result being built */
};

struct inj {
    char *id;
    int task;               /* -1 until an ack binds it */
    int attempt;
    bool complete;
    char *status;
    char *error_code;
    char *error_msg;
    char *final;
    char *last;             /* last assistant text */
    cJSON *usage;
    struct inj *next;
};

#define INJ_BUCKETS 4096
#define SWARM_WAIT 300.0        /* seconds to wait for the swarm to appear */

struct node {
    double idle_since;      /* monotonic: when our last turn on it ended */
    bool up;
    bool foreign;           /* running a turn that is not ours */
    int task;               /* our task on it, or -1 */
};

struct run {
    const struct run_opts *o;
    taskfile_t *tf;
    int n;
    struct trun *t;
    int **dependants;
    int *ndependants;
    int *ready;             /* queue of task indexes */
    int nready, ready_head, ready_cap;
    struct node *nodes;
    int nnodes;
    link_t *link;
    mb_writer_t *state;
    FILE *results;
    char out[2048];             /* the output directory, absolute */
    uint64_t since;
    bool started;           /* run_started is in the stream */
    struct inj *itab[INJ_BUCKETS];
    int counts[T_SKIPPED + 1];
    double *lat;            /* dispatch overheads (s), node idle -> inject */
    int nlat, lat_cap;
    int *active;            /* tasks running or checking (at most n) */
    int nactive;
    int nchecking;
    double t_begin;
    double busy_sum;        /* seconds of finished attempts */
    int busy_n;
    bool status_pending;
    double status_at;
    bool hello_done;
    bool status_done;
    double progress_at;
    bool progress_shown;
};

static volatile sig_atomic_t stop_signal;

static void on_signal (int sig)
{
    stop_signal = sig;
}

/* ---- small helpers ------------------------------------------------------- */

static void set_str (char **dst, const char *src)
{
    char *n = src ? strdup (src) : NULL;
    free (*dst);
    *dst = n;
}

static unsigned hash_str (const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static struct inj *inj_get (struct run *r, const char *id, bool create)
{
    unsigned b = hash_str (id) % INJ_BUCKETS;
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

static void inj_free_all (struct run *r)
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

static const char *dstr (const cJSON *d, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (d, key);
    return cJSON_IsString (v) ? v->valuestring : NULL;
}

static int dint (const cJSON *d, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (d, key);
    return cJSON_IsNumber (v) ? v->valueint : dflt;
}

static void branch_name (struct run *r, const char *task, char *buf,
                         size_t len)
{
    snprintf (buf, len, "codeswarm/%s/%s", r->o->run_id, task);
}

static void state_append (struct run *r, const char *type, cJSON *p)
{
    cs_error_t e;

    if (mb_writer_append (r->state, type, p, NULL, &e) < 0)
        log_msg ("cannot record %s in the state stream: %s", type, e.text);
    cJSON_Delete (p);
}

/* ---- progress ------------------------------------------------------------ */

static void fmt_secs (double s, char *buf, size_t len)
{
    long v = (long)(s + 0.5);
    if (v >= 3600)
        snprintf (buf, len, "%ldh%02ldm", v / 3600, (v % 3600) / 60);
    else if (v >= 60)
        snprintf (buf, len, "%ldm%02lds", v / 60, v % 60);
    else
        snprintf (buf, len, "%lds", v);
}

static void progress (struct run *r, bool force)
{
    double now = time_mono ();
    int done = r->counts[T_PASSED];
    int failed = r->counts[T_FAILED] + r->counts[T_SKIPPED];
    int running = r->counts[T_RUNNING] + r->counts[T_CHECKING];
    int waiting = r->counts[T_WAITING] + r->counts[T_READY];
    char eta[32] = "?";
    int up = 0;

    if (!r->o->progress || (!force && now - r->progress_at < 0.2))
        return;
    r->progress_at = now;
    for (int k = 0; k < r->nnodes; k++)
        up += r->nodes[k].up;
    if (r->busy_n > 0 && up > 0) {
        double left = (r->busy_sum / r->busy_n) * (waiting + running)
                      / (up < waiting + running ? up : (waiting + running
                                                         ? waiting + running
                                                         : 1));
        fmt_secs (left, eta, sizeof (eta));
    }
    fprintf (stderr, "\r\033[K%s: %d/%d done, %d running, %d failed, "
             "%d waiting, %s left", r->o->run_id, done, r->n, running, failed,
             waiting, eta);
    fflush (stderr);
    r->progress_shown = true;
}

static void progress_end (struct run *r)
{
    if (r->progress_shown) {
        progress (r, true);
        fputc ('\n', stderr);
        r->progress_shown = false;
    }
}

static bool is_active (enum tstate st)
{
    return st == T_RUNNING || st == T_CHECKING;
}

static void set_state (struct run *r, int i, enum tstate st)
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

static void publish (struct run *r, const char *event, int i, cJSON *extra)
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

static void ready_push (struct run *r, int i)
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

static void results_line (struct run *r, const cJSON *res)
{
    char *s = json_print (res);
    if (s) {
        fprintf (r->results, "%s\n", s);
        fflush (r->results);
        free (s);
    }
}

static void task_final (struct run *r, int i, enum tstate st,
                        const char *reason);

static void skip_dependants (struct run *r, int i)
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
static void task_final (struct run *r, int i, enum tstate st,
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
static void attempt_failed (struct run *r, int i, const char *reason,
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
                      t->attempt, tk->retries + 1);
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

/* ---- an attempt --------------------------------------------------------- */

/* Worktree <out>/work/<task> on codeswarm/<run>/<task> from the base, with
 * the branches of its passed dependencies (same repository) merged in.
 */
static int prepare_worktree (struct run *r, int i, char *dir, size_t len,
                             cs_error_t *errp)
{
    const struct task *tk = &r->tf->tasks[i];
    char branch[256];
    char *head = NULL;
    struct stat sb;

    snprintf (dir, len, "%s/work/%s", r->out, tk->id);
    branch_name (r, tk->id, branch, sizeof (branch));
    if (stat (dir, &sb) == 0) {
        if (git_run (tk->repo, NULL, errp, "worktree", "remove", "--force",
                     dir, NULL) < 0)
            return -1;
    }
    (void)git_run (tk->repo, NULL, NULL, "worktree", "prune", NULL);
    if (git_run (tk->repo, NULL, errp, "worktree", "add", "-q", "-f", "-B",
                 branch, dir, tk->base, NULL) < 0)
        return -1;
    for (int j = 0; j < tk->ndeps; j++) {
        const struct task *dt = &r->tf->tasks[tk->dep[j]];
        char db[256];
        if (!dt->repo || strcmp (dt->repo, tk->repo) != 0)
            continue;
        branch_name (r, dt->id, db, sizeof (db));
        if (git_run (dir, NULL, errp, "-c", "user.name=codeswarm",
                     "-c", "user.email=codeswarm@localhost", "merge", "-q",
                     "--no-edit", db, NULL) < 0) {
            (void)git_run (dir, NULL, NULL, "merge", "--abort", NULL);
            return errprintf (errp, "cannot merge the branch of dependency "
                              "\"%s\": %s", dt->id, errp->text);
        }
    }
    if (git_run (dir, &head, errp, "rev-parse", "HEAD", NULL) < 0)
        return -1;
    set_str (&r->t[i].start, git_chomp (head));
    free (head);
    return 0;
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
static void redispatch (struct run *r, int i)
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

/* The turn is over and succeeded: commit, collect, accept. */
static void after_turn (struct run *r, int i, struct inj *in)
{
    struct trun *t = &r->t[i];
    const struct task *tk = &r->tf->tasks[i];
    cJSON *res = cJSON_CreateObject ();
    char dir[PATH_MAX], branch[256], logp[PATH_MAX];
    cs_error_t e;

    if (!res)
        log_msg_exit ("out of memory");
    cJSON_Delete (t->result);
    t->result = res;
    cJSON_AddNumberToObject (res, "node", t->node);
    if (t->injection_id)
        json_add_str (res, "injection_id", t->injection_id);
    if (in->final || in->last)
        json_add_str (res, "final_answer", in->final ? in->final : in->last);
    else
        cJSON_AddNullToObject (res, "final_answer");
    if (in->usage)
        json_add_item (res, "usage", cJSON_Duplicate (in->usage, 1));
    json_add_double (res, "turn_seconds", time_mono () - t->t0);
    r->busy_sum += time_mono () - t->t0;
    r->busy_n++;
    snprintf (dir, sizeof (dir), "%s/work/%s", r->out, tk->id);
    if (tk->repo) {
        char *st = NULL, *out = NULL;
        cJSON *commits;
        branch_name (r, tk->id, branch, sizeof (branch));
        json_add_str (res, "branch", branch);
        json_add_str (res, "workdir", dir);
        if (git_run (dir, &st, &e, "status", "--porcelain", NULL) < 0) {
            attempt_failed (r, i, e.text, true);
            return;
        }
        if (*st) {
            char msg[400];
            snprintf (msg, sizeof (msg), "%s (codeswarm run %s)", tk->id,
                      r->o->run_id);
            if (git_run (dir, NULL, &e, "add", "-A", NULL) < 0
                || git_run (dir, NULL, &e, "-c", "user.name=codeswarm",
                            "-c", "user.email=codeswarm@localhost",
                            "commit", "-q", "-m", msg, NULL) < 0) {
                free (st);
                attempt_failed (r, i, e.text, true);
                return;
            }
        }
        free (st);
        commits = cJSON_CreateArray ();
        if (t->start) {
            char range[200];
            snprintf (range, sizeof (range), "%s..HEAD", t->start);
            if (git_run (dir, &out, &e, "rev-list", "--reverse", range,
                         NULL) == 0) {
                char *save = NULL, *c;
                for (c = strtok_r (out, "\n", &save); c;
                     c = strtok_r (NULL, "\n", &save))
                    cJSON_AddItemToArray (commits, cJSON_CreateString (c));
            }
            free (out);
            out = NULL;
            if (git_run (dir, &out, &e, "diff", "--shortstat", t->start,
                         "HEAD", NULL) == 0) {
                const char *s = out;
                while (*s == ' ')
                    s++;
                json_add_str (res, "diffstat", git_chomp ((char *)s));
            }
            free (out);
            out = NULL;
            if (git_run (dir, &out, &e, "rev-parse", "HEAD", NULL) == 0)
                json_add_str (res, "head", git_chomp (out));
            free (out);
        }
        json_add_item (res, "commits", commits);
    }
    if (tk->accept && *tk->accept) {
        snprintf (logp, sizeof (logp), "%s/logs/%s.%d.accept.log", r->out,
                  tk->id, t->attempt);
        if (!(t->accept = accept_start (tk->accept, tk->repo ? dir : r->out,
                                        logp, &e))) {
            attempt_failed (r, i, e.text, true);
            return;
        }
        t->t0 = time_mono ();
        set_state (r, i, T_CHECKING);
        r->nchecking++;
        return;
    }
    task_final (r, i, T_PASSED, NULL);
}

/* The turn of the current attempt of task i ended (in: its summary). */
static void turn_done (struct run *r, int i, struct inj *in)
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

static void bind_injection (struct run *r, int i, int attempt,
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

static void on_message (struct run *r, cJSON *o)
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

static bool node_idle (struct run *r, int k)
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

static void schedule (struct run *r)
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

/* Timeouts of turns and accept commands; finished accept commands. */
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
        if (t->st == T_CHECKING && t->accept) {
            struct spawn_status st;
            char sb[64], why[200];
            if (tk->timeout > 0 && now - t->t0 > tk->timeout
                && !t->interrupted) {
                (void)spawn_kill (t->accept, SIGKILL);
                t->interrupted = true;
            }
            if (spawn_poll (t->accept, &st) != 1)
                continue;
            spawn_destroy (t->accept);
            t->accept = NULL;
            r->nchecking--;
            {
                cJSON *a = cJSON_CreateObject ();
                json_add_str (a, "command", tk->accept);
                if (st.exited)
                    cJSON_AddNumberToObject (a, "exit_code", st.code);
                else
                    cJSON_AddNullToObject (a, "exit_code");
                json_add_bool (a, "passed", st.exited && st.code == 0);
                {
                    char logp[PATH_MAX];
                    snprintf (logp, sizeof (logp), "%s/logs/%s.%d.accept.log",
                              r->out, tk->id, t->attempt);
                    json_add_str (a, "log", logp);
                }
                json_add_item (t->result, "accept", a);
            }
            if (st.exited && st.code == 0) {
                task_final (r, i, T_PASSED, NULL);
                continue;
            }
            if (t->interrupted)
                snprintf (why, sizeof (why), "accept command timed out");
            else
                snprintf (why, sizeof (why), "accept command failed (%s)",
                          spawn_status_str (&st, sb, sizeof (sb)));
            /* the attempt ran on node t->node; the node is free already */
            attempt_failed (r, i, why, true);
        }
    }
}

/* ---- the state stream ------------------------------------------------------ */

static int find_task (struct run *r, const cJSON *p)
{
    const char *id = dstr (p, "task");
    return id ? taskfile_find (r->tf, id) : -1;
}

/* Replay <out>/state/run.jsonl into r. */
static int replay (struct run *r, const char *path, const char *digest,
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

/* results.jsonl from the finished tasks of the replay (then appended to). */
static int results_open (struct run *r, cs_error_t *errp)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    FILE *f;

    snprintf (path, sizeof (path), "%s/results.jsonl", r->out);
    snprintf (tmp, sizeof (tmp), "%s.tmp", path);
    if (!(f = fopen (tmp, "we")))
        return errprintf (errp, "cannot create '%s': %s", tmp,
                          strerror (errno));
    for (int q = 0; q < r->n; q++) {
        int i = r->tf->order[q];
        char *s;
        if (r->t[i].st < T_PASSED || !r->t[i].result)
            continue;
        if ((s = json_print (r->t[i].result))) {
            fprintf (f, "%s\n", s);
            free (s);
        }
    }
    if (fflush (f) != 0 || fsync (fileno (f)) < 0 || fclose (f) != 0
        || rename (tmp, path) < 0)
        return errprintf (errp, "cannot write '%s': %s", path,
                          strerror (errno));
    if (!(r->results = fopen (path, "ae")))
        return errprintf (errp, "cannot open '%s': %s", path,
                          strerror (errno));
    return 0;
}

static void digest_of (const taskfile_t *tf, char *buf, size_t len)
{
    unsigned long long h = 1469598103934665603ULL;
    for (int i = 0; i < tf->ntasks; i++) {
        const struct task *t = &tf->tasks[i];
        const char *parts[] = { t->id, t->prompt, t->repo ? t->repo : "",
                                t->base ? t->base : "",
                                t->accept ? t->accept : "" };
        for (size_t p = 0; p < sizeof (parts) / sizeof (parts[0]); p++) {
            for (const char *s = parts[p]; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
            h = (h ^ 0xff) * 1099511628211ULL;
        }
        for (int j = 0; j < t->ndeps; j++) {
            for (const char *s = t->deps[j]; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
            h = (h ^ 0xfe) * 1099511628211ULL;
        }
    }
    snprintf (buf, len, "%016llx", h);
}

/* ---- the loop ------------------------------------------------------------ */

/* Wait up to timeout_ms for the router, handle what came, run timers. */
static int pump (struct run *r, int timeout_ms)
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

static void ask_status (struct run *r)
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
static void lat_report (struct run *r)
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

static bool all_final (struct run *r)
{
    return r->counts[T_PASSED] + r->counts[T_FAILED] + r->counts[T_SKIPPED]
           == r->n;
}

/* The turn of a conflict resolution: 0 when it completed. */
static int resolve_conflict (struct run *r, const char *dir, const char *task,
                             const char *conflict, char **answer)
{
    char prompt[8192], key[256];
    int k = -1;
    struct inj *in = NULL;
    char *iid = NULL;
    double t0 = time_mono ();

    snprintf (prompt, sizeof (prompt),
              "Merging branch codeswarm/%s/%s into the integration branch "
              "codeswarm/%s/integration (this directory) stopped on "
              "conflicts.  Resolve them so that both sides' intent is kept, "
              "then stage the files (git add); the merge is committed for "
              "you.\n\n%s", r->o->run_id, task, r->o->run_id, conflict);
    snprintf (key, sizeof (key), "%s/integrate-%s/%.0f", r->o->run_id, task,
              time_now ());
    while (k < 0) {
        for (int j = 0; j < r->nnodes && k < 0; j++) {
            if (node_idle (r, j))
                k = j;
        }
        if (k >= 0 || stop_signal)
            break;
        if (!r->status_pending && time_mono () - r->status_at > 2)
            ask_status (r);
        if (pump (r, 500) < 0)
            return -1;
    }
    if (k < 0)
        return -1;
    {
        cJSON *p = cJSON_CreateObject ();
        json_add_str (p, "swarm_id", r->o->swarm);
        json_add_item (p, "nodes", cJSON_CreateIntArray (&k, 1));
        json_add_str (p, "content", prompt);
        json_add_str (p, "idempotency_key", key);
        json_add_str (p, "cwd", dir);
        json_add_bool (p, "new_thread", true);
        if (link_send (r->link, "inject", "integrate", p) < 0)
            return -1;
    }
    r->nodes[k].task = r->n;    /* busy with something of ours */
    log_msg ("integration: a conflict merging '%s' goes to node %d", task, k);
    while (!stop_signal && time_mono () - t0 < 3600) {
        cJSON *o;
        struct pollfd pfd = { .fd = link_fd (r->link), .events = POLLIN };
        if (pfd.fd < 0 || poll (&pfd, 1, 500) < 0 || link_read (r->link) < 0)
            break;
        while ((o = link_next (r->link))) {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive (o, "data");
            const char *rid = dstr (d, "request_id");
            const char *name = dstr (o, "event");
            if (rid && !strcmp (rid, "integrate") && name) {
                if (!strcmp (name, "inject_ack"))
                    set_str (&iid, dstr (d, "injection_id"));
                else if (!strcmp (name, "command_rejected")) {
                    cJSON_Delete (o);
                    goto out;
                }
            }
            else
                on_message (r, o);
            cJSON_Delete (o);
        }
        if (iid && (in = inj_get (r, iid, false)) && in->complete)
            break;
        in = NULL;
    }
out:
    r->nodes[k].task = -1;
    free (iid);
    if (!in || !in->status || strcmp (in->status, "completed") != 0)
        return -1;
    *answer = in->final ? strdup (in->final) : NULL;
    return 0;
}

/* Merge the passed branches of each repository into
 * codeswarm/<run>/integration, in dependency order.  0 when all merged.
 */
static int integrate (struct run *r)
{
    bool *done_repo = calloc (r->n, sizeof (bool));
    int failures = 0;

    if (!done_repo)
        log_msg_exit ("out of memory");
    for (int q = 0; q < r->n; q++) {
        int first = r->tf->order[q];
        const struct task *ft = &r->tf->tasks[first];
        char dir[PATH_MAX], branch[256];
        cJSON *res, *merged, *conflicts;
        cs_error_t e;
        int nrepo = 0;

        if (!ft->repo || done_repo[first])
            continue;
        for (int j = 0; j < r->n; j++) {
            if (r->tf->tasks[j].repo && !strcmp (r->tf->tasks[j].repo,
                                                 ft->repo))
                done_repo[j] = true;
        }
        for (int j = 0; j < q; j++)
            nrepo += r->tf->tasks[r->tf->order[j]].repo != NULL;
        snprintf (dir, sizeof (dir), "%s/work/_integration%s", r->out,
                  nrepo ? "" : "");
        branch_name (r, "integration", branch, sizeof (branch));
        res = cJSON_CreateObject ();
        merged = cJSON_CreateArray ();
        conflicts = cJSON_CreateArray ();
        json_add_str (res, "id", "integration");
        json_add_str (res, "repo", ft->repo);
        json_add_str (res, "branch", branch);
        (void)git_run (ft->repo, NULL, NULL, "worktree", "remove", "--force",
                       dir, NULL);
        (void)git_run (ft->repo, NULL, NULL, "worktree", "prune", NULL);
        if (git_run (ft->repo, NULL, &e, "worktree", "add", "-q", "-f", "-B",
                     branch, dir, ft->base, NULL) < 0) {
            json_add_str (res, "status", "failed");
            json_add_str (res, "reason", e.text);
            failures++;
            goto record;
        }
        for (int p = 0; p < r->n; p++) {
            int i = r->tf->order[p];
            const struct task *tk = &r->tf->tasks[i];
            char tb[256];
            if (!tk->repo || strcmp (tk->repo, ft->repo) != 0
                || r->t[i].st != T_PASSED)
                continue;
            branch_name (r, tk->id, tb, sizeof (tb));
            if (git_run (dir, NULL, &e, "-c", "user.name=codeswarm",
                         "-c", "user.email=codeswarm@localhost", "merge",
                         "-q", "--no-edit", tb, NULL) == 0) {
                cJSON_AddItemToArray (merged, cJSON_CreateString (tk->id));
                continue;
            }
            /* a conflict: one more turn for an agent */
            {
                char *st = NULL, *answer = NULL, *unmerged = NULL;
                cJSON *c = cJSON_CreateObject ();
                (void)git_run (dir, &st, NULL, "status", "--short", NULL);
                json_add_str (c, "task", tk->id);
                json_add_str (c, "conflict", st ? st : e.text);
                if (resolve_conflict (r, dir, tk->id, st ? st : e.text,
                                      &answer) == 0
                    && git_run (dir, &unmerged, NULL, "diff", "--name-only",
                                "--diff-filter=U", NULL) == 0
                    && !*unmerged
                    && git_run (dir, NULL, &e, "-c", "user.name=codeswarm",
                                "-c", "user.email=codeswarm@localhost",
                                "commit", "-q", "--no-edit", NULL) == 0) {
                    json_add_str (c, "status", "resolved");
                    cJSON_AddItemToArray (merged,
                                          cJSON_CreateString (tk->id));
                }
                else {
                    json_add_str (c, "status", "failed");
                    (void)git_run (dir, NULL, NULL, "merge", "--abort",
                                   NULL);
                    failures++;
                }
                if (answer)
                    json_add_str (c, "final_answer", answer);
                cJSON_AddItemToArray (conflicts, c);
                free (st);
                free (answer);
                free (unmerged);
            }
        }
        json_add_str (res, "status", cJSON_GetArraySize (conflicts)
                      && failures ? "failed" : "passed");
        {
            char *head = NULL;
            if (git_run (dir, &head, NULL, "rev-parse", "HEAD", NULL) == 0)
                json_add_str (res, "head", git_chomp (head));
            free (head);
        }
record:
        json_add_item (res, "merged", merged);
        json_add_item (res, "conflicts", conflicts);
        results_line (r, res);
        state_append (r, "integration", cJSON_Duplicate (res, 1));
        log_msg ("integration into %s: %d merged, %d conflicts%s", branch,
                 cJSON_GetArraySize (merged), cJSON_GetArraySize (conflicts),
                 failures ? ", failed" : "");
        cJSON_Delete (res);
    }
    free (done_repo);
    return failures ? -1 : 0;
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
    /* resolve what the replay left: nodes failed on, attempts in flight,
     * tasks behind failed dependencies */
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
        int i = tf->order[q];
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

/* ---- codeswarm run status ------------------------------------------------ */

int run_status (const char *output, bool json, cs_error_t *errp)
{
    char path[PATH_MAX + 32];
    mb_reader_t *rd;
    struct mb_event ev;
    cJSON *tasks = cJSON_CreateObject (), *started = NULL, *t;
    int rc, counts[T_SKIPPED + 1] = { 0 };

    snprintf (path, sizeof (path), "%s/state/run.jsonl", output);
    if (access (path, F_OK) < 0)
        return errprintf (errp, "no run in '%s': %s", output,
                          strerror (errno));
    if (!(rd = mb_reader_open (path, MB_START_BEGIN, NULL, NULL, errp)))
        return -1;
    while ((rc = mb_reader_next (rd, &ev, errp)) == 1) {
        const cJSON *p = ev.rec.json;
        const char *id;
        cJSON *e;
        if (ev.type != MB_EV_RECORD)
            continue;
        if (!strcmp (ev.rec.type, "run_started")) {
            cJSON_Delete (started);
            started = cJSON_Duplicate (p, 1);
            continue;
        }
        if (!(id = dstr (p, "task")))
            continue;
        if (!(e = cJSON_GetObjectItemCaseSensitive (tasks, id))) {
            e = cJSON_CreateObject ();
            cJSON_AddItemToObject (tasks, id, e);
        }
        if (!strcmp (ev.rec.type, "task_dispatched")) {
            cJSON_DeleteItemFromObject (e, "status");
            json_add_str (e, "status", "running");
            cJSON_DeleteItemFromObject (e, "node");
            cJSON_AddNumberToObject (e, "node", dint (p, "node", -1));
            cJSON_DeleteItemFromObject (e, "attempt");
            cJSON_AddNumberToObject (e, "attempt", dint (p, "attempt", 0));
        }
        else if (!strcmp (ev.rec.type, "task_attempt_failed")) {
            cJSON_DeleteItemFromObject (e, "status");
            json_add_str (e, "status", "waiting");
            cJSON_DeleteItemFromObject (e, "reason");
            json_add_str (e, "reason", dstr (p, "reason"));
        }
        else if (!strcmp (ev.rec.type, "task_done")) {
            const cJSON *res = cJSON_GetObjectItemCaseSensitive (p, "result");
            cJSON_DeleteItemFromObject (e, "status");
            json_add_str (e, "status", dstr (res, "status"));
            cJSON_DeleteItemFromObject (e, "reason");
            if (dstr (res, "reason"))
                json_add_str (e, "reason", dstr (res, "reason"));
        }
    }
    mb_reader_close (rd);
    if (rc < 0 || !started) {
        cJSON_Delete (tasks);
        cJSON_Delete (started);
        return rc < 0 ? -1 : errprintf (errp, "%s: no run_started record",
                                        path);
    }
    {
        int n = dint (started, "ntasks", 0), seen = 0;
        cJSON_ArrayForEach (t, tasks) {
            const char *s = dstr (t, "status");
            seen++;
            for (int k = 0; k <= T_SKIPPED; k++) {
                if (s && !strcmp (s, tstate_names[k]))
                    counts[k]++;
            }
        }
        counts[T_WAITING] += n - seen;
        if (json) {
            cJSON *o = cJSON_CreateObject ();
            char *s;
            json_add_str (o, "run_id", dstr (started, "run"));
            json_add_str (o, "swarm_id", dstr (started, "swarm"));
            cJSON_AddNumberToObject (o, "tasks", n);
            for (int k = 0; k <= T_SKIPPED; k++) {
                if (k != T_READY && k != T_CHECKING)
                    cJSON_AddNumberToObject (o, tstate_names[k], counts[k]);
            }
            json_add_item (o, "task_states", tasks);
            tasks = NULL;
            s = json_print (o);
            printf ("%s\n", s);
            free (s);
            cJSON_Delete (o);
        }
        else {
            printf ("run %s on swarm %s: %d tasks: %d passed, %d running, "
                    "%d failed, %d skipped, %d waiting\n",
                    dstr (started, "run"), dstr (started, "swarm"), n,
                    counts[T_PASSED], counts[T_RUNNING], counts[T_FAILED],
                    counts[T_SKIPPED], counts[T_WAITING]);
            cJSON_ArrayForEach (t, tasks) {
                const char *s = dstr (t, "status");
                if (!s || !strcmp (s, "passed"))
                    continue;
                printf ("  %-20s %-8s", t->string, s);
                if (!strcmp (s, "running"))
                    printf (" node %d, attempt %d", dint (t, "node", -1),
                            dint (t, "attempt", 0));
                if (dstr (t, "reason"))
                    printf (" %s", dstr (t, "reason"));
                printf ("\n");
            }
        }
    }
    cJSON_Delete (tasks);
    cJSON_Delete (started);
    return 0;
}

/* vi: set ts=4 sw=4 expandtab: */
