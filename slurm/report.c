/* report.c - "codeswarm report SWARM": what a swarm cost, from its
 * outboxes (turns, tokens) joined with Slurm's accounting of its job
 * chain (slurm/sacct.h): node-hours, tokens per node-hour, tokens per
 * turn.  Without accounting it says why, and computes no rate.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "slurm/launch.h"
#include "slurm/nodes.h"
#include "slurm/sacct.h"
#include "slurm/swarm.h"

static void report_usage (FILE *f)
{
    fprintf (f, "usage: codeswarm report SWARM [--json]\n"
                "\n"
                "Turns and tokens of every node of SWARM, the Slurm "
                "accounting of its job\n"
                "chain (sacct: elapsed, allocated TRES, node-hours per job), "
                "and tokens per\n"
                "node-hour and per turn.  Without Slurm accounting (a local "
                "swarm, no\n"
                "slurmdbd) it says so and gives no per-node-hour figure.\n");
}

static const char *rowstr (const cJSON *row, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (row, key);
    return cJSON_IsString (v) && *v->valuestring ? v->valuestring : "-";
}

int cmd_report (int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char home[LAUNCH_PATH_MAX], dir[LAUNCH_PATH_MAX];
    bool json = false;
    cJSON *sw = NULL, *acc = NULL, *out = NULL, *nodes_arr;
    struct nodes ns = {0};
    uint64_t turns = 0, tin = 0, tout = 0, tokens = 0;
    const char *id;
    cs_error_t e;
    int c, count, rc = 1;

    while ((c = getopt_long (argc, argv, "jh", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'h':
            report_usage (stdout);
            return 0;
        default:
            report_usage (stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        report_usage (stderr);
        return 2;
    }
    id = argv[optind];
    if (launch_home (home, sizeof (home), false) < 0)
        return 1;
    if (launch_swarm_dir (home, id, dir, sizeof (dir), &e) < 0 ||
        !(sw = swarm_load (dir, &e))) {
        log_msg ("%s", e.text);
        return 1;
    }
    count = swarm_int (sw, "nodes", 0);
    if (count > 0 && (nodes_open (&ns, dir, count, &e) < 0 ||
                      nodes_update (&ns, NULL, NULL, &e) < 0)) {
        log_msg ("swarm %s: %s", id, e.text);
        goto done;
    }
    if (!(out = cJSON_CreateObject ()) ||
        !(nodes_arr = cJSON_AddArrayToObject (out, "nodes")))
        goto nomem;
    for (int k = 0; k < ns.count; k++) {
        const struct node_state *n = &ns.node[k];
        cJSON *o = cJSON_CreateObject ();
        if (!o || !cJSON_AddItemToArray (nodes_arr, o))
            goto nomem;
        json_add_u64 (o, "node", (uint64_t)k);
        json_add_u64 (o, "turns", n->turns);
        json_add_u64 (o, "tokens_in", n->tokens_in);
        json_add_u64 (o, "tokens_out", n->tokens_out);
        json_add_u64 (o, "tokens", n->tokens);
        turns += n->turns;
        tin += n->tokens_in;
        tout += n->tokens_out;
        tokens += n->tokens;
    }
    json_add_str (out, "swarm", id);
    json_add_u64 (out, "turns", turns);
    json_add_u64 (out, "tokens_in", tin);
    json_add_u64 (out, "tokens_out", tout);
    json_add_u64 (out, "tokens", tokens);
    if (!(acc = sacct_accounting (sw, tokens, turns)))
        goto nomem;
    json_add_item (out, "accounting", acc);
    if (json) {
        char *s = cJSON_Print (out);
        if (!s)
            goto nomem;
        printf ("%s\n", s);
        free (s);
        rc = 0;
        goto done;
    }
    printf ("swarm %s: %d node%s, %llu turn%s, %llu tokens (%llu in, %llu "
            "out)\n",
            id, count, count == 1 ? "" : "s", (unsigned long long)turns,
            turns == 1 ? "" : "s", (unsigned long long)tokens,
            (unsigned long long)tin, (unsigned long long)tout);
    for (int k = 0; k < ns.count; k++)
        printf ("  node %-4d %6llu turns  %10llu tokens\n", k,
                (unsigned long long)ns.node[k].turns,
                (unsigned long long)ns.node[k].tokens);
    if (!cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (acc, "available"))) {
        const cJSON *why = cJSON_GetObjectItemCaseSensitive (acc, "reason");
        printf ("no Slurm accounting: %s\n"
                "tokens per node-hour: not computed (without accounting "
                "there is no measured node time)\n",
                cJSON_IsString (why) ? why->valuestring : "unknown");
    } else {
        const cJSON *row, *v;
        printf ("%-14s %-12s %6s %12s  %s\n", "job", "state", "nodes",
                "elapsed", "alloc TRES");
        cJSON_ArrayForEach (row, cJSON_GetObjectItemCaseSensitive (acc, "jobs"))
            printf ("%-14s %-12s %6s %12s  %s\n", rowstr (row, "JobID"),
                    rowstr (row, "State"), rowstr (row, "NNodes"),
                    rowstr (row, "Elapsed"), rowstr (row, "AllocTRES"));
        v = cJSON_GetObjectItemCaseSensitive (acc, "node_hours");
        printf ("node-hours: %.4f\n", cJSON_IsNumber (v) ? v->valuedouble : 0);
        v = cJSON_GetObjectItemCaseSensitive (acc, "tokens_per_node_hour");
        if (cJSON_IsNumber (v))
            printf ("tokens per node-hour: %.1f\n", v->valuedouble);
        else
            printf ("tokens per node-hour: not computed (no elapsed time "
                    "yet)\n");
    }
    if (turns > 0)
        printf ("tokens per turn: %.1f\n", (double)tokens / (double)turns);
    else
        printf ("tokens per turn: not computed (no turn yet)\n");
    rc = 0;
    goto done;
nomem:
    log_msg ("out of memory");
done:
    nodes_close (&ns);
    cJSON_Delete (out);
    cJSON_Delete (sw);
    return rc;
}
