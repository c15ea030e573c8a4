/* relaywire.h - what the two sides of the relay share: topics, sealed
 * messages, the relay_state notice, the side's state file
 *
 * Topics under relay.topic_prefix P, for a far side whose client id is F:
 *   P/up/F     far -> near: commands and control lines (sealed SEAL_UP)
 *   P/down/F   near -> far: replies and events (sealed SEAL_DOWN)
 *   P/hello    the near side's retained hello (sealed SEAL_HELLO, link "*")
 *
 * A message's plaintext is lines "<vc> <text>\n": vc names one client of
 * the far side (a "virtual client" on the near side), text is a protocol
 * line or a control word starting with '!':
 *   up:    <vc> !open <since>|live|idle    (re)start vc's stream
 *          <vc> !close                     the client is gone
 *          <vc> !retry <command>           a command sent again after the
 *                                          near side said hello anew and
 *                                          before its answer came
 *          * !reset                        the far side restarted
 *          * !who <user>@<host>            who the far side is (audit)
 *   down:  * !hello <incarnation> <n>      (P/hello only) the near side
 *                                          connected for the n-th time
 * Each message carries a seq that its sender never reuses (reserved in
 * blocks in the sender's state file, and never below the clock in
 * microseconds); a receiver takes only a seq above the last one it took.
 */
#ifndef CODESWARM_ROUTER_RELAYWIRE_H
#define CODESWARM_ROUTER_RELAYWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"
#include "common/json.h"
#include "router/mqlink.h"
#include "router/seal.h"

#define RELAY_MSG_MAX (64 * 1024)       /* plaintext per message, unless one
                                           line is longer */
#define RELAY_SEQ_BLOCK (1u << 20)      /* seqs reserved at a time */
#define RELAY_TOPIC_MAX 512

/* The first seq of a new block: above both reserved and the clock in
 * microseconds, so that a side that lost its state file (or never had
 * one) still sends seqs above any it sent before.
 */
uint64_t relay_seq_block (uint64_t reserved);

/* How much of the n bytes of lines at s go into the next message: the
 * whole lines that fit in RELAY_MSG_MAX, or the first line alone when it
 * is longer (all n when no newline ends it).
 */
size_t relay_msg_cut (const char *s, size_t n);

/* The three topics for far side far_id. */
int relay_topics (const char *prefix, const char *far_id, char *up,
                  char *down, char *hello, cs_error_t *errp);

/* Seal pt[0..len) for (dir, link, seq) and publish it on topic. */
int relay_publish (mqlink_t *l, const unsigned char *key, enum seal_dir dir,
                   const char *link, uint64_t seq, const char *topic,
                   const void *pt, size_t len, bool retain, cs_error_t *errp);

/* Is line a stream event (a top-level "seq" before "event")?  *seq set. */
bool relay_line_is_event (const char *line, size_t len, uint64_t *seq);

/* Append a relay_state event line (no seq) to b. */
int relay_notice (struct jbuf *b, const char *side, const char *state,
                  const char *detail, double retry_in);

/* The side's state file (JSON, mode 0600, replaced atomically).  read:
 * NULL with errno ENOENT when there is none; cJSON_Delete the result.
 */
cJSON *relay_state_read (const char *path, cs_error_t *errp);
int relay_state_write (const char *path, const cJSON *state,
                       cs_error_t *errp);

#endif
