/* serve.h - "codeswarm-mailbox serve --stdio": the login-node end of the
 * router's ssh transport (follows outboxes, writes inboxes, one stdio pipe).
 */
#ifndef CODESWARM_MAILBOX_SERVE_H
#define CODESWARM_MAILBOX_SERVE_H

/* Entry point for the "serve" verb; argv[0] is "serve".  Returns the exit
 * status.
 */
int mailbox_serve_main (int argc, char **argv);

#endif
