/* test/writer.c - the stream writer: records, locking, recovery, rotation,
 * and a crash test (a writer SIGKILLed at random points, over and over).
 *
 * Streams are checked by reading their files directly, line by line, with
 * mb_record_parse (the reader is tested elsewhere).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/libtap/tap.h"
#include "mailbox/mailbox.h"

#define MB_PATH_MAX_TEST 4096

static char tmp[256];
static bool valgrind;

/* ---- reading a stream's files --------------------------------------------- */

struct line {
    char *text;             /* without '\n' (NUL-terminated copy) */
    size_t len;
    bool valid;
    struct mb_record rec;   /* json freed by lines_free */
    char error[160];
};

struct lines {
    struct line *v;
    size_t n, cap;
    bool unterminated;      /* the content did not end in '\n' */
};

static void lines_free (struct lines *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].valid)
            cJSON_Delete (l->v[i].rec.json);
        free (l->v[i].text);
    }
    free (l->v);
    memset (l, 0, sizeof (*l));
}

static void lines_add (struct lines *l, const char *buf, size_t len)
{
    cs_error_t err;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc (l->v, l->cap * sizeof (*l->v));
        if (!l->v)
            bail_out ("out of memory");
    }
    struct line *ln = &l->v[l->n++];
    memset (ln, 0, sizeof (*ln));
    ln->text = malloc (len + 1);
    memcpy (ln->text, buf, len);
    ln->text[len] = '\0';
    ln->len = len;
    err.text[0] = '\0';
    ln->valid = mb_record_parse (ln->text, len, MB_DEFAULT_MAX_RECORD,
                                 &ln->rec, &err) == 0;
    if (!ln->valid)
        snprintf (ln->error, sizeof (ln->error), "%s", err.text);
}

/* Append the lines of a (possibly gzip'd) file to l; returns its size
 * (uncompressed) or -1 if it cannot be read.
 */
static long long read_lines (const char *path, struct lines *l)
{
    gzFile gz = gzopen (path, "rb");
    char *data = NULL;
    size_t len = 0, cap = 0;
    int n;

    if (!gz)
        return -1;
    do {
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 131072;
            data = realloc (data, cap);
        }
        n = gzread (gz, data + len, (unsigned)(cap - len));
        if (n > 0)
            len += (size_t)n;
    } while (n > 0);
    gzclose (gz);
    if (n < 0) {
        free (data);
        return -1;
    }
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            lines_add (l, data + start, i - start);
            start = i + 1;
        }
    }
    l->unterminated = start < len;
    free (data);
    return (long long)len;
}

static long long file_size (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 ? (long long)st.st_size : -1;
}

static void stream_path (char *buf, size_t len, const char *sub)
{
    snprintf (buf, len, "%s/%s/outbox/0.jsonl", tmp, sub);
}

static void make_swarm (const char *sub)
{
    char path[512];
    snprintf (path, sizeof (path), "%s/%s", tmp, sub);
    if (mkdir (path, 0700) < 0 && errno != EEXIST)
        bail_out ("mkdir %s: %s", path, strerror (errno));
}

static int count_dir (const char *dir, const char *suffix)
{
    DIR *d = opendir (dir);
    struct dirent *de;
    int n = 0;
    size_t sl = strlen (suffix);
    while (d && (de = readdir (d))) {
        size_t l = strlen (de->d_name);
        if (l >= sl && !strcmp (de->d_name + l - sl, suffix))
            n++;
    }
    if (d)
        closedir (d);
    return n;
}

/* ---- basics --------------------------------------------------------------- */

static void test_basic (void)
{
    char path[512];
    cs_error_t err;
    mb_writer_t *w;
    uint64_t seq = 0;
    struct lines l = { 0 };
    struct stat st;

    make_swarm ("basic");
    stream_path (path, sizeof (path), "basic");
    w = mb_writer_open (path, NULL, &err);
    ok (w != NULL, "open a new stream (creating outbox/)");
    if (!w)
        bail_out ("%s", err.text);
    ok (stat (path, &st) == 0 && (st.st_mode & 07777) == 0600,
        "stream file is 0600");
    snprintf (err.text, sizeof (err.text), "%s/basic/outbox", tmp);
    ok (stat (err.text, &st) == 0 && (st.st_mode & 07777) == 0700,
        "outbox directory is 0700");
    cmp_ok (mb_writer_seq (w), "==", 0, "a new stream has seq 0");
    cmp_ok (mb_writer_epoch (w), "==", 1, "a new stream starts epoch 1");

    cJSON *p = cJSON_Parse ("{\"content\":\"h\xc3\xa9llo \\\"q\\\"\\n\","
                            "\"n\":[1,2,{\"x\":null}]}");
    ok (mb_writer_append (w, "user", p, &seq, &err) == 0 && seq == 1,
        "append a cJSON payload: seq 1");
    cJSON_Delete (p);
    ok (mb_writer_append (w, "heartbeat", NULL, &seq, &err) == 0 && seq == 2,
        "append with no payload: seq 2");
    cJSON *e = cJSON_CreateObject ();
    ok (mb_writer_append (w, "walltime_warning", e, &seq, &err) == 0
            && seq == 3,
        "append an empty object: seq 3");
    cJSON_Delete (e);
    const char *m = "\"msg\":{\"jsonrpc\":\"2.0\",\"seq\":5,\"type\":\"x\"},"
                    "\"k\":1";
    ok (mb_writer_append_members (w, "rpc", m, strlen (m), &seq, &err) == 0
            && seq == 4,
        "append members (nested seq/type are fine): seq 4");
    ok (mb_writer_append_members (w, "ready", "", 0, &seq, &err) == 0
            && seq == 5,
        "append empty members: seq 5");
    const char *nl = "\"a\":\n1,\n\"b\":\"x\"";
    ok (mb_writer_append_members (w, "nl", nl, strlen (nl), &seq, &err) == 0
            && seq == 6,
        "members with raw newlines between tokens: seq 6");
    ok (mb_writer_append (w, "we\"ird\\\n", NULL, &seq, &err) == 0 && seq == 7,
        "a type that needs escaping: seq 7");

    /* refusals do not consume a seq */
    cJSON *r = cJSON_Parse ("{\"a\":1,\"seq\":9}");
    errno = 0;
    ok (mb_writer_append (w, "x", r, &seq, &err) == -1 && errno == EINVAL
            && strstr (err.text, "\"seq\" is reserved"),
        "payload member seq refused: %s", err.text);
    cJSON_Delete (r);
    const char *names[] = { "v", "epoch", "ts", "type", NULL };
    for (int i = 0; names[i]; i++) {
        char buf[64];
        snprintf (buf, sizeof (buf), "\"x\":{\"v\":1}, \"%s\" : 2", names[i]);
        ok (mb_writer_append_members (w, "x", buf, strlen (buf), &seq, &err)
                    == -1
                && errno == EINVAL && strstr (err.text, "reserved"),
            "members naming %s refused: %s", names[i], err.text);
    }
    r = cJSON_CreateArray ();
    ok (mb_writer_append (w, "x", r, &seq, &err) == -1 && errno == EINVAL,
        "array payload refused: %s", err.text);
    cJSON_Delete (r);
    ok (mb_writer_append (w, "", NULL, &seq, &err) == -1 && errno == EINVAL,
        "empty type refused: %s", err.text);
    ok (mb_writer_append (w, "\xff", NULL, &seq, &err) == -1,
        "invalid UTF-8 type refused: %s", err.text);
    r = cJSON_CreateObject ();
    cJSON_AddStringToObject (r, "s", "bad \xc3");
    ok (mb_writer_append (w, "x", r, &seq, &err) == -1 && errno == EINVAL
            && strstr (err.text, "UTF-8"),
        "invalid UTF-8 in a payload string refused: %s", err.text);
    cJSON_Delete (r);
    ok (mb_writer_append_members (w, "x", "\"a\":\"\xe2\x82\"", 8, &seq, &err)
                == -1
            && strstr (err.text, "UTF-8"),
        "invalid UTF-8 in members refused: %s", err.text);
    ok (mb_writer_append_members (w, "x", "\"a\":\"\0\"", 7, &seq, &err) == -1
            && strstr (err.text, "NUL"),
        "NUL in members refused: %s", err.text);
    char *big = malloc (MB_DEFAULT_MAX_RECORD + 10);
    memset (big, 'a', MB_DEFAULT_MAX_RECORD + 10);
    memcpy (big, "\"big\":\"", 7);
    big[MB_DEFAULT_MAX_RECORD - 40] = '"';
    ok (mb_writer_append_members (w, "x", big, MB_DEFAULT_MAX_RECORD - 39,
                                  &seq, &err) == -1
            && errno == EMSGSIZE && strstr (err.text, "over the limit"),
        "a record over max_record refused: %s", err.text);
    r = cJSON_CreateObject ();
    big[MB_DEFAULT_MAX_RECORD - 40] = '\0';
    cJSON_AddStringToObject (r, "big", big + 7);
    ok (mb_writer_append (w, "x", r, &seq, &err) == -1 && errno == EMSGSIZE,
        "a cJSON payload over max_record refused: %s", err.text);
    /* just under the limit is fine */
    cJSON_Delete (r);
    r = cJSON_CreateObject ();
    big[MB_DEFAULT_MAX_RECORD - 120] = '\0';
    cJSON_AddStringToObject (r, "big", big + 7);
    ok (mb_writer_append (w, "big", r, &seq, &err) == 0 && seq == 8,
        "a large cJSON payload just under the limit is fine: seq 8");
    cJSON_Delete (r);
    free (big);
    cmp_ok (mb_writer_seq (w), "==", 8, "mb_writer_seq");
    ok (mb_writer_last_error (w) == NULL, "no rotation error");
    mb_writer_close (w);

    read_lines (path, &l);
    ok (l.n == 8 && !l.unterminated, "8 lines, all terminated");
    bool all = l.n == 8;
    for (size_t i = 0; i < l.n; i++) {
        if (!l.v[i].valid || l.v[i].rec.seq != i + 1 || l.v[i].rec.epoch != 1)
            all = false;
    }
    ok (all, "all lines are valid records, seq 1..8, epoch 1");
    if (l.n == 8) {
        const cJSON *c = cJSON_GetObjectItem (l.v[0].rec.json, "content");
        ok (cJSON_IsString (c)
                && !strcmp (c->valuestring, "h\xc3\xa9llo \"q\"\n"),
            "payload string survives");
        ok (!strncmp (l.v[0].text, "{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":", 30),
            "envelope order: v, seq, epoch, ts: %.60s", l.v[0].text);
        struct timespec now;
        clock_gettime (CLOCK_REALTIME, &now);
        ok (l.v[0].rec.ts > now.tv_sec - 60 && l.v[0].rec.ts <= now.tv_sec + 1,
            "ts is now (%.6f)", l.v[0].rec.ts);
        is (l.v[1].text + strlen (l.v[1].text) - 19, "\"type\":\"heartbeat\"}",
            "no payload: the type closes the record");
        is (l.v[2].rec.type, "walltime_warning", "empty payload");
        ok (cJSON_GetObjectItem (l.v[3].rec.json, "k") != NULL
                && cJSON_IsObject (cJSON_GetObjectItem (l.v[3].rec.json,
                                                        "msg")),
            "members are in the record");
        ok (cJSON_GetObjectItem (l.v[5].rec.json, "a") != NULL
                && !strchr (l.v[5].text, '\n'),
            "raw newlines in members became spaces");
        is (l.v[6].rec.type, "we\"ird\\\n", "escaped type round trip");
        cmp_ok (strlen (l.v[7].text), "<", MB_DEFAULT_MAX_RECORD,
                "big record under the limit");
    }
    lines_free (&l);

    /* reopen: seq continues, epoch grows */
    w = mb_writer_open (path, NULL, &err);
    ok (w && mb_writer_seq (w) == 8 && mb_writer_epoch (w) == 2,
        "reopen: seq 8 recovered, epoch 2");
    ok (mb_writer_append (w, "x", NULL, &seq, &err) == 0 && seq == 9,
        "next append is seq 9");
    mb_writer_close (w);
    read_lines (path, &l);
    ok (l.n == 9 && l.v[8].valid && l.v[8].rec.epoch == 2
            && l.v[8].rec.seq == 9,
        "record 9 has epoch 2");
    lines_free (&l);
}

/* ---- locking -------------------------------------------------------------- */

static void test_lock (void)
{
    char path[512], want[128], lock[600];
    cs_error_t err;
    mb_writer_t *w1, *w2;

    make_swarm ("lock");
    stream_path (path, sizeof (path), "lock");
    w1 = mb_writer_open (path, NULL, &err);
    ok (w1 != NULL, "first writer");
    errno = 0;
    w2 = mb_writer_open (path, NULL, &err);
    snprintf (want, sizeof (want), "already has a writer (pid %ld)",
              (long)getpid ());
    ok (w2 == NULL && errno == EBUSY && strstr (err.text, want)
            && strstr (err.text, path),
        "second writer: EBUSY: %s", err.text);
    snprintf (lock, sizeof (lock), "%s.lock", path);
    struct stat st;
    ok (stat (lock, &st) == 0 && (st.st_mode & 07777) == 0600,
        "lock file <path>.lock is 0600");

    pid_t pid = fork ();
    if (pid == 0) {
        mb_writer_t *w = mb_writer_open (path, NULL, NULL);
        _exit (w == NULL && errno == EBUSY ? 0 : 1);
    }
    int status;
    waitpid (pid, &status, 0);
    ok (WIFEXITED (status) && WEXITSTATUS (status) == 0,
        "a writer in another process gets EBUSY");
    mb_writer_close (w1);
    w2 = mb_writer_open (path, NULL, &err);
    ok (w2 != NULL, "after close, a new writer may open");
    mb_writer_close (w2);

    /* a writer killed with SIGKILL releases the lock */
    int pfd[2];
    if (pipe (pfd) < 0)
        bail_out ("pipe");
    pid = fork ();
    if (pid == 0) {
        mb_writer_t *w = mb_writer_open (path, NULL, NULL);
        if (write (pfd[1], w ? "y" : "n", 1) < 0)
            _exit (1);
        pause ();
        _exit (0);
    }
    char c = 0;
    if (read (pfd[0], &c, 1) != 1)
        c = 0;
    w2 = mb_writer_open (path, NULL, &err);
    ok (c == 'y' && w2 == NULL && errno == EBUSY, "child holds the lock");
    kill (pid, SIGKILL);
    waitpid (pid, &status, 0);
    w2 = mb_writer_open (path, NULL, &err);
    ok (w2 != NULL, "its death releases it");
    mb_writer_close (w2);
    close (pfd[0]);
    close (pfd[1]);
}

/* ---- torn tails ------------------------------------------------------------ */

static void test_torn (void)
{
    char path[512];
    cs_error_t err;
    mb_writer_t *w;
    uint64_t seq;
    struct lines l = { 0 };

    make_swarm ("torn");
    stream_path (path, sizeof (path), "torn");
    w = mb_writer_open (path, NULL, &err);
    for (int i = 0; i < 3; i++)
        mb_writer_append (w, "x", NULL, NULL, &err);
    mb_writer_close (w);

    int fd = open (path, O_WRONLY | O_APPEND);
    const char *frag = "{\"v\":1,\"seq\":4,\"epoch\":1,\"ts\":17000";
    if (write (fd, frag, strlen (frag)) < 0)
        bail_out ("write");
    close (fd);
    long long before = file_size (path);

    w = mb_writer_open (path, NULL, &err);
    ok (w != NULL, "reopen a stream with a torn tail");
    ok (file_size (path) == before + 1, "exactly one '\\n' was appended");
    ok (w && mb_writer_seq (w) == 3 && mb_writer_epoch (w) == 2,
        "seq 3 and epoch 1 recovered past the fragment (epoch now 2)");
    ok (mb_writer_append (w, "x", NULL, &seq, &err) == 0 && seq == 4,
        "next record is seq 4");
    mb_writer_close (w);
    read_lines (path, &l);
    ok (l.n == 5 && !l.unterminated, "5 lines, all terminated");
    if (l.n == 5) {
        ok (!l.v[3].valid && !strcmp (l.v[3].text, frag),
            "line 4 is the fragment, intact (%s)", l.v[3].error);
        ok (l.v[4].valid && l.v[4].rec.seq == 4 && l.v[4].rec.epoch == 2,
            "line 5 is record 4 of epoch 2, not glued to the fragment");
    }
    lines_free (&l);

    /* a fragment and nothing else: seq from nothing, the stream is new */
    char p2[512];
    snprintf (p2, sizeof (p2), "%s/torn/outbox/1.jsonl", tmp);
    fd = open (p2, O_WRONLY | O_CREAT, 0600);
    if (write (fd, "{\"v\":1,", 7) < 0)
        bail_out ("write");
    close (fd);
    w = mb_writer_open (p2, NULL, &err);
    ok (w && mb_writer_seq (w) == 0 && mb_writer_epoch (w) == 1
            && file_size (p2) == 8,
        "a stream holding only a fragment: sealed, seq 0, epoch 1");
    mb_writer_close (w);

    /* short write: RLIMIT_FSIZE makes write(2) write part of the record */
    struct rlimit old, lim;
    uint64_t s2 = 0;
    w = mb_writer_open (path, NULL, &err);
    signal (SIGXFSZ, SIG_IGN);
    getrlimit (RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)file_size (path) + 20;
    setrlimit (RLIMIT_FSIZE, &lim);
    errno = 0;
    int rc = mb_writer_append (w, "x", NULL, &seq, &err);
    int e = errno;
    setrlimit (RLIMIT_FSIZE, &old);
    ok (rc == -1 && e == EFBIG && strstr (err.text, "short write"),
        "short write fails the append: %s", err.text);
    ok (mb_writer_seq (w) == 4, "and does not consume the seq");
    ok (mb_writer_append (w, "x", NULL, &s2, &err) == 0 && s2 == 5,
        "the next append gets seq 5");

    /* a short write that misses only the newline: the record counts */
    long long sz = file_size (path);
    mb_writer_append (w, "x", NULL, &s2, &err);     /* seq 6 */
    long long reclen = file_size (path) - sz;
    lim.rlim_cur = (rlim_t)(file_size (path) + reclen - 1);
    setrlimit (RLIMIT_FSIZE, &lim);
    errno = 0;
    rc = mb_writer_append (w, "x", NULL, &s2, &err);   /* seq 7 */
    e = errno;
    setrlimit (RLIMIT_FSIZE, &old);
    ok (rc == -1 && e == EFBIG && s2 == 7 && mb_writer_seq (w) == 7
            && strstr (err.text, "without its newline"),
        "a record missing only its newline is reported and counted: %s",
        err.text);
    ok (mb_writer_append (w, "x", NULL, &s2, &err) == 0 && s2 == 8,
        "the next append gets seq 8");
    mb_writer_close (w);
    read_lines (path, &l);
    ok (l.n == 10 && !l.unterminated && !l.v[5].valid && l.v[5].len == 20
            && l.v[6].valid && l.v[6].rec.seq == 5,
        "the 20-byte fragment was sealed before record 5");
    ok (l.n == 10 && l.v[7].valid && l.v[7].rec.seq == 6 && l.v[8].valid
            && l.v[8].rec.seq == 7 && l.v[9].valid && l.v[9].rec.seq == 8,
        "record 7 was completed by the newline written before record 8");
    lines_free (&l);
    signal (SIGXFSZ, SIG_DFL);
}

/* ---- rotation ---------------------------------------------------------------- */

/* Check that a sealed segment holds exactly records first..last. */
static bool segment_ok (const struct mb_segment *s)
{
    struct lines l = { 0 };
    bool good = read_lines (s->path, &l) >= 0 && !l.unterminated && l.n > 0;
    uint64_t want = s->first;
    for (size_t i = 0; good && i < l.n; i++) {
        if (!l.v[i].valid)
            continue;
        if (l.v[i].rec.seq != want++)
            good = false;
    }
    if (want != s->last + 1)
        good = false;
    lines_free (&l);
    return good;
}

static void test_rotation (void)
{
    char path[512], archive[512];
    cs_error_t err;
    mb_writer_t *w;
    struct mb_options opt;
    struct mb_segment *segs = NULL;
    size_t n = 0;
    struct lines l = { 0 };

    make_swarm ("rot");
    stream_path (path, sizeof (path), "rot");
    snprintf (archive, sizeof (archive), "%s/rot/archive", tmp);
    mb_options_init (&opt);
    opt.rotate_records = 10;
    w = mb_writer_open (path, &opt, &err);
    for (int i = 0; i < 25; i++) {
        char m[32];
        snprintf (m, sizeof (m), "\"i\":%d", i + 1);
        if (mb_writer_append_members (w, "r", m, strlen (m), NULL, &err) < 0)
            diag ("%s", err.text);
    }
    ok (mb_writer_settle (w) == 0, "mb_writer_settle: compression done");
    ok (mb_writer_last_error (w) == NULL, "no rotation error");
    ok (mb_segments_list (path, &segs, &n, &err) == 0 && n == 2,
        "two sealed segments after 25 records at 10 per segment");
    if (n == 2) {
        ok (segs[0].first == 1 && segs[0].last == 10 && segs[0].compressed
                && strstr (segs[0].path, "/archive/outbox-0."
                                         "00000000000000000001-"
                                         "00000000000000000010.jsonl.gz"),
            "segment 1: %s", segs[0].path);
        ok (segs[1].first == 11 && segs[1].last == 20 && segs[1].compressed,
            "segment 2: 11-20");
        ok (segment_ok (&segs[0]) && segment_ok (&segs[1]),
            "zlib reads the right records from both");
        gzFile gz = gzopen (segs[0].path, "rb");
        char b[4];
        ok (gz && gzread (gz, b, 1) == 1 && !gzdirect (gz),
            "segments are gzip");
        if (gz)
            gzclose (gz);
        struct stat st;
        ok (stat (segs[0].path, &st) == 0 && (st.st_mode & 07777) == 0600,
            "segments are 0600");
    }
    free (segs);
    read_lines (path, &l);
    ok (l.n == 5 && l.v[0].valid && l.v[0].rec.seq == 21, "active: 21..25");
    lines_free (&l);
    ok (count_dir (archive, ".jsonl") == 0 && count_dir (archive, ".tmp") == 0,
        "no plain or temporary files in archive/");
    for (int i = 0; i < 5; i++)
        mb_writer_append (w, "r", NULL, NULL, &err);
    mb_writer_close (w);
    ok (file_size (path) == 0, "rotation at 30 leaves the active segment empty");

    /* seq and epoch from the archive */
    w = mb_writer_open (path, &opt, &err);
    ok (w && mb_writer_seq (w) == 30 && mb_writer_epoch (w) == 2,
        "reopen with an empty active segment: seq 30 from the segment name, "
        "epoch from its last record");
    mb_writer_close (w);

    /* rotation by size */
    char p2[512];
    snprintf (p2, sizeof (p2), "%s/rot/outbox/1.jsonl", tmp);
    mb_options_init (&opt);
    opt.rotate_bytes = 1000;
    w = mb_writer_open (p2, &opt, &err);
    for (int i = 0; i < 100; i++)
        mb_writer_append_members (w, "sized", "\"pad\":\"0123456789\"", 18,
                                  NULL, &err);
    mb_writer_settle (w);
    ok (mb_segments_list (p2, &segs, &n, &err) == 0 && n >= 5,
        "rotation by size: %zu segments", n);
    bool all = true;
    uint64_t next = 1;
    for (size_t i = 0; i < n; i++) {
        if (!segs[i].compressed || segs[i].first != next || !segment_ok (&segs[i]))
            all = false;
        next = segs[i].last + 1;
    }
    ok (all, "segments are contiguous and hold what their names say");
    ok (file_size (p2) < 1000, "the active segment is under the limit");
    free (segs);
    mb_writer_close (w);

    /* lowering the threshold seals an oversized segment at open */
    opt.rotate_bytes = 10;
    w = mb_writer_open (p2, &opt, &err);
    ok (w && file_size (p2) == 0, "open seals a segment over the threshold");
    mb_writer_close (w);
}

static void put_file (const char *path, const char *content)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write (fd, content, strlen (content)) < 0)
        bail_out ("write %s", path);
    close (fd);
}

static void test_interrupted (void)
{
    char path[512], archive[512], plain[800], gz[820], tmpf[820];
    cs_error_t err;
    mb_writer_t *w;
    struct mb_options opt;
    struct stat st;
    struct mb_segment *segs = NULL;
    size_t n = 0;
    uint64_t seq;

    make_swarm ("intr");
    stream_path (path, sizeof (path), "intr");
    snprintf (archive, sizeof (archive), "%s/intr/archive", tmp);
    mb_options_init (&opt);
    opt.rotate_records = 5;
    w = mb_writer_open (path, &opt, &err);
    for (int i = 0; i < 12; i++)
        mb_writer_append (w, "x", NULL, NULL, &err);
    mb_writer_close (w);    /* segments 1-5, 6-10; active 11-12 */

    /* crash after renaming the active segment, before creating a new one */
    snprintf (plain, sizeof (plain),
              "%s/outbox-0.00000000000000000011-00000000000000000012.jsonl",
              archive);
    snprintf (gz, sizeof (gz), "%s.gz", plain);
    snprintf (tmpf, sizeof (tmpf), "%s.gz.tmp", plain);
    ok (rename (path, plain) == 0, "simulate: active renamed into archive/");
    put_file (tmpf, "half a gzip");
    w = mb_writer_open (path, &opt, &err);
    ok (w != NULL, "open finishes the rotation");
    ok (stat (gz, &st) == 0 && stat (plain, &st) < 0 && stat (tmpf, &st) < 0,
        "plain segment compressed, .tmp removed");
    ok (w && mb_writer_seq (w) == 12 && mb_writer_epoch (w) == 2,
        "seq 12 and epoch 2 from the archive");
    ok (mb_writer_append (w, "x", NULL, &seq, &err) == 0 && seq == 13,
        "appends continue at 13");
    mb_writer_close (w);

    /* crash after the .gz rename, before removing the plain file */
    ok (mb_segments_list (path, &segs, &n, &err) == 0 && n == 3,
        "three segments");
    char copy[MB_PATH_MAX_TEST];
    if (n == 3) {
        snprintf (copy, sizeof (copy), "%s", segs[0].path);
        copy[strlen (copy) - 3] = '\0';     /* the plain twin */
        put_file (copy, "plain twin\n");
    }
    free (segs);
    w = mb_writer_open (path, &opt, &err);
    ok (w && stat (copy, &st) < 0, "a plain twin of a .gz is removed");
    mb_writer_close (w);

    /* crash in the middle of compressing: plain and .tmp both there */
    snprintf (plain, sizeof (plain),
              "%s/outbox-0.00000000000000000013-00000000000000000015.jsonl",
              archive);
    snprintf (gz, sizeof (gz), "%s.gz", plain);
    snprintf (tmpf, sizeof (tmpf), "%s.gz.tmp", plain);
    w = mb_writer_open (path, &opt, &err);
    mb_writer_append (w, "x", NULL, NULL, &err);
    mb_writer_append (w, "x", NULL, NULL, &err);
    mb_writer_close (w);
    ok (rename (path, plain) == 0, "simulate: sealed segment 13-15");
    put_file (path, "");
    put_file (tmpf, "junk");
    w = mb_writer_open (path, &opt, &err);
    ok (w && stat (gz, &st) == 0 && stat (plain, &st) < 0
            && stat (tmpf, &st) < 0,
        "compression redone, leftovers removed");
    ok (w && mb_writer_seq (w) == 15 && mb_writer_epoch (w) == 4,
        "seq 15, epoch 4 (seq %ju epoch %ju)",
        (uintmax_t)mb_writer_seq (w), (uintmax_t)mb_writer_epoch (w));
    mb_writer_close (w);
    ok (mb_segments_list (path, &segs, &n, &err) == 0 && n == 4,
        "four segments");
    bool all = true;
    for (size_t i = 0; i < n; i++)
        if (!segs[i].compressed || !segment_ok (&segs[i]))
            all = false;
    ok (all, "all compressed and correct");
    free (segs);

    /* a sealed segment that cannot be compressed does not stop the writer */
    snprintf (plain, sizeof (plain),
              "%s/outbox-0.00000000000000000001-00000000000000000002.jsonl",
              archive);
    if (symlink ("/etc/passwd", plain) < 0)
        bail_out ("symlink");
    w = mb_writer_open (path, &opt, &err);
    ok (w != NULL && mb_writer_last_error (w) != NULL
            && strstr (mb_writer_last_error (w), "symbolic link"),
        "open succeeds, the problem is reported: %s",
        w && mb_writer_last_error (w) ? mb_writer_last_error (w) : "(none)");
    mb_writer_close (w);
    unlink (plain);
}

/* ---- safety -------------------------------------------------------------- */

static void test_safety (void)
{
    char path[600], dir[512], target[512];
    cs_error_t err;
    mb_writer_t *w;

    make_swarm ("safe");
    snprintf (dir, sizeof (dir), "%s/safe/outbox", tmp);
    mkdir (dir, 0700);
    snprintf (path, sizeof (path), "%s/0.jsonl", dir);
    snprintf (target, sizeof (target), "%s/elsewhere", tmp);
    put_file (target, "");
    if (symlink (target, path) < 0)
        bail_out ("symlink");
    w = mb_writer_open (path, NULL, &err);
    ok (w == NULL && strstr (err.text, path)
            && strstr (err.text, "symbolic link"),
        "symlinked stream refused: %s", err.text);

    snprintf (path, sizeof (path), "%s/1.jsonl", dir);
    chmod (dir, 0750 | 020);
    w = mb_writer_open (path, NULL, &err);
    ok (w == NULL && errno == EPERM && strstr (err.text, dir)
            && strstr (err.text, "writable by group"),
        "group-writable directory refused: %s", err.text);
    chmod (dir, 0700);

    snprintf (path, sizeof (path), "%s/2.jsonl", dir);
    put_file (path, "");
    if (geteuid () == 0 && chown (path, 65534, 65534) == 0) {
        w = mb_writer_open (path, NULL, &err);
        ok (w == NULL && errno == EPERM && strstr (err.text, path)
                && strstr (err.text, "owned by uid 65534"),
            "stream owned by another user refused: %s", err.text);
    }
    else
        skip (1, "not root: cannot chown");

    snprintf (path, sizeof (path), "%s/safe/outbox/x.json", tmp);
    w = mb_writer_open (path, NULL, &err);
    ok (w == NULL && errno == EINVAL, "a path not ending in .jsonl: %s",
        err.text);
}

/* ---- a stream file replaced under the writer ----------------------------- */

static void test_replaced (void)
{
    char path[512], copy[600], target[600], cmd[2600];
    cs_error_t err;
    mb_writer_t *w;
    uint64_t seq = 0;
    struct lines l = { 0 };

    make_swarm ("repl");
    stream_path (path, sizeof (path), "repl");
    snprintf (copy, sizeof (copy), "%s.copy", path);
    if (!(w = mb_writer_open (path, NULL, &err)))
        bail_out ("open: %s", err.text);
    ok (mb_writer_append (w, "a", NULL, &seq, &err) == 0 && seq == 1,
        "first record written");

    /* an identical copy moved over the stream (cp -p, then mv) */
    snprintf (cmd, sizeof (cmd), "cp -p '%s' '%s' && mv '%s' '%s'", path,
              copy, copy, path);
    if (system (cmd) != 0)
        bail_out ("%s", cmd);
    ok (mb_writer_append (w, "b", NULL, &seq, &err) == 0 && seq == 2,
        "a stream replaced by a copy: the append goes on");
    read_lines (path, &l);
    ok (l.n == 2 && l.v[1].valid && l.v[1].rec.seq == 2
            && l.v[1].rec.epoch == l.v[0].rec.epoch,
        "... into the new file, same epoch, next seq");
    lines_free (&l);

    /* removed: nothing goes to the unlinked file */
    unlink (path);
    ok (mb_writer_append (w, "c", NULL, &seq, &err) < 0 && errno == ESTALE
            && strstr (err.text, "removed"),
        "a removed stream is not appended to: %s", err.text);

    /* a symlink in its place */
    snprintf (target, sizeof (target), "%s/repl/elsewhere", tmp);
    put_file (target, "");
    if (symlink (target, path) < 0)
        bail_out ("symlink");
    ok (mb_writer_append (w, "c", NULL, &seq, &err) < 0 && errno == ESTALE
            && strstr (err.text, "symlink"),
        "a stream replaced by a symlink is refused: %s", err.text);
    ok (file_size (target) == 0, "... and nothing reached the link's target");

    /* a valid stream is back: the writer resumes after its own last seq */
    unlink (path);
    put_file (path, "");
    chmod (path, 0600);
    ok (mb_writer_append (w, "d", NULL, &seq, &err) == 0 && seq == 3,
        "a new empty stream file: appends resume at seq 3");
    mb_writer_close (w);
}

/* ---- fsync policies -------------------------------------------------------- */

static void test_fsync (void)
{
    char path[512];
    cs_error_t err;
    mb_writer_t *w;
    struct mb_options opt;

    make_swarm ("sync");
    stream_path (path, sizeof (path), "sync");
    mb_options_init (&opt);
    opt.fsync = MB_FSYNC_ALWAYS;
    w = mb_writer_open (path, &opt, &err);
    ok (w && mb_writer_append (w, "x", NULL, NULL, &err) == 0,
        "fsync always: append");
    ok (mb_writer_sync_due (w) == -1, "sync_due is -1 unless interval");
    mb_writer_close (w);

    opt.fsync = MB_FSYNC_INTERVAL;
    opt.fsync_interval = 0.2;
    w = mb_writer_open (path, &opt, &err);
    ok (mb_writer_sync_due (w) == -1, "interval: nothing pending");
    mb_writer_append (w, "x", NULL, NULL, &err);
    double due = mb_writer_sync_due (w);
    ok (due > 0 && due <= 0.2, "interval: due in %.3f s", due);
    usleep (250000);
    ok (mb_writer_sync_due (w) == 0, "interval: due now");
    mb_writer_append (w, "x", NULL, NULL, &err);
    ok (mb_writer_sync_due (w) == -1, "an append past the interval synced");
    mb_writer_append (w, "x", NULL, NULL, &err);
    ok (mb_writer_sync_due (w) > 0, "pending again");
    ok (mb_writer_sync (w) == 0 && mb_writer_sync_due (w) == -1,
        "mb_writer_sync clears it");
    mb_writer_close (w);
}

/* ---- speed (informational) ----------------------------------------------- */

static void test_speed (void)
{
    char path[512];
    cs_error_t err;
    mb_writer_t *w;
    struct timespec t0, t1;
    int n = valgrind ? 2000 : 200000;
    const char *m = "\"msg\":{\"jsonrpc\":\"2.0\",\"method\":\"item/agentMessage/"
                    "delta\",\"params\":{\"delta\":\"hello world\"}}";
    size_t mlen = strlen (m);
    int fails = 0;

    make_swarm ("speed");
    stream_path (path, sizeof (path), "speed");
    w = mb_writer_open (path, NULL, &err);
    clock_gettime (CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++)
        if (mb_writer_append_members (w, "rpc", m, mlen, NULL, &err) < 0)
            fails++;
    clock_gettime (CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    ok (fails == 0 && mb_writer_seq (w) == (uint64_t)n,
        "%d appends (fsync never): %.0f records/s", n, n / s);
    mb_writer_close (w);
}

/* ---- crash test ------------------------------------------------------------ */

static void crash_child (const char *path, const struct mb_options *opt,
                         int fd)
{
    cs_error_t err;
    mb_writer_t *w = mb_writer_open (path, opt, &err);
    char m[64];
    if (!w) {
        uint64_t marker = UINT64_MAX;
        fprintf (stderr, "# crash child: %s\n", err.text);
        if (write (fd, &marker, sizeof (marker)) < 0)
            _exit (2);
        _exit (1);
    }
    /* now and then a large record, which a SIGKILL can tear */
    size_t biglen = 128 * 1024;
    char *big = malloc (biglen);
    if (!big)
        _exit (4);
    memset (big, 'x', biglen);
    memcpy (big, "\"pad\":\"", 7);
    big[biglen - 1] = '"';
    for (int i = 0;; i++) {
        uint64_t seq;
        int n = snprintf (m, sizeof (m), "\"pid\":%d,\"i\":%d", (int)getpid (),
                          i);
        int rc = i % 61 == 7
                     ? mb_writer_append_members (w, "big", big, biglen, &seq,
                                                 &err)
                     : mb_writer_append_members (w, "crash", m, (size_t)n,
                                                 &seq, &err);
        if (rc == 0) {
            if (write (fd, &seq, sizeof (seq)) < 0)
                _exit (3);
        }
    }
}

/* Acknowledgements from a crash child: the seqs it appended, 8 bytes each,
 * or UINT64_MAX if it could not open the writer.
 */
struct ack {
    int fd;
    char buf[64];
    size_t have;
    uint64_t count, max;
    bool open_error, eof;
};

/* Read until count reaches target or the pipe reaches EOF. */
static void ack_read (struct ack *a, uint64_t target)
{
    while (!a->eof && a->count < target) {
        ssize_t n = read (a->fd, a->buf + a->have, sizeof (a->buf) - a->have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            a->eof = true;
            break;
        }
        a->have += (size_t)n;
        while (a->have >= sizeof (uint64_t)) {
            uint64_t s;
            memcpy (&s, a->buf, sizeof (s));
            if (s == UINT64_MAX)
                a->open_error = true;
            else if (s > a->max)
                a->max = s;
            a->count++;
            memmove (a->buf, a->buf + sizeof (s), a->have - sizeof (s));
            a->have -= sizeof (s);
        }
    }
}

static void test_crash (void)
{
    char path[512], archive[512];
    struct mb_options opt;
    int iterations = valgrind ? 200 : 250;
    uint64_t max_acked = 0;
    int open_errors = 0;
    unsigned seed = (unsigned)time (NULL) ^ (unsigned)getpid ();

    if (getenv ("MB_CRASH_SEED"))
        seed = (unsigned)strtoul (getenv ("MB_CRASH_SEED"), NULL, 10);
    diag ("crash test seed %u (set MB_CRASH_SEED to repeat)", seed);
    srand (seed);
    make_swarm ("crash");
    stream_path (path, sizeof (path), "crash");
    snprintf (archive, sizeof (archive), "%s/crash/archive", tmp);
    mb_options_init (&opt);
    opt.rotate_records = 97;
    opt.rotate_bytes = 16384;

    for (int i = 0; i < iterations; i++) {
        int pfd[2];
        if (pipe (pfd) < 0)
            bail_out ("pipe");
        pid_t pid = fork ();
        if (pid < 0)
            bail_out ("fork");
        if (pid == 0) {
            close (pfd[0]);
            crash_child (path, &opt, pfd[1]);
        }
        close (pfd[1]);
        /* Kill at a random point.  Mostly after the child acknowledged a
         * random number of records (so that every run exercises many
         * incarnations however loaded the machine is), plus a random
         * delay; otherwise after a random delay alone, which often lands
         * in open and recovery.
         */
        struct ack a = { .fd = pfd[0] };
        useconds_t delay;
        if (rand () % 100 < 70) {
            ack_read (&a, 1 + (uint64_t)(rand () % (valgrind ? 60 : 300)));
            delay = (useconds_t)(rand () % 2000);
        }
        else
            delay = rand () % 4 == 0 ? 0 : (useconds_t)(rand () % 5000);
        if (valgrind)
            delay *= 3;
        if (delay)
            usleep (delay);
        kill (pid, SIGKILL);
        int status;
        waitpid (pid, &status, 0);
        ack_read (&a, UINT64_MAX);
        if (a.open_error)
            open_errors++;
        if (a.max > max_acked)
            max_acked = a.max;
        close (pfd[0]);
    }
    ok (open_errors == 0, "no child failed to open the writer (%d did)",
        open_errors);

    /* a last, clean incarnation */
    cs_error_t err;
    mb_writer_t *w = mb_writer_open (path, &opt, &err);
    uint64_t last = 0;
    ok (w != NULL, "a clean writer opens after %d kills", iterations);
    if (!w)
        diag ("%s", err.text);
    int arc = w ? mb_writer_append (w, "final", NULL, &last, &err) : -1;
    ok (arc == 0, "and appends seq %ju", (uintmax_t)last);
    mb_writer_close (w);

    ok (count_dir (archive, ".jsonl") == 0 && count_dir (archive, ".tmp") == 0,
        "no interrupted rotation left in archive/");

    /* read everything back */
    struct mb_segment *segs = NULL;
    size_t nseg = 0;
    struct lines l = { 0 };
    bool unterminated = false, names_ok = true;
    if (mb_segments_list (path, &segs, &nseg, &err) < 0)
        bail_out ("%s", err.text);
    for (size_t i = 0; i < nseg; i++) {
        size_t from = l.n;
        if (read_lines (segs[i].path, &l) < 0)
            names_ok = false;
        if (l.unterminated)
            unterminated = true;
        /* the name says which records are inside */
        uint64_t f = 0, la = 0;
        for (size_t k = from; k < l.n; k++) {
            if (!l.v[k].valid)
                continue;
            if (!f)
                f = l.v[k].rec.seq;
            la = l.v[k].rec.seq;
        }
        if (f != segs[i].first || la != segs[i].last || !segs[i].compressed)
            names_ok = false;
    }
    read_lines (path, &l);
    if (l.unterminated)
        unterminated = true;
    free (segs);

    uint64_t expect = 1, epoch = 0, records = 0, corrupt = 0, epochs = 0;
    bool continuous = true, epochs_ok = true;
    for (size_t i = 0; i < l.n; i++) {
        if (!l.v[i].valid) {
            corrupt++;
            continue;
        }
        records++;
        if (l.v[i].rec.seq != expect) {
            if (continuous)
                diag ("line %zu: seq %ju, expected %ju", i,
                      (uintmax_t)l.v[i].rec.seq, (uintmax_t)expect);
            continuous = false;
        }
        expect = l.v[i].rec.seq + 1;
        if (l.v[i].rec.epoch != epoch) {
            if (l.v[i].rec.epoch != epoch + 1) {
                if (epochs_ok)
                    diag ("line %zu: epoch %ju after %ju", i,
                          (uintmax_t)l.v[i].rec.epoch, (uintmax_t)epoch);
                epochs_ok = false;
            }
            epoch = l.v[i].rec.epoch;
            epochs++;
        }
    }
    diag ("%ju segments, %ju records, %ju epochs, %ju corrupt (torn) lines, "
          "highest acknowledged seq %ju",
          (uintmax_t)nseg, (uintmax_t)records, (uintmax_t)epochs,
          (uintmax_t)corrupt, (uintmax_t)max_acked);
    ok (!unterminated, "every file ends with '\\n'");
    ok (continuous, "seq is continuous across %ju records and all restarts",
        (uintmax_t)records);
    ok (epochs_ok, "each incarnation's epoch is the previous one plus one");
    ok (records == last && l.n > 0 && l.v[l.n - 1].valid
            && l.v[l.n - 1].rec.seq == last,
        "the last record is the final one, seq %ju", (uintmax_t)last);
    ok (max_acked < last, "every acknowledged append (up to %ju) is there",
        (uintmax_t)max_acked);
    ok (epochs > 100 && nseg > 20,
        "the test exercised many incarnations and rotations");
    ok (names_ok, "every sealed segment is gzip and its name matches its "
        "records");
    lines_free (&l);
}

/* ---- batches ---------------------------------------------------------------- */

static void test_batch (void)
{
    char path[512];
    cs_error_t err;
    mb_writer_t *w;
    uint64_t first = 0;
    size_t done = 9;
    struct lines l = { 0 };
    struct mb_members m[3] = {
        { "\"k\":1", 5 }, { "\"k\":2", 5 }, { "\"k\":3", 5 },
    };
    struct mb_members bad[3] = {
        { "\"k\":4", 5 }, { "\"seq\":5", 7 }, { "\"k\":6", 5 },
    };
    struct rlimit old, lim;
    long long sz, reclen;
    int rc, e;

    make_swarm ("batch");
    stream_path (path, sizeof (path), "batch");
    w = mb_writer_open (path, NULL, &err);
    ok (w && mb_writer_append_batch (w, "b", m, 3, &first, &done, &err) == 0
            && first == 1 && done == 3 && mb_writer_seq (w) == 3,
        "a batch of 3 records: seqs 1..3");
    ok (mb_writer_append_batch (w, "b", m, 0, &first, &done, &err) == 0
            && done == 0 && mb_writer_seq (w) == 3,
        "an empty batch writes nothing");
    rc = mb_writer_append_batch (w, "b", bad, 3, &first, &done, &err);
    ok (rc == -1 && first == 4 && done == 1 && mb_writer_seq (w) == 4
            && strstr (err.text, "record 1") && strstr (err.text, "reserved"),
        "a record that cannot be made stops the batch there: %s", err.text);

    /* short writes: RLIMIT_FSIZE cuts the one write(2) */
    sz = file_size (path);
    mb_writer_append_members (w, "b", "\"k\":7", 5, NULL, &err);   /* 5 */
    reclen = file_size (path) - sz;
    signal (SIGXFSZ, SIG_IGN);
    getrlimit (RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)(file_size (path) + reclen + 10);
    setrlimit (RLIMIT_FSIZE, &lim);
    errno = 0;
    rc = mb_writer_append_batch (w, "b", m, 3, &first, &done, &err);
    e = errno;
    setrlimit (RLIMIT_FSIZE, &old);
    ok (rc == -1 && e == EFBIG && first == 6 && done == 1
            && mb_writer_seq (w) == 6 && strstr (err.text, "1 of 3"),
        "a short write: the whole records count, the rest not: %s",
        err.text);
    /* (the fragment's newline did not fit: the next write seals it) */
    lim.rlim_cur = (rlim_t)(file_size (path) + 1 + 2 * reclen - 1);
    setrlimit (RLIMIT_FSIZE, &lim);
    rc = mb_writer_append_batch (w, "b", m, 3, &first, &done, &err);
    setrlimit (RLIMIT_FSIZE, &old);
    ok (rc == -1 && first == 7 && done == 2 && mb_writer_seq (w) == 8,
        "a record short of its newline alone counts: %s", err.text);
    ok (mb_writer_append_batch (w, "b", m, 3, &first, &done, &err) == 0
            && first == 9 && done == 3,
        "the next batch goes on at seq 9");
    mb_writer_close (w);
    signal (SIGXFSZ, SIG_DFL);
    read_lines (path, &l);
    {
        /* 1-3, 4, 5, 6, fragment, 7, 8, 9-11 */
        static const uint64_t want[] = { 1, 2, 3, 4, 5, 6, 0, 7, 8, 9, 10,
                                         11 };
        bool good = l.n == 12 && !l.unterminated;
        for (size_t i = 0; good && i < l.n; i++)
            good = want[i] ? l.v[i].valid && l.v[i].rec.seq == want[i]
                           : !l.v[i].valid;
        ok (good, "the stream holds records 1..11 in order and one sealed "
            "fragment (%zu lines)", l.n);
    }
    lines_free (&l);
}

int main (void)
{
    char cmd[300];

    plan (NO_PLAN);
    valgrind = getenv ("CODESWARM_VALGRIND") != NULL;
    umask (022);
    snprintf (tmp, sizeof (tmp), "%s/mbwriter.XXXXXX",
              getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp");
    if (!mkdtemp (tmp))
        bail_out ("mkdtemp: %s", strerror (errno));
    test_basic ();
    test_lock ();
    test_torn ();
    test_batch ();
    test_rotation ();
    test_interrupted ();
    test_safety ();
    test_replaced ();
    test_fsync ();
    test_speed ();
    test_crash ();
    snprintf (cmd, sizeof (cmd), "rm -rf '%s'", tmp);
    if (system (cmd) != 0)
        diag ("cannot remove %s", tmp);
    done_testing ();
}
