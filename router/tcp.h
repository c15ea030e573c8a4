/* tcp.h - the router's opt-in loopback TCP listener
 *
 * For clients that cannot use the per-user UNIX socket (they speak TCP
 * only).  It owns three things:
 *
 *   - the address: "HOST:PORT" where HOST is a loopback address
 *     (127.0.0.0/8, ::1, or "localhost"); anything else is refused before
 *     a socket exists, so the router never listens on the network;
 *   - the listening socket;
 *   - admission: TCP has no SO_PEERCRED, so the owner of the connecting
 *     socket is looked up in the kernel's socket diagnostics
 *     (NETLINK_SOCK_DIAG, inet_diag): the socket whose local end is our
 *     peer's address and whose remote end is our local address.  Only a
 *     socket owned by the router's own uid is admitted; anything that
 *     cannot be proven to be (lookup failed, socket gone) is refused.
 */
#ifndef CODESWARM_ROUTER_TCP_H
#define CODESWARM_ROUTER_TCP_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/errprintf.h"

#define TCP_DEFAULT_PORT 8765

/* Parse "HOST:PORT", "[V6]:PORT", "HOST" (default port) or ":PORT"
 * (127.0.0.1).  Fails (EINVAL / EADDRNOTAVAIL) unless the address is a
 * loopback address.  ss is filled for bind().
 */
int tcp_parse_addr (const char *spec, struct sockaddr_storage *ss,
                    socklen_t *len, cs_error_t *errp);

/* Is sa a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.y.z)? */
bool tcp_addr_is_loopback (const struct sockaddr *sa);

/* "127.0.0.1:8765", "[::1]:8765" */
void tcp_addr_str (const struct sockaddr *sa, char *buf, size_t len);

/* Listen on spec (checked as above).  Returns a nonblocking, CLOEXEC fd. */
int tcp_listen (const char *spec, cs_error_t *errp);

/* The uid owning the other end of the connected TCP socket fd, from
 * inet_diag.  -1 with errp when it cannot be found.
 */
int tcp_peer_uid (int fd, uid_t *uid, cs_error_t *errp);

/* Accept one connection on lfd and admit it only when its peer socket is
 * owned by uid want.  Returns the connection's fd (nonblocking, CLOEXEC);
 * -1 with errno EAGAIN when there was none, or -1 with EACCES and errp
 * naming who was refused (the connection is closed).
 */
int tcp_accept (int lfd, uid_t want, cs_error_t *errp);

#endif
