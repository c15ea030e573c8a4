/* relay.c - codeswarm-router --relay: the near side of the relay
 *
 * Dials out to the broker (mqlink.h) and serves the far sides found on
 * <prefix>/up/<far-id>: each client of a far side is a virtual client of
 * this router (router_vclient_*), so its commands are handled exactly as
 * a local client's, and its output - replies and its event stream, each
 * event with its router seq - is sealed and published on
 * <prefix>/down/<far-id>.  A command the far side sends again (QoS 1
 * redelivery) carries a seq already taken and is dropped.  A command whose
 * answer the far side did not get before we restarted comes again as
 * "!retry": dropped when its request id was handled since we started
 * (the broker delivered the first copy again), else handled with the
 * client marked retrying, so that an inject whose idempotency key is
 * known is answered again (its missing records written) and not done
 * again.
 *
 * Backpressure: output waits in a per-far-side buffer while the broker is
 * away or slow (more than relay.queue_max messages unacknowledged).  Once
 * that buffer holds RELAY_OUT_MAX bytes, each stream that would add to it
 * is paused at the seq it reached, and restarted from the event log after
 * that seq once the buffer has drained: memory stays bounded, nothing is
 * lost.  Replies are never paused.
 *
 * On every connection to the broker the near side publishes a retained
 * hello (a new one each time); the far sides answer it by restarting their
 * clients' streams from the last seq each has seen.
 *
 * State: <home>/router/relay.json (0600): the seqs reserved for sending
 * and, per far side, the last seq taken from it (written before the
 * commands it carried are handled).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/json.h"
#include "common/log.h"
#include "router/relay.h"
#include "router/relaywire.h"
#include "slurm/prom.h"

#define RELAY_OUT_MAX (4u * 1024 * 1024)    /* bytes waiting per far side */
#define RELAY_MAX_LINKS 64
#define RELAY_MAX_VCS 256                    /* virtual clients per far side */

struct nlink;

#define RELAY_VC_REQS 32                    /* request ids kept per client */

struct vc {
    char name[48];
    struct client *c;
    struct nlink *lk;
    bool paused;
    uint64_t paused_at;
    char *reqs[RELAY_VC_REQS];  /* request ids handled since we started */
    unsigned nreq;
    struct vc *next;
};

struct nlink {
    char far_id[160];
    char who[64];               /* "user@host" the far side says it is */
    char t_down[RELAY_TOPIC_MAX];
    uint64_t last_up;
    struct jbuf out;
    size_t out_off;             /* sent up to here */
    struct vc *vcs;
    int nvcs;
    struct nlink *next;
};

struct relay {
    struct router *r;
    const struct cs_config *cfg;
    mqlink_t *link;
    unsigned char key[SEAL_KEY_BYTES];
    char t_sub[RELAY_TOPIC_MAX];        /* <prefix>/up/+ */
    char t_hello[RELAY_TOPIC_MAX];
    char state_path[PATH_MAX];
    uint64_t seq, reserved;
    char incarnation[20];
    unsigned hellos;
    bool need_hello;
    struct nlink *links;
    int nlinks;
    struct jbuf note;
    unsigned long rejected, replayed, paused;
    char state[16];             /* connecting, connected, retrying, refused */
};

static void relay_save (relay_t *rl)
{
    cJSON *o = cJSON_CreateObject ();
    cJSON *links = cJSON_CreateObject ();
    cs_error_t error;

    json_add_u64 (o, "seq_reserved", rl->reserved);
    for (struct nlink *lk = rl->links; lk && links; lk = lk->next)
        json_add_u64 (links, lk->far_id, lk->last_up);
    json_add_item (o, "links", links);
    if (relay_state_write (rl->state_path, o, &error) < 0)
        log_msg ("%s", error.text);
    cJSON_Delete (o);
}

static struct nlink *link_get (relay_t *rl, const char *far_id, bool create)
{
    struct nlink *lk;

    for (lk = rl->links; lk; lk = lk->next)
        if (!strcmp (lk->far_id, far_id))
            return lk;
    if (!create || rl->nlinks >= RELAY_MAX_LINKS
        || strlen (far_id) >= sizeof (lk->far_id)
        || !(lk = calloc (1, sizeof (*lk))))
        return NULL;
    strcpy (lk->far_id, far_id);
    snprintf (lk->t_down, sizeof (lk->t_down), "%s/down/%s",
              rl->cfg->relay_topic_prefix, far_id);
    lk->next = rl->links;
    rl->links = lk;
    rl->nlinks++;
    return lk;
}

static int relay_load (relay_t *rl, cs_error_t *errp)
{
    cJSON *o = relay_state_read (rl->state_path, errp);
    const cJSON *links, *e;

    if (!o && errno != ENOENT)
        return -1;
    if (o) {
        (void)json_get_u64 (o, "seq_reserved", &rl->reserved, NULL);
        links = cJSON_GetObjectItemCaseSensitive (o, "links");
        cJSON_ArrayForEach (e, links) {
            struct nlink *lk;
            if (cJSON_IsNumber (e) && e->string
                && (lk = link_get (rl, e->string, true)))
                lk->last_up = (uint64_t)e->valuedouble;
        }
        cJSON_Delete (o);
    }
    rl->seq = relay_seq_block (rl->reserved);   /* reserved: used */
    rl->reserved = rl->seq + RELAY_SEQ_BLOCK;
    relay_save (rl);
    return 0;
}

static uint64_t next_seq (relay_t *rl)
{
    if (++rl->seq >= rl->reserved) {
        rl->seq = relay_seq_block (rl->seq);
        rl->reserved = rl->seq + RELAY_SEQ_BLOCK;
        relay_save (rl);
    }
    return rl->seq;
}

/* ---- virtual clients ------------------------------------------------------ */

static void vc_free (struct vc *v)
{
    for (int i = 0; i < RELAY_VC_REQS; i++)
        free (v->reqs[i]);
    free (v);
}

/* Note the request id of command line text handled for v; true if it was
 * handled before (since this router started).
 */
static bool vc_request_seen (struct vc *v, const char *text, size_t len)
{
    cJSON *o = cJSON_ParseWithLengthOpts (text, len, NULL, false);
    const char *rid;
    bool seen = false;

    if (o && json_get_str (o, "request_id", &rid, NULL) == 0) {
        for (int i = 0; i < RELAY_VC_REQS && !seen; i++)
            seen = v->reqs[i] && !strcmp (v->reqs[i], rid);
        if (!seen) {
            unsigned k = v->nreq++ % RELAY_VC_REQS;
            free (v->reqs[k]);
            v->reqs[k] = strdup (rid);
        }
    }
    cJSON_Delete (o);
    return seen;
}

static void vc_remove (struct nlink *lk, struct vc *v)
{
    for (struct vc **pp = &lk->vcs; *pp; pp = &(*pp)->next) {
        if (*pp == v) {
            *pp = v->next;
            break;
        }
    }
    lk->nvcs--;
    router_vclient_remove (v->c);
    vc_free (v);
}

void relay_client_name (void *vc, char *buf, size_t len)
{
    struct vc *v = vc;
    snprintf (buf, len, "%s %s", v->lk->far_id, v->name);
}

static struct vc *vc_get (relay_t *rl, struct nlink *lk, const char *name,
                          size_t len, bool create)
{
    struct vc *v;

    for (v = lk->vcs; v; v = v->next)
        if (strlen (v->name) == len && !memcmp (v->name, name, len))
            return v;
    if (!create || len >= sizeof (v->name) || !(v = calloc (1, sizeof (*v))))
        return NULL;
    if (lk->nvcs >= RELAY_MAX_VCS) {
        struct vc *last = lk->vcs;
        while (last->next)
            last = last->next;
        log_msg ("relay: far side '%s' has more than %d clients: dropping "
                 "its oldest", lk->far_id, RELAY_MAX_VCS);
        vc_remove (lk, last);
    }
    memcpy (v->name, name, len);
    v->lk = lk;
    if (!(v->c = router_vclient_add (rl->r, rl, v))) {
        free (v);
        return NULL;
    }
    router_vclient_who (v->c, lk->far_id, lk->who);
    v->next = lk->vcs;
    lk->vcs = v;
    lk->nvcs++;
    return v;
}

void relay_client_output (relay_t *rl, void *vcp, const char *data,
                          size_t len)
{
    struct vc *v = vcp;
    struct nlink *lk = v->lk;
    uint64_t seq;

    if (relay_line_is_event (data, len, &seq)) {
        if (v->paused)
            return;
        if (lk->out.len - lk->out_off >= RELAY_OUT_MAX) {
            v->paused = true;
            v->paused_at = router_vclient_pause (v->c);
            rl->paused++;
            log_debug ("relay: '%s' client %s paused after seq %llu",
                       lk->far_id, v->name,
                       (unsigned long long)v->paused_at);
            return;
        }
    }
    if (jbuf_printf (&lk->out, "%s ", v->name) < 0
        || jbuf_append (&lk->out, data, len) < 0)
        log_msg ("relay: out of memory");
    if (len == 0 || data[len - 1] != '\n')
        (void)jbuf_append (&lk->out, "\n", 1);
}

/* ---- from the far sides ---------------------------------------------------- */

static void handle_line (relay_t *rl, struct nlink *lk, const char *line,
                         size_t len)
{
    const char *sp = memchr (line, ' ', len);
    const char *text;
    size_t nlen, tlen;
    struct vc *v;

    if (!sp)
        return;
    nlen = (size_t)(sp - line);
    text = sp + 1;
    tlen = len - nlen - 1;
    if (nlen == 1 && line[0] == '*') {
        if (tlen > 5 && !memcmp (text, "!who ", 5)) {
            snprintf (lk->who, sizeof (lk->who), "%.*s", (int)(tlen - 5),
                      text + 5);
            for (struct vc *v2 = lk->vcs; v2; v2 = v2->next)
                router_vclient_who (v2->c, lk->far_id, lk->who);
        }
        if (tlen == 6 && !memcmp (text, "!reset", 6)) {
            log_debug ("relay: far side '%s' restarted", lk->far_id);
            while (lk->vcs)
                vc_remove (lk, lk->vcs);
        }
        return;
    }
    if (tlen > 7 && !memcmp (text, "!retry ", 7)) {
        /* a command sent again: its answer was lost, unless it reached
         * us before (the broker delivered it again), then it is answered */
        if (!(v = vc_get (rl, lk, line, nlen, true)))
            return;
        if (vc_request_seen (v, text + 7, tlen - 7)) {
            log_debug ("relay: '%s' client %s: a command sent again was "
                       "handled already", lk->far_id, v->name);
            return;
        }
        log_msg ("relay: '%s' client %s: answering a command sent again",
                 lk->far_id, v->name);
        router_vclient_retry (rl->r, v->c, text + 7, tlen - 7);
        return;
    }
    if (tlen >= 1 && text[0] == '!') {
        if (tlen == 6 && !memcmp (text, "!close", 6)) {
            if ((v = vc_get (rl, lk, line, nlen, false)))
                vc_remove (lk, v);
        }
        else if (tlen > 6 && !memcmp (text, "!open ", 6)) {
            char arg[32];
            snprintf (arg, sizeof (arg), "%.*s", (int)(tlen - 6), text + 6);
            if (!(v = vc_get (rl, lk, line, nlen, true)))
                return;
            v->paused = false;
            if (!strcmp (arg, "live"))
                router_vclient_start (rl->r, v->c, false, 0);
            else if (strcmp (arg, "idle")) {
                char *end;
                unsigned long long since = strtoull (arg, &end, 10);
                if (*end == '\0' && end != arg)
                    router_vclient_start (rl->r, v->c, true, since);
            }
        }
        return;
    }
    if ((v = vc_get (rl, lk, line, nlen, true))) {
        (void)vc_request_seen (v, text, tlen);
        router_vclient_command (rl->r, v->c, text, tlen);
    }
}

static void on_message (mqlink_t *l, const char *topic, const void *payload,
                        size_t len, void *arg)
{
    relay_t *rl = arg;
    size_t plen = strlen (rl->t_sub) - 1;       /* "<prefix>/up/" */
    const char *far_id = topic + plen;
    struct nlink *lk;
    unsigned char *pt;
    size_t ptlen;
    uint64_t seq;
    cs_error_t error;

    if (strncmp (topic, rl->t_sub, plen) || !*far_id || strchr (far_id, '/'))
        return;
    if (len < SEAL_OVERHEAD || !(pt = malloc (len - SEAL_OVERHEAD + 1))) {
        rl->rejected++;
        log_msg ("relay: rejected a payload on '%s': too short to be sealed "
                 "(%lu rejected)", topic, rl->rejected);
        return;
    }
    if (seal_open (rl->key, SEAL_UP, far_id, payload, len, &seq, pt, &ptlen,
                   &error) < 0) {
        rl->rejected++;
        log_msg ("relay: rejected a payload on '%s': %s (%lu rejected; is "
                 "relay.seal_key_file the same key on both sides?)", topic,
                 error.text, rl->rejected);
        free (pt);
        return;
    }
    if (!(lk = link_get (rl, far_id, true))) {
        log_msg ("relay: too many far sides, ignoring '%s'", far_id);
        free (pt);
        return;
    }
    if (seq <= lk->last_up) {
        rl->replayed++;
        log_msg ("relay: dropped a message from '%s' with seq %llu (at or "
                 "below %llu: delivered twice or replayed; %lu so far)",
                 far_id, (unsigned long long)seq,
                 (unsigned long long)lk->last_up, rl->replayed);
        free (pt);
        return;
    }
    lk->last_up = seq;
    relay_save (rl);            /* before anything it says is done */
    pt[ptlen] = '\0';
    for (char *p = (char *)pt, *nl; p < (char *)pt + ptlen; p = nl + 1) {
        if (!(nl = memchr (p, '\n', ptlen - (size_t)(p - (char *)pt))))
            nl = (char *)pt + ptlen;
        handle_line (rl, lk, p, (size_t)(nl - p));
    }
    free (pt);
}

static void on_state (mqlink_t *l, const char *state, const char *detail,
                      double retry_in, void *arg)
{
    relay_t *rl = arg;

    snprintf (rl->state, sizeof (rl->state), "%s", state);
    if (!strcmp (state, "connected")) {
        log_msg ("relay: connected to %s:%d", rl->cfg->relay.host,
                 rl->cfg->relay.port);
        rl->need_hello = true;
    }
    else
        log_msg ("relay: %s: %s; retrying in %.1f s", state, detail,
                 retry_in);
    jbuf_reset (&rl->note);
    if (relay_notice (&rl->note, "near", state, detail, retry_in) == 0)
        router_notice_local (rl->r, rl->note.data, rl->note.len);
}

/* ---- sending ------------------------------------------------------------- */

static bool can_send (relay_t *rl)
{
    return mqlink_connected (rl->link)
           && mqlink_unacked (rl->link) < rl->cfg->relay_queue_max;
}

static void link_flush (relay_t *rl, struct nlink *lk)
{
    cs_error_t error;

    while (lk->out_off < lk->out.len && can_send (rl)) {
        const char *s = lk->out.data + lk->out_off;
        size_t n = relay_msg_cut (s, lk->out.len - lk->out_off);
        if (relay_publish (rl->link, rl->key, SEAL_DOWN, lk->far_id,
                           next_seq (rl), lk->t_down, s, n, false, &error)
            < 0) {
            log_msg ("relay: %s", error.text);
            break;
        }
        lk->out_off += n;
    }
    if (lk->out_off == lk->out.len) {
        jbuf_reset (&lk->out);
        lk->out_off = 0;
    }
    else if (lk->out_off > RELAY_OUT_MAX) {
        memmove (lk->out.data, lk->out.data + lk->out_off,
                 lk->out.len - lk->out_off);
        lk->out.len -= lk->out_off;
        lk->out.data[lk->out.len] = '\0';
        lk->out_off = 0;
    }
}

static void resume_paused (relay_t *rl, struct nlink *lk)
{
    for (struct vc *v = lk->vcs; v; v = v->next) {
        if (!v->paused)
            continue;
        if (lk->out.len - lk->out_off >= RELAY_OUT_MAX / 2
            || mqlink_unacked (rl->link) >= rl->cfg->relay_queue_max / 2
            || !mqlink_connected (rl->link))
            return;
        v->paused = false;
        log_debug ("relay: '%s' client %s resumes after seq %llu",
                   lk->far_id, v->name, (unsigned long long)v->paused_at);
        router_vclient_start (rl->r, v->c, true, v->paused_at);
    }
}

void relay_tick (relay_t *rl)
{
    cs_error_t error;

    mqlink_tick (rl->link);
    if (rl->need_hello && mqlink_connected (rl->link)) {
        char hello[96];
        int n = snprintf (hello, sizeof (hello), "* !hello %s %u\n",
                          rl->incarnation, ++rl->hellos);
        if (relay_publish (rl->link, rl->key, SEAL_HELLO, "*", next_seq (rl),
                           rl->t_hello, hello, (size_t)n, true, &error) < 0)
            log_msg ("relay: %s", error.text);
        rl->need_hello = false;
    }
    for (struct nlink *lk = rl->links; lk; lk = lk->next) {
        link_flush (rl, lk);
        resume_paused (rl, lk);
        link_flush (rl, lk);
    }
}

void relay_metrics (relay_t *rl, FILE *f)
{
    static const char *const states[] = {
        "connecting", "connected", "retrying", "refused", NULL,
    };
    unsigned connects = mqlink_connects (rl->link);

    prom_family (f, "codeswarm_router_relay_state", "gauge",
                 "The relay's link to the broker: 1 for its state.");
    for (int i = 0; states[i]; i++)
        fprintf (f, "codeswarm_router_relay_state{state=\"%s\"} %d\n",
                 states[i], !strcmp (rl->state, states[i]));
    prom_family (f, "codeswarm_router_relay_reconnects_total", "counter",
                 "Connections to the broker after the first.");
    fprintf (f, "codeswarm_router_relay_reconnects_total %u\n",
             connects > 0 ? connects - 1 : 0);
    prom_family (f, "codeswarm_router_relay_payloads_rejected_total",
                 "counter", "Payloads dropped because they did not open.");
    fprintf (f, "codeswarm_router_relay_payloads_rejected_total %lu\n",
             rl->rejected);
    prom_family (f, "codeswarm_router_relay_duplicates_dropped_total",
                 "counter", "Messages dropped as delivered twice or "
                 "replayed.");
    fprintf (f, "codeswarm_router_relay_duplicates_dropped_total %lu\n",
             rl->replayed);
    prom_family (f, "codeswarm_router_relay_far_sides", "gauge",
                 "Far sides known to the relay.");
    fprintf (f, "codeswarm_router_relay_far_sides %d\n", rl->nlinks);
}

/* ---- setup --------------------------------------------------------------- */

relay_t *relay_create (struct router *r, const struct cs_config *cfg,
                       const char *dir, cs_error_t *errp)
{
    relay_t *rl;
    char mqid[256], down[RELAY_TOPIC_MAX];
    const char *subs[2];
    struct mqlink_opts lo = { 0 };

    if (!cfg->relay_url) {
        errno = EINVAL;
        errprintf (errp, "--relay: no relay.url in %s",
                   cfg->path ? cfg->path : "codeswarm.yaml");
        return NULL;
    }
    if (!cfg->relay_seal_key_file) {
        errno = EINVAL;
        errprintf (errp, "--relay: no relay.seal_key_file in %s (make one "
                   "with: codeswarm relay keygen FILE)",
                   cfg->path ? cfg->path : "codeswarm.yaml");
        return NULL;
    }
    if (!(rl = calloc (1, sizeof (*rl)))) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    rl->r = r;
    rl->cfg = cfg;
    snprintf (rl->state, sizeof (rl->state), "connecting");
    if (seal_init (errp) < 0
        || seal_key_load (cfg->relay_seal_key_file, rl->key, errp) < 0
        || relay_topics (cfg->relay_topic_prefix, "+", rl->t_sub, down,
                         rl->t_hello, errp) < 0)
        goto error;
    if (snprintf (rl->state_path, sizeof (rl->state_path), "%s/relay.json",
                  dir) >= (int)sizeof (rl->state_path)) {
        errno = ENAMETOOLONG;
        errprintf (errp, "'%s': path too long", dir);
        goto error;
    }
    if (relay_load (rl, errp) < 0)
        goto error;
    snprintf (rl->incarnation, sizeof (rl->incarnation), "%08x",
              randombytes_random ());
    snprintf (mqid, sizeof (mqid), "near-%s", cfg->relay_client_id);
    subs[0] = rl->t_sub;
    subs[1] = NULL;
    lo.cfg = cfg;
    lo.client_id = mqid;
    lo.subscribe = subs;
    lo.msg_cb = on_message;
    lo.state_cb = on_state;
    lo.arg = rl;
    if (!(rl->link = mqlink_create (&lo, errp)))
        goto error;
    return rl;
error:
    relay_destroy (rl);
    return NULL;
}

void relay_destroy (relay_t *rl)
{
    int saved = errno;

    if (!rl)
        return;
    if (rl->link) {
        for (struct nlink *lk = rl->links; lk; lk = lk->next)
            link_flush (rl, lk);
        mqlink_destroy (rl->link);
        relay_save (rl);
    }
    if (rl->rejected || rl->replayed || rl->paused)
        log_msg ("relay: %lu payloads rejected, %lu messages dropped as "
                 "duplicates, %lu streams paused", rl->rejected, rl->replayed,
                 rl->paused);
    while (rl->links) {
        struct nlink *lk = rl->links;
        rl->links = lk->next;
        while (lk->vcs) {
            struct vc *v = lk->vcs;
            lk->vcs = v->next;
            vc_free (v);        /* the router frees the clients */
        }
        jbuf_release (&lk->out);
        free (lk);
    }
    jbuf_release (&rl->note);
    sodium_memzero (rl->key, sizeof (rl->key));
    free (rl);
    errno = saved;
}

int relay_pollfd (relay_t *rl, struct pollfd *pfd)
{
    return mqlink_pollfd (rl->link, pfd);
}

void relay_handle (relay_t *rl, const struct pollfd *pfd)
{
    mqlink_handle (rl->link, pfd);
}

int relay_timeout (relay_t *rl)
{
    int t = mqlink_timeout (rl->link);
    for (struct nlink *lk = rl->links; lk; lk = lk->next)
        if (lk->out_off < lk->out.len && can_send (rl))
            return 0;
    return t;
}
