/* ustar.c - gzip-compressed POSIX ustar archives (ustar.h)
 *
 * A header is one 512-byte block: name[100] mode[8] uid[8] gid[8]
 * size[12] mtime[12] chksum[8] typeflag[1] linkname[100] magic[6]
 * version[2] uname[32] gname[32] devmajor[8] devminor[8] prefix[155],
 * numbers in octal.  The data follows, padded to a block; the archive
 * ends with two zero blocks.  zlib's gzFile does the compression.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/ustar.h"

#define BLOCK 512

struct ustar_writer {
    gzFile gz;
};

struct ustar_reader {
    gzFile gz;
    uint64_t left; /* data bytes of the current entry not read */
    uint64_t pad;  /* padding after them */
    char name[USTAR_NAME_MAX + 2];
};

/* ---- names ------------------------------------------------------------------
 */

bool ustar_name_safe (const char *name)
{
    const char *p = name;

    if (!*name || *name == '/')
        return false;
    while (*p) {
        const char *end = strchrnul (p, '/');
        size_t n = (size_t)(end - p);
        if (n == 0 || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p = *end ? end + 1 : end;
        if (*end && !*p)
            return false; /* trailing '/' */
    }
    return true;
}

/* ---- writing ----------------------------------------------------------------
 */

static int gz_errprintf (gzFile gz, cs_error_t *errp, const char *what)
{
    int zerr = 0;
    const char *msg = gzerror (gz, &zerr);

    if (zerr == Z_ERRNO || zerr == Z_OK)
        return errprintf (errp, "%s: %s", what, strerror (errno ? errno : EIO));
    errno = EIO;
    return errprintf (errp, "%s: %s", what, msg);
}

static int gz_write_all (gzFile gz, const void *buf, size_t len,
                         cs_error_t *errp)
{
    const char *p = buf;

    while (len > 0) {
        unsigned n = len > (1u << 30) ? (1u << 30) : (unsigned)len;
        int w;
        errno = 0;
        if ((w = gzwrite (gz, p, n)) <= 0)
            return gz_errprintf (gz, errp, "cannot write the archive");
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static void octal (char *field, size_t len, uint64_t v)
{
    /* len - 1 octal digits (v fits: checked by the caller) and a NUL */
    field[len - 1] = '\0';
    for (size_t i = len - 1; i > 0; i--) {
        field[i - 1] = (char)('0' + (v & 7));
        v >>= 3;
    }
}

static int header (ustar_writer_t *w, const char *name, char type, mode_t mode,
                   time_t mtime, uint64_t size, cs_error_t *errp)
{
    unsigned char h[BLOCK];
    size_t nlen = strlen (name);
    const char *base = name;
    size_t plen = 0;
    unsigned sum = 0;
    char *dname;

    if (!ustar_name_safe (name)) {
        errno = EINVAL;
        return errprintf (errp, "'%s': not a relative archive name", name);
    }
    if (nlen > 100) {
        /* split at a '/' so that the prefix has <= 155 and the name <= 100 */
        const char *slash = NULL;
        for (const char *p = name; *p; p++)
            if (*p == '/' && (size_t)(p - name) <= 155 &&
                nlen - (size_t)(p - name) - 1 <= 100)
                slash = p;
        if (!slash) {
            errno = ENAMETOOLONG;
            return errprintf (errp, "'%s': name too long for ustar", name);
        }
        plen = (size_t)(slash - name);
        base = slash + 1;
    }
    if (size >= 077777777777ULL) {
        errno = EFBIG;
        return errprintf (errp, "'%s': too large for ustar", name);
    }
    memset (h, 0, sizeof (h));
    dname = (char *)h;
    memcpy (dname, base, strlen (base));
    octal ((char *)h + 100, 8, mode & 07777);
    octal ((char *)h + 108, 8, 0);
    octal ((char *)h + 116, 8, 0);
    octal ((char *)h + 124, 12, size);
    octal ((char *)h + 136, 12, mtime > 0 ? (uint64_t)mtime : 0);
    memset (h + 148, ' ', 8);
    h[156] = (unsigned char)type;
    memcpy (h + 257, "ustar", 6);
    memcpy (h + 263, "00", 2);
    if (plen)
        memcpy (h + 345, name, plen);
    for (int i = 0; i < BLOCK; i++)
        sum += h[i];
    snprintf ((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    return gz_write_all (w->gz, h, sizeof (h), errp);
}

static int pad (ustar_writer_t *w, uint64_t size, cs_error_t *errp)
{
    static const char zero[BLOCK];
    size_t n = (size_t)((BLOCK - size % BLOCK) % BLOCK);
    return n ? gz_write_all (w->gz, zero, n, errp) : 0;
}

ustar_writer_t *ustar_writer_create (int fd, cs_error_t *errp)
{
    ustar_writer_t *w;
    int dfd;

    if (!(w = calloc (1, sizeof (*w)))) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    if ((dfd = dup (fd)) < 0 || !(w->gz = gzdopen (dfd, "wb6"))) {
        int saved = errno ? errno : ENOMEM;
        if (dfd >= 0)
            close (dfd);
        free (w);
        errno = saved;
        errprintf (errp, "cannot start the archive: %s", strerror (saved));
        return NULL;
    }
    return w;
}

int ustar_add_dir (ustar_writer_t *w, const char *name, mode_t mode,
                   time_t mtime, cs_error_t *errp)
{
    return header (w, name, '5', mode, mtime, 0, errp);
}

int ustar_add_data (ustar_writer_t *w, const char *name, mode_t mode,
                    time_t mtime, const void *data, size_t len,
                    cs_error_t *errp)
{
    if (header (w, name, '0', mode, mtime, len, errp) < 0 ||
        gz_write_all (w->gz, data, len, errp) < 0 || pad (w, len, errp) < 0)
        return -1;
    return 0;
}

int ustar_add_fd (ustar_writer_t *w, const char *name, mode_t mode,
                  time_t mtime, int fd, uint64_t size, cs_error_t *errp)
{
    char buf[65536];
    uint64_t left = size;

    if (header (w, name, '0', mode, mtime, size, errp) < 0)
        return -1;
    while (left > 0) {
        ssize_t n = read (fd, buf, left < sizeof (buf) ? left : sizeof (buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errprintf (errp, "cannot read '%s': %s", name,
                              strerror (errno));
        if (n == 0) {
            errno = EIO;
            return errprintf (errp, "'%s' became shorter while archived", name);
        }
        if (gz_write_all (w->gz, buf, (size_t)n, errp) < 0)
            return -1;
        left -= (uint64_t)n;
    }
    return pad (w, size, errp);
}

int ustar_finish (ustar_writer_t *w, cs_error_t *errp)
{
    static const char zero[2 * BLOCK];
    int rc = 0, zrc;

    if (gz_write_all (w->gz, zero, sizeof (zero), errp) < 0)
        rc = -1;
    errno = 0;
    zrc = gzclose (w->gz);
    if (rc == 0 && zrc != Z_OK) {
        if (!errno)
            errno = EIO;
        rc = errprintf (errp, "cannot write the archive: %s", strerror (errno));
    }
    free (w);
    return rc;
}

void ustar_abandon (ustar_writer_t *w)
{
    int saved = errno;

    if (w) {
        gzclose (w->gz);
        free (w);
    }
    errno = saved;
}

/* ---- reading ----------------------------------------------------------------
 */

ustar_reader_t *ustar_reader_create (int fd, cs_error_t *errp)
{
    ustar_reader_t *r;
    int dfd;

    if (!(r = calloc (1, sizeof (*r)))) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    if ((dfd = dup (fd)) < 0 || !(r->gz = gzdopen (dfd, "rb"))) {
        int saved = errno ? errno : ENOMEM;
        if (dfd >= 0)
            close (dfd);
        free (r);
        errno = saved;
        errprintf (errp, "cannot read the archive: %s", strerror (saved));
        return NULL;
    }
    return r;
}

void ustar_reader_destroy (ustar_reader_t *r)
{
    int saved = errno;

    if (r) {
        gzclose (r->gz);
        free (r);
    }
    errno = saved;
}

/* read exactly len bytes: 1, 0 at a clean end (nothing read), -1 */
static int gz_read_full (ustar_reader_t *r, void *buf, size_t len,
                         cs_error_t *errp)
{
    size_t got = 0;

    while (got < len) {
        int n = gzread (r->gz, (char *)buf + got, (unsigned)(len - got));
        if (n < 0)
            return gz_errprintf (r->gz, errp, "cannot read the archive");
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got == 0)
        return 0;
    if (got < len) {
        errno = EIO;
        return errprintf (errp, "the archive is truncated");
    }
    return 1;
}

static int parse_octal (const unsigned char *f, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;

    while (i < len && f[i] == ' ')
        i++;
    if (i == len || f[i] < '0' || f[i] > '7')
        return -1;
    for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v > (UINT64_MAX >> 3))
            return -1;
        v = (v << 3) | (uint64_t)(f[i] - '0');
    }
    for (; i < len; i++)
        if (f[i] != ' ' && f[i] != '\0')
            return -1;
    *out = v;
    return 0;
}

static int skip (ustar_reader_t *r, uint64_t n, cs_error_t *errp)
{
    char buf[4096];

    while (n > 0) {
        size_t k = n < sizeof (buf) ? (size_t)n : sizeof (buf);
        int rc = gz_read_full (r, buf, k, errp);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            errno = EIO;
            return errprintf (errp, "the archive is truncated");
        }
        n -= k;
    }
    return 0;
}

static const char *type_name (unsigned char t)
{
    switch (t) {
    case '1':
        return "a hard link";
    case '2':
        return "a symbolic link";
    case '3':
        return "a character device";
    case '4':
        return "a block device";
    case '6':
        return "a FIFO";
    case 'x':
    case 'g':
        return "a pax extended header";
    case 'L':
    case 'K':
        return "a GNU long name";
    }
    return "of an unknown type";
}

int ustar_next (ustar_reader_t *r, struct ustar_entry *e, cs_error_t *errp)
{
    unsigned char h[BLOCK];
    uint64_t sum, v;
    unsigned calc = 0;
    char name[USTAR_NAME_MAX + 2];
    size_t plen, nlen;
    int rc;

    if (skip (r, r->left + r->pad, errp) < 0)
        return -1;
    r->left = r->pad = 0;
    if ((rc = gz_read_full (r, h, sizeof (h), errp)) <= 0) {
        if (rc == 0) {
            errno = EIO;
            return errprintf (errp, "the archive ends without its end "
                                    "marker (truncated?)");
        }
        return -1;
    }
    {
        bool zero = true;
        for (int i = 0; i < BLOCK && zero; i++)
            zero = h[i] == 0;
        if (zero)
            return 0;
    }
    if (parse_octal (h + 148, 8, &sum) < 0) {
        errno = EINVAL;
        return errprintf (errp, "not a ustar archive (bad header checksum "
                                "field)");
    }
    for (int i = 0; i < BLOCK; i++)
        calc += (i >= 148 && i < 156) ? ' ' : h[i];
    if (sum != calc) {
        errno = EINVAL;
        return errprintf (errp, "not a ustar archive, or corrupt (header "
                                "checksum)");
    }
    if (memcmp (h + 257, "ustar", 5) != 0) {
        errno = EINVAL;
        return errprintf (errp, "not a ustar archive (magic)");
    }
    plen = strnlen ((char *)h + 345, 155);
    nlen = strnlen ((char *)h, 100);
    if (plen)
        snprintf (name, sizeof (name), "%.*s/%.*s", (int)plen, (char *)h + 345,
                  (int)nlen, (char *)h);
    else
        snprintf (name, sizeof (name), "%.*s", (int)nlen, (char *)h);
    snprintf (r->name, sizeof (r->name), "%s", name);
    if (h[156] != '0' && h[156] != '\0' && h[156] != '5') {
        errno = EPERM;
        return errprintf (errp, "'%s' is %s: refused", name,
                          type_name (h[156]));
    }
    e->dir = h[156] == '5';
    nlen = strlen (name);
    if (e->dir && nlen > 1 && name[nlen - 1] == '/')
        name[nlen - 1] = '\0';
    if (!ustar_name_safe (name)) {
        errno = EPERM;
        return errprintf (errp,
                          "'%s': a path outside the archive's root "
                          "(absolute, or with \"..\"): refused",
                          name);
    }
    if (parse_octal (h + 124, 12, &e->size) < 0 ||
        parse_octal (h + 100, 8, &v) < 0) {
        errno = EINVAL;
        return errprintf (errp, "'%s': bad size or mode field", name);
    }
    e->mode = (mode_t)(v & 07777);
    e->mtime = parse_octal (h + 136, 12, &v) == 0 ? (time_t)v : 0;
    if (e->dir)
        e->size = 0;
    snprintf (e->name, sizeof (e->name), "%s", name);
    r->left = e->size;
    r->pad = (BLOCK - e->size % BLOCK) % BLOCK;
    return 1;
}

ssize_t ustar_read (ustar_reader_t *r, void *buf, size_t len, cs_error_t *errp)
{
    int n;

    if (r->left == 0)
        return 0;
    if (len > r->left)
        len = (size_t)r->left;
    if (len > (1u << 30))
        len = 1u << 30;
    if ((n = gzread (r->gz, buf, (unsigned)len)) < 0)
        return gz_errprintf (r->gz, errp, "cannot read the archive");
    if (n == 0) {
        errno = EIO;
        return errprintf (errp, "'%s': the archive is truncated", r->name);
    }
    r->left -= (uint64_t)n;
    return n;
}
