/* streamtest.h - hand-made streams for the reader/follower unit tests
 *
 * The tests write records with plain write(2) on an O_APPEND descriptor
 * and rotate segments the way the writer does (rename the active file
 * into archive/, create a new one, compress the sealed one), so that every
 * byte on disk is under the test's control.
 */
#ifndef CODESWARM_MAILBOX_STREAMTEST_H
#define CODESWARM_MAILBOX_STREAMTEST_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/libtap/tap.h"
#include "mailbox/mailbox.h"
#include "mailbox/private.h"

struct tstream {
    char path[MB_PATH_MAX];
    int fd;
    uint64_t seq; /* last written */
    uint64_t epoch;
    uint64_t seg_first; /* first seq of the active segment */
    uint64_t seg_count; /* records in it */
};

/* buf = dir "/" name, or bail out */
static inline void ts_path (char *buf, size_t len, const char *dir,
                            const char *name)
{
    int n = snprintf (buf, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len)
        bail_out ("path too long");
}

/* A private swarm directory with inbox/ outbox/ archive/ (0700). */
static inline void ts_root (char *root, size_t len)
{
    const char *tmp = getenv ("TMPDIR");
    char sub[MB_PATH_MAX];

    ts_path (root, len, tmp && *tmp ? tmp : "/tmp", "cs-mbread.XXXXXX");
    if (!mkdtemp (root))
        bail_out ("mkdtemp: %s", strerror (errno));
    const char *dirs[] = {"inbox", "outbox", "archive", "cursors", NULL};
    for (int i = 0; dirs[i]; i++) {
        ts_path (sub, sizeof (sub), root, dirs[i]);
        if (mkdir (sub, 0700) < 0)
            bail_out ("mkdir %s: %s", sub, strerror (errno));
    }
}

static inline int ts_rm_cb (const char *p, const struct stat *sb, int flag,
                            struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove (p);
}

static inline void ts_rmrf (const char *root)
{
    nftw (root, ts_rm_cb, 64, FTW_DEPTH | FTW_PHYS);
}

static inline void ts_write (int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write (fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            bail_out ("write: %s", strerror (errno));
        }
        buf += n;
        len -= (size_t)n;
    }
}

static inline void ts_str (struct tstream *t, const char *s)
{
    ts_write (t->fd, s, strlen (s));
}

/* Open (create) stream root/<box>/<name>.jsonl for appending. */
static inline void ts_open (struct tstream *t, const char *root,
                            const char *box, const char *name)
{
    memset (t, 0, sizeof (*t));
    int n =
        snprintf (t->path, sizeof (t->path), "%s/%s/%s.jsonl", root, box, name);
    if (n < 0 || (size_t)n >= sizeof (t->path))
        bail_out ("path too long");
    t->fd = open (t->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (t->fd < 0)
        bail_out ("open %s: %s", t->path, strerror (errno));
    t->epoch = 1;
}

static inline void ts_close (struct tstream *t)
{
    if (t->fd >= 0)
        close (t->fd);
    t->fd = -1;
}

/* Format the record seq/epoch (about pad bytes of payload) into buf. */
static inline size_t ts_format (char *buf, size_t len, uint64_t seq,
                                uint64_t epoch, size_t pad)
{
    char fill[1024];

    if (pad >= sizeof (fill))
        pad = sizeof (fill) - 1;
    memset (fill, 'x', pad);
    fill[pad] = '\0';
    int n = snprintf (buf, len,
                      "{\"v\":1,\"seq\":%ju,\"epoch\":%ju,\"ts\":1700000000.25,"
                      "\"type\":\"rpc\",\"n\":%ju,\"pad\":\"%s\"}\n",
                      (uintmax_t)seq, (uintmax_t)epoch, (uintmax_t)seq, fill);
    if (n < 0 || (size_t)n >= len)
        bail_out ("record too long");
    return (size_t)n;
}

/* Append record seq with the stream's epoch; returns the offset it went to. */
static inline off_t ts_record_seq (struct tstream *t, uint64_t seq)
{
    char buf[2048];
    size_t n = ts_format (buf, sizeof (buf), seq, t->epoch, 16);
    off_t off = lseek (t->fd, 0, SEEK_END);

    ts_write (t->fd, buf, n);
    if (t->seg_count == 0)
        t->seg_first = seq;
    t->seg_count++;
    if (seq > t->seq)
        t->seq = seq;
    return off;
}

static inline off_t ts_record (struct tstream *t)
{
    return ts_record_seq (t, t->seq + 1);
}

/* Seal the active segment the way the writer does: rename it into
 * archive/ as plain .jsonl, create a new active file, then (compress)
 * gzip it and remove the plain one.  Writes the sealed plain/gz name.
 */
static inline void ts_rotate (struct tstream *t, bool compress, char *sealed,
                              size_t len)
{
    struct mb_stream_name sn;
    char plain[MB_PATH_MAX], gz[MB_PATH_MAX];
    cs_error_t e;

    if (mb_stream_split (t->path, &sn, &e) < 0)
        bail_out ("%s", e.text);
    if (mb_segment_path (&sn, t->seg_first, t->seq, "", plain, sizeof (plain)) <
            0 ||
        mb_segment_path (&sn, t->seg_first, t->seq, ".gz", gz, sizeof (gz)) < 0)
        bail_out ("segment path");
    if (rename (t->path, plain) < 0)
        bail_out ("rename: %s", strerror (errno));
    close (t->fd);
    t->fd = open (t->path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC,
                  0600);
    if (t->fd < 0)
        bail_out ("open %s: %s", t->path, strerror (errno));
    t->seg_count = 0;
    if (compress && mb_segment_compress (plain, gz, &e) < 0)
        bail_out ("compress: %s", e.text);
    if (sealed)
        snprintf (sealed, len, "%s", compress ? gz : plain);
}

#endif
