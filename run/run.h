/* run.h - internals shared by the files of codeswarm-run */
#ifndef CODESWARM_RUN_RUN_H
#define CODESWARM_RUN_RUN_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"
#include "common/spawn.h"
#include "run/tasks.h"

/* ---- link.c: the connection to a router --------------------------------- */

typedef struct link link_t;

/* The running router's socket under home, else a "router --stdio" (router:
 * the program, NULL: codeswarm-router from PATH; its stderr appended to
 * logpath).  Free with link_close().
 */
link_t *link_open (const char *home, const char *router, char **router_args,
                   const char *logpath, cs_error_t *errp);
void link_close (link_t *l);
int link_fd (link_t *l);                /* for poll(); -1 after EOF */
/* Send a command (takes payload, which may be NULL). */
int link_send (link_t *l, const char *command, const char *rid,
               cJSON *payload);
/* Read what is there: 1, 0 at EOF, -1 on error. */
int link_read (link_t *l);
/* The next message read (cJSON_Delete), NULL when none is complete. */
cJSON *link_next (link_t *l);
bool link_eof (link_t *l);

/* ---- git.c ------------------------------------------------------------- */

/* git -C dir ARGS... (NULL-terminated).  0 on exit 0 (*out: its stdout,
 * free()), else -1 with errp holding git's stderr.
 */
int git_run (const char *dir, char **out, cs_error_t *errp, ...)
    __attribute__ ((sentinel));
char *git_chomp (char *s);
/* sh -c cmd in dir, stdout and stderr to logpath (truncated). */
spawn_t *accept_start (const char *cmd, const char *dir, const char *logpath,
                       cs_error_t *errp);

/* ---- run.c: the run (private.h: the files that carry it out) ---------- */

struct run_opts {
    const char *tasks_path;
    const char *swarm;
    const char *output;         /* the output directory */
    const char *run_id;
    const char *home;
    const char *router;         /* router program, NULL: default */
    char **router_args;
    bool integrate;
    bool progress;              /* the progress line on a terminal */
};

/* Run (or resume) the task graph: 0 when every task passed, 1 otherwise,
 * 2 when the run could not start (errp says why).
 */
int run_tasks (taskfile_t *tf, const struct run_opts *o, cs_error_t *errp);

/* progress.c: the state stream of an output directory, summarised on stdout
 * ("codeswarm run status").  0, or -1 with errp.
 */
int run_status (const char *output, bool json, cs_error_t *errp);

/* ---- plan.c: codeswarm plan ---------------------------------------------- */

/* "codeswarm plan SPEC -o TASKS.yaml" (argv[0] is "plan"): exit status. */
int plan_main (int argc, char **argv);

#endif
