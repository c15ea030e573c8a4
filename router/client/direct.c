/* direct.c - the client verbs without a router: the mailbox itself
 *
 * Inbox records are appended under each stream's writer lock; outboxes
 * are followed with a private translator (struct follow), the same one
 * the router uses.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "mailbox/audit.h"
#include "router/client/client.h"

int swarm_dir (const char *swarm, char *buf, size_t len)
{
    cs_error_t error;
    if (mb_swarm_dir (client_home, swarm, false, buf, len, &error) < 0)
        log_msg_exit ("%s", error.text);
    return 0;
}

/* Node count: swarm.json "nodes", else the highest outbox/inbox + 1. */
int swarm_node_count (const char *sdir)
{
    char path[PATH_MAX + 32];
    int n = 0;
    FILE *f;

    snprintf (path, sizeof (path), "%s/swarm.json", sdir);
    if ((f = fopen (path, "r"))) {
        char buf[65536];
        size_t len = fread (buf, 1, sizeof (buf) - 1, f);
        cJSON *o = json_parse (buf, len, NULL);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, "nodes");
        if (cJSON_IsNumber (v) && v->valuedouble > 0
            && v->valuedouble < RT_MAX_NODES)
            n = (int)v->valuedouble;
        cJSON_Delete (o);
        fclose (f);
    }
    for (int b = 0; b < 2; b++) {
        DIR *d;
        struct dirent *de;
        snprintf (path, sizeof (path), "%s/%s", sdir, b ? "inbox" : "outbox");
        if (!(d = opendir (path)))
            continue;
        while ((de = readdir (d))) {
            char *end;
            long k = strtol (de->d_name, &end, 10);
            if (end != de->d_name && !strcmp (end, ".jsonl") && k >= 0
                && k < RT_MAX_NODES && k + 1 > n)
                n = (int)k + 1;
        }
        closedir (d);
    }
    return n;
}

bool swarm_has_ended (const char *sdir, char *state, size_t len)
{
    char path[PATH_MAX + 32];
    bool ended = false;
    FILE *f;

    snprintf (path, sizeof (path), "%s/swarm.json", sdir);
    if ((f = fopen (path, "r"))) {
        char buf[65536];
        size_t n = fread (buf, 1, sizeof (buf) - 1, f);
        cJSON *o = json_parse (buf, n, NULL);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, "state");
        if (cJSON_IsString (v) && (!strcmp (v->valuestring, "ended")
                                   || !strcmp (v->valuestring, "cancelled")
                                   || !strcmp (v->valuestring, "failed"))) {
            snprintf (state, len, "%s", v->valuestring);
            ended = true;
        }
        cJSON_Delete (o);
        fclose (f);
    }
    return ended;
}

void new_id (const char *prefix, int node, char *buf, size_t len)
{
    snprintf (buf, len, "%s-%llx-%x-%d-n%d", prefix,
              (unsigned long long)(time_now () * 1000), (unsigned)getpid (),
              ++client_req_counter, node);
}

/* The audit entry of a record appended without a router (mailbox/audit.h):
 * a failure is said, and does not undo the record.
 */
static void direct_audit (const char *sdir, int node, const char *type,
                          const cJSON *payload, uint64_t seq)
{
    const char *peer, *via = mb_audit_via ("mailbox", &peer);
    const char *slash = strrchr (sdir, '/');
    const cJSON *v;
    cJSON *o = cJSON_CreateObject ();
    cs_error_t error;

    if (!o)
        return;
    json_add_str (o, "action", !strcmp (type, "user") ? "inject" : type);
    json_add_str (o, "swarm", slash ? slash + 1 : sdir);
    mb_audit_identity (o, getuid (), via, peer);
    if (strcmp (via, "mailbox"))
        json_add_str (o, "through", "mailbox");
    cJSON_AddNumberToObject (o, "node", node);
    if ((v = cJSON_GetObjectItemCaseSensitive (payload, "id")) &&
        cJSON_IsString (v))
        json_add_str (o, "id", v->valuestring);
    if ((v = cJSON_GetObjectItemCaseSensitive (payload, "approval_id")) &&
        cJSON_IsString (v)) {
        json_add_str (o, "approval_id", v->valuestring);
        json_add_str (o, "decided_by", "client");
    }
    if ((v = cJSON_GetObjectItemCaseSensitive (payload, "decision")) &&
        cJSON_IsString (v))
        json_add_str (o, "decision", v->valuestring);
    if ((v = cJSON_GetObjectItemCaseSensitive (payload, "mode")) &&
        cJSON_IsString (v))
        json_add_str (o, "mode", v->valuestring);
    json_add_u64 (o, "inbox_seq", seq);
    json_add_str (o, "result", "ok");
    if (mb_audit_append (sdir, o, &error) < 0)
        log_msg ("audit: %s", error.text);
    cJSON_Delete (o);
}

/* The inbox at path holds a record with this id. */
static bool inbox_has_id (const char *path, const char *id)
{
    cs_error_t error;
    struct mb_event ev;
    mb_reader_t *r = mb_reader_open (path, MB_START_BEGIN, NULL, NULL, &error);
    bool found = false;

    if (!r)
        log_msg_exit ("%s", error.text);
    while (!found && mb_reader_next (r, &ev, &error) > 0) {
        const char *s = NULL;
        if (ev.type == MB_EV_RECORD
            && json_get_str (ev.rec.json, "id", &s, NULL) == 0
            && !strcmp (s, id))
            found = true;
    }
    mb_reader_close (r);
    return found;
}

/* Returns the record's seq, or 0 when a keyed injection was there already. */
uint64_t direct_append (const char *sdir, int node, const char *type,
                        cJSON *payload)
{
    char path[PATH_MAX];
    cs_error_t error;
    mb_writer_t *w = NULL;
    uint64_t seq;
    struct mb_options opt;

    mb_options_init (&opt);
    opt.fsync = MB_FSYNC_ALWAYS;
    for (int tries = 0; tries < 100; tries++) {
        if (mb_stream_path (sdir, "inbox", node, path, sizeof (path),
                            &error) < 0)
            log_msg_exit ("%s", error.text);
        if ((w = mb_writer_open (path, &opt, &error)) || errno != EBUSY)
            break;
        usleep (50000);         /* another writer: take turns */
    }
    if (!w)
        log_msg_exit ("%s", error.text);
    /* a keyed injection already in the inbox (sent before, through a
     * router or not) is not appended again: checked under the lock
     */
    const char *id = NULL;
    if (json_get_str (payload, "id", &id, NULL) == 0 && !strncmp (id, "key-", 4)
        && inbox_has_id (path, id)) {
        mb_writer_close (w);
        return 0;
    }
    if (mb_writer_append (w, type, payload, &seq, &error) < 0)
        log_msg_exit ("%s", error.text);
    mb_writer_close (w);
    direct_audit (sdir, node, type, payload, seq);
    return seq;
}

static void follow_cb (mb_follower_t *f, mb_reader_t *r,
                       const struct mb_event *ev, void *arg)
{
    struct follow *fo = arg;
    const char *p = mb_reader_path (r);
    const char *base = strrchr (p, '/');
    cs_error_t error;

    if (ev->type != MB_EV_RECORD)
        return;
    base = base ? base + 1 : p;
    if (!strcmp (base, "swarm.jsonl"))
        (void)rt_trans_swarm_record (fo->t, ev->rec.json, time_mono (),
                                     &error);
    else
        (void)rt_trans_record (fo->t, atoi (base), ev->rec.json, time_mono (),
                               &error);
}

static void follow_emit (const char *name, cJSON *data, void *arg)
{
    struct follow *fo = arg;
    fo->seq++;
    fo->on_event (name, data, fo->arg);
    cJSON_Delete (data);
}

void follow_scan (struct follow *fo)
{
    char path[PATH_MAX + 32];
    cs_error_t error;
    DIR *d;
    struct dirent *de;

    snprintf (path, sizeof (path), "%s/outbox", fo->sdir);
    if (!(d = opendir (path)))
        return;
    while ((de = readdir (d))) {
        char *end;
        long k = strtol (de->d_name, &end, 10);
        bool sw = !strcmp (de->d_name, "swarm.jsonl");
        char sp[PATH_MAX * 2];
        if (!sw && (end == de->d_name || strcmp (end, ".jsonl") || k < 0
                    || k >= RT_MAX_NODES))
            continue;
        if (sw ? fo->sfollowed : fo->followed[k])
            continue;
        snprintf (sp, sizeof (sp), "%s/%s", path, de->d_name);
        if (!mb_follower_add (fo->f, sp, fo->start, NULL, follow_cb, fo,
                              &error)) {
            log_msg ("%s", error.text);
            continue;
        }
        if (sw)
            fo->sfollowed = true;
        else
            fo->followed[k] = true;
    }
    closedir (d);
}

struct follow *follow_open (const char *swarm, enum mb_start start,
                            void (*cb) (const char *, cJSON *, void *),
                            void *arg)
{
    struct follow *fo = calloc (1, sizeof (*fo));
    cs_error_t error;
    if (!fo)
        log_msg_exit ("out of memory");
    fo->swarm = swarm;
    swarm_dir (swarm, fo->sdir, sizeof (fo->sdir));
    fo->start = start;
    fo->on_event = cb;
    fo->arg = arg;
    if (!(fo->t = rt_trans_create (swarm, follow_emit, fo)))
        log_msg_exit ("out of memory");
    if (!(fo->f = mb_follower_create (NULL, &error)))
        log_msg_exit ("%s", error.text);
    follow_scan (fo);
    return fo;
}

void follow_close (struct follow *fo)
{
    if (fo) {
        mb_follower_destroy (fo->f);
        rt_trans_destroy (fo->t);
        free (fo);
    }
}

/* Read everything there is now. */
void follow_drain (struct follow *fo)
{
    cs_error_t error;
    int n;
    do {
        if ((n = mb_follower_process (fo->f, &error)) < 0)
            log_msg_exit ("%s", error.text);
    } while (n > 0);
}
