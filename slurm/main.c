/* main.c - codeswarm-launch: the verbs "codeswarm launch|cancel|status|
 * doctor|setup-codex" and the internal verbs the batch script and the local
 * supervisor use.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "mailbox/mailbox.h"
#include "slurm/launch.h"
#include "slurm/swarm.h"

extern char **environ;

static void usage (FILE *f)
{
    fprintf (
        f, "usage: codeswarm-launch VERB [OPTIONS]   (usually run as "
           "\"codeswarm VERB\")\n"
           "\n"
           "  launch --nodes N [OPTIONS]   start a swarm (see launch --help)\n"
           "  status [SWARM] [--json]      show swarms\n"
           "  cancel SWARM [--grace D]     stop a swarm and its job chain\n"
           "  forget SWARM... | --purge    remove swarms that have ended\n"
           "  top [SWARM]                  a live view of the nodes\n"
           "  doctor [--on-node]           check the installation\n"
           "  setup-codex [--version V]    install codex under <home>/tools\n"
           "  export SWARM [-o FILE]       write a swarm as one tar.gz\n"
           "  import FILE [--as ID]        restore an exported swarm\n"
           "  audit [SWARM] [--json]       who did what to the swarms\n"
           "  report SWARM [--json]        tokens per node-hour and per turn\n"
           "\n"
           "internal (used by the batch script and the local supervisor):\n"
           "  job-event SWARM start|warning [timer|slurm]|migrating|end [RC]\n"
           "      (start: exit 3 when the swarm has ended or was cancelled)\n"
           "  idle-watch SWARM SECONDS [--pid PID]\n"
           "  job-timer SWARM WARN --pid PID\n"
           "  supervise SWARM\n"
           "  spare-watch SWARM NODES -- PROGRAM [ARGS...]\n"
           "  run-worker PROGRAM [ARGS...]\n"
           "  providers [--json]   the backends and parameters of swarm_launch\n");
}

int launch_home (char *buf, size_t len, bool create)
{
    cs_error_t e;

    if (mb_home (buf, len, create, &e) < 0) {
        log_msg ("%s", e.text);
        return -1;
    }
    return 0;
}

int launch_swarm_dir (const char *home, const char *id, char *buf, size_t len,
                      cs_error_t *errp)
{
    char path[LAUNCH_PATH_MAX];
    char obox[LAUNCH_PATH_MAX];

    /* a swarm of the user's own batch script has an outbox, no swarm.json */
    pathf (path, sizeof (path), "%s/swarms/%s/swarm.json", home, id);
    pathf (obox, sizeof (obox), "%s/swarms/%s/outbox", home, id);
    if (access (path, F_OK) < 0 && access (obox, F_OK) < 0) {
        if (errno != ENOENT)
            return launch_access_error (home, id, errp);
        errno = ENOENT;
        return errprintf (errp, "no swarm '%s' in '%s/swarms'", id, home);
    }
    return mb_swarm_dir (home, id, false, buf, len, errp);
}

int launch_access_error (const char *home, const char *id, cs_error_t *errp)
{
    char path[LAUNCH_PATH_MAX];
    struct stat st;

    /* the first directory on the way that is not one, or that cannot be
     * read or searched
     */
    for (int i = 0; i < (id ? 3 : 2); i++) {
        if (i == 0)
            pathf (path, sizeof (path), "%s", home);
        else if (i == 1)
            pathf (path, sizeof (path), "%s/swarms", home);
        else
            pathf (path, sizeof (path), "%s/swarms/%s", home, id);
        if (stat (path, &st) < 0) {
            if (errno == ENOENT)
                break;
            return errprintf (errp, "cannot access '%s': %s", path,
                              strerror (errno));
        }
        if (!S_ISDIR (st.st_mode)) {
            errno = ENOTDIR;
            return errprintf (errp, "cannot access '%s': %s", path,
                              strerror (errno));
        }
        if (access (path, R_OK | X_OK) < 0)
            return errprintf (errp, "cannot access '%s': %s", path,
                              strerror (errno));
    }
    errno = ENOENT;
    return id ? errprintf (errp, "no swarm '%s' in '%s/swarms'", id, home)
              : errprintf (errp, "no swarms in '%s/swarms'", home);
}

static const char *launch_argv0;

const char *launch_self (void)
{
    static char self[PATH_MAX];

    /* argv[0] when it is a path (the dispatcher passes the full path;
     * /proc/self/exe would name valgrind under valgrind) */
    if (!self[0] && launch_argv0 && strchr (launch_argv0, '/') &&
        realpath (launch_argv0, self) && access (self, X_OK) < 0)
        self[0] = '\0';
    if (!self[0]) {
        ssize_t n = readlink ("/proc/self/exe", self, sizeof (self) - 1);
        if (n <= 0)
            snprintf (self, sizeof (self), "codeswarm-launch");
        else
            self[n] = '\0';
    }
    return self;
}

struct state_arg {
    const char *state;
    const char *reason;
    bool changed;
};

static int set_state_cb (cJSON *swarm, void *arg, cs_error_t *errp)
{
    struct state_arg *a = arg;
    const char *cur = swarm_str (swarm, "state");

    if (swarm_state_final (cur))
        return 1;
    cJSON_DeleteItemFromObject (swarm, "state");
    if (json_add_str (swarm, "state", a->state) < 0)
        return errprintf (errp, "out of memory");
    if (a->reason) {
        cJSON_DeleteItemFromObject (swarm, "end_reason");
        if (json_add_str (swarm, "end_reason", a->reason) < 0)
            return errprintf (errp, "out of memory");
    }
    a->changed = true;
    return 0;
}

int launch_set_state (const char *swarmdir, const char *state,
                      const char *reason, bool *changed, cs_error_t *errp)
{
    struct state_arg a = {state, reason, false};

    if (swarm_update (swarmdir, set_state_cb, &a, errp) < 0)
        return -1;
    if (changed)
        *changed = a.changed;
    return 0;
}

int launch_event (const char *swarmdir, const char *type, ...)
{
    cJSON *p = cJSON_CreateObject ();
    const char *k;
    va_list ap;
    cs_error_t e;
    int rc;

    if (!p)
        return -1;
    va_start (ap, type);
    while ((k = va_arg (ap, const char *))) {
        const char *v = va_arg (ap, const char *);
        if (v ? json_add_str (p, k, v) < 0 : !cJSON_AddNullToObject (p, k)) {
            va_end (ap);
            cJSON_Delete (p);
            return -1;
        }
    }
    va_end (ap);
    if ((rc = swarm_event (swarmdir, type, p, &e)) < 0)
        log_msg ("cannot record event '%s': %s", type, e.text);
    cJSON_Delete (p);
    return rc;
}

/* The job's environment: ours without the variables of the job we may be
 * running in (a successor is submitted from inside the batch script), plus
 * CODESWARM_HOME so that every node finds the same mailbox.
 */
char **launch_job_env (const char *home)
{
    size_t n = 0, k = 0;
    char **env;

    while (environ[n])
        n++;
    if (!(env = calloc (n + 2, sizeof (char *))))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *v = environ[i];
        if ((!strncmp (v, "SLURM_", 6) && strncmp (v, "SLURM_CONF=", 11)) ||
            !strncmp (v, "SBATCH_", 7) || !strncmp (v, "SRUN_", 5) ||
            !strncmp (v, "PMIX_", 5) || !strncmp (v, "CODESWARM_HOME=", 15))
            continue;
        if (!(env[k++] = strdup (v)))
            goto nomem;
    }
    if (asprintf (&env[k], "CODESWARM_HOME=%s", home) < 0) {
        env[k] = NULL;
        goto nomem;
    }
    return env;
nomem:
    launch_env_free (env);
    return NULL;
}

void launch_env_free (char **env)
{
    if (env) {
        for (char **p = env; *p; p++)
            free (*p);
        free (env);
    }
}

/* run-worker PROGRAM ARGS...: exec PROGRAM with SIGTERM, SIGINT, SIGHUP,
 * SIGUSR1 and SIGUSR2 blocked.  The worker reads these from a signalfd;
 * with them blocked from the start, a thread that a library (PMIx) starts
 * before the worker has set its own mask cannot take a signal and die of it.
 */
static int cmd_run_worker (int argc, char **argv)
{
    sigset_t mask;

    if (argc < 2) {
        log_msg ("usage: run-worker PROGRAM [ARGS...]");
        return 2;
    }
    sigemptyset (&mask);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGHUP);
    sigaddset (&mask, SIGUSR1);
    sigaddset (&mask, SIGUSR2);
    sigprocmask (SIG_BLOCK, &mask, NULL);
    execvp (argv[1], argv + 1);
    log_err ("cannot run '%s'", argv[1]);
    return 127;
}

int main (int argc, char *argv[])
{
    static const struct {
        const char *name;
        int (*fn) (int, char **);
    } verbs[] = {
        {"launch", cmd_launch},           {"cancel", cmd_cancel},
        {"status", cmd_status},           {"doctor", cmd_doctor},
        {"setup-codex", cmd_setup_codex}, {"forget", cmd_forget},
        {"top", cmd_top},
        {"export", cmd_export},           {"import", cmd_import},
        {"audit", cmd_audit},             {"report", cmd_report},
        {"job-event", cmd_job_event},     {"job-timer", cmd_job_timer},
        {"idle-watch", cmd_idle_watch},   {"supervise", cmd_supervise},
        {"run-worker", cmd_run_worker},   {"providers", cmd_providers},
        {"spare-watch", cmd_spare_watch},
    };

    log_init ("codeswarm");
    launch_argv0 = argv[0];
    if (argc < 2) {
        usage (stderr);
        return 2;
    }
    if (!strcmp (argv[1], "--help") || !strcmp (argv[1], "-h")) {
        usage (stdout);
        return 0;
    }
    if (!strcmp (argv[1], "--version")) {
        printf ("codeswarm-launch %s\n", PACKAGE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof (verbs) / sizeof (verbs[0]); i++) {
        if (!strcmp (argv[1], verbs[i].name)) {
            char prog[64];
            snprintf (prog, sizeof (prog), "codeswarm %s", argv[1]);
            log_init (prog);
            return verbs[i].fn (argc - 1, argv + 1);
        }
    }
    log_msg ("unknown verb '%s' (try 'codeswarm --help')", argv[1]);
    return 2;
}
