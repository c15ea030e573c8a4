/* follow.c - "codeswarm-mailbox follow": print records as they arrive
 *
 * Follows one or more streams from a cursor, the start or the end, and
 * saves the reader cursor (--cursor-file, --reader) after what it printed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
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

#include "common/jsonarena.h"
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
        cJSON_free (js);
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

/* The options of follow. */
struct follow_args {
    struct mb_options opt;
    struct mb_cursor since;
    bool have_since;
    bool from_start;
    const char *cursor_file;
    const char *reader;
    double idle_timeout;        /* --timeout (-1: none) */
};

/* How the loop ended. */
enum follow_end {
    FOLLOW_STOP,                /* signal, --count, --timeout: commit, ok */
    FOLLOW_FAILED,              /* commit what was printed, fail */
    FOLLOW_OUT_ERROR,           /* stdout is gone or failed */
};

/* Parse the options into a and ctx (--count, --events).  Returns false
 * when follow is over before it began, with the exit code in *rc.
 */
static bool follow_parse (int argc, char **argv, struct follow_args *a,
                          struct follow_ctx *ctx, int *rc)
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
    cs_error_t err;
    int c;

    mb_options_init (&a->opt);
    a->idle_timeout = -1;
    optind = 1;
    while ((c = getopt_long (argc, argv, "+n:", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (mb_cursor_parse (optarg, &a->since, &err) < 0)
                usage_error ("--since: %s", err.text);
            a->have_since = true;
            break;
        case 'b':
            a->from_start = true;
            break;
        case 'c':
            a->cursor_file = optarg;
            break;
        case 'r':
            a->reader = optarg;
            break;
        case 'm':
            if (parse_mode (optarg, &a->opt.follow) < 0)
                usage_error ("--mode: expected auto, inotify or poll");
            break;
        case 'n':
            if (parse_u64 (optarg, &ctx->count) < 0)
                usage_error ("--count: expected a number");
            break;
        case 'T':
            if (parse_secs (optarg, &a->idle_timeout) < 0)
                usage_error ("--timeout: expected seconds");
            break;
        case 'e':
            ctx->events = true;
            break;
        case 'M': {
            uint64_t v;
            if (parse_u64 (optarg, &v) < 0 || v < 2)
                usage_error ("--max-record: expected a number of bytes");
            a->opt.max_record = v;
            break;
        }
        case 'h':
            usage (stdout);
            *rc = EXIT_OK;
            return false;
        default:
            usage (stderr);
            *rc = EXIT_FAILED;
            return false;
        }
    }
    if (optind >= argc) {
        log_msg ("follow: missing STREAM");
        *rc = EXIT_FAILED;
        return false;
    }
    if (a->cursor_file && a->reader)
        usage_error ("--cursor-file and --reader are exclusive");
    if (a->cursor_file && argc - optind > 1)
        usage_error ("--cursor-file takes one STREAM; use --reader NAME "
                      "for several");
    return true;
}

/* SIGTERM/SIGINT/SIGHUP through a signalfd (they end the loop cleanly);
 * stdout fully buffered (flushed whenever the loop goes idle).  Returns
 * the signalfd, -1 on failure.  *out_pollable: stdout is a pipe or socket
 * whose reader going away can be noticed while idle.
 */
static int follow_setup_process (bool *out_pollable)
{
    struct stat sb;
    sigset_t mask;
    int sfd;

    sigemptyset (&mask);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGHUP);
    if (sigprocmask (SIG_BLOCK, &mask, NULL) < 0
        || (sfd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        log_err ("signalfd");
        return -1;
    }
    signal (SIGPIPE, SIG_IGN);
    *out_pollable = fstat (STDOUT_FILENO, &sb) == 0
                    && (S_ISFIFO (sb.st_mode) || S_ISSOCK (sb.st_mode));
    /* A pipe of OUT_BUFSIZE (when the system allows it) takes a flush in
     * one go: the reader is woken once per flush, not once per 64 KiB.
     */
    if (*out_pollable && S_ISFIFO (sb.st_mode))
        (void)fcntl (STDOUT_FILENO, F_SETPIPE_SZ, OUT_BUFSIZE);
    /* each record's tree is deleted before the next is parsed */
    (void)jsonarena_install ();
    /* Full buffering into our own buffer (glibc ignores the size when
     * given no buffer and uses st_blksize: 4 KiB into a pipe, one write(2)
     * and one wake-up of the reader per ~16 records).  A backlog leaves in
     * writes of up to OUT_BUFSIZE; the loop flushes whenever a pass of the
     * follower is done, so a record never waits for the buffer to fill.
     */
    setvbuf (stdout, out_buf, _IOFBF, sizeof (out_buf));
    return sfd;
}

/* Add stream i (argument arg) to f, from its saved cursor, --since,
 * the start or the end.
 */
static int follow_add (mb_follower_t *f, struct follow_ctx *ctx, size_t i,
                       const char *arg, const struct follow_args *a)
{
    struct fstream *s = &ctx->streams[i];
    enum mb_start start = MB_START_END;
    struct mb_cursor cur = { 0 };
    bool found = false;
    cs_error_t err;

    s->ctx = ctx;
    /* the swarm must exist (a typo must not wait forever); the stream
     * itself may appear later
     */
    if (stream_resolve (arg, false, s->path, sizeof (s->path), &err) < 0)
        goto error;
    if (a->cursor_file) {
        if (strlen (a->cursor_file) >= sizeof (s->cursor_path)) {
            log_msg ("--cursor-file: path too long");
            return -1;
        }
        strcpy (s->cursor_path, a->cursor_file);
    }
    else if (a->reader
             && mb_cursor_path (s->path, a->reader, s->cursor_path,
                                sizeof (s->cursor_path), &err) < 0)
        goto error;
    if (s->cursor_path[0]
        && mb_cursor_load (s->cursor_path, &cur, &found, &err) < 0)
        goto error;
    if (found)
        start = MB_START_CURSOR;
    else if (a->have_since) {
        start = MB_START_CURSOR;
        cur = a->since;
    }
    else if (a->from_start)
        start = MB_START_BEGIN;
    if (!(s->r = mb_follower_add (f, s->path, start, &cur, follow_cb, s,
                                  &err)))
        goto error;
    mb_reader_cursor (s->r, &s->cur);
    return 0;
error:
    log_msg ("%s", err.text);
    return -1;
}

/* Print records until a signal, --count, --timeout, stdout going away or
 * an error; cursors are committed after every batch.
 */
static enum follow_end follow_loop (mb_follower_t *f, struct follow_ctx *ctx,
                                    int sfd, bool out_pollable,
                                    double idle_timeout)
{
    double last_activity = now_mono ();
    cs_error_t err;

    for (;;) {
        struct pollfd pfd[3];
        int nfd = 0, timeout, n;

        if ((n = mb_follower_process (f, &err)) < 0) {
            log_msg ("%s", err.text);
            return FOLLOW_FAILED;
        }
        if (ctx->batch > 0) {
            last_activity = now_mono ();
            if (follow_commit (ctx) < 0 && ctx->out_error)
                return FOLLOW_OUT_ERROR;
        }
        if (ctx->done)
            return FOLLOW_STOP;
        timeout = mb_follower_timeout (f);
        if (idle_timeout >= 0) {
            double left = last_activity + idle_timeout - now_mono ();
            int ms = left <= 0 ? 0 : (int)(left * 1000.0 + 1);
            if (left <= 0)
                return FOLLOW_STOP;
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
            return FOLLOW_FAILED;
        }
        if (pfd[0].revents) {
            struct signalfd_siginfo si;
            if (read (sfd, &si, sizeof (si)) == sizeof (si))
                log_debug ("signal %u: stopping", si.ssi_signo);
            return FOLLOW_STOP;
        }
        if (out_pollable && (pfd[nfd - 1].revents & (POLLERR | POLLHUP))) {
            log_debug ("stdout closed: stopping");
            ctx->out_error = true;
            ctx->out_errno = EPIPE;
            return FOLLOW_OUT_ERROR;
        }
    }
}

/* The exit code once the loop ended: the last commit, and whether a
 * failure of stdout is the consumer saying it is done.
 */
static int follow_finish (struct follow_ctx *ctx, enum follow_end end)
{
    if (end == FOLLOW_FAILED) {
        (void)follow_commit (ctx);
        return EXIT_FAILED;
    }
    if (end == FOLLOW_STOP && follow_commit (ctx) == 0)
        return EXIT_OK;
    if (!ctx->out_error)
        return EXIT_FAILED;
    /* the reader of our stdout went away: nothing more can be delivered,
     * and that is how a consumer says it is done.  Other errors fail.
     */
    if (ctx->out_errno == EPIPE)
        return EXIT_OK;
    log_errn (ctx->out_errno, "writing stdout");
    return EXIT_FAILED;
}

int cmd_follow (int argc, char **argv)
{
    struct follow_args a = { 0 };
    struct follow_ctx ctx = { 0 };
    mb_follower_t *f = NULL;
    bool out_pollable = false;
    cs_error_t err;
    int sfd = -1;
    int rc = EXIT_FAILED;

    if (!follow_parse (argc, argv, &a, &ctx, &rc))
        return rc;
    ctx.nstreams = argc - optind;
    if (!(ctx.streams = calloc (ctx.nstreams, sizeof (ctx.streams[0])))
        || !(ctx.dirty = calloc (ctx.nstreams, sizeof (ctx.dirty[0])))) {
        log_err ("follow");
        goto done;
    }
    if ((sfd = follow_setup_process (&out_pollable)) < 0)
        goto done;
    if (!(f = mb_follower_create (&a.opt, &err))) {
        log_msg ("%s", err.text);
        goto done;
    }
    for (size_t i = 0; i < ctx.nstreams; i++)
        if (follow_add (f, &ctx, i, argv[optind + i], &a) < 0)
            goto done;
    log_debug ("following %zu stream(s) in %s mode", ctx.nstreams,
               mb_follower_mode (f));
    rc = follow_finish (&ctx, follow_loop (f, &ctx, sfd, out_pollable,
                                           a.idle_timeout));
done:
    mb_follower_destroy (f);
    if (sfd >= 0)
        close (sfd);
    free (ctx.streams);
    free (ctx.dirty);
    return rc;
}
