/* audit.c - the router's entries in each swarm's audit trail (audit.h) */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/path.h"
#include "mailbox/audit.h"
#include "router/audit.h"
#include "router/router-private.h"

struct pending {
    char *dir; /* where to append */
    cJSON *entry;
    struct pending *next;
};

static struct pending *head, **tail = &head;
static size_t npending;
static bool failing; /* the last write failed: logged once per streak */

/* the directories whose audit.jsonl has entries not synced yet */
static char **unsynced;
static size_t nunsynced, unsynced_cap;

void audit_who_set (struct audit_who *w, uid_t uid, const char *via,
                    const char *peer)
{
    struct passwd *pw = getpwuid (uid);

    w->uid = uid;
    snprintf (w->user, sizeof (w->user), "%s", pw ? pw->pw_name : "");
    snprintf (w->via, sizeof (w->via), "%s", via ? via : "");
    snprintf (w->peer, sizeof (w->peer), "%s", peer ? peer : "");
}

/* Remember dir for audit_sync (); false when it cannot (out of memory). */
static bool unsynced_add (const char *dir)
{
    for (size_t i = 0; i < nunsynced; i++)
        if (!strcmp (unsynced[i], dir))
            return true;
    if (nunsynced == unsynced_cap) {
        size_t cap = unsynced_cap ? unsynced_cap * 2 : 8;
        char **v = realloc (unsynced, cap * sizeof (*v));
        if (!v)
            return false;
        unsynced = v;
        unsynced_cap = cap;
    }
    if (!(unsynced[nunsynced] = strdup (dir)))
        return false;
    nunsynced++;
    return true;
}

bool audit_unsynced (void)
{
    return nunsynced > 0;
}

void audit_sync (struct router *r)
{
    cs_error_t e;

    (void)r;
    for (size_t i = 0; i < nunsynced; i++) {
        if (mb_audit_sync (unsynced[i], &e) < 0)
            log_msg ("audit: %s", e.text);
        free (unsynced[i]);
    }
    nunsynced = 0;
}

static const char *action_of (const char *what)
{
    if (!strcmp (what, "shutdown"))
        return "cancel"; /* terminate: one shutdown record per node */
    return what;
}

/* the directory of a swarm's audit.jsonl: the swarm's own, or in remote
 * mode <home>/router/audit (the file then named after the swarm) */
static int audit_dir (struct router *r, const char *swarm_id, char *buf,
                      size_t len)
{
    struct swarm *sw = swarm_find (r, swarm_id);

    if (!r->remote && sw)
        return pathf (buf, len, "%s", sw->dir);
    if (pathf (buf, len, "%s/audit/%s", r->dir, swarm_id) < 0)
        return -1;
    return 0;
}

/* Append entry to dir's audit.jsonl; synced now, or unsynced and dir
 * remembered for audit_sync () when sync is false.
 */
static int write_one (const char *dir, cJSON *entry, bool sync,
                      cs_error_t *errp)
{
    /* remote mode: <home>/router/audit/<swarm>/audit.jsonl */
    if (access (dir, F_OK) < 0 && mb_secure_dir (dir, true, errp) < 0) {
        char parent[4096];
        const char *slash = strrchr (dir, '/');
        snprintf (parent, sizeof (parent), "%.*s",
                  slash ? (int)(slash - dir) : 0, dir);
        if (mb_secure_dir (parent, true, errp) < 0 ||
            mb_secure_dir (dir, true, errp) < 0)
            return -1;
    }
    if (!sync && unsynced_add (dir))
        return mb_audit_write (dir, entry, false, errp);
    return mb_audit_append (dir, entry, errp);
}

static void keep (const char *dir, cJSON *entry)
{
    struct pending *p;

    if (npending >= AUDIT_MAX_PENDING) {
        log_msg ("audit: %zu entries wait already: one dropped", npending);
        cJSON_Delete (entry);
        return;
    }
    if (!(p = calloc (1, sizeof (*p))) || !(p->dir = strdup (dir))) {
        free (p);
        log_msg ("audit: out of memory: an entry dropped");
        cJSON_Delete (entry);
        return;
    }
    p->entry = entry;
    *tail = p;
    tail = &p->next;
    npending++;
}

void audit_flush (struct router *r)
{
    cs_error_t e;

    (void)r;
    while (head) {
        struct pending *p = head;
        if (write_one (p->dir, p->entry, true, &e) < 0) {
            if (!failing)
                log_msg ("audit: %s (will retry)", e.text);
            failing = true;
            return;
        }
        if (failing)
            log_msg ("audit: written again (%zu entries were waiting)",
                     npending);
        failing = false;
        head = p->next;
        if (!head)
            tail = &head;
        npending--;
        cJSON_Delete (p->entry);
        free (p->dir);
        free (p);
    }
}

size_t audit_pending (void)
{
    return npending;
}

void audit_append_done (struct router *r, const struct append_ctx *a,
                        uint64_t seq, const char *error)
{
    cJSON *o = cJSON_CreateObject ();
    char dir[4096];
    cs_error_t e;

    if (!o || !a->what)
        goto nomem;
    if (json_add_str (o, "action", action_of (a->what)) < 0 ||
        json_add_str (o, "swarm", a->swarm_id) < 0 ||
        mb_audit_identity_as (o, a->who.uid,
                              a->who.user[0] ? a->who.user : NULL,
                              a->who.via[0] ? a->who.via : NULL,
                              a->who.peer[0] ? a->who.peer : NULL) < 0 ||
        !cJSON_AddNumberToObject (o, "node", a->node) ||
        json_add_str (o, "id", a->id) < 0 ||
        (a->request_id && json_add_str (o, "request_id", a->request_id) < 0))
        goto nomem;
    if (!strcmp (a->what, "approval")) {
        if ((a->extra && json_add_str (o, "approval_id", a->extra) < 0) ||
            (a->decision &&
             json_add_item (o, "decision",
                            cJSON_Duplicate (a->decision, true)) < 0) ||
            (!a->decision && a->extra2 &&
             json_add_str (o, "decision", a->extra2) < 0) ||
            json_add_str (o, "decided_by", "client") < 0)
            goto nomem;
    }
    if (!strcmp (a->what, "inject")) {
        if (json_add_str (o, "mode", a->steer ? "steer" : "queue") < 0 ||
            (a->extra && json_add_str (o, "idempotency_key", a->extra) < 0))
            goto nomem;
    }
    if (seq ? (json_add_u64 (o, "inbox_seq", seq) < 0 ||
               json_add_str (o, "result", "ok") < 0)
            : (json_add_str (o, "result", "failed") < 0 ||
               json_add_str (o, "error", error ? error : "unknown") < 0))
        goto nomem;
    if (audit_dir (r, a->swarm_id, dir, sizeof (dir)) < 0) {
        log_msg ("audit: swarm '%s': path too long", a->swarm_id);
        cJSON_Delete (o);
        return;
    }
    /* in order: behind what waits already */
    if (head) {
        keep (dir, o);
        audit_flush (r);
        return;
    }
    /* synced by audit_sync () before the command's reply goes out
     * (commit.c) */
    if (write_one (dir, o, false, &e) < 0) {
        if (!failing)
            log_msg ("audit: %s (will retry)", e.text);
        failing = true;
        keep (dir, o);
        return;
    }
    cJSON_Delete (o);
    return;
nomem:
    log_msg ("audit: out of memory: an entry dropped");
    cJSON_Delete (o);
}
