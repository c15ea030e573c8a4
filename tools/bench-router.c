/* bench-router.c - how fast is codeswarm-router?
 *
 *   bench-router [--records N] [--latency N] [--nodes N] [--router PATH]
 *                [--append-home DIR] [--translate-only] [--append-batch N]
 *                [-- ROUTER-ARGS...]
 *
 * 1. translate: outbox record lines -> events in memory, one core
 *    (the translator alone: parse, translate, build the event; the lines
 *    are made beforehand, outside the time taken).
 * 2. throughput: N records appended to an outbox, through a running router
 *    (event log included) to a subscribed socket client: events/s.  The
 *    records are appended --append-batch (64) at a time, one write each
 *    (as many nodes appending at once would; 1: one write per record,
 *    where the appending process itself caps the rate).
 * 3. latency: one record appended, time until the client has its event;
 *    p50/p99 over --latency samples.
 * 4. memory: --nodes outboxes followed (one record each): the router's RSS,
 *    and what each node beyond the first added to it.
 * 2 also says how much CPU the router used for it (events per router
 * CPU-second: on a shared machine a steadier figure than events/s).
 * Beside 2, the reference: an in-process follower alone draining the same
 * stream (the same bytes) from its start.
 * --translate-only stops after 1 (e.g. under valgrind --tool=callgrind).
 * Work happens in a fresh CODESWARM_HOME under $TMPDIR.  ROUTER-ARGS go to
 * the router (e.g. --ssh HOST ... --remote-home DIR, with --append-home DIR
 * so that records are appended on the far side).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/lineio.h"
#include "common/spawn.h"
#include "mailbox/mailbox.h"
#include "router/paths.h"
#include "router/translate.h"

static uint64_t nevents;

static void count_emit (const char *name, cJSON *data, void *arg)
{
    char *s = json_print (data);
    free (s);
    cJSON_Delete (data);
    nevents++;
}

/* the router's path for the hot events: their text, as is */
static void count_emit_text (const char *name, const char *data, size_t len,
                             void *arg)
{
    nevents++;
}

/* CPU seconds used by this process */
static double cpu_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void delta_line (char *buf, size_t len, uint64_t seq, const char *d)
{
    snprintf (buf, len,
              "{\"v\":1,\"seq\":%llu,\"epoch\":1,\"ts\":1.5,\"type\":\"rpc\","
              "\"msg\":{\"method\":\"item/agentMessage/delta\",\"params\":{"
              "\"threadId\":\"01a1fdf9-f78a-70b3-ab3c-4f2519fa2db1\","
              "\"turnId\":\"01a1fdf9-f799-7010-8c1f-0b5357b0f79d\","
              "\"itemId\":\"msg_resp_mock_1795262379999\",\"delta\":\"%s\"},"
              "\"emittedAtMs\":1795262380000}}",
              (unsigned long long)seq, d);
}

static void bench_translate (uint64_t n)
{
    enum { CHUNK = 4096 };
    rt_trans_t *t = rt_trans_create ("bench", count_emit, NULL);
    char *lines = malloc ((size_t)CHUNK * 512);
    size_t *lens = malloc (CHUNK * sizeof (*lens));
    double dt = 0, dc = 0;

    if (!t || !lines || !lens) {
        fprintf (stderr, "bench-router: out of memory\n");
        exit (1);
    }
    rt_trans_set_emit_text (t, count_emit_text, NULL);
    /* the lines are made a chunk at a time outside the timed part */
    for (uint64_t i = 1; i <= n; i += CHUNK) {
        size_t m = n - i + 1 < CHUNK ? (size_t)(n - i + 1) : CHUNK;
        double t0, c0;
        for (size_t j = 0; j < m; j++) {
            delta_line (lines + j * 512, 512, i + j, "word ");
            lens[j] = strlen (lines + j * 512);
        }
        t0 = time_mono ();
        c0 = cpu_now ();
        for (size_t j = 0; j < m; j++)
            rt_trans_line (t, 0, lines + j * 512, lens[j], 1.0, NULL);
        dc += cpu_now () - c0;
        dt += time_mono () - t0;
    }
    printf ("translate: %llu records -> %llu events: %.0f events/s per CPU "
            "second (%.3f s CPU, %.3f s wall on a shared machine)\n",
            (unsigned long long)n, (unsigned long long)nevents, nevents / dc,
            dc, dt);
    free (lines);
    free (lens);
    rt_trans_destroy (t);
}

static int fd = -1;
static lineio_t *in;

/* Wait for n stream events (lines with "seq"); returns 0 or -1. */
static int wait_events (uint64_t n, double timeout)
{
    double until = time_mono () + timeout;
    const char *l;
    size_t len;
    bool over;
    while (n > 0) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        while (n > 0 && lineio_next (in, &l, &len, &over) == 1)
            if (len > 60 && memmem (l, len < 200 ? len : 200,
                                     "Z\",\"seq\":", 9))
                n--;
        if (n == 0)
            break;
        if (time_mono () > until)
            return -1;
        if (poll (&p, 1, 100) > 0 && lineio_fill (in, fd) == 0)
            return -1;
    }
    return 0;
}

static void follow_count (mb_follower_t *f, mb_reader_t *r,
                          const struct mb_event *ev, void *arg)
{
    if (ev->type == MB_EV_RECORD)
        (*(uint64_t *)arg)++;
}

/* The reference for the router's rate: an in-process follower alone
 * draining the same stream (the same bytes) from its start, records/s.
 */
static double follower_alone (const char *path, uint64_t want)
{
    struct mb_options opt;
    mb_follower_t *f;
    uint64_t n = 0;
    cs_error_t error;
    double t0 = time_mono (), until = t0 + 120;

    mb_options_init (&opt);
    if (!(f = mb_follower_create (&opt, &error))
        || !mb_follower_add (f, path, MB_START_BEGIN, NULL, follow_count, &n,
                             &error)) {
        fprintf (stderr, "bench-router: %s\n", error.text);
        mb_follower_destroy (f);
        return 0;
    }
    while (n < want && time_mono () < until)
        if (mb_follower_run (f, 100, &error) < 0) {
            fprintf (stderr, "bench-router: %s\n", error.text);
            break;
        }
    mb_follower_destroy (f);
    return n / (time_mono () - t0);
}

/* CPU seconds (user + system) used by process pid so far, -1 unknown */
static double cpu_of (pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    FILE *f;
    size_t n;

    snprintf (path, sizeof (path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen (path, "r")))
        return -1;
    n = fread (buf, 1, sizeof (buf) - 1, f);
    fclose (f);
    buf[n] = '\0';
    /* after the command's ")": state and 10 more fields, then utime stime */
    if (!(p = strrchr (buf, ')'))
        || sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
                   "%llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf (_SC_CLK_TCK);
}

static int cmp_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long rss_kb (pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;
    snprintf (path, sizeof (path), "/proc/%d/status", (int)pid);
    if (!(f = fopen (path, "r")))
        return -1;
    while (fgets (line, sizeof (line), f))
        if (!strncmp (line, "VmRSS:", 6))
            kb = atol (line + 6);
    fclose (f);
    return kb;
}

int main (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "records", required_argument, NULL, 'r' },
        { "latency", required_argument, NULL, 'l' },
        { "nodes", required_argument, NULL, 'n' },
        { "router", required_argument, NULL, 'R' },
        { "append-home", required_argument, NULL, 'A' },
        { "translate-only", no_argument, NULL, 'T' },
        { "append-batch", required_argument, NULL, 'B' },
        { NULL, 0, NULL, 0 },
    };
    uint64_t records = 200000, samples = 1000;
    int nodes = 1000, c;
    bool translate_only = false;
    const char *router = "codeswarm-router", *append_home = NULL;
    char tmpl[PATH_MAX], home[PATH_MAX + 32], sock[PATH_MAX + 32];
    char sdir[PATH_MAX], path[PATH_MAX], line[1024];
    char **rargv;
    struct spawn_opts so = SPAWN_OPTS_INIT;
    struct mb_options opt;
    cs_error_t error;
    spawn_t *sp;
    mb_writer_t *w;
    double *lat, t0, dt, rcpu0, rcpu1, tapp;
    int append_batch = 64;
    long rss0, rss1;
    int nr = 0;

    while ((c = getopt_long (argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': records = strtoull (optarg, NULL, 10); break;
        case 'l': samples = strtoull (optarg, NULL, 10); break;
        case 'n': nodes = atoi (optarg); break;
        case 'R': router = optarg; break;
        case 'A': append_home = optarg; break;
        case 'T': translate_only = true; break;
        case 'B': append_batch = atoi (optarg) > 0 ? atoi (optarg) : 1; break;
        default: return 1;
        }
    }
    bench_translate (records);
    if (translate_only)
        return 0;

    snprintf (tmpl, sizeof (tmpl), "%s/bench-router.XXXXXX",
              getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp");
    if (!mkdtemp (tmpl)) {
        perror ("mkdtemp");
        return 1;
    }
    snprintf (home, sizeof (home), "%s/home", tmpl);
    snprintf (sock, sizeof (sock), "%s/router.sock", tmpl);
    setenv ("CODESWARM_HOME", home, 1);
    setenv ("CODESWARM_ROUTER_SOCKET", sock, 1);
    if (!append_home)
        append_home = home;
    mb_options_init (&opt);
    opt.fsync = MB_FSYNC_NEVER;
    if (mb_secure_dir (home, true, &error) < 0
        || mb_secure_dir (append_home, true, &error) < 0
        || mb_swarm_dir (append_home, "b", true, sdir, sizeof (sdir), &error) < 0
        || mb_stream_path (sdir, "outbox", 0, path, sizeof (path), &error) < 0
        || !(w = mb_writer_open (path, &opt, &error))) {
        fprintf (stderr, "bench-router: %s\n", error.text);
        return 1;
    }
    /* the router */
    static char opt_socket[] = "--socket";
    rargv = calloc ((size_t)argc + 4, sizeof (char *));
    rargv[nr++] = (char *)router;
    rargv[nr++] = opt_socket;
    for (int i = optind; i < argc; i++)
        rargv[nr++] = argv[i];
    if (!(sp = spawn_start (rargv, &so, &error))) {
        fprintf (stderr, "bench-router: %s\n", error.text);
        return 1;
    }
    for (int i = 0; i < 200 && (fd = router_connect (sock, NULL)) < 0; i++)
        usleep (50000);
    if (fd < 0 || !(in = lineio_create (1 << 24))) {
        fprintf (stderr, "bench-router: the router did not come up\n");
        return 1;
    }
    {
        const char *sub = "{\"protocol\":\"codeswarm.router.v1\",\"type\":"
                          "\"command\",\"command\":\"subscribe\","
                          "\"payload\":{\"since\":0}}\n";
        fd_write_all (fd, sub, strlen (sub));
    }
    /* warm up: the router must have found the stream */
    mb_writer_append_members (w, "heartbeat", "\"turn_active\":false", 19,
                              NULL, NULL);
    mb_writer_append_members (w, "walltime_warning", "", 0, NULL, NULL);
    if (wait_events (1, 30) < 0) {
        fprintf (stderr, "bench-router: no event from the router\n");
        return 1;
    }

    /* throughput */
    rcpu0 = cpu_of (spawn_pid (sp));
    t0 = time_mono ();
    {
        /* the records, appended append_batch at a time (one write each) */
        struct mb_members *mm = calloc ((size_t)append_batch, sizeof (*mm));
        const char *m;
        size_t mlen;
        delta_line (line, sizeof (line), 0, "word ");
        m = strstr (line, "\"msg\"");
        mlen = strlen (m) - 1;
        for (int k = 0; k < append_batch; k++) {
            mm[k].data = m;
            mm[k].len = mlen;
        }
        for (uint64_t i = 0; i < records; i += (uint64_t)append_batch) {
            size_t n = records - i < (uint64_t)append_batch
                       ? (size_t)(records - i) : (size_t)append_batch;
            if (mb_writer_append_batch (w, "rpc", mm, n, NULL, NULL, &error)
                < 0) {
                fprintf (stderr, "bench-router: %s\n", error.text);
                return 1;
            }
        }
        free (mm);
        tapp = time_mono () - t0;
    }
    if (wait_events (records, 120) < 0) {
        fprintf (stderr, "bench-router: events missing\n");
        return 1;
    }
    dt = time_mono () - t0;
    rcpu1 = cpu_of (spawn_pid (sp));
    printf ("router: %llu records appended -> events at the client in %.3f s: "
            "%.0f events/s\n", (unsigned long long)records, dt, records / dt);
    printf ("appending: %d records per write, all appended after %.3f s "
            "(%.0f records/s)\n", append_batch, tapp, records / tapp);
    if (rcpu0 >= 0 && rcpu1 > rcpu0)
        printf ("router CPU: %.2f s for %llu events: %.0f events per router "
                "CPU-second\n", rcpu1 - rcpu0, (unsigned long long)records,
                records / (rcpu1 - rcpu0));
    {
        double ref = follower_alone (path, records + 2);
        printf ("reference: the follower alone drains the same stream: "
                "%.0f records/s (router/follower %.2f)\n", ref,
                ref > 0 ? records / dt / ref : 0);
    }

    /* latency */
    lat = calloc (samples, sizeof (double));
    for (uint64_t i = 0; i < samples; i++) {
        const char *m;
        delta_line (line, sizeof (line), 0, "x");
        m = strstr (line, "\"msg\"");
        t0 = time_mono ();
        mb_writer_append_members (w, "rpc", m, strlen (m) - 1, NULL, NULL);
        if (wait_events (1, 10) < 0) {
            fprintf (stderr, "bench-router: event %llu missing\n",
                     (unsigned long long)i);
            return 1;
        }
        lat[i] = time_mono () - t0;
        usleep (1000);
    }
    qsort (lat, samples, sizeof (double), cmp_double);
    printf ("latency append->client: p50 %.3f ms, p99 %.3f ms (%llu samples)\n",
            lat[samples / 2] * 1e3, lat[samples * 99 / 100] * 1e3,
            (unsigned long long)samples);

    /* memory with many nodes */
    rss0 = rss_kb (spawn_pid (sp));
    for (int k = 1; k < nodes; k++) {
        mb_writer_t *wk;
        if (mb_stream_path (sdir, "outbox", k, path, sizeof (path), &error) < 0
            || !(wk = mb_writer_open (path, &opt, &error))) {
            fprintf (stderr, "bench-router: %s\n", error.text);
            return 1;
        }
        mb_writer_append_members (wk, "walltime_warning", "", 0, NULL, NULL);
        mb_writer_close (wk);
    }
    if (nodes > 1 && wait_events ((uint64_t)nodes - 1, 60) < 0)
        fprintf (stderr, "bench-router: not every node was seen\n");
    rss1 = rss_kb (spawn_pid (sp));
    printf ("memory: %d nodes followed: router RSS %ld kB\n", nodes, rss1);
    if (nodes > 1 && rss0 > 0 && rss1 > 0)
        printf ("memory per node: %.0f B (RSS %ld kB with one node)\n",
                (rss1 - rss0) * 1024.0 / (nodes - 1), rss0);

    {
        struct spawn_status st;
        spawn_stop (sp, 5, &st);
    }
    spawn_destroy (sp);
    mb_writer_close (w);
    lineio_destroy (in);
    close (fd);
    free (lat);
    free (rargv);
    {
        char cmd[PATH_MAX + 16];
        snprintf (cmd, sizeof (cmd), "rm -rf '%s'", tmpl);
        if (system (cmd) != 0)
            fprintf (stderr, "bench-router: cannot remove '%s'\n", tmpl);
    }
    return 0;
}
