/* log.h - logging for programs (never used by libraries).
 *
 * Messages go to stderr as "prog: message", git style: lowercase, no full
 * stop, subjects in quotes.  log_init() sets the program name; -v raises
 * the verbosity with log_set_verbose().  A program may also ask for
 * timestamps (daemons writing to a log file).
 */
#ifndef CODESWARM_LOG_H
#define CODESWARM_LOG_H

#include <stdarg.h>

void log_init (const char *prog);
const char *log_prog (void);
void log_set_verbose (int level);
int log_verbose (void);
void log_set_timestamps (int on);

/* log_err: "prog: fmt: strerror(errno)"; log_errn: with an explicit errnum */
void log_err (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void log_errn (int errnum, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
/* log_msg: "prog: fmt" */
void log_msg (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* log_debug: only when verbose >= 1 (log_trace: >= 2) */
void log_debug (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void log_trace (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* ..._exit: log, then exit(1) */
void log_err_exit (const char *fmt, ...)
    __attribute__ ((format (printf, 1, 2), noreturn));
void log_msg_exit (const char *fmt, ...)
    __attribute__ ((format (printf, 1, 2), noreturn));

#endif
