/* test/swarm.c - options, home, swarm layout, stream paths, fs type */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/libtap/tap.h"
#include "mailbox/mailbox.h"
#include "mailbox/private.h"

static char tmp[256];

static void test_options (void)
{
    struct mb_options o;
    memset (&o, 0xff, sizeof (o));
    mb_options_init (&o);
    ok (o.fsync == MB_FSYNC_NEVER && o.fsync_interval == 1.0
            && o.rotate_bytes == 64ULL << 20 && o.rotate_records == 0
            && o.max_record == MB_DEFAULT_MAX_RECORD
            && o.follow == MB_FOLLOW_AUTO && o.poll_min == 0.002
            && o.poll_max == 1.0,
        "mb_options_init sets the documented defaults");
}

static void test_home (void)
{
    char buf[512], want[512];
    cs_error_t err;
    struct stat st;

    snprintf (want, sizeof (want), "%s/home1", tmp);
    setenv ("CODESWARM_HOME", want, 1);
    ok (mb_home (buf, sizeof (buf), false, &err) == 0 && !strcmp (buf, want),
        "CODESWARM_HOME is used");
    ok (stat (want, &st) < 0, "not created without create");
    ok (mb_home (buf, sizeof (buf), true, &err) == 0 && stat (want, &st) == 0
            && (st.st_mode & 07777) == 0700,
        "created 0700 with create");
    ok (mb_home (buf, 5, false, &err) == -1 && errno == ENAMETOOLONG,
        "a small buffer is an error");
    unsetenv ("CODESWARM_HOME");
    setenv ("HOME", tmp, 1);
    snprintf (want, sizeof (want), "%s/.codeswarm", tmp);
    ok (mb_home (buf, sizeof (buf), false, &err) == 0 && !strcmp (buf, want),
        "else $HOME/.codeswarm");
}

static void test_swarm (void)
{
    char home[512], dir[512], want[600], sub[700];
    cs_error_t err;
    struct stat st;
    const char *subs[] = { "inbox", "outbox", "cursors", "state", "archive",
                           "work", "log", NULL };

    snprintf (home, sizeof (home), "%s/home2", tmp);
    ok (mb_swarm_dir (home, "s1", false, dir, sizeof (dir), &err) == -1
            && errno == ENOENT && strstr (err.text, "swarm 's1' not found"),
        "missing swarm without create: %s", err.text);
    ok (mb_swarm_dir (home, "s1", true, dir, sizeof (dir), &err) == 0,
        "create swarm s1");
    snprintf (want, sizeof (want), "%s/swarms/s1", home);
    is (dir, want, "swarm dir path");
    bool all = true;
    for (int i = 0; subs[i]; i++) {
        snprintf (sub, sizeof (sub), "%s/%s", dir, subs[i]);
        if (stat (sub, &st) < 0 || !S_ISDIR (st.st_mode)
            || (st.st_mode & 07777) != 0700)
            all = false;
    }
    ok (all, "all subdirectories exist with mode 0700");
    ok (mb_swarm_dir (home, "s1", false, dir, sizeof (dir), &err) == 0,
        "open existing swarm");
    snprintf (sub, sizeof (sub), "%s/outbox", dir);
    chmod (sub, 0775);
    ok (mb_swarm_dir (home, "s1", false, dir, sizeof (dir), &err) == -1
            && strstr (err.text, "outbox") && strstr (err.text, "writable"),
        "a group-writable outbox is refused: %s", err.text);
    chmod (sub, 0700);

    const char *badids[] = { "", ".hidden", "a/b", "a b", "..",
                             "x1234567890123456789012345678901234567890"
                             "123456789012345678901234",
                             NULL };
    for (int i = 0; badids[i]; i++)
        ok (mb_swarm_dir (home, badids[i], true, dir, sizeof (dir), &err)
                    == -1
                && errno == EINVAL && strstr (err.text, "invalid swarm id"),
            "swarm id '%s' refused", badids[i]);
    ok (mb_swarm_dir (home, "A-z_0.9", true, dir, sizeof (dir), &err) == 0,
        "swarm id with all allowed characters");
}

static void test_stream (void)
{
    char buf[512];
    cs_error_t err;
    struct mb_stream_name sn;

    ok (mb_stream_path ("/x/s", "outbox", 3, buf, sizeof (buf), &err) == 0,
        "stream path");
    is (buf, "/x/s/outbox/3.jsonl", "outbox/3.jsonl");
    ok (mb_stream_path ("/x/s", "inbox", 0, buf, sizeof (buf), &err) == 0,
        "inbox path");
    is (buf, "/x/s/inbox/0.jsonl", "inbox/0.jsonl");
    ok (mb_stream_path ("/x/s", "junk", 0, buf, sizeof (buf), &err) == -1
            && errno == EINVAL,
        "bad box refused: %s", err.text);
    ok (mb_stream_path ("/x/s", "inbox", -1, buf, sizeof (buf), &err) == -1,
        "negative node refused");

    ok (mb_stream_split ("/h/swarms/s/outbox/3.jsonl", &sn, &err) == 0,
        "split a stream path");
    is (sn.dir, "/h/swarms/s/outbox", "dir");
    is (sn.archive, "/h/swarms/s/archive", "archive");
    is (sn.box, "outbox", "box");
    is (sn.name, "3", "name");
    is (sn.prefix, "outbox-3.", "prefix");
    ok (mb_stream_split ("rel/in/x.jsonl", &sn, &err) == 0
            && !strcmp (sn.archive, "rel/archive"),
        "relative path");
    ok (mb_stream_split ("in/x.jsonl", &sn, &err) == 0
            && !strcmp (sn.archive, "archive") && !strcmp (sn.box, "in"),
        "short relative path");
    ok (mb_stream_split ("x.jsonl", &sn, &err) == -1, "no directory refused");
    ok (mb_stream_split ("/a/b/x.json", &sn, &err) == -1,
        "wrong suffix refused");
    ok (mb_stream_split ("/a/b/.jsonl", &sn, &err) == -1, "empty name refused");
}

static void test_fs_type (void)
{
    char name[64], path[512];
    bool poll = true;
    cs_error_t err;

    ok (mb_fs_type (tmp, name, sizeof (name), &poll, &err) == 0,
        "mb_fs_type on the test directory: %s (poll=%d)", name, poll);
    ok (mb_fs_type ("/proc", name, sizeof (name), &poll, &err) == 0
            && !strncmp (name, "0x", 2) && !poll,
        "unknown filesystem: hex magic, inotify (%s)", name);
    ok (mb_fs_type ("/dev/shm", name, sizeof (name), &poll, &err) == 0
            && !strcmp (name, "tmpfs") && !poll,
        "/dev/shm is tmpfs, inotify");
    snprintf (path, sizeof (path), "%s/does/not/exist.jsonl", tmp);
    char name2[64];
    ok (mb_fs_type (path, name2, sizeof (name2), &poll, &err) == 0
            && mb_fs_type (tmp, name, sizeof (name), &poll, &err) == 0
            && !strcmp (name, name2),
        "a missing path is asked of its nearest parent");
    ok (mb_fs_type ("no-such-relative-file", name2, sizeof (name2), &poll,
                    &err) == 0,
        "a missing relative path is asked of '.' (%s)", name2);
}

int main (void)
{
    char cmd[300];

    plan (NO_PLAN);
    snprintf (tmp, sizeof (tmp), "%s/mbswarm.XXXXXX",
              getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp");
    if (!mkdtemp (tmp))
        bail_out ("mkdtemp: %s", strerror (errno));
    test_options ();
    test_home ();
    test_swarm ();
    test_stream ();
    test_fs_type ();
    snprintf (cmd, sizeof (cmd), "rm -rf '%s'", tmp);
    if (system (cmd) != 0)
        diag ("cannot remove %s", tmp);
    done_testing ();
}
