/* router.c - codeswarm-router: options, startup and the poll() loop
 *
 * One poll() loop over: the mailbox follower (local mode) or the ssh link
 * (remote mode), the clients (stdio, the UNIX socket, the loopback TCP
 * listener), the launcher children (control.c), and a signalfd.
 * Each round also declares silent nodes lost, scans for new swarms and
 * writes the state files.  What each concern does lives in the file named
 * after it (see router-private.h).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sigfd.h"
#include "router/attach.h"
#include "router/paths.h"
#include "router/metrics.h"
#include "router/router-private.h"
#include "router/tcp.h"

/* The command line. */
struct router_args {
    const char *config;
    const char *home;
    const char *lost;           /* --node-lost-after */
    const char *metrics_file;   /* --metrics-file */
    const char *metrics_interval;
    const char *hold_max;       /* --hold-max */
    bool want_socket;
    bool want_stdio;
    const char *tcp;            /* --tcp ADDR */
    bool want_relay;            /* --relay */
    bool want_far;              /* --relay-client */
    struct remote_opts ro;
};

static void usage (FILE *f)
{
    fprintf (f,
"usage: codeswarm-router [OPTIONS]\n"
"Follow the swarms' outboxes, translate, and serve router clients.\n"
"\n"
"  -s, --socket          listen on the per-user UNIX socket\n"
"      --stdio           also serve a client on stdin/stdout (the default\n"
"                        without --socket and --tcp); when a router already\n"
"                        serves the home, relay stdin/stdout to it instead\n"
"      --tcp ADDR        also listen on a loopback TCP address, e.g.\n"
"                        127.0.0.1:8765, admitting only our own uid\n"
"  -H, --home DIR        codeswarm home (default $CODESWARM_HOME, ~/.codeswarm)\n"
"  -c, --config FILE     codeswarm.yaml\n"
"      --ssh [USER@]HOST follow the swarms on HOST through one ssh session\n"
"  -o, --ssh-opt OPT     an ssh option (repeatable), e.g. -o -p2222\n"
"      --remote-home DIR codeswarm home on the ssh host\n"
"      --remote-command PATH  codeswarm-mailbox on the ssh host\n"
"      --node-lost-after SECS  heartbeat silence before node_lost\n"
"      --relay           also serve far-side clients through the MQTT relay\n"
"                        of codeswarm.yaml (relay:)\n"
"      --relay-client    the far side of the relay: no mailbox; serve local\n"
"                        clients by relaying to a --relay router\n"
"      --hold-max N      events held while the event log cannot be written\n"
"                        (a full disk) before reading stops (default %d)\n"
"      --debug           pass untranslated messages through as debug events\n"
"      --metrics-file PATH  write Prometheus metrics to PATH (atomically)\n"
"      --metrics-interval D  every D (default 15s; metrics.interval)\n"
"  -v, --verbose         more log output (repeatable)\n"
"  -h, --help            this text\n", HOLD_MAX_DEFAULT);
}

static double next_deadline (struct router *r)
{
    double next = r->next_scan;
    if (r->dirty && r->next_flush < next)
        next = r->next_flush;
    /* no silence counts while reading waits for the event log */
    if (r->paused)
        return next;
    if (time_mono () < r->lost_grace_until)
        return r->lost_grace_until < next ? r->lost_grace_until : next;
    for (struct swarm *sw = r->swarms; sw; sw = sw->next) {
        double d = rt_trans_next_deadline (sw->t, r->lost_after);
        if (d >= 0 && d + 0.001 < next)
            next = d + 0.001;
    }
    return next;
}

static int run (struct router *r)
{
    struct pollfd *pfd = calloc (MAX_POLLFDS, sizeof (*pfd));
    struct client **pc = calloc (MAX_POLLFDS, sizeof (*pc));
    cs_error_t error;

    if (!pfd || !pc) {
        free (pfd);
        free (pc);
        log_msg ("out of memory");
        return -1;
    }
    while (!r->quit) {
        int n = 0, nfol = -1, nlisten = -1, nsig = -1, nrem = -1, nremc = 0;
        int ntcp = -1, nctl = -1, nctlc = 0, nrelay = -1;
        int timeout, fto;
        double now = time_mono ();

        pfd[n].fd = r->sig_fd;
        pfd[n].events = POLLIN;
        nsig = n++;
        if (r->fol && router_reading (r) && mb_follower_fd (r->fol) >= 0) {
            pfd[n].fd = mb_follower_fd (r->fol);
            pfd[n].events = POLLIN;
            nfol = n++;
        }
        if (r->listen_fd >= 0) {
            pfd[n].fd = r->listen_fd;
            pfd[n].events = POLLIN;
            nlisten = n++;
        }
        if (r->tcp_fd >= 0) {
            pfd[n].fd = r->tcp_fd;
            pfd[n].events = POLLIN;
            ntcp = n++;
        }
        if (r->remote) {
            nrem = n;
            nremc = remote_pollfds (r->remote, &pfd[n], 3);
            n += nremc;
        }
        nctl = n;
        nctlc = control_pollfds (r->control, &pfd[n], 64);
        n += nctlc;
#ifdef HAVE_RELAY
        if (r->relay && relay_pollfd (r->relay, &pfd[n]) == 1)
            nrelay = n++;
#endif
        for (struct client *c = r->clients; c && n < MAX_POLLFDS - 1;
             c = c->next) {
            if (c->dead)
                continue;
            if (c->fd_in >= 0 && !c->half_closed) {
                pfd[n].fd = c->fd_in;
                pfd[n].events = POLLIN;
                pc[n++] = c;
            }
            if (outbuf_pending (c->out)) {
                pfd[n].fd = c->fd_out;
                pfd[n].events = POLLOUT;
                pc[n++] = c;
            }
        }
        timeout = (int)((next_deadline (r) - now) * 1000);
        if (timeout < 0)
            timeout = 0;
        if (r->fol && router_reading (r)
            && (fto = mb_follower_timeout (r->fol)) >= 0 && fto < timeout)
            timeout = fto;
        if (r->remote && (fto = remote_timeout (r->remote)) >= 0
            && fto < timeout)
            timeout = fto;
#ifdef HAVE_RELAY
        if (r->relay && (fto = relay_timeout (r->relay)) >= 0
            && fto < timeout)
            timeout = fto;
#endif
        if (poll (pfd, (nfds_t)n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            log_err ("poll");
            break;
        }
        if (pfd[nsig].revents) {
            struct signalfd_siginfo si;
            if (read (r->sig_fd, &si, sizeof (si)) == sizeof (si)) {
                log_debug ("signal %d: exiting", (int)si.ssi_signo);
                r->quit = true;
            }
        }
        /* the events of what is read now are logged and sent together */
        r->batching = true;
        if (r->fol && router_reading (r)) {
            if (mb_follower_process (r->fol, &error) < 0)
                log_msg ("follower: %s", error.text);
        }
        if (r->remote) {
            remote_hold (r->remote, !router_reading (r));
            remote_handle (r->remote, &pfd[nrem], nremc);
            remote_tick (r->remote);
        }
        r->batching = false;
        router_flush (r);
        if (nlisten >= 0 && pfd[nlisten].revents)
            clients_accept (r);
        if (ntcp >= 0 && pfd[ntcp].revents)
            clients_accept_tcp (r);
        control_handle (r->control, &pfd[nctl], nctlc);
#ifdef HAVE_RELAY
        if (nrelay >= 0)
            relay_handle (r->relay, &pfd[nrelay]);
#endif
        for (int i = 0; i < n; i++) {
            struct client *c = pc[i];
            if (i == nsig || i == nfol || i == nlisten || i == ntcp
                || i == nrelay
                || (nrem >= 0 && i >= nrem && i < nrem + nremc)
                || (i >= nctl && i < nctl + nctlc))
                continue;
            if (!c || c->dead || !pfd[i].revents)
                continue;
            if (pfd[i].events & POLLIN)
                client_read (r, c);
            else if (outbuf_flush (c->out, c->fd_out) < 0)
                c->dead = true;
        }
        commit_flush (r);       /* what this round wrote: durable, acked */
        /* write what was queued this round right away */
        for (struct client *c = r->clients; c; c = c->next) {
            if (!c->dead && outbuf_pending (c->out)
                && outbuf_flush (c->out, c->fd_out) < 0
                && errno != EAGAIN)
                c->dead = true;
            if (((c->stdio && c->fd_in < 0) || c->half_closed)
                && !outbuf_pending (c->out))
                c->dead = true;
        }
        clients_reap (r);
#ifdef HAVE_RELAY
        if (r->relay)
            relay_tick (r->relay);
#endif
        now = time_mono ();
        /* no heartbeat is read while reading waits for the event log */
        for (struct swarm *sw = r->swarms;
             sw && !r->paused && now >= r->lost_grace_until; sw = sw->next) {
            r->cur_stream = NULL;
            r->cur_idx = 0;
            if (rt_trans_check_lost (sw->t, now, r->lost_after) > 0) {
                r->dirty = true;
                r->next_flush = now;    /* the lost flag: durable now */
            }
        }
        if (now >= r->next_scan) {
            if (!r->remote)
                swarms_scan (r);
            audit_flush (r);    /* what could not be written: again */
            metrics_tick (r, now);
            r->next_scan = now + SCAN_INTERVAL;
        }
        if (r->dirty && now >= r->next_flush) {
            state_flush (r);
            r->next_flush = now + FLUSH_INTERVAL;
        }
        if (!r->use_stdio && r->listen_fd < 0 && r->tcp_fd < 0
            && !r->clients)
            r->quit = true;
    }
    free (pfd);
    free (pc);
    commit_flush (r);
    r->dirty = true;
    state_flush (r);
    audit_flush (r);
    return 0;
}

static enum mb_fsync fsync_mode (const char *s)
{
    if (s && !strcmp (s, "always"))
        return MB_FSYNC_ALWAYS;
    if (s && !strcmp (s, "never"))
        return MB_FSYNC_NEVER;
    return MB_FSYNC_INTERVAL;
}

/* Parse the command line into a (a->ro.ssh_opts: free).  Exits on --help
 * and on a usage error.
 */
static void parse_args (struct router *r, int argc, char **argv,
                        struct router_args *a)
{
    static const struct option longopts[] = {
        { "socket", no_argument, NULL, 's' },
        { "stdio", no_argument, NULL, 'S' },
        { "tcp", required_argument, NULL, 'T' },
        { "home", required_argument, NULL, 'H' },
        { "config", required_argument, NULL, 'c' },
        { "ssh", required_argument, NULL, 'R' },
        { "ssh-opt", required_argument, NULL, 'o' },
        { "remote-home", required_argument, NULL, 'M' },
        { "remote-command", required_argument, NULL, 'C' },
        { "node-lost-after", required_argument, NULL, 'L' },
        { "debug", no_argument, NULL, 'D' },
        { "relay", no_argument, NULL, 'Y' },
        { "relay-client", no_argument, NULL, 'Z' },
        { "metrics-file", required_argument, NULL, 'F' },
        { "metrics-interval", required_argument, NULL, 'I' },
        { "hold-max", required_argument, NULL, 'K' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char **ssh_opts;
    int nssh = 0;
    int c;

    if (!(ssh_opts = calloc ((size_t)argc + 1, sizeof (char *))))
        log_msg_exit ("out of memory");
    while ((c = getopt_long (argc, argv, "sH:c:o:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 's': a->want_socket = true; break;
        case 'S': a->want_stdio = true; break;
        case 'T': a->tcp = optarg; break;
        case 'H': a->home = optarg; break;
        case 'c': a->config = optarg; break;
        case 'R': a->ro.host = optarg; break;
        case 'o': ssh_opts[nssh++] = optarg; break;
        case 'M': a->ro.remote_home = optarg; break;
        case 'C': a->ro.remote_cmd = optarg; break;
        case 'L': a->lost = optarg; break;
        case 'D': r->debug = true; break;
        case 'Y': a->want_relay = true; break;
        case 'Z': a->want_far = true; break;
        case 'F': a->metrics_file = optarg; break;
        case 'I': a->metrics_interval = optarg; break;
        case 'K': a->hold_max = optarg; break;
        case 'v': log_set_verbose (log_verbose () + 1); break;
        case 'h': usage (stdout); exit (0);
        default: usage (stderr); exit (1);
        }
    }
    if (optind < argc) {
        usage (stderr);
        exit (1);
    }
    a->ro.ssh_opts = ssh_opts;
    r->use_stdio = a->want_stdio || (!a->want_socket && !a->tcp);
    if (a->tcp) {
        /* a bad address is refused before anything else happens */
        struct sockaddr_storage ss;
        socklen_t len;
        cs_error_t error;
        if (tcp_parse_addr (a->tcp, &ss, &len, &error) < 0)
            log_msg_exit ("--tcp: %s", error.text);
    }
}

/* --stdio alone while a router serves the home: relay stdin and stdout to
 * it rather than run a second router on the same mailboxes.  Returns only
 * when there is no router to relay to.
 */
static void attach_or_continue (struct router_args *a)
{
    char home[PATH_MAX], sock[PATH_MAX];
    cs_error_t error;
    int fd, rc;

    if (a->want_socket || a->tcp || a->ro.host || a->want_far)
        return;
    if (mb_home (home, sizeof (home), false, NULL) < 0
        || router_socket_path (home, sock, sizeof (sock), false, NULL) < 0
        || (fd = router_connect (sock, NULL)) < 0)
        return;
    log_debug ("relaying stdin/stdout to the router on '%s'", sock);
    signal (SIGPIPE, SIG_IGN);
    rc = attach_relay (STDIN_FILENO, STDOUT_FILENO, fd, &error);
    if (rc < 0)
        log_msg ("%s", error.text);
    close (fd);
    exit (rc < 0 ? 1 : 0);
}

/* codeswarm.yaml, the environment and the options: r->cfg, r->lost_after,
 * the mailbox options; and the ssh host when the config names one.
 * Exits on a bad value.
 */
static void configure (struct router *r, struct router_args *a)
{
    cs_error_t error;

    if (a->home) {
        if (setenv ("CODESWARM_HOME", a->home, 1) < 0)
            log_err_exit ("setenv");
    }
    if (config_load (&r->cfg, a->config, &error) < 0)
        log_msg_exit ("%s", error.text);
    if (!a->ro.host && r->cfg.login_host && getenv ("CODESWARM_ROUTER_SSH"))
        a->ro.host = r->cfg.login_host;
    r->lost_after = r->cfg.node_lost_after > 0 ? r->cfg.node_lost_after
                                               : 3 * r->cfg.heartbeat;
    if (a->lost && parse_duration (a->lost, &r->lost_after) < 0)
        log_msg_exit ("--node-lost-after: '%s' is not a duration", a->lost);
    if (r->lost_after <= 0)
        r->lost_after = 45;
    r->hold_max = HOLD_MAX_DEFAULT;
    if (a->hold_max) {
        char *end;
        unsigned long long v;
        errno = 0;
        v = strtoull (a->hold_max, &end, 10);
        if (errno || end == a->hold_max || *end || a->hold_max[0] == '-'
            || v < 1 || v > 10000000)
            log_msg_exit ("--hold-max: '%s' is not a count from 1 to "
                          "10000000", a->hold_max);
        r->hold_max = (size_t)v;
    }
    {
        double iv = r->cfg.metrics_interval;
        if (a->metrics_interval &&
            (parse_duration (a->metrics_interval, &iv) < 0 || iv <= 0))
            log_msg_exit ("--metrics-interval: '%s' is not a duration",
                          a->metrics_interval);
        if (metrics_init (r, a->metrics_file ? a->metrics_file
                                             : r->cfg.metrics_textfile,
                          iv) < 0)
            log_msg_exit ("out of memory");
    }
    mb_options_init (&r->opt);
    r->opt.fsync = fsync_mode (r->cfg.fsync);
    r->opt.fsync_interval = r->cfg.fsync_interval;
    r->opt.rotate_bytes = r->cfg.rotate_bytes;
    r->opt.rotate_records = r->cfg.rotate_records;
    if (r->cfg.poll_min > 0)
        r->opt.poll_min = r->cfg.poll_min;
    if (r->cfg.poll_max > 0)
        r->opt.poll_max = r->cfg.poll_max;
    if (r->cfg.follow && !strcmp (r->cfg.follow, "poll"))
        r->opt.follow = MB_FOLLOW_POLL;
    else if (r->cfg.follow && !strcmp (r->cfg.follow, "inotify"))
        r->opt.follow = MB_FOLLOW_INOTIFY;
}

/* <home>/router and its event log, the signals.  Exits on failure. */
static void open_home (struct router *r)
{
    char path[PATH_MAX + 32];
    cs_error_t error;

    if (mb_home (r->home, sizeof (r->home), true, &error) < 0)
        log_msg_exit ("%s", error.text);
    if (snprintf (r->dir, sizeof (r->dir), "%s/router", r->home)
            >= (int)sizeof (r->dir)
        || mb_secure_dir (r->dir, true, &error) < 0)
        log_msg_exit ("%s", error.text);
    if (snprintf (path, sizeof (path), "%s/events.jsonl", r->dir)
        >= (int)sizeof (path))
        log_msg_exit ("'%s': path too long", r->dir);
    if (!(r->log = eventlog_open (path, &r->opt, &error)))
        log_msg_exit ("%s", error.text);
    if ((r->sig_fd = sigfd_open ()) < 0)
        log_err_exit ("signals");
}

/* Follow the swarms: over the ssh link, or the local mailboxes. */
static int start_transport (struct router *r, const struct remote_opts *ro)
{
    cs_error_t error;

    if (ro->host) {
        if (remote_link_start (r, ro, &error) < 0) {
            log_msg ("%s", error.text);
            return -1;
        }
        return 0;
    }
    if (!(r->fol = mb_follower_create (&r->opt, &error))) {
        log_msg ("%s", error.text);
        return -1;
    }
    swarms_scan (r);
    return 0;
}

/* The UNIX socket, the TCP listener and/or the stdio client. */
static int start_clients (struct router *r, bool want_socket,
                          const char *tcp)
{
    cs_error_t error;

    if (!(r->control = control_create (r))) {
        log_msg ("out of memory");
        return -1;
    }
    if (want_socket && clients_listen (r, &error) < 0) {
        log_msg ("%s", error.text);
        return -1;
    }
    if (tcp) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof (ss);
        char where[80];
        if ((r->tcp_fd = tcp_listen (tcp, &error)) < 0) {
            log_msg ("--tcp: %s", error.text);
            return -1;
        }
        if (getsockname (r->tcp_fd, (struct sockaddr *)&ss, &len) == 0) {
            tcp_addr_str ((struct sockaddr *)&ss, where, sizeof (where));
            log_msg ("listening on %s (loopback, uid %u only)", where,
                     (unsigned)geteuid ());
        }
    }
    if (r->use_stdio && !client_add (r, STDIN_FILENO, STDOUT_FILENO, true)) {
        log_msg ("out of memory");
        return -1;
    }
    return 0;
}

/* --relay: dial out to the broker (from the loop's first turn on). */
static int start_relay (struct router *r, const struct router_args *a)
{
#ifdef HAVE_RELAY
    cs_error_t error;

    if (a->want_relay && !(r->relay = relay_create (r, &r->cfg, r->dir,
                                                    &error))) {
        log_msg ("%s", error.text);
        return -1;
    }
#endif
    return 0;
}

/* --relay-client: the far side, which holds no mailbox (relayfar.c). */
static int run_far (struct router *r, const struct router_args *a)
{
#ifdef HAVE_RELAY
    struct relay_far_opts fo = { .cfg = &r->cfg, .home = r->home,
                                 .socket = a->want_socket,
                                 .stdio = r->use_stdio, .tcp = a->tcp };
    cs_error_t error;
    int rc;

    if (a->want_relay || a->ro.host)
        log_msg_exit ("--relay-client holds no mailbox: it goes with "
                      "neither --relay nor --ssh");
    if (mb_home (r->home, sizeof (r->home), true, &error) < 0)
        log_msg_exit ("%s", error.text);
    rc = relay_far_run (&fo);
    config_release (&r->cfg);
    free (a->ro.ssh_opts);
    return rc;
#else
    log_msg_exit ("--relay-client: this codeswarm-router was built without "
                  "the relay (it needs libmosquitto and libsodium)");
#endif
}

/* Close everything; queued client output is written first. */
static void shutdown_router (struct router *r)
{
    if (r->listen_fd >= 0) {
        close (r->listen_fd);
        unlink (r->sock_path);
    }
    while (r->clients) {
        struct client *cl = r->clients;
        r->clients = cl->next;
        if (outbuf_pending (cl->out)) {
            (void)fd_set_nonblock (cl->fd_out, false);
            (void)outbuf_flush (cl->out, cl->fd_out);
        }
        client_destroy (cl);
    }
    if (r->tcp_fd >= 0)
        close (r->tcp_fd);
#ifdef HAVE_RELAY
    relay_destroy (r->relay);
#endif
    remote_destroy (r->remote);
    control_destroy (r->control);
    mb_follower_destroy (r->fol);
    router_held_free (r);
    while (r->swarms) {
        struct swarm *sw = r->swarms;
        r->swarms = sw->next;
        swarm_destroy (sw);
    }
    while (r->idems) {
        struct idem *im = r->idems;
        r->idems = im->next;
        idem_free (im);
    }
    if (r->idem_fd >= 0)
        close (r->idem_fd);
    for (size_t i = 0; i < r->nsup; i++)
        free (r->sup[i].swarm);
    free (r->sup);
    eventlog_close (r->log);
    jbuf_release (&r->env);
    config_release (&r->cfg);
    if (r->sig_fd >= 0)
        close (r->sig_fd);
}

int main (int argc, char **argv)
{
    struct router router = { .listen_fd = -1, .tcp_fd = -1, .sig_fd = -1,
                             .idem_fd = -1 };
    struct router *r = &router;
    struct router_args args = { 0 };
    int rc = 1;

    log_init ("codeswarm-router");
    parse_args (r, argc, argv, &args);
    configure (r, &args);
    if (r->use_stdio)
        attach_or_continue (&args);
    if (args.want_far)
        return run_far (r, &args);
#ifndef HAVE_RELAY
    if (args.want_relay)
        log_msg_exit ("--relay: this codeswarm-router was built without the "
                      "relay (it needs libmosquitto and libsodium)");
#endif
    open_home (r);
    if (state_load_suppress (r) < 0 || idem_load (r) < 0
        || start_transport (r, &args.ro) < 0
        || start_relay (r, &args) < 0
        || start_clients (r, args.want_socket, args.tcp) < 0)
        goto done;
    r->next_scan = time_mono () + SCAN_INTERVAL;
    if (run (r) == 0)
        rc = 0;
done:
    metrics_fini (r);
    shutdown_router (r);
    free (args.ro.ssh_opts);
    return rc;
}
