/* bench-mailbox - mailbox latency, throughput and idle cost
 *
 * Usage: bench-mailbox [--dir DIR] [--seconds S] [--records N]
 *                      [--streams N] [--mode inotify|poll|both]
 *                      [--settle S] [--idle S]
 *
 * For each follower mode (inotify and poll, side by side):
 *   - append->delivery latency p50/p99/p99.9 at 1k and 50k records/s: a
 *     writer thread appends at a paced rate, each record carrying its
 *     CLOCK_MONOTONIC append time; the follower (main thread) subtracts it
 *     from the time of delivery;
 *   - the most records/s one follower sustains: N records drained from a
 *     pre-written stream, and N records followed while a writer thread
 *     blasts them;
 *   - CPU used by the follower thread (getrusage RUSAGE_THREAD over wall
 *     time) while following 4096 streams, one of them written at ~10
 *     records/s (the wake-up latency of its first record, then of those
 *     appended after that one was seen, on a stream now active: p50, p99,
 *     max), and the process
 *     RSS, measured for --idle seconds (default 10) after the follower
 *     has run for --settle seconds (default 2).  The streams were written
 *     when the benchmark started; how long before the measurement is
 *     printed: poll mode looks at a stream quiet for T about every T / 7.5
 *     (between 1 s and 8 s), counting from its file's last modification.
 * Streams live in a fresh directory under DIR (default $TMPDIR or /tmp),
 * removed at the end.
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"
#include "common/log.h"
#include "mailbox/mailbox.h"

static char basedir[PATH_MAX];
static int run_id;
static double opt_seconds = 3.0;
static uint64_t opt_records = 1000000;
static int opt_streams = 4096;
static double opt_settle = 2.0;
static double opt_idle = 10.0;

static uint64_t now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double thread_cpu (void)
{
    struct rusage ru;
    getrusage (RUSAGE_THREAD, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6
           + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static long rss_kib (void)
{
    FILE *fp = fopen ("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    if (!fp)
        return -1;
    while (fgets (line, sizeof (line), fp))
        if (sscanf (line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose (fp);
    return kib;
}

static int rm_cb (const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    return remove (path);
}

/* A fresh swarm-like directory: <base>/run.N/{outbox,archive} */
static void fresh_dir (char *dir, size_t len)
{
    char sub[PATH_MAX + 32];
    cs_error_t err;

    int n = snprintf (dir, len, "%s/run.%d", basedir, ++run_id);
    if (n < 0 || (size_t)n >= len
        || snprintf (sub, sizeof (sub), "%s/outbox", dir) >= (int)sizeof (sub))
        log_msg_exit ("'%s': path too long", basedir);
    if (mb_secure_dir (dir, true, &err) < 0
        || mb_secure_dir (sub, true, &err) < 0)
        log_msg_exit ("%s", err.text);
}

static void stream_path (const char *dir, int k, char *buf, size_t len)
{
    snprintf (buf, len, "%s/outbox/%d.jsonl", dir, k);
}

static mb_writer_t *writer_open (const char *path)
{
    struct mb_options opt;
    cs_error_t err;
    mb_writer_t *w;

    mb_options_init (&opt);
    opt.rotate_bytes = 0;
    opt.rotate_records = 0;
    if (!(w = mb_writer_open (path, &opt, &err)))
        log_msg_exit ("%s", err.text);
    return w;
}

static void append_t (mb_writer_t *w, uint64_t t)
{
    char members[64];
    int n = snprintf (members, sizeof (members), "\"t\":%" PRIu64, t);
    cs_error_t err;

    if (mb_writer_append_members (w, "bench", members, n, NULL, &err) < 0)
        log_msg_exit ("append: %s", err.text);
}

static mb_follower_t *follower_create (enum mb_follow_mode mode)
{
    struct mb_options opt;
    cs_error_t err;
    mb_follower_t *f;

    mb_options_init (&opt);
    opt.follow = mode;
    if (!(f = mb_follower_create (&opt, &err)))
        log_msg_exit ("%s", err.text);
    return f;
}

static void follower_add (mb_follower_t *f, const char *path,
                          enum mb_start start, mb_follow_f cb, void *arg)
{
    cs_error_t err;

    if (!mb_follower_add (f, path, start, NULL, cb, arg, &err))
        log_msg_exit ("%s", err.text);
}

static void follower_run (mb_follower_t *f, int ms)
{
    cs_error_t err;

    if (mb_follower_run (f, ms, &err) < 0)
        log_msg_exit ("follow: %s", err.text);
}

/* ---- latency ------------------------------------------------------------ */

struct paced {
    mb_writer_t *w;
    double rate;
    uint64_t count;
    uint64_t base;          /* ns */
};

static void *paced_writer (void *arg)
{
    struct paced *p = arg;
    uint64_t start = now_ns () + 20000000;     /* 20 ms head start */

    for (uint64_t i = 0; i < p->count; i++) {
        uint64_t due = start + (uint64_t)(i * 1e9 / p->rate);
        uint64_t now = now_ns ();
        /* sleep, never spin: a spinning writer would steal the core the
         * follower needs on a small machine; at high rates the timer slack
         * turns the pacing into small bursts
         */
        if (due > now) {
            struct timespec ts = { .tv_sec = due / 1000000000ull,
                                   .tv_nsec = due % 1000000000ull };
            clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        }
        append_t (p->w, now_ns () - p->base);
    }
    return NULL;
}

struct lat {
    uint64_t base;
    double *samples;        /* µs */
    uint64_t n;
    uint64_t want;
};

static void lat_cb (mb_follower_t *f, mb_reader_t *r,
                    const struct mb_event *ev, void *arg)
{
    struct lat *l = arg;
    uint64_t now = now_ns () - l->base;
    cJSON *t;

    if (ev->type != MB_EV_RECORD || l->n >= l->want)
        return;
    if (!(t = cJSON_GetObjectItemCaseSensitive (ev->rec.json, "t"))
        || !cJSON_IsNumber (t))
        return;
    l->samples[l->n++] = (now - (uint64_t)t->valuedouble) / 1000.0;
}

static int cmp_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct (const double *s, uint64_t n, double p)
{
    uint64_t i;

    if (n == 0)
        return 0;
    i = (uint64_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return s[i < n ? i : n - 1];
}

struct lat_result {
    double p50, p99, p999, max;
    uint64_t n;
};

static struct lat_result bench_latency (enum mb_follow_mode mode, double rate)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    struct paced p;
    struct lat l = { 0 };
    struct lat_result res = { 0 };
    mb_follower_t *f;
    pthread_t th;
    uint64_t deadline;

    fresh_dir (dir, sizeof (dir));
    stream_path (dir, 0, path, sizeof (path));
    p.w = writer_open (path);
    p.rate = rate;
    p.count = (uint64_t)(rate * opt_seconds);
    p.base = l.base = now_ns ();
    l.want = p.count;
    if (!(l.samples = calloc (p.count, sizeof (double))))
        log_msg_exit ("out of memory");
    f = follower_create (mode);
    follower_add (f, path, MB_START_END, lat_cb, &l);
    if (pthread_create (&th, NULL, paced_writer, &p) != 0)
        log_msg_exit ("pthread_create failed");
    deadline = now_ns () + (uint64_t)((opt_seconds + 10) * 1e9);
    while (l.n < l.want && now_ns () < deadline)
        follower_run (f, 100);
    pthread_join (th, NULL);
    mb_follower_destroy (f);
    mb_writer_close (p.w);
    qsort (l.samples, l.n, sizeof (double), cmp_double);
    res.n = l.n;
    res.p50 = pct (l.samples, l.n, 50);
    res.p99 = pct (l.samples, l.n, 99);
    res.p999 = pct (l.samples, l.n, 99.9);
    res.max = l.n ? l.samples[l.n - 1] : 0;
    if (l.n < l.want)
        log_msg ("latency: only %" PRIu64 " of %" PRIu64 " records delivered",
                 l.n, l.want);
    free (l.samples);
    return res;
}

/* ---- throughput -------------------------------------------------------- */

struct counter {
    uint64_t n;
};

static void count_cb (mb_follower_t *f, mb_reader_t *r,
                      const struct mb_event *ev, void *arg)
{
    struct counter *c = arg;
    if (ev->type == MB_EV_RECORD)
        c->n++;
}

struct blaster {
    mb_writer_t *w;
    uint64_t count;
};

static void *blast_writer (void *arg)
{
    struct blaster *b = arg;
    for (uint64_t i = 0; i < b->count; i++)
        append_t (b->w, i);
    return NULL;
}

/* records/s delivered: pre-written (drain) or while a writer blasts (live) */
static double bench_throughput (enum mb_follow_mode mode, bool live)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    struct counter c = { 0 };
    struct blaster b;
    mb_follower_t *f;
    pthread_t th;
    uint64_t t0, t1, deadline;

    fresh_dir (dir, sizeof (dir));
    stream_path (dir, 0, path, sizeof (path));
    b.w = writer_open (path);
    b.count = opt_records;
    if (!live)
        blast_writer (&b);
    f = follower_create (mode);
    follower_add (f, path, MB_START_BEGIN, count_cb, &c);
    t0 = now_ns ();
    if (live && pthread_create (&th, NULL, blast_writer, &b) != 0)
        log_msg_exit ("pthread_create failed");
    deadline = t0 + 120000000000ull;
    while (c.n < b.count && now_ns () < deadline)
        follower_run (f, 100);
    t1 = now_ns ();
    if (live)
        pthread_join (th, NULL);
    mb_follower_destroy (f);
    mb_writer_close (b.w);
    if (c.n < b.count)
        log_msg ("throughput: only %" PRIu64 " of %" PRIu64 " delivered", c.n,
                 b.count);
    return c.n / ((t1 - t0) / 1e9);
}

/* ---- idle cost --------------------------------------------------------- */

struct idle_result {
    double cpu_pct;
    double wall;
    uint64_t delivered;
    long rss_kib;
    double quiet;           /* s since the idle streams were written */
    double wake_first;      /* ms, the first record on a quiet stream */
    double wake_p50, wake_p99, wake_max;    /* ms, then (active) */
    uint64_t wake_n;        /* records in those */
    const char *mode;
};

struct slow {
    mb_writer_t *w;
    double seconds;
    volatile bool stop;
    uint64_t written;
    uint64_t base;          /* ns */
};

/* Appends ~10 records/s, each with its append time (like paced_writer). */
static void *slow_writer (void *arg)
{
    struct slow *s = arg;
    uint64_t start = now_ns ();

    while (!s->stop) {
        uint64_t due = start + s->written * 100000000ull;     /* 10/s */
        struct timespec ts = { .tv_sec = due / 1000000000ull,
                               .tv_nsec = due % 1000000000ull };
        clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        if (s->stop)
            break;
        append_t (s->w, now_ns () - s->base);
        s->written++;
    }
    return NULL;
}

static uint64_t streams_written;    /* ns: when make_streams() wrote them */

/* The active stream's wake-ups: the first record (the stream was quiet
 * until then), and the records appended after that was delivered (those
 * appended before it wait with it, and are not counted as wake-ups).
 */
struct wake {
    struct lat l;           /* samples after the first */
    bool first;
    double first_ms;
    uint64_t first_at;      /* ns since l.base: the first was delivered */
    uint64_t records;
};

static void wake_cb (mb_follower_t *f, mb_reader_t *r,
                     const struct mb_event *ev, void *arg)
{
    struct wake *w = arg;
    uint64_t now = now_ns () - w->l.base, t0;
    cJSON *t;

    if (ev->type != MB_EV_RECORD)
        return;
    w->records++;
    if (!(t = cJSON_GetObjectItemCaseSensitive (ev->rec.json, "t"))
        || !cJSON_IsNumber (t))
        return;
    t0 = (uint64_t)t->valuedouble;
    if (!w->first) {
        w->first = true;
        w->first_ms = (now - t0) / 1e6;
        w->first_at = now;
        return;
    }
    if (t0 >= w->first_at && w->l.n < w->l.want)
        w->l.samples[w->l.n++] = (now - t0) / 1e6;
}

static struct idle_result bench_idle (enum mb_follow_mode mode,
                                      const char *dir)
{
    char path[PATH_MAX + 64];
    struct idle_result res = { 0 };
    struct wake w = { 0 };
    struct lat *l = &w.l;
    struct slow s = { 0 };
    mb_follower_t *f;
    pthread_t th;
    double cpu0, cpu1;
    uint64_t t0, t1, end;

    l->want = (uint64_t)(opt_idle * 10) + 16;
    if (!(l->samples = calloc (l->want, sizeof (double))))
        log_msg_exit ("out of memory");
    l->base = s.base = now_ns ();
    f = follower_create (mode);
    for (int k = 0; k < opt_streams; k++) {
        stream_path (dir, k, path, sizeof (path));
        follower_add (f, path, MB_START_END, wake_cb, &w);
    }
    res.mode = mb_follower_mode (f);
    /* settle: let the poll intervals of idle streams back off */
    end = now_ns () + (uint64_t)(opt_settle * 1e9);
    while (now_ns () < end)
        follower_run (f, 100);
    stream_path (dir, 0, path, sizeof (path));
    s.w = writer_open (path);
    s.seconds = opt_seconds;
    if (pthread_create (&th, NULL, slow_writer, &s) != 0)
        log_msg_exit ("pthread_create failed");
    t0 = now_ns ();
    res.quiet = (t0 - streams_written) / 1e9;
    cpu0 = thread_cpu ();
    end = t0 + (uint64_t)(opt_idle * 1e9);
    while (now_ns () < end)
        follower_run (f, 100);
    cpu1 = thread_cpu ();
    t1 = now_ns ();
    s.stop = true;
    pthread_join (th, NULL);
    mb_writer_close (s.w);
    res.wall = (t1 - t0) / 1e9;
    res.cpu_pct = 100.0 * (cpu1 - cpu0) / res.wall;
    res.delivered = w.records;
    res.wake_first = w.first_ms;
    qsort (l->samples, l->n, sizeof (double), cmp_double);
    res.wake_n = l->n;
    res.wake_p50 = pct (l->samples, l->n, 50);
    res.wake_p99 = pct (l->samples, l->n, 99);
    res.wake_max = l->n ? l->samples[l->n - 1] : 0;
    free (l->samples);
    res.rss_kib = rss_kib ();
    mb_follower_destroy (f);
    return res;
}

/* 4096 streams with one record each, shared by both modes */
static void make_streams (char *dir, size_t len)
{
    char path[PATH_MAX + 64];

    fresh_dir (dir, len);
    for (int k = 0; k < opt_streams; k++) {
        mb_writer_t *w;
        stream_path (dir, k, path, sizeof (path));
        w = writer_open (path);
        append_t (w, 0);
        mb_writer_close (w);
    }
    streams_written = now_ns ();
}

/* ---- main ---------------------------------------------------------------- */

static void usage (void)
{
    fprintf (stderr,
             "Usage: bench-mailbox [--dir DIR] [--seconds S] [--records N]\n"
             "                     [--streams N] [--mode inotify|poll|both]\n"
             "                     [--settle S] [--idle S]\n");
    exit (2);
}

int main (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "seconds", required_argument, NULL, 's' },
        { "records", required_argument, NULL, 'n' },
        { "streams", required_argument, NULL, 'k' },
        { "mode", required_argument, NULL, 'm' },
        { "settle", required_argument, NULL, 'S' },
        { "idle", required_argument, NULL, 'I' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *tmp = getenv ("TMPDIR");
    char parent[PATH_MAX], fstype[64] = "?", sdir[PATH_MAX];
    enum mb_follow_mode modes[2] = { MB_FOLLOW_INOTIFY, MB_FOLLOW_POLL };
    const char *names[2] = { "inotify", "poll" };
    int nmodes = 2, first = 0;
    struct lat_result l1k[2], l50k[2];
    double drain[2], live[2];
    struct idle_result idle[2];
    struct mb_options dopt;
    bool fs_poll;
    cs_error_t err;
    int c;

    log_init ("bench-mailbox");
    snprintf (parent, sizeof (parent), "%s", tmp && *tmp ? tmp : "/tmp");
    while ((c = getopt_long (argc, argv, "d:s:n:k:m:S:I:h", longopts, NULL))
           != -1) {
        switch (c) {
        case 'd':
            snprintf (parent, sizeof (parent), "%s", optarg);
            break;
        case 's':
            opt_seconds = strtod (optarg, NULL);
            if (opt_seconds <= 0)
                usage ();
            break;
        case 'n':
            opt_records = strtoull (optarg, NULL, 10);
            if (opt_records == 0)
                usage ();
            break;
        case 'k':
            opt_streams = atoi (optarg);
            if (opt_streams <= 0)
                usage ();
            break;
        case 'S':
            opt_settle = strtod (optarg, NULL);
            if (opt_settle < 0)
                usage ();
            break;
        case 'I':
            opt_idle = strtod (optarg, NULL);
            if (opt_idle <= 0)
                usage ();
            break;
        case 'm':
            if (!strcmp (optarg, "inotify"))
                nmodes = 1;
            else if (!strcmp (optarg, "poll"))
                first = 1;
            else if (strcmp (optarg, "both") != 0)
                usage ();
            break;
        default:
            usage ();
        }
    }
    if (snprintf (basedir, sizeof (basedir), "%s/bench-mailbox.XXXXXX",
                  parent) >= (int)sizeof (basedir))
        log_msg_exit ("'%s': path too long", parent);
    if (!mkdtemp (basedir))
        log_err_exit ("cannot create a directory under '%s'", parent);
    if (mb_fs_type (basedir, fstype, sizeof (fstype), &fs_poll, &err) < 0)
        log_msg ("%s", err.text);
    mb_options_init (&dopt);

    printf ("bench-mailbox: %s (%s), %.1f s per latency run, %" PRIu64
            " records for throughput, %d streams idle after %.0f s for %.0f s;"
            " poll %.0f ms..%.0f ms\n",
            basedir, fstype, opt_seconds, opt_records, opt_streams, opt_settle,
            opt_idle,
            dopt.poll_min * 1e3, dopt.poll_max * 1e3);
    fflush (stdout);

    make_streams (sdir, sizeof (sdir));
    for (int m = first; m < nmodes; m++) {
        l1k[m] = bench_latency (modes[m], 1000);
        l50k[m] = bench_latency (modes[m], 50000);
        drain[m] = bench_throughput (modes[m], false);
        live[m] = bench_throughput (modes[m], true);
        idle[m] = bench_idle (modes[m], sdir);
    }

    printf ("\n%-44s", "");
    for (int m = first; m < nmodes; m++)
        printf (" %14s", names[m]);
    printf ("\n");
#define ROW(label, fmt, expr)                                         \
    do {                                                              \
        printf ("%-44s", label);                                      \
        for (int m = first; m < nmodes; m++)                          \
            printf (" " fmt, expr);                                   \
        printf ("\n");                                                \
    } while (0)
    ROW ("latency 1k rec/s    p50 (us)", "%14.1f", l1k[m].p50);
    ROW ("latency 1k rec/s    p99 (us)", "%14.1f", l1k[m].p99);
    ROW ("latency 1k rec/s  p99.9 (us)", "%14.1f", l1k[m].p999);
    ROW ("latency 1k rec/s    max (us)", "%14.1f", l1k[m].max);
    ROW ("latency 50k rec/s   p50 (us)", "%14.1f", l50k[m].p50);
    ROW ("latency 50k rec/s   p99 (us)", "%14.1f", l50k[m].p99);
    ROW ("latency 50k rec/s p99.9 (us)", "%14.1f", l50k[m].p999);
    ROW ("latency 50k rec/s   max (us)", "%14.1f", l50k[m].max);
    ROW ("throughput, drain pre-written (rec/s)", "%14.0f", drain[m]);
    ROW ("throughput, live writer (rec/s)", "%14.0f", live[m]);
    printf ("%-44s", "");
    printf ("\n");
    ROW ("idle: streams followed", "%14d", opt_streams);
    ROW ("idle: records delivered (~10/s)", "%14" PRIu64, idle[m].delivered);
    ROW ("idle: streams quiet for (s, at the start)", "%14.1f", idle[m].quiet);
    ROW ("idle: follower CPU (% of one core)", "%14.3f", idle[m].cpu_pct);
    ROW ("idle: first record on a quiet stream (ms)", "%14.1f",
         idle[m].wake_first);
    ROW ("idle: wake-ups of the active stream", "%14" PRIu64,
         idle[m].wake_n);
    ROW ("idle: wake-up, active stream p50 (ms)", "%14.1f",
         idle[m].wake_p50);
    ROW ("idle: wake-up, active stream p99 (ms)", "%14.1f",
         idle[m].wake_p99);
    ROW ("idle: wake-up, active stream max (ms)", "%14.1f",
         idle[m].wake_max);
    ROW ("idle: process RSS (MiB)", "%14.1f", idle[m].rss_kib / 1024.0);
    printf ("\ntargets: p50 <= 200 us and p99 <= 2000 us (inotify, 1k/s); "
            ">= 300000 rec/s; < 1 %% CPU idle with 4096 streams\n");
    if (first == 0) {
        printf ("inotify 1k/s p50 %s, p99 %s; throughput %s; idle CPU %s\n",
                l1k[0].p50 <= 200 ? "MET" : "MISSED",
                l1k[0].p99 <= 2000 ? "MET" : "MISSED",
                drain[0] >= 300000 ? "MET" : "MISSED",
                idle[0].cpu_pct < 1.0 ? "MET" : "MISSED");
    }
    if (nmodes == 2)
        printf ("poll idle CPU %s\n", idle[1].cpu_pct < 1.0 ? "MET" : "MISSED");
    nftw (basedir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
