/* test/golden.c - translate recorded outboxes (tests/golden/NAME.outbox.jsonl,
 * recorded from the real codex by tests/golden/record.sh) and compare with
 * the expected events (*.events.jsonl); check the translation's invariants
 * on them too.
 *
 *   test_golden.t                 run the tests (TAP)
 *   test_golden.t --print FILE    print the events of an outbox file
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/libtap/tap.h"
#include "router/translate.h"

#ifndef GOLDEN_DIR
#define GOLDEN_DIR "tests/golden"
#endif

struct lines {
    char **v;
    size_t n;
};

static void lines_add (struct lines *l, char *s)
{
    l->v = realloc (l->v, (l->n + 1) * sizeof (char *));
    l->v[l->n++] = s;
}

static void lines_free (struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free (l->v[i]);
    free (l->v);
    l->v = NULL;
    l->n = 0;
}

static int read_lines (const char *path, struct lines *l)
{
    FILE *f = fopen (path, "r");
    char *line = NULL;
    size_t size = 0;
    ssize_t n;
    if (!f)
        return -1;
    while ((n = getline (&line, &size, f)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        lines_add (l, strdup (line));
    }
    free (line);
    fclose (f);
    return 0;
}

static void emit (const char *name, cJSON *data, void *arg)
{
    struct lines *out = arg;
    cJSON *o = cJSON_CreateObject ();
    cJSON_AddStringToObject (o, "event", name);
    cJSON_AddItemToObject (o, "data", data);
    lines_add (out, cJSON_PrintUnformatted (o));
    cJSON_Delete (o);
}

/* The event as "name data" with data printed by json_print(): the text
 * path must give these bytes exactly.
 */
static void emit_printed (const char *name, cJSON *data, void *arg)
{
    struct lines *out = arg;
    char *d = json_print (data);
    char *s = NULL;
    if (asprintf (&s, "%s %s", name, d ? d : "(null)") < 0)
        s = NULL;
    lines_add (out, s);
    free (d);
    cJSON_Delete (data);
}

static void emit_text (const char *name, const char *data, size_t len,
                       void *arg)
{
    struct lines *out = arg;
    char *s = NULL;
    if (asprintf (&s, "%s %.*s", name, (int)len, data) < 0
        || strlen (data) != len)
        s = strdup ("(bad length)");
    lines_add (out, s);
}

/* Translate lines [from, to) of an outbox into out. */
static void translate (rt_trans_t *t, struct lines *in, size_t from, size_t to)
{
    for (size_t i = from; i < to && i < in->n; i++)
        (void)rt_trans_line (t, 0, in->v[i], strlen (in->v[i]), 1.0, NULL);
}

static const char *get_s (const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, k);
    return cJSON_IsString (v) ? v->valuestring : NULL;
}

static void check_invariants (const char *name, struct lines *in,
                              struct lines *ev)
{
    int turns_rpc = 0, turns_ev = 0, msgs_rpc = 0, msgs_ev = 0, finals = 0;
    int completed_turns = 0, missing = 0, dup_tc = 0;
    char *seen_tc[256];
    int nseen = 0;

    for (size_t i = 0; i < in->n; i++) {
        cJSON *r = cJSON_Parse (in->v[i]);
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive (r, "msg");
        const char *m = get_s (msg, "method");
        if (m && !strcmp (m, "turn/completed")) {
            const cJSON *turn = cJSON_GetObjectItemCaseSensitive (
                cJSON_GetObjectItemCaseSensitive (msg, "params"), "turn");
            const char *st = get_s (turn, "status");
            turns_rpc++;
            if (st && !strcmp (st, "completed"))
                completed_turns++;
        }
        if (m && !strcmp (m, "item/completed")) {
            const cJSON *item = cJSON_GetObjectItemCaseSensitive (
                cJSON_GetObjectItemCaseSensitive (msg, "params"), "item");
            const char *ty = get_s (item, "type");
            if (ty && !strcmp (ty, "agentMessage"))
                msgs_rpc++;
        }
        cJSON_Delete (r);
    }
    for (size_t i = 0; i < ev->n; i++) {
        cJSON *e = cJSON_Parse (ev->v[i]);
        const char *n = get_s (e, "event");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive (e, "data");
        if (!cJSON_GetObjectItemCaseSensitive (d, "swarm_id")
            || !cJSON_GetObjectItemCaseSensitive (d, "job_id")
            || !cJSON_GetObjectItemCaseSensitive (d, "node_id")
            || !cJSON_GetObjectItemCaseSensitive (d, "injection_id"))
            missing++;
        if (n && !strcmp (n, "turn_complete")) {
            const char *tid = get_s (d, "turn_id");
            turns_ev++;
            for (int k = 0; k < nseen; k++)
                if (tid && !strcmp (seen_tc[k], tid))
                    dup_tc++;
            if (tid && nseen < 256)
                seen_tc[nseen++] = strdup (tid);
        }
        if (n && !strcmp (n, "assistant")) {
            msgs_ev++;
            if (cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (d,
                                                                "final_answer")))
                finals++;
        }
        cJSON_Delete (e);
    }
    cmp_ok (missing, "==", 0, "%s: every event has swarm, job, node and "
            "injection ids", name);
    cmp_ok (turns_ev, ">=", turns_rpc, "%s: a turn_complete for every "
            "turn/completed (%d)", name, turns_rpc);
    cmp_ok (dup_tc, "==", 0, "%s: no turn completes twice", name);
    cmp_ok (msgs_ev, "==", msgs_rpc, "%s: every agent message once (%d)",
            name, msgs_rpc);
    cmp_ok (finals, "<=", completed_turns, "%s: at most one final answer per "
            "completed turn", name);
    for (int k = 0; k < nseen; k++)
        free (seen_tc[k]);
}

static void run_golden (const char *dir, const char *base)
{
    char path[4096], epath[4096], name[256];
    struct lines in = { 0 }, ev = { 0 }, expect = { 0 }, again = { 0 },
                 split = { 0 };
    rt_trans_t *t;
    size_t i, diff = 0;

    snprintf (name, sizeof (name), "%.*s", (int)(strlen (base) - 13), base);
    snprintf (path, sizeof (path), "%s/%s", dir, base);
    snprintf (epath, sizeof (epath), "%s/%s.events.jsonl", dir, name);
    if (read_lines (path, &in) < 0 || read_lines (epath, &expect) < 0) {
        fail ("%s: cannot read %s or %s", name, path, epath);
        return;
    }
    t = rt_trans_create ("golden", emit, &ev);
    translate (t, &in, 0, in.n);
    cmp_ok (ev.n, "==", expect.n, "%s: %zu events as expected", name,
            expect.n);
    for (i = 0; i < ev.n && i < expect.n; i++) {
        if (strcmp (ev.v[i], expect.v[i])) {
            if (!diff)
                diag ("first difference at event %zu:\n got: %s\nwant: %s",
                      i, ev.v[i], expect.v[i]);
            diff++;
        }
    }
    cmp_ok (diff, "==", 0, "%s: events match", name);
    check_invariants (name, &in, &ev);

    /* replaying the same records says nothing */
    rt_trans_destroy (t);
    t = rt_trans_create ("golden", emit, &again);
    translate (t, &in, 0, in.n);
    lines_free (&again);
    translate (t, &in, 0, in.n);
    cmp_ok (again.n, "==", 0, "%s: replayed records give no events", name);
    rt_trans_destroy (t);

    /* stopping half way, saving and restoring the state changes nothing */
    {
        rt_trans_t *t2;
        cJSON *st;
        t = rt_trans_create ("golden", emit, &split);
        translate (t, &in, 0, in.n / 2);
        st = rt_trans_state (t, 0);
        rt_trans_destroy (t);
        t2 = rt_trans_create ("golden", emit, &split);
        if (st)
            rt_trans_restore (t2, 0, st, 1.0, NULL);
        cJSON_Delete (st);
        translate (t2, &in, in.n / 2, in.n);
        rt_trans_destroy (t2);
        diff = split.n != ev.n;
        for (i = 0; !diff && i < ev.n; i++)
            diff = strcmp (split.v[i], ev.v[i]) != 0;
        ok (!diff, "%s: save/restore half way gives the same events", name);
    }
    /* the events written as text are the same events, byte for byte */
    {
        struct lines tree = { 0 }, text = { 0 };
        t = rt_trans_create ("golden", emit_printed, &tree);
        translate (t, &in, 0, in.n);
        rt_trans_destroy (t);
        t = rt_trans_create ("golden", emit_printed, &text);
        rt_trans_set_emit_text (t, emit_text, &text);
        translate (t, &in, 0, in.n);
        rt_trans_destroy (t);
        diff = text.n != tree.n;
        for (i = 0; i < tree.n && i < text.n; i++) {
            if (strcmp (text.v[i], tree.v[i])) {
                if (!diff)
                    diag ("first difference at event %zu:\n text: %s\n"
                          " tree: %s", i, text.v[i], tree.v[i]);
                diff++;
            }
        }
        ok (tree.n > 0 && !diff, "%s: the text path gives the same %zu "
            "events byte for byte", name, tree.n);
        lines_free (&tree);
        lines_free (&text);
    }
    lines_free (&in);
    lines_free (&ev);
    lines_free (&expect);
    lines_free (&split);
}

int main (int argc, char **argv)
{
    const char *dir = getenv ("CODESWARM_GOLDEN_DIR");
    struct dirent *de;
    DIR *d;
    int n = 0;

    if (argc == 3 && !strcmp (argv[1], "--print")) {
        struct lines in = { 0 }, ev = { 0 };
        rt_trans_t *t = rt_trans_create ("golden", emit, &ev);
        if (read_lines (argv[2], &in) < 0) {
            perror (argv[2]);
            return 1;
        }
        translate (t, &in, 0, in.n);
        for (size_t i = 0; i < ev.n; i++)
            printf ("%s\n", ev.v[i]);
        rt_trans_destroy (t);
        lines_free (&in);
        lines_free (&ev);
        return 0;
    }
    plan (NO_PLAN);
    if (!dir)
        dir = GOLDEN_DIR;
    if (!(d = opendir (dir))) {
        skip (1, "no golden directory '%s'", dir);
        done_testing ();
    }
    while ((de = readdir (d))) {
        size_t len = strlen (de->d_name);
        if (len > 13 && !strcmp (de->d_name + len - 13, ".outbox.jsonl")) {
            run_golden (dir, de->d_name);
            n++;
        }
    }
    closedir (d);
    if (n == 0)
        skip (1, "no recorded outboxes in '%s' (tests/golden/record.sh)", dir);
    done_testing ();
}
