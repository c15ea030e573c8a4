/* ssh.c - the ssh command line of the router's remote transport */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "router/ssh.h"

#ifndef PATH_SSH
#define PATH_SSH "/usr/bin/ssh"
#endif

const char *ssh_program (void)
{
    const char *s = getenv ("CODESWARM_SSH");
    return s && *s ? s : PATH_SSH;
}

char *ssh_shell_quote (const char *s)
{
    static const char safe[] = "abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789@%_-+=:,./";
    size_t n = 0;
    char *q, *p;

    if (*s && strspn (s, safe) == strlen (s))
        return strdup (s);
    for (const char *c = s; *c; c++)
        n += *c == '\'' ? 4 : 1;
    if (!(q = malloc (n + 3)))
        return NULL;
    p = q;
    *p++ = '\'';
    for (const char *c = s; *c; c++) {
        if (*c == '\'') {
            memcpy (p, "'\\''", 4);
            p += 4;
        }
        else
            *p++ = *c;
    }
    *p++ = '\'';
    *p = '\0';
    return q;
}

void ssh_argv_free (char **argv)
{
    if (argv) {
        int saved_errno = errno;
        for (char **p = argv; *p; p++)
            free (*p);
        free (argv);
        errno = saved_errno;
    }
}

char **ssh_argv (const char *ssh, const char *host, char *const *opts,
                 const char *remote_cmd, const char *remote_home,
                 cs_error_t *errp)
{
    size_t nopts = 0, n = 0;
    char **argv;

    if (!ssh || !*ssh || !host || !*host) {
        errno = EINVAL;
        errprintf (errp, "no ssh program or host");
        return NULL;
    }
    if (host[0] == '-' || strpbrk (host, " \t\n'\"\\;&|<>`$")) {
        errno = EINVAL;
        errprintf (errp, "'%s' is not a valid ssh host", host);
        return NULL;
    }
    if (remote_home && !*remote_home)
        remote_home = NULL;
    for (; opts && opts[nopts]; nopts++)
        ;
    /* ssh, BatchMode, opts, --, host, cmd, serve, --stdio, --home, dir */
    if (!(argv = calloc (nopts + 11, sizeof (char *)))) {
        errprintf (errp, "out of memory");
        return NULL;
    }
    if (!(argv[n++] = strdup (ssh)) || !(argv[n++] = strdup ("-oBatchMode=yes")))
        goto nomem;
    for (size_t i = 0; i < nopts; i++)
        if (!(argv[n++] = strdup (opts[i])))
            goto nomem;
    if (!(argv[n++] = strdup ("--")) || !(argv[n++] = strdup (host))
        || !(argv[n++] = ssh_shell_quote (remote_cmd && *remote_cmd
                                          ? remote_cmd : "codeswarm-mailbox"))
        || !(argv[n++] = strdup ("serve")) || !(argv[n++] = strdup ("--stdio")))
        goto nomem;
    if (remote_home) {
        if (!(argv[n++] = strdup ("--home"))
            || !(argv[n++] = ssh_shell_quote (remote_home)))
            goto nomem;
    }
    return argv;
nomem:
    ssh_argv_free (argv);
    errno = ENOMEM;
    errprintf (errp, "out of memory");
    return NULL;
}
