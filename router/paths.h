/* paths.h - where the router keeps its files and its socket; connecting
 * to it and listening on it
 */
#ifndef CODESWARM_ROUTER_PATHS_H
#define CODESWARM_ROUTER_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/errprintf.h"

/* The per-user socket: $CODESWARM_ROUTER_SOCKET, else
 * $XDG_RUNTIME_DIR/codeswarm/router-<hash of home>.sock, else
 * <home>/run/router.sock.  With create, the directory is made (0700) and
 * checked.
 */
int router_socket_path (const char *home, char *buf, size_t len, bool create,
                        cs_error_t *errp);

/* Connect to a router's socket: the fd, or -1 (errno ENOENT/ECONNREFUSED
 * when no router is there; EACCES when the socket file is not a socket
 * owned by the effective uid, or the process at the other end runs as
 * another uid (SO_PEERCRED) -- nothing was sent then).
 */
int router_connect (const char *path, cs_error_t *errp);

/* Listen on the per-user socket of home (its path goes to buf, as
 * router_socket_path with create): the nonblocking listening fd, mode
 * 0600, or -1 (errno EADDRINUSE when a router already answers there).
 */
int router_listen (const char *home, char *buf, size_t len, cs_error_t *errp);

/* Accept one connection on the listening fd of router_listen and admit it
 * only when the process at the other end runs as the effective uid (its
 * credentials go to *cred).  Returns the connection's fd (nonblocking,
 * CLOEXEC); -1 with errno EAGAIN when there was none, or -1 with EACCES
 * and errp naming who was refused (the connection is closed).
 */
struct ucred;
int router_accept (int lfd, struct ucred *cred, cs_error_t *errp);

#endif
