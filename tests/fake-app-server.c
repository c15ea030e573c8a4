/* fake-app-server - a stand-in for `codex app-server` that shows, on
 * demand, the faults the real one cannot be made to show: never answering,
 * garbage on stdout, exiting during the handshake.  It also streams a
 * scripted turn of many deltas for the worker benchmark.
 *
 * Usage: fake-app-server --version
 *        fake-app-server app-server        (mode from $FAKE_APP_SERVER_MODE)
 *
 * Modes:
 *   ok              answer the handshake, thread/start, thread/resume and
 *                   turn/start; a turn streams $FAKE_DELTAS deltas (default
 *                   3) and completes
 *   silent          read everything, answer nothing
 *   silent-turn     answer the handshake and thread requests, then nothing
 *   garbage         like ok, but write garbage lines on stdout first and
 *                   after every turn
 *   exit-handshake  exit 3 when initialize arrives
 *   bench           like ok; every delta carries "fakeTs" (wall clock
 *                   seconds when it was written); $FAKE_DELTA_INTERVAL
 *                   (microseconds) paces them
 *   requests        like ok, but a turn first sends server requests: one
 *                   the worker does not support (id 100), a legacy
 *                   execCommandApproval (101), a file change approval
 *                   (102) and a command approval in the cwd (103); the
 *                   turn completes once 101-103 are answered
 *   reject-turn     like ok, but turn/start is answered with an error
 * Every line read is appended to $FAKE_APP_SERVER_LOG when set;
 * $FAKE_APP_SERVER_DELAY (seconds) delays the initialize answer;
 * $FAKE_APP_SERVER_DIE_AFTER (seconds) makes it die (SIGALRM) that long
 * after it answered thread/start or thread/resume.
 *
 * The requests are parsed just enough for a test double: "id" and
 * "method" are found by scanning the line as the worker prints it.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static const char *mode = "ok";
static FILE *log_fp;
static int turns;
static int waiting;             /* requests mode: answers still due */
static char waiting_turn[64];

static double now (void)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

/* the integer after "id": at the top level of the line (first one) */
static long find_id (const char *line)
{
    const char *p = strstr (line, "\"id\":");
    if (!p)
        return -1;
    return strtol (p + 5, NULL, 10);
}

static void find_method (const char *line, char *buf, size_t len)
{
    const char *p = strstr (line, "\"method\":\"");
    buf[0] = '\0';
    if (!p)
        return;
    p += 10;
    size_t n = strcspn (p, "\"");
    if (n >= len)
        n = len - 1;
    memcpy (buf, p, n);
    buf[n] = '\0';
}

static void out (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static void out (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vprintf (fmt, ap);
    va_end (ap);
    putchar ('\n');
    fflush (stdout);
}

static void garbage (void)
{
    out ("this is not JSON");
    out ("{\"unterminated\": ");
    out ("[1,2,3]");
    out ("{\"bad utf-8\":\"\xff\xfe\"}");
    /* an overlong line: 100 kB of JSON */
    fputs ("{\"x\":\"", stdout);
    for (int i = 0; i < 100000; i++)
        putchar ('a');
    out ("\"}");
}

static void complete_turn (const char *turn)
{
    out ("{\"method\":\"turn/completed\",\"params\":{\"threadId\":\"fake-thread\","
         "\"turn\":{\"id\":\"%s\",\"items\":[],\"status\":\"completed\","
         "\"error\":null}}}", turn);
}

static void send_requests (const char *turn)
{
    char cwd[4096];

    if (!getcwd (cwd, sizeof (cwd)))
        strcpy (cwd, "/");
    out ("{\"id\":100,\"method\":\"item/tool/requestUserInput\",\"params\":{"
         "\"threadId\":\"fake-thread\",\"turnId\":\"%s\",\"itemId\":\"u1\","
         "\"questions\":[]}}", turn);
    out ("{\"id\":101,\"method\":\"execCommandApproval\",\"params\":{"
         "\"conversationId\":\"fake-thread\",\"callId\":\"c1\","
         "\"command\":[\"bash\",\"-lc\",\"rm -rf /tmp/x\"],\"cwd\":\"/\","
         "\"parsedCmd\":[]}}");
    out ("{\"id\":102,\"method\":\"item/fileChange/requestApproval\",\"params\":{"
         "\"threadId\":\"fake-thread\",\"turnId\":\"%s\",\"itemId\":\"f1\","
         "\"startedAtMs\":0,\"reason\":\"write a file\"}}", turn);
    out ("{\"id\":103,\"method\":\"item/commandExecution/requestApproval\","
         "\"params\":{\"threadId\":\"fake-thread\",\"turnId\":\"%s\","
         "\"itemId\":\"x1\",\"startedAtMs\":0,"
         "\"command\":\"/bin/bash -c 'echo ok'\",\"cwd\":\"%s\"}}", turn, cwd);
    waiting = 3;
    snprintf (waiting_turn, sizeof (waiting_turn), "%s", turn);
}

static void run_turn (long id)
{
    int deltas = getenv ("FAKE_DELTAS") ? atoi (getenv ("FAKE_DELTAS")) : 3;
    bool bench = !strcmp (mode, "bench");
    char turn[64];

    turns++;
    snprintf (turn, sizeof (turn), "fake-turn-%d", turns);
    out ("{\"id\":%ld,\"result\":{\"turn\":{\"id\":\"%s\",\"items\":[],"
         "\"status\":\"inProgress\",\"error\":null}}}", id, turn);
    out ("{\"method\":\"turn/started\",\"params\":{\"threadId\":\"fake-thread\","
         "\"turn\":{\"id\":\"%s\",\"items\":[],\"status\":\"inProgress\"}}}",
         turn);
    long pace = getenv ("FAKE_DELTA_INTERVAL")
                ? atol (getenv ("FAKE_DELTA_INTERVAL")) : 0;
    for (int i = 0; i < deltas; i++) {
        if (bench && pace > 0)
            usleep ((useconds_t)pace);
        if (bench)
            out ("{\"method\":\"item/agentMessage/delta\",\"params\":{"
                 "\"threadId\":\"fake-thread\",\"turnId\":\"%s\","
                 "\"itemId\":\"msg_1\",\"delta\":\"word%d \"},"
                 "\"fakeTs\":%.6f}", turn, i, now ());
        else
            out ("{\"method\":\"item/agentMessage/delta\",\"params\":{"
                 "\"threadId\":\"fake-thread\",\"turnId\":\"%s\","
                 "\"itemId\":\"msg_1\",\"delta\":\"word%d \"}}", turn, i);
    }
    if (!strcmp (mode, "requests")) {
        send_requests (turn);
        return;
    }
    complete_turn (turn);
    if (!strcmp (mode, "garbage"))
        garbage ();
}

int main (int argc, char *argv[])
{
    char *line = NULL;
    size_t size = 0;
    ssize_t n;
    bool silent, silent_turn;

    if (argc > 1 && !strcmp (argv[1], "--version")) {
        printf ("codex-cli 0.0.0-fake\n");
        return 0;
    }
    if (argc < 2 || strcmp (argv[1], "app-server") != 0) {
        fprintf (stderr, "usage: fake-app-server app-server | --version\n");
        return 2;
    }
    if (getenv ("FAKE_APP_SERVER_MODE"))
        mode = getenv ("FAKE_APP_SERVER_MODE");
    if (getenv ("FAKE_APP_SERVER_LOG"))
        log_fp = fopen (getenv ("FAKE_APP_SERVER_LOG"), "a");
    if (log_fp) {
        const char *ch = getenv ("CODEX_HOME"), *nc = getenv ("NO_COLOR");
        const char *ex = getenv ("FAKE_EXTRA");
        fprintf (log_fp, "#env CODEX_HOME=%s NO_COLOR=%s FAKE_EXTRA=%s\n",
                 ch ? ch : "-", nc ? nc : "-", ex ? ex : "-");
        fflush (log_fp);
    }
    silent = !strcmp (mode, "silent");
    silent_turn = !strcmp (mode, "silent-turn");
    /* like codex: some noise with colour codes on stderr */
    fprintf (stderr, "\033[2m2026-01-01T00:00:00Z\033[0m \033[33mWARN\033[0m "
             "fake-app-server starting (mode %s)\n", mode);
    if (!strcmp (mode, "garbage"))
        garbage ();
    while ((n = getline (&line, &size, stdin)) > 0) {
        char method[128];
        long id;

        if (log_fp) {
            fputs (line, log_fp);
            fflush (log_fp);
        }
        if (silent)
            continue;
        find_method (line, method, sizeof (method));
        id = find_id (line);
        if (!strcmp (method, "initialize")) {
            if (!strcmp (mode, "exit-handshake")) {
                fprintf (stderr, "fake-app-server: exiting during the "
                         "handshake\n");
                free (line);
                return 3;
            }
            if (getenv ("FAKE_APP_SERVER_DELAY"))
                usleep ((useconds_t)(atof (getenv ("FAKE_APP_SERVER_DELAY"))
                                     * 1e6));
            out ("{\"id\":%ld,\"result\":{\"userAgent\":\"fake/0.0.0-fake\","
                 "\"codexHome\":\"/nonexistent\",\"platformFamily\":\"unix\","
                 "\"platformOs\":\"linux\"}}", id);
        }
        else if (!strcmp (method, "thread/start")
                 || !strcmp (method, "thread/resume")) {
            out ("{\"id\":%ld,\"result\":{\"thread\":{\"id\":\"fake-thread\","
                 "\"path\":\"/nonexistent/rollout.jsonl\",\"turns\":[]}}}", id);
            if (getenv ("FAKE_APP_SERVER_DIE_AFTER"))
                ualarm ((useconds_t)(atof (getenv ("FAKE_APP_SERVER_DIE_AFTER"))
                                     * 1e6), 0);
        }
        else if (silent_turn)
            continue;
        else if (!strcmp (method, "turn/start") && !strcmp (mode, "reject-turn"))
            out ("{\"id\":%ld,\"error\":{\"code\":-32600,\"message\":"
                 "\"fake: turn refused\"}}", id);
        else if (!strcmp (method, "turn/start"))
            run_turn (id);
        else if (!method[0] && id >= 101 && id <= 103 && waiting > 0) {
            if (--waiting == 0)
                complete_turn (waiting_turn);
        }
        else if (!strcmp (method, "turn/interrupt"))
            out ("{\"id\":%ld,\"result\":{}}", id);
        else if (id >= 0 && method[0])
            out ("{\"id\":%ld,\"error\":{\"code\":-32600,\"message\":"
                 "\"unknown method\"}}", id);
    }
    free (line);
    if (log_fp)
        fclose (log_fp);
    return 0;
}
