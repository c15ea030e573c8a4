/* test/tcp.c - the loopback listener: addresses, and the uid check through
 * the kernel's socket diagnostics on real connections */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/libtap/tap.h"
#include "router/tcp.h"

/* got contains sub */
#define like(got, sub, ...) ok (strstr ((got), (sub)) != NULL, __VA_ARGS__)

static const char *addr (const char *spec)
{
    static char buf[600];
    struct sockaddr_storage ss;
    socklen_t len;
    cs_error_t error;

    if (tcp_parse_addr (spec, &ss, &len, &error) < 0)
        snprintf (buf, sizeof (buf), "error: %s", error.text);
    else
        tcp_addr_str ((struct sockaddr *)&ss, buf, sizeof (buf));
    return buf;
}

/* Connect to the listener lfd; returns the client fd. */
static int dial (int lfd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof (ss);
    int fd;

    if (getsockname (lfd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if ((fd = socket (ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    if (connect (fd, (struct sockaddr *)&ss, len) < 0) {
        close (fd);
        return -1;
    }
    return fd;
}

static void wait_readable (int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    (void)poll (&p, 1, 10000);
}

static void check_listener (const char *spec)
{
    cs_error_t error;
    int lfd, cfd, afd;
    uid_t uid = 12345;
    char want[64];

    if ((lfd = tcp_listen (spec, &error)) < 0) {
        /* ::1 may be missing in a container without IPv6 */
        skip (5, "cannot listen on %s: %s", spec, error.text);
        return;
    }
    ok (lfd >= 0, "listening on %s", spec);

    cfd = dial (lfd);
    wait_readable (lfd);
    afd = tcp_accept (lfd, geteuid (), &error);
    ok (cfd >= 0 && afd >= 0, "%s: a connection of our own uid is admitted",
        spec);
    if (afd < 0)
        diag ("%s", error.text);
    ok (afd >= 0 && tcp_peer_uid (afd, &uid, &error) == 0
        && uid == geteuid (), "%s: its peer's uid is ours (%u)", spec,
        (unsigned)geteuid ());
    if (afd >= 0)
        close (afd);
    if (cfd >= 0)
        close (cfd);

    /* the same connection, but the router runs as another uid */
    cfd = dial (lfd);
    wait_readable (lfd);
    errno = 0;
    afd = tcp_accept (lfd, geteuid () + 1, &error);
    snprintf (want, sizeof (want), "belongs to uid %u, not %u",
              (unsigned)geteuid (), (unsigned)geteuid () + 1);
    ok (afd < 0 && errno == EACCES && strstr (error.text, want),
        "%s: a connection of another uid is refused", spec);
    diag ("%s", error.text);
    if (cfd >= 0) {
        char c;
        /* the refused connection was closed by the listener */
        ok (read (cfd, &c, 1) <= 0, "%s: and closed", spec);
        close (cfd);
    }
    else
        ok (0, "%s: and closed", spec);
    close (lfd);
}

int main (int argc, char **argv)
{
    cs_error_t error;
    uid_t uid;
    int sv[2];

    plan (NO_PLAN);

    is (addr ("127.0.0.1:8765"), "127.0.0.1:8765", "v4 address and port");
    is (addr ("127.0.0.1"), "127.0.0.1:8765", "default port");
    is (addr (":9000"), "127.0.0.1:9000", "no host: 127.0.0.1");
    is (addr ("localhost:9000"), "127.0.0.1:9000", "localhost");
    is (addr ("127.1.2.3:1"), "127.1.2.3:1", "all of 127/8");
    is (addr ("[::1]:8765"), "[::1]:8765", "v6 loopback");
    like (addr ("0.0.0.0:8765"), "not a loopback address",
          "0.0.0.0 refused");
    like (addr ("192.168.1.5:8765"), "not a loopback address",
          "a LAN address refused");
    like (addr ("[::]:8765"), "not a loopback address", ":: refused");
    like (addr ("[::ffff:10.0.0.1]:1"), "not a loopback address",
          "a v4-mapped address outside 127/8 refused");
    like (addr ("example.com:8765"), "not a numeric IP address",
          "host names refused");
    like (addr ("127.0.0.1:99999"), "not a port number", "port range");
    like (addr ("127.0.0.1:x"), "not a port number", "port syntax");
    like (addr ("::1:8765"), "as [ADDR]:PORT", "bare v6 refused");
    ok (tcp_listen ("0.0.0.0:0", &error) < 0 && errno == EADDRNOTAVAIL,
        "tcp_listen refuses a non-loopback address before binding");

    check_listener ("127.0.0.1:0");
    check_listener ("[::1]:0");

    ok (socketpair (AF_UNIX, SOCK_STREAM, 0, sv) == 0
        && tcp_peer_uid (sv[0], &uid, &error) < 0,
        "tcp_peer_uid fails on a UNIX socket: %s", error.text);
    close (sv[0]);
    close (sv[1]);

    done_testing ();
    return 0;
}
