/* common/test/atomicfile.c - atomic file replacement */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/libtap/tap.h"

static char dir[PATH_MAX];

static char *slurp (const char *path)
{
    static char buf[256];
    FILE *f = fopen (path, "r");
    size_t n;
    if (!f)
        return NULL;
    n = fread (buf, 1, sizeof (buf) - 1, f);
    buf[n] = '\0';
    fclose (f);
    return buf;
}

/* entries in dir besides . and .. */
static int entries (void)
{
    DIR *d = opendir (dir);
    struct dirent *de;
    int n = 0;
    while (d && (de = readdir (d)))
        if (strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
            n++;
    if (d)
        closedir (d);
    return n;
}

int main (void)
{
    char path[PATH_MAX + 16], other[PATH_MAX + 16], sub[PATH_MAX + 16];
    const char *tmpdir = getenv ("TMPDIR");
    cs_error_t error;
    struct stat sb;

    plan (NO_PLAN);
    snprintf (dir, sizeof (dir), "%s/atomicfile.XXXXXX",
              tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp (dir))
        bail_out ("mkdtemp: %s", strerror (errno));
    snprintf (path, sizeof (path), "%s/state.json", dir);
    snprintf (other, sizeof (other), "%s/other", dir);
    snprintf (sub, sizeof (sub), "%s/sub", dir);

    ok (atomic_file_write (path, "one\n", 4, 0, &error) == 0,
        "a new file is written");
    is (slurp (path), "one\n", "with its contents");
    ok (stat (path, &sb) == 0 && (sb.st_mode & 0777) == 0600,
        "mode 0600");
    ok (atomic_file_write (path, "two", 3, ATOMIC_FILE_SYNC_DIR, &error) == 0,
        "replaced, the directory synced");
    is (slurp (path), "two", "the new contents, nothing of the old");
    cmp_ok (entries (), "==", 1, "no temporary is left behind");

    /* a symlink at the path is replaced, its target left alone */
    ok (atomic_file_write (other, "target", 6, 0, &error) == 0
        && unlink (path) == 0 && symlink (other, path) == 0,
        "path is now a symlink");
    ok (atomic_file_write (path, "three", 5, 0, &error) == 0,
        "writing over the symlink works");
    ok (lstat (path, &sb) == 0 && S_ISREG (sb.st_mode),
        "the path is a regular file again");
    is (slurp (other), "target", "the symlink's target is untouched");

    /* failure: nothing changes, nothing is left */
    ok (mkdir (sub, 0700) == 0, "a directory in the way");
    ok (atomic_file_write (sub, "x", 1, 0, &error) < 0,
        "replacing a directory fails");
    diag ("%s", error.text);
    ok (strstr (error.text, sub) != NULL, "the error names the path");
    cmp_ok (entries (), "==", 3, "the temporary was removed");
    snprintf (sub, sizeof (sub), "%s/", dir);
    ok (atomic_file_write (sub, "x", 1, 0, &error) < 0 && errno == EINVAL,
        "a path ending in a slash names no file");
    snprintf (sub, sizeof (sub), "%s/sub", dir);
    ok (atomic_file_write ("", "x", 1, 0, &error) < 0 && errno == EINVAL,
        "an empty path names no file");

    /* streamed: written piece by piece, then committed or aborted */
    {
        struct atomic_file af;

        ok (atomic_file_open (&af, path, &error) == 0 && af.fd >= 0,
            "a streamed write opens a temporary");
        is (slurp (path), "three", "the target is unchanged meanwhile");
        ok (write (af.fd, "fo", 2) == 2 && write (af.fd, "ur", 2) == 2,
            "written in pieces");
        ok (atomic_file_commit (&af, ATOMIC_FILE_SYNC_DIR, &error) == 0,
            "committed");
        is (slurp (path), "four", "the target has the whole new contents");
        cmp_ok (entries (), "==", 3, "no temporary is left behind");
        ok (atomic_file_open (&af, path, &error) == 0
            && write (af.fd, "partial", 7) == 7, "another write begins");
        cmp_ok (entries (), "==", 4, "its temporary is there");
        atomic_file_abort (&af);
        is (slurp (path), "four", "aborted: the target is unchanged");
        cmp_ok (entries (), "==", 3, "and the temporary is gone");
        ok (atomic_file_open (&af, sub, &error) == 0
            && atomic_file_commit (&af, 0, &error) < 0,
            "committing over a directory fails");
        ok (strstr (error.text, sub) != NULL, "the error names the path");
        cmp_ok (entries (), "==", 3, "the temporary was removed");
    }

    unlink (path);
    unlink (other);
    rmdir (sub);
    rmdir (dir);
    done_testing ();
}
