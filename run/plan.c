/* plan.c - "codeswarm plan SPEC.md -o TASKS.yaml": one node's agent writes
 * the task graph of a specification
 *
 * The specification goes to one node as a turn on a new thread, with the
 * task file format described; the last fenced block of the agent's final
 * answer (or the whole answer when it has none) must load as a task file
 * (codeswarm-tasks(5)).  Only then is it written; an invalid graph is
 * shown with the reason and never written.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/json.h"
#include "common/log.h"
#include "mailbox/mailbox.h"
#include "run/run.h"

#define PLAN_MAX_SPEC (256 * 1024)

static const char plan_intro[] =
    "Write the task graph for the specification below, as a YAML task file "
    "for \"codeswarm run\", in one fenced block.  The file is a mapping with "
    "\"tasks\" (a list) and optionally \"defaults\".  Each task has \"id\" "
    "(letters, digits, '.', '_', '-'), \"prompt\" (the complete instructions "
    "for one agent working alone in its own git worktree), and optionally "
    "\"depends_on\" (a list of ids that must be done first), \"accept\" (a "
    "shell command that exits 0 when the task is done right), \"retries\", "
    "\"timeout\" (e.g. 30m).  \"defaults\" may set \"repo\", \"accept\", "
    "\"retries\", \"timeout\".  No other keys.  Make tasks that can run in "
    "parallel independent, and keep the graph free of cycles.\n\n"
    "The specification:\n\n";

/* The last ``` fenced block of s, or s itself.  Result: free(). */
static char *extract_yaml (const char *s)
{
    const char *p = s, *open = NULL, *close = NULL, *q;

    while ((q = strstr (p, "```"))) {
        const char *nl = strchr (q, '\n');
        const char *end;
        if (!nl)
            break;
        if (!(end = strstr (nl + 1, "```")))
            break;
        open = nl + 1;
        close = end;
        p = end + 3;
    }
    if (open)
        return strndup (open, close - open);
    return strdup (s);
}

static char *read_all (const char *path, cs_error_t *errp)
{
    FILE *f = fopen (path, "re");
    char *buf;
    size_t n;

    if (!f) {
        errprintf (errp, "cannot open '%s': %s", path, strerror (errno));
        return NULL;
    }
    if (!(buf = malloc (PLAN_MAX_SPEC + 1))) {
        fclose (f);
        errprintf (errp, "out of memory");
        return NULL;
    }
    n = fread (buf, 1, PLAN_MAX_SPEC + 1, f);
    fclose (f);
    if (n > PLAN_MAX_SPEC) {
        free (buf);
        errprintf (errp, "'%s' is larger than %d bytes", path, PLAN_MAX_SPEC);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static const char *dstr (const cJSON *d, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (d, key);
    return cJSON_IsString (v) ? v->valuestring : NULL;
}

/* One turn on node k: its final answer (free), or NULL with errp. */
static char *plan_turn (link_t *l, const char *swarm, int k,
                        const char *prompt, double timeout, cs_error_t *errp)
{
    cJSON *p = cJSON_CreateObject (), *o;
    char *iid = NULL, *answer = NULL, *last = NULL;
    double until = time_mono () + timeout;
    bool done = false;

    json_add_str (p, "swarm_id", swarm);
    json_add_item (p, "nodes", cJSON_CreateIntArray (&k, 1));
    json_add_str (p, "content", prompt);
    json_add_bool (p, "new_thread", true);
    if (link_send (l, "hello", "hello", NULL) < 0
        || link_send (l, "inject", "plan", p) < 0) {
        errprintf (errp, "cannot talk to the router");
        return NULL;
    }
    while (!done) {
        struct pollfd pfd = { .fd = link_fd (l), .events = POLLIN };
        int ms = (int)((until - time_mono ()) * 1000);
        if (ms <= 0) {
            errprintf (errp, "no answer within %gs", timeout);
            break;
        }
        if (pfd.fd < 0 || (poll (&pfd, 1, ms) < 0 && errno != EINTR)
            || link_read (l) < 0 || link_eof (l)) {
            errprintf (errp, "lost the router");
            break;
        }
        while ((o = link_next (l))) {
            const char *name = dstr (o, "event");
            const cJSON *d = cJSON_GetObjectItemCaseSensitive (o, "data");
            const char *rid = dstr (d, "request_id");
            if (!name) {
                cJSON_Delete (o);
                continue;
            }
            if (rid && !strcmp (rid, "plan")) {
                if (!strcmp (name, "inject_ack"))
                    iid = strdup (dstr (d, "injection_id"));
                else if (!strcmp (name, "command_rejected")) {
                    errprintf (errp, "the router refused the prompt: %s",
                               dstr (d, "reason") ? dstr (d, "reason") : "?");
                    done = true;
                }
            }
            else if (iid && dstr (d, "injection_id")
                     && !strcmp (dstr (d, "injection_id"), iid)) {
                if (!strcmp (name, "assistant")) {
                    const cJSON *fa = cJSON_GetObjectItemCaseSensitive (
                        d, "final_answer");
                    free (last);
                    last = dstr (d, "text") ? strdup (dstr (d, "text")) : NULL;
                    if (cJSON_IsTrue (fa) && last)
                        answer = strdup (last);
                }
                else if (!strcmp (name, "turn_complete")) {
                    const char *st = dstr (d, "status");
                    if (!st || strcmp (st, "completed") != 0)
                        errprintf (errp, "the turn ended %s", st ? st : "?");
                    else if (!answer && !last)
                        errprintf (errp, "the agent gave no answer");
                    else if (!answer)
                        answer = strdup (last);
                    done = true;
                }
            }
            cJSON_Delete (o);
        }
    }
    free (iid);
    free (last);
    if (answer && errp->text[0]) {
        free (answer);
        answer = NULL;
    }
    return answer;
}

int plan_main (int argc, char **argv)
{
    static const struct option lo[] = {
        { "output", required_argument, NULL, 'o' },
        { "swarm", required_argument, NULL, 's' },
        { "node", required_argument, NULL, 'k' },
        { "timeout", required_argument, NULL, 't' },
        { "home", required_argument, NULL, 'H' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *out = NULL, *swarm = getenv ("CODESWARM_SWARM_ID");
    const char *home = NULL;
    char homebuf[PATH_MAX], logpath[PATH_MAX + 32];
    double timeout = 1800;
    int c, k = 0, verbose = 0, rc = 1;
    char *spec, *prompt = NULL, *answer = NULL, *yaml = NULL, *dir = NULL;
    cs_error_t e = { { 0 } };
    link_t *l = NULL;
    taskfile_t *tf;

    optind = 1;
    while ((c = getopt_long (argc, argv, "o:s:vh", lo, NULL)) != -1) {
        switch (c) {
            case 'o': out = optarg; break;
            case 's': swarm = optarg; break;
            case 'k':
                k = atoi (optarg);
                break;
            case 't':
                if (parse_duration (optarg, &timeout) < 0 || timeout <= 0) {
                    log_msg ("--timeout: '%s' is not a duration", optarg);
                    return 2;
                }
                break;
            case 'H': home = optarg; break;
            case 'v': verbose++; break;
            case 'h':
                printf ("usage: codeswarm plan [--swarm ID] [--node K] "
                        "[--timeout DUR] SPEC.md -o TASKS.yaml\n");
                return 0;
            default:
                return 2;
        }
    }
    log_set_verbose (verbose);
    if (optind != argc - 1 || !out) {
        log_msg ("usage: codeswarm plan [--swarm ID] SPEC.md -o TASKS.yaml");
        return 2;
    }
    if (!swarm || !*swarm) {
        log_msg ("--swarm is required (or set CODESWARM_SWARM_ID)");
        return 2;
    }
    if (!(spec = read_all (argv[optind], &e))) {
        log_msg ("%s", e.text);
        return 2;
    }
    if (!home) {
        if (mb_home (homebuf, sizeof (homebuf), true, &e) < 0) {
            log_msg ("%s", e.text);
            free (spec);
            return 2;
        }
        home = homebuf;
    }
    if (asprintf (&prompt, "%s%s", plan_intro, spec) < 0)
        log_msg_exit ("out of memory");
    snprintf (logpath, sizeof (logpath), "%s.router.log", out);
    if (!(l = link_open (home, NULL, NULL, logpath, &e))) {
        log_msg ("%s", e.text);
        goto done;
    }
    if (!(answer = plan_turn (l, swarm, k, prompt, timeout, &e))) {
        log_msg ("node %d: %s", k, e.text);
        goto done;
    }
    yaml = extract_yaml (answer);
    {
        char *copy = strdup (out);
        dir = realpath (dirname (copy), NULL);
        free (copy);
    }
    if (!(tf = taskfile_parse (yaml, strlen (yaml), "plan", dir, &e))) {
        log_msg ("the plan is not a valid task file: %s", e.text);
        fprintf (stderr, "the agent's answer (not written):\n%s\n", answer);
        goto done;
    }
    log_msg ("a valid task file: %d tasks", tf->ntasks);
    taskfile_destroy (tf);
    {
        size_t n = strlen (yaml);
        /* the file ends with a newline */
        if (n && yaml[n - 1] != '\n') {
            char *y = realloc (yaml, n + 2);
            if (!y) {
                log_err ("cannot write '%s'", out);
                goto done;
            }
            yaml = y;
            yaml[n++] = '\n';
            yaml[n] = '\0';
        }
        if (atomic_file_write (out, yaml, n, 0, &e) < 0) {
            log_msg ("%s", e.text);
            goto done;
        }
    }
    printf ("wrote %s\n", out);
    rc = 0;
done:
    link_close (l);
    if (rc == 0)
        unlink (logpath);
    free (spec);
    free (prompt);
    free (answer);
    free (yaml);
    free (dir);
    return rc;
}

/* vi: set ts=4 sw=4 expandtab: */
