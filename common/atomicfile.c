/* atomicfile.c - replace a file's contents all at once (see atomicfile.h) */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/lineio.h"
#include "common/path.h"

/* fsync the directory of path (slash: its last slash, or NULL) */
static int sync_dir (const char *path, const char *slash, cs_error_t *errp)
{
    char dir[PATH_MAX];
    int fd, rc;

    if (!slash)
        snprintf (dir, sizeof (dir), ".");
    else if (slash == path)
        snprintf (dir, sizeof (dir), "/");
    else if (pathf (dir, sizeof (dir), "%.*s", (int)(slash - path), path) < 0)
        return errprintf (errp, "'%s': path too long", path);
    if ((fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return errprintf (errp, "cannot open directory '%s': %s", dir,
                          strerror (errno));
    rc = fsync (fd);
    if (rc < 0) {
        int saved = errno;
        close (fd);
        errno = saved;
        return errprintf (errp, "cannot fsync directory '%s': %s", dir,
                          strerror (errno));
    }
    close (fd);
    return 0;
}

int atomic_file_write (const char *path, const void *data, size_t len,
                       int flags, cs_error_t *errp)
{
    const char *slash = strrchr (path, '/');
    const char *base = slash ? slash + 1 : path;
    int dlen = slash ? (int)(slash - path) + 1 : 0;
    char tmp[PATH_MAX];
    int fd, saved;

    if (!*base) {
        errno = EINVAL;
        return errprintf (errp, "'%s' names no file", path);
    }
    if (pathf (tmp, sizeof (tmp), "%.*s.%s.%d.tmp", dlen, path, base,
               (int)getpid ()) < 0)
        return errprintf (errp, "'%s': path too long", path);
    (void)unlink (tmp);         /* left by a crashed process with our pid */
    fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
               0600);
    if (fd < 0)
        return errprintf (errp, "cannot write '%s': %s", path,
                          strerror (errno));
    if (fd_write_all (fd, data, len) < 0 || fsync (fd) < 0) {
        saved = errno;
        close (fd);
        goto error;
    }
    if (close (fd) < 0) {
        saved = errno;
        goto error;
    }
    if (rename (tmp, path) < 0) {
        saved = errno;
        (void)unlink (tmp);
        errno = saved;
        return errprintf (errp, "cannot rename '%s' to '%s': %s", tmp, path,
                          strerror (errno));
    }
    if ((flags & ATOMIC_FILE_SYNC_DIR) && sync_dir (path, slash, errp) < 0)
        return -1;
    return 0;
error:
    (void)unlink (tmp);
    errno = saved;
    return errprintf (errp, "cannot write '%s': %s", path, strerror (errno));
}
