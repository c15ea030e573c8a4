/* tap.c - Test Anything Protocol output for C unit tests */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/libtap/tap.h"

static int planned = NO_PLAN;
static int run;
static int failed;

void plan (int n)
{
    planned = n;
    if (n >= 0)
        printf ("1..%d\n", n);
    fflush (stdout);
}

static void vreport (bool pass, const char *file, int line, const char *fmt,
                     va_list ap)
{
    run++;
    if (!pass)
        failed++;
    printf ("%sok %d - ", pass ? "" : "not ", run);
    vprintf (fmt, ap);
    printf ("\n");
    if (!pass)
        printf ("#   failed at %s:%d\n", file, line);
    fflush (stdout);
}

int ok_at (bool pass, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vreport (pass, file, line, fmt, ap);
    va_end (ap);
    return pass;
}

int is_at (const char *got, const char *expected, const char *file, int line,
           const char *fmt, ...)
{
    bool pass;
    va_list ap;

    if (got == NULL || expected == NULL)
        pass = got == expected;
    else
        pass = strcmp (got, expected) == 0;
    va_start (ap, fmt);
    vreport (pass, file, line, fmt, ap);
    va_end (ap);
    if (!pass)
        printf ("#          got: '%s'\n#     expected: '%s'\n",
                got ? got : "(null)", expected ? expected : "(null)");
    return pass;
}

int cmp_ok_at (long long a, const char *op, long long b, const char *file,
               int line, const char *fmt, ...)
{
    bool pass;
    va_list ap;

    if (!strcmp (op, "=="))
        pass = a == b;
    else if (!strcmp (op, "!="))
        pass = a != b;
    else if (!strcmp (op, "<"))
        pass = a < b;
    else if (!strcmp (op, "<="))
        pass = a <= b;
    else if (!strcmp (op, ">"))
        pass = a > b;
    else if (!strcmp (op, ">="))
        pass = a >= b;
    else
        bail_out ("cmp_ok: unknown operator '%s'", op);
    va_start (ap, fmt);
    vreport (pass, file, line, fmt, ap);
    va_end (ap);
    if (!pass)
        printf ("#     %lld %s %lld is false\n", a, op, b);
    return pass;
}

void diag (const char *fmt, ...)
{
    va_list ap;
    printf ("# ");
    va_start (ap, fmt);
    vprintf (fmt, ap);
    va_end (ap);
    printf ("\n");
    fflush (stdout);
}

void skip (int n, const char *fmt, ...)
{
    va_list ap;
    while (n-- > 0) {
        run++;
        printf ("ok %d # SKIP ", run);
        va_start (ap, fmt);
        vprintf (fmt, ap);
        va_end (ap);
        printf ("\n");
    }
    fflush (stdout);
}

void bail_out (const char *fmt, ...)
{
    va_list ap;
    printf ("Bail out! ");
    va_start (ap, fmt);
    vprintf (fmt, ap);
    va_end (ap);
    printf ("\n");
    fflush (stdout);
    exit (255);
}

int done_testing (void)
{
    if (planned == NO_PLAN)
        printf ("1..%d\n", run);
    else if (planned != run)
        printf ("# planned %d tests but ran %d\n", planned, run);
    fflush (stdout);
    exit (failed || (planned != NO_PLAN && planned != run) || run == 0 ? 1 : 0);
}
