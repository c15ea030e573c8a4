#!/bin/bash
test_description='end to end, local: two workers with the real codex, the router, the human verbs'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

codex_testbed_setup
test_require_component JQ jq --version
codex_local_config
router_trap

test_expect_success CODEX,JQ 'two workers and a router start' '
    codex_workers_start s 2 &&
    wait_for -t 60 codex_workers_ready s 2 &&
    router_start
'

test_expect_success CODEX,JQ 'a prompt to all: one answer per node, usage and turn_complete' '
    codeswarm send s all "hello swarm" >sent &&
    test "$(wc -l <sent)" = 2 &&
    timeout 90 codeswarm attach s --json --since 0 --turns 2 >events.json &&
    check_seqs events.json 1 &&
    for k in 0 1; do
        inj=$(sed -n "s/^n$k //p" sent) &&
        test "$(jq -r "select(.event == \"assistant\" and .data.node_id == $k and .data.final_answer) | .data.text" events.json)" = "[turn 1] You said: hello swarm" &&
        test "$(jq -r "select(.event == \"assistant\" and .data.node_id == $k) | .data.injection_id" events.json)" = "$inj" &&
        test "$(jq -r "select(.event == \"turn_complete\" and .data.node_id == $k) | .data.status" events.json)" = completed &&
        test "$(jq -r "select(.event == \"turn_complete\" and .data.node_id == $k) | .data.injection_id" events.json)" = "$inj" &&
        jq -c "select(.event == \"usage\" and .data.node_id == $k and .data.total_tokens > 0 and .data.model_context_window > 0)" events.json 2>/dev/null | grep -q . &&
        jq -c "select(.event == \"inject_delivered\" and .data.node_id == $k and .data.injection_id == \"$inj\")" events.json 2>/dev/null | grep -q . ||
        return 1
    done
'

test_expect_success CODEX,JQ 'attach: readable per-node stream' '
    timeout 30 codeswarm attach s --since 0 --turns 2 >readable &&
    grep "^\[n0\] \[turn 1\] You said: hello swarm$" readable &&
    grep "^\[n1\] \[turn 1\] You said: hello swarm$" readable &&
    grep "^\[n1\] -- turn completed" readable &&
    ! grep "$(printf "\033")" readable
'

approval_listed () {
    codeswarm approvals | grep -q "echo approved-by-test"
}

test_expect_success CODEX,JQ 'an approval through the router: listed, approved, the command runs' '
    codeswarm send s 1 "ESCALATE: echo approved-by-test" >sent2 &&
    wait_for -t 60 approval_listed &&
    id=$(codeswarm approvals --json | jq -r ".[0].approval_id") &&
    codeswarm approve "$id" accept &&
    last=$(ev_seqs events.json | tail -n1) &&
    timeout 90 codeswarm attach s --json --since "$last" --turns 1 >events2.json &&
    jq -c "select(.event == \"exec_approval_required\" and .data.approval_id == \"$id\")" events2.json 2>/dev/null | grep -q . &&
    jq -c "select(.event == \"exec_approval_resolved\" and .data.decision == \"accept\")" events2.json 2>/dev/null | grep -q . &&
    jq -r "select(.event == \"command_completed\") | .data.output" events2.json | grep -x approved-by-test &&
    test "$(jq -r "select(.event == \"turn_complete\") | .data.status" events2.json)" = completed &&
    test "$(codeswarm approvals)" = "no pending approvals"
'

test_expect_success CODEX,JQ 'interrupt through the router ends a slow turn' '
    codeswarm send s 0 "SLOW: 40" &&
    last=$(ev_seqs events2.json | tail -n1) &&
    { timeout 60 codeswarm attach s --json --since "$last" --turns 1 >events3.json & } &&
    apid=$! &&
    wait_for -t 30 grep -q assistant_delta events3.json &&
    codeswarm interrupt s 0 &&
    wait $apid &&
    test "$(jq -r "select(.event == \"turn_complete\") | .data.status" events3.json)" = interrupted
'

stopped_count () {
    codeswarm-client rpc --timeout 1 "$(rcmd subscribe '{"since":0}')" |
        jq -r 'select(.event == "node_stopped") | .data.node_id' | wc -l
}

test_expect_success CODEX,JQ 'the workers stop: node_stopped for each' '
    codex_workers_stop &&
    wait_for -t 20 eval "test \$(stopped_count) = 2" &&
    router_kill TERM
'

test_done
