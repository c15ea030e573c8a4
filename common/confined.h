/* confined.h - files written under a directory, by relative paths that a
 * client chose, without ever leaving that directory
 *
 * A path is accepted only when it is relative, its components are neither
 * empty, "." nor "..", it has no NUL or control characters and no
 * backslash, and it is at most CONFINED_PATH_MAX bytes with components of
 * at most 255.  Writing walks the path one component at a time from a
 * directory fd with O_NOFOLLOW (a symlink anywhere on the way fails the
 * call), creates missing directories 0700 and the file 0600 with O_EXCL
 * (an existing file is never replaced).
 */
#ifndef CODESWARM_CONFINED_H
#define CODESWARM_CONFINED_H

#include <stddef.h>

#include "common/errprintf.h"

#define CONFINED_PATH_MAX 1024

/* 0 when path is acceptable, else -1 (EINVAL) with errp saying why. */
int confined_path_check (const char *path, cs_error_t *errp);

/* Write len bytes of data to dir/path (checked as above).  dir must exist.
 * A failed call may leave directories it created, never a partial file.
 */
int confined_write (const char *dir, const char *path, const void *data,
                    size_t len, cs_error_t *errp);

#endif
