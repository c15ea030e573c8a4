/* approvals.c - "codeswarm approvals": the pending approvals
 *
 * From the router, or by replaying the outboxes through a translator.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/client/client.h"

static void null_cb (const char *name, cJSON *data, void *arg)
{
}

/* All pending approvals, from the router or by reading the outboxes. */
cJSON *pending_approvals (const char *only_swarm)
{
    cJSON *all;
    if (client_router_fd >= 0 || router_open ()) {
        cJSON *p = cJSON_CreateObject (), *o;
        if (only_swarm)
            json_add_str (p, "swarm_id", only_swarm);
        o = router_wait (router_send ("approvals_list", p), "approvals_list");
        if (!strcmp (ev_name (o), "command_rejected"))
            die_rejected (o);
        all = cJSON_Duplicate (cJSON_GetObjectItemCaseSensitive (ev_data (o),
                                                                 "approvals"),
                               true);
        cJSON_Delete (o);
        return all ? all : cJSON_CreateArray ();
    }
    all = cJSON_CreateArray ();
    {
        char path[PATH_MAX + 16];
        DIR *d;
        struct dirent *de;
        snprintf (path, sizeof (path), "%s/swarms", client_home);
        if (!(d = opendir (path)))
            return all;
        while ((de = readdir (d))) {
            struct follow *fo;
            cJSON *a, *e;
            if (de->d_name[0] == '.'
                || (only_swarm && strcmp (only_swarm, de->d_name)))
                continue;
            fo = follow_open (de->d_name, MB_START_BEGIN, null_cb, NULL);
            follow_drain (fo);
            if ((a = rt_trans_approvals (fo->t))) {
                while ((e = a->child)) {
                    cJSON_DetachItemViaPointer (a, e);
                    cJSON_AddItemToArray (all, e);
                }
                cJSON_Delete (a);
            }
            follow_close (fo);
        }
        closedir (d);
    }
    return all;
}

static void approvals_usage (FILE *f)
{
    fprintf (f,
             "usage: codeswarm approvals [SWARM] [--json]\n"
             "\n"
             "List the approval requests the agents wait on (of every swarm, "
             "or of SWARM):\n"
             "approval id, swarm, node, command and reason.  Answer one with "
             "'codeswarm\n"
             "approve ID accept|acceptForSession|decline|cancel'.\n"
             "\n"
             "      --json       a JSON array\n"
             "  -h, --help       this text\n"
             "\n"
             "Exit status: 0, 1 when they could not be read, 2 on a usage "
             "error.\n");
}

int cmd_approvals (int argc, char **argv)
{
    bool json = false;
    const char *swarm = NULL;
    cJSON *all;
    const cJSON *a;

    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv[i], "--json"))
            json = true;
        else if (!strcmp (argv[i], "-h") || !strcmp (argv[i], "--help")) {
            approvals_usage (stdout);
            return 0;
        }
        else if (argv[i][0] != '-' && !swarm)
            swarm = argv[i];
        else if (argv[i][0] == '-') {
            log_msg ("unknown option '%s' (see 'codeswarm approvals --help')",
                     argv[i]);
            return 2;
        }
        else {
            approvals_usage (stderr);
            return 2;
        }
    }
    all = pending_approvals (swarm);
    if (json) {
        char *s = cJSON_PrintUnformatted (all);
        printf ("%s\n", s ? s : "[]");
        free (s);
    }
    else {
        if (cJSON_GetArraySize (all) == 0)
            printf ("no pending approvals\n");
        cJSON_ArrayForEach (a, all) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive (a, "node_id");
            printf ("%s  %s n%d  %s", dstr (a, "approval_id"),
                    dstr (a, "swarm_id") ? dstr (a, "swarm_id") : "?",
                    cJSON_IsNumber (n) ? (int)n->valuedouble : -1,
                    dstr (a, "command") ? dstr (a, "command") : "?");
            if (dstr (a, "reason"))
                printf ("  (%s)", dstr (a, "reason"));
            printf ("\n");
        }
    }
    cJSON_Delete (all);
    return 0;
}
