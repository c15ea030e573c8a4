/* router.c - codeswarm-router: follow outboxes, translate, serve clients
 *
 * One poll() loop over: the mailbox follower (local mode) or the ssh link
 * (remote mode), the clients (stdio and/or a UNIX socket), and a signalfd.
 *
 * Exactly once: every event goes to the event log (eventlog.h) before any
 * client sees it.  Per followed stream, a state file in the swarm's
 * cursors/ directory holds the reader cursor and the translator state;
 * after the state files, <home>/router/state.json records the event seq
 * they cover.  On start the log after that seq is read back: the events
 * it holds came from records the state files do not cover yet, so those
 * records are translated again without emitting what was already logged.
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
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/configfile.h"
#include "common/json.h"
#include "common/lineio.h"
#include "common/log.h"
#include "mailbox/mailbox.h"
#include "router/command.h"
#include "router/eventlog.h"
#include "router/paths.h"
#include "router/router.h"
#include "router/translate.h"

#define MAX_CLIENT_BACKLOG (256u * 1024 * 1024)  /* bytes queued per client */
#define SCAN_INTERVAL 1.0                        /* seconds between swarm scans */
#define FLUSH_INTERVAL 0.2                       /* state files at most every */
#define MAX_POLLFDS 1024
#define IDEM_MAX 10000                           /* idempotency keys kept ... */
#define IDEM_MAX_AGE 86400.0                     /* ... for at most a day */

struct swarm;

struct stream {
    struct swarm *sw;
    int node;                   /* -1: outbox/swarm.jsonl */
    char path[PATH_MAX];        /* the outbox stream (local mode) */
    char state_path[PATH_MAX];  /* cursors/router.outbox-<k>.json */
    mb_reader_t *rd;            /* local mode */
    struct mb_cursor cur;       /* after the last record handled */
    char rcursor[128];          /* remote mode: the serve side's cursor */
    bool dirty;
    uint64_t sup_seq;           /* suppress events of records <= sup_seq ... */
    int sup_count;              /* ... and the first sup_count of sup_seq */
    uint64_t lost_seq;          /* node_lost logged after this record */
    mb_writer_t *inbox;         /* held open (local mode) */
};

struct swarm {
    char *id;
    char dir[PATH_MAX];
    rt_trans_t *t;
    int node_count;             /* swarm.json "nodes" (0: unknown) */
    char *state;                /* swarm.json "state" */
    char *job_id;
    struct stream **streams;    /* by node index */
    int nstreams;
    struct stream *sstream;     /* the swarm stream */
    bool terminating;
    struct swarm *next;
};

struct client {
    int id;
    int fd_in;
    int fd_out;
    bool stdio;
    lineio_t *in;
    outbuf_t *out;
    bool started;               /* receives stream events */
    uint64_t sent_seq;          /* last stream seq sent */
    bool dead;
    struct client *next;
};

struct suppress {
    char *swarm;
    int node;
    uint64_t seq;
    int count;
    uint64_t lost_seq;          /* a node_lost logged after record lost_seq */
};

struct idem {
    char *key;                  /* "<swarm>/<idempotency_key>" */
    double ts;                  /* wall clock when first used */
    cJSON *ids;                 /* [{"node_id","injection_id"}...] */
    struct idem *next;          /* newest first */
};

struct router {
    char home[PATH_MAX];
    char dir[PATH_MAX];         /* <home>/router */
    struct cs_config cfg;
    struct mb_options opt;
    bool debug;
    double lost_after;
    eventlog_t *log;
    struct jbuf env;
    mb_follower_t *fol;         /* local mode */
    remote_t *remote;           /* remote mode */
    struct swarm *swarms;
    struct client *clients;
    int next_client_id;
    int listen_fd;
    char sock_path[PATH_MAX];
    bool use_stdio;
    int sig_fd;
    bool quit;
    double next_scan;
    double next_flush;
    bool dirty;
    uint64_t inj_counter;
    struct suppress *sup;
    size_t nsup;
    struct idem *idems;
    size_t nidem;               /* entries in idems */
    int idem_fd;                /* <home>/router/idempotency.jsonl */
    size_t idem_lines;          /* lines in that file */
    /* the record being translated */
    struct stream *cur_stream;
    uint64_t cur_seq;
    int cur_idx;
};

static struct router *R;        /* for the emit callback */

/* ---- helpers ------------------------------------------------------------- */

static struct swarm *swarm_find (struct router *r, const char *id)
{
    for (struct swarm *sw = r->swarms; sw; sw = sw->next)
        if (!strcmp (sw->id, id))
            return sw;
    return NULL;
}

static struct client *client_find (struct router *r, int id)
{
    for (struct client *c = r->clients; c; c = c->next)
        if (c->id == id && !c->dead)
            return c;
    return NULL;
}

static void client_send (struct client *c, const char *data, size_t len)
{
    if (c->dead)
        return;
    if (outbuf_pending (c->out) + len > MAX_CLIENT_BACKLOG) {
        log_msg ("client %d: more than %u bytes unread, dropping it", c->id,
                 MAX_CLIENT_BACKLOG);
        c->dead = true;
        return;
    }
    if (outbuf_append (c->out, data, len) < 0)
        c->dead = true;
}

/* A reply (not a stream event: no seq) to one client. */
static void reply (struct router *r, int client_id, const char *name,
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

/* command_rejected: member names the member at fault ("payload.nodes"),
 * NULL or "" when the fault is not one member's.
 */
static void reject_member (struct router *r, int client_id,
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
    reply (r, client_id, "command_rejected", d);
}

static void reject (struct router *r, int client_id, const char *request_id,
                    const char *code, const char *reason)
{
    reject_member (r, client_id, request_id, code, NULL, reason);
}

static cJSON *reply_data (const char *request_id)
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

/* ---- events ------------------------------------------------------------- */

static struct stream *stream_get (struct router *r, struct swarm *sw,
                                  int node, bool create);

static void broadcast (struct router *r, uint64_t seq, const char *line,
                       size_t len)
{
    for (struct client *c = r->clients; c; c = c->next) {
        if (!c->started || c->dead || seq <= c->sent_seq)
            continue;
        client_send (c, line, len);
        c->sent_seq = seq;
    }
}

static void emit (const char *name, cJSON *data, void *arg)
{
    struct router *r = arg;
    struct stream *s = r->cur_stream;
    struct ev_src src, *srcp = NULL;
    cs_error_t error;
    uint64_t seq;
    int idx = r->cur_idx++;

    if (s) {
        if (r->cur_seq < s->sup_seq
            || (r->cur_seq == s->sup_seq && idx < s->sup_count)) {
            cJSON_Delete (data);        /* logged before the restart */
            return;
        }
        src.swarm = s->sw->id;
        src.node = s->node;
        src.seq = r->cur_seq;
        src.idx = idx;
        srcp = &src;
    }
    else if (!strcmp (name, "node_lost")) {
        /* not from a record: log which record the silence followed, so
         * that a restart does not declare the same silence again */
        const char *swarm;
        int64_t node;
        struct swarm *sw;
        if (json_get_str (data, "swarm_id", &swarm, NULL) == 0
            && json_get_i64 (data, "node_id", &node, NULL) == 0
            && (sw = swarm_find (r, swarm))) {
            struct stream *ls = stream_get (r, sw, (int)node, false);
            if (ls)
                ls->dirty = true;       /* its state file has the flag */
            src.swarm = sw->id;
            src.node = (int)node;
            src.seq = rt_trans_last_seq (sw->t, (int)node);
            src.idx = -1;
            srcp = &src;
        }
    }
    if (eventlog_append (r->log, name, data, srcp, &seq, &r->env, &error)
        < 0) {
        log_msg ("cannot log event '%s': %s", name, error.text);
        cJSON_Delete (data);
        return;
    }
    cJSON_Delete (data);
    broadcast (r, seq, r->env.data, r->env.len);
}

/* ---- state files ----------------------------------------------------------- */

static int write_file_atomic (const char *path, const char *data,
                              cs_error_t *errp)
{
    char tmp[PATH_MAX + 16];
    int fd;

    if (snprintf (tmp, sizeof (tmp), "%s.tmp", path) >= (int)sizeof (tmp)) {
        errno = ENAMETOOLONG;
        return errprintf (errp, "path too long");
    }
    (void)unlink (tmp);
    if ((fd = mb_secure_open (tmp, O_WRONLY | O_CREAT | O_EXCL, errp)) < 0)
        return -1;
    if (fd_write_all (fd, data, strlen (data)) < 0 || fdatasync (fd) < 0) {
        int saved = errno;
        close (fd);
        unlink (tmp);
        errno = saved;
        return errprintf (errp, "cannot write '%s': %s", tmp,
                          strerror (errno));
    }
    close (fd);
    if (rename (tmp, path) < 0) {
        int saved = errno;
        unlink (tmp);
        errno = saved;
        return errprintf (errp, "cannot rename '%s': %s", tmp,
                          strerror (errno));
    }
    return 0;
}

static cJSON *read_json_file (const char *path, cs_error_t *errp)
{
    char buf[1 << 16];
    char *big = NULL;
    size_t len = 0, size = 0;
    ssize_t n;
    cJSON *o;
    int fd;

    if ((fd = mb_secure_open (path, O_RDONLY, errp)) < 0)
        return NULL;
    while ((n = read (fd, buf, sizeof (buf))) > 0) {
        if (len + (size_t)n + 1 > size) {
            char *p;
            size = (len + (size_t)n + 1) * 2;
            if (size > 64u * 1024 * 1024 || !(p = realloc (big, size))) {
                free (big);
                close (fd);
                errprintf (errp, "'%s' is too large", path);
                return NULL;
            }
            big = p;
        }
        memcpy (big + len, buf, (size_t)n);
        len += (size_t)n;
    }
    close (fd);
    if (n < 0) {
        free (big);
        errprintf (errp, "cannot read '%s': %s", path, strerror (errno));
        return NULL;
    }
    o = json_parse (big ? big : "", len, errp);
    free (big);
    return o;
}

static void stream_save (struct router *r, struct stream *s)
{
    cJSON *o, *st;
    char *text;
    cs_error_t error;

    if (!s->dirty)
        return;
    if (!(o = mb_cursor_to_json (&s->cur)))
        return;
    if (s->rcursor[0])
        json_add_str (o, "remote_cursor", s->rcursor);
    if ((st = rt_trans_state (s->sw->t, s->node)))
        json_add_item (o, "translator", st);
    if ((text = cJSON_PrintUnformatted (o))) {
        if (write_file_atomic (s->state_path, text, &error) < 0)
            log_msg ("%s", error.text);
        else
            s->dirty = false;
        free (text);
    }
    cJSON_Delete (o);
}

static void router_flush (struct router *r)
{
    char path[PATH_MAX + 16];
    char text[128];
    cs_error_t error;

    if (!r->dirty)
        return;
    (void)eventlog_sync (r->log);
    for (struct swarm *sw = r->swarms; sw; sw = sw->next) {
        for (int k = 0; k < sw->nstreams; k++)
            if (sw->streams[k])
                stream_save (r, sw->streams[k]);
        if (sw->sstream)
            stream_save (r, sw->sstream);
    }
    snprintf (path, sizeof (path), "%s/state.json", r->dir);
    snprintf (text, sizeof (text), "{\"event_seq\":%llu}",
              (unsigned long long)eventlog_seq (r->log));
    if (write_file_atomic (path, text, &error) < 0)
        log_msg ("%s", error.text);
    r->dirty = false;
}

/* Read the log after the last checkpoint: which records' events are
 * already there.
 */
static int load_suppress_cb (uint64_t seq, const cJSON *rec, void *arg)
{
    struct router *r = arg;
    const cJSON *src = cJSON_GetObjectItemCaseSensitive (rec, "src");
    const char *swarm, *name = NULL;
    uint64_t sseq, idx = 0;
    int64_t node, i64;
    bool lost;
    size_t i;

    (void)json_get_str (rec, "event", &name, NULL);
    lost = name && !strcmp (name, "node_lost");
    if (!src || json_get_str (src, "swarm", &swarm, NULL) < 0
        || json_get_i64 (src, "node", &node, NULL) < 0
        || json_get_u64 (src, "seq", &sseq, NULL) < 0
        || json_get_i64 (src, "idx", &i64, NULL) < 0
        || (i64 < 0 && !lost))
        return 0;
    idx = i64 < 0 ? 0 : (uint64_t)i64;
    for (i = 0; i < r->nsup; i++)
        if (r->sup[i].node == node && !strcmp (r->sup[i].swarm, swarm))
            break;
    if (i == r->nsup) {
        struct suppress *p = realloc (r->sup, (r->nsup + 1) * sizeof (*p));
        if (!p)
            return -1;
        r->sup = p;
        memset (&p[i], 0, sizeof (p[i]));
        if (!(p[i].swarm = strdup (swarm)))
            return -1;
        p[i].node = (int)node;
        r->nsup++;
    }
    if (lost) {
        if (sseq > r->sup[i].lost_seq)
            r->sup[i].lost_seq = sseq;
        return 0;
    }
    if (sseq > r->sup[i].seq) {
        r->sup[i].seq = sseq;
        r->sup[i].count = 0;
    }
    if (sseq == r->sup[i].seq && (int)idx + 1 > r->sup[i].count)
        r->sup[i].count = (int)idx + 1;
    return 0;
}

static int load_suppress (struct router *r)
{
    char path[PATH_MAX + 16];
    cs_error_t error;
    uint64_t since = 0;
    cJSON *o;

    snprintf (path, sizeof (path), "%s/state.json", r->dir);
    if ((o = read_json_file (path, &error))) {
        (void)json_get_u64 (o, "event_seq", &since, NULL);
        cJSON_Delete (o);
    }
    else if (errno != ENOENT)
        log_msg ("%s (reading the whole event log)", error.text);
    if (eventlog_replay (eventlog_path (r->log), since, &r->opt,
                         load_suppress_cb, r, &error) < 0) {
        log_msg ("cannot read the event log: %s", error.text);
        return -1;
    }
    if (r->nsup)
        log_debug ("%zu streams have events logged after the checkpoint",
                   r->nsup);
    return 0;
}

/* ---- idempotency keys ---------------------------------------------------- */

/* <home>/router/idempotency.jsonl: one line per key, oldest first,
 * {"key":"<swarm>/<key>","ts":<wall clock>,"injections":[...]}.  A line is
 * written (and synced) before the inbox records it names, so a retry after
 * a crash is answered "duplicate" and never injects twice.  Keys older than
 * IDEM_MAX_AGE, or beyond the newest IDEM_MAX, are forgotten; the file is
 * rewritten when it holds twice as many lines as are kept.
 */

static void idem_free (struct idem *im)
{
    if (im) {
        free (im->key);
        cJSON_Delete (im->ids);
        free (im);
    }
}

static struct idem *idem_find (struct router *r, const char *key)
{
    for (struct idem *im = r->idems; im; im = im->next)
        if (!strcmp (im->key, key))
            return im;
    return NULL;
}

/* The file's line for im, with its '\n' (free). */
static char *idem_line (const struct idem *im)
{
    cJSON *o = cJSON_CreateObject ();
    char *text = NULL, *line = NULL;

    if (o && json_add_str (o, "key", im->key) == 0
        && json_add_double (o, "ts", im->ts) == 0
        && json_add_item (o, "injections", cJSON_Duplicate (im->ids, 1)) == 0
        && (text = json_print (o))
        && (line = malloc (strlen (text) + 2)))
        sprintf (line, "%s\n", text);
    free (text);
    cJSON_Delete (o);
    return line;
}

/* Forget keys that are too old or too many (the list is newest first). */
static void idem_prune (struct router *r, double now)
{
    struct idem **pp = &r->idems;
    size_t n = 0;

    while (*pp) {
        struct idem *im = *pp;
        if (n >= IDEM_MAX || now - im->ts > IDEM_MAX_AGE) {
            *pp = im->next;
            idem_free (im);
            r->nidem--;
        }
        else {
            n++;
            pp = &im->next;
        }
    }
}

static int idem_open (struct router *r, const char *path, cs_error_t *errp)
{
    if (r->idem_fd >= 0)
        close (r->idem_fd);
    r->idem_fd = mb_secure_open (path, O_WRONLY | O_APPEND | O_CREAT, errp);
    return r->idem_fd < 0 ? -1 : 0;
}

/* Rewrite the file with the keys kept, oldest first. */
static int idem_rewrite (struct router *r, const char *path, cs_error_t *errp)
{
    struct jbuf b = JBUF_INIT;
    struct idem **v = NULL;
    size_t n = 0;
    int rc = -1;

    if (r->nidem && !(v = calloc (r->nidem, sizeof (*v)))) {
        errno = ENOMEM;
        return errprintf (errp, "out of memory");
    }
    for (struct idem *im = r->idems; im && n < r->nidem; im = im->next)
        v[n++] = im;
    if (jbuf_append (&b, "", 0) < 0)
        goto nomem;
    while (n-- > 0) {
        char *line = idem_line (v[n]);
        if (!line || jbuf_append (&b, line, strlen (line)) < 0) {
            free (line);
            goto nomem;
        }
        free (line);
    }
    if (write_file_atomic (path, b.data ? b.data : "", errp) < 0)
        goto done;
    r->idem_lines = r->nidem;
    rc = idem_open (r, path, errp);
    goto done;
nomem:
    errno = ENOMEM;
    errprintf (errp, "out of memory");
done:
    jbuf_release (&b);
    free (v);
    return rc;
}

static void idem_path (struct router *r, char *buf, size_t len)
{
    snprintf (buf, len, "%s/idempotency.jsonl", r->dir);
}

/* Load the keys of earlier runs.  A torn last line (a crash while it was
 * written) is skipped: its inbox records were not written either.
 */
static int idem_load (struct router *r)
{
    char path[PATH_MAX + 32];
    char buf[1 << 16];
    struct jbuf all = JBUF_INIT;
    cs_error_t error;
    double now = time_now ();
    size_t lines = 0;
    bool torn = false;
    ssize_t n;
    char *p, *end;
    int fd;

    idem_path (r, path, sizeof (path));
    if ((fd = mb_secure_open (path, O_RDONLY, &error)) < 0) {
        if (errno != ENOENT) {
            log_msg ("%s", error.text);
            return -1;
        }
        if (idem_open (r, path, &error) < 0) {
            log_msg ("%s", error.text);
            return -1;
        }
        return 0;
    }
    while ((n = read (fd, buf, sizeof (buf))) > 0)
        if (jbuf_append (&all, buf, (size_t)n) < 0) {
            n = -1;
            break;
        }
    close (fd);
    if (n < 0) {
        log_msg ("cannot read '%s': %s", path, strerror (errno));
        jbuf_release (&all);
        return -1;
    }
    for (p = all.data; p && p < all.data + all.len; p = end + 1) {
        const char *key;
        const cJSON *ids;
        struct idem *im;
        double ts;
        cJSON *o;

        if (!(end = memchr (p, '\n', (size_t)(all.data + all.len - p)))) {
            torn = true;        /* no newline */
            break;
        }
        lines++;
        if (!(o = json_parse (p, (size_t)(end - p), NULL)))
            continue;
        ids = cJSON_GetObjectItemCaseSensitive (o, "injections");
        if (json_get_str (o, "key", &key, NULL) == 0
            && json_get_double (o, "ts", &ts, NULL) == 0
            && cJSON_IsArray (ids) && now - ts <= IDEM_MAX_AGE
            && !idem_find (r, key) && (im = calloc (1, sizeof (*im)))) {
            im->key = strdup (key);
            im->ts = ts;
            im->ids = cJSON_Duplicate (ids, 1);
            if (!im->key || !im->ids)
                idem_free (im);
            else {
                im->next = r->idems;
                r->idems = im;
                r->nidem++;
            }
        }
        cJSON_Delete (o);
    }
    jbuf_release (&all);
    idem_prune (r, now);
    r->idem_lines = lines;
    if (r->nidem)
        log_debug ("%zu idempotency keys from earlier runs", r->nidem);
    if ((lines > r->nidem || torn)
        ? idem_rewrite (r, path, &error) < 0
        : idem_open (r, path, &error) < 0) {
        log_msg ("%s", error.text);
        return -1;
    }
    return 0;
}

/* Remember key with its injections, durably.  Returns the new entry. */
static struct idem *idem_add (struct router *r, const char *key, cJSON *ids,
                              cs_error_t *errp)
{
    char path[PATH_MAX + 32];
    struct idem *im;
    char *line;

    if (!(im = calloc (1, sizeof (*im))) || !(im->key = strdup (key))) {
        free (im);
        cJSON_Delete (ids);
        errno = ENOMEM;
        errprintf (errp, "out of memory");
        return NULL;
    }
    im->ts = time_now ();
    im->ids = ids;
    if (!(line = idem_line (im))) {
        idem_free (im);
        errno = ENOMEM;
        errprintf (errp, "out of memory");
        return NULL;
    }
    idem_path (r, path, sizeof (path));
    if (r->idem_fd < 0 || fd_write_all (r->idem_fd, line, strlen (line)) < 0
        || fdatasync (r->idem_fd) < 0) {
        errprintf (errp, "cannot write '%s': %s", path,
                   r->idem_fd < 0 ? "not open" : strerror (errno));
        free (line);
        idem_free (im);
        return NULL;
    }
    free (line);
    im->next = r->idems;
    r->idems = im;
    r->nidem++;
    r->idem_lines++;
    if (r->idem_lines > 2 * IDEM_MAX) {
        cs_error_t error;
        idem_prune (r, im->ts);
        if (idem_rewrite (r, path, &error) < 0)
            log_msg ("%s", error.text);
    }
    return im;
}

/* ---- streams ------------------------------------------------------------- */

static void stream_destroy (struct stream *s)
{
    if (s) {
        mb_writer_close (s->inbox);
        free (s);
    }
}

static void handle_record (struct router *r, struct stream *s,
                           const cJSON *rec, uint64_t seq)
{
    cs_error_t error;
    int rc;

    r->cur_stream = s;
    r->cur_seq = seq;
    r->cur_idx = 0;
    if (s->node < 0)
        rc = rt_trans_swarm_record (s->sw->t, rec, time_mono (), &error);
    else
        rc = rt_trans_record (s->sw->t, s->node, rec, time_mono (), &error);
    r->cur_stream = NULL;
    if (rc < 0)
        log_debug ("swarm '%s' node %d record %llu: %s", s->sw->id, s->node,
                   (unsigned long long)seq, error.text);
    else if (s->node >= 0 && s->lost_seq && seq == s->lost_seq
             && rt_trans_last_seq (s->sw->t, s->node) == seq)
        (void)rt_trans_set_lost (s->sw->t, s->node);  /* logged already */
    s->dirty = true;
    r->dirty = true;
}

static void follow_cb (mb_follower_t *f, mb_reader_t *rd,
                       const struct mb_event *ev, void *arg)
{
    struct stream *s = arg;
    struct router *r = R;

    switch (ev->type) {
    case MB_EV_RECORD:
        handle_record (r, s, ev->rec.json, ev->rec.seq);
        break;
    case MB_EV_CORRUPT:
        log_msg ("'%s' offset %llu: %s", ev->file ? ev->file : s->path,
                 (unsigned long long)ev->offset,
                 ev->reason ? ev->reason : "corrupt line");
        break;
    case MB_EV_GAP:
        log_msg ("'%s': records %llu..%llu are missing", s->path,
                 (unsigned long long)ev->expected,
                 (unsigned long long)ev->rec.seq - 1);
        break;
    default:
        break;
    }
    mb_reader_cursor (rd, &s->cur);
    s->dirty = true;
    r->dirty = true;
}

static struct stream *stream_get (struct router *r, struct swarm *sw,
                                  int node, bool create)
{
    struct stream *s;
    cs_error_t error;
    cJSON *st;
    char name[32];

    if (node < -1 || node >= RT_MAX_NODES)
        return NULL;
    if (node == -1 ? sw->sstream != NULL
                   : (node < sw->nstreams && sw->streams[node]))
        return node == -1 ? sw->sstream : sw->streams[node];
    if (!create)
        return NULL;
    if (node >= sw->nstreams) {
        int want = sw->nstreams ? sw->nstreams : 8;
        struct stream **p;
        while (want <= node)
            want *= 2;
        if (!(p = realloc (sw->streams, want * sizeof (*p))))
            return NULL;
        memset (p + sw->nstreams, 0, (want - sw->nstreams) * sizeof (*p));
        sw->streams = p;
        sw->nstreams = want;
    }
    if (!(s = calloc (1, sizeof (*s))))
        return NULL;
    s->sw = sw;
    s->node = node;
    if (node == -1)
        snprintf (name, sizeof (name), "swarm");
    else
        snprintf (name, sizeof (name), "%d", node);
    if (snprintf (s->path, sizeof (s->path), "%s/outbox/%s.jsonl", sw->dir,
                  name) >= (int)sizeof (s->path)
        || snprintf (s->state_path, sizeof (s->state_path),
                     "%s/cursors/router.outbox-%s.json", sw->dir, name)
               >= (int)sizeof (s->state_path)) {
        free (s);
        return NULL;
    }
    /* durable state */
    if ((st = read_json_file (s->state_path, &error))) {
        const cJSON *tr = cJSON_GetObjectItemCaseSensitive (st, "translator");
        const char *rc;
        if (mb_cursor_from_json (st, &s->cur, &error) < 0)
            memset (&s->cur, 0, sizeof (s->cur));
        if (json_get_str (st, "remote_cursor", &rc, NULL) == 0)
            snprintf (s->rcursor, sizeof (s->rcursor), "%s", rc);
        if (tr && rt_trans_restore (sw->t, node, tr, time_mono (), &error) < 0)
            log_msg ("'%s': %s", s->state_path, error.text);
        cJSON_Delete (st);
    }
    else if (errno != ENOENT)
        log_msg ("%s (starting that stream from its beginning)", error.text);
    for (size_t i = 0; i < r->nsup; i++) {
        if (r->sup[i].node == node && !strcmp (r->sup[i].swarm, sw->id)) {
            s->sup_seq = r->sup[i].seq;
            s->sup_count = r->sup[i].count;
            s->lost_seq = r->sup[i].lost_seq;
        }
    }
    /* a node_lost logged after the state file was written */
    if (node >= 0 && s->lost_seq
        && rt_trans_last_seq (sw->t, node) == s->lost_seq
        && rt_trans_set_lost (sw->t, node) == 0) {
        s->dirty = true;
        r->dirty = true;
    }
    if (node == -1)
        sw->sstream = s;
    else
        sw->streams[node] = s;
    return s;
}

static int stream_follow (struct router *r, struct stream *s)
{
    cs_error_t error;
    bool have = s->cur.seq > 0 || s->cur.segment > 0 || s->cur.offset > 0;

    s->rd = mb_follower_add (r->fol, s->path,
                             have ? MB_START_CURSOR : MB_START_BEGIN,
                             have ? &s->cur : NULL, follow_cb, s, &error);
    if (!s->rd) {
        log_msg ("cannot follow '%s': %s", s->path, error.text);
        return -1;
    }
    log_debug ("following '%s'%s", s->path, have ? " from its cursor" : "");
    return 0;
}

/* ---- swarms ------------------------------------------------------------- */

static void swarm_info (struct swarm *sw, const cJSON *info)
{
    const cJSON *v;
    if (!info)
        return;
    v = cJSON_GetObjectItemCaseSensitive (info, "nodes");
    if (cJSON_IsNumber (v) && v->valuedouble >= 0
        && v->valuedouble < RT_MAX_NODES)
        sw->node_count = (int)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive (info, "state");
    if (cJSON_IsString (v) && (!sw->state || strcmp (sw->state, v->valuestring))) {
        free (sw->state);
        sw->state = strdup (v->valuestring);
    }
    v = cJSON_GetObjectItemCaseSensitive (info, "job_id");
    if (cJSON_IsString (v)
        && (!sw->job_id || strcmp (sw->job_id, v->valuestring))) {
        free (sw->job_id);
        sw->job_id = strdup (v->valuestring);
        rt_trans_set_job (sw->t, sw->job_id);
    }
}

static struct swarm *swarm_add (struct router *r, const char *id)
{
    struct swarm *sw = calloc (1, sizeof (*sw));
    cs_error_t error;

    if (!sw || !(sw->id = strdup (id)))
        goto nomem;
    if (!(sw->t = rt_trans_create (id, emit, r)))
        goto nomem;
    rt_trans_set_debug (sw->t, r->debug);
    if (!r->remote) {
        if (mb_swarm_dir (r->home, id, false, sw->dir, sizeof (sw->dir),
                          &error) < 0) {
            log_debug ("swarm '%s': %s", id, error.text);
            goto error;
        }
    }
    else {
        /* remote: state files live under <home>/router/remote/<id> */
        char d[PATH_MAX + 32];
        snprintf (d, sizeof (d), "%s/remote", r->dir);
        if (mb_secure_dir (d, true, &error) < 0
            || snprintf (sw->dir, sizeof (sw->dir), "%s/%s", d, id)
                   >= (int)sizeof (sw->dir)
            || mb_secure_dir (sw->dir, true, &error) < 0) {
            log_msg ("swarm '%s': %s", id, error.text);
            goto error;
        }
        if (snprintf (d, sizeof (d), "%s/cursors", sw->dir)
            >= (int)sizeof (d)) {
            log_msg ("swarm '%s': path too long", id);
            goto error;
        }
        if (mb_secure_dir (d, true, &error) < 0) {
            log_msg ("%s", error.text);
            goto error;
        }
    }
    sw->next = r->swarms;
    r->swarms = sw;
    log_debug ("swarm '%s' found", id);
    return sw;
nomem:
    log_msg ("out of memory");
error:
    if (sw) {
        rt_trans_destroy (sw->t);
        free (sw->id);
        free (sw);
    }
    return NULL;
}

static void swarm_destroy (struct swarm *sw)
{
    if (sw) {
        for (int k = 0; k < sw->nstreams; k++)
            stream_destroy (sw->streams[k]);
        stream_destroy (sw->sstream);
        free (sw->streams);
        rt_trans_destroy (sw->t);
        free (sw->id);
        free (sw->state);
        free (sw->job_id);
        free (sw);
    }
}

static bool name_is_node (const char *name, int *node)
{
    char *end;
    long v;
    size_t n = strlen (name);
    if (n < 7 || strcmp (name + n - 6, ".jsonl"))
        return false;
    if (!strcmp (name, "swarm.jsonl")) {
        *node = -1;
        return true;
    }
    if (name[0] < '0' || name[0] > '9')
        return false;
    v = strtol (name, &end, 10);
    if (strcmp (end, ".jsonl") || v < 0 || v >= RT_MAX_NODES
        || (name[0] == '0' && end != name + 1))
        return false;
    *node = (int)v;
    return true;
}

static void scan_swarm (struct router *r, struct swarm *sw)
{
    char path[PATH_MAX + 16];
    cs_error_t error;
    struct dirent *de;
    cJSON *info;
    DIR *d;

    snprintf (path, sizeof (path), "%s/swarm.json", sw->dir);
    if ((info = read_json_file (path, &error))) {
        swarm_info (sw, info);
        cJSON_Delete (info);
    }
    snprintf (path, sizeof (path), "%s/outbox", sw->dir);
    if (!(d = opendir (path)))
        return;
    while ((de = readdir (d))) {
        struct stream *s;
        int node;
        if (!name_is_node (de->d_name, &node))
            continue;
        if (stream_get (r, sw, node, false))
            continue;
        if ((s = stream_get (r, sw, node, true)))
            (void)stream_follow (r, s);
    }
    closedir (d);
}

static void scan_swarms (struct router *r)
{
    char path[PATH_MAX + 16];
    struct dirent *de;
    DIR *d;

    snprintf (path, sizeof (path), "%s/swarms", r->home);
    if (!(d = opendir (path)))
        return;
    while ((de = readdir (d))) {
        struct swarm *sw;
        if (de->d_name[0] == '.')
            continue;
        if (!(sw = swarm_find (r, de->d_name))
            && !(sw = swarm_add (r, de->d_name)))
            continue;
        scan_swarm (r, sw);
    }
    closedir (d);
}

static int swarm_nodes (struct swarm *sw)
{
    int n = sw->node_count;
    int m = rt_trans_max_node (sw->t) + 1;
    for (int k = sw->nstreams - 1; k >= 0; k--)
        if (sw->streams[k]) {
            if (k + 1 > m)
                m = k + 1;
            break;
        }
    return n > m ? n : m;
}

/* ---- remote link callbacks --------------------------------------------- */

/* A swarm id from the far side names a local directory: check it. */
static bool swarm_id_ok (const char *id)
{
    size_t n = strlen (id);
    if (n == 0 || n > 64 || id[0] == '.')
        return false;
    return strspn (id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789._-") == n;
}

void router_remote_swarm (struct router *r, const char *swarm_id,
                          const cJSON *info)
{
    struct swarm *sw = swarm_find (r, swarm_id);
    if (!swarm_id_ok (swarm_id))
        return;
    if (!sw && !(sw = swarm_add (r, swarm_id)))
        return;
    swarm_info (sw, info);
}

void router_remote_record (struct router *r, const char *swarm_id, int node,
                           const char *cursor, const cJSON *rec)
{
    struct swarm *sw = swarm_find (r, swarm_id);
    struct stream *s;
    uint64_t seq;

    if (!swarm_id_ok (swarm_id))
        return;
    if (!sw && !(sw = swarm_add (r, swarm_id)))
        return;
    if (!(s = stream_get (r, sw, node, true)))
        return;
    if (cursor)
        snprintf (s->rcursor, sizeof (s->rcursor), "%s", cursor);
    if (json_get_u64 (rec, "seq", &seq, NULL) == 0)
        handle_record (r, s, rec, seq);
    s->dirty = true;
    r->dirty = true;
}

cJSON *router_remote_cursors (struct router *r)
{
    cJSON *o = cJSON_CreateObject ();
    char key[128];
    if (!o)
        return NULL;
    for (struct swarm *sw = r->swarms; sw; sw = sw->next) {
        for (int k = -1; k < sw->nstreams; k++) {
            struct stream *s = k < 0 ? sw->sstream : sw->streams[k];
            if (!s || !s->rcursor[0])
                continue;
            if (k < 0)
                snprintf (key, sizeof (key), "%s/swarm", sw->id);
            else
                snprintf (key, sizeof (key), "%s/%d", sw->id, k);
            json_add_str (o, key, s->rcursor);
        }
    }
    return o;
}

void router_remote_state (struct router *r, const char *state,
                          const char *detail)
{
    log_msg ("ssh link %s%s%s", state, detail ? ": " : "",
             detail ? detail : "");
}

/* Load remote swarms known from earlier runs (their state files). */
static void load_remote_swarms (struct router *r)
{
    char path[PATH_MAX + 16];
    struct dirent *de;
    DIR *d;

    snprintf (path, sizeof (path), "%s/remote", r->dir);
    if (!(d = opendir (path)))
        return;
    while ((de = readdir (d))) {
        struct swarm *sw;
        char cdir[PATH_MAX * 2];
        DIR *cd;
        struct dirent *ce;
        if (de->d_name[0] == '.' || swarm_find (r, de->d_name))
            continue;
        if (!(sw = swarm_add (r, de->d_name)))
            continue;
        snprintf (cdir, sizeof (cdir), "%s/%s/cursors", path, de->d_name);
        if (!(cd = opendir (cdir)))
            continue;
        while ((ce = readdir (cd))) {
            char nm[300];
            int node;
            size_t n = strlen (ce->d_name);
            if (strncmp (ce->d_name, "router.outbox-", 14) || n < 20
                || strcmp (ce->d_name + n - 5, ".json"))
                continue;
            snprintf (nm, sizeof (nm), "%.*s.jsonl", (int)(n - 19),
                      ce->d_name + 14);
            if (name_is_node (nm, &node))
                (void)stream_get (r, sw, node, true);
        }
        closedir (cd);
    }
    closedir (d);
}

/* ---- inbox writes ----------------------------------------------------- */

static int inbox_append (struct router *r, struct swarm *sw, int node,
                         const char *type, const cJSON *payload,
                         inbox_done_f done, void *arg)
{
    char path[PATH_MAX];
    cs_error_t error;
    struct stream *s;
    uint64_t seq;

    if (r->remote)
        return remote_append (r->remote, sw->id, node, type, payload, done,
                              arg);
    if (!(s = stream_get (r, sw, node, true))) {
        done (r, 0, "out of memory", arg);
        return -1;
    }
    if (!s->inbox) {
        if (mb_stream_path (sw->dir, "inbox", node, path, sizeof (path),
                            &error) < 0
            || !(s->inbox = mb_writer_open (path, &r->opt, &error))) {
            done (r, 0, error.text, arg);
            return -1;
        }
    }
    if (mb_writer_append (s->inbox, type, payload, &seq, &error) < 0) {
        done (r, 0, error.text, arg);
        return -1;
    }
    done (r, seq, NULL, arg);
    return 0;
}

struct append_ctx {
    int client;
    char *request_id;
    char *swarm_id;
    int node;
    char *id;                   /* injection / interrupt / approval id */
    const char *what;           /* "inject", "interrupt", ... */
    char *extra;                /* approval_id, decision... */
    char *extra2;
    cJSON *decision;            /* approval: a string or an amendment */
    bool steer;
};

static void append_ctx_free (struct append_ctx *a)
{
    if (a) {
        free (a->request_id);
        free (a->swarm_id);
        free (a->id);
        free (a->extra);
        free (a->extra2);
        cJSON_Delete (a->decision);
        free (a);
    }
}

static struct append_ctx *append_ctx_new (int client, const char *request_id,
                                          const char *swarm_id, int node,
                                          const char *id, const char *what)
{
    struct append_ctx *a = calloc (1, sizeof (*a));
    if (!a)
        return NULL;
    a->client = client;
    a->request_id = request_id ? strdup (request_id) : NULL;
    a->swarm_id = strdup (swarm_id);
    a->node = node;
    a->id = strdup (id);
    a->what = what;
    return a;
}

static void append_done (struct router *r, uint64_t seq, const char *error,
                         void *arg)
{
    struct append_ctx *a = arg;
    cJSON *d;

    if (!seq) {
        char reason[512];
        snprintf (reason, sizeof (reason), "node %d: cannot write its inbox: "
                  "%s", a->node, error ? error : "unknown error");
        reject (r, a->client, a->request_id, RC_E_UNAVAILABLE, reason);
        if (!strcmp (a->what, "inject") && (d = reply_data (a->request_id))) {
            /* what the original clients wait for instead of a delivery */
            json_add_str (d, "swarm_id", a->swarm_id);
            cJSON_AddNumberToObject (d, "node_id", a->node);
            json_add_str (d, "injection_id", a->id);
            json_add_str (d, "code", RC_E_UNAVAILABLE);
            json_add_str (d, "error", reason);
            reply (r, a->client, "inject_failed", d);
        }
        append_ctx_free (a);
        return;
    }
    if ((d = reply_data (a->request_id))) {
        json_add_str (d, "swarm_id", a->swarm_id);
        cJSON_AddNumberToObject (d, "node_id", a->node);
        json_add_u64 (d, "inbox_seq", seq);
        if (!strcmp (a->what, "inject")) {
            json_add_str (d, "injection_id", a->id);
            json_add_str (d, "mode", a->steer ? "steer" : "queue");
            if (a->extra)
                json_add_str (d, "idempotency_key", a->extra);
            reply (r, a->client, "inject_ack", d);
        }
        else if (!strcmp (a->what, "interrupt")) {
            json_add_str (d, "interrupt_id", a->id);
            reply (r, a->client, "interrupt_ack", d);
        }
        else if (!strcmp (a->what, "approval")) {
            json_add_str (d, "approval_id", a->extra);
            json_add_str (d, "call_id", a->extra);
            json_add_item (d, "decision", a->decision);
            a->decision = NULL;
            reply (r, a->client, "approval_ack", d);
        }
        else {
            json_add_str (d, "shutdown_id", a->id);
            reply (r, a->client, "shutdown_ack", d);
        }
    }
    append_ctx_free (a);
}

static void new_id (struct router *r, const char *prefix, int node, char *buf,
                    size_t len)
{
    snprintf (buf, len, "%s-%llx-%x-%llu-n%d", prefix,
              (unsigned long long)(time_now () * 1000), (unsigned)getpid (),
              (unsigned long long)++r->inj_counter, node);
}

/* ---- commands ---------------------------------------------------------- */

static int check_nodes (struct router *r, struct client *c,
                        struct rc_command *cmd, struct swarm *sw,
                        int *count)
{
    int n = swarm_nodes (sw);
    if (cmd->nodes.all) {
        if (n == 0) {
            reject (r, c->id, cmd->request_id, RC_E_UNKNOWN_NODE,
                    "the swarm has no nodes yet");
            return -1;
        }
        *count = n;
        return 0;
    }
    for (size_t i = 0; i < cmd->nodes.count; i++) {
        if (cmd->nodes.list[i] >= n) {
            char reason[128];
            snprintf (reason, sizeof (reason), "node %d does not exist (the "
                      "swarm has %d nodes)", cmd->nodes.list[i], n);
            reject (r, c->id, cmd->request_id, RC_E_UNKNOWN_NODE, reason);
            return -1;
        }
    }
    *count = (int)cmd->nodes.count;
    return 0;
}

static int node_at (struct rc_command *cmd, int i)
{
    return cmd->nodes.all ? i : cmd->nodes.list[i];
}

static struct swarm *need_swarm (struct router *r, struct client *c,
                                 struct rc_command *cmd)
{
    struct swarm *sw = swarm_find (r, cmd->swarm_id);
    if (!sw && !r->remote) {
        scan_swarms (r);
        sw = swarm_find (r, cmd->swarm_id);
    }
    if (!sw) {
        char reason[128];
        snprintf (reason, sizeof (reason), "no swarm \"%s\"", cmd->swarm_id);
        reject (r, c->id, cmd->request_id, RC_E_UNKNOWN_SWARM, reason);
    }
    return sw;
}

static void cmd_inject (struct router *r, struct client *c,
                        struct rc_command *cmd)
{
    struct swarm *sw;
    cJSON *ids;
    const cJSON *e;
    char key[256];
    int count;

    if (!(sw = need_swarm (r, c, cmd)) || check_nodes (r, c, cmd, sw, &count) < 0)
        return;
    if (cmd->idempotency_key) {
        struct idem *im;
        snprintf (key, sizeof (key), "%s/%s", sw->id, cmd->idempotency_key);
        if ((im = idem_find (r, key))) {
            cJSON *d = reply_data (cmd->request_id);
            if (d) {
                json_add_str (d, "code", RC_E_DUPLICATE);
                json_add_str (d, "reason", "this idempotency_key was used "
                              "already; nothing was sent again");
                json_add_item (d, "injections", cJSON_Duplicate (im->ids, 1));
            }
            reply (r, c->id, "command_rejected", d);
            return;
        }
    }
    /* the injection ids first: a key is recorded with them before any
     * inbox record is written */
    if (!(ids = cJSON_CreateArray ())) {
        reject (r, c->id, cmd->request_id, RC_E_INTERNAL, "out of memory");
        return;
    }
    for (int i = 0; i < count; i++) {
        int node = node_at (cmd, i);
        char id[128];
        cJSON *o = cJSON_CreateObject ();
        new_id (r, "inj", node, id, sizeof (id));
        if (!o || !cJSON_AddNumberToObject (o, "node_id", node)
            || json_add_str (o, "injection_id", id) < 0
            || !cJSON_AddItemToArray (ids, o)) {
            cJSON_Delete (o);
            cJSON_Delete (ids);
            reject (r, c->id, cmd->request_id, RC_E_INTERNAL,
                    "out of memory");
            return;
        }
    }
    if (cmd->idempotency_key) {
        cs_error_t error;
        cJSON *cpy = cJSON_Duplicate (ids, 1);
        if (!cpy || !idem_add (r, key, cpy, &error)) {
            char reason[600];
            if (!cpy)
                snprintf (reason, sizeof (reason), "out of memory");
            else
                snprintf (reason, sizeof (reason), "cannot record the "
                          "idempotency key: %s", error.text);
            log_msg ("%s", reason);
            reject (r, c->id, cmd->request_id, RC_E_UNAVAILABLE, reason);
            cJSON_Delete (ids);
            return;
        }
    }
    cJSON_ArrayForEach (e, ids) {
        const char *id = NULL;
        int64_t node = 0;
        struct append_ctx *a;
        cJSON *p = cJSON_CreateObject ();

        (void)json_get_str (e, "injection_id", &id, NULL);
        (void)json_get_i64 (e, "node_id", &node, NULL);
        if (!p || !id || !(a = append_ctx_new (c->id, cmd->request_id,
                                               sw->id, (int)node, id,
                                               "inject"))) {
            cJSON_Delete (p);
            reject (r, c->id, cmd->request_id, RC_E_INTERNAL,
                    "out of memory");
            break;
        }
        a->steer = cmd->steer;
        if (cmd->idempotency_key)
            a->extra = strdup (cmd->idempotency_key);
        json_add_str (p, "id", id);
        json_add_str (p, "content", cmd->content);
        json_add_str (p, "mode", cmd->steer ? "steer" : "queue");
        if (cmd->request_id)
            json_add_str (p, "request_id", cmd->request_id);
        inbox_append (r, sw, (int)node, "user", p, append_done, a);
        cJSON_Delete (p);
    }
    cJSON_Delete (ids);
}

static void cmd_interrupt (struct router *r, struct client *c,
                           struct rc_command *cmd)
{
    struct swarm *sw;
    int count;

    if (!(sw = need_swarm (r, c, cmd)) || check_nodes (r, c, cmd, sw, &count) < 0)
        return;
    for (int i = 0; i < count; i++) {
        int node = node_at (cmd, i);
        char id[128];
        struct append_ctx *a;
        cJSON *p = cJSON_CreateObject ();
        new_id (r, "int", node, id, sizeof (id));
        if (!p || !(a = append_ctx_new (c->id, cmd->request_id, sw->id, node,
                                        id, "interrupt"))) {
            cJSON_Delete (p);
            reject (r, c->id, cmd->request_id, RC_E_INTERNAL, "out of memory");
            return;
        }
        json_add_str (p, "id", id);
        if (cmd->request_id)
            json_add_str (p, "request_id", cmd->request_id);
        inbox_append (r, sw, node, "interrupt", p, append_done, a);
        cJSON_Delete (p);
    }
}

/* Does approval ap (its exec_approval_required data) offer an execpolicy
 * amendment?
 */
static bool approval_offers_amendment (const cJSON *ap)
{
    const cJSON *e;
    const char *kind = NULL;
    if (json_get_str (ap, "kind", &kind, NULL) == 0
        && strcmp (kind, "command") != 0)
        return false;
    cJSON_ArrayForEach (e, cJSON_GetObjectItemCaseSensitive (
                               ap, "available_decisions")) {
        if (cJSON_IsObject (cJSON_GetObjectItemCaseSensitive (
                e, "acceptWithExecpolicyAmendment")))
            return true;
    }
    return false;
}

static void cmd_approve (struct router *r, struct client *c,
                         struct rc_command *cmd)
{
    struct swarm *sw = NULL;
    const cJSON *ap = NULL;
    int node = -1;
    char id[128];
    struct append_ctx *a;
    cJSON *p = NULL, *decision;

    for (struct swarm *s = r->swarms; s && !ap; s = s->next) {
        if (cmd->swarm_id && strcmp (cmd->swarm_id, s->id))
            continue;
        if ((ap = rt_trans_approval (s->t, cmd->approval_id, &node)))
            sw = s;
    }
    if (!ap) {
        char reason[256];
        snprintf (reason, sizeof (reason), "no pending approval \"%.128s\"",
                  cmd->approval_id);
        reject (r, c->id, cmd->request_id, RC_E_UNKNOWN_APPROVAL, reason);
        return;
    }
    if (cmd->amendment && !approval_offers_amendment (ap)) {
        reject_member (r, c->id, cmd->request_id, RC_E_UNSUPPORTED_DECISION,
                       "payload.decision", "this approval offers no "
                       "execpolicy amendment: answer accept, "
                       "acceptForSession, decline or cancel");
        return;
    }
    /* the decision in codex's v2 form: a name or an amendment object */
    if (cmd->amendment) {
        cJSON *in;
        if ((decision = cJSON_CreateObject ())
            && (!(in = cJSON_AddObjectToObject (
                      decision, "acceptWithExecpolicyAmendment"))
                || json_add_item (in, "execpolicy_amendment",
                                  cJSON_Duplicate (cmd->amendment, true))
                       < 0)) {
            cJSON_Delete (decision);
            decision = NULL;
        }
    }
    else
        decision = cJSON_CreateString (cmd->decision);
    new_id (r, "apr", node, id, sizeof (id));
    if (!decision || !(p = cJSON_CreateObject ())
        || !(a = append_ctx_new (c->id, cmd->request_id, sw->id, node, id,
                                 "approval"))) {
        cJSON_Delete (p);
        cJSON_Delete (decision);
        reject (r, c->id, cmd->request_id, RC_E_INTERNAL, "out of memory");
        return;
    }
    a->extra = strdup (cmd->approval_id);
    a->decision = cJSON_Duplicate (decision, true);
    json_add_str (p, "id", id);
    json_add_str (p, "approval_id", cmd->approval_id);
    json_add_item (p, "decision", decision);
    if (cmd->request_id)
        json_add_str (p, "request_id", cmd->request_id);
    inbox_append (r, sw, node, "approval", p, append_done, a);
    cJSON_Delete (p);
}

static const char *swarm_status_str (struct swarm *sw)
{
    if (sw->terminating)
        return "terminating";
    return sw->state ? sw->state : "unknown";
}

/* The original's status values: "terminating" once asked to, "terminated"
 * when swarm.json says the swarm is over, else "running" (submitted,
 * pending, migrating and running swarms all take injections).
 */
static const char *swarm_status_v1 (struct swarm *sw)
{
    static const char *const over[] = { "ended", "cancelled", "failed",
                                        "stopped", "terminated", NULL };
    if (sw->terminating)
        return "terminating";
    for (const char *const *p = over; sw->state && *p; p++)
        if (!strcmp (sw->state, *p))
            return "terminated";
    return "running";
}

static cJSON *swarm_summary (struct swarm *sw)
{
    cJSON *o = cJSON_CreateObject ();
    if (!o)
        return NULL;
    if (sw->job_id)
        json_add_str (o, "job_id", sw->job_id);
    else
        cJSON_AddNullToObject (o, "job_id");
    cJSON_AddNumberToObject (o, "node_count", swarm_nodes (sw));
    json_add_str (o, "status", swarm_status_v1 (sw));
    json_add_str (o, "state", swarm_status_str (sw));
    return o;
}

static void cmd_swarm_list (struct router *r, struct client *c,
                            struct rc_command *cmd)
{
    cJSON *d = reply_data (cmd->request_id);
    cJSON *swarms = cJSON_CreateObject ();
    if (!r->remote)
        scan_swarms (r);
    for (struct swarm *sw = r->swarms; sw && swarms; sw = sw->next)
        json_add_item (swarms, sw->id, swarm_summary (sw));
    json_add_item (d, "swarms", swarms);
    reply (r, c->id, "swarm_list", d);
}

static void cmd_swarm_status (struct router *r, struct client *c,
                              struct rc_command *cmd)
{
    struct swarm *sw = need_swarm (r, c, cmd);
    cJSON *d, *sum;
    if (!sw)
        return;
    if (!(d = reply_data (cmd->request_id)))
        return;
    json_add_str (d, "swarm_id", sw->id);
    if ((sum = swarm_summary (sw))) {
        cJSON *m;
        while ((m = sum->child)) {
            cJSON_DetachItemViaPointer (sum, m);
            cJSON_AddItemToObject (d, m->string, m);
        }
        cJSON_Delete (sum);
    }
    json_add_item (d, "nodes", rt_trans_nodes (sw->t));
    reply (r, c->id, "swarm_status", d);
}

static void cmd_approvals_list (struct router *r, struct client *c,
                                struct rc_command *cmd)
{
    cJSON *d = reply_data (cmd->request_id);
    cJSON *all = cJSON_CreateArray ();
    for (struct swarm *sw = r->swarms; sw && all; sw = sw->next) {
        cJSON *a, *e;
        if (cmd->swarm_id && strcmp (cmd->swarm_id, sw->id))
            continue;
        if (!(a = rt_trans_approvals (sw->t)))
            continue;
        while ((e = a->child)) {
            cJSON_DetachItemViaPointer (a, e);
            cJSON_AddItemToArray (all, e);
        }
        cJSON_Delete (a);
    }
    json_add_item (d, "approvals", all);
    reply (r, c->id, "approvals_list", d);
}

static void cmd_terminate (struct router *r, struct client *c,
                           struct rc_command *cmd)
{
    struct swarm *sw = need_swarm (r, c, cmd);
    int n;
    cJSON *d;

    if (!sw)
        return;
    n = swarm_nodes (sw);
    sw->terminating = true;
    if ((d = reply_data (cmd->request_id))) {
        json_add_str (d, "swarm_id", sw->id);
        json_add_str (d, "status", "terminating");
        cJSON_AddNumberToObject (d, "node_count", n);
        reply (r, c->id, "swarm_status", d);
    }
    for (int k = 0; k < n; k++) {
        char id[128];
        struct append_ctx *a;
        cJSON *p = cJSON_CreateObject ();
        new_id (r, "stop", k, id, sizeof (id));
        if (!p || !(a = append_ctx_new (c->id, cmd->request_id, sw->id, k, id,
                                        "shutdown"))) {
            cJSON_Delete (p);
            return;
        }
        json_add_str (p, "id", id);
        inbox_append (r, sw, k, "shutdown", p, append_done, a);
        cJSON_Delete (p);
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
    return ra->c->dead ? -1 : 0;
}

/* Start (or restart) a client's stream after since (-1: live from now). */
static void client_start (struct router *r, struct client *c, bool has_since,
                          uint64_t since)
{
    uint64_t now_seq = eventlog_seq (r->log);
    cs_error_t error;

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

static void cmd_hello (struct router *r, struct client *c,
                       struct rc_command *cmd)
{
    static const char *const caps[] = {
        "hello", "inject", "interrupt", "approve_execution", "swarm_list",
        "swarm_status", "approvals_list", "subscribe", "swarm_terminate",
        NULL
    };
    cJSON *d = reply_data (cmd->request_id);
    cJSON *a = cJSON_CreateArray ();
    cJSON *f = cJSON_CreateArray ();
    for (const char *const *p = caps; *p && a; p++)
        cJSON_AddItemToArray (a, cJSON_CreateString (*p));
    if (f) {
        cJSON_AddItemToArray (f, cJSON_CreateString ("seq"));
        cJSON_AddItemToArray (f, cJSON_CreateString ("since"));
        cJSON_AddItemToArray (f, cJSON_CreateString ("node_ranges"));
        cJSON_AddItemToArray (f, cJSON_CreateString ("idempotency_key"));
        cJSON_AddItemToArray (f, cJSON_CreateString ("persistent_approvals"));
    }
    json_add_str (d, "protocol", RC_PROTOCOL);
    json_add_str (d, "server", "codeswarm-router");
    json_add_str (d, "version", PACKAGE_VERSION);
    json_add_item (d, "capabilities", a);
    json_add_item (d, "features", f);
    json_add_u64 (d, "seq", eventlog_seq (r->log));
    json_add_str (d, "transport", r->remote ? "ssh" : "local");
    reply (r, c->id, "hello", d);
    if (cmd->subscribe && !c->started)
        client_start (r, c, cmd->has_since, cmd->since);
}

static void cmd_subscribe (struct router *r, struct client *c,
                           struct rc_command *cmd)
{
    cJSON *d = reply_data (cmd->request_id);
    if (d) {
        if (cmd->has_since)
            json_add_u64 (d, "since", cmd->since);
        else
            cJSON_AddNullToObject (d, "since");
        json_add_u64 (d, "seq", eventlog_seq (r->log));
    }
    reply (r, c->id, "subscribed", d);
    client_start (r, c, cmd->has_since, cmd->since);
}

static void client_command (struct router *r, struct client *c,
                            const char *line, size_t len)
{
    struct rc_command cmd;
    struct rc_reject rej;

    if (len == 0)
        return;
    if (rc_parse (line, len, &cmd, &rej) < 0) {
        reject_member (r, c->id, cmd.request_id, rej.code, rej.member,
                       rej.reason);
        rc_release (&cmd);
        return;
    }
    /* the first command starts the stream (subscribe and hello choose) */
    if (!c->started && cmd.cmd != RC_SUBSCRIBE && cmd.cmd != RC_HELLO)
        client_start (r, c, false, 0);
    switch (cmd.cmd) {
    case RC_HELLO: cmd_hello (r, c, &cmd); break;
    case RC_INJECT: cmd_inject (r, c, &cmd); break;
    case RC_INTERRUPT: cmd_interrupt (r, c, &cmd); break;
    case RC_APPROVE: cmd_approve (r, c, &cmd); break;
    case RC_SWARM_LIST: cmd_swarm_list (r, c, &cmd); break;
    case RC_SWARM_STATUS: cmd_swarm_status (r, c, &cmd); break;
    case RC_APPROVALS_LIST: cmd_approvals_list (r, c, &cmd); break;
    case RC_SUBSCRIBE: cmd_subscribe (r, c, &cmd); break;
    case RC_SWARM_TERMINATE: cmd_terminate (r, c, &cmd); break;
    }
    rc_release (&cmd);
}

/* ---- clients ------------------------------------------------------------ */

static struct client *client_add (struct router *r, int fd_in, int fd_out,
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
    (void)fd_set_nonblock (fd_in, true);
    (void)fd_set_nonblock (fd_out, true);
    c->next = r->clients;
    r->clients = c;
    log_debug ("client %d connected", c->id);
    return c;
}

static void client_destroy (struct client *c)
{
    if (!c)
        return;
    if (!c->stdio) {
        close (c->fd_in);
        if (c->fd_out != c->fd_in)
            close (c->fd_out);
    }
    lineio_destroy (c->in);
    outbuf_destroy (c->out);
    free (c);
}

static void client_read (struct router *r, struct client *c)
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
            reject (r, c->id, NULL, RC_E_TOO_LONG, reason);
            continue;
        }
        client_command (r, c, line, len);
    }
    if (n == 0 || n < 0) {
        if (lineio_rest (c->in, &line, &len) == 1)
            client_command (r, c, line, len);
        if (c->stdio && n == 0) {
            /* stdin closed: a stdio router's session is over once its
             * output is written */
            c->fd_in = -1;
            if (!outbuf_pending (c->out))
                c->dead = true;
            r->quit = r->listen_fd < 0;
            return;
        }
        c->dead = true;
    }
}

static void reap_clients (struct router *r)
{
    struct client **pp = &r->clients;
    while (*pp) {
        struct client *c = *pp;
        if (c->dead) {
            *pp = c->next;
            log_debug ("client %d gone", c->id);
            client_destroy (c);
        }
        else
            pp = &c->next;
    }
}

static int listen_socket (struct router *r, cs_error_t *errp)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd;

    if (router_socket_path (r->home, r->sock_path, sizeof (r->sock_path), true,
                            errp) < 0)
        return -1;
    /* a live router there? */
    if ((fd = router_connect (r->sock_path, NULL)) >= 0) {
        close (fd);
        errno = EADDRINUSE;
        return errprintf (errp, "a router already listens on '%s'",
                          r->sock_path);
    }
    (void)unlink (r->sock_path);
    strcpy (sun.sun_path, r->sock_path);
    if ((fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0))
        < 0)
        return errprintf (errp, "socket: %s", strerror (errno));
    if (bind (fd, (struct sockaddr *)&sun, sizeof (sun)) < 0
        || chmod (r->sock_path, 0600) < 0 || listen (fd, 64) < 0) {
        int saved = errno;
        close (fd);
        errno = saved;
        return errprintf (errp, "cannot listen on '%s': %s", r->sock_path,
                          strerror (errno));
    }
    r->listen_fd = fd;
    log_debug ("listening on '%s'", r->sock_path);
    return 0;
}

static void accept_client (struct router *r)
{
    struct ucred cred;
    socklen_t len = sizeof (cred);
    int fd = accept4 (r->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0)
        return;
    if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0
        || cred.uid != geteuid ()) {
        log_msg ("refusing a connection from uid %d",
                 len == sizeof (cred) ? (int)cred.uid : -1);
        close (fd);
        return;
    }
    if (!client_add (r, fd, fd, false))
        close (fd);
}

/* ---- main loop ------------------------------------------------------------ */

static void usage (FILE *f)
{
    fprintf (f,
"usage: codeswarm-router [OPTIONS]\n"
"Follow the swarms' outboxes, translate, and serve router clients.\n"
"\n"
"  -s, --socket          listen on the per-user UNIX socket\n"
"      --stdio           also serve a client on stdin/stdout (the default\n"
"                        without --socket)\n"
"  -H, --home DIR        codeswarm home (default $CODESWARM_HOME, ~/.codeswarm)\n"
"  -c, --config FILE     codeswarm.yaml\n"
"      --ssh [USER@]HOST follow the swarms on HOST through one ssh session\n"
"  -o, --ssh-opt OPT     an ssh option (repeatable), e.g. -o -p2222\n"
"      --remote-home DIR codeswarm home on the ssh host\n"
"      --remote-command PATH  codeswarm-mailbox on the ssh host\n"
"      --node-lost-after SECS  heartbeat silence before node_lost\n"
"      --debug           pass untranslated messages through as debug events\n"
"  -v, --verbose         more log output (repeatable)\n"
"  -h, --help            this text\n");
}

static double next_deadline (struct router *r)
{
    double next = r->next_scan;
    if (r->dirty && r->next_flush < next)
        next = r->next_flush;
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
        int timeout, fto;
        double now = time_mono ();

        pfd[n].fd = r->sig_fd;
        pfd[n].events = POLLIN;
        nsig = n++;
        if (r->fol && mb_follower_fd (r->fol) >= 0) {
            pfd[n].fd = mb_follower_fd (r->fol);
            pfd[n].events = POLLIN;
            nfol = n++;
        }
        if (r->listen_fd >= 0) {
            pfd[n].fd = r->listen_fd;
            pfd[n].events = POLLIN;
            nlisten = n++;
        }
        if (r->remote) {
            nrem = n;
            nremc = remote_pollfds (r->remote, &pfd[n], 3);
            n += nremc;
        }
        for (struct client *c = r->clients; c && n < MAX_POLLFDS - 1;
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
        timeout = (int)((next_deadline (r) - now) * 1000);
        if (timeout < 0)
            timeout = 0;
        if (r->fol && (fto = mb_follower_timeout (r->fol)) >= 0
            && fto < timeout)
            timeout = fto;
        if (r->remote && (fto = remote_timeout (r->remote)) >= 0
            && fto < timeout)
            timeout = fto;
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
        if (r->fol) {
            if (mb_follower_process (r->fol, &error) < 0)
                log_msg ("follower: %s", error.text);
        }
        if (r->remote) {
            remote_handle (r->remote, &pfd[nrem], nremc);
            remote_tick (r->remote);
        }
        if (nlisten >= 0 && pfd[nlisten].revents)
            accept_client (r);
        for (int i = 0; i < n; i++) {
            struct client *c = pc[i];
            if (i == nsig || i == nfol || i == nlisten
                || (nrem >= 0 && i >= nrem && i < nrem + nremc))
                continue;
            if (!c || c->dead || !pfd[i].revents)
                continue;
            if (pfd[i].events & POLLIN)
                client_read (r, c);
            else if (outbuf_flush (c->out, c->fd_out) < 0)
                c->dead = true;
        }
        /* write what was queued this round right away */
        for (struct client *c = r->clients; c; c = c->next) {
            if (!c->dead && outbuf_pending (c->out)
                && outbuf_flush (c->out, c->fd_out) < 0
                && errno != EAGAIN)
                c->dead = true;
            if (c->stdio && c->fd_in < 0 && !outbuf_pending (c->out))
                c->dead = true;
        }
        reap_clients (r);
        now = time_mono ();
        for (struct swarm *sw = r->swarms; sw; sw = sw->next) {
            r->cur_stream = NULL;
            r->cur_idx = 0;
            if (rt_trans_check_lost (sw->t, now, r->lost_after) > 0) {
                r->dirty = true;
                r->next_flush = now;    /* the lost flag: durable now */
            }
        }
        if (now >= r->next_scan) {
            if (!r->remote)
                scan_swarms (r);
            r->next_scan = now + SCAN_INTERVAL;
        }
        if (r->dirty && now >= r->next_flush) {
            router_flush (r);
            r->next_flush = now + FLUSH_INTERVAL;
        }
        if (!r->use_stdio && r->listen_fd < 0 && !r->clients)
            r->quit = true;
    }
    free (pfd);
    free (pc);
    r->dirty = true;
    router_flush (r);
    return 0;
}

static int setup_signals (struct router *r)
{
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGHUP);
    if (sigprocmask (SIG_BLOCK, &mask, NULL) < 0)
        return -1;
    signal (SIGPIPE, SIG_IGN);
    r->sig_fd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    return r->sig_fd < 0 ? -1 : 0;
}

static enum mb_fsync fsync_mode (const char *s)
{
    if (s && !strcmp (s, "always"))
        return MB_FSYNC_ALWAYS;
    if (s && !strcmp (s, "never"))
        return MB_FSYNC_NEVER;
    return MB_FSYNC_INTERVAL;
}

int main (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", no_argument, NULL, 's' },
        { "stdio", no_argument, NULL, 'S' },
        { "home", required_argument, NULL, 'H' },
        { "config", required_argument, NULL, 'c' },
        { "ssh", required_argument, NULL, 'R' },
        { "ssh-opt", required_argument, NULL, 'o' },
        { "remote-home", required_argument, NULL, 'M' },
        { "remote-command", required_argument, NULL, 'C' },
        { "node-lost-after", required_argument, NULL, 'L' },
        { "debug", no_argument, NULL, 'D' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct router router = { .listen_fd = -1, .sig_fd = -1, .idem_fd = -1 };
    struct router *r = &router;
    struct remote_opts ro = { 0 };
    char **ssh_opts;
    int nssh = 0;
    const char *config = NULL, *home = NULL, *lost = NULL;
    bool want_socket = false, want_stdio = false;
    char path[PATH_MAX + 32];
    cs_error_t error;
    int c, rc = 1;

    log_init ("codeswarm-router");
    R = r;
    if (!(ssh_opts = calloc ((size_t)argc + 1, sizeof (char *))))
        log_msg_exit ("out of memory");
    while ((c = getopt_long (argc, argv, "sH:c:o:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 's': want_socket = true; break;
        case 'S': want_stdio = true; break;
        case 'H': home = optarg; break;
        case 'c': config = optarg; break;
        case 'R': ro.host = optarg; break;
        case 'o': ssh_opts[nssh++] = optarg; break;
        case 'M': ro.remote_home = optarg; break;
        case 'C': ro.remote_cmd = optarg; break;
        case 'L': lost = optarg; break;
        case 'D': r->debug = true; break;
        case 'v': log_set_verbose (log_verbose () + 1); break;
        case 'h': usage (stdout); return 0;
        default: usage (stderr); return 1;
        }
    }
    if (optind < argc) {
        usage (stderr);
        return 1;
    }
    ro.ssh_opts = ssh_opts;
    r->use_stdio = want_stdio || !want_socket;

    if (home) {
        if (setenv ("CODESWARM_HOME", home, 1) < 0)
            log_err_exit ("setenv");
    }
    if (config_load (&r->cfg, config, &error) < 0)
        log_msg_exit ("%s", error.text);
    if (!ro.host && r->cfg.login_host && getenv ("CODESWARM_ROUTER_SSH"))
        ro.host = r->cfg.login_host;
    r->lost_after = r->cfg.node_lost_after > 0 ? r->cfg.node_lost_after
                                               : 3 * r->cfg.heartbeat;
    if (lost && parse_duration (lost, &r->lost_after) < 0)
        log_msg_exit ("--node-lost-after: '%s' is not a duration", lost);
    if (r->lost_after <= 0)
        r->lost_after = 45;
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
    if (setup_signals (r) < 0)
        log_err_exit ("signals");
    if (load_suppress (r) < 0 || idem_load (r) < 0)
        goto done;

    if (ro.host) {
        if (!(r->remote = remote_create (r, &ro, &error))) {
            log_msg ("%s", error.text);
            goto done;
        }
        load_remote_swarms (r);
    }
    else {
        if (!(r->fol = mb_follower_create (&r->opt, &error))) {
            log_msg ("%s", error.text);
            goto done;
        }
        scan_swarms (r);
    }
    if (want_socket && listen_socket (r, &error) < 0) {
        log_msg ("%s", error.text);
        goto done;
    }
    if (r->use_stdio && !client_add (r, STDIN_FILENO, STDOUT_FILENO, true)) {
        log_msg ("out of memory");
        goto done;
    }
    r->next_scan = time_mono () + SCAN_INTERVAL;
    if (run (r) == 0)
        rc = 0;
done:
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
    remote_destroy (r->remote);
    mb_follower_destroy (r->fol);
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
    free (ssh_opts);
    return rc;
}
