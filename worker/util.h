/* util.h - pure helpers of codeswarm-worker (unit-tested in worker/test/).
 *
 * Nothing here does I/O: ANSI stripping, the bounded stderr tail, the
 * approval policy match, workspace path templates, the schema hash, the
 * decision names of the two approval protocols, and the set of injection
 * ids.
 */
#ifndef CODESWARM_WORKER_UTIL_H
#define CODESWARM_WORKER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/configfile.h"

/* Remove ANSI escape sequences (CSI "ESC [ ... final", OSC "ESC ] ... BEL
 * or ESC \", and two-byte "ESC x") and other C0 controls except '\t' from
 * s[0..len) in place.  A sequence cut off at the end of the buffer is
 * dropped.  Returns the new length.
 */
size_t ansi_strip (char *s, size_t len);

/* A ring that keeps the last `size` bytes written to it. */
struct tail {
    char *buf;
    size_t size;
    size_t start;               /* index of the oldest byte */
    size_t len;                 /* bytes held (<= size) */
};
int tail_init (struct tail *t, size_t size);        /* tail_release */
void tail_release (struct tail *t);
void tail_append (struct tail *t, const char *data, size_t len);
void tail_clear (struct tail *t);
/* The held bytes as one NUL-terminated string; free(). */
char *tail_str (const struct tail *t);

/* Does `command` (a command line as words) start with the words of
 * `prefix`?  Words are separated by blanks; "git status" matches
 * "git status -s" and "git status" but not "git statusx" or "git".
 */
bool policy_prefix_match (const char *prefix, const char *command);

/* Is path equal to dir or below it (textually, after removing trailing
 * slashes; both should be absolute and canonical)?
 */
bool policy_path_within (const char *dir, const char *path);

/* The command words an approval request is about: for the v2 request the
 * parsed commandActions[].command when present (several for a pipeline),
 * else the "command" string unwrapped from "<shell> -c|-lc '<script>'";
 * for the legacy execCommandApproval the "command" array joined by
 * blanks.  Fills at most max malloc'd strings into cmds (free each) and
 * returns the count (0: not a command request, e.g. a file change).
 */
size_t policy_commands (const cJSON *params, char **cmds, size_t max);

/* Decide by the rules: the first rule that matches every command (and,
 * with in_workspace, whose cwd lies within workspace) gives the decision.
 * Returns the rule's decision (borrowed) or NULL: ask.
 */
const char *policy_decide (const struct cs_approval_rule *rules,
                           size_t nrules, const cJSON *params,
                           const char *workspace);

/* Is s a decision the inbox may carry (accept, acceptForSession, decline,
 * cancel)?
 */
bool decision_valid (const char *s);
/* The decision in the wire form of a request method: v2 methods take the
 * names as they are; the legacy execCommandApproval/applyPatchApproval
 * take approved/approved_for_session/denied/abort.  Returns a new cJSON
 * value (cJSON_Delete) or NULL.
 */
cJSON *decision_wire (const char *method, const char *decision);
/* An execpolicy amendment decision: accept the command and allow the
 * commands that start with the strings of amendment from now on.  v2
 * command approvals take {"acceptWithExecpolicyAmendment":
 * {"execpolicy_amendment":[...]}}, the legacy execCommandApproval
 * {"approved_execpolicy_amendment":{"proposed_execpolicy_amendment":[...]}};
 * file change approvals have no such decision.  Returns a new cJSON value
 * (cJSON_Delete) or NULL (errno EINVAL: the method has none, or amendment
 * is not a non-empty array of strings).
 */
cJSON *decision_amendment_wire (const char *method, const cJSON *amendment);
/* The amendment of an inbox decision object in codex's v2 form
 * {"acceptWithExecpolicyAmendment":{"execpolicy_amendment":[...]}}
 * (borrowed), or NULL when decision is not one.
 */
const cJSON *decision_amendment (const cJSON *decision);

/* Expand a workspace template: %h home, %s swarm id, %k node index, %%. */
char *path_expand (const char *tmpl, const char *home, const char *swarm,
                   int node);   /* free() */

/* 64-bit FNV-1a over s, continued from h (start with FNV1A_INIT). */
#define FNV1A_INIT 0xcbf29ce484222325ULL
uint64_t fnv1a (uint64_t h, const char *s);

/* A set of strings (injection ids); small and linear is enough, but it is
 * a hash set so that a long-lived thread with thousands of turns stays
 * cheap.
 */
struct strset {
    char **slot;
    size_t size;                /* power of two */
    size_t count;
};
int strset_add (struct strset *s, const char *str);     /* 1 new, 0 had, -1 */
bool strset_has (const struct strset *s, const char *str);
void strset_release (struct strset *s);

#endif
