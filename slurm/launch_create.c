/* launch_create.c - the directory of a new (or resumed) swarm: log/,
 * work/<k>/ with AGENTS.md and the skills files of a --request, the
 * rendered job.sbatch, swarm.json (created, or on --resume updated with
 * the new launch's members), the audit entry and the swarm_created or
 * swarm_resumed event.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/confined.h"
#include "common/json.h"
#include "common/log.h"
#include "common/lineio.h"
#include "common/path.h"
#include "mailbox/mailbox.h"
#include "slurm/launch.h"
#include "slurm/launch_steps.h"
#include "slurm/nodes.h"
#include "slurm/swarm.h"
#include "slurm/walltime.h"

static int write_file (const char *path, const char *text, mode_t mode)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                   mode);

    if (fd < 0)
        return -1;
    if (fd_write_all (fd, text, strlen (text)) < 0) {
        int e = errno;
        close (fd);
        errno = e;
        return -1;
    }
    return close (fd);
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
        if (o->spares)
            bad |= json_add_u64 (s, "spares", (uint64_t)o->spares) < 0;
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

/* The swarm directory: log/, work/<k>/ (with AGENTS.md), job.sbatch,
 * swarm.json and the swarm_launched event.
 */
int launch_create (struct launch *l)
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
