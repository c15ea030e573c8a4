/* forget.c - "codeswarm forget [--force] SWARM... | --purge": remove the
 * directories of swarms that have ended, so that cancelled and failed
 * swarms do not pile up in status.
 *
 * Only an ended swarm is forgotten (a running one is to be cancelled
 * first).  A swarm whose node workspaces (work/K) hold files the agents
 * wrote is kept unless --force: its directory is all there is of that work.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "slurm/job.h"
#include "slurm/launch.h"
#include "slurm/nodes.h"
#include "slurm/swarm.h"

/* Has the swarm ended?  Its state (swarm.json), or for a swarm of the
 * user's own batch script, its nodes and its newest job.  *state: words
 * for messages.
 */
static bool swarm_ended (const char *dir, char *state, size_t len)
{
    cs_error_t e;
    cJSON *sw = swarm_load (dir, &e);
    struct nodes ns = {0};
    struct job_status ji;
    int count;
    bool ended = true;

    if (sw) {
        const char *st = swarm_str (sw, "state");
        snprintf (state, len, "%s", st ? st : "?");
        ended = swarm_state_final (st);
        cJSON_Delete (sw);
        return ended;
    }
    if (errno != ENOENT || (count = nodes_outbox_count (dir, &e)) < 0 ||
        nodes_open (&ns, dir, count, &e) < 0) {
        snprintf (state, len, "unreadable");
        return false;
    }
    if (nodes_update (&ns, NULL, NULL, &e) < 0)
        ended = false;
    for (int k = 0; k < ns.count; k++)
        if (ns.node[k].phase == NODE_STARTED || ns.node[k].phase == NODE_READY)
            ended = false;
    if (ended && ns.newest_job[0] &&
        (job_query (ns.newest_job, &ji, &e) < 0 ||
         (ji.found && !job_state_final (ji.state))))
        ended = false;
    nodes_close (&ns);
    snprintf (state, len, "%s", ended ? "ended" : "running");
    return ended;
}

/* The first workspace of the swarm that holds more than AGENTS.md, into
 * buf; false when there is none.
 */
static bool work_left (const char *dir, char *buf, size_t len)
{
    char path[LAUNCH_PATH_MAX];
    DIR *d, *w;
    struct dirent *de, *we;
    bool found = false;

    pathf (path, sizeof (path), "%s/work", dir);
    if (!(d = opendir (path)))
        return false;
    while (!found && (de = readdir (d))) {
        if (de->d_name[0] == '.')
            continue;
        pathf (path, sizeof (path), "%s/work/%s", dir, de->d_name);
        if (!(w = opendir (path)))
            continue;
        while ((we = readdir (w))) {
            if (!strcmp (we->d_name, ".") || !strcmp (we->d_name, "..") ||
                !strcmp (we->d_name, "AGENTS.md"))
                continue;
            snprintf (buf, len, "%s", path);
            found = true;
            break;
        }
        closedir (w);
    }
    closedir (d);
    return found;
}

static int rm_one (const char *path, const struct stat *st, int flag,
                   struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir (path) : unlink (path)) < 0) {
        log_err ("cannot remove '%s'", path);
        return -1;
    }
    return 0;
}

/* 0 forgotten, 1 kept (said why), -1 error (said) */
static int forget_one (const char *home, const char *id, bool force,
                       bool quiet_running)
{
    char dir[LAUNCH_PATH_MAX], state[64], work[LAUNCH_PATH_MAX];
    struct stat st;
    cs_error_t e;

    if (launch_swarm_dir (home, id, dir, sizeof (dir), &e) < 0) {
        log_msg ("%s", e.text);
        return -1;
    }
    if (lstat (dir, &st) < 0 || !S_ISDIR (st.st_mode) ||
        st.st_uid != getuid ()) {
        log_msg ("'%s' is not a directory of yours: not removed", dir);
        return -1;
    }
    if (!swarm_ended (dir, state, sizeof (state))) {
        if (!quiet_running)
            log_msg ("swarm %s is %s: 'codeswarm cancel %s' first", id, state,
                     id);
        return 1;
    }
    if (!force && work_left (dir, work, sizeof (work))) {
        log_msg ("swarm %s (%s) kept: '%s' holds files its agent wrote; "
                 "copy what you need, then 'codeswarm forget --force %s'",
                 id, state, work, id);
        return 1;
    }
    if (nftw (dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        log_msg ("swarm %s: could not remove all of '%s'", id, dir);
        return -1;
    }
    printf ("forgot swarm %s (%s)\n", id, state);
    return 0;
}

static void forget_usage (FILE *f)
{
    fprintf (f,
             "usage: codeswarm forget [--force] SWARM...\n"
             "       codeswarm forget --purge [--force]\n"
             "\n"
             "Remove the directory of each swarm that has ended (cancelled, "
             "failed or\n"
             "ended): its mailbox, logs and node workspaces.  A running swarm "
             "is an error\n"
             "(cancel it first).  A swarm whose workspaces hold files its "
             "agents wrote is\n"
             "kept unless --force.\n"
             "\n"
             "      --purge    every ended swarm (running ones are left "
             "alone)\n"
             "      --force    remove workspaces with files in them too\n"
             "  -h, --help     this text\n"
             "\n"
             "Exit status: 0 when every swarm named was forgotten, 1 when one "
             "was not,\n"
             "2 on a usage error.\n");
}

int cmd_forget (int argc, char **argv)
{
    static const struct option longopts[] = {
        {"purge", no_argument, NULL, 'p'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char home[LAUNCH_PATH_MAX], path[LAUNCH_PATH_MAX];
    bool purge = false, force = false;
    int c, rc = 0, n = 0;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            purge = true;
            break;
        case 'f':
            force = true;
            break;
        case 'h':
            forget_usage (stdout);
            return 0;
        default:
            log_msg ("unknown option '%s' (see 'codeswarm forget --help')",
                     argv[optind - 1]);
            return 2;
        }
    }
    if (purge == (optind < argc)) {
        log_msg ("%s (see 'codeswarm forget --help')",
                 purge ? "--purge takes no SWARM"
                       : "name the swarms to forget, or --purge");
        return 2;
    }
    if (launch_home (home, sizeof (home), false) < 0)
        return 1;
    if (!purge) {
        for (int i = optind; i < argc; i++)
            if (forget_one (home, argv[i], force, false) != 0)
                rc = 1;
        return rc;
    }
    {
        DIR *d;
        struct dirent *de;
        pathf (path, sizeof (path), "%s/swarms", home);
        if (!(d = opendir (path))) {
            cs_error_t e;
            if (errno == ENOENT) {
                printf ("no swarms in '%s'\n", path);
                return 0;
            }
            launch_access_error (home, NULL, &e);
            log_msg ("%s", e.text);
            return 1;
        }
        while ((de = readdir (d))) {
            int r;
            if (de->d_name[0] == '.')
                continue;
            if ((r = forget_one (home, de->d_name, force, true)) < 0)
                rc = 1;
            else if (r == 0)
                n++;
        }
        closedir (d);
    }
    if (n == 0 && rc == 0)
        printf ("no ended swarm to forget\n");
    return rc;
}
