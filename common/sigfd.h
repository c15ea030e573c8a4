/* sigfd.h - the signals that end a program, read in its poll() loop
 *
 * SIGTERM, SIGINT and SIGHUP are blocked and delivered through a signalfd,
 * so that the loop ends cleanly (state saved, children stopped) instead of
 * the process dying between two writes; SIGPIPE is ignored, so that a
 * reader going away is an EPIPE from write(2).
 */
#ifndef CODESWARM_COMMON_SIGFD_H
#define CODESWARM_COMMON_SIGFD_H

/* Block SIGTERM, SIGINT and SIGHUP, ignore SIGPIPE.  Returns a nonblocking,
 * CLOEXEC signalfd that reads the three (struct signalfd_siginfo), or -1
 * with errno set.  The caller closes it.
 */
int sigfd_open (void);

#endif
