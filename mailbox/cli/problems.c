/* problems.c - codeswarm-mailbox: how follow and check report problems
 *
 * A reader event that is not a record (a corrupt line, a gap, a new
 * epoch...) as text for the log, or as a JSON line for --events.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailbox/cli/cli.h"

/* "FILE:OFFSET: what" for a non-record event, into buf */
void event_text (const struct mb_event *ev, char *buf, size_t len)
{
    const char *file = ev->file ? ev->file : "?";

    switch (ev->type) {
    case MB_EV_GAP:
        snprintf (buf, len, "%s:%" PRIu64 ": gap: expected seq %" PRIu64
                  ", found %" PRIu64 " (%" PRIu64 " missing)",
                  file, ev->offset, ev->expected, ev->rec.seq,
                  ev->rec.seq - ev->expected);
        break;
    case MB_EV_DUPLICATE:
        snprintf (buf, len, "%s:%" PRIu64 ": duplicate record: seq %" PRIu64
                  " epoch %" PRIu64 " was already delivered",
                  file, ev->offset, ev->rec.seq, ev->rec.epoch);
        break;
    case MB_EV_EPOCH:
        snprintf (buf, len, "%s:%" PRIu64 ": new epoch %" PRIu64
                  " (was %" PRIu64 ") at seq %" PRIu64,
                  file, ev->offset, ev->rec.epoch, ev->prev_epoch,
                  ev->rec.seq);
        break;
    case MB_EV_CORRUPT:
        snprintf (buf, len, "%s:%" PRIu64 ": corrupt record: %s", file,
                  ev->offset, ev->reason ? ev->reason : "unknown");
        break;
    default:
        snprintf (buf, len, "%s:%" PRIu64 ": record seq %" PRIu64, file,
                  ev->offset, ev->rec.seq);
        break;
    }
}

/* {"event":"gap","stream":..,"file":..,"offset":..,...} for --events */
char *event_json (const char *stream, const struct mb_event *ev)
{
    cJSON *o = cJSON_CreateObject ();
    char *s = NULL;

    if (!o)
        return NULL;
    if (!cJSON_AddStringToObject (o, "event", mb_event_name (ev->type))
        || !cJSON_AddStringToObject (o, "stream", stream)
        || !cJSON_AddStringToObject (o, "file", ev->file ? ev->file : "")
        || !cJSON_AddNumberToObject (o, "offset", (double)ev->offset))
        goto done;
    switch (ev->type) {
    case MB_EV_GAP:
        if (!cJSON_AddNumberToObject (o, "expected", (double)ev->expected)
            || !cJSON_AddNumberToObject (o, "seq", (double)ev->rec.seq)
            || !cJSON_AddNumberToObject (o, "epoch", (double)ev->rec.epoch))
            goto done;
        break;
    case MB_EV_DUPLICATE:
        if (!cJSON_AddNumberToObject (o, "seq", (double)ev->rec.seq)
            || !cJSON_AddNumberToObject (o, "epoch", (double)ev->rec.epoch))
            goto done;
        break;
    case MB_EV_EPOCH:
        if (!cJSON_AddNumberToObject (o, "seq", (double)ev->rec.seq)
            || !cJSON_AddNumberToObject (o, "epoch", (double)ev->rec.epoch)
            || !cJSON_AddNumberToObject (o, "prev_epoch",
                                         (double)ev->prev_epoch))
            goto done;
        break;
    case MB_EV_CORRUPT:
        if (!cJSON_AddStringToObject (o, "reason",
                                      ev->reason ? ev->reason : ""))
            goto done;
        break;
    default:
        break;
    }
    s = cJSON_PrintUnformatted (o);
done:
    cJSON_Delete (o);
    return s;
}
