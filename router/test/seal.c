/* test/seal.c - relay payload sealing and the seal key file */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/libtap/tap.h"
#include "router/seal.h"

static void write_file (const char *path, const char *text, mode_t mode)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || write (fd, text, strlen (text)) != (ssize_t)strlen (text))
        bail_out ("cannot write %s", path);
    close (fd);
    chmod (path, mode);
}

int main (int argc, char **argv)
{
    char dir[] = "/tmp/test-seal.XXXXXX";
    char path[256], path2[256], lnk[256];
    unsigned char key[SEAL_KEY_BYTES], key2[SEAL_KEY_BYTES], k3[SEAL_KEY_BYTES];
    const char *msg = "{\"command\":\"inject\",\"content\":\"secret\"}";
    size_t mlen = strlen (msg), ptlen;
    unsigned char box[256], pt[256];
    uint64_t seq;
    struct stat sb;
    cs_error_t error;

    plan (NO_PLAN);
    if (!mkdtemp (dir))
        bail_out ("mkdtemp");
    ok (seal_init (&error) == 0, "libsodium initialises");

    /* key file */
    snprintf (path, sizeof (path), "%s/key", dir);
    ok (seal_key_generate (path, &error) == 0, "keygen writes a key");
    ok (stat (path, &sb) == 0 && (sb.st_mode & 0777) == 0600,
        "the key file is mode 0600");
    ok (seal_key_generate (path, &error) < 0 && errno == EEXIST
        && strstr (error.text, "not overwritten"),
        "keygen refuses to overwrite: %s", error.text);
    ok (seal_key_load (path, key, &error) == 0, "the key loads");
    snprintf (path2, sizeof (path2), "%s/key2", dir);
    ok (seal_key_generate (path2, &error) == 0
        && seal_key_load (path2, key2, &error) == 0, "a second key");
    ok (memcmp (key, key2, sizeof (key)) != 0, "two keys differ");

    chmod (path2, 0640);
    ok (seal_key_load (path2, k3, &error) < 0
        && strstr (error.text, "mode 0640"),
        "a group-readable key is refused: %s", error.text);
    chmod (path2, 0600);
    snprintf (lnk, sizeof (lnk), "%s/link", dir);
    if (symlink (path, lnk) < 0)
        bail_out ("symlink");
    ok (seal_key_load (lnk, k3, &error) < 0
        && strstr (error.text, "symbolic link"),
        "a symlinked key is refused: %s", error.text);
    write_file (path2, "abcd\n", 0600);
    ok (seal_key_load (path2, k3, &error) < 0
        && strstr (error.text, "64 hex digits"),
        "a short key is refused: %s", error.text);
    write_file (path2, "zz00000000000000000000000000000000000000000000000000"
                "000000000000\n", 0600);
    ok (seal_key_load (path2, k3, &error) < 0, "a non-hex key is refused");
    ok (seal_key_load ("/nonexistent/key", k3, &error) < 0
        && strstr (error.text, "/nonexistent/key"),
        "a missing key names the file: %s", error.text);

    /* seal and open */
    ok (seal_box (key, SEAL_UP, "laptop", 42, msg, mlen, box) == 0,
        "seal a payload");
    ok (memmem (box, mlen + SEAL_OVERHEAD, "secret", 6) == NULL,
        "the plaintext does not show");
    ok (seal_open (key, SEAL_UP, "laptop", box, mlen + SEAL_OVERHEAD, &seq,
                   pt, &ptlen, &error) == 0
        && seq == 42 && ptlen == mlen && !memcmp (pt, msg, mlen),
        "it opens with the same key, direction and link");
    ok (seal_open (key2, SEAL_UP, "laptop", box, mlen + SEAL_OVERHEAD, &seq,
                   pt, &ptlen, &error) < 0
        && strstr (error.text, "does not open"),
        "another key cannot open it: %s", error.text);
    ok (seal_open (key, SEAL_DOWN, "laptop", box, mlen + SEAL_OVERHEAD, &seq,
                   pt, &ptlen, &error) < 0,
        "a reflection (other direction) does not open");
    ok (seal_open (key, SEAL_UP, "desktop", box, mlen + SEAL_OVERHEAD, &seq,
                   pt, &ptlen, &error) < 0,
        "a copy onto another link does not open");
    box[5] ^= 1;                /* the seq in the header */
    ok (seal_open (key, SEAL_UP, "laptop", box, mlen + SEAL_OVERHEAD, &seq,
                   pt, &ptlen, &error) < 0,
        "a payload with its seq changed does not open");
    box[5] ^= 1;
    box[SEAL_HEADER + 3] ^= 0x20;
    ok (seal_open (key, SEAL_UP, "laptop", box, mlen + SEAL_OVERHEAD, &seq,
                   pt, &ptlen, &error) < 0,
        "a tampered ciphertext does not open");
    box[SEAL_HEADER + 3] ^= 0x20;
    ok (seal_open (key, SEAL_UP, "laptop", box, 10, &seq, pt, &ptlen,
                   &error) < 0 && strstr (error.text, "too short"),
        "a short payload: %s", error.text);
    box[0] = 7;
    ok (seal_open (key, SEAL_UP, "laptop", box, mlen + SEAL_OVERHEAD, &seq,
                   pt, &ptlen, &error) < 0 && strstr (error.text, "version"),
        "another version: %s", error.text);
    ok (seal_box (key, SEAL_DOWN, "l", 1, "", 0, box) == 0
        && seal_open (key, SEAL_DOWN, "l", box, SEAL_OVERHEAD, &seq, pt,
                      &ptlen, &error) == 0 && ptlen == 0,
        "an empty payload seals and opens");

    unlink (lnk);
    unlink (path);
    unlink (path2);
    rmdir (dir);
    done_testing ();
}
