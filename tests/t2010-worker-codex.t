#!/bin/bash
test_description='codeswarm-worker drives the real codex app-server (mock model)'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-worker.sh"

codex_testbed_setup
worker_trap
test_require_component JQ jq --version
codex_local_config

# the turn id an injection was accepted into
turn_of () {
    outbox_last ".type == \"inject_accepted\" and .injection_id == \"$1\"" |
        jq -r .turn_id
}

# the status of a completed turn
turn_status () {
    outbox_last ".type == \"rpc\" and .msg.method == \"turn/completed\" and .msg.params.turn.id == \"$1\"" |
        jq -r .msg.params.turn.status
}

turn_done () {
    outbox_has ".type == \"rpc\" and .msg.method == \"turn/completed\" and .msg.params.turn.id == \"$1\""
}

# wait until injection $1 was accepted and its turn completed
wait_turn () {
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"$1\"" 1 60 &&
    wait_for -t 60 turn_done "$(turn_of "$1")"
}

test_expect_success CODEX,JQ 'the worker starts codex and a thread' '
    worker_start &&
    outbox_wait ".type == \"ready\"" 1 60 &&
    rec=$(outbox_last ".type == \"worker_started\"") &&
    echo "$rec" | jq -r .codex_version | grep -E "^[0-9]+\.[0-9]+\.[0-9]+" &&
    test "$(outbox_last ".type == \"ready\"" | jq .resumed)" = false &&
    outbox_last ".type == \"ready\"" | jq -r .rollout_path | grep "rollout-"
'

test_expect_success CODEX,JQ 'hello turn' '
    inject user "{\"id\":\"h1\",\"content\":\"hello world\"}" &&
    wait_turn h1 &&
    test "$(turn_status "$(turn_of h1)")" = completed &&
    assistant_text | grep -x "\[turn 1\] You said: hello world" &&
    outbox_has ".type == \"rpc\" and .msg.method == \"item/completed\" and .msg.params.item.type == \"userMessage\" and .msg.params.item.clientId == \"h1\""
'

test_expect_success CODEX,JQ 'multi-turn: the thread keeps its history' '
    inject user "{\"id\":\"h2\",\"content\":\"second message\"}" &&
    wait_turn h2 &&
    assistant_text | grep -x "\[turn 2\] You said: second message" &&
    inject user "{\"id\":\"h3\",\"content\":\"TURNS?\"}" &&
    wait_turn h3 &&
    assistant_text | grep "^\[turn 3\] I see 3 user turns"
'

test_expect_success CODEX,JQ 'queue vs steer while a turn runs' '
    inject user "{\"id\":\"slow1\",\"content\":\"SLOW: 24\"}" &&
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"slow1\"" &&
    slow=$(turn_of slow1) &&
    outbox_wait ".type == \"rpc\" and .msg.method == \"item/agentMessage/delta\" and .msg.params.turnId == \"$slow\"" &&
    inject user "{\"id\":\"q1\",\"content\":\"queued one\",\"mode\":\"queue\"}" &&
    outbox_wait ".type == \"turn_queued\" and .injection_id == \"q1\"" &&
    test "$(outbox_last ".type == \"turn_queued\"" | jq .position)" = 1 &&
    inject user "{\"id\":\"s1\",\"content\":\"steered in\",\"mode\":\"steer\"}" &&
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"s1\"" &&
    rec=$(outbox_last ".type == \"inject_accepted\" and .injection_id == \"s1\"") &&
    test "$(echo "$rec" | jq -r .action)" = turn/steer &&
    test "$(echo "$rec" | jq -r .turn_id)" = "$slow" &&
    wait_turn q1 &&
    test "$(turn_of q1)" != "$slow" &&
    turn_done "$slow" &&
    outbox_has ".type == \"rpc\" and .msg.method == \"item/completed\" and .msg.params.turnId == \"$slow\" and (.msg.params.item.text // \"\" | test(\"You said: steered in\"))" &&
    outbox_has ".type == \"rpc\" and .msg.method == \"item/completed\" and .msg.params.turnId == \"$(turn_of q1)\" and (.msg.params.item.text // \"\" | test(\"You said: queued one\"))"
'

test_expect_success CODEX,JQ 'the queued turn started only after the running one completed' '
    jq -c "select((.type == \"rpc\" and .msg.method == \"turn/completed\" and .msg.params.turn.id == \"$slow\")
                  or (.type == \"inject_accepted\" and .injection_id == \"q1\")) | .seq" "$outbox" >order &&
    test "$(head -n 1 order)" -lt "$(tail -n 1 order)" &&
    test "$(outbox_last ".type == \"rpc\" and .msg.method == \"turn/completed\" and .msg.params.turn.id == \"$slow\"" | jq -r .seq)" = "$(head -n 1 order)"
'

test_expect_success CODEX,JQ 'interrupt the running turn' '
    inject user "{\"id\":\"long1\",\"content\":\"SLOW: 30\"}" &&
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"long1\"" &&
    long=$(turn_of long1) &&
    outbox_wait ".type == \"rpc\" and .msg.method == \"item/agentMessage/delta\" and .msg.params.turnId == \"$long\"" &&
    inject interrupt "{\"id\":\"int1\"}" &&
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"int1\" and .action == \"turn/interrupt\"" &&
    wait_for -t 10 turn_done "$long" &&
    test "$(turn_status "$long")" = interrupted &&
    test "$(outbox_last ".type == \"inject_accepted\" and .injection_id == \"int1\"" | jq -r .turn_id)" = "$long"
'

test_expect_success CODEX,JQ 'an approval accepted through the inbox' '
    inject user "{\"id\":\"esc1\",\"content\":\"ESCALATE: echo approved-run\"}" &&
    outbox_wait ".type == \"approval_requested\"" 1 60 &&
    rec=$(outbox_last ".type == \"approval_requested\"") &&
    aid=$(echo "$rec" | jq -r .approval_id) &&
    echo "$aid" | grep -E "^n0-1-1-[0-9]+$" &&
    test "$(echo "$rec" | jq -r .method)" = item/commandExecution/requestApproval &&
    echo "$rec" | jq -r .command | grep "echo approved-run" &&
    test "$(echo "$rec" | jq -r .turn_id)" = "$(turn_of esc1)" &&
    inject approval "{\"id\":\"ap1\",\"approval_id\":\"$aid\",\"decision\":\"accept\"}" &&
    outbox_wait ".type == \"approval_resolved\" and .approval_id == \"$aid\"" &&
    test "$(outbox_last ".type == \"approval_resolved\"" | jq -r .by)" = inbox &&
    test "$(outbox_last ".type == \"approval_resolved\"" | jq -r .decision)" = accept &&
    wait_turn esc1 &&
    outbox_has ".type == \"rpc\" and .msg.method == \"item/completed\" and .msg.params.item.type == \"commandExecution\" and .msg.params.item.status == \"completed\" and (.msg.params.item.aggregatedOutput // \"\" | test(\"approved-run\"))" &&
    assistant_text | grep "Tool finished. Output: approved-run"
'

test_expect_success CODEX,JQ 'answering the same approval again is an error' '
    inject approval "{\"id\":\"ap1b\",\"approval_id\":\"$aid\",\"decision\":\"accept\"}" &&
    outbox_wait ".type == \"error\" and .code == \"unknown_approval\""
'

test_expect_success CODEX,JQ 'an approval declined through the inbox' '
    inject user "{\"id\":\"esc2\",\"content\":\"ESCALATE: echo declined-run\"}" &&
    outbox_wait ".type == \"approval_requested\"" 2 60 &&
    aid2=$(outbox_last ".type == \"approval_requested\"" | jq -r .approval_id) &&
    test "$aid2" != "$aid" &&
    inject approval "{\"id\":\"ap2\",\"approval_id\":\"$aid2\",\"decision\":\"decline\"}" &&
    wait_turn esc2 &&
    outbox_has ".type == \"approval_resolved\" and .approval_id == \"$aid2\" and .decision == \"decline\" and .by == \"inbox\"" &&
    outbox_has ".type == \"rpc\" and .msg.method == \"item/completed\" and .msg.params.item.type == \"commandExecution\" and .msg.params.item.status == \"declined\"" &&
    ! outbox_has ".type == \"rpc\" and (.msg.params.item.aggregatedOutput // \"\" | test(\"declined-run\"))"
'

test_expect_success CODEX,JQ 'model HTTP 500: the turn fails, the next one works' '
    inject user "{\"id\":\"f1\",\"content\":\"FAIL: 500\"}" &&
    wait_turn f1 &&
    test "$(turn_status "$(turn_of f1)")" = failed &&
    inject user "{\"id\":\"f2\",\"content\":\"after the failure\"}" &&
    wait_turn f2 &&
    test "$(turn_status "$(turn_of f2)")" = completed &&
    assistant_text | grep "You said: after the failure"
'

test_expect_success CODEX,JQ 'malformed inbox lines: error records, the worker goes on' '
    echo "{\"v\":1,\"seq\":\"x\"" >>"$inbox" &&
    inject user "{\"id\":\"m0\"}" &&
    inject user "{\"id\":\"m1\",\"content\":\"still alive\"}" &&
    wait_turn m1 &&
    test "$(outbox_count ".type == \"error\" and .code == \"bad_inbox_record\"")" = 2 &&
    assistant_text | grep "You said: still alive"
'

test_expect_success CODEX,JQ 'the codex log has the app-server stderr, no ANSI' '
    log="$CODESWARM_HOME/swarms/$SWARM/log/0.codex.log" &&
    test -f "$log" &&
    ! grep -q "$(printf "\033")" "$log"
'

test_expect_success CODEX,JQ 'SIGTERM: the running turn finishes, then a clean stop' '
    inject user "{\"id\":\"t1\",\"content\":\"SLOW: 4\"}" &&
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"t1\"" &&
    outbox_wait ".type == \"rpc\" and .msg.method == \"item/agentMessage/delta\" and .msg.params.turnId == \"$(turn_of t1)\"" &&
    worker_kill TERM &&
    worker_wait_exit 30 &&
    test "$worker_rc" = 0 &&
    test "$(turn_status "$(turn_of t1)")" = completed &&
    rec=$(outbox_last ".type == \"worker_stopped\"") &&
    test "$(echo "$rec" | jq -r .reason)" = SIGTERM &&
    outbox_has ".type == \"checkpoint\"" &&
    test "$(jq -r .last_injection_id "$state")" = t1 &&
    ! outbox_has ".type == \"turn_aborted\""
'

test_expect_success CODEX,JQ 'SIGTERM with a short grace interrupts the turn' '
    cat >grace.yaml <<-EOF &&
	worker:
	  shutdown_grace: 1
	EOF
    worker_start --config grace.yaml &&
    outbox_wait ".type == \"ready\" and .resumed == true" 1 60 &&
    inject user "{\"id\":\"t2\",\"content\":\"SLOW: 30\"}" &&
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"t2\"" &&
    outbox_wait ".type == \"rpc\" and .msg.method == \"item/agentMessage/delta\" and .msg.params.turnId == \"$(turn_of t2)\"" &&
    worker_kill TERM &&
    worker_wait_exit 30 &&
    test "$worker_rc" = 0 &&
    test "$(turn_status "$(turn_of t2)")" = interrupted
'

test_expect_success CODEX,JQ 'an approval policy rule answers at once' '
    cat >rules.yaml <<-EOF &&
	codex:
	  approval_policy: on-request
	approvals:
	  rules:
	    - prefix: echo
	      decision: accept
	      in_workspace: true
	EOF
    worker_start --config rules.yaml &&
    outbox_wait ".type == \"ready\"" 3 60 &&
    inject user "{\"id\":\"p1\",\"content\":\"ESCALATE: echo policy-run\"}" &&
    wait_turn p1 &&
    rec=$(outbox_last ".type == \"approval_requested\"") &&
    aid=$(echo "$rec" | jq -r .approval_id) &&
    echo "$aid" | grep "^n0-3-1-" &&
    outbox_has ".type == \"approval_resolved\" and .approval_id == \"$aid\" and .by == \"policy\" and .decision == \"accept\"" &&
    assistant_text | grep "Tool finished. Output: policy-run" &&
    worker_kill TERM &&
    worker_wait_exit 30 &&
    test "$worker_rc" = 0
'

test_done
