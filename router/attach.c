/* attach.c - "codeswarm-router --stdio" while a router already serves the
 * same home: instead of a second router (which would follow the same
 * mailboxes and fight over the state files), relay stdin and stdout to the
 * running router's socket.  A client that spawns the router as a child and
 * speaks on its stdio then talks to the one router everyone shares.
 *
 * At the end of stdin, the socket's sending side is shut down; the relay
 * ends when the router has closed its side (it does once the replies to
 * what was sent are written), or when stdout is gone.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/lineio.h"
#include "router/attach.h"

#define ATTACH_MAX_PENDING (64u * 1024 * 1024)

int attach_relay (int in, int out, int sock, cs_error_t *errp)
{
    outbuf_t *to_sock = outbuf_create ();
    outbuf_t *to_out = outbuf_create ();
    bool in_open = true, sock_open = true, shut = false;
    char buf[65536];
    int rc = -1;

    if (!to_sock || !to_out) {
        errno = ENOMEM;
        errprintf (errp, "out of memory");
        goto done;
    }
    (void)fd_set_nonblock (in, true);
    (void)fd_set_nonblock (out, true);
    (void)fd_set_nonblock (sock, true);
    for (;;) {
        struct pollfd p[3];
        int n = 0, iin = -1, isock = -1, iout = -1;
        ssize_t got;

        if (!in_open && !shut && !outbuf_pending (to_sock)) {
            (void)shutdown (sock, SHUT_WR);
            shut = true;
        }
        if (!sock_open && !outbuf_pending (to_out)) {
            rc = 0;
            break;
        }
        /* read no more than the other side takes */
        if (in_open && outbuf_pending (to_sock) < ATTACH_MAX_PENDING) {
            p[n] = (struct pollfd){ .fd = in, .events = POLLIN };
            iin = n++;
        }
        p[n] = (struct pollfd){ .fd = sock, .events = 0 };
        if (sock_open && outbuf_pending (to_out) < ATTACH_MAX_PENDING)
            p[n].events |= POLLIN;
        if (outbuf_pending (to_sock))
            p[n].events |= POLLOUT;
        if (p[n].events)
            isock = n++;
        if (outbuf_pending (to_out)) {
            p[n] = (struct pollfd){ .fd = out, .events = POLLOUT };
            iout = n++;
        }
        if (poll (p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            errprintf (errp, "poll: %s", strerror (errno));
            break;
        }
        if (iin >= 0 && p[iin].revents) {
            got = read (in, buf, sizeof (buf));
            if (got > 0) {
                if (outbuf_append (to_sock, buf, (size_t)got) < 0) {
                    errprintf (errp, "out of memory");
                    break;
                }
            }
            else if (got == 0 || (errno != EAGAIN && errno != EINTR))
                in_open = false;
        }
        if (isock >= 0 && (p[isock].revents & (POLLIN | POLLHUP | POLLERR))
            && sock_open) {
            got = read (sock, buf, sizeof (buf));
            if (got > 0) {
                if (outbuf_append (to_out, buf, (size_t)got) < 0) {
                    errprintf (errp, "out of memory");
                    break;
                }
            }
            else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                sock_open = false;
                in_open = false;        /* nobody to send it to */
            }
        }
        if (isock >= 0 && (p[isock].revents & POLLOUT)
            && outbuf_flush (to_sock, sock) < 0 && errno != EAGAIN) {
            errprintf (errp, "writing to the router: %s", strerror (errno));
            break;
        }
        if (iout >= 0 && p[iout].revents
            && outbuf_flush (to_out, out) < 0 && errno != EAGAIN) {
            rc = 0;             /* our reader is gone: nothing more to do */
            break;
        }
    }
done:
    outbuf_destroy (to_sock);
    outbuf_destroy (to_out);
    return rc;
}
