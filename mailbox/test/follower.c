/* test/follower.c - mb_follower_*: many streams in one loop, inotify and
 * poll modes, streams that appear later, queue overflow, back-off and its
 * idle ceiling, errors confined to their stream, removal from a callback,
 * a callback that stops the follower.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "mailbox/mailbox.h"
#include "mailbox/private.h"
#include "mailbox/test/streamtest.h"

static char root[MB_PATH_MAX];

struct sink {
    uint64_t next; /* seq expected next */
    int records;
    int other;   /* any non-record event */
    int stopped; /* "stream stopped" events */
    bool bad_order;
    char last_reason[256];
};

static void sink_cb (mb_follower_t *f, mb_reader_t *r,
                     const struct mb_event *ev, void *arg)
{
    struct sink *s = arg;
    (void)f;
    (void)r;

    if (ev->type == MB_EV_RECORD) {
        if (ev->rec.seq != s->next)
            s->bad_order = true;
        s->next = ev->rec.seq + 1;
        s->records++;
        return;
    }
    s->other++;
    if (ev->type == MB_EV_CORRUPT && ev->reason) {
        snprintf (s->last_reason, sizeof (s->last_reason), "%s", ev->reason);
        if (strstr (ev->reason, "stream stopped"))
            s->stopped++;
    }
}

static double now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Run f until every sink has want records (or timeout seconds). */
static bool run_until (mb_follower_t *f, struct sink *sinks, int n, int want,
                       double timeout)
{
    double end = now_s () + timeout;
    cs_error_t e;

    for (;;) {
        int i;
        for (i = 0; i < n; i++)
            if (sinks[i].records < want)
                break;
        if (i == n)
            return true;
        if (now_s () > end)
            return false;
        if (mb_follower_run (f, 100, &e) < 0) {
            diag ("mb_follower_run: %s", e.text);
            return false;
        }
    }
}

static bool sinks_clean (struct sink *sinks, int n, int want)
{
    for (int i = 0; i < n; i++) {
        if (sinks[i].records != want || sinks[i].other || sinks[i].bad_order) {
            diag ("stream %d: %d records, %d other events, order %s", i,
                  sinks[i].records, sinks[i].other,
                  sinks[i].bad_order ? "bad" : "ok");
            return false;
        }
    }
    return true;
}

/* One follower, nstreams streams in one directory: half exist before they
 * are added, half appear later; 1..nrec records each, written round-robin
 * without processing in between (enough events to overflow the inotify
 * queue with 1000 streams).
 */
static void test_many (enum mb_follow_mode mode, const char *dirname,
                       int nstreams, int nrec)
{
    struct mb_options opt;
    mb_follower_t *f;
    struct tstream *ts;
    struct sink *sinks;
    cs_error_t e;
    char box[MB_PATH_MAX];
    const char *mname = mode == MB_FOLLOW_POLL ? "poll" : "inotify";
    int added = 0;

    ts_path (box, sizeof (box), root, dirname);
    if (mkdir (box, 0700) < 0)
        bail_out ("mkdir: %s", strerror (errno));
    mb_options_init (&opt);
    opt.follow = mode;
    opt.poll_min = 0.001;
    opt.poll_max = 0.05;
    if (!(f = mb_follower_create (&opt, &e)))
        bail_out ("mb_follower_create: %s", e.text);
    ts = calloc ((size_t)nstreams, sizeof (*ts));
    sinks = calloc ((size_t)nstreams, sizeof (*sinks));
    if (!ts || !sinks)
        bail_out ("out of memory");
    for (int i = 0; i < nstreams; i++) {
        char name[32];
        snprintf (name, sizeof (name), "%d", i);
        sinks[i].next = 1;
        if (i % 2 == 0) {
            ts_open (&ts[i], root, dirname, name);
            ts_record (&ts[i]);
        } else {
            ts[i].fd = -1;
            int n = snprintf (ts[i].path, sizeof (ts[i].path), "%s/%s/%d.jsonl",
                              root, dirname, i);
            if (n < 0 || (size_t)n >= sizeof (ts[i].path))
                bail_out ("path too long");
        }
        if (mb_follower_add (f, ts[i].path, MB_START_BEGIN, NULL, sink_cb,
                             &sinks[i], &e))
            added++;
        else
            diag ("add %s: %s", ts[i].path, e.text);
    }
    cmp_ok (added, "==", nstreams, "%s: %d streams added", mname, nstreams);
    is (mb_follower_mode (f), mname, "mode is %s", mname);
    ok ((mb_follower_fd (f) >= 0) == (mode != MB_FOLLOW_POLL),
        "%s: follower fd %d", mname, mb_follower_fd (f));
    if (mb_follower_process (f, &e) < 0)
        diag ("process: %s", e.text);

    /* the missing half appears; everyone writes, round-robin */
    for (int i = 1; i < nstreams; i += 2) {
        char name[32];
        snprintf (name, sizeof (name), "%d", i);
        ts_open (&ts[i], root, dirname, name);
    }
    for (int k = 0; k < nrec; k++)
        for (int i = 0; i < nstreams; i++)
            if (ts[i].seq < (uint64_t)nrec)
                ts_record (&ts[i]);
    double t0 = now_s ();
    ok (run_until (f, sinks, nstreams, nrec, 30),
        "%s: every stream got its %d records (%.2f s)", mname, nrec,
        now_s () - t0);
    /* nothing more arrives */
    for (int i = 0; i < 3; i++)
        mb_follower_run (f, 10, &e);
    ok (sinks_clean (sinks, nstreams, nrec),
        "%s: exactly once, in order, no other events", mname);

    for (int i = 0; i < nstreams; i++)
        ts_close (&ts[i]);
    mb_follower_destroy (f);
    free (ts);
    free (sinks);
}

static void test_backoff (void)
{
    struct mb_options opt;
    mb_follower_t *f;
    struct tstream t;
    struct sink sink = {.next = 1};
    cs_error_t e;
    int tmo;

    mb_options_init (&opt);
    opt.follow = MB_FOLLOW_POLL;
    opt.poll_min = 0.002;
    opt.poll_max = 0.128;
    f = mb_follower_create (&opt, &e);
    ts_open (&t, root, "outbox", "idle");
    ok (mb_follower_add (f, t.path, MB_START_BEGIN, NULL, sink_cb, &sink, &e) !=
            NULL,
        "poll: add a stream");
    cmp_ok (mb_follower_timeout (f), "==", 0, "a new stream is due at once");
    double t0 = now_s ();
    while (now_s () - t0 < 0.6)
        mb_follower_run (f, 200, &e);
    tmo = mb_follower_timeout (f);
    ok (tmo > 20 && tmo <= 128, "idle stream backed off (timeout %d ms)", tmo);
    ts_record (&t);
    t0 = now_s ();
    while (sink.records < 1 && now_s () - t0 < 2)
        mb_follower_run (f, 500, &e);
    double dt = now_s () - t0;
    ok (sink.records == 1 && dt < 0.5, "record found after %.0f ms", dt * 1e3);
    mb_follower_run (f, 0, &e);
    tmo = mb_follower_timeout (f);
    ok (tmo >= 0 && tmo <= 10, "busy again: poll soon (timeout %d ms)", tmo);
    mb_follower_destroy (f);
    ts_close (&t);
}

/* The back-off ceiling: poll_max at first, then growing with the quiet
 * time (poll_idle_max * quiet / poll_idle_after), never above
 * poll_idle_max; a record brings it back to poll_min.  The follower's
 * quiet time is never more than the time since the test appended (or
 * created the file) plus a little, so the timeout must stay within the
 * ceiling of that.  Returns true once the timeout is past 2 * poll_max.
 */
static double ceiling_ms (double quiet)
{
    double c = 256.0 * quiet / 0.3;
    return c < 16 ? 16 : c > 256 ? 256 : c;
}

static bool idle_phase (mb_follower_t *f, double since, int *seen)
{
    cs_error_t e;
    double end = now_s () + 30;

    *seen = 0;
    while (now_s () < end) {
        double now = now_s ();
        int tmo = mb_follower_timeout (f);
        if (tmo > *seen)
            *seen = tmo;
        if (tmo > ceiling_ms (now - since + 0.05) + 1) {
            diag ("timeout %d ms %.0f ms after the last record", tmo,
                  (now - since) * 1e3);
            return false;
        }
        if (tmo > 32)
            return true; /* beyond poll_max: the idle ceiling */
        mb_follower_run (f, 500, &e);
    }
    return false;
}

/* Run f until its longest timeout has been seen near poll_idle_max (or
 * 30 s); that timeout.
 */
static int idle_top (mb_follower_t *f)
{
    cs_error_t e;
    double end = now_s () + 30;
    int seen = 0;

    while (now_s () < end && seen <= 128) {
        int tmo = mb_follower_timeout (f);
        if (tmo > seen)
            seen = tmo;
        mb_follower_run (f, 500, &e);
    }
    return seen;
}

static void test_idle_ceiling (void)
{
    struct mb_options opt;
    mb_follower_t *f;
    struct tstream t, old;
    struct sink sink = {.next = 1}, osink = {.next = 1};
    struct timespec times[2];
    cs_error_t e;
    double since;
    int seen, tmo;
    bool done;

    mb_options_init (&opt);
    opt.follow = MB_FOLLOW_POLL;
    opt.poll_min = 0.002;
    opt.poll_max = 0.016;
    opt.poll_idle_after = 0.3;
    opt.poll_idle_max = 0.256;
    f = mb_follower_create (&opt, &e);
    ts_open (&t, root, "outbox", "quiet");
    since = now_s ();
    ok (mb_follower_add (f, t.path, MB_START_BEGIN, NULL, sink_cb, &sink, &e) !=
            NULL,
        "idle ceiling: add a stream");
    done = idle_phase (f, since, &seen);
    ok (done, "quiet stream: poll_max at first, then a ceiling growing with "
              "the quiet time (timeout %d ms)", seen);
    seen = idle_top (f);
    ok (seen > 128 && seen <= 256,
        "... up to poll_idle_max (longest timeout %d ms)", seen);
    since = now_s ();
    ts_record (&t);
    while (sink.records < 1 && now_s () - since < 30)
        mb_follower_run (f, 500, &e);
    ok (sink.records == 1, "a record on the quiet stream is delivered");
    mb_follower_run (f, 0, &e);
    tmo = mb_follower_timeout (f);
    ok (tmo >= 0 && tmo <= 17, "after a record: fast cadence (timeout %d ms)",
        tmo);
    done = idle_phase (f, since, &seen);
    ok (done, "quiet again: the ceiling grows with the quiet time again "
              "(longest timeout %d ms)", seen);
    mb_follower_destroy (f);
    ts_close (&t);

    /* a stream last written long ago is quiet from then, not from when
     * the follower started
     */
    opt.poll_idle_after = 60;
    opt.poll_idle_max = 0.256;
    f = mb_follower_create (&opt, &e);
    ts_open (&old, root, "outbox", "old");
    ts_record (&old);
    clock_gettime (CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= 120;
    times[1] = times[0];
    ok (futimens (old.fd, times) == 0, "a stream last written 2 min ago");
    since = now_s ();
    osink.next = 2;
    ok (mb_follower_add (f, old.path, MB_START_END, NULL, sink_cb, &osink,
                         &e) != NULL,
        "follow it from its end");
    seen = idle_top (f);
    ok (osink.records == 0 && seen > 128 && seen <= 256
            && now_s () - since < 5,
        "it is polled at poll_idle_max at once (longest timeout %d ms, "
        "%.1f s after the start)",
        seen, now_s () - since);
    since = now_s ();
    ts_record (&old);
    while (osink.records < 1 && now_s () - since < 30)
        mb_follower_run (f, 500, &e);
    ok (osink.records == 1, "a new record on it is delivered (%.0f ms)",
        (now_s () - since) * 1e3);
    mb_follower_run (f, 0, &e);
    tmo = mb_follower_timeout (f);
    ok (tmo >= 0 && tmo <= 17, "then: fast cadence (timeout %d ms)", tmo);
    mb_follower_destroy (f);
    ts_close (&old);
}

static void test_modes (void)
{
    struct mb_options opt;
    mb_follower_t *f;
    cs_error_t e;
    struct sink sink = {.next = 1};
    char path[MB_PATH_MAX];
    char fsname[64];
    bool fspoll = false;

    ts_path (path, sizeof (path), root, "outbox/m.jsonl");
    mb_options_init (&opt);
    ok (mb_fs_type (path, fsname, sizeof (fsname), &fspoll, &e) == 0,
        "test directory is on %s", fsname);
    unsetenv ("CODESWARM_FOLLOW");
    f = mb_follower_create (&opt, &e);
    mb_follower_add (f, path, MB_START_END, NULL, sink_cb, &sink, &e);
    is (mb_follower_mode (f), fspoll ? "poll" : "inotify",
        "AUTO follows the filesystem");
    mb_follower_destroy (f);

    setenv ("CODESWARM_FOLLOW", "poll", 1);
    f = mb_follower_create (&opt, &e);
    mb_follower_add (f, path, MB_START_END, NULL, sink_cb, &sink, &e);
    is (mb_follower_mode (f), "poll", "CODESWARM_FOLLOW=poll");
    cmp_ok (mb_follower_fd (f), "==", -1, "no inotify fd in poll mode");
    mb_follower_destroy (f);

    opt.follow = MB_FOLLOW_INOTIFY;
    f = mb_follower_create (&opt, &e);
    mb_follower_add (f, path, MB_START_END, NULL, sink_cb, &sink, &e);
    is (mb_follower_mode (f), "inotify", "explicit mode beats the env");
    /* a stream whose directory does not exist cannot be watched */
    char nodir[MB_PATH_MAX];
    ts_path (nodir, sizeof (nodir), root, "nosuchbox/0.jsonl");
    ok (mb_follower_add (f, nodir, MB_START_BEGIN, NULL, sink_cb, &sink, &e) !=
            NULL,
        "a stream in a missing directory can be added");
    is (mb_follower_mode (f), "mixed", "... and is polled: mixed");
    mb_follower_destroy (f);

    opt.follow = MB_FOLLOW_AUTO;
    setenv ("CODESWARM_FOLLOW", "bogus", 1);
    f = mb_follower_create (&opt, &e);
    ok (f == NULL && strstr (e.text, "CODESWARM_FOLLOW"),
        "a bad CODESWARM_FOLLOW is refused: %s", f ? "" : e.text);
    mb_follower_destroy (f);
    unsetenv ("CODESWARM_FOLLOW");
}

/* poll mode checks paths only after the directory changed: a rotation
 * long after the last change must still be noticed
 */
static void test_poll_rotation (void)
{
    struct mb_options opt;
    mb_follower_t *f;
    struct tstream a, b;
    struct sink sa = {.next = 1}, sb = {.next = 1};
    cs_error_t e;
    char dir[MB_PATH_MAX];

    ts_path (dir, sizeof (dir), root, "pr");
    mkdir (dir, 0700);
    mb_options_init (&opt);
    opt.follow = MB_FOLLOW_POLL;
    opt.poll_min = 0.001;
    opt.poll_max = 0.05;
    f = mb_follower_create (&opt, &e);
    ts_open (&a, root, "pr", "a");
    ts_open (&b, root, "pr", "b");
    ts_record (&a);
    ts_record (&b);
    mb_follower_add (f, a.path, MB_START_BEGIN, NULL, sink_cb, &sa, &e);
    mb_follower_add (f, b.path, MB_START_BEGIN, NULL, sink_cb, &sb, &e);
    for (int round = 1; round <= 2; round++) {
        double t0 = now_s ();
        while (now_s () - t0 < 2.5)
            mb_follower_run (f, 100, &e);
        /* nothing appended since the reader's last look: only the path
         * shows the rotation
         */
        ts_record (&b);
        ts_rotate (&a, round == 2, NULL, 0);
        ts_record (&a);
        ok (run_until (f, &sa, 1, 1 + round, 5),
            "round %d: rotation after %.1f s of quiet is followed", round, 2.5);
        ok (run_until (f, &sb, 1, 1 + round, 5),
            "round %d: an unrotated stream in the same directory too", round);
    }
    ok (sinks_clean (&sa, 1, 3) && sinks_clean (&sb, 1, 3),
        "exactly once, in order");
    mb_follower_destroy (f);
    ts_close (&a);
    ts_close (&b);
}

/* The watched directory goes away (IN_IGNORED): its streams are polled
 * from then on and pick up where they were when it comes back.
 */
static void test_dir_gone (void)
{
    struct mb_options opt;
    mb_follower_t *f;
    struct tstream t;
    struct sink sk = {.next = 1};
    cs_error_t e;
    char dir[MB_PATH_MAX];

    ts_path (dir, sizeof (dir), root, "gone");
    mkdir (dir, 0700);
    mb_options_init (&opt);
    opt.follow = MB_FOLLOW_INOTIFY;
    opt.poll_min = 0.001;
    opt.poll_max = 0.02;
    f = mb_follower_create (&opt, &e);
    ts_open (&t, root, "gone", "0");
    ts_record (&t);
    mb_follower_add (f, t.path, MB_START_BEGIN, NULL, sink_cb, &sk, &e);
    ok (run_until (f, &sk, 1, 1, 5), "inotify: first record");
    is (mb_follower_mode (f), "inotify", "watched");
    ts_close (&t);
    unlink (t.path);
    rmdir (dir);
    for (int i = 0; i < 10; i++)
        mb_follower_run (f, 10, &e);
    is (mb_follower_mode (f), "poll", "directory removed: polled now");
    mkdir (dir, 0700);
    t.fd = open (t.path, O_WRONLY | O_APPEND | O_CREAT, 0600);
    ts_record (&t);
    ts_record (&t);
    bool done = run_until (f, &sk, 1, 3, 5);
    ok (done && sinks_clean (&sk, 1, 3),
        "records in the recreated directory are delivered");
    mb_follower_destroy (f);
    ts_close (&t);
}

struct remover {
    mb_reader_t *victim;
    int calls;
    struct sink sink;
};

static void remove_cb (mb_follower_t *f, mb_reader_t *r,
                       const struct mb_event *ev, void *arg)
{
    struct remover *rm = arg;
    rm->calls++;
    sink_cb (f, r, ev, &rm->sink);
    if (rm->victim) {
        mb_follower_remove (f, rm->victim);
        rm->victim = NULL;
    }
}

/* A stream removed by another stream's callback while it still has more
 * to deliver (it is queued for the next round): no use after free, and
 * no event after its removal.
 */
static void test_remove_busy (void)
{
    struct mb_options opt;
    mb_follower_t *f;
    struct tstream tb, ta;
    struct sink sb = {.next = 1};
    struct remover rm = {.sink = {.next = 1}};
    cs_error_t e;
    int n = 5000;
    char *big, *p;
    size_t len = 0;

    mb_options_init (&opt);
    opt.follow = MB_FOLLOW_INOTIFY;
    f = mb_follower_create (&opt, &e);
    ts_open (&tb, root, "outbox", "busy");
    ts_open (&ta, root, "outbox", "remover");
    if (!(big = malloc ((size_t)n * 256)))
        bail_out ("out of memory");
    p = big;
    for (int i = 1; i <= n; i++) {
        size_t k = ts_format (p, 256, (uint64_t)i, 1, 10);
        p += k;
        len += k;
    }
    ts_write (tb.fd, big, len);
    free (big);
    ts_record (&ta);
    rm.victim =
        mb_follower_add (f, tb.path, MB_START_BEGIN, NULL, sink_cb, &sb, &e);
    ok (rm.victim && mb_follower_add (f, ta.path, MB_START_BEGIN, NULL,
                                      remove_cb, &rm, &e),
        "a busy stream and one that removes it");
    for (int i = 0; i < 5; i++)
        mb_follower_run (f, 10, &e);
    ok (sb.records > 0 && sb.records < n && !sb.bad_order,
        "the busy stream delivered %d records before its removal", sb.records);
    cmp_ok (rm.calls, "==", 1, "the remover ran once");
    mb_follower_destroy (f);
    ts_close (&ta);
    ts_close (&tb);
}

/* A callback that stops the follower at every stop_every-th record. */
struct stopper {
    struct sink sink;
    int stop_every;
};

static void stop_cb (mb_follower_t *f, mb_reader_t *r,
                     const struct mb_event *ev, void *arg)
{
    struct stopper *st = arg;
    sink_cb (f, r, ev, &st->sink);
    if (ev->type == MB_EV_RECORD && st->sink.records % st->stop_every == 0)
        mb_follower_stop (f);
}

/* mb_follower_stop(): process() returns after the event whose callback
 * asked, the other streams included; the next call reads on, in order,
 * losing and repeating nothing.
 */
static void test_stop (enum mb_follow_mode mode)
{
    const char *name = mode == MB_FOLLOW_POLL ? "poll" : "inotify";
    struct mb_options opt;
    mb_follower_t *f;
    struct tstream ta, tb;
    struct stopper sa = {.sink = {.next = 1}, .stop_every = 7};
    struct sink sb = {.next = 1};
    cs_error_t e;
    int n = 50, calls = 0, rc, first = -1;
    char dir[64], path[MB_PATH_MAX + 64];

    mb_options_init (&opt);
    opt.follow = mode;
    opt.poll_min = 0.001;
    snprintf (dir, sizeof (dir), "stop-%s", name);
    snprintf (path, sizeof (path), "%s/%s", root, dir);
    mkdir (path, 0700);
    f = mb_follower_create (&opt, &e);
    ts_open (&ta, root, dir, "a");
    ts_open (&tb, root, dir, "b");
    for (int i = 0; i < n; i++) {
        ts_record (&ta);
        ts_record (&tb);
    }
    ok (f && mb_follower_add (f, ta.path, MB_START_BEGIN, NULL, stop_cb, &sa,
                              &e)
          && mb_follower_add (f, tb.path, MB_START_BEGIN, NULL, sink_cb,
                              &sb, &e),
        "%s: a stream whose callback stops the follower, and another", name);
    while ((sa.sink.records < n || sb.records < n) && calls < 1000) {
        rc = mb_follower_run (f, 100, &e);
        if (rc < 0)
            break;
        if (rc > 0 && first < 0)
            first = sa.sink.records;
        calls++;
    }
    cmp_ok (first, "==", 7, "%s: the first call stopped after record 7",
            name);
    ok (sa.sink.records == n && sb.records == n && !sa.sink.bad_order
            && !sb.bad_order && !sa.sink.other && !sb.other,
        "%s: then every record of both streams once, in order (%d, %d)",
        name, sa.sink.records, sb.records);
    mb_follower_destroy (f);
    ts_close (&ta);
    ts_close (&tb);
}

static void test_errors (enum mb_follow_mode mode)
{
    struct mb_options opt;
    mb_follower_t *f;
    struct tstream good, target;
    struct sink sg = {.next = 1}, sb = {.next = 1};
    cs_error_t e;
    char link[MB_PATH_MAX], bad[MB_PATH_MAX];
    const char *mname = mode == MB_FOLLOW_POLL ? "poll" : "inotify";
    char dir[MB_PATH_MAX];

    ts_path (dir, sizeof (dir), root, mode == MB_FOLLOW_POLL ? "ep" : "ei");
    mkdir (dir, 0700);
    mb_options_init (&opt);
    opt.follow = mode;
    opt.poll_min = 0.001;
    opt.poll_max = 0.02;
    f = mb_follower_create (&opt, &e);
    ts_open (&good, root, mode == MB_FOLLOW_POLL ? "ep" : "ei", "good");
    ts_open (&target, root, mode == MB_FOLLOW_POLL ? "ep" : "ei", "target");
    ts_record (&target);

    /* a symlinked stream is refused at once */
    ts_path (link, sizeof (link), dir, "link.jsonl");
    symlink (target.path, link);
    memset (&e, 0, sizeof (e));
    ok (mb_follower_add (f, link, MB_START_BEGIN, NULL, sink_cb, &sb, &e) ==
            NULL,
        "%s: a symlinked stream is refused", mname);
    ok (strstr (e.text, link) && strstr (e.text, "symbolic link"),
        "%s: error says which and why: %s", mname, e.text);

    /* one that turns into a symlink later stops alone */
    ts_path (bad, sizeof (bad), dir, "later.jsonl");
    ok (mb_follower_add (f, good.path, MB_START_BEGIN, NULL, sink_cb, &sg,
                         &e) &&
            mb_follower_add (f, bad, MB_START_BEGIN, NULL, sink_cb, &sb, &e),
        "%s: add a good stream and a missing one", mname);
    mb_follower_process (f, &e);
    symlink (target.path, bad);
    ts_record (&good);
    ok (run_until (f, &sg, 1, 1, 10), "%s: good stream delivers", mname);
    for (int i = 0; i < 50 && !sb.stopped; i++)
        mb_follower_run (f, 20, &e);
    ok (sb.stopped == 1 && sb.records == 0,
        "%s: the symlinked stream is reported: %s", mname, sb.last_reason);
    ts_record (&good);
    ts_record (&good);
    ok (run_until (f, &sg, 1, 3, 10) && sg.records == 3 && !sg.other,
        "%s: the good stream goes on", mname);
    cmp_ok (sb.stopped, "==", 1, "%s: the bad one is reported once", mname);

    /* removal from inside a callback, of another stream and of itself */
    struct remover rm = {.sink = {.next = 1}};
    mb_reader_t *rg = NULL;
    rm.victim = NULL;
    mb_reader_t *rt = mb_follower_add (f, target.path, MB_START_BEGIN, NULL,
                                       remove_cb, &rm, &e);
    (void)rg;
    rm.victim = rt;
    ok (rt != NULL, "%s: add a stream that removes itself", mname);
    for (int i = 0; i < 20 && rm.calls == 0; i++)
        mb_follower_run (f, 20, &e);
    ts_record (&target);
    ts_record (&good);
    for (int i = 0; i < 10; i++)
        mb_follower_run (f, 10, &e);
    cmp_ok (rm.calls, "==", 1, "%s: no events after removing itself", mname);
    cmp_ok (sg.records, "==", 4, "%s: the others go on", mname);
    mb_follower_destroy (f);
    ts_close (&good);
    ts_close (&target);
}

int main (void)
{
    struct rlimit rl;
    int n = 1000;

    plan (NO_PLAN);
    /* 1000 streams hold 1000 descriptors */
    if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2100) {
        rl.rlim_cur = rl.rlim_max < 2100 ? rl.rlim_max : 2100;
        setrlimit (RLIMIT_NOFILE, &rl);
        getrlimit (RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < 2100)
            n = (int)rl.rlim_cur / 2 - 20;
    }
    if (getenv ("CODESWARM_VALGRIND") && n > 200)
        n = 200;
    ts_root (root, sizeof (root));
    unsetenv ("CODESWARM_FOLLOW");
    test_modes ();
    test_many (MB_FOLLOW_INOTIFY, "many-i", n, 20);
    test_many (MB_FOLLOW_POLL, "many-p", n, 20);
    test_backoff ();
    test_idle_ceiling ();
    test_poll_rotation ();
    test_dir_gone ();
    test_remove_busy ();
    test_stop (MB_FOLLOW_INOTIFY);
    test_stop (MB_FOLLOW_POLL);
    test_errors (MB_FOLLOW_INOTIFY);
    test_errors (MB_FOLLOW_POLL);
    ts_rmrf (root);
    done_testing ();
}

/* vi: ts=4 sw=4 expandtab
 */
