/* commit.c - group commit of what the commands write
 *
 * An inject writes its idempotency key (idempotency.c), its inbox records
 * (inbox.c) and an audit entry per record (audit.c).  The key and the
 * audit entries are written at once but not synced one by one: while
 * something is written and not synced, client_reply () holds every reply
 * here, and commit_flush (), called once per turn of the poll() loop
 * before the clients' output is written, syncs idempotency.jsonl and each
 * audit.jsonl written (one fdatasync per file for all the commands of that
 * turn), then sends the held replies in the order they were made.  So
 * nothing is acknowledged before it is durable, and a burst of injects
 * costs one sync per file, not one per inject.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "router/router-private.h"

struct held_reply {
    int client_id;
    char *name;
    cJSON *data;
    struct held_reply *next;
};

static struct held_reply *head, **tail = &head;

bool commit_pending (struct router *r)
{
    return r->idem_unsynced || audit_unsynced ();
}

void commit_hold (struct router *r, int client_id, const char *name,
                  cJSON *data)
{
    struct held_reply *h = calloc (1, sizeof (*h));

    if (!h || !(h->name = strdup (name))) {
        /* cannot hold it: make it durable now, then send it */
        free (h);
        commit_flush (r);
        client_reply (r, client_id, name, data);
        return;
    }
    h->client_id = client_id;
    h->data = data;
    *tail = h;
    tail = &h->next;
}

void commit_flush (struct router *r)
{
    struct held_reply *h, *next;
    cs_error_t error;

    if (idem_sync (r, &error) < 0)
        log_msg ("%s", error.text);
    audit_sync (r);
    h = head;
    head = NULL;
    tail = &head;
    for (; h; h = next) {
        next = h->next;
        client_reply (r, h->client_id, h->name, h->data);
        free (h->name);
        free (h);
    }
}

/* vi: set ts=4 sw=4 expandtab: */
