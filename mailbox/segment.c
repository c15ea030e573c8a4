/* segment.c - sealed segments in archive/: names, listing, compression,
 * and scanning a segment for its first and last records.
 *
 * A sealed segment is archive/<box>-<name>.<first>-<last>.jsonl.gz where
 * first and last are the seqs of its first and last records, zero-padded
 * to 20 digits.  While a rotation is in progress the segment exists briefly
 * as the plain archive/...jsonl (renamed from the active segment) and as
 * ...jsonl.gz.tmp (being compressed); mb_segments_list() lists the plain
 * form too (compressed = false) unless the .gz is already there.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "mailbox/mailbox.h"
#include "mailbox/private.h"

static int parse_digits (const char *s, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < MB_SEQ_DIGITS; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

int mb_segment_name_parse (const char *base, const char *prefix,
                           uint64_t *first, uint64_t *last,
                           enum mb_seg_kind *kind)
{
    size_t plen = strlen (prefix);
    const char *p;
    uint64_t f, l;

    if (strncmp (base, prefix, plen) != 0)
        return -1;
    p = base + plen;
    if (strlen (p) < 2 * MB_SEQ_DIGITS + 1)
        return -1;
    if (parse_digits (p, &f) < 0 || p[MB_SEQ_DIGITS] != '-'
        || parse_digits (p + MB_SEQ_DIGITS + 1, &l) < 0)
        return -1;
    p += 2 * MB_SEQ_DIGITS + 1;
    if (!strcmp (p, ".jsonl.gz"))
        *kind = MB_SEG_GZ;
    else if (!strcmp (p, ".jsonl"))
        *kind = MB_SEG_PLAIN;
    else if (!strcmp (p, ".jsonl.gz.tmp"))
        *kind = MB_SEG_TMP;
    else
        return -1;
    if (f > l)
        return -1;
    *first = f;
    *last = l;
    return 0;
}

int mb_segment_path (const struct mb_stream_name *sn, uint64_t first,
                     uint64_t last, const char *suffix, char *buf, size_t len)
{
    int n = snprintf (buf, len, "%s/%s%020ju-%020ju.jsonl%s", sn->archive,
                      sn->prefix, (uintmax_t)first, (uintmax_t)last,
                      suffix ? suffix : "");
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int seg_cmp (const void *a, const void *b)
{
    const struct mb_segment *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    if (x->last != y->last)
        return x->last < y->last ? -1 : 1;
    /* compressed first, so that duplicates are easy to drop */
    return (int)y->compressed - (int)x->compressed;
}

int mb_segments_list (const char *stream_path, struct mb_segment **segsp,
                      size_t *countp, cs_error_t *errp)
{
    struct mb_stream_name sn;
    struct mb_segment *segs = NULL;
    size_t count = 0, cap = 0;
    struct stat st;
    DIR *d = NULL;
    struct dirent *de;

    if (mb_stream_split (stream_path, &sn, errp) < 0)
        return -1;
    if (lstat (sn.archive, &st) < 0 && errno == ENOENT)
        goto done;
    if (mb_secure_dir (sn.archive, false, errp) < 0)
        return -1;
    if (!(d = opendir (sn.archive)))
        return errprintf (errp, "cannot open directory '%s': %s", sn.archive,
                          strerror (errno));
    while ((errno = 0, de = readdir (d))) {
        uint64_t first, last;
        enum mb_seg_kind kind;
        if (mb_segment_name_parse (de->d_name, sn.prefix, &first, &last,
                                   &kind) < 0
            || kind == MB_SEG_TMP)
            continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct mb_segment *n = realloc (segs, ncap * sizeof (*segs));
            if (!n) {
                errprintf (errp, "out of memory");
                goto error;
            }
            segs = n;
            cap = ncap;
        }
        struct mb_segment *s = &segs[count];
        int n = snprintf (s->path, sizeof (s->path), "%s/%s", sn.archive,
                          de->d_name);
        if (n < 0 || (size_t)n >= sizeof (s->path))
            continue;
        s->first = first;
        s->last = last;
        s->compressed = (kind == MB_SEG_GZ);
        count++;
    }
    if (errno != 0) {
        errprintf (errp, "cannot read directory '%s': %s", sn.archive,
                   strerror (errno));
        goto error;
    }
    closedir (d);
    d = NULL;
    if (count > 1) {
        qsort (segs, count, sizeof (*segs), seg_cmp);
        size_t j = 0;
        for (size_t i = 0; i < count; i++) {
            if (j > 0 && segs[j - 1].first == segs[i].first
                && segs[j - 1].last == segs[i].last)
                continue;   /* plain twin of a finished .gz */
            if (j != i)
                segs[j] = segs[i];
            j++;
        }
        count = j;
    }
done:
    if (count == 0) {
        free (segs);
        segs = NULL;
    }
    *segsp = segs;
    *countp = count;
    return 0;
error: {
    int saved = errno;
    if (d)
        closedir (d);
    free (segs);
    errno = saved ? saved : ENOMEM;
    return -1;
}
}

int mb_segment_compress (const char *src, const char *dst, cs_error_t *errp)
{
    char tmp[MB_PATH_MAX];
    int in = -1, out = -1, gfd = -1;
    gzFile gz = NULL;
    char *buf = NULL;
    const size_t bufsize = 256 * 1024;
    int n;

    n = snprintf (tmp, sizeof (tmp), "%s.tmp", dst);
    if (n < 0 || (size_t)n >= sizeof (tmp)) {
        errno = ENAMETOOLONG;
        return errprintf (errp, "path too long");
    }
    if ((in = mb_secure_open (src, O_RDONLY, errp)) < 0)
        return -1;
    /* a leftover from an interrupted compression: we hold the stream lock */
    if (unlink (tmp) < 0 && errno != ENOENT) {
        errprintf (errp, "cannot remove '%s': %s", tmp, strerror (errno));
        goto error;
    }
    out = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                0600);
    if (out < 0) {
        errprintf (errp, "cannot create '%s': %s", tmp, strerror (errno));
        goto error;
    }
    if (!(buf = malloc (bufsize))) {
        errprintf (errp, "out of memory");
        goto error_unlink;
    }
    if ((gfd = dup (out)) < 0 || !(gz = gzdopen (gfd, "wb1"))) {
        if (gfd >= 0)
            close (gfd);
        errno = errno ? errno : ENOMEM;
        errprintf (errp, "cannot compress into '%s': %s", tmp,
                   strerror (errno));
        goto error_unlink;
    }
    for (;;) {
        ssize_t r = read (in, buf, bufsize);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            errprintf (errp, "cannot read '%s': %s", src, strerror (errno));
            goto error_unlink;
        }
        if (r == 0)
            break;
        if (gzwrite (gz, buf, (unsigned)r) != (int)r) {
            int zerr;
            const char *msg = gzerror (gz, &zerr);
            if (zerr != Z_ERRNO)
                errno = EIO;
            errprintf (errp, "cannot write '%s': %s", tmp,
                       zerr == Z_ERRNO ? strerror (errno) : msg);
            goto error_unlink;
        }
    }
    n = gzclose (gz);
    gz = NULL;
    if (n != Z_OK) {
        errno = n == Z_ERRNO ? errno : EIO;
        errprintf (errp, "cannot write '%s': %s", tmp, strerror (errno));
        goto error_unlink;
    }
    if (fsync (out) < 0) {
        errprintf (errp, "cannot fsync '%s': %s", tmp, strerror (errno));
        goto error_unlink;
    }
    close (out);
    out = -1;
    if (rename (tmp, dst) < 0) {
        errprintf (errp, "cannot rename '%s': %s", tmp, strerror (errno));
        goto error_unlink;
    }
    if (mb_fsync_dir (dst, false) < 0) {
        errprintf (errp, "cannot fsync the directory of '%s': %s", dst,
                   strerror (errno));
        goto error;
    }
    if (unlink (src) < 0 && errno != ENOENT) {
        errprintf (errp, "cannot remove '%s': %s", src, strerror (errno));
        goto error;
    }
    free (buf);
    close (in);
    return 0;
error_unlink: {
    int saved = errno;
    (void)unlink (tmp);
    errno = saved;
}
error: {
    int saved = errno;
    if (gz)
        gzclose (gz);
    if (out >= 0)
        close (out);
    if (in >= 0)
        close (in);
    free (buf);
    errno = saved;
    return -1;
}
}

/* ---- scanning an uncompressed segment ----------------------------------- */

#define SCAN_CHUNK (64 * 1024)

struct scan {
    int fd;
    char buf[SCAN_CHUNK];
    uint64_t start;     /* file offset of buf[0] */
    size_t len;         /* valid bytes in buf */
};

static int pread_full (int fd, char *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pread (fd, buf, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;    /* the file shrank under us */
            return -1;
        }
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int scan_load (struct scan *sc, uint64_t start, size_t len)
{
    if (pread_full (sc->fd, sc->buf, len, start) < 0)
        return -1;
    sc->start = start;
    sc->len = len;
    return 0;
}

/* Offset of the last '\n' in [0, pos), or -1 in *nl when there is none. */
static int scan_prev_newline (struct scan *sc, uint64_t pos, int64_t *nl)
{
    while (pos > 0) {
        if (!(sc->len > 0 && sc->start < pos && pos <= sc->start + sc->len)) {
            uint64_t s = pos > SCAN_CHUNK ? pos - SCAN_CHUNK : 0;
            if (scan_load (sc, s, (size_t)(pos - s)) < 0)
                return -1;
        }
        const char *p = memrchr (sc->buf, '\n', (size_t)(pos - sc->start));
        if (p) {
            *nl = (int64_t)(sc->start + (uint64_t)(p - sc->buf));
            return 0;
        }
        pos = sc->start;
    }
    *nl = -1;
    return 0;
}

/* Offset of the first '\n' in [pos, end), or -1 in *nl. */
static int scan_next_newline (struct scan *sc, uint64_t pos, uint64_t end,
                              int64_t *nl)
{
    while (pos < end) {
        if (!(sc->len > 0 && sc->start <= pos && pos < sc->start + sc->len)) {
            uint64_t n = end - pos > SCAN_CHUNK ? SCAN_CHUNK : end - pos;
            if (scan_load (sc, pos, (size_t)n) < 0)
                return -1;
        }
        size_t skip = (size_t)(pos - sc->start);
        const char *p = memchr (sc->buf + skip, '\n', sc->len - skip);
        if (p) {
            *nl = (int64_t)(sc->start + (uint64_t)(p - sc->buf));
            return 0;
        }
        pos = sc->start + sc->len;
    }
    *nl = -1;
    return 0;
}

/* Parse the line [start, start+len) of the file. */
static int scan_try_line (struct scan *sc, uint64_t start, size_t len,
                          size_t max_record, uint64_t *seq, uint64_t *epoch,
                          bool *ok)
{
    struct mb_record rec;
    char *line;
    const char *p;
    int rc;

    *ok = false;
    if (len == 0 || (max_record > 0 && len >= max_record))
        return 0;
    if (start >= sc->start && start + len <= sc->start + sc->len) {
        p = sc->buf + (start - sc->start);
        line = NULL;
    }
    else {
        if (!(line = malloc (len)))
            return -1;
        if (pread_full (sc->fd, line, len, start) < 0) {
            int saved = errno;
            free (line);
            errno = saved;
            return -1;
        }
        p = line;
    }
    rc = mb_record_parse (p, len, max_record, &rec, NULL);
    if (rc == 0) {
        *seq = rec.seq;
        *epoch = rec.epoch;
        *ok = true;
        cJSON_Delete (rec.json);
    }
    free (line);
    return 0;
}

int mb_scan_last_record (int fd, uint64_t end, size_t max_record,
                         uint64_t *seq, uint64_t *epoch, bool *found)
{
    struct scan *sc;
    int64_t nl;
    uint64_t e = end;   /* lines end before e; e-1 is a '\n' */
    bool ok = false;

    *found = false;
    if (!(sc = calloc (1, sizeof (*sc))))
        return -1;
    sc->fd = fd;
    if (e > 0) {
        /* drop an unterminated tail: it is not a record */
        if (scan_prev_newline (sc, e, &nl) < 0)
            goto error;
        e = (uint64_t)(nl + 1);
    }
    while (e > 0 && !ok) {
        uint64_t lend = e - 1;
        if (scan_prev_newline (sc, lend, &nl) < 0)
            goto error;
        uint64_t ls = (uint64_t)(nl + 1);
        if (scan_try_line (sc, ls, (size_t)(lend - ls), max_record, seq,
                           epoch, &ok) < 0)
            goto error;
        e = ls;
    }
    *found = ok;
    free (sc);
    return 0;
error: {
    int saved = errno;
    free (sc);
    errno = saved;
    return -1;
}
}

int mb_scan_first_record (int fd, uint64_t end, size_t max_record,
                          uint64_t *seq, uint64_t *epoch, bool *found)
{
    struct scan *sc;
    int64_t nl;
    uint64_t pos = 0;
    bool ok = false;

    *found = false;
    if (!(sc = calloc (1, sizeof (*sc))))
        return -1;
    sc->fd = fd;
    while (pos < end && !ok) {
        if (scan_next_newline (sc, pos, end, &nl) < 0)
            goto error;
        if (nl < 0)
            break;  /* unterminated: not a record */
        if (scan_try_line (sc, pos, (size_t)((uint64_t)nl - pos), max_record,
                           seq, epoch, &ok) < 0)
            goto error;
        pos = (uint64_t)nl + 1;
    }
    *found = ok;
    free (sc);
    return 0;
error: {
    int saved = errno;
    free (sc);
    errno = saved;
    return -1;
}
}

int mb_gz_last_record (const char *path, size_t max_record, uint64_t *seq,
                       uint64_t *epoch, bool *found, cs_error_t *errp)
{
    int fd;
    gzFile gz;
    char *buf = NULL;
    size_t cap = 256 * 1024, len = 0;
    bool skipping = false;  /* inside a line over max_record */
    int rc = -1;

    *found = false;
    if ((fd = mb_secure_open (path, O_RDONLY, errp)) < 0)
        return -1;
    if (!(gz = gzdopen (fd, "rb"))) {
        close (fd);
        errno = ENOMEM;
        return errprintf (errp, "cannot read '%s': out of memory", path);
    }
    if (max_record > 0 && cap > max_record + 1)
        cap = max_record + 1;
    if (!(buf = malloc (cap))) {
        errprintf (errp, "out of memory");
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (max_record > 0 && cap >= max_record) {
                skipping = true;    /* too long: drop it */
                len = 0;
            }
            else {
                size_t ncap = cap * 2;
                char *n;
                if (max_record > 0 && ncap > max_record + 1)
                    ncap = max_record + 1;
                if (!(n = realloc (buf, ncap))) {
                    errprintf (errp, "out of memory");
                    goto out;
                }
                buf = n;
                cap = ncap;
            }
        }
        int n = gzread (gz, buf + len, (unsigned)(cap - len));
        if (n < 0) {
            int zerr;
            const char *msg = gzerror (gz, &zerr);
            errno = zerr == Z_ERRNO ? errno : EIO;
            errprintf (errp, "cannot read '%s': %s", path,
                       zerr == Z_ERRNO ? strerror (errno) : msg);
            goto out;
        }
        if (n == 0)
            break;  /* an unterminated last line is not a record */
        size_t start = 0, end = len + (size_t)n;
        char *p;
        while ((p = memchr (buf + len, '\n', end - len))) {
            size_t nl = (size_t)(p - buf);
            if (!skipping) {
                struct mb_record rec;
                if (mb_record_parse (buf + start, nl - start, max_record,
                                     &rec, NULL) == 0) {
                    *seq = rec.seq;
                    *epoch = rec.epoch;
                    *found = true;
                    cJSON_Delete (rec.json);
                }
            }
            skipping = false;
            start = nl + 1;
            len = start;
        }
        memmove (buf, buf + start, end - start);
        len = end - start;
    }
    rc = 0;
out: {
    int saved = errno;
    gzclose (gz);
    free (buf);
    errno = saved;
    return rc;
}
}
