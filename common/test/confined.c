/* test/confined.c - client-chosen paths stay inside their directory */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/confined.h"
#include "common/libtap/tap.h"

static int check (const char *path)
{
    return confined_path_check (path, NULL);
}

static char *slurp (const char *path)
{
    static char buf[256];
    int fd = open (path, O_RDONLY);
    ssize_t n;
    if (fd < 0)
        return NULL;
    n = read (fd, buf, sizeof (buf) - 1);
    close (fd);
    buf[n < 0 ? 0 : n] = '\0';
    return buf;
}

int main (int argc, char **argv)
{
    char dir[] = "/tmp/confined-test.XXXXXX";
    char path[1024], outside[512], longp[CONFINED_PATH_MAX + 8];
    cs_error_t error;
    struct stat st;

    plan (NO_PLAN);

    ok (check ("SKILL.md") == 0, "a name");
    ok (check ("tooling/SKILL.md") == 0, "a relative path");
    ok (check ("a/b/c/..d/e.f") == 0, "dots inside a name are fine");
    ok (check ("") < 0, "empty refused");
    ok (check ("/etc/passwd") < 0, "absolute refused");
    ok (check ("../x") < 0, "leading .. refused");
    ok (check ("a/../../x") < 0, ".. inside refused");
    ok (check ("a/..") < 0, "trailing .. refused");
    ok (check ("./x") < 0, ". refused");
    ok (check ("a//b") < 0, "empty component refused");
    ok (check ("a/") < 0, "trailing slash refused");
    ok (check ("a\\..\\b") < 0, "backslash refused");
    ok (check ("a\nb") < 0, "control character refused");
    memset (longp, 'a', sizeof (longp) - 1);
    longp[sizeof (longp) - 1] = '\0';
    ok (check (longp) < 0, "too long refused");
    ok (confined_path_check ("x/../../etc", &error) < 0
        && strstr (error.text, "'..' component"), "the error says why: %s",
        error.text);

    if (!mkdtemp (dir))
        bail_out ("mkdtemp: %s", strerror (errno));
    ok (confined_write (dir, "skills/tooling/SKILL.md", "hello", 5, &error)
        == 0, "write a nested file");
    snprintf (path, sizeof (path), "%s/skills/tooling/SKILL.md", dir);
    is (slurp (path), "hello", "with its content");
    ok (stat (path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode 0600");
    snprintf (path, sizeof (path), "%s/skills/tooling", dir);
    ok (stat (path, &st) == 0 && (st.st_mode & 0777) == 0700,
        "directories 0700");
    ok (confined_write (dir, "skills/tooling/SKILL.md", "x", 1, &error) < 0
        && errno == EEXIST, "an existing file is not replaced");

    /* a symlink on the way out of the directory */
    snprintf (outside, sizeof (outside), "%s.out", dir);
    ok (mkdir (outside, 0700) == 0, "a directory outside");
    snprintf (path, sizeof (path), "%s/link", dir);
    ok (symlink (outside, path) == 0, "a symlink to it inside");
    ok (confined_write (dir, "link/evil", "x", 1, &error) < 0,
        "writing through a symlinked directory fails: %s", error.text);
    snprintf (path, sizeof (path), "%s/evil", outside);
    ok (access (path, F_OK) < 0, "nothing was written outside");
    snprintf (path, sizeof (path), "%s/flink", dir);
    snprintf (outside + strlen (outside), 16, "/target");
    ok (symlink (outside, path) == 0 && confined_write (dir, "flink", "x", 1,
                                                         &error) < 0,
        "a symlink as the file itself is refused: %s", error.text);
    ok (access (outside, F_OK) < 0, "and its target was not created");
    ok (confined_write (dir, "../escape", "x", 1, &error) < 0
        && errno == EINVAL, "a bad path is refused before anything");

    {
        char cmd[1200];
        snprintf (cmd, sizeof (cmd), "rm -rf '%s' '%s.out'", dir, dir);
        if (system (cmd) != 0)
            diag ("cannot clean up %s", dir);
    }
    done_testing ();
    return 0;
}
