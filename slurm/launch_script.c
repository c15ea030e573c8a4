/* launch_script.c - the batch script of a swarm: its template (--template,
 * slurm.template, $CODESWARM_SBATCH_TEMPLATE or the installed
 * codeswarm.sbatch.in) filled with the swarm's values: the #SBATCH lines,
 * the environment a worker on a compute node needs from the login node,
 * the worker to run and srun's MPI plugin (PMIx when srun has it).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/path.h"
#include "common/prefix.h"
#include "slurm/launch.h"
#include "slurm/launch_steps.h"
#include "slurm/run.h"
#include "slurm/template.h"

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
    fprintf (m, "#SBATCH --nodes=%d\n", o->nodes + o->spares);
    /* with spares a failed node is removed from the job, not the job */
    if (o->spares)
        fprintf (m, "#SBATCH --no-kill\n");
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
    /* a run Slurm requeues (a node lost) resumes the session; its log
     * goes on after the first run's */
    fprintf (m, "#SBATCH --requeue\n");
    fprintf (m, "#SBATCH --open-mode=append\n");
    for (size_t i = 0; i < o->nsbatch_opts; i++)
        fprintf (m, "#SBATCH %s\n", o->sbatch_opts[i]);
    fclose (m);
    return buf;
}

/* Fill the batch script template (slurm) into l->script. */
int launch_render_script (struct launch *l)
{
    const struct launch_opts *o = &l->o;
    const char *env_t = getenv ("CODESWARM_SBATCH_TEMPLATE");
    const char *template_path;
    char templatebuf[PATH_MAX];
    char *template_text = NULL, *exports = NULL, *sbatch_lines = NULL;
    char *q_worker = NULL, *q_launch = NULL, *worker_args = NULL;
    char *q_id, *q_dir, *q_home;
    char workerbuf[PATH_MAX], nodes[16], idle[32], warnbuf[16], spares[16];
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
    if (launch_read_file (template_path, &template_text) < 0) {
        log_msg ("cannot read the batch script template '%s': %s",
                 template_path, strerror (errno));
        return LAUNCH_USAGE;
    }
    if (o->spares && !strstr (template_text, "@SPARES@")) {
        log_msg ("--spares: the batch script template '%s' has no @SPARES@ "
                 "(it would start every node's agent)", template_path);
        free (template_text);
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
    snprintf (spares, sizeof (spares), "%d", o->spares);
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
            {"SPARES", spares},
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
