/* link.c - the connection of codeswarm-run to a router
 *
 * The per-user socket of a running router when there is one, else a
 * "codeswarm-router --stdio" of our own (its log goes to a file).  Commands
 * are written whole (they are small, and at most one per node is in
 * flight); replies and events are read as JSON lines from the poll loop.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/lineio.h"
#include "common/log.h"
#include "common/spawn.h"
#include "router/command.h"
#include "router/paths.h"
#include "run/run.h"

struct link {
    int rfd, wfd;               /* the same socket, or the child's pipes */
    spawn_t *child;             /* a router of our own, or NULL */
    lineio_t *in;
    bool eof;
};

link_t *link_open (const char *home, const char *router, char **router_args,
                   const char *logpath, cs_error_t *errp)
{
    link_t *l = calloc (1, sizeof (*l));
    char path[PATH_MAX];
    int fd = -1;

    if (!l || !(l->in = lineio_create (RC_MAX_LINE * 16))) {
        free (l);
        errprintf (errp, "out of memory");
        return NULL;
    }
    l->rfd = l->wfd = -1;
    if (!router && !getenv ("CODESWARM_NO_ROUTER")
        && router_socket_path (home, path, sizeof (path), false, NULL) == 0
        && (fd = router_connect (path, NULL)) >= 0) {
        log_debug ("using the router at '%s'", path);
        l->rfd = l->wfd = fd;
        (void)fd_set_nonblock (fd, true);
        return l;
    }
    {
        char *argv[64];
        int n = 0, logfd;
        struct spawn_opts o = SPAWN_OPTS_INIT;
        char homearg[PATH_MAX + 8];

        argv[n++] = router ? (char *)router : (char *)"codeswarm-router";
        argv[n++] = (char *)"--stdio";
        snprintf (homearg, sizeof (homearg), "--home=%s", home);
        argv[n++] = homearg;
        for (int i = 0; router_args && router_args[i] && n < 62; i++)
            argv[n++] = router_args[i];
        argv[n] = NULL;
        if ((logfd = open (logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                           0600)) < 0) {
            errprintf (errp, "cannot open '%s': %s", logpath,
                       strerror (errno));
            goto error;
        }
        o.pipe_stdin = true;
        o.pipe_stdout = true;
        o.stderr_fd = logfd;
        l->child = spawn_start (argv, &o, errp);
        close (logfd);
        if (!l->child)
            goto error;
        l->rfd = spawn_stdout_fd (l->child);
        l->wfd = spawn_stdin_fd (l->child);
        log_debug ("started %s --stdio (pid %d)", argv[0],
                   (int)spawn_pid (l->child));
    }
    return l;
error:
    lineio_destroy (l->in);
    free (l);
    return NULL;
}

void link_close (link_t *l)
{
    if (l) {
        int saved = errno;
        if (l->child) {
            struct spawn_status st;
            spawn_close_stdin (l->child);
            (void)spawn_stop (l->child, 5, &st);
            spawn_destroy (l->child);
        }
        else if (l->rfd >= 0)
            close (l->rfd);
        lineio_destroy (l->in);
        free (l);
        errno = saved;
    }
}

int link_fd (link_t *l)
{
    return l->eof ? -1 : l->rfd;
}

int link_send (link_t *l, const char *command, const char *rid,
               cJSON *payload)
{
    cJSON *o = cJSON_CreateObject ();
    char *s = NULL;
    int rc = -1;

    if (!o || json_add_str (o, "protocol", RC_PROTOCOL) < 0
        || json_add_str (o, "type", "command") < 0
        || json_add_str (o, "command", command) < 0
        || (rid && json_add_str (o, "request_id", rid) < 0)
        || json_add_item (o, "payload",
                          payload ? payload : cJSON_CreateObject ()) < 0) {
        cJSON_Delete (o);
        errno = ENOMEM;
        return -1;
    }
    if (!(s = json_print (o)))
        goto done;
    log_trace ("-> %s", s);
    if (fd_write_all (l->wfd, s, strlen (s)) < 0
        || fd_write_all (l->wfd, "\n", 1) < 0)
        goto done;
    rc = 0;
done:
    free (s);
    cJSON_Delete (o);
    return rc;
}

int link_read (link_t *l)
{
    ssize_t n = lineio_fill (l->in, l->rfd);

    if (n == 0) {
        l->eof = true;
        return 0;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR)
        return -1;
    return 1;
}

cJSON *link_next (link_t *l)
{
    const char *line;
    size_t len;
    bool overlong;

    while (lineio_next (l->in, &line, &len, &overlong) == 1) {
        cs_error_t e;
        cJSON *o;
        if (overlong) {
            log_msg ("a line of the router was cut (over %d bytes): ignored",
                     RC_MAX_LINE * 16);
            continue;
        }
        if (!(o = json_parse (line, len, &e))) {
            log_msg ("the router sent a line that does not parse: %s",
                     e.text);
            continue;
        }
        log_trace ("<- %.*s", (int)(len > 300 ? 300 : len), line);
        return o;
    }
    return NULL;
}

bool link_eof (link_t *l)
{
    return l->eof;
}

/* vi: set ts=4 sw=4 expandtab: */
