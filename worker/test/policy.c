/* worker/test/policy.c - the approval policy and decisions */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/libtap/tap.h"
#include "worker/policy.h"



static void test_prefix (void)
{
    ok (policy_prefix_match ("git status", "git status -s"), "prefix words");
    ok (policy_prefix_match ("git status", "  git   status"), "blanks");
    ok (!policy_prefix_match ("git status", "git statusx"), "whole words");
    ok (!policy_prefix_match ("git status", "git"), "shorter command");
    ok (!policy_prefix_match ("", "ls"), "empty prefix matches nothing");
    ok (policy_path_within ("/w/k", "/w/k"), "dir itself");
    ok (policy_path_within ("/w/k", "/w/k/sub"), "below");
    ok (policy_path_within ("/w/k/", "/w/k/sub/"), "trailing slashes");
    ok (!policy_path_within ("/w/k", "/w/kx"), "sibling with the same prefix");
    ok (!policy_path_within ("/w/k", "/w/k/../etc"), "dot-dot refused");
    ok (!policy_path_within ("/w/k", "rel"), "relative refused");
}

static cJSON *parse (const char *s)
{
    return json_parse (s, strlen (s), NULL);
}

static void test_policy (void)
{
    static char echo[] = "echo", accept[] = "accept";
    static char rmrf[] = "rm -rf", decline[] = "decline";
    struct cs_approval_rule rules[2] = {
        { .prefix = echo, .decision = accept, .in_workspace = true },
        { .prefix = rmrf, .decision = decline, .in_workspace = false },
    };
    char *cmds[4];
    size_t n;
    cJSON *p;

    p = parse ("{\"command\":\"/bin/bash -c 'echo hi'\",\"cwd\":\"/w/k\"}");
    n = policy_commands (p, cmds, 4);
    ok (n == 1 && !strcmp (cmds[0], "echo hi"), "v2 command unwrapped: %s",
        n ? cmds[0] : "-");
    while (n)
        free (cmds[--n]);
    is (policy_decide (rules, 2, p, "/w/k"), "accept",
        "echo in the workspace: accepted by rule");
    ok (policy_decide (rules, 2, p, "/other") == NULL,
        "echo outside the workspace: ask");
    cJSON_Delete (p);

    p = parse ("{\"command\":\"bash -lc 'rm -rf x | echo'\","
               "\"commandActions\":[{\"type\":\"unknown\",\"command\":\"rm -rf x\"},"
               "{\"type\":\"unknown\",\"command\":\"echo\"}],\"cwd\":\"/w/k\"}");
    ok (policy_decide (rules, 2, p, "/w/k") == NULL,
        "pipeline: every part must match the same rule");
    cJSON_Delete (p);

    p = parse ("{\"command\":[\"bash\",\"-lc\",\"rm -rf /tmp/x\"],\"cwd\":\"/\"}");
    n = policy_commands (p, cmds, 4);
    ok (n == 1 && !strcmp (cmds[0], "rm -rf /tmp/x"), "legacy argv unwrapped");
    while (n)
        free (cmds[--n]);
    is (policy_decide (rules, 2, p, "/w/k"), "decline", "legacy: rule 2");
    cJSON_Delete (p);

    p = parse ("{\"itemId\":\"x\",\"reason\":\"write\"}");
    ok (policy_decide (rules, 2, p, "/w/k") == NULL, "file change: ask");
    cJSON_Delete (p);
}

static void test_decisions (void)
{
    cJSON *d;
    char *s;

    ok (decision_valid ("accept") && decision_valid ("cancel")
        && !decision_valid ("approved") && !decision_valid (NULL),
        "decision_valid");
    d = decision_wire ("item/commandExecution/requestApproval", "decline");
    s = cJSON_PrintUnformatted (d);
    is (s, "\"decline\"", "v2 decline as is");
    free (s);
    cJSON_Delete (d);
    d = decision_wire ("execCommandApproval", "accept");
    s = cJSON_PrintUnformatted (d);
    is (s, "\"approved\"", "legacy accept -> approved");
    free (s);
    cJSON_Delete (d);
    d = decision_wire ("applyPatchApproval", "decline");
    ok (cJSON_IsObject (cJSON_GetObjectItem (d, "denied")),
        "legacy decline -> denied object");
    cJSON_Delete (d);
    ok (decision_wire ("x", "bogus") == NULL, "bad decision refused");

    cJSON *in = cJSON_Parse ("{\"acceptWithExecpolicyAmendment\":"
                             "{\"execpolicy_amendment\":[\"echo\",\"hi\"]}}");
    const cJSON *am = decision_amendment (in);
    ok (cJSON_IsArray (am) && cJSON_GetArraySize (am) == 2,
        "decision_amendment finds the v2 amendment");
    d = decision_amendment_wire ("item/commandExecution/requestApproval", am);
    s = cJSON_PrintUnformatted (d);
    is (s, "{\"acceptWithExecpolicyAmendment\":{\"execpolicy_amendment\":"
        "[\"echo\",\"hi\"]}}", "v2 amendment as is");
    free (s);
    cJSON_Delete (d);
    d = decision_amendment_wire ("execCommandApproval", am);
    s = cJSON_PrintUnformatted (d);
    is (s, "{\"approved_execpolicy_amendment\":{\"proposed_execpolicy_"
        "amendment\":[\"echo\",\"hi\"]}}", "legacy amendment form");
    free (s);
    cJSON_Delete (d);
    ok (decision_amendment_wire ("item/fileChange/requestApproval", am)
        == NULL, "file changes have no amendment decision");
    cJSON_Delete (in);
    in = cJSON_Parse ("{\"acceptWithExecpolicyAmendment\":"
                      "{\"execpolicy_amendment\":[1]},\"x\":1}");
    ok (decision_amendment (in) == NULL, "a malformed amendment is refused");
    cJSON_Delete (in);
}


int main (void)
{
    plan (NO_PLAN);
    test_prefix ();
    test_policy ();
    test_decisions ();
    done_testing ();
}
