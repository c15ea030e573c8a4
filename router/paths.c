/* paths.c - where the router keeps its files and its socket */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/fnv.h"
#include "mailbox/mailbox.h"
#include "router/paths.h"

int router_socket_path (const char *home, char *buf, size_t len, bool create,
                        cs_error_t *errp)
{
    const char *env = getenv ("CODESWARM_ROUTER_SOCKET");
    const char *xdg = getenv ("XDG_RUNTIME_DIR");
    char dir[4096];
    int n;

    if (env && *env) {
        if (snprintf (buf, len, "%s", env) >= (int)len) {
            errno = ENAMETOOLONG;
            return errprintf (errp, "socket path too long");
        }
        return 0;
    }
    if (xdg && *xdg && xdg[0] == '/') {
        if (snprintf (dir, sizeof (dir), "%s/codeswarm", xdg)
            >= (int)sizeof (dir)) {
            errno = ENAMETOOLONG;
            return errprintf (errp, "socket path too long");
        }
        n = snprintf (buf, len, "%s/router-%08x.sock", dir, fnv1a_32 (home));
    }
    else {
        if (snprintf (dir, sizeof (dir), "%s/run", home)
            >= (int)sizeof (dir)) {
            errno = ENAMETOOLONG;
            return errprintf (errp, "socket path too long");
        }
        n = snprintf (buf, len, "%s/router.sock", dir);
    }
    if (n < 0 || (size_t)n >= len
        || (size_t)n >= sizeof (((struct sockaddr_un *)0)->sun_path)) {
        errno = ENAMETOOLONG;
        return errprintf (errp, "socket path '%s' is too long", buf);
    }
    if (create && mb_secure_dir (dir, true, errp) < 0)
        return -1;
    return 0;
}

int router_connect (const char *path, cs_error_t *errp)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd;

    if (strlen (path) >= sizeof (sun.sun_path)) {
        errno = ENAMETOOLONG;
        return errprintf (errp, "socket path '%s' is too long", path);
    }
    strcpy (sun.sun_path, path);
    /* a socket someone else put there (a shared runtime directory, /tmp)
     * is never talked to: nothing is sent before both checks pass
     */
    {
        struct stat st;
        if (lstat (path, &st) < 0)
            return errprintf (errp, "cannot connect to '%s': %s", path,
                              strerror (errno));
        if (!S_ISSOCK (st.st_mode)) {
            errno = EACCES;
            return errprintf (errp, "refusing '%s': it is not a socket",
                              path);
        }
        if (st.st_uid != geteuid ()) {
            errno = EACCES;
            return errprintf (errp, "refusing '%s': the socket is owned by "
                              "uid %d, not by us (uid %d)", path,
                              (int)st.st_uid, (int)geteuid ());
        }
    }
    if ((fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return errprintf (errp, "socket: %s", strerror (errno));
    if (connect (fd, (struct sockaddr *)&sun, sizeof (sun)) < 0) {
        int saved = errno;
        close (fd);
        errno = saved;
        return errprintf (errp, "cannot connect to '%s': %s", path,
                          strerror (errno));
    }
    /* the other end must be a router of our own uid */
    {
        struct ucred cred;
        socklen_t clen = sizeof (cred);
        if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0
            || clen != sizeof (cred) || cred.uid != geteuid ()) {
            close (fd);
            errno = EACCES;
            return errprintf (errp, "refusing '%s': it is served by uid %d, "
                              "not by us (uid %d)", path,
                              clen == sizeof (cred) ? (int)cred.uid : -1,
                              (int)geteuid ());
        }
    }
    return fd;
}

int router_listen (const char *home, char *buf, size_t len, cs_error_t *errp)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd;

    if (router_socket_path (home, buf, len, true, errp) < 0)
        return -1;
    /* a live router there? */
    if ((fd = router_connect (buf, NULL)) >= 0) {
        close (fd);
        errno = EADDRINUSE;
        return errprintf (errp, "a router already listens on '%s'", buf);
    }
    (void)unlink (buf);
    strcpy (sun.sun_path, buf);
    if ((fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0))
        < 0)
        return errprintf (errp, "socket: %s", strerror (errno));
    if (bind (fd, (struct sockaddr *)&sun, sizeof (sun)) < 0
        || chmod (buf, 0600) < 0 || listen (fd, 64) < 0) {
        int saved = errno;
        close (fd);
        errno = saved;
        return errprintf (errp, "cannot listen on '%s': %s", buf,
                          strerror (errno));
    }
    return fd;
}

int router_accept (int lfd, struct ucred *cred, cs_error_t *errp)
{
    socklen_t len = sizeof (*cred);
    int fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0)
        return -1;
    if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0
        || len != sizeof (*cred) || cred->uid != geteuid ()) {
        int uid = len == sizeof (*cred) ? (int)cred->uid : -1;
        close (fd);
        errno = EACCES;
        return errprintf (errp, "refusing a connection from uid %d", uid);
    }
    return fd;
}
