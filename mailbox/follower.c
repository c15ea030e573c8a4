/* follower.c - follow many streams from one poll() loop
 *
 * inotify: ONE inotify descriptor; each distinct stream directory (and the
 * swarm's archive/ next to it) is watched once, and the names in its
 * events are mapped to streams through a hash table per directory, so a
 * thousand streams in one directory cost one watch and an idle stream
 * costs nothing.  An event marks its streams ready; process() drains the
 * ready streams.  A queue overflow marks every stream ready.
 *
 * poll: each stream has an interval that starts at poll_min, drops back
 * to poll_min whenever a poll finds something and doubles while it finds
 * nothing, up to a ceiling that grows with how long the stream has been
 * quiet: poll_max at first, then poll_idle_max * quiet / poll_idle_after
 * (a stream quiet for T is looked at about every T / 7.5 with the
 * defaults), at most poll_idle_max (8 s, reached after 60 s).  A stream
 * that had a record lately keeps the fast cadence; one quiet for long,
 * which is most of them, costs a few checks a minute.  Quiet time counts
 * from the last record delivered, or, for a stream added with records
 * already in it, from its file's last modification (a follower that
 * starts does not poll every long-quiet stream at the fast cadence).
 * Streams sit in a min-heap by due time, so a wake-up touches only the
 * streams that are due; a poll is one fstat(2) of the open file, and a
 * stat(2) of the stream path when its directory changed (see poll_check()
 * and mb_reader_poll_check()).  Long intervals are rounded to a coarse
 * grid so that idle streams share wake-ups.
 *
 * AUTO decides per directory by mb_fs_type(): inotify on local
 * filesystems, poll on NFS, Lustre, GPFS, BeeGFS, CIFS, ...
 * CODESWARM_FOLLOW=inotify|poll in the environment replaces that decision.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fnv.h"
#include "mailbox/mailbox.h"
#include "mailbox/private.h"
#include "mailbox/reader-private.h"

/* events one stream may deliver per process() before others get a turn */
#define STREAM_BATCH 4096

#define DIR_MASK                                                               \
    (IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM |    \
     IN_DELETE | IN_ONLYDIR)
#define ARCHIVE_MASK (IN_CREATE | IN_MOVED_TO | IN_ONLYDIR)

struct stream;

/* one name in a directory's table (several readers may share a name) */
struct hentry {
    char *key;
    struct stream *s;
    struct hentry *next;
};

struct htable {
    struct hentry **b;
    size_t nb;
    size_t count;
};

struct wdir {
    char *path;
    int wd; /* -1: not watched */
    /* poll: the directory's mtime, looked at once per wake-up */
    uint64_t round;
    bool valid;
    struct timespec mtime;
    double changed; /* monotonic time the change was seen */
    uint32_t mask;
    struct htable names; /* stream basename -> streams */
    struct htable akeys; /* archive prefix "<box>-<name>." -> streams */
    struct wdir *next;
};

struct stream {
    mb_follower_t *f;
    mb_reader_t *r;
    mb_follow_f cb;
    void *arg;
    bool inotify;
    struct wdir *dir;  /* inotify: where the active file is */
    struct wdir *adir; /* inotify: the archive, or NULL */
    char *name;        /* basename of the active file */
    char *akey;        /* archive name prefix */
    bool ready;
    struct stream *rnext; /* ready list */
    double interval;      /* poll */
    double due;
    struct wdir *pdir; /* poll: the directory of the active file */
    double pchecked;   /* poll: last check by path */
    double active;     /* poll: when it last delivered (or was added) */
    size_t hidx;       /* poll: index in the heap, or SIZE_MAX */
    bool failed;
    bool removed;
    struct stream *prev, *next; /* all streams */
};

struct mb_follower {
    struct mb_options opt;
    enum mb_follow_mode mode;
    int ifd;
    struct wdir *dirs;
    struct stream *streams;
    size_t n_inotify;
    size_t n_poll;
    struct stream *ready; /* singly linked by rnext */
    struct stream **ready_tail;
    struct stream **heap;
    size_t heap_len;
    size_t heap_cap;
    struct stream *grave; /* removed during a callback, freed later */
    uint64_t round;       /* poll wake-ups */
    int depth;            /* process() nesting (callbacks) */
    bool stop;            /* mb_follower_stop(): return after this event */
};

static double now_mono (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- hash table of names ------------------------------------------------ */

static size_t hash_str (const char *s, size_t len)
{
    return (size_t)fnv1a_mem (FNV1A_INIT, s, len);
}

static int ht_add (struct htable *t, const char *key, struct stream *s)
{
    struct hentry *e;
    size_t i;

    if (t->count >= t->nb) {
        size_t nb = t->nb ? t->nb * 2 : 64;
        struct hentry **b = calloc (nb, sizeof (*b));
        if (!b)
            return -1;
        for (i = 0; i < t->nb; i++) {
            struct hentry *x = t->b[i], *nx;
            for (; x; x = nx) {
                nx = x->next;
                size_t j = hash_str (x->key, strlen (x->key)) & (nb - 1);
                x->next = b[j];
                b[j] = x;
            }
        }
        free (t->b);
        t->b = b;
        t->nb = nb;
    }
    if (!(e = calloc (1, sizeof (*e))) || !(e->key = strdup (key))) {
        free (e);
        return -1;
    }
    e->s = s;
    i = hash_str (key, strlen (key)) & (t->nb - 1);
    e->next = t->b[i];
    t->b[i] = e;
    t->count++;
    return 0;
}

static void ht_del (struct htable *t, const char *key, struct stream *s)
{
    if (!t->nb)
        return;
    struct hentry **pp = &t->b[hash_str (key, strlen (key)) & (t->nb - 1)];
    for (; *pp; pp = &(*pp)->next) {
        if ((*pp)->s == s) {
            struct hentry *e = *pp;
            *pp = e->next;
            free (e->key);
            free (e);
            t->count--;
            return;
        }
    }
}

static void ht_free (struct htable *t)
{
    for (size_t i = 0; i < t->nb; i++) {
        struct hentry *e = t->b[i], *n;
        for (; e; e = n) {
            n = e->next;
            free (e->key);
            free (e);
        }
    }
    free (t->b);
    t->b = NULL;
    t->nb = t->count = 0;
}

/* ---- ready list and poll heap ------------------------------------------- */

static void ready_push (mb_follower_t *f, struct stream *s)
{
    if (s->ready || s->removed || s->failed)
        return;
    s->ready = true;
    s->rnext = NULL;
    *f->ready_tail = s;
    f->ready_tail = &s->rnext;
}

static bool heap_less (struct stream *a, struct stream *b)
{
    return a->due < b->due;
}

static void heap_swap (mb_follower_t *f, size_t i, size_t j)
{
    struct stream *t = f->heap[i];
    f->heap[i] = f->heap[j];
    f->heap[j] = t;
    f->heap[i]->hidx = i;
    f->heap[j]->hidx = j;
}

static void heap_up (mb_follower_t *f, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less (f->heap[i], f->heap[p]))
            break;
        heap_swap (f, i, p);
        i = p;
    }
}

static void heap_down (mb_follower_t *f, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < f->heap_len && heap_less (f->heap[l], f->heap[m]))
            m = l;
        if (r < f->heap_len && heap_less (f->heap[r], f->heap[m]))
            m = r;
        if (m == i)
            break;
        heap_swap (f, i, m);
        i = m;
    }
}

static int heap_push (mb_follower_t *f, struct stream *s)
{
    if (f->heap_len == f->heap_cap) {
        size_t ncap = f->heap_cap ? f->heap_cap * 2 : 64;
        struct stream **n = realloc (f->heap, ncap * sizeof (*n));
        if (!n)
            return -1;
        f->heap = n;
        f->heap_cap = ncap;
    }
    s->hidx = f->heap_len;
    f->heap[f->heap_len++] = s;
    heap_up (f, s->hidx);
    return 0;
}

static void heap_remove (mb_follower_t *f, struct stream *s)
{
    size_t i = s->hidx;

    if (i == SIZE_MAX || i >= f->heap_len || f->heap[i] != s)
        return;
    f->heap_len--;
    if (i != f->heap_len) {
        f->heap[i] = f->heap[f->heap_len];
        f->heap[i]->hidx = i;
        heap_down (f, i);
        heap_up (f, i);
    }
    s->hidx = SIZE_MAX;
}

/* Schedule a poll stream interval seconds from now; longer intervals are
 * rounded down to a grid of a quarter interval (at most 100 ms) so that
 * many idle streams are polled in the same wake-up (never later than
 * the interval, never sooner than 3/4 of it).
 */
static void poll_schedule (mb_follower_t *f, struct stream *s, double now)
{
    double due = now + s->interval;

    if (s->interval >= 0.016) {
        double g = s->interval / 4;
        if (g > 0.1)
            g = 0.1;
        due = floor (due / g) * g;
    }
    s->due = due;
    if (heap_push (f, s) < 0) {
        /* out of memory: keep it going through the ready list */
        ready_push (f, s);
    }
}

/* The longest interval for a poll stream quiet for the last quiet
 * seconds: poll_max, growing in proportion to the quiet time up to
 * poll_idle_max, which it reaches after poll_idle_after.
 */
static double poll_ceiling (mb_follower_t *f, double quiet)
{
    double c = f->opt.poll_idle_max * quiet / f->opt.poll_idle_after;

    if (c < f->opt.poll_max)
        return f->opt.poll_max;
    if (c > f->opt.poll_idle_max)
        return f->opt.poll_idle_max;
    return c;
}

/* Seconds since path was last modified (0 when it cannot be told). */
static double quiet_since_mtime (const char *path)
{
    struct timespec now;
    struct stat st;
    double age;

    if (stat (path, &st) < 0 || clock_gettime (CLOCK_REALTIME, &now) < 0)
        return 0;
    age = (double)(now.tv_sec - st.st_mtim.tv_sec)
          + (double)(now.tv_nsec - st.st_mtim.tv_nsec) * 1e-9;
    return age > 0 ? age : 0;
}

/* ---- directories -------------------------------------------------------- */

static struct wdir *dir_by_wd (mb_follower_t *f, int wd)
{
    for (struct wdir *d = f->dirs; d; d = d->next)
        if (d->wd == wd)
            return d;
    return NULL;
}

static struct wdir *dir_find (mb_follower_t *f, const char *path)
{
    for (struct wdir *d = f->dirs; d; d = d->next)
        if (!strcmp (d->path, path))
            return d;
    return NULL;
}

static struct wdir *dir_new (mb_follower_t *f, const char *path)
{
    struct wdir *d;

    if (!(d = calloc (1, sizeof (*d))) || !(d->path = strdup (path))) {
        free (d);
        return NULL;
    }
    d->wd = -1;
    d->next = f->dirs;
    f->dirs = d;
    return d;
}

/* The directory path, known (for poll streams) but not watched. */
static struct wdir *dir_get (mb_follower_t *f, const char *path)
{
    struct wdir *d = dir_find (f, path);
    return d ? d : dir_new (f, path);
}

/* The watched directory path (watching it if needed), NULL if it cannot
 * be watched.
 */
static struct wdir *dir_watch (mb_follower_t *f, const char *path,
                               uint32_t mask)
{
    struct wdir *d = dir_find (f, path);
    struct wdir *same;
    int wd;

    if (d && d->wd >= 0 && (d->mask & mask) == mask)
        return d;
    if (f->ifd < 0)
        return NULL;
    wd = inotify_add_watch (f->ifd, path,
                            (d ? d->mask : 0) | mask | IN_MASK_ADD);
    if (wd < 0)
        return NULL;
    /* the same directory under another name shares the watch */
    if ((same = dir_by_wd (f, wd)) && same != d) {
        same->mask |= mask;
        return same;
    }
    if (!d && !(d = dir_new (f, path))) {
        inotify_rm_watch (f->ifd, wd);
        return NULL;
    }
    d->wd = wd;
    d->mask |= mask;
    return d;
}

/* The archive prefix of an archive file name: "<box>-<name>." from
 * "<box>-<name>.<first>-<last>.jsonl[.gz[.tmp]]", in buf.
 */
static bool archive_key (const char *base, char *buf, size_t len)
{
    size_t n = strlen (base);
    static const char *suffixes[] = {".jsonl.gz.tmp", ".jsonl.gz", ".jsonl",
                                     NULL};
    size_t tail = 2 * MB_SEQ_DIGITS + 1;

    for (int i = 0; suffixes[i]; i++) {
        size_t sl = strlen (suffixes[i]);
        if (n > sl && !strcmp (base + n - sl, suffixes[i])) {
            n -= sl;
            if (n <= tail || base[n - tail - 1] != '.' ||
                base[n - tail + MB_SEQ_DIGITS] != '-')
                return false;
            n -= tail; /* keep the '.' */
            if (n >= len)
                return false;
            memcpy (buf, base, n);
            buf[n] = '\0';
            return true;
        }
    }
    return false;
}

/* ---- streams ------------------------------------------------------------ */

static void stream_unlink (mb_follower_t *f, struct stream *s)
{
    if (s->dir)
        ht_del (&s->dir->names, s->name, s);
    if (s->adir)
        ht_del (&s->adir->akeys, s->akey, s);
    s->dir = s->adir = NULL;
    heap_remove (f, s);
    if (s->prev)
        s->prev->next = s->next;
    else if (f->streams == s)
        f->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    if (s->inotify)
        f->n_inotify--;
    else
        f->n_poll--;
}

static void stream_free (struct stream *s)
{
    if (s) {
        mb_reader_close (s->r);
        free (s->name);
        free (s->akey);
        free (s);
    }
}

/* Watching failed or stopped: follow s by polling. */
static void stream_to_poll (mb_follower_t *f, struct stream *s, double now)
{
    if (!s->inotify)
        return;
    if (s->dir)
        ht_del (&s->dir->names, s->name, s);
    if (s->adir)
        ht_del (&s->adir->akeys, s->akey, s);
    s->pdir = s->dir;
    s->pchecked = 0;
    s->dir = s->adir = NULL;
    s->inotify = false;
    f->n_inotify--;
    f->n_poll++;
    s->interval = f->opt.poll_min;
    s->active = now;
    if (!s->ready)
        poll_schedule (f, s, now);
}

static void mark_all_ready (mb_follower_t *f)
{
    for (struct stream *s = f->streams; s; s = s->next)
        if (s->inotify)
            ready_push (f, s);
}

static void dir_mark (struct htable *t, const char *key)
{
    if (!t->nb)
        return;
    struct hentry *e = t->b[hash_str (key, strlen (key)) & (t->nb - 1)];
    for (; e; e = e->next)
        if (!strcmp (e->key, key))
            ready_push (e->s->f, e->s);
}

static int read_inotify (mb_follower_t *f, cs_error_t *errp)
{
    char buf[65536]
        __attribute__ ((aligned (__alignof__(struct inotify_event))));
    char key[512];

    if (f->ifd < 0)
        return 0;
    /* bounded, so that a busy writer cannot keep us here */
    for (int reads = 0; reads < 16; reads++) {
        ssize_t n = read (f->ifd, buf, sizeof (buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            return errprintf (errp, "cannot read inotify events: %s",
                              strerror (errno));
        }
        if (n == 0)
            return 0;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            struct wdir *d;
            p += sizeof (*ev) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                mark_all_ready (f);
                continue;
            }
            if (!(d = dir_by_wd (f, ev->wd)))
                continue;
            if (ev->mask & IN_IGNORED) {
                /* the directory went away: poll its streams from now on */
                double now = now_mono ();
                d->wd = -1;
                d->mask = 0;
                for (struct stream *s = f->streams, *nx; s; s = nx) {
                    nx = s->next;
                    if (s->adir == d) {
                        ht_del (&d->akeys, s->akey, s);
                        s->adir = NULL;
                    }
                    if (s->dir == d) {
                        ready_push (f, s);
                        stream_to_poll (f, s, now);
                    }
                }
                continue;
            }
            if (ev->len == 0 || ev->name[0] == '\0')
                continue;
            dir_mark (&d->names, ev->name);
            if (d->akeys.count > 0 && archive_key (ev->name, key, sizeof (key)))
                dir_mark (&d->akeys, key);
        }
    }
    return 0;
}

/* Poll s: an fstat of its file, and a stat of its path (which shows
 * rotations and files appearing) only when its directory has changed
 * lately.  The directory is looked at once per wake-up for all its
 * streams.  A directory change is trusted to be seen by a stream only
 * when the stream looks DIR_SLACK seconds after the change was noticed:
 * coarse timestamps (1 s on some filesystems) can hide a second change.
 */
#define DIR_SLACK 2.0

static bool poll_check (mb_follower_t *f, struct stream *s, double now)
{
    struct wdir *d = s->pdir;
    bool path = true;

    if (d) {
        if (d->round != f->round) {
            struct stat st;
            d->round = f->round;
            if (stat (d->path, &st) < 0)
                d->valid = false;
            else {
                if (!d->valid || st.st_mtim.tv_sec != d->mtime.tv_sec ||
                    st.st_mtim.tv_nsec != d->mtime.tv_nsec)
                    d->changed = now;
                d->mtime = st.st_mtim;
                d->valid = true;
            }
        }
        path = !d->valid || s->pchecked < d->changed + DIR_SLACK;
    }
    if (path)
        s->pchecked = now;
    return mb_reader_poll_check (s->r, path);
}

/* Deliver up to STREAM_BATCH events of s.  Returns the number delivered;
 * *more when s may have more right away.
 */
static int stream_drain (mb_follower_t *f, struct stream *s, bool *more)
{
    struct mb_event ev;
    cs_error_t e;
    int count = 0;

    *more = false;
    while (!s->removed && !s->failed) {
        int rc;
        if (count >= STREAM_BATCH) {
            *more = true;
            break;
        }
        rc = mb_reader_next (s->r, &ev, &e);
        if (rc == 0)
            break;
        if (rc < 0) {
            /* this stream stops; the others go on */
            char reason[sizeof (e.text) + 32];
            struct mb_cursor c;
            snprintf (reason, sizeof (reason), "stream stopped: %s", e.text);
            mb_reader_cursor (s->r, &c);
            memset (&ev, 0, sizeof (ev));
            ev.type = MB_EV_CORRUPT;
            ev.file = mb_reader_path (s->r);
            ev.offset = c.offset;
            ev.reason = reason;
            s->failed = true;
            heap_remove (f, s);
            if (s->cb)
                s->cb (f, s->r, &ev, s->arg);
            count++;
            break;
        }
        if (s->cb)
            s->cb (f, s->r, &ev, s->arg);
        count++;
        if (f->stop) {
            *more = true;
            break;
        }
    }
    return count;
}

/* Free removed streams, except those still on the ready list (the next
 * process() takes them off it).
 */
static void free_grave (mb_follower_t *f, bool all)
{
    struct stream **pp = &f->grave;

    while (*pp) {
        struct stream *s = *pp;
        if (s->ready && !all) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        stream_free (s);
    }
}

/* ---- API ---------------------------------------------------------------- */

mb_follower_t *mb_follower_create (const struct mb_options *opt,
                                   cs_error_t *errp)
{
    mb_follower_t *f;
    const char *env = getenv ("CODESWARM_FOLLOW");

    if (!(f = calloc (1, sizeof (*f)))) {
        errno = ENOMEM;
        errprintf (errp, "out of memory");
        return NULL;
    }
    if (opt)
        f->opt = *opt;
    else
        mb_options_init (&f->opt);
    if (f->opt.poll_min <= 0)
        f->opt.poll_min = 0.002;
    if (f->opt.poll_max < f->opt.poll_min)
        f->opt.poll_max = f->opt.poll_min;
    if (f->opt.poll_idle_after <= 0)
        f->opt.poll_idle_after = 60.0;
    if (f->opt.poll_idle_max <= 0)
        f->opt.poll_idle_max = 8 * f->opt.poll_max;
    if (f->opt.poll_idle_max < f->opt.poll_max)
        f->opt.poll_idle_max = f->opt.poll_max;
    f->mode = f->opt.follow;
    if (f->mode == MB_FOLLOW_AUTO && env && *env) {
        if (!strcmp (env, "inotify"))
            f->mode = MB_FOLLOW_INOTIFY;
        else if (!strcmp (env, "poll"))
            f->mode = MB_FOLLOW_POLL;
        else if (strcmp (env, "auto") != 0) {
            errprintf (errp,
                       "invalid CODESWARM_FOLLOW '%s' (expected "
                       "inotify, poll or auto)",
                       env);
            free (f);
            errno = EINVAL;
            return NULL;
        }
    }
    f->ifd = -1;
    f->ready_tail = &f->ready;
    if (f->mode != MB_FOLLOW_POLL) {
        /* without inotify (instance limit...) every stream is polled */
        f->ifd = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
    }
    return f;
}

void mb_follower_destroy (mb_follower_t *f)
{
    if (f) {
        int saved = errno;
        while (f->streams) {
            struct stream *s = f->streams;
            stream_unlink (f, s);
            stream_free (s);
        }
        free_grave (f, true);
        while (f->dirs) {
            struct wdir *d = f->dirs;
            f->dirs = d->next;
            ht_free (&d->names);
            ht_free (&d->akeys);
            free (d->path);
            free (d);
        }
        if (f->ifd >= 0)
            close (f->ifd);
        free (f->heap);
        free (f);
        errno = saved;
    }
}

mb_reader_t *mb_follower_add (mb_follower_t *f, const char *path,
                              enum mb_start start,
                              const struct mb_cursor *cursor, mb_follow_f cb,
                              void *arg, cs_error_t *errp)
{
    struct mb_stream_name sn;
    struct stream *s = NULL;
    bool use_poll;
    const char *base;

    if (!f || !path) {
        errno = EINVAL;
        errprintf (errp, "invalid argument");
        return NULL;
    }
    if (mb_stream_split (path, &sn, errp) < 0)
        return NULL;
    if (!(s = calloc (1, sizeof (*s))))
        goto nomem;
    s->f = f;
    s->cb = cb;
    s->arg = arg;
    s->hidx = SIZE_MAX;
    base = strrchr (path, '/');
    base = base ? base + 1 : path;
    if (!(s->name = strdup (base)) || !(s->akey = strdup (sn.prefix)))
        goto nomem;
    if (!(s->r = mb_reader_open (path, start, cursor, &f->opt, errp)))
        goto error;

    switch (f->mode) {
    case MB_FOLLOW_POLL:
        use_poll = true;
        break;
    case MB_FOLLOW_INOTIFY:
        use_poll = false;
        break;
    default:
        if (mb_fs_type (sn.dir, NULL, 0, &use_poll, NULL) < 0)
            use_poll = false;
        break;
    }
    if (!use_poll && (s->dir = dir_watch (f, sn.dir, DIR_MASK))) {
        if (ht_add (&s->dir->names, s->name, s) < 0) {
            s->dir = NULL;
            goto nomem;
        }
        /* archive/ is optional: sealed segments are read without events */
        if ((s->adir = dir_watch (f, sn.archive, ARCHIVE_MASK)) &&
            ht_add (&s->adir->akeys, s->akey, s) < 0) {
            ht_del (&s->dir->names, s->name, s);
            s->dir = s->adir = NULL;
            goto nomem;
        }
        s->inotify = true;
    }
    /* link it, then read what is there already */
    s->next = f->streams;
    if (f->streams)
        f->streams->prev = s;
    f->streams = s;
    if (s->inotify) {
        f->n_inotify++;
        ready_push (f, s);
    } else {
        f->n_poll++;
        s->pdir = dir_get (f, sn.dir); /* NULL: check by path always */
        s->interval = f->opt.poll_min;
        s->due = now_mono ();
        /* quiet since its last write: polled at the pace that deserves
         * once what is there has been read
         */
        s->active = s->due - quiet_since_mtime (path);
        if (heap_push (f, s) < 0) {
            stream_unlink (f, s);
            goto nomem;
        }
    }
    return s->r;
nomem:
    errno = ENOMEM;
    errprintf (errp, "out of memory");
error:
    stream_free (s);
    return NULL;
}

static struct stream *stream_of (mb_follower_t *f, mb_reader_t *r)
{
    for (struct stream *s = f->streams; s; s = s->next)
        if (s->r == r)
            return s;
    return NULL;
}

int mb_follower_remove (mb_follower_t *f, mb_reader_t *r)
{
    struct stream *s;

    if (!f || !r || !(s = stream_of (f, r))) {
        errno = ENOENT;
        return -1;
    }
    stream_unlink (f, s);
    s->removed = true;
    if (f->depth == 0 && !s->ready)
        stream_free (s);
    else {
        s->next = f->grave;
        f->grave = s;
    }
    return 0;
}

int mb_follower_fd (mb_follower_t *f)
{
    return f ? f->ifd : -1;
}

int mb_follower_timeout (mb_follower_t *f)
{
    double dt;

    if (!f)
        return -1;
    if (f->ready)
        return 0;
    if (f->heap_len == 0)
        return -1;
    dt = f->heap[0]->due - now_mono ();
    if (dt <= 0)
        return 0;
    if (dt > 86400)
        dt = 86400;
    return (int)ceil (dt * 1000);
}

int mb_follower_process (mb_follower_t *f, cs_error_t *errp)
{
    struct stream *list, *s, *nx;
    int total = 0;
    double now;
    bool more;

    if (!f) {
        errno = EINVAL;
        return errprintf (errp, "invalid argument");
    }
    if (read_inotify (f, errp) < 0)
        return -1;
    f->depth++;
    f->stop = false;

    /* inotify streams (and anything else) marked ready */
    list = f->ready;
    f->ready = NULL;
    f->ready_tail = &f->ready;
    for (s = list; s; s = nx) {
        nx = s->rnext;
        s->ready = false;
        s->rnext = NULL;
        if (s->removed || s->failed)
            continue;
        if (f->stop) {
            ready_push (f, s);          /* not read: the next call */
            continue;
        }
        total += stream_drain (f, s, &more);
        if (more)
            ready_push (f, s);
        else if (!s->inotify && !s->removed && !s->failed &&
                 s->hidx == SIZE_MAX) {
            s->interval = f->opt.poll_min;
            s->active = now_mono ();
            poll_schedule (f, s, s->active);
        }
    }

    /* poll streams that are due */
    now = now_mono ();
    f->round++;
    while (!f->stop && f->heap_len > 0 && f->heap[0]->due <= now) {
        s = f->heap[0];
        heap_remove (f, s);
        int n = 0;
        more = false;
        if (poll_check (f, s, now))
            n = stream_drain (f, s, &more);
        total += n;
        if (s->removed || s->failed)
            continue;
        if (more) {
            s->interval = f->opt.poll_min;
            s->active = now;
            ready_push (f, s);
            continue;
        }
        if (n > 0) {
            s->interval = f->opt.poll_min;
            s->active = now;
        } else {
            /* doubling, but at once to the pace of the quiet time for
             * a stream that was quiet long before it was added
             */
            double quiet = now - s->active;
            double pace = f->opt.poll_idle_max * quiet / f->opt.poll_idle_after;
            double top = poll_ceiling (f, quiet);
            s->interval *= 2;
            if (s->interval < pace)
                s->interval = pace;
            if (s->interval > top)
                s->interval = top;
        }
        poll_schedule (f, s, now);
    }

    f->stop = false;
    if (--f->depth == 0)
        free_grave (f, false);
    return total;
}

void mb_follower_stop (mb_follower_t *f)
{
    if (f)
        f->stop = true;
}

int mb_follower_run (mb_follower_t *f, int timeout_ms, cs_error_t *errp)
{
    struct pollfd pfd;
    int t;

    if (!f) {
        errno = EINVAL;
        return errprintf (errp, "invalid argument");
    }
    t = mb_follower_timeout (f);
    if (t < 0 || (timeout_ms >= 0 && timeout_ms < t))
        t = timeout_ms;
    pfd.fd = f->ifd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (poll (&pfd, f->ifd >= 0 ? 1 : 0, t) < 0 && errno != EINTR)
        return errprintf (errp, "poll: %s", strerror (errno));
    return mb_follower_process (f, errp);
}

const char *mb_follower_mode (mb_follower_t *f)
{
    if (!f)
        return NULL;
    if (f->n_inotify > 0 && f->n_poll > 0)
        return "mixed";
    if (f->n_poll > 0)
        return "poll";
    if (f->n_inotify > 0)
        return "inotify";
    return f->mode == MB_FOLLOW_POLL || f->ifd < 0 ? "poll" : "inotify";
}

const char *mb_follower_stream_mode (mb_follower_t *f, mb_reader_t *r)
{
    struct stream *s;

    if (!f || !r || !(s = stream_of (f, r)))
        return NULL;
    return s->inotify ? "inotify" : "poll";
}

/* vi: ts=4 sw=4 expandtab
 */
