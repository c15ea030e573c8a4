/* test/ssh.c - the ssh command line */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/libtap/tap.h"
#include "router/ssh.h"

static const char *join (char **argv)
{
    static char buf[2048];
    buf[0] = '\0';
    for (char **p = argv; p && *p; p++) {
        if (p != argv)
            strncat (buf, " ", sizeof (buf) - strlen (buf) - 1);
        strncat (buf, *p, sizeof (buf) - strlen (buf) - 1);
    }
    return buf;
}

int main (int argc, char **argv)
{
    char o1[] = "-p2222", o2[] = "-oControlMaster=auto", o3[] = "-J";
    char o4[] = "jump";
    char *opts[] = { o1, o2, o3, o4, NULL };
    cs_error_t error;
    char **a;
    char *q;

    plan (NO_PLAN);

    a = ssh_argv ("/usr/bin/ssh", "alice@login", NULL, NULL, NULL, &error);
    is (join (a), "/usr/bin/ssh -oBatchMode=yes -- alice@login "
        "codeswarm-mailbox serve --stdio", "plain");
    ssh_argv_free (a);

    a = ssh_argv ("ssh", "login", opts, "/opt/cs/bin/codeswarm-mailbox",
                  "/home/a b/.cs", &error);
    is (join (a), "ssh -oBatchMode=yes -p2222 -oControlMaster=auto -J jump -- "
        "login /opt/cs/bin/codeswarm-mailbox serve --stdio --home "
        "'/home/a b/.cs'", "options pass through, home quoted");
    ssh_argv_free (a);

    ok (ssh_argv ("ssh", "-oProxyCommand=x", NULL, NULL, NULL, &error) == NULL,
        "a host that looks like an option: %s", error.text);
    ok (ssh_argv ("ssh", "h;rm", NULL, NULL, NULL, &error) == NULL,
        "a host with shell characters: %s", error.text);
    ok (ssh_argv ("ssh", "", NULL, NULL, NULL, &error) == NULL, "empty host");
    ok (ssh_argv (NULL, "h", NULL, NULL, NULL, &error) == NULL, "no ssh");

    q = ssh_shell_quote ("it's");
    is (q, "'it'\\''s'", "single quote quoted");
    free (q);
    q = ssh_shell_quote ("");
    is (q, "''", "empty string quoted");
    free (q);
    q = ssh_shell_quote ("$(reboot)");
    is (q, "'$(reboot)'", "command substitution quoted");
    free (q);
    q = ssh_shell_quote ("/a/b-c_d.e");
    is (q, "/a/b-c_d.e", "safe words left alone");
    free (q);

    setenv ("CODESWARM_SSH", "/x/myssh", 1);
    is (ssh_program (), "/x/myssh", "CODESWARM_SSH overrides");
    setenv ("CODESWARM_SSH", "", 1);
    is (ssh_program (), PATH_SSH, "else PATH_SSH");
    done_testing ();
}
