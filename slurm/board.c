/* board.c - status lines updated in place on a terminal (see board.h) */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slurm/board.h"

/* after our headers: term.h defines many short macros */
#include <curses.h>
#include <term.h>

#define BOARD_LINE 256

struct board {
    FILE *f;
    int n;
    char (*text)[BOARD_LINE];
    bool live;
    int drawn; /* lines of the block on the screen, above the cursor */
    const char *up, *eol;
};

static FILE *board_out;

static int board_putc (int c)
{
    return fputc (c, board_out);
}

board_t *board_create (FILE *f, int nlines)
{
    board_t *b = calloc (1, sizeof (*b));
    int err;

    if (!b || !(b->text = calloc ((size_t)nlines, sizeof (*b->text)))) {
        free (b);
        return NULL;
    }
    b->f = f;
    b->n = nlines;
    if (isatty (fileno (f)) && setupterm (NULL, fileno (f), &err) == OK &&
        cursor_up && cursor_up != (char *)-1 && clr_eol &&
        clr_eol != (char *)-1) {
        b->up = cursor_up;
        b->eol = clr_eol;
        b->live = true;
    }
    return b;
}

void board_destroy (board_t *b)
{
    if (b) {
        free (b->text);
        free (b);
    }
}

bool board_live (const board_t *b)
{
    return b && b->live;
}

/* Redraw the block: up over what is drawn, then every line that has text. */
static void board_draw (board_t *b)
{
    board_out = b->f;
    for (; b->drawn > 0; b->drawn--)
        tputs (b->up, 1, board_putc);
    for (int i = 0; i < b->n; i++) {
        if (!b->text[i][0])
            continue;
        fputc ('\r', b->f);
        tputs (b->eol, 1, board_putc);
        fprintf (b->f, "%s\n", b->text[i]);
        b->drawn++;
    }
    fflush (b->f);
}

void board_set (board_t *b, int i, const char *fmt, ...)
{
    char line[BOARD_LINE];
    va_list ap;

    if (!b || i < 0 || i >= b->n)
        return;
    va_start (ap, fmt);
    vsnprintf (line, sizeof (line), fmt, ap);
    va_end (ap);
    if (!strcmp (line, b->text[i]))
        return;
    memcpy (b->text[i], line, sizeof (line));
    if (b->live)
        board_draw (b);
    else {
        fprintf (b->f, "%s\n", line);
        fflush (b->f);
    }
}

void board_note (board_t *b, const char *fmt, ...)
{
    va_list ap;

    if (!b)
        return;
    if (b->live) {
        board_out = b->f;
        for (; b->drawn > 0; b->drawn--)
            tputs (b->up, 1, board_putc);
        fputc ('\r', b->f);
        tputs (b->eol, 1, board_putc);
    }
    va_start (ap, fmt);
    vfprintf (b->f, fmt, ap);
    va_end (ap);
    fputc ('\n', b->f);
    if (b->live)
        board_draw (b);
    fflush (b->f);
}
