/* git.c - the git commands of codeswarm-run, and the shell for accept
 * commands
 *
 * Git runs synchronously (worktree add, merge, commit, rev-list: quick
 * local operations), its output captured.  Accept commands run
 * asynchronously under "sh -c", their output appended to a log file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/spawn.h"
#include "run/run.h"

/* Read both pipes of s to EOF. */
static void drain (spawn_t *s, struct jbuf *out, struct jbuf *err)
{
    int ofd = spawn_stdout_fd (s), efd = spawn_stderr_fd (s);

    while (ofd >= 0 || efd >= 0) {
        struct pollfd p[2];
        int n = 0;
        char buf[8192];
        if (ofd >= 0)
            p[n++] = (struct pollfd){ .fd = ofd, .events = POLLIN };
        if (efd >= 0)
            p[n++] = (struct pollfd){ .fd = efd, .events = POLLIN };
        if (poll (p, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++) {
            ssize_t r;
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            r = read (p[i].fd, buf, sizeof (buf));
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0) {
                if (p[i].fd == ofd)
                    ofd = -1;
                else
                    efd = -1;
                continue;
            }
            (void)jbuf_append (p[i].fd == ofd ? out : err, buf, r);
        }
    }
}

int git_run (const char *dir, char **out, cs_error_t *errp, ...)
{
    char *argv[32];
    int n = 0;
    va_list ap;
    struct spawn_opts o = SPAWN_OPTS_INIT;
    struct jbuf ob = { 0 }, eb = { 0 };
    struct spawn_status st;
    spawn_t *s;
    const char *a;
    static char *const env_set[] = { (char *)"GIT_TERMINAL_PROMPT=0",
                                     (char *)"GIT_MERGE_AUTOEDIT=no", NULL };

    argv[n++] = (char *)"git";
    argv[n++] = (char *)"-C";
    argv[n++] = (char *)dir;
    va_start (ap, errp);
    while ((a = va_arg (ap, const char *)) && n < 31)
        argv[n++] = (char *)a;
    va_end (ap);
    argv[n] = NULL;
    o.pipe_stdout = o.pipe_stderr = true;
    o.env_set = env_set;
    if (out)
        *out = NULL;
    if (!(s = spawn_start (argv, &o, errp)))
        return -1;
    drain (s, &ob, &eb);
    if (spawn_wait (s, &st) < 0) {
        errprintf (errp, "git %s: %s", argv[3], strerror (errno));
        spawn_destroy (s);
        jbuf_release (&ob);
        jbuf_release (&eb);
        return -1;
    }
    spawn_destroy (s);
    if (!st.exited || st.code != 0) {
        char sb[64];
        const char *e = eb.data ? eb.data : "";
        size_t len = strlen (e);
        while (len && e[len - 1] == '\n')
            len--;
        errprintf (errp, "git %s in '%s' failed (%s): %.*s", argv[3], dir,
                   spawn_status_str (&st, sb, sizeof (sb)), (int)len, e);
        jbuf_release (&ob);
        jbuf_release (&eb);
        errno = EIO;
        return -1;
    }
    jbuf_release (&eb);
    if (out)
        *out = ob.data ? ob.data : strdup ("");
    else
        jbuf_release (&ob);
    return 0;
}

/* Trim trailing newlines in place. */
char *git_chomp (char *s)
{
    size_t n = s ? strlen (s) : 0;
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

spawn_t *accept_start (const char *cmd, const char *dir, const char *logpath,
                       cs_error_t *errp)
{
    struct spawn_opts o = SPAWN_OPTS_INIT;
    char *script;
    char *argv[4];
    spawn_t *s;
    int fd;

    if ((fd = open (logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0600)) < 0) {
        errprintf (errp, "cannot open '%s': %s", logpath, strerror (errno));
        return NULL;
    }
    /* the command's stdout joins its stderr in the log */
    if (asprintf (&script, "exec 1>&2\n%s", cmd) < 0) {
        close (fd);
        errprintf (errp, "out of memory");
        return NULL;
    }
    argv[0] = (char *)"/bin/sh";
    argv[1] = (char *)"-c";
    argv[2] = script;
    argv[3] = NULL;
    o.cwd = dir;
    o.stderr_fd = fd;
    s = spawn_start (argv, &o, errp);
    close (fd);
    free (script);
    return s;
}

/* vi: set ts=4 sw=4 expandtab: */
