/* connection.c - the client verbs' connection to the router
 *
 * One connection to the router's per-user UNIX socket: commands out, one
 * JSON line per message in, and waiting for the reply to a request.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router/client/client.h"

int client_router_fd = -1;
static lineio_t *router_in;
int client_req_counter;

bool router_open (void)
{
    char path[PATH_MAX];
    cs_error_t err;
    if (getenv ("CODESWARM_NO_ROUTER"))
        return false;
    if (router_socket_path (client_home, path, sizeof (path), false, NULL) < 0)
        return false;
    if ((client_router_fd = router_connect (path, &err)) < 0) {
        /* someone else's socket: neither talk to it nor go around it */
        if (errno == EACCES)
            log_msg_exit ("%s", err.text);
        return false;
    }
    if (!(router_in = lineio_create (RC_MAX_LINE * 16)))
        log_msg_exit ("out of memory");
    return true;
}

/* Drop the connection (a router that went away), so that router_open can
 * make a new one.
 */
void router_close (void)
{
    if (client_router_fd >= 0)
        close (client_router_fd);
    client_router_fd = -1;
    lineio_destroy (router_in);
    router_in = NULL;
}

/* Send a command; returns its request id (static buffer). */
const char *router_send (const char *command, cJSON *payload)
{
    static char rid[32];
    cJSON *o = cJSON_CreateObject ();
    char *s;

    snprintf (rid, sizeof (rid), "c%d-%d", (int)getpid (),
              ++client_req_counter);
    json_add_str (o, "protocol", RC_PROTOCOL);
    json_add_str (o, "type", "command");
    json_add_str (o, "command", command);
    json_add_str (o, "request_id", rid);
    json_add_item (o, "payload", payload ? payload : cJSON_CreateObject ());
    if (!(s = cJSON_PrintUnformatted (o)))
        log_msg_exit ("out of memory");
    if (fd_write_all (client_router_fd, s, strlen (s)) < 0
        || fd_write_all (client_router_fd, "\n", 1) < 0)
        log_err_exit ("cannot write to the router");
    free (s);
    cJSON_Delete (o);
    return rid;
}

/* Next message from the router (cJSON_Delete), NULL at EOF or timeout. */
cJSON *router_recv (int timeout_ms)
{
    const char *line;
    size_t len;
    bool overlong;
    double until = time_mono () + timeout_ms / 1000.0;

    for (;;) {
        struct pollfd pfd = { .fd = client_router_fd, .events = POLLIN };
        ssize_t n;
        int t;
        if (lineio_next (router_in, &line, &len, &overlong) == 1) {
            cJSON *o;
            if (overlong || !(o = json_parse (line, len, NULL)))
                continue;
            return o;
        }
        if (lineio_eof (router_in))
            return NULL;
        t = timeout_ms < 0 ? -1 : (int)((until - time_mono ()) * 1000);
        if (timeout_ms >= 0 && t <= 0)
            return NULL;
        if ((t = poll (&pfd, 1, t)) < 0) {
            if (errno == EINTR && !client_stop)
                continue;
            return NULL;
        }
        if (t == 0)
            continue;
        n = lineio_fill (router_in, client_router_fd);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return NULL;
    }
}

const char *ev_name (const cJSON *o)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive (o, "event");
    return cJSON_IsString (e) ? e->valuestring : "";
}

const cJSON *ev_data (const cJSON *o)
{
    return cJSON_GetObjectItemCaseSensitive (o, "data");
}

const char *dstr (const cJSON *d, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (d, key);
    return cJSON_IsString (v) ? v->valuestring : NULL;
}

bool is_reply_to (const cJSON *o, const char *rid)
{
    const char *r = dstr (ev_data (o), "request_id");
    return r && !strcmp (r, rid);
}

/* Wait for the reply named name (or command_rejected) to rid. */
cJSON *router_wait (const char *rid, const char *name)
{
    cJSON *o;
    while ((o = router_recv (30000))) {
        if (is_reply_to (o, rid)
            && (!strcmp (ev_name (o), name)
                || !strcmp (ev_name (o), "command_rejected")))
            return o;
        cJSON_Delete (o);
    }
    log_msg_exit ("no reply from the router");
}

void die_rejected (const cJSON *o)
{
    const cJSON *d = ev_data (o);
    log_msg_exit ("%s: %s", dstr (d, "code") ? dstr (d, "code") : "rejected",
                  dstr (d, "reason") ? dstr (d, "reason") : "");
}
