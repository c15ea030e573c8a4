/* tasks.c - the task file parser and its graph checks */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/libtap/tap.h"
#include "run/tasks.h"

static taskfile_t *parse (const char *text, cs_error_t *e)
{
    return taskfile_parse (text, strlen (text), "t.yaml", "/base", e);
}

/* The text must be refused with exactly this message. */
static void refused (const char *text, const char *msg, const char *what)
{
    cs_error_t e = { { 0 } };
    taskfile_t *tf = parse (text, &e);

    ok (tf == NULL, "%s: refused", what);
    is (e.text, msg, "%s: message", what);
    taskfile_destroy (tf);
}

static void test_good (void)
{
    cs_error_t e = { { 0 } };
    const char *text =
        "defaults:\n"
        "  repo: {path: proj, base: main}\n"
        "  accept: make check\n"
        "  retries: 2\n"
        "  timeout: 30m\n"
        "tasks:\n"
        "  - id: c\n"
        "    prompt: third\n"
        "    depends_on: [b, a]\n"
        "  - id: a\n"
        "    prompt: first\n"
        "    repo: /abs/r\n"
        "    fresh_thread: false\n"
        "    nodes: 0,2-3\n"
        "  - id: b\n"
        "    prompt: second\n"
        "    depends_on: [a]\n"
        "    retries: 0\n"
        "    accept: ''\n";
    taskfile_t *tf = parse (text, &e);
    const struct task *a, *b, *c;

    if (!ok (tf != NULL, "a good file loads"))
        diag ("%s", e.text);
    if (!tf)
        return;
    cmp_ok (tf->ntasks, "==", 3, "three tasks");
    c = &tf->tasks[0];
    a = &tf->tasks[1];
    b = &tf->tasks[2];
    is (c->repo, "/base/proj", "a relative repo resolves against the base");
    is (c->base, "main", "the default base ref");
    is (c->accept, "make check", "the default accept command");
    cmp_ok (c->retries, "==", 2, "default retries");
    ok (c->timeout == 1800, "timeout 30m is 1800 s");
    ok (c->fresh_thread, "fresh_thread defaults to true");
    is (a->repo, "/abs/r", "a task's own repo");
    is (a->base, "HEAD", "a repo without base: HEAD");
    ok (!a->fresh_thread, "fresh_thread false");
    is (a->nodes, "0,2-3", "node set kept");
    cmp_ok (b->retries, "==", 0, "a task overrides retries");
    is (b->accept, "", "an empty accept");
    cmp_ok (c->ndeps, "==", 2, "c has two dependencies");
    cmp_ok (c->dep[0], "==", 2, "the first is b");
    cmp_ok (c->dep[1], "==", 1, "the second is a");
    cmp_ok (tf->order[0], "==", 1, "order: a first");
    cmp_ok (tf->order[1], "==", 2, "order: then b");
    cmp_ok (tf->order[2], "==", 0, "order: c last");
    cmp_ok (taskfile_find (tf, "b"), "==", 2, "find b");
    cmp_ok (taskfile_find (tf, "zz"), "==", -1, "find an unknown id");
    taskfile_destroy (tf);
}

static void test_refused (void)
{
    refused ("tasks:\n  - id: a\n    prompt: x\n  - id: a\n    prompt: y\n",
             "t.yaml:4:5: tasks.a: duplicate task id (the first is at "
             "line 2)", "duplicate id");
    refused ("tasks:\n  - id: a\n    prompt: x\n    depends_on: [b]\n",
             "t.yaml:4:18: tasks.a.depends_on: unknown task \"b\"",
             "unknown dependency");
    refused ("tasks:\n"
             "  - id: a\n    prompt: x\n    depends_on: [c]\n"
             "  - id: b\n    prompt: x\n    depends_on: [a]\n"
             "  - id: c\n    prompt: x\n    depends_on: [b]\n",
             "t.yaml:2:5: tasks.a.depends_on: dependency cycle a -> c -> b "
             "-> a", "a cycle of three");
    refused ("tasks:\n"
             "  - id: x\n    prompt: x\n"
             "  - id: b\n    prompt: x\n    depends_on: [c, x]\n"
             "  - id: c\n    prompt: x\n    depends_on: [b]\n"
             "  - id: d\n    prompt: x\n    depends_on: [c]\n",
             "t.yaml:4:5: tasks.b.depends_on: dependency cycle b -> c -> b",
             "a cycle behind which another task waits");
    refused ("tasks:\n  - id: a\n    prompt: x\n    depends_on: [a]\n",
             "t.yaml:4:18: tasks.a.depends_on: task \"a\" depends on itself",
             "self dependency");
    refused ("tasks:\n  - id: a\n    prompt: x\n    colour: red\n",
             "t.yaml:4:5: unknown key \"tasks.a.colour\"", "unknown key");
    refused ("defaults:\n  retry: 1\ntasks:\n  - id: a\n    prompt: x\n",
             "t.yaml:2:3: unknown key \"defaults.retry\"",
             "unknown default");
    refused ("task:\n  - id: a\n", "t.yaml:1:1: unknown key \"task\"",
             "unknown top-level key");
    refused ("tasks:\n  - prompt: x\n",
             "t.yaml:2:5: tasks[0]: missing \"id\"", "missing id");
    refused ("tasks:\n  - id: a\n",
             "t.yaml:2:5: tasks.a: missing \"prompt\"", "missing prompt");
    refused ("tasks:\n  - id: a/b\n    prompt: x\n",
             "t.yaml:2:9: tasks[0].id: \"a/b\" is not a valid task id "
             "(letters, digits, '.', '_', '-'; at most 64; not starting "
             "with '.' or '-')", "bad id");
    refused ("tasks:\n  - id: a\n    prompt: x\n    retries: many\n",
             "t.yaml:4:14: tasks.a.retries: \"many\" is not an integer "
             "from 0 to 100", "bad retries");
    refused ("tasks:\n  - id: a\n    prompt: x\n    timeout: soon\n",
             "t.yaml:4:14: tasks.a.timeout: \"soon\" is not a duration "
             "(e.g. 90s, 30m, 2h)", "bad timeout");
    refused ("tasks:\n  - id: a\n    prompt: x\n    nodes: 3-1\n",
             "t.yaml:4:12: tasks.a.nodes: \"3-1\": bad range 3-1",
             "bad node range");
    refused ("tasks:\n  - id: a\n    prompt: x\n    repo: {base: main}\n",
             "t.yaml:4:11: tasks.a.repo: missing \"path\"", "repo w/o path");
    refused ("tasks:\n  - id: a\n    prompt: x\n    fresh_thread: maybe\n",
             "t.yaml:4:19: tasks.a.fresh_thread: \"maybe\" is not a boolean "
             "(true or false)", "bad boolean");
    refused ("tasks:\n  - id: a\n    prompt: x\n    prompt: y\n",
             "t.yaml:4:5: duplicate key \"tasks.a.prompt\"",
             "duplicate key");
    refused ("tasks:\n  - id: a\n    prompt: x\n    [k]: y\n",
             "t.yaml:4:5: tasks.a: key is not a string", "a key not a string");
    refused ("tasks: []\n", "t.yaml:1:1: tasks: the list is empty",
             "no tasks");
    refused ("tasks:\n  - id: a\n    prompt: [x\n",
             "t.yaml:4:1: did not find expected ',' or ']' (while parsing "
             "a flow sequence at line 3 column 13)",
             "YAML syntax error");
    refused ("", "t.yaml: empty file: expected \"tasks\"", "empty file");
}

static void test_nodes (void)
{
    cs_error_t e;

    ok (tasks_node_allowed (NULL, 7), "no node set: any node");
    ok (tasks_node_allowed ("all", 7), "all");
    ok (tasks_node_allowed ("0,2-5", 3), "3 in 0,2-5");
    ok (!tasks_node_allowed ("0,2-5", 1), "1 not in 0,2-5");
    ok (!tasks_node_allowed ("0,2-5", 6), "6 not in 0,2-5");
    ok (tasks_nodeset_check ("1,", &e) < 0, "a trailing comma is refused");
    ok (tasks_nodeset_check ("x", &e) < 0, "a word is refused");
    ok (tasks_id_valid ("build-1.2_x"), "a valid id");
    ok (!tasks_id_valid ("a..b"), "'..' refused");
    ok (!tasks_id_valid ("x.lock"), "'.lock' refused");
    ok (!tasks_id_valid ("-x"), "leading '-' refused");
}

int main (void)
{
    plan (NO_PLAN);
    test_good ();
    test_refused ();
    test_nodes ();
    done_testing ();
}

/* vi: set ts=4 sw=4 expandtab: */
