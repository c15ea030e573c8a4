/* errprintf.c - fill a cs_error_t */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/errprintf.h"

int errprintf (cs_error_t *errp, const char *fmt, ...)
{
    int saved_errno = errno;
    if (errp) {
        va_list ap;
        va_start (ap, fmt);
        vsnprintf (errp->text, sizeof (errp->text), fmt, ap);
        va_end (ap);
    }
    errno = saved_errno;
    return -1;
}

int errprefix (cs_error_t *errp, const char *fmt, ...)
{
    int saved_errno = errno;
    if (errp) {
        char prefix[sizeof (errp->text)];
        char old[sizeof (errp->text)];
        va_list ap;
        va_start (ap, fmt);
        vsnprintf (prefix, sizeof (prefix), fmt, ap);
        va_end (ap);
        memcpy (old, errp->text, sizeof (old));
        /* the result may be cut to fit: that is fine for error text */
        if (snprintf (errp->text, sizeof (errp->text), "%s: %s", prefix, old)
            >= (int)sizeof (errp->text))
            errp->text[sizeof (errp->text) - 1] = '\0';
    }
    errno = saved_errno;
    return -1;
}
