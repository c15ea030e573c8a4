/* test/rotation.c - segments sealed under live followers and under
 * readers that were away: a writer in a child process (mb_writer_*)
 * appends and rotates every 100 records; followers in inotify and poll
 * mode must see every record exactly once and in order, and readers
 * restarted from cursors taken along the way must continue exactly.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mailbox/mailbox.h"
#include "mailbox/private.h"
#include "mailbox/test/streamtest.h"

#define NREC 3000
#define ROTATE 100
#define NCURSORS 16

static char root[MB_PATH_MAX];

struct sink {
    uint64_t next;
    int records;
    int other;
    int epochs;
    bool bad_order;
    char what[128];
    int ncursors;
    struct mb_cursor cursors[NCURSORS];
};

static void sink_cb (mb_follower_t *f, mb_reader_t *r,
                     const struct mb_event *ev, void *arg)
{
    struct sink *s = arg;
    (void)f;

    if (ev->type == MB_EV_EPOCH) {
        s->epochs++;
        return;
    }
    if (ev->type != MB_EV_RECORD) {
        if (s->other++ < 5)
            diag ("%s: unexpected event %d seq %ju at %s:%ju %s", s->what,
                  ev->type, (uintmax_t)ev->rec.seq, ev->file,
                  (uintmax_t)ev->offset, ev->reason ? ev->reason : "");
        return;
    }
    if (ev->rec.seq != s->next) {
        if (!s->bad_order)
            diag ("%s: got seq %ju, expected %ju", s->what,
                  (uintmax_t)ev->rec.seq, (uintmax_t)s->next);
        s->bad_order = true;
    }
    s->next = ev->rec.seq + 1;
    s->records++;
    /* keep cursors from all over the stream for the restart test */
    if (s->ncursors < NCURSORS && ev->rec.seq % 187 == 0)
        mb_reader_cursor (r, &s->cursors[s->ncursors++]);
}

static double now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void child_writer (const char *path, int nrec)
{
    struct mb_options opt;
    mb_writer_t *w;
    cs_error_t e;
    struct timespec pause = {0, 200 * 1000};

    mb_options_init (&opt);
    opt.rotate_records = ROTATE;
    if (!(w = mb_writer_open (path, &opt, &e))) {
        fprintf (stderr, "child: %s\n", e.text);
        _exit (1);
    }
    cJSON *p = cJSON_CreateObject ();
    cJSON_AddStringToObject (p, "text", "some payload of a modest length");
    for (int i = 0; i < nrec; i++) {
        if (mb_writer_append (w, "rpc", p, NULL, &e) < 0) {
            fprintf (stderr, "child: append: %s\n", e.text);
            _exit (1);
        }
        if (i % 7 == 0)
            nanosleep (&pause, NULL);
    }
    cJSON_Delete (p);
    mb_writer_close (w);
    _exit (0);
}

static void test_live (void)
{
    struct mb_options opt;
    mb_follower_t *fi, *fp;
    struct sink si = {.next = 1}, sp = {.next = 1};
    cs_error_t e;
    char path[MB_PATH_MAX];
    pid_t pid;
    int status;

    ts_path (path, sizeof (path), root, "outbox/0.jsonl");
    snprintf (si.what, sizeof (si.what), "inotify");
    snprintf (sp.what, sizeof (sp.what), "poll");
    mb_options_init (&opt);
    opt.follow = MB_FOLLOW_INOTIFY;
    fi = mb_follower_create (&opt, &e);
    opt.follow = MB_FOLLOW_POLL;
    opt.poll_min = 0.001;
    opt.poll_max = 0.01;
    fp = mb_follower_create (&opt, &e);
    if (!fi || !fp)
        bail_out ("mb_follower_create: %s", e.text);
    /* the stream does not exist yet when the followers start */
    ok (mb_follower_add (fi, path, MB_START_BEGIN, NULL, sink_cb, &si, &e) &&
            mb_follower_add (fp, path, MB_START_BEGIN, NULL, sink_cb, &sp, &e),
        "followers added before the stream exists");
    fflush (stdout);
    if ((pid = fork ()) < 0)
        bail_out ("fork: %s", strerror (errno));
    if (pid == 0)
        child_writer (path, NREC);

    double end = now_s () + 60;
    while ((si.records < NREC || sp.records < NREC) && now_s () < end) {
        struct pollfd pfd = {.fd = mb_follower_fd (fi), .events = POLLIN};
        int t = mb_follower_timeout (fp);
        int t2 = mb_follower_timeout (fi);
        if (t < 0 || (t2 >= 0 && t2 < t))
            t = t2;
        if (t < 0 || t > 100)
            t = 100;
        poll (&pfd, 1, t);
        if (mb_follower_process (fi, &e) < 0 ||
            mb_follower_process (fp, &e) < 0)
            bail_out ("process: %s", e.text);
    }
    if (waitpid (pid, &status, 0) != pid)
        bail_out ("waitpid");
    ok (WIFEXITED (status) && WEXITSTATUS (status) == 0, "writer finished");
    for (int i = 0; i < 5; i++) {
        mb_follower_run (fi, 10, &e);
        mb_follower_run (fp, 10, &e);
    }
    ok (si.records == NREC && !si.other && !si.bad_order,
        "inotify: %d records exactly once, in order, across %d rotations",
        si.records, NREC / ROTATE);
    ok (sp.records == NREC && !sp.other && !sp.bad_order,
        "poll: %d records exactly once, in order", sp.records);

    /* the sealed segments are gzip now */
    struct mb_segment *segs;
    size_t nsegs;
    int lrc = mb_segments_list (path, &segs, &nsegs, &e);
    ok (lrc == 0 && nsegs == NREC / ROTATE, "%zu sealed segments", nsegs);
    bool allgz = true;
    for (size_t i = 0; i < nsegs; i++)
        if (!segs[i].compressed)
            allgz = false;
    ok (allgz, "all of them compressed");
    free (segs);

    /* cursors taken while following: the segments they name are sealed
     * and compressed now; each restart continues exactly
     */
    ok (si.ncursors >= 10, "%d cursors kept", si.ncursors);
    int good = 0;
    for (int i = 0; i < si.ncursors; i++) {
        struct mb_cursor *c = &si.cursors[i];
        mb_reader_t *r = mb_reader_open (path, MB_START_CURSOR, c, NULL, &e);
        struct mb_event ev;
        uint64_t want = c->seq + 1;
        bool clean = r != NULL;
        int rc;
        while (r && (rc = mb_reader_next (r, &ev, &e)) == 1) {
            if (ev.type != MB_EV_RECORD || ev.rec.seq != want) {
                clean = false;
                break;
            }
            want++;
        }
        if (clean && want == NREC + 1)
            good++;
        else {
            char text[128];
            mb_cursor_format (c, text, sizeof (text));
            diag ("restart from %s: stopped at %ju", text, (uintmax_t)want);
        }
        mb_reader_close (r);
    }
    cmp_ok (good, "==", si.ncursors,
            "every restart from a cursor in a sealed segment is exact");
    mb_follower_destroy (fi);
    mb_follower_destroy (fp);
}

/* A writer restarted twice (new epochs) with rotations in between, the
 * follower attached with END in the middle.
 */
static void test_restarts (void)
{
    struct mb_options opt;
    mb_follower_t *f;
    struct sink s = {.next = 0};
    cs_error_t e;
    char path[MB_PATH_MAX];
    int status;
    int epochs = 0;

    ts_path (path, sizeof (path), root, "inbox/1.jsonl");
    snprintf (s.what, sizeof (s.what), "restarts");
    mb_options_init (&opt);
    opt.follow = MB_FOLLOW_INOTIFY;
    f = mb_follower_create (&opt, &e);
    for (int round = 0; round < 3; round++) {
        pid_t pid;
        fflush (stdout);
        if ((pid = fork ()) == 0)
            child_writer (path, 250);
        waitpid (pid, &status, 0);
        if (round == 0) {
            /* attach at the end after the first incarnation */
            if (!mb_follower_add (f, path, MB_START_END, NULL, sink_cb, &s, &e))
                bail_out ("add: %s", e.text);
            s.next = 251;
        }
        while (mb_follower_run (f, 50, &e) > 0)
            ;
    }
    epochs = s.epochs;
    ok (s.records == 500 && !s.bad_order && !s.other,
        "END follower saw the 500 records of later incarnations (%d)",
        s.records);
    cmp_ok (epochs, "==", 1, "and one epoch change (the first is not one)");
    mb_follower_destroy (f);
}

int main (void)
{
    plan (NO_PLAN);
    ts_root (root, sizeof (root));
    test_live ();
    test_restarts ();
    ts_rmrf (root);
    done_testing ();
}

/* vi: ts=4 sw=4 expandtab
 */
