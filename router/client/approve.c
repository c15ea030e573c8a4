/* approve.c - "codeswarm approve ID DECISION"
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/client/client.h"

static void approve_usage (FILE *f)
{
    fprintf (f,
             "usage: codeswarm approve ID accept|acceptForSession|decline|"
             "cancel\n"
             "\n"
             "Answer the approval request ID (see 'codeswarm approvals'):\n"
             "\n"
             "  accept             run the command, this once\n"
             "  acceptForSession   run it, and allow similar commands for the "
             "rest of the\n"
             "                     session\n"
             "  decline            refuse it; the turn goes on\n"
             "  cancel             refuse it and end the turn\n"
             "\n"
             "  -h, --help         this text\n"
             "\n"
             "Exit status: 0, 1 when ID is not pending (or the command was "
             "rejected), 2 on\n"
             "a usage error.\n");
}

int cmd_approve (int argc, char **argv)
{
    const char *id, *decision;
    for (int i = 1; i < argc; i++) {
        if (!strcmp (argv[i], "-h") || !strcmp (argv[i], "--help")) {
            approve_usage (stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            log_msg ("unknown option '%s' (see 'codeswarm approve --help')",
                     argv[i]);
            return 2;
        }
    }
    if (argc != 3) {
        approve_usage (stderr);
        return 2;
    }
    id = argv[1];
    decision = argv[2];
    if (!rc_decision_valid (decision)) {
        log_msg ("'%s' is not a decision (accept, acceptForSession, "
                 "decline, cancel)", decision);
        return 2;
    }
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
