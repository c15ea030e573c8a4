/* streams.c - the followed outbox streams and the events they yield
 *
 * A stream is one outbox file of a swarm (a node's, or the swarm stream)
 * with its state file.  Local mode follows it with the mailbox follower;
 * remote mode gets its records over the ssh link (remote-link.c).  Each
 * record goes through the swarm's translator, whose events router_emit()
 * logs and broadcasts, skipping those a restart already logged.  An event
 * the log cannot take (a full disk) is held, with every one after it, and
 * logged in order once it can; until then the state files, which would
 * put the records behind those events past a restart, are not written.
 * Once hold_max events are held the router reads no further record
 * (back-pressure: the cursors stay where they are) until the log takes
 * them; then a router_recovered event says what happened.
 * While the router reads its streams (r->batching) the events are queued
 * and logged together when the read is done (router_flush: one write to
 * the log, then to each client), at the latest every BATCH_EVENTS events
 * (or hold_max, when fewer) or BATCH_BYTES bytes; outside a read each
 * event is flushed at once.  Nothing reaches a client before the log has
 * it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "router/router-private.h"

struct held_event {
    struct held_event *next;
    char *name;
    cJSON *data;
    bool has_src;
    struct ev_src src;
    char *swarm;                /* src.swarm */
};

static void held_free (struct held_event *h)
{
    if (h) {
        free (h->name);
        free (h->swarm);
        cJSON_Delete (h->data);
        free (h);
    }
}

/* Keep the event (and data, whatever happens) for router_emit_held(). */
static void hold (struct router *r, const char *name, cJSON *data,
                  const struct ev_src *srcp)
{
    struct held_event *h = calloc (1, sizeof (*h));

    if (!h || !(h->name = strdup (name))
        || (srcp && !(h->swarm = strdup (srcp->swarm)))) {
        log_msg ("out of memory: event '%s' lost", name);
        cJSON_Delete (data);
        held_free (h);
        return;
    }
    h->data = data;
    if (srcp) {
        h->has_src = true;
        h->src = *srcp;
        h->src.swarm = h->swarm;
    }
    if (!r->held)
        r->held_tail = &r->held;
    *r->held_tail = h;
    r->held_tail = &h->next;
    r->dirty = true;
    if (r->held_total++ == 0)
        r->held_since = time_mono ();
    if (++r->nheld >= r->hold_max && !r->paused) {
        r->paused = true;
        log_msg ("%zu events held: reading no more records until the event "
                 "log can be written", r->nheld);
    }
}

bool router_reading (struct router *r)
{
    return !r->paused;
}

void router_held_free (struct router *r)
{
    while (r->held) {
        struct held_event *h = r->held;
        r->held = h->next;
        held_free (h);
    }
    r->nheld = 0;
}

/* The log took every held event: say what happened, as an event. */
static void recovered (struct router *r)
{
    cJSON *d = cJSON_CreateObject ();
    cs_error_t error;
    uint64_t seq;

    log_msg ("the event log is writable again: %zu held events logged%s",
             r->held_total, r->paused ? ", reading records again" : "");
    if (d) {
        json_add_str (d, "reason", "event_log_unwritable");
        json_add_str (d, "error", r->held_error.text);
        json_add_u64 (d, "held", r->held_total);
        json_add_u64 (d, "hold_max", r->hold_max);
        json_add_bool (d, "paused", r->paused);
        json_add_double (d, "seconds", time_mono () - r->held_since);
    }
    if (r->paused)      /* the silence of the pause counts for no node */
        r->lost_grace_until = time_mono () + r->lost_after;
    r->paused = false;
    r->held_total = 0;
    if (!d)
        return;
    if (eventlog_append (r->log, "router_recovered", d, NULL, &seq, &r->env,
                         &error) < 0) {
        hold (r, "router_recovered", d, NULL);   /* said again later */
        return;
    }
    cJSON_Delete (d);
    clients_broadcast (r, seq, r->env.data, r->env.len);
}

bool router_emit_held (struct router *r)
{
    cs_error_t error;
    uint64_t seq;
    size_t n = 0;

    if (r->held)
        router_flush (r);   /* (nothing is queued while events are held) */
    while (r->held) {
        struct held_event *h = r->held;
        if (eventlog_append (r->log, h->name, h->data,
                             h->has_src ? &h->src : NULL, &seq, &r->env,
                             &error) < 0)
            return false;
        clients_broadcast (r, seq, r->env.data, r->env.len);
        r->held = h->next;
        held_free (h);
        r->nheld--;
        n++;
    }
    if (n > 0)
        recovered (r);
    return r->held == NULL;
}

/* A queued event the log did not take: held, in order. */
static void unlogged (const char *name, const char *data, size_t len,
                      const struct ev_src *src, void *arg)
{
    struct router *r = arg;
    cJSON *d = cJSON_ParseWithLength (data, len);

    if (d)
        hold (r, name, d, src);
    else
        log_msg ("event '%s' lost: its data is not JSON", name);
}

void router_flush (struct router *r)
{
    struct eventlog_out out;
    cs_error_t error;

    if (eventlog_queued (r->log, NULL) == 0)
        return;
    if (eventlog_flush (r->log, &out, unlogged, r, &error) < 0) {
        log_msg ("cannot log events: %s (holding the events until the log "
                 "can be written)", error.text);
        r->held_error = error;
    }
    clients_broadcast_batch (r, &out);
}

/* Flush unless batching, or when the queue is big enough. */
static void flush_maybe (struct router *r)
{
    size_t bytes, n = eventlog_queued (r->log, &bytes);

    if (!r->batching || n >= BATCH_EVENTS || n >= r->hold_max
        || bytes >= BATCH_BYTES)
        router_flush (r);
}

/* Where the event being emitted comes from (*srcp: NULL when from no
 * record); false when a restart logged it already.
 */
static bool emit_source (struct router *r, const char *name,
                         const cJSON *data, struct ev_src *src,
                         struct ev_src **srcp)
{
    struct stream *s = r->cur_stream;
    int idx = r->cur_idx++;

    *srcp = NULL;
    if (s) {
        if (r->cur_seq < s->sup_seq
            || (r->cur_seq == s->sup_seq && idx < s->sup_count))
            return false;       /* logged before the restart */
        src->swarm = s->sw->id;
        src->node = s->node;
        src->seq = r->cur_seq;
        src->idx = idx;
        *srcp = src;
    }
    else if (data && !strcmp (name, "node_lost")) {
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
            src->swarm = sw->id;
            src->node = (int)node;
            src->seq = rt_trans_last_seq (sw->t, (int)node);
            src->idx = -1;
            *srcp = src;
        }
    }
    return true;
}

void router_emit (const char *name, cJSON *data, void *arg)
{
    struct router *r = arg;
    struct ev_src src, *srcp;
    cs_error_t error;
    char *d;

    if (!emit_source (r, name, data, &src, &srcp)) {
        cJSON_Delete (data);
        return;
    }
    /* behind held events: after them, never before */
    if (r->held && !router_emit_held (r)) {
        hold (r, name, data, srcp);
        return;
    }
    if (!(d = json_print (data))
        || eventlog_queue_text (r->log, name, d, strlen (d), srcp, &error)
           < 0) {
        log_msg ("cannot log event '%s': out of memory (holding the events "
                 "until the log can be written)", name);
        free (d);
        router_flush (r);       /* what is queued goes first */
        if (!r->held)
            errprintf (&r->held_error, "out of memory");
        hold (r, name, data, srcp);
        return;
    }
    free (d);
    cJSON_Delete (data);
    flush_maybe (r);
}

void router_emit_text (const char *name, const char *data, size_t len,
                       void *arg)
{
    struct router *r = arg;
    struct ev_src src, *srcp;
    cs_error_t error;

    if (!emit_source (r, name, NULL, &src, &srcp))
        return;
    if ((r->held && !router_emit_held (r))
        || eventlog_queue_text (r->log, name, data, len, srcp, &error) < 0) {
        if (!r->held) {
            log_msg ("cannot log event '%s': %s (holding the events until "
                     "the log can be written)", name, error.text);
            r->held_error = error;
        }
        router_flush (r);       /* what is queued goes first */
        unlogged (name, data, len, srcp, r);
        return;
    }
    flush_maybe (r);
}

void stream_destroy (struct stream *s)
{
    if (s) {
        mb_writer_close (s->inbox);
        strset_release (&s->keyed);
        free (s->path);
        free (s->state_path);
        free (s);
    }
}

void stream_handle_record (struct router *r, struct stream *s,
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
    struct router *r = s->sw->r;

    switch (ev->type) {
    case MB_EV_RECORD:
        stream_handle_record (r, s, ev->rec.json, ev->rec.seq);
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
    if (r->paused)
        mb_follower_stop (f);   /* the next record waits in its file */
}

struct stream *stream_get (struct router *r, struct swarm *sw,
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
    /* the paths on the heap, not PATH_MAX arrays: a thousand nodes */
    if (asprintf (&s->path, "%s/outbox/%s.jsonl", sw->dir, name) < 0)
        s->path = NULL;
    if (asprintf (&s->state_path, "%s/cursors/router.outbox-%s.json",
                  sw->dir, name) < 0)
        s->state_path = NULL;
    if (!s->path || !s->state_path || strlen (s->path) >= PATH_MAX
        || strlen (s->state_path) >= PATH_MAX) {
        free (s->path);
        free (s->state_path);
        free (s);
        return NULL;
    }
    /* durable state */
    if ((st = state_read_json (s->state_path, &error))) {
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

int stream_follow (struct router *r, struct stream *s)
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

/* An event that comes from no record (control.c): logged, then sent. */
void router_event (struct router *r, const char *name, cJSON *data)
{
    struct stream *s = r->cur_stream;

    r->cur_stream = NULL;
    router_emit (name, data, r);
    r->cur_stream = s;
}
