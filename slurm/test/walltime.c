/* walltime.c - Slurm time formats */
#include "config.h"

#include <string.h>

#include "common/libtap/tap.h"
#include "slurm/walltime.h"

static void good (const char *s, uint64_t want)
{
    uint64_t got = 0;
    cs_error_t e = {""};
    int rc = walltime_parse (s, &got, &e);

    ok (rc == 0 && got == want, "'%s' is %llu s (got %llu, %s)", s,
        (unsigned long long)want, (unsigned long long)got, e.text);
}

static void bad (const char *s)
{
    uint64_t got = 0;
    cs_error_t e = {""};

    ok (walltime_parse (s, &got, &e) < 0 && strlen (e.text) > 0,
        "'%s' is refused: %s", s, e.text);
}

int main (void)
{
    char buf[64];

    plan (NO_PLAN);
    good ("1", 60);
    good ("90", 5400);
    good ("1:30", 90);
    good ("2:00:00", 7200);
    good ("1:02:03", 3723);
    good ("1-0", 86400);
    good ("1-2", 93600);
    good ("1-2:30", 95400);
    good ("1-2:30:15", 95415);
    good ("0:30", 30);
    good ("INFINITE", WALLTIME_INFINITE);
    good ("unlimited", WALLTIME_INFINITE);
    bad ("");
    bad ("0");
    bad ("0:00");
    bad ("abc");
    bad ("1h");
    bad ("1:2:3:4");
    bad ("-5");
    bad ("1-");
    bad ("1-2:3:4:5");
    bad ("1:");
    bad (":5");
    bad ("1.5");
    bad ("99999999999");

    cmp_ok (walltime_minutes (1), "==", 1, "1 s rounds up to 1 minute");
    cmp_ok (walltime_minutes (60), "==", 1, "60 s is 1 minute");
    cmp_ok (walltime_minutes (61), "==", 2, "61 s rounds up to 2 minutes");
    walltime_format (3723, buf, sizeof (buf));
    is (buf, "01:02:03", "format h:m:s");
    walltime_format (95415, buf, sizeof (buf));
    is (buf, "1-02:30:15", "format d-h:m:s");
    walltime_format (WALLTIME_INFINITE, buf, sizeof (buf));
    is (buf, "UNLIMITED", "format infinite");
    done_testing ();
}
