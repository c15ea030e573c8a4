#!/bin/bash
test_description='codeswarm-worker: a user record with new_thread and cwd (real codex, mock model)'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-worker.sh"

codex_testbed_setup
worker_trap
test_require_component JQ jq --version
unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID
cat >codeswarm.yaml <<EOF
codex:
  approval_policy: never
  sandbox: workspace-write
EOF
CODESWARM_CONFIG=$(pwd)/codeswarm.yaml
export CODESWARM_CONFIG

turn_of () {
    outbox_last ".type == \"inject_accepted\" and .injection_id == \"$1\"" |
        jq -r .turn_id
}

turn_done () {
    outbox_has ".type == \"rpc\" and .msg.method == \"turn/completed\" and .msg.params.turn.id == \"$1\""
}

wait_turn () {
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"$1\"" 1 60 &&
    wait_for -t 60 turn_done "$(turn_of "$1")"
}

# the thread a turn ran on
thread_of () {
    outbox_last ".type == \"rpc\" and .msg.method == \"turn/started\" and .msg.params.turn.id == \"$1\"" |
        jq -r .msg.params.threadId
}

test_expect_success CODEX,JQ 'two turns on the node thread' '
    worker_start &&
    outbox_wait ".type == \"ready\"" 1 60 &&
    inject user "{\"id\":\"u1\",\"content\":\"one\"}" &&
    wait_turn u1 &&
    inject user "{\"id\":\"u2\",\"content\":\"TURNS?\"}" &&
    wait_turn u2 &&
    assistant_text | grep "I see 2 user turns" &&
    t1=$(thread_of "$(turn_of u1)") &&
    test "$t1" = "$(thread_of "$(turn_of u2)")"
'

test_expect_success CODEX,JQ 'new_thread: the turn starts a thread of its own, in cwd' '
    mkdir -p "$(pwd)/taskdir" &&
    inject user "{\"id\":\"n1\",\"content\":\"RUN: pwd >where.txt\",\"new_thread\":true,\"cwd\":\"$(pwd)/taskdir\"}" &&
    wait_turn n1 &&
    t2=$(thread_of "$(turn_of n1)") &&
    test "$t2" != "$t1" &&
    test "$(cat taskdir/where.txt)" = "$(pwd)/taskdir" &&
    test "$(outbox_count ".type == \"ready\"")" = 2 &&
    test "$(outbox_last ".type == \"ready\"" | jq -r .thread_id)" = "$t2"
'

test_expect_success CODEX,JQ 'the next turn continues the new thread' '
    inject user "{\"id\":\"n2\",\"content\":\"TURNS?\"}" &&
    wait_turn n2 &&
    test "$(thread_of "$(turn_of n2)")" = "$t2" &&
    assistant_text | tail -n 1 | grep "I see 2 user turns"
'

test_expect_success CODEX,JQ 'a bad cwd or new_thread is an error, the worker goes on' '
    inject user "{\"id\":\"b1\",\"content\":\"x\",\"cwd\":\"rel\"}" &&
    outbox_wait ".type == \"error\" and .code == \"bad_inbox_record\"" 1 30 &&
    outbox_last ".type == \"error\"" | jq -r .message | grep "\"cwd\" is not an absolute path" &&
    inject user "{\"id\":\"b2\",\"content\":\"x\",\"new_thread\":\"yes\"}" &&
    outbox_wait ".type == \"error\" and .code == \"bad_inbox_record\"" 2 30 &&
    outbox_last ".type == \"error\"" | jq -r .message | grep "\"new_thread\" is not a boolean" &&
    inject user "{\"id\":\"b3\",\"content\":\"still here\"}" &&
    wait_turn b3
'

test_done
