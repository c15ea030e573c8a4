/* serve.c - "codeswarm-mailbox serve --stdio": the login-node end of the
 * router's ssh transport.
 *
 * One process per ssh session.  It follows the outboxes of every swarm in
 * <home> (new swarms and nodes are picked up), forwards each record with
 * the reader cursor after it, and is the single writer of the inboxes for
 * the router on the other end.  Frames are JSON lines on stdin/stdout:
 *
 *   in:  {"t":"hello","v":1,"cursors":{"<swarm>/<node>":"seq:epoch:seg:off"}}
 *        {"t":"append","id":N,"swarm":S,"node":K,"type":T,"payload":{},
 *         "check":bool}
 *   out: {"t":"hello","v":1,"home":H}
 *        {"t":"swarm","swarm":S,"info":{swarm.json}}
 *        {"t":"rec","swarm":S,"node":K,"cursor":C,"rec":{record}}
 *           (K is -1 for outbox/swarm.jsonl)
 *        {"t":"ack","id":N,"seq":Q} or {"t":"ack","id":N,"error":E}
 *        {"t":"hb"} every 5 s, {"t":"error","message":M}
 *
 * Streams are followed from the cursor the router sent, or from their
 * beginning.  An append with "check" (a resend after a reconnect) is first
 * looked up by its payload "id" in the inbox, so it lands only once.
 * stdin at EOF ends the session.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json.h"
#include "common/jsonarena.h"
#include "common/lineio.h"
#include "common/log.h"
#include "mailbox/mailbox.h"
#include "mailbox/serve.h"

#define SERVE_MAX_LINE (16u * 1024 * 1024)
#define OUT_HIGH (8u * 1024 * 1024)     /* stop reading outboxes above this */
#define SCAN_INTERVAL 1.0
#define HB_INTERVAL 5.0

struct sstream {
    char *swarm;
    int node;                   /* -1: swarm.jsonl */
    mb_writer_t *inbox;         /* node >= 0, opened on the first append */
    bool followed;
    struct sstream *next;
};

struct sswarm {
    char *id;
    char dir[PATH_MAX];
    time_t info_mtime;
    long info_nsec;
    struct sswarm *next;
};

struct serve {
    char home[PATH_MAX];
    struct mb_options opt;
    mb_follower_t *fol;
    lineio_t *in;
    outbuf_t *out;
    struct jbuf b;
    cJSON *cursors;             /* from hello */
    bool hello;
    struct sswarm *swarms;
    struct sstream *streams;
    bool quit;
};

static struct serve *serve_self;    /* for the follower callback */

static void out_frame (struct serve *s, const char *data, size_t len)
{
    if (outbuf_append (s->out, data, len) < 0
        || outbuf_append (s->out, "\n", 1) < 0)
        log_msg_exit ("out of memory");
}

static void out_json (struct serve *s, cJSON *o)
{
    char *t = cJSON_PrintUnformatted (o);
    if (!t)
        log_msg_exit ("out of memory");
    out_frame (s, t, strlen (t));
    cJSON_free (t);
    cJSON_Delete (o);
}

static struct sstream *stream_find (struct serve *s, const char *swarm,
                                    int node, bool create)
{
    struct sstream *st;
    for (st = s->streams; st; st = st->next)
        if (st->node == node && !strcmp (st->swarm, swarm))
            return st;
    if (!create)
        return NULL;
    if (!(st = calloc (1, sizeof (*st))) || !(st->swarm = strdup (swarm)))
        log_msg_exit ("out of memory");
    st->node = node;
    st->next = s->streams;
    s->streams = st;
    return st;
}

static void follow_cb (mb_follower_t *f, mb_reader_t *r,
                       const struct mb_event *ev, void *arg)
{
    struct sstream *st = arg;
    struct serve *s = NULL;
    struct mb_cursor c;
    char cur[128];
    s = serve_self;
    if (ev->type == MB_EV_CORRUPT) {
        log_msg ("'%s' offset %llu: %s", mb_reader_path (r),
                 (unsigned long long)ev->offset,
                 ev->reason ? ev->reason : "corrupt line");
        return;
    }
    if (ev->type != MB_EV_RECORD)
        return;
    mb_reader_cursor (r, &c);
    mb_cursor_format (&c, cur, sizeof (cur));
    jbuf_reset (&s->b);
    if (jbuf_append (&s->b, "{\"t\":\"rec\",\"swarm\":", 19) < 0
        || jbuf_append_jstr (&s->b, st->swarm, strlen (st->swarm)) < 0
        || jbuf_printf (&s->b, ",\"node\":%d,\"cursor\":\"%s\",\"rec\":",
                        st->node, cur) < 0
        || jbuf_append (&s->b, ev->rec.line, ev->rec.len) < 0
        || jbuf_append (&s->b, "}", 1) < 0)
        log_msg_exit ("out of memory");
    out_frame (s, s->b.data, s->b.len);
}

static void follow_stream (struct serve *s, struct sswarm *sw, int node,
                           const char *file)
{
    struct sstream *st = stream_find (s, sw->id, node, true);
    char path[PATH_MAX * 2], key[300];
    const cJSON *c;
    struct mb_cursor cur;
    cs_error_t error;
    bool have = false;

    if (st->followed)
        return;
    snprintf (path, sizeof (path), "%s/outbox/%s", sw->dir, file);
    if (node < 0)
        snprintf (key, sizeof (key), "%s/swarm", sw->id);
    else
        snprintf (key, sizeof (key), "%s/%d", sw->id, node);
    c = cJSON_GetObjectItemCaseSensitive (s->cursors, key);
    if (cJSON_IsString (c)) {
        if (mb_cursor_parse (c->valuestring, &cur, &error) == 0)
            have = true;
        else
            log_msg ("cursor for '%s': %s", key, error.text);
    }
    if (!mb_follower_add (s->fol, path, have ? MB_START_CURSOR : MB_START_BEGIN,
                          have ? &cur : NULL, follow_cb, st, &error)) {
        log_msg ("cannot follow '%s': %s", path, error.text);
        return;
    }
    st->followed = true;
}

static void scan_swarm (struct serve *s, struct sswarm *sw)
{
    char path[PATH_MAX + 32];
    struct stat sb;
    struct dirent *de;
    DIR *d;

    snprintf (path, sizeof (path), "%s/swarm.json", sw->dir);
    if (stat (path, &sb) == 0
        && (sb.st_mtim.tv_sec != sw->info_mtime
            || sb.st_mtim.tv_nsec != sw->info_nsec)) {
        FILE *f = fopen (path, "r");
        if (f) {
            static char buf[1 << 20];
            size_t len = fread (buf, 1, sizeof (buf), f);
            cJSON *info = json_parse (buf, len, NULL);
            cJSON *o = cJSON_CreateObject ();
            fclose (f);
            json_add_str (o, "t", "swarm");
            json_add_str (o, "swarm", sw->id);
            json_add_item (o, "info", info ? info : cJSON_CreateNull ());
            out_json (s, o);
            sw->info_mtime = sb.st_mtim.tv_sec;
            sw->info_nsec = sb.st_mtim.tv_nsec;
        }
    }
    snprintf (path, sizeof (path), "%s/outbox", sw->dir);
    if (!(d = opendir (path)))
        return;
    while ((de = readdir (d))) {
        char *end;
        long k;
        if (!strcmp (de->d_name, "swarm.jsonl")) {
            follow_stream (s, sw, -1, de->d_name);
            continue;
        }
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        k = strtol (de->d_name, &end, 10);
        if (strcmp (end, ".jsonl") || k < 0 || k >= 100000)
            continue;
        follow_stream (s, sw, (int)k, de->d_name);
    }
    closedir (d);
}

static void scan (struct serve *s)
{
    char path[PATH_MAX + 16];
    struct dirent *de;
    DIR *d;

    snprintf (path, sizeof (path), "%s/swarms", s->home);
    if (!(d = opendir (path)))
        return;
    while ((de = readdir (d))) {
        struct sswarm *sw;
        cs_error_t error;
        if (de->d_name[0] == '.')
            continue;
        for (sw = s->swarms; sw; sw = sw->next)
            if (!strcmp (sw->id, de->d_name))
                break;
        if (!sw) {
            if (!(sw = calloc (1, sizeof (*sw)))
                || !(sw->id = strdup (de->d_name)))
                log_msg_exit ("out of memory");
            if (mb_swarm_dir (s->home, sw->id, false, sw->dir,
                              sizeof (sw->dir), &error) < 0) {
                log_debug ("%s", error.text);
                free (sw->id);
                free (sw);
                continue;
            }
            sw->next = s->swarms;
            s->swarms = sw;
        }
        scan_swarm (s, sw);
    }
    closedir (d);
}

static void ack (struct serve *s, uint64_t id, uint64_t seq, const char *err)
{
    cJSON *o = cJSON_CreateObject ();
    json_add_str (o, "t", "ack");
    json_add_u64 (o, "id", id);
    if (err)
        json_add_str (o, "error", err);
    else
        json_add_u64 (o, "seq", seq);
    out_json (s, o);
}

/* Look for a record with this payload id in the inbox: its seq, or 0. */
static uint64_t find_in_inbox (struct serve *s, const char *path,
                               const char *rid)
{
    struct mb_event ev;
    mb_reader_t *r = mb_reader_open (path, MB_START_BEGIN, NULL, &s->opt,
                                     NULL);
    uint64_t found = 0;
    if (!r)
        return 0;
    while (mb_reader_next (r, &ev, NULL) > 0) {
        const cJSON *v;
        if (ev.type != MB_EV_RECORD)
            continue;
        v = cJSON_GetObjectItemCaseSensitive (ev.rec.json, "id");
        if (cJSON_IsString (v) && !strcmp (v->valuestring, rid))
            found = ev.rec.seq;
    }
    mb_reader_close (r);
    return found;
}

static void on_append (struct serve *s, const cJSON *f)
{
    const char *swarm, *type, *rid = NULL;
    const cJSON *payload = cJSON_GetObjectItemCaseSensitive (f, "payload");
    bool check = cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (f, "check"));
    char sdir[PATH_MAX], path[PATH_MAX];
    struct sstream *st;
    cs_error_t error;
    uint64_t id, seq;
    int64_t node;

    if (json_get_u64 (f, "id", &id, NULL) < 0)
        return;
    if (json_get_str (f, "swarm", &swarm, &error) < 0
        || json_get_i64 (f, "node", &node, &error) < 0
        || json_get_str (f, "type", &type, &error) < 0) {
        ack (s, id, 0, error.text);
        return;
    }
    if (node < 0 || node >= 100000 || !cJSON_IsObject (payload)) {
        ack (s, id, 0, "bad node or payload");
        return;
    }
    (void)json_get_str (payload, "id", &rid, NULL);
    if (mb_swarm_dir (s->home, swarm, false, sdir, sizeof (sdir), &error) < 0
        || mb_stream_path (sdir, "inbox", (int)node, path, sizeof (path),
                           &error) < 0) {
        ack (s, id, 0, error.text);
        return;
    }
    if (check && rid && (seq = find_in_inbox (s, path, rid))) {
        ack (s, id, seq, NULL);
        return;
    }
    st = stream_find (s, swarm, (int)node, true);
    if (!st->inbox && !(st->inbox = mb_writer_open (path, &s->opt, &error))) {
        ack (s, id, 0, error.text);
        return;
    }
    if (mb_writer_append (st->inbox, type, payload, &seq, &error) < 0) {
        ack (s, id, 0, error.text);
        return;
    }
    ack (s, id, seq, NULL);
}

static void on_frame (struct serve *s, const char *line, size_t len)
{
    cs_error_t error;
    const char *t;
    cJSON *f = json_parse (line, len, &error);

    if (!f) {
        cJSON *o = cJSON_CreateObject ();
        json_add_str (o, "t", "error");
        json_add_str (o, "message", error.text);
        out_json (s, o);
        return;
    }
    if (json_get_str (f, "t", &t, NULL) == 0) {
        if (!strcmp (t, "hello") && !s->hello) {
            cJSON *o = cJSON_CreateObject ();
            cJSON *c = cJSON_GetObjectItemCaseSensitive (f, "cursors");
            if (cJSON_IsObject (c))
                s->cursors = cJSON_Duplicate (c, true);
            s->hello = true;
            json_add_str (o, "t", "hello");
            cJSON_AddNumberToObject (o, "v", 1);
            json_add_str (o, "home", s->home);
            out_json (s, o);
            scan (s);
        }
        else if (!strcmp (t, "append"))
            on_append (s, f);
    }
    cJSON_Delete (f);
}

int mailbox_serve_main (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "stdio", no_argument, NULL, 's' },
        { "home", required_argument, NULL, 'H' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct serve serve = { .b = JBUF_INIT };
    struct serve *s = &serve;
    bool stdio = false;
    cs_error_t error;
    double next_scan = 0, next_hb = 0;
    int c;

    optind = 1;
    while ((c = getopt_long (argc, argv, "H:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 's': stdio = true; break;
        case 'H':
            if (setenv ("CODESWARM_HOME", optarg, 1) < 0)
                log_err_exit ("setenv");
            break;
        case 'v': log_set_verbose (log_verbose () + 1); break;
        case 'h':
            printf ("usage: codeswarm-mailbox serve --stdio [--home DIR]\n");
            return 0;
        default:
            fprintf (stderr, "usage: codeswarm-mailbox serve --stdio "
                     "[--home DIR]\n");
            return 2;
        }
    }
    if (!stdio || optind < argc) {
        fprintf (stderr, "usage: codeswarm-mailbox serve --stdio [--home DIR]\n");
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    (void)jsonarena_install (); /* one tree per record, deleted at once */
    serve_self = s;
    mb_options_init (&s->opt);
    if (mb_home (s->home, sizeof (s->home), true, &error) < 0)
        log_msg_exit ("%s", error.text);
    if (!(s->fol = mb_follower_create (&s->opt, &error)))
        log_msg_exit ("%s", error.text);
    if (!(s->in = lineio_create (SERVE_MAX_LINE)) || !(s->out = outbuf_create ()))
        log_msg_exit ("out of memory");
    (void)fd_set_nonblock (STDIN_FILENO, true);
    (void)fd_set_nonblock (STDOUT_FILENO, true);
    /* a backlog leaves in 1 MiB writes rather than 64 KiB ones (when
     * stdout is a pipe and the system allows it)
     */
    (void)fcntl (STDOUT_FILENO, F_SETPIPE_SZ, 1 << 20);

    while (!s->quit || outbuf_pending (s->out)) {
        struct pollfd pfd[3];
        int n = 0, timeout = 1000, fto, iin = -1, iout = -1, ifol = -1;
        double now = time_mono ();

        if (!s->quit) {
            pfd[n].fd = STDIN_FILENO;
            pfd[n].events = POLLIN;
            iin = n++;
        }
        if (outbuf_pending (s->out)) {
            pfd[n].fd = STDOUT_FILENO;
            pfd[n].events = POLLOUT;
            iout = n++;
        }
        if (s->hello && mb_follower_fd (s->fol) >= 0
            && outbuf_pending (s->out) < OUT_HIGH) {
            pfd[n].fd = mb_follower_fd (s->fol);
            pfd[n].events = POLLIN;
            ifol = n++;
        }
        if (s->hello && outbuf_pending (s->out) < OUT_HIGH
            && (fto = mb_follower_timeout (s->fol)) >= 0 && fto < timeout)
            timeout = fto;
        if (poll (pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
            log_err_exit ("poll");
        (void)ifol;
        if (iin >= 0 && pfd[iin].revents) {
            const char *line;
            size_t len;
            bool overlong;
            ssize_t got = lineio_fill (s->in, STDIN_FILENO);
            while (lineio_next (s->in, &line, &len, &overlong) == 1)
                if (!overlong)
                    on_frame (s, line, len);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
                s->quit = true;
        }
        if (iout >= 0 && pfd[iout].revents
            && outbuf_flush (s->out, STDOUT_FILENO) < 0 && errno != EAGAIN)
            break;                      /* the router is gone */
        if (s->hello && !s->quit && outbuf_pending (s->out) < OUT_HIGH) {
            if (mb_follower_process (s->fol, &error) < 0)
                log_msg ("%s", error.text);
        }
        now = time_mono ();
        if (s->hello && !s->quit && now >= next_scan) {
            scan (s);
            next_scan = now + SCAN_INTERVAL;
        }
        if (s->hello && now >= next_hb) {
            out_frame (s, "{\"t\":\"hb\"}", 10);
            next_hb = now + HB_INTERVAL;
        }
        if (outbuf_pending (s->out)
            && outbuf_flush (s->out, STDOUT_FILENO) < 0 && errno != EAGAIN)
            break;
    }
    while (s->streams) {
        struct sstream *st = s->streams;
        s->streams = st->next;
        mb_writer_close (st->inbox);
        free (st->swarm);
        free (st);
    }
    while (s->swarms) {
        struct sswarm *sw = s->swarms;
        s->swarms = sw->next;
        free (sw->id);
        free (sw);
    }
    mb_follower_destroy (s->fol);
    lineio_destroy (s->in);
    outbuf_destroy (s->out);
    jbuf_release (&s->b);
    cJSON_Delete (s->cursors);
    return 0;
}
