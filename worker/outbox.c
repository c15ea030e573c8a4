/* outbox.c - the worker's outbox records, and what happens when the
 * mailbox cannot be written or read.
 *
 * Outbox full or unwritable (ENOSPC, EDQUOT, EIO, a replaced stream...):
 * the record that failed and every record after it are held in memory, in
 * order, and written once the outbox takes them again.  While records are
 * held the node is degraded: it takes no new prompt (inbox_try_start and
 * the inbox reader wait), its checkpoint does not move (the checkpoint
 * never runs ahead of what the outbox shows), the turn already running
 * goes on and its records are held too.  Retries back off from 0.1 s to
 * 5 s.  A "node_degraded" record (reason "outbox_unwritable") is written as
 * soon as anything can be written, and "node_recovered" once the held
 * records are out; the log says both in any case.  Past HELD_MAX_BYTES in
 * memory, streaming deltas are dropped (their item/completed carries the
 * whole text) and counted in node_recovered.
 *
 * Inbox unreadable (replaced by a symlink, a foreign file, an I/O error):
 * the follower stops the stream; it is added again from the position after
 * the last record handled, with the same backoff, until it reads.
 * Meanwhile the node is degraded (reason "inbox_unreadable").
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/worker.h"

#define HELD_MAX_BYTES (64u * 1024 * 1024)
#define BATCH_BYTES (32u * 1024)    /* a batch goes out at this size */
#define BACKOFF_MIN 0.1
#define BACKOFF_MAX 5.0

static void held_free (struct held *h)
{
    if (h) {
        free (h->type);
        free (h->members);
        free (h);
    }
}

void outbox_release (struct worker *w)
{
    outbox_flush (w);
    jbuf_release (&w->batch);
    free (w->batch_ends);
    free (w->batch_recs);
    w->batch_ends = NULL;
    w->batch_recs = NULL;
    w->batch_n = w->batch_cap = 0;
    if (w->held_count > 0)
        log_msg ("%zu records could not be written to the outbox '%s'",
                 w->held_count, w->outbox_path);
    while (w->held_head) {
        struct held *h = w->held_head;
        w->held_head = h->next;
        held_free (h);
    }
    w->held_tail = NULL;
    w->held_count = 0;
}

bool outbox_degraded (struct worker *w)
{
    return w->held_head != NULL;
}

/* a streaming delta notification ("item/agentMessage/delta",
 * "item/commandExecution/outputDelta"...)
 */
static bool is_delta (const char *type, const char *members, size_t len)
{
    const char *m, *e;
    size_t n;

    if (strcmp (type, "rpc") != 0)
        return false;
    if (!(m = memmem (members, len, "\"method\":\"", 10)))
        return false;
    m += 10;
    if (!(e = memchr (m, '"', len - (size_t)(m - members))))
        return false;
    n = (size_t)(e - m);
    return n >= 5 && (!memcmp (e - 5, "delta", 5) || !memcmp (e - 5, "Delta", 5));
}

static void held_push (struct worker *w, const char *type, const char *members,
                       size_t len)
{
    struct held *h;

    if (w->held_bytes > HELD_MAX_BYTES && is_delta (type, members, len)) {
        w->held_dropped++;
        return;
    }
    if (!(h = calloc (1, sizeof (*h))) || !(h->type = strdup (type))
        || !(h->members = malloc (len + 1))) {
        log_msg ("out of memory: outbox record %s lost", type);
        held_free (h);
        return;
    }
    memcpy (h->members, members, len);
    h->members[len] = '\0';
    h->len = len;
    if (w->held_tail)
        w->held_tail->next = h;
    else
        w->held_head = h;
    w->held_tail = h;
    w->held_count++;
    w->held_total++;
    w->held_bytes += len + strlen (type);
}

/* payload members without the braces: malloc'd, free() */
static char *members_of (const cJSON *payload, size_t *lenp)
{
    char *s;
    size_t n;

    if (!payload || !payload->child) {
        *lenp = 0;
        return strdup ("");
    }
    if (!(s = cJSON_PrintUnformatted (payload)))
        return NULL;
    n = strlen (s);
    if (n < 2) {
        free (s);
        return NULL;
    }
    memmove (s, s + 1, n - 2);
    s[n - 2] = '\0';
    *lenp = n - 2;
    return s;
}

/* A node_degraded record, written directly (not held). */
static int degraded_record (struct worker *w, const char *reason,
                            const char *error)
{
    cJSON *r = cJSON_CreateObject ();
    cs_error_t err;
    int rc;

    if (!r)
        return -1;
    json_add_str (r, "reason", reason);
    json_add_str (r, "error", error);
    if (w->held_count > 0)
        json_add_u64 (r, "held", w->held_count);
    rc = mb_writer_append (w->out, "node_degraded", r, NULL, &err);
    cJSON_Delete (r);
    return rc;
}

/* The outbox stopped taking records (err): a new episode of holding them
 * begins unless one is going on.
 */
static void hold_begin (struct worker *w, const cs_error_t *err)
{
    if (!w->held_head) {
        double now = time_mono ();
        w->held_since = now;
        w->held_total = 0;
        w->held_dropped = 0;
        w->out_backoff = BACKOFF_MIN;
        w->out_retry_at = now + w->out_backoff;
        w->out_degraded_said = false;
        snprintf (w->out_error, sizeof (w->out_error), "%s", err->text);
        log_msg ("outbox not writable (%s): holding its records, taking no "
                 "new prompt until it is", err->text);
    }
}

/* An append failed with errno, nothing written: hold, or give up on a
 * record that can never be written.
 */
static bool append_failed (struct worker *w, const char *type,
                           uint64_t seq_before, const cs_error_t *err)
{
    if (mb_writer_seq (w->out) != seq_before) {
        /* appended; only the sync after it failed */
        log_msg ("outbox record %s: %s", type, err->text);
        return false;
    }
    if (errno == EMSGSIZE || errno == EINVAL) {
        log_msg ("cannot append %s to the outbox: %s", type, err->text);
        return false;
    }
    hold_begin (w, err);
    return true;
}

/* ---- the batch of app-server lines ------------------------------------------ */

/* Queue the app-server line as an "rpc" record ("msg": the line as it
 * came).  The records of one chunk read from the app-server go out in one
 * batch (mb_writer_append_batch: one write, one check of the stream), in
 * order, before any other record and before a checkpoint reads the
 * outbox's seq, so the outbox shows exactly what it showed with one
 * append per line.
 */
void outbox_batch_add (struct worker *w, const char *line, size_t len)
{
    if (!w->out)
        return;
    if (w->held_head) {
        /* nothing is batched while records are held: hold it, in order */
        struct jbuf m = JBUF_INIT;
        if (jbuf_append (&m, "\"msg\":", 6) < 0
            || jbuf_append (&m, line, len) < 0)
            log_msg ("out of memory: app-server line not recorded");
        else
            held_push (w, "rpc", m.data, m.len);
        jbuf_release (&m);
        return;
    }
    if (w->batch_n == w->batch_cap) {
        size_t ncap = w->batch_cap ? w->batch_cap * 2 : 64;
        size_t *e = realloc (w->batch_ends, ncap * sizeof (*e));
        if (e)
            w->batch_ends = e;
        struct mb_members *r = e ? realloc (w->batch_recs,
                                            ncap * sizeof (*r)) : NULL;
        if (r)
            w->batch_recs = r;
        if (!e || !r) {
            log_msg ("out of memory: app-server line not recorded");
            return;
        }
        w->batch_cap = ncap;
    }
    size_t before = w->batch.len;
    if (jbuf_append (&w->batch, "\"msg\":", 6) < 0
        || jbuf_append (&w->batch, line, len) < 0) {
        w->batch.len = before;
        log_msg ("out of memory: app-server line not recorded");
        return;
    }
    w->batch_ends[w->batch_n++] = w->batch.len;
    if (w->batch.len >= BATCH_BYTES)
        outbox_flush (w);
}

/* Append the batch; what the outbox does not take is held, in order. */
void outbox_flush (struct worker *w)
{
    size_t n = w->batch_n, i = 0, count;
    cs_error_t err;

    if (n == 0)
        return;
    for (size_t k = 0, start = 0; k < n; k++) {
        w->batch_recs[k] = (struct mb_members){
            .data = w->batch.data + start,
            .len = w->batch_ends[k] - start,
        };
        start = w->batch_ends[k];
    }
    while (i < n && w->out && !w->held_head) {
        if (mb_writer_append_batch (w->out, "rpc", w->batch_recs + i, n - i,
                                    NULL, &count, &err) == 0) {
            i = n;
            break;
        }
        i += count;
        if (i == n) {
            /* all appended; only the sync after the write failed */
            log_msg ("outbox record rpc: %s", err.text);
            break;
        }
        if (errno == EMSGSIZE || errno == EINVAL) {
            log_msg ("cannot append rpc to the outbox: %s", err.text);
            i++;
            continue;
        }
        hold_begin (w, &err);
        for (; i < n; i++)
            held_push (w, "rpc", w->batch_recs[i].data, w->batch_recs[i].len);
        if (degraded_record (w, "outbox_unwritable", w->out_error) == 0)
            w->out_degraded_said = true;
    }
    for (; i < n && w->out; i++)
        held_push (w, "rpc", w->batch_recs[i].data, w->batch_recs[i].len);
    w->batch_n = 0;
    jbuf_reset (&w->batch);
}

void worker_record_members (struct worker *w, const char *type,
                            const char *members, size_t len)
{
    cs_error_t err;
    uint64_t before;

    if (!w->out)
        return;
    outbox_flush (w);
    if (w->held_head) {
        held_push (w, type, members, len);
        return;
    }
    before = mb_writer_seq (w->out);
    if (mb_writer_append_members (w->out, type, members, len, NULL, &err) == 0)
        return;
    if (append_failed (w, type, before, &err)) {
        held_push (w, type, members, len);
        if (degraded_record (w, "outbox_unwritable", w->out_error) == 0)
            w->out_degraded_said = true;
    }
}

void worker_record (struct worker *w, const char *type, cJSON *payload)
{
    cs_error_t err;
    uint64_t before;
    char *m;
    size_t len;

    if (!w->out)
        return;
    outbox_flush (w);
    if (!w->held_head) {
        before = mb_writer_seq (w->out);
        if (mb_writer_append (w->out, type, payload, NULL, &err) == 0)
            return;
        if (!append_failed (w, type, before, &err))
            return;
    }
    if (!(m = members_of (payload, &len))) {
        log_msg ("out of memory: outbox record %s lost", type);
        return;
    }
    held_push (w, type, m, len);
    free (m);
    if (!w->out_degraded_said
        && degraded_record (w, "outbox_unwritable", w->out_error) == 0)
        w->out_degraded_said = true;
}

double outbox_next_timer (struct worker *w)
{
    double t = -1;
    if (w->held_head)
        t = w->out_retry_at;
    if (w->inbox_broken && (t < 0 || w->inbox_retry_at < t))
        t = w->inbox_retry_at;
    return t;
}

void outbox_retry (struct worker *w, double now)
{
    cs_error_t err;

    if (!w->held_head || now < w->out_retry_at)
        return;
    if (!w->out_degraded_said
        && degraded_record (w, "outbox_unwritable", w->out_error) == 0)
        w->out_degraded_said = true;
    while (w->held_head) {
        struct held *h = w->held_head;
        if (mb_writer_append_members (w->out, h->type, h->members, h->len,
                                      NULL, &err) < 0) {
            if (errno == EMSGSIZE || errno == EINVAL)
                log_msg ("cannot append %s to the outbox: %s", h->type,
                         err.text);
            else {
                snprintf (w->out_error, sizeof (w->out_error), "%s", err.text);
                w->out_backoff *= 2;
                if (w->out_backoff > BACKOFF_MAX)
                    w->out_backoff = BACKOFF_MAX;
                w->out_retry_at = now + w->out_backoff;
                log_debug ("outbox still not writable (%s): %zu records "
                           "held, next try in %.1f s", err.text,
                           w->held_count, w->out_backoff);
                return;
            }
        }
        w->held_head = h->next;
        if (!w->held_head)
            w->held_tail = NULL;
        w->held_count--;
        w->held_bytes -= h->len + strlen (h->type);
        held_free (h);
    }
    w->held_bytes = 0;
    log_msg ("outbox writable again after %.1f s: %llu held records written"
             "%s", now - w->held_since, (unsigned long long)w->held_total,
             w->held_dropped ? ", streaming deltas dropped" : "");
    cJSON *r = cJSON_CreateObject ();
    if (r) {
        json_add_str (r, "reason", "outbox_unwritable");
        json_add_u64 (r, "held", w->held_total);
        json_add_u64 (r, "dropped_deltas", w->held_dropped);
        json_add_double (r, "seconds", now - w->held_since);
        worker_record (w, "node_recovered", r);
        cJSON_Delete (r);
    }
    if (w->ckpt_dirty)
        (void)worker_checkpoint (w);
    /* the inbox waited: catch up, start what is queued */
    if (!w->inbox_broken && mb_follower_process (w->fol, &err) < 0)
        worker_error (w, "inbox_read", 0, "%s", err.text);
    inbox_try_start (w);
}

/* ---- the inbox stream ------------------------------------------------------ */

void inbox_stream_stopped (struct worker *w, const char *why)
{
    cJSON *r;

    if (w->inbox_broken)
        return;
    w->inbox_broken = true;
    w->inbox_backoff = BACKOFF_MIN;
    w->inbox_retry_at = time_mono () + w->inbox_backoff;
    snprintf (w->inbox_error, sizeof (w->inbox_error), "%s", why);
    log_msg ("inbox not readable (%s): trying again", why);
    if ((r = cJSON_CreateObject ())) {
        json_add_str (r, "reason", "inbox_unreadable");
        json_add_str (r, "error", why);
        worker_record (w, "node_degraded", r);
        cJSON_Delete (r);
    }
}

void inbox_retry (struct worker *w, double now)
{
    cs_error_t err;
    struct mb_cursor c = w->inbox_pos;
    mb_reader_t *r;

    if (!w->inbox_broken || now < w->inbox_retry_at)
        return;
    if (w->inbox) {
        (void)mb_follower_remove (w->fol, w->inbox);
        w->inbox = NULL;
    }
    r = mb_follower_add (w->fol, w->inbox_path, MB_START_CURSOR, &c,
                         inbox_event, w, &err);
    if (!r) {
        w->inbox_backoff *= 2;
        if (w->inbox_backoff > BACKOFF_MAX)
            w->inbox_backoff = BACKOFF_MAX;
        w->inbox_retry_at = now + w->inbox_backoff;
        log_debug ("inbox still not readable (%s): next try in %.1f s",
                   err.text, w->inbox_backoff);
        return;
    }
    w->inbox = r;
    w->inbox_broken = false;
    log_msg ("inbox readable again");
    cJSON *rec = cJSON_CreateObject ();
    if (rec) {
        json_add_str (rec, "reason", "inbox_unreadable");
        worker_record (w, "node_recovered", rec);
        cJSON_Delete (rec);
    }
    if (!outbox_degraded (w) && mb_follower_process (w->fol, &err) < 0)
        worker_error (w, "inbox_read", 0, "%s", err.text);
}

/* ---- what the outbox says after the checkpoint ------------------------------ */

struct open_turn {
    char *turn_id;
    char *injection_id;
    struct open_turn *next;
};

static void open_turn_close (struct open_turn **list, const char *turn_id)
{
    for (struct open_turn **p = list; *p; p = &(*p)->next) {
        if (!strcmp ((*p)->turn_id, turn_id)) {
            struct open_turn *o = *p;
            *p = o->next;
            free (o->turn_id);
            free (o->injection_id);
            free (o);
            return;
        }
    }
}

/* Read the outbox records after seq `after` (those the checkpoint may not
 * know about, because the worker died before it was written).  Every
 * injection accepted there is done (a replay skips it); a turn started
 * there and neither completed nor aborted is reported aborted (the
 * checkpoint's own running turn included, unless the outbox shows it
 * ended).
 */
int outbox_scan (struct worker *w, uint64_t after)
{
    struct mb_cursor c = { .seq = after };
    struct open_turn *open = NULL;
    struct mb_event ev;
    cs_error_t err;
    mb_reader_t *r;
    int rc, n = 0;
    bool ckpt_turn_ended = false;

    if (!(r = mb_reader_open (w->outbox_path, MB_START_CURSOR, &c, &w->mbopt,
                              &err))) {
        log_msg ("cannot read the outbox: %s", err.text);
        return -1;
    }
    while ((rc = mb_reader_next (r, &ev, &err)) > 0) {
        const cJSON *j = ev.rec.json;
        const char *s = NULL, *tid = NULL;

        if (ev.type != MB_EV_RECORD)
            continue;
        n++;
        if (!strcmp (ev.rec.type, "inject_accepted")) {
            const char *action = NULL;
            if (json_get_str (j, "injection_id", &s, NULL) == 0)
                (void)strset_add (&w->done_ids, s);
            if (json_get_str (j, "action", &action, NULL) == 0
                && !strcmp (action, "turn/start")
                && json_get_str (j, "turn_id", &tid, NULL) == 0 && s) {
                struct open_turn *o = calloc (1, sizeof (*o));
                if (o && (o->turn_id = strdup (tid))
                    && (o->injection_id = strdup (s))) {
                    o->next = open;
                    open = o;
                }
                else if (o) {
                    free (o->turn_id);
                    free (o);
                }
            }
            continue;
        }
        if (!strcmp (ev.rec.type, "turn_aborted"))
            (void)json_get_str (j, "turn_id", &tid, NULL);
        else if (!strcmp (ev.rec.type, "rpc")) {
            const cJSON *msg = cJSON_GetObjectItemCaseSensitive (j, "msg");
            const cJSON *p = cJSON_GetObjectItemCaseSensitive (msg, "params");
            const cJSON *t = cJSON_GetObjectItemCaseSensitive (p, "turn");
            if (json_get_str (msg, "method", &s, NULL) == 0
                && !strcmp (s, "turn/completed"))
                (void)json_get_str (t, "id", &tid, NULL);
        }
        if (tid) {
            open_turn_close (&open, tid);
            if (w->aborted_turn && !strcmp (w->aborted_turn, tid))
                ckpt_turn_ended = true;
        }
    }
    if (rc < 0)
        log_msg ("reading the outbox: %s", err.text);
    else
        w->outbox_scanned = true;
    mb_reader_close (r);
    if (ckpt_turn_ended) {
        free (w->aborted_turn);
        free (w->aborted_injection);
        w->aborted_turn = w->aborted_injection = NULL;
    }
    while (open) {
        struct open_turn *o = open;
        open = o->next;
        if (!w->aborted_turn || strcmp (w->aborted_turn, o->turn_id) != 0)
            worker_turn_aborted (w, o->turn_id, o->injection_id,
                                 fence_restart_reason (w));
        free (o->turn_id);
        free (o->injection_id);
        free (o);
    }
    log_debug ("outbox after seq %llu: %d records read",
               (unsigned long long)after, n);
    return rc < 0 ? -1 : 0;
}
