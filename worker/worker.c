/* codeswarm-worker - one persistent codex agent per node.
 *
 * Learns its node index (PMIx, SLURM_NODEID, SLURM_PROCID or --node),
 * opens its outbox (one writer epoch per run), follows its inbox, runs
 * `codex app-server` in the node's workspace and drives it over JSON-RPC.
 * One poll() loop carries everything: the child's stdout/stderr/stdin, the
 * inbox follower, a signalfd, and the timers (heartbeat, request and
 * approval timeouts, restart backoff, shutdown grace).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef HAVE_PMIX
#include <dlfcn.h>
#include <pmix.h>
#endif

#include "common/atomicfile.h"
#include "common/log.h"
#include "common/path.h"
#include "worker/worker.h"

/* The app-server methods this worker relies on.  The schema hash in
 * worker_started is FNV-1a 64 over the codex version and these names, one
 * per line: it changes when either does.
 */
static const char *schema_methods[] = {
    "initialize", "initialized", "thread/start", "thread/resume",
    "turn/start", "turn/steer", "turn/interrupt", "turn/completed",
    "item/commandExecution/requestApproval",
    "item/fileChange/requestApproval", "execCommandApproval",
    "applyPatchApproval", NULL,
};

#ifdef HAVE_PMIX
/* libpmix (and libevent, hwloc, munge... behind it) is loaded only when
 * the worker runs under PMIx: a worker started any other way does not pay
 * for it in memory.  The build links with --as-needed, so only the library
 * path (RUNPATH from pmix.pc) remains, and dlopen() finds it there.
 */
static struct {
    void *dl;
    __typeof__ (&PMIx_Init) init;
    __typeof__ (&PMIx_Get) get;
    __typeof__ (&PMIx_Fence_nb) fence_nb;
    __typeof__ (&PMIx_Finalize) finalize;
    __typeof__ (&PMIx_Error_string) error_string;
    __typeof__ (&PMIx_Value_destruct) value_destruct;
} px;
static bool pmix_up;
static pmix_proc_t pmix_me;

static int pmix_load (void)
{
    static const char *names[] = { "libpmix.so.2", "libpmix.so", NULL };

    for (int i = 0; names[i] && !px.dl; i++)
        px.dl = dlopen (names[i], RTLD_NOW | RTLD_LOCAL);
    if (!px.dl) {
        log_msg ("cannot load libpmix: %s", dlerror ());
        return -1;
    }
    if (!(px.init = (__typeof__ (px.init))dlsym (px.dl, "PMIx_Init"))
        || !(px.get = (__typeof__ (px.get))dlsym (px.dl, "PMIx_Get"))
        || !(px.fence_nb = (__typeof__ (px.fence_nb))dlsym (px.dl,
                                                            "PMIx_Fence_nb"))
        || !(px.finalize = (__typeof__ (px.finalize))dlsym (px.dl,
                                                             "PMIx_Finalize"))
        || !(px.error_string = (__typeof__ (px.error_string))dlsym (px.dl,
                                                      "PMIx_Error_string"))
        || !(px.value_destruct = (__typeof__ (px.value_destruct))dlsym (px.dl,
                                                      "PMIx_Value_destruct"))) {
        log_msg ("libpmix: %s", dlerror ());
        dlclose (px.dl);
        px.dl = NULL;
        return -1;
    }
    return 0;
}
#endif

/* ---- records ---------------------------------------------------------------- */

/* a turn_aborted record: the turn (and the injection that started it, if
 * known) ended without turn/completed
 */
void worker_turn_aborted (struct worker *w, const char *turn_id,
                          const char *injection_id, const char *reason)
{
    cJSON *r = cJSON_CreateObject ();
    if (!r)
        return;
    json_add_str (r, "turn_id", turn_id);
    if (injection_id)
        json_add_str (r, "injection_id", injection_id);
    else
        cJSON_AddNullToObject (r, "injection_id");
    json_add_str (r, "reason", reason);
    worker_record (w, "turn_aborted", r);
    cJSON_Delete (r);
    if (injection_id && (!strcmp (reason, "worker_restarted")
                         || !strcmp (reason, "node_lost")))
        retry_note (w, injection_id);
}

void worker_error (struct worker *w, const char *code, uint64_t inbox_seq,
                   const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    cJSON *r;

    va_start (ap, fmt);
    vsnprintf (msg, sizeof (msg), fmt, ap);
    va_end (ap);
    log_msg ("%s: %s", code, msg);
    if (!(r = cJSON_CreateObject ()))
        return;
    json_add_str (r, "code", code);
    json_add_str (r, "message", msg);
    if (inbox_seq > 0)
        json_add_u64 (r, "inbox_seq", inbox_seq);
    worker_record (w, "error", r);
    cJSON_Delete (r);
}

/* ---- checkpoint ------------------------------------------------------------- */

static cJSON *checkpoint_json (struct worker *w)
{
    cJSON *o = cJSON_CreateObject ();
    cJSON *c = mb_cursor_to_json (&w->ckpt_cursor);
    cJSON *done = cJSON_CreateArray ();

    if (!o || !c || !done)
        goto error;
    if (w->thread_id)
        json_add_str (o, "thread_id", w->thread_id);
    else
        cJSON_AddNullToObject (o, "thread_id");
    if (w->rollout_path)
        json_add_str (o, "rollout_path", w->rollout_path);
    else
        cJSON_AddNullToObject (o, "rollout_path");
    json_add_u64 (o, "epoch", w->out ? mb_writer_epoch (w->out) : 0);
    json_add_u64 (o, "outbox_seq", w->out ? mb_writer_seq (w->out) : 0);
    if (json_add_item (o, "inbox_cursor", c) < 0) {
        c = NULL;
        goto error;
    }
    c = NULL;
    if (w->last_injection_id)
        json_add_str (o, "last_injection_id", w->last_injection_id);
    else
        cJSON_AddNullToObject (o, "last_injection_id");
    if (w->job_id)
        json_add_str (o, "job_id", w->job_id);
    else
        cJSON_AddNullToObject (o, "job_id");
    for (struct track *t = w->track_head; t; t = t->next)
        if (t->done && t->id)
            cJSON_AddItemToArray (done, cJSON_CreateString (t->id));
    if (json_add_item (o, "done_ids", done) < 0) {
        done = NULL;
        goto error;
    }
    done = NULL;
    if (w->turn_id) {
        json_add_str (o, "turn_id", w->turn_id);
        if (w->turn_item)
            json_add_str (o, "turn_injection_id", w->turn_item->id);
    }
    return o;
error:
    cJSON_Delete (o);
    cJSON_Delete (c);
    cJSON_Delete (done);
    return NULL;
}

/* state/<k>.json, replaced atomically (common/atomicfile.h). */
int worker_checkpoint (struct worker *w)
{
    cJSON *o;
    char *s = NULL, *line = NULL;
    cs_error_t err;
    size_t n;
    int rc = -1;

    /* never ahead of the outbox: records still batched or held first */
    outbox_flush (w);
    if (outbox_degraded (w)) {
        w->ckpt_dirty = true;
        return 0;
    }
    w->ckpt_dirty = false;
    o = checkpoint_json (w);
    if (!o || !(s = cJSON_PrintUnformatted (o))
        || !(line = malloc ((n = strlen (s)) + 2))) {
        log_msg ("cannot build the checkpoint: out of memory");
        goto done;
    }
    memcpy (line, s, n);
    line[n++] = '\n';
    line[n] = '\0';
    if (atomic_file_write (w->state_path, line, n, 0, &err) < 0) {
        log_msg ("checkpoint: %s", err.text);
        goto done;
    }
    rc = 0;
done:
    if (rc < 0)
        w->ckpt_dirty = true;   /* try again with the next one */
    free (line);
    free (s);
    cJSON_Delete (o);
    return rc;
}

static int checkpoint_load (struct worker *w)
{
    char buf[65536];
    cs_error_t err;
    ssize_t n;
    size_t len = 0;
    int fd;
    cJSON *o;

    if ((fd = mb_secure_open (w->state_path, O_RDONLY, &err)) < 0) {
        if (errno == ENOENT)
            return 0;
        log_msg ("%s", err.text);
        return -1;
    }
    while ((n = read (fd, buf + len, sizeof (buf) - 1 - len)) > 0)
        len += n;
    close (fd);
    if (n < 0 || len == sizeof (buf) - 1) {
        log_msg ("cannot read '%s'", w->state_path);
        return -1;
    }
    if (!(o = json_parse (buf, len, &err))) {
        log_msg ("'%s': %s", w->state_path, err.text);
        return -1;
    }
    const char *s;
    if (json_get_str (o, "thread_id", &s, NULL) == 0)
        w->thread_id = strdup (s);
    if (json_get_str (o, "rollout_path", &s, NULL) == 0)
        w->rollout_path = strdup (s);
    if (json_get_str (o, "last_injection_id", &s, NULL) == 0)
        w->last_injection_id = strdup (s);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive (o, "inbox_cursor");
    if (c && mb_cursor_from_json (c, &w->ckpt_cursor, &err) < 0) {
        log_msg ("'%s': inbox_cursor: %s", w->state_path, err.text);
        cJSON_Delete (o);
        return -1;
    }
    const cJSON *oseq = cJSON_GetObjectItemCaseSensitive (o, "outbox_seq");
    if (cJSON_IsNumber (oseq) && oseq->valuedouble >= 0) {
        w->ckpt_outbox_seq = (uint64_t)oseq->valuedouble;
        w->ckpt_has_outbox_seq = true;
    }
    const cJSON *done = cJSON_GetObjectItemCaseSensitive (o, "done_ids"), *e;
    cJSON_ArrayForEach (e, done)
        if (cJSON_IsString (e))
            (void)strset_add (&w->done_ids, e->valuestring);
    if (json_get_str (o, "turn_id", &s, NULL) == 0) {
        w->aborted_turn = strdup (s);
        if (json_get_str (o, "turn_injection_id", &s, NULL) == 0)
            w->aborted_injection = strdup (s);
    }
    cJSON_Delete (o);
    log_msg ("checkpoint: thread %s, inbox seq %llu",
             w->thread_id ? w->thread_id : "(none)",
             (unsigned long long)w->ckpt_cursor.seq);
    return 1;
}

static void checkpoint_record (struct worker *w)
{
    cJSON *r = cJSON_CreateObject ();
    if (!r)
        return;
    if (w->thread_id)
        json_add_str (r, "thread_id", w->thread_id);
    else
        cJSON_AddNullToObject (r, "thread_id");
    /* the outbox epoch is the record's own envelope epoch */
    json_add_item (r, "inbox_cursor", mb_cursor_to_json (&w->ckpt_cursor));
    if (w->rollout_path)
        json_add_str (r, "rollout_path", w->rollout_path);
    else
        cJSON_AddNullToObject (r, "rollout_path");
    worker_record (w, "checkpoint", r);
    cJSON_Delete (r);
}

/* ---- ready, stop ---------------------------------------------------------- */

static void ready_record (struct worker *w, bool resumed)
{
    cJSON *r;

    if (!(r = cJSON_CreateObject ()))
        return;
    json_add_str (r, "thread_id", w->thread_id);
    json_add_bool (r, "resumed", resumed);
    if (w->rollout_path)
        json_add_str (r, "rollout_path", w->rollout_path);
    else
        cJSON_AddNullToObject (r, "rollout_path");
    worker_record (w, "ready", r);
    cJSON_Delete (r);
}

#ifdef HAVE_PMIX
/* The fence runs in libpmix's progress thread: its callback only writes
 * the status to a pipe that the poll loop reads (worker_fence_done), so
 * that the worker keeps taking signals while it waits for its peers.
 */
static int fence_wfd = -1;
static pmix_info_t fence_info;      /* valid until the callback */

static void fence_cb (pmix_status_t status, void *cbdata)
{
    ssize_t n;

    (void)cbdata;
    n = write (fence_wfd, &status, sizeof (status));
    (void)n;
}

/* Start the fence; false when it ended at once (passed or failed). */
static bool fence_start (struct worker *w)
{
    int fd[2];
    pmix_status_t rc;

    if (pipe2 (fd, O_CLOEXEC | O_NONBLOCK) < 0) {
        worker_error (w, "pmix_fence", 0, "PMIx_Fence_nb: pipe: %s",
                      strerror (errno));
        return false;
    }
    memset (&fence_info, 0, sizeof (fence_info));
    snprintf (fence_info.key, sizeof (fence_info.key), "%s",
              PMIX_COLLECT_DATA);
    fence_info.value.type = PMIX_BOOL;
    fence_info.value.data.flag = true;
    fence_wfd = fd[1];
    log_debug ("waiting for the other workers (PMIx fence)");
    rc = px.fence_nb (NULL, 0, &fence_info, 1, fence_cb, NULL);
    if (rc == PMIX_SUCCESS) {
        w->fence_fd = fd[0];
        w->fencing = true;
        return true;
    }
    close (fd[0]);
    close (fd[1]);
    fence_wfd = -1;
    if (rc == PMIX_OPERATION_SUCCEEDED)
        log_debug ("PMIx fence passed");
    else
        worker_error (w, "pmix_fence", 0, "PMIx_Fence_nb: %s",
                      px.error_string (rc));
    return false;
}
#endif

void worker_fence_done (struct worker *w)
{
#ifdef HAVE_PMIX
    pmix_status_t status;

    if (!w->fencing)
        return;
    if (read (w->fence_fd, &status, sizeof (status)) != sizeof (status))
        return;
    close (w->fence_fd);
    close (fence_wfd);
    w->fence_fd = fence_wfd = -1;
    w->fencing = false;
    w->fenced = true;
    if (status != PMIX_SUCCESS)
        worker_error (w, "pmix_fence", 0, "PMIx_Fence_nb: %s",
                      px.error_string (status));
    else
        log_debug ("PMIx fence passed");
    ready_record (w, w->ready_resumed);
    inbox_try_start (w);
#else
    (void)w;
#endif
}

void worker_write_ready (struct worker *w, bool resumed)
{
#ifdef HAVE_PMIX
    if (w->fencing) {
        w->ready_resumed = resumed;
        return;
    }
    if (pmix_up && !w->fenced) {
        w->fenced = true;
        if (fence_start (w)) {
            w->fenced = false;
            w->ready_resumed = resumed;
            return;
        }
    }
#endif
    w->fenced = true;
    ready_record (w, resumed);
}

void worker_stop (struct worker *w, const char *reason)
{
    double now = time_mono ();

    if (w->stopping) {
        /* asked again: stop waiting for the turn */
        w->stop_deadline = now;
        return;
    }
    log_msg ("stopping (%s)", reason);
    w->stopping = true;
    free (w->stop_reason);
    w->stop_reason = strdup (reason);
    w->stop_deadline = now + w->cfg.shutdown_grace;
    w->stop_hard = 0;
    w->restart_at = 0;
}

/* While stopping: may we finish now? */
static bool stop_ready (struct worker *w, double now)
{
    if (!w->as || w->state != AS_READY)
        return true;
    if (!as_busy (w) && !w->approvals)
        return true;
    if (!w->stop_interrupted && now >= w->stop_deadline) {
        w->stop_interrupted = true;
        w->stop_hard = now + 10.0;
        if (w->turn_id) {
            log_msg ("shutdown grace over: interrupting turn %s", w->turn_id);
            inbox_send_interrupt (w, NULL);
        }
    }
    if (w->stop_interrupted && now >= w->stop_hard)
        return true;
    return false;
}

static void worker_finish (struct worker *w)
{
    /* a turn still running when we give up is lost with the app-server */
    if (w->turn_id) {
        worker_turn_aborted (w, w->turn_id,
                             w->turn_item ? w->turn_item->id : NULL,
                             "shutdown");
        free (w->turn_id);
        w->turn_id = NULL;
    }
    (void)worker_checkpoint (w);
    checkpoint_record (w);
    as_finish (w);
    cJSON *r = cJSON_CreateObject ();
    if (r) {
        json_add_str (r, "reason", w->stop_reason ? w->stop_reason : "stop");
        json_add_u64 (r, "status", (uint64_t)w->exit_code);
        worker_record (w, "worker_stopped", r);
        cJSON_Delete (r);
    }
    log_msg ("stopped (%s)", w->stop_reason ? w->stop_reason : "stop");
}

/* ---- setup ------------------------------------------------------------------- */

static int node_from_env (const char *name, int *node)
{
    const char *s = getenv (name);
    char *end;
    long v;

    if (!s || !*s)
        return 0;
    errno = 0;
    v = strtol (s, &end, 10);
    if (errno || *end || v < 0 || v > INT_MAX) {
        log_msg ("ignoring %s=\"%s\": not a node index", name, s);
        return 0;
    }
    *node = (int)v;
    return 1;
}

static int node_detect (struct worker *w, int opt_node)
{
    int node = -1;
    const char *src = NULL;

    (void)w;
    /* a node index moved to a spare runs in a step of its own */
    if (node_from_env ("CODESWARM_NODE", &node)) {
        log_debug ("node %d from CODESWARM_NODE", node);
        return node;
    }
#ifdef HAVE_PMIX
    if (w->cfg.use_pmix && getenv ("PMIX_RANK") && pmix_load () == 0) {
        pmix_status_t rc = px.init (&pmix_me, NULL, 0);
        if (rc == PMIX_SUCCESS) {
            pmix_value_t *val = NULL;
            pmix_up = true;
            node = (int)pmix_me.rank;
            src = "PMIx rank";
            if (px.get (&pmix_me, PMIX_NODEID, NULL, 0, &val) == PMIX_SUCCESS
                && val) {
                log_debug ("PMIx rank %u on node id %u", pmix_me.rank,
                           val->data.uint32);
                px.value_destruct (val);
                free (val);
            }
        }
        else
            log_msg ("PMIx_Init: %s: falling back to Slurm variables",
                     px.error_string (rc));
    }
#endif
    if (node < 0 && node_from_env ("SLURM_NODEID", &node))
        src = "SLURM_NODEID";
    if (node < 0 && node_from_env ("SLURM_PROCID", &node))
        src = "SLURM_PROCID";
    if (node >= 0) {
        if (opt_node >= 0 && opt_node != node)
            log_msg ("--node %d ignored: %s says %d", opt_node, src, node);
        else
            log_debug ("node %d from %s", node, src);
        return node;
    }
    if (opt_node < 0) {
        log_msg ("no node index: not under PMIx or Slurm, and no --node");
        return -1;
    }
    return opt_node;
}

/* The node count swarm.json gives (0: no swarm.json, or none in it). */
static int swarm_nodes (struct worker *w)
{
    char path[4200], buf[65536];
    cs_error_t err;
    ssize_t n;
    size_t len = 0;
    cJSON *o;
    int fd, nodes = 0;

    if (pathf (path, sizeof (path), "%s/swarm.json", w->swarmdir) < 0
        || (fd = mb_secure_open (path, O_RDONLY, &err)) < 0)
        return 0;
    while (len < sizeof (buf) - 1
           && (n = read (fd, buf + len, sizeof (buf) - 1 - len)) > 0)
        len += (size_t)n;
    close (fd);
    if ((o = json_parse (buf, len, &err))) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, "nodes");
        if (cJSON_IsNumber (v) && v->valuedouble >= 1
            && v->valuedouble <= INT_MAX)
            nodes = (int)v->valuedouble;
        cJSON_Delete (o);
    }
    return nodes;
}

static char *find_codex (struct worker *w)
{
    const char *env = getenv ("CODESWARM_CODEX");
    char path[4200];

    if (w->cfg.codex_binary)
        return strdup (w->cfg.codex_binary);
    if (env && *env)
        return strdup (env);
    if (pathf (path, sizeof (path), "%s/tools/codex/bin/codex", w->home) == 0
        && access (path, X_OK) == 0)
        return strdup (path);
    return strdup ("codex");
}

/* `codex --version` ("codex-cli 0.169.0") with the app-server's env. */
static void codex_version (struct worker *w)
{
    static char version_opt[] = "--version";
    char *argv[] = { w->codex_bin, version_opt, NULL };
    struct spawn_opts opts = SPAWN_OPTS_INIT;
    struct spawn_status st;
    cs_error_t err;
    spawn_t *s;
    char buf[256];
    size_t len = 0;
    double deadline = time_mono () + 15;

    snprintf (w->codex_version, sizeof (w->codex_version), "unknown");
    opts.env_set = w->codex_env;
    opts.pipe_stdout = true;
    opts.stderr_fd = w->log_fd;             /* its warnings go to the log */
    opts.cwd = w->workspace;
    if (!(s = spawn_start (argv, &opts, &err))) {
        log_msg ("%s", err.text);
        return;
    }
    while (time_mono () < deadline && len < sizeof (buf) - 1) {
        struct pollfd pfd = { spawn_stdout_fd (s), POLLIN, 0 };
        if (poll (&pfd, 1, 100) < 0 && errno != EINTR)
            break;
        ssize_t n = read (spawn_stdout_fd (s), buf + len, sizeof (buf) - 1 - len);
        if (n == 0)
            break;
        if (n > 0)
            len += n;
        else if (errno != EAGAIN && errno != EINTR)
            break;
    }
    buf[len] = '\0';
    (void)spawn_stop (s, 1.0, &st);
    spawn_destroy (s);
    buf[strcspn (buf, "\n")] = '\0';
    const char *v = strrchr (buf, ' ');
    v = v ? v + 1 : buf;
    if (*v)
        (void)pathf (w->codex_version, sizeof (w->codex_version), "%s", v);
}

static void schema_hash (struct worker *w)
{
    uint64_t h = fnv1a (FNV1A_INIT, w->codex_version);
    h = fnv1a (h, "\n");
    for (int i = 0; schema_methods[i]; i++) {
        h = fnv1a (h, schema_methods[i]);
        h = fnv1a (h, "\n");
    }
    snprintf (w->schema_hash, sizeof (w->schema_hash), "%016llx",
              (unsigned long long)h);
}

static int mkdir_p (const char *path, mode_t mode)
{
    char buf[4200];
    snprintf (buf, sizeof (buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir (buf, mode) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir (buf, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

static char *read_small_file (const char *path, size_t max)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    char *buf;
    size_t len = 0;
    ssize_t n;

    if (fd < 0)
        return NULL;
    if (!(buf = malloc (max + 1))) {
        close (fd);
        return NULL;
    }
    while (len < max && (n = read (fd, buf + len, max - len)) > 0)
        len += n;
    close (fd);
    buf[len] = '\0';
    if (mb_utf8_invalid (buf, len) >= 0 || strlen (buf) != len) {
        log_msg ("ignoring '%s': not UTF-8 text", path);
        free (buf);
        return NULL;
    }
    return buf;
}

static int build_env (struct worker *w)
{
    size_t n = 0, max = w->cfg.codex_nenv + 3;

    if (!(w->codex_env = calloc (max, sizeof (char *))))
        return -1;
    if (w->cfg.codex_home) {
        if (asprintf (&w->codex_env[n++], "CODEX_HOME=%s", w->cfg.codex_home) < 0)
            return -1;
    }
    if (!(w->codex_env[n++] = strdup ("NO_COLOR=1")))
        return -1;
    for (size_t i = 0; i < w->cfg.codex_nenv; i++)
        if (!(w->codex_env[n++] = strdup (w->cfg.codex_env[i])))
            return -1;
    return 0;
}

static void options_from_config (struct worker *w)
{
    struct mb_options *o = &w->mbopt;
    const struct cs_config *c = &w->cfg;

    mb_options_init (o);
    if (c->fsync) {
        if (!strcmp (c->fsync, "always"))
            o->fsync = MB_FSYNC_ALWAYS;
        else if (!strcmp (c->fsync, "never"))
            o->fsync = MB_FSYNC_NEVER;
        else
            o->fsync = MB_FSYNC_INTERVAL;
    }
    if (c->fsync_interval > 0)
        o->fsync_interval = c->fsync_interval;
    o->rotate_bytes = c->rotate_bytes;
    o->rotate_records = c->rotate_records;
    if (c->follow) {
        if (!strcmp (c->follow, "inotify"))
            o->follow = MB_FOLLOW_INOTIFY;
        else if (!strcmp (c->follow, "poll"))
            o->follow = MB_FOLLOW_POLL;
    }
    if (c->poll_min > 0)
        o->poll_min = c->poll_min;
    if (c->poll_max > 0)
        o->poll_max = c->poll_max;
    /* an rpc record is the app-server line plus the envelope */
    o->max_record = c->max_line + 4096;
    if (o->max_record < MB_DEFAULT_MAX_RECORD)
        o->max_record = MB_DEFAULT_MAX_RECORD;
}

static void worker_started (struct worker *w)
{
    cJSON *r = cJSON_CreateObject ();
    if (!r)
        return;
    json_add_u64 (r, "node", (uint64_t)w->node);
    json_add_str (r, "host", w->host);
    json_add_u64 (r, "pid", (uint64_t)getpid ());
    if (w->job_id)
        json_add_str (r, "job_id", w->job_id);
    else
        cJSON_AddNullToObject (r, "job_id");
    json_add_str (r, "codex_version", w->codex_version);
    json_add_str (r, "schema_hash", w->schema_hash);
    json_add_str (r, "codex_binary", w->codex_bin);
    json_add_str (r, "workspace", w->workspace);
    worker_record (w, "worker_started", r);
    cJSON_Delete (r);
}

static void heartbeat (struct worker *w)
{
    static const char *names[] = { "down", "starting", "starting", "up" };
    cJSON *r;

    if (outbox_degraded (w))
        return;                 /* nothing to say that node_degraded did not */
    if (!(r = cJSON_CreateObject ()))
        return;
    json_add_bool (r, "turn_active", w->turn_id != NULL);
    json_add_u64 (r, "queued", w->queued);
    json_add_str (r, "app_server", names[w->state]);
    size_t n = 0;
    for (struct approval *a = w->approvals; a; a = a->next)
        n++;
    json_add_u64 (r, "approvals_pending", n);
    json_add_str (r, "inbox", w->inbox_broken ? "unreadable" : "ok");
    worker_record (w, "heartbeat", r);
    cJSON_Delete (r);
}

/* ---- the loop ------------------------------------------------------------------ */

static void handle_signals (struct worker *w)
{
    struct signalfd_siginfo si;

    while (read (w->sigfd, &si, sizeof (si)) == sizeof (si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            as_reap (w);
            break;
        case SIGUSR1:
            log_msg ("SIGUSR1: checkpoint");
            (void)worker_checkpoint (w);
            checkpoint_record (w);
            worker_record (w, "walltime_warning", NULL);
            break;
        case SIGUSR2:
            /* the walltime stop of a persistent swarm's batch script: the
             * same graceful stop as SIGTERM, but the app-server ignores
             * SIGUSR2, so that a running turn can finish (codex ends at
             * once on a SIGTERM, which Slurm delivers to the whole step)
             */
        case SIGTERM:
        case SIGINT:
        case SIGHUP:
            worker_stop (w, si.ssi_signo == SIGINT ? "SIGINT"
                            : si.ssi_signo == SIGHUP ? "SIGHUP"
                            : si.ssi_signo == SIGUSR2 ? "SIGUSR2" : "SIGTERM");
            break;
        default:
            break;
        }
    }
}

static int ms_until (double now, double t)
{
    if (t < 0)
        return -1;
    if (t <= now)
        return 0;
    double ms = (t - now) * 1000.0 + 1;
    return ms > 60000 ? 60000 : (int)ms;
}

static int min_timeout (int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static int worker_loop (struct worker *w)
{
    cs_error_t err;

    for (;;) {
        struct pollfd pfd[7];
        int n = 0, i_sig, i_out = -1, i_err = -1, i_in = -1, i_fol = -1;
        int i_fence = -1;
        double now = time_mono ();
        int timeout;

        if (w->stopping && stop_ready (w, now)) {
            worker_finish (w);
            return 0;
        }
        if (now >= w->next_heartbeat) {
            if (!w->stopping && fence_superseded (w)) {
                /* our index lives elsewhere now: stop without waiting */
                worker_stop (w, "fenced");
                worker_stop (w, "fenced");
                continue;
            }
            heartbeat (w);
            w->next_heartbeat = now + w->cfg.heartbeat;
        }
        as_timers (w, now);
        outbox_retry (w, now);
        inbox_retry (w, now);
        if (mb_writer_sync_due (w->out) == 0)
            (void)mb_writer_sync (w->out);

        i_sig = n;
        pfd[n++] = (struct pollfd){ w->sigfd, POLLIN, 0 };
        if (w->fencing) {
            i_fence = n;
            pfd[n++] = (struct pollfd){ w->fence_fd, POLLIN, 0 };
        }
        if (w->as && !w->out_eof && spawn_stdout_fd (w->as) >= 0) {
            i_out = n;
            pfd[n++] = (struct pollfd){ spawn_stdout_fd (w->as), POLLIN, 0 };
        }
        if (w->as && !w->err_eof && spawn_stderr_fd (w->as) >= 0) {
            i_err = n;
            pfd[n++] = (struct pollfd){ spawn_stderr_fd (w->as), POLLIN, 0 };
        }
        if (w->as && w->as_in && outbuf_pending (w->as_in) > 0
            && spawn_stdin_fd (w->as) >= 0) {
            i_in = n;
            pfd[n++] = (struct pollfd){ spawn_stdin_fd (w->as), POLLOUT, 0 };
        }
        /* no new inbox record while the outbox cannot take its answer */
        if (mb_follower_fd (w->fol) >= 0 && !outbox_degraded (w)) {
            i_fol = n;
            pfd[n++] = (struct pollfd){ mb_follower_fd (w->fol), POLLIN, 0 };
        }
        timeout = ms_until (now, w->next_heartbeat);
        timeout = min_timeout (timeout, ms_until (now, as_next_timer (w)));
        timeout = min_timeout (timeout, ms_until (now, outbox_next_timer (w)));
        if (!outbox_degraded (w))
            timeout = min_timeout (timeout, mb_follower_timeout (w->fol));
        double sd = mb_writer_sync_due (w->out);
        if (sd >= 0)
            timeout = min_timeout (timeout, (int)(sd * 1000) + 1);
        if (w->stopping)
            timeout = min_timeout (timeout, 100);

        if (poll (pfd, n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            log_err ("poll");
            return -1;
        }
        if (pfd[i_sig].revents)
            handle_signals (w);
        if (i_fence >= 0 && pfd[i_fence].revents)
            worker_fence_done (w);
        if (i_in >= 0 && pfd[i_in].revents && w->as) {
            if (outbuf_flush (w->as_in, spawn_stdin_fd (w->as)) < 0
                && errno != EAGAIN) {
                log_err ("writing to the app-server");
                spawn_close_stdin (w->as);
            }
        }
        if (i_out >= 0 && pfd[i_out].revents && w->as)
            as_read_stdout (w, false);
        if (i_err >= 0 && pfd[i_err].revents && w->as)
            as_read_stderr (w, false);
        /* the follower also runs on its timer (poll mode) */
        if (!outbox_degraded (w)
            && ((i_fol >= 0 && pfd[i_fol].revents)
                || mb_follower_timeout (w->fol) == 0)) {
            if (mb_follower_process (w->fol, &err) < 0)
                worker_error (w, "inbox_read", 0, "%s", err.text);
        }
        /* an exit whose SIGCHLD was merged with another */
        if (w->as && w->out_eof && w->err_eof)
            as_reap (w);
    }
}

/* ---- main ------------------------------------------------------------------------ */

static void usage (FILE *f)
{
    fprintf (f,
"Usage: codeswarm-worker --swarm ID [--node K] [--config FILE] [--home DIR] [-v]\n"
"Run one persistent codex agent for node K of swarm ID.\n"
"  -s, --swarm ID      the swarm\n"
"  -n, --node K        node index when neither PMIx nor Slurm tells it\n"
"  -c, --config FILE   codeswarm.yaml to use\n"
"  -H, --home DIR      codeswarm home (default $CODESWARM_HOME, ~/.codeswarm)\n"
"  -v, --verbose       more log output (twice: trace the JSON-RPC)\n"
"  -h, --help          this text\n");
}

static void worker_release (struct worker *w)
{
    while (w->pending) {
        struct pending *p = w->pending;
        w->pending = p->next;
        item_free (p->item);
        free (p);
    }
    while (w->approvals) {
        struct approval *a = w->approvals;
        w->approvals = a->next;
        free (a->approval_id);
        cJSON_Delete (a->rpc_id);
        free (a->method);
        free (a->turn_id);
        free (a);
    }
    while (w->queue_head) {
        struct item *it = w->queue_head;
        w->queue_head = it->next;
        item_free (it);
    }
    item_free (w->turn_item);
    item_free (w->waiting_interrupt);
    track_release (w);
    outbox_release (w);
    spawn_destroy (w->as);
    lineio_destroy (w->as_out);
    lineio_destroy (w->as_err);
    outbuf_destroy (w->as_in);
    mb_follower_destroy (w->fol);
    mb_writer_close (w->out);
    if (w->sigfd >= 0)
        close (w->sigfd);
    if (w->log_fd >= 0)
        close (w->log_fd);
    tail_release (&w->tail);
    strset_release (&w->accepted);
    strset_release (&w->done_ids);
    strset_release (&w->retry_ids);
    if (w->codex_env) {
        for (char **e = w->codex_env; *e; e++)
            free (*e);
        free (w->codex_env);
    }
    free (w->workspace);
    free (w->codex_bin);
    free (w->dev_instructions);
    free (w->job_id);
    free (w->thread_id);
    free (w->rollout_path);
    free (w->turn_id);
    free (w->last_injection_id);
    free (w->aborted_turn);
    free (w->aborted_injection);
    cJSON_Delete (w->accepted_turns);
    free (w->stop_reason);
    if (w->cfg_loaded)
        config_release (&w->cfg);
}

/* The command line into w->swarm, *config_path and *node.  Returns false
 * when the worker is done before it began, with the exit code in *rc.
 */
static bool parse_args (struct worker *w, int argc, char *argv[],
                        const char **config_path, int *node, int *rc)
{
    static const struct option longopts[] = {
        { "swarm", required_argument, NULL, 's' },
        { "node", required_argument, NULL, 'n' },
        { "config", required_argument, NULL, 'c' },
        { "home", required_argument, NULL, 'H' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int verbose = 0, c;

    while ((c = getopt_long (argc, argv, "s:n:c:H:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            w->swarm = optarg;
            break;
        case 'n': {
            char *end;
            long v = strtol (optarg, &end, 10);
            if (*end || v < 0 || v > INT_MAX)
                log_msg_exit ("--node: '%s' is not a node index", optarg);
            *node = (int)v;
            break;
        }
        case 'c':
            *config_path = optarg;
            break;
        case 'H':
            if (setenv ("CODESWARM_HOME", optarg, 1) < 0)
                log_err_exit ("setenv");
            break;
        case 'v':
            verbose++;
            break;
        case 'h':
            usage (stdout);
            *rc = 0;
            return false;
        default:
            usage (stderr);
            *rc = 2;
            return false;
        }
    }
    if (optind != argc || !w->swarm) {
        usage (stderr);
        *rc = 2;
        return false;
    }
    log_set_verbose (verbose);
    log_set_timestamps (1);
    return true;
}

/* Block the signals we handle (into mask) before PMIx_Init (in
 * node_detect) starts threads, so that none of them can take a SIGTERM
 * meant for us.
 */
static int block_signals (sigset_t *mask)
{
    sigemptyset (mask);
    sigaddset (mask, SIGCHLD);
    sigaddset (mask, SIGTERM);
    sigaddset (mask, SIGINT);
    sigaddset (mask, SIGHUP);
    sigaddset (mask, SIGUSR1);
    sigaddset (mask, SIGUSR2);
    if (sigprocmask (SIG_BLOCK, mask, NULL) < 0) {
        log_err ("sigprocmask");
        return -1;
    }
    return 0;
}

/* The home and the swarm directory. */
static int open_home (struct worker *w)
{
    cs_error_t err;

    if (mb_home (w->home, sizeof (w->home), true, &err) < 0
        || mb_swarm_dir (w->home, w->swarm, true, w->swarmdir,
                         sizeof (w->swarmdir), &err) < 0) {
        log_msg ("%s", err.text);
        return -1;
    }
    return 0;
}

/* Which node this is, in which job, on which host. */
static int identify (struct worker *w, int opt_node)
{
    if ((w->node = node_detect (w, opt_node)) < 0)
        return -1;
    {
        /* a node outside the swarm would make a stream nobody reads */
        int nodes = swarm_nodes (w);
        if (nodes > 0 && w->node >= nodes) {
            log_msg ("node %d is outside swarm '%s': its swarm.json has "
                     "nodes 0..%d", w->node, w->swarm, nodes - 1);
            return -1;
        }
    }
    if (getenv ("SLURM_JOB_ID"))
        w->job_id = strdup (getenv ("SLURM_JOB_ID"));
    if (gethostname (w->host, sizeof (w->host) - 1) < 0)
        snprintf (w->host, sizeof (w->host), "unknown");
    return 0;
}

/* state/<k>.json, log/<k>.codex.log, the inbox and the outbox. */
static int setup_paths (struct worker *w)
{
    char dir[4200];
    cs_error_t err;

    if (pathf (dir, sizeof (dir), "%s/state", w->swarmdir) < 0
        || mb_secure_dir (dir, true, &err) < 0
        || pathf (w->state_path, sizeof (w->state_path), "%s/state/%d.json",
                  w->swarmdir, w->node) < 0
        || pathf (dir, sizeof (dir), "%s/log", w->swarmdir) < 0
        || mb_secure_dir (dir, true, &err) < 0
        || pathf (w->log_path, sizeof (w->log_path), "%s/log/%d.codex.log",
                  w->swarmdir, w->node) < 0) {
        log_err ("swarm directory '%s'", w->swarmdir);
        return -1;
    }
    if (mb_stream_path (w->swarmdir, "inbox", w->node, w->inbox_path,
                        sizeof (w->inbox_path), &err) < 0
        || mb_stream_path (w->swarmdir, "outbox", w->node, w->outbox_path,
                           sizeof (w->outbox_path), &err) < 0) {
        log_msg ("%s", err.text);
        return -1;
    }
    return 0;
}

/* The workspace (created, canonical) and its AGENTS.md. */
static int setup_workspace (struct worker *w)
{
    const char *tmpl = w->cfg.workspace ? w->cfg.workspace
                                        : "%h/swarms/%s/work/%k";
    char real[PATH_MAX], path[PATH_MAX + 16];

    if (!(w->workspace = path_template_expand (tmpl, w->home, w->swarm,
                                               w->node)))
        log_msg_exit ("out of memory");
    if (mkdir_p (w->workspace, 0700) < 0) {
        log_err ("cannot create workspace '%s'", w->workspace);
        return -1;
    }
    if (realpath (w->workspace, real)) {
        free (w->workspace);
        w->workspace = strdup (real);
    }
    if (pathf (path, sizeof (path), "%s/AGENTS.md", w->workspace) == 0)
        w->dev_instructions = read_small_file (path, 1024 * 1024);
    return 0;
}

/* The codex log, the stderr tail, codex's environment, binary, version
 * and schema; the signalfd (signals were blocked before PMIx started its
 * threads; spawn resets the child's mask).
 */
static int setup_runtime (struct worker *w, const sigset_t *mask)
{
    cs_error_t err;

    if ((w->log_fd = mb_secure_open (w->log_path,
                                     O_WRONLY | O_CREAT | O_APPEND, &err))
        < 0) {
        log_msg ("%s", err.text);
        return -1;
    }
    if (tail_init (&w->tail, w->cfg.stderr_tail) < 0 || build_env (w) < 0)
        log_msg_exit ("out of memory");
    w->codex_bin = find_codex (w);
    if ((w->sigfd = signalfd (-1, mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        log_err ("signalfd");
        return -1;
    }
    signal (SIGPIPE, SIG_IGN);
    codex_version (w);
    schema_hash (w);
    return 0;
}

/* The outbox (one writer epoch per run) with worker_started, and the
 * inbox from the checkpoint (or from its first record).
 */
static int open_streams (struct worker *w)
{
    struct mb_cursor start_cursor;
    cs_error_t err;
    int have_ckpt;

    options_from_config (w);
    if (fence_init (w) < 0 || fence_superseded (w))
        return -1;
    /* a new home waits for the old one to let go of the outbox */
    while (!(w->out = mb_writer_open (w->outbox_path, &w->mbopt, &err))) {
        if (errno != EBUSY || w->fence_gen == 0)
            goto fail_err;
        log_msg ("%s: waiting for it to end", err.text);
        do {
            sleep (1);
            if (fence_superseded (w))
                return -1;
        } while (!(w->out = mb_writer_open (w->outbox_path, &w->mbopt,
                                            &err))
                 && errno == EBUSY);
        if (!w->out)
            goto fail_err;
        break;
    }
    if ((have_ckpt = checkpoint_load (w)) < 0)
        return -1;
    worker_started (w);
    /* what happened after the checkpoint: accepted injections, turns cut */
    if (!have_ckpt || w->ckpt_has_outbox_seq)
        (void)outbox_scan (w, have_ckpt ? w->ckpt_outbox_seq : 0);
    log_msg ("node %d of swarm '%s', codex %s (%s), workspace '%s'", w->node,
             w->swarm, w->codex_version, w->codex_bin, w->workspace);
    if (w->aborted_turn) {
        worker_turn_aborted (w, w->aborted_turn, w->aborted_injection,
                             fence_restart_reason (w));
    }
    start_cursor = w->ckpt_cursor;
    if (!(w->fol = mb_follower_create (&w->mbopt, &err))
        || !(w->inbox = mb_follower_add (w->fol, w->inbox_path,
                                         have_ckpt ? MB_START_CURSOR
                                                   : MB_START_BEGIN,
                                         &start_cursor, inbox_event, w, &err)))
        goto fail_err;
    return 0;
fail_err:
    log_msg ("%s", err.text);
    return -1;
}

int main (int argc, char *argv[])
{
    struct worker wk, *w = &wk;
    const char *config_path = NULL;
    int opt_node = -1, rc = 1;
    cs_error_t err;
    sigset_t mask;

    memset (w, 0, sizeof (*w));
    w->sigfd = -1;
    w->log_fd = -1;
    w->fence_fd = -1;
    log_init ("codeswarm-worker");
    if (!parse_args (w, argc, argv, &config_path, &opt_node, &rc))
        return rc;
    if (config_load (&w->cfg, config_path, &err) < 0)
        log_msg_exit ("%s", err.text);
    w->cfg_loaded = true;
    if (open_home (w) < 0 || block_signals (&mask) < 0
        || identify (w, opt_node) < 0
        || setup_paths (w) < 0 || setup_workspace (w) < 0
        || setup_runtime (w, &mask) < 0 || open_streams (w) < 0)
        goto out;
    w->next_heartbeat = time_mono () + w->cfg.heartbeat;
    retry_queue (w);
    as_launch (w);
    (void)mb_follower_process (w->fol, &err);
    if (worker_loop (w) == 0)
        rc = w->exit_code;
out:
#ifdef HAVE_PMIX
    /* a worker stopped in its fence leaves without PMIx_Finalize, which
     * could wait for the peers that the fence is still waiting for
     */
    if (pmix_up && w->fencing)
        log_msg ("stopped while waiting for the other workers (PMIx fence)");
    else if (pmix_up)
        px.finalize (NULL, 0);
    /* libpmix stays mapped: what it keeps after PMIx_Finalize is its own */
#endif
    worker_release (w);
    return rc;
}
