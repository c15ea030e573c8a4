/* swarms.c - the swarms the router knows, and finding them
 *
 * A swarm is a directory under <home>/swarms (local mode) or a name the
 * ssh link reported (remote mode, state under <home>/router/remote/<id>).
 * Local mode scans for new swarms and new outbox streams every
 * SCAN_INTERVAL and whenever a command names a swarm it does not know.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "router/router-private.h"

struct swarm *swarm_find (struct router *r, const char *id)
{
    for (struct swarm *sw = r->swarms; sw; sw = sw->next)
        if (!strcmp (sw->id, id))
            return sw;
    return NULL;
}

void swarm_info (struct swarm *sw, const cJSON *info)
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

struct swarm *swarm_add (struct router *r, const char *id)
{
    struct swarm *sw = calloc (1, sizeof (*sw));
    cs_error_t error;

    if (!sw || !(sw->id = strdup (id)))
        goto nomem;
    sw->r = r;
    if (!(sw->t = rt_trans_create (id, router_emit, r)))
        goto nomem;
    rt_trans_set_emit_text (sw->t, router_emit_text, r);
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

void swarm_destroy (struct swarm *sw)
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

bool swarm_name_is_node (const char *name, int *node)
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

void swarm_refresh (struct router *r, struct swarm *sw)
{
    char path[PATH_MAX + 16];
    cs_error_t error;
    cJSON *info;

    if (r->remote)
        return;
    snprintf (path, sizeof (path), "%s/swarm.json", sw->dir);
    if ((info = state_read_json (path, &error))) {
        swarm_info (sw, info);
        cJSON_Delete (info);
    }
}

static void swarm_scan (struct router *r, struct swarm *sw)
{
    char path[PATH_MAX + 16];
    struct dirent *de;
    DIR *d;

    swarm_refresh (r, sw);
    snprintf (path, sizeof (path), "%s/outbox", sw->dir);
    if (!(d = opendir (path)))
        return;
    while ((de = readdir (d))) {
        struct stream *s;
        int node;
        if (!swarm_name_is_node (de->d_name, &node))
            continue;
        if (stream_get (r, sw, node, false))
            continue;
        if ((s = stream_get (r, sw, node, true)))
            (void)stream_follow (r, s);
    }
    closedir (d);
}

void swarms_scan (struct router *r)
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
        swarm_scan (r, sw);
    }
    closedir (d);
}

int swarm_nodes (struct swarm *sw)
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
