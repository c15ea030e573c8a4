/* mqlink.h - one MQTT connection of the relay, driven by a poll() loop
 *
 * A link connects OUT to the broker in relay.url with libmosquitto: MQTT
 * v5, QoS 1, a persistent session (clean start off, relay.session_expiry)
 * under a stable client id, TLS with relay.ca_file (and a client
 * certificate when given), a user name and password, and a SOCKS5 proxy
 * when relay.proxy is set.  It never listens.  Connecting does not block
 * the loop (only a name lookup of the broker's host does).  A lost or
 * refused connection is retried with a backoff that doubles from
 * relay.backoff_min up to relay.backoff_max and resets once connected.
 *
 * The owner's loop asks for the fd and the events to poll for
 * (mqlink_pollfd), hands the result to mqlink_handle, and calls
 * mqlink_tick at least when mqlink_timeout says.
 */
#ifndef CODESWARM_ROUTER_MQLINK_H
#define CODESWARM_ROUTER_MQLINK_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/configfile.h"
#include "common/errprintf.h"

typedef struct mqlink mqlink_t;

/* A message arrived on a subscribed topic. */
typedef void (*mqlink_msg_f) (mqlink_t *l, const char *topic,
                              const void *payload, size_t len, void *arg);

/* The link's state changed: "connected" (detail NULL), "retrying"
 * (detail: why, retry_in: seconds until the next attempt), or "refused"
 * (the broker refused us: detail says why; retried like "retrying").
 */
typedef void (*mqlink_state_f) (mqlink_t *l, const char *state,
                                const char *detail, double retry_in,
                                void *arg);

struct mqlink_opts {
    const struct cs_config *cfg;        /* relay.* (borrowed) */
    const char *client_id;              /* the stable MQTT client id */
    const char *const *subscribe;       /* topics, NULL-terminated */
    mqlink_msg_f msg_cb;
    mqlink_state_f state_cb;
    void *arg;
};

/* Check the configuration, read the password file and set up the link;
 * the first connection attempt is made by the first mqlink_tick.
 * Free with mqlink_destroy.
 */
mqlink_t *mqlink_create (const struct mqlink_opts *o, cs_error_t *errp);
void mqlink_destroy (mqlink_t *l);

/* poll() integration: fills *pfd and returns 1, or 0 when there is no
 * socket now.
 */
int mqlink_pollfd (mqlink_t *l, struct pollfd *pfd);
void mqlink_handle (mqlink_t *l, const struct pollfd *pfd);
int mqlink_timeout (mqlink_t *l);       /* ms until mqlink_tick is due */
void mqlink_tick (mqlink_t *l);

/* Publish at QoS 1 (retain: a retained message).  Messages published
 * while disconnected wait in libmosquitto for the next connection.
 */
int mqlink_publish (mqlink_t *l, const char *topic, const void *payload,
                    size_t len, bool retain, cs_error_t *errp);

bool mqlink_connected (mqlink_t *l);

/* Messages published and not yet acknowledged by the broker. */
unsigned mqlink_unacked (mqlink_t *l);

/* Counters for tests and logs. */
unsigned mqlink_connects (mqlink_t *l);

/* Drop the connection now (as if the network failed); it is retried after
 * the backoff.  For fault injection.
 */
void mqlink_drop (mqlink_t *l);

#endif
