/* path.c - format a path into a fixed buffer */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "common/path.h"

int vpathf (char *buf, size_t len, const char *fmt, va_list ap)
{
    int n = vsnprintf (buf, len, fmt, ap);
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int pathf (char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start (ap, fmt);
    rc = vpathf (buf, len, fmt, ap);
    va_end (ap);
    return rc;
}
