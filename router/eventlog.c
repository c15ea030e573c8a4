/* eventlog.c - the router's durable event stream (see eventlog.h) */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/eventlog.h"
#include "router/command.h"

struct eventlog {
    mb_writer_t *w;
    char *path;
    struct jbuf members;
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
