/* jsonarena.c - cJSON's small allocations from reusable blocks
 * (see jsonarena.h)
 *
 * The arena is ARENA_BLOCKS blocks of one allocation.  Allocations are
 * taken from the current block in order; a free only counts down the live
 * allocations of its block, and a block with none alive is reused from its
 * start.  A tree that lives long pins its block only: the others go on
 * turning over.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "common/jsonarena.h"

#define ARENA_BLOCKS 8
#define BLOCK_SIZE (64 * 1024)
#define ARENA_ALIGN 16

struct block {
    size_t used; /* bytes handed out since the block was last empty */
    size_t live; /* allocations in the block not yet freed */
};

static struct {
    char *base; /* ARENA_BLOCKS * BLOCK_SIZE bytes */
    struct block b[ARENA_BLOCKS];
    int cur;
} arena;

/* The block p is in, or -1 when it is not the arena's. */
static int arena_block (const void *p)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)arena.base;

    if (a < b || a >= b + (uintptr_t)ARENA_BLOCKS * BLOCK_SIZE)
        return -1;
    return (int)((a - b) / BLOCK_SIZE);
}

static void *arena_alloc (size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    struct block *blk = &arena.b[arena.cur];

    if (n == 0 || need > BLOCK_SIZE)
        return malloc (n);
    if (need > BLOCK_SIZE - blk->used) {
        /* the current block is full: move on to an empty one */
        int i;
        for (i = 1; i < ARENA_BLOCKS; i++) {
            int j = (arena.cur + i) % ARENA_BLOCKS;
            if (arena.b[j].live == 0) {
                arena.cur = j;
                blk = &arena.b[j];
                blk->used = 0;
                break;
            }
        }
        if (i == ARENA_BLOCKS)
            return malloc (n);
    }
    blk->live++;
    blk->used += need;
    return arena.base + (size_t)arena.cur * BLOCK_SIZE + blk->used - need;
}

static void arena_free (void *p)
{
    int i;

    if (!p)
        return;
    if ((i = arena_block (p)) < 0) {
        free (p);
        return;
    }
    if (--arena.b[i].live == 0 && i == arena.cur)
        arena.b[i].used = 0;
}

int jsonarena_install (void)
{
    cJSON_Hooks hooks = { .malloc_fn = arena_alloc, .free_fn = arena_free };

    if (arena.base)
        return 0;
    if (!(arena.base = aligned_alloc (ARENA_ALIGN,
                                      (size_t)ARENA_BLOCKS * BLOCK_SIZE)))
        return -1;
    cJSON_InitHooks (&hooks);
    return 0;
}

/* vi: ts=4 sw=4 expandtab
 */
