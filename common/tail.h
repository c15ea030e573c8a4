/* tail.h - a ring that keeps the last bytes written to it (e.g. the end
 * of a child's stderr, for an error report)
 */
#ifndef CODESWARM_COMMON_TAIL_H
#define CODESWARM_COMMON_TAIL_H

#include <stddef.h>

struct tail {
    char *buf;
    size_t size;
    size_t start;               /* index of the oldest byte */
    size_t len;                 /* bytes held (<= size) */
};

/* Keep the last size bytes; 0 or -1 (ENOMEM).  Free with tail_release. */
int tail_init (struct tail *t, size_t size);
void tail_release (struct tail *t);
void tail_append (struct tail *t, const char *data, size_t len);
void tail_clear (struct tail *t);
/* The held bytes as one NUL-terminated string; free(). */
char *tail_str (const struct tail *t);

#endif
