/* relayfar.c - codeswarm-router --relay-client: the far side of the relay
 *
 * Holds no mailbox.  Serves local clients (stdio, the per-user UNIX
 * socket) and relays each one to a virtual client of the near-side router
 * through the broker (relay.h, relaywire.h).  Per client it keeps the
 * last event seq delivered; an event at or below it is a duplicate and
 * dropped, an event beyond the next one means something was lost, and
 * the client's stream is restarted on the near side from the last seq
 * ("!open <seq>"), as it is for every client when the near side says
 * hello again (it restarted or reconnected to the broker).  Injects get
 * an idempotency key when the client gave none, so that a command sent
 * twice is never done twice; an inject or a query that got no answer
 * when the near side says hello anew is sent again ("!retry"), and the
 * near side answers it once.
 *
 * State, in <home>/router/relay-client.json (0600): the incarnation
 * (client names are "<incarnation>.<n>", never reused), the seqs reserved
 * for sending, and the last seqs taken from the near side.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/json.h"
#include "common/lineio.h"
#include "common/log.h"
#include "common/sigfd.h"
#include "mailbox/mailbox.h"
#include "router/command.h"
#include "router/paths.h"
#include "router/relay.h"
#include "router/relaywire.h"
#include "router/tcp.h"

#define FAR_MAX_POLLFDS 1024
#define FAR_MAX_BACKLOG (256u * 1024 * 1024)
#define FAR_RESYNC_AGAIN 5.0    /* s before asking again for a restart */
#define FAR_SAVE_INTERVAL 0.5

/* A command sent up and not answered yet. */
struct pending {
    char *rid;                  /* its request id */
    char *line;                 /* as sent up */
    struct pending *next;
};

struct fclient {
    int id;
    char vc[48];
    int fd_in;
    int fd_out;
    bool stdio;
    lineio_t *in;
    outbuf_t *out;
    bool started;               /* its stream runs on the near side */
    bool base_known;            /* last is meaningful */
    bool want_base;             /* take last from the hello/subscribed reply */
    uint64_t last;              /* last event seq delivered */
    bool resyncing;
    double resync_at;
    unsigned ncmd;
    struct pending *pending;    /* oldest first */
    int npending;
    bool dead;
    struct fclient *next;
};

struct far {
    const struct cs_config *cfg;
    char state_path[PATH_MAX];
    char sock_path[PATH_MAX];
    int listen_fd;
    int tcp_fd;                 /* --tcp */
    int sig_fd;
    bool use_stdio;
    bool quit;
    unsigned char key[SEAL_KEY_BYTES];
    mqlink_t *link;
    const char *far_id;
    char t_up[RELAY_TOPIC_MAX], t_down[RELAY_TOPIC_MAX];
    char t_hello[RELAY_TOPIC_MAX];
    uint64_t incarnation;
    uint64_t up_seq, up_reserved;
    uint64_t last_down, last_hello;
    bool state_dirty;
    double next_save;
    char hello_id[96];          /* "<incarnation> <n>" of the near side */
    int next_vc;
    int next_id;
    struct jbuf up;             /* plaintext waiting to be sent */
    struct jbuf note;
    struct jbuf last_note;      /* the relay's state, for new clients */
    struct fclient *clients;
    unsigned long rejected, replayed, dups, gaps;
    char state[16];
};

static void far_save (struct far *f)
{
    cJSON *o = cJSON_CreateObject ();
    cs_error_t error;

    json_add_str (o, "far_id", f->far_id);
    json_add_u64 (o, "incarnation", f->incarnation);
    json_add_u64 (o, "seq_reserved", f->up_reserved);
    json_add_u64 (o, "last_down", f->last_down);
    json_add_u64 (o, "last_hello", f->last_hello);
    if (relay_state_write (f->state_path, o, &error) < 0)
        log_msg ("%s", error.text);
    cJSON_Delete (o);
    f->state_dirty = false;
}

static uint64_t state_u64 (const cJSON *o, const char *name)
{
    uint64_t v = 0;
    (void)json_get_u64 (o, name, &v, NULL);
    return v;
}

static int far_load (struct far *f, cs_error_t *errp)
{
    cJSON *o = relay_state_read (f->state_path, errp);

    if (!o && errno != ENOENT)
        return -1;
    if (o) {
        f->incarnation = state_u64 (o, "incarnation");
        f->up_reserved = state_u64 (o, "seq_reserved");
        f->last_down = state_u64 (o, "last_down");
        f->last_hello = state_u64 (o, "last_hello");
        cJSON_Delete (o);
    }
    f->incarnation++;
    f->up_seq = relay_seq_block (f->up_reserved);   /* reserved: used */
    f->up_reserved = f->up_seq + RELAY_SEQ_BLOCK;
    far_save (f);
    return 0;
}

/* ---- clients ------------------------------------------------------------- */

static void fc_send (struct fclient *c, const char *data, size_t len)
{
    if (c->dead)
        return;
    if (outbuf_pending (c->out) + len > FAR_MAX_BACKLOG) {
        log_msg ("client %d: more than %u bytes unread, dropping it", c->id,
                 FAR_MAX_BACKLOG);
        c->dead = true;
        return;
    }
    if (outbuf_append (c->out, data, len) < 0)
        c->dead = true;
}

static void far_notice_all (struct far *f, const char *state,
                            const char *detail, double retry_in)
{
    jbuf_reset (&f->note);
    if (relay_notice (&f->note, "far", state, detail, retry_in) < 0)
        return;
    jbuf_reset (&f->last_note);
    (void)jbuf_append (&f->last_note, f->note.data, f->note.len);
    for (struct fclient *c = f->clients; c; c = c->next)
        fc_send (c, f->note.data, f->note.len);
}

static void up_line (struct far *f, const char *vc, const char *text,
                     size_t len)
{
    if (jbuf_printf (&f->up, "%s ", vc) < 0
        || jbuf_append (&f->up, text, len) < 0
        || jbuf_append (&f->up, "\n", 1) < 0)
        log_msg ("out of memory");
}

static void fc_open (struct far *f, struct fclient *c)
{
    char buf[64];

    if (c->started && c->base_known)
        snprintf (buf, sizeof (buf), "!open %llu",
                  (unsigned long long)c->last);
    else
        snprintf (buf, sizeof (buf), "!open %s", c->started ? "live" : "idle");
    up_line (f, c->vc, buf, strlen (buf));
    c->resyncing = c->started && c->base_known;
    c->resync_at = time_mono () + FAR_RESYNC_AGAIN;
}

static struct fclient *fc_add (struct far *f, int fd_in, int fd_out,
                               bool stdio)
{
    struct fclient *c = calloc (1, sizeof (*c));

    if (!c || !(c->in = lineio_create (RC_MAX_LINE))
        || !(c->out = outbuf_create ())) {
        if (c)
            lineio_destroy (c->in);
        free (c);
        return NULL;
    }
    c->id = ++f->next_id;
    snprintf (c->vc, sizeof (c->vc), "%llu.%d",
              (unsigned long long)f->incarnation, ++f->next_vc);
    c->fd_in = fd_in;
    c->fd_out = fd_out;
    c->stdio = stdio;
    (void)fd_set_nonblock (fd_in, true);
    (void)fd_set_nonblock (fd_out, true);
    c->next = f->clients;
    f->clients = c;
    log_debug ("client %d connected (%s)", c->id, c->vc);
    return c;
}

#define FAR_MAX_PENDING 256

/* Commands sent again after the near side restarted, when no answer came:
 * injects (an idempotency key makes them safe), the commands whose inbox
 * records the near side remembers by request id (interrupt, approvals,
 * terminate), and those that only read.
 */
static bool cmd_resendable (const char *cmd)
{
    static const char *const names[] = {
        "inject", "interrupt", "approve_execution", "swarm_terminate",
        "swarm_list", "swarm_status", "approvals_list",
        "providers_list", "queue_list", NULL,
    };
    for (int i = 0; names[i]; i++)
        if (!strcmp (cmd, names[i]))
            return true;
    return false;
}

static void pending_free (struct pending *p)
{
    free (p->rid);
    free (p->line);
    free (p);
}

static void pending_add (struct fclient *c, const char *rid,
                         const char *line, size_t len)
{
    struct pending *p = calloc (1, sizeof (*p)), **pp;

    if (!p || !(p->rid = strdup (rid)) || !(p->line = strndup (line, len))) {
        if (p)
            pending_free (p);
        return;
    }
    if (c->npending >= FAR_MAX_PENDING) {
        struct pending *old = c->pending;
        c->pending = old->next;
        pending_free (old);
        c->npending--;
    }
    for (pp = &c->pending; *pp; pp = &(*pp)->next)
        ;
    *pp = p;
    c->npending++;
}

/* An answer (data.request_id) came for a command of c's. */
static void pending_answered (struct fclient *c, const char *line,
                              size_t len)
{
    cJSON *o;
    const char *rid;

    if (!c->pending || !memmem (line, len, "\"request_id\"", 12))
        return;
    o = cJSON_ParseWithLengthOpts (line, len, NULL, false);
    if (o && json_get_str (cJSON_GetObjectItemCaseSensitive (o, "data"),
                           "request_id", &rid, NULL) == 0) {
        for (struct pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
            if (!strcmp ((*pp)->rid, rid)) {
                struct pending *p = *pp;
                *pp = p->next;
                pending_free (p);
                c->npending--;
                break;
            }
        }
    }
    cJSON_Delete (o);
}

static void fc_destroy (struct fclient *c)
{
    while (c->pending) {
        struct pending *p = c->pending;
        c->pending = p->next;
        pending_free (p);
    }
    if (!c->stdio) {
        close (c->fd_in);
        if (c->fd_out != c->fd_in)
            close (c->fd_out);
    }
    lineio_destroy (c->in);
    outbuf_destroy (c->out);
    free (c);
}

/* Note what a command does to the client's stream, give injects an
 * idempotency key, and pass the line on.
 */
static void fc_command (struct far *f, struct fclient *c, const char *line,
                        size_t len)
{
    cJSON *o = cJSON_ParseWithLengthOpts (line, len, NULL, false);
    cJSON *p;
    const char *cmd, *rid;
    char *out = NULL;

    c->ncmd++;
    if (!o || json_get_str (o, "command", &cmd, NULL) < 0) {
        cJSON_Delete (o);
        up_line (f, c->vc, line, len);  /* the near side rejects it */
        return;
    }
    p = cJSON_GetObjectItemCaseSensitive (o, "payload");
    if (!strcmp (cmd, "hello") || !strcmp (cmd, "subscribe")) {
        const cJSON *sub = cJSON_IsObject (p)
            ? cJSON_GetObjectItemCaseSensitive (p, "subscribe") : NULL;
        uint64_t since;
        bool starts = !strcmp (cmd, "subscribe")
                      || (!c->started && !cJSON_IsFalse (sub));
        if (starts) {
            c->started = true;
            c->resyncing = false;
            if (cJSON_IsObject (p)
                && json_get_u64 (p, "since", &since, NULL) == 0) {
                c->base_known = true;
                c->want_base = false;
                c->last = since;
            }
            else {
                c->base_known = false;
                c->want_base = true;
            }
        }
    }
    else if (!c->started) {
        c->started = true;              /* live from now, base unknown */
        c->base_known = false;
    }
    if (!strcmp (cmd, "inject") && cJSON_IsObject (p)
        && !cJSON_GetObjectItemCaseSensitive (p, "idempotency_key")) {
        char key[160];
        snprintf (key, sizeof (key), "relay-%s-%s-%u", f->far_id, c->vc,
                  c->ncmd);
        json_add_str (p, "idempotency_key", key);
        out = cJSON_PrintUnformatted (o);
    }
    if (out) {
        line = out;
        len = strlen (out);
    }
    up_line (f, c->vc, line, len);
    if (cmd_resendable (cmd)
        && json_get_str (o, "request_id", &rid, NULL) == 0)
        pending_add (c, rid, line, len);
    free (out);
    cJSON_Delete (o);
}

static void fc_read (struct far *f, struct fclient *c)
{
    const char *line;
    size_t len;
    bool overlong;
    ssize_t n = lineio_fill (c->in, c->fd_in);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    while (lineio_next (c->in, &line, &len, &overlong) == 1) {
        if (overlong) {
            static const char rej[] = "{\"protocol\":\"" RC_PROTOCOL "\","
                "\"type\":\"event\",\"event\":\"command_rejected\",\"data\":"
                "{\"request_id\":null,\"code\":\"" RC_E_BAD_JSON "\","
                "\"reason\":\"command line too long\"}}\n";
            fc_send (c, rej, sizeof (rej) - 1);
            continue;
        }
        if (len > 0)
            fc_command (f, c, line, len);
    }
    if (n <= 0) {
        if (lineio_rest (c->in, &line, &len) == 1 && len > 0)
            fc_command (f, c, line, len);
        if (c->stdio && n == 0) {
            c->fd_in = -1;
            if (!outbuf_pending (c->out))
                c->dead = true;
            f->quit = f->listen_fd < 0;
            return;
        }
        c->dead = true;
    }
}

static void reap_clients (struct far *f)
{
    struct fclient **pp = &f->clients;
    while (*pp) {
        struct fclient *c = *pp;
        if (c->dead) {
            *pp = c->next;
            up_line (f, c->vc, "!close", 6);
            log_debug ("client %d gone", c->id);
            fc_destroy (c);
        }
        else
            pp = &c->next;
    }
}

/* ---- from the near side --------------------------------------------------- */

static struct fclient *fc_find (struct far *f, const char *vc, size_t len)
{
    for (struct fclient *c = f->clients; c; c = c->next)
        if (strlen (c->vc) == len && !memcmp (c->vc, vc, len) && !c->dead)
            return c;
    return NULL;
}

static void take_base (struct fclient *c, const char *line, size_t len)
{
    cJSON *o = cJSON_ParseWithLengthOpts (line, len, NULL, false);
    const char *ev;
    uint64_t seq;

    if (o && json_get_str (o, "event", &ev, NULL) == 0
        && (!strcmp (ev, "hello") || !strcmp (ev, "subscribed"))
        && json_get_u64 (cJSON_GetObjectItemCaseSensitive (o, "data"), "seq",
                         &seq, NULL) == 0) {
        c->last = seq;
        c->base_known = true;
        c->want_base = false;
    }
    cJSON_Delete (o);
}

static void deliver (struct far *f, struct fclient *c, const char *line,
                     size_t len)
{
    uint64_t seq;

    if (!relay_line_is_event (line, len, &seq)) {
        if (c->want_base)
            take_base (c, line, len);
        pending_answered (c, line, len);
        fc_send (c, line, len);
        fc_send (c, "\n", 1);
        return;
    }
    if (!c->base_known) {
        c->base_known = true;
        c->want_base = false;
        c->last = seq - 1;
    }
    if (seq <= c->last) {
        f->dups++;
        return;
    }
    if (seq != c->last + 1) {
        /* something was lost: restart the stream after the last seq */
        f->gaps++;
        if (!c->resyncing || time_mono () >= c->resync_at) {
            log_debug ("client %d: event %llu after %llu: restarting its "
                       "stream", c->id, (unsigned long long)seq,
                       (unsigned long long)c->last);
            fc_open (f, c);
        }
        return;
    }
    c->last = seq;
    c->resyncing = false;
    fc_send (c, line, len);
    fc_send (c, "\n", 1);
}

static void reject_payload (struct far *f, const char *topic,
                            const char *why)
{
    f->rejected++;
    log_msg ("relay: rejected a payload on '%s': %s (%lu rejected)", topic,
             why, f->rejected);
    if (f->rejected == 1 || f->rejected % 100 == 0) {
        char buf[600];
        snprintf (buf, sizeof (buf), "payloads from the near side do not "
                  "open (%lu so far): is relay.seal_key_file the same key "
                  "on both sides?", f->rejected);
        far_notice_all (f, "refused", buf, 0);
    }
}

/* Say who we are (user@host), for the near side's audit trail. */
static void far_who (struct far *f)
{
    char host[64] = "", line[160];
    struct passwd *pw = getpwuid (geteuid ());
    const char *user = pw ? pw->pw_name : getenv ("USER");

    if (gethostname (host, sizeof (host) - 1) < 0)
        snprintf (host, sizeof (host), "?");
    snprintf (line, sizeof (line), "!who %s@%s", user && *user ? user : "?",
              host);
    up_line (f, "*", line, strlen (line));
}

/* The near side said hello anew (it restarted, or reconnected to the
 * broker): restart every client's stream, and send again the commands
 * that got no answer (the near side drops those it has handled).
 */
static void resync_all (struct far *f)
{
    far_who (f);
    for (struct fclient *c = f->clients; c; c = c->next) {
        if (c->dead)
            continue;
        fc_open (f, c);
        for (struct pending *p = c->pending; p; p = p->next) {
            size_t n = strlen (p->line);
            log_debug ("client %d: sending request '%s' again", c->id,
                       p->rid);
            if (jbuf_printf (&f->up, "%s !retry ", c->vc) < 0
                || jbuf_append (&f->up, p->line, n) < 0
                || jbuf_append (&f->up, "\n", 1) < 0)
                log_msg ("out of memory");
        }
    }
}

static void on_message (mqlink_t *l, const char *topic, const void *payload,
                        size_t len, void *arg)
{
    struct far *f = arg;
    bool hello = !strcmp (topic, f->t_hello);
    unsigned char *pt;
    size_t ptlen;
    uint64_t seq;
    cs_error_t error;

    if (!hello && strcmp (topic, f->t_down))
        return;
    if (len < SEAL_OVERHEAD || !(pt = malloc (len - SEAL_OVERHEAD + 1))) {
        reject_payload (f, topic, "too short to be sealed");
        return;
    }
    if (seal_open (f->key, hello ? SEAL_HELLO : SEAL_DOWN, hello ? "*"
                                                                 : f->far_id,
                   payload, len, &seq, pt, &ptlen, &error) < 0) {
        reject_payload (f, topic, error.text);
        free (pt);
        return;
    }
    pt[ptlen] = '\0';
    if (hello) {
        char id[96];
        if (seq == f->last_hello) {     /* the retained hello, again */
            free (pt);
            return;
        }
        if (seq < f->last_hello) {
            f->replayed++;
            log_msg ("relay: dropped a replayed hello (seq %llu; %lu "
                     "replays)", (unsigned long long)seq, f->replayed);
            free (pt);
            return;
        }
        f->last_hello = seq;
        f->state_dirty = true;
        if (sscanf ((char *)pt, "* !hello %95[^\n]", id) == 1
            && strcmp (id, f->hello_id)) {
            log_debug ("near side hello %s", id);
            snprintf (f->hello_id, sizeof (f->hello_id), "%s", id);
            resync_all (f);
        }
        free (pt);
        return;
    }
    if (seq <= f->last_down) {
        f->replayed++;
        log_msg ("relay: dropped message seq %llu (at or below %llu: "
                   "delivered twice or replayed; %lu so far)",
                   (unsigned long long)seq,
                   (unsigned long long)f->last_down, f->replayed);
        free (pt);
        return;
    }
    f->last_down = seq;
    f->state_dirty = true;
    for (char *p = (char *)pt, *nl; *p; p = nl + 1) {
        char *sp;
        struct fclient *c;
        if (!(nl = strchr (p, '\n')))
            break;
        if (!(sp = memchr (p, ' ', (size_t)(nl - p))))
            continue;
        if (!(c = fc_find (f, p, (size_t)(sp - p))))
            continue;
        deliver (f, c, sp + 1, (size_t)(nl - sp - 1));
    }
    free (pt);
}

static void on_state (mqlink_t *l, const char *state, const char *detail,
                      double retry_in, void *arg)
{
    struct far *f = arg;

    if (!strcmp (state, "connected"))
        log_msg ("relay: connected to %s:%d", f->cfg->relay.host,
                 f->cfg->relay.port);
    else
        log_msg ("relay: %s: %s; retrying in %.1f s", state, detail,
                 retry_in);
    far_notice_all (f, state, detail, retry_in);
    snprintf (f->state, sizeof (f->state), "%s", state);
}

/* ---- sending ------------------------------------------------------------ */

static void far_flush (struct far *f)
{
    cs_error_t error;
    size_t off = 0;

    while (off < f->up.len) {
        size_t n = relay_msg_cut (f->up.data + off, f->up.len - off);
        if (++f->up_seq >= f->up_reserved) {
            f->up_seq = relay_seq_block (f->up_seq);
            f->up_reserved = f->up_seq + RELAY_SEQ_BLOCK;
            far_save (f);
        }
        if (relay_publish (f->link, f->key, SEAL_UP, f->far_id, f->up_seq,
                           f->t_up, f->up.data + off, n, false, &error) < 0)
            log_msg ("relay: %s", error.text);
        off += n;
    }
    jbuf_reset (&f->up);
}

/* ---- loop ------------------------------------------------------------------ */

static int far_listen (struct far *f, const char *home, cs_error_t *errp)
{
    int fd = router_listen (home, f->sock_path, sizeof (f->sock_path), errp);

    if (fd < 0)
        return -1;
    f->listen_fd = fd;
    return 0;
}

static void far_accept (struct far *f)
{
    struct fclient *c;
    struct ucred cred;
    cs_error_t error;
    int fd = router_accept (f->listen_fd, &cred, &error);

    if (fd < 0) {
        if (errno == EACCES)
            log_msg ("%s", error.text);
        return;
    }
    if (!(c = fc_add (f, fd, fd, false)))
        close (fd);
    else if (f->last_note.len)
        fc_send (c, f->last_note.data, f->last_note.len);
}

static void far_accept_tcp (struct far *f)
{
    struct fclient *c;
    cs_error_t error;
    int fd = tcp_accept (f->tcp_fd, geteuid (), &error);

    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            log_msg ("%s", error.text);
        return;
    }
    if (!(c = fc_add (f, fd, fd, false)))
        close (fd);
    else if (f->last_note.len)
        fc_send (c, f->last_note.data, f->last_note.len);
}

static void far_loop (struct far *f)
{
    struct pollfd *pfd = calloc (FAR_MAX_POLLFDS, sizeof (*pfd));
    struct fclient **pc = calloc (FAR_MAX_POLLFDS, sizeof (*pc));

    if (!pfd || !pc) {
        free (pfd);
        free (pc);
        log_msg ("out of memory");
        return;
    }
    while (!f->quit) {
        int n = 0, nsig, nlisten = -1, ntcp = -1, nlink = -1, timeout;

        pfd[n].fd = f->sig_fd;
        pfd[n].events = POLLIN;
        pc[n] = NULL;
        nsig = n++;
        if (f->listen_fd >= 0) {
            pfd[n].fd = f->listen_fd;
            pfd[n].events = POLLIN;
            pc[n] = NULL;
            nlisten = n++;
        }
        if (f->tcp_fd >= 0) {
            pfd[n].fd = f->tcp_fd;
            pfd[n].events = POLLIN;
            pc[n] = NULL;
            ntcp = n++;
        }
        if (mqlink_pollfd (f->link, &pfd[n]) == 1) {
            pc[n] = NULL;
            nlink = n++;
        }
        for (struct fclient *c = f->clients; c && n < FAR_MAX_POLLFDS - 1;
             c = c->next) {
            if (c->dead)
                continue;
            if (c->fd_in >= 0) {
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
        timeout = mqlink_timeout (f->link);
        if (f->state_dirty) {
            int st = (int)((f->next_save - time_mono ()) * 1000);
            if (st < timeout)
                timeout = st < 0 ? 0 : st;
        }
        if (poll (pfd, (nfds_t)n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            log_err ("poll");
            break;
        }
        if (pfd[nsig].revents) {
            struct signalfd_siginfo si;
            if (read (f->sig_fd, &si, sizeof (si)) == sizeof (si))
                f->quit = true;
        }
        if (nlink >= 0)
            mqlink_handle (f->link, &pfd[nlink]);
        mqlink_tick (f->link);
        if (nlisten >= 0 && pfd[nlisten].revents)
            far_accept (f);
        if (ntcp >= 0 && pfd[ntcp].revents)
            far_accept_tcp (f);
        for (int i = 0; i < n; i++) {
            struct fclient *c = pc[i];
            if (!c || c->dead || !pfd[i].revents)
                continue;
            if (pfd[i].events & POLLIN)
                fc_read (f, c);
            else if (outbuf_flush (c->out, c->fd_out) < 0)
                c->dead = true;
        }
        for (struct fclient *c = f->clients; c; c = c->next) {
            if (!c->dead && outbuf_pending (c->out)
                && outbuf_flush (c->out, c->fd_out) < 0 && errno != EAGAIN)
                c->dead = true;
            if (c->stdio && c->fd_in < 0 && !outbuf_pending (c->out))
                c->dead = true;
            /* a restart asked for and not answered: ask again */
            if (!c->dead && c->resyncing && time_mono () >= c->resync_at)
                fc_open (f, c);
        }
        reap_clients (f);
        if (f->up.len)
            far_flush (f);
        if (f->state_dirty && time_mono () >= f->next_save) {
            far_save (f);
            f->next_save = time_mono () + FAR_SAVE_INTERVAL;
        }
        if (!f->use_stdio && f->listen_fd < 0 && f->tcp_fd < 0
            && !f->clients)
            f->quit = true;
    }
    free (pfd);
    free (pc);
}

int relay_far_run (const struct relay_far_opts *o)
{
    struct far far = { .cfg = o->cfg, .listen_fd = -1, .tcp_fd = -1,
                       .sig_fd = -1 };
    struct far *f = &far;
    char dir[PATH_MAX], mqid[256];
    const char *subs[3];
    struct mqlink_opts lo = { 0 };
    cs_error_t error;
    int rc = 1;

    f->far_id = o->cfg->relay_client_id;
    f->use_stdio = o->stdio;
    snprintf (f->state, sizeof (f->state), "connecting");
    if (!o->cfg->relay_url)
        log_msg_exit ("--relay-client: no relay.url in %s",
                      o->cfg->path ? o->cfg->path : "codeswarm.yaml");
    if (!o->cfg->relay_seal_key_file)
        log_msg_exit ("--relay-client: no relay.seal_key_file in %s "
                      "(make one with: codeswarm relay keygen FILE)",
                      o->cfg->path ? o->cfg->path : "codeswarm.yaml");
    if (seal_init (&error) < 0
        || seal_key_load (o->cfg->relay_seal_key_file, f->key, &error) < 0)
        log_msg_exit ("%s", error.text);
    if (relay_topics (o->cfg->relay_topic_prefix, f->far_id, f->t_up,
                      f->t_down, f->t_hello, &error) < 0)
        log_msg_exit ("%s", error.text);
    if (snprintf (dir, sizeof (dir), "%s/router", o->home)
            >= (int)sizeof (dir)
        || mb_secure_dir (dir, true, &error) < 0)
        log_msg_exit ("%s", error.text);
    if (snprintf (f->state_path, sizeof (f->state_path),
                  "%s/relay-client.json", dir) >= (int)sizeof (f->state_path))
        log_msg_exit ("'%s': path too long", dir);
    if (far_load (f, &error) < 0)
        log_msg_exit ("%s", error.text);
    if ((f->sig_fd = sigfd_open ()) < 0)
        log_err_exit ("signals");
    snprintf (mqid, sizeof (mqid), "far-%s", f->far_id);
    subs[0] = f->t_down;
    subs[1] = f->t_hello;
    subs[2] = NULL;
    lo.cfg = o->cfg;
    lo.client_id = mqid;
    lo.subscribe = subs;
    lo.msg_cb = on_message;
    lo.state_cb = on_state;
    lo.arg = f;
    if (!(f->link = mqlink_create (&lo, &error))) {
        log_msg ("%s", error.text);
        goto done;
    }
    up_line (f, "*", "!reset", 6);      /* our last incarnation's clients */
    far_who (f);
    if (o->socket && far_listen (f, o->home, &error) < 0) {
        log_msg ("%s", error.text);
        goto done;
    }
    if (o->tcp) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof (ss);
        char where[80];
        if ((f->tcp_fd = tcp_listen (o->tcp, &error)) < 0) {
            log_msg ("--tcp: %s", error.text);
            goto done;
        }
        if (getsockname (f->tcp_fd, (struct sockaddr *)&ss, &sslen) < 0)
            snprintf (where, sizeof (where), "%s", o->tcp);
        else
            tcp_addr_str ((struct sockaddr *)&ss, where, sizeof (where));
        log_msg ("listening on %s (loopback, uid %u only)", where,
                 (unsigned)geteuid ());
    }
    if (o->stdio && !fc_add (f, STDIN_FILENO, STDOUT_FILENO, true)) {
        log_msg ("out of memory");
        goto done;
    }
    far_loop (f);
    rc = 0;
done:
    if (f->listen_fd >= 0) {
        close (f->listen_fd);
        unlink (f->sock_path);
    }
    if (f->tcp_fd >= 0)
        close (f->tcp_fd);
    while (f->clients) {
        struct fclient *c = f->clients;
        f->clients = c->next;
        if (outbuf_pending (c->out)) {
            (void)fd_set_nonblock (c->fd_out, false);
            (void)outbuf_flush (c->out, c->fd_out);
        }
        up_line (f, c->vc, "!close", 6);
        fc_destroy (c);
    }
    if (f->link) {
        if (f->up.len)
            far_flush (f);
        mqlink_destroy (f->link);
    }
    far_save (f);
    if (f->rejected || f->replayed || f->dups || f->gaps)
        log_msg ("relay: %lu payloads rejected, %lu messages and %lu events "
                 "dropped as duplicates, %lu gaps mended", f->rejected,
                 f->replayed, f->dups, f->gaps);
    jbuf_release (&f->up);
    jbuf_release (&f->note);
    jbuf_release (&f->last_note);
    if (f->sig_fd >= 0)
        close (f->sig_fd);
    return rc;
}
