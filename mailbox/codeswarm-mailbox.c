/* codeswarm-mailbox - append to, follow, check and describe mailbox streams
 *
 * Verbs: append, follow, check, stat, serve (see codeswarm-mailbox(1)).
 * A STREAM is a path to a .jsonl file, or SWARM/BOX/K ("s1/outbox/3")
 * resolved under <home>/swarms/.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "common/errprintf.h"
#include "common/log.h"
#include "mailbox/mailbox.h"
#include "mailbox/serve.h"

/* exit codes */
enum {
    EXIT_OK = 0,
    EXIT_PROBLEMS = 1,      /* check: problems found; append: bad input */
    EXIT_FAILED = 2,        /* could not open/read/write, bad usage */
};

static const char *home_opt;

static const char *usage_text =
"Usage: codeswarm-mailbox [--home DIR] [-v] VERB [OPTIONS] ARGS\n"
"Verbs:\n"
"  append [--type T] [--fsync never|always|interval] [--fsync-interval SECS]\n"
"         [--rotate-bytes N] [--rotate-records N] [--max-record BYTES]\n"
"         [--print-seq] STREAM [JSON-OBJECT...]\n"
"  follow [--since CURSOR] [--from-start] [--cursor-file F | --reader NAME]\n"
"         [--mode auto|inotify|poll] [-n|--count N] [--timeout SECS]\n"
"         [--events] [--max-record BYTES] STREAM...\n"
"  check  [-q|--quiet] STREAM...\n"
"  stat   [--json] [--mode auto|inotify|poll] STREAM...\n"
"  serve  ...      (the login-node end of the router's ssh transport)\n"
"STREAM is a path to a .jsonl file or SWARM/BOX/K (e.g. myswarm/outbox/3).\n"
"Exit status: 0 ok, 1 check found problems / append had bad input,\n"
"2 usage error or a stream could not be used.  See codeswarm-mailbox(1).\n";

static void usage (FILE *fp)
{
    fputs (usage_text, fp);
}

/* a bad option or argument: message, exit 2 */
static void usage_error (const char *fmt, ...)
    __attribute__ ((format (printf, 1, 2), noreturn));
static void usage_error (const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (buf, sizeof (buf), fmt, ap);
    va_end (ap);
    log_msg ("%s", buf);
    exit (EXIT_FAILED);
}

static double now_mono (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_u64 (const char *s, uint64_t *val)
{
    char *end;
    unsigned long long v;

    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    v = strtoull (s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *val = v;
    return 0;
}

static int parse_secs (const char *s, double *val)
{
    char *end;
    double v;

    errno = 0;
    v = strtod (s, &end);
    if (errno != 0 || end == s || *end != '\0' || v < 0)
        return -1;
    *val = v;
    return 0;
}

/* "SWARM/inbox/K" or "SWARM/outbox/K" (and nothing else) */
static bool is_swarm_spec (const char *arg, char *swarm, size_t swarmlen,
                           char *box, size_t boxlen, int *node)
{
    const char *s1 = strchr (arg, '/');
    const char *s2;
    uint64_t k;

    if (!s1 || s1 == arg || (size_t)(s1 - arg) >= swarmlen)
        return false;
    s2 = strchr (s1 + 1, '/');
    if (!s2 || (size_t)(s2 - s1 - 1) >= boxlen)
        return false;
    if (strncmp (s1 + 1, "inbox/", 6) != 0
        && strncmp (s1 + 1, "outbox/", 7) != 0)
        return false;
    if (parse_u64 (s2 + 1, &k) < 0 || k > INT_MAX)
        return false;
    memcpy (swarm, arg, s1 - arg);
    swarm[s1 - arg] = '\0';
    memcpy (box, s1 + 1, s2 - s1 - 1);
    box[s2 - s1 - 1] = '\0';
    *node = (int)k;
    return true;
}

/* Resolve a STREAM argument to the path of its active segment.  create
 * makes the swarm directories for SWARM/BOX/K (append).
 */
static int stream_resolve (const char *arg, bool create, char *buf,
                           size_t len, cs_error_t *errp)
{
    char swarm[128], box[16];
    char home[PATH_MAX], swarmdir[PATH_MAX];
    int node;

    if (!is_swarm_spec (arg, swarm, sizeof (swarm), box, sizeof (box), &node)
        || access (arg, F_OK) == 0) {
        /* relative paths are made absolute, so that a stream directly in
         * the current directory still has a named directory
         */
        char cwd[PATH_MAX];
        int n;
        if (arg[0] == '/')
            n = snprintf (buf, len, "%s", arg);
        else if (!getcwd (cwd, sizeof (cwd)))
            return errprintf (errp, "cannot get the current directory: %s",
                              strerror (errno));
        else
            n = snprintf (buf, len, "%s/%s", strcmp (cwd, "/") ? cwd : "",
                          arg);
        if (n < 0 || (size_t)n >= len) {
            errno = ENAMETOOLONG;
            return errprintf (errp, "'%s': path too long", arg);
        }
        return 0;
    }
    if (home_opt) {
        if (strlen (home_opt) >= sizeof (home)) {
            errno = ENAMETOOLONG;
            return errprintf (errp, "'%s': path too long", home_opt);
        }
        strcpy (home, home_opt);
        if (mb_secure_dir (home, create, errp) < 0)
            return -1;
    }
    else if (mb_home (home, sizeof (home), create, errp) < 0)
        return -1;
    if (mb_swarm_dir (home, swarm, create, swarmdir, sizeof (swarmdir),
                      errp) < 0)
        return -1;
    return mb_stream_path (swarmdir, box, node, buf, len, errp);
}

static int parse_fsync (const char *s, enum mb_fsync *f)
{
    if (!strcmp (s, "never"))
        *f = MB_FSYNC_NEVER;
    else if (!strcmp (s, "always"))
        *f = MB_FSYNC_ALWAYS;
    else if (!strcmp (s, "interval"))
        *f = MB_FSYNC_INTERVAL;
    else
        return -1;
    return 0;
}

static int parse_mode (const char *s, enum mb_follow_mode *m)
{
    if (!strcmp (s, "auto"))
        *m = MB_FOLLOW_AUTO;
    else if (!strcmp (s, "inotify"))
        *m = MB_FOLLOW_INOTIFY;
    else if (!strcmp (s, "poll"))
        *m = MB_FOLLOW_POLL;
    else
        return -1;
    return 0;
}

/* ---- append ----------------------------------------------------------- */

static const char *reserved_members[] = { "v", "seq", "epoch", "ts", NULL };

/* Append one JSON object given as text.  Its "type" member, when it is a
 * string, becomes the record type (else deftype).  Returns 0, or -1 with
 * errp filled (the record was not written).
 */
static int append_json (mb_writer_t *w, const char *text, size_t len,
                        const char *deftype, uint64_t *seqp, cs_error_t *errp)
{
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts (text, len, &end, false);
    const char *type = deftype;
    cJSON *t;
    int rc = -1;

    if (!o) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        errno = EINVAL;
        return errprintf (errp, "not valid JSON near byte %zu", off);
    }
    while (end && (size_t)(end - text) < len
           && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end && (size_t)(end - text) < len) {
        errno = EINVAL;
        errprintf (errp, "trailing data at byte %zu", (size_t)(end - text));
        goto done;
    }
    if (!cJSON_IsObject (o)) {
        errno = EINVAL;
        errprintf (errp, "not a JSON object");
        goto done;
    }
    for (int i = 0; reserved_members[i]; i++) {
        if (cJSON_GetObjectItemCaseSensitive (o, reserved_members[i])) {
            errno = EINVAL;
            errprintf (errp, "\"%s\" is set by the writer, not the payload",
                       reserved_members[i]);
            goto done;
        }
    }
    if ((t = cJSON_GetObjectItemCaseSensitive (o, "type"))) {
        if (!cJSON_IsString (t) || !*t->valuestring) {
            errno = EINVAL;
            errprintf (errp, "\"type\" is not a non-empty string");
            goto done;
        }
        type = t->valuestring;
        cJSON_DetachItemViaPointer (o, t);
    }
    rc = mb_writer_append (w, type, o, seqp, errp);
    if (t)
        cJSON_Delete (t);
done:
    cJSON_Delete (o);
    return rc;
}

/* Wait for stdin to be readable, syncing when an interval sync falls due. */
static int append_wait_input (mb_writer_t *w, bool print_seq)
{
    for (;;) {
        struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
        double due = mb_writer_sync_due (w);
        int timeout = due < 0 ? -1 : (int)(due * 1000.0 + 1);
        int n;

        if (print_seq && fflush (stdout) != 0)
            return -1;
        if ((n = poll (&pfd, 1, timeout)) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n > 0)
            return 0;
        if (mb_writer_sync_due (w) == 0 && mb_writer_sync (w) < 0)
            return -1;
    }
}

static bool is_blank (const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return false;
    return true;
}

/* stdin split into lines with read(2): blocks (after flushing --print-seq
 * output and doing interval syncs) only when no complete line is buffered.
 */
struct inbuf {
    char *data;
    size_t len;         /* bytes buffered */
    size_t start;       /* start of the next line */
    size_t size;
    bool eof;
};

/* 1 with the next line (no '\n'; a final unterminated line counts), 0 at
 * EOF, -1 on a read error.
 */
static int inbuf_line (struct inbuf *in, mb_writer_t *w, bool print_seq,
                       const char **line, size_t *len)
{
    size_t scanned = in->start;

    for (;;) {
        char *nl = in->len > scanned
                       ? memchr (in->data + scanned, '\n', in->len - scanned)
                       : NULL;
        ssize_t n;

        if (nl) {
            *line = in->data + in->start;
            *len = nl - *line;
            in->start = nl - in->data + 1;
            return 1;
        }
        if (in->eof) {
            if (in->start < in->len) {
                *line = in->data + in->start;
                *len = in->len - in->start;
                in->start = in->len;
                return 1;
            }
            return 0;
        }
        scanned = in->len;
        if (in->start > 0) {    /* shift the partial line down */
            memmove (in->data, in->data + in->start, in->len - in->start);
            in->len -= in->start;
            scanned -= in->start;
            in->start = 0;
        }
        if (in->size - in->len < 65536) {
            size_t nsize = in->size ? in->size * 2 : 131072;
            char *p = realloc (in->data, nsize);
            if (!p)
                return -1;
            in->data = p;
            in->size = nsize;
        }
        if (append_wait_input (w, print_seq) < 0)
            return -1;
        if ((n = read (STDIN_FILENO, in->data + in->len,
                       in->size - in->len)) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        if (n == 0)
            in->eof = true;
        in->len += n;
    }
}

static int cmd_append (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "type", required_argument, NULL, 't' },
        { "fsync", required_argument, NULL, 'f' },
        { "fsync-interval", required_argument, NULL, 'I' },
        { "rotate-bytes", required_argument, NULL, 'B' },
        { "rotate-records", required_argument, NULL, 'R' },
        { "max-record", required_argument, NULL, 'M' },
        { "print-seq", no_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct mb_options opt;
    const char *type = "data";
    bool print_seq = false;
    char path[PATH_MAX];
    cs_error_t err;
    mb_writer_t *w;
    int rc = EXIT_OK;
    int c;

    mb_options_init (&opt);
    optind = 1;
    while ((c = getopt_long (argc, argv, "+t:p", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            type = optarg;
            break;
        case 'f':
            if (parse_fsync (optarg, &opt.fsync) < 0)
                usage_error ("--fsync: expected never, always or interval");
            break;
        case 'I':
            if (parse_secs (optarg, &opt.fsync_interval) < 0)
                usage_error ("--fsync-interval: expected seconds");
            opt.fsync = MB_FSYNC_INTERVAL;
            break;
        case 'B':
            if (parse_u64 (optarg, &opt.rotate_bytes) < 0)
                usage_error ("--rotate-bytes: expected a number");
            break;
        case 'R':
            if (parse_u64 (optarg, &opt.rotate_records) < 0)
                usage_error ("--rotate-records: expected a number");
            break;
        case 'M': {
            uint64_t v;
            if (parse_u64 (optarg, &v) < 0 || v < 2)
                usage_error ("--max-record: expected a number of bytes");
            opt.max_record = v;
            break;
        }
        case 'p':
            print_seq = true;
            break;
        case 'h':
            usage (stdout);
            return EXIT_OK;
        default:
            usage (stderr);
            return EXIT_FAILED;
        }
    }
    if (optind >= argc) {
        log_msg ("append: missing STREAM");
        return EXIT_FAILED;
    }
    if (!*type) {
        log_msg ("--type: must not be empty");
        return EXIT_FAILED;
    }
    if (stream_resolve (argv[optind], true, path, sizeof (path), &err) < 0
        || !(w = mb_writer_open (path, &opt, &err))) {
        log_msg ("%s", err.text);
        return EXIT_FAILED;
    }
    if (optind + 1 < argc) {
        for (int i = optind + 1; i < argc; i++) {
            uint64_t seq;
            if (append_json (w, argv[i], strlen (argv[i]), type, &seq,
                             &err) < 0) {
                log_msg ("argument %d: %s", i - optind, err.text);
                rc = errno == EINVAL ? EXIT_PROBLEMS : EXIT_FAILED;
                if (rc == EXIT_FAILED)
                    break;
                continue;
            }
            if (print_seq)
                printf ("%" PRIu64 "\n", seq);
        }
    }
    else {
        struct inbuf in = { 0 };
        const char *line;
        size_t n;
        unsigned long lineno = 0;
        int got;

        while ((got = inbuf_line (&in, w, print_seq, &line, &n)) > 0) {
            uint64_t seq;
            lineno++;
            while (n > 0 && line[n - 1] == '\r')
                n--;
            if (is_blank (line, n))
                continue;
            if (append_json (w, line, n, type, &seq, &err) < 0) {
                log_msg ("stdin:%lu: %s", lineno, err.text);
                if (errno != EINVAL) {
                    rc = EXIT_FAILED;
                    break;
                }
                rc = EXIT_PROBLEMS;
                continue;
            }
            if (print_seq)
                printf ("%" PRIu64 "\n", seq);
        }
        if (got < 0) {
            log_err ("reading stdin");
            rc = EXIT_FAILED;
        }
        free (in.data);
    }
    mb_writer_close (w);
    if (fflush (stdout) != 0) {
        log_err ("writing stdout");
        rc = EXIT_FAILED;
    }
    return rc;
}

/* ---- reporting problems (follow, check) -------------------------------- */

static const char *event_name (enum mb_event_type t)
{
    switch (t) {
    case MB_EV_RECORD:
        return "record";
    case MB_EV_GAP:
        return "gap";
    case MB_EV_DUPLICATE:
        return "duplicate";
    case MB_EV_EPOCH:
        return "epoch";
    case MB_EV_CORRUPT:
        return "corrupt";
    }
    return "unknown";
}

/* "FILE:OFFSET: what" for a non-record event, into buf */
static void event_text (const struct mb_event *ev, char *buf, size_t len)
{
    const char *file = ev->file ? ev->file : "?";

    switch (ev->type) {
    case MB_EV_GAP:
        snprintf (buf, len, "%s:%" PRIu64 ": gap: expected seq %" PRIu64
                  ", found %" PRIu64 " (%" PRIu64 " missing)",
                  file, ev->offset, ev->expected, ev->rec.seq,
                  ev->rec.seq - ev->expected);
        break;
    case MB_EV_DUPLICATE:
        snprintf (buf, len, "%s:%" PRIu64 ": duplicate record: seq %" PRIu64
                  " epoch %" PRIu64 " was already delivered",
                  file, ev->offset, ev->rec.seq, ev->rec.epoch);
        break;
    case MB_EV_EPOCH:
        snprintf (buf, len, "%s:%" PRIu64 ": new epoch %" PRIu64
                  " (was %" PRIu64 ") at seq %" PRIu64,
                  file, ev->offset, ev->rec.epoch, ev->prev_epoch,
                  ev->rec.seq);
        break;
    case MB_EV_CORRUPT:
        snprintf (buf, len, "%s:%" PRIu64 ": corrupt record: %s", file,
                  ev->offset, ev->reason ? ev->reason : "unknown");
        break;
    default:
        snprintf (buf, len, "%s:%" PRIu64 ": record seq %" PRIu64, file,
                  ev->offset, ev->rec.seq);
        break;
    }
}

/* {"event":"gap","stream":..,"file":..,"offset":..,...} for --events */
static char *event_json (const char *stream, const struct mb_event *ev)
{
    cJSON *o = cJSON_CreateObject ();
    char *s = NULL;

    if (!o)
        return NULL;
    if (!cJSON_AddStringToObject (o, "event", event_name (ev->type))
        || !cJSON_AddStringToObject (o, "stream", stream)
        || !cJSON_AddStringToObject (o, "file", ev->file ? ev->file : "")
        || !cJSON_AddNumberToObject (o, "offset", (double)ev->offset))
        goto done;
    switch (ev->type) {
    case MB_EV_GAP:
        if (!cJSON_AddNumberToObject (o, "expected", (double)ev->expected)
            || !cJSON_AddNumberToObject (o, "seq", (double)ev->rec.seq)
            || !cJSON_AddNumberToObject (o, "epoch", (double)ev->rec.epoch))
            goto done;
        break;
    case MB_EV_DUPLICATE:
        if (!cJSON_AddNumberToObject (o, "seq", (double)ev->rec.seq)
            || !cJSON_AddNumberToObject (o, "epoch", (double)ev->rec.epoch))
            goto done;
        break;
    case MB_EV_EPOCH:
        if (!cJSON_AddNumberToObject (o, "seq", (double)ev->rec.seq)
            || !cJSON_AddNumberToObject (o, "epoch", (double)ev->rec.epoch)
            || !cJSON_AddNumberToObject (o, "prev_epoch",
                                         (double)ev->prev_epoch))
            goto done;
        break;
    case MB_EV_CORRUPT:
        if (!cJSON_AddStringToObject (o, "reason",
                                      ev->reason ? ev->reason : ""))
            goto done;
        break;
    default:
        break;
    }
    s = cJSON_PrintUnformatted (o);
done:
    cJSON_Delete (o);
    return s;
}

/* ---- follow ----------------------------------------------------------- */

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

static int cmd_follow (int argc, char **argv)
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
    /* full buffering; flushed whenever the loop goes idle */
    setvbuf (stdout, NULL, _IOFBF, 1 << 20);

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

/* ---- check ------------------------------------------------------------ */

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

static int cmd_check (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool quiet = false;
    int rc = EXIT_OK;
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
    if (optind >= argc) {
        log_msg ("check: missing STREAM");
        return EXIT_FAILED;
    }
    for (int i = optind; i < argc; i++) {
        int x = check_stream (argv[i], quiet);
        if (x > rc)
            rc = x;
    }
    if (fflush (stdout) != 0) {
        log_err ("writing stdout");
        rc = EXIT_FAILED;
    }
    return rc;
}

/* ---- stat ------------------------------------------------------------- */

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
        free (s);
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

static int cmd_stat (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "mode", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    enum mb_follow_mode mode = MB_FOLLOW_AUTO;
    bool json = false;
    int rc = EXIT_OK;
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
    if (optind >= argc) {
        log_msg ("stat: missing STREAM");
        return EXIT_FAILED;
    }
    for (int i = optind; i < argc; i++) {
        if (!json && i > optind)
            printf ("\n");
        if (stat_stream (argv[i], json, mode) != EXIT_OK)
            rc = EXIT_FAILED;
    }
    if (fflush (stdout) != 0) {
        log_err ("writing stdout");
        rc = EXIT_FAILED;
    }
    return rc;
}

/* ---- main ------------------------------------------------------------- */

int main (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "home", required_argument, NULL, 'H' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *verb;
    int verbose = 0;
    int c;

    log_init ("codeswarm-mailbox");
    while ((c = getopt_long (argc, argv, "+vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'H':
            home_opt = optarg;
            break;
        case 'v':
            log_set_verbose (++verbose);
            break;
        case 'h':
            usage (stdout);
            return EXIT_OK;
        case 'V':
            printf ("codeswarm-mailbox (%s) %s\n", PACKAGE_NAME,
                    PACKAGE_VERSION);
            return EXIT_OK;
        default:
            usage (stderr);
            return EXIT_FAILED;
        }
    }
    if (optind >= argc) {
        usage (stderr);
        return EXIT_FAILED;
    }
    verb = argv[optind];
    argc -= optind;
    argv += optind;
    if (!strcmp (verb, "append"))
        return cmd_append (argc, argv);
    if (!strcmp (verb, "follow"))
        return cmd_follow (argc, argv);
    if (!strcmp (verb, "check"))
        return cmd_check (argc, argv);
    if (!strcmp (verb, "stat"))
        return cmd_stat (argc, argv);
    if (!strcmp (verb, "serve")) {
        optind = 1;
        return mailbox_serve_main (argc, argv);
    }
    if (!strcmp (verb, "help")) {
        usage (stdout);
        return EXIT_OK;
    }
    log_msg ("unknown verb '%s' (try --help)", verb);
    return EXIT_FAILED;
}
