/* fnv.h - FNV-1a hashes (not cryptographic: hash tables, short names) */
#ifndef CODESWARM_COMMON_FNV_H
#define CODESWARM_COMMON_FNV_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit FNV-1a over s, continued from h (start with FNV1A_INIT). */
#define FNV1A_INIT 0xcbf29ce484222325ULL
uint64_t fnv1a (uint64_t h, const char *s);

/* The same over len bytes at p. */
uint64_t fnv1a_mem (uint64_t h, const void *p, size_t len);

/* 32-bit FNV-1a over s (the router's socket name). */
uint32_t fnv1a_32 (const char *s);

#endif
