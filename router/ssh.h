/* ssh.h - the ssh command line of the router's remote transport (pure) */
#ifndef CODESWARM_ROUTER_SSH_H
#define CODESWARM_ROUTER_SSH_H

#include "common/errprintf.h"

/* The ssh program: $CODESWARM_SSH when set and not empty, else PATH_SSH
 * (configure).  Borrowed.
 */
const char *ssh_program (void);

/* Build
 *   SSH -oBatchMode=yes [OPTS...] -- HOST 'CMD' serve --stdio [--home 'DIR']
 * where the remote words are quoted for the remote shell.  host must not
 * start with '-'; remote_cmd NULL means "codeswarm-mailbox".  Result: a
 * NULL-terminated array freed with ssh_argv_free().
 */
char **ssh_argv (const char *ssh, const char *host, char *const *opts,
                 const char *remote_cmd, const char *remote_home,
                 cs_error_t *errp);
void ssh_argv_free (char **argv);

/* Quote s for a POSIX shell (single quotes unless s is plainly safe).
 * Result: free().
 */
char *ssh_shell_quote (const char *s);

#endif
