/* remote.c - the router's ssh transport: one ssh session to
 * "codeswarm-mailbox serve --stdio" carrying both directions.
 *
 * Frames are JSON lines (see codeswarm-protocol(7), "SSH TRANSPORT"):
 *   router -> serve  {"t":"hello","v":1,"cursors":{"<swarm>/<node>":"c"}}
 *                    {"t":"append","id":N,"swarm":S,"node":K,"type":T,
 *                     "payload":{...},"check":bool}
 *   serve -> router  {"t":"hello","v":1}  {"t":"swarm","swarm":S,"info":{}}
 *                    {"t":"rec","swarm":S,"node":K,"cursor":"c","rec":{}}
 *                    {"t":"ack","id":N,"seq":Q} | {"t":"ack","id":N,"error":E}
 *                    {"t":"hb"}
 * On link loss the session is restarted with backoff and resumes from the
 * cursors of the records handled; appends not acknowledged are sent again
 * with "check":true, and the serve side first looks for the record's id in
 * the inbox, so an append lands exactly once.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/lineio.h"
#include "common/log.h"
#include "common/spawn.h"
#include "router/remote.h"
#include "router/ssh.h"

#define LINK_MAX_LINE (16u * 1024 * 1024)
#define LINK_PIPE_SIZE (1 << 20) /* the pipe from ssh, when allowed */
#define BACKOFF_MIN 0.2
#define BACKOFF_MAX 30.0
#define SILENCE_MAX 30.0        /* seconds without a frame: link is dead */

struct append {
    uint64_t id;
    char *frame;                /* without "check" and '\n' */
    remote_done_f done;
    void *arg;
    bool sent;
    struct append *next;
};

struct remote {
    const struct remote_ops *ops;
    void *arg;                  /* for ops */
    char **argv;
    spawn_t *sp;
    lineio_t *in;
    lineio_t *err;
    outbuf_t *out;
    bool up;                    /* hello received */
    double backoff;
    double reconnect_at;        /* monotonic; 0: none due */
    double last_heard;
    uint64_t next_id;
    struct append *appends;
    struct append **tail;
    bool held;                  /* remote_hold(): read no frame */
};

static void link_down (remote_t *rm, const char *why);

static void send_line (remote_t *rm, const char *s, size_t len)
{
    if (!rm->sp || spawn_stdin_fd (rm->sp) < 0)
        return;
    if (outbuf_append (rm->out, s, len) < 0 || outbuf_append (rm->out, "\n", 1) < 0)
        link_down (rm, "out of memory");
}

static void send_append (remote_t *rm, struct append *a)
{
    struct jbuf b = JBUF_INIT;
    size_t len = strlen (a->frame);
    /* frame is "{...}": add the check flag before the closing brace */
    if (jbuf_append (&b, a->frame, len - 1) == 0
        && jbuf_printf (&b, ",\"check\":%s}", a->sent ? "true" : "false")
               == 0)
        send_line (rm, b.data, b.len);
    jbuf_release (&b);
    a->sent = true;
}

static int link_up (remote_t *rm)
{
    struct spawn_opts so = SPAWN_OPTS_INIT;
    cs_error_t error;
    cJSON *hello, *cur;
    char *s;

    so.pipe_stdin = so.pipe_stdout = so.pipe_stderr = true;
    lineio_destroy (rm->in);
    lineio_destroy (rm->err);
    outbuf_destroy (rm->out);
    rm->in = lineio_create (LINK_MAX_LINE);
    rm->err = lineio_create (4096);
    rm->out = outbuf_create ();
    if (!rm->in || !rm->err || !rm->out) {
        log_msg ("out of memory");
        return -1;
    }
    if (!(rm->sp = spawn_start (rm->argv, &so, &error))) {
        rm->ops->state (rm->arg, "failed", error.text);
        return -1;
    }
    /* A backlog comes faster than a 64 KiB pipe passes it: ssh then holds
     * megabytes and copies them over as its buffer grows.  A 1 MiB pipe
     * (when the system allows) keeps ssh's buffer small.
     */
    (void)fcntl (spawn_stdout_fd (rm->sp), F_SETPIPE_SZ, LINK_PIPE_SIZE);
    rm->up = false;
    rm->last_heard = time_mono ();
    rm->ops->state (rm->arg, "connecting", rm->argv[0]);
    hello = cJSON_CreateObject ();
    cur = rm->ops->cursors (rm->arg);
    if (!hello || !cur) {
        cJSON_Delete (hello);
        cJSON_Delete (cur);
        return -1;
    }
    json_add_str (hello, "t", "hello");
    cJSON_AddNumberToObject (hello, "v", 1);
    json_add_item (hello, "cursors", cur);
    if ((s = cJSON_PrintUnformatted (hello))) {
        send_line (rm, s, strlen (s));
        free (s);
    }
    cJSON_Delete (hello);
    for (struct append *a = rm->appends; a; a = a->next)
        send_append (rm, a);
    return 0;
}

static void link_down (remote_t *rm, const char *why)
{
    struct spawn_status st;
    if (rm->sp) {
        rm->ops->state (rm->arg, "lost", why);
        spawn_stop (rm->sp, 1.0, &st);
        spawn_destroy (rm->sp);
        rm->sp = NULL;
    }
    rm->up = false;
    rm->reconnect_at = time_mono () + rm->backoff;
    rm->backoff = rm->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : rm->backoff * 2;
}

remote_t *remote_create (const struct remote_opts *o,
                         const struct remote_ops *ops, void *arg,
                         cs_error_t *errp)
{
    remote_t *rm = calloc (1, sizeof (*rm));
    if (!rm) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    rm->ops = ops;
    rm->arg = arg;
    rm->tail = &rm->appends;
    rm->backoff = BACKOFF_MIN;
    if (!(rm->argv = ssh_argv (ssh_program (), o->host, o->ssh_opts,
                               o->remote_cmd, o->remote_home, errp))) {
        free (rm);
        return NULL;
    }
    if (link_up (rm) < 0)
        link_down (rm, "cannot start ssh");
    return rm;
}

void remote_destroy (remote_t *rm)
{
    if (rm) {
        if (rm->sp) {
            struct spawn_status st;
            spawn_close_stdin (rm->sp);
            spawn_stop (rm->sp, 2.0, &st);
            spawn_destroy (rm->sp);
        }
        while (rm->appends) {
            struct append *a = rm->appends;
            rm->appends = a->next;
            a->done (0, "the router is exiting", a->arg);
            free (a->frame);
            free (a);
        }
        lineio_destroy (rm->in);
        lineio_destroy (rm->err);
        outbuf_destroy (rm->out);
        ssh_argv_free (rm->argv);
        free (rm);
    }
}

bool remote_connected (remote_t *rm)
{
    return rm && rm->up;
}

static int append_queue (remote_t *rm, const char *swarm_id, int node,
                         const char *type, const cJSON *payload,
                         bool check, remote_done_f done, void *arg)
{
    struct append *a = calloc (1, sizeof (*a));
    cJSON *f = cJSON_CreateObject ();
    cJSON *p = payload ? cJSON_Duplicate (payload, true) : cJSON_CreateObject ();

    if (!a || !f || !p) {
        free (a);
        cJSON_Delete (f);
        cJSON_Delete (p);
        done (0, "out of memory", arg);
        return -1;
    }
    a->id = ++rm->next_id;
    json_add_str (f, "t", "append");
    json_add_u64 (f, "id", a->id);
    json_add_str (f, "swarm", swarm_id);
    cJSON_AddNumberToObject (f, "node", node);
    json_add_str (f, "type", type);
    json_add_item (f, "payload", p);
    a->frame = cJSON_PrintUnformatted (f);
    cJSON_Delete (f);
    if (!a->frame) {
        free (a);
        done (0, "out of memory", arg);
        return -1;
    }
    a->done = done;
    a->arg = arg;
    a->sent = check;            /* "check" is sent for an append sent before */
    *rm->tail = a;
    rm->tail = &a->next;
    if (rm->sp)                 /* (link_up sent those queued before) */
        send_append (rm, a);
    return 0;
}

int remote_append (remote_t *rm, const char *swarm_id, int node,
                   const char *type, const cJSON *payload, remote_done_f done,
                   void *arg)
{
    return append_queue (rm, swarm_id, node, type, payload, false, done, arg);
}

int remote_append_check (remote_t *rm, const char *swarm_id, int node,
                         const char *type, const cJSON *payload,
                         remote_done_f done, void *arg)
{
    return append_queue (rm, swarm_id, node, type, payload, true, done, arg);
}

static void on_ack (remote_t *rm, const cJSON *f)
{
    uint64_t id, seq = 0;
    const char *err = NULL;
    struct append **pp;

    if (json_get_u64 (f, "id", &id, NULL) < 0)
        return;
    (void)json_get_u64 (f, "seq", &seq, NULL);
    (void)json_get_str (f, "error", &err, NULL);
    for (pp = &rm->appends; *pp; pp = &(*pp)->next) {
        struct append *a = *pp;
        if (a->id != id)
            continue;
        *pp = a->next;
        if (rm->tail == &a->next)
            rm->tail = pp;
        a->done (err ? 0 : seq, err ? err : (seq ? NULL : "no seq"), a->arg);
        free (a->frame);
        free (a);
        return;
    }
}

static void on_frame (remote_t *rm, const char *line, size_t len)
{
    cs_error_t error;
    const char *t, *swarm, *cursor = NULL;
    int64_t node;
    cJSON *f = json_parse (line, len, &error);

    if (!f) {
        log_msg ("ssh link: bad frame: %s", error.text);
        return;
    }
    if (json_get_str (f, "t", &t, NULL) < 0)
        goto done;
    if (!strcmp (t, "rec")) {
        const cJSON *rec = cJSON_GetObjectItemCaseSensitive (f, "rec");
        if (json_get_str (f, "swarm", &swarm, NULL) == 0
            && json_get_i64 (f, "node", &node, NULL) == 0 && node >= -1
            && node < 100000 && cJSON_IsObject (rec)) {
            (void)json_get_str (f, "cursor", &cursor, NULL);
            rm->ops->record (rm->arg, swarm, (int)node, cursor, rec);
        }
    }
    else if (!strcmp (t, "swarm")) {
        if (json_get_str (f, "swarm", &swarm, NULL) == 0)
            rm->ops->swarm (rm->arg, swarm,
                            cJSON_GetObjectItemCaseSensitive (f, "info"));
    }
    else if (!strcmp (t, "ack"))
        on_ack (rm, f);
    else if (!strcmp (t, "hello")) {
        rm->up = true;
        rm->backoff = BACKOFF_MIN;
        rm->ops->state (rm->arg, "connected", NULL);
    }
    else if (!strcmp (t, "error")) {
        const char *m = NULL;
        (void)json_get_str (f, "message", &m, NULL);
        log_msg ("ssh link: serve: %s", m ? m : "error");
    }
done:
    cJSON_Delete (f);
}

int remote_pollfds (remote_t *rm, struct pollfd *pfd, int max)
{
    int n = 0;
    if (!rm->sp || max < 3)
        return 0;
    if (spawn_stdout_fd (rm->sp) >= 0 && !rm->held) {
        pfd[n].fd = spawn_stdout_fd (rm->sp);
        pfd[n++].events = POLLIN;
    }
    if (spawn_stderr_fd (rm->sp) >= 0) {
        pfd[n].fd = spawn_stderr_fd (rm->sp);
        pfd[n++].events = POLLIN;
    }
    if (spawn_stdin_fd (rm->sp) >= 0 && outbuf_pending (rm->out)) {
        pfd[n].fd = spawn_stdin_fd (rm->sp);
        pfd[n++].events = POLLOUT;
    }
    return n;
}

/* Handle the frames read, up to a hold. */
static void read_frames (remote_t *rm)
{
    const char *line;
    size_t len;
    bool overlong;

    while (rm->sp && rm->in && !rm->held
           && lineio_next (rm->in, &line, &len, &overlong) == 1) {
        if (overlong)
            log_msg ("ssh link: frame too long, dropped");
        else
            on_frame (rm, line, len);
    }
}

void remote_hold (remote_t *rm, bool hold)
{
    if (rm->held && !hold) {
        rm->last_heard = time_mono ();  /* the silence was ours */
        rm->held = false;
        read_frames (rm);               /* those read before the hold */
    }
    rm->held = hold;
}

void remote_handle (remote_t *rm, const struct pollfd *pfd, int n)
{
    const char *line;
    size_t len;
    bool overlong;

    for (int i = 0; i < n && rm->sp; i++) {
        if (!pfd[i].revents)
            continue;
        if (pfd[i].fd == spawn_stdout_fd (rm->sp)) {
            ssize_t got = lineio_fill (rm->in, pfd[i].fd);
            if (got > 0)
                rm->last_heard = time_mono ();
            read_frames (rm);
            if (rm->held)
                continue;       /* the rest (and the end) later */
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                link_down (rm, "the ssh session ended");
                return;
            }
        }
        else if (pfd[i].fd == spawn_stderr_fd (rm->sp)) {
            ssize_t got = lineio_fill (rm->err, pfd[i].fd);
            while (lineio_next (rm->err, &line, &len, &overlong) == 1)
                log_msg ("ssh: %.*s", (int)len, line);
            if (got == 0)
                spawn_close_stderr (rm->sp);
        }
        else if (pfd[i].fd == spawn_stdin_fd (rm->sp)) {
            if (outbuf_flush (rm->out, pfd[i].fd) < 0) {
                link_down (rm, "cannot write to ssh");
                return;
            }
        }
    }
}

int remote_timeout (remote_t *rm)
{
    double now = time_mono (), due;
    if (!rm->sp) {
        due = rm->reconnect_at - now;
        return due <= 0 ? 0 : (int)(due * 1000) + 1;
    }
    if (rm->held)
        return -1;
    due = rm->last_heard + SILENCE_MAX - now;
    return due <= 0 ? 0 : (int)(due * 1000) + 1;
}

void remote_tick (remote_t *rm)
{
    double now = time_mono ();
    struct spawn_status st;

    if (rm->sp) {
        if (outbuf_pending (rm->out) && spawn_stdin_fd (rm->sp) >= 0
            && outbuf_flush (rm->out, spawn_stdin_fd (rm->sp)) < 0
            && errno != EAGAIN) {
            link_down (rm, "cannot write to ssh");
            return;
        }
        if (spawn_poll (rm->sp, &st) == 1) {
            char buf[64];
            link_down (rm, spawn_status_str (&st, buf, sizeof (buf)));
            return;
        }
        if (!rm->held && now - rm->last_heard > SILENCE_MAX)
            link_down (rm, "no heartbeat from the serve side");
        return;
    }
    if (rm->reconnect_at > 0 && now >= rm->reconnect_at) {
        rm->reconnect_at = 0;
        if (link_up (rm) < 0)
            link_down (rm, "cannot start ssh");
    }
}
