/* integrate.c - --integrate: after the run, the passed branches of each
 * repository merged into codeswarm/<run>/integration in dependency order,
 * a conflict handed to an idle node for one more turn
 */
#include "config.h"

#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "run/private.h"

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
int integrate (struct run *r)
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

/* vi: set ts=4 sw=4 expandtab: */
