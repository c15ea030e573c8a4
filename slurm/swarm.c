/* swarm.c - swarm.json and the swarm-level event stream */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/json.h"
#include "mailbox/mailbox.h"
#include "slurm/swarm.h"

static int read_all (int fd, char **out, size_t *lenp)
{
    size_t len = 0, size = 4096;
    char *buf = malloc (size);

    if (!buf)
        return -1;
    for (;;) {
        ssize_t n;
        if (len + 1 >= size) {
            char *nb = realloc (buf, size * 2);
            if (!nb) {
                free (buf);
                return -1;
            }
            buf = nb;
            size *= 2;
        }
        n = read (fd, buf + len, size - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free (buf);
            errno = e;
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    *lenp = len;
    return 0;
}

static cJSON *load_path (const char *path, bool missing_ok, cs_error_t *errp)
{
    char *text = NULL;
    size_t len;
    cJSON *o;
    cs_error_t e;
    int fd;

    if ((fd = mb_secure_open (path, O_RDONLY, &e)) < 0) {
        if (errno == ENOENT && missing_ok)
            return cJSON_CreateObject ();
        errprintf (errp, "%s", e.text);
        return NULL;
    }
    if (read_all (fd, &text, &len) < 0) {
        errprintf (errp, "cannot read '%s': %s", path, strerror (errno));
        close (fd);
        return NULL;
    }
    close (fd);
    if (!(o = json_parse (text, len, &e))) {
        errprintf (errp, "'%s': %s", path, e.text);
        free (text);
        errno = EINVAL;
        return NULL;
    }
    free (text);
    if (!cJSON_IsObject (o)) {
        cJSON_Delete (o);
        errno = EINVAL;
        errprintf (errp, "'%s': not a JSON object", path);
        return NULL;
    }
    return o;
}

cJSON *swarm_load (const char *swarmdir, cs_error_t *errp)
{
    char path[4096];

    if (snprintf (path, sizeof (path), "%s/swarm.json", swarmdir) >=
        (int)sizeof (path)) {
        errno = ENAMETOOLONG;
        errprintf (errp, "swarm directory path too long");
        return NULL;
    }
    return load_path (path, false, errp);
}

int swarm_update (const char *swarmdir, swarm_update_f cb, void *arg,
                  cs_error_t *errp)
{
    char path[4096], lockpath[4200];
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    cJSON *o = NULL;
    char *text = NULL;
    cs_error_t e;
    int fd, rc;

    if (snprintf (path, sizeof (path), "%s/swarm.json", swarmdir) >=
        (int)sizeof (path)) {
        errno = ENAMETOOLONG;
        return errprintf (errp, "swarm directory path too long");
    }
    snprintf (lockpath, sizeof (lockpath), "%s.lock", path);
    if ((fd = mb_secure_open (lockpath, O_RDWR | O_CREAT, &e)) < 0)
        return errprintf (errp, "%s", e.text);
    while (fcntl (fd, F_OFD_SETLKW, &fl) < 0) {
        if (errno != EINTR) {
            errprintf (errp, "cannot lock '%s': %s", lockpath,
                       strerror (errno));
            goto error;
        }
    }
    if (!(o = load_path (path, true, errp)))
        goto error;
    if ((rc = cb (o, arg, errp)) < 0)
        goto error;
    if (rc == 0) {
        cJSON_DeleteItemFromObject (o, "updated");
        if (json_add_double (o, "updated", time_now ()) < 0 ||
            !(text = cJSON_Print (o))) {
            errno = ENOMEM;
            errprintf (errp, "out of memory");
            goto error;
        }
        size_t n = strlen (text);
        char *t2 = realloc (text, n + 2);
        if (!t2) {
            errno = ENOMEM;
            errprintf (errp, "out of memory");
            goto error;
        }
        text = t2;
        strcpy (text + n, "\n");
        if (atomic_file_write (path, text, strlen (text), 0, errp) < 0)
            goto error;
    }
    free (text);
    cJSON_Delete (o);
    close (fd); /* drops the OFD lock */
    return 0;
error : {
    int saved = errno;
    free (text);
    cJSON_Delete (o);
    close (fd);
    errno = saved;
    return -1;
}
}

int swarm_event (const char *swarmdir, const char *type, const cJSON *payload,
                 cs_error_t *errp)
{
    char path[4096];
    struct mb_options opt;
    mb_writer_t *w = NULL;
    cs_error_t e;
    int tries = 0;

    mb_options_init (&opt);
    opt.fsync = MB_FSYNC_ALWAYS;
    if (snprintf (path, sizeof (path), "%s/outbox/%s.jsonl", swarmdir,
                  SWARM_EVENTS) >= (int)sizeof (path)) {
        errno = ENAMETOOLONG;
        return errprintf (errp, "swarm directory path too long");
    }
    while (!(w = mb_writer_open (path, &opt, &e))) {
        if (errno != EBUSY || ++tries > 200)
            return errprintf (errp, "%s", e.text);
        usleep (50000);
    }
    if (mb_writer_append (w, type, payload, NULL, &e) < 0) {
        int saved = errno;
        mb_writer_close (w);
        errno = saved;
        return errprintf (errp, "%s", e.text);
    }
    mb_writer_close (w);
    return 0;
}

const char *swarm_str (const cJSON *swarm, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (swarm, key);
    return cJSON_IsString (v) ? v->valuestring : NULL;
}

int swarm_int (const cJSON *swarm, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (swarm, key);
    return cJSON_IsNumber (v) ? (int)v->valuedouble : dflt;
}

double swarm_num (const cJSON *swarm, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (swarm, key);
    return cJSON_IsNumber (v) ? v->valuedouble : dflt;
}

cJSON *swarm_jobs (cJSON *swarm)
{
    cJSON *jobs = cJSON_GetObjectItemCaseSensitive (swarm, "jobs");

    if (cJSON_IsArray (jobs))
        return jobs;
    cJSON_DeleteItemFromObject (swarm, "jobs");
    return cJSON_AddArrayToObject (swarm, "jobs");
}

struct add_job_arg {
    const char *jobid;
    const char *key;
    const char *val;
};

static int add_job_cb (cJSON *swarm, void *arg, cs_error_t *errp)
{
    struct add_job_arg *a = arg;
    cJSON *jobs = swarm_jobs (swarm);
    cJSON *s = NULL;

    if (!jobs || !(s = cJSON_CreateString (a->jobid)) ||
        !cJSON_AddItemToArray (jobs, s)) {
        cJSON_Delete (s);
        return errprintf (errp, "out of memory");
    }
    cJSON_DeleteItemFromObject (swarm, a->key);
    if (json_add_str (swarm, a->key, a->val) < 0)
        return errprintf (errp, "out of memory");
    return 0;
}

int swarm_add_job (const char *swarmdir, const char *jobid, const char *key,
                   const char *val, cs_error_t *errp)
{
    struct add_job_arg a = {jobid, key, val};

    return swarm_update (swarmdir, add_job_cb, &a, errp);
}

bool swarm_state_final (const char *state)
{
    return state && (!strcmp (state, "ended") || !strcmp (state, "cancelled") ||
                     !strcmp (state, "failed"));
}

bool swarm_half_made (const char *swarmdir)
{
    char path[4200];
    struct stat st;

    if (snprintf (path, sizeof (path), "%s/swarm.json.lock", swarmdir)
            >= (int)sizeof (path)
        || lstat (path, &st) < 0)
        return false;
    snprintf (path, sizeof (path), "%s/swarm.json", swarmdir);
    return lstat (path, &st) < 0 && errno == ENOENT;
}

/* pid's command line, its arguments NUL-separated, in buf (up to len - 1
 * bytes, NUL-terminated): its length, or -1 when it cannot be read (no
 * such process)
 */
static ssize_t proc_cmdline (pid_t pid, char *buf, size_t len)
{
    char path[64];
    size_t n;
    FILE *f;

    snprintf (path, sizeof (path), "/proc/%d/cmdline", (int)pid);
    if (!(f = fopen (path, "r")))
        return -1;
    n = fread (buf, 1, len - 1, f);
    fclose (f);
    buf[n] = '\0';
    return (ssize_t)n;
}

bool swarm_proc_is_worker (pid_t pid, const char *id)
{
    char buf[4096];
    bool worker = false, mine = false;
    const char *prev = "";
    ssize_t n = proc_cmdline (pid, buf, sizeof (buf));

    for (ssize_t i = 0; i < n; i += (ssize_t)strlen (buf + i) + 1) {
        const char *a = buf + i, *base = strrchr (a, '/');
        base = base ? base + 1 : a;
        if (i == 0 && !strcmp (base, "codeswarm-worker"))
            worker = true;
        if (!strcmp (prev, "--swarm") && !strcmp (a, id))
            mine = true;
        prev = a;
    }
    return worker && mine;
}

bool swarm_proc_is_supervisor (pid_t pid, const char *id)
{
    char buf[4096];
    bool sup = false, mine = false;
    ssize_t n = proc_cmdline (pid, buf, sizeof (buf));

    for (ssize_t i = 0; i < n; i += (ssize_t)strlen (buf + i) + 1) {
        if (!strcmp (buf + i, "supervise"))
            sup = true;
        else if (!strcmp (buf + i, id))
            mine = true;
    }
    return sup && mine;
}

/* pid is the local supervisor of the swarm in swarmdir: it is alive and
 * runs "supervise <id>" (a pid reused by another process is not)
 */
static bool supervisor_alive (pid_t pid, const char *swarmdir)
{
    const char *id = strrchr (swarmdir, '/');

    id = id ? id + 1 : swarmdir;
    if (pid <= 0 || (kill (pid, 0) < 0 && errno != EPERM))
        return false;
    if (access ("/proc/self/cmdline", R_OK) < 0)
        return true;            /* alive; no /proc to tell more */
    return swarm_proc_is_supervisor (pid, id);
}

bool swarm_unserved (const char *swarmdir, char *why, size_t len)
{
    char path[4200];
    cs_error_t e;
    cJSON *sw;
    const char *backend;
    pid_t pid;
    bool unserved = false;
    DIR *d;
    struct dirent *de;

    if (!(sw = swarm_load (swarmdir, &e)))
        return false;
    backend = swarm_str (sw, "backend");
    pid = (pid_t)swarm_int (sw, "supervisor_pid", 0);
    if (!backend || strcmp (backend, "local")
        || swarm_state_final (swarm_str (sw, "state"))
        || supervisor_alive (pid, swarmdir))
        goto done;
    snprintf (path, sizeof (path), "%s/outbox", swarmdir);
    if (!(d = opendir (path)))
        goto done;
    unserved = true;
    while (unserved && (de = readdir (d))) {
        size_t l = strlen (de->d_name);
        char *end;
        long k = strtol (de->d_name, &end, 10);
        if (end == de->d_name || k < 0 || l < 6 || strcmp (end, ".jsonl"))
            continue;
        snprintf (path, sizeof (path), "%s/outbox/%s", swarmdir, de->d_name);
        if (mb_stream_writer (path, NULL) != 0)
            unserved = false;   /* a worker writes it (or cannot tell) */
    }
    closedir (d);
    if (unserved)
        snprintf (why, len, "its local supervisor (pid %d) is gone and no "
                  "worker writes its outboxes", (int)pid);
done:
    cJSON_Delete (sw);
    return unserved;
}
