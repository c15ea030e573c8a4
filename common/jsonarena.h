/* jsonarena.h - cJSON's small allocations from one reusable block
 *
 * A program that parses one JSON document after another and deletes each
 * tree before (or soon after) parsing the next spends a fifth of its time
 * in malloc and free for the tree's nodes and strings.  jsonarena_install()
 * gives cJSON (through cJSON_InitHooks, for the whole process) a bump
 * allocator over a few blocks: an allocation takes the next bytes of a
 * block, a free only counts, and a block in which nothing is alive any
 * more is reused from its start.  When no block has room (trees that live
 * long, or a large allocation) allocations come from malloc as before, so
 * nothing is refused that malloc would give.
 *
 * Once it is installed, whatever cJSON allocates (cJSON_Print* output
 * included) must be freed with cJSON_free() or cJSON_Delete(), never with
 * free().  Single-threaded programs only: the block is not locked.
 */
#ifndef CODESWARM_COMMON_JSONARENA_H
#define CODESWARM_COMMON_JSONARENA_H

/* Route cJSON's allocations through the block.  0, or -1 when the block
 * cannot be had (cJSON keeps using malloc).
 */
int jsonarena_install (void);

#endif
