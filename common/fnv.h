/* fnv.h - FNV-1a hashes (not cryptographic: hash tables, short names) */
#ifndef CODESWARM_COMMON_FNV_H
#define CODESWARM_COMMON_FNV_H

#include <stdint.h>

/* 64-bit FNV-1a over s, continued from h (start with FNV1A_INIT). */
#define FNV1A_INIT 0xcbf29ce484222325ULL
uint64_t fnv1a (uint64_t h, const char *s);

/* 32-bit FNV-1a over s (the router's socket name). */
uint32_t fnv1a_32 (const char *s);

#endif
