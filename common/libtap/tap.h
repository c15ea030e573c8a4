/* tap.h - a small Test Anything Protocol library for the C unit tests.
 *
 *   plan (NO_PLAN);            or plan (n);
 *   ok (expr, "fmt", ...);     is (got, expected, "fmt", ...);  (strings)
 *   cmp_ok (a, "==", b, ...);  diag ("fmt", ...);  skip (n, "why");
 *   done_testing ();           exits with the right status
 */
#ifndef CODESWARM_TAP_H
#define CODESWARM_TAP_H

#include <stdbool.h>

#define NO_PLAN (-1)

void plan (int n);
int ok_at (bool pass, const char *file, int line, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
int is_at (const char *got, const char *expected, const char *file, int line,
           const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));
int cmp_ok_at (long long a, const char *op, long long b, const char *file,
               int line, const char *fmt, ...)
    __attribute__ ((format (printf, 6, 7)));
void diag (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void skip (int n, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
void bail_out (const char *fmt, ...)
    __attribute__ ((format (printf, 1, 2), noreturn));
int done_testing (void) __attribute__ ((noreturn));

#define ok(pass, ...) ok_at (!!(pass), __FILE__, __LINE__, __VA_ARGS__)
#define is(got, exp, ...) is_at ((got), (exp), __FILE__, __LINE__, __VA_ARGS__)
#define cmp_ok(a, op, b, ...) \
    cmp_ok_at ((long long)(a), (op), (long long)(b), __FILE__, __LINE__, \
               __VA_ARGS__)
#define pass(...) ok (1, __VA_ARGS__)
#define fail(...) ok (0, __VA_ARGS__)

#endif
