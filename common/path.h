/* path.h - format a path into a fixed buffer */
#ifndef CODESWARM_PATH_H
#define CODESWARM_PATH_H

#include <stdarg.h>
#include <stddef.h>

/* snprintf into buf (size len): 0, or -1 with errno ENAMETOOLONG when the
 * result does not fit (buf then holds a cut string, not to be used).
 */
int pathf (char *buf, size_t len, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
int vpathf (char *buf, size_t len, const char *fmt, va_list ap)
    __attribute__ ((format (printf, 3, 0)));

#endif
