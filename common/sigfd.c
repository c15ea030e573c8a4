/* sigfd.c - the signals that end a program, through a signalfd (see sigfd.h) */
#include "config.h"

#include <signal.h>
#include <sys/signalfd.h>

#include "common/sigfd.h"

int sigfd_open (void)
{
    sigset_t mask;

    sigemptyset (&mask);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGHUP);
    if (sigprocmask (SIG_BLOCK, &mask, NULL) < 0)
        return -1;
    signal (SIGPIPE, SIG_IGN);
    return signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}
