/* test/secure.c - mb_secure_dir, mb_secure_open */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/libtap/tap.h"
#include "mailbox/mailbox.h"
#include "mailbox/private.h"

static char tmp[256];

static const char *p (const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf (buf[i], sizeof (buf[i]), "%s/%s", tmp, name);
    return buf[i];
}

static void test_dir (void)
{
    cs_error_t err;
    struct stat st;

    ok (mb_secure_dir (tmp, false, &err) == 0, "mkdtemp directory is fine");
    ok (mb_secure_dir (p ("new"), false, &err) == -1 && errno == ENOENT
            && strstr (err.text, p ("new")),
        "missing directory without create fails: %s", err.text);
    ok (mb_secure_dir (p ("new"), true, &err) == 0, "create a directory");
    ok (stat (p ("new"), &st) == 0 && (st.st_mode & 07777) == 0700,
        "it is mode 0700");
    ok (mb_secure_dir (p ("new"), true, &err) == 0, "create again is fine");

    ok (mkdir (p ("gw"), 0700) == 0 && chmod (p ("gw"), 0770) == 0,
        "make a group-writable directory");
    ok (mb_secure_dir (p ("gw"), false, &err) == -1 && errno == EPERM
            && strstr (err.text, p ("gw"))
            && strstr (err.text, "writable by group"),
        "group-writable directory refused: %s", err.text);
    ok (mkdir (p ("ww"), 0700) == 0 && chmod (p ("ww"), 0703) == 0,
        "make a world-writable directory");
    ok (mb_secure_dir (p ("ww"), true, &err) == -1
            && strstr (err.text, "writable by others"),
        "world-writable directory refused: %s", err.text);

    ok (symlink (p ("new"), p ("link")) == 0, "make a symlink to a directory");
    ok (mb_secure_dir (p ("link"), true, &err) == -1 && errno == ELOOP
            && strstr (err.text, p ("link"))
            && strstr (err.text, "symbolic link"),
        "symlinked directory refused: %s", err.text);

    if (geteuid () == 0) {
        ok (mkdir (p ("foreign"), 0700) == 0
                && chown (p ("foreign"), 65534, 65534) == 0,
            "make a directory owned by uid 65534");
        ok (mb_secure_dir (p ("foreign"), false, &err) == -1 && errno == EPERM
                && strstr (err.text, p ("foreign"))
                && strstr (err.text, "owned by uid 65534"),
            "foreign-owned directory refused: %s", err.text);
    }
    else
        skip (1, "not root: cannot chown");

    ok (close (open (p ("file"), O_CREAT | O_WRONLY, 0600)) == 0,
        "make a file");
    ok (mb_secure_dir (p ("file"), true, &err) == -1 && errno == ENOTDIR
            && strstr (err.text, "not a directory"),
        "a file is not a directory: %s", err.text);
}

static void test_open (void)
{
    cs_error_t err;
    struct stat st;
    int fd;

    umask (022);
    fd = mb_secure_open (p ("f1"), O_RDWR | O_CREAT, &err);
    ok (fd >= 0, "create a file");
    ok (fstat (fd, &st) == 0 && (st.st_mode & 07777) == 0600,
        "it is mode 0600");
    ok ((fcntl (fd, F_GETFD) & FD_CLOEXEC) != 0, "it is close-on-exec");
    close (fd);

    ok (mb_secure_open (p ("nope"), O_RDONLY, &err) == -1 && errno == ENOENT
            && strstr (err.text, p ("nope")),
        "missing file: %s", err.text);

    ok (symlink (p ("f1"), p ("f1link")) == 0, "make a symlink to a file");
    ok (mb_secure_open (p ("f1link"), O_RDONLY, &err) == -1
            && strstr (err.text, p ("f1link"))
            && strstr (err.text, "symbolic link"),
        "symlinked file refused: %s", err.text);
    ok (mb_secure_open (p ("f1link"), O_RDWR | O_CREAT, &err) == -1,
        "symlinked file refused with O_CREAT too");

    if (geteuid () == 0) {
        ok (close (open (p ("f2"), O_CREAT | O_WRONLY, 0600)) == 0
                && chown (p ("f2"), 65534, 65534) == 0,
            "make a file owned by uid 65534");
        ok (mb_secure_open (p ("f2"), O_RDONLY, &err) == -1 && errno == EPERM
                && strstr (err.text, p ("f2"))
                && strstr (err.text, "owned by uid 65534"),
            "foreign-owned file refused: %s", err.text);
    }
    else
        skip (1, "not root: cannot chown");

    ok (mb_secure_open (p ("new"), O_RDONLY, &err) == -1
            && strstr (err.text, "not a regular file"),
        "a directory is not a file: %s", err.text);
}

static void test_helpers (void)
{
    int fd = open (p ("w"), O_CREAT | O_RDWR | O_TRUNC, 0600);

    ok (fd >= 0, "a file to fsync the directory of");
    close (fd);
    ok (mb_fsync_dir (p ("w"), false) == 0, "mb_fsync_dir on a file's dir");
    ok (mb_fsync_dir (tmp, true) == 0, "mb_fsync_dir on a directory");
    ok (mb_fsync_dir (p ("nodir/x"), false) == -1 && errno == ENOENT,
        "mb_fsync_dir on a missing directory fails");
}

int main (void)
{
    char cmd[300];

    plan (NO_PLAN);
    snprintf (tmp, sizeof (tmp), "%s/mbsecure.XXXXXX",
              getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp");
    if (!mkdtemp (tmp))
        bail_out ("mkdtemp: %s", strerror (errno));
    test_dir ();
    test_open ();
    test_helpers ();
    snprintf (cmd, sizeof (cmd), "rm -rf '%s'", tmp);
    if (system (cmd) != 0)
        diag ("cannot remove %s", tmp);
    done_testing ();
}
