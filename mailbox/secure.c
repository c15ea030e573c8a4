/* secure.c - safe opening of mailbox files and directories
 *
 * Every file and directory of a mailbox must belong to the effective uid;
 * directories must not be writable by group or others; nothing may be a
 * symbolic link.  Errors name the path and the reason.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "mailbox/mailbox.h"
#include "mailbox/private.h"

static int check_dir_stat (const char *path, const struct stat *st,
                           cs_error_t *errp)
{
    if (!S_ISDIR (st->st_mode)) {
        errno = ENOTDIR;
        return errprintf (errp, "'%s' is not a directory", path);
    }
    if (st->st_uid != geteuid ()) {
        errno = EPERM;
        return errprintf (errp,
                          "refusing directory '%s': owned by uid %ju, "
                          "not by uid %ju",
                          path, (uintmax_t)st->st_uid,
                          (uintmax_t)geteuid ());
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        errno = EPERM;
        return errprintf (errp,
                          "refusing directory '%s': writable by %s "
                          "(mode %04o)",
                          path,
                          (st->st_mode & S_IWOTH) ? "others" : "group",
                          (unsigned)(st->st_mode & 07777));
    }
    return 0;
}

int mb_secure_dir (const char *path, bool create, cs_error_t *errp)
{
    struct stat st;

    if (!path || !*path) {
        errno = EINVAL;
        return errprintf (errp, "empty directory path");
    }
    if (lstat (path, &st) < 0) {
        if (errno != ENOENT || !create)
            return errprintf (errp, "cannot access '%s': %s", path,
                              strerror (errno));
        if (mkdir (path, 0700) < 0 && errno != EEXIST)
            return errprintf (errp, "cannot create directory '%s': %s",
                              path, strerror (errno));
        if (lstat (path, &st) < 0)
            return errprintf (errp, "cannot access '%s': %s", path,
                              strerror (errno));
    }
    if (S_ISLNK (st.st_mode)) {
        errno = ELOOP;
        return errprintf (errp, "refusing directory '%s': it is a symbolic "
                          "link", path);
    }
    return check_dir_stat (path, &st, errp);
}

int mb_secure_open (const char *path, int flags, cs_error_t *errp)
{
    struct stat st;
    int fd;

    do {
        fd = open (path, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == ELOOP) {
            struct stat lst;
            if (lstat (path, &lst) == 0 && S_ISLNK (lst.st_mode))
                return errprintf (errp, "refusing '%s': it is a symbolic "
                                  "link", path);
        }
        return errprintf (errp, "cannot open '%s': %s", path,
                          strerror (errno));
    }
    if (fstat (fd, &st) < 0) {
        errprintf (errp, "cannot stat '%s': %s", path, strerror (errno));
        goto error;
    }
    if (!S_ISREG (st.st_mode)) {
        errno = EINVAL;
        errprintf (errp, "refusing '%s': not a regular file", path);
        goto error;
    }
    if (st.st_uid != geteuid ()) {
        errno = EPERM;
        errprintf (errp, "refusing '%s': owned by uid %ju, not by uid %ju",
                   path, (uintmax_t)st.st_uid, (uintmax_t)geteuid ());
        goto error;
    }
    return fd;
error: {
    int saved = errno;
    close (fd);
    errno = saved;
    return -1;
}
}

int mb_fsync_dir (const char *path, bool is_dir)
{
    char dir[MB_PATH_MAX];
    int fd, rc, saved;

    if (is_dir) {
        if (strlen (path) >= sizeof (dir)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        strcpy (dir, path);
    }
    else {
        const char *slash = strrchr (path, '/');
        if (!slash)
            strcpy (dir, ".");
        else if (slash == path)
            strcpy (dir, "/");
        else {
            size_t n = (size_t)(slash - path);
            if (n >= sizeof (dir)) {
                errno = ENAMETOOLONG;
                return -1;
            }
            memcpy (dir, path, n);
            dir[n] = '\0';
        }
    }
    if ((fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    rc = fsync (fd);
    saved = errno;
    /* some filesystems refuse fsync on a directory: not an error */
    if (rc < 0 && (saved == EINVAL || saved == EROFS || saved == EBADF))
        rc = 0;
    close (fd);
    errno = saved;
    return rc;
}
