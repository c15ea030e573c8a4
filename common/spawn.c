/* spawn.c - child processes with separate pipes
 *
 * Everything that allocates or may take a lock (PATH search, the child's
 * environment, /dev/null) is done in the parent before fork(); the child
 * only calls async-signal-safe functions until execve().  An exec failure
 * is written to a CLOEXEC pipe as a (stage, errno) pair: a successful exec
 * closes the pipe and the parent reads EOF.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "common/spawn.h"
#include "common/lineio.h"
#include "common/json.h"

extern char **environ;

struct spawn {
    pid_t pid;
    int in_fd;
    int out_fd;
    int err_fd;
    bool reaped;
    struct spawn_status status;
};

/* what the child reports back when it cannot exec */
enum {
    CHILD_ERR_EXEC = 1,
    CHILD_ERR_CHDIR = 2,
    CHILD_ERR_DUP = 3,
};
struct child_err {
    int stage;
    int errnum;
};

static void close_fd (int *fd)
{
    if (*fd >= 0) {
        int saved_errno = errno;
        (void)close (*fd);
        errno = saved_errno;
        *fd = -1;
    }
}

/* Make sure fd is not 0, 1 or 2 (so dup2 in the child cannot clobber it),
 * keeping it CLOEXEC.  Closes the original on success.
 */
static int move_above_stdio (int *fd)
{
    if (*fd >= 0 && *fd <= 2) {
        int nfd = fcntl (*fd, F_DUPFD_CLOEXEC, 3);
        if (nfd < 0)
            return -1;
        (void)close (*fd);
        *fd = nfd;
    }
    return 0;
}

static int make_pipe (int p[2])
{
    if (pipe2 (p, O_CLOEXEC) < 0)
        return -1;
    if (move_above_stdio (&p[0]) < 0 || move_above_stdio (&p[1]) < 0) {
        close_fd (&p[0]);
        close_fd (&p[1]);
        return -1;
    }
    return 0;
}

/* The value of name in envp, or NULL. */
static const char *env_lookup (char *const *envp, const char *name)
{
    size_t n = strlen (name);
    for (; envp && *envp; envp++) {
        if (!strncmp (*envp, name, n) && (*envp)[n] == '=')
            return *envp + n + 1;
    }
    return NULL;
}

static bool env_name_in (const char *entry, char *const *names, bool kv)
{
    size_t n = strcspn (entry, "=");
    for (; names && *names; names++) {
        size_t m = kv ? strcspn (*names, "=") : strlen (*names);
        if (m == n && !strncmp (entry, *names, n))
            return true;
    }
    return false;
}

/* environ minus env_unset and the names env_set sets, plus env_set.
 * The strings are borrowed; free only the array.
 */
static char **env_build (const struct spawn_opts *opts)
{
    size_t n = 0, k = 0;
    char **envp;
    char *const *p;

    for (p = environ; p && *p; p++)
        n++;
    for (p = opts ? opts->env_set : NULL; p && *p; p++) {
        if (!strchr (*p, '=') || **p == '=') {
            errno = EINVAL;
            return NULL;
        }
        n++;
    }
    if (!(envp = calloc (n + 1, sizeof (*envp))))
        return NULL;
    for (p = environ; p && *p; p++) {
        if (opts && (env_name_in (*p, opts->env_unset, false)
                     || env_name_in (*p, opts->env_set, true)))
            continue;
        envp[k++] = *p;
    }
    for (p = opts ? opts->env_set : NULL; p && *p; p++) {
        if (opts->env_unset && env_name_in (*p, opts->env_unset, false))
            continue;
        envp[k++] = *p;
    }
    envp[k] = NULL;
    return envp;
}

/* Find name in the search path like execvp() would: the first regular,
 * executable file wins; EACCES if only non-executable candidates were
 * found, else ENOENT.  A relative entry ("" is ".") is looked up in cwd,
 * where the child will be when it calls execve().  Returns a string to
 * free().
 */
static char *path_search (const char *name, const char *path, const char *cwd)
{
    char defpath[PATH_MAX];
    bool eacces = false;

    if (!path) {
        size_t n = confstr (_CS_PATH, defpath, sizeof (defpath));
        path = n > 0 && n <= sizeof (defpath) ? defpath : "/bin:/usr/bin";
    }
    while (path) {
        const char *colon = strchr (path, ':');
        int dlen = colon ? (int)(colon - path) : (int)strlen (path);
        char *full, *check = NULL;
        const char *f;
        struct stat sb;

        if (asprintf (&full, "%.*s%s%s", dlen, path, dlen ? "/" : "./",
                      name) < 0)
            return NULL;
        if (cwd && full[0] != '/'
            && asprintf (&check, "%s/%s", cwd, full) < 0) {
            free (full);
            return NULL;
        }
        f = check ? check : full;
        if (stat (f, &sb) == 0) {
            if (S_ISREG (sb.st_mode) && access (f, X_OK) == 0) {
                free (check);
                return full;
            }
            eacces = true;
        }
        free (check);
        free (full);
        path = colon ? colon + 1 : NULL;
    }
    errno = eacces ? EACCES : ENOENT;
    return NULL;
}

/* Runs in the child: only async-signal-safe calls. */
static void __attribute__ ((noreturn))
child (const char *path, char *const argv[], char *const envp[],
       const char *cwd, const int *ignore, int fds[3], int errfd)
{
    struct child_err ce = { 0, 0 };
    struct sigaction sa;
    sigset_t empty;
    int i;

    (void)setpgid (0, 0);

    memset (&sa, 0, sizeof (sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset (&sa.sa_mask);
    for (i = 1; i < NSIG; i++) {
        if (i != SIGKILL && i != SIGSTOP)
            (void)sigaction (i, &sa, NULL); /* EINVAL: libc's own (32, 33) */
    }
    sa.sa_handler = SIG_IGN;
    for (i = 0; ignore && ignore[i] > 0; i++)
        (void)sigaction (ignore[i], &sa, NULL);

    for (i = 0; i < 3; i++) {
        if (fds[i] < 0)
            continue;
        if (dup2 (fds[i], i) < 0) {
            ce.stage = CHILD_ERR_DUP;
            goto fail;
        }
    }
    if (cwd && chdir (cwd) < 0) {
        ce.stage = CHILD_ERR_CHDIR;
        goto fail;
    }
    sigemptyset (&empty);
    (void)sigprocmask (SIG_SETMASK, &empty, NULL);
    execve (path, argv, envp);
    ce.stage = CHILD_ERR_EXEC;
fail:
    ce.errnum = errno;
    while (write (errfd, &ce, sizeof (ce)) < 0 && errno == EINTR)
        ;
    _exit (127);
}

/* The descriptors of a start: the pipes, and what the child gets as its
 * stdin, stdout and stderr.
 */
struct spawn_fds {
    int in[2], out[2], err[2];
    int errpipe[2];             /* the child's exec failure, CLOEXEC */
    int child[3];               /* the child's 0, 1, 2 (-1: inherited) */
    int devnull, errdup;
};

/* Every descriptor -1 (none). */
static void fds_init (struct spawn_fds *f)
{
    f->in[0] = f->in[1] = f->out[0] = f->out[1] = -1;
    f->err[0] = f->err[1] = f->errpipe[0] = f->errpipe[1] = -1;
    f->child[0] = f->child[1] = f->child[2] = -1;
    f->devnull = f->errdup = -1;
}

/* EPIPE instead of death when a child stops reading (a handler the
 * program installed itself is left alone).
 */
static void ignore_sigpipe (void)
{
    struct sigaction sa;
    if (sigaction (SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        (void)signal (SIGPIPE, SIG_IGN);
}

/* The child's environment and the program's path (both free). */
static int resolve (char *const argv[], const struct spawn_opts *opts,
                    char ***envp, char **path, cs_error_t *errp)
{
    if (!(*envp = env_build (opts)))
        return errprintf (errp, "cannot run '%s': %s", argv[0],
                          errno == EINVAL
                              ? "bad environment entry (want KEY=VALUE)"
                              : strerror (errno));
    if (strchr (argv[0], '/'))
        *path = strdup (argv[0]);
    else
        *path = path_search (argv[0], env_lookup (*envp, "PATH"), opts->cwd);
    if (!*path)
        return errprintf (errp, "cannot run '%s': %s", argv[0],
                          strerror (errno));
    return 0;
}

/* Make the pipes opts asks for; stdin without a pipe is /dev/null. */
static int fds_open (struct spawn_fds *f, const struct spawn_opts *opts)
{
    if (opts->pipe_stdin) {
        if (make_pipe (f->in) < 0)
            return -1;
        f->child[0] = f->in[0];
    }
    else {
        if ((f->devnull = open ("/dev/null", O_RDONLY | O_CLOEXEC)) < 0
            || move_above_stdio (&f->devnull) < 0)
            return -1;
        f->child[0] = f->devnull;
    }
    if (opts->pipe_stdout) {
        if (make_pipe (f->out) < 0)
            return -1;
        f->child[1] = f->out[1];
    }
    if (opts->pipe_stderr) {
        if (make_pipe (f->err) < 0)
            return -1;
        f->child[2] = f->err[1];
    }
    else if (opts->stderr_fd >= 0) {
        if ((f->errdup = fcntl (opts->stderr_fd, F_DUPFD_CLOEXEC, 3)) < 0)
            return -1;
        f->child[2] = f->errdup;
    }
    return make_pipe (f->errpipe);
}

/* The parent's part after the fork: close the child's ends. */
static void fds_close_child_ends (struct spawn_fds *f)
{
    close_fd (&f->errpipe[1]);
    close_fd (&f->in[0]);
    close_fd (&f->out[1]);
    close_fd (&f->err[1]);
    close_fd (&f->devnull);
    close_fd (&f->errdup);
}

static void fds_close_all (struct spawn_fds *f)
{
    int saved = errno;
    fds_close_child_ends (f);
    close_fd (&f->in[1]);
    close_fd (&f->out[0]);
    close_fd (&f->err[0]);
    close_fd (&f->errpipe[0]);
    errno = saved;
}

/* Fork the child in its own process group.  Signals are blocked so that
 * no handler of ours runs in the child before it has reset the
 * dispositions.  Returns its pid or -1.
 */
static pid_t fork_child (const char *path, char *const argv[], char **envp,
                         const struct spawn_opts *opts, struct spawn_fds *f)
{
    sigset_t all, old;
    int saved;
    pid_t pid;

    sigfillset (&all);
    sigprocmask (SIG_SETMASK, &all, &old);
    pid = fork ();
    if (pid == 0)
        child (path, argv, envp, opts->cwd, opts->ignore_signals, f->child,
               f->errpipe[1]);
    saved = errno;
    sigprocmask (SIG_SETMASK, &old, NULL);
    errno = saved;
    if (pid > 0)
        (void)setpgid (pid, pid);   /* also here: no race with spawn_kill() */
    return pid;
}

/* Did the child exec?  Its report on errpipe says why not (the child is
 * then reaped); EOF means it did.  0, or -1 with errp filled.
 */
static int check_exec (pid_t pid, int *errpipe, char *const argv[],
                       const struct spawn_opts *opts, cs_error_t *errp)
{
    struct child_err ce;
    ssize_t n;
    int status;

    do {
        n = read (*errpipe, &ce, sizeof (ce));
    } while (n < 0 && errno == EINTR);
    close_fd (errpipe);
    if (n != sizeof (ce))
        return 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    errno = ce.errnum;
    if (ce.stage == CHILD_ERR_CHDIR)
        return errprintf (errp, "cannot run '%s': cannot change to '%s': %s",
                          argv[0], opts->cwd, strerror (errno));
    if (ce.stage == CHILD_ERR_DUP)
        return errprintf (errp, "cannot run '%s': cannot set up stdio: %s",
                          argv[0], strerror (errno));
    return errprintf (errp, "cannot run '%s': %s", argv[0],
                      strerror (errno));
}

spawn_t *spawn_start (char *const argv[], const struct spawn_opts *opts,
                      cs_error_t *errp)
{
    struct spawn_opts dflt = SPAWN_OPTS_INIT;
    struct spawn_fds f;
    spawn_t *s = NULL;
    char *path = NULL;
    char **envp = NULL;
    int saved_errno;

    if (!argv || !argv[0] || !argv[0][0]) {
        errno = EINVAL;
        errprintf (errp, "cannot run a program without a name");
        return NULL;
    }
    if (!opts)
        opts = &dflt;
    fds_init (&f);
    ignore_sigpipe ();
    if (resolve (argv, opts, &envp, &path, errp) < 0)
        goto error;
    if (!(s = calloc (1, sizeof (*s))) || fds_open (&f, opts) < 0)
        goto error_errno;
    s->in_fd = s->out_fd = s->err_fd = -1;
    if ((s->pid = fork_child (path, argv, envp, opts, &f)) < 0)
        goto error_errno;
    fds_close_child_ends (&f);
    if (check_exec (s->pid, &f.errpipe[0], argv, opts, errp) < 0) {
        s->pid = -1;
        goto error;
    }
    s->in_fd = f.in[1];
    s->out_fd = f.out[0];
    s->err_fd = f.err[0];
    if ((s->in_fd >= 0 && fd_set_nonblock (s->in_fd, true) < 0)
        || (s->out_fd >= 0 && fd_set_nonblock (s->out_fd, true) < 0)
        || (s->err_fd >= 0 && fd_set_nonblock (s->err_fd, true) < 0)) {
        saved_errno = errno;
        spawn_destroy (s);
        free (path);
        free (envp);
        errno = saved_errno;
        errprintf (errp, "cannot run '%s': %s", argv[0], strerror (errno));
        return NULL;
    }
    free (path);
    free (envp);
    return s;

error_errno:
    errprintf (errp, "cannot run '%s': %s", argv[0], strerror (errno));
error:
    saved_errno = errno;
    fds_close_all (&f);
    free (s);
    free (path);
    free (envp);
    errno = saved_errno;
    return NULL;
}

pid_t spawn_pid (spawn_t *s)
{
    return s ? s->pid : -1;
}

int spawn_stdin_fd (spawn_t *s)
{
    return s ? s->in_fd : -1;
}

int spawn_stdout_fd (spawn_t *s)
{
    return s ? s->out_fd : -1;
}

int spawn_stderr_fd (spawn_t *s)
{
    return s ? s->err_fd : -1;
}

void spawn_close_stdin (spawn_t *s)
{
    if (s)
        close_fd (&s->in_fd);
}

void spawn_close_stdout (spawn_t *s)
{
    if (s)
        close_fd (&s->out_fd);
}

void spawn_close_stderr (spawn_t *s)
{
    if (s)
        close_fd (&s->err_fd);
}

static void status_set (spawn_t *s, int status)
{
    memset (&s->status, 0, sizeof (s->status));
    if (WIFEXITED (status)) {
        s->status.exited = true;
        s->status.code = WEXITSTATUS (status);
    }
    else if (WIFSIGNALED (status)) {
        s->status.signaled = true;
        s->status.signal = WTERMSIG (status);
    }
    s->reaped = true;
}

/* waitpid wrapper: 1 reaped, 0 still running, -1 error */
static int reap (spawn_t *s, bool block)
{
    int status;
    pid_t rc;

    if (s->reaped)
        return 1;
    do {
        rc = waitpid (s->pid, &status, block ? 0 : WNOHANG);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return 0;
    status_set (s, status);
    return 1;
}

int spawn_poll (spawn_t *s, struct spawn_status *st)
{
    int rc;

    if (!s) {
        errno = EINVAL;
        return -1;
    }
    if ((rc = reap (s, false)) == 1 && st)
        *st = s->status;
    return rc;
}

int spawn_wait (spawn_t *s, struct spawn_status *st)
{
    if (!s) {
        errno = EINVAL;
        return -1;
    }
    if (reap (s, true) < 0)
        return -1;
    if (st)
        *st = s->status;
    return 0;
}

int spawn_kill (spawn_t *s, int sig)
{
    if (!s) {
        errno = EINVAL;
        return -1;
    }
    if (s->reaped) {
        errno = ESRCH;
        return -1;
    }
    /* The group is ours while the leader is not reaped, even a zombie. */
    if (kill (-s->pid, sig) < 0) {
        if (errno != ESRCH)
            return -1;
        return kill (s->pid, sig);
    }
    return 0;
}

/* Has the child ended?  Looks without reaping (WNOWAIT), so the process
 * group id stays reserved until we have killed the whole group.
 */
static bool child_ended (spawn_t *s)
{
    siginfo_t si;
    int rc;

    memset (&si, 0, sizeof (si));
    do {
        rc = waitid (P_PID, s->pid, &si, WEXITED | WNOHANG | WNOWAIT);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 || si.si_pid == s->pid;
}

int spawn_stop (spawn_t *s, double grace, struct spawn_status *st)
{
    if (!s) {
        errno = EINVAL;
        return -1;
    }
    if (!s->reaped) {
        double deadline;
        long ns = 1000000;  /* 1 ms, doubling to 50 ms */

        (void)spawn_kill (s, SIGTERM);
        (void)spawn_kill (s, SIGCONT);      /* so a stopped group sees it */
        deadline = time_mono () + (grace > 0 ? grace : 0);
        while (!child_ended (s)) {
            double left = deadline - time_mono ();
            struct timespec ts;
            if (left <= 0)
                break;
            if (left < ns / 1e9)
                ns = (long)(left * 1e9) + 1;
            ts.tv_sec = 0;
            ts.tv_nsec = ns;
            nanosleep (&ts, NULL);
            if (ns < 50000000)
                ns *= 2;
        }
        /* whatever is left of the group (the leader may be a zombie) */
        (void)kill (-s->pid, SIGKILL);
        if (reap (s, true) < 0)
            return -1;
    }
    if (st)
        *st = s->status;
    return 0;
}

void spawn_destroy (spawn_t *s)
{
    if (s) {
        int saved_errno = errno;
        if (s->pid > 0 && !s->reaped) {
            (void)kill (-s->pid, SIGKILL);
            (void)kill (s->pid, SIGKILL);
            (void)reap (s, true);
        }
        close_fd (&s->in_fd);
        close_fd (&s->out_fd);
        close_fd (&s->err_fd);
        free (s);
        errno = saved_errno;
    }
}

const char *spawn_status_str (const struct spawn_status *st, char *buf,
                              size_t len)
{
    if (!buf || len == 0)
        return "";
    if (!st)
        snprintf (buf, len, "unknown");
    else if (st->exited)
        snprintf (buf, len, "exit %d", st->code);
    else if (st->signaled)
        snprintf (buf, len, "signal %d (%s)", st->signal,
                  strsignal (st->signal));
    else
        snprintf (buf, len, "running");
    return buf;
}

/*
 * vi:ts=4 sw=4 expandtab
 */
