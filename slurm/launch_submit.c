/* launch_submit.c - submitting a swarm's job: the job spec built from
 * swarm.json (for the first job and for every successor of the chain), the
 * submission (job.c: libslurm or sbatch) and the chain of job ids kept in
 * swarm.json ("jobs", "job_id").
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "slurm/job.h"
#include "slurm/launch.h"
#include "slurm/launch_steps.h"
#include "slurm/swarm.h"

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
    if (launch_read_file (script, script_text) < 0)
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
    spec->nodes = swarm_int (swarm, "nodes", 1) + swarm_int (swarm, "spares", 0);
    /* with spares a failed node is removed from the job, not the job */
    spec->no_kill = swarm_int (swarm, "spares", 0) > 0;
    spec->gpus_per_node = (int)opt_num (opts, "gpus_per_node");
    spec->warn_secs = (int)opt_num (opts, "warn");
    spec->singleton =
        cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (opts, "persist"));
    spec->requeue = true;
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

/* Submit the job (slurm). */
int launch_submit (struct launch *l)
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
    if (swarm_add_job (l->swarmdir, l->jobid, "job_id", l->jobid, &e) < 0) {
        log_msg ("%s", e.text);
        return LAUNCH_FAILED;
    }
    launch_event (l->swarmdir, "job_submitted", "job_id", l->jobid, NULL);
    return 0;
}
