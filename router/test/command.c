/* test/command.c - command envelope parsing and node selections */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/libtap/tap.h"
#include "router/command.h"

#define ENV(cmd, payload) \
    "{\"protocol\":\"codeswarm.router.v1\",\"type\":\"command\"," \
    "\"command\":\"" cmd "\",\"request_id\":\"r1\",\"payload\":" payload "}"

static int parse (const char *line, struct rc_command *cmd,
                  struct rc_reject *rej)
{
    return rc_parse (line, strlen (line), cmd, rej);
}

static const char *nodes_str (const struct rc_nodes *n)
{
    static char buf[256];
    buf[0] = '\0';
    if (n->all)
        return "all";
    for (size_t i = 0; i < n->count; i++) {
        char x[16];
        snprintf (x, sizeof (x), "%s%d", i ? " " : "", n->list[i]);
        strncat (buf, x, sizeof (buf) - strlen (buf) - 1);
    }
    return buf;
}

static void test_ranges (void)
{
    struct rc_nodes n;
    cs_error_t error;
    cJSON *v;

    ok (rc_nodes_parse_str ("0,2-5", 8, &n, &error) == 0, "\"0,2-5\"");
    is (nodes_str (&n), "0 2 3 4 5", "expands to 0 2 3 4 5");
    rc_nodes_release (&n);
    ok (rc_nodes_parse_str (" 3 , 1-1,3,0 ", 8, &n, &error) == 0,
        "spaces and duplicates");
    is (nodes_str (&n), "0 1 3", "sorted, unique");
    rc_nodes_release (&n);
    ok (rc_nodes_parse_str ("all", 8, &n, &error) == 0 && n.all, "\"all\"");
    rc_nodes_release (&n);
    ok (rc_nodes_parse_str ("8", 8, &n, &error) < 0, "out of range: %s",
        error.text);
    ok (rc_nodes_parse_str ("5-2", 8, &n, &error) < 0, "backwards: %s",
        error.text);
    ok (rc_nodes_parse_str ("1,,2", 8, &n, &error) < 0, "empty item: %s",
        error.text);
    ok (rc_nodes_parse_str ("-1", 8, &n, &error) < 0, "negative: %s",
        error.text);
    ok (rc_nodes_parse_str ("", 8, &n, &error) < 0, "empty: %s", error.text);
    ok (rc_nodes_parse_str ("1x", 8, &n, &error) < 0, "junk: %s", error.text);
    ok (rc_nodes_parse_str ("99999999999999999999", 8, &n, &error) < 0,
        "huge: %s", error.text);

    v = cJSON_Parse ("[3,1,\"5-6\"]");
    ok (rc_nodes_parse (v, 8, &n, &error) == 0, "a JSON list");
    is (nodes_str (&n), "1 3 5 6", "list with a range string");
    rc_nodes_release (&n);
    cJSON_Delete (v);
    v = cJSON_Parse ("2");
    ok (rc_nodes_parse (v, 8, &n, &error) == 0 && n.count == 1
        && n.list[0] == 2, "an integer");
    rc_nodes_release (&n);
    cJSON_Delete (v);
    v = cJSON_Parse ("1.5");
    ok (rc_nodes_parse (v, 8, &n, &error) < 0, "1.5: %s", error.text);
    cJSON_Delete (v);
    v = cJSON_Parse ("[]");
    ok (rc_nodes_parse (v, 8, &n, &error) < 0, "[]: %s", error.text);
    cJSON_Delete (v);
    v = cJSON_Parse ("[true]");
    ok (rc_nodes_parse (v, 8, &n, &error) < 0, "[true]: %s", error.text);
    cJSON_Delete (v);
    v = cJSON_Parse ("{}");
    ok (rc_nodes_parse (v, 8, &n, &error) < 0, "{}: %s", error.text);
    cJSON_Delete (v);
}

static void test_good (void)
{
    struct rc_command c;
    struct rc_reject rej;

    ok (parse (ENV ("inject", "{\"swarm_id\":\"s1\",\"nodes\":\"0,2-3\","
                    "\"content\":\"hi\",\"mode\":\"steer\","
                    "\"idempotency_key\":\"k1\"}"), &c, &rej) == 0,
        "inject parses");
    ok (c.cmd == RC_INJECT && !strcmp (c.swarm_id, "s1")
        && !strcmp (c.content, "hi") && c.steer
        && !strcmp (c.idempotency_key, "k1"), "inject fields");
    is (nodes_str (&c.nodes), "0 2 3", "inject nodes");
    is (c.request_id, "r1", "request id");
    rc_release (&c);

    ok (parse (ENV ("inject", "{\"swarm_id\":\"s1\",\"content\":\"x\"}"), &c,
               &rej) == 0 && c.nodes.all && !c.steer,
        "inject defaults: all nodes, queue");
    rc_release (&c);

    ok (parse (ENV ("inject", "{\"swarm_id\":\"s1\",\"content\":"
                    "\"a\\\\u0000b\"}"), &c, &rej) == 0
        && !strcmp (c.content, "a\\u0000b"),
        "an escaped backslash before u0000 is text, not a NUL");
    rc_release (&c);

    ok (parse (ENV ("inject", "{\"swarm_id\":\"s1\",\"content\":\"x\","
                    "\"cwd\":\"/w/t\",\"new_thread\":true}"), &c, &rej) == 0
        && c.cwd && !strcmp (c.cwd, "/w/t") && c.new_thread,
        "inject with cwd and new_thread");
    rc_release (&c);

    ok (parse (ENV ("approve_execution", "{\"call_id\":\"a1\","
                    "\"approved\":true}"), &c, &rej) == 0
        && !strcmp (c.approval_id, "a1") && !strcmp (c.decision, "accept"),
        "approve_execution with upstream call_id/approved");
    rc_release (&c);
    ok (parse (ENV ("approve_execution", "{\"approval_id\":\"a1\","
                    "\"decision\":\"acceptForSession\"}"), &c, &rej) == 0,
        "approve_execution acceptForSession");
    rc_release (&c);

    ok (parse (ENV ("subscribe", "{\"since\":42}"), &c, &rej) == 0
        && c.has_since && c.since == 42, "subscribe since");
    rc_release (&c);
    ok (parse (ENV ("hello", "{}"), &c, &rej) == 0 && c.subscribe,
        "hello subscribes by default");
    rc_release (&c);
    ok (parse ("{\"protocol\":\"codeswarm.router.v1\",\"type\":\"command\","
               "\"command\":\"swarm_list\"}", &c, &rej) == 0
        && c.request_id == NULL, "no request id, no payload");
    rc_release (&c);
    ok (parse (ENV ("interrupt", "{\"swarm_id\":\"s\",\"nodes\":1}"), &c,
               &rej) == 0 && c.nodes.count == 1, "interrupt");
    rc_release (&c);
    ok (parse (ENV ("swarm_terminate", "{\"swarm_id\":\"s\"}"), &c, &rej) == 0,
        "swarm_terminate");
    rc_release (&c);
    ok (parse (ENV ("approvals_list", "{}"), &c, &rej) == 0, "approvals_list");
    rc_release (&c);
}

/* Every line of the bad-command corpus: reject code expected */
static const struct {
    const char *line;
    const char *code;
} bad[] = {
    { "", RC_E_BAD_JSON },
    { "{", RC_E_BAD_JSON },
    { "{} x", RC_E_BAD_JSON },
    { "[1,2]", RC_E_BAD_ENVELOPE },
    { "\"inject\"", RC_E_BAD_ENVELOPE },
    { "{\"type\":\"command\",\"command\":\"hello\"}", RC_E_BAD_ENVELOPE },
    { "{\"protocol\":\"codeswarm.router.v2\",\"type\":\"command\","
      "\"command\":\"hello\"}", RC_E_BAD_ENVELOPE },
    { "{\"protocol\":\"codeswarm.router.v1\",\"type\":\"event\","
      "\"command\":\"hello\"}", RC_E_BAD_ENVELOPE },
    { "{\"protocol\":\"codeswarm.router.v1\",\"type\":\"command\"}",
      RC_E_BAD_ENVELOPE },
    { "{\"protocol\":\"codeswarm.router.v1\",\"type\":\"command\","
      "\"command\":7}", RC_E_BAD_ENVELOPE },
    { ENV ("launch_missiles", "{}"), RC_E_UNKNOWN_COMMAND },
    { ENV ("inject", "[]"), RC_E_BAD_ENVELOPE },
    { ENV ("inject", "null"), RC_E_BAD_PAYLOAD },
    { ENV ("inject", "{\"content\":\"x\"}"), RC_E_BAD_PAYLOAD },
    { ENV ("inject", "{\"swarm_id\":\"s\"}"), RC_E_BAD_PAYLOAD },
    { ENV ("inject", "{\"swarm_id\":\"s\",\"content\":\"\"}"),
      RC_E_BAD_PAYLOAD },
    { ENV ("inject", "{\"swarm_id\":\"../x\",\"content\":\"x\"}"),
      RC_E_BAD_PAYLOAD },
    { ENV ("inject", "{\"swarm_id\":\"s\",\"content\":\"x\",\"nodes\":-1}"),
      RC_E_BAD_PAYLOAD },
    { ENV ("inject", "{\"swarm_id\":\"s\",\"content\":\"x\",\"nodes\":\"a\"}"),
      RC_E_BAD_PAYLOAD },
    { ENV ("inject", "{\"swarm_id\":\"s\",\"content\":\"x\",\"mode\":\"now\"}"),
      RC_E_BAD_PAYLOAD },
    { ENV ("inject", "{\"swarm_id\":\"s\",\"content\":5}"), RC_E_BAD_PAYLOAD },
    /* a NUL would cut the text silently */
    { ENV ("inject", "{\"swarm_id\":\"s\",\"content\":\"ab\\u0000cd\"}"),
      RC_E_BAD_PAYLOAD },
    { ENV ("inject", "{\"swarm_id\":\"s\",\"content\":\"\\\\\\u0000\"}"),
      RC_E_BAD_PAYLOAD },
    { ENV ("inject", "{\"swarm_id\":\"s\",\"content\":\"x\","
           "\"idempotency_key\":\"\"}"), RC_E_BAD_PAYLOAD },
    { ENV ("inject", "{\"swarm_id\":\"s\",\"content\":\"x\","
           "\"cwd\":\"rel/dir\"}"), RC_E_BAD_PAYLOAD },
    { ENV ("inject", "{\"swarm_id\":\"s\",\"content\":\"x\","
           "\"new_thread\":1}"), RC_E_BAD_PAYLOAD },
    { ENV ("inject", "{\"swarm_id\":\"s\",\"content\":\"x\","
           "\"new_thread\":true,\"mode\":\"steer\"}"), RC_E_BAD_PAYLOAD },
    { ENV ("approve_execution", "{\"decision\":\"accept\"}"),
      RC_E_BAD_PAYLOAD },
    { ENV ("approve_execution", "{\"approval_id\":\"a\"}"), RC_E_BAD_PAYLOAD },
    { ENV ("approve_execution", "{\"approval_id\":\"a\",\"decision\":\"yes\"}"),
      RC_E_BAD_PAYLOAD },
    { ENV ("subscribe", "{\"since\":-1}"), RC_E_BAD_PAYLOAD },
    { ENV ("subscribe", "{\"since\":\"5\"}"), RC_E_BAD_PAYLOAD },
    { ENV ("subscribe", "{\"since\":1.5}"), RC_E_BAD_PAYLOAD },
    { ENV ("swarm_status", "{}"), RC_E_BAD_PAYLOAD },
    { ENV ("swarm_terminate", "{\"swarm_id\":7}"), RC_E_BAD_PAYLOAD },
    { ENV ("hello", "{\"subscribe\":\"yes\"}"), RC_E_BAD_PAYLOAD },
    { ENV ("swarm_launch", "null"), RC_E_BAD_PAYLOAD },
    { ENV ("swarm_launch", "{}"), RC_E_BAD_PAYLOAD },
    { ENV ("swarm_launch", "{\"nodes\":2,\"system_prompt\":7}"),
      RC_E_BAD_PAYLOAD },
    { ENV ("swarm_terminate", "{\"swarm_id\":\"s\",\"terminate_params\":"
           "{\"download_workspaces_on_shutdown\":true}}"), RC_E_UNSUPPORTED },
    { ENV ("swarm_terminate", "{\"swarm_id\":\"s\",\"terminate_params\":"
           "{\"archive\":1}}"), RC_E_BAD_PAYLOAD },
    { ENV ("swarm_terminate", "{\"swarm_id\":\"s\",\"terminate_params\":"
           "{\"force\":\"yes\"}}"), RC_E_BAD_PAYLOAD },
    { ENV ("enqueue_inject", "{}"), RC_E_UNSUPPORTED },
    { ENV ("project_resume", "{\"project_id\":\"p\"}"), RC_E_UNSUPPORTED },
};

static void test_bad (void)
{
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        struct rc_command c;
        struct rc_reject rej;
        int rc = parse (bad[i].line, &c, &rej);
        ok (rc < 0 && rej.code && !strcmp (rej.code, bad[i].code),
            "%s -> %s (%s)", bad[i].line, bad[i].code, rej.reason);
        rc_release (&c);
    }
    {
        struct rc_command c;
        struct rc_reject rej;
        ok (parse (ENV ("inject", "{}"), &c, &rej) < 0 && c.request_id
            && !strcmp (c.request_id, "r1"),
            "a rejected command keeps its request id");
        rc_release (&c);
    }
}

static void test_launch (void)
{
    struct rc_command c;
    struct rc_reject rej;

    ok (parse (ENV ("swarm_launch", "{\"nodes\":2,\"system_prompt\":\"hi\","
                    "\"provider\":\"local\"}"), &c, &rej) == 0
        && c.cmd == RC_SWARM_LAUNCH && c.content && !strcmp (c.content, "hi")
        && cJSON_IsObject (c.payload), "swarm_launch keeps its payload");
    rc_release (&c);
    ok (parse (ENV ("providers_list", "{}"), &c, &rej) == 0
        && c.cmd == RC_PROVIDERS_LIST, "providers_list");
    rc_release (&c);
    ok (parse (ENV ("queue_list", "{}"), &c, &rej) == 0
        && c.cmd == RC_QUEUE_LIST, "queue_list");
    rc_release (&c);
    ok (parse (ENV ("swarm_terminate", "{\"swarm_id\":\"s\","
                    "\"terminate_params\":{\"force\":true,"
                    "\"download_workspaces_on_shutdown\":false}}"), &c, &rej)
        == 0 && c.force, "swarm_terminate with terminate_params");
    rc_release (&c);
    ok (parse (ENV ("project_list", "{}"), &c, &rej) < 0
        && strstr (rej.reason, "\"project_list\" is not supported"),
        "upstream's commands we do not have are named: %s", rej.reason);
    rc_release (&c);
}

/* upstream's approval decisions, mapped onto codex's */
static const struct {
    const char *payload;
    const char *decision;       /* NULL: an amendment */
    const char *amendment;      /* the amendment, printed */
} decisions[] = {
    { "{\"call_id\":\"a\",\"decision\":\"approved\"}", "accept", NULL },
    { "{\"call_id\":\"a\",\"decision\":\"approved_for_session\"}",
      "acceptForSession", NULL },
    { "{\"call_id\":\"a\",\"decision\":\"denied\"}", "decline", NULL },
    { "{\"call_id\":\"a\",\"decision\":\"abort\"}", "cancel", NULL },
    { "{\"call_id\":\"a\",\"approved\":true}", "accept", NULL },
    { "{\"call_id\":\"a\",\"approved\":false}", "decline", NULL },
    { "{\"job_id\":\"1234\",\"call_id\":\"a\",\"node_id\":1,"
      "\"injection_id\":\"i\",\"approved\":true,\"decision\":\"accept\"}",
      "accept", NULL },
    { "{\"call_id\":\"a\",\"approved\":true,\"decision\":"
      "{\"approved_execpolicy_amendment\":{\"proposed_execpolicy_amendment\":"
      "[\"echo\",\"x\"]}}}", NULL, "[\"echo\",\"x\"]" },
    { "{\"call_id\":\"a\",\"decision\":{\"acceptWithExecpolicyAmendment\":"
      "{\"execpolicy_amendment\":[\"ls\"]}}}", NULL, "[\"ls\"]" },
};

/* and what cannot map, with the member named */
static const struct {
    const char *line;
    const char *code;
    const char *member;
} bad_members[] = {
    { ENV ("inject", "{\"swarm_id\":\"s\",\"content\":\"x\",\"colour\":1}"),
      RC_E_UNKNOWN_MEMBER, "payload.colour" },
    { "{\"protocol\":\"codeswarm.router.v1\",\"type\":\"command\","
      "\"command\":\"swarm_list\",\"extra\":true}", RC_E_UNKNOWN_MEMBER,
      "extra" },
    { ENV ("swarm_list", "{\"swarm_id\":\"s\"}"), RC_E_UNKNOWN_MEMBER,
      "payload.swarm_id" },
    { ENV ("inject", "{\"swarm_id\":\"s\",\"content\":\"x\",\"nodes\":"
           "true}"), RC_E_BAD_PAYLOAD, "payload.nodes" },
    { ENV ("inject", "{\"swarm_id\":5,\"content\":\"x\"}"),
      RC_E_BAD_PAYLOAD, "payload.swarm_id" },
    { ENV ("approve_execution", "{\"call_id\":\"a\",\"decision\":\"maybe\"}"),
      RC_E_BAD_PAYLOAD, "payload.decision" },
    { ENV ("approve_execution", "{\"call_id\":\"a\",\"approved\":\"yes\"}"),
      RC_E_BAD_PAYLOAD, "payload.approved" },
    { ENV ("approve_execution", "{\"call_id\":\"a\",\"node_id\":\"0\","
           "\"approved\":true}"), RC_E_BAD_PAYLOAD, "payload.node_id" },
    { ENV ("approve_execution", "{\"call_id\":\"a\",\"decision\":"
           "{\"acceptWithExecpolicyAmendment\":{\"execpolicy_amendment\":"
           "[]}}}"), RC_E_BAD_PAYLOAD,
      "payload.decision.acceptWithExecpolicyAmendment.execpolicy_amendment" },
    { ENV ("approve_execution", "{\"call_id\":\"a\",\"decision\":"
           "{\"applyNetworkPolicyAmendment\":{\"network_policy_amendment\":"
           "{\"host\":\"h\",\"action\":\"allow\"}}}}"),
      RC_E_UNSUPPORTED_DECISION, "payload.decision" },
    { ENV ("approve_execution", "{\"call_id\":\"a\",\"decision\":"
           "{\"frobnicate\":{}}}"), RC_E_UNSUPPORTED_DECISION,
      "payload.decision.frobnicate" },
    { ENV ("approve_execution", "{\"call_id\":\"a\",\"decision\":7}"),
      RC_E_BAD_PAYLOAD, "payload.decision" },
    { ENV ("bogus", "{}"), RC_E_UNKNOWN_COMMAND, "command" },
};

static void test_upstream (void)
{
    struct rc_command c;
    struct rc_reject rej;

    for (size_t i = 0; i < sizeof (decisions) / sizeof (decisions[0]); i++) {
        char line[1024];
        snprintf (line, sizeof (line), ENV ("approve_execution", "%s"),
                  decisions[i].payload);
        if (parse (line, &c, &rej) < 0) {
            fail ("%s: %s", decisions[i].payload, rej.reason);
            rc_release (&c);
            continue;
        }
        if (decisions[i].decision)
            ok (c.decision && !strcmp (c.decision, decisions[i].decision)
                && !c.amendment, "%s -> %s", decisions[i].payload,
                decisions[i].decision);
        else {
            char *s = c.amendment ? cJSON_PrintUnformatted (c.amendment)
                                  : NULL;
            ok (!c.decision && s && !strcmp (s, decisions[i].amendment),
                "%s -> amendment %s", decisions[i].payload,
                decisions[i].amendment);
            free (s);
        }
        rc_release (&c);
    }
    for (size_t i = 0; i < sizeof (bad_members) / sizeof (bad_members[0]);
         i++) {
        int rc = parse (bad_members[i].line, &c, &rej);
        ok (rc < 0 && !strcmp (rej.code, bad_members[i].code)
            && !strcmp (rej.member, bad_members[i].member),
            "%s -> %s naming %s (%s: %s)", bad_members[i].line,
            bad_members[i].code, bad_members[i].member, rej.member,
            rej.reason);
        rc_release (&c);
    }
    /* the OpenClaw client's envelope has a timestamp */
    ok (parse ("{\"protocol\":\"codeswarm.router.v1\",\"type\":\"command\","
               "\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"command\":"
               "\"swarm_list\",\"request_id\":\"u\",\"payload\":{}}", &c,
               &rej) == 0, "an envelope with a timestamp is accepted");
    rc_release (&c);
}

int main (int argc, char **argv)
{
    plan (NO_PLAN);
    test_launch ();
    test_ranges ();
    test_good ();
    test_bad ();
    test_upstream ();
    done_testing ();
}
