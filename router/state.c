/* state.c - the router's state files and what a restart reads back
 *
 * Exactly once: every event goes to the event log (eventlog.h) before any
 * client sees it.  Per followed stream, a state file in the swarm's
 * cursors/ directory holds the reader cursor and the translator state;
 * after the state files, <home>/router/state.json records the event seq
 * they cover.  On start the log after that seq is read back: the events
 * it holds came from records the state files do not cover yet, so those
 * records are translated again without emitting what was already logged
 * (struct suppress).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/log.h"
#include "router/router-private.h"

cJSON *state_read_json (const char *path, cs_error_t *errp)
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

static void state_save_stream (struct router *r, struct stream *s)
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
        if (atomic_file_write (s->state_path, text, strlen (text), 0,
                               &error) < 0)
            log_msg ("%s", error.text);
        else
            s->dirty = false;
        free (text);
    }
    cJSON_Delete (o);
}

void state_flush (struct router *r)
{
    char path[PATH_MAX + 16];
    char text[128];
    cs_error_t error;

    if (!r->dirty)
        return;
    /* the records behind a held event stay unread past a restart */
    if (r->held && !router_emit_held (r))
        return;
    (void)eventlog_sync (r->log);
    for (struct swarm *sw = r->swarms; sw; sw = sw->next) {
        for (int k = 0; k < sw->nstreams; k++)
            if (sw->streams[k])
                state_save_stream (r, sw->streams[k]);
        if (sw->sstream)
            state_save_stream (r, sw->sstream);
    }
    snprintf (path, sizeof (path), "%s/state.json", r->dir);
    snprintf (text, sizeof (text), "{\"event_seq\":%llu}",
              (unsigned long long)eventlog_seq (r->log));
    if (atomic_file_write (path, text, strlen (text), 0, &error) < 0)
        log_msg ("%s", error.text);
    r->dirty = false;
}

/* Read the log after the last checkpoint: which records' events are
 * already there.
 */
static int state_load_suppress_cb (uint64_t seq, const cJSON *rec, void *arg)
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

int state_load_suppress (struct router *r)
{
    char path[PATH_MAX + 16];
    cs_error_t error;
    uint64_t since = 0;
    cJSON *o;

    snprintf (path, sizeof (path), "%s/state.json", r->dir);
    if ((o = state_read_json (path, &error))) {
        (void)json_get_u64 (o, "event_seq", &since, NULL);
        cJSON_Delete (o);
    }
    else if (errno != ENOENT)
        log_msg ("%s (reading the whole event log)", error.text);
    if (eventlog_replay (eventlog_path (r->log), since, &r->opt,
                         state_load_suppress_cb, r, &error) < 0) {
        log_msg ("cannot read the event log: %s", error.text);
        return -1;
    }
    if (r->nsup)
        log_debug ("%zu streams have events logged after the checkpoint",
                   r->nsup);
    return 0;
}

