/* codeswarm.c - the umbrella command: "codeswarm VERB ARGS" runs the
 * program that implements VERB (git style).
 *
 *   send attach approvals approve interrupt  -> codeswarm-client VERB ARGS
 *   launch cancel forget status top doctor setup-codex
 *                                           -> codeswarm-launch VERB ARGS
 *   relay                                    -> codeswarm-relay VERB ARGS
 *
 * These programs are looked up in the directories of $CODESWARM_EXEC_PATH
 * (a colon separated list) when it is set and not empty, else in the
 * installed tree's pkglibexecdir: never in both, so that a build tree's
 * tests cannot pick up the helpers of an installed copy (as
 * GIT_EXEC_PATH).  The installed tree is found relative to this program
 * (common/prefix.h), so that a tree copied to another prefix still works.
 *
 *   codeswarm help [VERB|TOPIC]   VERB --help, or the man page of TOPIC
 *   codeswarm --exec-path | --man-path | --data-path
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/prefix.h"

struct verb {
    const char *name;
    const char *program;
    const char *summary;
};

static const struct verb verbs[] = {
    {"launch", "codeswarm-launch", "start a swarm: one codex agent per node"},
    {"status", "codeswarm-launch",
     "show swarms: state, jobs, nodes, turns, tokens"},
    {"cancel", "codeswarm-launch", "stop a swarm and its job chain"},
    {"forget", "codeswarm-launch", "remove swarms that have ended"},
    {"top", "codeswarm-launch",
     "a live view of the nodes: turns, answers, approvals"},
    {"doctor", "codeswarm-launch",
     "check codex, the mailbox filesystem, Slurm"},
    {"setup-codex", "codeswarm-launch",
     "install a pinned codex for the compute nodes"},
    {"export", "codeswarm-launch", "write a swarm as one tar.gz"},
    {"import", "codeswarm-launch", "restore an exported swarm"},
    {"audit", "codeswarm-launch", "who did what to the swarms, and how"},
    {"report", "codeswarm-launch", "tokens per node-hour and per turn"},
    {"send", "codeswarm-client", "send a prompt to nodes of a swarm"},
    {"attach", "codeswarm-client", "follow a swarm's events"},
    {"approvals", "codeswarm-client", "list pending approval requests"},
    {"approve", "codeswarm-client", "answer an approval request"},
    {"interrupt", "codeswarm-client", "interrupt the running turn on nodes"},
    {"relay", "codeswarm-relay", "relay tools: keygen FILE writes a seal key"},
    {"run", "codeswarm-run", "run a task graph over the nodes of a swarm"},
    {"plan", "codeswarm-run",
     "have an agent write the task graph of a specification"},
    {NULL, NULL, NULL},
};

/* "codeswarm help TOPIC": the manual page that describes TOPIC */
struct topic {
    const char *name;
    const char *section;
    const char *page;
};

static const struct topic topics[] = {
    {"codeswarm", "1", "codeswarm"},
    {"overview", "7", "codeswarm"},
    {"router", "1", "codeswarm-router"},
    {"worker", "1", "codeswarm-worker"},
    {"mailbox", "1", "codeswarm-mailbox"},
    {"mailbox-format", "5", "codeswarm-mailbox"},
    {"config", "5", "codeswarm.yaml"},
    {"protocol", "7", "codeswarm-protocol"},
    {NULL, NULL, NULL},
};

static void usage (FILE *f)
{
    fprintf (f, "usage: codeswarm VERB [ARGS...]\n"
                "       codeswarm help [VERB|TOPIC] | --help | --version\n"
                "       codeswarm --exec-path | --man-path | --data-path\n"
                "\n"
                "verbs:\n");
    for (const struct verb *v = verbs; v->name; v++)
        fprintf (f, "  %-12s %s\n", v->name, v->summary);
    fprintf (f, "\nhelp topics (man pages):");
    for (const struct topic *t = topics; t->name; t++)
        fprintf (f, " %s", t->name);
    fprintf (f, "\n");
    fprintf (
        f, "\n"
           "\"codeswarm help VERB\" (or \"codeswarm VERB --help\") describes a "
           "verb; see also\n"
           "codeswarm(1) and codeswarm(7).\n"
           "\n"
           "Exit status of every verb: 0 done, 1 not done (the message says "
           "why),\n"
           "2 usage error (a bad option or argument; nothing was done).\n");
}

static const struct verb *verb_lookup (const char *name)
{
    for (const struct verb *v = verbs; v->name; v++)
        if (!strcmp (v->name, name))
            return v;
    return NULL;
}

static const struct topic *topic_lookup (const char *name)
{
    for (const struct topic *t = topics; t->name; t++)
        if (!strcmp (t->name, name))
            return t;
    return NULL;
}

/* "codeswarm help TOPIC": man(1) with this tree's pages first in MANPATH */
static int help_topic (const struct topic *t)
{
    const char *old = getenv ("MANPATH");
    char *manpath;

    if (asprintf (&manpath, "%s:%s", prefix_dir (PREFIX_DIR_MAN),
                  old ? old : "") < 0)
        log_err_exit ("out of memory");
    setenv ("MANPATH", manpath, 1);
    free (manpath);
    execlp ("man", "man", t->section, t->page, (char *)NULL);
    log_err ("cannot run 'man'");
    return 127;
}

/* Try dir/program; returns only when it could not be run (errno set). */
static void try_exec (const char *dir, size_t dirlen, const char *program,
                      char **argv)
{
    char path[4096];
    int n;

    if (dirlen == 0)
        return;
    n = snprintf (path, sizeof (path), "%.*s/%s", (int)dirlen, dir, program);
    if (n < 0 || (size_t)n >= sizeof (path))
        return;
    if (access (path, X_OK) < 0)
        return;
    argv[0] = path;
    execv (path, argv);
    log_err ("cannot run '%s'", path);
    exit (126);
}

int main (int argc, char *argv[])
{
    const struct verb *v;
    const char *ep;
    char **nargv;

    log_init ("codeswarm");
    if (argc < 2) {
        usage (stderr);
        return 2;
    }
    if (!strcmp (argv[1], "help") && argc > 2) {
        /* "help VERB" is "VERB --help" */
        static char help_opt[] = "--help";
        if (argc > 3) {
            log_msg ("help takes one verb (see 'codeswarm help')");
            return 2;
        }
        if (!verb_lookup (argv[2])) {
            const struct topic *t = topic_lookup (argv[2]);
            if (t)
                return help_topic (t);
            log_msg ("'%s' is not a codeswarm verb nor a help topic",
                     argv[2]);
            fprintf (stderr, "run 'codeswarm help' for the list of verbs "
                             "and topics\n");
            return 2;
        }
        argv[1] = argv[2];
        argv[2] = help_opt;
    } else if (!strcmp (argv[1], "--help") || !strcmp (argv[1], "-h") ||
               !strcmp (argv[1], "help")) {
        usage (stdout);
        return 0;
    }
    if (!strcmp (argv[1], "--version") || !strcmp (argv[1], "-V")) {
        printf ("codeswarm %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (!strcmp (argv[1], "--exec-path")) {
        printf ("%s\n", prefix_dir (PREFIX_DIR_PKGLIBEXEC));
        return 0;
    }
    if (!strcmp (argv[1], "--man-path")) {
        printf ("%s\n", prefix_dir (PREFIX_DIR_MAN));
        return 0;
    }
    if (!strcmp (argv[1], "--data-path")) {
        printf ("%s\n", prefix_dir (PREFIX_DIR_PKGDATA));
        return 0;
    }
    if (!(v = verb_lookup (argv[1]))) {
        if (argv[1][0] == '-')
            log_msg ("unknown option '%s'", argv[1]);
        else
            log_msg ("'%s' is not a codeswarm verb", argv[1]);
        fprintf (stderr, "run 'codeswarm --help' for the list of verbs\n");
        return 2;
    }

    /* program VERB ARGS...: argv shifted by one, argv[0] filled by try_exec */
    if (!(nargv = calloc ((size_t)argc + 1, sizeof (*nargv))))
        log_err_exit ("out of memory");
    for (int i = 1; i < argc; i++)
        nargv[i] = argv[i];

    if ((ep = getenv ("CODESWARM_EXEC_PATH")) && *ep) {
        const char *p = ep;
        while (*p) {
            const char *end = strchrnul (p, ':');
            try_exec (p, (size_t)(end - p), v->program, nargv);
            p = *end ? end + 1 : end;
        }
        log_msg ("cannot find '%s' for verb '%s' in CODESWARM_EXEC_PATH "
                 "(%s)",
                 v->program, v->name, ep);
        fprintf (stderr, "hint: add the directory that holds '%s' to "
                         "CODESWARM_EXEC_PATH, or unset it\n"
                         "hint: to use the installed helpers in %s\n",
                 v->program, prefix_dir (PREFIX_DIR_PKGLIBEXEC));
    } else {
        const char *libexec = prefix_dir (PREFIX_DIR_PKGLIBEXEC);
        try_exec (libexec, strlen (libexec), v->program, nargv);
        log_msg ("cannot find '%s' for verb '%s' in %s", v->program, v->name,
                 libexec);
        fprintf (stderr, "hint: is codeswarm installed completely?  "
                         "CODESWARM_EXEC_PATH names other\n"
                         "hint: directories to search (colon separated)\n");
    }
    free (nargv);
    return 127;
}
