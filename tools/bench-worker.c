/* bench-worker - measure codeswarm-worker with a scripted app-server
 *
 * bench-worker [--worker PATH] [--fake PATH] [--deltas N] [--interval US]
 *              [--keep]
 *
 * Runs codeswarm-worker in a scratch CODESWARM_HOME with
 * tests/fake-app-server (mode "bench") as its codex, injects one user
 * record, and follows the outbox while the fake streams N
 * item/agentMessage/delta lines (default 10000), each stamped with the wall
 * clock time it was written ("fakeTs"), as fast as it can or one every
 * --interval microseconds.  Prints:
 *   - the worker's RSS (VmRSS and VmHWM) after the stream,
 *   - the worker's CPU time (user+system: the scheduler's run time in
 *     nanoseconds where /proc/PID/schedstat has it) spent on the stream,
 *     per 10k deltas, and its read and write calls (/proc/PID/io),
 *   - the latency from the app-server's write to the outbox record: to the
 *     record's "ts" (the worker's append) and to this follower's receipt,
 *     p50/p99/max.
 * Paths default to the build tree next to this program.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/spawn.h"
#include "mailbox/mailbox.h"

struct bench {
    size_t deltas;
    size_t seen;
    double *lat_rx;             /* receipt - fakeTs */
    double *lat_ts;             /* record ts - fakeTs */
    bool ready;
    bool completed;
    bool stopped;
};

static void on_event (mb_follower_t *f, mb_reader_t *r,
                      const struct mb_event *ev, void *arg)
{
    struct bench *b = arg;
    double now = time_now ();

    (void)f;
    (void)r;
    if (ev->type != MB_EV_RECORD)
        return;
    if (!strcmp (ev->rec.type, "ready"))
        b->ready = true;
    else if (!strcmp (ev->rec.type, "worker_stopped"))
        b->stopped = true;
    else if (!strcmp (ev->rec.type, "rpc")) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive (ev->rec.json,
                                                             "msg");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive (msg, "method");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive (msg, "fakeTs");
        if (!cJSON_IsString (m))
            return;
        if (!strcmp (m->valuestring, "item/agentMessage/delta")
            && cJSON_IsNumber (t) && b->seen < b->deltas) {
            b->lat_rx[b->seen] = now - t->valuedouble;
            b->lat_ts[b->seen] = ev->rec.ts - t->valuedouble;
            b->seen++;
        }
        else if (!strcmp (m->valuestring, "turn/completed"))
            b->completed = true;
    }
}

static int cmp_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct (double *v, size_t n, double p)
{
    size_t i = (size_t)(p * (n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* CPU time of pid in seconds: the scheduler's run time (nanoseconds,
 * /proc/PID/schedstat) where the kernel keeps it, else utime+stime (clock
 * ticks, 10 ms: too coarse for a stream of 10k deltas)
 */
static double proc_cpu (pid_t pid)
{
    char path[64], buf[1024];
    FILE *f;
    unsigned long ut = 0, st = 0;
    unsigned long long ns;

    snprintf (path, sizeof (path), "/proc/%d/schedstat", (int)pid);
    if ((f = fopen (path, "r"))) {
        int k = fscanf (f, "%llu", &ns);
        fclose (f);
        if (k == 1)
            return (double)ns * 1e-9;
    }
    snprintf (path, sizeof (path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen (path, "r")))
        return -1;
    if (!fgets (buf, sizeof (buf), f)) {
        fclose (f);
        return -1;
    }
    fclose (f);
    char *p = strrchr (buf, ')');
    if (!p || sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                      "%lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / sysconf (_SC_CLK_TCK);
}

static long proc_status_kb (pid_t pid, const char *key)
{
    char path[64], line[256];
    FILE *f;
    long v = -1;

    snprintf (path, sizeof (path), "/proc/%d/status", (int)pid);
    if (!(f = fopen (path, "r")))
        return -1;
    while (fgets (line, sizeof (line), f))
        if (!strncmp (line, key, strlen (key)))
            v = strtol (line + strlen (key) + 1, NULL, 10);
    fclose (f);
    return v;
}

/* the read(2)/write(2)-family calls pid made so far (/proc/PID/io), or -1 */
static long long proc_io (pid_t pid, const char *key)
{
    char path[64], line[256];
    FILE *f;
    long long v = -1;

    snprintf (path, sizeof (path), "/proc/%d/io", (int)pid);
    if (!(f = fopen (path, "r")))
        return -1;
    while (fgets (line, sizeof (line), f))
        if (!strncmp (line, key, strlen (key)) && line[strlen (key)] == ':')
            v = strtoll (line + strlen (key) + 1, NULL, 10);
    fclose (f);
    return v;
}

static int wait_until (mb_follower_t *f, bool *flag, double secs)
{
    cs_error_t err;
    double deadline = time_mono () + secs;

    while (!*flag) {
        if (time_mono () > deadline)
            return -1;
        if (mb_follower_run (f, 50, &err) < 0)
            log_msg_exit ("follow: %s", err.text);
    }
    return 0;
}

int main (int argc, char *argv[])
{
    static const struct option longopts[] = {
        { "worker", required_argument, NULL, 'w' },
        { "fake", required_argument, NULL, 'f' },
        { "deltas", required_argument, NULL, 'n' },
        { "keep", no_argument, NULL, 'k' },
        { "interval", required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 },
    };
    char self[PATH_MAX], worker[PATH_MAX + 64], fake[PATH_MAX + 64];
    char home[] = "/tmp/bench-worker.XXXXXX";
    char path[PATH_MAX], swarmdir[PATH_MAX], nbuf[32];
    struct bench b = { .deltas = 10000 };
    struct mb_options opt;
    cs_error_t err;
    bool keep = false;
    int c;

    log_init ("bench-worker");
    ssize_t n = readlink ("/proc/self/exe", self, sizeof (self) - 1);
    if (n < 0)
        log_err_exit ("readlink /proc/self/exe");
    self[n] = '\0';
    char *dir = dirname (self);
    snprintf (worker, sizeof (worker), "%s/../worker/codeswarm-worker", dir);
    snprintf (fake, sizeof (fake), "%s/../tests/fake-app-server", dir);
    const char *interval = NULL;
    while ((c = getopt_long (argc, argv, "w:f:n:i:k", longopts, NULL)) != -1) {
        switch (c) {
        case 'w': snprintf (worker, sizeof (worker), "%s", optarg); break;
        case 'f': snprintf (fake, sizeof (fake), "%s", optarg); break;
        case 'n': b.deltas = strtoul (optarg, NULL, 10); break;
        case 'k': keep = true; break;
        case 'i': interval = optarg; break;
        default:
            fprintf (stderr, "Usage: bench-worker [--worker PATH] [--fake PATH] "
                     "[--deltas N] [--interval US] [--keep]\n");
            return 2;
        }
    }
    if (access (worker, X_OK) < 0 || access (fake, X_OK) < 0)
        log_msg_exit ("need '%s' and '%s' (make check builds the fake)",
                      worker, fake);
    if (b.deltas == 0 || !(b.lat_rx = calloc (b.deltas, sizeof (double)))
        || !(b.lat_ts = calloc (b.deltas, sizeof (double))))
        log_msg_exit ("bad --deltas or out of memory");
    if (!mkdtemp (home))
        log_err_exit ("mkdtemp");
    snprintf (nbuf, sizeof (nbuf), "%zu", b.deltas);
    setenv ("CODESWARM_HOME", home, 1);
    setenv ("CODESWARM_CODEX", fake, 1);
    setenv ("FAKE_APP_SERVER_MODE", "bench", 1);
    setenv ("FAKE_DELTAS", nbuf, 1);
    if (interval)
        setenv ("FAKE_DELTA_INTERVAL", interval, 1);
    else
        unsetenv ("FAKE_DELTA_INTERVAL");
    unsetenv ("CODESWARM_CONFIG");
    unsetenv ("SLURM_NODEID");
    unsetenv ("SLURM_PROCID");
    unsetenv ("PMIX_RANK");

    if (mb_swarm_dir (home, "bench", true, swarmdir, sizeof (swarmdir),
                      &err) < 0)
        log_msg_exit ("%s", err.text);
    mb_options_init (&opt);
    mb_follower_t *f = mb_follower_create (&opt, &err);
    if (!f || mb_stream_path (swarmdir, "outbox", 0, path, sizeof (path),
                              &err) < 0
        || !mb_follower_add (f, path, MB_START_BEGIN, NULL, on_event, &b,
                             &err))
        log_msg_exit ("%s", err.text);

    char *wargv[] = { worker, (char *)"--swarm", (char *)"bench",
                      (char *)"--node", (char *)"0", NULL };
    struct spawn_opts so = SPAWN_OPTS_INIT;
    spawn_t *ws = spawn_start (wargv, &so, &err);
    if (!ws)
        log_msg_exit ("%s", err.text);
    pid_t pid = spawn_pid (ws);
    if (wait_until (f, &b.ready, 20) < 0)
        log_msg_exit ("the worker did not become ready");
    long rss_idle = proc_status_kb (pid, "VmRSS:");

    /* inject one turn as the router would */
    if (mb_stream_path (swarmdir, "inbox", 0, path, sizeof (path), &err) < 0)
        log_msg_exit ("%s", err.text);
    mb_writer_t *in = mb_writer_open (path, &opt, &err);
    cJSON *p = cJSON_CreateObject ();
    if (!in || !p || json_add_str (p, "id", "bench-1") < 0
        || json_add_str (p, "content", "stream") < 0
        || mb_writer_append (in, "user", p, NULL, &err) < 0)
        log_msg_exit ("inject: %s", err.text);
    cJSON_Delete (p);
    mb_writer_close (in);

    double cpu0 = proc_cpu (pid);
    long long rd0 = proc_io (pid, "syscr"), wr0 = proc_io (pid, "syscw");
    double t0 = time_mono ();
    if (wait_until (f, &b.completed, 600) < 0)
        log_msg_exit ("the turn did not complete (%zu deltas seen)", b.seen);
    double wall = time_mono () - t0;
    double cpu1 = proc_cpu (pid);
    long long rd1 = proc_io (pid, "syscr"), wr1 = proc_io (pid, "syscw");
    long rss = proc_status_kb (pid, "VmRSS:");
    long hwm = proc_status_kb (pid, "VmHWM:");

    kill (pid, SIGTERM);
    (void)wait_until (f, &b.stopped, 20);
    struct spawn_status st;
    (void)spawn_wait (ws, &st);
    spawn_destroy (ws);
    mb_follower_destroy (f);

    qsort (b.lat_rx, b.seen, sizeof (double), cmp_double);
    qsort (b.lat_ts, b.seen, sizeof (double), cmp_double);
    printf ("deltas streamed:          %zu (seen %zu) in %.3f s\n", b.deltas,
            b.seen, wall);
    printf ("worker RSS:               %ld kB idle, %ld kB after, %ld kB peak\n",
            rss_idle, rss, hwm);
    printf ("worker CPU:               %.2f ms total, %.2f ms per 10k deltas\n",
            (cpu1 - cpu0) * 1e3, (cpu1 - cpu0) * 1e3 * 10000.0 / b.deltas);
    if (rd0 >= 0 && rd1 >= 0 && wr0 >= 0 && wr1 >= 0)
        printf ("worker syscalls:          %lld reads, %lld writes per 10k "
                "deltas\n", (rd1 - rd0) * 10000 / (long long)b.deltas,
                (wr1 - wr0) * 10000 / (long long)b.deltas);
    if (b.seen > 0) {
        printf ("latency to record ts:     p50 %.3f ms  p99 %.3f ms  max %.3f ms\n",
                pct (b.lat_ts, b.seen, 0.5) * 1e3,
                pct (b.lat_ts, b.seen, 0.99) * 1e3, b.lat_ts[b.seen - 1] * 1e3);
        printf ("latency to follower:      p50 %.3f ms  p99 %.3f ms  max %.3f ms\n",
                pct (b.lat_rx, b.seen, 0.5) * 1e3,
                pct (b.lat_rx, b.seen, 0.99) * 1e3, b.lat_rx[b.seen - 1] * 1e3);
    }
    free (b.lat_rx);
    free (b.lat_ts);
    if (keep)
        printf ("scratch home kept: %s\n", home);
    else {
        char cmd[PATH_MAX + 16];
        snprintf (cmd, sizeof (cmd), "rm -rf '%s'", home);
        if (system (cmd) != 0)
            log_msg ("cannot remove '%s'", home);
    }
    return b.seen == b.deltas ? 0 : 1;
}
