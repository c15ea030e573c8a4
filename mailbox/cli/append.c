/* append.c - "codeswarm-mailbox append": records from arguments or stdin
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailbox/cli/cli.h"

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

int cmd_append (int argc, char **argv)
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
