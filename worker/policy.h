/* policy.h - the worker's approval policy and the approval decisions
 *
 * Pure (no I/O, unit-tested in worker/test/policy.c): which commands an
 * approval request is about, the codeswarm.yaml rule that decides it (if
 * any), and the decision names of the two approval protocols.
 */
#ifndef CODESWARM_WORKER_POLICY_H
#define CODESWARM_WORKER_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/configfile.h"

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

#endif
