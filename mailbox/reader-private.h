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
 * (rotation), or a file that has appeared.  Without path, only fstat(2)
 * of the open file is used (new bytes; a rotation or a file appearing go
 * unnoticed): for callers that know the directory has not changed.
 * Never reads data.
 */
bool mb_reader_poll_check (mb_reader_t *r, bool path);

/* True while the reader has neither an active file nor an archive segment
 * open (the stream does not exist yet, or a rotation is in progress).
 */
bool mb_reader_waiting (mb_reader_t *r);

/* NUL bytes in a line of the active file: on a network filesystem they
 * may be a hole (another client's write arrived out of order), so the
 * reader waits up to this long for them to be filled before it reports
 * the line as corrupt.  Set at open from mb_fs_type() (2 s on network
 * filesystems, 0 elsewhere); settable for tests.
 */
void mb_reader_set_hole_grace (mb_reader_t *r, double seconds);

#endif
