/* relay.h - the MQTT relay of codeswarm-router (see relaywire.h for the
 * wire, codeswarm-router(1) for the behaviour)
 *
 * Near side (--relay, relay.c): the router that follows the mailboxes
 * dials out to the broker; every client of the far side becomes a
 * virtual client of this router, whose commands are handled exactly as a
 * local client's and whose output (replies, its event stream) is sealed
 * and published back.
 *
 * Far side (--relay-client, relayfar.c): a router without mailboxes that
 * serves local clients by relaying each one to a virtual client on the
 * near side; it drops what QoS 1 delivers twice (by message seq and event
 * seq) and restarts a client's stream from its last event seq whenever
 * something may have been lost (a gap, the near side restarted or
 * reconnected), so that a client sees every event once.
 */
#ifndef CODESWARM_ROUTER_RELAY_H
#define CODESWARM_ROUTER_RELAY_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/configfile.h"
#include "common/errprintf.h"

struct router;
struct client;

/* ---- far side (relayfar.c) ---------------------------------------------- */

struct relay_far_opts {
    const struct cs_config *cfg;
    const char *home;           /* codeswarm home (socket, state file) */
    bool socket;                /* listen on the per-user UNIX socket */
    bool stdio;                 /* serve a client on stdin/stdout */
    const char *tcp;            /* --tcp ADDR: a loopback listener, or NULL */
};

/* Run the far side until a signal (or, stdio only, end of input). */
int relay_far_run (const struct relay_far_opts *o);

/* ---- near side (relay.c) ------------------------------------------------ */

typedef struct relay relay_t;

/* Connect out (from the first relay_tick on).  dir: <home>/router, for
 * the state file relay.json.
 */
relay_t *relay_create (struct router *r, const struct cs_config *cfg,
                       const char *dir, cs_error_t *errp);
void relay_destroy (relay_t *rl);

int relay_pollfd (relay_t *rl, struct pollfd *pfd);  /* 0 or 1 */
void relay_handle (relay_t *rl, const struct pollfd *pfd);
int relay_timeout (relay_t *rl);                     /* ms */
/* Once per loop turn, after the clients were served: publish what the
 * virtual clients were sent, resume paused streams, reconnect.
 */
void relay_tick (relay_t *rl);

/* Write the relay's Prometheus metrics (its state, connections,
 * payloads rejected and duplicates dropped) to f.
 */
void relay_metrics (relay_t *rl, FILE *f);

/* "<far-id> <client>": who virtual client vc is, the same across
 * restarts of either side (a far side never reuses a client's name).
 */
void relay_client_name (void *vc, char *buf, size_t len);

/* Output for virtual client vc (called by the router's client layer). */
void relay_client_output (relay_t *rl, void *vc, const char *data,
                          size_t len);

/* ---- what the router's client layer provides the near side --------------- */

/* A client without fds whose output goes to relay_client_output (rl, vc). */
struct client *router_vclient_add (struct router *r, relay_t *rl, void *vc);
/* Its identity in the audit trail: via "relay", the far side's id and
 * the user@host it says it is (who may be empty).
 */
void router_vclient_who (struct client *c, const char *far_id,
                         const char *who);
/* Handle a command line from it, exactly as from a local client. */
void router_vclient_command (struct router *r, struct client *c,
                             const char *line, size_t len);
/* The same for a command sent again because its answer was lost (the
 * near side restarted): an inject whose idempotency key is known is
 * answered again (its records written where they are missing) instead of
 * being rejected as a duplicate.
 */
void router_vclient_retry (struct router *r, struct client *c,
                           const char *line, size_t len);
/* (Re)start its event stream after since (has_since false: live). */
void router_vclient_start (struct router *r, struct client *c,
                           bool has_since, uint64_t since);
/* Stop its event stream; returns the seq of the last event it was sent. */
uint64_t router_vclient_pause (struct client *c);
/* It is gone (freed by the router later; no more output). */
void router_vclient_remove (struct client *c);
/* Send a line (no seq) to every local client whose stream runs. */
void router_notice_local (struct router *r, const char *line, size_t len);

#endif
