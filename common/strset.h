/* strset.h - a set of strings
 *
 * An open-addressing hash set (FNV-1a), so that a long-lived worker with
 * thousands of injection ids stays cheap.
 */
#ifndef CODESWARM_COMMON_STRSET_H
#define CODESWARM_COMMON_STRSET_H

#include <stdbool.h>
#include <stddef.h>

struct strset {
    char **slot;
    size_t size;                /* power of two */
    size_t count;
};
#define STRSET_INIT { NULL, 0, 0 }

/* Add a copy of str: 1 when new, 0 when there already, -1 (ENOMEM). */
int strset_add (struct strset *s, const char *str);
bool strset_has (const struct strset *s, const char *str);
/* Free the strings and the table; the set is empty again. */
void strset_release (struct strset *s);

#endif
