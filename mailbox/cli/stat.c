/* stat.c - "codeswarm-mailbox stat": describe streams
 *
 * Segments, records, the last record (also inside a compressed segment)
 * and the writer holding the stream, as text or --json.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <zlib.h>

#include "mailbox/cli/cli.h"

struct last_record {
    bool found;
    uint64_t seq;
    uint64_t epoch;
    double ts;
};

static void last_from_line (const char *line, size_t len, size_t max_record,
                            struct last_record *lr)
{
    struct mb_record rec;

    if (mb_record_parse (line, len, max_record, &rec, NULL) == 0) {
        lr->found = true;
        lr->seq = rec.seq;
        lr->epoch = rec.epoch;
        lr->ts = rec.ts;
        cJSON_Delete (rec.json);
    }
}

/* The last valid record of the active segment: scan backwards from the end
 * in growing windows (a record may be as long as max_record).
 */
static int last_record_active (const char *path, size_t max_record,
                               struct last_record *lr, cs_error_t *errp)
{
    size_t window = 65536;
    struct stat sb;
    char *buf = NULL;
    int fd;

    if ((fd = mb_secure_open (path, O_RDONLY, errp)) < 0)
        return -1;
    if (fstat (fd, &sb) < 0) {
        errprintf (errp, "cannot stat '%s': %s", path, strerror (errno));
        goto error;
    }
    for (;;) {
        uint64_t size = sb.st_size;
        uint64_t off = size > window ? size - window : 0;
        size_t len = size - off;
        ssize_t n;
        char *nbuf;

        if (!(nbuf = realloc (buf, len + 1))) {
            errprintf (errp, "out of memory");
            goto error;
        }
        buf = nbuf;
        if ((n = pread (fd, buf, len, off)) < 0) {
            errprintf (errp, "cannot read '%s': %s", path, strerror (errno));
            goto error;
        }
        len = n;
        /* complete lines only: end at the last '\n' */
        while (len > 0 && buf[len - 1] != '\n')
            len--;
        while (len > 0 && !lr->found) {
            size_t end = len - 1;           /* the '\n' */
            size_t start = end;
            while (start > 0 && buf[start - 1] != '\n')
                start--;
            if (start == 0 && off > 0)
                break;                      /* may be cut: widen */
            last_from_line (buf + start, end - start, max_record, lr);
            len = start;
        }
        if (lr->found || off == 0 || window >= 2 * max_record + 2)
            break;
        window *= 4;
    }
    free (buf);
    close (fd);
    return 0;
error:
    free (buf);
    close (fd);
    return -1;
}

/* The last valid record of a sealed (gzip) segment: read it through. */
static int last_record_gz (const char *path, size_t max_record,
                           struct last_record *lr, cs_error_t *errp)
{
    cs_error_t err2;
    int fd = mb_secure_open (path, O_RDONLY, &err2);
    gzFile gz;
    char *line = NULL, *cur = NULL;
    size_t len = 0, size = 0;
    char chunk[65536];
    int n;

    if (fd < 0)
        return errprintf (errp, "%s", err2.text);
    if (!(gz = gzdopen (fd, "rb"))) {
        close (fd);
        return errprintf (errp, "cannot open '%s'", path);
    }
    (void)cur;
    while ((n = gzread (gz, chunk, sizeof (chunk))) > 0) {
        for (int i = 0; i < n; i++) {
            if (chunk[i] == '\n') {
                last_from_line (line ? line : "", len, max_record, lr);
                len = 0;
                continue;
            }
            if (len >= max_record)
                continue;
            if (len + 1 > size) {
                size_t nsize = size ? size * 2 : 4096;
                char *p = realloc (line, nsize);
                if (!p) {
                    gzclose (gz);
                    free (line);
                    return errprintf (errp, "out of memory");
                }
                line = p;
                size = nsize;
            }
            line[len++] = chunk[i];
        }
    }
    if (n < 0) {
        int zerr;
        errprintf (errp, "cannot read '%s': %s", path, gzerror (gz, &zerr));
        gzclose (gz);
        free (line);
        return -1;
    }
    gzclose (gz);
    free (line);
    return 0;
}

/* The writer's lock: held?  pid from the lock (or the file's contents). */
static pid_t writer_pid (const char *path)
{
    char lockpath[PATH_MAX + 8];
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    char buf[32];
    pid_t pid = 0;
    ssize_t n;
    int fd;

    if (snprintf (lockpath, sizeof (lockpath), "%s.lock", path)
        >= (int)sizeof (lockpath))
        return 0;
    if ((fd = open (lockpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return 0;
    if (fcntl (fd, F_OFD_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
        goto done;
    pid = fl.l_pid > 0 ? fl.l_pid : -1;
    if ((n = pread (fd, buf, sizeof (buf) - 1, 0)) > 0) {
        buf[n] = '\0';
        long v = strtol (buf, NULL, 10);
        if (v > 0)
            pid = (pid_t)v;
    }
done:
    close (fd);
    return pid;
}

static int stat_stream (const char *arg, bool json, enum mb_follow_mode mode)
{
    struct mb_options opt;
    char path[PATH_MAX], fstype[64] = "unknown";
    struct mb_segment *segs = NULL;
    size_t nsegs = 0;
    uint64_t archive_bytes = 0;
    struct last_record lr = { 0 };
    struct stat sb;
    bool fs_poll = false, exists;
    const char *follow;
    cs_error_t err;
    pid_t pid;
    int rc = EXIT_FAILED;

    mb_options_init (&opt);
    if (stream_resolve (arg, false, path, sizeof (path), &err) < 0)
        goto error_msg;
    exists = lstat (path, &sb) == 0;
    if (!exists && errno != ENOENT) {
        log_errn (errno, "cannot stat '%s'", path);
        goto done;
    }
    if (mb_segments_list (path, &segs, &nsegs, &err) < 0)
        goto error_msg;
    if (!exists && nsegs == 0) {
        log_errn (ENOENT, "cannot stat '%s'", path);
        goto done;
    }
    for (size_t i = 0; i < nsegs; i++) {
        struct stat s2;
        if (stat (segs[i].path, &s2) == 0)
            archive_bytes += s2.st_size;
    }
    {
        /* the filesystem of the stream's directory */
        char dir[PATH_MAX];
        char *slash;
        strcpy (dir, path);
        if ((slash = strrchr (dir, '/')))
            *(slash == dir ? slash + 1 : slash) = '\0';
        else
            strcpy (dir, ".");
        if (mb_fs_type (dir, fstype, sizeof (fstype), &fs_poll, &err) < 0)
            goto error_msg;
    }
    if (mode == MB_FOLLOW_AUTO && getenv ("CODESWARM_FOLLOW")) {
        /* the follower's own override (see codeswarm-mailbox(5)) */
        const char *env = getenv ("CODESWARM_FOLLOW");
        if (!strcmp (env, "inotify"))
            mode = MB_FOLLOW_INOTIFY;
        else if (!strcmp (env, "poll"))
            mode = MB_FOLLOW_POLL;
    }
    if (mode == MB_FOLLOW_INOTIFY)
        follow = "inotify";
    else if (mode == MB_FOLLOW_POLL)
        follow = "poll";
    else
        follow = fs_poll ? "poll" : "inotify";
    if (exists && last_record_active (path, opt.max_record, &lr, &err) < 0)
        goto error_msg;
    if (!lr.found && nsegs > 0
        && last_record_gz (segs[nsegs - 1].path, opt.max_record, &lr,
                           &err) < 0)
        goto error_msg;
    pid = writer_pid (path);

    if (json) {
        cJSON *o = cJSON_CreateObject ();
        char *s = NULL;
        if (!o
            || !cJSON_AddStringToObject (o, "path", path)
            || !cJSON_AddStringToObject (o, "fstype", fstype)
            || !cJSON_AddStringToObject (o, "follow_mode", follow)
            || !cJSON_AddNumberToObject (o, "size",
                                         exists ? (double)sb.st_size : 0)
            || !cJSON_AddNumberToObject (o, "records", (double)lr.seq)
            || !cJSON_AddNumberToObject (o, "last_seq", (double)lr.seq)
            || !cJSON_AddNumberToObject (o, "epoch", (double)lr.epoch)
            || !cJSON_AddNumberToObject (o, "archive_segments", (double)nsegs)
            || !cJSON_AddNumberToObject (o, "archive_bytes",
                                         (double)archive_bytes)
            || !(pid != 0 ? cJSON_AddNumberToObject (o, "writer_pid", pid)
                          : cJSON_AddNullToObject (o, "writer_pid"))
            || !(lr.found ? cJSON_AddNumberToObject (o, "last_ts", lr.ts)
                          : cJSON_AddNullToObject (o, "last_ts"))
            || !(s = cJSON_PrintUnformatted (o))) {
            cJSON_Delete (o);
            log_msg ("out of memory");
            goto done;
        }
        printf ("%s\n", s);
        cJSON_free (s);
        cJSON_Delete (o);
    }
    else {
        printf ("path:        %s\n", path);
        printf ("filesystem:  %s (follow mode %s)\n", fstype, follow);
        printf ("size:        %ju bytes\n",
                (uintmax_t)(exists ? sb.st_size : 0));
        printf ("records:     %" PRIu64 " (last seq)\n", lr.seq);
        printf ("epoch:       %" PRIu64 "\n", lr.epoch);
        printf ("archive:     %zu segment%s, %" PRIu64 " bytes\n", nsegs,
                nsegs == 1 ? "" : "s", archive_bytes);
        if (pid > 0)
            printf ("writer:      pid %ld\n", (long)pid);
        else if (pid < 0)
            printf ("writer:      locked (pid unknown)\n");
        else
            printf ("writer:      none\n");
        if (lr.found) {
            time_t t = (time_t)lr.ts;
            struct tm tm;
            char when[64];
            gmtime_r (&t, &tm);
            strftime (when, sizeof (when), "%Y-%m-%dT%H:%M:%S", &tm);
            printf ("last record: %s.%06dZ (ts %.6f)\n", when,
                    (int)((lr.ts - (double)t) * 1e6), lr.ts);
        }
        else
            printf ("last record: none\n");
    }
    rc = EXIT_OK;
    goto done;
error_msg:
    log_msg ("%s", err.text);
done:
    free (segs);
    return rc;
}

struct stat_args {
    bool json;
    enum mb_follow_mode mode;
};

static int stat_one (const char *stream, int index, void *arg)
{
    struct stat_args *a = arg;

    if (!a->json && index > 0)
        printf ("\n");
    return stat_stream (stream, a->json, a->mode) == EXIT_OK ? EXIT_OK
                                                             : EXIT_FAILED;
}

int cmd_stat (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "mode", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    enum mb_follow_mode mode = MB_FOLLOW_AUTO;
    struct stat_args a;
    bool json = false;
    int c;

    optind = 1;
    while ((c = getopt_long (argc, argv, "+", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'm':
            if (parse_mode (optarg, &mode) < 0)
                usage_error ("--mode: expected auto, inotify or poll");
            break;
        case 'h':
            usage (stdout);
            return EXIT_OK;
        default:
            usage (stderr);
            return EXIT_FAILED;
        }
    }
    a.json = json;
    a.mode = mode;
    return each_stream ("stat", argc, argv, optind, stat_one, &a);
}
