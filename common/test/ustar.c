#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/libtap/tap.h"
#include "common/ustar.h"

static char tmpl[] = "/tmp/cs-ustar-XXXXXX";

/* a raw header block with typeflag t and name n, as another tar might
 * write it, gzip'd into path */
static void raw_archive (const char *path, const char *n, char t)
{
    unsigned char h[512] = {0};
    unsigned sum = 0;
    gzFile gz = gzopen (path, "wb");

    memcpy (h, n, strlen (n));
    memcpy (h + 100, "0000644", 7);
    memcpy (h + 124, "00000000000", 11);
    memcpy (h + 136, "00000000000", 11);
    memset (h + 148, ' ', 8);
    h[156] = (unsigned char)t;
    memcpy (h + 157, "target", 6);
    memcpy (h + 257, "ustar", 6);
    memcpy (h + 263, "00", 2);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf ((char *)h + 148, 8, "%06o", sum);
    gzwrite (gz, h, sizeof (h));
    memset (h, 0, sizeof (h));
    gzwrite (gz, h, sizeof (h));
    gzwrite (gz, h, sizeof (h));
    gzclose (gz);
}

static int first_entry (const char *path, struct ustar_entry *e,
                        cs_error_t *err)
{
    int fd = open (path, O_RDONLY);
    ustar_reader_t *r = ustar_reader_create (fd, err);
    int rc = ustar_next (r, e, err);
    ustar_reader_destroy (r);
    close (fd);
    return rc;
}

int main (void)
{
    char path[256], big[300];
    cs_error_t err;
    struct ustar_entry e;
    ustar_writer_t *w;
    ustar_reader_t *r;
    char buf[64];
    int fd;

    plan (NO_PLAN);
    ok (mkdtemp (tmpl) != NULL, "temp dir");
    snprintf (path, sizeof (path), "%s/a.tar.gz", tmpl);

    ok (ustar_name_safe ("a/b.jsonl"), "a relative name is safe");
    ok (!ustar_name_safe ("/etc/passwd"), "absolute is not");
    ok (!ustar_name_safe ("a/../../b"), "'..' is not");
    ok (!ustar_name_safe ("a//b"), "an empty component is not");
    ok (!ustar_name_safe ("./a"), "'.' is not");
    ok (!ustar_name_safe (""), "empty is not");

    /* round trip, with a name that needs the prefix field */
    memset (big, 'd', 120);
    big[120] = '/';
    memset (big + 121, 'f', 90);
    big[211] = '\0';
    fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    w = ustar_writer_create (fd, &err);
    ok (w && ustar_add_dir (w, "s", 0700, 1, &err) == 0, "add a directory");
    ok (ustar_add_data (w, "s/x.json", 0600, 2, "{}\n", 3, &err) == 0,
        "add data");
    ok (ustar_add_data (w, big, 0600, 3, "long", 4, &err) == 0,
        "a 211-byte name goes into prefix + name");
    ok (ustar_add_data (w, "../evil", 0600, 3, "x", 1, &err) < 0 &&
            errno == EINVAL,
        "the writer refuses an unsafe name: %s", err.text);
    ok (ustar_finish (w, &err) == 0, "finish");
    close (fd);

    fd = open (path, O_RDONLY);
    r = ustar_reader_create (fd, &err);
    ok (ustar_next (r, &e, &err) == 1 && e.dir && !strcmp (e.name, "s"),
        "read the directory");
    ok (ustar_next (r, &e, &err) == 1 && !e.dir &&
            !strcmp (e.name, "s/x.json") && e.size == 3 && e.mode == 0600,
        "read the file header");
    ok (ustar_read (r, buf, sizeof (buf), &err) == 3 &&
            !memcmp (buf, "{}\n", 3),
        "read its data");
    ok (ustar_read (r, buf, sizeof (buf), &err) == 0, "then its end");
    ok (ustar_next (r, &e, &err) == 1 && !strcmp (e.name, big),
        "the long name comes back whole");
    ok (ustar_next (r, &e, &err) == 0, "end of archive (data skipped)");
    ustar_reader_destroy (r);
    close (fd);

    raw_archive (path, "s/link", '2');
    ok (first_entry (path, &e, &err) < 0 && errno == EPERM &&
            strstr (err.text, "symbolic link"),
        "a symlink is refused: %s", err.text);
    raw_archive (path, "s/hard", '1');
    ok (first_entry (path, &e, &err) < 0 && strstr (err.text, "hard link"),
        "a hard link is refused: %s", err.text);
    raw_archive (path, "s/../../etc/x", '0');
    ok (first_entry (path, &e, &err) < 0 && strstr (err.text, "outside"),
        "'..' is refused: %s", err.text);
    raw_archive (path, "/etc/x", '0');
    ok (first_entry (path, &e, &err) < 0 && strstr (err.text, "outside"),
        "an absolute name is refused: %s", err.text);
    raw_archive (path, "././@LongLink", 'L');
    ok (first_entry (path, &e, &err) < 0 && strstr (err.text, "GNU"),
        "a GNU long name is refused: %s", err.text);

    /* not an archive, and a truncated one */
    {
        gzFile gz = gzopen (path, "wb");
        char junk[512];
        memset (junk, 'j', sizeof (junk));
        gzwrite (gz, junk, sizeof (junk));
        gzclose (gz);
    }
    ok (first_entry (path, &e, &err) < 0 && strstr (err.text, "ustar"),
        "junk is not an archive: %s", err.text);
    {
        gzFile gz = gzopen (path, "wb");
        gzwrite (gz, "short", 5);
        gzclose (gz);
    }
    ok (first_entry (path, &e, &err) < 0 && strstr (err.text, "truncated"),
        "a short archive is truncated: %s", err.text);

    unlink (path);
    rmdir (tmpl);
    done_testing ();
}
