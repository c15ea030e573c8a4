/* tcp.c - the loopback TCP listener and its uid check (see tcp.h) */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "router/tcp.h"

bool tcp_addr_is_loopback (const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl (in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK (&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED (&in6->sin6_addr)
               && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

void tcp_addr_str (const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop (AF_INET, &in->sin_addr, host, sizeof (host));
        snprintf (buf, len, "%s:%u", host, (unsigned)ntohs (in->sin_port));
    }
    else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop (AF_INET6, &in6->sin6_addr, host, sizeof (host));
        snprintf (buf, len, "[%s]:%u", host, (unsigned)ntohs (in6->sin6_port));
    }
    else
        snprintf (buf, len, "(family %d)", (int)sa->sa_family);
}

static int parse_port (const char *s, unsigned *port, cs_error_t *errp)
{
    char *end;
    unsigned long v;

    if (!*s || *s == '-' || *s == '+') {
        errno = EINVAL;
        return errprintf (errp, "'%s' is not a port number", s);
    }
    errno = 0;
    v = strtoul (s, &end, 10);
    if (errno || *end || v > 65535) {
        errno = EINVAL;
        return errprintf (errp, "'%s' is not a port number (0-65535)", s);
    }
    *port = (unsigned)v;
    return 0;
}

int tcp_parse_addr (const char *spec, struct sockaddr_storage *ss,
                    socklen_t *len, cs_error_t *errp)
{
    char host[256];
    const char *portstr = NULL;
    unsigned port = TCP_DEFAULT_PORT;
    const char *colon;

    memset (ss, 0, sizeof (*ss));
    if (!spec || strlen (spec) >= sizeof (host)) {
        errno = EINVAL;
        return errprintf (errp, "bad address '%s'", spec ? spec : "");
    }
    if (spec[0] == '[') {
        const char *rb = strchr (spec, ']');
        if (!rb || (rb[1] && rb[1] != ':')) {
            errno = EINVAL;
            return errprintf (errp, "bad address '%s' (use [ADDR]:PORT)",
                              spec);
        }
        snprintf (host, sizeof (host), "%.*s", (int)(rb - spec - 1),
                  spec + 1);
        if (rb[1] == ':')
            portstr = rb + 2;
    }
    else if ((colon = strchr (spec, ':')) && !strchr (colon + 1, ':')) {
        snprintf (host, sizeof (host), "%.*s", (int)(colon - spec), spec);
        portstr = colon + 1;
    }
    else if (colon) {
        errno = EINVAL;
        return errprintf (errp, "bad address '%s' (write an IPv6 address "
                          "as [ADDR]:PORT)", spec);
    }
    else
        snprintf (host, sizeof (host), "%s", spec);
    if (portstr && parse_port (portstr, &port, errp) < 0)
        return -1;
    if (!host[0] || !strcmp (host, "localhost"))
        snprintf (host, sizeof (host), "127.0.0.1");
    {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        if (inet_pton (AF_INET, host, &in->sin_addr) == 1) {
            in->sin_family = AF_INET;
            in->sin_port = htons ((uint16_t)port);
            *len = sizeof (*in);
        }
        else if (inet_pton (AF_INET6, host, &in6->sin6_addr) == 1) {
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons ((uint16_t)port);
            *len = sizeof (*in6);
        }
        else {
            errno = EINVAL;
            return errprintf (errp, "'%s' is not a numeric IP address (the "
                              "listener takes loopback addresses only)",
                              host);
        }
    }
    if (!tcp_addr_is_loopback ((struct sockaddr *)ss)) {
        errno = EADDRNOTAVAIL;
        return errprintf (errp, "'%s' is not a loopback address: the router "
                          "listens on 127.0.0.0/8 or ::1 only", host);
    }
    return 0;
}

int tcp_listen (const char *spec, cs_error_t *errp)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1;

    if (tcp_parse_addr (spec, &ss, &len, errp) < 0)
        return -1;
    fd = socket (ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return errprintf (errp, "socket: %s", strerror (errno));
    (void)setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
    if (ss.ss_family == AF_INET6)
        (void)setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof (one));
    if (bind (fd, (struct sockaddr *)&ss, len) < 0 || listen (fd, 64) < 0) {
        int saved = errno;
        close (fd);
        errno = saved;
        return errprintf (errp, "cannot listen on '%s': %s", spec,
                          strerror (errno));
    }
    return fd;
}

/* Fill an inet_diag_sockid's address from sa (network byte order). */
static void sockid_addr (const struct sockaddr *sa, __be16 *port,
                         __be32 addr[4])
{
    memset (addr, 0, 4 * sizeof (addr[0]));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        *port = in->sin_port;
        addr[0] = in->sin_addr.s_addr;
    }
    else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        *port = in6->sin6_port;
        memcpy (addr, &in6->sin6_addr, 16);
    }
}

int tcp_peer_uid (int fd, uid_t *uid, cs_error_t *errp)
{
    struct sockaddr_storage local, peer;
    socklen_t llen = sizeof (local), plen = sizeof (peer);
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    union {
        char buf[8192];
        struct nlmsghdr align;
    } resp;
    int nl, rc = -1;
    ssize_t n;

    if (getsockname (fd, (struct sockaddr *)&local, &llen) < 0
        || getpeername (fd, (struct sockaddr *)&peer, &plen) < 0)
        return errprintf (errp, "cannot name the connection: %s",
                          strerror (errno));
    if (local.ss_family != peer.ss_family
        || (local.ss_family != AF_INET && local.ss_family != AF_INET6)) {
        errno = EAFNOSUPPORT;
        return errprintf (errp, "not a TCP/IP connection");
    }
    memset (&msg, 0, sizeof (msg));
    msg.nlh.nlmsg_len = sizeof (msg);
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.nlh.nlmsg_seq = 1;
    msg.req.sdiag_family = local.ss_family;
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = ~0u;
    /* the peer's socket: its local end is our peer, its remote end us */
    sockid_addr ((struct sockaddr *)&peer, &msg.req.id.idiag_sport,
                 msg.req.id.idiag_src);
    sockid_addr ((struct sockaddr *)&local, &msg.req.id.idiag_dport,
                 msg.req.id.idiag_dst);
    msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

    if ((nl = socket (AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
                      NETLINK_SOCK_DIAG)) < 0)
        return errprintf (errp, "socket diagnostics unavailable: %s",
                          strerror (errno));
    if (sendto (nl, &msg, sizeof (msg), 0, (struct sockaddr *)&kernel,
                sizeof (kernel)) < 0) {
        errprintf (errp, "socket diagnostics: %s", strerror (errno));
        goto done;
    }
    do
        n = recv (nl, resp.buf, sizeof (resp.buf), 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        errprintf (errp, "socket diagnostics: %s", strerror (errno));
        goto done;
    }
    for (struct nlmsghdr *h = &resp.align; NLMSG_OK (h, (size_t)n);
         h = NLMSG_NEXT (h, n)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
            const struct nlmsgerr *e = NLMSG_DATA (h);
            errno = e->error ? -e->error : ENOENT;
            errprintf (errp, "the connecting socket was not found: %s",
                       strerror (errno));
            goto done;
        }
        if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY
            && h->nlmsg_len >= NLMSG_LENGTH (sizeof (struct inet_diag_msg))) {
            const struct inet_diag_msg *m = NLMSG_DATA (h);
            if (m->id.idiag_sport != msg.req.id.idiag_sport
                || m->id.idiag_dport != msg.req.id.idiag_dport
                || memcmp (m->id.idiag_src, msg.req.id.idiag_src,
                           sizeof (m->id.idiag_src))) {
                errno = ESRCH;
                errprintf (errp, "socket diagnostics answered for another "
                           "socket");
                goto done;
            }
            *uid = (uid_t)m->idiag_uid;
            rc = 0;
            goto done;
        }
    }
    errno = ENOENT;
    errprintf (errp, "socket diagnostics gave no answer");
done:
    {
        int saved = errno;
        close (nl);
        errno = saved;
    }
    return rc;
}

int tcp_accept (int lfd, uid_t want, cs_error_t *errp)
{
    struct sockaddr_storage peer;
    socklen_t plen = sizeof (peer);
    char who[80];
    uid_t uid;
    int fd;

    fd = accept4 (lfd, (struct sockaddr *)&peer, &plen,
                  SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return errprintf (errp, "accept: %s", strerror (errno));
    tcp_addr_str ((struct sockaddr *)&peer, who, sizeof (who));
    if (!tcp_addr_is_loopback ((struct sockaddr *)&peer)) {
        close (fd);
        errno = EACCES;
        return errprintf (errp, "refusing a connection from %s: not a "
                          "loopback address", who);
    }
    if (tcp_peer_uid (fd, &uid, errp) < 0) {
        char why[sizeof (errp->text)];
        snprintf (why, sizeof (why), "%s", errp ? errp->text : "");
        close (fd);
        errno = EACCES;
        return errprintf (errp, "refusing a connection from %s: its owner "
                          "cannot be checked (%s)", who, why);
    }
    if (uid != want) {
        close (fd);
        errno = EACCES;
        return errprintf (errp, "refusing a connection from %s: it belongs "
                          "to uid %u, not %u", who, (unsigned)uid,
                          (unsigned)want);
    }
    return fd;
}
