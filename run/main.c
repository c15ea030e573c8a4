/* main.c - codeswarm-run: "codeswarm run" and "codeswarm run status"
 *
 *   codeswarm run [OPTIONS] TASKS.yaml
 *   codeswarm run status [--json] RUN|DIR
 *   codeswarm plan [--swarm ID] [--node K] SPEC.md -o TASKS.yaml
 *
 * Options and exit codes are described in codeswarm(1) and the task file
 * in codeswarm-tasks(5).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "mailbox/mailbox.h"
#include "run/run.h"

static void usage (FILE *f)
{
    fprintf (f,
"usage: codeswarm run [OPTIONS] TASKS.yaml\n"
"       codeswarm run status [--json] RUN|DIR\n"
"\n"
"Dispatch a task graph over the nodes of a swarm, one turn per task.\n"
"\n"
"  -s, --swarm ID        the swarm (default: $CODESWARM_SWARM_ID)\n"
"  -o, --output DIR      output directory (default: ./codeswarm-run-RUN)\n"
"  -r, --run ID          the run's name (default: the task file's name)\n"
"  -i, --integrate       merge the passed branches into\n"
"                        codeswarm/RUN/integration at the end\n"
"  -n, --check           check the task file, print its order, and exit\n"
"      --home DIR        the codeswarm home (default: $CODESWARM_HOME)\n"
"      --router PROG     the router to start when none is running\n"
"      --router-opt OPT  an option for that router (repeatable)\n"
"      --no-progress     no progress line on a terminal\n"
"  -v, --verbose         more messages\n"
"  -h, --help            this text\n"
"\n"
"Exit status: 0 when every task passed, 1 otherwise, 2 when the run\n"
"could not start (bad options, a task file with errors).\n");
}

/* The default run id: the task file's name without its extension. */
static int default_run_id (const char *path, char *buf, size_t len)
{
    char *copy = strdup (path), *b, *dot;

    if (!copy)
        return -1;
    b = basename (copy);
    if ((dot = strrchr (b, '.')) && dot != b)
        *dot = '\0';
    snprintf (buf, len, "%s", b);
    free (copy);
    for (char *p = buf; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'
              || *p == '.'))
            *p = '_';
    }
    return tasks_id_valid (buf) ? 0 : -1;
}

static int cmd_status (int argc, char **argv)
{
    static const struct option lo[] = {
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool json = false;
    char dir[PATH_MAX / 2];
    struct stat sb;
    cs_error_t e;
    int c;

    optind = 1;
    while ((c = getopt_long (argc, argv, "jh", lo, NULL)) != -1) {
        if (c == 'j')
            json = true;
        else if (c == 'h') {
            usage (stdout);
            return 0;
        }
        else {
            usage (stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        log_msg ("run status: expected one RUN or DIR");
        return 2;
    }
    if (strlen (argv[optind]) > sizeof (dir) - 32) {
        log_msg ("run status: '%s' is too long", argv[optind]);
        return 2;
    }
    if (stat (argv[optind], &sb) == 0 && S_ISDIR (sb.st_mode))
        snprintf (dir, sizeof (dir), "%s", argv[optind]);
    else
        snprintf (dir, sizeof (dir), "codeswarm-run-%s", argv[optind]);
    if (run_status (dir, json, &e) < 0) {
        log_msg ("%s", e.text);
        return 1;
    }
    return 0;
}

int main (int argc, char **argv)
{
    enum { O_HOME = 256, O_ROUTER, O_ROUTER_OPT, O_NO_PROGRESS };
    static const struct option lo[] = {
        { "swarm", required_argument, NULL, 's' },
        { "output", required_argument, NULL, 'o' },
        { "run", required_argument, NULL, 'r' },
        { "integrate", no_argument, NULL, 'i' },
        { "check", no_argument, NULL, 'n' },
        { "home", required_argument, NULL, O_HOME },
        { "router", required_argument, NULL, O_ROUTER },
        { "router-opt", required_argument, NULL, O_ROUTER_OPT },
        { "no-progress", no_argument, NULL, O_NO_PROGRESS },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct run_opts o = { .progress = true };
    char *router_args[32] = { NULL };
    int nra = 0, c, verbose = 0, rc;
    bool check = false;
    char run_id[TASKS_ID_MAX + 1], output[PATH_MAX], home[PATH_MAX];
    taskfile_t *tf;
    cs_error_t e;

    log_init ("codeswarm run");
    /* "codeswarm run ARGS" execs us as "codeswarm-run run ARGS" */
    if (argc > 1 && !strcmp (argv[1], "run")) {
        argv[1] = argv[0];
        argc--;
        argv++;
    }
    if (argc > 1 && !strcmp (argv[1], "plan")) {
        log_init ("codeswarm plan");
        return plan_main (argc - 1, argv + 1);
    }
    if (argc > 1 && !strcmp (argv[1], "status")) {
        log_init ("codeswarm run status");
        return cmd_status (argc - 1, argv + 1);
    }
    while ((c = getopt_long (argc, argv, "s:o:r:invh", lo, NULL)) != -1) {
        switch (c) {
            case 's':
                o.swarm = optarg;
                break;
            case 'o':
                o.output = optarg;
                break;
            case 'r':
                o.run_id = optarg;
                break;
            case 'i':
                o.integrate = true;
                break;
            case 'n':
                check = true;
                break;
            case O_HOME:
                o.home = optarg;
                break;
            case O_ROUTER:
                o.router = optarg;
                break;
            case O_ROUTER_OPT:
                if (nra >= 30) {
                    log_msg ("too many --router-opt");
                    return 2;
                }
                router_args[nra++] = optarg;
                break;
            case O_NO_PROGRESS:
                o.progress = false;
                break;
            case 'v':
                verbose++;
                break;
            case 'h':
                usage (stdout);
                return 0;
            default:
                fprintf (stderr, "run 'codeswarm run --help' for the "
                         "options\n");
                return 2;
        }
    }
    log_set_verbose (verbose);
    if (optind >= argc) {
        log_msg ("expected a task file");
        return 2;
    }
    if (optind < argc - 1) {
        log_msg ("unexpected argument '%s'", argv[optind + 1]);
        return 2;
    }
    o.tasks_path = argv[optind];
    if (!(tf = taskfile_load (o.tasks_path, &e))) {
        log_msg ("%s", e.text);
        return 2;
    }
    if (check) {
        printf ("%s: %d tasks, in this order:", o.tasks_path, tf->ntasks);
        for (int q = 0; q < tf->ntasks; q++)
            printf (" %s", tf->tasks[tf->order[q]].id);
        printf ("\n");
        taskfile_destroy (tf);
        return 0;
    }
    if (!o.swarm)
        o.swarm = getenv ("CODESWARM_SWARM_ID");
    if (!o.swarm || !*o.swarm) {
        log_msg ("--swarm is required (or set CODESWARM_SWARM_ID)");
        taskfile_destroy (tf);
        return 2;
    }
    if (o.run_id) {
        if (!tasks_id_valid (o.run_id)) {
            log_msg ("--run '%s' is not a valid run id (letters, digits, "
                     "'.', '_', '-')", o.run_id);
            taskfile_destroy (tf);
            return 2;
        }
    }
    else {
        if (default_run_id (o.tasks_path, run_id, sizeof (run_id)) < 0) {
            log_msg ("cannot make a run id of '%s': give --run",
                     o.tasks_path);
            taskfile_destroy (tf);
            return 2;
        }
        o.run_id = run_id;
    }
    if (!o.output) {
        snprintf (output, sizeof (output), "codeswarm-run-%s", o.run_id);
        o.output = output;
    }
    if (!o.home) {
        if (mb_home (home, sizeof (home), true, &e) < 0) {
            log_msg ("%s", e.text);
            taskfile_destroy (tf);
            return 2;
        }
        o.home = home;
    }
    router_args[nra] = NULL;
    o.router_args = router_args;
    if (!isatty (STDERR_FILENO) || getenv ("CODESWARM_NO_PROGRESS"))
        o.progress = false;
    rc = run_tasks (tf, &o, &e);
    if (rc == 2)
        log_msg ("%s", e.text);
    taskfile_destroy (tf);
    return rc;
}

/* vi: set ts=4 sw=4 expandtab: */
