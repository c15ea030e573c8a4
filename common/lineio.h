/* lineio.h - nonblocking line framing with a maximum line length, and
 * buffered nonblocking writes.
 *
 * Reading: lineio_fill() reads what an fd has; lineio_next() hands out
 * complete lines (without '\n').  A line longer than max is not kept: its
 * first max bytes are returned once with *overlong = true and the rest is
 * discarded up to its newline, so a bad peer can neither stall the stream
 * nor grow memory without bound.
 *
 * Writing: outbuf queues bytes for a nonblocking fd and writes what the fd
 * takes; the owner polls for POLLOUT while outbuf_pending() > 0.  Never
 * blocks, so a child that is not reading cannot wedge the program.
 */
#ifndef CODESWARM_LINEIO_H
#define CODESWARM_LINEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct lineio lineio_t;

lineio_t *lineio_create (size_t max_line);      /* lineio_destroy */
void lineio_destroy (lineio_t *lb);

/* Read once from fd: returns bytes read (>0), 0 at EOF, -1 with errno
 * (EAGAIN when nothing is there; ENOBUFS when more than max_line + 64 KiB
 * is buffered because the lines were not taken out with lineio_next()).
 */
ssize_t lineio_fill (lineio_t *lb, int fd);

/* Feed bytes directly (for tests and for data read elsewhere). */
int lineio_feed (lineio_t *lb, const void *data, size_t len);

/* Next complete line: 1 with *line and *len (borrowed until the next call
 * on lb), 0 if none is complete.  *overlong tells that the line was cut.
 * The line is also NUL-terminated (it may contain NUL bytes itself).
 * line, len and overlong may be NULL.
 */
int lineio_next (lineio_t *lb, const char **line, size_t *len, bool *overlong);

/* After EOF: the unterminated tail, if any (1, NUL-terminated, at most
 * max_line bytes), else 0.  Nothing is returned for the tail of an
 * overlong line, which lineio_next() already reported.
 */
int lineio_rest (lineio_t *lb, const char **line, size_t *len);

bool lineio_eof (lineio_t *lb);
size_t lineio_buffered (lineio_t *lb);

/* write(2) until done, retrying EINTR (and EAGAIN with a short poll) */
int fd_write_all (int fd, const void *buf, size_t len);
int fd_set_nonblock (int fd, bool on);
int fd_set_cloexec (int fd);

typedef struct outbuf outbuf_t;
outbuf_t *outbuf_create (void);                 /* outbuf_destroy */
void outbuf_destroy (outbuf_t *ob);
int outbuf_append (outbuf_t *ob, const void *data, size_t len);
/* Write as much as fd takes: returns bytes still pending, or -1 (EPIPE...) */
ssize_t outbuf_flush (outbuf_t *ob, int fd);
size_t outbuf_pending (outbuf_t *ob);

#endif
