/* ustar.h - a gzip-compressed POSIX ustar archive: the few parts of the
 * format that a swarm export needs, written and read with zlib.
 *
 * Only regular files and directories are written or accepted.  The
 * reader refuses, before a byte of the entry is returned, what an
 * extractor must never create: symbolic and hard links, devices, FIFOs,
 * GNU and pax extension headers, absolute names, names with a ".."
 * component, an empty name, and a header whose checksum or magic is
 * wrong.  A name longer than 100 bytes is split into the ustar prefix
 * field (at most 155 + 100 bytes in all).
 */
#ifndef CODESWARM_USTAR_H
#define CODESWARM_USTAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/errprintf.h"

typedef struct ustar_writer ustar_writer_t;
typedef struct ustar_reader ustar_reader_t;

#define USTAR_NAME_MAX 256

/* Write a gzip-compressed archive to fd (the caller keeps fd open and
 * closes it; ustar_finish () flushes everything into it).  Free with
 * ustar_finish () or ustar_abandon ().
 */
ustar_writer_t *ustar_writer_create (int fd, cs_error_t *errp);

int ustar_add_dir (ustar_writer_t *w, const char *name, mode_t mode,
                   time_t mtime, cs_error_t *errp);
int ustar_add_data (ustar_writer_t *w, const char *name, mode_t mode,
                    time_t mtime, const void *data, size_t len,
                    cs_error_t *errp);
/* Exactly size bytes read from fd (from its current offset): a file that
 * is shorter than size is an error (EIO).
 */
int ustar_add_fd (ustar_writer_t *w, const char *name, mode_t mode,
                  time_t mtime, int fd, uint64_t size, cs_error_t *errp);

/* End of archive, gzip trailer, flush: 0, or -1 with errno (ENOSPC...).
 * Frees w in both cases.
 */
int ustar_finish (ustar_writer_t *w, cs_error_t *errp);
/* Free w without finishing the archive (keeps errno). */
void ustar_abandon (ustar_writer_t *w);

struct ustar_entry {
    char name[USTAR_NAME_MAX + 2]; /* without a trailing '/' */
    bool dir;
    uint64_t size;
    mode_t mode;
    time_t mtime;
};

/* Read the archive from fd (left open).  Free with ustar_reader_destroy. */
ustar_reader_t *ustar_reader_create (int fd, cs_error_t *errp);
void ustar_reader_destroy (ustar_reader_t *r);

/* The next entry: 1, 0 at the end of the archive, -1 on a bad or refused
 * entry (errp says what and which entry).  Data of the previous entry
 * that was not read is skipped.
 */
int ustar_next (ustar_reader_t *r, struct ustar_entry *e, cs_error_t *errp);

/* Up to len bytes of the current entry's data: the count, 0 at its end,
 * -1 on error (a truncated archive is an error).
 */
ssize_t ustar_read (ustar_reader_t *r, void *buf, size_t len, cs_error_t *errp);

/* Is name a safe relative path: not empty, not absolute, no "." or ".."
 * component, no empty component?
 */
bool ustar_name_safe (const char *name);

#endif
