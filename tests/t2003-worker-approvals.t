#!/bin/sh
test_description='codeswarm-worker: approval policy, timeout, legacy and unsupported server requests (scripted app-server)'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-worker.sh"

worker_trap
test_require_component JQ jq --version
unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID
CODESWARM_CODEX=$CODESWARM_BUILD_DIR/tests/fake-app-server
FAKE_APP_SERVER_LOG=$(pwd)/fake.log
FAKE_APP_SERVER_MODE=requests
export CODESWARM_CODEX FAKE_APP_SERVER_LOG FAKE_APP_SERVER_MODE
cat >codeswarm.yaml <<EOF
approvals:
  timeout: 1
  rules:
    - prefix: rm -rf
      decision: decline
    - prefix: echo
      decision: accept
      in_workspace: true
EOF
CODESWARM_CONFIG=$(pwd)/codeswarm.yaml
export CODESWARM_CONFIG

# the worker's answer to server request $1, from what the fake read
answer () {
    grep "^{\"id\":$1," fake.log | tail -n 1
}

test_expect_success JQ 'a turn that asks four things' '
    worker_start &&
    outbox_wait ".type == \"ready\"" &&
    inject user "{\"id\":\"a1\",\"content\":\"go\"}" &&
    outbox_wait ".type == \"rpc\" and .msg.method == \"turn/completed\"" 1 20
'

test_expect_success JQ 'an unsupported server request: -32601 and an error record' '
    test "$(answer 100 | jq .error.code)" = -32601 &&
    outbox_has ".type == \"error\" and .code == \"unsupported_request\" and (.message | test(\"item/tool/requestUserInput\"))" &&
    ! outbox_has ".type == \"approval_requested\" and .rpc_id == 100"
'

test_expect_success JQ 'legacy execCommandApproval: declined by rule, in its own wire form' '
    rec=$(outbox_last ".type == \"approval_requested\" and .rpc_id == 101") &&
    test "$(echo "$rec" | jq -r .method)" = execCommandApproval &&
    test "$(echo "$rec" | jq -r .command)" = "bash -lc rm -rf /tmp/x" &&
    test "$(echo "$rec" | jq -r .item_id)" = c1 &&
    test "$(echo "$rec" | jq -r .thread_id)" = fake-thread &&
    aid=$(echo "$rec" | jq -r .approval_id) &&
    outbox_has ".type == \"approval_resolved\" and .approval_id == \"$aid\" and .decision == \"decline\" and .by == \"policy\"" &&
    answer 101 | jq -e ".result.decision.denied.rejection | length > 0"
'

test_expect_success JQ 'a command in the workspace: accepted by rule' '
    rec=$(outbox_last ".type == \"approval_requested\" and .rpc_id == 103") &&
    aid=$(echo "$rec" | jq -r .approval_id) &&
    outbox_has ".type == \"approval_resolved\" and .approval_id == \"$aid\" and .decision == \"accept\" and .by == \"policy\"" &&
    test "$(answer 103 | jq -r .result.decision)" = accept
'

test_expect_success JQ 'a file change: asked, then declined at the timeout' '
    rec=$(outbox_last ".type == \"approval_requested\" and .rpc_id == 102") &&
    test "$(echo "$rec" | jq -r .reason)" = "write a file" &&
    aid=$(echo "$rec" | jq -r .approval_id) &&
    outbox_has ".type == \"approval_resolved\" and .approval_id == \"$aid\" and .decision == \"decline\" and .by == \"timeout\"" &&
    test "$(answer 102 | jq -r .result.decision)" = decline &&
    t_req=$(echo "$rec" | jq .ts) &&
    t_res=$(outbox_last ".type == \"approval_resolved\" and .approval_id == \"$aid\"" | jq .ts) &&
    awk -v a="$t_req" -v b="$t_res" "BEGIN { exit !(b - a >= 0.9 && b - a < 5) }"
'

test_expect_success JQ 'an approval answered by the inbox before the timeout' '
    cat >slow.yaml <<-EOF &&
	approvals:
	  timeout: 60
	EOF
    worker_kill TERM && worker_wait_exit 20 &&
    worker_start --config slow.yaml &&
    outbox_wait ".type == \"ready\" and .resumed == true" &&
    n=$(outbox_count ".type == \"approval_requested\"") &&
    inject user "{\"id\":\"a2\",\"content\":\"again\"}" &&
    outbox_wait ".type == \"approval_requested\"" $((n + 3)) &&
    for id in 101 102 103; do
        aid=$(outbox_last ".type == \"approval_requested\" and .rpc_id == $id" | jq -r .approval_id) &&
        inject approval "{\"id\":\"ans-$id\",\"approval_id\":\"$aid\",\"decision\":\"acceptForSession\"}" ||
        return 1
    done &&
    outbox_wait ".type == \"rpc\" and .msg.method == \"turn/completed\"" 2 20 &&
    test "$(answer 101 | jq -r .result.decision)" = approved_for_session &&
    test "$(answer 102 | jq -r .result.decision)" = acceptForSession &&
    test "$(outbox_count ".type == \"approval_resolved\" and .by == \"inbox\"")" = 3 &&
    test "$(outbox_count ".type == \"inject_accepted\" and .action == \"approval\"")" = 3 &&
    outbox_last ".type == \"approval_requested\" and .rpc_id == 103" | jq -r .approval_id | grep -E "^n0-2-1-103$"
'

test_expect_success JQ 'amendment decisions in both wire forms; request ids echoed' '
    n=$(outbox_count ".type == \"approval_requested\"") &&
    inject user "{\"id\":\"a3\",\"content\":\"third\",\"request_id\":\"req-u3\"}" &&
    outbox_wait ".type == \"approval_requested\"" $((n + 3)) &&
    outbox_has ".type == \"inject_accepted\" and .injection_id == \"a3\" and .request_id == \"req-u3\"" &&
    aid() {
        outbox_last ".type == \"approval_requested\" and .rpc_id == $1" | jq -r .approval_id
    } &&
    amend="{\"acceptWithExecpolicyAmendment\":{\"execpolicy_amendment\":[\"echo\",\"hi\"]}}" &&
    inject approval "{\"id\":\"am-101\",\"approval_id\":\"$(aid 101)\",\"decision\":$amend,\"request_id\":\"req-101\"}" &&
    inject approval "{\"id\":\"am-103\",\"approval_id\":\"$(aid 103)\",\"decision\":$amend,\"request_id\":\"req-103\"}" &&
    inject approval "{\"id\":\"am-102\",\"approval_id\":\"$(aid 102)\",\"decision\":$amend}" &&
    outbox_wait ".type == \"error\" and .code == \"bad_inbox_record\" and (.message | test(\"no execpolicy amendment\"))" &&
    inject approval "{\"id\":\"c-102\",\"approval_id\":\"$(aid 102)\",\"decision\":\"cancel\",\"request_id\":\"req-102\"}" &&
    outbox_wait ".type == \"rpc\" and .msg.method == \"turn/completed\"" 3 20 &&
    answer 101 | jq -e ".result.decision.approved_execpolicy_amendment.proposed_execpolicy_amendment == [\"echo\",\"hi\"]" &&
    answer 103 | jq -e ".result.decision.acceptWithExecpolicyAmendment.execpolicy_amendment == [\"echo\",\"hi\"]" &&
    test "$(answer 102 | jq -r .result.decision)" = cancel &&
    outbox_has ".type == \"approval_resolved\" and .request_id == \"req-103\" and .decision.acceptWithExecpolicyAmendment.execpolicy_amendment[0] == \"echo\"" &&
    outbox_has ".type == \"approval_resolved\" and .request_id == \"req-102\" and .decision == \"cancel\"" &&
    outbox_has ".type == \"inject_accepted\" and .action == \"approval\" and .request_id == \"req-101\""
'

test_expect_success JQ 'stop' '
    worker_kill TERM &&
    worker_wait_exit 20 &&
    test "$worker_rc" = 0
'

test_done
