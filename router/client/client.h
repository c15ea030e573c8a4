/* client.h - what the files of codeswarm-client share
 *
 * main.c dispatches to one cmd_<verb>() per verb file; connection.c talks
 * to the router; direct.c reaches the mailbox without one.
 */
#ifndef CODESWARM_ROUTER_CLIENT_CLIENT_H
#define CODESWARM_ROUTER_CLIENT_CLIENT_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/json.h"
#include "common/lineio.h"
#include "common/log.h"
#include "mailbox/mailbox.h"
#include "router/command.h"
#include "router/paths.h"
#include "router/translate.h"

extern char client_home[PATH_MAX];              /* codeswarm home */
extern volatile sig_atomic_t client_stop;       /* SIGINT/SIGTERM seen */

/* ---- the verbs: argv[0] is the verb; return the exit code ------------- */

int cmd_send (int argc, char **argv);
int cmd_interrupt (int argc, char **argv);
int cmd_attach (int argc, char **argv);
int cmd_approvals (int argc, char **argv);
int cmd_approve (int argc, char **argv);
int cmd_rpc (int argc, char **argv);

/* ---- connection.c: the router ----------------------------------------- */

extern int client_router_fd;    /* -1: not connected */
extern int client_req_counter;  /* request and record ids */

/* Connect to the router's socket; false when none listens (or
 * CODESWARM_NO_ROUTER is set).
 */
bool router_open (void);
void router_close (void);
/* Send a command (takes payload); returns its request id (static buffer). */
const char *router_send (const char *command, cJSON *payload);
/* Next message from the router (cJSON_Delete), NULL at EOF or timeout
 * (timeout_ms -1: none).
 */
cJSON *router_recv (int timeout_ms);
/* Wait for the reply named name (or command_rejected) to rid; exits when
 * none comes.
 */
cJSON *router_wait (const char *rid, const char *name);
/* Exit with a command_rejected's code and reason. */
void die_rejected (const cJSON *o);
bool is_reply_to (const cJSON *o, const char *rid);
/* A message's event name ("" when none) and its data. */
const char *ev_name (const cJSON *o);
const cJSON *ev_data (const cJSON *o);
/* d's string member key, or NULL. */
const char *dstr (const cJSON *d, const char *key);

/* ---- direct.c: the mailbox without a router ---------------------------- */

/* The swarm's directory; exits when it does not exist. */
int swarm_dir (const char *swarm, char *buf, size_t len);
/* Node count: swarm.json "nodes", else the highest outbox/inbox + 1. */
int swarm_node_count (const char *sdir);
/* swarm.json says the swarm has ended (ended, cancelled, failed): true,
 * with that state in state.
 */
bool swarm_has_ended (const char *sdir, char *state, size_t len);
/* A fresh injection/interrupt/approval id. */
void new_id (const char *prefix, int node, char *buf, size_t len);
/* Append a record to node's inbox under its writer lock; exits on error. */
uint64_t direct_append (const char *sdir, int node, const char *type,
                        cJSON *payload);

/* Pending approvals, from the router or the outboxes (cJSON_Delete);
 * only_swarm NULL: of every swarm.  In approvals.c.
 */
cJSON *pending_approvals (const char *only_swarm);

/* A private translator over a swarm's outboxes (follow_close). */
struct follow {
    const char *swarm;
    char sdir[PATH_MAX];
    rt_trans_t *t;
    mb_follower_t *f;
    bool followed[RT_MAX_NODES / 8 + 1];
    bool sfollowed;
    enum mb_start start;
    void (*on_event) (const char *name, cJSON *data, void *arg);
    void *arg;
    uint64_t seq;
};

struct follow *follow_open (const char *swarm, enum mb_start start,
                            void (*cb) (const char *, cJSON *, void *),
                            void *arg);
void follow_close (struct follow *fo);
/* Follow outbox streams that appeared since. */
void follow_scan (struct follow *fo);
/* Read everything there is now. */
void follow_drain (struct follow *fo);

#endif
