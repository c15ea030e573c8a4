/* atomicfile.h - replace a file's contents all at once
 *
 * The data goes to a temporary file beside the target, is made durable
 * (fsync) and renamed over the target: a reader, or a restart after a
 * crash, sees the old contents or the new, never a mix.  The temporary is
 * ".<name>.<pid>.tmp" in the target's directory, created with O_EXCL and
 * O_NOFOLLOW, mode 0600, so it is a fresh file of ours; the target
 * becomes that file (mode 0600, owned by us).
 */
#ifndef CODESWARM_COMMON_ATOMICFILE_H
#define CODESWARM_COMMON_ATOMICFILE_H

#include <limits.h>
#include <stddef.h>

#include "common/errprintf.h"

/* also fsync the directory, so that the rename itself is durable */
#define ATOMIC_FILE_SYNC_DIR 0x1

/* Replace path with data[0..len).  0, or -1 with errno set and errp
 * filled; on failure path is unchanged and the temporary removed (with
 * ATOMIC_FILE_SYNC_DIR, a failed directory fsync comes after the rename).
 */
int atomic_file_write (const char *path, const void *data, size_t len,
                       int flags, cs_error_t *errp);

/* The same for data written piece by piece (an archive streamed to it):
 * atomic_file_open creates the temporary (af->fd, to write to);
 * atomic_file_commit fsyncs, closes and renames it over path;
 * atomic_file_abort closes and removes it, leaving path as it was.  Both
 * end the atomic_file.  0, or -1 with errno set and errp filled (a failed
 * commit has removed the temporary).
 */
struct atomic_file {
    int fd;
    char path[PATH_MAX];
    char tmp[PATH_MAX];
};
int atomic_file_open (struct atomic_file *af, const char *path,
                      cs_error_t *errp);
int atomic_file_commit (struct atomic_file *af, int flags, cs_error_t *errp);
void atomic_file_abort (struct atomic_file *af);

#endif
