/* confined.c - files under a directory by client-chosen relative paths
 * (see confined.h)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/confined.h"
#include "common/lineio.h"

int confined_path_check (const char *path, cs_error_t *errp)
{
    const char *p, *c;
    size_t n;

    errno = EINVAL;
    if (!path || !*path)
        return errprintf (errp, "empty path");
    n = strlen (path);
    if (n > CONFINED_PATH_MAX)
        return errprintf (errp, "path longer than %d bytes",
                          CONFINED_PATH_MAX);
    if (path[0] == '/')
        return errprintf (errp, "'%.64s' is an absolute path", path);
    for (p = path; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return errprintf (errp, "control character in '%.64s'", path);
        if (*p == '\\')
            return errprintf (errp, "backslash in '%.64s'", path);
    }
    for (c = path;; c = p + 1) {
        size_t len;
        p = strchrnul (c, '/');
        len = (size_t)(p - c);
        if (len == 0)
            return errprintf (errp, "empty component in '%.64s'", path);
        if ((len == 1 && c[0] == '.') || (len == 2 && !strncmp (c, "..", 2)))
            return errprintf (errp, "'%.*s' component in '%.64s'", (int)len,
                              c, path);
        if (len > 255)
            return errprintf (errp, "component longer than 255 bytes in "
                              "'%.64s'", path);
        if (!*p)
            break;
    }
    errno = 0;
    return 0;
}

int confined_write (const char *dir, const char *path, const void *data,
                    size_t len, cs_error_t *errp)
{
    char buf[CONFINED_PATH_MAX + 1];
    char *c, *slash;
    int dfd, fd, saved;

    if (confined_path_check (path, errp) < 0)
        return -1;
    snprintf (buf, sizeof (buf), "%s", path);
    dfd = open (dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return errprintf (errp, "cannot open '%s': %s", dir,
                          strerror (errno));
    for (c = buf; (slash = strchr (c, '/')); c = slash + 1) {
        int nfd;
        *slash = '\0';
        if (mkdirat (dfd, c, 0700) < 0 && errno != EEXIST) {
            errprintf (errp, "cannot create '%s/%s': %s", dir, buf,
                       strerror (errno));
            goto error;
        }
        nfd = openat (dfd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW
                              | O_CLOEXEC);
        if (nfd < 0) {
            errprintf (errp, "cannot open '%s/%s': %s", dir, buf,
                       errno == ELOOP || errno == ENOTDIR
                           ? "not a directory (or a symlink)"
                           : strerror (errno));
            goto error;
        }
        close (dfd);
        dfd = nfd;
        *slash = '/';
    }
    fd = openat (dfd, c, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                 0600);
    if (fd < 0) {
        errprintf (errp, "cannot create '%s/%s': %s", dir, path,
                   strerror (errno));
        goto error;
    }
    if (fd_write_all (fd, data, len) < 0 || close (fd) < 0) {
        saved = errno;
        (void)unlinkat (dfd, c, 0);
        errno = saved;
        errprintf (errp, "cannot write '%s/%s': %s", dir, path,
                   strerror (errno));
        goto error;
    }
    close (dfd);
    return 0;
error:
    saved = errno;
    close (dfd);
    errno = saved;
    return -1;
}
