/* inbox.c - inbox records to JSON-RPC, exactly once.
 *
 * Every record the follower delivers is tracked in seq order until it is
 * done: a user record once the app-server accepted its turn/start or
 * turn/steer, an interrupt once turn/interrupt was answered, an approval
 * once the answer was sent, anything malformed at once.  The checkpoint
 * holds the reader cursor after the last record up to which all are done,
 * plus the ids of records done beyond it (done out of order, e.g. an
 * interrupt handled while a queued user record still waits).  After a
 * restart the reader replays from that cursor; records whose id is in the
 * done set are skipped, and a user record whose id the resumed thread
 * already holds as a userMessage clientId (turn/start carries
 * clientUserMessageId = the injection id) is skipped with an
 * inject_accepted record marked "replayed":true.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/worker.h"

void item_free (struct item *it)
{
    if (it) {
        int saved = errno;
        free (it->id);
        free (it->content);
        free (it->cwd);
        free (it->request_id);
        free (it->retry_of);
        free (it);
        errno = saved;
    }
}

/* ---- tracking ------------------------------------------------------------- */

static struct track *track_add (struct worker *w, uint64_t seq,
                                const char *id, const struct mb_cursor *c,
                                bool done)
{
    struct track *t = calloc (1, sizeof (*t));
    if (!t)
        return NULL;
    t->seq = seq;
    t->cursor = *c;
    t->done = done;
    if (id && !(t->id = strdup (id))) {
        free (t);
        return NULL;
    }
    if (w->track_tail)
        w->track_tail->next = t;
    else
        w->track_head = t;
    w->track_tail = t;
    return t;
}

static void track_advance (struct worker *w)
{
    while (w->track_head && w->track_head->done) {
        struct track *t = w->track_head;
        w->ckpt_cursor = t->cursor;
        w->track_head = t->next;
        if (!w->track_head)
            w->track_tail = NULL;
        free (t->id);
        free (t);
    }
}

void track_release (struct worker *w)
{
    while (w->track_head) {
        struct track *t = w->track_head;
        w->track_head = t->next;
        free (t->id);
        free (t);
    }
    w->track_tail = NULL;
}

void item_done (struct worker *w, uint64_t seq, const char *id)
{
    for (struct track *t = w->track_head; t; t = t->next) {
        if (t->seq == seq && seq > 0) {
            t->done = true;
            break;
        }
    }
    if (id) {
        free (w->last_injection_id);
        w->last_injection_id = strdup (id);
    }
    track_advance (w);
    (void)worker_checkpoint (w);
}

/* ---- queue ------------------------------------------------------------------- */

static void queue_push_back (struct worker *w, struct item *it)
{
    it->next = NULL;
    if (w->queue_tail)
        w->queue_tail->next = it;
    else
        w->queue_head = it;
    w->queue_tail = it;
    w->queued++;
}

void queue_push_front (struct worker *w, struct item *it)
{
    it->next = w->queue_head;
    w->queue_head = it;
    if (!w->queue_tail)
        w->queue_tail = it;
    w->queued++;
}

static struct item *queue_pop (struct worker *w)
{
    struct item *it = w->queue_head;
    if (it) {
        w->queue_head = it->next;
        if (!w->queue_head)
            w->queue_tail = NULL;
        it->next = NULL;
        w->queued--;
    }
    return it;
}

/* ---- records ---------------------------------------------------------------- */

static void inject_accepted (struct worker *w, const struct item *it,
                             const char *action, const char *turn_id,
                             bool replayed)
{
    cJSON *r = cJSON_CreateObject ();
    if (!r)
        return;
    json_add_u64 (r, "inbox_seq", it->seq);
    json_add_str (r, "injection_id", it->id);
    json_add_str (r, "action", action);
    if (turn_id)
        json_add_str (r, "turn_id", turn_id);
    else
        cJSON_AddNullToObject (r, "turn_id");
    if (replayed)
        json_add_bool (r, "replayed", true);
    if (it->request_id)
        json_add_str (r, "request_id", it->request_id);
    if (it->retry_of)
        json_add_str (r, "retry_of", it->retry_of);
    worker_record (w, "inject_accepted", r);
    cJSON_Delete (r);
}

/* An error record about the inbox record of it: code, message, inbox_seq,
 * injection_id and the client's request_id, so that the router can tell
 * the client which injection failed.
 */
static void inject_failed (struct worker *w, const struct item *it,
                           const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static void inject_failed (struct worker *w, const struct item *it,
                           const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    cJSON *r;

    va_start (ap, fmt);
    vsnprintf (msg, sizeof (msg), fmt, ap);
    va_end (ap);
    log_msg ("%s: %s", code, msg);
    if (!(r = cJSON_CreateObject ()))
        return;
    json_add_str (r, "code", code);
    json_add_str (r, "message", msg);
    json_add_u64 (r, "inbox_seq", it->seq);
    json_add_str (r, "injection_id", it->id);
    if (it->request_id)
        json_add_str (r, "request_id", it->request_id);
    worker_record (w, "error", r);
    cJSON_Delete (r);
}

static cJSON *text_input (const char *text)
{
    cJSON *arr = cJSON_CreateArray ();
    cJSON *o = cJSON_CreateObject ();
    if (!arr || !o || json_add_str (o, "type", "text") < 0
        || json_add_str (o, "text", text) < 0) {
        cJSON_Delete (arr);
        cJSON_Delete (o);
        return NULL;
    }
    cJSON_AddItemToArray (arr, o);
    return arr;
}

static const char *error_message (const cJSON *error);

/* A replay of a record the thread already has: skip it. */
static bool skip_replayed (struct worker *w, struct item *it)
{
    if (!strset_has (&w->accepted, it->id))
        return false;
    const char *tid = NULL;
    (void)json_get_str (w->accepted_turns, it->id, &tid, NULL);
    log_msg ("injection '%s' (inbox seq %llu) was already accepted: skipped",
             it->id, (unsigned long long)it->seq);
    inject_accepted (w, it, it->steer ? "turn/steer" : "turn/start", tid,
                     true);
    /* the outbox read at startup never said so (else the id would be
     * done): its turn's end was lost with the worker or the app-server
     * that ran it
     */
    if (tid && w->outbox_scanned
        && (!w->turn_id || strcmp (w->turn_id, tid) != 0))
        worker_turn_aborted (w, tid, it->id, fence_restart_reason (w));
    item_done (w, it->seq, it->id);
    item_free (it);
    return true;
}

static void send_turn_start (struct worker *w, struct item *it)
{
    cJSON *p = cJSON_CreateObject ();
    cJSON *in = text_input (it->content);

    if (!p || !in || json_add_str (p, "threadId", w->thread_id) < 0
        || json_add_item (p, "input", in) < 0
        || json_add_str (p, "clientUserMessageId", it->id) < 0
        || (it->cwd && json_add_str (p, "cwd", it->cwd) < 0)) {
        if (p && !cJSON_GetObjectItem (p, "input"))
            cJSON_Delete (in);
        cJSON_Delete (p);
        log_msg ("out of memory");
        queue_push_front (w, it);
        return;
    }
    log_debug ("turn/start for injection '%s'", it->id);
    if (!as_request (w, "turn/start", p, REQ_TURN_START, it))
        queue_push_front (w, it);
}

static void send_turn_steer (struct worker *w, struct item *it)
{
    cJSON *p = cJSON_CreateObject ();
    cJSON *in = text_input (it->content);

    if (!p || !in || json_add_str (p, "threadId", w->thread_id) < 0
        || json_add_str (p, "expectedTurnId", w->turn_id) < 0
        || json_add_item (p, "input", in) < 0
        || json_add_str (p, "clientUserMessageId", it->id) < 0) {
        if (p && !cJSON_GetObjectItem (p, "input"))
            cJSON_Delete (in);
        cJSON_Delete (p);
        log_msg ("out of memory");
        queue_push_front (w, it);
        return;
    }
    log_debug ("turn/steer for injection '%s'", it->id);
    if (!as_request (w, "turn/steer", p, REQ_TURN_STEER, it))
        queue_push_front (w, it);
}

void inbox_try_start (struct worker *w)
{
    while (!w->stopping && w->state == AS_READY && !w->fencing
           && !as_busy (w)
           && !outbox_degraded (w)
           && w->queue_head) {
        struct item *it = queue_pop (w);
        if (skip_replayed (w, it))
            continue;
        if (it->new_thread)
            as_new_thread (w, it);
        else
            send_turn_start (w, it);
        break;
    }
}

/* thread/start for a user record with new_thread answered: the new thread
 * becomes the node's (checkpointed, reported with node_ready), then the
 * record's turn starts on it.  A refused thread/start fails the record.
 */
void inbox_new_thread (struct worker *w, struct pending *p,
                       const cJSON *result, const cJSON *error)
{
    struct item *it = p->item;

    p->item = NULL;
    if (error || as_thread_adopt (w, result) < 0) {
        worker_error (w, "turn_start_failed", it->seq,
                      "thread/start for injection '%s': %s", it->id,
                      error ? error_message (error) : "no thread id");
        item_done (w, it->seq, it->id);
        item_free (it);
        inbox_try_start (w);
        return;
    }
    log_msg ("thread %s started for injection '%s'", w->thread_id, it->id);
    worker_write_ready (w, false);
    (void)worker_checkpoint (w);
    it->new_thread = false;
    send_turn_start (w, it);
}

void inbox_send_interrupt (struct worker *w, struct item *it)
{
    cJSON *p = cJSON_CreateObject ();

    if (!p || json_add_str (p, "threadId", w->thread_id) < 0
        || json_add_str (p, "turnId", w->turn_id) < 0) {
        cJSON_Delete (p);
        if (it) {
            item_done (w, it->seq, it->id);
            item_free (it);
        }
        return;
    }
    if (!as_request (w, "turn/interrupt", p, REQ_TURN_INTERRUPT, it)
        && it) {
        item_done (w, it->seq, it->id);
        item_free (it);
    }
}

/* ---- responses ------------------------------------------------------------------ */

static const char *error_message (const cJSON *error)
{
    const char *m = NULL;
    if (json_get_str (error, "message", &m, NULL) < 0)
        m = "unknown error";
    return m;
}

void inbox_turn_started (struct worker *w, struct pending *p,
                         const cJSON *result, const cJSON *error)
{
    struct item *it = p->item;
    const cJSON *turn = cJSON_GetObjectItemCaseSensitive (result, "turn");
    const char *tid = NULL;

    if (!it)
        return;
    if (error || json_get_str (turn, "id", &tid, NULL) < 0) {
        inject_failed (w, it, "turn_start_failed", "turn/start for "
                       "injection '%s': %s", it->id,
                       error ? error_message (error) : "no turn id");
        item_done (w, it->seq, it->id);
        if (w->waiting_interrupt) {
            struct item *ir = w->waiting_interrupt;
            w->waiting_interrupt = NULL;
            worker_error (w, "no_active_turn", ir->seq,
                          "interrupt '%s': the turn did not start", ir->id);
            item_done (w, ir->seq, ir->id);
            item_free (ir);
        }
        inbox_try_start (w);
        return;
    }
    p->item = NULL;                         /* now the running turn's */
    free (w->turn_id);
    w->turn_id = strdup (tid);
    item_free (w->turn_item);
    w->turn_item = it;
    (void)strset_add (&w->accepted, it->id);
    inject_accepted (w, it, "turn/start", tid, false);
    item_done (w, it->seq, it->id);
    if (w->waiting_interrupt) {
        struct item *ir = w->waiting_interrupt;
        w->waiting_interrupt = NULL;
        inbox_send_interrupt (w, ir);
    }
}

void inbox_steer_done (struct worker *w, struct pending *p,
                       const cJSON *result, const cJSON *error)
{
    struct item *it = p->item;
    const char *tid = NULL;

    if (!it)
        return;
    p->item = NULL;
    if (error) {
        /* the turn ended meanwhile: a steer without a turn starts one */
        log_debug ("turn/steer for '%s' refused (%s): queued as a new turn",
                   it->id, error_message (error));
        it->steer = false;
        queue_push_front (w, it);
        inbox_try_start (w);
        return;
    }
    (void)json_get_str (result, "turnId", &tid, NULL);
    (void)strset_add (&w->accepted, it->id);
    inject_accepted (w, it, "turn/steer", tid ? tid : w->turn_id, false);
    item_done (w, it->seq, it->id);
    item_free (it);
}

void inbox_interrupt_done (struct worker *w, struct pending *p,
                           const cJSON *result, const cJSON *error)
{
    struct item *it = p->item;

    (void)result;
    if (!it) {
        if (error)
            log_msg ("turn/interrupt failed: %s", error_message (error));
        return;
    }
    if (error)
        worker_error (w, "interrupt_failed", it->seq,
                      "turn/interrupt for injection '%s': %s", it->id,
                      error_message (error));
    else
        inject_accepted (w, it, "turn/interrupt", w->turn_id, false);
    item_done (w, it->seq, it->id);
}

void inbox_turn_completed (struct worker *w, const char *turn_id)
{
    if (!w->turn_id || strcmp (w->turn_id, turn_id) != 0)
        return;
    log_debug ("turn %s completed", turn_id);
    free (w->turn_id);
    w->turn_id = NULL;
    item_free (w->turn_item);
    w->turn_item = NULL;
    (void)worker_checkpoint (w);
    inbox_try_start (w);
}

/* ---- the records themselves --------------------------------------------------------- */

static void on_user (struct worker *w, struct item *it)
{
    if (w->state == AS_READY && skip_replayed (w, it))
        return;
    if (!w->stopping && w->state == AS_READY && w->turn_id && it->steer
        && !outbox_degraded (w)) {
        send_turn_steer (w, it);
        return;
    }
    queue_push_back (w, it);
    if (!w->stopping && w->state == AS_READY && !as_busy (w)
        && !outbox_degraded (w) && w->queue_head == it) {
        inbox_try_start (w);
        return;
    }
    cJSON *r = cJSON_CreateObject ();
    if (r) {
        json_add_u64 (r, "inbox_seq", it->seq);
        json_add_str (r, "injection_id", it->id);
        json_add_u64 (r, "position", w->queued);
        if (it->request_id)
            json_add_str (r, "request_id", it->request_id);
        worker_record (w, "turn_queued", r);
        cJSON_Delete (r);
    }
}

static void on_interrupt (struct worker *w, struct item *it)
{
    if (w->state == AS_READY && w->turn_id) {
        inbox_send_interrupt (w, it);
        return;
    }
    if (w->state == AS_READY && as_busy (w)) {
        if (w->waiting_interrupt) {         /* one is enough */
            item_done (w, w->waiting_interrupt->seq, w->waiting_interrupt->id);
            item_free (w->waiting_interrupt);
        }
        w->waiting_interrupt = it;
        return;
    }
    worker_error (w, "no_active_turn", it->seq,
                  "interrupt '%s': no turn is running", it->id);
    item_done (w, it->seq, it->id);
    item_free (it);
}

static void on_approval (struct worker *w, uint64_t seq, const char *id,
                         const cJSON *rec)
{
    const char *aid = NULL, *rid = NULL;
    const cJSON *decision = cJSON_GetObjectItemCaseSensitive (rec,
                                                              "decision");
    cs_error_t err;
    struct approval *a;

    if (json_get_str (rec, "approval_id", &aid, &err) < 0
        || json_opt_str (rec, "request_id", &rid, NULL, &err) < 0) {
        worker_error (w, "bad_inbox_record", seq, "approval: %s", err.text);
        goto done;
    }
    if (!decision) {
        worker_error (w, "bad_inbox_record", seq,
                      "approval: missing \"decision\"");
        goto done;
    }
    if (cJSON_IsString (decision) ? !decision_valid (decision->valuestring)
                                  : !decision_amendment (decision)) {
        worker_error (w, "bad_inbox_record", seq, "approval: unknown "
                      "decision %s", cJSON_IsString (decision)
                                         ? decision->valuestring
                                         : "object");
        goto done;
    }
    if (!(a = approval_find (w, aid))) {
        worker_error (w, "unknown_approval", seq,
                      "approval '%s' is unknown or already answered", aid);
        goto done;
    }
    if (decision_amendment (decision)) {
        cJSON *wire = decision_amendment_wire (a->method,
                                               decision_amendment (decision));
        if (!wire) {
            worker_error (w, "bad_inbox_record", seq, "approval '%s': a %s "
                          "request has no execpolicy amendment decision",
                          aid, a->method);
            goto done;
        }
        cJSON_Delete (wire);
    }
    struct item tmp = { .seq = seq, .id = (char *)id,
                        .request_id = (char *)rid };
    char *turn = a->turn_id ? strdup (a->turn_id) : NULL;
    approval_answer (w, a, decision, "inbox", rid);
    inject_accepted (w, &tmp, "approval", turn, false);
    free (turn);
done:
    item_done (w, seq, id);
}

static void on_record (struct worker *w, const struct mb_record *rec,
                       const struct mb_cursor *c)
{
    const cJSON *j = rec->json;
    const char *id = NULL, *content = NULL, *mode = NULL, *rid = NULL;
    cs_error_t err;
    struct item *it = NULL;

    if (json_get_str (j, "id", &id, &err) < 0) {
        track_add (w, rec->seq, NULL, c, false);
        worker_error (w, "bad_inbox_record", rec->seq, "%s record: %s",
                      rec->type, err.text);
        item_done (w, rec->seq, NULL);
        return;
    }
    if (!track_add (w, rec->seq, id, c, false)) {
        log_msg ("out of memory");
        return;
    }
    if (strset_has (&w->done_ids, id)) {
        log_debug ("inbox seq %llu ('%s') was done before a restart: skipped",
                   (unsigned long long)rec->seq, id);
        item_done (w, rec->seq, id);
        return;
    }
    log_debug ("inbox seq %llu: %s '%s'", (unsigned long long)rec->seq,
               rec->type, id);
    if (json_opt_str (j, "request_id", &rid, NULL, &err) < 0)
        rid = NULL;                     /* only echoed: not worth a refusal */
    if (!strcmp (rec->type, "user")) {
        const char *cwd = NULL;
        bool new_thread = false;
        const cJSON *nt = cJSON_GetObjectItemCaseSensitive (j, "new_thread");
        if (json_get_str (j, "content", &content, &err) < 0
            || json_opt_str (j, "mode", &mode, "queue", &err) < 0
            || json_opt_str (j, "cwd", &cwd, NULL, &err) < 0
            || (nt && !cJSON_IsBool (nt)
                && errprintf (&err, "\"new_thread\" is not a boolean") < 0)
            || (cwd && cwd[0] != '/'
                && errprintf (&err, "\"cwd\" is not an absolute path") < 0)) {
            worker_error (w, "bad_inbox_record", rec->seq, "user: %s",
                          err.text);
            item_done (w, rec->seq, id);
            return;
        }
        if (strcmp (mode, "queue") != 0 && strcmp (mode, "steer") != 0) {
            worker_error (w, "bad_inbox_record", rec->seq,
                          "user: unknown mode \"%s\"", mode);
            item_done (w, rec->seq, id);
            return;
        }
        if (!(it = calloc (1, sizeof (*it))) || !(it->id = strdup (id))
            || !(it->content = strdup (content))
            || (rid && !(it->request_id = strdup (rid))))
            goto nomem;
        if (cwd && !(it->cwd = strdup (cwd)))
            goto nomem;
        new_thread = cJSON_IsTrue (nt);
        it->seq = rec->seq;
        it->steer = !strcmp (mode, "steer");
        it->new_thread = new_thread && !it->steer;
        on_user (w, it);
    }
    else if (!strcmp (rec->type, "interrupt")) {
        if (!(it = calloc (1, sizeof (*it))) || !(it->id = strdup (id))
            || (rid && !(it->request_id = strdup (rid))))
            goto nomem;
        it->seq = rec->seq;
        on_interrupt (w, it);
    }
    else if (!strcmp (rec->type, "approval"))
        on_approval (w, rec->seq, id, j);
    else if (!strcmp (rec->type, "shutdown")) {
        item_done (w, rec->seq, id);
        worker_stop (w, "shutdown");
    }
    else {
        worker_error (w, "bad_inbox_record", rec->seq,
                      "unknown record type \"%s\"", rec->type);
        item_done (w, rec->seq, id);
    }
    return;
nomem:
    log_msg ("out of memory");
    item_free (it);
}

void inbox_event (mb_follower_t *f, mb_reader_t *r, const struct mb_event *ev,
                  void *arg)
{
    struct worker *w = arg;
    struct mb_cursor c;

    (void)f;
    if (ev->type == MB_EV_CORRUPT && mb_reader_error (r)) {
        /* the reader stopped: not a record, try again later */
        inbox_stream_stopped (w, mb_reader_error (r));
        return;
    }
    mb_reader_cursor (r, &c);
    w->inbox_pos = c;
    switch (ev->type) {
    case MB_EV_RECORD:
        on_record (w, &ev->rec, &c);
        break;
    case MB_EV_CORRUPT:
        track_add (w, 0, NULL, &c, true);
        worker_error (w, "bad_inbox_record", 0,
                      "inbox line at offset %llu of '%s': %s",
                      (unsigned long long)ev->offset,
                      ev->file ? ev->file : "?",
                      ev->reason ? ev->reason : "corrupt");
        track_advance (w);
        break;
    case MB_EV_GAP:
        log_msg ("inbox: seq %llu expected, %llu found",
                 (unsigned long long)ev->expected,
                 (unsigned long long)ev->rec.seq);
        break;
    case MB_EV_EPOCH:
        log_debug ("inbox: writer epoch %llu -> %llu",
                   (unsigned long long)ev->prev_epoch,
                   (unsigned long long)ev->rec.epoch);
        break;
    case MB_EV_DUPLICATE:
        log_debug ("inbox: duplicate seq %llu", (unsigned long long)ev->rec.seq);
        break;
    }
}
