#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/spawn.h"
#include "common/json.h"
#include "common/libtap/tap.h"

/* string literals in argv arrays (-Wwrite-strings) */
#define S(x) ((char *)(x))

static char tmpdir[PATH_MAX];

/* Read the child's stdout and stderr to EOF (each may be -1). */
static void collect (spawn_t *s, char *out, size_t outsz, char *err,
                     size_t errsz)
{
    size_t olen = 0, elen = 0;
    int ofd = spawn_stdout_fd (s);
    int efd = spawn_stderr_fd (s);
    double deadline = time_mono () + 10;

    if (out)
        out[0] = '\0';
    if (err)
        err[0] = '\0';
    while ((ofd >= 0 || efd >= 0) && time_mono () < deadline) {
        struct pollfd pfd[2] = { { .fd = ofd, .events = POLLIN },
                                 { .fd = efd, .events = POLLIN } };
        if (poll (pfd, 2, 1000) < 0)
            break;
        for (int i = 0; i < 2; i++) {
            int *fd = i == 0 ? &ofd : &efd;
            char *buf = i == 0 ? out : err;
            size_t *len = i == 0 ? &olen : &elen;
            size_t size = i == 0 ? outsz : errsz;
            char tmp[4096];
            ssize_t n;
            if (*fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            n = read (*fd, tmp, sizeof (tmp));
            if (n < 0 && errno == EAGAIN)
                continue;
            if (n <= 0) {
                *fd = -1;
                continue;
            }
            if (buf && *len + n < size) {
                memcpy (buf + *len, tmp, n);
                *len += n;
                buf[*len] = '\0';
            }
        }
    }
}

static spawn_t *run (const char *script, struct spawn_opts *opts,
                     cs_error_t *e)
{
    char *argv[] = { S("/bin/sh"), S("-c"), (char *)script, NULL };
    return spawn_start (argv, opts, e);
}

static void test_exec_errors (void)
{
    cs_error_t e = { "" };
    char *argv1[] = { S("codeswarm-no-such-program"), NULL };
    char *argv2[] = { S("/nonexistent/dir/prog"), NULL };
    char path[PATH_MAX + 16];
    char *argv3[] = { path, NULL };
    char *argv4[] = { S("/bin/true"), NULL };
    char *argv5[] = { S(""), NULL };
    struct spawn_opts opts = SPAWN_OPTS_INIT;
    int fd;

    errno = 0;
    ok (spawn_start (argv1, NULL, &e) == NULL && errno == ENOENT,
        "PATH search failure: ENOENT");
    is (e.text, "cannot run 'codeswarm-no-such-program': "
        "No such file or directory", "error names the program");

    errno = 0;
    ok (spawn_start (argv2, NULL, &e) == NULL && errno == ENOENT,
        "exec of a missing path fails synchronously with ENOENT");
    is (e.text, "cannot run '/nonexistent/dir/prog': No such file or directory",
        "the child's errno comes back with the program name");
    ok (waitpid (-1, NULL, WNOHANG) < 0 && errno == ECHILD,
        "the failed child was reaped");

    snprintf (path, sizeof (path), "%s/not-executable", tmpdir);
    fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ok (fd >= 0 && write (fd, "#!/bin/sh\n", 10) == 10 && close (fd) == 0,
        "made a non-executable file");
    errno = 0;
    ok (spawn_start (argv3, NULL, &e) == NULL && errno == EACCES,
        "exec of a non-executable file: EACCES from the child");
    ok (strstr (e.text, "not-executable': Permission denied") != NULL,
        "message: %s", e.text);

    opts.cwd = "/nonexistent/cwd";
    errno = 0;
    ok (spawn_start (argv4, &opts, &e) == NULL && errno == ENOENT,
        "a missing cwd fails synchronously");
    is (e.text, "cannot run '/bin/true': cannot change to '/nonexistent/cwd': "
        "No such file or directory", "message names the directory");

    errno = 0;
    ok (spawn_start (argv5, NULL, &e) == NULL && errno == EINVAL,
        "an empty program name is EINVAL");

    char *bad_env[] = { S("NOEQUALS"), NULL };
    struct spawn_opts o2 = SPAWN_OPTS_INIT;
    o2.env_set = bad_env;
    errno = 0;
    ok (spawn_start (argv4, &o2, &e) == NULL && errno == EINVAL,
        "env_set entry without '=' is EINVAL (%s)", e.text);
}

static void test_exit_and_signal (void)
{
    cs_error_t e;
    struct spawn_status st;
    char buf[64];
    spawn_t *s;

    s = run ("exit 3", NULL, &e);
    ok (s != NULL, "spawned sh -c 'exit 3'");
    ok (spawn_wait (s, &st) == 0, "spawn_wait");
    ok (st.exited && st.code == 3 && !st.signaled, "exit code 3");
    is (spawn_status_str (&st, buf, sizeof (buf)), "exit 3", "status str");
    ok (spawn_poll (s, &st) == 1 && st.code == 3,
        "spawn_poll after reaping still says 1");
    errno = 0;
    ok (spawn_kill (s, SIGTERM) < 0 && errno == ESRCH,
        "spawn_kill after reaping is ESRCH");
    ok (spawn_stop (s, 1, &st) == 0 && st.exited && st.code == 3,
        "spawn_stop after reaping returns the status");
    spawn_destroy (s);

    s = run ("kill -USR1 $$; sleep 5", NULL, &e);
    ok (s != NULL && spawn_wait (s, &st) == 0, "spawned a self-killer");
    ok (st.signaled && st.signal == SIGUSR1 && !st.exited,
        "killed by SIGUSR1 (signal %d)", st.signal);
    snprintf (buf, sizeof (buf), "signal %d (%s)", SIGUSR1,
              strsignal (SIGUSR1));
    char buf2[64];
    is (spawn_status_str (&st, buf2, sizeof (buf2)), buf, "status str");
    spawn_destroy (s);

    /* ignore_signals: the child survives a signal sent to it (as Slurm
     * sends to every process of a step), and the setting survives exec */
    {
        static const int ignore[] = { SIGUSR1, SIGUSR2, 0 };
        struct spawn_opts io = SPAWN_OPTS_INIT;
        io.ignore_signals = ignore;
        s = run ("kill -USR1 $$; kill -USR2 $$; exit 7", &io, &e);
        ok (s != NULL && spawn_wait (s, &st) == 0, "spawned with USR1 ignored");
        ok (st.exited && st.code == 7,
            "ignore_signals: SIGUSR1/SIGUSR2 did not kill the child");
        spawn_destroy (s);
    }

    s = run ("sleep 0.3; exit 0", NULL, &e);
    ok (s != NULL && spawn_poll (s, &st) == 0, "spawn_poll: still running");
    ok (spawn_wait (s, &st) == 0 && st.exited && st.code == 0,
        "then exit 0");
    spawn_destroy (s);

    is (spawn_status_str (NULL, buf, sizeof (buf)), "unknown",
        "status str of NULL");
}

static void test_stdio (void)
{
    cs_error_t e;
    struct spawn_opts opts = SPAWN_OPTS_INIT;
    struct spawn_status st;
    char out[256], err[256];
    spawn_t *s;
    int fl;

    opts.pipe_stdin = opts.pipe_stdout = opts.pipe_stderr = true;
    s = run ("read x; echo \"out:$x\"; echo \"err:$x\" >&2; exit 0", &opts, &e);
    ok (s != NULL, "spawned with three pipes");
    fl = fcntl (spawn_stdout_fd (s), F_GETFL);
    ok (fl >= 0 && (fl & O_NONBLOCK), "stdout pipe is nonblocking");
    fl = fcntl (spawn_stdin_fd (s), F_GETFD);
    ok (fl >= 0 && (fl & FD_CLOEXEC), "stdin pipe is CLOEXEC");
    ok (spawn_stdin_fd (s) > 2 && spawn_stdout_fd (s) > 2
        && spawn_stderr_fd (s) > 2, "fds are valid");
    ok (write (spawn_stdin_fd (s), "hello\n", 6) == 6, "wrote stdin");
    spawn_close_stdin (s);
    ok (spawn_stdin_fd (s) == -1, "stdin closed");
    collect (s, out, sizeof (out), err, sizeof (err));
    is (out, "out:hello\n", "stdout is separate");
    is (err, "err:hello\n", "stderr is separate");
    ok (spawn_wait (s, &st) == 0 && st.exited && st.code == 0, "exit 0");
    spawn_close_stdout (s);
    spawn_close_stderr (s);
    ok (spawn_stdout_fd (s) == -1 && spawn_stderr_fd (s) == -1, "closed");
    spawn_destroy (s);

    /* stdin not piped: /dev/null */
    struct spawn_opts o2 = SPAWN_OPTS_INIT;
    o2.pipe_stdout = true;
    s = run ("cat; echo done", &o2, &e);
    ok (s != NULL && spawn_stdin_fd (s) == -1, "stdin not piped");
    collect (s, out, sizeof (out), NULL, 0);
    is (out, "done\n", "stdin is /dev/null");
    spawn_destroy (s);

    /* stderr_fd */
    int p[2];
    ok (pipe (p) == 0, "pipe for stderr_fd");
    struct spawn_opts o3 = SPAWN_OPTS_INIT;
    o3.stderr_fd = p[1];
    s = run ("echo to-stderr >&2", &o3, &e);
    ok (s != NULL && spawn_wait (s, &st) == 0, "ran with stderr_fd");
    close (p[1]);
    ssize_t n = read (p[0], err, sizeof (err) - 1);
    err[n > 0 ? n : 0] = '\0';
    is (err, "to-stderr\n", "stderr went to stderr_fd");
    close (p[0]);
    spawn_destroy (s);

    /* our pipe ends do not leak into the child */
    opts.pipe_stdin = opts.pipe_stdout = opts.pipe_stderr = true;
    char *argv[] = { S("sleep"), S("5"), NULL };
    s = spawn_start (argv, &opts, &e);
    ok (s != NULL, "spawned sleep via PATH");
    char proc[64];
    snprintf (proc, sizeof (proc), "/proc/%d/fd/%d", (int)spawn_pid (s),
              spawn_stdout_fd (s));
    usleep (100000);
    ok (access (proc, F_OK) < 0, "parent's pipe end is not open in the child");
    spawn_destroy (s);
}

static void test_env_cwd (void)
{
    cs_error_t e;
    struct spawn_opts opts = SPAWN_OPTS_INIT;
    char out[PATH_MAX + 64];
    char *set[] = { S("CS_TEST_B=2"), S("CS_TEST_A=3"), NULL };
    char *unset[] = { S("CS_TEST_C"), NULL };
    spawn_t *s;

    setenv ("CS_TEST_A", "1", 1);
    setenv ("CS_TEST_C", "gone", 1);
    opts.pipe_stdout = true;
    opts.env_set = set;
    opts.env_unset = unset;
    s = run ("echo \"$CS_TEST_A $CS_TEST_B ${CS_TEST_C-unset}\"", &opts, &e);
    ok (s != NULL, "spawned with env_set/env_unset");
    collect (s, out, sizeof (out), NULL, 0);
    is (out, "3 2 unset\n", "env_set replaces and adds, env_unset removes");
    spawn_destroy (s);
    ok (getenv ("CS_TEST_C") && !strcmp (getenv ("CS_TEST_A"), "1"),
        "the parent's environment is untouched");

    /* PATH from env_set is used for the search */
    char script[PATH_MAX + 32], pathvar[PATH_MAX + 8];
    snprintf (script, sizeof (script), "%s/cs-hello", tmpdir);
    FILE *f = fopen (script, "w");
    ok (f && fputs ("#!/bin/sh\necho hello from script\n", f) >= 0
        && fclose (f) == 0 && chmod (script, 0755) == 0, "wrote a script");
    snprintf (pathvar, sizeof (pathvar), "PATH=%s", tmpdir);
    char *set2[] = { pathvar, NULL };
    char *argv[] = { S("cs-hello"), NULL };
    struct spawn_opts o2 = SPAWN_OPTS_INIT;
    o2.pipe_stdout = true;
    o2.env_set = set2;
    s = spawn_start (argv, &o2, &e);
    ok (s != NULL, "found a program in the child's PATH");
    collect (s, out, sizeof (out), NULL, 0);
    is (out, "hello from script\n", "and ran it");
    spawn_destroy (s);

    /* relative PATH entries and relative programs resolve in cwd */
    char *set3[] = { S("PATH=."), NULL };
    struct spawn_opts o4 = SPAWN_OPTS_INIT;
    o4.pipe_stdout = true;
    o4.env_set = set3;
    o4.cwd = tmpdir;
    s = spawn_start (argv, &o4, &e);
    ok (s != NULL, "PATH=. finds the program in cwd");
    collect (s, out, sizeof (out), NULL, 0);
    is (out, "hello from script\n", "and runs it");
    spawn_destroy (s);
    char *argv_rel[] = { S("./cs-hello"), NULL };
    o4.env_set = NULL;
    s = spawn_start (argv_rel, &o4, &e);
    ok (s != NULL, "./cs-hello is relative to cwd");
    collect (s, out, sizeof (out), NULL, 0);
    is (out, "hello from script\n", "and runs");
    spawn_destroy (s);

    struct spawn_opts o3 = SPAWN_OPTS_INIT;
    char want[PATH_MAX + 2];
    o3.pipe_stdout = true;
    o3.cwd = tmpdir;
    s = run ("pwd -P", &o3, &e);
    ok (s != NULL, "spawned with cwd");
    collect (s, out, sizeof (out), NULL, 0);
    char real[PATH_MAX];
    ok (realpath (tmpdir, real) != NULL, "realpath");
    snprintf (want, sizeof (want), "%s\n", real);
    is (out, want, "child runs in cwd");
    spawn_destroy (s);
}

static void test_signals_reset (void)
{
    cs_error_t e;
    struct spawn_opts opts = SPAWN_OPTS_INIT;
    char out[512];
    sigset_t set, old;
    struct sigaction sa, oldint;
    char *argv[] = { S("grep"), S("^Sig[BI][lg][kn]:"),
                     S("/proc/self/status"), NULL };
    spawn_t *s;

    sigemptyset (&set);
    sigaddset (&set, SIGUSR2);
    sigprocmask (SIG_BLOCK, &set, &old);
    memset (&sa, 0, sizeof (sa));
    sa.sa_handler = SIG_IGN;
    sigaction (SIGINT, &sa, &oldint);

    opts.pipe_stdout = true;
    s = spawn_start (argv, &opts, &e);
    ok (s != NULL, "spawned grep with SIGUSR2 blocked and SIGINT ignored");
    collect (s, out, sizeof (out), NULL, 0);
    /* The C library's own signals (32 and 33 with glibc, below SIGRTMIN)
     * cannot be reset through sigaction(); our caller may ignore them.
     */
    unsigned long long blk = ~0ULL, ign = ~0ULL, reserved = 0;
    char *b = strstr (out, "SigBlk:\t"), *i = strstr (out, "SigIgn:\t");
    if (b)
        blk = strtoull (b + 8, NULL, 16);
    if (i)
        ign = strtoull (i + 8, NULL, 16);
    for (int sig = 32; sig < SIGRTMIN; sig++)
        reserved |= 1ULL << (sig - 1);
    ok (blk == 0, "child has an empty signal mask");
    ok ((ign & ~reserved) == 0, "child ignores no signals (SigIgn %llx)",
        ign);
    spawn_destroy (s);

    sigaction (SIGINT, &oldint, NULL);
    sigprocmask (SIG_SETMASK, &old, NULL);

    ok (sigaction (SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN,
        "SIGPIPE is ignored in the parent");
}

static bool pid_gone (pid_t pid)
{
    char path[64], buf[512];
    FILE *f;
    bool gone = true;

    snprintf (path, sizeof (path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen (path, "r")))
        return true;
    if (fgets (buf, sizeof (buf), f)) {
        char *p = strrchr (buf, ')');
        /* a zombie waiting for a reaper counts as gone */
        gone = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
    }
    fclose (f);
    return gone;
}

static void test_stop (void)
{
    cs_error_t e;
    struct spawn_opts opts = SPAWN_OPTS_INIT;
    struct spawn_status st;
    char out[256];
    spawn_t *s;
    double t0, t;

    opts.pipe_stdout = true;

    /* process group: a grandchild dies with spawn_stop */
    s = run ("sleep 100 & echo $!; wait", &opts, &e);
    ok (s != NULL, "spawned a child with a grandchild");
    ok (getpgid (spawn_pid (s)) == spawn_pid (s),
        "child leads its own process group");
    ok (getpgid (0) != spawn_pid (s), "which is not ours");
    /* read the grandchild's pid (first line) */
    size_t len = 0;
    double deadline = time_mono () + 5;
    out[0] = '\0';
    while (!strchr (out, '\n') && time_mono () < deadline) {
        struct pollfd pfd = { .fd = spawn_stdout_fd (s), .events = POLLIN };
        poll (&pfd, 1, 100);
        ssize_t n = read (spawn_stdout_fd (s), out + len,
                          sizeof (out) - len - 1);
        if (n > 0)
            out[len += n] = '\0';
    }
    pid_t gpid = atoi (out);
    ok (gpid > 0 && getpgid (gpid) == spawn_pid (s),
        "grandchild %d is in the child's group", (int)gpid);
    t0 = time_mono ();
    ok (spawn_stop (s, 10.0, &st) == 0, "spawn_stop with 10s grace");
    t = time_mono () - t0;
    ok (st.signaled && st.signal == SIGTERM, "child died of SIGTERM");
    ok (t < 5, "without waiting for the grace period (%.3fs)", t);
    deadline = time_mono () + 5;
    while (!pid_gone (gpid) && time_mono () < deadline)
        usleep (10000);
    ok (pid_gone (gpid), "grandchild is gone too");
    spawn_destroy (s);

    /* a child that ignores TERM is killed after the grace period */
    s = run ("trap '' TERM; echo ready; while :; do sleep 1; done", &opts, &e);
    ok (s != NULL, "spawned a TERM-ignoring child");
    len = 0;
    out[0] = '\0';
    deadline = time_mono () + 5;
    while (!strchr (out, '\n') && time_mono () < deadline) {
        struct pollfd pfd = { .fd = spawn_stdout_fd (s), .events = POLLIN };
        poll (&pfd, 1, 100);
        ssize_t n = read (spawn_stdout_fd (s), out + len,
                          sizeof (out) - len - 1);
        if (n > 0)
            out[len += n] = '\0';
    }
    is (out, "ready\n", "it set its trap");
    t0 = time_mono ();
    ok (spawn_stop (s, 0.3, &st) == 0, "spawn_stop with 0.3s grace");
    t = time_mono () - t0;
    ok (st.signaled && st.signal == SIGKILL, "got SIGKILL (signal %d)",
        st.signal);
    ok (t >= 0.3 && t < 5, "after the grace period (%.3fs)", t);
    spawn_destroy (s);

    /* spawn_kill reaches the group */
    char *argv[] = { S("sleep"), S("100"), NULL };
    s = spawn_start (argv, NULL, &e);
    ok (s != NULL && spawn_kill (s, SIGINT) == 0, "spawn_kill SIGINT");
    ok (spawn_wait (s, &st) == 0 && st.signaled && st.signal == SIGINT,
        "child died of SIGINT");
    spawn_destroy (s);

    /* spawn_destroy kills and reaps a running child */
    s = spawn_start (argv, NULL, &e);
    pid_t pid = spawn_pid (s);
    ok (s != NULL && pid > 0, "spawned sleep");
    errno = 1234;
    spawn_destroy (s);
    ok (errno == 1234, "spawn_destroy keeps errno");
    ok (kill (pid, 0) < 0 && errno == ESRCH, "destroy killed and reaped it");
    spawn_destroy (NULL);
    pass ("spawn_destroy (NULL) is a no-op");
}

int main (void)
{
    const char *t = getenv ("TMPDIR");

    plan (NO_PLAN);
    snprintf (tmpdir, sizeof (tmpdir), "%s/cs-spawn-XXXXXX", t ? t : "/tmp");
    if (!mkdtemp (tmpdir))
        bail_out ("mkdtemp: %s", strerror (errno));

    test_exec_errors ();
    test_exit_and_signal ();
    test_stdio ();
    test_env_cwd ();
    test_signals_reset ();
    test_stop ();

    char cmd[PATH_MAX + 16];
    snprintf (cmd, sizeof (cmd), "rm -rf '%s'", tmpdir);
    if (system (cmd) != 0)
        diag ("cannot remove %s", tmpdir);
    done_testing ();
}
