/* router.h - internals shared by the router's files (router.c, remote.c) */
#ifndef CODESWARM_ROUTER_ROUTER_H
#define CODESWARM_ROUTER_ROUTER_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"
#include "mailbox/mailbox.h"

struct router;

/* Completion of an inbox append: seq > 0 on success, else error text. */
typedef void (*inbox_done_f) (struct router *r, uint64_t seq,
                              const char *error, void *arg);

/* ---- called by a remote link (remote.c) into the router ----------------- */

/* A swarm seen on the remote side (info: its swarm.json, may be NULL). */
void router_remote_swarm (struct router *r, const char *swarm_id,
                          const cJSON *info);
/* A record of stream node (-1: the swarm stream) with the serve side's
 * reader cursor after it ("seq:epoch:segment:offset").
 */
void router_remote_record (struct router *r, const char *swarm_id, int node,
                           const char *cursor, const cJSON *rec);
/* The cursors to resume from: {"<swarm>/<node>": "cursor", ...}
 * (cJSON_Delete).
 */
cJSON *router_remote_cursors (struct router *r);
/* Link state changes ("connected", "lost"), for logging and events. */
void router_remote_state (struct router *r, const char *state,
                          const char *detail);

/* ---- called by control.c into the router --------------------------------- */

/* An event for every client, logged with its seq (takes data). */
void router_event (struct router *r, const char *name, cJSON *data);
/* A reply to one client (takes data); nothing when it is gone. */
void router_reply (struct router *r, int client, const char *name,
                   cJSON *data);
void router_reject (struct router *r, int client, const char *request_id,
                    const char *code, const char *reason);
/* <home>/router */
const char *router_dir (struct router *r);
/* inject content into every node of swarm_id, acknowledged to client */
void router_inject_text (struct router *r, int client, const char *request_id,
                         const char *swarm_id, const char *content);

/* ---- remote link (remote.c) -------------------------------------------- */

typedef struct remote remote_t;

struct remote_opts {
    const char *host;           /* [user@]host */
    char **ssh_opts;            /* extra ssh arguments, NULL-terminated */
    const char *remote_home;    /* --home on the far side (NULL: default) */
    const char *remote_cmd;     /* codeswarm-mailbox on the far side */
};

remote_t *remote_create (struct router *r, const struct remote_opts *o,
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
                   const char *type, const cJSON *payload, inbox_done_f done,
                   void *arg);

bool remote_connected (remote_t *rm);

#endif
