#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "common/log.h"
#include "common/libtap/tap.h"

static char path[] = "/tmp/cs-log-XXXXXX";
static int saved_stderr = -1;

/* Send stderr to a fresh temp file. */
static void capture (void)
{
    int fd;

    fflush (stderr);
    if ((fd = open (path, O_WRONLY | O_TRUNC)) < 0
        || dup2 (fd, STDERR_FILENO) < 0)
        bail_out ("cannot redirect stderr: %s", strerror (errno));
    close (fd);
}

/* Restore stderr and return what was written (static buffer). */
static const char *captured (void)
{
    static char buf[8192];
    FILE *f;
    size_t n;

    fflush (stderr);
    dup2 (saved_stderr, STDERR_FILENO);
    if (!(f = fopen (path, "r")))
        bail_out ("cannot read %s", path);
    n = fread (buf, 1, sizeof (buf) - 1, f);
    buf[n] = '\0';
    fclose (f);
    return buf;
}

int main (void)
{
    const char *out;
    int fd, st;
    pid_t pid;

    plan (NO_PLAN);
    if ((fd = mkstemp (path)) < 0)
        bail_out ("mkstemp: %s", strerror (errno));
    close (fd);
    saved_stderr = dup (STDERR_FILENO);

    log_init ("/usr/bin/codeswarm-test");
    is (log_prog (), "codeswarm-test", "log_init keeps the basename");

    capture ();
    log_msg ("hello '%s'", "x");
    errno = ENOENT;
    log_err ("cannot open '%s'", "/y");
    int e = errno;
    log_errn (EACCES, "cannot write");
    log_debug ("hidden");
    log_set_verbose (1);
    log_debug ("shown %d", 1);
    log_trace ("hidden trace");
    log_set_verbose (2);
    log_trace ("shown trace");
    out = captured ();
    ok (e == ENOENT, "log_err keeps errno");
    is (out, "codeswarm-test: hello 'x'\n"
        "codeswarm-test: cannot open '/y': No such file or directory\n"
        "codeswarm-test: cannot write: Permission denied\n"
        "codeswarm-test: shown 1\n"
        "codeswarm-test: shown trace\n",
        "messages, errno text and verbosity levels");
    cmp_ok (log_verbose (), "==", 2, "log_verbose");
    log_set_verbose (0);

    capture ();
    log_set_timestamps (1);
    log_msg ("stamped");
    log_set_timestamps (0);
    out = captured ();
    ok (strlen (out) == 25 + strlen ("codeswarm-test: stamped\n")
        && out[4] == '-' && out[10] == 'T' && out[23] == 'Z'
        && !strcmp (out + 25, "codeswarm-test: stamped\n"),
        "timestamp prefix: %s", out);

    capture ();
    char big[10000];
    memset (big, 'a', sizeof (big) - 1);
    big[sizeof (big) - 1] = '\0';
    log_msg ("%s", big);
    out = captured ();
    size_t len = strlen (out);
    ok (len > 1000 && len < 4096 && out[len - 1] == '\n',
        "a long message is cut and still ends in a newline (%zu)", len);

    capture ();
    fflush (stdout);
    if ((pid = fork ()) == 0) {
        errno = EPERM;
        log_err_exit ("fatal '%s'", "z");
    }
    ok (waitpid (pid, &st, 0) == pid && WIFEXITED (st)
        && WEXITSTATUS (st) == 1, "log_err_exit exits 1");
    if ((pid = fork ()) == 0)
        log_msg_exit ("bye");
    ok (waitpid (pid, &st, 0) == pid && WIFEXITED (st)
        && WEXITSTATUS (st) == 1, "log_msg_exit exits 1");
    out = captured ();
    is (out, "codeswarm-test: fatal 'z': Operation not permitted\n"
        "codeswarm-test: bye\n", "exit messages");

    log_init (NULL);
    is (log_prog (), "codeswarm", "log_init (NULL)");
    unlink (path);
    close (saved_stderr);
    done_testing ();
}
