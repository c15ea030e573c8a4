/* template.h - fill @NAME@ placeholders in a batch script template.
 *
 * A placeholder is '@', one or more of [A-Z0-9_] starting with a letter,
 * and '@'.  Every placeholder must be known: an unknown one is an error
 * naming it and its line, so a typo never reaches the batch system.  Any
 * other '@' (an e-mail address, "USR1@300") is copied as it is.
 */
#ifndef CODESWARM_TEMPLATE_H
#define CODESWARM_TEMPLATE_H

#include <stddef.h>

#include "common/errprintf.h"

struct template_var {
    const char *name; /* without the @s */
    const char *value;
};

/* Render text with vars[0..n).  Returns a string to free(), or NULL with
 * errp: "unknown placeholder @FOO@ on line 7".
 */
char *template_render (const char *text, const struct template_var *vars,
                       size_t n, cs_error_t *errp);

/* Quote s for a POSIX shell: 'it'\''s'.  Returns a string to free(). */
char *template_shell_quote (const char *s);

#endif
