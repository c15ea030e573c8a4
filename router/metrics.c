/* metrics.c - the router's Prometheus textfile (metrics.h) */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomicfile.h"
#include "common/log.h"
#include "router/audit.h"
#include "router/metrics.h"
#include "router/router-private.h"
#include "slurm/jobtime.h"
#include "slurm/nodes.h"
#include "slurm/prom.h"
#include "slurm/swarm.h"

/* a swarm's outbox readers, kept between writes (read incrementally) */
struct msw {
    char *id;
    char dir[PATH_MAX];
    struct nodes ns;
    bool open;
    struct jobtime jt;
    struct msw *next;
};

static struct {
    char *path;
    double interval;
    double next;
    uint64_t last_seq;
    double last_ts;
    bool failing;
    uint64_t failures;
    struct msw *swarms;
} m;

int metrics_init (struct router *r, const char *path, double interval)
{
    (void)r;
    if (!path || !*path)
        return 0;
    if (!(m.path = strdup (path)))
        return -1;
    m.interval = interval > 0 ? interval : 15;
    m.next = 0;
    return 0;
}

static struct msw *msw_get (struct swarm *sw)
{
    struct msw *s;

    for (s = m.swarms; s; s = s->next)
        if (!strcmp (s->id, sw->id))
            return s;
    if (!(s = calloc (1, sizeof (*s))) || !(s->id = strdup (sw->id))) {
        free (s);
        return NULL;
    }
    snprintf (s->dir, sizeof (s->dir), "%s", sw->dir);
    jobtime_init (&s->jt);
    s->next = m.swarms;
    m.swarms = s;
    return s;
}

static cJSON *swarm_json (struct swarm *sw)
{
    cJSON *o = cJSON_CreateObject (), *arr = cJSON_CreateArray ();
    cJSON *info;
    struct msw *s = msw_get (sw);
    int count = swarm_nodes (sw);
    cs_error_t e;

    if (!o || !arr || !s)
        goto error;
    info = swarm_load (sw->dir, NULL);
    json_add_str (o, "id", sw->id);
    json_add_str (o, "state", sw->state ? sw->state : "unknown");
    json_add_str (o, "backend",
                  info && swarm_str (info, "backend")
                      ? swarm_str (info, "backend")
                      : "user");
    json_add_u64 (o, "nodes", (uint64_t)(count > 0 ? count : 0));
    cJSON_Delete (info);
    if (s->open && s->ns.count != count) {
        nodes_close (&s->ns);
        s->open = false;
    }
    if (!s->open && count > 0 && nodes_open (&s->ns, sw->dir, count, &e) == 0)
        s->open = true;
    if (s->open && nodes_update (&s->ns, NULL, NULL, &e) < 0)
        log_debug ("metrics: swarm %s: %s", sw->id, e.text);
    for (int k = 0; s->open && k < s->ns.count; k++) {
        cJSON *n = cJSON_CreateObject ();
        if (!n || !cJSON_AddItemToArray (arr, n)) {
            cJSON_Delete (n);
            goto error;
        }
        nodes_metrics_json (n, &s->ns.node[k], sw->dir, k);
    }
    json_add_item (o, "node_states", arr);
    return o;
error:
    cJSON_Delete (o);
    cJSON_Delete (arr);
    return NULL;
}

/* How the router follows a swarm's outboxes: inotify, poll, mixed (some
 * of each), ssh (on the far side), none (no stream yet).
 */
static const char *swarm_follow_mode (struct router *r, struct swarm *sw)
{
    bool inotify = false, poll = false;

    if (r->remote)
        return "ssh";
    for (int k = -1; k < sw->nstreams; k++) {
        struct stream *st = k < 0 ? sw->sstream : sw->streams[k];
        const char *mode;
        if (!st || !st->rd ||
            !(mode = mb_follower_stream_mode (r->fol, st->rd)))
            continue;
        if (!strcmp (mode, "inotify"))
            inotify = true;
        else
            poll = true;
    }
    return inotify && poll ? "mixed" : inotify ? "inotify" : poll ? "poll"
                                                                   : "none";
}

/* The per-swarm lines the router adds: follow mode, node time so far. */
static void render_swarms (FILE *f, struct router *r, double now)
{
    char esc[256];
    cs_error_t e;

    prom_family (f, "codeswarm_swarm_follow_mode", "gauge",
                 "How the router follows the swarm's outboxes: 1 for the "
                 "mode (inotify, poll, mixed; ssh: on the far side).");
    for (struct swarm *sw = r->swarms; sw; sw = sw->next)
        fprintf (f, "codeswarm_swarm_follow_mode{swarm=\"%s\",mode=\"%s\"} 1\n",
                 prom_escape (sw->id, esc, sizeof (esc)),
                 swarm_follow_mode (r, sw));
    prom_family (f, "codeswarm_swarm_job_node_seconds", "gauge",
                 "Node time the swarm's jobs have held so far by their job "
                 "events: nodes x time since each job started (sacct's "
                 "measure is codeswarm_swarm_node_seconds).");
    if (r->remote) /* the job events are on the far side */
        return;
    for (struct swarm *sw = r->swarms; sw; sw = sw->next) {
        struct msw *s = msw_get (sw);
        int count = swarm_nodes (sw);
        bool running = sw->state && (!strcmp (sw->state, "running") ||
                                     !strcmp (sw->state, "migrating"));
        if (!s)
            continue;
        if (jobtime_update (&s->jt, sw->dir, &e) < 0) {
            log_debug ("metrics: swarm %s: %s", sw->id, e.text);
            jobtime_close (&s->jt);
            continue;
        }
        fprintf (f, "codeswarm_swarm_job_node_seconds{swarm=\"%s\"} %.3f\n",
                 prom_escape (sw->id, esc, sizeof (esc)),
                 (count > 0 ? count : 0) *
                     jobtime_seconds (&s->jt, now, running));
    }
}

static char *render (struct router *r, double now)
{
    cJSON *swarms = cJSON_CreateArray ();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream (&text, &len);
    uint64_t seq = eventlog_seq (r->log);
    int clients = 0;
    const char *mode;

    if (!swarms || !f) {
        cJSON_Delete (swarms);
        if (f)
            fclose (f);
        free (text);
        return NULL;
    }
    if (!r->remote) /* the outboxes are here to read */
        for (struct swarm *sw = r->swarms; sw; sw = sw->next) {
            cJSON *o = swarm_json (sw);
            if (o)
                cJSON_AddItemToArray (swarms, o);
        }
    prom_write_swarms (f, swarms, time_now ());
    cJSON_Delete (swarms);
    render_swarms (f, r, time_now ());
    for (struct client *c = r->clients; c; c = c->next)
        if (!c->dead)
            clients++;
    mode = r->remote ? "ssh" : r->fol ? mb_follower_mode (r->fol) : "none";
    prom_family (f, "codeswarm_router_events_total", "counter",
                 "Events the router has emitted (its event seq).");
    fprintf (f, "codeswarm_router_events_total %llu\n",
             (unsigned long long)seq);
    prom_family (f, "codeswarm_router_events_per_second", "gauge",
                 "Events per second over the last interval.");
    fprintf (f, "codeswarm_router_events_per_second %.3f\n",
             m.last_ts > 0 && now > m.last_ts && seq >= m.last_seq
                 ? (double)(seq - m.last_seq) / (now - m.last_ts)
                 : 0.0);
    prom_family (f, "codeswarm_router_clients", "gauge",
                 "Clients connected to the router.");
    fprintf (f, "codeswarm_router_clients %d\n", clients);
    prom_family (f, "codeswarm_router_follow_mode", "gauge",
                 "How the router follows the outboxes: 1 for the mode in "
                 "use.");
    fprintf (f, "codeswarm_router_follow_mode{mode=\"%s\"} 1\n", mode);
    prom_family (f, "codeswarm_router_swarms", "gauge",
                 "Swarms the router follows.");
    {
        int n = 0;
        for (struct swarm *sw = r->swarms; sw; sw = sw->next)
            n++;
        fprintf (f, "codeswarm_router_swarms %d\n", n);
    }
    prom_family (f, "codeswarm_router_audit_pending", "gauge",
                 "Audit entries that could not be written yet.");
    fprintf (f, "codeswarm_router_audit_pending %zu\n", audit_pending ());
    prom_family (f, "codeswarm_router_events_held", "gauge",
                 "Events the event log could not take yet (a full disk).");
    fprintf (f, "codeswarm_router_events_held %zu\n", r->nheld);
    prom_family (f, "codeswarm_router_reading_paused", "gauge",
                 "1 while no outbox record is read: --hold-max events are "
                 "held.");
    fprintf (f, "codeswarm_router_reading_paused %d\n", r->paused ? 1 : 0);
#ifdef HAVE_RELAY
    if (r->relay)
        relay_metrics (r->relay, f);
#endif
    prom_family (f, "codeswarm_router_metrics_write_failures_total", "counter",
                 "Writes of this file that failed.");
    fprintf (f, "codeswarm_router_metrics_write_failures_total %llu\n",
             (unsigned long long)m.failures);
    m.last_seq = seq;
    m.last_ts = now;
    if (fclose (f) != 0) {
        free (text);
        return NULL;
    }
    return text;
}

void metrics_tick (struct router *r, double now)
{
    cs_error_t e;
    char *text;

    if (!m.path || now < m.next)
        return;
    m.next = now + m.interval;
    if (!(text = render (r, now))) {
        log_msg ("metrics: out of memory");
        return;
    }
    if (atomic_file_write (m.path, text, strlen (text), 0, &e) < 0) {
        m.failures++;
        if (!m.failing)
            log_msg ("metrics: %s (will retry every %.0f s)", e.text,
                     m.interval);
        m.failing = true;
    } else {
        if (m.failing)
            log_msg ("metrics: '%s' written again", m.path);
        m.failing = false;
    }
    free (text);
}

void metrics_fini (struct router *r)
{
    (void)r;
    while (m.swarms) {
        struct msw *s = m.swarms;
        m.swarms = s->next;
        if (s->open)
            nodes_close (&s->ns);
        jobtime_close (&s->jt);
        free (s->id);
        free (s);
    }
    free (m.path);
    m.path = NULL;
}
