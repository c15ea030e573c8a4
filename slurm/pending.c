/* pending.c - pending reasons: final or not, and the limit in words */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slurm/pending.h"
#include "slurm/run.h"

/* Slurm's names (job_reason_string) of the reasons no scheduling pass can
 * change: only an administrator (new limits) or the user (a new job) can.
 */
static const char *const final_reasons[] = {
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "BadConstraints",
    "InvalidAccount",
    "InvalidQOS",
    "DependencyNeverSatisfied",
    "QOSMaxCpuPerJobLimit",
    "QOSMaxNodePerJobLimit",
    "QOSMaxWallDurationPerJobLimit",
    "QOSMaxGRESPerJob",
    "QOSMaxMemoryPerJob",
    "AssocMaxCpuPerJobLimit",
    "AssocMaxNodePerJobLimit",
    "AssocMaxWallDurationPerJobLimit",
    "AssocMaxGRESPerJob",
    "AssocMaxMemPerJob",
    NULL,
};

static bool reason_final (const char *reason)
{
    for (int i = 0; final_reasons[i]; i++)
        if (!strcmp (reason, final_reasons[i]))
            return true;
    return false;
}

const char *pending_words (const char *reason, char *buf, size_t len)
{
    if (!reason || !*reason || !strcmp (reason, "None"))
        snprintf (buf, len, "pending (waiting for the scheduler)");
    else
        snprintf (buf, len, "pending (%s)", reason);
    return buf;
}

struct part_limits {
    bool found;
    unsigned long nodes;  /* nodes in the partition */
    char max_time[32];    /* sinfo %l: "infinite", "1:00:00", "2-00:00:00" */
    char job_size[32];    /* sinfo %s: "1-infinite", "1-4" */
};

/* sinfo -h -p P -o "%D|%l|%s": a line per group of nodes; the node counts
 * add up, the limits are the partition's.
 */
static void part_limits (const char *partition, struct part_limits *pl)
{
    const char *av[] = {"sinfo", "-h", "-p", partition, "-o", "%D|%l|%s",
                        NULL};
    struct run_result res;
    char *save = NULL;

    memset (pl, 0, sizeof (*pl));
    if (!*partition ||
        run_capture ((char *const *)av, NULL, NULL, 30, &res, NULL) < 0)
        return;
    if (run_ok (&res)) {
        for (char *l = strtok_r (res.out, "\n", &save); l;
             l = strtok_r (NULL, "\n", &save)) {
            char *t = strchr (l, '|'), *s = t ? strchr (t + 1, '|') : NULL;
            if (!s)
                continue;
            *t++ = '\0';
            *s++ = '\0';
            pl->nodes += strtoul (l, NULL, 10);
            snprintf (pl->max_time, sizeof (pl->max_time), "%s", t);
            snprintf (pl->job_size, sizeof (pl->job_size), "%s", s);
            pl->found = true;
        }
    }
    run_result_release (&res);
}

static void minutes_str (unsigned long m, char *buf, size_t len)
{
    if (m >= 24 * 60)
        snprintf (buf, len, "%lu-%02lu:%02lu:00", m / (24 * 60),
                  m / 60 % 24, m % 60);
    else
        snprintf (buf, len, "%lu:%02lu:00", m / 60, m % 60);
}

bool pending_never (const struct job_status *ji, char *buf, size_t len)
{
    const char *r = ji->reason;
    const char *p = ji->partition[0] ? ji->partition : "?";
    struct part_limits pl;
    char t[32];

    if (!strcmp (r, "PartitionConfig") || !strcmp (r, "PartitionNodeLimit")) {
        part_limits (ji->partition, &pl);
        if (!strcmp (r, "PartitionConfig") &&
            (!pl.found || ji->req_nodes <= pl.nodes))
            return false; /* nodes down or drained: may come back */
        if (pl.found) {
            const char *dash = strchr (pl.job_size, '-');
            bool any = dash && !strcmp (dash, "-infinite") &&
                       !strncmp (pl.job_size, "1-", 2);
            snprintf (buf, len,
                      "%lu node%s requested; partition '%s' has %lu node%s%s%s%s",
                      (unsigned long)ji->req_nodes,
                      ji->req_nodes == 1 ? "" : "s", p, pl.nodes,
                      pl.nodes == 1 ? "" : "s",
                      any ? "" : " and lets a job use ",
                      any ? "" : pl.job_size, any ? "" : " of them");
        }
        else
            snprintf (buf, len,
                      "%lu nodes requested: more (or fewer) than partition "
                      "'%s' allows a job",
                      (unsigned long)ji->req_nodes, p);
        return true;
    }
    if (!reason_final (r))
        return false;
    if (!strcmp (r, "PartitionTimeLimit")) {
        part_limits (ji->partition, &pl);
        minutes_str (ji->time_limit, t, sizeof (t));
        snprintf (buf, len,
                  "a walltime of %s requested; partition '%s' allows at "
                  "most %s",
                  ji->time_limit ? t : "(the default)", p,
                  pl.found ? pl.max_time : "less");
    } else if (!strcmp (r, "BadConstraints"))
        snprintf (buf, len, "no node can satisfy the job's constraints");
    else if (!strcmp (r, "InvalidAccount"))
        snprintf (buf, len, "the account is not valid for this user");
    else if (!strcmp (r, "InvalidQOS"))
        snprintf (buf, len, "the QOS is not valid for this user");
    else if (!strcmp (r, "DependencyNeverSatisfied"))
        snprintf (buf, len, "a dependency of the job can never be satisfied");
    else if (!strncmp (r, "QOS", 3))
        snprintf (buf, len,
                  "the request exceeds a per-job limit of the QOS "
                  "(see 'sacctmgr show qos')");
    else
        snprintf (buf, len,
                  "the request exceeds a per-job limit of the account "
                  "(see 'sacctmgr show assoc user=$USER')");
    return true;
}
