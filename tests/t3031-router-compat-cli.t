#!/bin/bash
test_description='the original CLI'"'"'s flows as scripted sessions: list, status, inject (all and one node), attach, approvals'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

# Each session sends what the original codeswarm CLI (cli/src/index.ts)
# sends for one of its verbs, on one connection, and the checks are the
# conditions under which that verb prints and exits:
#   list     swarm_list with its request_id: swarms.<id>.{job_id,node_count,status}
#   status   swarm_status with its request_id
#   inject   swarm_status (node_count), then one inject per node (nodes = the
#            index); done when every node had inject_ack and inject_delivered
#            with the inject's request_id, then assistant (content) and
#            turn_complete with swarm_id and a numeric node_id
#   attach   swarm_status, then every event of the swarm with a numeric
#            node_id: turn_started, assistant_delta/assistant content,
#            thread_status status.type, command_started/completed,
#            exec_approval_required reason, exec_approval_resolved approved,
#            usage total_tokens, turn_complete

codex_testbed_setup
test_require_component JQ jq --version
codex_local_config

cleanup_ () {
    rc_=$?
    test -z "$attach_pid" || kill -KILL "$attach_pid" 2>/dev/null
    (exit $rc_)
    router_cleanup_
}
trap cleanup_ EXIT

P='"protocol":"codeswarm.router.v1","type":"command"'
cmd () {
    echo "{$P,\"command\":\"$1\",\"request_id\":\"$2\",\"payload\":$3}"
}

# done_for FILE NODE RID: the CLI's inject would count NODE as done
done_for () {
    jq -e -s --argjson k "$2" --arg rid "$3" '
        (map(select(.event == "inject_ack" and .data.request_id == $rid and .data.node_id == $k)) | length) == 1 and
        (map(select(.event == "inject_delivered" and .data.request_id == $rid and .data.node_id == $k)) | length) == 1 and
        (map(select(.event == "assistant" and .data.swarm_id == "s" and .data.node_id == $k and (.data.content | type) == "string")) | length) >= 1 and
        (map(select(.event == "turn_complete" and .data.swarm_id == "s" and .data.node_id == $k)) | length) == 1' "$1" >/dev/null
}

# answer FILE NODE: what the CLI prints for NODE (its EventFormatter:
# the assistant_delta contents of the injection, or the assistant content)
answer () {
    jq -r -s --argjson k "$2" '
        (map(select(.event == "assistant_delta" and .data.node_id == $k) | .data.content) | join("")) as $d |
        if $d != "" then $d else (map(select(.event == "assistant" and .data.node_id == $k) | .data.content) | last) end' "$1"
}

test_expect_success CODEX,JQ 'two workers and a router' '
    codex_workers_start s 2 &&
    wait_for -t 60 codex_workers_ready s 2 &&
    router_start
'

test_expect_success CODEX,JQ 'list: swarm_list with the members the CLI prints' '
    codeswarm-client rpc --until swarm_list "$(cmd swarm_list 6f1c-list "{}")" >list.json &&
    jq -e -n "any(inputs; (.event == \"swarm_list\") and (.type == \"event\" and .data.request_id == \"6f1c-list\"
           and .data.swarms.s.node_count == 2 and .data.swarms.s.status == \"running\"
           and (.data.swarms.s | has(\"job_id\"))))" list.json &&
    test "$(jq -c "select(.data.request_id == \"6f1c-list\")" list.json | wc -l)" = 1
'

test_expect_success CODEX,JQ 'status: swarm_status, nothing else with its request id' '
    codeswarm-client rpc --until swarm_status "$(cmd swarm_status 6f1c-st "{\"swarm_id\":\"s\"}")" >st.json &&
    jq -e -n "any(inputs; (.event == \"swarm_status\") and (.data.request_id == \"6f1c-st\" and .data.node_count == 2 and .data.status == \"running\"))" st.json &&
    test "$(jq -c "select(.data.request_id == \"6f1c-st\")" st.json | wc -l)" = 1
'

test_expect_success CODEX,JQ 'inject to all nodes: the CLI would print both answers and exit' '
    codeswarm-client rpc --timeout 90 --until turn_complete --count 2 \
        "$(cmd swarm_status c-st "{\"swarm_id\":\"s\"}")" \
        "$(cmd inject c-n0 "{\"swarm_id\":\"s\",\"nodes\":0,\"content\":\"hello swarm\"}")" \
        "$(cmd inject c-n1 "{\"swarm_id\":\"s\",\"nodes\":1,\"content\":\"hello swarm\"}")" >all.json &&
    done_for all.json 0 c-n0 &&
    done_for all.json 1 c-n1 &&
    test "$(answer all.json 0)" = "[turn 1] You said: hello swarm" &&
    test "$(answer all.json 1)" = "[turn 1] You said: hello swarm" &&
    test "$(jq -r "select(.event == \"assistant\" and .data.node_id == 1) | .data.content" all.json)" = "[turn 1] You said: hello swarm" &&
    jq -e -n "any(inputs; (.event == \"usage\" and .data.node_id == 0) and (.data.total_tokens > 0))" all.json
'

test_expect_success CODEX,JQ 'inject to one node: only that node answers, the CLI exits' '
    codeswarm-client rpc --timeout 90 --until turn_complete \
        "$(cmd swarm_status c-st2 "{\"swarm_id\":\"s\"}")" \
        "$(cmd inject c-one "{\"swarm_id\":\"s\",\"nodes\":1,\"content\":\"just you\"}")" >one.json &&
    done_for one.json 1 c-one &&
    test "$(answer one.json 1)" = "[turn 2] You said: just you" &&
    test "$(jq -c "select(.data.node_id == 0 and .event == \"assistant\")" one.json | wc -l)" = 0
'

test_expect_success CODEX,JQ 'attach: the per-node stream, an approval answered with the original decision' '
    { codeswarm-client rpc --timeout 90 --until turn_complete \
        "$(cmd swarm_status att "{\"swarm_id\":\"s\"}")" >attach.json & } &&
    attach_pid=$! &&
    wait_for -t 10 grep -q "\"request_id\":\"att\"" attach.json &&
    codeswarm-client rpc --until inject_ack \
        "$(cmd inject c-esc "{\"swarm_id\":\"s\",\"nodes\":0,\"content\":\"ESCALATE: echo approved-by-cli\"}")" >esc.json &&
    wait_for -t 60 grep -q exec_approval_required attach.json &&
    req=$(jq -c "select(.event == \"exec_approval_required\") | .data" attach.json) &&
    echo "$req" | jq -e ".reason | type == \"string\"" &&
    call=$(echo "$req" | jq -r .call_id) &&
    job=$(echo "$req" | jq .job_id) &&
    codeswarm-client rpc --until approval_ack \
        "$(cmd approve_execution c-apr "{\"job_id\":$job,\"call_id\":\"$call\",\"approved\":true,\"decision\":\"approved\"}")" >apr.json &&
    wait $attach_pid && attach_pid= &&
    jq -e -n "any(inputs; (.event == \"exec_approval_resolved\") and (.data.approved == true and .data.request_id == \"c-apr\" and .data.call_id == \"$call\" and .data.node_id == 0))" attach.json &&
    jq -e -n "any(inputs; (.event == \"command_started\") and (.data.command | test(\"approved-by-cli\")))" attach.json &&
    jq -e -n "any(inputs; (.event == \"command_completed\") and (.data.exit_code == 0 and (.data.stdout | test(\"approved-by-cli\")) and (.data.duration.secs | type) == \"number\" and (.data.duration.nanos | type) == \"number\" and (.data.call_id | length > 0)))" attach.json &&
    jq -e -n "any(inputs; (.event == \"thread_status\") and (.data.status.type | type == \"string\"))" attach.json >/dev/null &&
    jq -e -n "any(inputs; (.event == \"turn_started\") and (.data.node_id == 0))" attach.json &&
    jq -e -n "any(inputs; (.event == \"usage\") and (.data.total_tokens > 0))" attach.json >/dev/null &&
    test "$(answer attach.json 0)" = "Tool finished. Output: approved-by-cli" &&
    test "$(jq -c "select(.data.swarm_id == \"s\" and .event != \"swarm_status\" and (.data.node_id | type) != \"number\")" attach.json | wc -l)" = 0
'

test_expect_success CODEX,JQ 'an execpolicy amendment decision reaches codex and the command runs' '
    { codeswarm-client rpc --timeout 90 --until turn_complete \
        "$(cmd swarm_status att2 "{\"swarm_id\":\"s\"}")" >attach2.json & } &&
    attach_pid=$! &&
    wait_for -t 10 grep -q "\"request_id\":\"att2\"" attach2.json &&
    codeswarm-client rpc --until inject_ack \
        "$(cmd inject c-esc2 "{\"swarm_id\":\"s\",\"nodes\":1,\"content\":\"ESCALATE: echo amended\"}")" >esc2.json &&
    wait_for -t 60 grep -q exec_approval_required attach2.json &&
    req=$(jq -c "select(.event == \"exec_approval_required\") | .data" attach2.json) &&
    echo "$req" | jq -e ".proposed_execpolicy_amendment | length > 0" &&
    amend=$(echo "$req" | jq -c .proposed_execpolicy_amendment) &&
    codeswarm-client rpc --until approval_ack \
        "$(cmd approve_execution c-amd "{\"call_id\":$(echo "$req" | jq .call_id),\"approved\":true,\"decision\":{\"approved_execpolicy_amendment\":{\"proposed_execpolicy_amendment\":$amend}}}")" >amd.json &&
    wait $attach_pid && attach_pid= &&
    jq -e -n "any(inputs; (.event == \"exec_approval_resolved\") and (.data.approved == true and .data.request_id == \"c-amd\" and .data.decision.acceptWithExecpolicyAmendment.execpolicy_amendment == $amend))" attach2.json &&
    test "$(answer attach2.json 1)" = "Tool finished. Output: amended"
'

test_expect_success CODEX,JQ 'stop' '
    codex_workers_stop &&
    router_kill TERM
'

test_done
