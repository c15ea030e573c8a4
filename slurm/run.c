/* run.c - run a command and collect its output */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "slurm/run.h"

#define RUN_MAX_OUTPUT (16u * 1024 * 1024)

struct obuf {
    char *data;
    size_t len, size;
};

static int obuf_read (struct obuf *b, int fd)
{
    char chunk[8192];
    ssize_t n = read (fd, chunk, sizeof (chunk));

    if (n <= 0)
        return (int)n;
    if (b->len + (size_t)n + 1 > b->size && b->len < RUN_MAX_OUTPUT) {
        size_t size = b->size ? b->size * 2 : 16384;
        char *d;
        while (size < b->len + (size_t)n + 1)
            size *= 2;
        if (!(d = realloc (b->data, size)))
            return -1;
        b->data = d;
        b->size = size;
    }
    if (b->len + (size_t)n + 1 <= b->size) {
        memcpy (b->data + b->len, chunk, (size_t)n);
        b->len += (size_t)n;
        b->data[b->len] = '\0';
    }
    return (int)n;
}

int run_capture (char *const argv[], char *const *env_set,
                 char *const *env_unset, double timeout, struct run_result *res,
                 cs_error_t *errp)
{
    struct spawn_opts opts = SPAWN_OPTS_INIT;
    struct obuf ob = {0}, eb = {0};
    double deadline = timeout > 0 ? time_mono () + timeout : 0;
    spawn_t *s;

    memset (res, 0, sizeof (*res));
    opts.env_set = env_set;
    opts.env_unset = env_unset;
    opts.pipe_stdout = true;
    opts.pipe_stderr = true;
    if (!(s = spawn_start (argv, &opts, errp)))
        return -1;
    while (spawn_stdout_fd (s) >= 0 || spawn_stderr_fd (s) >= 0) {
        struct pollfd pfd[2];
        int n = 0, ms = -1;
        if (spawn_stdout_fd (s) >= 0)
            pfd[n++] =
                (struct pollfd){.fd = spawn_stdout_fd (s), .events = POLLIN};
        if (spawn_stderr_fd (s) >= 0)
            pfd[n++] =
                (struct pollfd){.fd = spawn_stderr_fd (s), .events = POLLIN};
        if (deadline > 0) {
            double left = deadline - time_mono ();
            if (left <= 0) {
                spawn_stop (s, 2.0, &res->status);
                break;
            }
            ms = (int)(left * 1000) + 1;
        }
        if (poll (pfd, (nfds_t)n, ms) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++) {
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            bool is_out = pfd[i].fd == spawn_stdout_fd (s);
            int r = obuf_read (is_out ? &ob : &eb, pfd[i].fd);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                if (is_out)
                    spawn_close_stdout (s);
                else
                    spawn_close_stderr (s);
            }
        }
    }
    spawn_wait (s, &res->status);
    spawn_destroy (s);
    res->out = ob.data ? ob.data : strdup ("");
    res->err = eb.data ? eb.data : strdup ("");
    return 0;
}

void run_result_release (struct run_result *res)
{
    if (res) {
        free (res->out);
        free (res->err);
        res->out = res->err = NULL;
    }
}

int run_ok (const struct run_result *res)
{
    return res->status.exited && res->status.code == 0;
}

const char *run_first_line (const char *s, char *buf, size_t len)
{
    size_t n = 0;

    if (!s)
        s = "";
    while (*s == '\n' || *s == ' ')
        s++;
    while (s[n] && s[n] != '\n' && n + 1 < len)
        n++;
    memcpy (buf, s, n);
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    return buf;
}
