/* audit.c - "codeswarm audit": a swarm's audit trail, and the launcher's
 * own entries in it (launch, resume, cancel, import, export).
 *
 * The trail is <swarm>/audit.jsonl (mailbox/audit.h), written by the
 * router, the workers (approvals their policy decided), the client verbs
 * that act on the mailbox directly and this program.  codeswarm audit
 * prints it oldest first, one line per entry, or the entries as one JSON
 * array (--json); a line that does not parse is reported with its number
 * and the rest still shown.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/path.h"
#include "mailbox/audit.h"
#include "mailbox/mailbox.h"
#include "slurm/launch.h"

int launch_audit (const char *swarmdir, const char *action, ...)
{
    const char *peer, *via = mb_audit_via ("cli", &peer);
    const char *slash = strrchr (swarmdir, '/');
    const char *rvia = getenv ("CODESWARM_AUDIT_VIA");
    const char *ruid = getenv ("CODESWARM_AUDIT_UID");
    cJSON *o = cJSON_CreateObject ();
    uid_t uid = getuid ();
    const char *k;
    cs_error_t e;
    va_list ap;
    int rc;

    /* run by the router for one of its clients: that client's identity */
    if (rvia && *rvia && ruid && *ruid) {
        via = rvia;
        peer = getenv ("CODESWARM_AUDIT_PEER");
        uid = (uid_t)strtoul (ruid, NULL, 10);
    }
    if (!o || json_add_str (o, "action", action) < 0 ||
        json_add_str (o, "swarm", slash ? slash + 1 : swarmdir) < 0 ||
        mb_audit_identity (o, uid, via, peer && *peer ? peer : NULL) < 0 ||
        (rvia && *rvia && json_add_str (o, "through", "router") < 0)) {
        cJSON_Delete (o);
        return -1;
    }
    va_start (ap, action);
    while ((k = va_arg (ap, const char *))) {
        const char *v = va_arg (ap, const char *);
        if (v)
            json_add_str (o, k, v);
    }
    va_end (ap);
    json_add_str (o, "result", "ok");
    if ((rc = mb_audit_append (swarmdir, o, &e)) < 0)
        log_msg ("audit: %s", e.text);
    cJSON_Delete (o);
    return rc;
}

static void audit_usage (FILE *f)
{
    fprintf (f, "usage: codeswarm audit [SWARM] [--json]\n"
                "\n"
                "The audit trail of SWARM (or of every swarm): each "
                "injection, interrupt,\n"
                "approval decision, launch, resume, cancel, import and "
                "export, with who\n"
                "asked (uid and user), from where (socket, tcp, stdio, ssh, "
                "relay, mailbox,\n"
                "cli, worker), when and what.  --json prints the entries as "
                "one JSON array.\n");
}

static const char *str (const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
    return cJSON_IsString (v) ? v->valuestring : NULL;
}

static void print_entry (const cJSON *o)
{
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive (o, "ts");
    const cJSON *who = cJSON_GetObjectItemCaseSensitive (o, "who");
    const cJSON *node = cJSON_GetObjectItemCaseSensitive (o, "node");
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive (o, "rule");
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive (who, "uid");
    char when[32] = "?", whoami[80], what[512] = "";
    time_t t = cJSON_IsNumber (ts) ? (time_t)ts->valuedouble : 0;
    struct tm tm;
    size_t n = 0;

    if (t && gmtime_r (&t, &tm))
        strftime (when, sizeof (when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf (whoami, sizeof (whoami), "%s(%d)",
              str (who, "user") ? str (who, "user") : "?",
              cJSON_IsNumber (uid) ? (int)uid->valuedouble : -1);
#define ADD(...)                                                               \
    do {                                                                       \
        int k_ = snprintf (what + n, sizeof (what) - n, __VA_ARGS__);          \
        if (k_ > 0 && (size_t)k_ < sizeof (what) - n)                          \
            n += (size_t)k_;                                                   \
    } while (0)
    if (cJSON_IsNumber (node))
        ADD ("node %d ", (int)node->valuedouble);
    if (str (o, "id"))
        ADD ("%s ", str (o, "id"));
    if (str (o, "approval_id"))
        ADD ("approval %s ", str (o, "approval_id"));
    if (str (o, "decision"))
        ADD ("%s ", str (o, "decision"));
    if (str (o, "decided_by"))
        ADD ("by %s ", str (o, "decided_by"));
    if (cJSON_IsObject (rule) && str (rule, "prefix"))
        ADD ("(rule \"%s\") ", str (rule, "prefix"));
    if (str (o, "job_id"))
        ADD ("job %s ", str (o, "job_id"));
    if (str (o, "file"))
        ADD ("%s ", str (o, "file"));
    if (str (o, "result") && strcmp (str (o, "result"), "ok"))
        ADD ("%s: %s", str (o, "result"),
             str (o, "error") ? str (o, "error") : "?");
#undef ADD
    printf ("%-20s  %-12s  %-14s  %-8s  %-9s  %s\n", when,
            str (o, "swarm") ? str (o, "swarm") : "?", whoami,
            str (o, "via") ? str (o, "via") : "?",
            str (o, "action") ? str (o, "action") : "?", what);
}

/* Every entry of one swarm into all (or printed); bad lines reported. */
static int read_trail (const char *dir, const char *id, cJSON *all, bool json)
{
    char path[4096];
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, bad = 0, fd;
    cs_error_t e;

    if (pathf (path, sizeof (path), "%s/%s", dir, MB_AUDIT_FILE) < 0)
        return -1;
    if ((fd = mb_secure_open (path, O_RDONLY, &e)) < 0) {
        if (errno == ENOENT)
            return 0;
        log_msg ("%s", e.text);
        return -1;
    }
    if (!(f = fdopen (fd, "r"))) {
        close (fd);
        return -1;
    }
    while ((len = getline (&line, &cap, f)) > 0) {
        cJSON *o;
        lineno++;
        if (line[len - 1] != '\n')
            break; /* not a complete entry yet */
        if (!(o = json_parse (line, (size_t)len - 1, &e)) ||
            !cJSON_IsObject (o)) {
            log_msg ("%s:%d: not an audit entry: %s", path, lineno,
                     o ? "not an object" : e.text);
            cJSON_Delete (o);
            bad++;
            continue;
        }
        if (!str (o, "swarm"))
            json_add_str (o, "swarm", id);
        if (json)
            cJSON_AddItemToArray (all, o);
        else {
            print_entry (o);
            cJSON_Delete (o);
        }
    }
    free (line);
    fclose (f);
    return bad ? 1 : 0;
}

int cmd_audit (int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char home[LAUNCH_PATH_MAX], dir[LAUNCH_PATH_MAX], swarms[4096];
    bool json = false;
    cJSON *all = cJSON_CreateArray ();
    cs_error_t e;
    int c, rc = 0;

    while ((c = getopt_long (argc, argv, "jh", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'h':
            audit_usage (stdout);
            cJSON_Delete (all);
            return 0;
        default:
            audit_usage (stderr);
            cJSON_Delete (all);
            return 2;
        }
    }
    if (optind < argc - 1 || !all) {
        audit_usage (stderr);
        cJSON_Delete (all);
        return 2;
    }
    if (launch_home (home, sizeof (home), false) < 0) {
        cJSON_Delete (all);
        return 1;
    }
    if (optind == argc - 1) {
        if (launch_swarm_dir (home, argv[optind], dir, sizeof (dir), &e) < 0) {
            log_msg ("%s", e.text);
            cJSON_Delete (all);
            return 1;
        }
        if (read_trail (dir, argv[optind], all, json) != 0)
            rc = 1;
    } else {
        struct dirent **names = NULL;
        int n;
        pathf (swarms, sizeof (swarms), "%s/swarms", home);
        n = scandir (swarms, &names, NULL, alphasort);
        for (int i = 0; i < n; i++) {
            if (names[i]->d_name[0] != '.' &&
                pathf (dir, sizeof (dir), "%s/%s", swarms, names[i]->d_name) ==
                    0 &&
                read_trail (dir, names[i]->d_name, all, json) != 0)
                rc = 1;
            free (names[i]);
        }
        free (names);
    }
    if (json) {
        char *s = cJSON_PrintUnformatted (all);
        if (s)
            printf ("%s\n", s);
        free (s);
    }
    cJSON_Delete (all);
    return rc;
}
