/* ansi.h - strip terminal escape sequences from captured output */
#ifndef CODESWARM_COMMON_ANSI_H
#define CODESWARM_COMMON_ANSI_H

#include <stddef.h>

/* Remove ANSI escape sequences (CSI "ESC [ ... final", OSC "ESC ] ... BEL
 * or ESC \", and two-byte "ESC x") and other C0 controls except '\t' from
 * s[0..len) in place.  A sequence cut off at the end of the buffer is
 * dropped.  Returns the new length.
 */
size_t ansi_strip (char *s, size_t len);

#endif
