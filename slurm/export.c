/* export.c - "codeswarm export" and "codeswarm import": a swarm as one
 * tar.gz, to understand it or to resume it elsewhere.
 *
 * The archive (common/ustar.h) holds one directory, the swarm id, with:
 *   export.json         what this is: format, version, swarm id, when, the
 *                       cut (last seq of every stream), the rollouts, the
 *                       accounting (or why there is none)
 *   swarm.json, job.sbatch, cursors/, state/, archive/, inbox/, outbox/,
 *   audit.jsonl, log/   as in the swarm directory
 *   rollouts/<k>/...    node k's codex rollout file (state/<k>.json)
 *   config.json         the effective configuration, secrets removed
 *   sacct.txt           sacct --parsable2 of every job of the chain
 *
 * A consistent cut of a running swarm: cursors and checkpoints are taken
 * first, then the streams, which only grow; each stream is the prefix up
 * to its last complete record, and its sealed segments are listed before
 * and after the active segment is opened, so that a rotation in between
 * is seen and the stream taken again.  A cursor or checkpoint therefore
 * never points past the records of the archive.
 *
 * The archive is written to a temporary beside FILE, fsync'd and renamed
 * over FILE (common/atomicfile.h): a failure (ENOSPC...) leaves no partial
 * file.
 *
 * Import extracts into a fresh private directory under <home>/swarms
 * (entries are created with O_EXCL|O_NOFOLLOW in directories the import
 * made itself), refuses links, devices, names outside the root and
 * duplicates before anything is visible, puts the rollouts into the codex
 * home the workers will use, and renames the directory into place only
 * when the swarm id is free.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/configfile.h"
#include "common/json.h"
#include "common/lineio.h"
#include "common/log.h"
#include "common/path.h"
#include "common/ustar.h"
#include "mailbox/mailbox.h"
#include "slurm/launch.h"
#include "slurm/sacct.h"
#include "slurm/swarm.h"

#define EXPORT_FORMAT "codeswarm-export"
#define EXPORT_VERSION 1
#define EXPORT_MAX_FILE (64ull << 30)

struct exporter {
    ustar_writer_t *w;
    const char *dir;  /* the swarm directory */
    const char *root; /* the archive's top directory (the swarm id) */
    cJSON *streams;   /* name -> {"last_seq":..., "bytes":...} */
    cJSON *rollouts;  /* [{node, thread_id, file, sessions_path}] */
};

/* ---- export: files
 * ------------------------------------------------------------ */

/* All of fd (at most max bytes), NUL-terminated (free()); NULL with errno */
static char *fd_read_all (int fd, size_t max, size_t *lenp)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc (cap), *nb;
    ssize_t n;

    if (!buf)
        return NULL;
    for (;;) {
        if (len + 1 >= cap) {
            if (cap >= max) {
                free (buf);
                errno = EFBIG;
                return NULL;
            }
            if (!(nb = realloc (buf, cap * 2))) {
                free (buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        n = read (fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            free (buf);
            errno = saved;
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *lenp = len;
    return buf;
}

static int add_dir (struct exporter *x, const char *rel, cs_error_t *errp)
{
    char name[PATH_MAX];

    if (pathf (name, sizeof (name), "%s/%s", x->root, rel) < 0)
        return errprintf (errp, "'%s': name too long", rel);
    return ustar_add_dir (x->w, name, 0700, time (NULL), errp);
}

/* The offset just after the last '\n' of fd's first size bytes. */
static int last_newline (int fd, uint64_t size, uint64_t *cut)
{
    char buf[65536];
    uint64_t end = size;

    while (end > 0) {
        size_t n = end < sizeof (buf) ? (size_t)end : sizeof (buf);
        ssize_t got = pread (fd, buf, n, (off_t)(end - n));
        if (got < 0 && errno == EINTR)
            continue;
        if (got != (ssize_t)n) {
            if (got >= 0)
                errno = EIO;
            return -1;
        }
        for (size_t i = n; i > 0; i--) {
            if (buf[i - 1] == '\n') {
                *cut = end - n + i;
                return 0;
            }
        }
        end -= n;
    }
    *cut = 0;
    return 0;
}

/* The "seq" of the last complete record of fd's first cut bytes (0 when
 * there is none, or it does not parse).
 */
static uint64_t last_seq (int fd, uint64_t cut)
{
    uint64_t start = 0, seq = 0;
    char *line;
    cJSON *o;
    const cJSON *s;

    if (cut == 0 || last_newline (fd, cut - 1, &start) < 0)
        return 0;
    if (cut - start > (16u << 20) || !(line = malloc (cut - start)))
        return 0;
    if (pread (fd, line, cut - start, (off_t)start) == (ssize_t)(cut - start) &&
        (o = json_parse (line, (size_t)(cut - start - 1), NULL))) {
        s = cJSON_GetObjectItemCaseSensitive (o, "seq");
        if (cJSON_IsNumber (s) && s->valuedouble >= 0)
            seq = (uint64_t)s->valuedouble;
        cJSON_Delete (o);
    }
    free (line);
    return seq;
}

/* Open a file of the swarm for reading: a regular file of ours, no link.
 * Returns the fd, -1 with errno (ENOENT when it is gone).
 */
static int open_member (const char *path, struct stat *st, cs_error_t *errp)
{
    int fd = mb_secure_open (path, O_RDONLY, errp);

    if (fd < 0)
        return -1;
    if (fstat (fd, st) < 0) {
        int saved = errno;
        close (fd);
        errno = saved;
        return errprintf (errp, "cannot stat '%s': %s", path, strerror (errno));
    }
    return fd;
}

/* Add the file at path as rel: whole (jsonl false), or up to its last
 * complete line.  *seq (may be NULL) gets the last record's seq.
 */
static int add_file (struct exporter *x, const char *path, const char *rel,
                     bool jsonl, uint64_t *seq, cs_error_t *errp)
{
    char name[PATH_MAX];
    struct stat st;
    uint64_t size;
    int fd, rc;

    if (pathf (name, sizeof (name), "%s/%s", x->root, rel) < 0)
        return errprintf (errp, "'%s': name too long", rel);
    if ((fd = open_member (path, &st, errp)) < 0)
        return -1;
    size = (uint64_t)st.st_size;
    if (jsonl && last_newline (fd, size, &size) < 0) {
        close (fd);
        return errprintf (errp, "cannot read '%s': %s", path, strerror (errno));
    }
    if (seq)
        *seq = jsonl ? last_seq (fd, size) : 0;
    rc = ustar_add_fd (x->w, name, 0600, st.st_mtime, fd, size, errp);
    close (fd);
    return rc;
}

/* Every regular file of <dir>/<sub> (no recursion), sorted. */
static int add_files_of (struct exporter *x, const char *sub, bool jsonl,
                         cs_error_t *errp)
{
    char path[PATH_MAX], rel[PATH_MAX];
    struct dirent **names = NULL;
    int n, rc = 0;

    if (pathf (path, sizeof (path), "%s/%s", x->dir, sub) < 0)
        return errprintf (errp, "'%s/%s': path too long", x->dir, sub);
    if ((n = scandir (path, &names, NULL, alphasort)) < 0) {
        if (errno == ENOENT)
            return 0;
        return errprintf (errp, "cannot read '%s': %s", path, strerror (errno));
    }
    if (add_dir (x, sub, errp) < 0)
        rc = -1;
    for (int i = 0; i < n; i++) {
        const char *d = names[i]->d_name;
        char fpath[PATH_MAX];
        struct stat st;
        if (rc < 0 || d[0] == '.' || strstr (d, ".tmp") || strstr (d, ".lock"))
            continue;
        if (pathf (fpath, sizeof (fpath), "%s/%s", path, d) < 0 ||
            pathf (rel, sizeof (rel), "%s/%s", sub, d) < 0) {
            rc = errprintf (errp, "'%s/%s': path too long", path, d);
            continue;
        }
        if (lstat (fpath, &st) < 0 || !S_ISREG (st.st_mode))
            continue; /* gone meanwhile, or not a file of the swarm */
        if (add_file (x, fpath, rel, jsonl, NULL, errp) < 0 && errno != ENOENT)
            rc = -1;
    }
    for (int i = 0; i < n; i++)
        free (names[i]);
    free (names);
    return rc;
}

/* ---- export: streams
 * ---------------------------------------------------------- */

static bool same_segments (const struct mb_segment *a, size_t na,
                           const struct mb_segment *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp (a[i].path, b[i].path))
            return false;
    return true;
}

/* One stream (box/name.jsonl): its sealed segments and the prefix of its
 * active segment, taken so that no rotation falls in between.
 */
static int add_stream (struct exporter *x, const char *box, const char *file,
                       cs_error_t *errp)
{
    char spath[PATH_MAX], rel[PATH_MAX], key[PATH_MAX];
    struct mb_segment *s1 = NULL, *s2 = NULL;
    size_t n1 = 0, n2 = 0;
    int *fds = NULL, afd = -1, rc = -1;
    struct stat ast;
    uint64_t cut = 0, seq = 0;

    if (pathf (spath, sizeof (spath), "%s/%s/%s", x->dir, box, file) < 0 ||
        pathf (rel, sizeof (rel), "%s/%s", box, file) < 0)
        return errprintf (errp, "'%s': path too long", file);
    for (int attempt = 0;; attempt++) {
        free (s1);
        free (s2);
        s1 = s2 = NULL;
        if (afd >= 0)
            close (afd);
        afd = -1;
        if (attempt == 20) {
            errno = EAGAIN;
            errprintf (errp, "'%s' keeps rotating: no consistent cut", spath);
            goto done;
        }
        if (mb_segments_list (spath, &s1, &n1, errp) < 0)
            goto done;
        if ((afd = open_member (spath, &ast, errp)) < 0) {
            if (errno == ENOENT)
                continue;
            goto done;
        }
        if (last_newline (afd, (uint64_t)ast.st_size, &cut) < 0) {
            errprintf (errp, "cannot read '%s': %s", spath, strerror (errno));
            goto done;
        }
        if (mb_segments_list (spath, &s2, &n2, errp) < 0)
            goto done;
        if (!same_segments (s1, n1, s2, n2))
            continue;
        /* open every segment now: a plain one may be compressed later */
        free (fds);
        if (!(fds = calloc (n1 + 1, sizeof (int)))) {
            errprintf (errp, "out of memory");
            goto done;
        }
        bool gone = false;
        for (size_t i = 0; i < n1; i++)
            fds[i] = -1;
        for (size_t i = 0; i < n1 && !gone; i++) {
            struct stat st;
            if ((fds[i] = open_member (s1[i].path, &st, errp)) < 0) {
                if (errno != ENOENT)
                    goto done;
                gone = true;
            }
        }
        if (gone) {
            for (size_t i = 0; i < n1; i++)
                if (fds[i] >= 0)
                    close (fds[i]);
            continue;
        }
        break;
    }
    for (size_t i = 0; i < n1; i++) {
        char name[PATH_MAX];
        const char *base = strrchr (s1[i].path, '/');
        struct stat st;
        base = base ? base + 1 : s1[i].path;
        if (pathf (name, sizeof (name), "%s/archive/%s", x->root, base) < 0 ||
            fstat (fds[i], &st) < 0) {
            errprintf (errp, "'%s': %s", s1[i].path, strerror (errno));
            goto done;
        }
        if (ustar_add_fd (x->w, name, 0600, st.st_mtime, fds[i],
                          (uint64_t)st.st_size, errp) < 0)
            goto done;
    }
    {
        char name[PATH_MAX];
        seq = last_seq (afd, cut);
        if (seq == 0 && n1 > 0)
            seq = s1[n1 - 1].last;
        if (pathf (name, sizeof (name), "%s/%s", x->root, rel) < 0 ||
            ustar_add_fd (x->w, name, 0600, ast.st_mtime, afd, cut, errp) < 0)
            goto done;
    }
    {
        cJSON *o = cJSON_CreateObject ();
        snprintf (key, sizeof (key), "%s/%s", box, file);
        if (!o || json_add_u64 (o, "last_seq", seq) < 0 ||
            json_add_u64 (o, "bytes", cut) < 0 ||
            json_add_u64 (o, "segments", n1) < 0 ||
            json_add_item (x->streams, key, o) < 0) {
            errprintf (errp, "out of memory");
            goto done;
        }
    }
    rc = 0;
done:
    if (fds) {
        for (size_t i = 0; i < n1; i++)
            if (fds[i] >= 0)
                close (fds[i]);
        free (fds);
    }
    if (afd >= 0)
        close (afd);
    free (s1);
    free (s2);
    return rc;
}

static int add_box (struct exporter *x, const char *box, cs_error_t *errp)
{
    char path[PATH_MAX];
    struct dirent **names = NULL;
    int n, rc = 0;

    if (pathf (path, sizeof (path), "%s/%s", x->dir, box) < 0)
        return errprintf (errp, "path too long");
    if ((n = scandir (path, &names, NULL, alphasort)) < 0) {
        if (errno == ENOENT)
            return 0;
        return errprintf (errp, "cannot read '%s': %s", path, strerror (errno));
    }
    if (add_dir (x, box, errp) < 0)
        rc = -1;
    for (int i = 0; i < n; i++) {
        const char *d = names[i]->d_name;
        size_t len = strlen (d);
        if (rc == 0 && d[0] != '.' && len > 6 &&
            !strcmp (d + len - 6, ".jsonl"))
            rc = add_stream (x, box, d, errp);
    }
    for (int i = 0; i < n; i++)
        free (names[i]);
    free (names);
    return rc;
}

/* ---- export: rollouts, configuration, accounting
 * ------------------------------ */

static int add_rollouts (struct exporter *x, int nodes, cs_error_t *errp)
{
    for (int k = 0; k < nodes; k++) {
        char path[PATH_MAX], rel[PATH_MAX], *text = NULL;
        const char *rollout, *thread, *base, *sess;
        cJSON *st, *r;
        size_t len;
        int fd;

        if (pathf (path, sizeof (path), "%s/state/%d.json", x->dir, k) < 0)
            return errprintf (errp, "path too long");
        if ((fd = mb_secure_open (path, O_RDONLY, errp)) < 0) {
            if (errno == ENOENT)
                continue;
            return -1;
        }
        text = fd_read_all (fd, 1 << 20, &len);
        close (fd);
        st = text ? json_parse (text, len, NULL) : NULL;
        free (text);
        if (!st)
            continue;
        rollout = swarm_str (st, "rollout_path");
        thread = swarm_str (st, "thread_id");
        if (!rollout || !(base = strrchr (rollout, '/')) || !base[1]) {
            cJSON_Delete (st);
            continue;
        }
        base++;
        sess = strstr (rollout, "/sessions/");
        sess = sess ? sess + strlen ("/sessions/") : base;
        if (pathf (rel, sizeof (rel), "rollouts/%d", k) < 0 ||
            add_dir (x, rel, errp) < 0 ||
            pathf (rel, sizeof (rel), "rollouts/%d/%s", k, base) < 0) {
            cJSON_Delete (st);
            return -1;
        }
        if (add_file (x, rollout, rel, true, NULL, errp) < 0) {
            /* the rollout lives outside the swarm: say so, go on */
            log_msg ("node %d: rollout not exported: %s", k, errp->text);
            cJSON_Delete (st);
            continue;
        }
        if (!(r = cJSON_CreateObject ()) ||
            !cJSON_AddItemToArray (x->rollouts, r) ||
            json_add_u64 (r, "node", (uint64_t)k) < 0 ||
            (thread && json_add_str (r, "thread_id", thread) < 0) ||
            json_add_str (r, "file", rel) < 0 ||
            json_add_str (r, "sessions_path", sess) < 0 ||
            json_add_str (r, "original_path", rollout) < 0) {
            cJSON_Delete (st);
            return errprintf (errp, "out of memory");
        }
        cJSON_Delete (st);
    }
    return 0;
}

static void add_opt (cJSON *o, const char *key, const char *v)
{
    if (v)
        json_add_str (o, key, v);
    else
        cJSON_AddNullToObject (o, key);
}

/* The effective configuration, as JSON; the values of codex.env (API keys
 * and the like) are removed, their names kept.
 */
static cJSON *config_json (const struct cs_config *c)
{
    cJSON *o = cJSON_CreateObject ();
    cJSON *codex = cJSON_AddObjectToObject (o, "codex");
    cJSON *worker = cJSON_AddObjectToObject (o, "worker");
    cJSON *appr = cJSON_AddObjectToObject (o, "approvals");
    cJSON *mbox = cJSON_AddObjectToObject (o, "mailbox");
    cJSON *router = cJSON_AddObjectToObject (o, "router");
    cJSON *slurm = cJSON_AddObjectToObject (o, "slurm");
    cJSON *args, *env, *rules;

    if (!codex || !worker || !appr || !mbox || !router || !slurm) {
        cJSON_Delete (o);
        return NULL;
    }
    add_opt (o, "file", c->path);
    add_opt (codex, "binary", c->codex_binary);
    add_opt (codex, "home", c->codex_home);
    add_opt (codex, "model", c->model);
    add_opt (codex, "provider", c->model_provider);
    add_opt (codex, "approval_policy", c->approval_policy);
    add_opt (codex, "sandbox", c->sandbox);
    args = cJSON_AddArrayToObject (codex, "args");
    for (size_t i = 0; args && i < c->codex_nargs; i++)
        cJSON_AddItemToArray (args, cJSON_CreateString (c->codex_args[i]));
    env = cJSON_AddArrayToObject (codex, "env");
    for (size_t i = 0; env && i < c->codex_nenv; i++) {
        char buf[256];
        const char *eq = strchr (c->codex_env[i], '=');
        int n =
            eq ? (int)(eq - c->codex_env[i]) : (int)strlen (c->codex_env[i]);
        snprintf (buf, sizeof (buf), "%.*s=(removed)", n, c->codex_env[i]);
        cJSON_AddItemToArray (env, cJSON_CreateString (buf));
    }
    add_opt (worker, "workspace", c->workspace);
    json_add_double (worker, "heartbeat", c->heartbeat);
    json_add_double (worker, "request_timeout", c->request_timeout);
    json_add_double (worker, "shutdown_grace", c->shutdown_grace);
    json_add_double (worker, "restart_backoff_min", c->restart_backoff_min);
    json_add_double (worker, "restart_backoff_max", c->restart_backoff_max);
    json_add_double (worker, "healthy_after", c->healthy_after);
    json_add_u64 (worker, "max_failed_starts", (uint64_t)c->max_failed_starts);
    json_add_u64 (worker, "max_line", c->max_line);
    json_add_double (appr, "timeout", c->approval_timeout);
    rules = cJSON_AddArrayToObject (appr, "rules");
    for (size_t i = 0; rules && i < c->nrules; i++) {
        cJSON *r = cJSON_CreateObject ();
        if (!r || !cJSON_AddItemToArray (rules, r))
            break;
        add_opt (r, "prefix", c->rules[i].prefix);
        add_opt (r, "decision", c->rules[i].decision);
        json_add_bool (r, "in_workspace", c->rules[i].in_workspace);
    }
    add_opt (mbox, "fsync", c->fsync);
    json_add_u64 (mbox, "rotate_bytes", c->rotate_bytes);
    json_add_u64 (mbox, "rotate_records", c->rotate_records);
    add_opt (mbox, "follow", c->follow);
    json_add_double (router, "node_lost_after", c->node_lost_after);
    add_opt (router, "login_host", c->login_host);
    add_opt (slurm, "backend", c->backend);
    add_opt (slurm, "partition", c->partition);
    add_opt (slurm, "account", c->account);
    add_opt (slurm, "qos", c->qos);
    add_opt (slurm, "time", c->time_limit);
    add_opt (slurm, "template", c->sbatch_template);
    json_add_u64 (slurm, "warn_seconds", (uint64_t)c->warn_seconds);
    json_add_bool (slurm, "pmix", c->use_pmix);
    return o;
}

/* sacct.txt and the manifest's "accounting" */
static int add_accounting (struct exporter *x, const cJSON *sw, cJSON *manifest,
                           cs_error_t *errp)
{
    cJSON *acc = cJSON_AddObjectToObject (manifest, "accounting");
    char *ids = sacct_chain_ids (sw), *text = NULL, name[PATH_MAX];
    cs_error_t e;
    int rc = 0;

    if (!acc)
        return errprintf (errp, "out of memory");
    if (!ids) {
        json_add_bool (acc, "available", false);
        json_add_str (acc, "reason", "the swarm has no Slurm jobs");
        return 0;
    }
    json_add_str (acc, "jobs", ids);
    if (sacct_query (ids, &text, &e) < 0) {
        json_add_bool (acc, "available", false);
        json_add_str (acc, "reason", e.text);
        log_msg ("no Slurm accounting in the export: %s", e.text);
    } else {
        json_add_bool (acc, "available", true);
        json_add_str (acc, "file", "sacct.txt");
        if (pathf (name, sizeof (name), "%s/sacct.txt", x->root) < 0 ||
            ustar_add_data (x->w, name, 0600, time (NULL), text, strlen (text),
                            errp) < 0)
            rc = -1;
    }
    free (text);
    free (ids);
    return rc;
}

/* ---- export: the verb
 * --------------------------------------------------------- */

static void export_usage (FILE *f)
{
    fprintf (f,
             "usage: codeswarm export SWARM [-o|--output FILE]\n"
             "\n"
             "Write the swarm as one tar.gz (default: SWARM.tar.gz; '-' is "
             "stdout): swarm.json,\n"
             "the mailbox with its sealed segments, cursors, checkpoints, each "
             "node's codex\n"
             "rollout, the audit trail, the effective configuration (secrets "
             "removed) and\n"
             "the Slurm accounting of the job chain.  A running swarm is cut "
             "consistently:\n"
             "every stream up to its last complete record.  'codeswarm "
             "import' restores it.\n");
}

static int export_write (const char *home, const char *dir, const char *id,
                         int fd, cs_error_t *errp)
{
    struct exporter x = {.dir = dir, .root = id};
    cJSON *manifest = cJSON_CreateObject (), *sw = NULL;
    struct cs_config cfg;
    bool have_cfg = false;
    char path[PATH_MAX], host[256] = "";
    char *s = NULL;
    int rc = -1;

    x.streams = cJSON_CreateObject ();
    x.rollouts = cJSON_CreateArray ();
    if (!manifest || !x.streams || !x.rollouts) {
        errprintf (errp, "out of memory");
        goto done;
    }
    if (!(x.w = ustar_writer_create (fd, errp)))
        goto done;
    if (!(sw = swarm_load (dir, errp)) && errno != ENOENT)
        goto done;
    if (ustar_add_dir (x.w, id, 0700, time (NULL), errp) < 0)
        goto done;
    /* what points into the streams first, the streams after */
    pathf (path, sizeof (path), "%s/swarm.json", dir);
    if (sw && add_file (&x, path, "swarm.json", false, NULL, errp) < 0)
        goto done;
    pathf (path, sizeof (path), "%s/job.sbatch", dir);
    if (access (path, F_OK) == 0 &&
        add_file (&x, path, "job.sbatch", false, NULL, errp) < 0)
        goto done;
    if (add_files_of (&x, "cursors", false, errp) < 0 ||
        add_files_of (&x, "state", false, errp) < 0)
        goto done;
    if (add_dir (&x, "archive", errp) < 0 || add_box (&x, "inbox", errp) < 0 ||
        add_box (&x, "outbox", errp) < 0)
        goto done;
    pathf (path, sizeof (path), "%s/audit.jsonl", dir);
    if (access (path, F_OK) == 0) {
        uint64_t seq;
        if (add_file (&x, path, "audit.jsonl", true, &seq, errp) < 0)
            goto done;
    }
    if (add_files_of (&x, "log", false, errp) < 0)
        goto done;
    if (add_dir (&x, "rollouts", errp) < 0 ||
        add_rollouts (&x, sw ? swarm_int (sw, "nodes", 0) : 0, errp) < 0)
        goto done;
    {
        const cJSON *o =
            sw ? cJSON_GetObjectItemCaseSensitive (sw, "options") : NULL;
        const char *cpath = swarm_str (o, "config");
        cJSON *cj;
        char name[PATH_MAX];
        if (config_load (&cfg,
                         cpath && access (cpath, R_OK) == 0 ? cpath : NULL,
                         errp) < 0)
            goto done;
        have_cfg = true;
        if (!(cj = config_json (&cfg)) || !(s = cJSON_Print (cj))) {
            cJSON_Delete (cj);
            errprintf (errp, "out of memory");
            goto done;
        }
        cJSON_Delete (cj);
        pathf (name, sizeof (name), "%s/config.json", id);
        if (ustar_add_data (x.w, name, 0600, time (NULL), s, strlen (s), errp) <
            0)
            goto done;
        free (s);
        s = NULL;
    }
    if (add_accounting (&x, sw, manifest, errp) < 0)
        goto done;
    (void)gethostname (host, sizeof (host) - 1);
    {
        char name[PATH_MAX];
        struct passwd *pw = getpwuid (geteuid ());
        if (json_add_str (manifest, "format", EXPORT_FORMAT) < 0 ||
            json_add_u64 (manifest, "version", EXPORT_VERSION) < 0 ||
            json_add_str (manifest, "swarm_id", id) < 0 ||
            json_add_double (manifest, "exported_at", time_now ()) < 0 ||
            json_add_str (manifest, "codeswarm_version", PACKAGE_VERSION) < 0 ||
            json_add_str (manifest, "host", host) < 0 ||
            json_add_str (manifest, "user", pw ? pw->pw_name : "?") < 0 ||
            json_add_str (manifest, "home", home) < 0 ||
            json_add_str (manifest, "state",
                          sw && swarm_str (sw, "state")
                              ? swarm_str (sw, "state")
                              : "unknown") < 0 ||
            json_add_item (manifest, "streams", x.streams) < 0) {
            errprintf (errp, "out of memory");
            goto done;
        }
        x.streams = NULL;
        if (json_add_item (manifest, "rollouts", x.rollouts) < 0) {
            errprintf (errp, "out of memory");
            goto done;
        }
        x.rollouts = NULL;
        if (!(s = cJSON_Print (manifest))) {
            errprintf (errp, "out of memory");
            goto done;
        }
        pathf (name, sizeof (name), "%s/export.json", id);
        if (ustar_add_data (x.w, name, 0600, time (NULL), s, strlen (s), errp) <
            0)
            goto done;
    }
    rc = ustar_finish (x.w, errp);
    x.w = NULL;
done:
    ustar_abandon (x.w);
    if (have_cfg)
        config_release (&cfg);
    free (s);
    cJSON_Delete (manifest);
    cJSON_Delete (x.streams);
    cJSON_Delete (x.rollouts);
    cJSON_Delete (sw);
    return rc;
}

int cmd_export (int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char home[LAUNCH_PATH_MAX], dir[LAUNCH_PATH_MAX], def[PATH_MAX];
    struct atomic_file af;
    const char *out = NULL, *id;
    cs_error_t e;
    int c;

    while ((c = getopt_long (argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'h':
            export_usage (stdout);
            return 0;
        default:
            export_usage (stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        export_usage (stderr);
        return 2;
    }
    id = argv[optind];
    if (launch_home (home, sizeof (home), false) < 0)
        return 1;
    if (launch_swarm_dir (home, id, dir, sizeof (dir), &e) < 0) {
        log_msg ("%s", e.text);
        return 1;
    }
    if (!out) {
        pathf (def, sizeof (def), "%s.tar.gz", id);
        out = def;
    }
    if (!strcmp (out, "-")) {
        if (export_write (home, dir, id, STDOUT_FILENO, &e) < 0) {
            log_msg ("cannot export '%s': %s", id, e.text);
            return 1;
        }
        return 0;
    }
    if (atomic_file_open (&af, out, &e) < 0)
        goto error;
    if (export_write (home, dir, id, af.fd, &e) < 0) {
        atomic_file_abort (&af);
        goto error;
    }
    if (atomic_file_commit (&af, 0, &e) < 0)
        goto error;
    launch_audit (dir, "export", "file", out, NULL);
    printf ("swarm %s exported to '%s'\n", id, out);
    return 0;
error:
    log_msg ("cannot export '%s' to '%s': %s; nothing was written", id, out,
             e.text);
    return 1;
}

/* ---- import
 * ------------------------------------------------------------------- */

/* rm -r of a directory this program made (no symlink is followed) */
static void remove_tree (const char *path)
{
    DIR *d = opendir (path);
    struct dirent *de;

    if (d) {
        while ((de = readdir (d))) {
            char p[PATH_MAX];
            struct stat st;
            if (!strcmp (de->d_name, ".") || !strcmp (de->d_name, ".."))
                continue;
            if (pathf (p, sizeof (p), "%s/%s", path, de->d_name) < 0)
                continue;
            if (lstat (p, &st) == 0 && S_ISDIR (st.st_mode))
                remove_tree (p);
            else
                (void)unlink (p);
        }
        closedir (d);
    }
    (void)rmdir (path);
}

/* mkdir -p of rel under base, every new directory 0700 */
static int make_dirs (const char *base, const char *rel, cs_error_t *errp)
{
    char p[PATH_MAX];
    size_t blen = strlen (base);

    if (pathf (p, sizeof (p), "%s/%s", base, rel) < 0)
        return errprintf (errp, "'%s': path too long", rel);
    for (char *s = p + blen + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            struct stat st;
            *s = '\0';
            if (mkdir (p, 0700) < 0 && (errno != EEXIST || lstat (p, &st) < 0 ||
                                        !S_ISDIR (st.st_mode))) {
                if (errno == EEXIST)
                    errno = ENOTDIR;
                return errprintf (errp, "cannot create '%s': %s", p,
                                  strerror (errno));
            }
            *s = c;
            if (!c)
                break;
        }
    }
    return 0;
}

/* Copy the current entry's data into a new file (O_EXCL|O_NOFOLLOW). */
static int extract_file (ustar_reader_t *r, const char *path, cs_error_t *errp)
{
    char buf[65536];
    ssize_t n;
    int fd =
        open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd < 0) {
        if (errno == EEXIST)
            return errprintf (errp,
                              "'%s' appears twice in the archive: "
                              "refused",
                              path);
        return errprintf (errp, "cannot create '%s': %s", path,
                          strerror (errno));
    }
    while ((n = ustar_read (r, buf, sizeof (buf), errp)) > 0) {
        if (fd_write_all (fd, buf, (size_t)n) < 0) {
            errprintf (errp, "cannot write '%s': %s", path, strerror (errno));
            n = -1;
            break;
        }
    }
    if (n == 0 && (fsync (fd) < 0 || close (fd) < 0)) {
        fd = -1;
        n = errprintf (errp, "cannot write '%s': %s", path, strerror (errno));
    } else if (n == 0)
        fd = -1;
    if (fd >= 0)
        close (fd);
    return n < 0 ? -1 : 0;
}

/* Extract every entry under root/ into tmpdir.  *root is set from the
 * first entry (a directory).
 */
static int extract (int afd, const char *tmpdir, char *root, size_t rlen,
                    cs_error_t *errp)
{
    ustar_reader_t *r = ustar_reader_create (afd, errp);
    struct ustar_entry e;
    int rc, count = 0;

    if (!r)
        return -1;
    root[0] = '\0';
    while ((rc = ustar_next (r, &e, errp)) == 1) {
        size_t n = strlen (root);
        const char *rel;
        char path[PATH_MAX];
        if (!root[0]) {
            if (!e.dir || strchr (e.name, '/')) {
                errno = EINVAL;
                rc = errprintf (errp,
                                "'%s': not a swarm export (the first "
                                "entry is not its directory)",
                                e.name);
                break;
            }
            snprintf (root, rlen, "%s", e.name);
            continue;
        }
        if (strncmp (e.name, root, n) != 0 || e.name[n] != '/') {
            errno = EPERM;
            rc = errprintf (errp,
                            "'%s' is outside the archive's root '%s/': "
                            "refused",
                            e.name, root);
            break;
        }
        rel = e.name + n + 1;
        count++;
        if (e.dir) {
            if ((rc = make_dirs (tmpdir, rel, errp)) < 0)
                break;
            continue;
        }
        {
            const char *slash = strrchr (rel, '/');
            if (slash) {
                char parent[PATH_MAX];
                snprintf (parent, sizeof (parent), "%.*s", (int)(slash - rel),
                          rel);
                if ((rc = make_dirs (tmpdir, parent, errp)) < 0)
                    break;
            }
        }
        if (pathf (path, sizeof (path), "%s/%s", tmpdir, rel) < 0) {
            rc = errprintf (errp, "'%s': path too long", rel);
            break;
        }
        if ((rc = extract_file (r, path, errp)) < 0)
            break;
    }
    ustar_reader_destroy (r);
    if (rc == 0 && !root[0]) {
        errno = EINVAL;
        return errprintf (errp, "the archive is empty");
    }
    return rc < 0 ? -1 : 0;
}

static cJSON *load_json (const char *path, cs_error_t *errp)
{
    char *text;
    size_t len;
    cJSON *o;
    int fd = mb_secure_open (path, O_RDONLY, errp);

    if (fd < 0)
        return NULL;
    text = fd_read_all (fd, 16 << 20, &len);
    close (fd);
    if (!text) {
        errprintf (errp, "cannot read '%s': %s", path, strerror (errno));
        return NULL;
    }
    o = json_parse (text, len, errp);
    free (text);
    if (!o)
        errprefix (errp, "'%s'", path);
    return o;
}

static int save_json (const char *path, const cJSON *o, cs_error_t *errp)
{
    char *s = cJSON_PrintUnformatted (o), *line;
    size_t n = s ? strlen (s) : 0;
    int rc;

    if (!s || !(line = realloc (s, n + 2))) {
        free (s);
        return errprintf (errp, "out of memory");
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    rc = atomic_file_write (path, line, n + 1, 0, errp);
    free (line);
    return rc;
}

/* the codex home the workers will use: codex.home, $CODEX_HOME, ~/.codex */
static int codex_home (const struct cs_config *cfg, char *buf, size_t len)
{
    const char *env = getenv ("CODEX_HOME");
    const char *home = getenv ("HOME");

    if (cfg->codex_home)
        return pathf (buf, len, "%s", cfg->codex_home);
    if (env && *env)
        return pathf (buf, len, "%s", env);
    return pathf (buf, len, "%s/.codex", home ? home : "");
}

/* Copy the imported rollouts into the codex home; record the new paths in
 * state/<k>.json.  The paths copied are added to *made (to undo).
 */
static int place_rollouts (const char *tmpdir, const cJSON *manifest,
                           const struct cs_config *cfg, cJSON *made,
                           cs_error_t *errp)
{
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive (manifest, "rollouts");
    const cJSON *r;
    char chome[PATH_MAX];

    if (codex_home (cfg, chome, sizeof (chome)) < 0)
        return errprintf (errp, "codex home: path too long");
    cJSON_ArrayForEach (r, rs)
    {
        const char *file = swarm_str (r, "file");
        const char *sess = swarm_str (r, "sessions_path");
        int k = swarm_int (r, "node", -1);
        char src[PATH_MAX], dst[PATH_MAX], rel[PATH_MAX], state[PATH_MAX];
        const char *slash;
        cJSON *st;
        int in, out;

        if (!file || !sess || k < 0 || !ustar_name_safe (file) ||
            !ustar_name_safe (sess)) {
            errno = EINVAL;
            return errprintf (errp, "export.json: a bad rollout entry");
        }
        pathf (src, sizeof (src), "%s/%s", tmpdir, file);
        if (pathf (rel, sizeof (rel), "sessions/%s", sess) < 0 ||
            pathf (dst, sizeof (dst), "%s/%s", chome, rel) < 0)
            return errprintf (errp, "path too long");
        if ((slash = strrchr (rel, '/'))) {
            char parent[PATH_MAX];
            snprintf (parent, sizeof (parent), "%.*s", (int)(slash - rel), rel);
            if (mb_secure_dir (chome, true, errp) < 0 ||
                make_dirs (chome, parent, errp) < 0)
                return -1;
        }
        if (access (dst, F_OK) == 0) {
            errno = EEXIST;
            return errprintf (errp,
                              "node %d's rollout '%s' exists already "
                              "(the thread is in this codex home): "
                              "import into another codex home "
                              "(codex.home)",
                              k, dst);
        }
        if ((in = mb_secure_open (src, O_RDONLY, errp)) < 0)
            return -1;
        if ((out = open (dst,
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                         0600)) < 0) {
            close (in);
            return errprintf (errp, "cannot create '%s': %s", dst,
                              strerror (errno));
        }
        cJSON_AddItemToArray (made, cJSON_CreateString (dst));
        {
            char buf[65536];
            ssize_t n;
            while ((n = read (in, buf, sizeof (buf))) > 0)
                if (fd_write_all (out, buf, (size_t)n) < 0) {
                    n = -1;
                    break;
                }
            close (in);
            if (n < 0 || fsync (out) < 0 || close (out) < 0)
                return errprintf (errp, "cannot write '%s': %s", dst,
                                  strerror (errno));
        }
        pathf (state, sizeof (state), "%s/state/%d.json", tmpdir, k);
        if (!(st = load_json (state, errp)))
            return -1;
        cJSON_DeleteItemFromObject (st, "rollout_path");
        if (json_add_str (st, "rollout_path", dst) < 0 ||
            save_json (state, st, errp) < 0) {
            cJSON_Delete (st);
            return -1;
        }
        cJSON_Delete (st);
    }
    return 0;
}

struct import_arg {
    const char *id;
    const char *from;
    const char *file;
};

static int import_cb (cJSON *swarm, void *arg, cs_error_t *errp)
{
    struct import_arg *a = arg;
    const char *state = swarm_str (swarm, "state");
    cJSON *imp;

    cJSON_DeleteItemFromObject (swarm, "id");
    cJSON_DeleteItemFromObject (swarm, "supervisor_pid");
    cJSON_DeleteItemFromObject (swarm, "job_id");
    cJSON_DeleteItemFromObject (swarm, "imported");
    if (json_add_str (swarm, "id", a->id) < 0 ||
        !cJSON_AddNullToObject (swarm, "job_id") ||
        !(imp = cJSON_AddObjectToObject (swarm, "imported")) ||
        json_add_str (imp, "from", a->from) < 0 ||
        json_add_str (imp, "file", a->file) < 0 ||
        json_add_double (imp, "at", time_now ()) < 0 ||
        json_add_str (imp, "state", state ? state : "unknown") < 0)
        return errprintf (errp, "out of memory");
    /* nothing of it runs here */
    if (!swarm_state_final (state)) {
        cJSON_DeleteItemFromObject (swarm, "state");
        cJSON_DeleteItemFromObject (swarm, "end_reason");
        if (json_add_str (swarm, "state", "ended") < 0 ||
            json_add_str (swarm, "end_reason", "imported") < 0)
            return errprintf (errp, "out of memory");
    }
    return 0;
}

static bool id_valid (const char *id)
{
    size_t n = strlen (id);

    return n > 0 && n <= 64 && id[0] != '.' &&
           strspn (id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789._-") == n;
}

/* rename(2) that fails when to exists (an empty directory included) */
static int rename_noreplace (const char *from, const char *to)
{
#ifdef SYS_renameat2
    if (syscall (SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 1u) == 0)
        return 0;
    if (errno != ENOSYS && errno != EINVAL)
        return -1;
#endif
    if (access (to, F_OK) == 0) {
        errno = EEXIST;
        return -1;
    }
    return rename (from, to);
}

static void import_usage (FILE *f)
{
    fprintf (f,
             "usage: codeswarm import FILE [--as ID] [--config FILE]\n"
             "\n"
             "Restore a swarm written by 'codeswarm export' under its own id "
             "or ID, which\n"
             "must not exist.  Each node's codex rollout goes into the codex "
             "home of the\n"
             "configuration (codex.home, else $CODEX_HOME, else ~/.codex); "
             "'codeswarm\n"
             "launch --resume ID' then continues every node's thread.  An "
             "archive with\n"
             "links, devices or paths outside its directory is refused, and "
             "nothing is\n"
             "left behind.\n");
}

int cmd_import (int argc, char **argv)
{
    static const struct option opts[] = {
        {"as", required_argument, NULL, 'a'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char home[LAUNCH_PATH_MAX], swarms[PATH_MAX], tmpdir[PATH_MAX];
    char root[USTAR_NAME_MAX + 2], target[PATH_MAX], path[PATH_MAX];
    const char *as = NULL, *config = NULL, *file, *id;
    struct cs_config cfg;
    bool have_cfg = false, moved = false;
    cJSON *manifest = NULL, *made = NULL;
    cs_error_t e;
    int c, afd = -1, rc = 1, nodes;

    while ((c = getopt_long (argc, argv, "a:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            as = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'h':
            import_usage (stdout);
            return 0;
        default:
            import_usage (stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        import_usage (stderr);
        return 2;
    }
    file = argv[optind];
    if (as && !id_valid (as)) {
        log_msg ("--as '%s' is not a valid swarm id (use 1-64 of "
                 "A-Z a-z 0-9 . _ - not starting with '.')",
                 as);
        return 2;
    }
    if (config_load (&cfg, config, &e) < 0) {
        log_msg ("%s", e.text);
        return 2;
    }
    have_cfg = true;
    made = cJSON_CreateArray ();
    if (!made || launch_home (home, sizeof (home), true) < 0)
        goto out;
    pathf (swarms, sizeof (swarms), "%s/swarms", home);
    if (mb_secure_dir (swarms, true, &e) < 0) {
        log_msg ("%s", e.text);
        goto out;
    }
    if ((afd = open (file, O_RDONLY | O_CLOEXEC)) < 0) {
        log_err ("cannot open '%s'", file);
        goto out;
    }
    {
        unsigned char magic[2];
        if (pread (afd, magic, 2, 0) != 2 || magic[0] != 0x1f ||
            magic[1] != 0x8b) {
            log_msg ("cannot import '%s': not a gzip file (not a swarm "
                     "export)",
                     file);
            goto out;
        }
    }
    if (pathf (tmpdir, sizeof (tmpdir), "%s/.import-XXXXXX", swarms) < 0 ||
        !mkdtemp (tmpdir)) {
        log_err ("cannot create a directory in '%s'", swarms);
        goto out;
    }
    if (extract (afd, tmpdir, root, sizeof (root), &e) < 0) {
        log_msg ("cannot import '%s': %s", file, e.text);
        goto undo;
    }
    pathf (path, sizeof (path), "%s/export.json", tmpdir);
    if (!(manifest = load_json (path, &e))) {
        log_msg ("cannot import '%s': not a swarm export: %s", file, e.text);
        goto undo;
    }
    if (!swarm_str (manifest, "format") ||
        strcmp (swarm_str (manifest, "format"), EXPORT_FORMAT) ||
        swarm_int (manifest, "version", 0) != EXPORT_VERSION ||
        !swarm_str (manifest, "swarm_id") ||
        strcmp (swarm_str (manifest, "swarm_id"), root)) {
        log_msg ("cannot import '%s': export.json is not a %s version %d "
                 "manifest of '%s'",
                 file, EXPORT_FORMAT, EXPORT_VERSION, root);
        goto undo;
    }
    id = as ? as : root;
    if (!id_valid (id)) {
        log_msg ("cannot import '%s': '%s' is not a valid swarm id (use "
                 "--as)",
                 file, id);
        goto undo;
    }
    pathf (target, sizeof (target), "%s/%s", swarms, id);
    if (access (target, F_OK) == 0) {
        log_msg ("cannot import '%s': swarm '%s' exists already in '%s' "
                 "(use --as ID)",
                 file, id, swarms);
        goto undo;
    }
    {
        struct import_arg ia = {id, root, file};
        if (swarm_update (tmpdir, import_cb, &ia, &e) < 0) {
            log_msg ("cannot import '%s': %s", file, e.text);
            goto undo;
        }
    }
    if (place_rollouts (tmpdir, manifest, &cfg, made, &e) < 0) {
        log_msg ("cannot import '%s': %s", file, e.text);
        goto undo;
    }
    if (rename_noreplace (tmpdir, target) < 0) {
        if (errno == EEXIST || errno == ENOTEMPTY)
            log_msg ("cannot import '%s': swarm '%s' exists already in '%s' "
                     "(use --as ID)",
                     file, id, swarms);
        else
            log_err ("cannot rename '%s' to '%s'", tmpdir, target);
        goto undo;
    }
    moved = true;
    {
        cJSON *sw = swarm_load (target, &e);
        nodes = sw ? swarm_int (sw, "nodes", 0) : 0;
        cJSON_Delete (sw);
    }
    launch_event (target, "swarm_imported", "from", root, "file", file, NULL);
    launch_audit (target, "import", "file", file, "from", root, NULL);
    printf ("swarm %s imported from '%s' (%d node%s); 'codeswarm launch "
            "--resume %s' continues it\n",
            id, file, nodes, nodes == 1 ? "" : "s", id);
    rc = 0;
    goto out;
undo:
    if (!moved) {
        const cJSON *it;
        remove_tree (tmpdir);
        cJSON_ArrayForEach (it, made) (void) unlink (it->valuestring);
    }
out:
    if (afd >= 0)
        close (afd);
    if (have_cfg)
        config_release (&cfg);
    cJSON_Delete (manifest);
    cJSON_Delete (made);
    return rc;
}
