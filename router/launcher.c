/* launcher.c - codeswarm-launch as a child of the router (see launcher.h) */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/lineio.h"
#include "common/prefix.h"
#include "router/launcher.h"

#define LAUNCHER_MAX_LINE (1024 * 1024)
#define LAUNCHER_ERR_KEEP 480

struct launcher {
    spawn_t *child;
    lineio_t *out;
    lineio_t *err;
    bool out_eof, err_eof;
    bool finished;
    char lasterr[LAUNCHER_ERR_KEEP];
    const struct launcher_ops *ops;
    void *arg;
};

const char *launcher_program (char *buf, size_t len)
{
    const char *env = getenv ("CODESWARM_LAUNCH");
    const char *ep = getenv ("CODESWARM_EXEC_PATH");

    if (env && *env) {
        snprintf (buf, len, "%s", env);
        return buf;
    }
    while (ep && *ep) {
        const char *end = strchrnul (ep, ':');
        if (end > ep) {
            snprintf (buf, len, "%.*s/codeswarm-launch", (int)(end - ep), ep);
            if (access (buf, X_OK) == 0)
                return buf;
        }
        ep = *end ? end + 1 : end;
    }
    /* the installed tree's, wherever it was moved (common/prefix.h) */
    snprintf (buf, len, "%s/codeswarm-launch",
              prefix_dir (PREFIX_DIR_PKGLIBEXEC));
    return buf;
}

launcher_t *launcher_start (const char *const *args,
                            const char *const *env_set,
                            const struct launcher_ops *ops, void *arg,
                            cs_error_t *errp)
{
    struct spawn_opts so = SPAWN_OPTS_INIT;
    char prog[4096];
    const char **argv;
    size_t n = 0;
    launcher_t *l;

    while (args[n])
        n++;
    if (!(l = calloc (1, sizeof (*l))) || !(argv = calloc (n + 2,
                                                            sizeof (*argv)))) {
        free (l);
        errno = ENOMEM;
        errprintf (errp, "out of memory");
        return NULL;
    }
    argv[0] = launcher_program (prog, sizeof (prog));
    memcpy (argv + 1, args, n * sizeof (*argv));
    so.env_set = (char *const *)env_set;
    so.pipe_stdout = true;
    so.pipe_stderr = true;
    l->ops = ops;
    l->arg = arg;
    if (!(l->out = lineio_create (LAUNCHER_MAX_LINE))
        || !(l->err = lineio_create (4096))) {
        errno = ENOMEM;
        errprintf (errp, "out of memory");
        goto error;
    }
    if (!(l->child = spawn_start ((char *const *)argv, &so, errp)))
        goto error;
    free (argv);
    return l;
error:
    free (argv);
    launcher_destroy (l);
    return NULL;
}

int launcher_pollfds (launcher_t *l, struct pollfd *pfd, int max)
{
    int n = 0;

    if (!l->out_eof && n < max) {
        pfd[n].fd = spawn_stdout_fd (l->child);
        pfd[n].events = POLLIN;
        pfd[n++].revents = 0;
    }
    if (!l->err_eof && n < max) {
        pfd[n].fd = spawn_stderr_fd (l->child);
        pfd[n].events = POLLIN;
        pfd[n++].revents = 0;
    }
    return n;
}

/* Keep the last line of stderr that is not a hint, without the program's
 * "codeswarm VERB: " prefix. */
static void keep_error (launcher_t *l, const char *line)
{
    const char *p = line;

    if (!*line || !strncmp (line, "hint:", 5))
        return;
    if (!strncmp (p, "codeswarm ", 10)) {
        const char *colon = strstr (p, ": ");
        if (colon && !memchr (p + 10, ' ', (size_t)(colon - p - 10)))
            p = colon + 2;
    }
    snprintf (l->lasterr, sizeof (l->lasterr), "%s", p);
}

static void drain (launcher_t *l, bool is_out)
{
    lineio_t *lb = is_out ? l->out : l->err;
    int fd = is_out ? spawn_stdout_fd (l->child) : spawn_stderr_fd (l->child);
    const char *line;
    size_t len;
    ssize_t n;

    n = lineio_fill (lb, fd);
    while (lineio_next (lb, &line, &len, NULL) == 1) {
        if (is_out && l->ops->line)
            l->ops->line (l, line, len, l->arg);
        else if (!is_out)
            keep_error (l, line);
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        if (lineio_rest (lb, &line, &len) == 1) {
            if (is_out && l->ops->line)
                l->ops->line (l, line, len, l->arg);
            else if (!is_out)
                keep_error (l, line);
        }
        if (is_out) {
            l->out_eof = true;
            spawn_close_stdout (l->child);
        }
        else {
            l->err_eof = true;
            spawn_close_stderr (l->child);
        }
    }
}

void launcher_handle (launcher_t *l, const struct pollfd *pfd, int n)
{
    struct spawn_status st;

    for (int i = 0; i < n; i++) {
        if (!pfd[i].revents)
            continue;
        if (!l->out_eof && pfd[i].fd == spawn_stdout_fd (l->child))
            drain (l, true);
        else if (!l->err_eof && pfd[i].fd == spawn_stderr_fd (l->child))
            drain (l, false);
    }
    if (l->out_eof && l->err_eof && !l->finished) {
        /* both pipes closed: the launcher is exiting (what it started in
         * the background, the local supervisor, closed them long ago) */
        if (spawn_wait (l->child, &st) < 0) {
            memset (&st, 0, sizeof (st));
            st.exited = true;
            st.code = 127;
        }
        l->finished = true;
        if (l->ops->done)
            l->ops->done (l, &st, l->lasterr, l->arg);
    }
}

bool launcher_finished (launcher_t *l)
{
    return l->finished;
}

void launcher_destroy (launcher_t *l)
{
    if (l) {
        int saved = errno;
        if (l->child && !l->finished) {
            struct spawn_status st;
            (void)spawn_stop (l->child, 5.0, &st);
        }
        spawn_destroy (l->child);
        lineio_destroy (l->out);
        lineio_destroy (l->err);
        free (l);
        errno = saved;
    }
}
