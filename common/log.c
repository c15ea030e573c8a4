/* log.c - stderr logging for programs */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>

#include "common/log.h"

static char prog[64] = "codeswarm";
static int verbose;
static int timestamps;

void log_init (const char *name)
{
    const char *p = name ? strrchr (name, '/') : NULL;
    snprintf (prog, sizeof (prog), "%s", p ? p + 1 : name ? name : "codeswarm");
}

const char *log_prog (void)
{
    return prog;
}

void log_set_verbose (int level)
{
    verbose = level;
}

int log_verbose (void)
{
    return verbose;
}

void log_set_timestamps (int on)
{
    timestamps = on;
}

static void vlog (int errnum, const char *fmt, va_list ap)
{
    char buf[4096];
    int n = 0;

    if (timestamps) {
        struct timeval tv;
        struct tm tm;
        gettimeofday (&tv, NULL);
        gmtime_r (&tv.tv_sec, &tm);
        n += (int)strftime (buf, sizeof (buf), "%Y-%m-%dT%H:%M:%S", &tm);
        n += snprintf (buf + n, sizeof (buf) - n, ".%03dZ ",
                       (int)(tv.tv_usec / 1000));
    }
    n += snprintf (buf + n, sizeof (buf) - n, "%s: ", prog);
    if (n < (int)sizeof (buf))
        n += vsnprintf (buf + n, sizeof (buf) - n, fmt, ap);
    if (errnum && n < (int)sizeof (buf))
        n += snprintf (buf + n, sizeof (buf) - n, ": %s", strerror (errnum));
    if (n >= (int)sizeof (buf) - 1)
        n = sizeof (buf) - 2;
    buf[n++] = '\n';
    fwrite (buf, 1, n, stderr);
}

void log_err (const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start (ap, fmt);
    vlog (saved, fmt, ap);
    va_end (ap);
    errno = saved;
}

void log_errn (int errnum, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start (ap, fmt);
    vlog (errnum, fmt, ap);
    va_end (ap);
    errno = saved;
}

void log_msg (const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start (ap, fmt);
    vlog (0, fmt, ap);
    va_end (ap);
    errno = saved;
}

void log_debug (const char *fmt, ...)
{
    int saved = errno;
    if (verbose >= 1) {
        va_list ap;
        va_start (ap, fmt);
        vlog (0, fmt, ap);
        va_end (ap);
    }
    errno = saved;
}

void log_trace (const char *fmt, ...)
{
    int saved = errno;
    if (verbose >= 2) {
        va_list ap;
        va_start (ap, fmt);
        vlog (0, fmt, ap);
        va_end (ap);
    }
    errno = saved;
}

void log_err_exit (const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start (ap, fmt);
    vlog (saved, fmt, ap);
    va_end (ap);
    exit (1);
}

void log_msg_exit (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vlog (0, fmt, ap);
    va_end (ap);
    exit (1);
}
