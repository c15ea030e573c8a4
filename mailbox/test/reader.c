/* test/reader.c - mb_reader_*: events, partial and over-long lines, start
 * modes, cursors in the active file and in sealed segments, segment
 * changes, safety.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mailbox/mailbox.h"
#include "mailbox/private.h"
#include "mailbox/reader-private.h"
#include "mailbox/test/streamtest.h"

static char root[MB_PATH_MAX];

/* Next event; fails the test (and returns false) when there is none. */
static bool next_is (mb_reader_t *r, struct mb_event *ev,
                     enum mb_event_type type, const char *what)
{
    cs_error_t e;
    int rc = mb_reader_next (r, ev, &e);

    if (rc != 1) {
        fail ("%s: got rc=%d (%s)", what, rc, rc < 0 ? e.text : "nothing");
        return false;
    }
    if (ev->type != type) {
        fail ("%s: got %s (seq %ju reason %s), expected %s", what,
              mb_event_name (ev->type), (uintmax_t)ev->rec.seq,
              ev->reason ? ev->reason : "-", mb_event_name (type));
        return false;
    }
    pass ("%s: %s", what, mb_event_name (type));
    return true;
}

static void no_more (mb_reader_t *r, const char *what)
{
    struct mb_event ev;
    cs_error_t e;
    int rc = mb_reader_next (r, &ev, &e);
    ok (rc == 0, "%s: nothing more (rc=%d%s%s)", what, rc, rc == 1 ? " " : "",
        rc == 1 ? mb_event_name (ev.type) : "");
}

/* Read RECORD events first..last (inclusive) and nothing else. */
static bool expect_records (mb_reader_t *r, uint64_t first, uint64_t last,
                            const char *what)
{
    struct mb_event ev;
    cs_error_t e;
    uint64_t want = first;

    for (;;) {
        int rc = mb_reader_next (r, &ev, &e);
        if (rc < 0) {
            fail ("%s: error %s", what, e.text);
            return false;
        }
        if (rc == 0)
            break;
        if (ev.type != MB_EV_RECORD || ev.rec.seq != want) {
            fail ("%s: got %s seq %ju at %s:%ju (%s), expected record %ju",
                  what, mb_event_name (ev.type), (uintmax_t)ev.rec.seq,
                  ev.file ? ev.file : "?", (uintmax_t)ev.offset,
                  ev.reason ? ev.reason : "-", (uintmax_t)want);
            return false;
        }
        want++;
    }
    return ok (want == last + 1, "%s: records %ju..%ju (got up to %ju)", what,
               (uintmax_t)first, (uintmax_t)last, (uintmax_t)(want - 1));
}

static void test_events (void)
{
    struct tstream t;
    struct mb_event ev;
    mb_reader_t *r;
    cs_error_t e;
    off_t off[20];
    char buf[2048];
    size_t n;

    ts_open (&t, root, "outbox", "0");
    off[1] = ts_record (&t);
    off[2] = ts_record (&t);
    off[3] = ts_record (&t);

    r = mb_reader_open (t.path, MB_START_BEGIN, NULL, NULL, &e);
    if (!ok (r != NULL, "mb_reader_open BEGIN works"))
        diag ("%s", e.text);
    if (!r)
        return;
    for (uint64_t i = 1; i <= 3; i++) {
        if (next_is (r, &ev, MB_EV_RECORD, "record")) {
            cmp_ok (ev.rec.seq, "==", i, "seq %ju", (uintmax_t)i);
            cmp_ok (ev.offset, "==", off[i], "offset of record %ju",
                    (uintmax_t)i);
            is (ev.file, t.path, "file is the active segment");
            is (ev.rec.type, "rpc", "type is parsed");
            ok (ev.rec.json && cJSON_GetObjectItem (ev.rec.json, "n"),
                "json has the payload");
        }
    }
    no_more (r, "after 3 records");

    /* partial line: not a record until its newline arrives */
    n = ts_format (buf, sizeof (buf), 4, 1, 100);
    off[4] = lseek (t.fd, 0, SEEK_END);
    ts_write (t.fd, buf, 30);
    no_more (r, "first 30 bytes of a line");
    ts_write (t.fd, buf + 30, n - 31);
    no_more (r, "line without its newline");
    ts_write (t.fd, buf + n - 1, 1);
    t.seq = 4;
    if (next_is (r, &ev, MB_EV_RECORD, "completed partial line")) {
        cmp_ok (ev.rec.seq, "==", 4, "it is record 4");
        cmp_ok (ev.offset, "==", off[4], "at the offset where it started");
        cmp_ok (ev.rec.len, "==", n - 1, "whole line, without newline");
    }

    /* gap */
    off[6] = ts_record_seq (&t, 6);
    if (next_is (r, &ev, MB_EV_GAP, "seq 6 after 4")) {
        cmp_ok (ev.expected, "==", 5, "gap expected 5");
        cmp_ok (ev.rec.seq, "==", 6, "gap names the record that showed it");
        cmp_ok (ev.offset, "==", off[6], "gap offset");
        is (ev.file, t.path, "gap file");
    }
    {
        struct mb_cursor c;
        mb_reader_cursor (r, &c);
        cmp_ok (c.seq, "==", 4, "cursor after GAP still at 4");
        cmp_ok (c.offset, "==", off[6], "cursor after GAP points at the line");
    }
    if (next_is (r, &ev, MB_EV_RECORD, "record after the gap"))
        cmp_ok (ev.rec.seq, "==", 6, "record 6 delivered");

    /* duplicate */
    off[7] = ts_record_seq (&t, 6);
    if (next_is (r, &ev, MB_EV_DUPLICATE, "seq 6 again")) {
        cmp_ok (ev.rec.seq, "==", 6, "duplicate seq");
        cmp_ok (ev.offset, "==", off[7], "duplicate offset");
    }
    no_more (r, "duplicate not delivered");

    /* epoch */
    t.epoch = 2;
    off[8] = ts_record_seq (&t, 7);
    if (next_is (r, &ev, MB_EV_EPOCH, "new epoch")) {
        cmp_ok (ev.prev_epoch, "==", 1, "prev_epoch");
        cmp_ok (ev.rec.epoch, "==", 2, "new epoch in the record");
        cmp_ok (ev.offset, "==", off[8], "epoch offset");
    }
    if (next_is (r, &ev, MB_EV_RECORD, "record of the new epoch"))
        cmp_ok (ev.rec.seq, "==", 7, "record 7");

    /* corrupt lines, each reported with file and offset, stream goes on */
    const char *bad[] = {
        "garbage\n",
        "[1,2]\n",
        "{\"v\":1,\"seq\":-3,\"epoch\":2,\"ts\":1,\"type\":\"x\"}\n",
        "{\"v\":1,\"epoch\":2,\"ts\":1,\"type\":\"x\"}\n",
        "{\"v\":1,\"seq\":8,\"ep\xff\":2}\n",
        NULL,
    };
    const char *why[] = {"not valid JSON", "not a JSON object",
                         "\"seq\" is not a non-negative integer",
                         "missing \"seq\"", "invalid UTF-8"};
    for (int i = 0; bad[i]; i++) {
        off_t o = lseek (t.fd, 0, SEEK_END);
        ts_str (&t, bad[i]);
        if (next_is (r, &ev, MB_EV_CORRUPT, "bad line")) {
            ok (ev.reason && strstr (ev.reason, why[i]), "reason '%s' says %s",
                ev.reason ? ev.reason : "(null)", why[i]);
            ok (strncmp (ev.reason, "torn", 4) != 0, "not called torn");
            cmp_ok (ev.offset, "==", o, "corrupt offset");
            is (ev.file, t.path, "corrupt file");
        }
    }
    /* a NUL byte */
    {
        off_t o = lseek (t.fd, 0, SEEK_END);
        ts_write (t.fd, "{\"v\":1\0}\n", 9);
        if (next_is (r, &ev, MB_EV_CORRUPT, "NUL byte")) {
            ok (strstr (ev.reason, "NUL byte at byte 6") != NULL, "reason: %s",
                ev.reason);
            cmp_ok (ev.offset, "==", o, "NUL line offset");
        }
    }
    /* a torn tail sealed with '\n' by a restarted writer, then its record */
    n = ts_format (buf, sizeof (buf), 8, 3, 10);
    off[9] = lseek (t.fd, 0, SEEK_END);
    ts_write (t.fd, buf, 20);
    no_more (r, "torn fragment is not a record yet");
    ts_str (&t, "\n");
    t.epoch = 3;
    off[10] = ts_record_seq (&t, 8);
    if (next_is (r, &ev, MB_EV_CORRUPT, "sealed torn tail")) {
        cmp_ok (ev.offset, "==", off[9], "torn tail offset");
        ok (!strncmp (ev.reason, "torn record: not valid JSON", 27),
            "reason: %s", ev.reason);
    }
    if (next_is (r, &ev, MB_EV_EPOCH, "restarted writer's epoch"))
        cmp_ok (ev.offset, "==", off[10], "epoch at the next record");
    if (next_is (r, &ev, MB_EV_RECORD, "record after torn tail"))
        cmp_ok (ev.rec.seq, "==", 8, "record 8 delivered");
    no_more (r, "all consumed");

    /* a second reader sees the same events from the start */
    mb_reader_t *r2 = mb_reader_open (t.path, MB_START_BEGIN, NULL, NULL, &e);
    int counts[5] = {0};
    int rc;
    while ((rc = mb_reader_next (r2, &ev, &e)) == 1)
        counts[ev.type]++;
    ok (rc == 0 && counts[MB_EV_RECORD] == 7 && counts[MB_EV_GAP] == 1 &&
            counts[MB_EV_DUPLICATE] == 1 && counts[MB_EV_EPOCH] == 2 &&
            counts[MB_EV_CORRUPT] == 7,
        "replay: 7 records, 1 gap, 1 duplicate, 2 epochs, 7 corrupt "
        "(%d %d %d %d %d)",
        counts[0], counts[1], counts[2], counts[3], counts[4]);
    mb_reader_close (r2);
    mb_reader_close (r);
    ts_close (&t);
}

static void test_overlong (void)
{
    struct tstream t;
    struct mb_options opt;
    struct mb_event ev;
    mb_reader_t *r;
    cs_error_t e;
    char big[5000];

    mb_options_init (&opt);
    opt.max_record = 256;
    ts_open (&t, root, "outbox", "long");
    ts_record (&t);
    r = mb_reader_open (t.path, MB_START_BEGIN, NULL, &opt, &e);
    if (!ok (r != NULL, "reader with max_record 256"))
        diag ("%s", e.text);
    if (!r)
        return;
    expect_records (r, 1, 1, "before the long line");

    /* written in pieces: must not wait for (or buffer) all of it */
    off_t o = lseek (t.fd, 0, SEEK_END);
    memset (big, 'a', sizeof (big));
    ts_write (t.fd, big, 200);
    no_more (r, "200 bytes of a long line");
    ts_write (t.fd, big, 1000);
    no_more (r, "1200 bytes of a long line");
    ts_write (t.fd, big, 1999);
    no_more (r, "3199 bytes of a long line");
    ts_str (&t, "\n");
    ts_record (&t);
    if (next_is (r, &ev, MB_EV_CORRUPT, "long line in pieces")) {
        is (ev.reason, "line of 3200 bytes is over the limit of 256",
            "reason names the length and the limit");
        cmp_ok (ev.offset, "==", o, "offset of the long line");
    }
    expect_records (r, 2, 2, "record after the long line");

    /* written at once together with the next record */
    o = lseek (t.fd, 0, SEEK_END);
    big[999] = '\n';
    ts_write (t.fd, big, 1000);
    ts_record (&t);
    if (next_is (r, &ev, MB_EV_CORRUPT, "long line in one piece")) {
        is (ev.reason, "line of 1000 bytes is over the limit of 256",
            "reason names the length");
        cmp_ok (ev.offset, "==", o, "offset");
    }
    expect_records (r, 3, 3, "record after it");

    /* exactly at the limit (255 + newline) is fine */
    {
        char line[300];
        size_t n = ts_format (line, sizeof (line), 4, 1, 0);
        size_t pad = 256 - n;
        n = ts_format (line, sizeof (line), 4, 1, pad);
        cmp_ok (n, "==", 256, "a record of exactly 256 bytes");
        ts_write (t.fd, line, n);
        t.seq = 4;
        expect_records (r, 4, 4, "record of exactly max_record bytes");
    }
    mb_reader_close (r);
    ts_close (&t);
}

static void test_end_and_missing (void)
{
    struct tstream t;
    struct mb_event ev;
    struct mb_cursor c;
    mb_reader_t *r, *rb;
    cs_error_t e;
    char path[MB_PATH_MAX], buf[512];

    /* a stream that does not exist yet */
    ts_path (path, sizeof (path), root, "outbox/late.jsonl");
    rb = mb_reader_open (path, MB_START_BEGIN, NULL, NULL, &e);
    if (!ok (rb != NULL, "BEGIN reader on a missing stream"))
        diag ("%s", e.text);
    r = mb_reader_open (path, MB_START_END, NULL, NULL, &e);
    if (!ok (r != NULL, "END reader on a missing stream"))
        diag ("%s", e.text);
    if (!r || !rb)
        return;
    no_more (rb, "missing stream (BEGIN)");
    no_more (r, "missing stream (END)");
    ts_open (&t, root, "outbox", "late");
    ts_record (&t);
    ts_record (&t);
    expect_records (rb, 1, 2, "BEGIN reader picks the stream up");
    expect_records (r, 1, 2, "END reader picks the stream up");
    mb_reader_close (rb);
    mb_reader_close (r);

    /* END skips what is there, including a complete line, but a partial
     * last line is completed and delivered
     */
    size_t n = ts_format (buf, sizeof (buf), 3, 1, 5);
    ts_write (t.fd, buf, 10);
    r = mb_reader_open (path, MB_START_END, NULL, NULL, &e);
    ok (r != NULL, "END reader on an existing stream");
    if (!r)
        return;
    mb_reader_cursor (r, &c);
    cmp_ok (c.seq, "==", 0, "END cursor: nothing delivered yet");
    cmp_ok (c.segment, "==", 1, "END cursor names the active segment");
    no_more (r, "END: old records are not delivered");
    ts_write (t.fd, buf + 10, n - 10);
    t.seq = 3;
    ts_record (&t);
    if (next_is (r, &ev, MB_EV_RECORD, "END: the completed line"))
        cmp_ok (ev.rec.seq, "==", 3, "record 3");
    expect_records (r, 4, 4, "END: then new records");
    mb_reader_close (r);

    /* a cursor taken before any record was seen (END) restarts there */
    r = mb_reader_open (path, MB_START_END, NULL, NULL, &e);
    mb_reader_cursor (r, &c);
    mb_reader_close (r);
    ts_record (&t);
    ts_record (&t);
    r = mb_reader_open (path, MB_START_CURSOR, &c, NULL, &e);
    ok (r != NULL, "reopen with an END cursor 0:0:1:N");
    if (r) {
        if (next_is (r, &ev, MB_EV_RECORD, "first record after END cursor"))
            cmp_ok (ev.rec.seq, "==", 5, "no gap reported, record 5");
        expect_records (r, 6, 6, "then 6");
        mb_reader_close (r);
    }
    ts_close (&t);
}

static mb_reader_t *reopen (const char *path, struct mb_cursor *c)
{
    cs_error_t e;
    mb_reader_t *r = mb_reader_open (path, MB_START_CURSOR, c, NULL, &e);
    if (!r)
        diag ("mb_reader_open: %s", e.text);
    return r;
}

/* Read n records from r and return the cursor after the last one. */
static bool read_n (mb_reader_t *r, int n, uint64_t first, struct mb_cursor *c)
{
    struct mb_event ev;
    cs_error_t e;

    for (int i = 0; i < n; i++) {
        if (mb_reader_next (r, &ev, &e) != 1 || ev.type != MB_EV_RECORD ||
            ev.rec.seq != first + (uint64_t)i) {
            diag ("read_n: bad event at %d", i);
            return false;
        }
    }
    mb_reader_cursor (r, c);
    return true;
}

static void test_cursors (void)
{
    struct tstream t;
    struct mb_cursor c, c2;
    mb_reader_t *r;
    cs_error_t e;
    char sealed[MB_PATH_MAX];
    char text[128];
    off_t off6 = 0;

    ts_open (&t, root, "outbox", "cur");
    for (int i = 1; i <= 10; i++) {
        off_t o = ts_record (&t);
        if (i == 6)
            off6 = o;
    }

    /* in the active file */
    r = mb_reader_open (t.path, MB_START_BEGIN, NULL, NULL, &e);
    ok (r && read_n (r, 5, 1, &c), "read 5 records");
    mb_reader_close (r);
    cmp_ok (c.seq, "==", 5, "cursor seq");
    cmp_ok (c.epoch, "==", 1, "cursor epoch");
    cmp_ok (c.segment, "==", 1, "cursor segment is the active's first seq");
    cmp_ok (c.offset, "==", off6, "cursor offset is the next line");
    mb_cursor_format (&c, text, sizeof (text));
    diag ("cursor %s", text);
    if ((r = reopen (t.path, &c))) {
        expect_records (r, 6, 10, "restart in the active file");
        mb_reader_close (r);
    }
    /* a wrong offset (not at a line start) falls back to seq */
    c2 = c;
    c2.offset += 7;
    if ((r = reopen (t.path, &c2))) {
        expect_records (r, 6, 10, "restart with a bad offset");
        mb_reader_close (r);
    }
    /* a bare seq */
    memset (&c2, 0, sizeof (c2));
    c2.seq = 8;
    if ((r = reopen (t.path, &c2))) {
        expect_records (r, 9, 10, "restart from a bare seq");
        mb_reader_close (r);
    }

    /* seal 1..10 as plain (compression not done yet), write 11..15 */
    ts_rotate (&t, false, sealed, sizeof (sealed));
    for (int i = 11; i <= 15; i++)
        ts_record (&t);
    if ((r = reopen (t.path, &c))) {
        expect_records (r, 6, 15, "restart in a plain archive segment");
        mb_reader_cursor (r, &c2);
        cmp_ok (c2.segment, "==", 11, "cursor now in the active segment");
        mb_reader_close (r);
    }
    /* plain segment compressed while a reader is in the middle of it */
    if ((r = reopen (t.path, &c))) {
        struct mb_cursor c3;
        ok (read_n (r, 2, 6, &c3), "read 6,7 from the plain segment");
        struct mb_stream_name sn;
        char gz[MB_PATH_MAX];
        mb_stream_split (t.path, &sn, &e);
        mb_segment_path (&sn, 1, 10, ".gz", gz, sizeof (gz));
        ok (mb_segment_compress (sealed, gz, &e) == 0,
            "compress it under the reader");
        ok (access (sealed, F_OK) < 0, "plain segment is gone");
        expect_records (r, 8, 15, "reader finishes the vanished plain segment");
        mb_reader_close (r);

        /* a cursor into the middle of the sealed .gz */
        if ((r = reopen (t.path, &c3))) {
            expect_records (r, 8, 15, "restart in the middle of a .gz segment");
            mb_reader_close (r);
        }
        if ((r = reopen (t.path, &c))) {
            struct mb_event ev;
            struct mb_cursor c4;
            if (next_is (r, &ev, MB_EV_RECORD, "record from .gz")) {
                ok (strstr (ev.file, ".jsonl.gz") != NULL, "file %s", ev.file);
                cmp_ok (ev.rec.seq, "==", 6, "record 6");
                cmp_ok (ev.offset, "==", off6,
                        "offset is the uncompressed one");
                mb_reader_cursor (r, &c4);
                cmp_ok (c4.segment, "==", 1, "cursor segment 1");
                cmp_ok (c4.seq, "==", ev.rec.seq, "cursor seq");
            }
            mb_reader_close (r);
        }
    }
    /* cursor at the very end of a sealed segment */
    memset (&c2, 0, sizeof (c2));
    c2.seq = 10;
    c2.epoch = 1;
    c2.segment = 1;
    c2.offset = (uint64_t)lseek (t.fd, 0, SEEK_END) * 10; /* nonsense */
    if ((r = reopen (t.path, &c2))) {
        expect_records (r, 11, 15, "restart after the last record of a seal");
        mb_reader_close (r);
    }
    /* BEGIN crosses from .gz into the active file */
    r = mb_reader_open (t.path, MB_START_BEGIN, NULL, NULL, &e);
    if (r) {
        expect_records (r, 1, 15, "BEGIN over .gz and active");
        mb_reader_close (r);
    }
    ts_close (&t);
}

static void test_rotation_inline (void)
{
    struct tstream t;
    mb_reader_t *r, *rc;
    struct mb_cursor c;
    cs_error_t e;

    ts_open (&t, root, "inbox", "rot");
    for (int i = 0; i < 5; i++)
        ts_record (&t);
    r = mb_reader_open (t.path, MB_START_BEGIN, NULL, NULL, &e);
    ok (r != NULL, "reader for rotation");
    if (!r)
        return;
    expect_records (r, 1, 5, "before rotation");
    mb_reader_cursor (r, &c);
    /* appended before the rename, then rotated, then more */
    ts_record (&t);
    ts_record (&t);
    ts_rotate (&t, false, NULL, 0);
    ts_record (&t);
    expect_records (r, 6, 8, "across one rotation");
    /* two rotations while the reader is idle, one compressed */
    ts_record (&t);
    ts_rotate (&t, true, NULL, 0);
    ts_record (&t);
    ts_record (&t);
    ts_rotate (&t, false, NULL, 0);
    ts_record (&t);
    expect_records (r, 9, 12, "across two rotations while idle");
    /* rotated away and the new file not there yet */
    ts_record (&t);
    {
        char plain[MB_PATH_MAX];
        struct mb_stream_name sn;
        mb_stream_split (t.path, &sn, &e);
        mb_segment_path (&sn, t.seg_first, t.seq, "", plain, sizeof (plain));
        rename (t.path, plain);
        expect_records (r, 13, 13, "drained the renamed file");
        no_more (r, "waiting for the new active file");
        close (t.fd);
        t.fd = open (t.path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL, 0600);
        t.seg_count = 0;
        ts_record (&t);
    }
    expect_records (r, 14, 14, "picked up the new active file");
    mb_reader_close (r);

    /* a reader that was away during all that resumes from its cursor */
    rc = reopen (t.path, &c);
    if (rc) {
        expect_records (rc, 6, 14, "cursor from before three rotations");
        mb_reader_close (rc);
    }
    ts_close (&t);
}

/* A segment missing from the listing when the reader moved on (listing a
 * directory while entries are renamed can miss one): the first record of
 * the next segment shows the hole, and the reader goes back for it.
 */
static void test_missed_segment (void)
{
    struct tstream t;
    mb_reader_t *r;
    cs_error_t e;
    char sealed[MB_PATH_MAX], hidden[MB_PATH_MAX];

    ts_open (&t, root, "outbox", "miss");
    for (int i = 0; i < 10; i++)
        ts_record (&t);
    ts_rotate (&t, true, NULL, 0);
    for (int i = 0; i < 10; i++)
        ts_record (&t);
    ts_rotate (&t, true, sealed, sizeof (sealed));
    ts_path (hidden, sizeof (hidden), root, "hidden.jsonl.gz");
    if (rename (sealed, hidden) < 0)
        bail_out ("rename: %s", strerror (errno));
    r = mb_reader_open (t.path, MB_START_BEGIN, NULL, NULL, &e);
    if (!r) {
        fail ("open: %s", e.text);
        return;
    }
    expect_records (r, 1, 10, "first segment; the second is not listed");
    if (rename (hidden, sealed) < 0)
        bail_out ("rename: %s", strerror (errno));
    ts_record (&t);
    expect_records (r, 11, 21, "the missed segment is read, then the active");
    mb_reader_close (r);
    ts_close (&t);
}

static void test_damaged_gz (void)
{
    struct tstream t;
    struct mb_event ev;
    mb_reader_t *r;
    cs_error_t e;
    char gz[MB_PATH_MAX];
    struct stat st;

    ts_open (&t, root, "inbox", "dmg");
    for (int i = 0; i < 200; i++)
        ts_record (&t);
    ts_rotate (&t, true, gz, sizeof (gz));
    ts_record (&t);
    if (stat (gz, &st) < 0 || truncate (gz, st.st_size / 2) < 0) {
        fail ("truncate %s", gz);
        return;
    }
    r = mb_reader_open (t.path, MB_START_BEGIN, NULL, NULL, &e);
    ok (r != NULL, "reader on a damaged archive");
    if (!r)
        return;
    int records = 0, rc;
    bool corrupt = false, gap = false;
    while ((rc = mb_reader_next (r, &ev, &e)) == 1) {
        if (ev.type == MB_EV_RECORD)
            records++;
        else if (ev.type == MB_EV_CORRUPT && strstr (ev.reason, "damaged"))
            corrupt = true;
        else if (ev.type == MB_EV_GAP)
            gap = true;
    }
    ok (rc == 0, "the reader is not stopped by a damaged segment");
    ok (corrupt, "the damaged segment is reported");
    ok (gap, "the lost records are reported as a gap");
    ok (records > 0 && records < 201, "%d records recovered", records);
    mb_reader_close (r);
    ts_close (&t);
}

static void test_security (void)
{
    char target[MB_PATH_MAX], link[MB_PATH_MAX];
    cs_error_t e;
    mb_reader_t *r;
    struct tstream t;

    ts_open (&t, root, "inbox", "real");
    ts_record (&t);
    ts_path (target, sizeof (target), root, "inbox/real.jsonl");
    ts_path (link, sizeof (link), root, "inbox/sym.jsonl");
    if (symlink (target, link) < 0)
        bail_out ("symlink: %s", strerror (errno));
    memset (&e, 0, sizeof (e));
    r = mb_reader_open (link, MB_START_BEGIN, NULL, NULL, &e);
    ok (r == NULL, "a symlinked stream is refused");
    ok (strstr (e.text, link) && strstr (e.text, "symbolic link"),
        "error names the path and why: %s", e.text);
    mb_reader_close (r);
    r = mb_reader_open ("relative.jsonl", MB_START_BEGIN, NULL, NULL, &e);
    ok (r == NULL, "a path without a directory is refused: %s", e.text);
    r = mb_reader_open (target, MB_START_CURSOR, NULL, NULL, &e);
    ok (r == NULL && errno == EINVAL, "CURSOR without a cursor: EINVAL");
    ts_close (&t);
}

/* A hole (NUL bytes) in a line of the active file, as a network filesystem
 * can show when another client's writes arrive out of order: waited for
 * (with a grace period), and reported only when it is not filled in time.
 */
static void test_hole (void)
{
    struct tstream t;
    struct mb_event ev;
    mb_reader_t *r;
    cs_error_t e;
    char line[512];
    size_t n, h;
    off_t off;
    int wfd;

    ts_open (&t, root, "outbox", "hole");
    ts_record (&t);
    r = mb_reader_open (t.path, MB_START_BEGIN, NULL, NULL, &e);
    if (!r) {
        fail ("open: %s", e.text);
        return;
    }
    mb_reader_set_hole_grace (r, 0.3);
    expect_records (r, 1, 1, "before the hole");
    if ((wfd = open (t.path, O_WRONLY | O_CLOEXEC)) < 0)
        bail_out ("open: %s", strerror (errno));

    /* the second half of record 2 lands first */
    n = ts_format (line, sizeof (line), 2, 1, 40);
    h = n / 2;
    off = lseek (t.fd, 0, SEEK_END);
    if (pwrite (wfd, line + h, n - h, off + (off_t)h) != (ssize_t)(n - h))
        bail_out ("pwrite");
    no_more (r, "a line with a hole is waited for");
    ok (mb_reader_poll_check (r, false), "poll check asks to look again");
    if (pwrite (wfd, line, h, off) != (ssize_t)h)
        bail_out ("pwrite");
    if (next_is (r, &ev, MB_EV_RECORD, "hole filled")) {
        cmp_ok (ev.rec.seq, "==", 2, "record 2");
        cmp_ok (ev.offset, "==", off, "at its offset");
    }

    /* a hole that stays */
    n = ts_format (line, sizeof (line), 3, 1, 40);
    off = lseek (t.fd, 0, SEEK_END);
    if (pwrite (wfd, line + h, n - h, off + (off_t)h) != (ssize_t)(n - h))
        bail_out ("pwrite");
    no_more (r, "hole not filled yet");
    usleep (400 * 1000);
    if (next_is (r, &ev, MB_EV_CORRUPT, "hole not filled in time")) {
        ok (strstr (ev.reason, "NUL byte at byte 0") != NULL, "reason: %s",
            ev.reason);
        cmp_ok (ev.offset, "==", off, "offset of the line");
    }
    t.seq = 3;
    ts_record (&t);
    if (next_is (r, &ev, MB_EV_GAP, "the lost record is a gap"))
        cmp_ok (ev.expected, "==", 3, "expected 3");
    expect_records (r, 4, 4, "the stream goes on");
    close (wfd);
    mb_reader_close (r);
    ts_close (&t);
}

static double now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Not a benchmark: a sanity check that the hot path is not pathological. */
static void test_speed (void)
{
    struct tstream t;
    mb_reader_t *r;
    cs_error_t e;
    struct mb_event ev;
    int n = getenv ("CODESWARM_VALGRIND") ? 2000 : 200000;
    char *big, *p;
    size_t len = 0;
    int got = 0, rc;

    ts_open (&t, root, "outbox", "speed");
    if (!(big = malloc ((size_t)n * 256)))
        bail_out ("out of memory");
    p = big;
    for (int i = 1; i <= n; i++) {
        size_t k = ts_format (p, 256, (uint64_t)i, 1, 110);
        p += k;
        len += k;
    }
    ts_write (t.fd, big, len);
    free (big);
    r = mb_reader_open (t.path, MB_START_BEGIN, NULL, NULL, &e);
    double t0 = now_s ();
    while ((rc = mb_reader_next (r, &ev, &e)) == 1)
        if (ev.type == MB_EV_RECORD)
            got++;
    double dt = now_s () - t0;
    ok (rc == 0 && got == n, "read %d records of %zu bytes", got, len / n);
    diag ("%.0f records/s (%.1f MB/s)", got / dt, len / dt / 1e6);
    mb_reader_close (r);
    ts_close (&t);
}

int main (void)
{
    plan (NO_PLAN);
    ts_root (root, sizeof (root));
    test_events ();
    test_overlong ();
    test_end_and_missing ();
    test_cursors ();
    test_rotation_inline ();
    test_missed_segment ();
    test_damaged_gz ();
    test_hole ();
    test_security ();
    test_speed ();
    ts_rmrf (root);
    done_testing ();
}

/* vi: ts=4 sw=4 expandtab
 */
