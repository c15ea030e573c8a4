/* walltime.c - Slurm's time formats */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "slurm/walltime.h"

#define WALLTIME_FORMATS                                                       \
    "use minutes, minutes:seconds, hours:minutes:seconds, days-hours, "        \
    "days-hours:minutes or days-hours:minutes:seconds"

/* Up to max colon-separated unsigned numbers; returns how many, -1 on junk. */
static int split_numbers (const char *s, uint64_t *v, int max)
{
    int n = 0;

    if (!*s)
        return -1;
    for (;;) {
        char *end;
        if (n == max || !isdigit ((unsigned char)*s))
            return -1;
        errno = 0;
        v[n++] = strtoull (s, &end, 10);
        if (errno || end - s > 9)
            return -1;
        if (*end == '\0')
            return n;
        if (*end != ':')
            return -1;
        s = end + 1;
    }
}

int walltime_parse (const char *s, uint64_t *secs, cs_error_t *errp)
{
    uint64_t v[3], days = 0, total;
    const char *rest = s;
    const char *dash;
    int n;

    if (!s || !*s)
        return errprintf (errp, "empty time limit (" WALLTIME_FORMATS ")");
    if (!strcasecmp (s, "INFINITE") || !strcasecmp (s, "UNLIMITED")) {
        *secs = WALLTIME_INFINITE;
        return 0;
    }
    if ((dash = strchr (s, '-'))) {
        char *end;
        if (dash == s || !isdigit ((unsigned char)*s))
            goto bad;
        errno = 0;
        days = strtoull (s, &end, 10);
        if (errno || end != dash || days > 100000)
            goto bad;
        rest = dash + 1;
    }
    if ((n = split_numbers (rest, v, 3)) < 0)
        goto bad;
    if (dash) {
        /* days-hours[:minutes[:seconds]] */
        total = days * 86400 + v[0] * 3600;
        if (n > 1)
            total += v[1] * 60;
        if (n > 2)
            total += v[2];
    } else if (n == 1)
        total = v[0] * 60; /* minutes */
    else if (n == 2)
        total = v[0] * 60 + v[1]; /* minutes:seconds */
    else
        total = v[0] * 3600 + v[1] * 60 + v[2]; /* h:m:s */
    if (total == 0) {
        errno = EINVAL;
        return errprintf (errp, "time limit '%s' is zero", s);
    }
    *secs = total;
    return 0;
bad:
    errno = EINVAL;
    return errprintf (errp, "'%s' is not a Slurm time (" WALLTIME_FORMATS ")",
                      s);
}

uint32_t walltime_minutes (uint64_t secs)
{
    uint64_t m;

    if (secs == WALLTIME_INFINITE)
        return UINT32_MAX;
    m = (secs + 59) / 60;
    return m >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)m;
}

void walltime_format (uint64_t secs, char *buf, size_t len)
{
    if (secs == WALLTIME_INFINITE) {
        snprintf (buf, len, "UNLIMITED");
        return;
    }
    if (secs >= 86400)
        snprintf (buf, len, "%llu-%02llu:%02llu:%02llu",
                  (unsigned long long)(secs / 86400),
                  (unsigned long long)(secs % 86400 / 3600),
                  (unsigned long long)(secs % 3600 / 60),
                  (unsigned long long)(secs % 60));
    else
        snprintf (buf, len, "%02llu:%02llu:%02llu",
                  (unsigned long long)(secs / 3600),
                  (unsigned long long)(secs % 3600 / 60),
                  (unsigned long long)(secs % 60));
}
