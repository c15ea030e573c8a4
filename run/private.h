/* private.h - the state of a run of codeswarm-run, shared by the files
 * that carry it out (run.c, sched.c, state.c, results.c, integrate.c,
 * progress.c)
 */
#ifndef CODESWARM_RUN_PRIVATE_H
#define CODESWARM_RUN_PRIVATE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"
#include "common/spawn.h"
#include "mailbox/mailbox.h"
#include "run/run.h"
#include "run/tasks.h"

enum tstate {
    T_WAITING = 0,      /* dependencies not done */
    T_READY,            /* in the ready queue */
    T_RUNNING,          /* its turn is on a node */
    T_CHECKING,         /* the accept command runs */
    T_PASSED,
    T_FAILED,
    T_SKIPPED,
};

/* the names of the states (results.jsonl, run status) */
extern const char *const tstate_names[];

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

static inline void set_str (char **dst, const char *src)
{
    char *n = src ? strdup (src) : NULL;
    free (*dst);
    *dst = n;
}

static inline const char *dstr (const cJSON *d, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (d, key);
    return cJSON_IsString (v) ? v->valuestring : NULL;
}

static inline int dint (const cJSON *d, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (d, key);
    return cJSON_IsNumber (v) ? v->valueint : dflt;
}

static inline bool is_active (enum tstate st)
{
    return st == T_RUNNING || st == T_CHECKING;
}

/* set by SIGINT, SIGTERM, SIGHUP (run.c): the run stops, to be resumed */
extern volatile sig_atomic_t stop_signal;

/* ---- sched.c: dispatching ready tasks to idle nodes, the router's events */

/* The injection id's record (created when create), NULL when none. */
struct inj *inj_get (struct run *r, const char *id, bool create);
void inj_free_all (struct run *r);
void set_state (struct run *r, int i, enum tstate st);
void ready_push (struct run *r, int i);
/* A task event (task_started, task_complete) through the router (takes
 * extra, which may be NULL). */
void publish (struct run *r, const char *event, int i, cJSON *extra);
void skip_dependants (struct run *r, int i);
void task_final (struct run *r, int i, enum tstate st, const char *reason);
void attempt_failed (struct run *r, int i, const char *reason,
                     bool counted);
void redispatch (struct run *r, int i);
void turn_done (struct run *r, int i, struct inj *in);
void bind_injection (struct run *r, int i, int attempt, const char *id);
void on_message (struct run *r, cJSON *o);
bool node_idle (struct run *r, int k);
void schedule (struct run *r);
int pump (struct run *r, int timeout_ms);
void ask_status (struct run *r);
void lat_report (struct run *r);

/* ---- state.c: the state stream <output>/state/run.jsonl, replay, resume */

void state_append (struct run *r, const char *type, cJSON *p);
int replay (struct run *r, const char *path, const char *digest,
            cs_error_t *errp);
void digest_of (const taskfile_t *tf, char *buf, size_t len);
void state_resume (struct run *r);

/* ---- results.c: per-task results ---------------------------------------- */

void branch_name (struct run *r, const char *task, char *buf, size_t len);
void results_line (struct run *r, const cJSON *res);
int results_open (struct run *r, cs_error_t *errp);
int prepare_worktree (struct run *r, int i, char *dir, size_t len,
                      cs_error_t *errp);
void after_turn (struct run *r, int i, struct inj *in);
void accept_check (struct run *r, int i, double now);

/* ---- integrate.c: --integrate ------------------------------------------- */

int integrate (struct run *r);

/* ---- progress.c: the progress line -------------------------------------- */

void progress (struct run *r, bool force);
void progress_end (struct run *r);

#endif

/* vi: set ts=4 sw=4 expandtab: */
