/* test/cursor.c - cursor text form, JSON, durable files, paths */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/libtap/tap.h"
#include "mailbox/mailbox.h"

static char tmp[256];

static void test_text (void)
{
    struct mb_cursor c = { 12, 3, 1, 4567 }, d;
    char buf[128];
    cs_error_t err;

    ok (mb_cursor_format (&c, buf, sizeof (buf)) == 0, "format");
    is (buf, "12:3:1:4567", "seq:epoch:segment:offset");
    ok (mb_cursor_format (&c, buf, 5) == -1, "format into a small buffer fails");
    ok (mb_cursor_parse ("12:3:1:4567", &d, &err) == 0 && d.seq == 12
            && d.epoch == 3 && d.segment == 1 && d.offset == 4567,
        "parse round trip");
    memset (&d, 0xff, sizeof (d));
    ok (mb_cursor_parse ("42", &d, &err) == 0 && d.seq == 42 && d.epoch == 0
            && d.segment == 0 && d.offset == 0,
        "bare seq");
    ok (mb_cursor_parse ("0", &d, &err) == 0 && d.seq == 0, "bare 0");
    const char *bad[] = { "", "x", "1:2", "1:2:3", "1:2:3:4:5", "-1", " 1",
                          "1 ", "1::3:4", "1:2:3:", "9007199254740992",
                          "0x10", NULL };
    for (int i = 0; bad[i]; i++) {
        err.text[0] = '\0';
        ok (mb_cursor_parse (bad[i], &d, &err) == -1 && errno == EINVAL
                && strstr (err.text, "invalid cursor"),
            "'%s' refused: %s", bad[i], err.text);
    }
}

static void test_json (void)
{
    struct mb_cursor c = { 9007199254740991ULL, 2, 100, 5 }, d;
    cs_error_t err;
    cJSON *o = mb_cursor_to_json (&c);
    char *s = o ? cJSON_PrintUnformatted (o) : NULL;

    ok (o != NULL, "to_json");
    diag ("%s", s ? s : "(null)");
    ok (mb_cursor_from_json (o, &d, &err) == 0 && !memcmp (&c, &d, sizeof (c)),
        "from_json round trip of the object");
    free (s);
    cJSON_Delete (o);

    o = cJSON_Parse ("{\"seq\":5}");
    ok (mb_cursor_from_json (o, &d, &err) == 0 && d.seq == 5 && d.offset == 0,
        "only seq is required");
    cJSON_Delete (o);
    const char *bad[] = { "{}", "[]", "{\"seq\":-1}", "{\"seq\":1.5}",
                          "{\"seq\":\"1\"}", "{\"seq\":1,\"offset\":true}",
                          NULL };
    for (int i = 0; bad[i]; i++) {
        o = cJSON_Parse (bad[i]);
        ok (mb_cursor_from_json (o, &d, &err) == -1 && errno == EINVAL,
            "%s refused: %s", bad[i], err.text);
        cJSON_Delete (o);
    }
}

static int count_entries (const char *dir)
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

static void test_file (void)
{
    char dir[512], path[600], buf[1024];
    struct mb_cursor c = { 7, 1, 1, 300 }, d;
    bool found = true;
    cs_error_t err;
    struct stat st;

    snprintf (dir, sizeof (dir), "%s/cursors", tmp);
    mkdir (dir, 0700);
    snprintf (path, sizeof (path), "%s/r.outbox-0.json", dir);

    memset (&d, 0xff, sizeof (d));
    ok (mb_cursor_load (path, &d, &found, &err) == 0 && !found && d.seq == 0
            && d.epoch == 0 && d.offset == 0,
        "loading a missing cursor: found=false, zeroed");
    ok (mb_cursor_save (path, &c, &err) == 0, "save");
    ok (stat (path, &st) == 0 && (st.st_mode & 07777) == 0600, "mode 0600");
    ok (mb_cursor_load (path, &d, &found, &err) == 0 && found
            && !memcmp (&c, &d, sizeof (c)),
        "load what was saved");
    c.seq = 8;
    c.offset = 400;
    ok (mb_cursor_save (path, &c, &err) == 0
            && mb_cursor_load (path, &d, &found, &err) == 0 && d.seq == 8
            && d.offset == 400,
        "save replaces");
    ok (count_entries (dir) == 1, "no temp files left behind");
    int fd = open (path, O_RDONLY);
    ssize_t n = read (fd, buf, sizeof (buf) - 1);
    close (fd);
    buf[n > 0 ? n : 0] = '\0';
    is (buf, "{\"seq\":8,\"epoch\":1,\"segment\":1,\"offset\":400}\n",
        "file content");

    fd = open (path, O_WRONLY | O_TRUNC);
    if (write (fd, "{\"seq\":", 7) < 0)
        bail_out ("write");
    close (fd);
    ok (mb_cursor_load (path, &d, &found, &err) == -1 && errno == EINVAL
            && strstr (err.text, path) && strstr (err.text, "not valid JSON"),
        "a corrupt cursor file: %s", err.text);
    fd = open (path, O_WRONLY | O_TRUNC);
    close (fd);
    ok (mb_cursor_load (path, &d, &found, &err) == -1
            && strstr (err.text, "empty"),
        "an empty cursor file: %s", err.text);
    fd = open (path, O_WRONLY | O_TRUNC);
    if (write (fd, "{\"seq\":-3}\n", 11) < 0)
        bail_out ("write");
    close (fd);
    ok (mb_cursor_load (path, &d, &found, &err) == -1
            && strstr (err.text, path) && strstr (err.text, "\"seq\""),
        "a bad seq in a cursor file: %s", err.text);

    snprintf (buf, sizeof (buf), "%s/link.json", dir);
    if (symlink (path, buf) < 0)
        bail_out ("symlink");
    ok (mb_cursor_load (buf, &d, &found, &err) == -1
            && strstr (err.text, "symbolic link"),
        "a symlinked cursor is refused: %s", err.text);

    chmod (dir, 0777);
    ok (mb_cursor_save (path, &c, &err) == -1 && strstr (err.text, "writable"),
        "save into a world-writable directory refused: %s", err.text);
    chmod (dir, 0700);
    snprintf (buf, sizeof (buf), "%s/nodir/x.json", tmp);
    ok (mb_cursor_save (buf, &c, &err) == -1 && errno == ENOENT,
        "save into a missing directory fails: %s", err.text);
}

static void test_path (void)
{
    char buf[512];
    cs_error_t err;

    ok (mb_cursor_path ("/h/swarms/s/outbox/3.jsonl", "router", buf,
                        sizeof (buf), &err) == 0,
        "cursor path");
    is (buf, "/h/swarms/s/cursors/router.outbox-3.json", "path");
    ok (mb_cursor_path ("/h/swarms/s/inbox/0.jsonl", "worker-0", buf,
                        sizeof (buf), &err) == 0,
        "inbox cursor path");
    is (buf, "/h/swarms/s/cursors/worker-0.inbox-0.json", "path");
    ok (mb_cursor_path ("/h/swarms/s/inbox/0.jsonl", "a/b", buf, sizeof (buf),
                        &err) == -1
            && errno == EINVAL,
        "reader with a slash refused: %s", err.text);
    ok (mb_cursor_path ("/h/swarms/s/inbox/0.jsonl", ".x", buf, sizeof (buf),
                        &err) == -1,
        "reader starting with a dot refused");
    ok (mb_cursor_path ("/h/swarms/s/inbox/0.jsonl", "r", buf, 10, &err) == -1
            && errno == ENAMETOOLONG,
        "small buffer");
}

int main (void)
{
    char cmd[300];

    plan (NO_PLAN);
    snprintf (tmp, sizeof (tmp), "%s/mbcursor.XXXXXX",
              getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp");
    if (!mkdtemp (tmp))
        bail_out ("mkdtemp: %s", strerror (errno));
    test_text ();
    test_json ();
    test_file ();
    test_path ();
    snprintf (cmd, sizeof (cmd), "rm -rf '%s'", tmp);
    if (system (cmd) != 0)
        diag ("cannot remove %s", tmp);
    done_testing ();
}
