/* launch.c - "codeswarm launch": create a swarm, submit its job (or start
 * the local supervisor) and show progress until every node is ready.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/configfile.h"
#include "common/confined.h"
#include "common/json.h"
#include "common/log.h"
#include "common/prefix.h"
#include "mailbox/mailbox.h"
#include "slurm/board.h"
#include "slurm/job.h"
#include "slurm/launch.h"
#include "slurm/nodes.h"
#include "slurm/pending.h"
#include "slurm/run.h"
#include "slurm/swarm.h"
#include "slurm/template.h"
#include "slurm/walltime.h"


static void launch_usage (FILE *f)
{
    fprintf (
        f,
        "usage: codeswarm launch --nodes N [OPTIONS]\n"
        "\n"
        "Start a swarm: one codex agent per node, as a Slurm job, or as local\n"
        "processes with --local (or slurm.backend: local in codeswarm.yaml).\n"
        "Without --local, a Slurm controller that does not answer is an error.\n"
        "\n"
        "  -N, --nodes N            number of nodes (agents), required\n"
        "  -t, --time T             walltime in Slurm's format (minutes, M:S, "
        "H:M:S,\n"
        "                           D-H, D-H:M, D-H:M:S)\n"
        "  -p, --partition P        Slurm partition\n"
        "  -A, --account A          Slurm account\n"
        "  -q, --qos Q              Slurm QOS\n"
        "  -G, --gpus-per-node G    GPUs per node\n"
        "      --sbatch-opt OPT     extra sbatch option, e.g. "
        "--sbatch-opt=--exclusive\n"
        "                           (repeatable; the job is then submitted by "
        "sbatch)\n"
        "  -c, --config FILE        codeswarm.yaml for the workers and "
        "defaults\n"
        "      --agents-md FILE     copied to every node's workspace as "
        "AGENTS.md\n"
        "      --persist            outlive the walltime: on the warning "
        "signal the\n"
        "                           workers checkpoint and a successor job "
        "resumes\n"
        "      --warn D             warning before the walltime (default "
        "300s;\n"
        "                           slurm.warn_seconds)\n"
        "      --idle-timeout D     end the swarm (and its chain) after D "
        "without turns\n"
        "      --local              run the workers as processes on this "
        "machine;\n"
        "                           the Slurm options above are then errors\n"
        "      --slurm              submit to Slurm even when slurm.backend is "
        "local\n"
        "      --pending-timeout D  cancel the job when it has not started "
        "after D\n"
        "      --no-wait            return once submitted\n"
        "      --detach             wait, but on Ctrl-C leave the swarm "
        "queued or\n"
        "                           running (by default Ctrl-C while waiting "
        "cancels it)\n"
        "      --parsable           print \"SWARM;JOBID\" only\n"
        "      --progress-json      progress as JSON lines on stdout (for "
        "programs)\n"
        "      --request FILE       the options as a swarm_launch payload of "
        "the router\n"
        "                           protocol (JSON; see "
        "codeswarm-protocol(7))\n"
        "      --template FILE      batch script template (default:\n"
        "                           %s/codeswarm.sbatch.in)\n"
        "      --name ID            swarm id (default: generated)\n"
        "      --resume ID          relaunch the ended (or imported) swarm ID "
        "with its\n"
        "                           options: every node resumes its thread\n"
        "\n"
        "Durations: 30s, 5m, 2h or seconds.  Everything is checked before "
        "anything\n"
        "is submitted.  A job Slurm will never start as asked (more nodes or "
        "time than\n"
        "the partition allows, an invalid account...) is reported with the "
        "limit and\n"
        "cancelled.\n",
        prefix_dir (PREFIX_DIR_PKGDATA));
}

static int parse_positive (const char *opt, const char *s, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol (s, &end, 10);
    if (errno || end == s || *end || v <= 0 || v > 100000) {
        log_msg ("%s must be a positive integer, not '%s'", opt, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_dur (const char *opt, const char *s, double *out)
{
    if (parse_duration (s, out) < 0 && errno == ERANGE) {
        log_msg ("%s: '%s' is longer than " DURATION_MAX_TEXT, opt, s);
        return -1;
    }
    if (parse_duration (s, out) < 0 || *out <= 0) {
        log_msg ("%s: '%s' is not a duration (use e.g. 30s, 5m, 2h)", opt, s);
        return -1;
    }
    return 0;
}

static int readable_file (const char *opt, const char *path)
{
    struct stat st;

    if (stat (path, &st) < 0) {
        log_msg ("%s: cannot access '%s': %s", opt, path, strerror (errno));
        return -1;
    }
    if (!S_ISREG (st.st_mode) || access (path, R_OK) < 0) {
        log_msg ("%s: '%s' is not a readable file", opt, path);
        return -1;
    }
    return 0;
}

static int read_file (const char *path, char **text)
{
    FILE *f = fopen (path, "r");
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;

    if (!f)
        return -1;
    {
        FILE *m = open_memstream (&buf, &len);
        char chunk[8192];
        size_t n;
        if (!m) {
            fclose (f);
            return -1;
        }
        while ((n = fread (chunk, 1, sizeof (chunk), f)) > 0)
            fwrite (chunk, 1, n, m);
        if (ferror (f))
            rc = -1;
        fclose (m);
    }
    fclose (f);
    if (rc < 0) {
        free (buf);
        return -1;
    }
    *text = buf;
    return 0;
}

static int write_file (const char *path, const char *text, mode_t mode)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                   mode);
    size_t len = strlen (text), off = 0;

    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t n = write (fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close (fd);
            errno = e;
            return -1;
        }
        off += (size_t)n;
    }
    return close (fd);
}

const char *launch_worker_path (char *buf, size_t len)
{
    const char *env = getenv ("CODESWARM_WORKER");
    const char *path = getenv ("PATH");

    if (env && *env)
        return env;
    /* an installed tree uses its own worker, wherever it was moved */
    if (prefix_is_runtime () &&
        pathf (buf, len, "%s/codeswarm-worker",
               prefix_dir (PREFIX_DIR_BIN)) == 0 &&
        access (buf, X_OK) == 0)
        return buf;
    while (path && *path) {
        const char *end = strchrnul (path, ':');
        if (end > path) {
            snprintf (buf, len, "%.*s/codeswarm-worker", (int)(end - path),
                      path);
            if (access (buf, X_OK) == 0) {
                char real[PATH_MAX];
                if (buf[0] != '/' && realpath (buf, real))
                    snprintf (buf, len, "%s", real);
                return buf;
            }
        }
        path = *end ? end + 1 : end;
    }
    snprintf (buf, len, "%s/codeswarm-worker", prefix_dir (PREFIX_DIR_BIN));
    return buf;
}

static bool srun_has_pmix (void)
{
    const char *av[] = {"srun", "--mpi=list", NULL};
    struct run_result res;
    bool yes = false;

    if (run_capture ((char *const *)av, NULL, NULL, 30, &res, NULL) < 0)
        return false;
    /* srun prints the list on stdout or stderr depending on the release */
    yes =
        run_ok (&res) && (strstr (res.out, "pmix") || strstr (res.err, "pmix"));
    run_result_release (&res);
    return yes;
}

static void make_id (char *buf, size_t len)
{
    time_t now = time (NULL);
    struct tm tm;
    unsigned r;
    int fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);

    if (fd < 0 || read (fd, &r, sizeof (r)) != (ssize_t)sizeof (r))
        r = (unsigned)getpid () ^ (unsigned)now;
    if (fd >= 0)
        close (fd);
    gmtime_r (&now, &tm);
    snprintf (buf, len, "sw-%04d%02d%02d-%02d%02d%02d-%04x", tm.tm_year + 1900,
              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
              r & 0xffff);
}

/* export lines for the batch script: the home and what a worker on a
 * compute node needs from the login node's environment (proxies, codex)
 */
static char *render_exports (const char *home, const char *config)
{
    static const char *pass[] = {
        "HTTPS_PROXY",     "https_proxy", "HTTP_PROXY",          "http_proxy",
        "NO_PROXY",        "no_proxy",    "ALL_PROXY",           "all_proxy",
        "CODESWARM_CODEX", "CODEX_HOME",  "OPENAI_API_KEY_FILE", NULL,
    };
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream (&buf, &len);
    char *q;

    if (!m)
        return NULL;
    q = template_shell_quote (home);
    fprintf (m, "export CODESWARM_HOME=%s\n", q ? q : "");
    free (q);
    if (config) {
        q = template_shell_quote (config);
        fprintf (m, "export CODESWARM_CONFIG=%s\n", q ? q : "");
        free (q);
    }
    for (int i = 0; pass[i]; i++) {
        const char *v = getenv (pass[i]);
        if (!v)
            continue;
        q = template_shell_quote (v);
        fprintf (m, "export %s=%s\n", pass[i], q ? q : "");
        free (q);
    }
    fclose (m);
    return buf;
}

static char *render_sbatch_lines (const struct launch_opts *o, const char *id,
                                  const char *swarmdir, int warn)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream (&buf, &len);

    if (!m)
        return NULL;
    fprintf (m, "#SBATCH --job-name=%s\n", id);
    fprintf (m, "#SBATCH --nodes=%d\n", o->nodes);
    fprintf (m, "#SBATCH --ntasks-per-node=1\n");
    fprintf (m, "#SBATCH --comment=codeswarm:%s\n", id);
    fprintf (m, "#SBATCH --output=%s/log/job-%%j.out\n", swarmdir);
    fprintf (m, "#SBATCH --chdir=%s\n", swarmdir);
    if (o->time)
        fprintf (m, "#SBATCH --time=%s\n", o->time);
    if (o->partition)
        fprintf (m, "#SBATCH --partition=%s\n", o->partition);
    if (o->account)
        fprintf (m, "#SBATCH --account=%s\n", o->account);
    if (o->qos)
        fprintf (m, "#SBATCH --qos=%s\n", o->qos);
    if (o->gpus_per_node)
        fprintf (m, "#SBATCH --gpus-per-node=%d\n", o->gpus_per_node);
    if (warn > 0)
        fprintf (m, "#SBATCH --signal=B:USR1@%d\n", warn);
    if (o->persist)
        fprintf (m, "#SBATCH --dependency=singleton\n");
    for (size_t i = 0; i < o->nsbatch_opts; i++)
        fprintf (m, "#SBATCH %s\n", o->sbatch_opts[i]);
    fclose (m);
    return buf;
}

/* ---- job spec from swarm.json (launch and successors) ------------------- */

static const char *opt_str (const cJSON *opts, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (opts, key);
    return cJSON_IsString (v) && *v->valuestring ? v->valuestring : NULL;
}

static double opt_num (const cJSON *opts, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (opts, key);
    return cJSON_IsNumber (v) ? v->valuedouble : 0;
}

int launch_job_spec (const cJSON *swarm, const char *swarmdir,
                     struct job_spec *spec, char **script_text,
                     cs_error_t *errp)
{
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive (swarm, "options");
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive (opts, "sbatch_opts");
    const char *script = swarm_str (swarm, "script");
    static char output[LAUNCH_PATH_MAX];
    static char comment[128];
    static char *sbopts[MAX_SBATCH_OPTS];
    size_t n = 0;

    memset (spec, 0, sizeof (*spec));
    if (!script || !swarm_str (swarm, "id"))
        return errprintf (errp, "swarm.json has no \"script\" or \"id\"");
    if (read_file (script, script_text) < 0)
        return errprintf (errp, "cannot read '%s': %s", script,
                          strerror (errno));
    snprintf (output, sizeof (output), "%s/log/job-%%j.out", swarmdir);
    snprintf (comment, sizeof (comment), "codeswarm:%s",
              swarm_str (swarm, "id"));
    spec->name = swarm_str (swarm, "id");
    spec->script = *script_text;
    spec->script_path = script;
    spec->comment = comment;
    spec->output = output;
    spec->workdir = swarmdir;
    spec->partition = opt_str (opts, "partition");
    spec->account = opt_str (opts, "account");
    spec->qos = opt_str (opts, "qos");
    spec->time_secs = (uint64_t)opt_num (opts, "time_secs");
    spec->nodes = swarm_int (swarm, "nodes", 1);
    spec->gpus_per_node = (int)opt_num (opts, "gpus_per_node");
    spec->warn_secs = (int)opt_num (opts, "warn");
    spec->singleton =
        cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (opts, "persist"));
    spec->use_sbatch =
        cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (opts, "use_sbatch"));
    if (cJSON_IsArray (sb)) {
        const cJSON *it;
        cJSON_ArrayForEach (it, sb)
        {
            if (cJSON_IsString (it) && n < MAX_SBATCH_OPTS)
                sbopts[n++] = it->valuestring;
        }
    }
    spec->sbatch_opts = sbopts;
    spec->nsbatch_opts = n;
    return 0;
}

/* ---- progress ------------------------------------------------------------ */

/* --progress-json: one object per line on stdout, {"stage":...}, members
 * key/value string pairs (NULL value: null), then "node_id" when node >= 0.
 */
static bool progress_json;

static void progress_emit (const char *stage, int node, ...)
    __attribute__ ((sentinel));

static void progress_emit (const char *stage, int node, ...)
{
    cJSON *o;
    const char *k;
    va_list ap;
    char *text;

    if (!progress_json || !(o = cJSON_CreateObject ()))
        return;
    (void)json_add_str (o, "stage", stage);
    if (node >= 0)
        (void)json_add_u64 (o, "node_id", (uint64_t)node);
    va_start (ap, node);
    while ((k = va_arg (ap, const char *))) {
        const char *v = va_arg (ap, const char *);
        if (v)
            (void)json_add_str (o, k, v);
        else
            (void)cJSON_AddNullToObject (o, k);
    }
    va_end (ap);
    if ((text = cJSON_PrintUnformatted (o))) {
        printf ("%s\n", text);
        fflush (stdout);
        free (text);
    }
    cJSON_Delete (o);
}

struct progress {
    bool quiet;
    const char *swarmdir;
    double pending_timeout; /* --pending-timeout, 0: none */
    double started;         /* time_mono () when the wait began */
    char jobid[32];  /* current job (slurm backend) */
    char shown[512]; /* the last job line printed */
    char lasterr[512];
    bool running_shown;
    bool job_over; /* the job ended (reported) */
    board_t *board; /* line 0 the job, 1 + k node k; NULL when quiet */
};

/* The job will not start (or not in time): cancel it, the swarm failed. */
static void progress_give_up (struct progress *p, const char *reason)
{
    cs_error_t e;

    if (job_signal (p->jobid, 0, false, &e) < 0)
        log_msg ("%s", e.text);
    launch_set_state (p->swarmdir, "failed", reason, NULL, NULL);
    launch_event (p->swarmdir, "swarm_ended", "reason", reason, "job_id",
                  p->jobid, NULL);
    p->job_over = true;
}

/* Query the job and print its state when it changed.  Returns -1 when the
 * job is over before the swarm was ready, or was cancelled because it
 * cannot start (a limit it exceeds) or did not start in time.
 */
static int progress_job (struct progress *p)
{
    struct job_status ji;
    char line[sizeof (ji.nodes) + 128], words[128], why[512];
    cs_error_t e;

    if (!p->jobid[0])
        return 0;
    if (job_query (p->jobid, &ji, &e) < 0) {
        /* an error, not a verdict on the job: say so once, keep asking */
        if (strcmp (p->lasterr, e.text)) {
            if (board_live (p->board))
                board_note (p->board, "codeswarm launch: %s (still waiting)",
                            e.text);
            else
                log_msg ("%s (still waiting)", e.text);
        }
        snprintf (p->lasterr, sizeof (p->lasterr), "%s", e.text);
        return 0;
    }
    if (!ji.found)
        return 0;
    if (!strcmp (ji.state, "PENDING")) {
        if (pending_never (&ji, why, sizeof (why))) {
            log_msg ("job %s can never start: %s (%s); cancelled it",
                     p->jobid, why, ji.reason);
            progress_give_up (p, "unsatisfiable");
            return -1;
        }
        pending_words (ji.reason, words, sizeof (words));
        if (p->pending_timeout > 0 &&
            time_mono () - p->started >= p->pending_timeout) {
            log_msg ("job %s still %s after %.0fs (--pending-timeout); "
                     "cancelled it",
                     p->jobid, words, p->pending_timeout);
            progress_give_up (p, "pending_timeout");
            return -1;
        }
        snprintf (line, sizeof (line), "job %s: %s", p->jobid, words);
    } else if (!strcmp (ji.state, "RUNNING")) {
        snprintf (line, sizeof (line), "job %s: running on %s", p->jobid,
                  ji.nodes);
        p->running_shown = true;
    } else
        snprintf (line, sizeof (line), "job %s: %s", p->jobid, ji.state);
    if (strcmp (line, p->shown))
        board_set (p->board, 0, "%s", line);
    if (strcmp (line, p->shown)) {
        if (!strcmp (ji.state, "PENDING"))
            progress_emit ("pending", -1, "job_id", p->jobid, "reason",
                           ji.reason[0] ? ji.reason : "None", "message",
                           line, NULL);
        else if (!strcmp (ji.state, "RUNNING"))
            progress_emit ("running", -1, "job_id", p->jobid, "hosts",
                           ji.nodes, "message", line, NULL);
        else
            progress_emit ("job_state", -1, "job_id", p->jobid, "state",
                           ji.state, "message", line, NULL);
    }
    snprintf (p->shown, sizeof (p->shown), "%s", line);
    if (job_state_final (ji.state)) {
        log_msg ("job %s ended (%s) before all nodes were ready; see "
                 "'%s/log/job-%s.out'",
                 p->jobid, ji.state, p->swarmdir, p->jobid);
        p->job_over = true;
        return -1;
    }
    return 0;
}

static void on_node_change (int k, const struct node_state *n, void *arg)
{
    struct progress *p = arg;

    /* a worker started before the job was seen running: show it first */
    if (n->phase == NODE_STARTED && !p->running_shown)
        progress_job (p);
    if (progress_json) {
        char msg[256];
        switch (n->phase) {
        case NODE_STARTED:
            snprintf (msg, sizeof (msg), "node %d: worker started on %s", k,
                      n->host[0] ? n->host : "?");
            progress_emit ("node_started", k, "host", n->host, "message",
                           msg, NULL);
            break;
        case NODE_READY:
            snprintf (msg, sizeof (msg), "node %d: ready (thread %s)", k,
                      n->thread_id[0] ? n->thread_id : "?");
            progress_emit ("node_ready", k, "thread_id", n->thread_id,
                           "message", msg, NULL);
            break;
        case NODE_STOPPED:
            snprintf (msg, sizeof (msg), "node %d: worker stopped", k);
            progress_emit ("node_stopped", k, "message", msg, NULL);
            break;
        default:
            break;
        }
    }
    switch (n->phase) {
    case NODE_STARTED:
        board_set (p->board, 1 + k, "node %d: worker started on %s", k,
                   n->host[0] ? n->host : "?");
        break;
    case NODE_READY:
        board_set (p->board, 1 + k, "node %d: ready (thread %s)", k,
                   n->thread_id[0] ? n->thread_id : "?");
        break;
    case NODE_STOPPED:
        board_set (p->board, 1 + k, "node %d: worker stopped", k);
        break;
    default:
        break;
    }
}

static bool pid_alive (pid_t pid)
{
    return pid > 0 && (kill (pid, 0) == 0 || errno == EPERM);
}

static volatile sig_atomic_t wait_interrupted;

static void wait_sigint (int sig)
{
    (void)sig;
    wait_interrupted = 1;
}

/* Ctrl-C while waiting: cancel the swarm, or with --detach leave it be.
 * Returns launch's exit status.
 */
static int wait_interrupt (const char *id, const char *jobid, bool detach)
{
    char *av[] = {(char *)"cancel", (char *)id, (char *)"--grace",
                  (char *)"10s", NULL};
    char job[64] = "";

    if (jobid && strcmp (jobid, "local"))
        snprintf (job, sizeof (job), " (job %s)", jobid);
    if (isatty (STDERR_FILENO))
        fputc ('\n', stderr); /* after the terminal's "^C" */
    if (detach) {
        log_msg ("interrupted: swarm %s%s is left as it is (--detach); "
                 "'codeswarm status %s' shows it, 'codeswarm cancel %s' "
                 "stops it",
                 id, job, id, id);
        return 0;
    }
    log_msg ("interrupted: cancelling swarm %s%s (with --detach, Ctrl-C "
             "leaves it be)",
             id, job);
    signal (SIGINT, SIG_DFL);
    cmd_cancel (4, av);
    return 130;
}

/* Wait until every node is ready.  0 when ready, 1 when the swarm ended
 * first (reported), 130 when interrupted (and the swarm cancelled), 0 when
 * interrupted with detach.
 */
static int wait_ready (const char *id, const char *swarmdir, int count,
                       bool quiet, double pending_timeout, bool detach,
                       struct nodes *opened)
{
    struct progress p = {.quiet = quiet,
                         .swarmdir = swarmdir,
                         .pending_timeout = pending_timeout,
                         .started = time_mono ()};
    struct sigaction sa = {.sa_handler = wait_sigint}, old_sa;
    struct nodes ns;
    cs_error_t e;
    double next_query = 0;
    int rc = 1;

    if (opened) {
        ns = *opened; /* read up to now already (--resume): taken over */
        memset (opened, 0, sizeof (*opened));
    } else if (nodes_open (&ns, swarmdir, count, &e) < 0) {
        log_msg ("%s", e.text);
        return 1;
    }
    /* on a terminal, a line per node updated in place */
    if (!quiet && (p.board = board_create (stderr, count + 1)) &&
        board_live (p.board))
        for (int k = 0; k < count; k++)
            board_set (p.board, 1 + k, "node %d: waiting", k);
    sigemptyset (&sa.sa_mask);
    sigaction (SIGINT, &sa, &old_sa);
    for (;;) {
        if (wait_interrupted) {
            rc = wait_interrupt (id, p.jobid[0] ? p.jobid : NULL, detach);
            goto done;
        }
        if (time_mono () >= next_query) {
            cJSON *sw = swarm_load (swarmdir, &e);
            const char *backend = sw ? swarm_str (sw, "backend") : NULL;
            const char *jobid = sw ? swarm_str (sw, "job_id") : NULL;
            const char *state = sw ? swarm_str (sw, "state") : NULL;
            next_query = time_mono () + 1.0;
            if (!sw) {
                log_msg ("%s", e.text);
                goto done;
            }
            if (swarm_state_final (state)) {
                log_msg ("swarm %s %s before all nodes were ready%s%s; see "
                         "'%s/log'",
                         id, state, swarm_str (sw, "end_reason") ? ": " : "",
                         swarm_str (sw, "end_reason")
                             ? swarm_str (sw, "end_reason")
                             : "",
                         swarmdir);
                cJSON_Delete (sw);
                goto done;
            }
            if (backend && !strcmp (backend, "local")) {
                pid_t pid = (pid_t)swarm_int (sw, "supervisor_pid", 0);
                if (pid > 0 && !pid_alive (pid)) {
                    log_msg ("the local supervisor (pid %d) exited; see "
                             "'%s/log'",
                             (int)pid, swarmdir);
                    cJSON_Delete (sw);
                    goto done;
                }
            } else if (jobid) {
                if (strcmp (p.jobid, jobid)) {
                    snprintf (p.jobid, sizeof (p.jobid), "%s", jobid);
                    p.running_shown = false;
                }
                if (progress_job (&p) < 0) {
                    cJSON_Delete (sw);
                    goto done;
                }
            }
            cJSON_Delete (sw);
        }
        if (nodes_update (&ns, on_node_change, &p, &e) < 0) {
            log_msg ("%s", e.text);
            break;
        }
        if (p.job_over)
            goto done;
        if (nodes_count_phase (&ns, NODE_READY) == count) {
            char msg[128];
            snprintf (msg, sizeof (msg), "swarm %s: %d/%d nodes ready", id,
                      count, count);
            progress_emit ("ready", -1, "swarm_id", id, "message", msg, NULL);
            if (!quiet)
                fprintf (stderr, "swarm %s: %d/%d nodes ready\n", id, count,
                         count);
            rc = 0;
            break;
        }
        for (int k = 0; k < count; k++) {
            if (ns.node[k].phase == NODE_STOPPED) {
                log_msg ("node %d stopped before it was ready; see '%s/log'", k,
                         swarmdir);
                goto done;
            }
        }
        usleep (200000);
    }
done:
    sigaction (SIGINT, &old_sa, NULL);
    board_destroy (p.board);
    nodes_close (&ns);
    return rc;
}

/* ---- the local supervisor: double fork, setsid ----------------------------
 */

static int start_supervisor (const char *id, const char *swarmdir,
                             cs_error_t *errp)
{
    char logpath[LAUNCH_PATH_MAX];
    pid_t pid;
    int status;

    pathf (logpath, sizeof (logpath), "%s/log/supervisor.log", swarmdir);
    if ((pid = fork ()) < 0)
        return errprintf (errp, "fork: %s", strerror (errno));
    if (pid == 0) {
        int fd;
        if (setsid () < 0)
            _exit (1);
        if ((pid = fork ()) < 0)
            _exit (1);
        if (pid > 0)
            _exit (0);
        if ((fd = open ("/dev/null", O_RDONLY)) >= 0) {
            dup2 (fd, 0);
            close (fd);
        }
        if ((fd = open (logpath, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
            close (fd);
        }
        if (chdir (swarmdir) < 0)
            _exit (1);
        /* nothing of the caller's (pipes of a shell, a test harness) may
         * stay open in a process that outlives it */
        for (int i = 3; i < 1024; i++)
            close (i);
        execl (launch_self (), "codeswarm-launch", "supervise", id,
               (char *)NULL);
        _exit (127);
    }
    if (waitpid (pid, &status, 0) < 0 || !WIFEXITED (status) ||
        WEXITSTATUS (status) != 0)
        return errprintf (errp, "cannot start the local supervisor");
    return 0;
}

/* ---- swarm.json --------------------------------------------------------- */

/* --resume: the new launch's members over the old ones; "id", "created"
 * and the chain of jobs stay, what belonged to the last run goes.
 */
static int resume_cb (cJSON *swarm, void *arg, cs_error_t *errp);

struct create_arg {
    cJSON *content;
};

static int create_cb (cJSON *swarm, void *arg, cs_error_t *errp)
{
    struct create_arg *a = arg;
    cJSON *item;

    if (cJSON_GetObjectItemCaseSensitive (swarm, "id")) {
        errno = EEXIST;
        return errprintf (errp, "swarm already exists");
    }
    while ((item = a->content->child)) {
        cJSON_DetachItemViaPointer (a->content, item);
        cJSON_AddItemToObject (swarm, item->string, item);
    }
    return 0;
}

static int resume_cb (cJSON *swarm, void *arg, cs_error_t *errp)
{
    struct create_arg *a = arg;
    const cJSON *old = cJSON_GetObjectItemCaseSensitive (swarm, "resumed");
    double n = cJSON_IsNumber (old) ? old->valuedouble : 0;
    cJSON *item;

    if (!swarm_state_final (swarm_str (swarm, "state"))) {
        errno = EBUSY;
        return errprintf (errp, "swarm is %s: not over",
                          swarm_str (swarm, "state")
                              ? swarm_str (swarm, "state")
                              : "in an unknown state");
    }
    cJSON_DeleteItemFromObject (swarm, "end_reason");
    cJSON_DeleteItemFromObject (swarm, "supervisor_pid");
    cJSON_DeleteItemFromObject (swarm, "resumed");
    while ((item = a->content->child)) {
        cJSON_DetachItemViaPointer (a->content, item);
        if (!strcmp (item->string, "id") || !strcmp (item->string, "created")
            || (!strcmp (item->string, "jobs") &&
                cJSON_GetObjectItemCaseSensitive (swarm, "jobs"))) {
            cJSON_Delete (item);
            continue;
        }
        cJSON_DeleteItemFromObjectCaseSensitive (swarm, item->string);
        cJSON_AddItemToObject (swarm, item->string, item);
    }
    if (json_add_double (swarm, "resumed", n + 1) < 0)
        return errprintf (errp, "out of memory");
    return 0;
}

struct job_arg {
    const char *jobid;
};

static int add_job_cb (cJSON *swarm, void *arg, cs_error_t *errp)
{
    struct job_arg *a = arg;
    cJSON *jobs = cJSON_GetObjectItemCaseSensitive (swarm, "jobs");
    cJSON *s;

    if (!cJSON_IsArray (jobs)) {
        cJSON_DeleteItemFromObject (swarm, "jobs");
        if (!(jobs = cJSON_AddArrayToObject (swarm, "jobs")))
            return errprintf (errp, "out of memory");
    }
    if (!(s = cJSON_CreateString (a->jobid)) ||
        !cJSON_AddItemToArray (jobs, s)) {
        cJSON_Delete (s);
        return errprintf (errp, "out of memory");
    }
    cJSON_DeleteItemFromObject (swarm, "job_id");
    if (json_add_str (swarm, "job_id", a->jobid) < 0)
        return errprintf (errp, "out of memory");
    return 0;
}

int launch_add_job (const char *swarmdir, const char *jobid, cs_error_t *errp);
int launch_add_job (const char *swarmdir, const char *jobid, cs_error_t *errp)
{
    struct job_arg a = {jobid};
    return swarm_update (swarmdir, add_job_cb, &a, errp);
}

static cJSON *build_swarm_json (const struct launch_opts *o, const char *id,
                                const char *backend, const char *script,
                                const char *mpi, int warn, bool use_sbatch)
{
    cJSON *s = cJSON_CreateObject ();
    cJSON *opts = cJSON_CreateObject ();
    cJSON *sb = cJSON_CreateArray ();
    bool bad = !s || !opts || !sb;

    for (size_t i = 0; !bad && i < o->nsbatch_opts; i++) {
        cJSON *it = cJSON_CreateString (o->sbatch_opts[i]);
        bad = !it || !cJSON_AddItemToArray (sb, it);
    }
    if (!bad) {
        bad |= json_add_str (s, "id", id) < 0;
        bad |= json_add_double (s, "created", time_now ()) < 0;
        bad |= json_add_u64 (s, "nodes", (uint64_t)o->nodes) < 0;
        bad |= json_add_str (s, "backend", backend) < 0;
        bad |= json_add_str (s, "state", "submitted") < 0;
        bad |= !cJSON_AddArrayToObject (s, "jobs");
        bad |= !cJSON_AddNullToObject (s, "job_id");
        if (script)
            bad |= json_add_str (s, "script", script) < 0;
        if (o->time) {
            bad |= json_add_str (opts, "time", o->time) < 0;
            bad |= json_add_u64 (opts, "time_secs", o->time_secs) < 0;
        }
        if (o->partition)
            bad |= json_add_str (opts, "partition", o->partition) < 0;
        if (o->account)
            bad |= json_add_str (opts, "account", o->account) < 0;
        if (o->qos)
            bad |= json_add_str (opts, "qos", o->qos) < 0;
        if (o->gpus_per_node)
            bad |= json_add_u64 (opts, "gpus_per_node",
                                 (uint64_t)o->gpus_per_node) < 0;
        if (o->config)
            bad |= json_add_str (opts, "config", o->config) < 0;
        if (o->agents_md)
            bad |= json_add_str (opts, "agents_md", o->agents_md) < 0;
        if (o->template)
            bad |= json_add_str (opts, "template", o->template) < 0;
        bad |= json_add_bool (opts, "persist", o->persist) < 0;
        bad |= json_add_double (opts, "idle_timeout", o->idle_timeout) < 0;
        bad |= json_add_u64 (opts, "warn", (uint64_t)warn) < 0;
        bad |= json_add_str (opts, "mpi", mpi) < 0;
        bad |= json_add_bool (opts, "use_sbatch", use_sbatch) < 0;
        bad |= json_add_item (opts, "sbatch_opts", sb) < 0;
        sb = NULL;
        bad |= json_add_item (s, "options", opts) < 0;
        opts = NULL;
    }
    cJSON_Delete (sb);
    cJSON_Delete (opts);
    if (bad) {
        cJSON_Delete (s);
        return NULL;
    }
    return s;
}

/* ---- skills files of a --request -------------------------------------------
 */

/* Write the skills files (checked by launch_request_apply) into one
 * node's workspace dir, under .agents/skills/. */
static int bundle_write (const cJSON *files, const char *dir)
{
    char rel[CONFINED_PATH_MAX + 32];
    cs_error_t e;

    for (const cJSON *f = files ? files->child : NULL; f; f = f->next) {
        const char *p = cJSON_GetObjectItemCaseSensitive (f, "path")
                            ->valuestring;
        const char *c = cJSON_GetObjectItemCaseSensitive (f, "content")
                            ->valuestring;
        snprintf (rel, sizeof (rel), ".agents/skills/%s", p);
        if (confined_write (dir, rel, c, strlen (c), &e) < 0)
            goto error;
    }
    return 0;
error:
    log_msg ("skills files: %s", e.text);
    return -1;
}

/* ---- the verb -------------------------------------------------------------
 */

enum {
    OPT_SBATCH = 256,
    OPT_AGENTS,
    OPT_PERSIST,
    OPT_IDLE,
    OPT_LOCAL,
    OPT_SLURM,
    OPT_NOWAIT,
    OPT_DETACH,
    OPT_PENDING,
    OPT_PARSABLE,
    OPT_TEMPLATE,
    OPT_RESUME,
    OPT_NAME,
    OPT_WARN,
    OPT_PROGRESS_JSON,
    OPT_REQUEST,
};

static const struct option launch_longopts[] = {
    {"nodes", required_argument, NULL, 'N'},
    {"time", required_argument, NULL, 't'},
    {"partition", required_argument, NULL, 'p'},
    {"account", required_argument, NULL, 'A'},
    {"qos", required_argument, NULL, 'q'},
    {"gpus-per-node", required_argument, NULL, 'G'},
    {"sbatch-opt", required_argument, NULL, OPT_SBATCH},
    {"config", required_argument, NULL, 'c'},
    {"agents-md", required_argument, NULL, OPT_AGENTS},
    {"persist", no_argument, NULL, OPT_PERSIST},
    {"warn", required_argument, NULL, OPT_WARN},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"local", no_argument, NULL, OPT_LOCAL},
    {"slurm", no_argument, NULL, OPT_SLURM},
    {"no-wait", no_argument, NULL, OPT_NOWAIT},
    {"detach", no_argument, NULL, OPT_DETACH},
    {"pending-timeout", required_argument, NULL, OPT_PENDING},
    {"parsable", no_argument, NULL, OPT_PARSABLE},
    {"progress-json", no_argument, NULL, OPT_PROGRESS_JSON},
    {"request", required_argument, NULL, OPT_REQUEST},
    {"template", required_argument, NULL, OPT_TEMPLATE},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"name", required_argument, NULL, OPT_NAME},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* --resume ID: the options of the swarm's swarm.json, where the command
 * line did not say otherwise; the swarm must have ended.
 */
static int launch_resume_opts (struct launch_opts *o)
{
    static cJSON *sw; /* kept: o borrows its strings */
    char home[LAUNCH_PATH_MAX], dir[LAUNCH_PATH_MAX];
    const cJSON *opts, *sb, *it;
    const char *state, *cfg;
    cs_error_t e;

    if (launch_home (home, sizeof (home), false) < 0)
        return -1;
    if (launch_swarm_dir (home, o->resume, dir, sizeof (dir), &e) < 0 ||
        !(sw = swarm_load (dir, &e))) {
        log_msg ("--resume: %s", e.text);
        return -1;
    }
    state = swarm_str (sw, "state");
    if (!swarm_state_final (state)) {
        log_msg ("--resume: swarm '%s' is %s, not over (cancel it first)",
                 o->resume, state ? state : "in an unknown state");
        return -1;
    }
    opts = cJSON_GetObjectItemCaseSensitive (sw, "options");
    o->name = o->resume;
    o->nodes = swarm_int (sw, "nodes", 0);
    if (!o->local && !o->slurm && swarm_str (sw, "backend") &&
        !strcmp (swarm_str (sw, "backend"), "local"))
        o->local = true;
    if (o->local)
        return 0;
    if (!o->time && swarm_str (opts, "time")) {
        o->time = swarm_str (opts, "time");
        o->time_secs = (uint64_t)swarm_num (opts, "time_secs", 0);
    }
    if (!o->partition)
        o->partition = swarm_str (opts, "partition");
    if (!o->account)
        o->account = swarm_str (opts, "account");
    if (!o->qos)
        o->qos = swarm_str (opts, "qos");
    if (!o->gpus_per_node)
        o->gpus_per_node = swarm_int (opts, "gpus_per_node", 0);
    cfg = swarm_str (opts, "config");
    if (!o->config && cfg && access (cfg, R_OK) == 0)
        o->config = cfg;
    if (!o->template && swarm_str (opts, "template") &&
        access (swarm_str (opts, "template"), R_OK) == 0)
        o->template = swarm_str (opts, "template");
    if (!o->persist &&
        cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (opts, "persist"))) {
        o->persist = true;
        if (!o->warn_given && swarm_num (opts, "warn", 0) > 0) {
            o->warn = swarm_num (opts, "warn", 0);
            o->warn_given = true;
        }
    }
    if (o->idle_timeout == 0)
        o->idle_timeout = swarm_num (opts, "idle_timeout", 0);
    sb = cJSON_GetObjectItemCaseSensitive (opts, "sbatch_opts");
    if (o->nsbatch_opts == 0)
        cJSON_ArrayForEach (it, sb)
            if (cJSON_IsString (it) && o->nsbatch_opts < MAX_SBATCH_OPTS)
                o->sbatch_opts[o->nsbatch_opts++] = it->valuestring;
    return 0;
}

static int parse_launch_opts (int argc, char **argv, struct launch_opts *o)
{
    int c;
    cs_error_t e;

    memset (o, 0, sizeof (*o));
    opterr = 0;
    optind = 1;
    while ((c = getopt_long (argc, argv, ":N:t:p:A:q:G:c:h", launch_longopts,
                             NULL)) != -1) {
        switch (c) {
        case 'N':
            if (parse_positive ("--nodes", optarg, &o->nodes) < 0)
                return -1;
            break;
        case 't':
            o->time = optarg;
            if (walltime_parse (optarg, &o->time_secs, &e) < 0) {
                log_msg ("--time: %s", e.text);
                return -1;
            }
            break;
        case 'p':
            o->partition = optarg;
            break;
        case 'A':
            o->account = optarg;
            break;
        case 'q':
            o->qos = optarg;
            break;
        case 'G':
            if (parse_positive ("--gpus-per-node", optarg, &o->gpus_per_node) <
                0)
                return -1;
            break;
        case OPT_SBATCH:
            if (optarg[0] != '-' || strchr (optarg, '\n')) {
                log_msg ("--sbatch-opt '%s' is not an sbatch option (it must "
                         "start with '-', e.g. --sbatch-opt=--exclusive)",
                         optarg);
                return -1;
            }
            if (o->nsbatch_opts == MAX_SBATCH_OPTS) {
                log_msg ("too many --sbatch-opt (at most %d)", MAX_SBATCH_OPTS);
                return -1;
            }
            o->sbatch_opts[o->nsbatch_opts++] = optarg;
            break;
        case 'c':
            o->config = optarg;
            break;
        case OPT_AGENTS:
            o->agents_md = optarg;
            break;
        case OPT_PERSIST:
            o->persist = true;
            break;
        case OPT_WARN:
            if (parse_dur ("--warn", optarg, &o->warn) < 0)
                return -1;
            o->warn_given = true;
            break;
        case OPT_IDLE:
            if (parse_dur ("--idle-timeout", optarg, &o->idle_timeout) < 0)
                return -1;
            break;
        case OPT_LOCAL:
            o->local = true;
            break;
        case OPT_SLURM:
            o->slurm = true;
            break;
        case OPT_NOWAIT:
            o->no_wait = true;
            break;
        case OPT_DETACH:
            o->detach = true;
            break;
        case OPT_PENDING:
            if (parse_dur ("--pending-timeout", optarg, &o->pending_timeout) <
                0)
                return -1;
            break;
        case OPT_PARSABLE:
            o->parsable = true;
            break;
        case OPT_PROGRESS_JSON:
            o->progress_json = true;
            break;
        case OPT_REQUEST:
            o->request = optarg;
            break;
        case OPT_TEMPLATE:
            o->template = optarg;
            break;
        case OPT_NAME:
            o->name = optarg;
            break;
        case OPT_RESUME:
            o->resume = optarg;
            break;
        case 'h':
            launch_usage (stdout);
            exit (0);
        case ':':
            log_msg ("option '%s' needs a value", argv[optind - 1]);
            return -1;
        default:
            log_msg ("unknown option '%s' (see 'codeswarm launch --help')",
                     argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        log_msg ("unexpected argument '%s' (see 'codeswarm launch --help')",
                 argv[optind]);
        return -1;
    }
    if (o->resume && (o->nodes || o->name)) {
        log_msg ("--resume takes the node count and the id of the swarm: "
                 "drop %s", o->nodes ? "--nodes" : "--name");
        return -1;
    }
    if (o->resume && launch_resume_opts (o) < 0)
        return -1;
    if (o->nodes == 0 && !o->request) {
        log_msg ("--nodes is required (a positive integer)");
        return -1;
    }
    if (o->local && o->slurm) {
        log_msg ("--local and --slurm exclude each other");
        return -1;
    }
    if (o->no_wait && (o->detach || o->pending_timeout > 0)) {
        log_msg ("%s needs launch to wait: drop --no-wait",
                 o->detach ? "--detach" : "--pending-timeout");
        return -1;
    }
    if (o->config) {
        /* the workers read it on other nodes, from another directory */
        static char abs_config[PATH_MAX];
        if (readable_file ("--config", o->config) < 0)
            return -1;
        if (!realpath (o->config, abs_config)) {
            log_msg ("--config: cannot resolve '%s': %s", o->config,
                     strerror (errno));
            return -1;
        }
        o->config = abs_config;
    }
    if (o->agents_md && readable_file ("--agents-md", o->agents_md) < 0)
        return -1;
    if (o->request && readable_file ("--request", o->request) < 0)
        return -1;
    if (o->template && readable_file ("--template", o->template) < 0)
        return -1;
    return 0;
}

bool launch_valid_id (const char *id)
{
    size_t n = strlen (id);

    if (n == 0 || n > 64 || id[0] == '.')
        return false;
    return strspn (id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789._-") == n;
}

/* The first option of the command line that only Slurm can honour, or
 * NULL.  (The slurm.* defaults of codeswarm.yaml are not applied to a local
 * swarm, so they are not errors.)
 */
static const char *slurm_only_option (const struct launch_opts *o)
{
    if (o->time)
        return "--time";
    if (o->partition)
        return "--partition";
    if (o->account)
        return "--account";
    if (o->qos)
        return "--qos";
    if (o->gpus_per_node)
        return "--gpus-per-node";
    if (o->nsbatch_opts)
        return "--sbatch-opt";
    if (o->persist)
        return "--persist";
    if (o->warn_given)
        return "--warn";
    if (o->template)
        return "--template";
    if (o->pending_timeout > 0)
        return "--pending-timeout";
    return NULL;
}

/* One launch, from its options to the started swarm. */
struct launch {
    struct launch_opts o;
    struct cs_config cfg;
    bool have_cfg;
    bool local;
    const char *backend;        /* "local" or "slurm" */
    int warn;                   /* --warn seconds (0: none) */
    bool use_sbatch;
    const char *mpi;
    char home[LAUNCH_PATH_MAX];
    char swarmdir[LAUNCH_PATH_MAX];
    char id[80];
    char jobid[32];
    char *agents;               /* --agents-md contents */
    char *script;               /* the rendered batch script (slurm) */
    cJSON *request;             /* --request */
    const cJSON *skills;        /* the request's skills bundle (in request) */
    struct nodes resumed;       /* --resume: the nodes' state before */
    bool have_resumed;
};

/* Exit codes of the steps: 0, LAUNCH_FAILED or LAUNCH_USAGE. */
enum { LAUNCH_FAILED = 1, LAUNCH_USAGE = 2 };

/* codeswarm.yaml: defaults for what the command line did not say, and
 * whether the options fit the backend.
 */
static int launch_configure (struct launch *l)
{
    struct launch_opts *o = &l->o;
    struct cs_config *cfg = &l->cfg;
    const char *opt;
    cs_error_t e;

    if (config_load (cfg, o->config, &e) < 0) {
        log_msg ("%s", e.text);
        return LAUNCH_USAGE;
    }
    l->have_cfg = true;
    l->local = o->local || (!o->slurm && !strcmp (cfg->backend, "local"));
    l->backend = l->local ? "local" : "slurm";
    if (l->local && (opt = slurm_only_option (o))) {
        if (o->local)
            log_msg ("%s is a Slurm option: it means nothing with --local",
                     opt);
        else
            log_msg ("%s is a Slurm option, and slurm.backend is 'local' "
                     "in '%s': drop it, or add --slurm",
                     opt, cfg->path ? cfg->path : "codeswarm.yaml");
        return LAUNCH_USAGE;
    }
    if (l->local)
        return 0;
    if (!o->partition && cfg->partition)
        o->partition = cfg->partition;
    if (!o->account && cfg->account)
        o->account = cfg->account;
    if (!o->qos && cfg->qos)
        o->qos = cfg->qos;
    if (!o->time && cfg->time_limit) {
        o->time = cfg->time_limit;
        if (walltime_parse (o->time, &o->time_secs, &e) < 0) {
            log_msg ("slurm.time: %s", e.text);
            return LAUNCH_USAGE;
        }
    }
    if (!o->template && cfg->sbatch_template) {
        o->template = cfg->sbatch_template;
        if (readable_file ("slurm.template", o->template) < 0)
            return LAUNCH_USAGE;
    }
    if (o->persist) {
        l->warn = o->warn_given ? (int)o->warn : cfg->warn_seconds;
        if (l->warn <= 0 || l->warn > 65535) {
            log_msg ("--warn must be between 1 and 65535 seconds");
            return LAUNCH_USAGE;
        }
        if (o->time_secs && o->time_secs != WALLTIME_INFINITE &&
            (uint64_t)l->warn >= o->time_secs) {
            log_msg ("--warn (%d s) must be shorter than --time (%llu s)",
                     l->warn, (unsigned long long)o->time_secs);
            return LAUNCH_USAGE;
        }
    } else if (o->warn_given) {
        log_msg ("--warn is only meaningful with --persist");
        return LAUNCH_USAGE;
    }
    return 0;
}

/* Slurm must answer: never fall back to local processes on a login node. */
static int launch_check_slurm (struct launch *l)
{
    cs_error_t e;

    if (l->local || job_slurm_ping (&e) == 0)
        return 0;
    log_msg ("cannot reach Slurm: %s", e.text);
    fprintf (stderr,
             "hint: make Slurm's commands and configuration available "
             "(e.g. 'module load slurm',\n"
             "hint: or SLURM_CONF), or run the agents as processes on "
             "this machine with --local\n"
             "hint: (slurm.backend: local in codeswarm.yaml makes that "
             "the default)\n");
    return LAUNCH_FAILED;
}

/* Fill the batch script template (slurm) into l->script. */
static int launch_render_script (struct launch *l)
{
    const struct launch_opts *o = &l->o;
    const char *env_t = getenv ("CODESWARM_SBATCH_TEMPLATE");
    const char *template_path;
    char templatebuf[PATH_MAX];
    char *template_text = NULL, *exports = NULL, *sbatch_lines = NULL;
    char *q_worker = NULL, *q_launch = NULL, *worker_args = NULL;
    char *q_id, *q_dir, *q_home;
    char workerbuf[PATH_MAX], nodes[16], idle[32], warnbuf[16];
    cs_error_t e;
    int rc = LAUNCH_USAGE;

    if (o->template)
        template_path = o->template;
    else if (env_t && *env_t)
        template_path = env_t;
    else {
        pathf (templatebuf, sizeof (templatebuf), "%s/codeswarm.sbatch.in",
               prefix_dir (PREFIX_DIR_PKGDATA));
        template_path = templatebuf;
    }
    l->use_sbatch = o->template != NULL || o->nsbatch_opts > 0;
    if (read_file (template_path, &template_text) < 0) {
        log_msg ("cannot read the batch script template '%s': %s",
                 template_path, strerror (errno));
        return LAUNCH_USAGE;
    }
    if (l->cfg.use_pmix && srun_has_pmix ())
        l->mpi = "--mpi=pmix";
    q_worker = template_shell_quote (
        launch_worker_path (workerbuf, sizeof (workerbuf)));
    q_launch = template_shell_quote (launch_self ());
    exports = render_exports (l->home, o->config);
    sbatch_lines = render_sbatch_lines (o, l->id, l->swarmdir, l->warn);
    if (o->config) {
        char *qc = template_shell_quote (o->config);
        if (qc && asprintf (&worker_args, "--config %s", qc) < 0)
            worker_args = NULL;
        free (qc);
    } else
        worker_args = strdup ("");
    q_id = template_shell_quote (l->id);
    q_dir = template_shell_quote (l->swarmdir);
    q_home = template_shell_quote (l->home);
    snprintf (nodes, sizeof (nodes), "%d", o->nodes);
    snprintf (idle, sizeof (idle), "%.0f", o->idle_timeout);
    snprintf (warnbuf, sizeof (warnbuf), "%d", l->warn);
    {
        struct template_var vars[] = {
            {"SWARM_ID", q_id},
            {"SWARM_DIR", q_dir},
            {"HOME", q_home},
            {"NODES", nodes},
            {"WORKER", q_worker},
            {"WORKER_ARGS", worker_args},
            {"LAUNCHER", q_launch},
            {"MPI", l->mpi},
            {"SBATCH", sbatch_lines},
            {"EXPORTS", exports},
            {"PERSIST", o->persist ? "1" : "0"},
            {"IDLE_TIMEOUT", idle},
            {"WARN", warnbuf},
            {"SIGNAL", l->warn > 0 ? "USR1" : ""},
            {"VERSION", PACKAGE_VERSION},
        };
        if (q_id && q_dir && q_home && q_worker && q_launch && exports &&
            sbatch_lines && worker_args)
            l->script = template_render (template_text, vars,
                                         sizeof (vars) / sizeof (vars[0]),
                                         &e);
        else
            snprintf (e.text, sizeof (e.text), "out of memory");
    }
    if (!l->script)
        log_msg ("template '%s': %s", template_path, e.text);
    else
        rc = 0;
    free (q_id);
    free (q_dir);
    free (q_home);
    free (template_text);
    free (exports);
    free (sbatch_lines);
    free (q_worker);
    free (q_launch);
    free (worker_args);
    return rc;
}

/* Everything to read and render, before anything is created: AGENTS.md,
 * the swarm id (which must be new), the batch script.
 */
static int launch_prepare (struct launch *l)
{
    const struct launch_opts *o = &l->o;

    if (o->agents_md && read_file (o->agents_md, &l->agents) < 0) {
        log_msg ("--agents-md: cannot read '%s': %s", o->agents_md,
                 strerror (errno));
        return LAUNCH_USAGE;
    }
    if (o->name)
        snprintf (l->id, sizeof (l->id), "%s", o->name);
    else
        make_id (l->id, sizeof (l->id));
    pathf (l->swarmdir, sizeof (l->swarmdir), "%s/swarms/%s", l->home, l->id);
    if (!o->resume && access (l->swarmdir, F_OK) == 0) {
        log_msg ("swarm '%s' already exists in '%s/swarms'", l->id, l->home);
        return LAUNCH_USAGE;
    }
    if (!l->local)
        return launch_render_script (l);
    return 0;
}

/* The swarm directory: log/, work/<k>/ (with AGENTS.md), job.sbatch,
 * swarm.json and the swarm_launched event.
 */
static int launch_create (struct launch *l)
{
    const struct launch_opts *o = &l->o;
    char path[LAUNCH_PATH_MAX];
    struct create_arg ca;
    cJSON *sw, *p;
    cs_error_t e;
    int rc;

    if (mb_swarm_dir (l->home, l->id, true, l->swarmdir, sizeof (l->swarmdir),
                      &e) < 0)
        goto fail_e;
    pathf (path, sizeof (path), "%s/log", l->swarmdir);
    if (mb_secure_dir (path, true, &e) < 0)
        goto fail_e;
    pathf (path, sizeof (path), "%s/work", l->swarmdir);
    if (mb_secure_dir (path, true, &e) < 0)
        goto fail_e;
    for (int k = 0; k < o->nodes; k++) {
        pathf (path, sizeof (path), "%s/work/%d", l->swarmdir, k);
        if (mb_secure_dir (path, true, &e) < 0)
            goto fail_e;
        if (l->agents) {
            pathf (path, sizeof (path), "%s/work/%d/AGENTS.md", l->swarmdir,
                   k);
            if (write_file (path, l->agents, 0600) < 0)
                goto fail_write;
        }
        if (l->skills) {
            pathf (path, sizeof (path), "%s/work/%d", l->swarmdir, k);
            if (bundle_write (l->skills, path) < 0)
                return LAUNCH_FAILED;
        }
    }
    if (l->script) {
        pathf (path, sizeof (path), "%s/job.sbatch", l->swarmdir);
        if (write_file (path, l->script, 0700) < 0)
            goto fail_write;
    }
    if (!(sw = build_swarm_json (o, l->id, l->backend,
                                 l->script ? path : NULL, l->mpi, l->warn,
                                 l->use_sbatch))) {
        log_msg ("out of memory");
        return LAUNCH_FAILED;
    }
    ca.content = sw;
    if (o->resume) {
        /* what is in the mailbox now is the past: wait for what comes */
        if (nodes_open (&l->resumed, l->swarmdir, o->nodes, &e) < 0 ||
            nodes_update (&l->resumed, NULL, NULL, &e) < 0) {
            cJSON_Delete (sw);
            goto fail_e;
        }
        l->have_resumed = true;
        for (int k = 0; k < o->nodes; k++)
            l->resumed.node[k].phase = NODE_NONE;
    }
    rc = swarm_update (l->swarmdir, o->resume ? resume_cb : create_cb, &ca,
                       &e);
    cJSON_Delete (sw);
    if (rc < 0) {
        log_msg ("%s/swarm.json: %s", l->swarmdir, e.text);
        return LAUNCH_FAILED;
    }
    {
        char nb[16];
        snprintf (nb, sizeof (nb), "%d", o->nodes);
        launch_audit (l->swarmdir, o->resume ? "resume" : "launch", "backend",
                      l->backend, "nodes", nb, NULL);
    }
    if (o->resume) {
        launch_event (l->swarmdir, "swarm_resumed", "swarm_id", l->id,
                      "backend", l->backend, NULL);
        return 0;
    }
    p = cJSON_CreateObject ();
    if (!p || json_add_str (p, "swarm_id", l->id) < 0 ||
        json_add_str (p, "backend", l->backend) < 0 ||
        json_add_u64 (p, "nodes", (uint64_t)o->nodes) < 0 ||
        swarm_event (l->swarmdir, "swarm_created", p, &e) < 0)
        log_msg ("cannot record event 'swarm_created'");
    cJSON_Delete (p);
    return 0;
fail_e:
    log_msg ("%s", e.text);
    return LAUNCH_FAILED;
fail_write:
    log_msg ("cannot write '%s': %s", path, strerror (errno));
    return LAUNCH_FAILED;
}

/* Submit the job (slurm). */
static int launch_submit (struct launch *l)
{
    struct job_spec spec;
    char *text = NULL;
    char **env = launch_job_env (l->home);
    cs_error_t e;
    cJSON *cur = swarm_load (l->swarmdir, &e);
    int src = -1;

    if (cur && env &&
        launch_job_spec (cur, l->swarmdir, &spec, &text, &e) == 0) {
        spec.env = env;
        src = job_submit (&spec, l->jobid, sizeof (l->jobid), &e);
    }
    free (text);
    cJSON_Delete (cur);
    launch_env_free (env);
    if (src < 0) {
        log_msg ("cannot submit the job: %s", e.text);
        launch_set_state (l->swarmdir, "failed", "submit_failed", NULL, NULL);
        launch_event (l->swarmdir, "swarm_ended", "reason", "submit_failed",
                      NULL);
        return LAUNCH_FAILED;
    }
    if (launch_add_job (l->swarmdir, l->jobid, &e) < 0) {
        log_msg ("%s", e.text);
        return LAUNCH_FAILED;
    }
    launch_event (l->swarmdir, "job_submitted", "job_id", l->jobid, NULL);
    return 0;
}

/* Start the local supervisor (local). */
static int launch_supervise (struct launch *l)
{
    cs_error_t e;

    snprintf (l->jobid, sizeof (l->jobid), "local");
    if (start_supervisor (l->id, l->swarmdir, &e) < 0) {
        log_msg ("%s", e.text);
        launch_set_state (l->swarmdir, "failed", "supervisor_failed", NULL,
                          NULL);
        return LAUNCH_FAILED;
    }
    return 0;
}

/* What was started, in the form asked for. */
static void launch_report (const struct launch *l)
{
    const struct launch_opts *o = &l->o;

    if (o->progress_json) {
        char msg[256], nodes[16];
        snprintf (nodes, sizeof (nodes), "%d", o->nodes);
        if (!l->local)
            snprintf (msg, sizeof (msg), "swarm %s: submitted as job %s",
                      l->id, l->jobid);
        else
            snprintf (msg, sizeof (msg), "swarm %s: started locally", l->id);
        progress_emit ("created", -1, "swarm_id", l->id, "backend",
                       l->backend, "job_id", l->jobid, "nodes", nodes,
                       "message", msg, NULL);
    }
    else if (o->parsable)
        printf ("%s;%s\n", l->id, l->jobid);
    else if (!l->local)
        printf ("swarm %s: submitted as job %s (%d node%s)\n", l->id,
                l->jobid, o->nodes, o->nodes == 1 ? "" : "s");
    else
        printf ("swarm %s: started locally (%d node%s)\n", l->id, o->nodes,
                o->nodes == 1 ? "" : "s");
    fflush (stdout);
}

static void launch_release (struct launch *l)
{
    if (l->have_resumed)
        nodes_close (&l->resumed);
    cJSON_Delete (l->request);
    free (l->agents);
    free (l->script);
    if (l->have_cfg)
        config_release (&l->cfg);
}

int cmd_launch (int argc, char **argv)
{
    struct launch l = { .mpi = "" };
    int rc;

    if (parse_launch_opts (argc, argv, &l.o) < 0)
        return LAUNCH_USAGE;
    progress_json = l.o.progress_json;
    if (l.o.request && launch_request_apply (l.o.request, &l.o, &l.request,
                                             &l.agents, &l.skills) < 0)
        return LAUNCH_USAGE;
    rc = LAUNCH_USAGE;
    if (l.o.local && l.o.slurm) {
        log_msg ("--local and --slurm exclude each other");
        goto out;
    }
    if (l.o.name && !launch_valid_id (l.o.name)) {
        log_msg ("--name '%s' is not a valid swarm id (use 1-64 of "
                 "A-Z a-z 0-9 . _ - not starting with '.')",
                 l.o.name);
        goto out;
    }
    if (launch_via_router_possible (&l.o)) {
        char *md = NULL;
        if (l.o.agents_md && read_file (l.o.agents_md, &md) < 0) {
            log_msg ("--agents-md: cannot read '%s': %s", l.o.agents_md,
                     strerror (errno));
            goto out;
        }
        rc = launch_via_router (&l.o, md);
        free (md);
        if (rc >= 0)
            goto out;
    }
    if (l.o.progress_json)
        l.o.parsable = true;    /* nothing for humans on stdout */
    rc = LAUNCH_FAILED;
    if (launch_home (l.home, sizeof (l.home), true) < 0)
        goto out;
    if ((rc = launch_configure (&l)) || (rc = launch_check_slurm (&l))
        || (rc = launch_prepare (&l)) || (rc = launch_create (&l))
        || (rc = l.local ? launch_supervise (&l) : launch_submit (&l)))
        goto out;
    launch_report (&l);
    if (!l.o.no_wait)
        rc = wait_ready (l.id, l.swarmdir, l.o.nodes, l.o.parsable,
                         l.o.pending_timeout, l.o.detach,
                         l.have_resumed ? &l.resumed : NULL);
out:
    launch_release (&l);
    return rc;
}
