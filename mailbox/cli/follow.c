/* follow.c - "codeswarm-mailbox follow": print records as they arrive
 *
 * Follows one or more streams from a cursor, the start or the end, and
 * saves the reader cursor (--cursor-file, --reader) after what it printed.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include "mailbox/cli/cli.h"

struct follow_ctx;

struct fstream {
    char path[PATH_MAX];
    char cursor_path[PATH_MAX];     /* "" when not saving */
    mb_reader_t *r;
    struct mb_cursor cur;           /* after the last event handled */
    bool dirty;
    struct follow_ctx *ctx;
};

struct follow_ctx {
    struct fstream *streams;
    size_t nstreams;
    struct fstream **dirty;         /* streams whose cursor moved */
    size_t ndirty;
    uint64_t count;                 /* 0: unlimited */
    uint64_t delivered;
    bool events;
    bool done;                      /* --count reached */
    bool out_error;                 /* stdout failed (or its reader left) */
    int out_errno;
    size_t batch;                   /* events handled since the last flush */
};

/* stdout's buffer: a pass of the follower delivers up to 4096 records per
 * stream; 1 MiB holds such a pass of typical records in one write(2)
 */
#define OUT_BUFSIZE (1 << 20)
static char out_buf[OUT_BUFSIZE];

static void follow_cb (mb_follower_t *f, mb_reader_t *r,
                       const struct mb_event *ev, void *arg)
{
    struct fstream *s = arg;
    struct follow_ctx *ctx = s->ctx;

    /* Past --count (or after stdout failed) events are left unhandled:
     * the saved cursor stays before them.
     */
    if (ctx->done || ctx->out_error)
        return;
    if (ev->type == MB_EV_RECORD) {
        if (fwrite (ev->rec.line, 1, ev->rec.len, stdout) != ev->rec.len
            || putchar ('\n') == EOF) {
            ctx->out_errno = errno;
            ctx->out_error = true;
        }
        ctx->delivered++;
    }
    else if (ctx->events) {
        char *js = event_json (s->path, ev);
        if (!js || puts (js) == EOF) {
            ctx->out_errno = errno;
            ctx->out_error = true;
        }
        free (js);
    }
    else {
        char text[PATH_MAX + 512];
        event_text (ev, text, sizeof (text));
        log_msg ("%s", text);
    }
    if (ctx->out_error)
        return;
    mb_reader_cursor (r, &s->cur);
    if (!s->dirty) {
        s->dirty = true;
        ctx->dirty[ctx->ndirty++] = s;
    }
    ctx->batch++;
    if (ctx->count > 0 && ctx->delivered >= ctx->count)
        ctx->done = true;
}

/* Flush stdout, then save the cursors that moved (output first: a crash in
 * between repeats records rather than losing them).
 */
static int follow_commit (struct follow_ctx *ctx)
{
    int rc = 0;

    if (!ctx->out_error && fflush (stdout) != 0) {
        ctx->out_errno = errno;
        ctx->out_error = true;
    }
    if (ctx->out_error) {
        ctx->ndirty = 0;
        return -1;
    }
    for (size_t i = 0; i < ctx->ndirty; i++) {
        struct fstream *s = ctx->dirty[i];
        cs_error_t err;
        if (s->cursor_path[0]
            && mb_cursor_save (s->cursor_path, &s->cur, &err) < 0) {
            log_msg ("%s", err.text);
            rc = -1;
        }
        s->dirty = false;
    }
    ctx->ndirty = 0;
    ctx->batch = 0;
    return rc;
}

int cmd_follow (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "since", required_argument, NULL, 's' },
        { "from-start", no_argument, NULL, 'b' },
        { "cursor-file", required_argument, NULL, 'c' },
        { "reader", required_argument, NULL, 'r' },
        { "mode", required_argument, NULL, 'm' },
        { "count", required_argument, NULL, 'n' },
        { "timeout", required_argument, NULL, 'T' },
        { "events", no_argument, NULL, 'e' },
        { "max-record", required_argument, NULL, 'M' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct mb_options opt;
    struct follow_ctx ctx = { 0 };
    struct mb_cursor since = { 0 };
    bool have_since = false, from_start = false;
    const char *cursor_file = NULL, *reader = NULL;
    double idle_timeout = -1;
    mb_follower_t *f = NULL;
    cs_error_t err;
    sigset_t mask;
    int sfd = -1;
    int rc = EXIT_FAILED;
    bool out_pollable = false;
    struct stat sb;
    int c;

    mb_options_init (&opt);
    optind = 1;
    while ((c = getopt_long (argc, argv, "+n:", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (mb_cursor_parse (optarg, &since, &err) < 0)
                usage_error ("--since: %s", err.text);
            have_since = true;
            break;
        case 'b':
            from_start = true;
            break;
        case 'c':
            cursor_file = optarg;
            break;
        case 'r':
            reader = optarg;
            break;
        case 'm':
            if (parse_mode (optarg, &opt.follow) < 0)
                usage_error ("--mode: expected auto, inotify or poll");
            break;
        case 'n':
            if (parse_u64 (optarg, &ctx.count) < 0)
                usage_error ("--count: expected a number");
            break;
        case 'T':
            if (parse_secs (optarg, &idle_timeout) < 0)
                usage_error ("--timeout: expected seconds");
            break;
        case 'e':
            ctx.events = true;
            break;
        case 'M': {
            uint64_t v;
            if (parse_u64 (optarg, &v) < 0 || v < 2)
                usage_error ("--max-record: expected a number of bytes");
            opt.max_record = v;
            break;
        }
        case 'h':
            usage (stdout);
            return EXIT_OK;
        default:
            usage (stderr);
            return EXIT_FAILED;
        }
    }
    if (optind >= argc) {
        log_msg ("follow: missing STREAM");
        return EXIT_FAILED;
    }
    if (cursor_file && reader)
        usage_error ("--cursor-file and --reader are exclusive");
    if (cursor_file && argc - optind > 1)
        usage_error ("--cursor-file takes one STREAM; use --reader NAME "
                      "for several");
    ctx.nstreams = argc - optind;
    if (!(ctx.streams = calloc (ctx.nstreams, sizeof (ctx.streams[0])))
        || !(ctx.dirty = calloc (ctx.nstreams, sizeof (ctx.dirty[0])))) {
        log_err ("follow");
        goto done;
    }

    /* SIGTERM/SIGINT arrive through a signalfd and end the loop cleanly */
    sigemptyset (&mask);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGHUP);
    if (sigprocmask (SIG_BLOCK, &mask, NULL) < 0
        || (sfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        log_err ("signalfd");
        goto done;
    }
    signal (SIGPIPE, SIG_IGN);
    /* notice a reader of our stdout going away even while idle */
    if (fstat (STDOUT_FILENO, &sb) == 0
        && (S_ISFIFO (sb.st_mode) || S_ISSOCK (sb.st_mode)))
        out_pollable = true;
    /* Full buffering into our own buffer (glibc ignores the size when
     * given no buffer and uses st_blksize: 4 KiB into a pipe, one write(2)
     * and one wake-up of the reader per ~16 records).  A backlog leaves in
     * writes of up to OUT_BUFSIZE; the loop flushes whenever a pass of the
     * follower is done, so a record never waits for the buffer to fill.
     */
    setvbuf (stdout, out_buf, _IOFBF, sizeof (out_buf));

    if (!(f = mb_follower_create (&opt, &err))) {
        log_msg ("%s", err.text);
        goto done;
    }
    for (size_t i = 0; i < ctx.nstreams; i++) {
        struct fstream *s = &ctx.streams[i];
        const char *arg = argv[optind + i];
        enum mb_start start = MB_START_END;
        struct mb_cursor cur = { 0 };
        bool found = false;

        s->ctx = &ctx;
        /* the swarm must exist (a typo must not wait forever); the stream
         * itself may appear later
         */
        if (stream_resolve (arg, false, s->path, sizeof (s->path), &err) < 0)
            goto error_msg;
        if (cursor_file) {
            if (strlen (cursor_file) >= sizeof (s->cursor_path)) {
                log_msg ("--cursor-file: path too long");
                goto done;
            }
            strcpy (s->cursor_path, cursor_file);
        }
        else if (reader
                 && mb_cursor_path (s->path, reader, s->cursor_path,
                                    sizeof (s->cursor_path), &err) < 0)
            goto error_msg;
        if (s->cursor_path[0]
            && mb_cursor_load (s->cursor_path, &cur, &found, &err) < 0)
            goto error_msg;
        if (found)
            start = MB_START_CURSOR;
        else if (have_since) {
            start = MB_START_CURSOR;
            cur = since;
        }
        else if (from_start)
            start = MB_START_BEGIN;
        if (!(s->r = mb_follower_add (f, s->path, start, &cur, follow_cb, s,
                                      &err)))
            goto error_msg;
        mb_reader_cursor (s->r, &s->cur);
    }
    log_debug ("following %zu stream(s) in %s mode", ctx.nstreams,
               mb_follower_mode (f));

    double last_activity = now_mono ();
    for (;;) {
        struct pollfd pfd[3];
        int nfd = 0, timeout, n;

        if ((n = mb_follower_process (f, &err)) < 0) {
            log_msg ("%s", err.text);
            goto done_commit;
        }
        if (ctx.batch > 0) {
            last_activity = now_mono ();
            if (follow_commit (&ctx) < 0 && ctx.out_error)
                goto done_out;
        }
        if (ctx.done)
            break;
        timeout = mb_follower_timeout (f);
        if (idle_timeout >= 0) {
            double left = last_activity + idle_timeout - now_mono ();
            int ms = left <= 0 ? 0 : (int)(left * 1000.0 + 1);
            if (left <= 0)
                break;
            if (timeout < 0 || ms < timeout)
                timeout = ms;
        }
        pfd[nfd++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
        if (mb_follower_fd (f) >= 0)
            pfd[nfd++] = (struct pollfd){ .fd = mb_follower_fd (f),
                                          .events = POLLIN };
        if (out_pollable)
            pfd[nfd++] = (struct pollfd){ .fd = STDOUT_FILENO, .events = 0 };
        if ((n = poll (pfd, nfd, timeout)) < 0) {
            if (errno == EINTR)
                continue;
            log_err ("poll");
            goto done_commit;
        }
        if (pfd[0].revents) {
            struct signalfd_siginfo si;
            if (read (sfd, &si, sizeof (si)) == sizeof (si))
                log_debug ("signal %u: stopping", si.ssi_signo);
            break;
        }
        if (out_pollable && (pfd[nfd - 1].revents & (POLLERR | POLLHUP))) {
            log_debug ("stdout closed: stopping");
            ctx.out_error = true;
            ctx.out_errno = EPIPE;
            goto done_out;
        }
    }
    if (follow_commit (&ctx) < 0) {
        if (ctx.out_error)
            goto done_out;
        goto done;
    }
    rc = EXIT_OK;
    goto done;
error_msg:
    log_msg ("%s", err.text);
    goto done;
done_commit:
    (void)follow_commit (&ctx);
    goto done;
done_out:
    /* the reader of our stdout went away: nothing more can be delivered,
     * and that is how a consumer says it is done.  Other errors fail.
     */
    if (ctx.out_errno == EPIPE)
        rc = EXIT_OK;
    else
        log_errn (ctx.out_errno, "writing stdout");
done:
    mb_follower_destroy (f);
    if (sfd >= 0)
        close (sfd);
    free (ctx.streams);
    free (ctx.dirty);
    return rc;
}
