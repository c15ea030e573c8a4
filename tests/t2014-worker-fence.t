#!/bin/bash
test_description='codeswarm-worker: a node index that moved (state/K.fence) is served by one worker'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-worker.sh"

codex_testbed_setup
worker_trap
test_require_component JQ jq --version
unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID
cat >codeswarm.yaml <<EOF
worker:
  heartbeat: 1
EOF
CODESWARM_CONFIG=$(pwd)/codeswarm.yaml
export CODESWARM_CONFIG
fence=$CODESWARM_HOME/swarms/$SWARM/state/0.fence

# the new home: a second worker for node 0, generation 1
new_pid=
new_start () {
    CODESWARM_NODE=0 CODESWARM_FENCE=1 CODESWARM_MOVED_FROM=old \
        codeswarm-worker --swarm "$SWARM" -v \
        </dev/null >>new.log 2>&1 3>&- 4>&- 5>&- 6>&- &
    new_pid=$!
}
new_gone () {
    ! kill -0 "$new_pid" 2>/dev/null
}
new_kill_ () {
    test -z "$new_pid" || kill -KILL "$new_pid" 2>/dev/null
}
trap 'nk_rc_=$?; new_kill_; (exit $nk_rc_); worker_exit_' EXIT
said_waiting () {
    grep -q "waiting for it to end" new.log
}
answered_turns () {
    assistant_text | grep -q "I see 2 user turns"
}

test_expect_success CODEX,JQ 'the first home answers' '
    worker_start &&
    outbox_wait ".type == \"ready\"" 1 60 &&
    inject user "{\"id\":\"f1\",\"content\":\"Remember MANGO\"}" &&
    outbox_wait ".type == \"rpc\" and .msg.method == \"turn/completed\"" 1 60
'

# the old worker is held stopped while the fence moves and the new home
# starts, so that the new one finds it still writing (else the old one may
# notice the fence and end first, and there is nothing to wait for)
test_expect_success CODEX,JQ 'a new home waits for the old writer; the old one, fenced, stops' '
    worker_kill STOP &&
    echo 1 >"$fence" &&
    new_start &&
    wait_for -t 60 said_waiting &&
    worker_kill CONT &&
    worker_wait_exit 30 &&
    outbox_has ".type == \"worker_stopped\" and .reason == \"fenced\"" &&
    outbox_wait ".type == \"worker_started\"" 2 30 &&
    jq -r "select(.type == \"worker_started\" or .type == \"worker_stopped\")
           | .type" "$outbox" | tr "\n" " " >order &&
    test "$(cat order)" = "worker_started worker_stopped worker_started " &&
    outbox_wait ".type == \"ready\" and .resumed" 1 60 &&
    test "$(outbox_last ".type == \"worker_started\"" | jq -r .pid)" = "$new_pid"
'

test_expect_success CODEX,JQ 'the new home has the thread' '
    inject user "{\"id\":\"f2\",\"content\":\"TURNS?\"}" &&
    wait_for -t 60 answered_turns
'

test_expect_success CODEX,JQ 'an old-generation worker does not start on a moved index' '
    worker_start &&
    worker_wait_exit 30 &&
    test "$worker_rc" != 0 &&
    test "$(outbox_count ".type == \"worker_started\"")" = 2 &&
    kill -0 "$new_pid"
'

test_expect_success CODEX,JQ 'stop the new home' '
    kill -TERM "$new_pid" &&
    wait_for -t 60 new_gone &&
    outbox_has ".type == \"worker_stopped\"" 2
'

test_done
