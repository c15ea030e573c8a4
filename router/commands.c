/* commands.c - the router's command handlers
 *
 * command.c parses and validates a command line; the handlers here need the
 * router's state.  To add a command: parse it in command.c, write a
 * cmd_<name>() here and add its row to the table at the end of this file
 * (hello lists the table as its capabilities).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "router/router-private.h"
#include "slurm/swarm.h"

typedef void (*command_f) (struct router *r, struct client *c,
                           struct rc_command *cmd);

struct command_handler {
    const char *name;           /* as in command.c and hello's capabilities */
    enum rc_cmd cmd;
    command_f fn;
};

static int check_nodes (struct router *r, struct client *c,
                        struct rc_command *cmd, struct swarm *sw,
                        int *count)
{
    int n = swarm_nodes (sw);
    if (cmd->nodes.all) {
        if (n == 0) {
            client_reject (r, c->id, cmd->request_id, RC_E_UNKNOWN_NODE,
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
            client_reject (r, c->id, cmd->request_id, RC_E_UNKNOWN_NODE, reason);
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

/* A swarm the router cannot see because a directory on the way cannot be
 * read or searched, or is not one: true, with the words in buf.
 */
static bool swarm_access_error (struct router *r, const char *id, char *buf,
                                size_t len)
{
    char path[PATH_MAX + 80];
    struct stat st;

    for (int i = 0; i < 2; i++) {
        if (i == 0)
            snprintf (path, sizeof (path), "%s/swarms", r->home);
        else
            snprintf (path, sizeof (path), "%s/swarms/%s", r->home, id);
        if (stat (path, &st) < 0) {
            if (errno == ENOENT)
                return false;
            snprintf (buf, len, "cannot access '%s': %s", path,
                      strerror (errno));
            return true;
        }
        if (!S_ISDIR (st.st_mode) || access (path, R_OK | X_OK) < 0) {
            snprintf (buf, len, "cannot access '%s': %s", path,
                      strerror (S_ISDIR (st.st_mode) ? errno : ENOTDIR));
            return true;
        }
    }
    return false;
}

static struct swarm *need_swarm (struct router *r, struct client *c,
                                 struct rc_command *cmd)
{
    struct swarm *sw = swarm_find (r, cmd->swarm_id);
    if (!sw && !r->remote) {
        swarms_scan (r);
        sw = swarm_find (r, cmd->swarm_id);
    }
    if (!sw) {
        char reason[2 * PATH_MAX + 256];
        if (!r->remote && swarm_access_error (r, cmd->swarm_id, reason,
                                              sizeof (reason))) {
            client_reject (r, c->id, cmd->request_id, RC_E_UNAVAILABLE,
                           reason);
            return NULL;
        }
        snprintf (reason, sizeof (reason), "no swarm \"%s\"", cmd->swarm_id);
        client_reject (r, c->id, cmd->request_id, RC_E_UNKNOWN_SWARM, reason);
    }
    return sw;
}

/* swarm.json's state is final: the swarm has ended */
static bool swarm_ended (const struct swarm *sw)
{
    return sw->state && (!strcmp (sw->state, "ended")
                         || !strcmp (sw->state, "cancelled")
                         || !strcmp (sw->state, "failed"));
}

/* A key the store does not know may have been used without a router (send
 * --key writes the same injection ids into the inboxes): when a target
 * inbox holds one, the key is learnt and the command refused as a
 * duplicate.  Returns true when it replied.
 */
static bool idem_learn (struct router *r, struct client *c,
                        struct rc_command *cmd, struct swarm *sw, int count,
                        const char *key)
{
    cJSON *ids = cJSON_CreateArray (), *d;
    cs_error_t error;

    if (!ids)
        return false;
    for (int i = 0; i < count; i++) {
        int node = node_at (cmd, i);
        char id[128];
        bool found;
        cJSON *o;
        rc_key_injection_id (sw->id, cmd->idempotency_key, node, id,
                             sizeof (id));
        if (inbox_has_id (r, sw, node, id, &found, &error) < 0) {
            char reason[600];
            snprintf (reason, sizeof (reason), "cannot check the "
                      "idempotency key in node %d's inbox: %s", node,
                      error.text);
            client_reject (r, c->id, cmd->request_id, RC_E_UNAVAILABLE,
                           reason);
            cJSON_Delete (ids);
            return true;
        }
        if (found && (o = cJSON_CreateObject ())) {
            cJSON_AddNumberToObject (o, "node_id", node);
            json_add_str (o, "injection_id", id);
            cJSON_AddItemToArray (ids, o);
        }
    }
    if (cJSON_GetArraySize (ids) == 0) {
        cJSON_Delete (ids);
        return false;
    }
    log_msg ("idempotency key '%s' was used without a router: learnt", key);
    if (!idem_add (r, key, cJSON_Duplicate (ids, 1), &error))
        log_msg ("%s", error.text);
    if ((d = client_reply_data (cmd->request_id))) {
        json_add_str (d, "code", RC_E_DUPLICATE);
        json_add_str (d, "reason", "this idempotency_key was used already; "
                      "nothing was sent again");
        json_add_item (d, "injections", ids);
    }
    else
        cJSON_Delete (ids);
    client_reply (r, c->id, "command_rejected", d);
    return true;
}

static void cmd_inject (struct router *r, struct client *c,
                        struct rc_command *cmd)
{
    struct swarm *sw;
    cJSON *ids;
    const cJSON *e;
    char key[256];
    int count;
    bool check = false;

    if (!(sw = need_swarm (r, c, cmd)))
        return;
    swarm_refresh (r, sw);
    if (swarm_ended (sw)) {
        char reason[192];
        snprintf (reason, sizeof (reason), "swarm \"%s\" has ended (%s); "
                  "nothing was sent", sw->id, sw->state);
        client_reject (r, c->id, cmd->request_id, RC_E_SWARM_ENDED, reason);
        return;
    }
    if (!r->remote) {
        char why[160], reason[256];
        if (swarm_unserved (sw->dir, why, sizeof (why))) {
            snprintf (reason, sizeof (reason), "swarm \"%s\" has no live "
                      "worker (%s); nothing was sent", sw->id, why);
            client_reject (r, c->id, cmd->request_id, RC_E_UNAVAILABLE,
                           reason);
            return;
        }
    }
    if (check_nodes (r, c, cmd, sw, &count) < 0)
        return;
    if (cmd->idempotency_key) {
        struct idem *im;
        snprintf (key, sizeof (key), "%s/%s", sw->id, cmd->idempotency_key);
        if ((im = idem_find (r, key)) && c->retry) {
            /* a resend whose answer was lost: the records the key names
             * are written where they are missing, and acknowledged */
            if (!(ids = cJSON_Duplicate (im->ids, 1))) {
                client_reject (r, c->id, cmd->request_id, RC_E_INTERNAL,
                               "out of memory");
                return;
            }
            check = true;
            goto append;
        }
        if (im) {
            cJSON *d = client_reply_data (cmd->request_id);
            if (d) {
                json_add_str (d, "code", RC_E_DUPLICATE);
                json_add_str (d, "reason", "this idempotency_key was used "
                              "already; nothing was sent again");
                json_add_item (d, "injections", cJSON_Duplicate (im->ids, 1));
            }
            client_reply (r, c->id, "command_rejected", d);
            return;
        }
        if (!r->remote && idem_learn (r, c, cmd, sw, count, key))
            return;
    }
    /* the injection ids first: a key is recorded with them before any
     * inbox record is written */
    if (!(ids = cJSON_CreateArray ())) {
        client_reject (r, c->id, cmd->request_id, RC_E_INTERNAL, "out of memory");
        return;
    }
    for (int i = 0; i < count; i++) {
        int node = node_at (cmd, i);
        char id[128];
        cJSON *o = cJSON_CreateObject ();
        if (cmd->idempotency_key)
            rc_key_injection_id (sw->id, cmd->idempotency_key, node, id,
                                 sizeof (id));
        else
            inbox_new_id (r, "inj", node, id, sizeof (id));
        if (!o || !cJSON_AddNumberToObject (o, "node_id", node)
            || json_add_str (o, "injection_id", id) < 0
            || !cJSON_AddItemToArray (ids, o)) {
            cJSON_Delete (o);
            cJSON_Delete (ids);
            client_reject (r, c->id, cmd->request_id, RC_E_INTERNAL,
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
            client_reject (r, c->id, cmd->request_id, RC_E_UNAVAILABLE, reason);
            cJSON_Delete (ids);
            return;
        }
    }
append:
    cJSON_ArrayForEach (e, ids) {
        const char *id = NULL;
        int64_t node = 0;
        struct append_ctx *a;
        cJSON *p = cJSON_CreateObject ();

        (void)json_get_str (e, "injection_id", &id, NULL);
        (void)json_get_i64 (e, "node_id", &node, NULL);
        if (!p || !id || !(a = append_ctx_new (r, c->id, cmd->request_id,
                                               sw->id, (int)node, id,
                                               "inject"))) {
            cJSON_Delete (p);
            client_reject (r, c->id, cmd->request_id, RC_E_INTERNAL,
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
        if (cmd->cwd)
            json_add_str (p, "cwd", cmd->cwd);
        if (cmd->new_thread)
            json_add_bool (p, "new_thread", true);
        if (cmd->retry_on_loss)
            json_add_bool (p, "retry_on_loss", true);
        if (check)
            inbox_append_check (r, sw, (int)node, "user", p, append_done, a);
        else
            inbox_append (r, sw, (int)node, "user", p, append_done, a);
        cJSON_Delete (p);
    }
    cJSON_Delete (ids);
}

/* ---- far-side commands that write inbox records -----------------------
 *
 * A far side of the relay sends a command again ("!retry") when the near
 * side restarted before the command's answer came.  interrupt,
 * approve_execution and swarm_terminate write inbox records under ids the
 * router makes up; so that a resend writes none of them twice, the ids are
 * remembered with the idempotency keys (idempotency.c: synced before the
 * records are written) under "<swarm>/relay:<far-id> <client> <request>",
 * and a command found there is answered again: the records that are
 * missing are written, under the same ids.
 */
static bool relay_key (struct client *c, const struct rc_command *cmd,
                       const char *swarm, char *key, size_t len)
{
    key[0] = '\0';
#ifdef HAVE_RELAY
    if (c->relay && c->vc && cmd->request_id) {
        char name[256];
        int n;
        relay_client_name (c->vc, name, sizeof (name));
        n = snprintf (key, len, "%s/relay:%s %s", swarm, name,
                      cmd->request_id);
        if (n > 0 && (size_t)n < len)
            return true;
        key[0] = '\0';
    }
#endif
    return false;
}

/* The ids remembered under key (a copy: cJSON_Delete), or NULL. */
static cJSON *relay_recall (struct router *r, const char *key)
{
    struct idem *im;

    if (!key[0] || !(im = idem_find (r, key)))
        return NULL;
    log_msg ("'%s' was handled before: answered again, nothing done twice",
             key);
    return cJSON_Duplicate (im->ids, 1);
}

/* Remember ids under key ("": nothing to remember); -1 when that failed
 * (the client was told, nothing was done).
 */
static int relay_remember (struct router *r, struct client *c,
                           const struct rc_command *cmd, const char *key,
                           const cJSON *ids)
{
    cs_error_t error;
    cJSON *cpy;

    if (!key[0])
        return 0;
    /* synced now: these ids cannot be found in an inbox after a crash */
    if (!(cpy = cJSON_Duplicate (ids, 1)) || !idem_add (r, key, cpy, &error)
        || idem_sync (r, &error) < 0) {
        char reason[700];
        snprintf (reason, sizeof (reason), "cannot record the command: %s",
                  cpy ? error.text : "out of memory");
        log_msg ("%s", reason);
        client_reject (r, c->id, cmd->request_id, RC_E_UNAVAILABLE, reason);
        return -1;
    }
    return 0;
}

/* [{"node_id","injection_id"}...]: a new record id per target node. */
static cJSON *new_ids (struct router *r, struct rc_command *cmd, int count,
                       const char *prefix)
{
    cJSON *ids = cJSON_CreateArray ();

    for (int i = 0; ids && i < count; i++) {
        int node = cmd ? node_at (cmd, i) : i;
        char id[128];
        cJSON *o = cJSON_CreateObject ();
        inbox_new_id (r, prefix, node, id, sizeof (id));
        if (!o || !cJSON_AddNumberToObject (o, "node_id", node)
            || json_add_str (o, "injection_id", id) < 0
            || !cJSON_AddItemToArray (ids, o)) {
            cJSON_Delete (o);
            cJSON_Delete (ids);
            return NULL;
        }
    }
    return ids;
}

/* The record ids of a command to the nodes of sw: those remembered when
 * the relay sends it again (*againp true), else new ones (one per node of
 * targets, or per node 0..count-1 when targets is NULL), remembered for a
 * relay client.  NULL when that failed (the client was told).
 */
static cJSON *recall_or_new_ids (struct router *r, struct client *c,
                                 const struct rc_command *cmd,
                                 const struct swarm *sw,
                                 struct rc_command *targets, int count,
                                 const char *prefix, bool *againp)
{
    char key[768];
    cJSON *ids;

    (void)relay_key (c, cmd, sw->id, key, sizeof (key));
    if ((*againp = (ids = relay_recall (r, key)) != NULL))
        return ids;
    if (!(ids = new_ids (r, targets, count, prefix))) {
        client_reject (r, c->id, cmd->request_id, RC_E_INTERNAL,
                       "out of memory");
        return NULL;
    }
    if (relay_remember (r, c, cmd, key, ids) < 0) {
        cJSON_Delete (ids);
        return NULL;
    }
    return ids;
}

static void cmd_interrupt (struct router *r, struct client *c,
                           struct rc_command *cmd)
{
    struct swarm *sw;
    const cJSON *e;
    cJSON *ids;
    bool again;
    int count;

    if (!(sw = need_swarm (r, c, cmd)) || check_nodes (r, c, cmd, sw, &count) < 0)
        return;
    if (!(ids = recall_or_new_ids (r, c, cmd, sw, cmd, count, "int", &again)))
        return;
    cJSON_ArrayForEach (e, ids) {
        const char *id = NULL;
        int64_t node = 0;
        struct append_ctx *a;
        cJSON *p = cJSON_CreateObject ();
        (void)json_get_str (e, "injection_id", &id, NULL);
        (void)json_get_i64 (e, "node_id", &node, NULL);
        if (!p || !id || !(a = append_ctx_new (r, c->id, cmd->request_id,
                                               sw->id, (int)node, id,
                                               "interrupt"))) {
            cJSON_Delete (p);
            client_reject (r, c->id, cmd->request_id, RC_E_INTERNAL, "out of memory");
            break;
        }
        json_add_str (p, "id", id);
        if (cmd->request_id)
            json_add_str (p, "request_id", cmd->request_id);
        if (again)
            inbox_append_check (r, sw, (int)node, "interrupt", p, append_done,
                                a);
        else
            inbox_append (r, sw, (int)node, "interrupt", p, append_done, a);
        cJSON_Delete (p);
    }
    cJSON_Delete (ids);
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
    char id[128], key[768];
    struct append_ctx *a;
    cJSON *p = NULL, *decision, *ids;
    bool again = false;

    /* answered before the near side of the relay restarted: again, with
     * the same record (the approval may be over by now) */
    (void)relay_key (c, cmd, cmd->swarm_id ? cmd->swarm_id : "*", key,
                     sizeof (key));
    if ((ids = relay_recall (r, key))) {
        const cJSON *e = cJSON_GetArrayItem (ids, 0);
        const char *s_id = NULL, *rid = NULL;
        int64_t n = -1;
        (void)json_get_str (e, "swarm_id", &s_id, NULL);
        (void)json_get_str (e, "injection_id", &rid, NULL);
        (void)json_get_i64 (e, "node_id", &n, NULL);
        if (s_id && rid && n >= 0 && (sw = swarm_find (r, s_id))) {
            snprintf (id, sizeof (id), "%s", rid);
            node = (int)n;
            again = true;
        }
        cJSON_Delete (ids);
    }
    for (struct swarm *s = r->swarms; s && !ap && !again; s = s->next) {
        if (cmd->swarm_id && strcmp (cmd->swarm_id, s->id))
            continue;
        if ((ap = rt_trans_approval (s->t, cmd->approval_id, &node)))
            sw = s;
    }
    if (!ap && !again) {
        char reason[256];
        snprintf (reason, sizeof (reason), "no pending approval \"%.128s\"",
                  cmd->approval_id);
        client_reject (r, c->id, cmd->request_id, RC_E_UNKNOWN_APPROVAL, reason);
        return;
    }
    if (!again && cmd->amendment && !approval_offers_amendment (ap)) {
        client_reject_member (r, c->id, cmd->request_id,
                              RC_E_UNSUPPORTED_DECISION, "payload.decision",
                              "this approval offers no execpolicy "
                              "amendment: answer accept, acceptForSession, "
                              "decline or cancel");
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
    if (!again) {
        cJSON *o;
        inbox_new_id (r, "apr", node, id, sizeof (id));
        if (key[0]) {
            if (!(ids = cJSON_CreateArray ()) || !(o = cJSON_CreateObject ())
                || !cJSON_AddItemToArray (ids, o)
                || !cJSON_AddNumberToObject (o, "node_id", node)
                || json_add_str (o, "injection_id", id) < 0
                || json_add_str (o, "swarm_id", sw->id) < 0) {
                cJSON_Delete (ids);
                cJSON_Delete (decision);
                client_reject (r, c->id, cmd->request_id, RC_E_INTERNAL,
                               "out of memory");
                return;
            }
            if (relay_remember (r, c, cmd, key, ids) < 0) {
                cJSON_Delete (ids);
                cJSON_Delete (decision);
                return;
            }
            cJSON_Delete (ids);
        }
    }
    if (!decision || !(p = cJSON_CreateObject ())
        || !(a = append_ctx_new (r, c->id, cmd->request_id, sw->id, node,
                                 id, "approval"))) {
        cJSON_Delete (p);
        cJSON_Delete (decision);
        client_reject (r, c->id, cmd->request_id, RC_E_INTERNAL, "out of memory");
        return;
    }
    a->extra = strdup (cmd->approval_id);
    a->decision = cJSON_Duplicate (decision, true);
    json_add_str (p, "id", id);
    json_add_str (p, "approval_id", cmd->approval_id);
    json_add_item (p, "decision", decision);
    if (cmd->request_id)
        json_add_str (p, "request_id", cmd->request_id);
    if (again)
        inbox_append_check (r, sw, node, "approval", p, append_done, a);
    else
        inbox_append (r, sw, node, "approval", p, append_done, a);
    cJSON_Delete (p);
}

static const char *swarm_status_str (struct swarm *sw)
{
    if (sw->terminating && !swarm_ended (sw))
        return "terminating";
    return sw->state ? sw->state : "unknown";
}

/* The original's status values: "terminated" when swarm.json says the
 * swarm is over, else "terminating" once asked to, else "running"
 * (submitted, pending, migrating and running swarms all take injections).
 */
static const char *swarm_status_v1 (struct swarm *sw)
{
    static const char *const over[] = { "ended", "cancelled", "failed",
                                        "stopped", "terminated", NULL };
    for (const char *const *p = over; sw->state && *p; p++)
        if (!strcmp (sw->state, *p))
            return "terminated";
    if (sw->terminating)
        return "terminating";
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
    cJSON *d = client_reply_data (cmd->request_id);
    cJSON *swarms = cJSON_CreateObject ();
    if (!r->remote)
        swarms_scan (r);
    for (struct swarm *sw = r->swarms; sw && swarms; sw = sw->next)
        json_add_item (swarms, sw->id, swarm_summary (sw));
    json_add_item (d, "swarms", swarms);
    client_reply (r, c->id, "swarm_list", d);
}

static void cmd_swarm_status (struct router *r, struct client *c,
                              struct rc_command *cmd)
{
    struct swarm *sw = need_swarm (r, c, cmd);
    cJSON *d, *sum;
    if (!sw)
        return;
    if (!(d = client_reply_data (cmd->request_id)))
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
    client_reply (r, c->id, "swarm_status", d);
}

static void cmd_approvals_list (struct router *r, struct client *c,
                                struct rc_command *cmd)
{
    cJSON *d = client_reply_data (cmd->request_id);
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
    client_reply (r, c->id, "approvals_list", d);
}

/* A shutdown record to every node's inbox, and for a swarm of "codeswarm
 * launch" (it has a swarm.json, hence a state) a cancel of its supervisor
 * or its Slurm jobs (control.c); swarm_terminated once all of it is done.
 * An ended swarm needs nothing: swarm_terminated at once.
 */
static void cmd_terminate (struct router *r, struct client *c,
                           struct rc_command *cmd)
{
    struct swarm *sw = need_swarm (r, c, cmd);
    control_term_t *t;
    bool ended, again;
    const cJSON *e;
    cJSON *d, *ids;
    int n;

    if (!sw)
        return;
    ended = swarm_ended (sw);
    n = ended ? 0 : swarm_nodes (sw);
    /* the shutdown records' ids, the same when the command comes again */
    if (!(ids = recall_or_new_ids (r, c, cmd, sw, NULL, n, "stop", &again)))
        return;
    if (ended) {
        cJSON_Delete (ids);
        ids = NULL;
    }
    n = ids ? cJSON_GetArraySize (ids) : 0;
    sw->terminating = !ended;
    if ((d = client_reply_data (cmd->request_id))) {
        json_add_str (d, "swarm_id", sw->id);
        json_add_str (d, "status", ended ? sw->state : "terminating");
        cJSON_AddNumberToObject (d, "node_count", swarm_nodes (sw));
        client_reply (r, c->id, "swarm_status", d);
    }
    t = control_terminate (r->control, c->id, cmd, sw->id, n,
                           !ended && !r->remote && sw->state != NULL);
    cJSON_ArrayForEach (e, ids) {
        const char *id = NULL;
        int64_t k = 0;
        struct append_ctx *a;
        cJSON *p = cJSON_CreateObject ();
        (void)json_get_str (e, "injection_id", &id, NULL);
        (void)json_get_i64 (e, "node_id", &k, NULL);
        if (!p || !id || !(a = append_ctx_new (r, c->id, cmd->request_id,
                                               sw->id, (int)k, id,
                                               "shutdown"))) {
            cJSON_Delete (p);
            control_term_acked (r->control, t, "out of memory");
            continue;
        }
        a->term = t;
        json_add_str (p, "id", id);
        if (again)
            inbox_append_check (r, sw, (int)k, "shutdown", p, append_done, a);
        else
            inbox_append (r, sw, (int)k, "shutdown", p, append_done, a);
        cJSON_Delete (p);
    }
    cJSON_Delete (ids);
}

/* swarm_launch and providers_list run the launcher on this machine */
static bool launcher_here (struct router *r, struct client *c,
                           struct rc_command *cmd)
{
    if (r->remote) {
        client_reject (r, c->id, cmd->request_id, RC_E_UNSUPPORTED, "this "
                       "router follows the swarms over ssh: launch on the "
                       "login node (codeswarm launch), or run a router "
                       "there");
        return false;
    }
    return true;
}

static void cmd_swarm_launch (struct router *r, struct client *c,
                              struct rc_command *cmd)
{
    if (launcher_here (r, c, cmd)) {
        /* the launcher's audit entry names this client (slurm/audit.c) */
        char uid[24];
        snprintf (uid, sizeof (uid), "%u", (unsigned)c->who.uid);
        setenv ("CODESWARM_AUDIT_UID", uid, 1);
        setenv ("CODESWARM_AUDIT_VIA", c->who.via[0] ? c->who.via : "router",
                1);
        setenv ("CODESWARM_AUDIT_PEER", c->who.peer, 1);
        control_launch (r->control, c->id, cmd);
        unsetenv ("CODESWARM_AUDIT_UID");
        unsetenv ("CODESWARM_AUDIT_VIA");
        unsetenv ("CODESWARM_AUDIT_PEER");
    }
}

static void cmd_providers_list (struct router *r, struct client *c,
                                struct rc_command *cmd)
{
    if (launcher_here (r, c, cmd))
        control_providers (r->control, c->id, cmd);
}

/* there is no inter-swarm queue: always empty */
static void cmd_queue_list (struct router *r, struct client *c,
                            struct rc_command *cmd)
{
    cJSON *d = client_reply_data (cmd->request_id);
    json_add_item (d, "items", cJSON_CreateArray ());
    client_reply (r, c->id, "queue_list", d);
}

void router_inject_text (struct router *r, int client, const char *request_id,
                         const char *swarm_id, const char *content)
{
    struct client who = { .id = client };
    struct rc_command cmd = { .cmd = RC_INJECT, .name = "inject" };

    cmd.nodes.all = true;
    if ((request_id && !(cmd.request_id = strdup (request_id)))
        || !(cmd.swarm_id = strdup (swarm_id))
        || !(cmd.content = strdup (content))) {
        rc_release (&cmd);
        client_reject (r, client, request_id, RC_E_INTERNAL, "out of memory");
        return;
    }
    cmd_inject (r, &who, &cmd);
    rc_release (&cmd);
}

static const struct command_handler *handlers (void);

static void cmd_hello (struct router *r, struct client *c,
                       struct rc_command *cmd)
{
    cJSON *d = client_reply_data (cmd->request_id);
    cJSON *a = cJSON_CreateArray ();
    cJSON *f = cJSON_CreateArray ();
    for (const struct command_handler *h = handlers (); h->name && a; h++)
        cJSON_AddItemToArray (a, cJSON_CreateString (h->name));
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
    client_reply (r, c->id, "hello", d);
    if (cmd->subscribe && !c->started)
        client_start (r, c, cmd->has_since, cmd->since);
}

static void cmd_subscribe (struct router *r, struct client *c,
                           struct rc_command *cmd)
{
    cJSON *d = client_reply_data (cmd->request_id);
    if (d) {
        if (cmd->has_since)
            json_add_u64 (d, "since", cmd->since);
        else
            cJSON_AddNullToObject (d, "since");
        json_add_u64 (d, "seq", eventlog_seq (r->log));
    }
    client_reply (r, c->id, "subscribed", d);
    client_start (r, c, cmd->has_since, cmd->since);
}

/* publish: a client's task_started / task_complete, as a stream event of
 * the swarm (logged, with a seq, seen by every client).
 */
static void cmd_publish (struct router *r, struct client *c,
                         struct rc_command *cmd)
{
    struct swarm *sw = need_swarm (r, c, cmd);
    cJSON *d, *extra = NULL, *m, *reply;

    if (!sw)
        return;
    if (cmd->node_id >= sw->node_count && sw->node_count > 0) {
        client_reject (r, c->id, cmd->request_id, RC_E_UNKNOWN_NODE,
                       "no such node in the swarm");
        return;
    }
    if (!(d = cJSON_CreateObject ())
        || (cmd->data && !(extra = json_parse (cmd->data, strlen (cmd->data),
                                               NULL)))) {
        cJSON_Delete (d);
        client_reject (r, c->id, cmd->request_id, RC_E_INTERNAL,
                       "out of memory");
        return;
    }
    json_add_str (d, "swarm_id", sw->id);
    if (sw->job_id)
        json_add_str (d, "job_id", sw->job_id);
    else
        cJSON_AddNullToObject (d, "job_id");
    if (cmd->node_id >= 0)
        cJSON_AddNumberToObject (d, "node_id", cmd->node_id);
    else
        cJSON_AddNullToObject (d, "node_id");
    if (extra && !cJSON_GetObjectItem (extra, "injection_id"))
        cJSON_AddNullToObject (d, "injection_id");
    while (extra && (m = extra->child)) {
        cJSON_DetachItemViaPointer (extra, m);
        if (cJSON_GetObjectItem (d, m->string))
            cJSON_Delete (m);           /* the envelope's members win */
        else
            cJSON_AddItemToObject (d, m->string, m);
    }
    cJSON_Delete (extra);
    router_emit (cmd->event, d, r);
    if ((reply = client_reply_data (cmd->request_id))) {
        json_add_str (reply, "event", cmd->event);
        client_reply (r, c->id, "published", reply);
    }
}

/* The commands, in the order hello lists them as capabilities. */
static const struct command_handler handler_table[] = {
    { "hello", RC_HELLO, cmd_hello },
    { "inject", RC_INJECT, cmd_inject },
    { "interrupt", RC_INTERRUPT, cmd_interrupt },
    { "approve_execution", RC_APPROVE, cmd_approve },
    { "swarm_list", RC_SWARM_LIST, cmd_swarm_list },
    { "swarm_status", RC_SWARM_STATUS, cmd_swarm_status },
    { "approvals_list", RC_APPROVALS_LIST, cmd_approvals_list },
    { "subscribe", RC_SUBSCRIBE, cmd_subscribe },
    { "swarm_terminate", RC_SWARM_TERMINATE, cmd_terminate },
    { "swarm_launch", RC_SWARM_LAUNCH, cmd_swarm_launch },
    { "providers_list", RC_PROVIDERS_LIST, cmd_providers_list },
    { "queue_list", RC_QUEUE_LIST, cmd_queue_list },
    { "publish", RC_PUBLISH, cmd_publish },
    { NULL, 0, NULL },
};

static const struct command_handler *handlers (void)
{
    return handler_table;
}

void commands_handle (struct router *r, struct client *c, const char *line,
                      size_t len)
{
    struct rc_command cmd;
    struct rc_reject rej;
    const struct command_handler *h;

    if (len == 0)
        return;
    if (rc_parse (line, len, &cmd, &rej) < 0) {
        client_reject_member (r, c->id, cmd.request_id, rej.code,
                              rej.member, rej.reason);
        rc_release (&cmd);
        return;
    }
    /* the first command starts the stream (subscribe and hello choose) */
    if (!c->started && cmd.cmd != RC_SUBSCRIBE && cmd.cmd != RC_HELLO)
        client_start (r, c, false, 0);
    for (h = handlers (); h->name; h++)
        if (h->cmd == cmd.cmd) {
            h->fn (r, c, &cmd);
            break;
        }
    if (!h->name)
        client_reject (r, c->id, cmd.request_id, RC_E_INTERNAL,
                       "the router has no handler for this command");
    rc_release (&cmd);
}
