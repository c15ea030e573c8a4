/* lineio.c - nonblocking line framing and buffered writes
 *
 * The read buffer holds [rpos, wpos): bytes not yet handed out.  scan
 * remembers how far we already looked for a newline, so each byte is
 * searched once.  Unconsumed bytes move to the front only when the space
 * after wpos runs short, and they are at most one partial line, so the
 * copying is amortized O(1) per byte.  Memory stays below
 * max_line + 2 * LINEIO_CHUNK.
 *
 * Lines handed out are also NUL-terminated in place (the '\n', or the
 * first discarded byte of an overlong line, becomes '\0').
 *
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/lineio.h"

#define LINEIO_CHUNK 65536

struct lineio {
    char *buf;
    size_t size;        /* allocated */
    size_t rpos;        /* first byte not handed out */
    size_t wpos;        /* end of data */
    size_t scan;        /* [rpos, scan) holds no '\n' */
    size_t max;         /* longest line kept */
    bool discard;       /* dropping the rest of an overlong line */
    bool eof;
};

lineio_t *lineio_create (size_t max_line)
{
    lineio_t *lb;

    if (max_line == 0 || max_line > SIZE_MAX / 4) {
        errno = EINVAL;
        return NULL;
    }
    if (!(lb = calloc (1, sizeof (*lb))))
        return NULL;
    lb->max = max_line;
    return lb;
}

void lineio_destroy (lineio_t *lb)
{
    if (lb) {
        int saved_errno = errno;
        free (lb->buf);
        free (lb);
        errno = saved_errno;
    }
}

/* Make room for at least want bytes after wpos (plus one for a NUL). */
static int lineio_reserve (lineio_t *lb, size_t want)
{
    size_t used;

    if (lb->rpos == lb->wpos) {
        lb->rpos = lb->wpos = lb->scan = 0;
    }
    if (lb->size - lb->wpos > want)
        return 0;
    used = lb->wpos - lb->rpos;
    if (lb->rpos > 0 && lb->size - used > want) {
        memmove (lb->buf, lb->buf + lb->rpos, used);
        lb->scan -= lb->rpos;
        lb->wpos = used;
        lb->rpos = 0;
        return 0;
    }
    if (lb->rpos > 0) {
        memmove (lb->buf, lb->buf + lb->rpos, used);
        lb->scan -= lb->rpos;
        lb->wpos = used;
        lb->rpos = 0;
    }
    size_t nsize = lb->size ? lb->size : 4096;
    while (nsize - used <= want) {
        if (nsize > SIZE_MAX / 2) {
            errno = ENOMEM;
            return -1;
        }
        nsize *= 2;
    }
    char *nbuf = realloc (lb->buf, nsize);
    if (!nbuf)
        return -1;
    lb->buf = nbuf;
    lb->size = nsize;
    return 0;
}

/* In discard mode, drop bytes up to and including the next newline. */
static void lineio_skip (lineio_t *lb)
{
    if (lb->discard && lb->rpos < lb->wpos) {
        char *nl = memchr (lb->buf + lb->rpos, '\n', lb->wpos - lb->rpos);
        if (nl) {
            lb->rpos = nl - lb->buf + 1;
            lb->discard = false;
        }
        else
            lb->rpos = lb->wpos;
        lb->scan = lb->rpos;
    }
}

ssize_t lineio_fill (lineio_t *lb, int fd)
{
    size_t want;
    ssize_t n;

    if (!lb) {
        errno = EINVAL;
        return -1;
    }
    lineio_skip (lb);
    /* Never hold more than one line plus a chunk: if the caller has not
     * taken the lines out, do not read more.
     */
    if (lb->wpos - lb->rpos > lb->max + LINEIO_CHUNK) {
        errno = ENOBUFS;
        return -1;
    }
    want = LINEIO_CHUNK;
    if (lineio_reserve (lb, want) < 0)
        return -1;
    do {
        n = read (fd, lb->buf + lb->wpos, lb->size - lb->wpos - 1);
    } while (n < 0 && errno == EINTR);
    if (n > 0)
        lb->wpos += n;
    else if (n == 0)
        lb->eof = true;
    return n;
}

int lineio_feed (lineio_t *lb, const void *data, size_t len)
{
    const char *p = data;

    if (!lb || (!data && len > 0)) {
        errno = EINVAL;
        return -1;
    }
    lineio_skip (lb);
    if (lb->discard && len > 0) {
        const char *nl = memchr (p, '\n', len);
        if (!nl)
            return 0;
        len -= nl - p + 1;
        p = nl + 1;
        lb->discard = false;
    }
    if (len == 0)
        return 0;
    if (lineio_reserve (lb, len) < 0)
        return -1;
    memcpy (lb->buf + lb->wpos, p, len);
    lb->wpos += len;
    return 0;
}

int lineio_next (lineio_t *lb, const char **line, size_t *len, bool *overlong)
{
    size_t limit;
    char *nl;

    if (!lb) {
        errno = EINVAL;
        return -1;
    }
    lineio_skip (lb);
    if (lb->discard || lb->rpos == lb->wpos)
        return 0;
    if (lb->scan < lb->rpos)
        lb->scan = lb->rpos;
    /* a newline at rpos + max still ends a line of exactly max bytes */
    limit = lb->wpos;
    if (limit - lb->rpos > lb->max + 1)
        limit = lb->rpos + lb->max + 1;
    nl = lb->scan < limit
         ? memchr (lb->buf + lb->scan, '\n', limit - lb->scan) : NULL;
    if (nl) {
        size_t start = lb->rpos;
        size_t n = nl - (lb->buf + start);
        *nl = '\0';
        lb->rpos = lb->scan = start + n + 1;
        if (line)
            *line = lb->buf + start;
        if (len)
            *len = n;
        if (overlong)
            *overlong = false;
        return 1;
    }
    if (lb->wpos - lb->rpos > lb->max) {
        size_t start = lb->rpos;
        /* byte start+max is discarded anyway: terminate there */
        lb->buf[start + lb->max] = '\0';
        lb->rpos = lb->scan = start + lb->max + 1;
        lb->discard = true;
        if (line)
            *line = lb->buf + start;
        if (len)
            *len = lb->max;
        if (overlong)
            *overlong = true;
        return 1;
    }
    lb->scan = lb->wpos;
    return 0;
}

int lineio_rest (lineio_t *lb, const char **line, size_t *len)
{
    size_t start, n;

    if (!lb) {
        errno = EINVAL;
        return -1;
    }
    lineio_skip (lb);
    if (lb->discard || lb->rpos == lb->wpos)
        return 0;
    start = lb->rpos;
    n = lb->wpos - start;
    if (n > lb->max)
        n = lb->max;
    if (lineio_reserve (lb, 1) < 0)     /* room for the NUL */
        return -1;
    start = lb->rpos;       /* may have moved */
    lb->buf[start + n] = '\0';
    lb->rpos = lb->scan = lb->wpos;
    if (line)
        *line = lb->buf + start;
    if (len)
        *len = n;
    return 1;
}

bool lineio_eof (lineio_t *lb)
{
    return lb ? lb->eof : false;
}

size_t lineio_buffered (lineio_t *lb)
{
    return lb ? lb->wpos - lb->rpos : 0;
}

int fd_write_all (int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write (fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                (void)poll (&pfd, 1, 100);
                continue;
            }
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= n;
    }
    return 0;
}

int fd_set_nonblock (int fd, bool on)
{
    int flags = fcntl (fd, F_GETFL);

    if (flags < 0)
        return -1;
    flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    return fcntl (fd, F_SETFL, flags);
}

int fd_set_cloexec (int fd)
{
    int flags = fcntl (fd, F_GETFD);

    if (flags < 0)
        return -1;
    return fcntl (fd, F_SETFD, flags | FD_CLOEXEC);
}

struct outbuf {
    char *buf;
    size_t size;
    size_t head;        /* first byte not yet written */
    size_t tail;        /* end of data */
};

outbuf_t *outbuf_create (void)
{
    return calloc (1, sizeof (struct outbuf));
}

void outbuf_destroy (outbuf_t *ob)
{
    if (ob) {
        int saved_errno = errno;
        free (ob->buf);
        free (ob);
        errno = saved_errno;
    }
}

int outbuf_append (outbuf_t *ob, const void *data, size_t len)
{
    size_t pending;

    if (!ob || (!data && len > 0)) {
        errno = EINVAL;
        return -1;
    }
    if (len == 0)
        return 0;
    pending = ob->tail - ob->head;
    if (ob->size - ob->tail < len) {
        /* move the pending bytes down only when fewer than were written
         * out before them (else each append could move them all again);
         * else grow in place (realloc: a large buffer is remapped, not
         * copied)
         */
        if (ob->head >= pending && ob->size - pending >= len) {
            memmove (ob->buf, ob->buf + ob->head, pending);
            ob->head = 0;
            ob->tail = pending;
        }
        else {
            size_t nsize = ob->size ? ob->size : 4096;
            char *nbuf;
            while (nsize - ob->tail < len) {
                if (nsize > SIZE_MAX / 2) {
                    errno = ENOMEM;
                    return -1;
                }
                nsize *= 2;
            }
            if (!(nbuf = realloc (ob->buf, nsize)))
                return -1;
            ob->buf = nbuf;
            ob->size = nsize;
        }
    }
    memcpy (ob->buf + ob->tail, data, len);
    ob->tail += len;
    return 0;
}

ssize_t outbuf_flush (outbuf_t *ob, int fd)
{
    if (!ob) {
        errno = EINVAL;
        return -1;
    }
    while (ob->head < ob->tail) {
        ssize_t n = write (fd, ob->buf + ob->head, ob->tail - ob->head);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        ob->head += n;
    }
    if (ob->head == ob->tail)
        ob->head = ob->tail = 0;
    return ob->tail - ob->head;
}

size_t outbuf_pending (outbuf_t *ob)
{
    return ob ? ob->tail - ob->head : 0;
}

/*
 * vi:ts=4 sw=4 expandtab
 */
