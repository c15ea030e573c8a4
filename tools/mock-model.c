/* mock-model.c - a loopback mock of the streaming OpenAI Responses API
 *
 * codeswarm-mock-model [--port N] [--port-file F] [--log F] [--delay SECS]
 *                      [--watch-pid PID] [-v]
 *
 * Listens on 127.0.0.1 only (port 0 = any free port) and prints
 * "LISTENING <port>" on stdout once it accepts connections.  It speaks
 * HTTP/1.1 with keep-alive; each connection is served by its own forked
 * process, so a slow stream never holds up another client.
 *
 *   POST /v1/responses, /responses  a Server-Sent Events stream (chunked)
 *   GET  /v1/models, /models        {"object":"list","data":[],"models":[]}
 *   GET  /health                    "ok"
 *   anything else                   404 with a JSON error
 *
 * Request bodies may be sent with Content-Length or chunked, and may be
 * compressed with Content-Encoding gzip or deflate; any other encoding is
 * answered with 415.
 *
 * The reply depends on the last real user message of the request's
 * "input" (user messages whose text starts with '<' or "# " are context
 * that codex injects, not user turns):
 *
 *   after a tool output   "Tool finished. Output: <output>"
 *   RUN: cmd              a function call of the shell tool codex offered
 *   ESCALATE: cmd         the same, asking for sandbox escalation
 *   SLOW: n               n words, one every 0.5 s
 *   FAIL: code            HTTP <code> with a JSON error body
 *   TURNS?                "[turn N] I see N user turns"
 *   anything else         "[turn N] You said: <message>"
 *
 * N is the number of real user messages in the request.  Usage in
 * response.completed: input_tokens = 100 + 10 * (number of input items),
 * output_tokens = words in the reply (10 for a function call).
 *
 * Every request is appended to the --log file as one JSON line.
 * SIGTERM or SIGINT (or the exit of --watch-pid) stops the server and the
 * connections it is serving.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "common/atomicfile.h"
#include "common/lineio.h"
#include "common/log.h"

#define MOCK_MAX_HEADER (64 * 1024)
#define MOCK_MAX_BODY (64 * 1024 * 1024)
#define MOCK_MAX_CHILDREN 1024
#define MOCK_MAX_SLOW_WORDS 10000
#define MOCK_TOOL_OUTPUT_MAX 200
#define MOCK_SLOW_INTERVAL_US 500000

struct conn {
    int fd;
    char *buf;
    size_t len;
    size_t cap;
};

struct request {
    char method[16];
    char path[2048];
    cJSON *headers; /* lower-case name -> value (authorization left out) */
    char *authorization;
    char *body;
    size_t body_len;
    bool keep_alive;
};

enum reply_kind {
    REPLY_TEXT,
    REPLY_SLOW,
    REPLY_CALL,
    REPLY_FAIL,
};

struct reply {
    enum reply_kind kind;
    int status;
    char *text;      /* REPLY_TEXT, REPLY_SLOW: the full text */
    int slow_words;  /* REPLY_SLOW */
    char *tool;      /* REPLY_CALL: tool name */
    char *arguments; /* REPLY_CALL: JSON arguments */
    int input_items;
};

static int log_fd = -1;
static double event_delay;
static int sig_pipe[2] = {-1, -1};
static pid_t children[MOCK_MAX_CHILDREN];
static int nchildren;
static unsigned long response_counter;

static const char *usage_text =
    "Usage: codeswarm-mock-model [--port N] [--port-file FILE] [--log FILE]\n"
    "                            [--delay SECS] [--watch-pid PID] [-v]\n";

static double now_seconds (void)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

static void sleep_us (long us)
{
    struct timespec ts = {.tv_sec = us / 1000000,
                          .tv_nsec = (us % 1000000) * 1000};
    while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Duplicate [s, s+n) as a NUL-terminated string; free with free().
 */
static char *xstrndup (const char *s, size_t n)
{
    char *p = malloc (n + 1);
    if (!p)
        log_msg_exit ("out of memory");
    memcpy (p, s, n);
    p[n] = '\0';
    return p;
}

/* asprintf that exits on failure; free the result with free().
 */
static char *xasprintf (const char *fmt, ...)
    __attribute__ ((format (printf, 1, 2)));
static char *xasprintf (const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start (ap, fmt);
    if (vasprintf (&s, fmt, ap) < 0)
        log_msg_exit ("out of memory");
    va_end (ap);
    return s;
}

static const char *status_reason (int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Mock Status";
    }
}

/* ---- connection input ---------------------------------------------------- */

/* Read more bytes into c->buf.  Returns the number read, 0 on EOF, -1 on
 * error.
 */
static ssize_t conn_fill (struct conn *c)
{
    ssize_t n;

    if (c->cap - c->len < 16384) {
        size_t cap = c->cap ? c->cap * 2 : 65536;
        char *p = realloc (c->buf, cap);
        if (!p)
            log_msg_exit ("out of memory");
        c->buf = p;
        c->cap = cap;
    }
    do {
        n = read (c->fd, c->buf + c->len, c->cap - c->len - 1);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
    }
    return n;
}

static void conn_consume (struct conn *c, size_t n)
{
    memmove (c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Make sure at least n bytes are buffered.  Returns 0, or -1 on EOF/error.
 */
static int conn_need (struct conn *c, size_t n)
{
    while (c->len < n) {
        if (conn_fill (c) <= 0)
            return -1;
    }
    return 0;
}

/* Read a CRLF-terminated line (used for chunk sizes); the line (without
 * CRLF) is copied to out.  Returns 0 or -1.
 */
static int conn_line (struct conn *c, char *out, size_t outsz)
{
    char *eol;

    while (c->len == 0 || !(eol = memmem (c->buf, c->len, "\r\n", 2))) {
        if (c->len > 4096 || conn_fill (c) <= 0)
            return -1;
    }
    size_t n = (size_t)(eol - c->buf);
    if (n >= outsz)
        return -1;
    memcpy (out, c->buf, n);
    out[n] = '\0';
    conn_consume (c, n + 2);
    return 0;
}

static void request_release (struct request *req)
{
    cJSON_Delete (req->headers);
    free (req->authorization);
    free (req->body);
    memset (req, 0, sizeof (*req));
}

static const char *request_header (struct request *req, const char *name)
{
    cJSON *h = cJSON_GetObjectItemCaseSensitive (req->headers, name);
    return cJSON_IsString (h) ? h->valuestring : NULL;
}

static char *trim (char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen (s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

static bool token_in_list (const char *list, const char *token)
{
    size_t n = strlen (token);
    const char *p = list;

    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (strncasecmp (p, token, n) == 0 &&
            (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == ';'))
            return true;
        p = strchr (p, ',');
    }
    return false;
}

/* Read a chunked body into req->body.  Returns 0, -1 (connection gone) or
 * an HTTP status.
 */
static int read_chunked_body (struct conn *c, struct request *req)
{
    char line[256];
    size_t total = 0;
    char *body = NULL;

    for (;;) {
        char *end;
        unsigned long size;

        if (conn_line (c, line, sizeof (line)) < 0)
            goto error;
        errno = 0;
        size = strtoul (line, &end, 16);
        if (errno || end == line || (*end && *end != ';'))
            goto bad;
        if (size == 0)
            break;
        if (size > MOCK_MAX_BODY || total + size > MOCK_MAX_BODY) {
            free (body);
            return 413;
        }
        if (conn_need (c, size + 2) < 0)
            goto error;
        char *p = realloc (body, total + size + 1);
        if (!p)
            log_msg_exit ("out of memory");
        body = p;
        memcpy (body + total, c->buf, size);
        total += size;
        body[total] = '\0';
        if (memcmp (c->buf + size, "\r\n", 2) != 0)
            goto bad;
        conn_consume (c, size + 2);
    }
    /* trailers, up to the empty line */
    do {
        if (conn_line (c, line, sizeof (line)) < 0)
            goto error;
    } while (line[0] != '\0');
    req->body = body ? body : xstrndup ("", 0);
    req->body_len = total;
    return 0;
bad:
    free (body);
    return 400;
error:
    free (body);
    return -1;
}

/* Read one request.  Returns 0, -1 when the connection is closed or broken,
 * or an HTTP status to answer before closing the connection.
 */
static int read_request (struct conn *c, struct request *req)
{
    char *end, *line, *next;
    size_t head_len;
    const char *v;

    memset (req, 0, sizeof (*req));
    while (c->len == 0 || !(end = memmem (c->buf, c->len, "\r\n\r\n", 4))) {
        if (c->len > MOCK_MAX_HEADER)
            return 431;
        if (conn_fill (c) <= 0)
            return -1;
    }
    head_len = (size_t)(end - c->buf) + 4;
    *end = '\0';

    /* request line */
    line = c->buf;
    next = strstr (line, "\r\n");
    if (next) {
        *next = '\0';
        next += 2;
    }
    char version[16];
    if (sscanf (line, "%15s %2047s %15s", req->method, req->path, version) != 3)
        return 400;
    if (strncmp (version, "HTTP/1.", 7) != 0)
        return 400;
    req->keep_alive = strcmp (version, "HTTP/1.0") != 0;

    /* header fields */
    if (!(req->headers = cJSON_CreateObject ()))
        log_msg_exit ("out of memory");
    while (next && *next) {
        line = next;
        next = strstr (line, "\r\n");
        if (next) {
            *next = '\0';
            next += 2;
        }
        char *colon = strchr (line, ':');
        if (!colon)
            return 400;
        *colon = '\0';
        for (char *p = line; *p; p++)
            *p = (char)tolower ((unsigned char)*p);
        char *value = trim (colon + 1);
        if (strcmp (line, "authorization") == 0) {
            free (req->authorization);
            req->authorization = xstrndup (value, strlen (value));
            continue;
        }
        cJSON_DeleteItemFromObjectCaseSensitive (req->headers, line);
        if (!cJSON_AddStringToObject (req->headers, line, value))
            log_msg_exit ("out of memory");
    }
    conn_consume (c, head_len);

    if ((v = request_header (req, "connection"))) {
        if (token_in_list (v, "close"))
            req->keep_alive = false;
        else if (token_in_list (v, "keep-alive"))
            req->keep_alive = true;
    }
    if ((v = request_header (req, "expect")) &&
        strcasecmp (v, "100-continue") == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (fd_write_all (c->fd, cont, sizeof (cont) - 1) < 0)
            return -1;
    }

    /* body */
    if ((v = request_header (req, "transfer-encoding"))) {
        if (!token_in_list (v, "chunked"))
            return 501;
        return read_chunked_body (c, req);
    }
    size_t length = 0;
    if ((v = request_header (req, "content-length"))) {
        char *e;
        errno = 0;
        unsigned long long n = strtoull (v, &e, 10);
        if (errno || e == v || *e)
            return 400;
        if (n > MOCK_MAX_BODY)
            return 413;
        length = (size_t)n;
    }
    if (conn_need (c, length) < 0)
        return -1;
    req->body = xstrndup (c->buf, length);
    req->body_len = length;
    conn_consume (c, length);
    return 0;
}

/* Inflate a gzip or zlib (or raw deflate) body in place.  Returns 0 or -1.
 */
static int inflate_body (struct request *req)
{
    static const int window_bits[] = {15 + 32, -15}; /* auto gzip/zlib, raw */

    for (size_t i = 0; i < sizeof (window_bits) / sizeof (window_bits[0]);
         i++) {
        z_stream zs;
        size_t cap = req->body_len * 4 + 4096;
        size_t len = 0;
        char *out = NULL;
        int rc;

        memset (&zs, 0, sizeof (zs));
        if (inflateInit2 (&zs, window_bits[i]) != Z_OK)
            return -1;
        zs.next_in = (Bytef *)req->body;
        zs.avail_in = (uInt)req->body_len;
        do {
            if (cap - len < 4096 || !out) {
                cap *= 2;
                if (cap > MOCK_MAX_BODY * 2) {
                    rc = Z_MEM_ERROR;
                    break;
                }
                char *p = realloc (out, cap + 1);
                if (!p)
                    log_msg_exit ("out of memory");
                out = p;
            }
            zs.next_out = (Bytef *)out + len;
            zs.avail_out = (uInt)(cap - len);
            rc = inflate (&zs, Z_NO_FLUSH);
            len = cap - zs.avail_out;
        } while (rc == Z_OK);
        inflateEnd (&zs);
        if (rc == Z_STREAM_END) {
            out[len] = '\0';
            free (req->body);
            req->body = out;
            req->body_len = len;
            return 0;
        }
        free (out);
    }
    return -1;
}

/* ---- responses ----------------------------------------------------------- */

static int send_response (struct conn *c, int status, const char *content_type,
                          const char *body, bool keep_alive)
{
    char *msg =
        xasprintf ("HTTP/1.1 %d %s\r\n"
                   "Content-Type: %s\r\n"
                   "Content-Length: %zu\r\n"
                   "Connection: %s\r\n"
                   "\r\n"
                   "%s",
                   status, status_reason (status), content_type, strlen (body),
                   keep_alive ? "keep-alive" : "close", body);
    int rc = fd_write_all (c->fd, msg, strlen (msg));
    free (msg);
    return rc;
}

static int send_json (struct conn *c, int status, cJSON *obj, bool keep_alive)
{
    char *s = cJSON_PrintUnformatted (obj);
    if (!s)
        log_msg_exit ("out of memory");
    int rc = send_response (c, status, "application/json", s, keep_alive);
    free (s);
    return rc;
}

/* {"error":{"message":..., "type":..., "code":...}} */
static int send_error (struct conn *c, int status, const char *type,
                       const char *message, bool keep_alive)
{
    cJSON *o = cJSON_CreateObject ();
    cJSON *e = cJSON_AddObjectToObject (o, "error");
    char *code = xasprintf ("mock_%d", status);
    int rc;

    if (!e || !cJSON_AddStringToObject (e, "message", message) ||
        !cJSON_AddStringToObject (e, "type", type) ||
        !cJSON_AddStringToObject (e, "code", code))
        log_msg_exit ("out of memory");
    rc = send_json (c, status, o, keep_alive);
    cJSON_Delete (o);
    free (code);
    return rc;
}

static int send_chunk (struct conn *c, const char *data, size_t len)
{
    char head[32];
    int n = snprintf (head, sizeof (head), "%zx\r\n", len);

    if (fd_write_all (c->fd, head, (size_t)n) < 0 ||
        fd_write_all (c->fd, data, len) < 0 || fd_write_all (c->fd, "\r\n", 2) < 0)
        return -1;
    return 0;
}

/* Send one SSE event (event: <type>, data: <json>) as one chunk; takes
 * ownership of ev.
 */
static int send_event (struct conn *c, cJSON *ev)
{
    cJSON *type = cJSON_GetObjectItemCaseSensitive (ev, "type");
    char *data = cJSON_PrintUnformatted (ev);
    char *frame;
    int rc;

    if (!data || !cJSON_IsString (type))
        log_msg_exit ("out of memory");
    frame = xasprintf ("event: %s\ndata: %s\n\n", type->valuestring, data);
    rc = send_chunk (c, frame, strlen (frame));
    free (frame);
    free (data);
    cJSON_Delete (ev);
    if (rc == 0 && event_delay > 0)
        sleep_us ((long)(event_delay * 1e6));
    return rc;
}

static cJSON *new_event (const char *type)
{
    cJSON *ev = cJSON_CreateObject ();
    if (!ev || !cJSON_AddStringToObject (ev, "type", type))
        log_msg_exit ("out of memory");
    return ev;
}

static void add_string (cJSON *o, const char *name, const char *value)
{
    if (!cJSON_AddStringToObject (o, name, value))
        log_msg_exit ("out of memory");
}

static void add_number (cJSON *o, const char *name, double value)
{
    if (!cJSON_AddNumberToObject (o, name, value))
        log_msg_exit ("out of memory");
}

static cJSON *add_object (cJSON *o, const char *name)
{
    cJSON *x = cJSON_AddObjectToObject (o, name);
    if (!x)
        log_msg_exit ("out of memory");
    return x;
}

static int count_words (const char *s)
{
    int n = 0;
    bool in_word = false;

    for (; *s; s++) {
        if (isspace ((unsigned char)*s))
            in_word = false;
        else if (!in_word) {
            in_word = true;
            n++;
        }
    }
    return n;
}

static cJSON *message_item (const char *id, const char *status,
                            const char *text)
{
    cJSON *item = cJSON_CreateObject ();
    cJSON *content;

    if (!item)
        log_msg_exit ("out of memory");
    add_string (item, "type", "message");
    add_string (item, "id", id);
    add_string (item, "role", "assistant");
    add_string (item, "status", status);
    if (!(content = cJSON_AddArrayToObject (item, "content")))
        log_msg_exit ("out of memory");
    if (text) {
        cJSON *part = cJSON_CreateObject ();
        if (!part || !cJSON_AddItemToArray (content, part))
            log_msg_exit ("out of memory");
        add_string (part, "type", "output_text");
        add_string (part, "text", text);
        if (!cJSON_AddArrayToObject (part, "annotations"))
            log_msg_exit ("out of memory");
    }
    return item;
}

static int stream_text (struct conn *c, const char *rid, struct reply *r)
{
    char *mid = xasprintf ("msg_%s", rid);
    cJSON *ev;
    const char *p = r->text;
    int rc = -1;

    ev = new_event ("response.output_item.added");
    add_number (ev, "output_index", 0);
    cJSON_AddItemToObject (ev, "item", message_item (mid, "in_progress", NULL));
    if (send_event (c, ev) < 0)
        goto done;
    /* one delta per word, the separating space kept with the word before */
    while (*p) {
        const char *sp = strchr (p, ' ');
        size_t n = sp ? (size_t)(sp - p) + 1 : strlen (p);
        char *piece = xstrndup (p, n);

        ev = new_event ("response.output_text.delta");
        add_string (ev, "item_id", mid);
        add_number (ev, "output_index", 0);
        add_number (ev, "content_index", 0);
        add_string (ev, "delta", piece);
        free (piece);
        if (send_event (c, ev) < 0)
            goto done;
        if (r->kind == REPLY_SLOW)
            sleep_us (MOCK_SLOW_INTERVAL_US);
        p += n;
    }
    ev = new_event ("response.output_item.done");
    add_number (ev, "output_index", 0);
    cJSON_AddItemToObject (ev, "item",
                           message_item (mid, "completed", r->text));
    rc = send_event (c, ev);
done:
    free (mid);
    return rc;
}

static cJSON *call_item (const char *rid, struct reply *r, bool done)
{
    cJSON *item = cJSON_CreateObject ();
    char *id = xasprintf ("fc_%s", rid);
    char *call_id = xasprintf ("call_%s", rid);

    if (!item)
        log_msg_exit ("out of memory");
    add_string (item, "type", "function_call");
    add_string (item, "id", id);
    add_string (item, "call_id", call_id);
    add_string (item, "name", r->tool);
    add_string (item, "arguments", done ? r->arguments : "");
    add_string (item, "status", done ? "completed" : "in_progress");
    free (id);
    free (call_id);
    return item;
}

static int stream_reply (struct conn *c, struct reply *r)
{
    static const char head[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\n"
                               "Transfer-Encoding: chunked\r\n"
                               "\r\n";
    char *rid =
        xasprintf ("resp_mock_%ld_%lu", (long)getpid (), ++response_counter);
    int in_tokens = 100 + 10 * r->input_items;
    int out_tokens;
    cJSON *ev, *resp, *usage;
    int rc = -1;

    if (fd_write_all (c->fd, head, sizeof (head) - 1) < 0)
        goto done;
    ev = new_event ("response.created");
    resp = add_object (ev, "response");
    add_string (resp, "id", rid);
    add_string (resp, "status", "in_progress");
    if (send_event (c, ev) < 0)
        goto done;

    if (r->kind == REPLY_CALL) {
        ev = new_event ("response.output_item.added");
        add_number (ev, "output_index", 0);
        cJSON_AddItemToObject (ev, "item", call_item (rid, r, false));
        if (send_event (c, ev) < 0)
            goto done;
        ev = new_event ("response.output_item.done");
        add_number (ev, "output_index", 0);
        cJSON_AddItemToObject (ev, "item", call_item (rid, r, true));
        if (send_event (c, ev) < 0)
            goto done;
        out_tokens = 10;
    } else {
        if (stream_text (c, rid, r) < 0)
            goto done;
        out_tokens = count_words (r->text);
    }

    ev = new_event ("response.completed");
    resp = add_object (ev, "response");
    add_string (resp, "id", rid);
    add_string (resp, "status", "completed");
    usage = add_object (resp, "usage");
    add_number (usage, "input_tokens", in_tokens);
    add_number (add_object (usage, "input_tokens_details"), "cached_tokens", 0);
    add_number (usage, "output_tokens", out_tokens);
    add_number (add_object (usage, "output_tokens_details"), "reasoning_tokens",
                0);
    add_number (usage, "total_tokens", in_tokens + out_tokens);
    if (send_event (c, ev) < 0)
        goto done;
    rc = fd_write_all (c->fd, "0\r\n\r\n", 5);
done:
    free (rid);
    return rc;
}

/* ---- deciding the reply -------------------------------------------------- */

/* The text of a message item: a string, or the concatenated "text" members
 * of its content parts.  Free with free().
 */
static char *item_text (cJSON *item)
{
    cJSON *content = cJSON_GetObjectItemCaseSensitive (item, "content");
    cJSON *part;
    size_t len = 0;
    char *s;

    if (cJSON_IsString (content))
        return xstrndup (content->valuestring, strlen (content->valuestring));
    s = xstrndup ("", 0);
    cJSON_ArrayForEach (part, content)
    {
        cJSON *t = cJSON_GetObjectItemCaseSensitive (part, "text");
        if (cJSON_IsString (t)) {
            size_t n = strlen (t->valuestring);
            char *p = realloc (s, len + n + 1);
            if (!p)
                log_msg_exit ("out of memory");
            s = p;
            memcpy (s + len, t->valuestring, n + 1);
            len += n;
        }
    }
    return s;
}

/* A user turn, as opposed to context codex injects as user messages
 * (environment, AGENTS.md, instructions), which starts with '<' or "# ".
 */
static bool is_real_user_message (cJSON *item)
{
    cJSON *type = cJSON_GetObjectItemCaseSensitive (item, "type");
    cJSON *role = cJSON_GetObjectItemCaseSensitive (item, "role");
    bool real;
    char *text, *t;

    if (type &&
        !(cJSON_IsString (type) && strcmp (type->valuestring, "message") == 0))
        return false;
    if (!cJSON_IsString (role) || strcmp (role->valuestring, "user") != 0)
        return false;
    text = item_text (item);
    t = text;
    while (isspace ((unsigned char)*t))
        t++;
    real = *t != '\0' && *t != '<' && strncmp (t, "# ", 2) != 0;
    free (text);
    return real;
}

static bool offers_tool (cJSON *body, const char *name)
{
    cJSON *tool;

    cJSON_ArrayForEach (tool, cJSON_GetObjectItemCaseSensitive (body, "tools"))
    {
        cJSON *n = cJSON_GetObjectItemCaseSensitive (tool, "name");
        if (!cJSON_IsString (n)) {
            cJSON *f = cJSON_GetObjectItemCaseSensitive (tool, "function");
            n = cJSON_GetObjectItemCaseSensitive (f, "name");
        }
        if (cJSON_IsString (n) && strcmp (n->valuestring, name) == 0)
            return true;
    }
    return false;
}

/* A function call of whichever shell tool the request offers.
 */
static void make_shell_call (cJSON *body, const char *cmd, bool escalate,
                             struct reply *r)
{
    cJSON *args = cJSON_CreateObject ();

    if (!args)
        log_msg_exit ("out of memory");
    if (offers_tool (body, "exec_command")) {
        r->tool = xasprintf ("exec_command");
        add_string (args, "cmd", cmd);
        /* login:false keeps the user's shell profile out of the output */
        cJSON_AddBoolToObject (args, "login", 0);
        add_number (args, "yield_time_ms", 10000);
    } else if (offers_tool (body, "shell_command")) {
        r->tool = xasprintf ("shell_command");
        add_string (args, "command", cmd);
        cJSON_AddBoolToObject (args, "login", 0);
        add_number (args, "timeout_ms", 10000);
    } else {
        const char *argv[] = {"bash", "-lc", cmd};
        cJSON *a = cJSON_CreateStringArray (argv, 3);
        r->tool = xasprintf ("shell");
        if (!a || !cJSON_AddItemToObject (args, "command", a))
            log_msg_exit ("out of memory");
        add_number (args, "timeout_ms", 10000);
    }
    if (escalate) {
        char *why = xasprintf ("mock model asks to run: %s", cmd);
        add_string (args, "sandbox_permissions", "require_escalated");
        add_string (args, "justification", why);
        free (why);
    }
    if (!(r->arguments = cJSON_PrintUnformatted (args)))
        log_msg_exit ("out of memory");
    cJSON_Delete (args);
    r->kind = REPLY_CALL;
}

/* "MARKER: arg" -> arg (trimmed), or NULL when msg has another prefix.
 */
static const char *marker_arg (const char *msg, const char *marker)
{
    size_t n = strlen (marker);

    if (strncmp (msg, marker, n) != 0)
        return NULL;
    msg += n;
    while (isspace ((unsigned char)*msg))
        msg++;
    return msg;
}

static bool all_digits (const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!isdigit ((unsigned char)*s))
            return false;
    }
    return true;
}

/* The output of a tool call, without the header codex puts in front of a
 * command's output ("Chunk ID: ..\nWall time: ..\n...Output:\n"), cut to
 * MOCK_TOOL_OUTPUT_MAX bytes on a UTF-8 character boundary.
 */
static char *tool_output (cJSON *item)
{
    cJSON *out = cJSON_GetObjectItemCaseSensitive (item, "output");
    char *s, *p;
    size_t n;

    if (cJSON_IsString (out))
        s = xstrndup (out->valuestring, strlen (out->valuestring));
    else if (!(s = cJSON_PrintUnformatted (out)))
        s = xstrndup ("", 0);
    p = strstr (s, "\nOutput:\n");
    p = p ? p + 9 : s;
    n = strlen (p);
    if (n > MOCK_TOOL_OUTPUT_MAX) {
        n = MOCK_TOOL_OUTPUT_MAX;
        while (n > 0 && ((unsigned char)p[n] & 0xc0) == 0x80)
            n--;
    }
    p = xstrndup (p, n);
    free (s);
    return p;
}

static void reply_release (struct reply *r)
{
    free (r->text);
    free (r->tool);
    free (r->arguments);
}

static void decide_reply (cJSON *body, struct reply *r)
{
    cJSON *input = cJSON_GetObjectItemCaseSensitive (body, "input");
    cJSON *item, *last = NULL;
    char *msg = NULL;
    int users = 0;
    const char *arg;

    memset (r, 0, sizeof (*r));
    r->kind = REPLY_TEXT;
    r->status = 200;
    if (cJSON_IsString (input)) {
        msg = xstrndup (input->valuestring, strlen (input->valuestring));
        users = 1;
        r->input_items = 1;
    } else {
        cJSON_ArrayForEach (item, input)
        {
            r->input_items++;
            last = item;
            if (is_real_user_message (item)) {
                users++;
                free (msg);
                msg = item_text (item);
            }
        }
    }
    if (!msg)
        msg = xstrndup ("", 0);
    /* trim */
    char *m = msg;
    while (isspace ((unsigned char)*m))
        m++;
    size_t mlen = strlen (m);
    while (mlen > 0 && isspace ((unsigned char)m[mlen - 1]))
        m[--mlen] = '\0';

    cJSON *last_type = cJSON_GetObjectItemCaseSensitive (last, "type");
    size_t tl =
        cJSON_IsString (last_type) ? strlen (last_type->valuestring) : 0;
    if (tl >= 11 &&
        strcmp (last_type->valuestring + tl - 11, "call_output") == 0) {
        char *out = tool_output (last);
        r->text = xasprintf ("Tool finished. Output: %s", out);
        free (out);
    } else if ((arg = marker_arg (m, "FAIL:"))) {
        int code = all_digits (arg) && strlen (arg) == 3 ? atoi (arg) : 500;
        r->kind = REPLY_FAIL;
        r->status = code >= 200 && code <= 599 ? code : 500;
    } else if ((arg = marker_arg (m, "RUN:")))
        make_shell_call (body, arg, false, r);
    else if ((arg = marker_arg (m, "ESCALATE:")))
        make_shell_call (body, arg, true, r);
    else if ((arg = marker_arg (m, "SLOW:"))) {
        int n = all_digits (arg) && strlen (arg) < 6 ? atoi (arg) : 60;
        size_t len = 0;
        if (n > MOCK_MAX_SLOW_WORDS)
            n = MOCK_MAX_SLOW_WORDS;
        if (n < 1)
            n = 1;
        r->kind = REPLY_SLOW;
        r->slow_words = n;
        r->text = malloc ((size_t)n * 8 + 1);
        if (!r->text)
            log_msg_exit ("out of memory");
        for (int i = 0; i < n; i++)
            len += (size_t)sprintf (r->text + len, i ? " w%d" : "w%d", i);
    } else if (strcmp (m, "TURNS?") == 0)
        r->text = xasprintf ("[turn %d] I see %d user turns", users, users);
    else
        r->text = xasprintf ("[turn %d] You said: %s", users, m);
    free (msg);
}

/* ---- the request log ----------------------------------------------------- */

static void log_request (struct request *req, cJSON *body, const char *error,
                         int status, struct reply *r)
{
    cJSON *o;
    char *s;

    if (log_fd < 0)
        return;
    if (!(o = cJSON_CreateObject ()))
        log_msg_exit ("out of memory");
    add_number (o, "t", now_seconds ());
    add_number (o, "pid", getpid ());
    add_string (o, "method", req->method);
    add_string (o, "path", req->path);
    if (req->headers)
        cJSON_AddItemReferenceToObject (o, "headers", req->headers);
    if (req->authorization)
        add_string (o, "authorization", req->authorization);
    else
        cJSON_AddNullToObject (o, "authorization");
    if (body)
        cJSON_AddItemReferenceToObject (o, "body", body);
    if (error)
        add_string (o, "error", error);
    add_number (o, "status", status);
    if (r) {
        static const char *kinds[] = {"text", "slow", "call", "fail"};
        cJSON *x = add_object (o, "reply");
        add_string (x, "kind", kinds[r->kind]);
        if (r->text)
            add_string (x, "text", r->text);
        if (r->tool) {
            add_string (x, "tool", r->tool);
            add_string (x, "arguments", r->arguments);
        }
        add_number (x, "input_items", r->input_items);
    }
    if (!(s = cJSON_PrintUnformatted (o)))
        log_msg_exit ("out of memory");
    size_t n = strlen (s);
    s[n] = '\n'; /* replaces the NUL: write the line in one write(2) */
    if (fd_write_all (log_fd, s, n + 1) < 0)
        log_err ("cannot write the request log");
    free (s);
    cJSON_Delete (o);
}

/* ---- serving a connection ------------------------------------------------ */

static bool path_is (const char *path, const char *suffix)
{
    size_t n = strcspn (path, "?");
    size_t sn = strlen (suffix);
    return n == sn && strncmp (path, suffix, n) == 0;
}

/* Serve one request.  Returns 0 to go on with the connection, -1 to close.
 */
static int serve_request (struct conn *c, struct request *req)
{
    bool ka = req->keep_alive;
    cJSON *body = NULL;
    struct reply r;
    const char *enc;
    const char *end;
    int rc;

    if (strcmp (req->method, "GET") == 0) {
        if (path_is (req->path, "/v1/models") ||
            path_is (req->path, "/models")) {
            log_request (req, NULL, NULL, 200, NULL);
            return send_response (c, 200, "application/json",
                                  "{\"object\":\"list\",\"data\":[],"
                                  "\"models\":[]}",
                                  ka);
        }
        if (path_is (req->path, "/health")) {
            log_request (req, NULL, NULL, 200, NULL);
            return send_response (c, 200, "application/json", "\"ok\"", ka);
        }
        log_request (req, NULL, "not found", 404, NULL);
        return send_error (c, 404, "not_found", "no such endpoint", ka);
    }
    if (strcmp (req->method, "POST") != 0) {
        log_request (req, NULL, "method not allowed", 405, NULL);
        return send_error (c, 405, "invalid_request", "method not allowed", ka);
    }
    if ((enc = request_header (req, "content-encoding")) &&
        strcasecmp (enc, "identity") != 0) {
        if (strcasecmp (enc, "gzip") != 0 && strcasecmp (enc, "x-gzip") != 0 &&
            strcasecmp (enc, "deflate") != 0) {
            log_request (req, NULL, "unsupported content-encoding", 415, NULL);
            return send_error (c, 415, "invalid_request",
                               "unsupported content-encoding", ka);
        }
        if (inflate_body (req) < 0) {
            log_request (req, NULL, "cannot decompress the body", 400, NULL);
            return send_error (c, 400, "invalid_request",
                               "cannot decompress the body", ka);
        }
    }
    if (!(body =
              cJSON_ParseWithLengthOpts (req->body, req->body_len, &end, 0)) ||
        !cJSON_IsObject (body)) {
        cJSON_Delete (body);
        log_request (req, NULL, "body is not a JSON object", 400, NULL);
        return send_error (c, 400, "invalid_request",
                           "body is not a JSON object", ka);
    }
    if (!path_is (req->path, "/v1/responses") &&
        !path_is (req->path, "/responses")) {
        log_request (req, body, "not found", 404, NULL);
        cJSON_Delete (body);
        return send_error (c, 404, "not_found", "no such endpoint", ka);
    }
    decide_reply (body, &r);
    log_request (req, body, NULL, r.status, &r);
    if (r.kind == REPLY_FAIL) {
        char *msg = xasprintf ("mock failure %d", r.status);
        rc = send_error (c, r.status, "mock_error", msg, ka);
        free (msg);
    } else {
        rc = stream_reply (c, &r);
        if (rc == 0)
            log_debug ("answered %s with a %s", req->path,
                       r.kind == REPLY_CALL ? "function call" : "message");
    }
    reply_release (&r);
    cJSON_Delete (body);
    return rc;
}

static void serve_connection (int fd)
{
    struct conn c = {.fd = fd};
    struct request req;

    for (;;) {
        int rc = read_request (&c, &req);
        if (rc > 0) {
            log_request (&req, NULL, "bad request", rc, NULL);
            (void)send_error (&c, rc, "invalid_request", "bad request", false);
            request_release (&req);
            break;
        }
        if (rc < 0) {
            request_release (&req);
            break;
        }
        bool ka = req.keep_alive;
        rc = serve_request (&c, &req);
        request_release (&req);
        if (rc < 0 || !ka)
            break;
    }
    free (c.buf);
}

/* ---- the listening process ----------------------------------------------- */

static void sig_handler (int signum)
{
    int saved = errno;
    unsigned char b = (unsigned char)signum;
    if (write (sig_pipe[1], &b, 1) < 0) {
        /* the pipe is full: a wakeup is pending anyway */
    }
    errno = saved;
}

static void setup_signals (void)
{
    struct sigaction sa;

    if (pipe2 (sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        log_err_exit ("pipe2");
    memset (&sa, 0, sizeof (sa));
    sa.sa_handler = sig_handler;
    sigemptyset (&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGCHLD, &sa, NULL);
    signal (SIGPIPE, SIG_IGN);
}

static void reap_children (void)
{
    pid_t pid;

    while ((pid = waitpid (-1, NULL, WNOHANG)) > 0) {
        for (int i = 0; i < nchildren; i++) {
            if (children[i] == pid) {
                children[i] = children[--nchildren];
                break;
            }
        }
    }
}

static void stop_children (void)
{
    for (int i = 0; i < nchildren; i++)
        kill (children[i], SIGTERM);
    while (nchildren > 0) {
        pid_t pid = waitpid (-1, NULL, 0);
        if (pid < 0 && errno != EINTR)
            break;
        reap_children ();
        for (int i = 0; pid > 0 && i < nchildren; i++) {
            if (children[i] == pid)
                children[i] = children[--nchildren];
        }
    }
}

static void write_port_file (const char *path, int port)
{
    char buf[32];
    int n = snprintf (buf, sizeof (buf), "%d\n", port);
    cs_error_t e;

    if (atomic_file_write (path, buf, (size_t)n, 0, &e) < 0)
        log_msg_exit ("%s", e.text);
}

static int listen_loopback (int port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof (sin);
    int one = 1;
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        log_err_exit ("socket");
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof (one));
    memset (&sin, 0, sizeof (sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons ((uint16_t)port);
    sin.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (bind (fd, (struct sockaddr *)&sin, sizeof (sin)) < 0)
        log_err_exit ("cannot bind 127.0.0.1:%d", port);
    if (listen (fd, 128) < 0)
        log_err_exit ("listen");
    if (getsockname (fd, (struct sockaddr *)&sin, &len) < 0)
        log_err_exit ("getsockname");
    return fd;
}

static void child_main (int listen_fd, int fd)
{
    signal (SIGTERM, SIG_DFL);
    signal (SIGINT, SIG_DFL);
    signal (SIGCHLD, SIG_DFL);
    close (listen_fd);
    close (sig_pipe[0]);
    close (sig_pipe[1]);
    serve_connection (fd);
    close (fd);
    if (log_fd >= 0)
        close (log_fd);
    exit (0);
}

static int parse_port (const char *s)
{
    char *end;
    long n = strtol (s, &end, 10);
    if (end == s || *end || n < 0 || n > 65535)
        log_msg_exit ("invalid port '%s'", s);
    return (int)n;
}

int main (int argc, char *argv[])
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"port-file", required_argument, NULL, 'P'},
        {"log", required_argument, NULL, 'l'},
        {"delay", required_argument, NULL, 'd'},
        {"watch-pid", required_argument, NULL, 'w'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *port_file = NULL;
    const char *log_file = NULL;
    pid_t watch_pid = 0;
    int port = 0;
    int verbose = 0;
    int listen_fd;
    struct sockaddr_in sin;
    socklen_t slen = sizeof (sin);
    bool done = false;
    int opt;

    log_init ("codeswarm-mock-model");
    while ((opt = getopt_long (argc, argv, "p:P:l:d:w:vh", longopts, NULL)) !=
           -1) {
        switch (opt) {
        case 'p':
            port = parse_port (optarg);
            break;
        case 'P':
            port_file = optarg;
            break;
        case 'l':
            log_file = optarg;
            break;
        case 'd': {
            char *end;
            event_delay = strtod (optarg, &end);
            if (end == optarg || *end || event_delay < 0 || event_delay > 60)
                log_msg_exit ("invalid delay '%s'", optarg);
            break;
        }
        case 'w': {
            char *end;
            long n = strtol (optarg, &end, 10);
            if (end == optarg || *end || n <= 0)
                log_msg_exit ("invalid pid '%s'", optarg);
            watch_pid = (pid_t)n;
            break;
        }
        case 'v':
            verbose++;
            break;
        case 'h':
            fputs (usage_text, stdout);
            exit (0);
        default:
            fputs (usage_text, stderr);
            exit (1);
        }
    }
    if (optind < argc) {
        fputs (usage_text, stderr);
        exit (1);
    }
    log_set_verbose (verbose);
    if (log_file &&
        (log_fd = open (log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                        0600)) < 0)
        log_err_exit ("cannot open '%s'", log_file);

    setup_signals ();
    listen_fd = listen_loopback (port);
    if (getsockname (listen_fd, (struct sockaddr *)&sin, &slen) < 0)
        log_err_exit ("getsockname");
    port = ntohs (sin.sin_port);
    if (port_file)
        write_port_file (port_file, port);
    printf ("LISTENING %d\n", port);
    fflush (stdout);
    log_debug ("listening on 127.0.0.1:%d", port);

    while (!done) {
        struct pollfd pfd[2] = {
            {.fd = listen_fd, .events = POLLIN},
            {.fd = sig_pipe[0], .events = POLLIN},
        };
        int n = poll (pfd, 2, watch_pid ? 1000 : -1);

        if (n < 0 && errno != EINTR)
            log_err_exit ("poll");
        if (watch_pid && kill (watch_pid, 0) < 0 && errno == ESRCH) {
            log_debug ("process %ld is gone: exiting", (long)watch_pid);
            done = true;
        }
        if (n <= 0)
            continue;
        if (pfd[1].revents & POLLIN) {
            unsigned char sig[16];
            ssize_t k = read (sig_pipe[0], sig, sizeof (sig));
            for (ssize_t i = 0; i < k; i++) {
                if (sig[i] == SIGTERM || sig[i] == SIGINT)
                    done = true;
            }
            reap_children ();
        }
        if (!done && (pfd[0].revents & POLLIN)) {
            int fd = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
                    log_err ("accept");
                continue;
            }
            reap_children ();
            if (nchildren >= MOCK_MAX_CHILDREN) {
                log_msg ("too many connections: closing one");
                close (fd);
                continue;
            }
            pid_t pid = fork ();
            if (pid < 0) {
                log_err ("fork");
                close (fd);
                continue;
            }
            if (pid == 0)
                child_main (listen_fd, fd);
            children[nchildren++] = pid;
            close (fd);
        }
    }
    close (listen_fd);
    stop_children ();
    close (sig_pipe[0]);
    close (sig_pipe[1]);
    if (log_fd >= 0)
        close (log_fd);
    return 0;
}

/*
 * vi: ts=4 sw=4 expandtab
 */
