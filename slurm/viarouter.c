/* viarouter.c - "codeswarm launch" and "codeswarm cancel" through a router
 *
 * When a router listens on the home's socket, launch and cancel are sent
 * to it as swarm_launch and swarm_terminate, so that every client of the
 * router sees the same events as the command line (the router runs this
 * program again, with CODESWARM_NO_ROUTER set, to do the work).  What is
 * printed is what the direct path prints: the router's progress events
 * carry the launcher's own messages.  Without a router, or with
 * CODESWARM_NO_ROUTER set, or with options the protocol has no member for
 * (--config, --template, --sbatch-opt, --resume), the verbs act directly.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/lineio.h"
#include "common/log.h"
#include "router/paths.h"
#include "slurm/launch.h"

#define VR_MAX_LINE (16 * 1024 * 1024)

struct vr {
    int fd;
    lineio_t *in;
    char rid[64];
};

static volatile sig_atomic_t vr_interrupted;

static void vr_on_int (int sig)
{
    (void)sig;
    vr_interrupted = 1;
}

/* Connect to the home's router; false when there is none. */
static bool vr_open (struct vr *v)
{
    char home[LAUNCH_PATH_MAX], sock[LAUNCH_PATH_MAX];

    memset (v, 0, sizeof (*v));
    v->fd = -1;
    if (getenv ("CODESWARM_NO_ROUTER"))
        return false;
    if (launch_home (home, sizeof (home), false) < 0
        || router_socket_path (home, sock, sizeof (sock), false, NULL) < 0
        || (v->fd = router_connect (sock, NULL)) < 0)
        return false;
    if (!(v->in = lineio_create (VR_MAX_LINE))) {
        close (v->fd);
        v->fd = -1;
        return false;
    }
    return true;
}

static void vr_close (struct vr *v)
{
    if (v->fd >= 0)
        close (v->fd);
    lineio_destroy (v->in);
}

static int vr_send (struct vr *v, const char *command, cJSON *payload)
{
    cJSON *o = cJSON_CreateObject ();
    char *s = NULL;
    int rc = -1;

    snprintf (v->rid, sizeof (v->rid), "cli-%d-%s", (int)getpid (), command);
    if (o && json_add_str (o, "protocol", "codeswarm.router.v1") == 0
        && json_add_str (o, "type", "command") == 0
        && json_add_str (o, "command", command) == 0
        && json_add_str (o, "request_id", v->rid) == 0
        && json_add_item (o, "payload", payload) == 0
        && (s = cJSON_PrintUnformatted (o))
        && fd_write_all (v->fd, s, strlen (s)) == 0
        && fd_write_all (v->fd, "\n", 1) == 0)
        rc = 0;
    else if (!o)
        cJSON_Delete (payload);
    free (s);
    cJSON_Delete (o);
    return rc;
}

/* The next event of our request (cJSON_Delete); NULL when the router went
 * away (or on Ctrl-C: vr_interrupted).
 */
static cJSON *vr_next (struct vr *v)
{
    const char *line;
    size_t len;

    for (;;) {
        struct pollfd p = { .fd = v->fd, .events = POLLIN };
        ssize_t n;
        while (lineio_next (v->in, &line, &len, NULL) == 1) {
            cJSON *o = json_parse (line, len, NULL);
            const cJSON *d = cJSON_GetObjectItemCaseSensitive (o, "data");
            const char *rid;
            if (o && json_get_str (d, "request_id", &rid, NULL) == 0
                && !strcmp (rid, v->rid))
                return o;
            cJSON_Delete (o);
        }
        if (vr_interrupted)
            return NULL;
        if (poll (&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        n = lineio_fill (v->in, v->fd);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return NULL;
    }
}

static const char *ev_name (const cJSON *o)
{
    const char *s = "";
    (void)json_get_str (o, "event", &s, NULL);
    return s;
}

static const char *ev_str (const cJSON *o, const char *key)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive (o, "data");
    const char *s = NULL;
    (void)json_get_str (d, key, &s, NULL);
    return s;
}

/* ---- launch ---------------------------------------------------------------- */

bool launch_via_router_possible (const struct launch_opts *o)
{
    return !o->request && !o->progress_json && !o->config && !o->template
           && o->nsbatch_opts == 0 && !o->resume
           && !getenv ("CODESWARM_NO_ROUTER");
}

static cJSON *launch_payload (const struct launch_opts *o, const char *agents)
{
    cJSON *p = cJSON_CreateObject ();
    cJSON *pp = cJSON_CreateObject ();

    if (!p || !pp) {
        cJSON_Delete (p);
        cJSON_Delete (pp);
        return NULL;
    }
    json_add_u64 (p, "nodes", (uint64_t)o->nodes);
    if (o->local)
        json_add_str (p, "provider", "local");
    else if (o->slurm)
        json_add_str (p, "provider", "slurm");
    if (agents)
        json_add_str (p, "agents_md_content", agents);
    if (o->name)
        json_add_str (pp, "name", o->name);
    if (o->partition)
        json_add_str (pp, "partition", o->partition);
    if (o->account)
        json_add_str (pp, "account", o->account);
    if (o->qos)
        json_add_str (pp, "qos", o->qos);
    if (o->time)
        json_add_str (pp, "time_limit", o->time);
    if (o->gpus_per_node)
        json_add_u64 (pp, "gpus_per_node", (uint64_t)o->gpus_per_node);
    if (o->persist)
        json_add_bool (pp, "persist", true);
    if (o->warn_given)
        json_add_double (pp, "warn", o->warn);
    if (o->idle_timeout > 0)
        json_add_double (pp, "idle_timeout", o->idle_timeout);
    if (o->pending_timeout > 0)
        json_add_double (pp, "pending_timeout", o->pending_timeout);
    json_add_item (p, "provider_params", pp);
    return p;
}

int launch_via_router (const struct launch_opts *o, const char *agents)
{
    struct sigaction sa = { .sa_handler = vr_on_int }, old;
    char swarm[128] = "", job[64] = "";
    struct vr v;
    cJSON *e, *payload;
    int rc = 1;

    if (!vr_open (&v))
        return -1;              /* no router: the caller goes direct */
    if (!(payload = launch_payload (o, agents)) || vr_send (&v, "swarm_launch",
                                                             payload) < 0) {
        log_msg ("cannot send the launch to the router");
        vr_close (&v);
        return 1;
    }
    sigemptyset (&sa.sa_mask);
    sigaction (SIGINT, &sa, &old);
    while ((e = vr_next (&v))) {
        const char *name = ev_name (e);
        const char *stage = ev_str (e, "stage");
        const char *msg = ev_str (e, "message");

        if (!strcmp (name, "swarm_launch_progress") && stage) {
            if (!strcmp (stage, "created")) {
                snprintf (swarm, sizeof (swarm), "%s",
                          ev_str (e, "swarm_id") ? ev_str (e, "swarm_id")
                                                 : "");
                snprintf (job, sizeof (job), "%s",
                          ev_str (e, "job_id") ? ev_str (e, "job_id") : "");
                if (o->parsable)
                    printf ("%s;%s\n", swarm, job);
                else
                    printf ("%s (%d node%s)\n", msg ? msg : swarm, o->nodes,
                            o->nodes == 1 ? "" : "s");
                fflush (stdout);
                if (o->no_wait) {
                    rc = 0;
                    cJSON_Delete (e);
                    break;
                }
            }
            else if (strcmp (stage, "queued") && msg && !o->parsable)
                fprintf (stderr, "%s\n", msg);
        }
        else if (!strcmp (name, "swarm_launched")) {
            rc = 0;
            cJSON_Delete (e);
            break;
        }
        else if (!strcmp (name, "command_rejected")) {
            const char *code = ev_str (e, "code");
            if (code && !strcmp (code, "unsupported") && !ev_str (e, "member")
                && !swarm[0]) {
                /* a router that cannot launch here (it follows the swarms
                 * over ssh): do it ourselves */
                cJSON_Delete (e);
                sigaction (SIGINT, &old, NULL);
                vr_close (&v);
                return -1;
            }
            log_msg ("%s", ev_str (e, "reason") ? ev_str (e, "reason")
                                                : "the router refused");
            rc = code && (!strcmp (code, "bad_payload")
                          || !strcmp (code, "unsupported")) ? 2 : 1;
            cJSON_Delete (e);
            break;
        }
        cJSON_Delete (e);
    }
    if (!e && vr_interrupted) {
        /* as the direct path: Ctrl-C while waiting cancels the swarm,
         * unless --detach */
        if (o->detach || !swarm[0])
            log_msg ("interrupted: swarm %s is left as it is%s",
                     swarm[0] ? swarm : "(not created yet)",
                     o->detach ? " (--detach)" : "");
        else {
            cJSON *p = cJSON_CreateObject ();
            log_msg ("interrupted: cancelling swarm %s (with --detach, "
                     "Ctrl-C leaves it be)", swarm);
            json_add_str (p, "swarm_id", swarm);
            vr_interrupted = 0;
            if (vr_send (&v, "swarm_terminate", p) == 0)
                while ((e = vr_next (&v))) {
                    bool end = !strcmp (ev_name (e), "swarm_terminated")
                               || !strcmp (ev_name (e), "command_rejected");
                    cJSON_Delete (e);
                    if (end)
                        break;
                }
        }
        rc = 130;
    }
    else if (!e && rc != 0)
        log_msg ("the router went away before the launch ended");
    sigaction (SIGINT, &old, NULL);
    vr_close (&v);
    return rc;
}

/* ---- cancel ---------------------------------------------------------------- */

int cancel_via_router (const char *id, double grace, bool grace_given)
{
    struct vr v;
    cJSON *p, *e;
    int rc = 1;

    if (!vr_open (&v))
        return -1;
    if (!(p = cJSON_CreateObject ()) || json_add_str (p, "swarm_id", id) < 0) {
        cJSON_Delete (p);
        vr_close (&v);
        return 1;
    }
    if (grace_given) {
        cJSON *tp = cJSON_CreateObject ();
        json_add_double (tp, "grace", grace);
        json_add_item (p, "terminate_params", tp);
    }
    if (vr_send (&v, "swarm_terminate", p) < 0) {
        log_msg ("cannot send the cancel to the router");
        vr_close (&v);
        return 1;
    }
    {
        const char *already = NULL;
        char state[32] = "";
        while ((e = vr_next (&v))) {
            const char *name = ev_name (e);
            if (!strcmp (name, "swarm_status")) {
                const char *st = ev_str (e, "status");
                if (st && strcmp (st, "terminating")) {
                    snprintf (state, sizeof (state), "%s", st);
                    already = state;
                }
            }
            else if (!strcmp (name, "swarm_terminated")) {
                if (already)
                    printf ("swarm %s: already %s\n", id, already);
                else
                    printf ("swarm %s: cancelled\n", id);
                rc = 0;
                cJSON_Delete (e);
                break;
            }
            else if (!strcmp (name, "command_rejected")) {
                log_msg ("%s", ev_str (e, "reason") ? ev_str (e, "reason")
                                                    : "the router refused");
                cJSON_Delete (e);
                break;
            }
            cJSON_Delete (e);
        }
        if (!e && rc != 0)
            log_msg ("the router went away before the cancel ended");
    }
    vr_close (&v);
    return rc;
}
