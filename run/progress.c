/* progress.c - what a run shows of itself: the progress line on a
 * terminal while it runs, and "codeswarm run status" (the state stream of
 * an output directory summarised)
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "run/private.h"

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

void progress (struct run *r, bool force)
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

void progress_end (struct run *r)
{
    if (r->progress_shown) {
        progress (r, true);
        fputc ('\n', stderr);
        r->progress_shown = false;
    }
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
