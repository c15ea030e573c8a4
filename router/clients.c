/* clients.c - the router's clients
 *
 * A client is stdin/stdout (--stdio) or a connection to the per-user UNIX
 * socket, admitted only from our own uid.  Each has a line reader for its
 * commands and an output buffer; a client that falls MAX_CLIENT_BACKLOG
 * behind is dropped.  Replies go to one client, stream events to every
 * started client that has not seen them yet.
 */
#include "config.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "mailbox/audit.h"
#include "router/paths.h"
#include "router/router-private.h"
#include "router/tcp.h"

static struct client *client_find (struct router *r, int id)
{
    for (struct client *c = r->clients; c; c = c->next)
        if (c->id == id && !c->dead)
            return c;
    return NULL;
}

/* A client that fell far behind left a buffer of its backlog's size:
 * give the memory back once the client has read it all.
 */
#define CLIENT_OUT_KEEP (1024u * 1024)

static void client_out_shrink (struct client *c)
{
    outbuf_t *ob;

    if (c->out_peak <= CLIENT_OUT_KEEP || outbuf_pending (c->out) > 0
        || !(ob = outbuf_create ()))
        return;
    outbuf_destroy (c->out);
    c->out = ob;
    c->out_peak = 0;
#ifdef __GLIBC__
    (void)malloc_trim (0);
#endif
}

static void client_send (struct client *c, const char *data, size_t len)
{
    size_t pending;

    if (c->dead)
        return;
#ifdef HAVE_RELAY
    if (c->relay) {
        relay_client_output (c->relay, c->vc, data, len);
        return;
    }
#endif
    if (outbuf_pending (c->out) + len > MAX_CLIENT_BACKLOG) {
        log_msg ("client %d: more than %u bytes unread, dropping it", c->id,
                 MAX_CLIENT_BACKLOG);
        c->dead = true;
        return;
    }
    client_out_shrink (c);
    if (outbuf_append (c->out, data, len) < 0)
        c->dead = true;
    pending = outbuf_pending (c->out);
    if (pending > c->out_peak)
        c->out_peak = pending;
}

/* A reply (not a stream event: no seq) to one client. */
void client_reply (struct router *r, int client_id, const char *name,
            cJSON *data)
{
    struct client *c = client_find (r, client_id);
    char ts[64];
    char *d;
    struct jbuf b = JBUF_INIT;

    if (!c || !data) {
        cJSON_Delete (data);
        return;
    }
    router_flush (r);   /* the events emitted before it go first */
    if (commit_pending (r)) {
        commit_hold (r, client_id, name, data);  /* until it is durable */
        return;
    }
    eventlog_timestamp (time_now (), ts, sizeof (ts));
    if ((d = json_print (data))) {
        if (jbuf_printf (&b, "{\"protocol\":\"" RC_PROTOCOL "\",\"type\":"
                         "\"event\",\"timestamp\":\"%s\",\"event\":\"%s\","
                         "\"data\":%s}\n", ts, name, d) == 0)
            client_send (c, b.data, b.len);
        free (d);
    }
    jbuf_release (&b);
    cJSON_Delete (data);
}

void client_reject_member (struct router *r, int client_id,
                           const char *request_id, const char *code,
                           const char *member, const char *reason)
{
    cJSON *d = cJSON_CreateObject ();
    if (!d)
        return;
    if (request_id)
        json_add_str (d, "request_id", request_id);
    else
        cJSON_AddNullToObject (d, "request_id");
    json_add_str (d, "code", code);
    json_add_str (d, "reason", reason);
    if (member && *member)
        json_add_str (d, "member", member);
    else
        cJSON_AddNullToObject (d, "member");
    client_reply (r, client_id, "command_rejected", d);
}

void client_reject (struct router *r, int client_id, const char *request_id,
             const char *code, const char *reason)
{
    client_reject_member (r, client_id, request_id, code, NULL, reason);
}

cJSON *client_reply_data (const char *request_id)
{
    cJSON *d = cJSON_CreateObject ();
    if (d) {
        if (request_id)
            json_add_str (d, "request_id", request_id);
        else
            cJSON_AddNullToObject (d, "request_id");
    }
    return d;
}


void clients_broadcast (struct router *r, uint64_t seq, const char *line,
                size_t len)
{
    for (struct client *c = r->clients; c; c = c->next) {
        if (!c->started || c->dead || seq <= c->sent_seq)
            continue;
        client_send (c, line, len);
        c->sent_seq = seq;
    }
}

/* client_send, written to the client's socket at once when nothing is
 * queued before it (what the socket does not take is queued).
 */
static void client_send_now (struct client *c, const char *data, size_t len)
{
    ssize_t n = 0;

    if (!c->dead && c->fd_out >= 0 && outbuf_pending (c->out) == 0) {
        do {
            n = write (c->fd_out, data, len);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                c->dead = true;
                return;
            }
            n = 0;
        }
    }
    if ((size_t)n < len)
        client_send (c, data + n, len - (size_t)n);
}

void clients_broadcast_batch (struct router *r,
                              const struct eventlog_out *o)
{
    uint64_t last;

    if (o->n == 0)
        return;
    last = o->first_seq + o->n - 1;
    for (struct client *c = r->clients; c; c = c->next) {
        size_t i, start;
        if (!c->started || c->dead || last <= c->sent_seq)
            continue;
        i = c->sent_seq >= o->first_seq
            ? (size_t)(c->sent_seq - o->first_seq) + 1 : 0;
#ifdef HAVE_RELAY
        if (c->relay) {
            /* line by line: the relay may pause the client at any one */
            for (; i < o->n && c->started && !c->dead; i++) {
                start = i ? o->ends[i - 1] : 0;
                client_send (c, o->env + start, o->ends[i] - start);
                c->sent_seq = o->first_seq + i;
            }
            continue;
        }
#endif
        start = i ? o->ends[i - 1] : 0;
        client_send_now (c, o->env + start, o->ends[o->n - 1] - start);
        c->sent_seq = last;
    }
}

struct replay_arg {
    struct router *r;
    struct client *c;
    struct jbuf b;
};

static int replay_cb (uint64_t seq, const cJSON *rec, void *arg)
{
    struct replay_arg *ra = arg;
    if (seq <= ra->c->sent_seq)
        return 0;
    if (eventlog_envelope (rec, seq, &ra->b) == 0)
        client_send (ra->c, ra->b.data, ra->b.len);
    ra->c->sent_seq = seq;
    return ra->c->dead || !ra->c->started ? -1 : 0;     /* or paused */
}

/* Start (or restart) a client's stream after since (-1: live from now). */
void client_start (struct router *r, struct client *c, bool has_since,
                   uint64_t since)
{
    uint64_t now_seq;
    cs_error_t error;

    router_flush (r);
    now_seq = eventlog_seq (r->log);
    c->started = true;
    if (!has_since || since >= now_seq) {
        c->sent_seq = has_since ? since : now_seq;
        return;
    }
    c->sent_seq = since;
    {
        struct replay_arg ra = { r, c, JBUF_INIT };
        if (eventlog_replay (eventlog_path (r->log), since, &r->opt,
                             replay_cb, &ra, &error) < 0)
            log_msg ("client %d: replay: %s", c->id, error.text);
        jbuf_release (&ra.b);
    }
    /* whatever the replay could not read is lost to this client: go on */
    c->sent_seq = now_seq > c->sent_seq ? now_seq : c->sent_seq;
}

struct client *client_add (struct router *r, int fd_in, int fd_out,
                           bool stdio)
{
    struct client *c = calloc (1, sizeof (*c));
    if (!c || !(c->in = lineio_create (RC_MAX_LINE))
        || !(c->out = outbuf_create ())) {
        if (c) {
            lineio_destroy (c->in);
            free (c);
        }
        return NULL;
    }
    c->id = ++r->next_client_id;
    c->fd_in = fd_in;
    c->fd_out = fd_out;
    c->stdio = stdio;
    if (stdio) {
        const char *peer, *via = mb_audit_via ("stdio", &peer);
        audit_who_set (&c->who, getuid (), via, peer);
    }
    (void)fd_set_nonblock (fd_in, true);
    (void)fd_set_nonblock (fd_out, true);
    c->next = r->clients;
    r->clients = c;
    log_debug ("client %d connected", c->id);
    return c;
}

void client_destroy (struct client *c)
{
    if (!c)
        return;
    if (!c->stdio && c->fd_in >= 0) {
        close (c->fd_in);
        if (c->fd_out != c->fd_in)
            close (c->fd_out);
    }
    lineio_destroy (c->in);
    outbuf_destroy (c->out);
    free (c);
}

void client_read (struct router *r, struct client *c)
{
    const char *line;
    size_t len;
    bool overlong;
    ssize_t n = lineio_fill (c->in, c->fd_in);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    while (lineio_next (c->in, &line, &len, &overlong) == 1) {
        if (overlong) {
            char reason[128];
            snprintf (reason, sizeof (reason), "a command line longer than "
                      "%d bytes", RC_MAX_LINE);
            client_reject (r, c->id, NULL, RC_E_TOO_LONG, reason);
            continue;
        }
        commands_handle (r, c, line, len);
    }
    if (n == 0 || n < 0) {
        if (lineio_rest (c->in, &line, &len) == 1)
            commands_handle (r, c, line, len);
        if (c->stdio && n == 0) {
            /* stdin closed: a stdio router's session is over once its
             * output is written */
            c->fd_in = -1;
            if (!outbuf_pending (c->out))
                c->dead = true;
            r->quit = r->listen_fd < 0 && r->tcp_fd < 0;
            return;
        }
        if (n == 0) {
            /* the peer shut down its sending side: answer what it sent,
             * then close (as for stdin) */
            c->half_closed = true;
            if (!outbuf_pending (c->out))
                c->dead = true;
            return;
        }
        c->dead = true;
    }
}

void clients_reap (struct router *r)
{
    struct client **pp = &r->clients;
    while (*pp) {
        struct client *c = *pp;
        if (c->dead) {
            *pp = c->next;
            log_debug ("client %d gone", c->id);
            client_destroy (c);
        }
        else {
            client_out_shrink (c);      /* after the loop's flush */
            pp = &c->next;
        }
    }
}

int clients_listen (struct router *r, cs_error_t *errp)
{
    int fd = router_listen (r->home, r->sock_path, sizeof (r->sock_path),
                            errp);

    if (fd < 0)
        return -1;
    r->listen_fd = fd;
    log_debug ("listening on '%s'", r->sock_path);
    return 0;
}

void clients_accept (struct router *r)
{
    struct ucred cred;
    cs_error_t error;
    int fd = router_accept (r->listen_fd, &cred, &error);

    if (fd < 0) {
        if (errno == EACCES)
            log_msg ("%s", error.text);
        return;
    }
    {
        struct client *c = client_add (r, fd, fd, false);
        char peer[32];
        if (!c) {
            close (fd);
            return;
        }
        snprintf (peer, sizeof (peer), "pid %d", (int)cred.pid);
        audit_who_set (&c->who, cred.uid, "socket", peer);
    }
}

#ifdef HAVE_RELAY
/* ---- virtual clients of the relay's far sides (relay.h) ------------------- */

struct client *router_vclient_add (struct router *r, relay_t *rl, void *vc)
{
    struct client *c = calloc (1, sizeof (*c));
    if (!c || !(c->in = lineio_create (RC_MAX_LINE))
        || !(c->out = outbuf_create ())) {
        if (c)
            lineio_destroy (c->in);
        free (c);
        return NULL;
    }
    c->id = ++r->next_client_id;
    c->fd_in = c->fd_out = -1;
    c->relay = rl;
    c->vc = vc;
    c->next = r->clients;
    r->clients = c;
    log_debug ("relay client %d connected", c->id);
    return c;
}

void router_vclient_command (struct router *r, struct client *c,
                             const char *line, size_t len)
{
    commands_handle (r, c, line, len);
}

void router_vclient_who (struct client *c, const char *far_id,
                         const char *who)
{
    char peer[64];

    snprintf (peer, sizeof (peer), "%s%s%s", who && *who ? who : "",
              who && *who ? " " : "", far_id);
    audit_who_set (&c->who, geteuid (), "relay", peer);
}

void router_vclient_retry (struct router *r, struct client *c,
                           const char *line, size_t len)
{
    c->retry = true;
    commands_handle (r, c, line, len);
    c->retry = false;
}

void router_vclient_start (struct router *r, struct client *c,
                           bool has_since, uint64_t since)
{
    client_start (r, c, has_since, since);
}

uint64_t router_vclient_pause (struct client *c)
{
    c->started = false;
    return c->sent_seq;
}

void router_vclient_remove (struct client *c)
{
    c->dead = true;
}

void router_notice_local (struct router *r, const char *line, size_t len)
{
    for (struct client *c = r->clients; c; c = c->next)
        if (!c->relay && c->started && !c->dead)
            client_send (c, line, len);
}
#endif

void clients_accept_tcp (struct router *r)
{
    cs_error_t error;
    int fd = tcp_accept (r->tcp_fd, geteuid (), &error);

    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            log_msg ("%s", error.text);
        return;
    }
    {
        /* the listener admits the router's own uid alone (tcp.h) */
        struct client *c = client_add (r, fd, fd, false);
        if (!c) {
            close (fd);
            return;
        }
        audit_who_set (&c->who, geteuid (), "tcp", "127.0.0.1");
    }
}
