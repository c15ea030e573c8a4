/* approve.c - "codeswarm approve ID DECISION"
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/client/client.h"

int cmd_approve (int argc, char **argv)
{
    const char *id, *decision;
    if (argc != 3 || argv[1][0] == '-') {
        if (argc == 2 && (!strcmp (argv[1], "-h") || !strcmp (argv[1], "--help"))) {
            printf ("usage: codeswarm approve ID accept|acceptForSession|"
                    "decline|cancel\n");
            return 0;
        }
        fprintf (stderr, "usage: codeswarm approve ID accept|acceptForSession|"
                 "decline|cancel\n");
        return 1;
    }
    id = argv[1];
    decision = argv[2];
    if (!rc_decision_valid (decision))
        log_msg_exit ("'%s' is not a decision (accept, acceptForSession, "
                      "decline, cancel)", decision);
    if (router_open ()) {
        cJSON *p = cJSON_CreateObject (), *o;
        json_add_str (p, "approval_id", id);
        json_add_str (p, "decision", decision);
        o = router_wait (router_send ("approve_execution", p), "approval_ack");
        if (!strcmp (ev_name (o), "command_rejected"))
            die_rejected (o);
        printf ("%s %s\n", id, decision);
        cJSON_Delete (o);
        return 0;
    }
    {
        cJSON *all = pending_approvals (NULL), *p;
        const cJSON *a, *found = NULL;
        char sdir[PATH_MAX], rid[128];
        int node;
        cJSON_ArrayForEach (a, all) {
            if (dstr (a, "approval_id") && !strcmp (dstr (a, "approval_id"), id))
                found = a;
        }
        if (!found)
            log_msg_exit ("unknown_approval: no pending approval \"%s\"", id);
        node = (int)cJSON_GetObjectItemCaseSensitive (found, "node_id")
                   ->valuedouble;
        swarm_dir (dstr (found, "swarm_id"), sdir, sizeof (sdir));
        new_id ("apr", node, rid, sizeof (rid));
        p = cJSON_CreateObject ();
        json_add_str (p, "id", rid);
        json_add_str (p, "approval_id", id);
        json_add_str (p, "decision", decision);
        direct_append (sdir, node, "approval", p);
        cJSON_Delete (p);
        cJSON_Delete (all);
        printf ("%s %s\n", id, decision);
    }
    return 0;
}
