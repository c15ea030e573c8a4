/* audit.h - a swarm's audit trail: <swarm>/audit.jsonl
 *
 * One JSON object per line, appended and never rewritten (mode 0600, a
 * regular file of the owner, no symlink), one write(2) per entry under an
 * fcntl lock on the file, so that the router, the launcher, the workers
 * and the client verbs (several hosts on a shared filesystem) can all
 * append.  An entry:
 *   {"v":1, "ts":<seconds>, "action":"inject"|"interrupt"|"approval"|
 *    "shutdown"|"launch"|"resume"|"cancel"|"import"|"export",
 *    "swarm":ID, "who":{"uid":N,"user":NAME}, "via":"socket"|"tcp"|
 *    "stdio"|"ssh"|"relay"|"mailbox"|"cli"|"worker", "peer":...,
 *    "node":K, "id":..., "request_id":..., "decision":..., "rule":{...},
 *    "result":"ok"|"failed", "error":...}
 * (members beyond "v", "ts", "action" and "swarm" when they apply).
 * codeswarm audit reads it; codeswarm export carries it.
 */
#ifndef CODESWARM_MAILBOX_AUDIT_H
#define CODESWARM_MAILBOX_AUDIT_H

#include <stdbool.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"

#define MB_AUDIT_FILE "audit.jsonl"

/* Add "who" (uid and its user name), "via" and "peer" (may be NULL). */
int mb_audit_identity (cJSON *entry, uid_t uid, const char *via,
                       const char *peer);
/* The same with the user name given (NULL: none), as looked up before. */
int mb_audit_identity_as (cJSON *entry, uid_t uid, const char *user,
                          const char *via, const char *peer);

/* Append entry (given "v" and "ts" when it has none) to
 * <swarmdir>/audit.jsonl and fdatasync it.  0, or -1 with errp (the entry
 * is not written).
 */
int mb_audit_append (const char *swarmdir, cJSON *entry, cs_error_t *errp);

/* The same, synced only when sync is true: a writer that appends many
 * entries at once calls mb_audit_sync () once after them.
 */
int mb_audit_write (const char *swarmdir, cJSON *entry, bool sync,
                    cs_error_t *errp);

/* fdatasync <swarmdir>/audit.jsonl.  0, or -1 with errp. */
int mb_audit_sync (const char *swarmdir, cs_error_t *errp);

/* "ssh" with $SSH_CONNECTION's client address in *peer (static), when
 * this process runs under sshd; else dflt with *peer NULL.
 */
const char *mb_audit_via (const char *dflt, const char **peer);

#endif
