/* writer.c - the single writer of a stream
 *
 * Locking: "<path>.lock" (0600, never removed) carries an OFD write lock
 * (F_OFD_SETLK) for as long as the writer is open, and the writer's pid as
 * text.  The kernel drops the lock when the process dies, however it dies.
 * Where OFD locks are not supported (EINVAL) a process lock (F_SETLK) is
 * used; where the filesystem cannot lock at all (ENOSYS, EOPNOTSUPP,
 * ENOLCK: Lustre without -o flock) the writer opens anyway and
 * mb_writer_last_error says that one writer per stream is not enforced.
 *
 * Recovery on open, under the lock:
 *  1. interrupted rotations are finished: archive/<box>-<name>.*.jsonl.gz.tmp
 *     files are removed, a plain archive/...jsonl is compressed into its
 *     .jsonl.gz (or removed if the .gz already exists); a failure here does
 *     not fail the open (see mb_writer_last_error);
 *  2. a torn tail (the file does not end in '\n') is sealed by appending
 *     one '\n' -- never truncated;
 *  3. the last valid record of the active segment gives seq and epoch; when
 *     the active segment holds none, the newest sealed segment does (seq
 *     from its name, epoch from its last record);
 *  4. the new incarnation writes epoch = last epoch + 1 (1 for a new
 *     stream), and seq continues at last seq + 1.  An incarnation that
 *     writes nothing leaves no trace, so the epochs seen in a stream grow
 *     by exactly one from one incarnation to the next.
 *
 * Appending: the whole line is built in one reusable buffer and written
 * with one write(2) on the O_APPEND descriptor.  A short write is sealed
 * with a '\n' at once (the fragment becomes a corrupt line for readers) and
 * the append fails without consuming the seq.  Before the write, space for
 * the line is reserved with fallocate(FALLOC_FL_KEEP_SIZE) where the
 * filesystem supports it (64 KiB ahead at a time; the file's size does not
 * change), so that a full filesystem (ENOSPC, EDQUOT) fails the append
 * before a byte is written instead of leaving a fragment.
 *
 * Foreign writes: when the file's size is not what this writer left (a
 * process that ignored the lock appended to it), the last byte is read
 * before the append, and a line left without its newline is sealed like a
 * torn tail.
 *
 * Replaced files: before every append the descriptor's link count is
 * checked (fstat: a file removed or replaced by a rename over it has none
 * left), and at least every half second the path is compared with it
 * (device and inode, lstat: a file renamed away).  A stream file that was removed, or
 * replaced by anything but a regular file of ours, is never written to: the
 * append fails with ESTALE and says why.  A stream file replaced by another
 * regular file of ours (an editor's or `cp` + `mv`'s copy) is reopened and
 * its tail recovered; the writer keeps its epoch and continues after the
 * larger of its own last seq and the new file's.
 *
 * Rotation, after an append that reaches rotate_bytes or rotate_records:
 * fsync; rename the active segment to archive/<box>-<name>.<first>-<last>
 * .jsonl; fsync both directories; create a new empty active segment
 * (O_EXCL, 0600); compress the sealed segment to .jsonl.gz.tmp (gzip,
 * zlib level 1), fsync, rename to .jsonl.gz, remove the plain file.  The
 * first fsync is skipped with MB_FSYNC_NEVER (the .gz is fsync'd anyway).
 * The compression runs in a helper thread (all signals blocked), at most
 * one at a time: a rotation, mb_writer_settle and mb_writer_close wait for
 * the previous one.  The append that rotates thus pays only for the
 * renames and directory fsyncs; a 64 MiB segment takes a few hundred
 * milliseconds of the helper's CPU (level 1 deflate of JSON runs at
 * ~150-300 MB/s).  If the thread cannot be created the compression runs
 * synchronously.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/lineio.h"
#include "mailbox/mailbox.h"
#include "mailbox/private.h"

#define HEADER_MAX 256      /* envelope without the type string */

/* A sealed segment being compressed by the helper thread, which touches
 * nothing else.
 */
struct compress_job {
    char plain[MB_PATH_MAX];
    char gz[MB_PATH_MAX];
    cs_error_t err;
    int rc;
};

struct mb_writer {
    char path[MB_PATH_MAX];
    char lockpath[MB_PATH_MAX + 8];
    struct mb_stream_name sn;
    struct mb_options opt;
    int fd;                 /* active segment, O_APPEND; -1 after a failed
                               rotation left no active file open */
    int lockfd;
    uint64_t seq;           /* last seq written */
    uint64_t epoch;
    uint64_t seg_first;     /* first seq of the active segment (0: none) */
    uint64_t seg_records;
    uint64_t seg_bytes;
    bool torn;              /* a short write is not sealed yet */
    bool no_fallocate;      /* the filesystem cannot reserve space */
    double path_checked;    /* monotonic: the path was last compared */
    ino_t reserved_ino;     /* space reserved up to reserved_to in it */
    off_t reserved_to;
    bool pending;           /* records not yet synced (interval policy) */
    double pending_since;   /* monotonic seconds */
    double rotate_after;    /* monotonic: do not retry a failed rotation
                               before this */
    char *buf;
    size_t cap;
    size_t *ends;           /* mb_writer_append_batch: where records end */
    size_t nends;
    cs_error_t last_error;  /* the last rotation/compression failure */
    bool have_error;
    struct compress_job job;
    pthread_t job_thread;
    bool job_running;
    char lock_warning[MB_PATH_MAX + 256]; /* the filesystem cannot lock */
};

static double mono_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int buf_reserve (mb_writer_t *w, size_t need)
{
    if (need <= w->cap)
        return 0;
    size_t ncap = w->cap ? w->cap : 4096;
    while (ncap < need)
        ncap *= 2;
    char *n = realloc (w->buf, ncap);
    if (!n) {
        errno = ENOMEM;
        return -1;
    }
    w->buf = n;
    w->cap = ncap;
    return 0;
}

/* ---- lock --------------------------------------------------------------- */

static int lock_take (mb_writer_t *w, cs_error_t *errp)
{
    struct flock fl = {
        .l_type = F_WRLCK,
        .l_whence = SEEK_SET,
        .l_start = 0,
        .l_len = 0,
    };
    char text[32];
    int n;

    if ((w->lockfd = mb_secure_open (w->lockpath, O_RDWR | O_CREAT, errp)) < 0)
        return -1;
    int cmd = F_OFD_SETLK;
    while (fcntl (w->lockfd, cmd, &fl) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EINVAL && cmd == F_OFD_SETLK) {
            cmd = F_SETLK;  /* no OFD locks here: per-process locks */
            continue;
        }
        if (errno == ENOSYS || errno == EOPNOTSUPP || errno == ENOLCK) {
            /* e.g. Lustre mounted without -o flock: go on, but say so */
            snprintf (w->lock_warning, sizeof (w->lock_warning),
                      "cannot lock '%s': %s: one writer per stream is not "
                      "enforced on this filesystem",
                      w->lockpath, strerror (errno));
            break;
        }
        if (errno == EAGAIN || errno == EACCES) {
            char pid[32] = "unknown";
            ssize_t r = pread (w->lockfd, text, sizeof (text) - 1, 0);
            if (r > 0) {
                text[r] = '\0';
                size_t k = strspn (text, "0123456789");
                if (k > 0 && k < sizeof (pid)) {
                    memcpy (pid, text, k);
                    pid[k] = '\0';
                }
            }
            errno = EBUSY;
            return errprintf (errp, "stream '%s' already has a writer (pid %s)",
                              w->path, pid);
        }
        return errprintf (errp, "cannot lock '%s': %s", w->lockpath,
                          strerror (errno));
    }
    n = snprintf (text, sizeof (text), "%ld\n", (long)getpid ());
    if (ftruncate (w->lockfd, 0) < 0
        || pwrite (w->lockfd, text, (size_t)n, 0) != n)
        return errprintf (errp, "cannot write '%s': %s", w->lockpath,
                          strerror (errno));
    return 0;
}

/* ---- interrupted rotations --------------------------------------------- */

/* Remove .gz.tmp leftovers and compress plain sealed segments of this
 * stream.  Needs the lock.
 */
static int finish_rotations (mb_writer_t *w, cs_error_t *errp)
{
    struct stat st;
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t count = 0, cap = 0;
    int rc = -1;

    if (lstat (w->sn.archive, &st) < 0 && errno == ENOENT)
        return 0;
    if (mb_secure_dir (w->sn.archive, false, errp) < 0)
        return -1;
    if (!(d = opendir (w->sn.archive)))
        return errprintf (errp, "cannot open directory '%s': %s",
                          w->sn.archive, strerror (errno));
    while ((de = readdir (d))) {
        uint64_t first, last;
        enum mb_seg_kind kind;
        if (mb_segment_name_parse (de->d_name, w->sn.prefix, &first, &last,
                                   &kind) < 0
            || kind == MB_SEG_GZ)
            continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **n = realloc (names, ncap * sizeof (*names));
            if (!n)
                goto nomem;
            names = n;
            cap = ncap;
        }
        if (!(names[count] = strdup (de->d_name)))
            goto nomem;
        count++;
    }
    closedir (d);
    d = NULL;
    for (size_t i = 0; i < count; i++) {
        char path[MB_PATH_MAX], gz[MB_PATH_MAX];
        uint64_t first, last;
        enum mb_seg_kind kind;
        (void)mb_segment_name_parse (names[i], w->sn.prefix, &first, &last,
                                     &kind);
        if (snprintf (path, sizeof (path), "%s/%s", w->sn.archive, names[i])
            >= (int)sizeof (path))
            continue;
        if (kind == MB_SEG_TMP) {
            if (unlink (path) < 0 && errno != ENOENT) {
                errprintf (errp, "cannot remove '%s': %s", path,
                           strerror (errno));
                goto out;
            }
            continue;
        }
        /* plain: compress unless the .gz made it already */
        if (mb_segment_path (&w->sn, first, last, ".gz", gz, sizeof (gz)) < 0)
            continue;
        if (lstat (gz, &st) == 0) {
            if (unlink (path) < 0 && errno != ENOENT) {
                errprintf (errp, "cannot remove '%s': %s", path,
                           strerror (errno));
                goto out;
            }
            continue;
        }
        if (mb_segment_compress (path, gz, errp) < 0)
            goto out;
    }
    rc = 0;
    goto out;
nomem:
    errno = ENOMEM;
    errprintf (errp, "out of memory");
out: {
    int saved = errno;
    if (d)
        closedir (d);
    for (size_t i = 0; i < count; i++)
        free (names[i]);
    free (names);
    errno = saved;
    return rc;
}
}

/* ---- recovery ------------------------------------------------------------ */

static int recover (mb_writer_t *w, cs_error_t *errp)
{
    struct stat st;
    uint64_t size, last = 0, epoch = 0, first = 0, fepoch;
    bool found = false, ffound = false;

    if (fstat (w->fd, &st) < 0)
        return errprintf (errp, "cannot stat '%s': %s", w->path,
                          strerror (errno));
    size = (uint64_t)st.st_size;
    if (size > 0) {
        char c;
        ssize_t n;
        do {
            n = pread (w->fd, &c, 1, (off_t)(size - 1));
        } while (n < 0 && errno == EINTR);
        if (n != 1)
            return errprintf (errp, "cannot read '%s': %s", w->path,
                              n < 0 ? strerror (errno) : "short read");
        if (c != '\n') {
            /* torn tail: seal it, never truncate */
            if (fd_write_all (w->fd, "\n", 1) < 0)
                return errprintf (errp, "cannot seal the torn tail of '%s': "
                                  "%s", w->path, strerror (errno));
            size++;
            if (w->opt.fsync != MB_FSYNC_NEVER && fdatasync (w->fd) < 0)
                return errprintf (errp, "cannot fdatasync '%s': %s", w->path,
                                  strerror (errno));
        }
        if (mb_scan_last_record (w->fd, size, w->opt.max_record, &last,
                                 &epoch, &found) < 0
            || (found && mb_scan_first_record (w->fd, size, w->opt.max_record,
                                               &first, &fepoch, &ffound) < 0))
            return errprintf (errp, "cannot read '%s': %s", w->path,
                              strerror (errno));
    }
    if (found) {
        if (!ffound || first > last)
            first = last;
        w->seg_first = first;
        w->seg_records = last - first + 1;
    }
    else {
        struct mb_segment *segs = NULL;
        size_t count = 0;
        if (mb_segments_list (w->path, &segs, &count, errp) < 0)
            return -1;
        if (count > 0) {
            struct mb_segment *s = &segs[count - 1];
            bool gfound = false;
            uint64_t gseq;
            last = s->last;
            if (mb_gz_last_record (s->path, w->opt.max_record, &gseq, &epoch,
                                   &gfound, errp) < 0) {
                free (segs);
                return -1;
            }
            if (!gfound)
                epoch = 0;
        }
        free (segs);
        w->seg_first = 0;
        w->seg_records = 0;
    }
    w->seq = last;
    w->epoch = epoch + 1;
    w->seg_bytes = size;
    return 0;
}

/* ---- compression in a helper thread ------------------------------------- */

static void *job_run (void *arg)
{
    struct compress_job *job = arg;
    job->rc = mb_segment_compress (job->plain, job->gz, &job->err);
    return NULL;
}

/* Collect the helper's result: wait for it, or only look when !wait. */
static void job_collect (mb_writer_t *w, bool wait)
{
    if (!w->job_running)
        return;
    if (wait) {
        if (pthread_join (w->job_thread, NULL) != 0)
            return;
    }
    else if (pthread_tryjoin_np (w->job_thread, NULL) != 0)
        return;
    w->job_running = false;
    if (w->job.rc < 0) {
        w->last_error = w->job.err;
        w->have_error = true;
    }
}

static void job_start (mb_writer_t *w, const char *plain, const char *gz)
{
    sigset_t all, old;
    int rc;

    snprintf (w->job.plain, sizeof (w->job.plain), "%s", plain);
    snprintf (w->job.gz, sizeof (w->job.gz), "%s", gz);
    w->job.rc = 0;
    w->job.err.text[0] = '\0';
    sigfillset (&all);
    pthread_sigmask (SIG_SETMASK, &all, &old);
    rc = pthread_create (&w->job_thread, NULL, job_run, &w->job);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (rc == 0) {
        w->job_running = true;
        return;
    }
    job_run (&w->job);
    if (w->job.rc < 0) {
        w->last_error = w->job.err;
        w->have_error = true;
    }
}

/* ---- rotation ------------------------------------------------------------ */

static int rotate (mb_writer_t *w, cs_error_t *errp)
{
    char plain[MB_PATH_MAX], gz[MB_PATH_MAX];
    int nfd;

    /* one compression at a time; redo what an earlier failure left */
    job_collect (w, true);
    if (w->have_error && finish_rotations (w, &w->last_error) == 0)
        w->have_error = false;
    if (w->opt.fsync != MB_FSYNC_NEVER && fsync (w->fd) < 0)
        return errprintf (errp, "cannot fsync '%s': %s", w->path,
                          strerror (errno));
    if (mb_secure_dir (w->sn.archive, true, errp) < 0)
        return -1;
    if (mb_segment_path (&w->sn, w->seg_first, w->seq, "", plain,
                         sizeof (plain)) < 0
        || mb_segment_path (&w->sn, w->seg_first, w->seq, ".gz", gz,
                            sizeof (gz)) < 0)
        return errprintf (errp, "archive path too long");
    if (rename (w->path, plain) < 0)
        return errprintf (errp, "cannot rename '%s' to '%s': %s", w->path,
                          plain, strerror (errno));
    (void)mb_fsync_dir (w->sn.archive, true);
    (void)mb_fsync_dir (w->sn.dir, true);
    close (w->fd);
    w->fd = -1;
    w->seg_first = 0;
    w->seg_records = 0;
    w->seg_bytes = 0;
    w->pending = false;
    nfd = mb_secure_open (w->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL, errp);
    if (nfd < 0)
        return -1;  /* append retries opening it */
    w->fd = nfd;
    (void)mb_fsync_dir (w->sn.dir, true);
    /* a failure leaves it plain, finished by the next rotation or open */
    job_start (w, plain, gz);
    return 0;
}

static void rotate_maybe (mb_writer_t *w)
{
    bool due = (w->opt.rotate_bytes > 0 && w->seg_bytes >= w->opt.rotate_bytes)
               || (w->opt.rotate_records > 0
                   && w->seg_records >= w->opt.rotate_records);
    if (!due || w->seg_records == 0)
        return;
    if (w->rotate_after > 0 && mono_now () < w->rotate_after)
        return;
    if (rotate (w, &w->last_error) < 0) {
        w->have_error = true;
        w->rotate_after = mono_now () + 1.0;
        return;
    }
    w->rotate_after = 0;
}

/* ---- open/close ---------------------------------------------------------- */

void mb_writer_close (mb_writer_t *w)
{
    if (w) {
        int saved = errno;
        job_collect (w, true);
        if (w->fd >= 0) {
            if (w->opt.fsync != MB_FSYNC_NEVER)
                (void)fdatasync (w->fd);
            close (w->fd);
        }
        if (w->lockfd >= 0)
            close (w->lockfd);
        free (w->buf);
        free (w->ends);
        free (w);
        errno = saved;
    }
}

mb_writer_t *mb_writer_open (const char *path, const struct mb_options *opt,
                             cs_error_t *errp)
{
    mb_writer_t *w;

    if (!path) {
        errno = EINVAL;
        errprintf (errp, "no stream path");
        return NULL;
    }
    if (!(w = calloc (1, sizeof (*w)))) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    w->fd = -1;
    w->lockfd = -1;
    if (opt)
        w->opt = *opt;
    else
        mb_options_init (&w->opt);
    if (w->opt.max_record == 0)
        w->opt.max_record = MB_DEFAULT_MAX_RECORD;
    if (strlen (path) >= sizeof (w->path)) {
        errno = ENAMETOOLONG;
        errprintf (errp, "stream path too long");
        goto error;
    }
    strcpy (w->path, path);
    snprintf (w->lockpath, sizeof (w->lockpath), "%s.lock", path);
    if (mb_stream_split (path, &w->sn, errp) < 0
        || mb_secure_dir (w->sn.dir, true, errp) < 0 || lock_take (w, errp) < 0)
        goto error;
    /* not fatal: a plain sealed segment reads fine, and the next rotation
     * tries again
     */
    if (finish_rotations (w, &w->last_error) < 0)
        w->have_error = true;
    w->fd = mb_secure_open (path, O_RDWR | O_APPEND | O_CREAT, errp);
    if (w->fd < 0 || recover (w, errp) < 0)
        goto error;
    if (buf_reserve (w, 4096) < 0) {
        errprintf (errp, "out of memory");
        goto error;
    }
    rotate_maybe (w);
    return w;
error:
    mb_writer_close (w);
    return NULL;
}

/* ---- append -------------------------------------------------------------- */

static size_t put (char *p, const char *s, size_t n)
{
    memcpy (p, s, n);
    return n;
}

static int check_type (const char *type, cs_error_t *errp)
{
    size_t n;
    if (!type || (n = strlen (type)) == 0) {
        errno = EINVAL;
        return errprintf (errp, "record type is empty");
    }
    if (mb_utf8_invalid (type, n) >= 0) {
        errno = EINVAL;
        return errprintf (errp, "record type is not valid UTF-8");
    }
    return 0;
}

/* Envelope up to and including the type string; returns its length.  The
 * buffer must hold HEADER_MAX + 6 * strlen (type).
 */
static size_t put_header (mb_writer_t *w, char *b, uint64_t seq,
                          const char *type)
{
    static const char hex[] = "0123456789abcdef";
    struct timespec ts;
    char *p = b;
    uint64_t usec;

    clock_gettime (CLOCK_REALTIME, &ts);
    usec = (uint64_t)ts.tv_nsec / 1000;
    p += put (p, "{\"v\":1,\"seq\":", 13);
    p += mb_u64_format (p, seq);
    p += put (p, ",\"epoch\":", 9);
    p += mb_u64_format (p, w->epoch);
    p += put (p, ",\"ts\":", 6);
    p += mb_u64_format (p, (uint64_t)ts.tv_sec);
    *p++ = '.';
    for (int i = 5; i >= 0; i--) {
        p[i] = (char)('0' + usec % 10);
        usec /= 10;
    }
    p += 6;
    p += put (p, ",\"type\":\"", 9);
    for (const unsigned char *t = (const unsigned char *)type; *t; t++) {
        if (*t == '"' || *t == '\\') {
            *p++ = '\\';
            *p++ = (char)*t;
        }
        else if (*t < 0x20) {
            p += put (p, "\\u00", 4);
            *p++ = hex[*t >> 4];
            *p++ = hex[*t & 15];
        }
        else
            *p++ = (char)*t;
    }
    *p++ = '"';
    return (size_t)(p - b);
}

static bool reserved_name (const char *s, size_t n)
{
    switch (n) {
        case 1:
            return s[0] == 'v';
        case 2:
            return !memcmp (s, "ts", 2);
        case 3:
            return !memcmp (s, "seq", 3);
        case 4:
            return !memcmp (s, "type", 4);
        case 5:
            return !memcmp (s, "epoch", 5);
    }
    return false;
}

#define PATH_CHECK 0.5    /* seconds */

/* Is w->fd still the file at w->path?  Reopens a replacement that is a
 * regular file of ours; fails (ESTALE) for anything else.  *size gets the
 * size of the file to append to.
 */
static int stream_check (mb_writer_t *w, off_t *size, ino_t *ino,
                         cs_error_t *errp)
{
    struct stat fst, pst;
    uint64_t seq = w->seq, epoch = w->epoch;
    int fd, saved_fd;

    if (fstat (w->fd, &fst) < 0)
        return errprintf (errp, "cannot stat '%s': %s", w->path,
                          strerror (errno));
    /* a file removed, or replaced by a rename over it, has no link left;
     * the path itself (a lookup per directory level) is compared at most
     * every PATH_CHECK seconds, for a file renamed away
     */
    double now = mono_now ();
    if (fst.st_nlink > 0 && now - w->path_checked < PATH_CHECK) {
        *size = fst.st_size;
        *ino = fst.st_ino;
        return 0;
    }
    if (lstat (w->path, &pst) == 0 && pst.st_dev == fst.st_dev
        && pst.st_ino == fst.st_ino && fst.st_nlink > 0) {
        w->path_checked = now;
        *size = fst.st_size;
        *ino = fst.st_ino;
        return 0;
    }
    if (lstat (w->path, &pst) < 0) {
        int e = errno;
        errno = ESTALE;
        return errprintf (errp, "stream '%s' was removed (%s): not appending "
                          "to the unlinked file", w->path, strerror (e));
    }
    if (!S_ISREG (pst.st_mode) || pst.st_uid != geteuid ()) {
        errno = ESTALE;
        return errprintf (errp, "stream '%s' was replaced by %s: not "
                          "appending", w->path,
                          S_ISLNK (pst.st_mode) ? "a symlink"
                          : !S_ISREG (pst.st_mode) ? "something that is not "
                                                     "a regular file"
                          : "a file owned by another user");
    }
    if ((fd = mb_secure_open (w->path, O_RDWR | O_APPEND, errp)) < 0) {
        int e = errno;
        errprefix (errp, "stream '%s' was replaced", w->path);
        errno = e == ENOENT ? ESTALE : e;
        return -1;
    }
    saved_fd = w->fd;
    w->fd = fd;
    w->torn = false;
    if (recover (w, errp) < 0) {
        int e = errno;
        close (fd);
        w->fd = saved_fd;
        w->seq = seq;
        w->epoch = epoch;
        errprefix (errp, "stream '%s' was replaced", w->path);
        errno = e;
        return -1;
    }
    close (saved_fd);
    /* the same incarnation goes on in the new file */
    if (w->seq <= seq) {
        w->seq = seq;
        w->epoch = epoch;
    }
    if (fstat (w->fd, &fst) < 0)
        return errprintf (errp, "cannot stat '%s': %s", w->path,
                          strerror (errno));
    *size = fst.st_size;
    *ino = fst.st_ino;
    return 0;
}

/* Reserve len bytes at the end of the file, so that a full filesystem
 * fails the append before anything is written.  Space is reserved
 * RESERVE_CHUNK at a time (len alone when a chunk does not fit).
 */
#define RESERVE_CHUNK (64 * 1024)

static int falloc (int fd, off_t off, off_t len)
{
    int rc;
    do {
        rc = fallocate (fd, FALLOC_FL_KEEP_SIZE, off, len);
    } while (rc < 0 && errno == EINTR);
    return rc;
}

static int reserve_space (mb_writer_t *w, ino_t ino, off_t size, size_t len)
{
    off_t want = (off_t)len > RESERVE_CHUNK ? (off_t)len : RESERVE_CHUNK;

    if (w->no_fallocate)
        return 0;
    if (w->reserved_ino == ino && size + (off_t)len <= w->reserved_to)
        return 0;
    if (falloc (w->fd, size, want) == 0) {
        w->reserved_ino = ino;
        w->reserved_to = size + want;
        return 0;
    }
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) {
        w->no_fallocate = true;
        return 0;
    }
    if ((errno == ENOSPC || errno == EDQUOT) && want > (off_t)len
        && falloc (w->fd, size, (off_t)len) == 0) {
        w->reserved_ino = ino;
        w->reserved_to = size + (off_t)len;
        return 0;
    }
    w->reserved_ino = 0;
    return -1;
}

/* Before writing len bytes: the stream checked (reopened when replaced),
 * a line someone else left open sealed, space reserved.
 */
static int commit_prepare (mb_writer_t *w, size_t len, cs_error_t *errp)
{
    if (w->fd < 0) {
        /* a rotation failed to create the new active segment: retry */
        w->fd = mb_secure_open (w->path, O_RDWR | O_APPEND | O_CREAT, errp);
        if (w->fd < 0)
            return errprefix (errp, "cannot append to '%s'", w->path);
    }
    off_t size;
    ino_t ino;
    if (stream_check (w, &size, &ino, errp) < 0)
        return -1;
    if (!w->torn && size > 0 && (uint64_t)size != w->seg_bytes) {
        /* someone else wrote to the stream: a line they left without its
         * newline is sealed, so that this record is not glued to it
         */
        char c;
        ssize_t m;
        do {
            m = pread (w->fd, &c, 1, size - 1);
        } while (m < 0 && errno == EINTR);
        if (m != 1)
            return errprintf (errp, "cannot read '%s': %s", w->path,
                              m < 0 ? strerror (errno) : "short read");
        w->torn = c != '\n';
        w->seg_bytes = (uint64_t)size;
    }
    if (reserve_space (w, ino, size, len + (w->torn ? 1 : 0)) < 0)
        return errprintf (errp, "cannot append to '%s': %s", w->path,
                          strerror (errno));
    if (w->torn) {
        if (fd_write_all (w->fd, "\n", 1) < 0)
            return errprintf (errp, "cannot seal a torn record in '%s': %s",
                              w->path, strerror (errno));
        w->torn = false;
        w->seg_bytes++;
    }
    return 0;
}

/* After records were written: the sync policy, then rotation. */
static int commit_finish (mb_writer_t *w, cs_error_t *errp)
{
    int rc = 0;
    if (w->opt.fsync == MB_FSYNC_ALWAYS) {
        if (fdatasync (w->fd) < 0)
            rc = errprintf (errp, "record %ju appended to '%s' but fdatasync "
                            "failed: %s", (uintmax_t)w->seq, w->path,
                            strerror (errno));
    }
    else if (w->opt.fsync == MB_FSYNC_INTERVAL) {
        double now = mono_now ();
        if (!w->pending) {
            w->pending = true;
            w->pending_since = now;
        }
        if (now - w->pending_since >= w->opt.fsync_interval) {
            if (fdatasync (w->fd) < 0)
                rc = errprintf (errp, "record %ju appended to '%s' but "
                                "fdatasync failed: %s", (uintmax_t)w->seq,
                                w->path, strerror (errno));
            else
                w->pending = false;
        }
    }
    rotate_maybe (w);
    return rc;
}

/* seal_fragment: end what a short write left with a newline, so that
 * nothing is glued to it.  False, with the stream torn and *errp set to
 * write's errno when there is one, when the newline could not be written.
 */
static bool seal_fragment (mb_writer_t *w, int *errp)
{
    ssize_t m;

    do {
        m = write (w->fd, "\n", 1);
    } while (m < 0 && errno == EINTR);
    if (m == 1) {
        w->seg_bytes++;
        return true;
    }
    w->torn = true;
    if (m < 0)
        *errp = errno;
    return false;
}

/* Write buf[0..len) as one record; see the top of the file. */
static int commit (mb_writer_t *w, size_t len, uint64_t *seqp,
                   cs_error_t *errp)
{
    ssize_t n;

    if (len > w->opt.max_record) {
        errno = EMSGSIZE;
        return errprintf (errp, "record of %zu bytes is over the limit of %zu",
                          len, w->opt.max_record);
    }
    if (commit_prepare (w, len, errp) < 0)
        return -1;
    do {
        n = write (w->fd, w->buf, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errprintf (errp, "cannot append to '%s': %s", w->path,
                          strerror (errno));
    if ((size_t)n == len - 1) {
        /* all but the newline: sealing it completes the record, so the
         * record counts (it would parse once sealed, by us or by recovery)
         */
        int err = EIO;
        w->seg_bytes += (uint64_t)n;
        if (!seal_fragment (w, &err)) {
            w->seq++;
            w->seg_records++;
            if (w->seg_first == 0)
                w->seg_first = w->seq;
            if (seqp)
                *seqp = w->seq;
            errno = err;
            return errprintf (errp, "record %ju appended to '%s' without its "
                              "newline: %s", (uintmax_t)w->seq, w->path,
                              strerror (err));
        }
        w->seg_bytes -= len;    /* counted again below */
    }
    else if ((size_t)n < len) {
        /* find out why, and seal the fragment so nothing is glued to it */
        int err = EIO;
        w->seg_bytes += (uint64_t)n;
        (void)seal_fragment (w, &err);
        errno = err;
        return errprintf (errp, "short write to '%s' (%zd of %zu bytes): "
                          "record not written%s", w->path, n, len,
                          w->torn ? "" : ", fragment sealed");
    }
    w->seq++;
    w->seg_records++;
    w->seg_bytes += len;
    if (w->seg_first == 0)
        w->seg_first = w->seq;
    if (seqp)
        *seqp = w->seq;
    return commit_finish (w, errp);
}

/* Serialized payload members m[0..len), in place: fail (EINVAL) on a
 * top-level member name reserved for the envelope; turn raw newlines
 * outside strings into spaces.  Strings are skipped with memchr: valid
 * JSON has no raw newline in them, and only their closing quote matters.
 */
static int members_check (char *m, size_t len, cs_error_t *errp)
{
    int depth = 0;

    for (size_t i = 0; i < len; i++) {
        char c = m[i];
        if (c == '"') {
            size_t key_start = i + 1, j = key_start;
            for (;;) {
                const char *q = memchr (m + j, '"', len - j);
                size_t b;
                if (!q) {
                    j = len;
                    break;
                }
                j = (size_t)(q - m);
                for (b = j; b > key_start && m[b - 1] == '\\'; b--)
                    ;
                if ((j - b) % 2 == 0)
                    break;      /* not escaped: the string ends here */
                j++;
            }
            if (depth == 0 && j < len) {
                /* a top-level string followed by ':' is a name */
                size_t k = j + 1;
                while (k < len && (m[k] == ' ' || m[k] == '\t'
                                   || m[k] == '\n' || m[k] == '\r'))
                    k++;
                if (k < len && m[k] == ':'
                    && reserved_name (m + key_start, j - key_start)) {
                    errno = EINVAL;
                    return errprintf (errp, "payload member \"%.*s\" is "
                                      "reserved for the envelope",
                                      (int)(j - key_start), m + key_start);
                }
            }
            i = j;
        }
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']')
            depth--;
        else if (c == '\n')
            m[i] = ' ';
    }
    return 0;
}

/* Build the record of seq with the given members at w->buf + at (the
 * buffer grown as needed); *lenp gets its length.
 */
static int put_record (mb_writer_t *w, size_t at, uint64_t seq,
                       const char *type, size_t tlen, const char *members,
                       size_t len, size_t *lenp, cs_error_t *errp)
{
    size_t pos;
    ssize_t bad;

    if (len > 0 && !members) {
        errno = EINVAL;
        return errprintf (errp, "invalid argument");
    }
    if (len > 0) {
        if (memchr (members, '\0', len)) {
            errno = EINVAL;
            return errprintf (errp, "payload contains a NUL byte");
        }
        if ((bad = mb_utf8_invalid (members, len)) >= 0) {
            errno = EINVAL;
            return errprintf (errp, "payload is not valid UTF-8 at byte %zd",
                              bad);
        }
    }
    if (len + tlen > w->opt.max_record) {
        errno = EMSGSIZE;
        return errprintf (errp, "record of more than %zu bytes is over the "
                          "limit of %zu", len + tlen, w->opt.max_record);
    }
    if (buf_reserve (w, at + HEADER_MAX + tlen * 6 + len + 3) < 0)
        return errprintf (errp, "out of memory");
    pos = at + put_header (w, w->buf + at, seq, type);
    if (len > 0) {
        /* copy, then check the top-level member names and turn raw
         * newlines (whitespace between tokens in valid JSON) into spaces
         */
        char *d = w->buf + pos;
        *d++ = ',';
        memcpy (d, members, len);
        if (members_check (d, len, errp) < 0)
            return -1;
        pos += len + 1;
    }
    w->buf[pos++] = '}';
    w->buf[pos++] = '\n';
    *lenp = pos - at;
    return 0;
}

int mb_writer_append_members (mb_writer_t *w, const char *type,
                              const char *members, size_t len, uint64_t *seqp,
                              cs_error_t *errp)
{
    size_t rlen;

    if (!w || (len > 0 && !members)) {
        errno = EINVAL;
        return errprintf (errp, "invalid argument");
    }
    if (check_type (type, errp) < 0)
        return -1;
    if (put_record (w, 0, w->seq + 1, type, strlen (type), members, len,
                    &rlen, errp) < 0)
        return -1;
    return commit (w, rlen, seqp, errp);
}

/* Write buf[0..ends[n-1]) (n records, record i ending at ends[i]) with one
 * write; *donep gets the number of records appended.
 */
static int commit_batch (mb_writer_t *w, const size_t *ends, size_t n,
                         size_t *donep, cs_error_t *errp)
{
    size_t len = ends[n - 1], k = 0;
    ssize_t wn;
    int rc = 0;

    *donep = 0;
    if (commit_prepare (w, len, errp) < 0)
        return -1;
    do {
        wn = write (w->fd, w->buf, len);
    } while (wn < 0 && errno == EINTR);
    if (wn < 0)
        return errprintf (errp, "cannot append to '%s': %s", w->path,
                          strerror (errno));
    w->seg_bytes += (uint64_t)wn;
    while (k < n && ends[k] <= (size_t)wn)
        k++;
    if ((size_t)wn < len) {
        /* a short write: the records written whole count; one short of
         * its newline alone is completed by sealing it, any other
         * fragment is sealed so that nothing is glued to it
         */
        size_t start = k > 0 ? ends[k - 1] : 0;
        bool complete = (size_t)wn == ends[k] - 1;
        int err = EIO;
        bool sealed = true;
        if ((size_t)wn > start) {
            sealed = seal_fragment (w, &err);
            if (complete)
                k++;    /* it counts: sealed now, or by the next append */
        }
        if (k < n || !sealed) {
            errno = err;
            rc = errprintf (errp, "short write to '%s' (%zd of %zu bytes): "
                            "%zu of %zu records appended", w->path, wn, len,
                            k, n);
        }
    }
    w->seq += k;
    w->seg_records += k;
    if (w->seg_first == 0 && k > 0)
        w->seg_first = w->seq - k + 1;
    *donep = k;
    if (k == 0)
        return rc;
    if (rc < 0) {
        cs_error_t e2;
        (void)commit_finish (w, &e2);
        return rc;
    }
    return commit_finish (w, errp);
}

int mb_writer_append_batch (mb_writer_t *w, const char *type,
                            const struct mb_members *m, size_t n,
                            uint64_t *first_seqp, size_t *donep,
                            cs_error_t *errp)
{
    size_t tlen, at = 0, k, done = 0;
    cs_error_t bad;
    int rc, bad_errno = 0;

    if (donep)
        *donep = 0;
    if (!w || (n > 0 && !m)) {
        errno = EINVAL;
        return errprintf (errp, "invalid argument");
    }
    if (n == 0)
        return 0;
    if (check_type (type, errp) < 0)
        return -1;
    tlen = strlen (type);
    if (first_seqp)
        *first_seqp = w->seq + 1;
    if (n > w->nends) {
        size_t *e = realloc (w->ends, n * sizeof (*e));
        if (!e) {
            errno = ENOMEM;
            return errprintf (errp, "out of memory");
        }
        w->ends = e;
        w->nends = n;
    }
    /* the records up to the first one that cannot be made */
    for (k = 0; k < n; k++) {
        size_t rlen;
        if (put_record (w, at, w->seq + 1 + k, type, tlen, m[k].data,
                        m[k].len, &rlen, &bad) < 0) {
            bad_errno = errno;
            break;
        }
        at += rlen;
        w->ends[k] = at;
    }
    if (k == 0) {
        errno = bad_errno;
        return errprintf (errp, "%s", bad.text);
    }
    rc = commit_batch (w, w->ends, k, &done, errp);
    if (donep)
        *donep = done;
    if (rc == 0 && k < n) {
        errno = bad_errno;
        return errprintf (errp, "record %zu of the batch: %s", k, bad.text);
    }
    return rc;
}

int mb_writer_append (mb_writer_t *w, const char *type, const cJSON *payload,
                      uint64_t *seqp, cs_error_t *errp)
{
    size_t pos, plen, tlen;
    ssize_t bad;

    if (!w) {
        errno = EINVAL;
        return errprintf (errp, "invalid argument");
    }
    if (check_type (type, errp) < 0)
        return -1;
    if (payload && !cJSON_IsObject (payload)) {
        errno = EINVAL;
        return errprintf (errp, "payload is not a JSON object");
    }
    for (const cJSON *m = payload ? payload->child : NULL; m; m = m->next) {
        if (m->string && reserved_name (m->string, strlen (m->string))) {
            errno = EINVAL;
            return errprintf (errp, "payload member \"%s\" is reserved for "
                              "the envelope", m->string);
        }
    }
    tlen = strlen (type);
    if (buf_reserve (w, HEADER_MAX + tlen * 6 + 64) < 0)
        return errprintf (errp, "out of memory");
    pos = put_header (w, w->buf, w->seq + 1, type);
    if (!payload || !payload->child) {
        w->buf[pos++] = '}';
        w->buf[pos++] = '\n';
        return commit (w, pos, seqp, errp);
    }
    /* print the payload object in place: its '{' becomes the ',' after
     * the type, its '}' closes the record
     */
    for (;;) {
        size_t room = w->cap - pos - 1;     /* keep one byte for '\n' */
        if (cJSON_PrintPreallocated ((cJSON *)payload, w->buf + pos,
                                     (int)(room > 0x7fffffff ? 0x7fffffff
                                                             : room),
                                     0))
            break;
        if (w->cap - pos > w->opt.max_record + 64) {
            errno = EMSGSIZE;
            return errprintf (errp, "record is over the limit of %zu bytes",
                              w->opt.max_record);
        }
        if (buf_reserve (w, w->cap * 2) < 0)
            return errprintf (errp, "out of memory");
    }
    plen = strlen (w->buf + pos);
    if (plen < 2 || w->buf[pos] != '{' || w->buf[pos + plen - 1] != '}') {
        errno = EINVAL;
        return errprintf (errp, "payload did not print as a JSON object");
    }
    if ((bad = mb_utf8_invalid (w->buf + pos, plen)) >= 0) {
        errno = EINVAL;
        return errprintf (errp, "payload is not valid UTF-8 at byte %zd",
                          bad);
    }
    w->buf[pos] = ',';
    pos += plen;
    w->buf[pos++] = '\n';
    return commit (w, pos, seqp, errp);
}

uint64_t mb_writer_seq (mb_writer_t *w)
{
    return w ? w->seq : 0;
}

uint64_t mb_writer_epoch (mb_writer_t *w)
{
    return w ? w->epoch : 0;
}

int mb_writer_sync (mb_writer_t *w)
{
    if (!w) {
        errno = EINVAL;
        return -1;
    }
    if (w->fd >= 0 && fdatasync (w->fd) < 0)
        return -1;
    w->pending = false;
    return 0;
}

double mb_writer_sync_due (mb_writer_t *w)
{
    if (!w || w->opt.fsync != MB_FSYNC_INTERVAL || !w->pending)
        return -1;
    double due = w->pending_since + w->opt.fsync_interval - mono_now ();
    return due > 0 ? due : 0;
}

const char *mb_writer_last_error (mb_writer_t *w)
{
    if (!w)
        return NULL;
    job_collect (w, false);
    if (w->have_error)
        return w->last_error.text;
    return w->lock_warning[0] ? w->lock_warning : NULL;
}

int mb_writer_settle (mb_writer_t *w)
{
    if (!w) {
        errno = EINVAL;
        return -1;
    }
    job_collect (w, true);
    if (w->have_error) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int mb_stream_writer (const char *path, pid_t *pid)
{
    char lock[PATH_MAX + 8], text[32] = "";
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    int fd, rc;

    if (pid)
        *pid = 0;
    if (snprintf (lock, sizeof (lock), "%s.lock", path) >= (int)sizeof (lock)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((fd = open (lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return errno == ENOENT ? 0 : -1;
    /* F_GETLK of a write lock needs no write access to the file */
    if (fcntl (fd, F_OFD_GETLK, &fl) < 0) {
        int e = errno;
        close (fd);
        if (e == EINVAL || e == ENOSYS || e == EOPNOTSUPP || e == ENOLCK)
            return 0;
        errno = e;
        return -1;
    }
    rc = fl.l_type != F_UNLCK;
    if (rc && pid && pread (fd, text, sizeof (text) - 1, 0) > 0)
        *pid = (pid_t)strtol (text, NULL, 10);
    close (fd);
    return rc;
}
