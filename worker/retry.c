/* retry.c - a prompt cut with its node runs once more on the node's next
 * worker.
 *
 * A turn in flight when its worker died (the node lost, the worker killed)
 * is reported aborted by the node's next worker (turn_aborted, reason
 * "worker_restarted", or "node_lost" on a spare that took the node's index
 * over); a router that saw the node go silent reported it
 * failed already (turn_complete, reason "node_lost").  When the prompt's
 * inbox record says "retry_on_loss": true (codeswarm send --retry-on-loss),
 * or the configuration says worker.retry_on_loss, that next worker queues
 * the prompt again, ahead of the rest, as injection "<id>-retry", and says
 * so first with an inject_retried record (injection_id, retry_id).
 * Exactly once: a prompt with an inject_retried record in the outbox is not
 * retried again, a retry is never retried, and a retry whose turn was never
 * accepted (the worker died in between) is queued again, under the same
 * id, by the next worker.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "worker/worker.h"

#define RETRY_SUFFIX "-retry"

void retry_note (struct worker *w, const char *injection_id)
{
    size_t n = strlen (injection_id), m = strlen (RETRY_SUFFIX);

    if (n >= m && !strcmp (injection_id + n - m, RETRY_SUFFIX))
        return;                 /* a retry is not retried */
    if (strset_add (&w->retry_ids, injection_id) < 0)
        log_msg ("out of memory");
}

/* The outbox from its start: the retries said (inject_retried) and the
 * injections accepted.
 */
static void retry_scan_outbox (struct worker *w, struct strset *retried,
                               struct strset *accepted)
{
    struct mb_event ev;
    cs_error_t err;
    mb_reader_t *r;
    int rc;

    if (!(r = mb_reader_open (w->outbox_path, MB_START_BEGIN, NULL,
                              &w->mbopt, &err))) {
        log_msg ("cannot read the outbox: %s", err.text);
        return;
    }
    while ((rc = mb_reader_next (r, &ev, &err)) > 0) {
        const char *s = NULL;
        if (ev.type != MB_EV_RECORD
            || json_get_str (ev.rec.json, "injection_id", &s, NULL) < 0)
            continue;
        if (!strcmp (ev.rec.type, "inject_retried"))
            (void)strset_add (retried, s);
        else if (!strcmp (ev.rec.type, "inject_accepted"))
            (void)strset_add (accepted, s);
    }
    if (rc < 0)
        log_msg ("reading the outbox: %s", err.text);
    mb_reader_close (r);
}

/* The user record of injection id in the inbox, as an item (seq 0: it is
 * not tracked; the original record was done), or NULL.
 */
static struct item *retry_find (struct worker *w, const char *id,
                                bool *asked)
{
    struct mb_event ev;
    cs_error_t err;
    mb_reader_t *r;
    struct item *it = NULL;
    int rc;

    if (!(r = mb_reader_open (w->inbox_path, MB_START_BEGIN, NULL, &w->mbopt,
                              &err))) {
        log_msg ("cannot read the inbox: %s", err.text);
        return NULL;
    }
    while (!it && (rc = mb_reader_next (r, &ev, &err)) > 0) {
        const cJSON *j = ev.rec.json;
        const char *s = NULL, *content = NULL, *cwd = NULL, *rid = NULL;
        if (ev.type != MB_EV_RECORD || strcmp (ev.rec.type, "user") != 0
            || json_get_str (j, "id", &s, NULL) < 0 || strcmp (s, id) != 0
            || json_get_str (j, "content", &content, NULL) < 0)
            continue;
        *asked = cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (
            j, "retry_on_loss"));
        (void)json_get_str (j, "cwd", &cwd, NULL);
        (void)json_get_str (j, "request_id", &rid, NULL);
        if (!(it = calloc (1, sizeof (*it)))
            || asprintf (&it->id, "%s%s", id, RETRY_SUFFIX) < 0
            || !(it->content = strdup (content))
            || !(it->retry_of = strdup (id))
            || (cwd && !(it->cwd = strdup (cwd)))
            || (rid && !(it->request_id = strdup (rid)))) {
            if (it && !it->id)
                it->id = NULL;
            item_free (it);
            it = NULL;
            log_msg ("out of memory");
            break;
        }
    }
    mb_reader_close (r);
    return it;
}

void retry_queue (struct worker *w)
{
    struct strset retried = STRSET_INIT, accepted = STRSET_INIT;

    if (w->retry_ids.count == 0)
        return;
    retry_scan_outbox (w, &retried, &accepted);
    for (size_t i = 0; i < w->retry_ids.size; i++) {
        const char *id = w->retry_ids.slot ? w->retry_ids.slot[i] : NULL;
        struct item *it;
        bool asked = false;
        if (!id)
            continue;
        if (!(it = retry_find (w, id, &asked)))
            continue;
        if (!asked && !w->cfg.retry_on_loss) {
            item_free (it);
            continue;
        }
        if (strset_has (&retried, id)) {
            if (strset_has (&accepted, it->id)) {
                item_free (it);
                continue;       /* retried, and the retry ran */
            }
            log_msg ("injection '%s': its retry '%s' was never started: "
                     "queued again", id, it->id);
        } else {
            cJSON *r = cJSON_CreateObject ();
            if (r) {
                json_add_str (r, "injection_id", id);
                json_add_str (r, "retry_id", it->id);
                if (it->request_id)
                    json_add_str (r, "request_id", it->request_id);
                worker_record (w, "inject_retried", r);
                cJSON_Delete (r);
            }
            log_msg ("injection '%s' was cut with the node: queued again as "
                     "'%s'", id, it->id);
        }
        queue_push_front (w, it);
    }
    strset_release (&retried);
    strset_release (&accepted);
    strset_release (&w->retry_ids);
}
