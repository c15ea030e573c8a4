/* board.h - a block of status lines (one per node, and one for the job)
 * that a terminal shows updated in place: launch's progress while it
 * waits.  On a terminal (terminfo cursor_up and clr_eol) the block is
 * redrawn where it is; elsewhere each line that changed is printed again,
 * as a new line, so that a log or a pipe reads as before.
 */
#ifndef CODESWARM_SLURM_BOARD_H
#define CODESWARM_SLURM_BOARD_H

#include <stdbool.h>
#include <stdio.h>

typedef struct board board_t;

/* A block of nlines on f (stderr); NULL when out of memory (then the
 * functions below print nothing and board_destroy(NULL) is a no-op).
 */
board_t *board_create (FILE *f, int nlines);
void board_destroy (board_t *b);

/* Does f show the block in place? */
bool board_live (const board_t *b);

/* Set line i (0..nlines-1); shown when it changed. */
void board_set (board_t *b, int i, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* A message above the block (the block is drawn again under it). */
void board_note (board_t *b, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

#endif
