/* command.h - parse and validate codeswarm.router.v1 commands
 *
 *   {"protocol":"codeswarm.router.v1","type":"command","command":"inject",
 *    "request_id":"r1","payload":{...}}
 *
 * Parsing checks everything that can be checked without router state: the
 * JSON, the envelope, the command name and the payload's members and types.
 * What needs state (does the swarm exist, the node, the approval; is an
 * idempotency key a duplicate) is the router's job.  A command that fails
 * gets a reject code and a reason, never a silent drop.
 */
#ifndef CODESWARM_ROUTER_COMMAND_H
#define CODESWARM_ROUTER_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"

#define RC_PROTOCOL "codeswarm.router.v1"
#define RC_MAX_LINE (1024 * 1024)       /* longest command line accepted */
#define RC_MAX_CONTENT (512 * 1024)     /* longest inject content */

enum rc_cmd {
    RC_HELLO = 0,
    RC_INJECT,
    RC_INTERRUPT,
    RC_APPROVE,
    RC_SWARM_LIST,
    RC_SWARM_STATUS,
    RC_APPROVALS_LIST,
    RC_SUBSCRIBE,
    RC_SWARM_TERMINATE,
    RC_SWARM_LAUNCH,
    RC_PROVIDERS_LIST,
    RC_QUEUE_LIST,
    RC_PUBLISH,
};

/* Reject codes (the "code" member of command_rejected). */
#define RC_E_BAD_JSON "bad_json"
#define RC_E_BAD_ENVELOPE "bad_envelope"
#define RC_E_UNKNOWN_COMMAND "unknown_command"
#define RC_E_BAD_PAYLOAD "bad_payload"
#define RC_E_UNKNOWN_SWARM "unknown_swarm"
#define RC_E_UNKNOWN_NODE "unknown_node"
#define RC_E_UNKNOWN_APPROVAL "unknown_approval"
#define RC_E_DUPLICATE "duplicate"
#define RC_E_UNAVAILABLE "unavailable"
#define RC_E_INTERNAL "internal"
#define RC_E_UNKNOWN_MEMBER "unknown_member"
#define RC_E_TOO_LONG "too_long"
#define RC_E_UNSUPPORTED_DECISION "unsupported_decision"
#define RC_E_UNSUPPORTED "unsupported"      /* upstream's, not ours */
#define RC_E_LAUNCH_FAILED "launch_failed"
#define RC_E_SWARM_ENDED "swarm_ended"

struct rc_reject {
    const char *code;           /* one of RC_E_* (static) */
    char reason[256];
    char member[96];            /* the member at fault ("payload.nodes"),
                                   "" when the fault is not one member's */
};

struct rc_nodes {
    bool all;
    int *list;                  /* sorted, unique (malloc'd) */
    size_t count;
};

struct rc_command {
    enum rc_cmd cmd;
    const char *name;           /* static */
    char *request_id;           /* NULL when the client gave none */
    char *swarm_id;             /* inject, interrupt, swarm_status,
                                   swarm_terminate; approve optional */
    struct rc_nodes nodes;      /* inject, interrupt (default: all) */
    char *content;              /* inject */
    bool steer;                 /* inject: mode "steer" */
    char *idempotency_key;      /* inject (optional) */
    char *cwd;                  /* inject (optional): the turn's directory */
    bool new_thread;            /* inject: the turn starts a new thread */
    bool retry_on_loss;         /* inject: rerun once if its node is lost */
    char *event;                /* publish: task_started, task_complete */
    int node_id;                /* publish: the node (-1: none) */
    char *data;                 /* publish: its data object, as JSON */
    char *approval_id;          /* approve_execution */
    char *decision;             /* approve_execution: accept,
                                   acceptForSession, decline or cancel,
                                   or NULL with amendment set */
    cJSON *amendment;           /* approve_execution: the execpolicy
                                   amendment (array of strings) of an
                                   amendment decision, else NULL */
    bool has_since;             /* subscribe */
    uint64_t since;
    bool subscribe;             /* hello: start the event stream (default) */
    cJSON *payload;             /* swarm_launch: the payload (cJSON_Delete
                                   by rc_release) */
    bool force;                 /* swarm_terminate: terminate_params.force */
    double grace;               /* ... terminate_params.grace (seconds), */
    bool has_grace;             /* when given */
};

/* Parse one command line.  On success fills *cmd (free with rc_release).
 * On failure returns -1 with rej filled; cmd->request_id is still set when
 * the line had one (release cmd in both cases).
 */
int rc_parse (const char *line, size_t len, struct rc_command *cmd,
              struct rc_reject *rej);
void rc_release (struct rc_command *cmd);

/* Node selection: "all", an integer, an array of integers (or of strings
 * as below), or a string of indexes and ranges "0,2-5".  Indexes must be
 * below max.  Result freed with rc_nodes_release.
 */
int rc_nodes_parse (const cJSON *v, int max, struct rc_nodes *nodes,
                    cs_error_t *errp);
int rc_nodes_parse_str (const char *s, int max, struct rc_nodes *nodes,
                        cs_error_t *errp);
void rc_nodes_release (struct rc_nodes *nodes);

/* Is decision one the worker accepts? */
bool rc_decision_valid (const char *decision);

/* An approve_execution decision in any of the forms clients send, mapped
 * onto codex's: the codex names (accept, acceptForSession, decline,
 * cancel), upstream's review decisions (approved, approved_for_session,
 * denied, abort), or an amendment object in either dialect
 * ({"acceptWithExecpolicyAmendment":{"execpolicy_amendment":[...]}},
 * {"approved_execpolicy_amendment":{"proposed_execpolicy_amendment":
 * [...]}}).  Sets *name (static) for a plain decision, or *amendment (a
 * new array, cJSON_Delete) for an amendment.  -1 with rej filled when it
 * does not map (code bad_payload, or unsupported_decision for a decision
 * codex has that the worker cannot carry, such as a network policy
 * amendment).
 */
int rc_decision_map (const cJSON *decision, const char **name,
                     cJSON **amendment, struct rc_reject *rej);

/* The injection id of an inject with an idempotency key: the same for
 * the same swarm, key and node on every path (router or mailbox), so a
 * retry is recognised wherever it goes: "key-<16 hex digits>-n<node>".
 */
void rc_key_injection_id (const char *swarm, const char *key, int node,
                          char *buf, size_t len);

#endif
