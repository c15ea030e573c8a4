/* inbox.c - writes into the nodes' inboxes and their acknowledgements
 *
 * Local mode appends with a mailbox writer held open per node; remote mode
 * queues the append on the ssh link.  Either way the command's reply
 * (inject_ack, interrupt_ack, approval_ack, swarm_terminate_progress or a
 * reject) is
 * sent once the append is acknowledged, by append_done().
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "router/router-private.h"

/* The node's inbox stream with its writer opened (and its lock taken). */
static struct stream *inbox_stream (struct router *r, struct swarm *sw,
                                    int node, cs_error_t *errp)
{
    char path[PATH_MAX];
    struct stream *s;

    if (!(s = stream_get (r, sw, node, true))) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    if (!s->inbox) {
        if (mb_stream_path (sw->dir, "inbox", node, path, sizeof (path),
                            errp) < 0
            || !(s->inbox = mb_writer_open (path, &r->opt, errp)))
            return NULL;
        /* others may have written while the lock was not ours */
        strset_release (&s->keyed);
        s->keyed_read = false;
    }
    return s;
}

/* Keyed ids are those of send --key, with or without a router. */
static bool id_is_keyed (const char *id)
{
    return id && !strncmp (id, "key-", 4);
}

int inbox_has_id (struct router *r, struct swarm *sw, int node,
                  const char *id, bool *found, cs_error_t *errp)
{
    char path[PATH_MAX];
    struct mb_event ev;
    struct stream *s;
    mb_reader_t *rd;
    int n = 0;

    *found = false;
    if (!(s = inbox_stream (r, sw, node, errp)))
        return -1;
    if (!s->keyed_read) {
        /* once: while the router holds the lock nobody else appends */
        if (mb_stream_path (sw->dir, "inbox", node, path, sizeof (path),
                            errp) < 0
            || !(rd = mb_reader_open (path, MB_START_BEGIN, NULL, NULL,
                                      errp)))
            return -1;
        while ((n = mb_reader_next (rd, &ev, errp)) > 0) {
            const char *v = NULL;
            if (ev.type == MB_EV_RECORD
                && json_get_str (ev.rec.json, "id", &v, NULL) == 0
                && id_is_keyed (v) && strset_add (&s->keyed, v) < 0) {
                n = errprintf (errp, "out of memory");
                break;
            }
        }
        mb_reader_close (rd);
        if (n < 0) {
            strset_release (&s->keyed);
            return -1;
        }
        s->keyed_read = true;
    }
    *found = strset_has (&s->keyed, id);
    return 0;
}

int inbox_append (struct router *r, struct swarm *sw, int node,
                  const char *type, const cJSON *payload,
                  remote_done_f done, void *arg)
{
    cs_error_t error;
    struct stream *s;
    const char *id = NULL;
    uint64_t seq;

    if (r->remote)
        return remote_append (r->remote, sw->id, node, type, payload, done,
                              arg);
    if (!(s = inbox_stream (r, sw, node, &error))) {
        done (0, error.text, arg);
        return -1;
    }
    if (mb_writer_append (s->inbox, type, payload, &seq, &error) < 0) {
        done (0, error.text, arg);
        return -1;
    }
    if (s->keyed_read && json_get_str (payload, "id", &id, NULL) == 0
        && id_is_keyed (id))
        (void)strset_add (&s->keyed, id);
    done (seq, NULL, arg);
    return 0;
}

/* The seq of the record with "id" id in inbox path, or 0. */
static uint64_t inbox_find_id (struct router *r, const char *path,
                               const char *id)
{
    mb_reader_t *rd = mb_reader_open (path, MB_START_BEGIN, NULL, &r->opt,
                                      NULL);
    struct mb_event ev;
    uint64_t found = 0;

    if (!rd)
        return 0;
    while (!found && mb_reader_next (rd, &ev, NULL) > 0) {
        const cJSON *v;
        if (ev.type != MB_EV_RECORD)
            continue;
        v = cJSON_GetObjectItemCaseSensitive (ev.rec.json, "id");
        if (cJSON_IsString (v) && !strcmp (v->valuestring, id))
            found = ev.rec.seq;
    }
    mb_reader_close (rd);
    return found;
}

int inbox_append_check (struct router *r, struct swarm *sw, int node,
                        const char *type, const cJSON *payload,
                        remote_done_f done, void *arg)
{
    char path[PATH_MAX];
    const char *id = NULL;
    uint64_t seq;

    if (r->remote)
        return remote_append_check (r->remote, sw->id, node, type, payload,
                                    done, arg);
    if (json_get_str (payload, "id", &id, NULL) == 0
        && mb_stream_path (sw->dir, "inbox", node, path, sizeof (path),
                           NULL) == 0
        && (seq = inbox_find_id (r, path, id))) {
        done (seq, NULL, arg);
        return 0;
    }
    return inbox_append (r, sw, node, type, payload, done, arg);
}

void append_ctx_free (struct append_ctx *a)
{
    if (a) {
        free (a->request_id);
        free (a->swarm_id);
        free (a->id);
        free (a->extra);
        free (a->extra2);
        cJSON_Delete (a->decision);
        free (a);
    }
}

struct append_ctx *append_ctx_new (struct router *r, int client,
                                   const char *request_id,
                                   const char *swarm_id, int node,
                                   const char *id, const char *what)
{
    struct append_ctx *a = calloc (1, sizeof (*a));
    if (!a)
        return NULL;
    a->r = r;
    a->client = client;
    a->request_id = request_id ? strdup (request_id) : NULL;
    a->swarm_id = strdup (swarm_id);
    a->node = node;
    a->id = strdup (id);
    a->what = what;
    for (struct client *c = r->clients; c; c = c->next)
        if (c->id == client)
            a->who = c->who;
    return a;
}

void append_done (uint64_t seq, const char *error, void *arg)
{
    struct append_ctx *a = arg;
    struct router *r = a->r;
    cJSON *d;

    audit_append_done (r, a, seq, error);

    if (!seq) {
        char reason[512];
        snprintf (reason, sizeof (reason), "node %d: cannot write its inbox: "
                  "%s", a->node, error ? error : "unknown error");
        if (!strcmp (a->what, "shutdown"))
            control_term_acked (r->control, a->term, reason);
        else
            client_reject (r, a->client, a->request_id, RC_E_UNAVAILABLE,
                           reason);
        if (!strcmp (a->what, "inject")
            && (d = client_reply_data (a->request_id))) {
            /* what the original clients wait for instead of a delivery */
            json_add_str (d, "swarm_id", a->swarm_id);
            cJSON_AddNumberToObject (d, "node_id", a->node);
            json_add_str (d, "injection_id", a->id);
            json_add_str (d, "code", RC_E_UNAVAILABLE);
            json_add_str (d, "error", reason);
            client_reply (r, a->client, "inject_failed", d);
        }
        append_ctx_free (a);
        return;
    }
    if ((d = client_reply_data (a->request_id))) {
        json_add_str (d, "swarm_id", a->swarm_id);
        cJSON_AddNumberToObject (d, "node_id", a->node);
        json_add_u64 (d, "inbox_seq", seq);
        if (!strcmp (a->what, "inject")) {
            json_add_str (d, "injection_id", a->id);
            json_add_str (d, "mode", a->steer ? "steer" : "queue");
            if (a->extra)
                json_add_str (d, "idempotency_key", a->extra);
            client_reply (r, a->client, "inject_ack", d);
        }
        else if (!strcmp (a->what, "interrupt")) {
            json_add_str (d, "interrupt_id", a->id);
            client_reply (r, a->client, "interrupt_ack", d);
        }
        else if (!strcmp (a->what, "approval")) {
            json_add_str (d, "approval_id", a->extra);
            json_add_str (d, "call_id", a->extra);
            json_add_item (d, "decision", a->decision);
            a->decision = NULL;
            client_reply (r, a->client, "approval_ack", d);
        }
        else {
            /* upstream's clients wait for swarm_terminated and pass
             * over swarm_terminate_progress */
            json_add_str (d, "stage", "shutdown_sent");
            json_add_str (d, "shutdown_id", a->id);
            client_reply (r, a->client, "swarm_terminate_progress", d);
        }
    }
    if (!strcmp (a->what, "shutdown"))
        control_term_acked (r->control, a->term, NULL);
    append_ctx_free (a);
}

void inbox_new_id (struct router *r, const char *prefix, int node, char *buf,
             size_t len)
{
    snprintf (buf, len, "%s-%llx-%x-%llu-n%d", prefix,
              (unsigned long long)(time_now () * 1000), (unsigned)getpid (),
              (unsigned long long)++r->inj_counter, node);
}
