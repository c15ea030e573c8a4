/* eventlog.c - the router's durable event stream (see eventlog.h) */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/eventlog.h"
#include "router/command.h"
#include "common/log.h"

/* an event queued for the next flush: its pieces in the queue's text */
struct queued {
    size_t moff, mlen;          /* the record's members */
    size_t noff, nlen;          /* the name as a JSON string */
    size_t toff;                /* the timestamp (TS_LEN bytes) */
    size_t doff, dlen;          /* data */
    size_t soff;                /* src->swarm, NUL-terminated */
    size_t rnoff;               /* the name, NUL-terminated */
    bool has_src;
    struct ev_src src;          /* (src.swarm: at soff) */
};

#define TS_LEN 27               /* "2026-11-21T12:00:00.123456Z" */

struct eventlog {
    mb_writer_t *w;
    char *path;
    struct jbuf members;
    /* the queue */
    struct jbuf qtext;
    struct queued *q;
    size_t nq, qcap;
    struct mb_members *qm;
    size_t qmcap;
    /* the envelopes of the last flush */
    struct jbuf qenv;
    size_t *qends;
    size_t qends_cap;
    time_t ts_sec;              /* the second ts_date was made for */
    char ts_date[32];           /* "%Y-%m-%dT%H:%M:%S" of ts_sec */
};

eventlog_t *eventlog_open (const char *path, const struct mb_options *opt,
                           cs_error_t *errp)
{
    eventlog_t *el = calloc (1, sizeof (*el));
    if (!el || !(el->path = strdup (path))) {
        free (el);
        errprintf (errp, "out of memory");
        return NULL;
    }
    if (!(el->w = mb_writer_open (path, opt, errp))) {
        free (el->path);
        free (el);
        return NULL;
    }
    return el;
}

void eventlog_close (eventlog_t *el)
{
    if (el) {
        int saved_errno = errno;
        mb_writer_close (el->w);
        jbuf_release (&el->members);
        jbuf_release (&el->qtext);
        jbuf_release (&el->qenv);
        free (el->q);
        free (el->qm);
        free (el->qends);
        free (el->path);
        free (el);
        errno = saved_errno;
    }
}

void eventlog_timestamp (double t, char *buf, size_t len)
{
    time_t s = (time_t)t;
    struct tm tm;
    long us = (long)((t - (double)s) * 1e6);
    char date[32];
    if (us < 0)
        us = 0;
    if (us > 999999)
        us = 999999;
    gmtime_r (&s, &tm);
    strftime (date, sizeof (date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (buf, len, "%s.%06ldZ", date, us);
}

static int envelope (struct jbuf *env, const char *ts, uint64_t seq,
                     const char *name, const char *data, size_t dlen)
{
    jbuf_reset (env);
    if (jbuf_printf (env, "{\"protocol\":\"" RC_PROTOCOL "\",\"type\":"
                     "\"event\",\"timestamp\":\"%s\",\"seq\":%llu,"
                     "\"event\":", ts, (unsigned long long)seq) < 0
        || jbuf_append_jstr (env, name, strlen (name)) < 0
        || jbuf_append (env, ",\"data\":", 8) < 0
        || jbuf_append (env, data, dlen) < 0
        || jbuf_append (env, "}\n", 2) < 0)
        return -1;
    return 0;
}

/* eventlog_timestamp with the date part kept from the last call */
static void timestamp (eventlog_t *el, double t, char *buf, size_t len)
{
    time_t s = (time_t)t;
    long us = (long)((t - (double)s) * 1e6);
    if (us < 0)
        us = 0;
    if (us > 999999)
        us = 999999;
    if (s != el->ts_sec || !el->ts_date[0]) {
        struct tm tm;
        gmtime_r (&s, &tm);
        strftime (el->ts_date, sizeof (el->ts_date), "%Y-%m-%dT%H:%M:%S",
                  &tm);
        el->ts_sec = s;
    }
    snprintf (buf, len, "%s.%06ldZ", el->ts_date, us);
}

int eventlog_append_text (eventlog_t *el, const char *name, const char *d,
                          size_t dlen, const struct ev_src *src,
                          uint64_t *seqp, struct jbuf *env, cs_error_t *errp)
{
    char ts[64];
    uint64_t seq;

    timestamp (el, time_now (), ts, sizeof (ts));
    jbuf_reset (&el->members);
    if (jbuf_append (&el->members, "\"event\":", 8) < 0
        || jbuf_append_jstr (&el->members, name, strlen (name)) < 0
        || jbuf_printf (&el->members, ",\"timestamp\":\"%s\",\"data\":", ts) < 0
        || jbuf_append (&el->members, d, dlen) < 0)
        return errprintf (errp, "out of memory");
    if (src) {
        if (jbuf_append (&el->members, ",\"src\":{\"swarm\":", 16) < 0
            || jbuf_append_jstr (&el->members, src->swarm,
                                 strlen (src->swarm)) < 0
            || jbuf_printf (&el->members, ",\"node\":%d,\"seq\":%llu,"
                            "\"idx\":%d}", src->node,
                            (unsigned long long)src->seq, src->idx) < 0)
            return errprintf (errp, "out of memory");
    }
    if (mb_writer_append_members (el->w, "event", el->members.data,
                                  el->members.len, &seq, errp) < 0)
        return -1;
    if (env && envelope (env, ts, seq, name, d, dlen) < 0)
        return errprintf (errp, "out of memory");
    if (seqp)
        *seqp = seq;
    return 0;
}

int eventlog_append (eventlog_t *el, const char *name, const cJSON *data,
                     const struct ev_src *src, uint64_t *seqp,
                     struct jbuf *env, cs_error_t *errp)
{
    char *d;
    int rc;

    if (!(d = json_print (data)))
        return errprintf (errp, "out of memory");
    rc = eventlog_append_text (el, name, d, strlen (d), src, seqp, env,
                               errp);
    free (d);
    return rc;
}

int eventlog_envelope (const cJSON *rec, uint64_t seq, struct jbuf *env)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive (rec, "event");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive (rec, "timestamp");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive (rec, "data");
    char *d;
    int rc;

    if (!cJSON_IsString (name) || !cJSON_IsString (ts) || !data) {
        errno = EINVAL;
        return -1;
    }
    if (!(d = json_print (data)))
        return -1;
    rc = envelope (env, ts->valuestring, seq, name->valuestring, d,
                   strlen (d));
    free (d);
    return rc;
}

/* decimal digits of v at p; returns their count */
static size_t put_u64 (char *p, uint64_t v)
{
    char tmp[24];
    size_t n = 0, i;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

int eventlog_queue_text (eventlog_t *el, const char *name, const char *d,
                         size_t dlen, const struct ev_src *src,
                         cs_error_t *errp)
{
    struct jbuf *b = &el->qtext;
    struct queued *e;
    char ts[64];
    size_t tslen;

    if (el->nq == el->qcap) {
        size_t ncap = el->qcap ? el->qcap * 2 : 256;
        struct queued *nq = realloc (el->q, ncap * sizeof (*nq));
        if (!nq)
            return errprintf (errp, "out of memory");
        el->q = nq;
        el->qcap = ncap;
    }
    e = &el->q[el->nq];
    memset (e, 0, sizeof (*e));
    timestamp (el, time_now (), ts, sizeof (ts));
    tslen = strlen (ts);
    if (tslen != TS_LEN)
        return errprintf (errp, "bad timestamp '%s'", ts);
    e->moff = b->len;
    if (jbuf_append (b, "\"event\":", 8) < 0)
        goto nomem;
    e->noff = b->len;
    if (jbuf_append_jstr (b, name, strlen (name)) < 0)
        goto nomem;
    e->nlen = b->len - e->noff;
    if (jbuf_append (b, ",\"timestamp\":\"", 14) < 0)
        goto nomem;
    e->toff = b->len;
    if (jbuf_append (b, ts, tslen) < 0
        || jbuf_append (b, "\",\"data\":", 9) < 0)
        goto nomem;
    e->doff = b->len;
    e->dlen = dlen;
    if (jbuf_append (b, d, dlen) < 0)
        goto nomem;
    if (src) {
        char num[64];
        size_t n = 0;
        if (jbuf_append (b, ",\"src\":{\"swarm\":", 16) < 0
            || jbuf_append_jstr (b, src->swarm, strlen (src->swarm)) < 0)
            goto nomem;
        memcpy (num, ",\"node\":", 8);
        n = 8;
        if (src->node < 0) {
            num[n++] = '-';
            n += put_u64 (num + n, (uint64_t)(-(int64_t)src->node));
        }
        else
            n += put_u64 (num + n, (uint64_t)src->node);
        memcpy (num + n, ",\"seq\":", 7);
        n += 7;
        n += put_u64 (num + n, src->seq);
        memcpy (num + n, ",\"idx\":", 7);
        n += 7;
        if (src->idx < 0) {
            num[n++] = '-';
            n += put_u64 (num + n, (uint64_t)(-(int64_t)src->idx));
        }
        else
            n += put_u64 (num + n, (uint64_t)src->idx);
        num[n++] = '}';
        if (jbuf_append (b, num, n) < 0)
            goto nomem;
    }
    e->mlen = b->len - e->moff;
    if (src) {
        e->has_src = true;
        e->src = *src;
        e->soff = b->len;
        if (jbuf_append (b, src->swarm, strlen (src->swarm) + 1) < 0)
            goto nomem;
    }
    e->rnoff = b->len;
    if (jbuf_append (b, name, strlen (name) + 1) < 0)
        goto nomem;
    el->nq++;
    return 0;
nomem:
    b->len = e->moff;
    return errprintf (errp, "out of memory");
}

size_t eventlog_queued (eventlog_t *el, size_t *bytes)
{
    if (bytes)
        *bytes = el->qtext.len;
    return el->nq;
}

/* The envelope of queued event e, logged as seq, onto el->qenv. */
static int queued_envelope (eventlog_t *el, const struct queued *e,
                            uint64_t seq)
{
    static const char head[] = "{\"protocol\":\"" RC_PROTOCOL "\",\"type\":"
                               "\"event\",\"timestamp\":\"";
    const char *t = el->qtext.data;
    char num[32];
    size_t n;

    num[0] = '"';
    memcpy (num + 1, ",\"seq\":", 7);
    n = 8 + put_u64 (num + 8, seq);
    memcpy (num + n, ",\"event\":", 9);
    n += 9;
    if (jbuf_append (&el->qenv, head, sizeof (head) - 1) < 0
        || jbuf_append (&el->qenv, t + e->toff, TS_LEN) < 0
        || jbuf_append (&el->qenv, num, n) < 0
        || jbuf_append (&el->qenv, t + e->noff, e->nlen) < 0
        || jbuf_append (&el->qenv, ",\"data\":", 8) < 0
        || jbuf_append (&el->qenv, t + e->doff, e->dlen) < 0
        || jbuf_append (&el->qenv, "}\n", 2) < 0)
        return -1;
    return 0;
}

int eventlog_flush (eventlog_t *el, struct eventlog_out *out,
                    eventlog_unlogged_f unlogged, void *arg,
                    cs_error_t *errp)
{
    size_t done = 0, n = el->nq, i;
    uint64_t first = 0;
    int rc = 0;

    memset (out, 0, sizeof (*out));
    jbuf_reset (&el->qenv);
    if (n == 0)
        return 0;
    if (n > el->qmcap) {
        struct mb_members *m = realloc (el->qm, n * sizeof (*m));
        size_t *ends = realloc (el->qends, n * sizeof (*ends));
        if (m)
            el->qm = m;
        if (ends)
            el->qends = ends;
        if (!m || !ends) {
            rc = errprintf (errp, "out of memory");
            goto unlogged;
        }
        el->qmcap = n;
    }
    for (i = 0; i < n; i++) {
        el->qm[i].data = el->qtext.data + el->q[i].moff;
        el->qm[i].len = el->q[i].mlen;
    }
    rc = mb_writer_append_batch (el->w, "event", el->qm, n, &first, &done,
                                 errp);
    if (rc < 0 && done < n) {
        /* the log refused the batch (a disk with room for a few records
         * only): one event at a time, as many as it takes */
        cs_error_t e1;
        uint64_t s1;
        size_t one;
        while (done < n) {
            int r1 = mb_writer_append_batch (el->w, "event", &el->qm[done], 1,
                                             &s1, &one, &e1);
            if (done == 0)
                first = s1;
            done += one;
            if (r1 < 0) {
                if (errp)
                    *errp = e1;
                break;
            }
        }
        if (done == n)
            rc = 0;
    }
    for (i = 0; i < done; i++) {
        if (queued_envelope (el, &el->q[i], first + i) < 0) {
            /* logged, but its envelope cannot be made: the clients get
             * the ones before it, and the rest from the log on replay */
            log_msg ("out of memory: events %llu..%llu logged but not sent",
                     (unsigned long long)(first + i),
                     (unsigned long long)(first + done - 1));
            break;
        }
        el->qends[i] = el->qenv.len;
    }
    out->first_seq = first;
    out->n = i;
    out->env = el->qenv.data;
    out->ends = el->qends;
unlogged:
    for (i = done; i < n; i++) {
        struct queued *e = &el->q[i];
        if (e->has_src)
            e->src.swarm = el->qtext.data + e->soff;
        if (unlogged)
            unlogged (el->qtext.data + e->rnoff, el->qtext.data + e->doff,
                      e->dlen, e->has_src ? &e->src : NULL, arg);
    }
    el->nq = 0;
    jbuf_reset (&el->qtext);
    return rc < 0 ? -1 : 0;
}

uint64_t eventlog_seq (eventlog_t *el)
{
    return mb_writer_seq (el->w);
}

const char *eventlog_path (eventlog_t *el)
{
    return el->path;
}

int eventlog_sync (eventlog_t *el)
{
    return mb_writer_sync (el->w);
}

double eventlog_sync_due (eventlog_t *el)
{
    return mb_writer_sync_due (el->w);
}

int eventlog_replay (const char *path, uint64_t since,
                     const struct mb_options *opt, eventlog_replay_f cb,
                     void *arg, cs_error_t *errp)
{
    struct mb_cursor c = { .seq = since };
    struct mb_event ev;
    mb_reader_t *r;
    int rc;

    r = since ? mb_reader_open (path, MB_START_CURSOR, &c, opt, errp)
              : mb_reader_open (path, MB_START_BEGIN, NULL, opt, errp);
    if (!r)
        return -1;
    while ((rc = mb_reader_next (r, &ev, errp)) > 0) {
        if (ev.type != MB_EV_RECORD || ev.rec.seq <= since)
            continue;
        if (cb (ev.rec.seq, ev.rec.json, arg) < 0) {
            rc = -1;
            errprintf (errp, "replay stopped");
            break;
        }
    }
    mb_reader_close (r);
    return rc < 0 ? -1 : 0;
}
