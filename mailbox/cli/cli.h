/* cli.h - what the files of codeswarm-mailbox share */
#ifndef CODESWARM_MAILBOX_CLI_CLI_H
#define CODESWARM_MAILBOX_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"
#include "common/log.h"
#include "mailbox/mailbox.h"

/* exit codes */
enum {
    EXIT_OK = 0,
    EXIT_PROBLEMS = 1,      /* check: problems found; append: bad input */
    EXIT_FAILED = 2,        /* could not open/read/write, bad usage */
};

/* --home (NULL: $CODESWARM_HOME or ~/.codeswarm) */
extern const char *home_opt;

/* ---- the verbs: argv[0] is the verb; return the exit code ------------- */

int cmd_append (int argc, char **argv);
int cmd_follow (int argc, char **argv);
int cmd_check (int argc, char **argv);
int cmd_stat (int argc, char **argv);

/* ---- main.c ------------------------------------------------------------ */

void usage (FILE *fp);

/* ---- args.c ------------------------------------------------------------ */

/* a bad option or argument: message, exit 2 */
void usage_error (const char *fmt, ...)
    __attribute__ ((format (printf, 1, 2), noreturn));
double now_mono (void);
int parse_u64 (const char *s, uint64_t *val);
int parse_secs (const char *s, double *val);
/* Resolve a STREAM argument to the path of its active segment.  create
 * makes the swarm directories for SWARM/BOX/K (append).
 */
int stream_resolve (const char *arg, bool create, char *buf, size_t len,
                    cs_error_t *errp);
int parse_fsync (const char *s, enum mb_fsync *f);
/* The STREAM arguments argv[first..argc) of a verb that reads them one
 * by one (check, stat): fn on each (index 0, 1, ...), then stdout flushed.
 * Returns the highest exit code fn returned, EXIT_FAILED when there is no
 * STREAM ("VERB: missing STREAM") or stdout cannot be written.
 */
int each_stream (const char *verb, int argc, char **argv, int first,
                 int (*fn) (const char *stream, int index, void *arg),
                 void *arg);
int parse_mode (const char *s, enum mb_follow_mode *m);

/* ---- problems.c -------------------------------------------------------- */

/* A reader event as text for the log. */
void event_text (const struct mb_event *ev, char *buf, size_t len);
/* ... as a JSON line for --events (cJSON_free). */
char *event_json (const char *stream, const struct mb_event *ev);

#endif
