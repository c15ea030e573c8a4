/* test/translate.c - unit tests for the outbox -> event translator */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/libtap/tap.h"
#include "router/translate.h"

static cJSON *events;           /* [[name, data]...] collected by emit */

static void emit (const char *name, cJSON *data, void *arg)
{
    cJSON *e = cJSON_CreateArray ();
    cJSON_AddItemToArray (e, cJSON_CreateString (name));
    cJSON_AddItemToArray (e, data);
    cJSON_AddItemToArray (events, e);
}

static void reset (void)
{
    cJSON_Delete (events);
    events = cJSON_CreateArray ();
}

static int nevents (void)
{
    return cJSON_GetArraySize (events);
}

static const char *ev_name (int i)
{
    cJSON *e = cJSON_GetArrayItem (events, i);
    return e ? cJSON_GetArrayItem (e, 0)->valuestring : "(none)";
}

static cJSON *ev_data (int i)
{
    cJSON *e = cJSON_GetArrayItem (events, i);
    return e ? cJSON_GetArrayItem (e, 1) : NULL;
}

static const char *ev_str (int i, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive (ev_data (i), key);
    return cJSON_IsString (v) ? v->valuestring : NULL;
}

static double ev_num (int i, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive (ev_data (i), key);
    return cJSON_IsNumber (v) ? v->valuedouble : -1;
}

static bool ev_bool (int i, const char *key)
{
    return cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (ev_data (i), key));
}

/* names of all events, space separated */
static const char *names (void)
{
    static char buf[4096];
    buf[0] = '\0';
    for (int i = 0; i < nevents (); i++) {
        if (i)
            strncat (buf, " ", sizeof (buf) - strlen (buf) - 1);
        strncat (buf, ev_name (i), sizeof (buf) - strlen (buf) - 1);
    }
    return buf;
}

static uint64_t seqs[8];

/* Feed a record of node k: type and payload members (JSON text). */
static int feed (rt_trans_t *t, int k, const char *type, const char *members)
{
    char line[8192];
    cs_error_t error;
    int rc;
    snprintf (line, sizeof (line),
              "{\"v\":1,\"seq\":%llu,\"epoch\":1,\"ts\":1.5,\"type\":\"%s\"%s%s}",
              (unsigned long long)++seqs[k], type, *members ? "," : "",
              members);
    rc = rt_trans_line (t, k, line, strlen (line), 100.0, &error);
    if (rc < 0)
        diag ("feed: %s", error.text);
    return rc;
}

static int rpc (rt_trans_t *t, int k, const char *method, const char *params)
{
    char m[8192];
    snprintf (m, sizeof (m),
              "\"msg\":{\"method\":\"%s\",\"params\":%s,\"emittedAtMs\":1}",
              method, params);
    return feed (t, k, "rpc", m);
}

#define TH "\"threadId\":\"th1\""

static void turn_started (rt_trans_t *t, int k, const char *turn)
{
    char p[512];
    snprintf (p, sizeof (p),
              "{" TH ",\"turn\":{\"id\":\"%s\",\"status\":\"inProgress\","
              "\"items\":[],\"error\":null}}", turn);
    rpc (t, k, "turn/started", p);
}

static void agent_completed (rt_trans_t *t, int k, const char *turn,
                             const char *item, const char *text)
{
    char p[1024];
    snprintf (p, sizeof (p),
              "{\"item\":{\"type\":\"agentMessage\",\"id\":\"%s\","
              "\"text\":\"%s\",\"phase\":null}," TH ",\"turnId\":\"%s\"}",
              item, text, turn);
    rpc (t, k, "item/completed", p);
}

static void turn_completed (rt_trans_t *t, int k, const char *turn,
                            const char *status, const char *error)
{
    char p[1024];
    snprintf (p, sizeof (p),
              "{" TH ",\"turn\":{\"id\":\"%s\",\"items\":[],\"status\":\"%s\","
              "\"error\":%s,\"durationMs\":76}}", turn, status, error);
    rpc (t, k, "turn/completed", p);
}

static void test_text_turn (void)
{
    rt_trans_t *t = rt_trans_create ("sw1", emit, NULL);
    reset ();
    memset (seqs, 0, sizeof (seqs));
    ok (t != NULL, "rt_trans_create works");
    rt_trans_set_job (t, "job-from-swarm");

    feed (t, 0, "worker_started",
          "\"node\":0,\"host\":\"n1\",\"pid\":42,\"job_id\":\"1234\","
          "\"codex_version\":\"0.169.0\"");
    feed (t, 0, "ready", "\"thread_id\":\"th1\",\"resumed\":false,"
          "\"rollout_path\":\"/x\"");
    feed (t, 0, "heartbeat", "\"turn_active\":false,\"queued\":0");
    is (names (), "node_started node_ready", "worker lifecycle");
    is (ev_str (0, "job_id"), "1234", "job id from worker_started");
    is (ev_str (0, "swarm_id"), "sw1", "swarm id");
    cmp_ok (ev_num (0, "node_id"), "==", 0, "node id");
    is (ev_str (1, "thread_id"), "th1", "node_ready has thread id");

    reset ();
    /* the turn/start response, then inject_accepted, then notifications */
    feed (t, 0, "rpc", "\"msg\":{\"id\":3,\"result\":{\"turn\":{\"id\":\"t1\"}}}");
    feed (t, 0, "inject_accepted", "\"inbox_seq\":1,\"injection_id\":\"inj-1\","
          "\"action\":\"turn/start\",\"turn_id\":\"t1\"");
    rpc (t, 0, "thread/status/changed",
         "{" TH ",\"status\":{\"type\":\"active\",\"activeFlags\":[]}}");
    turn_started (t, 0, "t1");
    rpc (t, 0, "item/started", "{\"item\":{\"type\":\"agentMessage\",\"id\":"
         "\"m1\",\"text\":\"\"}," TH ",\"turnId\":\"t1\"}");
    rpc (t, 0, "item/agentMessage/delta", "{" TH ",\"turnId\":\"t1\","
         "\"itemId\":\"m1\",\"delta\":\"Hel\"}");
    rpc (t, 0, "item/agentMessage/delta", "{" TH ",\"turnId\":\"t1\","
         "\"itemId\":\"m1\",\"delta\":\"lo\"}");
    agent_completed (t, 0, "t1", "m1", "Hello");
    rpc (t, 0, "thread/tokenUsage/updated", "{" TH ",\"turnId\":\"t1\","
         "\"tokenUsage\":{\"total\":{\"totalTokens\":146,\"inputTokens\":140,"
         "\"cachedInputTokens\":0,\"outputTokens\":6,"
         "\"reasoningOutputTokens\":0},\"last\":{\"totalTokens\":146,"
         "\"inputTokens\":140,\"cachedInputTokens\":0,\"outputTokens\":6,"
         "\"reasoningOutputTokens\":0},\"modelContextWindow\":258400}}");
    rpc (t, 0, "account/rateLimits/updated", "{\"rateLimits\":{}}");
    rpc (t, 0, "thread/status/changed",
         "{" TH ",\"status\":{\"type\":\"idle\"}}");
    is (names (), "inject_delivered thread_status turn_started "
        "assistant_delta assistant_delta usage thread_status",
        "assistant is held until the turn ends");
    is (ev_str (0, "injection_id"), "inj-1", "inject_delivered injection id");
    is (ev_str (0, "turn_id"), "t1", "inject_delivered turn id");
    is (ev_str (2, "injection_id"), "inj-1", "turn_started correlated");
    is (ev_str (3, "delta"), "Hel", "delta text");
    is (ev_str (3, "injection_id"), "inj-1", "delta correlated");
    cmp_ok (ev_num (5, "total_tokens"), "==", 146, "usage total_tokens");
    cmp_ok (ev_num (5, "last_input_tokens"), "==", 140, "usage last_*");
    cmp_ok (ev_num (5, "model_context_window"), "==", 258400,
            "usage context window");
    is (ev_str (1, "status_type"), "active", "thread_status active");
    is (ev_str (3, "content"), "Hel", "delta as upstream's content");

    reset ();
    turn_completed (t, 0, "t1", "completed", "null");
    is (names (), "assistant turn_complete", "turn end: assistant, complete");
    is (ev_str (0, "text"), "Hello", "assistant final text");
    ok (ev_bool (0, "final_answer"), "final_answer on the last message");
    is (ev_str (0, "injection_id"), "inj-1", "assistant correlated");
    is (ev_str (1, "status"), "completed", "turn_complete status");
    cmp_ok (ev_num (1, "duration_ms"), "==", 76, "turn_complete duration");

    reset ();
    turn_completed (t, 0, "t1", "completed", "null");
    agent_completed (t, 0, "t1", "m1", "Hello");
    cmp_ok (nevents (), "==", 0, "a second turn/completed says nothing");

    /* a replayed record (same seq) is ignored */
    reset ();
    {
        const char *line = "{\"v\":1,\"seq\":3,\"epoch\":1,\"ts\":1,"
                           "\"type\":\"ready\",\"thread_id\":\"th1\"}";
        cmp_ok (rt_trans_line (t, 0, line, strlen (line), 1, NULL), "==", 0,
                "a record with an old seq is a duplicate");
        cmp_ok (nevents (), "==", 0, "and emits nothing");
    }
    rt_trans_destroy (t);
}

static void test_two_messages_and_tools (void)
{
    rt_trans_t *t = rt_trans_create ("sw", emit, NULL);
    reset ();
    memset (seqs, 0, sizeof (seqs));
    feed (t, 1, "inject_accepted", "\"inbox_seq\":1,\"injection_id\":\"a\","
          "\"action\":\"turn/start\",\"turn_id\":\"T\"");
    turn_started (t, 1, "T");
    agent_completed (t, 1, "T", "m1", "first");
    rpc (t, 1, "item/started", "{\"item\":{\"type\":\"commandExecution\","
         "\"id\":\"c1\",\"command\":\"/bin/bash -c 'ls'\",\"cwd\":\"/w\","
         "\"status\":\"inProgress\"}," TH ",\"turnId\":\"T\"}");
    rpc (t, 1, "item/completed", "{\"item\":{\"type\":\"commandExecution\","
         "\"id\":\"c1\",\"command\":\"/bin/bash -c 'ls'\",\"cwd\":\"/w\","
         "\"status\":\"completed\",\"aggregatedOutput\":\"a\\nb\\n\","
         "\"exitCode\":0,\"durationMs\":12}," TH ",\"turnId\":\"T\"}");
    rpc (t, 1, "item/started", "{\"item\":{\"type\":\"fileChange\","
         "\"id\":\"f1\",\"status\":\"inProgress\",\"changes\":[{\"path\":"
         "\"x.c\",\"kind\":{\"type\":\"add\"},\"diff\":\"+x\"}]}," TH
         ",\"turnId\":\"T\"}");
    rpc (t, 1, "item/completed", "{\"item\":{\"type\":\"fileChange\","
         "\"id\":\"f1\",\"status\":\"completed\",\"changes\":[]}," TH
         ",\"turnId\":\"T\"}");
    rpc (t, 1, "item/completed", "{\"item\":{\"type\":\"reasoning\","
         "\"id\":\"r1\",\"summary\":[\"think\",\"more\"],\"content\":[]}," TH
         ",\"turnId\":\"T\"}");
    agent_completed (t, 1, "T", "m2", "second");
    turn_completed (t, 1, "T", "completed", "null");
    is (names (), "inject_delivered turn_started command_started "
        "command_completed filechange_started filechange_completed reasoning "
        "assistant assistant turn_complete",
        "tool turn: events in order, first message flushed when the next "
        "one completes");
    is (ev_str (3, "output"), "a\nb\n", "command output");
    cmp_ok (ev_num (3, "exit_code"), "==", 0, "command exit code");
    cmp_ok (ev_num (3, "duration_ms"), "==", 12, "command duration");
    is (ev_str (3, "cwd"), "/w", "command cwd");
    is (ev_str (3, "command"), "/bin/bash -c 'ls'", "command");
    is (ev_str (6, "text"), "think\nmore", "reasoning summary joined");
    is (ev_str (7, "text"), "first", "first assistant message");
    ok (!ev_bool (7, "final_answer"), "not final");
    is (ev_str (8, "text"), "second", "second assistant message");
    ok (ev_bool (8, "final_answer"), "final");
    cmp_ok (ev_num (8, "node_id"), "==", 1, "node 1");
    rt_trans_destroy (t);
}

static void test_interrupt_fail_abort (void)
{
    rt_trans_t *t = rt_trans_create ("sw", emit, NULL);
    reset ();
    memset (seqs, 0, sizeof (seqs));

    /* interrupted: the in-flight message never completes */
    turn_started (t, 0, "A");
    rpc (t, 0, "item/agentMessage/delta", "{\"turnId\":\"A\",\"itemId\":"
         "\"m\",\"delta\":\"x\"}");
    turn_completed (t, 0, "A", "interrupted", "null");
    is (names (), "turn_started assistant_delta turn_complete",
        "interrupted turn: no assistant, turn_complete");
    is (ev_str (2, "status"), "interrupted", "status interrupted");
    ok (ev_str (0, "injection_id") == NULL, "no injection id when unknown");

    /* failed with the error */
    reset ();
    turn_started (t, 0, "B");
    rpc (t, 0, "error", "{\"error\":{\"message\":\"boom\",\"codexErrorInfo\":"
         "\"internalServerError\"},\"willRetry\":false," TH
         ",\"turnId\":\"B\"}");
    turn_completed (t, 0, "B", "failed",
                    "{\"message\":\"boom\",\"codexErrorInfo\":"
                    "\"internalServerError\"}");
    is (names (), "turn_started agent_error turn_complete",
        "failed turn: agent_error then turn_complete");
    is (ev_str (1, "message"), "boom", "agent_error message");
    is (ev_str (1, "codex_error_info"), "internalServerError",
        "agent_error codex info");
    is (ev_str (2, "status"), "failed", "turn_complete failed");
    {
        cJSON *err = cJSON_GetObjectItem (ev_data (2), "error");
        ok (err && cJSON_IsString (cJSON_GetObjectItem (err, "message")),
            "turn_complete carries the error");
    }

    /* the worker's turn_aborted ends a turn exactly once */
    reset ();
    feed (t, 0, "inject_accepted", "\"inbox_seq\":3,\"injection_id\":\"i3\","
          "\"action\":\"turn/start\",\"turn_id\":\"C\"");
    turn_started (t, 0, "C");
    agent_completed (t, 0, "C", "mc", "partial");
    feed (t, 0, "app_server_exited", "\"signal\":9,\"stderr_tail\":\"\"");
    feed (t, 0, "turn_aborted", "\"turn_id\":\"C\",\"injection_id\":\"i3\","
          "\"reason\":\"app-server killed\"");
    feed (t, 0, "app_server_restarted", "\"attempt\":1,\"backoff\":1");
    feed (t, 0, "turn_aborted", "\"turn_id\":\"C\",\"injection_id\":\"i3\","
          "\"reason\":\"again\"");
    turn_completed (t, 0, "C", "completed", "null");
    is (names (), "inject_delivered turn_started agent_error assistant "
        "turn_complete node_restarted",
        "turn_aborted: held message (not final), one turn_complete");
    ok (!ev_bool (3, "final_answer"), "aborted turn's message is not final");
    is (ev_str (4, "status"), "failed", "aborted turn failed");
    is (ev_str (4, "injection_id"), "i3", "aborted turn correlated");

    /* no premature turn_complete: a turn/completed for an unknown turn still
     * counts once, an error does not end a turn */
    reset ();
    turn_started (t, 0, "D");
    rpc (t, 0, "error", "{\"error\":{\"message\":\"retrying\"},"
         "\"willRetry\":true,\"turnId\":\"D\"}");
    ok (!strstr (names (), "turn_complete"), "an error does not end a turn");
    rt_trans_destroy (t);
}

static void test_approvals (void)
{
    rt_trans_t *t = rt_trans_create ("sw", emit, NULL);
    int node = -1;
    cJSON *list, *st;
    reset ();
    memset (seqs, 0, sizeof (seqs));
    turn_started (t, 2, "T");
    feed (t, 2, "rpc", "\"msg\":{\"method\":\"item/commandExecution/"
          "requestApproval\",\"id\":0,\"params\":{\"turnId\":\"T\"}}");
    feed (t, 2, "approval_requested", "\"approval_id\":\"n2-1-1-0\","
          "\"rpc_id\":0,\"method\":\"item/commandExecution/requestApproval\","
          "\"thread_id\":\"th1\",\"turn_id\":\"T\",\"item_id\":\"c\","
          "\"command\":\"rm -rf x\",\"cwd\":\"/w\",\"reason\":\"why\","
          "\"available_decisions\":[\"accept\",\"cancel\"]");
    feed (t, 2, "approval_requested", "\"approval_id\":\"n2-1-1-0\"");
    is (names (), "turn_started exec_approval_required",
        "approval announced once (raw request not translated)");
    is (ev_str (1, "approval_id"), "n2-1-1-0", "approval id");
    is (ev_str (1, "command"), "rm -rf x", "approval command");
    is (ev_str (1, "reason"), "why", "approval reason");
    ok (cJSON_GetArraySize (cJSON_GetObjectItem (ev_data (1),
                                                 "available_decisions")) == 2,
        "available decisions");
    ok (rt_trans_approval (t, "n2-1-1-0", &node) != NULL && node == 2,
        "pending approval found on node 2");
    list = rt_trans_approvals (t);
    cmp_ok (cJSON_GetArraySize (list), "==", 1, "one pending approval");
    cJSON_Delete (list);

    /* state survives a save/restore into a new translator */
    st = rt_trans_state (t, 2);
    ok (st != NULL, "state saved");
    {
        rt_trans_t *t2 = rt_trans_create ("sw", emit, NULL);
        ok (rt_trans_restore (t2, 2, st, 5, NULL) == 0, "state restored");
        ok (rt_trans_approval (t2, "n2-1-1-0", NULL) != NULL,
            "restored translator offers the pending approval");
        cmp_ok (rt_trans_last_seq (t2, 2), "==", seqs[2], "last seq restored");
        reset ();
        feed (t2, 2, "approval_resolved", "\"approval_id\":\"n2-1-1-0\","
              "\"decision\":\"accept\",\"by\":\"inbox\"");
        turn_completed (t2, 2, "T", "completed", "null");
        is (names (), "exec_approval_resolved turn_complete",
            "restored translator continues the turn");
        ok (rt_trans_approval (t2, "n2-1-1-0", NULL) == NULL,
            "resolved approval is gone");
        rt_trans_destroy (t2);
    }
    cJSON_Delete (st);
    rt_trans_destroy (t);
}

static const char *node_state (rt_trans_t *t, int k)
{
    static char buf[32];
    cJSON *arr = rt_trans_nodes (t), *o;
    buf[0] = '\0';
    cJSON_ArrayForEach (o, arr) {
        const cJSON *id = cJSON_GetObjectItem (o, "node_id");
        const cJSON *st = cJSON_GetObjectItem (o, "state");
        if (cJSON_IsNumber (id) && id->valueint == k && cJSON_IsString (st))
            snprintf (buf, sizeof (buf), "%s", st->valuestring);
    }
    cJSON_Delete (arr);
    return buf;
}

static const char *ev_error_code (int i)
{
    cJSON *e = cJSON_GetObjectItemCaseSensitive (ev_data (i), "error");
    cJSON *c = cJSON_GetObjectItemCaseSensitive (e, "code");
    return cJSON_IsString (c) ? c->valuestring : NULL;
}

static void test_cut_turn_codes (void)
{
    rt_trans_t *t = rt_trans_create ("sw", emit, NULL);
    reset ();
    feed (t, 0, "worker_started", "\"host\":\"h\",\"pid\":1");
    turn_started (t, 0, "T1");
    reset ();
    feed (t, 0, "worker_started", "\"host\":\"h\",\"pid\":2");
    is (names (), "turn_complete node_restarted",
        "a worker restart ends the turn in flight");
    is (ev_error_code (0), "worker_restarted",
        "... with error.code worker_restarted");
    turn_started (t, 0, "T2");
    reset ();
    feed (t, 0, "worker_stopped", "\"reason\":\"SIGTERM\",\"status\":0");
    is (ev_error_code (0), "worker_stopped",
        "a worker stop ends the turn with error.code worker_stopped");
    rt_trans_destroy (t);
}

static void test_degraded (void)
{
    rt_trans_t *t = rt_trans_create ("sw", emit, NULL);
    reset ();
    feed (t, 0, "worker_started", "\"host\":\"h\",\"pid\":1");
    feed (t, 0, "ready", "\"thread_id\":\"th\",\"resumed\":false");
    is (node_state (t, 0), "ready", "ready");
    feed (t, 0, "node_degraded", "\"reason\":\"outbox_unwritable\","
          "\"error\":\"No space left on device\",\"held\":3");
    feed (t, 0, "node_degraded", "\"reason\":\"inbox_unreadable\","
          "\"error\":\"symlink\"");
    is (node_state (t, 0), "degraded", "a degraded node is not ready");
    feed (t, 0, "node_recovered", "\"reason\":\"outbox_unwritable\","
          "\"held\":3,\"dropped_deltas\":0,\"seconds\":1.5");
    is (node_state (t, 0), "degraded", "still degraded: the inbox");
    feed (t, 0, "node_recovered", "\"reason\":\"inbox_unreadable\"");
    is (node_state (t, 0), "ready", "ready again once both recovered");
    is (names (), "node_started node_ready node_degraded node_degraded "
        "node_recovered node_recovered", "node_degraded/node_recovered events");
    is (ev_str (2, "reason"), "outbox_unwritable", "the reason is passed on");
    rt_trans_destroy (t);
}

static void test_lost_and_stopped (void)
{
    rt_trans_t *t = rt_trans_create ("sw", emit, NULL);
    cs_error_t error;
    const char *line;
    reset ();
    memset (seqs, 0, sizeof (seqs));
    feed (t, 0, "heartbeat", "\"turn_active\":false");   /* at now=100 */
    feed (t, 1, "heartbeat", "\"turn_active\":false");
    cmp_ok (rt_trans_check_lost (t, 120, 30), "==", 0, "not lost yet");
    ok (rt_trans_next_deadline (t, 30) == 130, "deadline is 130");
    cmp_ok (rt_trans_check_lost (t, 131, 30), "==", 2, "both lost at 131");
    cmp_ok (rt_trans_check_lost (t, 200, 30), "==", 0, "node_lost only once");
    reset ();
    feed (t, 1, "heartbeat", "\"turn_active\":false");
    is (names (), "node_recovered", "a lost node that speaks again");
    reset ();
    feed (t, 0, "walltime_warning", "");
    feed (t, 0, "worker_stopped", "\"reason\":\"signal\",\"status\":0");
    feed (t, 0, "error", "\"code\":\"bad_inbox_record\",\"message\":\"m\","
          "\"inbox_seq\":4");
    is (names (), "node_recovered walltime_warning node_stopped agent_error",
        "walltime_warning, node_stopped, worker error");
    is (ev_str (3, "code"), "bad_inbox_record", "worker error code");
    cmp_ok (rt_trans_check_lost (t, 1000, 30), "==", 1,
            "a stopped node is never lost (node 1 is)");

    /* a node_lost said before a restart: set_lost marks it quietly */
    {
        cJSON *st;
        rt_trans_t *t2 = rt_trans_create ("sw", emit, NULL);
        reset ();
        ok (rt_trans_set_lost (t2, 0) < 0, "set_lost: an unknown node");
        st = rt_trans_state (t, 1);
        ok (st && cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (st, "lost")),
            "the lost flag is in the node's state");
        cJSON_ReplaceItemInObjectCaseSensitive (st, "lost",
                                                cJSON_CreateFalse ());
        ok (rt_trans_restore (t2, 1, st, 1000, &error) == 0,
            "restored with lost false");
        ok (rt_trans_set_lost (t2, 1) == 0, "set_lost");
        cmp_ok (rt_trans_check_lost (t2, 5000, 30), "==", 0,
                "and node_lost is not said again");
        cmp_ok (nevents (), "==", 0, "set_lost emits nothing");
        cJSON_Delete (st);
        rt_trans_destroy (t2);
    }

    /* bad input: errors, never crashes */
    line = "not json";
    ok (rt_trans_line (t, 0, line, strlen (line), 1, &error) < 0,
        "bad JSON is an error: %s", error.text);
    line = "{\"type\":\"rpc\"}";
    ok (rt_trans_line (t, 0, line, strlen (line), 1, &error) < 0,
        "no seq is an error: %s", error.text);
    line = "{\"seq\":99,\"type\":\"rpc\",\"msg\":[1,2]}";
    ok (rt_trans_line (t, 0, line, strlen (line), 1, &error) == 0,
        "rpc without an object msg is dropped");
    line = "{\"seq\":100,\"type\":\"rpc\",\"msg\":{\"method\":\"turn/completed\","
           "\"params\":{\"turn\":7}}}";
    ok (rt_trans_line (t, 0, line, strlen (line), 1, &error) == 0,
        "malformed turn/completed is dropped");
    ok (rt_trans_line (t, -1, "{}", 2, 1, &error) < 0, "negative node");
    ok (rt_trans_line (t, RT_MAX_NODES, "{}", 2, 1, &error) < 0,
        "node out of range");
    rt_trans_destroy (t);
}

/* A node lost with a turn in flight: that turn's turn_complete comes with
 * node_lost, once, whatever the node says later.
 */
static void test_lost_in_flight (void)
{
    rt_trans_t *t = rt_trans_create ("sw", emit, NULL);
    const cJSON *err;
    cJSON *st;
    cs_error_t error;

    reset ();
    memset (seqs, 0, sizeof (seqs));
    feed (t, 0, "worker_started", "\"host\":\"h\",\"pid\":1");
    feed (t, 0, "ready", "\"thread_id\":\"th1\",\"resumed\":false");
    feed (t, 1, "worker_started", "\"host\":\"h\",\"pid\":2");
    feed (t, 1, "ready", "\"thread_id\":\"th1\",\"resumed\":false");
    feed (t, 0, "inject_accepted", "\"inbox_seq\":1,\"injection_id\":\"i1\","
          "\"action\":\"turn/start\",\"turn_id\":\"T1\"");
    turn_started (t, 0, "T1");
    reset ();
    cmp_ok (rt_trans_check_lost (t, 131, 30), "==", 3,
            "node 0 and node 1 lost, and node 0's turn complete");
    is (names (), "node_lost turn_complete node_lost",
        "turn_complete follows its node's node_lost");
    is (ev_str (1, "turn_id"), "T1", "the turn in flight");
    is (ev_str (1, "status"), "failed", "failed");
    is (ev_str (1, "reason"), "node_lost", "reason node_lost");
    is (ev_str (1, "injection_id"), "i1", "with its injection");
    err = cJSON_GetObjectItemCaseSensitive (ev_data (1), "error");
    ok (err && !strcmp (cJSON_GetObjectItemCaseSensitive (err, "code")
                            ->valuestring, "node_lost"),
        "error.code node_lost");
    is (ev_str (0, "injection_id"), "i1", "node_lost names the injection");
    cmp_ok (ev_num (1, "node_id"), "==", 0, "on node 0");
    ok (cJSON_IsNull (cJSON_GetObjectItemCaseSensitive (ev_data (2),
                                                        "injection_id"))
        || !ev_str (2, "injection_id"), "node 1 had nothing in flight");

    /* the state as a restart would find it: the turn is over there too */
    st = rt_trans_state (t, 0);
    ok (st && !cJSON_GetObjectItemCaseSensitive (st, "turn_id"),
        "no turn in flight in the saved state");
    cJSON_Delete (st);

    reset ();
    feed (t, 0, "heartbeat", "\"turn_active\":true");
    agent_completed (t, 0, "T1", "m1", "late");
    turn_completed (t, 0, "T1", "completed", "null");
    feed (t, 0, "turn_aborted", "\"turn_id\":\"T1\",\"injection_id\":\"i1\","
          "\"reason\":\"x\"");
    ok (!strncmp (names (), "node_recovered", 14)
        && !strstr (names (), "turn_complete"),
        "the node back: its end of the lost turn is no second turn_complete");
    reset ();
    feed (t, 0, "worker_started", "\"host\":\"h\",\"pid\":3");
    ok (!strstr (names (), "turn_complete"), "nor a worker restart");

    /* a node_lost logged before a restart, the state older than it */
    {
        rt_trans_t *t2 = rt_trans_create ("sw", emit, NULL);
        rt_trans_t *t3 = rt_trans_create ("sw", emit, NULL);
        memset (seqs, 0, sizeof (seqs));
        feed (t3, 0, "worker_started", "\"host\":\"h\",\"pid\":1");
        feed (t3, 0, "ready", "\"thread_id\":\"th1\",\"resumed\":false");
        turn_started (t3, 0, "T2");
        st = rt_trans_state (t3, 0);
        ok (rt_trans_restore (t2, 0, st, 1000, &error) == 0, "restored");
        reset ();
        ok (rt_trans_set_lost (t2, 0) == 0, "set_lost");
        cmp_ok (rt_trans_check_lost (t2, 5000, 30), "==", 0,
                "nothing said again after the restart");
        turn_completed (t2, 0, "T2", "completed", "null");
        ok (!strstr (names (), "turn_complete"),
            "set_lost ends the turn in flight quietly");
        cJSON_Delete (st);
        rt_trans_destroy (t2);
        rt_trans_destroy (t3);
    }
    rt_trans_destroy (t);
}

static void test_debug (void)
{
    rt_trans_t *t = rt_trans_create ("sw", emit, NULL);
    reset ();
    memset (seqs, 0, sizeof (seqs));
    rpc (t, 0, "warning", "{\"message\":\"m\"}");
    feed (t, 0, "mystery", "\"x\":1");
    cmp_ok (nevents (), "==", 0, "unknown notifications dropped");
    rt_trans_set_debug (t, true);
    rpc (t, 0, "warning", "{\"message\":\"m\"}");
    feed (t, 0, "mystery", "\"x\":1");
    is (names (), "debug_rpc debug_record", "with debug they pass through");
    rt_trans_destroy (t);
}

static void test_swarm_stream (void)
{
    rt_trans_t *t = rt_trans_create ("sw", emit, NULL);
    cs_error_t error;
    cJSON *rec;

    reset ();
    rec = cJSON_Parse ("{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":1,"
                       "\"type\":\"session_migrating\",\"job_id\":\"99\","
                       "\"reason\":\"walltime\"}");
    cmp_ok (rt_trans_swarm_record (t, rec, 1, &error), "==", 1,
            "a swarm record is one event");
    is (names (), "session_migrating", "named after the record type");
    ok (cJSON_IsNull (cJSON_GetObjectItem (ev_data (0), "node_id")),
        "node_id is null");
    is (ev_str (0, "job_id"), "99", "job id from the record");
    is (ev_str (0, "reason"), "walltime", "payload members copied");
    cmp_ok (rt_trans_swarm_record (t, rec, 1, &error), "==", 0,
            "the same seq again says nothing");
    cJSON_Delete (rec);
    rec = cJSON_Parse ("{\"seq\":2,\"type\":\"Bad Type\"}");
    ok (rt_trans_swarm_record (t, rec, 1, &error) < 0,
        "a type that is no event name: %s", error.text);
    cJSON_Delete (rec);
    ok (rt_trans_last_seq (t, -1) == 2, "swarm stream last seq");
    rt_trans_destroy (t);
}

int main (int argc, char **argv)
{
    plan (NO_PLAN);
    test_swarm_stream ();
    test_text_turn ();
    test_two_messages_and_tools ();
    test_interrupt_fail_abort ();
    test_approvals ();
    test_lost_and_stopped ();
    test_lost_in_flight ();
    test_degraded ();
    test_cut_turn_codes ();
    test_debug ();
    cJSON_Delete (events);
    done_testing ();
}
