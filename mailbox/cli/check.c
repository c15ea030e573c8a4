/* check.c - "codeswarm-mailbox check": verify streams end to end
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "mailbox/cli/cli.h"

struct check_state {
    const char *stream;
    bool quiet;
    uint64_t records;
    uint64_t first_seq;
    uint64_t last_seq;
    uint64_t last_epoch;
    uint64_t epochs;
    uint64_t problems;
    uint64_t notes;
    bool gap_reported;
    char **pending;         /* a run of corrupt lines not yet judged */
    size_t npending;
};

static void check_problem (struct check_state *cs, const char *text)
{
    cs->problems++;
    if (!cs->quiet)
        printf ("%s\n", text);
}

/* A run of corrupt lines ends.  If the next record starts a new epoch, the
 * last line of the run (and any line of the run the reader calls a "torn
 * record") is the torn tail of a crashed writer that its successor sealed
 * with '\n' (see codeswarm-mailbox(5)): a note, not a problem.
 */
static void check_flush_pending (struct check_state *cs, bool new_epoch)
{
    for (size_t i = 0; i < cs->npending; i++) {
        if (new_epoch && (i == cs->npending - 1
                          || strstr (cs->pending[i], ": torn record: "))) {
            cs->notes++;
            if (!cs->quiet)
                printf ("%s (note: torn tail sealed by a restarted writer)\n",
                        cs->pending[i]);
        }
        else
            check_problem (cs, cs->pending[i]);
        free (cs->pending[i]);
    }
    cs->npending = 0;
}

static int check_stream (const char *arg, bool quiet)
{
    struct mb_options opt;
    struct check_state cs = { .stream = arg, .quiet = quiet };
    struct mb_segment *segs = NULL;
    size_t nsegs = 0, pending_size = 0;
    char path[PATH_MAX];
    cs_error_t err;
    mb_reader_t *r = NULL;
    struct mb_event ev;
    struct stat sb;
    int rc = EXIT_FAILED;
    int n;

    mb_options_init (&opt);
    if (stream_resolve (arg, false, path, sizeof (path), &err) < 0)
        goto error_msg;
    /* a stream that does not exist at all is an error here, not "empty" */
    if (lstat (path, &sb) < 0) {
        int e = errno;
        if (e != ENOENT)
            log_errn (e, "cannot check '%s'", path);
        else if (mb_segments_list (path, &segs, &nsegs, &err) < 0)
            log_msg ("%s", err.text);
        else if (nsegs == 0)
            log_errn (e, "cannot check '%s'", path);
        if (e != ENOENT || nsegs == 0)
            goto done;
    }
    if (!(r = mb_reader_open (path, MB_START_BEGIN, NULL, &opt, &err)))
        goto error_msg;
    while ((n = mb_reader_next (r, &ev, &err)) > 0) {
        char text[PATH_MAX + 512];

        event_text (&ev, text, sizeof (text));
        switch (ev.type) {
        case MB_EV_CORRUPT:
            if (cs.npending == pending_size) {
                size_t nsize = pending_size ? pending_size * 2 : 8;
                char **p = realloc (cs.pending, nsize * sizeof (*p));
                if (!p) {
                    log_err ("check");
                    goto done;
                }
                cs.pending = p;
                pending_size = nsize;
            }
            if (!(cs.pending[cs.npending] = strdup (text))) {
                log_err ("check");
                goto done;
            }
            cs.npending++;
            break;
        case MB_EV_EPOCH:
            check_flush_pending (&cs, true);
            if (log_verbose () && !quiet)
                printf ("%s\n", text);
            break;
        case MB_EV_GAP:
            check_flush_pending (&cs, false);
            cs.gap_reported = true;
            check_problem (&cs, text);
            break;
        case MB_EV_DUPLICATE:
            check_flush_pending (&cs, false);
            check_problem (&cs, text);
            break;
        case MB_EV_RECORD:
            check_flush_pending (&cs, cs.records > 0
                                      && ev.rec.epoch > cs.last_epoch);
            if (cs.records == 0) {
                cs.first_seq = ev.rec.seq;
                cs.epochs = 1;
                if (ev.rec.seq != 1 && !cs.gap_reported) {
                    char msg[PATH_MAX + 128];
                    snprintf (msg, sizeof (msg), "%s:%" PRIu64 ": stream "
                              "starts at seq %" PRIu64 ", not 1",
                              ev.file ? ev.file : path, ev.offset,
                              ev.rec.seq);
                    check_problem (&cs, msg);
                }
            }
            else if (ev.rec.epoch < cs.last_epoch) {
                char msg[PATH_MAX + 128];
                snprintf (msg, sizeof (msg), "%s:%" PRIu64 ": epoch went "
                          "backwards: %" PRIu64 " after %" PRIu64,
                          ev.file ? ev.file : path, ev.offset,
                          ev.rec.epoch, cs.last_epoch);
                check_problem (&cs, msg);
            }
            else if (ev.rec.epoch > cs.last_epoch)
                cs.epochs++;
            if (cs.records == 0 || ev.rec.epoch > cs.last_epoch)
                cs.last_epoch = ev.rec.epoch;
            cs.last_seq = ev.rec.seq;
            cs.records++;
            break;
        }
    }
    check_flush_pending (&cs, false);
    if (n < 0)
        goto error_msg;
    free (segs);
    segs = NULL;
    if (mb_segments_list (path, &segs, &nsegs, &err) < 0)
        goto error_msg;
    if (!quiet) {
        size_t nseg = nsegs + (lstat (path, &sb) == 0 ? 1 : 0);
        if (cs.records > 0)
            printf ("%s: %" PRIu64 " records (seq %" PRIu64 "..%" PRIu64
                    "), %zu segment%s, %" PRIu64 " epoch%s, %" PRIu64
                    " problem%s, %" PRIu64 " note%s\n", path, cs.records,
                    cs.first_seq, cs.last_seq, nseg, nseg == 1 ? "" : "s",
                    cs.epochs, cs.epochs == 1 ? "" : "s", cs.problems,
                    cs.problems == 1 ? "" : "s", cs.notes,
                    cs.notes == 1 ? "" : "s");
        else
            printf ("%s: 0 records, %zu segment%s, %" PRIu64 " problem%s, %"
                    PRIu64 " note%s\n", path, nseg, nseg == 1 ? "" : "s",
                    cs.problems, cs.problems == 1 ? "" : "s", cs.notes,
                    cs.notes == 1 ? "" : "s");
    }
    rc = cs.problems > 0 ? EXIT_PROBLEMS : EXIT_OK;
    goto done;
error_msg:
    log_msg ("%s", err.text);
done:
    for (size_t i = 0; i < cs.npending; i++)
        free (cs.pending[i]);
    free (cs.pending);
    free (segs);
    mb_reader_close (r);
    return rc;
}

static int check_one (const char *stream, int index, void *arg)
{
    (void)index;
    return check_stream (stream, *(bool *)arg);
}

int cmd_check (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool quiet = false;
    int c;

    optind = 1;
    while ((c = getopt_long (argc, argv, "+q", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage (stdout);
            return EXIT_OK;
        default:
            usage (stderr);
            return EXIT_FAILED;
        }
    }
    return each_stream ("check", argc, argv, optind, check_one, &quiet);
}
