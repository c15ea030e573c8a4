/* audit.h - the router's entries in each swarm's audit trail
 * (mailbox/audit.h): who asked for every inbox record a command wrote.
 *
 * A client's identity is taken when it connects (struct audit_who): the
 * uid from SO_PEERCRED on the UNIX socket, the router's own uid on the
 * loopback TCP listener (which admits that uid alone) and on stdio, with
 * "via" naming the way in ("socket", "tcp", "stdio", or "ssh" when stdio
 * comes through sshd) and "peer" what is known of the other end.
 *
 * An entry that cannot be written is logged, kept in memory (at most
 * AUDIT_MAX_PENDING) and written again at the next audit_flush (); the
 * router never stops for it.  With the swarms behind ssh (remote mode)
 * the entries go to <home>/router/audit/<swarm>.jsonl on this side.
 */
#ifndef CODESWARM_ROUTER_AUDIT_H
#define CODESWARM_ROUTER_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define AUDIT_MAX_PENDING 10000

struct audit_who {
    uid_t uid;
    char user[64];              /* its user name when it connected, or "" */
    char via[16];
    char peer[64];
};

struct router;
struct append_ctx;

/* who is at the other end of a client connected by via (peer may be NULL) */
void audit_who_set (struct audit_who *w, uid_t uid, const char *via,
                    const char *peer);

/* An inbox append of a command has finished: seq > 0 written, 0 failed
 * (error says why).
 */
void audit_append_done (struct router *r, const struct append_ctx *a,
                        uint64_t seq, const char *error);

/* Write what could not be written before (called with the state flush). */
void audit_flush (struct router *r);

/* The entries of audit_append_done () are written at once but synced
 * together: audit_sync () fdatasyncs every audit.jsonl written since the
 * last call (commit.c calls it before the replies go out); a failure is
 * logged.  audit_unsynced (): is there any?
 */
void audit_sync (struct router *r);
bool audit_unsynced (void);

/* Entries waiting to be written (for metrics and tests). */
size_t audit_pending (void);

#endif
