/* job.c - submit, query and signal Slurm jobs (libslurm or commands) */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json.h"
#include "slurm/job.h"
#include "slurm/run.h"

#if HAVE_LIBSLURM
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
/* slurm_init() appeared in 21.08; older releases are served by commands */
#if defined(SLURM_VERSION_NUMBER) &&                                           \
    SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(21, 8, 0)
#define JOB_LIBSLURM 1
#endif
#endif

/* Without a slurm.conf, libslurm falls back to DNS and then exits: never
 * call it unless a configuration is there (configless clusters: set
 * SLURM_CONF or use the commands).
 */
static bool slurm_conf_present (void)
{
    const char *c = getenv ("SLURM_CONF");
    struct stat st;

    if (c && *c)
        return stat (c, &st) == 0;
    return stat ("/etc/slurm/slurm.conf", &st) == 0 ||
           stat ("/etc/slurm-llnl/slurm.conf", &st) == 0;
}

#ifdef JOB_LIBSLURM
static bool lib_ready (void)
{
    static int inited = 0;

    if (!inited) {
        if (!slurm_conf_present ())
            return false;
        slurm_init (NULL);
        atexit (slurm_fini);
        inited = 1;
    }
    return true;
}

static const char *lib_state_name (uint32_t s)
{
    static const char *names[] = {
        "PENDING",   "RUNNING",   "SUSPENDED", "COMPLETED",
        "CANCELLED", "FAILED",    "TIMEOUT",   "NODE_FAIL",
        "PREEMPTED", "BOOT_FAIL", "DEADLINE",  "OUT_OF_MEMORY",
    };
    s &= JOB_STATE_BASE;
    return s < sizeof (names) / sizeof (names[0]) ? names[s] : "UNKNOWN";
}

static const char *lib_reason_name (uint32_t r)
{
    /* slurm_job_reason_string() is not declared in 22.05's slurm.h */
    static const char *names[] = {
        "None",
        "Priority",
        "Dependency",
        "Resources",
        "PartitionNodeLimit",
        "PartitionTimeLimit",
        "PartitionDown",
        "PartitionInactive",
        "JobHeldAdmin",
        "BeginTime",
        "Licenses",
        "AssociationJobLimit",
        "AssociationResourceLimit",
        "AssociationTimeLimit",
        "Reservation",
        "ReqNodeNotAvail",
        "JobHeldUser",
        "FrontEndDown",
    };
    /* the reasons that never resolve on their own (slurm/pending.c) */
    switch (r) {
    case FAIL_BAD_CONSTRAINTS:
        return "BadConstraints";
    case FAIL_ACCOUNT:
        return "InvalidAccount";
    case FAIL_QOS:
        return "InvalidQOS";
    case WAIT_DEP_INVALID:
        return "DependencyNeverSatisfied";
    case WAIT_QOS_MAX_CPU_PER_JOB:
        return "QOSMaxCpuPerJobLimit";
    case WAIT_QOS_MAX_NODE_PER_JOB:
        return "QOSMaxNodePerJobLimit";
    case WAIT_QOS_MAX_WALL_PER_JOB:
        return "QOSMaxWallDurationPerJobLimit";
    case WAIT_ASSOC_MAX_CPU_PER_JOB:
        return "AssocMaxCpuPerJobLimit";
    case WAIT_ASSOC_MAX_NODE_PER_JOB:
        return "AssocMaxNodePerJobLimit";
    case WAIT_ASSOC_MAX_WALL_PER_JOB:
        return "AssocMaxWallDurationPerJobLimit";
    case WAIT_PART_CONFIG:
        return "PartitionConfig";
    default:
        break;
    }
    return r < sizeof (names) / sizeof (names[0]) ? names[r] : "Other";
}
#endif

const char *job_backend_name (void)
{
#ifdef JOB_LIBSLURM
    return "libslurm";
#else
    return "sbatch";
#endif
}

bool job_state_final (const char *s)
{
    return strcmp (s, "PENDING") && strcmp (s, "RUNNING") &&
           strcmp (s, "SUSPENDED") && strcmp (s, "CONFIGURING") &&
           strcmp (s, "COMPLETING") && strcmp (s, "REQUEUED") &&
           strcmp (s, "RESIZING") && strcmp (s, "SIGNALING") &&
           strcmp (s, "STAGE_OUT") && strcmp (s, "REQUEUE_HOLD") &&
           strcmp (s, "REQUEUE_FED") && strcmp (s, "SPECIAL_EXIT") &&
           strcmp (s, "UNKNOWN");
}

/* ---- submit ------------------------------------------------------------ */

static int argv_add (char ***av, size_t *n, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int argv_add (char ***av, size_t *n, const char *fmt, ...)
{
    va_list ap;
    char *s, **nav;

    va_start (ap, fmt);
    if (vasprintf (&s, fmt, ap) < 0)
        s = NULL;
    va_end (ap);
    if (!s || !(nav = realloc (*av, (*n + 2) * sizeof (char *)))) {
        free (s);
        return -1;
    }
    *av = nav;
    nav[(*n)++] = s;
    nav[*n] = NULL;
    return 0;
}

static void argv_free (char **av)
{
    if (av) {
        for (char **p = av; *p; p++)
            free (*p);
        free (av);
    }
}

static int submit_sbatch (const struct job_spec *sp, char *jobid, size_t len,
                          cs_error_t *errp)
{
    char **av = NULL;
    size_t n = 0;
    struct run_result res;
    char line[512];
    int rc = -1;
    bool oom = false;

    oom |= argv_add (&av, &n, "sbatch") < 0;
    oom |= argv_add (&av, &n, "--parsable") < 0;
    oom |= argv_add (&av, &n, "--job-name=%s", sp->name) < 0;
    oom |= argv_add (&av, &n, "--nodes=%d", sp->nodes) < 0;
    oom |= argv_add (&av, &n, "--ntasks-per-node=1") < 0;
    if (sp->no_kill)
        oom |= argv_add (&av, &n, "--no-kill") < 0;
    if (sp->comment)
        oom |= argv_add (&av, &n, "--comment=%s", sp->comment) < 0;
    if (sp->output)
        oom |= argv_add (&av, &n, "--output=%s", sp->output) < 0;
    if (sp->workdir)
        oom |= argv_add (&av, &n, "--chdir=%s", sp->workdir) < 0;
    if (sp->partition)
        oom |= argv_add (&av, &n, "--partition=%s", sp->partition) < 0;
    if (sp->account)
        oom |= argv_add (&av, &n, "--account=%s", sp->account) < 0;
    if (sp->qos)
        oom |= argv_add (&av, &n, "--qos=%s", sp->qos) < 0;
    if (sp->time_secs)
        oom |= argv_add (&av, &n, "--time=%llu:%02llu",
                         (unsigned long long)(sp->time_secs / 60),
                         (unsigned long long)(sp->time_secs % 60)) < 0;
    if (sp->gpus_per_node > 0)
        oom |= argv_add (&av, &n, "--gpus-per-node=%d", sp->gpus_per_node) < 0;
    if (sp->warn_secs > 0)
        oom |= argv_add (&av, &n, "--signal=B:USR1@%d", sp->warn_secs) < 0;
    if (sp->singleton)
        oom |= argv_add (&av, &n, "--dependency=singleton") < 0;
    if (sp->requeue) {
        oom |= argv_add (&av, &n, "--requeue") < 0;
        oom |= argv_add (&av, &n, "--open-mode=append") < 0;
    }
    for (size_t i = 0; i < sp->nsbatch_opts; i++)
        oom |= argv_add (&av, &n, "%s", sp->sbatch_opts[i]) < 0;
    oom |= argv_add (&av, &n, "%s", sp->script_path) < 0;
    if (oom) {
        errno = ENOMEM;
        errprintf (errp, "out of memory");
        goto done;
    }
    if (run_capture ((char *const *)av, sp->env, NULL, 120, &res, errp) < 0)
        goto done;
    if (!run_ok (&res)) {
        errprintf (
            errp, "sbatch failed: %s",
            run_first_line (*res.err ? res.err : res.out, line, sizeof (line)));
        errno = EINVAL;
    } else {
        /* --parsable: "jobid" or "jobid;cluster" */
        size_t k = strspn (res.out, "0123456789");
        if (k == 0 || k >= len) {
            errprintf (errp, "sbatch printed no job id: '%s'",
                       run_first_line (res.out, line, sizeof (line)));
            errno = EPROTO;
        } else {
            memcpy (jobid, res.out, k);
            jobid[k] = '\0';
            rc = 0;
        }
    }
    run_result_release (&res);
done:
    argv_free (av);
    return rc;
}

#ifdef JOB_LIBSLURM
static int submit_lib (const struct job_spec *sp, char *jobid, size_t len,
                       cs_error_t *errp)
{
    job_desc_msg_t d;
    submit_response_msg_t *resp = NULL;
    char gres[64];
    uint32_t envc = 0;

    slurm_init_job_desc_msg (&d);
    d.name = (char *)sp->name;
    d.script = (char *)sp->script;
    d.comment = (char *)sp->comment;
    d.std_out = (char *)sp->output;
    d.work_dir = (char *)sp->workdir;
    d.partition = (char *)sp->partition;
    d.account = (char *)sp->account;
    d.qos = (char *)sp->qos;
    if (sp->time_secs)
        d.time_limit = (uint32_t)((sp->time_secs + 59) / 60);
    d.min_nodes = d.max_nodes = (uint32_t)sp->nodes;
    d.num_tasks = (uint32_t)sp->nodes;
    d.ntasks_per_node = 1;
    if (sp->gpus_per_node > 0) {
        snprintf (gres, sizeof (gres), "gres:gpu:%d", sp->gpus_per_node);
        d.tres_per_node = gres;
    }
    if (sp->warn_secs > 0) {
        d.warn_signal = SIGUSR1;
        d.warn_time = (uint16_t)sp->warn_secs;
        d.warn_flags = KILL_JOB_BATCH;
    }
    if (sp->singleton)
        d.dependency = (char *)"singleton";
    if (sp->requeue) {
        d.requeue = 1;
        d.open_mode = OPEN_MODE_APPEND;
    }
    if (sp->no_kill)
        d.kill_on_node_fail = 0;
    while (sp->env && sp->env[envc])
        envc++;
    d.environment = sp->env;
    d.env_size = envc;
    d.user_id = getuid ();
    d.group_id = getgid ();
    if (slurm_submit_batch_job (&d, &resp) != SLURM_SUCCESS) {
        errno = EINVAL;
        return errprintf (errp, "slurm_submit_batch_job: %s",
                          slurm_strerror (slurm_get_errno ()));
    }
    snprintf (jobid, len, "%u", resp->job_id);
    slurm_free_submit_response_response_msg (resp);
    return 0;
}
#endif

int job_submit (const struct job_spec *sp, char *jobid, size_t len,
                cs_error_t *errp)
{
#ifdef JOB_LIBSLURM
    if (!sp->use_sbatch && sp->nsbatch_opts == 0 && lib_ready ())
        return submit_lib (sp, jobid, len, errp);
#endif
    return submit_sbatch (sp, jobid, len, errp);
}

/* ---- query ------------------------------------------------------------- */

static bool jobid_valid (const char *id)
{
    return id && *id && strspn (id, "0123456789") == strlen (id) &&
           strlen (id) < 12;
}

static void copy_str (char *dst, size_t len, const char *src)
{
    size_t n = src ? strnlen (src, len - 1) : 0;

    if (n)
        memcpy (dst, src, n);
    dst[n] = '\0';
}

/* A count of squeue --json: a number (22.05) or {"set", "infinite",
 * "number"} (23.02 on); 0 when absent, unset or infinite.
 */
static uint32_t json_count (const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (j, key);

    if (cJSON_IsObject (v)) {
        if (!cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (v, "set")) ||
            cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (v, "infinite")))
            return 0;
        v = cJSON_GetObjectItemCaseSensitive (v, "number");
    }
    if (!cJSON_IsNumber (v) || v->valuedouble < 0 ||
        v->valuedouble >= 4294967294.0)
        return 0;
    return (uint32_t)v->valuedouble;
}

/* squeue --json: the job if Slurm still lists it */
static int query_squeue (const char *jobid, struct job_status *ji,
                         cs_error_t *errp)
{
    const char *av[] = {"squeue", "--json", NULL};
    struct run_result res;
    cs_error_t e;
    cJSON *o = NULL;
    const cJSON *jobs, *j;
    char line[512];
    int rc = -1;

    if (run_capture ((char *const *)av, NULL, NULL, 60, &res, errp) < 0)
        return -1;
    if (!run_ok (&res)) {
        errno = EIO;
        errprintf (errp, "squeue failed: %s",
                   run_first_line (res.err, line, sizeof (line)));
        goto done;
    }
    if (!(o = json_parse (res.out, strlen (res.out), &e))) {
        errprintf (errp, "squeue --json: %s", e.text);
        goto done;
    }
    jobs = cJSON_GetObjectItemCaseSensitive (o, "jobs");
    if (!cJSON_IsArray (jobs)) {
        errno = EPROTO;
        errprintf (errp, "squeue --json printed no \"jobs\" array");
        goto done;
    }
    cJSON_ArrayForEach (j, jobs)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive (j, "job_id");
        const cJSON *v;
        char buf[32];
        if (!cJSON_IsNumber (id))
            continue;
        snprintf (buf, sizeof (buf), "%.0f", id->valuedouble);
        if (strcmp (buf, jobid))
            continue;
        ji->found = true;
        v = cJSON_GetObjectItemCaseSensitive (j, "job_state");
        copy_str (ji->state, sizeof (ji->state),
                  cJSON_IsString (v) ? v->valuestring : "UNKNOWN");
        v = cJSON_GetObjectItemCaseSensitive (j, "state_reason");
        copy_str (ji->reason, sizeof (ji->reason),
                  cJSON_IsString (v) ? v->valuestring : "");
        v = cJSON_GetObjectItemCaseSensitive (j, "nodes");
        copy_str (ji->nodes, sizeof (ji->nodes),
                  cJSON_IsString (v) ? v->valuestring : "");
        v = cJSON_GetObjectItemCaseSensitive (j, "start_time");
        ji->start_time = cJSON_IsNumber (v) ? v->valuedouble : 0;
        ji->end_time = (double)json_count (j, "end_time");
        v = cJSON_GetObjectItemCaseSensitive (j, "partition");
        copy_str (ji->partition, sizeof (ji->partition),
                  cJSON_IsString (v) ? v->valuestring : "");
        ji->req_nodes = json_count (j, "node_count");
        ji->time_limit = json_count (j, "time_limit");
        ji->restart_cnt = json_count (j, "restart_cnt");
        break;
    }
    rc = 0;
done:
    cJSON_Delete (o);
    run_result_release (&res);
    return rc;
}

/* sacct --parsable2 for a job squeue no longer lists (needs accounting) */
static void query_sacct (const char *jobid, struct job_status *ji)
{
    const char *av[] = {"sacct", "-X",          "-n", "--parsable2",
                        "-j",    (char *)jobid, "-o", "State,NodeList",
                        NULL};
    struct run_result res;
    char line[512], *bar;

    if (run_capture ((char *const *)av, NULL, NULL, 60, &res, NULL) < 0)
        return;
    if (run_ok (&res) && *res.out) {
        run_first_line (res.out, line, sizeof (line));
        if ((bar = strchr (line, '|'))) {
            *bar = '\0';
            copy_str (ji->nodes, sizeof (ji->nodes), bar + 1);
        }
        line[strcspn (line, " ")] = '\0'; /* "CANCELLED by 0" */
        if (*line) {
            copy_str (ji->state, sizeof (ji->state), line);
            ji->found = true;
        }
    }
    run_result_release (&res);
}

int job_query (const char *jobid, struct job_status *ji, cs_error_t *errp)
{
    memset (ji, 0, sizeof (*ji));
    if (!jobid_valid (jobid)) {
        errno = EINVAL;
        return errprintf (errp, "'%s' is not a job id", jobid ? jobid : "");
    }
#ifdef JOB_LIBSLURM
    if (lib_ready ()) {
        job_info_msg_t *msg = NULL;
        if (slurm_load_job (&msg, (uint32_t)strtoul (jobid, NULL, 10),
                            SHOW_DETAIL) != SLURM_SUCCESS) {
            int e = slurm_get_errno ();
            if (e == ESLURM_INVALID_JOB_ID) {
                query_sacct (jobid, ji);
                return 0;
            }
            errno = EIO;
            return errprintf (errp, "cannot query job %s: %s", jobid,
                              slurm_strerror (e));
        }
        if (msg->record_count > 0) {
            slurm_job_info_t *j = &msg->job_array[0];
            ji->found = true;
            copy_str (ji->state, sizeof (ji->state),
                      lib_state_name (j->job_state));
            if ((j->job_state & JOB_STATE_BASE) == JOB_PENDING)
                copy_str (ji->reason, sizeof (ji->reason),
                          lib_reason_name (j->state_reason));
            copy_str (ji->nodes, sizeof (ji->nodes), j->nodes);
            copy_str (ji->partition, sizeof (ji->partition), j->partition);
            ji->req_nodes = j->num_nodes;
            if (j->time_limit != NO_VAL && j->time_limit != INFINITE)
                ji->time_limit = j->time_limit;
            ji->start_time = (double)j->start_time;
            ji->end_time = (double)j->end_time;
            ji->restart_cnt = j->restart_cnt;
        }
        slurm_free_job_info_msg (msg);
        return 0;
    }
#endif
    if (query_squeue (jobid, ji, errp) < 0)
        return -1;
    if (!ji->found)
        query_sacct (jobid, ji);
    return 0;
}

/* ---- signals ------------------------------------------------------------ */

/* The job has ended, or is ending, or Slurm no longer knows it: a scancel
 * that failed on such a job (it ended meanwhile) did no harm.
 */
static bool job_gone (const char *jobid)
{
    struct job_status ji = { 0 };
    cs_error_t e;

    if (job_query (jobid, &ji, &e) < 0)
        return false;
    return !ji.found
           || (*ji.state && (job_state_final (ji.state)
                             || !strcmp (ji.state, "COMPLETING")));
}

int job_signal (const char *jobid, int sig, bool steps_only, cs_error_t *errp)
{
    char sigarg[32];
    char *av[6];
    int n = 0;
    struct run_result res;
    char line[512];
    int rc = 0;

    if (!jobid_valid (jobid)) {
        errno = EINVAL;
        return errprintf (errp, "'%s' is not a job id", jobid ? jobid : "");
    }
    av[n++] = (char *)"scancel";
    if (sig) {
        snprintf (sigarg, sizeof (sigarg), "--signal=%d", sig);
        av[n++] = sigarg;
        if (!steps_only)
            av[n++] = (char *)"--full";
    }
    av[n++] = (char *)jobid;
    av[n] = NULL;
    if (run_capture ((char *const *)av, NULL, NULL, 60, &res, errp) < 0)
        return -1;
    run_first_line (res.err, line, sizeof (line));
    /* a job that is already gone is not an error for cancel */
    if (!run_ok (&res)
        && !(res.err && strstr (res.err, "already completing or completed"))
        && !(res.err && strstr (res.err, "Invalid job id"))
        && !job_gone (jobid)) {
        if (!*line)
            snprintf (line, sizeof (line), "%s %d, nothing on stderr",
                      res.status.signaled ? "signal" : "exit status",
                      res.status.signaled ? res.status.signal
                                          : res.status.code);
        errno = EIO;
        rc = errprintf (errp, "scancel %s failed: %s", jobid, line);
    }
    run_result_release (&res);
    return rc;
}

int job_slurm_ping (cs_error_t *errp)
{
    if (!slurm_conf_present ()) {
        errno = ENOENT;
        return errprintf (errp, "no Slurm configuration (set SLURM_CONF or "
                                "install /etc/slurm/slurm.conf)");
    }
#ifdef JOB_LIBSLURM
    if (lib_ready ()) {
        if (slurm_ping (0) != SLURM_SUCCESS) {
            errno = EHOSTUNREACH;
            return errprintf (errp, "slurmctld does not answer: %s",
                              slurm_strerror (slurm_get_errno ()));
        }
        return 0;
    }
#endif
    {
        const char *av[] = {"squeue", "--json", NULL};
        struct run_result res;
        char line[512];
        int rc = 0;
        if (run_capture ((char *const *)av, NULL, NULL, 30, &res, errp) < 0)
            return -1;
        if (!run_ok (&res)) {
            errno = EHOSTUNREACH;
            rc = errprintf (errp, "squeue failed: %s",
                            run_first_line (res.err, line, sizeof (line)));
        }
        run_result_release (&res);
        return rc;
    }
}
