#!/bin/bash
test_description='codeswarm-router and codeswarm-client under valgrind: no errors, no leaks'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
test_skip_all_if_sanitized "$CODESWARM_BUILD_DIR/router/codeswarm-router"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

router_trap
test_require_component JQ jq --version
test_require_component VALGRIND valgrind --version

VG="valgrind --quiet --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
    --track-fds=no --log-file=$(pwd)/valgrind.%p.log"

no_valgrind_errors () {
    for f in valgrind.*.log; do
        test -f "$f" || continue
        if test -s "$f"; then cat "$f" >&2; return 1; fi
    done
}

test_expect_success VALGRIND,JQ 'setup: a swarm with an approval pending' '
    codeswarm-mailbox append --type worker_started s/outbox/0 \
        "{\"node\":0,\"host\":\"h\",\"pid\":1,\"job_id\":\"j\"}" &&
    codeswarm-mailbox append --type approval_requested s/outbox/0 \
        "{\"approval_id\":\"a1\",\"turn_id\":\"T\",\"command\":\"ls\",\"cwd\":\"/\",\"reason\":\"r\",\"available_decisions\":[\"accept\"]}"
'

test_expect_success VALGRIND,JQ 'the router over stdio: bad commands, subscribe, inject' '
    { cut -f2- "$TEST_SRC_DIR/golden/bad-commands.txt";
      rcmd subscribe "{\"since\":0}"; echo;
      rcmd inject "{\"swarm_id\":\"s\",\"content\":\"x\"}"; echo;
      rcmd approve_execution "{\"approval_id\":\"a1\",\"decision\":\"accept\"}"; echo;
      rcmd swarm_status "{\"swarm_id\":\"s\"}"; echo; } >cmds &&
    $VG codeswarm-router <cmds >out.json &&
    test "$(jq -r "select(.event == \"inject_ack\") | .data.node_id" out.json)" = 0 &&
    test "$(jq -r "select(.event == \"approval_ack\") | .data.approval_id" out.json)" = a1 &&
    no_valgrind_errors
'

test_expect_success VALGRIND,JQ 'the router on its socket, the client verbs' '
    router_start &&
    $VG codeswarm-client send s 0 "hello" &&
    $VG codeswarm-client approvals >list &&
    grep a1 list &&
    { $VG codeswarm-client attach s --json --since 0 --turns 1 >ev.json & } &&
    apid=$! &&
    sleep 2 &&
    codeswarm-mailbox append --type rpc s/outbox/0 "{\"msg\":{\"method\":\"turn/completed\",\"params\":{\"turn\":{\"id\":\"T\",\"status\":\"completed\"}}}}" &&
    wait $apid &&
    grep -q turn_complete ev.json &&
    router_kill TERM &&
    no_valgrind_errors
'

test_expect_success VALGRIND,JQ 'the socket router under valgrind' '
    { $VG codeswarm-router --socket </dev/null >/dev/null 2>router-vg.log 3>&- 4>&- 5>&- 6>&- & } &&
    router_pid=$! &&
    wait_for -t 60 router_ready &&
    codeswarm-client send s 0 "again" &&
    codeswarm-client rpc --until swarm_status "$(rcmd swarm_status "{\"swarm_id\":\"s\"}")" >st.json &&
    router_kill TERM &&
    no_valgrind_errors
'

test_done
