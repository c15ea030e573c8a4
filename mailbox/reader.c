/* reader.c - read a stream record by record, across its segments
 *
 * A reader has at most one segment open: an archive segment (plain while
 * it is being compressed, gzip afterwards) or the active file.  Bytes are
 * read in large blocks into one buffer and lines are parsed in place; a
 * line is a record only once its '\n' is there, and the bytes of an
 * unfinished line are kept (never re-read) until the rest arrives.
 *
 * Order of segments: a segment is followed by the archive segment with the
 * smallest first seq above its own, else by the active file.  To be safe
 * against a rotation between looking and opening, the active file is
 * opened BEFORE archive/ is listed: a segment sealed after the open shows
 * up in the listing and is read first.
 *
 * Rotation while following: the writer renames the active file into
 * archive/ (after its last append) and creates a new one.  At EOF the
 * reader compares the inode of its descriptor with the one the path names
 * now; when they differ (or the path is gone) it reads the old descriptor
 * to its end once more, then moves on as above.
 *
 * A plain archive segment that is compressed (and removed) while it is
 * being read stays readable through the open descriptor; one that goes
 * between listing archive/ and opening it is found again as .gz by listing
 * once more.  Offsets are always those of the uncompressed stream; a
 * cursor into a .gz segment is reached with gzseek (decompressing).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "mailbox/mailbox.h"
#include "mailbox/private.h"
#include "mailbox/reader-private.h"

#define READ_BUF_MIN (8 * 1024)
#define READ_BUF_MAX (256 * 1024)
#define GZ_BUF (128 * 1024)
#define OPEN_RETRIES 8
#define HOLE_GRACE 2.0 /* seconds, on network filesystems */

enum src_kind {
    SRC_NONE = 0,
    SRC_ACTIVE,
    SRC_PLAIN,
    SRC_GZ,
};

enum wait_kind {
    WAIT_ADVANCE, /* the segment after wait_after */
    WAIT_CURSOR,  /* locate wcursor */
};

struct mb_reader {
    char *path;
    size_t max_record;

    /* the open segment */
    enum src_kind kind;
    int fd;
    gzFile gz;
    char *file;              /* path of the open segment (events) */
    uint64_t seg_first;      /* 0: not known yet */
    uint64_t seg_last;       /* archive: last seq from the name; else 0 */
    uint64_t seg_max;        /* highest seq parsed in this segment */
    uint64_t expect;         /* verify: first seq due in this segment */
    bool verify;             /* check the first record against expect */
    struct mb_segment *segs; /* the last listing of archive/ */
    size_t nsegs;
    dev_t dev; /* SRC_ACTIVE: identity of the file */
    ino_t ino;
    bool rotated; /* SRC_ACTIVE renamed away: drain it */
    bool finish;  /* segment done: move on at the next call */
    bool idle;    /* the last call found nothing new */

    /* NUL bytes in a line of the active file on a network filesystem may
     * be a hole that another client's write has not filled yet: wait up to
     * hole_grace seconds for it before calling the line corrupt.
     */
    double hole_grace;
    double hole_since; /* monotonic; 0: no hole pending */
    uint64_t hole_off;
    bool hole_wait;

    /* buf[start, end) is unconsumed; buf[0] is at segment offset base */
    char *buf;
    size_t cap;
    size_t start;
    size_t end;
    uint64_t base;
    bool longline; /* discarding a line over max_record */
    uint64_t long_off;
    uint64_t long_len;

    /* delivery state */
    bool have_last;
    uint64_t last_seq;
    bool have_epoch;
    uint64_t last_epoch;
    bool skip; /* drop seq <= skip_seq without a word */
    uint64_t skip_seq;

    /* a parsed record whose EPOCH/GAP events come first */
    bool pending;
    struct mb_record prec;
    uint64_t poff;
    uint64_t pnext;
    bool pend_epoch;
    bool pend_gap;

    cJSON *out_json; /* json of the last event, freed next call */

    /* cursor position: next_off in the open segment; when none is open,
     * cseg/coff remember the last one
     */
    uint64_t next_off;
    uint64_t cseg;
    uint64_t coff;

    /* nothing open: what to do when the active file appears */
    bool waiting;
    enum wait_kind wait;
    uint64_t wait_after;
    struct mb_cursor wcursor;

    bool failed;
    cs_error_t error;
    char reason[sizeof (((cs_error_t *)0)->text) + 32];
};

/* ---- opening files ------------------------------------------------------ */

static void drop_segments (mb_reader_t *r);

/* 1 with *fdp, 0 when path does not exist, -1 on error (errp filled). */
static int open_path (const char *path, int *fdp, cs_error_t *errp)
{
    cs_error_t e;
    int fd = mb_secure_open (path, O_RDONLY, &e);

    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        int saved = errno;
        errprintf (errp, "%s", e.text);
        errno = saved;
        return -1;
    }
    *fdp = fd;
    return 1;
}

static void close_source (mb_reader_t *r)
{
    if (r->kind != SRC_NONE) {
        r->cseg = r->seg_first;
        r->coff = r->next_off;
    }
    if (r->gz)
        gzclose (r->gz);
    else if (r->fd >= 0)
        close (r->fd);
    r->gz = NULL;
    r->fd = -1;
    r->kind = SRC_NONE;
    r->start = r->end = 0;
    r->base = 0;
    r->longline = false;
    r->rotated = false;
    r->finish = false;
    r->seg_first = 0;
}

static int set_file (mb_reader_t *r, const char *path, cs_error_t *errp)
{
    char *s = strdup (path);

    if (!s) {
        errno = ENOMEM;
        return errprintf (errp, "out of memory");
    }
    free (r->file);
    r->file = s;
    return 0;
}

static void set_position (mb_reader_t *r, uint64_t off)
{
    r->seg_max = 0;
    r->base = off;
    r->start = r->end = 0;
    r->next_off = off;
    r->longline = false;
    r->rotated = false;
    r->finish = false;
    r->waiting = false;
}

/* The first record in [0, end) of fd, 0 if there is none. */
static uint64_t first_seq_of (mb_reader_t *r, int fd, uint64_t end)
{
    uint64_t seq = 0, epoch;
    bool found = false;

    if (end == 0 ||
        mb_scan_first_record (fd, end, r->max_record, &seq, &epoch, &found) <
            0 ||
        !found)
        return 0;
    return seq;
}

/* Make fd (the active file) the open segment, positioned at off.  With
 * check, off must follow a '\n' or the reader starts at 0 (*rewound).
 */
static int adopt_active (mb_reader_t *r, int fd, uint64_t off, bool check,
                         bool *rewound, cs_error_t *errp)
{
    struct stat st;

    if (fstat (fd, &st) < 0) {
        errprintf (errp, "cannot stat '%s': %s", r->path, strerror (errno));
        close (fd);
        return -1;
    }
    if (check && off > 0) {
        char c;
        if ((uint64_t)st.st_size < off || pread (fd, &c, 1, off - 1) != 1 ||
            c != '\n') {
            off = 0;
            if (rewound)
                *rewound = true;
        }
    }
    if (off > 0 && lseek (fd, (off_t)off, SEEK_SET) < 0) {
        errprintf (errp, "cannot seek in '%s': %s", r->path, strerror (errno));
        close (fd);
        return -1;
    }
    if (set_file (r, r->path, errp) < 0) {
        close (fd);
        return -1;
    }
    r->kind = SRC_ACTIVE;
    r->fd = fd;
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    /* learnt from the first record read when nothing parses before off */
    r->seg_first = off > 0 ? first_seq_of (r, fd, off) : 0;
    r->seg_last = 0;
    drop_segments (r); /* caught up */
    set_position (r, off);
    return 0;
}

/* Open archive segment s at uncompressed offset off (checked to follow a
 * '\n', else 0 and *rewound).  1 opened, 0 gone meanwhile, -1 error.
 */
static int open_segment (mb_reader_t *r, const struct mb_segment *s,
                         uint64_t off, bool *rewound, cs_error_t *errp)
{
    int fd = -1;
    int rc;
    char c;

    if ((rc = open_path (s->path, &fd, errp)) <= 0)
        return rc;
    if (s->compressed) {
        gzFile gz = gzdopen (fd, "rb");
        if (!gz) {
            close (fd);
            errno = ENOMEM;
            return errprintf (errp, "cannot read '%s': out of memory", s->path);
        }
        gzbuffer (gz, GZ_BUF);
        if (off > 0) {
            if (gzseek (gz, (z_off_t)(off - 1), SEEK_SET) !=
                    (z_off_t)(off - 1) ||
                gzread (gz, &c, 1) != 1 || c != '\n') {
                if (gzrewind (gz) < 0) {
                    gzclose (gz);
                    errno = EIO;
                    return errprintf (errp, "cannot rewind '%s'", s->path);
                }
                off = 0;
                if (rewound)
                    *rewound = true;
            }
        }
        r->gz = gz;
        r->fd = -1;
        r->kind = SRC_GZ;
    } else {
        if (off > 0) {
            if (pread (fd, &c, 1, off - 1) != 1 || c != '\n') {
                off = 0;
                if (rewound)
                    *rewound = true;
            } else if (lseek (fd, (off_t)off, SEEK_SET) < 0) {
                errprintf (errp, "cannot seek in '%s': %s", s->path,
                           strerror (errno));
                close (fd);
                return -1;
            }
        }
        r->fd = fd;
        r->gz = NULL;
        r->kind = SRC_PLAIN;
    }
    if (set_file (r, s->path, errp) < 0) {
        close_source (r);
        return -1;
    }
    r->seg_first = s->first;
    r->seg_last = s->last;
    set_position (r, off);
    return 1;
}

/* Among the archive segments: by_last false: the one with the smallest
 * first seq above v; by_last true: the oldest whose last seq is >= v.
 * A segment listed both plain and compressed (compression finishing) is
 * taken plain.
 */
static const struct mb_segment *seg_pick (const struct mb_segment *segs,
                                          size_t n, bool by_last, uint64_t v)
{
    const struct mb_segment *best = NULL;

    for (size_t i = 0; i < n; i++) {
        const struct mb_segment *s = &segs[i];
        if (by_last ? s->last < v : s->first <= v)
            continue;
        if (!best || s->first < best->first ||
            (s->first == best->first && best->compressed && !s->compressed))
            best = s;
    }
    return best;
}

/* List r's archive segments into r->segs (kept while the reader catches
 * up, dropped once it reaches the active file).  *segs is borrowed until
 * the next listing.
 */
static int list_segments (mb_reader_t *r, struct mb_segment **segs, size_t *n,
                          cs_error_t *errp)
{
    free (r->segs);
    r->segs = NULL;
    r->nsegs = 0;
    if (mb_segments_list (r->path, &r->segs, &r->nsegs, errp) < 0) {
        r->segs = NULL;
        r->nsegs = 0;
        return -1;
    }
    *segs = r->segs;
    *n = r->nsegs;
    return 0;
}

static void drop_segments (mb_reader_t *r)
{
    free (r->segs);
    r->segs = NULL;
    r->nsegs = 0;
}

/* Open the segment that follows the one starting at seq after (0: the
 * oldest there is).  1 opened, 0 nothing there yet (waiting), -1 error.
 */
static int go_advance (mb_reader_t *r, uint64_t after, cs_error_t *errp)
{
    /* catching up: the next segment of the last listing, when it is the
     * one due (sealed segments do not change)
     */
    if (r->verify && r->segs) {
        const struct mb_segment *s;
        s = seg_pick (r->segs, r->nsegs, false, after);
        if (s && s->first == r->expect) {
            int rc = open_segment (r, s, 0, NULL, errp);
            if (rc != 0)
                return rc;
        }
    }
    for (int tries = 0; tries < OPEN_RETRIES; tries++) {
        struct mb_segment *segs;
        const struct mb_segment *s;
        size_t n;
        int afd = -1;
        int rc;

        if (open_path (r->path, &afd, errp) < 0)
            return -1;
        if (list_segments (r, &segs, &n, errp) < 0) {
            if (afd >= 0)
                close (afd);
            return -1;
        }
        if ((s = seg_pick (segs, n, false, after))) {
            if (afd >= 0)
                close (afd);
            rc = open_segment (r, s, 0, NULL, errp);
            if (rc < 0)
                return -1;
            if (rc == 0)
                continue; /* compressed meanwhile: list again */
            return 1;
        }
        if (afd >= 0) {
            if (adopt_active (r, afd, 0, false, NULL, errp) < 0)
                return -1;
            return 1;
        }
        break;
    }
    r->waiting = true;
    r->wait = WAIT_ADVANCE;
    r->wait_after = after;
    return 0;
}

/* Position after cursor c: in the active file when c names it, else in
 * the segment holding c->seq + 1 (at c->offset when c names that one,
 * else from its start, dropping records up to c->seq).
 */
static int go_cursor (mb_reader_t *r, const struct mb_cursor *c,
                      cs_error_t *errp)
{
    for (int tries = 0; tries < OPEN_RETRIES; tries++) {
        struct mb_segment *segs;
        const struct mb_segment *s;
        size_t n;
        int afd = -1;
        int rc;

        r->skip = true;
        r->skip_seq = c->seq;
        if (open_path (r->path, &afd, errp) < 0)
            return -1;
        if (afd >= 0 && c->segment != 0) {
            struct stat st;
            if (fstat (afd, &st) == 0 &&
                first_seq_of (r, afd, (uint64_t)st.st_size) == c->segment)
                return adopt_active (r, afd, c->offset, true, NULL, errp);
        }
        if (list_segments (r, &segs, &n, errp) < 0) {
            if (afd >= 0)
                close (afd);
            return -1;
        }
        if ((s = seg_pick (segs, n, true, c->seq + 1))) {
            if (afd >= 0)
                close (afd);
            rc = open_segment (r, s, s->first == c->segment ? c->offset : 0,
                               NULL, errp);
            if (rc < 0)
                return -1;
            if (rc == 0)
                continue;
            return 1;
        }
        if (afd >= 0) {
            if (adopt_active (r, afd, 0, false, NULL, errp) < 0)
                return -1;
            return 1;
        }
        break;
    }
    r->waiting = true;
    r->wait = WAIT_CURSOR;
    r->wcursor = *c;
    return 0;
}

/* Offset just after the last '\n' in [0, size) of fd. */
static int last_line_end (int fd, uint64_t size, uint64_t *offp)
{
    char tmp[65536];
    uint64_t pos = size;

    while (pos > 0) {
        size_t n = pos > sizeof (tmp) ? sizeof (tmp) : (size_t)pos;
        ssize_t got = pread (fd, tmp, n, (off_t)(pos - n));
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if ((size_t)got != n) { /* shrank under us: look again */
            pos -= n;
            continue;
        }
        char *nl = memrchr (tmp, '\n', n);
        if (nl) {
            *offp = pos - n + (uint64_t)(nl - tmp) + 1;
            return 0;
        }
        pos -= n;
    }
    *offp = 0;
    return 0;
}

/* MB_START_END: after the last complete line of the active file; when
 * there is no active file, whatever is sealed now is old.
 */
static int go_end (mb_reader_t *r, cs_error_t *errp)
{
    int afd = -1;
    int rc;

    if ((rc = open_path (r->path, &afd, errp)) < 0)
        return -1;
    if (rc > 0) {
        struct stat st;
        uint64_t off;
        if (fstat (afd, &st) < 0 ||
            last_line_end (afd, (uint64_t)st.st_size, &off) < 0) {
            errprintf (errp, "cannot read '%s': %s", r->path, strerror (errno));
            close (afd);
            return -1;
        }
        return adopt_active (r, afd, off, false, NULL, errp) < 0 ? -1 : 1;
    } else {
        struct mb_segment *segs;
        size_t n;
        uint64_t newest = 0;
        if (list_segments (r, &segs, &n, errp) < 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (segs[i].first > newest)
                newest = segs[i].first;
        r->waiting = true;
        r->wait = WAIT_ADVANCE;
        r->wait_after = newest;
        return 0;
    }
}

/* The open segment is done: move on to the next one (1), or wait for
 * it (0), or -1.
 */
static int finish_segment (mb_reader_t *r, cs_error_t *errp)
{
    uint64_t first = r->seg_first;
    uint64_t last = r->seg_last > r->seg_max ? r->seg_last : r->seg_max;

    /* segments are contiguous: the next one should start at last + 1 */
    r->verify = last > 0;
    r->expect = last + 1;

    if (first == 0 && r->kind == SRC_ACTIVE)
        first = first_seq_of (r, r->fd, r->base + r->end);
    close_source (r);
    if (first > 0)
        return go_advance (r, first, errp);
    if (r->have_last) {
        /* no record in the old segment tells where it was: go by seq */
        struct mb_cursor c = {
            .seq = r->last_seq,
            .epoch = r->last_epoch,
        };
        return go_cursor (r, &c, errp);
    }
    return go_advance (r, UINT64_MAX, errp);
}

/* ---- reading ------------------------------------------------------------ */

/* >0 bytes, 0 at the end (*damaged with the reason for a bad gzip
 * stream), -1 on an I/O error.
 */
static ssize_t src_read (mb_reader_t *r, char *buf, size_t len, bool *damaged,
                         cs_error_t *errp)
{
    if (r->kind == SRC_GZ) {
        int errnum = Z_OK;
        int n;
        const char *msg;

        if (len > (1u << 30))
            len = 1u << 30;
        n = gzread (r->gz, buf, (unsigned)len);
        if (n > 0)
            return n;
        msg = gzerror (r->gz, &errnum);
        if (errnum == Z_ERRNO) {
            errprintf (errp, "cannot read '%s': %s", r->file, strerror (errno));
            return -1;
        }
        if (errnum != Z_OK) {
            snprintf (r->reason, sizeof (r->reason), "damaged segment: %s",
                      msg ? msg : "gzip error");
            *damaged = true;
        }
        return 0;
    }
    for (;;) {
        ssize_t n = read (r->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            return 0;
        errprintf (errp, "cannot read '%s': %s", r->file, strerror (errno));
        return -1;
    }
}

/* Make room for more bytes after end (the unconsumed part is at 0). */
static int buf_grow (mb_reader_t *r, size_t want, cs_error_t *errp)
{
    size_t limit = r->max_record > READ_BUF_MAX ? r->max_record : READ_BUF_MAX;
    size_t ncap;
    char *nbuf;

    if (want > limit)
        want = limit;
    if (want <= r->cap)
        return 0;
    ncap = r->cap ? r->cap : READ_BUF_MIN;
    while (ncap < want)
        ncap *= 2;
    if (ncap > limit)
        ncap = limit;
    if (!(nbuf = realloc (r->buf, ncap))) {
        errno = ENOMEM;
        return errprintf (errp, "out of memory");
    }
    r->buf = nbuf;
    r->cap = ncap;
    return 0;
}

static void ev_init (mb_reader_t *r, struct mb_event *ev,
                     enum mb_event_type type, uint64_t off)
{
    memset (ev, 0, sizeof (*ev));
    ev->type = type;
    ev->file = r->file;
    ev->offset = off;
}

static int ev_corrupt (mb_reader_t *r, struct mb_event *ev, uint64_t off,
                       uint64_t next)
{
    ev_init (r, ev, MB_EV_CORRUPT, off);
    ev->reason = r->reason;
    r->next_off = next;
    return 1;
}

static int emit_pending (mb_reader_t *r, struct mb_event *ev)
{
    if (r->pend_epoch) {
        r->pend_epoch = false;
        ev_init (r, ev, MB_EV_EPOCH, r->poff);
        ev->rec = r->prec;
        ev->prev_epoch = r->last_epoch;
        r->next_off = r->poff;
        return 1;
    }
    if (r->pend_gap) {
        r->pend_gap = false;
        ev_init (r, ev, MB_EV_GAP, r->poff);
        ev->rec = r->prec;
        ev->expected = r->last_seq + 1;
        r->next_off = r->poff;
        return 1;
    }
    ev_init (r, ev, MB_EV_RECORD, r->poff);
    ev->rec = r->prec;
    r->pending = false;
    r->out_json = r->prec.json;
    r->have_last = true;
    r->last_seq = r->prec.seq;
    r->have_epoch = true;
    r->last_epoch = r->prec.epoch;
    r->next_off = r->pnext;
    return 1;
}

/* A line that is the beginning of a JSON object cut short: an object
 * opened and not closed.  That is what a writer leaves when it dies in
 * the middle of a record (and the next incarnation seals it with '\n').
 */
static bool looks_torn (const char *s, size_t len)
{
    int depth = 0;
    bool str = false;

    if (len == 0 || s[0] != '{')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                str = false;
            continue;
        }
        if (c == '"')
            str = true;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (--depth <= 0)
                return false; /* closed (or never balanced): not cut short */
        }
    }
    return depth > 0;
}

/* A complete line at segment offset off (next: offset after its '\n').
 * Returns 1 with an event, 0 when the line is dropped silently.
 */
/* The first record of a segment comes after a gap: was a segment between
 * missed?  Listing a directory while segments are renamed into it and
 * compressed (plain -> .gz) can miss an entry, so look again, and read the
 * missing segment first if it is there.  1: switched to it, 0: no, -1.
 */
static int find_missing (mb_reader_t *r, uint64_t expect, uint64_t seq,
                         cs_error_t *errp)
{
    for (int tries = 0; tries < OPEN_RETRIES; tries++) {
        struct mb_segment *segs;
        const struct mb_segment *s;
        size_t n;
        int rc;

        if (list_segments (r, &segs, &n, errp) < 0)
            return -1;
        s = seg_pick (segs, n, false, expect - 1);
        if (!s || s->first >= seq) {
            if (tries >= 2)
                return 0;
            continue;
        }
        close_source (r);
        rc = open_segment (r, s, 0, NULL, errp);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int line_event (mb_reader_t *r, const char *line, size_t len,
                       uint64_t off, uint64_t next, struct mb_event *ev,
                       cs_error_t *errp)
{
    struct mb_record rec;
    cs_error_t e;

    if (len + 1 > r->max_record) {
        snprintf (r->reason, sizeof (r->reason),
                  "line of %zu bytes is over the limit of %zu", len + 1,
                  r->max_record);
        return ev_corrupt (r, ev, off, next);
    }
    if (mb_record_parse (line, len, r->max_record, &rec, &e) < 0) {
        snprintf (r->reason, sizeof (r->reason), "%s%s",
                  looks_torn (line, len) ? "torn record: " : "", e.text);
        return ev_corrupt (r, ev, off, next);
    }
    if (r->verify) {
        int rc;
        r->verify = false;
        if (rec.seq > r->expect &&
            (rc = find_missing (r, r->expect, rec.seq, errp)) != 0) {
            cJSON_Delete (rec.json);
            /* after it, this segment is read again from its start */
            r->verify = rc > 0;
            return rc < 0 ? -1 : 0;
        }
    }
    if (r->seg_first == 0)
        r->seg_first = rec.seq;
    if (rec.seq > r->seg_max)
        r->seg_max = rec.seq;
    if (r->skip) {
        if (rec.seq <= r->skip_seq) {
            cJSON_Delete (rec.json);
            r->next_off = next;
            return 0;
        }
        r->skip = false;
    }
    if (r->have_last && rec.seq <= r->last_seq) {
        ev_init (r, ev, MB_EV_DUPLICATE, off);
        ev->rec = rec;
        r->out_json = rec.json;
        r->next_off = next;
        return 1;
    }
    r->pending = true;
    r->prec = rec;
    r->poff = off;
    r->pnext = next;
    r->pend_epoch = r->have_epoch && rec.epoch != r->last_epoch;
    r->pend_gap = r->have_last && rec.seq != r->last_seq + 1;
    return emit_pending (r, ev);
}

static int reader_fail (mb_reader_t *r, cs_error_t *e, cs_error_t *errp)
{
    int saved = errno ? errno : EIO;

    r->failed = true;
    r->error = *e;
    if (errp)
        *errp = *e;
    errno = saved;
    return -1;
}

/* Is the active file still the one the path names? */
static bool active_rotated (mb_reader_t *r)
{
    struct stat st;

    if (stat (r->path, &st) < 0)
        return errno == ENOENT;
    return st.st_dev != r->dev || st.st_ino != r->ino;
}

static double mono_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The line at off in the active file has NUL bytes.  Returns 1 after
 * reading the buffered part of the file again (once per call: look
 * again), 2 to wait for the hole to be filled, 0 when the grace period
 * is over (report the line), -1 on error.
 */
static int hole_check (mb_reader_t *r, uint64_t off, bool *refreshed,
                       cs_error_t *errp)
{
    double now = mono_now ();

    if (r->hole_since == 0 || r->hole_off != off) {
        r->hole_since = now;
        r->hole_off = off;
    }
    if (!*refreshed) {
        size_t n = r->end - r->start;
        ssize_t got;
        *refreshed = true;
        do {
            got = pread (r->fd, r->buf + r->start, n,
                         (off_t)(r->base + r->start));
        } while (got < 0 && errno == EINTR);
        if (got < 0)
            return errprintf (errp, "cannot read '%s': %s", r->file,
                              strerror (errno));
        if ((size_t)got == n)
            return 1;
        /* shorter than what was read before: keep what we have */
    }
    if (now - r->hole_since < r->hole_grace)
        return 2;
    return 0;
}

int mb_reader_next (mb_reader_t *r, struct mb_event *ev, cs_error_t *errp)
{
    cs_error_t e = {{0}};
    bool refreshed = false;

    if (!r || !ev) {
        errno = EINVAL;
        return errprintf (errp, "invalid argument");
    }
    if (r->failed) {
        if (errp)
            *errp = r->error;
        errno = EIO;
        return -1;
    }
    cJSON_Delete (r->out_json);
    r->out_json = NULL;
    r->idle = false;
    r->hole_wait = false;

    for (;;) {
        if (r->pending)
            return emit_pending (r, ev);
        if (r->finish) {
            int rc = finish_segment (r, &e);
            if (rc < 0)
                return reader_fail (r, &e, errp);
            if (rc == 0) {
                r->idle = true;
                return 0;
            }
            continue;
        }
        if (r->kind == SRC_NONE) {
            int rc;
            if (r->wait == WAIT_CURSOR) {
                struct mb_cursor c = r->wcursor;
                rc = go_cursor (r, &c, &e);
            } else
                rc = go_advance (r, r->wait_after, &e);
            if (rc < 0)
                return reader_fail (r, &e, errp);
            if (rc == 0) {
                r->idle = true;
                return 0;
            }
            continue;
        }

        char *p = r->buf + r->start;
        size_t avail = r->end - r->start;
        char *nl = avail > 0 ? memchr (p, '\n', avail) : NULL;

        if (nl) {
            size_t len = (size_t)(nl - p);
            uint64_t off = r->base + r->start;
            if (r->hole_grace > 0 && r->kind == SRC_ACTIVE && !r->longline &&
                memchr (p, '\0', len)) {
                int rc = hole_check (r, off, &refreshed, &e);
                if (rc < 0)
                    return reader_fail (r, &e, errp);
                if (rc == 1)
                    continue; /* read again: look at the line anew */
                if (rc == 2) {
                    r->idle = true;
                    r->hole_wait = true;
                    return 0;
                }
            }
            r->hole_since = 0;
            r->start += len + 1;
            if (r->longline) {
                r->longline = false;
                snprintf (r->reason, sizeof (r->reason),
                          "line of %ju bytes is over the limit of %zu",
                          (uintmax_t)(r->long_len + len + 1), r->max_record);
                return ev_corrupt (r, ev, r->long_off, r->base + r->start);
            }
            int lrc = line_event (r, p, len, off, r->base + r->start, ev, &e);
            if (lrc < 0)
                return reader_fail (r, &e, errp);
            if (lrc > 0)
                return 1;
            continue;
        }
        /* no complete line in the buffer: keep the partial one, read more */
        if (r->longline) {
            r->long_len += avail;
            r->base += r->end;
            r->start = r->end = 0;
        } else if (avail >= r->max_record) {
            r->longline = true;
            r->long_off = r->base + r->start;
            r->long_len = avail;
            r->base += r->end;
            r->start = r->end = 0;
        } else if (r->start > 0) {
            memmove (r->buf, p, avail);
            r->base += r->start;
            r->start = 0;
            r->end = avail;
        }
        if (r->end == r->cap && buf_grow (r, r->cap + 1, &e) < 0)
            return reader_fail (r, &e, errp);

        bool damaged = false;
        size_t room = r->cap - r->end;
        ssize_t n = src_read (r, r->buf + r->end, room, &damaged, &e);
        if (n < 0)
            return reader_fail (r, &e, errp);
        if (n > 0) {
            r->end += (size_t)n;
            /* a busy stream: read bigger blocks next time */
            if ((size_t)n == room && r->cap < READ_BUF_MAX &&
                buf_grow (r, r->cap * 2, &e) < 0)
                return reader_fail (r, &e, errp);
            continue;
        }
        /* end of file */
        if (r->kind == SRC_ACTIVE && !r->rotated) {
            if (!active_rotated (r)) {
                r->idle = true;
                if (r->start == r->end && r->cap <= READ_BUF_MIN) {
                    /* caught up: an idle stream holds no buffer (a
                     * thousand followed streams); a busy one keeps its
                     * bigger buffer
                     */
                    r->base += r->end;
                    r->start = r->end = 0;
                    free (r->buf);
                    r->buf = NULL;
                    r->cap = 0;
                }
                return 0;
            }
            r->rotated = true; /* drain what came before the rename */
            continue;
        }
        /* end of a segment that will not grow any more */
        avail = r->end - r->start;
        if (damaged) {
            r->finish = true;
            return ev_corrupt (r, ev, r->base + r->end, r->base + r->end);
        }
        if (r->longline) {
            r->finish = true;
            snprintf (r->reason, sizeof (r->reason),
                      "unterminated line of %ju bytes (over the limit of "
                      "%zu) at the end of the segment",
                      (uintmax_t)(r->long_len + avail), r->max_record);
            r->longline = false;
            r->start = r->end;
            return ev_corrupt (r, ev, r->long_off, r->base + r->end);
        }
        if (avail > 0) {
            uint64_t off = r->base + r->start;
            r->finish = true;
            r->start = r->end;
            snprintf (r->reason, sizeof (r->reason),
                      "unterminated line of %zu bytes at the end of the "
                      "segment",
                      avail);
            return ev_corrupt (r, ev, off, r->base + r->end);
        }
        int rc = finish_segment (r, &e);
        if (rc < 0)
            return reader_fail (r, &e, errp);
        if (rc == 0) {
            r->idle = true;
            return 0;
        }
    }
}

/* ---- the rest of the API ------------------------------------------------ */

mb_reader_t *mb_reader_open (const char *path, enum mb_start start,
                             const struct mb_cursor *cursor,
                             const struct mb_options *opt, cs_error_t *errp)
{
    mb_reader_t *r;
    struct mb_options defaults;
    struct mb_stream_name *sn = NULL;
    cs_error_t e;
    int rc = 0;

    if (!path || (start == MB_START_CURSOR && !cursor)) {
        errno = EINVAL;
        errprintf (errp, "invalid argument");
        return NULL;
    }
    if (!opt) {
        mb_options_init (&defaults);
        opt = &defaults;
    }
    if (!(r = calloc (1, sizeof (*r))) || !(r->path = strdup (path))) {
        free (r);
        errno = ENOMEM;
        errprintf (errp, "out of memory");
        return NULL;
    }
    r->fd = -1;
    r->max_record = opt->max_record ? opt->max_record : MB_DEFAULT_MAX_RECORD;
    {
        bool netfs = false;
        if (mb_fs_type (path, NULL, 0, &netfs, NULL) == 0 && netfs)
            r->hole_grace = HOLE_GRACE;
    }
    if (!(sn = malloc (sizeof (*sn)))) {
        errno = ENOMEM;
        errprintf (errp, "out of memory");
        goto error;
    }
    if (mb_stream_split (path, sn, errp) < 0)
        goto error;
    if (mb_secure_dir (sn->dir, false, &e) < 0 && errno != ENOENT) {
        errprintf (errp, "%s", e.text);
        goto error;
    }
    switch (start) {
    case MB_START_BEGIN:
        r->have_last = true;
        rc = go_advance (r, 0, errp);
        break;
    case MB_START_END:
        rc = go_end (r, errp);
        break;
    case MB_START_CURSOR:
        /* "0:0:S:O" is a position before any record was seen */
        r->have_last = !(cursor->seq == 0 && cursor->segment != 0);
        r->last_seq = cursor->seq;
        r->have_epoch = r->have_last && cursor->epoch != 0;
        r->last_epoch = cursor->epoch;
        r->cseg = cursor->segment;
        r->coff = cursor->offset;
        rc = go_cursor (r, cursor, errp);
        break;
    default:
        errno = EINVAL;
        errprintf (errp, "invalid start mode");
        goto error;
    }
    if (rc < 0)
        goto error;
    free (sn);
    return r;
error:
    free (sn);
    mb_reader_close (r);
    return NULL;
}

void mb_reader_close (mb_reader_t *r)
{
    if (r) {
        int saved = errno;
        close_source (r);
        if (r->pending)
            cJSON_Delete (r->prec.json);
        cJSON_Delete (r->out_json);
        free (r->buf);
        free (r->segs);
        free (r->file);
        free (r->path);
        free (r);
        errno = saved;
    }
}

void mb_reader_cursor (mb_reader_t *r, struct mb_cursor *c)
{
    if (!r || !c)
        return;
    c->seq = r->have_last ? r->last_seq : 0;
    c->epoch = r->have_epoch ? r->last_epoch : 0;
    if (r->kind != SRC_NONE) {
        c->segment = r->seg_first;
        c->offset = r->next_off;
    } else {
        c->segment = r->cseg;
        c->offset = r->coff;
    }
}

const char *mb_reader_path (mb_reader_t *r)
{
    return r ? r->path : NULL;
}

const char *mb_reader_error (mb_reader_t *r)
{
    return r && r->failed ? r->error.text : NULL;
}

void mb_reader_set_hole_grace (mb_reader_t *r, double seconds)
{
    r->hole_grace = seconds > 0 ? seconds : 0;
}

bool mb_reader_waiting (mb_reader_t *r)
{
    return r->kind == SRC_NONE && !r->failed;
}

bool mb_reader_poll_check (mb_reader_t *r, bool path)
{
    struct stat st;

    if (r->failed)
        return false;
    if (!r->idle || r->pending || r->finish || r->hole_wait)
        return true;
    if (!path) {
        if (r->kind != SRC_ACTIVE || fstat (r->fd, &st) < 0)
            return false;
        return (uint64_t)st.st_size != r->base + r->end;
    }
    if (stat (r->path, &st) < 0)
        return r->kind == SRC_ACTIVE; /* renamed away */
    if (r->kind != SRC_ACTIVE)
        return true; /* it has appeared */
    if (st.st_dev != r->dev || st.st_ino != r->ino)
        return true;
    return (uint64_t)st.st_size != r->base + r->end;
}

/* vi: ts=4 sw=4 expandtab
 */

const char *mb_event_name (enum mb_event_type t)
{
    switch (t) {
    case MB_EV_RECORD:
        return "record";
    case MB_EV_GAP:
        return "gap";
    case MB_EV_DUPLICATE:
        return "duplicate";
    case MB_EV_EPOCH:
        return "epoch";
    case MB_EV_CORRUPT:
        return "corrupt";
    }
    return "unknown";
}
