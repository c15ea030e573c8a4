/* test/segment.c - archive names, listing, compression, tail scans */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/libtap/tap.h"
#include "mailbox/mailbox.h"
#include "mailbox/private.h"

static char tmp[256];
static char stream[512];
static char archive[512];

static void touch (const char *dir, const char *name, const char *content)
{
    char path[1024];
    snprintf (path, sizeof (path), "%s/%s", dir, name);
    int fd = open (path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0 || write (fd, content, strlen (content)) < 0)
        bail_out ("cannot write %s", path);
    close (fd);
}

static void rec (char *buf, size_t len, uint64_t seq, uint64_t epoch)
{
    snprintf (buf, len,
              "{\"v\":1,\"seq\":%ju,\"epoch\":%ju,\"ts\":1.5,\"type\":\"t\"}\n",
              (uintmax_t)seq, (uintmax_t)epoch);
}

static void test_names (void)
{
    uint64_t f, l;
    enum mb_seg_kind k;
    struct mb_stream_name sn;
    char path[MB_PATH_MAX];

    ok (mb_segment_name_parse ("outbox-3.00000000000000000001-"
                               "00000000000000000010.jsonl.gz",
                               "outbox-3.", &f, &l, &k) == 0
            && f == 1 && l == 10 && k == MB_SEG_GZ,
        "parse a .gz name");
    ok (mb_segment_name_parse ("outbox-3.00000000000000000001-"
                               "00000000000000000010.jsonl",
                               "outbox-3.", &f, &l, &k) == 0
            && k == MB_SEG_PLAIN,
        "parse a plain name");
    ok (mb_segment_name_parse ("outbox-3.00000000000000000001-"
                               "00000000000000000010.jsonl.gz.tmp",
                               "outbox-3.", &f, &l, &k) == 0
            && k == MB_SEG_TMP,
        "parse a .tmp name");
    ok (mb_segment_name_parse ("outbox-31.00000000000000000001-"
                               "00000000000000000010.jsonl.gz",
                               "outbox-3.", &f, &l, &k) == -1,
        "another stream's segment is not ours");
    ok (mb_segment_name_parse ("outbox-3.0000000000000000001-"
                               "00000000000000000010.jsonl.gz",
                               "outbox-3.", &f, &l, &k) == -1,
        "19 digits refused");
    ok (mb_segment_name_parse ("outbox-3.00000000000000000011-"
                               "00000000000000000010.jsonl.gz",
                               "outbox-3.", &f, &l, &k) == -1,
        "first > last refused");
    ok (mb_segment_name_parse ("outbox-3.00000000000000000001-"
                               "00000000000000000010.jsonl.bz2",
                               "outbox-3.", &f, &l, &k) == -1,
        "unknown suffix refused");
    ok (mb_stream_split ("/a/s/outbox/3.jsonl", &sn, NULL) == 0
            && mb_segment_path (&sn, 5, 123, ".gz", path, sizeof (path)) == 0,
        "format a segment path");
    is (path,
        "/a/s/archive/outbox-3.00000000000000000005-00000000000000000123"
        ".jsonl.gz",
        "segment path");
}

static void test_list (void)
{
    struct mb_segment *segs = NULL;
    size_t n = 99;
    cs_error_t err;

    ok (mb_segments_list (stream, &segs, &n, &err) == 0 && n == 0
            && segs == NULL,
        "no archive directory: no segments");
    if (mkdir (archive, 0700) < 0)
        bail_out ("mkdir %s", archive);
    ok (mb_segments_list (stream, &segs, &n, &err) == 0 && n == 0,
        "empty archive directory: no segments");
    touch (archive, "outbox-0.00000000000000000101-00000000000000000200.jsonl.gz",
           "");
    touch (archive, "outbox-0.00000000000000000001-00000000000000000100.jsonl.gz",
           "");
    touch (archive, "outbox-0.00000000000000000201-00000000000000000300.jsonl",
           "");
    touch (archive, "outbox-0.00000000000000000101-00000000000000000200.jsonl",
           "");
    touch (archive,
           "outbox-0.00000000000000000301-00000000000000000400.jsonl.gz.tmp",
           "");
    touch (archive, "outbox-1.00000000000000000001-00000000000000000100.jsonl.gz",
           "");
    touch (archive, "inbox-0.00000000000000000001-00000000000000000100.jsonl.gz",
           "");
    touch (archive, "README", "");
    ok (mb_segments_list (stream, &segs, &n, &err) == 0 && n == 3,
        "three segments listed (twin, tmp and other streams left out)");
    if (n == 3) {
        ok (segs[0].first == 1 && segs[0].last == 100 && segs[0].compressed,
            "first segment 1-100 compressed");
        ok (segs[1].first == 101 && segs[1].last == 200 && segs[1].compressed,
            "second 101-200, the .gz preferred over its plain twin");
        ok (segs[2].first == 201 && segs[2].last == 300 && !segs[2].compressed
                && strstr (segs[2].path, "/archive/outbox-0.") != NULL
                && !strcmp (segs[2].path + strlen (segs[2].path) - 6, ".jsonl"),
            "third 201-300 plain (transitional): %s", segs[2].path);
    }
    free (segs);

    chmod (archive, 0770);
    ok (mb_segments_list (stream, &segs, &n, &err) == -1
            && strstr (err.text, "archive"),
        "a group-writable archive is refused: %s", err.text);
    chmod (archive, 0700);
}

static void test_compress (void)
{
    char src[1024], dst[1024], line[128], buf[4096];
    cs_error_t err;
    struct stat st;
    size_t total = 0;
    uint64_t seq, epoch;
    bool found;

    snprintf (src, sizeof (src), "%s/seg.jsonl", archive);
    snprintf (dst, sizeof (dst), "%s/seg.jsonl.gz", archive);
    int fd = open (src, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    for (int i = 1; i <= 1000; i++) {
        rec (line, sizeof (line), (uint64_t)i, 7);
        total += strlen (line);
        if (write (fd, line, strlen (line)) < 0)
            bail_out ("write");
    }
    if (write (fd, "{\"torn", 6) < 0)
        bail_out ("write");
    total += 6;
    close (fd);
    touch (archive, "seg.jsonl.gz.tmp", "stale");

    ok (mb_segment_compress (src, dst, &err) == 0, "compress a segment");
    ok (stat (src, &st) < 0 && errno == ENOENT, "the plain file is gone");
    snprintf (buf, sizeof (buf), "%s.tmp", dst);
    ok (stat (buf, &st) < 0 && errno == ENOENT, "no .tmp left");
    ok (stat (dst, &st) == 0 && (st.st_mode & 07777) == 0600,
        "the .gz is mode 0600");

    gzFile gz = gzopen (dst, "rb");
    size_t got = 0;
    int n;
    bool gzip = false;
    while (gz && (n = gzread (gz, buf, sizeof (buf))) > 0)
        got += (size_t)n;
    if (gz) {
        gzip = !gzdirect (gz);
        gzclose (gz);
    }
    ok (gzip && got == total, "zlib reads it back as gzip (%zu of %zu bytes)",
        got, total);

    ok (mb_gz_last_record (dst, MB_DEFAULT_MAX_RECORD, &seq, &epoch, &found,
                           &err) == 0
            && found && seq == 1000 && epoch == 7,
        "mb_gz_last_record finds seq 1000 epoch 7 past the torn tail");
    ok (mb_gz_last_record (dst, 40, &seq, &epoch, &found, &err) == 0 && !found,
        "with a tiny max_record no line qualifies");

    char cmd[2200];
    snprintf (cmd, sizeof (cmd),
              "zcat '%s' | head -n 1 | grep -q '\"seq\":1,' 2>/dev/null", dst);
    ok (system (cmd) == 0, "zcat reads it");

    ok (mb_segment_compress (src, dst, &err) == -1 && errno == ENOENT,
        "compressing a missing file fails: %s", err.text);
}

static void test_scan (void)
{
    char path[1024], line[128];
    uint64_t seq = 0, epoch = 0;
    bool found;
    struct stat st;
    int fd;

    snprintf (path, sizeof (path), "%s/scan.jsonl", tmp);
    fd = open (path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    ok (mb_scan_last_record (fd, 0, 1024, &seq, &epoch, &found) == 0 && !found,
        "empty file: no last record");
    ok (mb_scan_first_record (fd, 0, 1024, &seq, &epoch, &found) == 0
            && !found,
        "empty file: no first record");
    if (write (fd, "garbage\n", 8) < 0)
        bail_out ("write");
    for (int i = 5; i <= 20000; i++) {
        rec (line, sizeof (line), (uint64_t)i, 2);
        if (write (fd, line, strlen (line)) < 0)
            bail_out ("write");
    }
    /* a long corrupt line (over the 1024 limit), then a torn tail */
    char *big = malloc (200000);
    memset (big, 'x', 200000);
    big[199999] = '\n';
    if (write (fd, big, 200000) < 0 || write (fd, "\n\n{\"v\":1,\"seq\"", 14) < 0)
        bail_out ("write");
    free (big);
    fstat (fd, &st);
    ok (mb_scan_last_record (fd, (uint64_t)st.st_size, 1024, &seq, &epoch,
                             &found) == 0
            && found && seq == 20000 && epoch == 2,
        "last record found behind a long line and a torn tail (seq %ju)",
        (uintmax_t)seq);
    ok (mb_scan_first_record (fd, (uint64_t)st.st_size, 1024, &seq, &epoch,
                              &found) == 0
            && found && seq == 5,
        "first record found after a garbage line (seq %ju)", (uintmax_t)seq);
    ok (mb_scan_last_record (fd, 8, 1024, &seq, &epoch, &found) == 0 && !found,
        "region with only garbage: none");
    close (fd);
}

int main (void)
{
    char cmd[300];

    plan (NO_PLAN);
    snprintf (tmp, sizeof (tmp), "%s/mbseg.XXXXXX",
              getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp");
    if (!mkdtemp (tmp))
        bail_out ("mkdtemp: %s", strerror (errno));
    snprintf (stream, sizeof (stream), "%s/outbox/0.jsonl", tmp);
    snprintf (archive, sizeof (archive), "%s/archive", tmp);
    test_names ();
    test_list ();
    test_compress ();
    test_scan ();
    snprintf (cmd, sizeof (cmd), "rm -rf '%s'", tmp);
    if (system (cmd) != 0)
        diag ("cannot remove %s", tmp);
    done_testing ();
}
