/* args.c - codeswarm-mailbox: STREAM arguments and option values
 *
 * A STREAM is a path to a .jsonl file, or SWARM/BOX/K ("s1/outbox/3")
 * resolved under <home>/swarms/.  Bad option values exit 2 (usage_error).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mailbox/cli/cli.h"

const char *home_opt;

void usage_error (const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (buf, sizeof (buf), fmt, ap);
    va_end (ap);
    log_msg ("%s", buf);
    exit (EXIT_FAILED);
}

double now_mono (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int parse_u64 (const char *s, uint64_t *val)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    v = strtoull (s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *val = v;
    return 0;
}

int parse_secs (const char *s, double *val)
{
    char *end;
    double v;

    errno = 0;
    v = strtod (s, &end);
    if (errno != 0 || end == s || *end != '\0' || v < 0)
        return -1;
    *val = v;
    return 0;
}

/* "SWARM/inbox/K" or "SWARM/outbox/K" (and nothing else) */
static bool is_swarm_spec (const char *arg, char *swarm, size_t swarmlen,
                           char *box, size_t boxlen, int *node)
{
    const char *s1 = strchr (arg, '/');
    const char *s2;
    uint64_t k;

    if (!s1 || s1 == arg || (size_t)(s1 - arg) >= swarmlen)
        return false;
    s2 = strchr (s1 + 1, '/');
    if (!s2 || (size_t)(s2 - s1 - 1) >= boxlen)
        return false;
    if (strncmp (s1 + 1, "inbox/", 6) != 0
        && strncmp (s1 + 1, "outbox/", 7) != 0)
        return false;
    if (parse_u64 (s2 + 1, &k) < 0 || k > INT_MAX)
        return false;
    memcpy (swarm, arg, s1 - arg);
    swarm[s1 - arg] = '\0';
    memcpy (box, s1 + 1, s2 - s1 - 1);
    box[s2 - s1 - 1] = '\0';
    *node = (int)k;
    return true;
}

/* Resolve a STREAM argument to the path of its active segment.  create
 * makes the swarm directories for SWARM/BOX/K (append).
 */
int stream_resolve (const char *arg, bool create, char *buf,
                    size_t len, cs_error_t *errp)
{
    char swarm[128], box[16];
    char home[PATH_MAX], swarmdir[PATH_MAX];
    int node;

    if (!is_swarm_spec (arg, swarm, sizeof (swarm), box, sizeof (box), &node)
        || access (arg, F_OK) == 0) {
        /* relative paths are made absolute, so that a stream directly in
         * the current directory still has a named directory
         */
        char cwd[PATH_MAX];
        int n;
        if (arg[0] == '/')
            n = snprintf (buf, len, "%s", arg);
        else if (!getcwd (cwd, sizeof (cwd)))
            return errprintf (errp, "cannot get the current directory: %s",
                              strerror (errno));
        else
            n = snprintf (buf, len, "%s/%s", strcmp (cwd, "/") ? cwd : "",
                          arg);
        if (n < 0 || (size_t)n >= len) {
            errno = ENAMETOOLONG;
            return errprintf (errp, "'%s': path too long", arg);
        }
        return 0;
    }
    if (home_opt) {
        if (strlen (home_opt) >= sizeof (home)) {
            errno = ENAMETOOLONG;
            return errprintf (errp, "'%s': path too long", home_opt);
        }
        strcpy (home, home_opt);
        if (mb_secure_dir (home, create, errp) < 0)
            return -1;
    }
    else if (mb_home (home, sizeof (home), create, errp) < 0)
        return -1;
    if (mb_swarm_dir (home, swarm, create, swarmdir, sizeof (swarmdir),
                      errp) < 0)
        return -1;
    return mb_stream_path (swarmdir, box, node, buf, len, errp);
}

int each_stream (const char *verb, int argc, char **argv, int first,
                 int (*fn) (const char *stream, int index, void *arg),
                 void *arg)
{
    int rc = EXIT_OK;

    if (first >= argc) {
        log_msg ("%s: missing STREAM", verb);
        return EXIT_FAILED;
    }
    for (int i = first; i < argc; i++) {
        int x = fn (argv[i], i - first, arg);
        if (x > rc)
            rc = x;
    }
    if (fflush (stdout) != 0) {
        log_err ("writing stdout");
        rc = EXIT_FAILED;
    }
    return rc;
}

int parse_fsync (const char *s, enum mb_fsync *f)
{
    if (!strcmp (s, "never"))
        *f = MB_FSYNC_NEVER;
    else if (!strcmp (s, "always"))
        *f = MB_FSYNC_ALWAYS;
    else if (!strcmp (s, "interval"))
        *f = MB_FSYNC_INTERVAL;
    else
        return -1;
    return 0;
}

int parse_mode (const char *s, enum mb_follow_mode *m)
{
    if (!strcmp (s, "auto"))
        *m = MB_FOLLOW_AUTO;
    else if (!strcmp (s, "inotify"))
        *m = MB_FOLLOW_INOTIFY;
    else if (!strcmp (s, "poll"))
        *m = MB_FOLLOW_POLL;
    else
        return -1;
    return 0;
}
