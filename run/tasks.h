/* tasks.h - the task file of "codeswarm run" (codeswarm-tasks(5)) and its
 * dependency graph.
 *
 * A task file is one YAML document:
 *
 *   defaults: {repo:, accept:, retries:, timeout:, nodes:, fresh_thread:}
 *   tasks:
 *     - id: parse
 *       prompt: "..."
 *       depends_on: [lex]
 *       repo: {path: ../proj, base: main}      (or just a path: base HEAD)
 *       accept: "make check"
 *       retries: 1
 *       timeout: 30m
 *       nodes: "0-3"
 *       fresh_thread: true
 *
 * Loading checks everything before anything runs: unknown keys, values of
 * the wrong type, duplicate and malformed ids, unknown dependencies and
 * cycles are refused with "file:line:col: what" (1-based).  Relative repo
 * paths are relative to the task file's directory.
 *
 * Ownership: taskfile_load()/taskfile_parse() return a taskfile_t freed
 * with taskfile_destroy() (NULL is a no-op and keeps errno).
 */
#ifndef CODESWARM_RUN_TASKS_H
#define CODESWARM_RUN_TASKS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/errprintf.h"

#define TASKS_MAX 100000
#define TASKS_ID_MAX 64

struct task {
    char *id;
    char *prompt;
    char **deps;            /* ids, ndeps of them */
    int *dep;               /* their indexes in tasks[] */
    int ndeps;
    char *repo;             /* absolute path of a git repository, or NULL */
    char *base;             /* its base ref ("HEAD" when not given) */
    char *accept;           /* shell command, or NULL */
    int retries;            /* further attempts after a failure */
    double timeout;         /* seconds per attempt, 0: none */
    char *nodes;            /* node set "0,2-5", or NULL: any node */
    bool fresh_thread;
    int line, col;          /* where the task starts in the file */
};

typedef struct taskfile {
    char *path;             /* as given */
    int ntasks;
    struct task *tasks;
    int *order;             /* a topological order (dependencies first,
                               otherwise file order) */
} taskfile_t;

/* Load and check a task file. */
taskfile_t *taskfile_load (const char *path, cs_error_t *errp);

/* The same from buf[0..len), named name in messages; relative repo paths
 * resolve against basedir.
 */
taskfile_t *taskfile_parse (const char *buf, size_t len, const char *name,
                            const char *basedir, cs_error_t *errp);

void taskfile_destroy (taskfile_t *tf);

/* Index of the task with this id, or -1. */
int taskfile_find (const taskfile_t *tf, const char *id);

/* Is node k in the node set s ("all", "3", "0,2-5")?  NULL: any node. */
bool tasks_node_allowed (const char *s, int k);

/* Check a node set; -1 with errp when it does not parse. */
int tasks_nodeset_check (const char *s, cs_error_t *errp);

/* Is s a valid task or run id ([A-Za-z0-9._-], 1..64, not starting with
 * '.' or '-', no "..", not ending in ".lock"): usable in a git branch name
 * and a file name.
 */
bool tasks_id_valid (const char *s);

#endif
