/* errprintf.h - error text for callers that need words, not just errno.
 *
 * A library call that can fail in ways worth explaining takes a
 * cs_error_t *errp as its last parameter (which may be NULL).  On failure
 * it fills errp->text with a lowercase, git-style message that names the
 * subject ("cannot open '/x/y': Permission denied") and returns -1 (or NULL)
 * with errno set.
 */
#ifndef CODESWARM_ERRPRINTF_H
#define CODESWARM_ERRPRINTF_H

typedef struct {
    char text[512];
} cs_error_t;

/* Format into errp->text (when errp is not NULL).  Always returns -1 and
 * leaves errno as it found it, so `return errprintf (errp, ...);` works
 * right after a failed system call.
 */
int errprintf (cs_error_t *errp, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Prefix errp->text with "fmt: " (for adding context on the way up).
 * Returns -1 and keeps errno.
 */
int errprefix (cs_error_t *errp, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

#endif
