/* seal.c - relay payload sealing with libsodium; see seal.h */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "router/seal.h"

#define AD_MAGIC "codeswarm-relay-1"
#define AD_MAX 512

int seal_init (cs_error_t *errp)
{
    if (sodium_init () < 0) {
        errno = EIO;
        return errprintf (errp, "cannot initialise libsodium");
    }
    return 0;
}

int seal_key_load (const char *path, unsigned char key[SEAL_KEY_BYTES],
                   cs_error_t *errp)
{
    char buf[256];
    struct stat sb;
    ssize_t n;
    size_t len, bin_len;
    int fd;

    if ((fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return errprintf (errp, "seal key '%s': %s", path,
                          errno == ELOOP ? "is a symbolic link"
                                         : strerror (errno));
    if (fstat (fd, &sb) < 0) {
        int saved = errno;
        close (fd);
        errno = saved;
        return errprintf (errp, "seal key '%s': %s", path, strerror (errno));
    }
    if (!S_ISREG (sb.st_mode) || sb.st_uid != geteuid ()
        || (sb.st_mode & 077)) {
        close (fd);
        errno = EPERM;
        if (!S_ISREG (sb.st_mode))
            return errprintf (errp, "seal key '%s': not a regular file",
                              path);
        if (sb.st_uid != geteuid ())
            return errprintf (errp, "seal key '%s': owned by uid %d, not "
                              "by uid %d", path, (int)sb.st_uid,
                              (int)geteuid ());
        return errprintf (errp, "seal key '%s': mode %04o gives access to "
                          "others (chmod 600)", path,
                          (unsigned)(sb.st_mode & 07777));
    }
    n = read (fd, buf, sizeof (buf) - 1);
    close (fd);
    if (n < 0)
        return errprintf (errp, "seal key '%s': %s", path, strerror (errno));
    buf[n] = '\0';
    len = strcspn (buf, "\r\n");
    if (len != 2 * SEAL_KEY_BYTES || buf[len + strspn (buf + len, "\r\n")]
        || sodium_hex2bin (key, SEAL_KEY_BYTES, buf, len, NULL, &bin_len,
                           NULL) != 0
        || bin_len != SEAL_KEY_BYTES) {
        sodium_memzero (buf, sizeof (buf));
        errno = EINVAL;
        return errprintf (errp, "seal key '%s': expected one line of %d hex "
                          "digits (codeswarm relay keygen)", path,
                          2 * SEAL_KEY_BYTES);
    }
    sodium_memzero (buf, sizeof (buf));
    return 0;
}

int seal_key_generate (const char *path, cs_error_t *errp)
{
    unsigned char key[SEAL_KEY_BYTES];
    char hex[2 * SEAL_KEY_BYTES + 2];
    size_t len;
    int fd;

    if (seal_init (errp) < 0)
        return -1;
    if ((fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC
                    | O_NOFOLLOW, 0600)) < 0)
        return errprintf (errp, "cannot create '%s': %s", path,
                          errno == EEXIST ? "it exists (not overwritten)"
                                          : strerror (errno));
    crypto_aead_xchacha20poly1305_ietf_keygen (key);
    sodium_bin2hex (hex, sizeof (hex), key, sizeof (key));
    sodium_memzero (key, sizeof (key));
    len = strlen (hex);
    hex[len++] = '\n';
    if (fchmod (fd, 0600) < 0 || write (fd, hex, len) != (ssize_t)len
        || fsync (fd) < 0) {
        int saved = errno ? errno : EIO;
        sodium_memzero (hex, sizeof (hex));
        close (fd);
        unlink (path);
        errno = saved;
        return errprintf (errp, "cannot write '%s': %s", path,
                          strerror (errno));
    }
    sodium_memzero (hex, sizeof (hex));
    if (close (fd) < 0) {
        int saved = errno;
        unlink (path);
        errno = saved;
        return errprintf (errp, "cannot write '%s': %s", path,
                          strerror (errno));
    }
    return 0;
}

static void put_be64 (unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_be64 (const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* magic NUL dir link NUL seq(8) */
static int make_ad (unsigned char *ad, enum seal_dir dir, const char *link,
                    uint64_t seq, size_t *len)
{
    size_t ml = sizeof (AD_MAGIC), ll = strlen (link) + 1;
    if (ml + 1 + ll + 8 > AD_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy (ad, AD_MAGIC, ml);
    ad[ml] = (unsigned char)dir;
    memcpy (ad + ml + 1, link, ll);
    put_be64 (ad + ml + 1 + ll, seq);
    *len = ml + 1 + ll + 8;
    return 0;
}

int seal_box (const unsigned char key[SEAL_KEY_BYTES], enum seal_dir dir,
              const char *link, uint64_t seq, const void *pt, size_t len,
              unsigned char *out)
{
    unsigned char ad[AD_MAX];
    unsigned long long clen;
    size_t adlen;

    if (make_ad (ad, dir, link, seq, &adlen) < 0)
        return -1;
    out[0] = SEAL_VERSION;
    put_be64 (out + 1, seq);
    randombytes_buf (out + 9,
                     crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    if (crypto_aead_xchacha20poly1305_ietf_encrypt (out + SEAL_HEADER, &clen,
                                                    pt, len, ad, adlen, NULL,
                                                    out + 9, key) != 0) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int seal_open (const unsigned char key[SEAL_KEY_BYTES], enum seal_dir dir,
               const char *link, const void *in, size_t len, uint64_t *seq,
               unsigned char *pt, size_t *ptlen, cs_error_t *errp)
{
    const unsigned char *p = in;
    unsigned char ad[AD_MAX];
    unsigned long long plen;
    size_t adlen;
    uint64_t s;

    if (len < SEAL_OVERHEAD) {
        errno = EBADMSG;
        return errprintf (errp, "payload of %zu bytes is too short to be "
                          "sealed", len);
    }
    if (p[0] != SEAL_VERSION) {
        errno = EBADMSG;
        return errprintf (errp, "payload has seal version %d, not %d", p[0],
                          SEAL_VERSION);
    }
    s = get_be64 (p + 1);
    if (make_ad (ad, dir, link, s, &adlen) < 0)
        return errprintf (errp, "link id too long");
    if (crypto_aead_xchacha20poly1305_ietf_decrypt (pt, &plen, NULL,
                                                    p + SEAL_HEADER,
                                                    len - SEAL_HEADER, ad,
                                                    adlen, p + 9, key) != 0) {
        errno = EBADMSG;
        return errprintf (errp, "payload does not open (another seal key, "
                          "another link or direction, or tampered)");
    }
    *seq = s;
    *ptlen = (size_t)plen;
    return 0;
}
