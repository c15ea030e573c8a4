#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "common/lineio.h"
#include "common/json.h"
#include "common/libtap/tap.h"

static void test_basic (void)
{
    lineio_t *lb = lineio_create (64);
    const char *line;
    size_t len;
    bool over = true;

    ok (lb != NULL, "lineio_create");
    ok (lineio_next (lb, &line, &len, &over) == 0, "empty: no line");
    ok (lineio_feed (lb, "abc\n\ndef", 8) == 0, "feed");
    ok (lineio_next (lb, &line, &len, &over) == 1 && len == 3
        && !memcmp (line, "abc", 3) && !over, "first line");
    ok (line[len] == '\0', "line is NUL-terminated");
    ok (lineio_next (lb, &line, &len, &over) == 1 && len == 0 && !over,
        "a 0-byte line");
    ok (lineio_next (lb, &line, &len, &over) == 0, "partial line not returned");
    cmp_ok (lineio_buffered (lb), "==", 3, "3 bytes buffered");
    ok (lineio_feed (lb, "ghi\n", 4) == 0
        && lineio_next (lb, &line, &len, &over) == 1 && len == 6
        && !memcmp (line, "defghi", 6), "partial line completed");
    ok (lineio_rest (lb, &line, &len) == 0, "no tail");
    ok (lineio_feed (lb, "tail", 4) == 0
        && lineio_next (lb, &line, &len, &over) == 0
        && lineio_rest (lb, &line, &len) == 1 && len == 4
        && !memcmp (line, "tail", 4) && line[4] == '\0', "unterminated tail");
    ok (lineio_rest (lb, &line, &len) == 0 && lineio_buffered (lb) == 0,
        "tail is taken once");
    lineio_destroy (lb);
    lineio_destroy (NULL);
    errno = 0;
    ok (lineio_create (0) == NULL && errno == EINVAL, "max 0 is EINVAL");
}

static void test_nul_and_split (void)
{
    lineio_t *lb = lineio_create (1024);
    const char *line;
    size_t len;
    bool over;
    const char data[] = "a\0b\nsecond line here\nthird\n";
    size_t i;
    int got = 0;
    bool good = true;

    /* one byte at a time */
    for (i = 0; i < sizeof (data) - 1; i++) {
        lineio_feed (lb, data + i, 1);
        while (lineio_next (lb, &line, &len, &over) == 1) {
            got++;
            if (got == 1)
                good &= len == 3 && !memcmp (line, "a\0b", 3);
            else if (got == 2)
                good &= len == 16 && !memcmp (line, "second line here", 16);
            else if (got == 3)
                good &= len == 5 && !memcmp (line, "third", 5);
            good &= !over;
        }
    }
    ok (got == 3 && good, "lines split over one-byte feeds, NUL kept inside");
    lineio_destroy (lb);
}

static void test_overlong (void)
{
    lineio_t *lb = lineio_create (8);
    const char *line;
    size_t len;
    bool over;

    ok (lineio_feed (lb, "12345678\n", 9) == 0
        && lineio_next (lb, &line, &len, &over) == 1 && len == 8 && !over,
        "a line of exactly max bytes is fine");
    ok (lineio_feed (lb, "123456789abc", 12) == 0
        && lineio_next (lb, &line, &len, &over) == 1 && len == 8 && over
        && !memcmp (line, "12345678", 8) && line[8] == '\0',
        "overlong line cut to max, once");
    ok (lineio_next (lb, &line, &len, &over) == 0, "rest is not returned");
    ok (lineio_feed (lb, "defghijkl", 9) == 0
        && lineio_next (lb, &line, &len, &over) == 0
        && lineio_buffered (lb) == 0,
        "more of the overlong line is discarded without buffering");
    ok (lineio_feed (lb, "xyz\ngood\n", 9) == 0
        && lineio_next (lb, &line, &len, &over) == 1 && len == 4
        && !memcmp (line, "good", 4) && !over,
        "the next good line comes through");
    ok (lineio_next (lb, &line, &len, &over) == 0, "nothing more");
    /* overlong arriving in one feed together with good lines */
    ok (lineio_feed (lb, "aaaaaaaaaaaaaaaaaaaa\nok1\nbbbbbbbbbbbb", 37) == 0,
        "fed overlong + good + overlong");
    ok (lineio_next (lb, &line, &len, &over) == 1 && over && len == 8,
        "overlong 1");
    ok (lineio_next (lb, &line, &len, &over) == 1 && !over && len == 3
        && !memcmp (line, "ok1", 3), "good line");
    ok (lineio_next (lb, &line, &len, &over) == 1 && over && len == 8
        && !memcmp (line, "bbbbbbbb", 8), "overlong 2 (no newline yet)");
    ok (lineio_rest (lb, &line, &len) == 0,
        "no tail while discarding an overlong line");
    lineio_destroy (lb);
}

static void test_fill (void)
{
    lineio_t *lb = lineio_create (100);
    const char *line;
    size_t len;
    bool over;
    int p[2];
    ssize_t n;

    ok (pipe (p) == 0 && fd_set_nonblock (p[0], true) == 0
        && fd_set_cloexec (p[0]) == 0, "nonblocking cloexec pipe");
    ok ((fcntl (p[0], F_GETFL) & O_NONBLOCK)
        && (fcntl (p[0], F_GETFD) & FD_CLOEXEC), "flags are set");
    errno = 0;
    ok (lineio_fill (lb, p[0]) < 0 && errno == EAGAIN, "fill: EAGAIN");
    ok (write (p[1], "one\ntw", 6) == 6, "wrote");
    ok (lineio_fill (lb, p[0]) == 6, "fill: 6 bytes");
    ok (lineio_next (lb, &line, &len, &over) == 1 && len == 3, "one");
    ok (lineio_next (lb, &line, &len, &over) == 0, "tw is partial");
    ok (write (p[1], "o", 1) == 1 && close (p[1]) == 0, "wrote, closed");
    ok (lineio_fill (lb, p[0]) == 1 && !lineio_eof (lb), "fill: 1 byte");
    ok (lineio_fill (lb, p[0]) == 0 && lineio_eof (lb), "fill: EOF");
    ok (lineio_next (lb, &line, &len, &over) == 0
        && lineio_rest (lb, &line, &len) == 1 && len == 3
        && !memcmp (line, "two", 3), "unterminated tail after EOF");
    close (p[0]);
    ok (fd_set_nonblock (p[0], false) < 0 && errno == EBADF,
        "fd_set_nonblock on a closed fd fails");
    lineio_destroy (lb);

    /* a writer that never sends a newline cannot grow the buffer */
    lb = lineio_create (1000);
    ok (pipe (p) == 0 && fd_set_nonblock (p[0], true) == 0
        && fd_set_nonblock (p[1], true) == 0, "pipe");
    char junk[4096];
    memset (junk, 'x', sizeof (junk));
    size_t total = 0, maxbuf = 0;
    int overs = 0;
    for (int i = 0; i < 512; i++) {
        if (write (p[1], junk, sizeof (junk)) < 0)
            break;
        while ((n = lineio_fill (lb, p[0])) > 0) {
            total += n;
            while (lineio_next (lb, &line, &len, &over) == 1)
                overs += over;
            if (lineio_buffered (lb) > maxbuf)
                maxbuf = lineio_buffered (lb);
        }
    }
    ok (total == 512 * sizeof (junk), "read 2 MiB without a newline");
    ok (overs == 1, "one overlong line reported");
    ok (maxbuf <= 1000 + 65536, "buffered at most %zu bytes", maxbuf);
    ok (write (p[1], "\nafter\n", 7) == 7 && lineio_fill (lb, p[0]) == 7
        && lineio_next (lb, &line, &len, &over) == 1 && len == 5 && !over
        && !memcmp (line, "after", 5), "stream resumes after the newline");
    close (p[0]);
    close (p[1]);
    lineio_destroy (lb);
}

static void test_write (void)
{
    int p[2];
    outbuf_t *ob = outbuf_create ();
    char buf[256 * 1024];
    size_t total = 0, got = 0;
    ssize_t n;
    bool same = true;

    ok (pipe (p) == 0 && fd_set_nonblock (p[1], true) == 0
        && fd_set_nonblock (p[0], true) == 0, "pipe");
    ok (ob != NULL && outbuf_pending (ob) == 0, "outbuf_create");
    for (int i = 0; i < 4096; i++) {
        char rec[64];
        int len = snprintf (rec, sizeof (rec), "record %06d\n", i);
        if (outbuf_append (ob, rec, len) < 0)
            break;
        total += len;
    }
    cmp_ok (outbuf_pending (ob), "==", total, "all bytes pending");
    /* flush into the pipe until it is full, then drain and check */
    char *rd = malloc (total + 1);
    while (outbuf_pending (ob) > 0) {
        n = outbuf_flush (ob, p[1]);
        if (n < 0)
            break;
        ssize_t r;
        while ((r = read (p[0], rd + got, total - got)) > 0)
            got += r;
    }
    ok (outbuf_pending (ob) == 0 && got == total, "everything went through");
    for (int i = 0; i < 4096 && same; i++) {
        char rec[64];
        int len = snprintf (rec, sizeof (rec), "record %06d\n", i);
        same = !memcmp (rd + i * len, rec, len);
    }
    ok (same, "in order");
    free (rd);

    /* a full pipe: flush returns what is pending, never blocks */
    memset (buf, 'y', sizeof (buf));
    ok (outbuf_append (ob, buf, sizeof (buf)) == 0, "appended 256 KiB");
    n = outbuf_flush (ob, p[1]);
    ok (n > 0 && (size_t)n == outbuf_pending (ob) && (size_t)n < sizeof (buf),
        "flush into a full pipe leaves %zd pending", n);
    close (p[0]);
    signal (SIGPIPE, SIG_IGN);
    errno = 0;
    ok (outbuf_flush (ob, p[1]) < 0 && errno == EPIPE, "EPIPE when closed");
    close (p[1]);
    outbuf_destroy (ob);
    outbuf_destroy (NULL);

    /* fd_write_all with a reader that drains slowly */
    ok (pipe (p) == 0 && fd_set_nonblock (p[1], true) == 0, "pipe");
    pid_t pid = fork ();
    if (pid == 0) {
        char b[4096];
        size_t sum = 0;
        close (p[1]);
        usleep (100000);
        while ((n = read (p[0], b, sizeof (b))) > 0)
            sum += n;
        _exit (sum == sizeof (buf) ? 0 : 1);
    }
    close (p[0]);
    ok (fd_write_all (p[1], buf, sizeof (buf)) == 0,
        "fd_write_all 256 KiB into a nonblocking pipe");
    close (p[1]);
    int st;
    ok (waitpid (pid, &st, 0) == pid && WIFEXITED (st)
        && WEXITSTATUS (st) == 0, "reader got every byte");
}

/* Random streams against a reference model: every line whole or cut at
 * max exactly once, in order, whatever the chunking.
 */
static void test_random (void)
{
    unsigned seed = 12345;
    int round, bad = 0, total = 0;

    for (round = 0; round < 300; round++) {
        size_t max = 1 + rand_r (&seed) % 40;
        size_t n = rand_r (&seed) % 2000, i, pos = 0;
        char *data = malloc (n + 1);
        lineio_t *lb = lineio_create (max);
        const char *line;
        size_t len;
        bool over;
        int p[2] = { -1, -1 };
        bool use_pipe = round % 2;

        /* mostly short lines, some long, a few NULs */
        for (i = 0; i < n; i++) {
            int r = rand_r (&seed) % 100;
            data[i] = r < 8 ? '\n' : r < 10 ? '\0' : 'a' + r % 26;
            if (round % 7 == 0 && r < 7)
                data[i] = 'x';  /* rounds with longer lines */
        }
        if (use_pipe && (pipe (p) < 0 || fd_set_nonblock (p[0], true) < 0))
            bail_out ("pipe");

        /* expected events */
        size_t epos = 0;
        bool round_ok = true;
        while (pos < n || use_pipe) {
            size_t chunk = 1 + rand_r (&seed) % (3 * max + 5);
            if (pos >= n)
                break;
            if (chunk > n - pos)
                chunk = n - pos;
            if (use_pipe) {
                if (write (p[1], data + pos, chunk) != (ssize_t)chunk
                    || lineio_fill (lb, p[0]) != (ssize_t)chunk)
                    round_ok = false;
            }
            else
                lineio_feed (lb, data + pos, chunk);
            pos += chunk;
            while (lineio_next (lb, &line, &len, &over) == 1) {
                /* the model: the next line starting at epos */
                char *nl = memchr (data + epos, '\n', n - epos);
                size_t full = nl ? (size_t)(nl - (data + epos)) : n - epos;
                bool eover = full > max;
                size_t elen = eover ? max : full;
                if (!nl && !eover) {
                    round_ok = false;   /* a tail came out as a line */
                    break;
                }
                if (len != elen || over != eover
                    || memcmp (line, data + epos, elen) != 0
                    || line[len] != '\0')
                    round_ok = false;
                epos += full + (nl ? 1 : 0);
                total++;
            }
        }
        if (use_pipe) {
            close (p[1]);
            if (lineio_fill (lb, p[0]) != 0 || !lineio_eof (lb))
                round_ok = false;
            close (p[0]);
        }
        /* the tail */
        if (epos < n) {
            size_t tail = n - epos;
            if (tail > max)
                round_ok = false;   /* should have come out as overlong */
            else if (lineio_rest (lb, &line, &len) != 1 || len != tail
                     || memcmp (line, data + epos, tail) != 0)
                round_ok = false;
        }
        else if (lineio_rest (lb, &line, &len) != 0)
            round_ok = false;
        if (!round_ok) {
            bad++;
            diag ("round %d (max %zu, %zu bytes, %s) failed", round, max, n,
                  use_pipe ? "pipe" : "feed");
        }
        lineio_destroy (lb);
        free (data);
    }
    ok (bad == 0, "300 random streams match the model (%d lines)", total);
}

/* Throughput: many short lines through fill/next; a sanity bound only. */
static void test_speed (void)
{
    lineio_t *lb = lineio_create (8 << 20);
    const char *line;
    size_t len, nlines = 0, bytes = 0;
    bool over;
    char chunk[65536];
    size_t off = 0;
    int i;

    while (off + 120 < sizeof (chunk)) {
        int n = snprintf (chunk + off, sizeof (chunk) - off,
                          "{\"v\":1,\"seq\":%zu,\"type\":\"rpc\","
                          "\"x\":\"%s\"}\n",
                          off, "abcdefghijklmnopqrstuvwxyz");
        off += n;
    }
    double t0 = time_mono ();
    for (i = 0; i < 200; i++) {
        /* odd feed sizes so lines straddle feeds */
        size_t pos = 0;
        while (pos < off) {
            size_t n = off - pos < 7001 ? off - pos : 7001;
            lineio_feed (lb, chunk + pos, n);
            pos += n;
            while (lineio_next (lb, &line, &len, &over) == 1) {
                nlines++;
                bytes += len;
            }
        }
    }
    double t = time_mono () - t0;
    diag ("%zu lines (%zu bytes) in %.3fs: %.0f lines/s", nlines, bytes, t,
          nlines / t);
    ok (nlines > 0 && nlines / t > 300000, "over 300k lines/s");
    lineio_destroy (lb);
}

int main (void)
{
    plan (NO_PLAN);
    test_basic ();
    test_nul_and_split ();
    test_overlong ();
    test_fill ();
    test_write ();
    test_random ();
    if (getenv ("CODESWARM_VALGRIND"))
        skip (1, "speed check under valgrind");
    else
        test_speed ();
    done_testing ();
}
