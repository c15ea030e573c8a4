/* remote-link.c - the ssh link's callbacks into the router
 *
 * remote.c knows nothing of the router; this file gives it the
 * struct remote_ops that turn what it receives into swarms and records,
 * and loads the remote swarms known from earlier runs.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "router/router-private.h"

/* A swarm id from the far side names a local directory: check it. */
static bool swarm_id_ok (const char *id)
{
    size_t n = strlen (id);
    if (n == 0 || n > 64 || id[0] == '.')
        return false;
    return strspn (id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789._-") == n;
}

static void link_swarm (void *arg, const char *swarm_id, const cJSON *info)
{
    struct router *r = arg;
    struct swarm *sw = swarm_find (r, swarm_id);
    if (!swarm_id_ok (swarm_id))
        return;
    if (!sw && !(sw = swarm_add (r, swarm_id)))
        return;
    swarm_info (sw, info);
}

static void link_record (void *arg, const char *swarm_id, int node,
                         const char *cursor, const cJSON *rec)
{
    struct router *r = arg;
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
        stream_handle_record (r, s, rec, seq);
    s->dirty = true;
    r->dirty = true;
    if (!router_reading (r))
        remote_hold (r->remote, true);  /* the next frame waits */
}

static cJSON *link_cursors (void *arg)
{
    struct router *r = arg;
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

static void link_state (void *arg, const char *state, const char *detail)
{
    (void)arg;
    log_msg ("ssh link %s%s%s", state, detail ? ": " : "",
             detail ? detail : "");
}

/* Load remote swarms known from earlier runs (their state files). */
static void remote_link_load (struct router *r)
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
            if (swarm_name_is_node (nm, &node))
                (void)stream_get (r, sw, node, true);
        }
        closedir (cd);
    }
    closedir (d);
}

static const struct remote_ops link_ops = {
    .swarm = link_swarm,
    .record = link_record,
    .cursors = link_cursors,
    .state = link_state,
};

int remote_link_start (struct router *r, const struct remote_opts *o,
                       cs_error_t *errp)
{
    if (!(r->remote = remote_create (o, &link_ops, r, errp)))
        return -1;
    remote_link_load (r);
    return 0;
}
