/* doctor.c - "codeswarm doctor [--on-node]": check what a swarm needs and
 * say how to fix what is missing.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/configfile.h"
#include "common/json.h"
#include "common/log.h"
#include "mailbox/mailbox.h"
#include "slurm/appconfig.h"
#include "slurm/job.h"
#include "slurm/launch.h"
#include "slurm/run.h"

#if HAVE_LIBSLURM
#include <slurm/slurm.h>
#if defined(SLURM_VERSION_NUMBER) &&                                           \
    SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(21, 8, 0)
#define DOCTOR_LIBSLURM 1
#endif
#endif

#ifndef PATH_SSH
#define PATH_SSH "ssh"
#endif

static int failures;

static void report (const char *status, const char *what, const char *fix,
                    const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static void report (const char *status, const char *what, const char *fix,
                    const char *fmt, ...)
{
    va_list ap;

    printf ("%-5s %s: ", status, what);
    va_start (ap, fmt);
    vprintf (fmt, ap);
    va_end (ap);
    printf ("\n");
    if (fix)
        printf ("      fix: %s\n", fix);
    if (!strcmp (status, "FAIL"))
        failures++;
    fflush (stdout);
}

/* The codex the workers will run: codex.binary, $CODESWARM_CODEX,
 * <home>/tools/codex/bin/codex, then PATH.
 */
static const char *find_codex (const struct cs_config *cfg, const char *home,
                               char *buf, size_t len, const char **how)
{
    const char *env = getenv ("CODESWARM_CODEX");
    const char *path = getenv ("PATH");

    if (cfg->codex_binary) {
        *how = "codex.binary in the configuration";
        return cfg->codex_binary;
    }
    if (env && *env) {
        *how = "$CODESWARM_CODEX";
        return env;
    }
    if (pathf (buf, len, "%s/tools/codex/bin/codex", home) == 0 &&
        access (buf, F_OK) == 0) {
        *how = "installed by setup-codex";
        return buf;
    }
    while (path && *path) {
        const char *end = strchrnul (path, ':');
        if (end > path) {
            snprintf (buf, len, "%.*s/codex", (int)(end - path), path);
            if (access (buf, X_OK) == 0) {
                *how = "PATH";
                return buf;
            }
        }
        path = *end ? end + 1 : end;
    }
    *how = NULL;
    return NULL;
}

/* Is path inside dir (both resolved)?  A path that does not exist yet is
 * compared as written.
 */
static bool path_under (const char *path, const char *dir)
{
    char rp[LAUNCH_PATH_MAX], rd[LAUNCH_PATH_MAX];
    size_t n;

    if (!realpath (path, rp))
        snprintf (rp, sizeof (rp), "%s", path);
    if (!realpath (dir, rd))
        snprintf (rd, sizeof (rd), "%s", dir);
    n = strlen (rd);
    while (n > 1 && rd[n - 1] == '/')
        rd[--n] = '\0';
    return !strncmp (rp, rd, n) && (rp[n] == '/' || rp[n] == '\0');
}

/* Run a command under codex's own sandbox ("codex sandbox", bwrap on Linux)
 * with the CODEX_HOME and environment the workers give the app-server: the
 * command runs, or every command an agent tries will fail.  Names the
 * causes we know.
 */
static void check_sandbox (const struct cs_config *cfg, const char *bin,
                           const char *chome)
{
    static const char marker[] = "codeswarm-sandbox-ok";
    const char *tmpdir = getenv ("TMPDIR");
    char *env[CS_CONFIG_MAX_LIST + 2] = {NULL};
    char *av[] = {(char *)bin, (char *)"sandbox", (char *)"--",
                  (char *)"/bin/sh", (char *)"-c",
                  (char *)"echo codeswarm-sandbox-ok", NULL};
    struct run_result res;
    char line[256];
    cs_error_t e;
    size_t n = 0;

    if (cfg->sandbox && !strcmp (cfg->sandbox, "danger-full-access")) {
        report ("ok", "codex sandbox", NULL,
                "not used (codex.sandbox is danger-full-access)");
        return;
    }
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    for (size_t i = 0; i < cfg->codex_nenv; i++)
        env[n++] = cfg->codex_env[i];
    if (asprintf (&env[n], "CODEX_HOME=%s", chome) < 0) {
        report ("FAIL", "codex sandbox", NULL, "out of memory");
        return;
    }
    if (run_capture (av, env, NULL, 60, &res, &e) < 0) {
        report ("FAIL", "codex sandbox", "reinstall codex with 'codeswarm "
                "setup-codex'", "%s", e.text);
        free (env[n]);
        return;
    }
    if (run_ok (&res) && strstr (res.out, marker))
        report ("ok", "codex sandbox", NULL,
                "a command runs under codex's sandbox (CODEX_HOME %s)", chome);
    else {
        /* the last line of stderr is the sandbox's own complaint */
        const char *err = res.err, *l = err, *p;
        while ((p = strchr (l, '\n')) && p[1])
            l = p + 1;
        run_first_line (*l ? l : res.out, line, sizeof (line));
        if (path_under (chome, tmpdir) ||
            strstr (err, "under temporary dir"))
            report ("FAIL", "codex sandbox",
                    "use a CODEX_HOME outside the temporary directory, e.g. "
                    "~/.codex or a directory on the shared filesystem "
                    "(codex.home in codeswarm.yaml, or CODEX_HOME)",
                    "sandboxed commands fail (%s): CODEX_HOME '%s' is under "
                    "TMPDIR '%s', where codex refuses to create the helper "
                    "its sandbox runs",
                    line, chome, tmpdir);
        else if (strstr (err, "bwrap") &&
                 (strstr (err, "namespace") ||
                  strstr (err, "Operation not permitted")))
            report ("FAIL", "codex sandbox",
                    "ask for unprivileged user namespaces on the nodes "
                    "(sysctl kernel.unprivileged_userns_clone=1, "
                    "user.max_user_namespaces > 0), or run the job in a "
                    "container and set codex.sandbox: danger-full-access",
                    "sandboxed commands fail: bubblewrap cannot create its "
                    "namespaces (%s)",
                    line);
        else
            report ("FAIL", "codex sandbox",
                    "run 'CODEX_HOME=<dir> codex sandbox -- true' to see "
                    "the whole error",
                    "'codex sandbox -- /bin/sh -c ...' failed (%s): %s",
                    run_ok (&res) ? "no output" : "exit status not 0", line);
    }
    run_result_release (&res);
    free (env[n]);
}

static void check_codex (const struct cs_config *cfg, const char *home)
{
    char buf[LAUNCH_PATH_MAX], chome[LAUNCH_PATH_MAX], line[256];
    const char *how, *bin = find_codex (cfg, home, buf, sizeof (buf), &how);
    const char *env_home = getenv ("CODEX_HOME");
    struct stat st;
    char *cenv[2] = {NULL, NULL};
    char *av[3];
    struct run_result res;
    cs_error_t e;
    bool auth;

    if (!bin) {
        report ("FAIL", "codex binary",
                "run 'codeswarm setup-codex' (installs "
                "codex under <home>/tools), or set codex.binary or "
                "CODESWARM_CODEX",
                "not found (looked at codex.binary, "
                "$CODESWARM_CODEX, %s/tools/codex/bin/codex and PATH)",
                home);
        return;
    }
    if (stat (bin, &st) < 0 || !S_ISREG (st.st_mode) ||
        access (bin, X_OK) < 0) {
        report ("FAIL", "codex binary",
                "run 'codeswarm setup-codex', or point "
                "codex.binary / CODESWARM_CODEX at an executable",
                "'%s' (from %s) is not an executable file%s%s", bin, how,
                errno ? ": " : "", errno ? strerror (errno) : "");
        return;
    }
    report ("ok", "codex binary", NULL, "%s (%s)", bin, how);

    /* codex home: config, else $CODEX_HOME, else ~/.codex */
    if (cfg->codex_home)
        pathf (chome, sizeof (chome), "%s", cfg->codex_home);
    else if (env_home && *env_home)
        pathf (chome, sizeof (chome), "%s", env_home);
    else
        pathf (chome, sizeof (chome), "%s/.codex",
                 getenv ("HOME") ? getenv ("HOME") : "");

    /* --version with CODEX_HOME set, so that nothing is created elsewhere */
    if (asprintf (&cenv[0], "CODEX_HOME=%s", chome) < 0)
        cenv[0] = NULL;
    av[0] = (char *)bin;
    av[1] = (char *)"--version";
    av[2] = NULL;
    if (run_capture ((char *const *)av, cenv, NULL, 30, &res, &e) < 0)
        report ("FAIL", "codex version",
                "reinstall it with 'codeswarm "
                "setup-codex'",
                "%s", e.text);
    else {
        if (run_ok (&res))
            report ("ok", "codex version", NULL, "%s",
                    run_first_line (res.out, line, sizeof (line)));
        else
            report ("FAIL", "codex version",
                    "reinstall it with 'codeswarm "
                    "setup-codex'",
                    "'%s --version' failed: %s", bin,
                    run_first_line (*res.err ? res.err : res.out, line,
                                    sizeof (line)));
        run_result_release (&res);
    }

    pathf (buf, sizeof (buf), "%s/config.toml", chome);
    if (access (buf, R_OK) == 0)
        report ("ok", "codex config", NULL, "%s", buf);
    else
        report ("warn", "codex config", NULL,
                "no '%s' (codex's defaults "
                "apply)",
                buf);
    pathf (buf, sizeof (buf), "%s/auth.json", chome);
    auth = access (buf, R_OK) == 0;
    if (auth)
        report ("ok", "codex auth", NULL, "%s", buf);
    else if (getenv ("OPENAI_API_KEY") && *getenv ("OPENAI_API_KEY"))
        report ("ok", "codex auth", NULL, "OPENAI_API_KEY is set");
    else {
        /* a provider of its own (e.g. a local model), in codex's effective
         * configuration: config.toml, the selected profile, -c overrides */
        cJSON *cc = appconfig_read (bin, cenv, 60, &e);
        const char *prov = NULL;

        if (cc)
            (void)json_get_str (cc, "model_provider", &prov, NULL);
        if (prov && strcmp (prov, "openai") != 0)
            report ("ok", "codex auth", NULL,
                    "no auth.json, but codex's configuration names the "
                    "model provider '%s'",
                    prov);
        else if (!cc)
            report ("FAIL", "codex auth",
                    "run 'CODEX_HOME=<dir> codex login' "
                    "on the login node (the directory must be on the shared "
                    "filesystem), or set OPENAI_API_KEY",
                    "no '%s' and no OPENAI_API_KEY; codex's configuration "
                    "could not be read: %s", buf, e.text);
        else
            report ("FAIL", "codex auth",
                    "run 'CODEX_HOME=<dir> codex login' "
                    "on the login node (the directory must be on the shared "
                    "filesystem), or set OPENAI_API_KEY",
                    "no '%s' and no OPENAI_API_KEY", buf);
        cJSON_Delete (cc);
    }
    free (cenv[0]);
    check_sandbox (cfg, bin, chome);
}

static void check_mailbox (const char *home)
{
    char fs[64], probe[LAUNCH_PATH_MAX];
    bool poll = false;
    cs_error_t e;
    int fd;

    if (mb_secure_dir (home, true, &e) < 0) {
        report ("FAIL", "mailbox home",
                "make it a directory you own with "
                "mode 0700 (chmod 700), or set CODESWARM_HOME",
                "%s", e.text);
        return;
    }
    pathf (probe, sizeof (probe), "%s/.doctor.%d", home, (int)getpid ());
    if ((fd = open (probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) <
        0) {
        report ("FAIL", "mailbox home",
                "make it writable (or set "
                "CODESWARM_HOME)",
                "cannot create files in '%s': %s", home, strerror (errno));
        return;
    }
    close (fd);
    unlink (probe);
    report ("ok", "mailbox home", NULL, "%s (owner only, writable)", home);
    if (mb_fs_type (home, fs, sizeof (fs), &poll, &e) < 0)
        report ("warn", "mailbox filesystem", NULL, "%s", e.text);
    else
        report ("ok", "mailbox filesystem", NULL, "%s (%s)", fs,
                poll ? "followed by polling" : "followed with inotify");
}

/* JobRequeue: whether Slurm requeues a batch job whose node failed (a
 * swarm asks for --requeue itself; a site may still refuse requeues) */
static void check_requeue (void)
{
    const char *fix = "a lost node then ends the swarm's job (and a swarm "
                      "without spares): ask the site about JobRequeue, or "
                      "relaunch with 'codeswarm launch --resume'";
    int requeue = -1;
#if defined(DOCTOR_LIBSLURM) && \
    SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(20, 11, 0)
    slurm_conf_t *conf = NULL;

    if (slurm_load_ctl_conf ((time_t)0, &conf) == SLURM_SUCCESS) {
        requeue = conf->job_requeue ? 1 : 0;
        slurm_free_ctl_conf (conf);
    }
#endif
    if (requeue < 0) {
        const char *av[] = {"scontrol", "show", "config", NULL};
        struct run_result res;
        char *l;
        if (run_capture ((char *const *)av, NULL, NULL, 30, &res, NULL) == 0) {
            if (run_ok (&res) && (l = strstr (res.out, "\nJobRequeue")) &&
                (l = strchr (l, '=')))
                requeue = atoi (l + 1) ? 1 : 0;
            run_result_release (&res);
        }
    }
    if (requeue < 0)
        report ("warn", "slurm requeue", NULL,
                "cannot read JobRequeue from the controller's configuration");
    else if (requeue)
        report ("ok", "slurm requeue", NULL,
                "JobRequeue=1: a job that loses a node is requeued, and the "
                "swarm resumes in it");
    else
        report ("warn", "slurm requeue", fix,
                "JobRequeue=0: the site does not requeue jobs by default "
                "(swarms ask for --requeue; the site may still refuse)");
}

static void check_slurm (bool required)
{
    cs_error_t e;

    if (job_slurm_ping (&e) < 0) {
        report (required ? "FAIL" : "warn", "slurm",
                "set SLURM_CONF, or load your site's Slurm module; without "
                "Slurm, 'codeswarm launch --local' runs a swarm on this "
                "machine",
                "%s", e.text);
        return;
    }
    report ("ok", "slurm", NULL, "controller answers (%s)",
            job_backend_name ());
#ifdef DOCTOR_LIBSLURM
    {
        partition_info_msg_t *pm = NULL;
        if (slurm_load_partitions (0, &pm, SHOW_ALL) != SLURM_SUCCESS) {
            report ("FAIL", "slurm partitions", "check 'sinfo'", "%s",
                    slurm_strerror (slurm_get_errno ()));
            return;
        }
        for (uint32_t i = 0; i < pm->record_count; i++) {
            partition_info_t *p = &pm->partition_array[i];
            char tl[32];
            if (p->max_time == INFINITE)
                snprintf (tl, sizeof (tl), "UNLIMITED");
            else
                snprintf (tl, sizeof (tl), "%u min", p->max_time);
            char mn[32];
            if (p->max_nodes == INFINITE)
                snprintf (mn, sizeof (mn), "UNLIMITED");
            else
                snprintf (mn, sizeof (mn), "%u", p->max_nodes);
            report ("ok", "slurm partition", NULL,
                    "%s%s: %u nodes, state %s, max time %s, max nodes per "
                    "job %s",
                    p->name, (p->flags & PART_FLAG_DEFAULT) ? " (default)" : "",
                    p->total_nodes,
                    p->state_up == PARTITION_UP ? "up" : "not up", tl, mn);
        }
        slurm_free_partition_info_msg (pm);
    }
#else
    {
        /* an explicit format string: one line per partition */
        const char *av[] = {"sinfo", "-h", "-o", "%P|%D|%l|%a", NULL};
        struct run_result res;
        if (run_capture ((char *const *)av, NULL, NULL, 30, &res, &e) < 0)
            report ("FAIL", "slurm partitions", "check 'sinfo'", "%s", e.text);
        else {
            char *save = NULL;
            for (char *l = strtok_r (res.out, "\n", &save); l;
                 l = strtok_r (NULL, "\n", &save))
                report ("ok", "slurm partition", NULL, "%s", l);
            run_result_release (&res);
        }
    }
#endif
    check_requeue ();
}

static void check_ssh (const struct cs_config *cfg)
{
    char *av[8];
    struct run_result res;
    cs_error_t e;
    char line[256];
    int n = 0;

    if (!cfg->login_host)
        return;
    av[n++] = (char *)PATH_SSH;
    av[n++] = (char *)"-oBatchMode=yes";
    av[n++] = (char *)"-oConnectTimeout=10";
    av[n++] = cfg->login_host;
    av[n++] = (char *)"true";
    av[n] = NULL;
    if (run_capture ((char *const *)av, NULL, NULL, 30, &res, &e) < 0) {
        report ("FAIL", "ssh login host", "install ssh", "%s", e.text);
        return;
    }
    if (run_ok (&res))
        report ("ok", "ssh login host", NULL, "%s answers", cfg->login_host);
    else
        report ("FAIL", "ssh login host",
                "set up key-based ssh (ssh-copy-id) "
                "so that 'ssh -oBatchMode=yes HOST true' works",
                "ssh to '%s' failed: %s", cfg->login_host,
                run_first_line (res.err, line, sizeof (line)));
    run_result_release (&res);
}

static void doctor_usage (FILE *f)
{
    fprintf (f,
             "usage: codeswarm doctor [--on-node] [--config FILE]\n"
             "\n"
             "Check the codex binary and version, codex's configuration and\n"
             "credentials, that a command runs under codex's sandbox, the "
             "mailbox directory (ownership, mode, filesystem "
             "type),\n"
             "Slurm (controller, partition limits) and ssh to "
             "router.login_host when it\n"
             "is configured.  Each failed check says how to fix it.  --on-node "
             "runs the\n"
             "node checks inside a one-node srun, as a worker would see them "
             "(the srun runs\n"
             "'codeswarm doctor --node-checks', which does the node checks "
             "alone).\n"
             "Exit status: 0 when nothing failed, 1 otherwise.\n");
}

int cmd_doctor (int argc, char **argv)
{
    static const struct option longopts[] = {
        {"on-node", no_argument, NULL, 'n'},
        {"node-checks", no_argument, NULL, 'k'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cs_config cfg;
    const char *config = NULL;
    char home[LAUNCH_PATH_MAX];
    bool on_node = false, node_checks = false;
    cs_error_t e;
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long (argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            on_node = true;
            break;
        case 'k':
            node_checks = true;
            break;
        case 'c':
            config = optarg;
            break;
        case 'h':
            doctor_usage (stdout);
            return 0;
        case ':':
            log_msg ("option '%s' needs a value", argv[optind - 1]);
            return 2;
        default:
            log_msg ("unknown option '%s'", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        doctor_usage (stderr);
        return 2;
    }
    if (on_node) {
        /* the same checks on a compute node, through srun */
        char *av[10];
        struct spawn_opts so = SPAWN_OPTS_INIT;
        struct spawn_status st;
        spawn_t *s;
        int n = 0;
        av[n++] = (char *)"srun";
        av[n++] = (char *)"--nodes=1";
        av[n++] = (char *)"--ntasks=1";
        av[n++] = (char *)"--job-name=codeswarm-doctor";
        av[n++] = (char *)launch_self ();
        av[n++] = (char *)"doctor";
        av[n++] = (char *)"--node-checks";
        if (config) {
            av[n++] = (char *)"--config";
            av[n++] = (char *)config;
        }
        av[n] = NULL;
        if (job_slurm_ping (&e) < 0) {
            report ("FAIL", "slurm",
                    "set SLURM_CONF or load Slurm's module; "
                    "--on-node needs Slurm",
                    "%s", e.text);
            return 1;
        }
        printf ("running the node checks with srun on one node:\n");
        fflush (stdout);
        if (!(s = spawn_start (av, &so, &e))) {
            report ("FAIL", "srun", "check that srun is in PATH", "%s", e.text);
            return 1;
        }
        spawn_wait (s, &st);
        spawn_destroy (s);
        if (!st.exited || st.code != 0) {
            char buf[64];
            printf ("FAIL  node checks: %s\n",
                    spawn_status_str (&st, buf, sizeof (buf)));
            return 1;
        }
        printf ("node checks passed\n");
        return 0;
    }
    if (config_load (&cfg, config, &e) < 0) {
        report ("FAIL", "configuration", "fix the file named", "%s", e.text);
        return 1;
    }
    report ("ok", "configuration", NULL, "%s",
            cfg.path ? cfg.path : "built-in defaults");
    if (launch_home (home, sizeof (home), false) < 0) {
        report ("FAIL", "mailbox home", "set CODESWARM_HOME or HOME",
                "cannot tell where it is");
        config_release (&cfg);
        return 1;
    }
    if (node_checks) {
        char host[256] = "?";
        gethostname (host, sizeof (host));
        report ("ok", "node", NULL, "%s (job %s)", host,
                getenv ("SLURM_JOB_ID") ? getenv ("SLURM_JOB_ID") : "-");
    }
    check_codex (&cfg, home);
    check_mailbox (home);
    if (!node_checks) {
        check_slurm (false);
        check_ssh (&cfg);
    }
    config_release (&cfg);
    printf ("%s\n", failures ? "some checks failed" : "all checks passed");
    return failures ? 1 : 0;
}
