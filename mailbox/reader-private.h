/* reader-private.h - what the follower needs to know about a reader
 * (not installed; used by mailbox/follower.c).
 */
#ifndef CODESWARM_MAILBOX_READER_PRIVATE_H
#define CODESWARM_MAILBOX_READER_PRIVATE_H

#include <stdbool.h>

#include "mailbox/mailbox.h"

/* A cheap check whether mb_reader_next() may have something to say: true
 * when the reader is not idle at the end of its active segment, or when a
 * single stat(2) of the stream path shows new bytes, a different file
 * (rotation), or a file that has appeared.  Never reads data.
 */
bool mb_reader_poll_check (mb_reader_t *r);

/* True while the reader has neither an active file nor an archive segment
 * open (the stream does not exist yet, or a rotation is in progress).
 */
bool mb_reader_waiting (mb_reader_t *r);

#endif
