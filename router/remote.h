/* remote.h - the router's ssh link to "codeswarm-mailbox serve --stdio"
 *
 * The link knows nothing of the router: what it receives goes to the
 * callbacks in struct remote_ops, and the router reaches it only through
 * the calls below.  router/remote-link.c connects the two.
 */
#ifndef CODESWARM_ROUTER_REMOTE_H
#define CODESWARM_ROUTER_REMOTE_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"

typedef struct remote remote_t;

/* Completion of an inbox append: seq > 0 on success, else error text. */
typedef void (*remote_done_f) (uint64_t seq, const char *error, void *arg);

struct remote_opts {
    const char *host;           /* [user@]host */
    char **ssh_opts;            /* extra ssh arguments, NULL-terminated */
    const char *remote_home;    /* --home on the far side (NULL: default) */
    const char *remote_cmd;     /* codeswarm-mailbox on the far side */
};

/* What the link reports, each called with the arg given to remote_create. */
struct remote_ops {
    /* A swarm seen on the remote side (info: its swarm.json, may be NULL). */
    void (*swarm) (void *arg, const char *swarm_id, const cJSON *info);
    /* A record of stream node (-1: the swarm stream) with the serve side's
     * reader cursor after it ("seq:epoch:segment:offset").
     */
    void (*record) (void *arg, const char *swarm_id, int node,
                    const char *cursor, const cJSON *rec);
    /* The cursors to resume from: {"<swarm>/<node>": "cursor", ...}
     * (the link frees it with cJSON_Delete).
     */
    cJSON *(*cursors) (void *arg);
    /* Link state changes ("connecting", "connected", "lost", "failed"). */
    void (*state) (void *arg, const char *state, const char *detail);
};

remote_t *remote_create (const struct remote_opts *o,
                         const struct remote_ops *ops, void *arg,
                         cs_error_t *errp);
void remote_destroy (remote_t *rm);

/* poll() integration: fill up to 3 pollfds, return how many; then handle
 * them.  timeout: ms until a reconnect is due (-1 none).
 */
int remote_pollfds (remote_t *rm, struct pollfd *pfd, int max);
void remote_handle (remote_t *rm, const struct pollfd *pfd, int n);
int remote_timeout (remote_t *rm);
void remote_tick (remote_t *rm);

/* Queue an inbox append; done is called once it was acknowledged (or
 * failed for good).  Survives reconnects (appends are resent with a check
 * against duplicates).
 */
int remote_append (remote_t *rm, const char *swarm_id, int node,
                   const char *type, const cJSON *payload, remote_done_f done,
                   void *arg);

/* The same, with the serve side first looking for the payload's "id" in
 * the inbox, so that it lands only once.
 */
int remote_append_check (remote_t *rm, const char *swarm_id, int node,
                         const char *type, const cJSON *payload,
                         remote_done_f done, void *arg);

bool remote_connected (remote_t *rm);

/* Back-pressure: while held, no frame is read from the link (the serve
 * side stops sending records once its buffer is full; appends it writes
 * are acknowledged once the hold ends) and its silence does not count.
 * Frames already read wait too.
 */
void remote_hold (remote_t *rm, bool hold);

#endif
