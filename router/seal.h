/* seal.h - sealing of relay payloads (libsodium AEAD)
 *
 * Every payload the relay carries is sealed with a key both sides share
 * (XChaCha20-Poly1305, IETF construction).  A sealed payload is
 *
 *   byte 0       SEAL_VERSION
 *   bytes 1..8   seq, big endian
 *   bytes 9..32  a random nonce
 *   the rest     ciphertext and 16-byte tag
 *
 * The additional data bound to it (authenticated, not sent) is the
 * direction (SEAL_UP: far side to near side, SEAL_DOWN: near to far,
 * SEAL_HELLO: the near side's retained hello), the link id (the far
 * side's client id) and the seq.  A payload therefore opens only in the
 * direction and on the link it was sealed for, so reflections and copies
 * onto another link fail; replays are caught by the receiver, which
 * accepts only a seq above the last one it accepted.
 *
 * The key file holds one line of 64 hex digits.  It must be a regular
 * file (no symlink) owned by the caller with no group or other access.
 */
#ifndef CODESWARM_ROUTER_SEAL_H
#define CODESWARM_ROUTER_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errprintf.h"

#define SEAL_VERSION 1
#define SEAL_KEY_BYTES 32
#define SEAL_HEADER 33                  /* version, seq, nonce */
#define SEAL_OVERHEAD (SEAL_HEADER + 16)

enum seal_dir {
    SEAL_UP = 'u',
    SEAL_DOWN = 'd',
    SEAL_HELLO = 'h',
};

/* Initialise libsodium (idempotent). */
int seal_init (cs_error_t *errp);

/* Read the key in path, with the checks above. */
int seal_key_load (const char *path, unsigned char key[SEAL_KEY_BYTES],
                   cs_error_t *errp);

/* Write a new random key to path (mode 0600); fails if path exists. */
int seal_key_generate (const char *path, cs_error_t *errp);

/* Seal pt[0..len) into out, which must hold len + SEAL_OVERHEAD bytes. */
int seal_box (const unsigned char key[SEAL_KEY_BYTES], enum seal_dir dir,
              const char *link, uint64_t seq, const void *pt, size_t len,
              unsigned char *out);

/* Open in[0..len) into pt, which must hold len - SEAL_OVERHEAD bytes; on
 * success *seq is the sealed seq and *ptlen the plaintext length.  Fails
 * with errp filled for anything that does not open (too short, another
 * version, wrong key, direction or link, tampered).
 */
int seal_open (const unsigned char key[SEAL_KEY_BYTES], enum seal_dir dir,
               const char *link, const void *in, size_t len, uint64_t *seq,
               unsigned char *pt, size_t *ptlen, cs_error_t *errp);

#endif
