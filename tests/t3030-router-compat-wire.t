#!/bin/bash
test_description='codeswarm.router.v1 as the original clients speak it: members, decisions, bad input'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

# The members checked here are those the original project's clients read
# (its cli/src/index.ts, formatter/EventFormatter.ts and the OpenClaw
# skill's index.ts) and those its docs/PROTOCOL_SPEC.md gives; the
# worker's records are written by hand so that every shape is certain.
# t3031 and t3032 replay the clients' flows against the real codex.

router_trap
test_require_component JQ jq --version

P='"protocol":"codeswarm.router.v1","type":"command"'
S=home/swarms

# cmd NAME REQUEST_ID PAYLOAD
cmd () {
    echo "{$P,\"command\":\"$1\",\"request_id\":\"$2\",\"payload\":$3}"
}

# out NODE TYPE JSON: a worker record of swarm s1
out () {
    codeswarm-mailbox append --type "$2" "s1/outbox/$1" "$3"
}

# events NAME [N]: the stream from the start until the Nth event NAME
events () {
    codeswarm-client rpc --timeout 5 --until "$1" --count "${2:-1}" \
        "$(cmd subscribe sub '{"since":0}')" >ev.json
}

# ev FILTER: the data of the matching events, compact
ev () {
    jq -c "select(.event != null and ($1)) | .data" ev.json
}

test_expect_success JQ 'setup: swarm s1 (two nodes, running) and s2 (ended), a router' '
    out 0 worker_started "{\"node\":0,\"host\":\"h\",\"pid\":1,\"job_id\":\"77\"}" &&
    out 1 worker_started "{\"node\":1,\"host\":\"h\",\"pid\":2,\"job_id\":\"77\"}" &&
    echo "{\"nodes\":2,\"state\":\"running\",\"job_id\":\"77\"}" >$S/s1/swarm.json &&
    mkdir -p $S/s2/outbox && chmod -R go-rwx $S/s2 &&
    echo "{\"nodes\":1,\"state\":\"ended\",\"job_id\":\"78\"}" >$S/s2/swarm.json &&
    chmod 600 $S/s1/swarm.json $S/s2/swarm.json &&
    router_start
'

test_expect_success JQ 'swarm_list: the original status values beside our state' '
    codeswarm-client rpc --until swarm_list "$(cmd swarm_list l1 "{}")" >list.json &&
    jq -e -n "any(inputs; (.event == \"swarm_list\") and (.data.request_id == \"l1\"
           and .data.swarms.s1.status == \"running\" and .data.swarms.s1.state == \"running\"
           and .data.swarms.s1.job_id == \"77\" and .data.swarms.s1.node_count == 2
           and .data.swarms.s2.status == \"terminated\" and .data.swarms.s2.state == \"ended\"))" list.json
'

test_expect_success JQ 'swarm_status: request_id, node_count, the status values' '
    codeswarm-client rpc --until swarm_status "$(cmd swarm_status st1 "{\"swarm_id\":\"s1\"}")" >st.json &&
    jq -e -n "any(inputs; (.event == \"swarm_status\") and (.data.request_id == \"st1\" and .data.swarm_id == \"s1\"
           and .data.node_count == 2 and .data.status == \"running\" and .data.job_id == \"77\"))" st.json &&
    codeswarm-client rpc --until command_rejected "$(cmd swarm_status st2 "{\"swarm_id\":\"nope\"}")" >st2.json &&
    jq -e -n "any(inputs; (.event == \"command_rejected\") and (.data.request_id == \"st2\" and (.data.reason | length > 0)))" st2.json
'

test_expect_success JQ 'inject as the CLI sends it: one per node, nodes an index; acks carry the request id' '
    codeswarm-client rpc --until inject_ack --count 2 \
        "$(cmd inject i0 "{\"swarm_id\":\"s1\",\"nodes\":0,\"content\":\"hi\"}")" \
        "$(cmd inject i1 "{\"swarm_id\":\"s1\",\"nodes\":1,\"content\":\"hi\"}")" >acks.json &&
    jq -e -n "any(inputs; (.event == \"inject_ack\" and .data.request_id == \"i0\") and (.data.node_id == 0 and .data.swarm_id == \"s1\" and (.data.injection_id | length > 0)))" acks.json &&
    jq -e -n "any(inputs; (.event == \"inject_ack\" and .data.request_id == \"i1\") and (.data.node_id == 1))" acks.json &&
    test "$(jq -r "select(.type == \"user\") | .request_id" $S/s1/inbox/0.jsonl)" = i0 &&
    test "$(jq -r "select(.type == \"user\") | .request_id" $S/s1/inbox/1.jsonl)" = i1
'

test_expect_success JQ 'inject as OpenClaw sends it: nodes "all", a timestamp in the envelope' '
    echo "{$P,\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"command\":\"inject\",\"request_id\":\"oc\",\"payload\":{\"swarm_id\":\"s1\",\"nodes\":\"all\",\"content\":\"hey\"}}" >oc.cmd &&
    codeswarm-client rpc --until inject_ack --count 2 "$(cat oc.cmd)" >oc.json &&
    test "$(jq -r "select(.event == \"inject_ack\" and .data.request_id == \"oc\") | .data.node_id" oc.json | sort | tr "\n" " ")" = "0 1 "
'

test_expect_success JQ 'inject_delivered and inject_queued carry the request id the worker echoes' '
    inj=$(jq -r "select(.event == \"inject_ack\" and .data.request_id == \"i0\") | .data.injection_id" acks.json) &&
    out 0 turn_queued "{\"inbox_seq\":1,\"injection_id\":\"$inj\",\"position\":1,\"request_id\":\"i0\"}" &&
    out 0 inject_accepted "{\"inbox_seq\":1,\"injection_id\":\"$inj\",\"action\":\"turn/start\",\"turn_id\":\"T0\",\"request_id\":\"i0\"}" &&
    events inject_delivered &&
    ev ".event == \"inject_delivered\"" | jq -e -n "any(inputs; .request_id == \"i0\" and .injection_id == \"$inj\" and .node_id == 0 and .swarm_id == \"s1\")" &&
    ev ".event == \"inject_queued\"" | jq -e -n "any(inputs; .request_id == \"i0\")"
'

test_expect_success JQ 'a turn: content beside delta and text; thread_status.status is {type}' '
    rpc () { out 0 rpc "{\"msg\":$1}"; } &&
    rpc "{\"method\":\"thread/status/changed\",\"params\":{\"threadId\":\"th\",\"status\":{\"type\":\"active\",\"activeFlags\":[]}}}" &&
    rpc "{\"method\":\"turn/started\",\"params\":{\"threadId\":\"th\",\"turn\":{\"id\":\"T0\",\"items\":[],\"status\":\"inProgress\"}}}" &&
    rpc "{\"method\":\"item/agentMessage/delta\",\"params\":{\"threadId\":\"th\",\"turnId\":\"T0\",\"itemId\":\"m1\",\"delta\":\"Hel\"}}" &&
    rpc "{\"method\":\"item/agentMessage/delta\",\"params\":{\"threadId\":\"th\",\"turnId\":\"T0\",\"itemId\":\"m1\",\"delta\":\"lo\"}}" &&
    rpc "{\"method\":\"item/reasoning/summaryTextDelta\",\"params\":{\"threadId\":\"th\",\"turnId\":\"T0\",\"itemId\":\"r1\",\"delta\":\"think\",\"summaryIndex\":0}}" &&
    rpc "{\"method\":\"item/completed\",\"params\":{\"threadId\":\"th\",\"turnId\":\"T0\",\"item\":{\"type\":\"reasoning\",\"id\":\"r1\",\"summary\":[\"thinking hard\"],\"content\":[]}}}" &&
    rpc "{\"method\":\"item/started\",\"params\":{\"threadId\":\"th\",\"turnId\":\"T0\",\"item\":{\"type\":\"commandExecution\",\"id\":\"call_1\",\"command\":\"echo hi\",\"cwd\":\"/w\",\"status\":\"inProgress\",\"commandActions\":[]}}}" &&
    rpc "{\"method\":\"item/completed\",\"params\":{\"threadId\":\"th\",\"turnId\":\"T0\",\"item\":{\"type\":\"commandExecution\",\"id\":\"call_1\",\"command\":\"echo hi\",\"cwd\":\"/w\",\"status\":\"completed\",\"commandActions\":[],\"aggregatedOutput\":\"hi\\n\",\"exitCode\":0,\"durationMs\":1250}}}" &&
    rpc "{\"method\":\"item/completed\",\"params\":{\"threadId\":\"th\",\"turnId\":\"T0\",\"item\":{\"type\":\"agentMessage\",\"id\":\"m1\",\"text\":\"Hello\"}}}" &&
    rpc "{\"method\":\"thread/tokenUsage/updated\",\"params\":{\"threadId\":\"th\",\"turnId\":\"T0\",\"tokenUsage\":{\"total\":{\"totalTokens\":120,\"inputTokens\":100,\"cachedInputTokens\":0,\"outputTokens\":20,\"reasoningOutputTokens\":0},\"last\":{\"totalTokens\":120,\"inputTokens\":100,\"cachedInputTokens\":0,\"outputTokens\":20,\"reasoningOutputTokens\":0},\"modelContextWindow\":1000}}}" &&
    rpc "{\"method\":\"turn/completed\",\"params\":{\"threadId\":\"th\",\"turn\":{\"id\":\"T0\",\"items\":[],\"status\":\"completed\"}}}" &&
    rpc "{\"method\":\"thread/status/changed\",\"params\":{\"threadId\":\"th\",\"status\":{\"type\":\"idle\"}}}" &&
    events thread_status 2 &&
    test "$(ev ".event == \"assistant_delta\"" | jq -r .content | tr -d "\n")" = Hello &&
    test "$(ev ".event == \"assistant_delta\"" | jq -r .delta | tr -d "\n")" = Hello &&
    ev ".event == \"assistant\"" | jq -e -n "any(inputs; .content == \"Hello\" and .text == \"Hello\" and .node_id == 0 and .swarm_id == \"s1\" and .injection_id == \"$inj\")" &&
    ev ".event == \"reasoning_delta\"" | jq -e -n "any(inputs; .content == \"think\")" &&
    ev ".event == \"reasoning\"" | jq -e -n "any(inputs; .content == \"thinking hard\" and .text == \"thinking hard\")" &&
    ev ".event == \"thread_status\"" | jq -e -n "any(inputs; .status.type == \"active\" and .status_type == \"active\")" &&
    ev ".event == \"thread_status\"" | jq -e -n "any(inputs; .status == {\"type\":\"idle\"} and .status_type == \"idle\")" &&
    ev ".event == \"command_started\"" | jq -e -n "any(inputs; .call_id == \"call_1\" and .command == \"echo hi\" and .cwd == \"/w\")" &&
    ev ".event == \"command_completed\"" | jq -e -n "any(inputs; .call_id == \"call_1\" and .stdout == \"hi\\n\" and .stderr == null and .exit_code == 0 and .duration == {\"secs\":1,\"nanos\":250000000} and .duration_ms == 1250)" &&
    ev ".event == \"usage\"" | jq -e -n "any(inputs; .total_tokens == 120 and .injection_id == \"$inj\")" &&
    ev ".event == \"turn_complete\"" | jq -e -n "any(inputs; .injection_id == \"$inj\" and .node_id == 0 and .swarm_id == \"s1\")"
'

# an approval request of node 1, with the decisions codex offers
ask () {
    out 1 approval_requested "{\"approval_id\":\"$1\",\"rpc_id\":0,\"method\":\"${3:-item/commandExecution/requestApproval}\",\"thread_id\":\"th\",\"turn_id\":\"T1\",\"item_id\":\"call_$1\",\"command\":\"echo ok\",\"cwd\":\"/w\",\"reason\":\"escalate\",\"available_decisions\":$2}"
}
AMEND='["accept",{"acceptWithExecpolicyAmendment":{"execpolicy_amendment":["echo","ok"]}},"cancel"]'
PLAIN='["accept","acceptForSession","decline","cancel"]'

# approve REQUEST_ID PAYLOAD: the approval_ack or command_rejected
approve () {
    codeswarm-client rpc --until "${3:-approval_ack}" "$(cmd approve_execution "$1" "$2")" >"$1.json" &&
    jq -c "select(.event == \"${3:-approval_ack}\") | .data" "$1.json"
}

# inbox_decision N: the decision of the Nth approval record of node 1
inbox_decision () {
    jq -c "select(.type == \"approval\") | .decision" $S/s1/inbox/1.jsonl | sed -n "$1p"
}

test_expect_success JQ 'exec_approval_required: call_id, command, reason, available_decisions, the amendment offered' '
    ask a1 "$AMEND" && ask a2 "$PLAIN" && ask a3 "$PLAIN" && ask a4 "$AMEND" && ask a5 "$AMEND" &&
    ask a6 "[\"accept\",\"decline\"]" item/fileChange/requestApproval &&
    events exec_approval_required 6 &&
    ev ".event == \"exec_approval_required\" and .data.call_id == \"a1\"" |
        jq -e -n "any(inputs; .command == \"echo ok\" and .reason == \"escalate\" and .cwd == \"/w\" and .proposed_execpolicy_amendment == [\"echo\",\"ok\"] and (.available_decisions | length) == 3)" &&
    ev ".event == \"exec_approval_required\" and .data.call_id == \"a2\"" | jq -e -n "any(inputs; .proposed_execpolicy_amendment == null)"
'

test_expect_success JQ 'the original decisions map onto codex decisions; the request id goes along' '
    approve ap1 "{\"job_id\":\"77\",\"call_id\":\"a1\",\"approved\":true,\"decision\":\"approved\"}" | jq -e ".decision == \"accept\" and .call_id == \"a1\" and .node_id == 1" &&
    approve ap2 "{\"job_id\":\"77\",\"call_id\":\"a2\",\"approved\":false,\"decision\":\"abort\"}" | jq -e ".decision == \"cancel\"" &&
    approve ap3 "{\"job_id\":\"77\",\"call_id\":\"a3\",\"approved\":false,\"decision\":\"denied\",\"node_id\":1,\"injection_id\":null}" | jq -e ".decision == \"decline\"" &&
    approve ap4 "{\"job_id\":77,\"call_id\":\"a4\",\"approved\":true,\"decision\":{\"approved_execpolicy_amendment\":{\"proposed_execpolicy_amendment\":[\"echo\",\"ok\"]}}}" &&
    approve ap5 "{\"call_id\":\"a5\",\"approved\":true}" | jq -e ".decision == \"accept\"" &&
    test "$(inbox_decision 1)" = "\"accept\"" &&
    test "$(inbox_decision 2)" = "\"cancel\"" &&
    test "$(inbox_decision 3)" = "\"decline\"" &&
    test "$(inbox_decision 4)" = "{\"acceptWithExecpolicyAmendment\":{\"execpolicy_amendment\":[\"echo\",\"ok\"]}}" &&
    test "$(jq -r "select(.type == \"approval\") | .request_id" $S/s1/inbox/1.jsonl | tr "\n" " ")" = "ap1 ap2 ap3 ap4 ap5 "
'

test_expect_success JQ 'what cannot map is refused with a typed error naming the member' '
    approve bad1 "{\"call_id\":\"a2\",\"decision\":{\"acceptWithExecpolicyAmendment\":{\"execpolicy_amendment\":[\"echo\"]}}}" command_rejected |
        jq -e ".code == \"unsupported_decision\" and .member == \"payload.decision\" and .request_id == \"bad1\"" &&
    approve bad2 "{\"call_id\":\"a6\",\"decision\":{\"acceptWithExecpolicyAmendment\":{\"execpolicy_amendment\":[\"echo\"]}}}" command_rejected |
        jq -e ".code == \"unsupported_decision\"" &&
    approve bad3 "{\"call_id\":\"a1\",\"decision\":{\"applyNetworkPolicyAmendment\":{\"network_policy_amendment\":{\"host\":\"h\",\"action\":\"allow\"}}}}" command_rejected |
        jq -e ".code == \"unsupported_decision\" and .member == \"payload.decision\"" &&
    approve bad4 "{\"call_id\":\"a1\",\"decision\":\"perhaps\"}" command_rejected |
        jq -e ".code == \"bad_payload\" and .member == \"payload.decision\"" &&
    approve bad5 "{\"call_id\":\"a1\",\"approved\":\"yes\"}" command_rejected |
        jq -e ".code == \"bad_payload\" and .member == \"payload.approved\"" &&
    approve bad6 "{\"call_id\":\"nope\",\"approved\":true}" command_rejected |
        jq -e ".code == \"unknown_approval\" and (.reason | length > 0)" &&
    test "$(jq -c "select(.type == \"approval\")" $S/s1/inbox/1.jsonl | wc -l)" = 5
'

test_expect_success JQ 'exec_approval_resolved: approved, decision, request_id, call_id' '
    out 1 approval_resolved "{\"approval_id\":\"a1\",\"decision\":\"accept\",\"by\":\"inbox\",\"request_id\":\"ap1\"}" &&
    out 1 approval_resolved "{\"approval_id\":\"a2\",\"decision\":\"cancel\",\"by\":\"inbox\",\"request_id\":\"ap2\"}" &&
    out 1 approval_resolved "{\"approval_id\":\"a4\",\"decision\":{\"acceptWithExecpolicyAmendment\":{\"execpolicy_amendment\":[\"echo\",\"ok\"]}},\"by\":\"inbox\",\"request_id\":\"ap4\"}" &&
    out 1 approval_resolved "{\"approval_id\":\"a6\",\"decision\":\"decline\",\"by\":\"timeout\"}" &&
    events exec_approval_resolved 4 &&
    ev ".event == \"exec_approval_resolved\" and .data.call_id == \"a1\"" | jq -e -n "any(inputs; .approved == true and .decision == \"accept\" and .request_id == \"ap1\" and .job_id == \"77\" and .node_id == 1)" &&
    ev ".event == \"exec_approval_resolved\" and .data.call_id == \"a2\"" | jq -e -n "any(inputs; .approved == false and .request_id == \"ap2\")" &&
    ev ".event == \"exec_approval_resolved\" and .data.call_id == \"a4\"" | jq -e -n "any(inputs; .approved == true and .decision.acceptWithExecpolicyAmendment != null)" &&
    ev ".event == \"exec_approval_resolved\" and .data.call_id == \"a6\"" | jq -e -n "any(inputs; .approved == false and .request_id == null)"
'

test_expect_success JQ 'a turn codex refused: inject_failed with the request id and the error' '
    out 1 error "{\"code\":\"turn_start_failed\",\"message\":\"turn/start for injection x: refused\",\"inbox_seq\":9,\"injection_id\":\"inj-x\",\"request_id\":\"i1\"}" &&
    events inject_failed &&
    ev ".event == \"inject_failed\"" | jq -e -n "any(inputs; .request_id == \"i1\" and .injection_id == \"inj-x\" and .node_id == 1 and .swarm_id == \"s1\" and (.error | test(\"refused\")) and .code == \"turn_start_failed\")" &&
    ev ".event == \"agent_error\" and .data.code == \"turn_start_failed\"" | jq -e -n "any(inputs; .message | test(\"refused\"))"
'

test_expect_success JQ 'bad input: unknown members, wrong types, an oversized line; each named, the router goes on' '
    {
      cmd inject u1 "{\"swarm_id\":\"s1\",\"content\":\"x\",\"colour\":\"red\"}"
      echo "{$P,\"command\":\"swarm_list\",\"request_id\":\"u2\",\"extra\":1}"
      cmd inject u3 "{\"swarm_id\":\"s1\",\"content\":\"x\",\"nodes\":true}"
      cmd inject u4 "{\"swarm_id\":[\"s1\"],\"content\":\"x\"}"
      cmd subscribe u5 "{\"since\":\"0\"}"
      head -c 1100000 /dev/zero | tr "\0" "a"; echo
      cmd frobnicate u6 "{}"
      cmd swarm_list u7 "{}"
    } >bad.cmds &&
    mkdir -p other && chmod 700 other &&
    CODESWARM_HOME=$(pwd)/other codeswarm-router <bad.cmds >bad.json &&
    jq -r "select(.event == \"command_rejected\") | [.data.request_id, .data.code, .data.member] | @tsv" bad.json >bad.out &&
    printf "%s\t%s\t%s\n" u1 unknown_member payload.colour u2 unknown_member extra \
        u3 bad_payload payload.nodes u4 bad_payload payload.swarm_id \
        u5 bad_payload payload.since "" too_long "" u6 unknown_command command >bad.expect &&
    test_cmp bad.expect bad.out &&
    jq -e -n "any(inputs; (.event == \"swarm_list\") and (.data.request_id == \"u7\"))" bad.json
'

test_expect_success JQ 'a client sending garbage neither stops the router nor costs another client an event' '
    last=$(ev_seqs ev.json | tail -n1) &&
    { codeswarm-client rpc --timeout 20 --until node_ready --count 2 \
        "$(cmd subscribe w "{\"since\":$last}")" >watch.json & } &&
    wpid=$! &&
    wait_for -t 10 grep -q subscribed watch.json &&
    mapfile -t garbage < <(grep -v "^aaaa" bad.cmds) &&
    codeswarm-client rpc --timeout 1 "${garbage[@]}" >garbage.json &&
    test "$(jq -r "select(.event == \"command_rejected\") | .data.code" garbage.json | wc -l)" = 6 &&
    out 0 ready "{\"thread_id\":\"th\",\"resumed\":false,\"rollout_path\":null}" &&
    out 1 ready "{\"thread_id\":\"th\",\"resumed\":false,\"rollout_path\":null}" &&
    wait $wpid &&
    check_seqs watch.json $((last + 1)) &&
    test "$(jq -r "select(.event == \"node_ready\") | .data.node_id" watch.json | sort | tr "\n" " ")" = "0 1 " &&
    router_ready
'

test_expect_success JQ 'an inbox that cannot be written: inject_failed beside the rejection' '
    codeswarm-mailbox append --type worker_started s3/outbox/0 "{\"node\":0,\"host\":\"h\",\"pid\":3,\"job_id\":\"79\"}" &&
    mkdir -p $S/s3/inbox && ln -s "$(pwd)/elsewhere" $S/s3/inbox/0.jsonl &&
    codeswarm-client rpc --until inject_failed "$(cmd inject f1 "{\"swarm_id\":\"s3\",\"nodes\":0,\"content\":\"hi\"}")" >failed.json &&
    jq -e -n "any(inputs; .event == \"command_rejected\" and .data.request_id == \"f1\" and .data.code == \"unavailable\")" failed.json &&
    jq -e -n "any(inputs; .event == \"inject_failed\" and .data.request_id == \"f1\" and .data.node_id == 0 and .data.swarm_id == \"s3\" and (.data.error | test(\"symbolic link\")) and (.data.injection_id | length > 0))" failed.json &&
    test_path_is_missing elsewhere
'

test_expect_success 'stop the router' '
    router_kill TERM
'

test_done
