/* view.h - what "codeswarm attach" prints: a swarm's events as lines
 * prefixed with their node ([n0]), or as JSON lines (--json).
 *
 * Lines are whole: a node's streamed answer is printed a line at a time,
 * so that two nodes streaming at once never split each other's lines.  On
 * a terminal (terminfo "el") the line a node is still writing is shown as
 * it grows, and erased and shown again below when another node prints.
 * Each answer is printed once (streamed, or the final message when nothing
 * streamed), and a token count only when it changed.
 *
 * Replay: between view_replay_start() and view_replay_done() events are
 * held, and only each node's latest turn (from its last turn_started) is
 * then printed, node after node: what "attach" shows before it follows.
 */
#ifndef CODESWARM_ROUTER_CLIENT_VIEW_H
#define CODESWARM_ROUTER_CLIENT_VIEW_H

#include <stdbool.h>

#include <cjson/cJSON.h>

struct view_node;

struct view {
    const char *swarm; /* only this swarm's events */
    int only_node;     /* >= 0: only this node's events */
    bool json;         /* JSON lines instead of readable lines */
    bool colour;
    int turns_seen;    /* turn_complete events shown */
    /* private */
    bool replaying;
    const char *eraser; /* terminfo clr_eol, NULL: no live partial lines */
    const char *setaf, *sgr0, *bold; /* terminfo, NULL: no colour */
    int live_node;     /* node whose partial line is on the screen, -1 */
    struct view_node *node;
    int nnodes;
};

/* Set up (colour and live partial lines only when stdout is a terminal). */
void view_init (struct view *v, const char *swarm, int only_node, bool json);

/* Show event name with data d; raw: the message as received (JSON mode
 * prints it as is), may be NULL.
 */
void view_event (struct view *v, const char *name, const cJSON *d,
                 const char *raw);

void view_replay_start (struct view *v);
void view_replay_done (struct view *v);

/* Print what is pending (partial lines) and free everything. */
void view_close (struct view *v);

#endif
