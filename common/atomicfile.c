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

int atomic_file_open (struct atomic_file *af, const char *path,
                      cs_error_t *errp)
{
    const char *slash = strrchr (path, '/');
    const char *base = slash ? slash + 1 : path;
    int dlen = slash ? (int)(slash - path) + 1 : 0;

    af->fd = -1;
    af->tmp[0] = '\0';
    if (!*base) {
        errno = EINVAL;
        return errprintf (errp, "'%s' names no file", path);
    }
    if (pathf (af->path, sizeof (af->path), "%s", path) < 0 ||
        pathf (af->tmp, sizeof (af->tmp), "%.*s.%s.%d.tmp", dlen, path, base,
               (int)getpid ()) < 0) {
        af->tmp[0] = '\0';
        errno = ENAMETOOLONG;
        return errprintf (errp, "'%s': path too long", path);
    }
    (void)unlink (af->tmp);     /* left by a crashed process with our pid */
    af->fd = open (af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                   O_CLOEXEC, 0600);
    if (af->fd < 0) {
        af->tmp[0] = '\0';
        return errprintf (errp, "cannot write '%s': %s", path,
                          strerror (errno));
    }
    return 0;
}

void atomic_file_abort (struct atomic_file *af)
{
    int saved = errno;

    if (af->fd >= 0)
        close (af->fd);
    af->fd = -1;
    if (af->tmp[0])
        (void)unlink (af->tmp);
    af->tmp[0] = '\0';
    errno = saved;
}

int atomic_file_commit (struct atomic_file *af, int flags, cs_error_t *errp)
{
    const char *slash = strrchr (af->path, '/');
    int fd = af->fd;

    af->fd = -1;
    if (fd < 0 || !af->tmp[0]) {
        errno = EBADF;
        return errprintf (errp, "'%s' is not open", af->path);
    }
    if (fsync (fd) < 0) {
        int saved = errno;
        close (fd);
        errno = saved;
        goto error;
    }
    if (close (fd) < 0)
        goto error;
    if (rename (af->tmp, af->path) < 0) {
        errprintf (errp, "cannot rename '%s' to '%s': %s", af->tmp, af->path,
                   strerror (errno));
        atomic_file_abort (af);
        return -1;
    }
    af->tmp[0] = '\0';
    if ((flags & ATOMIC_FILE_SYNC_DIR) && sync_dir (af->path, slash, errp) < 0)
        return -1;
    return 0;
error:
    errprintf (errp, "cannot write '%s': %s", af->path, strerror (errno));
    atomic_file_abort (af);
    return -1;
}

int atomic_file_write (const char *path, const void *data, size_t len,
                       int flags, cs_error_t *errp)
{
    struct atomic_file af;

    if (atomic_file_open (&af, path, errp) < 0)
        return -1;
    if (fd_write_all (af.fd, data, len) < 0) {
        errprintf (errp, "cannot write '%s': %s", path, strerror (errno));
        atomic_file_abort (&af);
        return -1;
    }
    return atomic_file_commit (&af, flags, errp);
}
