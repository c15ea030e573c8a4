/* results.c - the results of a run's tasks: the worktree and branch an
 * attempt starts from, and after a successful turn the commit of what the
 * agent left, the commits and diff stat, the accept command and its
 * outcome; results.jsonl (rewritten from the state at start, then appended
 * a line per finished task)
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/json.h"
#include "common/log.h"
#include "run/private.h"

void branch_name (struct run *r, const char *task, char *buf,
                         size_t len)
{
    snprintf (buf, len, "codeswarm/%s/%s", r->o->run_id, task);
}

void results_line (struct run *r, const cJSON *res)
{
    char *s = json_print (res);
    if (s) {
        fprintf (r->results, "%s\n", s);
        fflush (r->results);
        free (s);
    }
}

/* ---- an attempt --------------------------------------------------------- */

/* Worktree <out>/work/<task> on codeswarm/<run>/<task> from the base, with
 * the branches of its passed dependencies (same repository) merged in.
 */
int prepare_worktree (struct run *r, int i, char *dir, size_t len,
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

/* The turn is over and succeeded: commit, collect, accept. */
void after_turn (struct run *r, int i, struct inj *in)
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

/* results.jsonl from the finished tasks of the replay (then appended to). */
int results_open (struct run *r, cs_error_t *errp)
{
    char path[PATH_MAX];
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    int rc;

    snprintf (path, sizeof (path), "%s/results.jsonl", r->out);
    if (!(f = open_memstream (&buf, &len)))
        return errprintf (errp, "cannot write '%s': %s", path,
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
    if (fclose (f) != 0) {
        free (buf);
        return errprintf (errp, "cannot write '%s': %s", path,
                          strerror (errno));
    }
    rc = atomic_file_write (path, buf, len, ATOMIC_FILE_SYNC_DIR, errp);
    free (buf);
    if (rc < 0)
        return -1;
    if (!(r->results = fopen (path, "ae")))
        return errprintf (errp, "cannot open '%s': %s", path,
                          strerror (errno));
    return 0;
}

/* A finished accept command of task i (checking): the attempt passes or
 * fails.  Kills it past the task's timeout.
 */
void accept_check (struct run *r, int i, double now)
{
    struct trun *t = &r->t[i];
    const struct task *tk = &r->tf->tasks[i];
    struct spawn_status st;
    char sb[64], why[200];

    if (tk->timeout > 0 && now - t->t0 > tk->timeout
        && !t->interrupted) {
        (void)spawn_kill (t->accept, SIGKILL);
        t->interrupted = true;
    }
    if (spawn_poll (t->accept, &st) != 1)
        return;
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
        return;
    }
    if (t->interrupted)
        snprintf (why, sizeof (why), "accept command timed out");
    else
        snprintf (why, sizeof (why), "accept command failed (%s)",
                  spawn_status_str (&st, sb, sizeof (sb)));
    /* the attempt ran on node t->node; the node is free already */
    attempt_failed (r, i, why, true);
}

/* vi: set ts=4 sw=4 expandtab: */
