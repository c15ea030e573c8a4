#!/bin/bash
test_description='codeswarm-worker survives crashes of codex and of itself (real codex)'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-worker.sh"

codex_testbed_setup
worker_trap
test_require_component JQ jq --version
test_require_component PGREP pgrep -V
unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID
cat >codeswarm.yaml <<EOF
worker:
  heartbeat: 1
  restart_backoff_min: 0.2
  restart_backoff_max: 1
EOF
CODESWARM_CONFIG=$(pwd)/codeswarm.yaml
export CODESWARM_CONFIG

turn_of () {
    outbox_last ".type == \"inject_accepted\" and .injection_id == \"$1\" and .replayed != true" |
        jq -r .turn_id
}
turn_done () {
    outbox_has ".type == \"rpc\" and .msg.method == \"turn/completed\" and .msg.params.turn.id == \"$1\""
}
wait_turn () {
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"$1\"" 1 60 &&
    wait_for -t 60 turn_done "$(turn_of "$1")"
}
# requests the mock model answered for a user message
model_saw () {
    jq -r "select(.reply.text != null) | .reply.text" "$MOCK_MODEL_LOG" |
        grep -c "You said: $1\$"
}
app_server_pid () {
    pgrep -P "$worker_pid" | head -n 1
}

test_expect_success CODEX,JQ,PGREP 'a first turn to remember' '
    worker_start &&
    outbox_wait ".type == \"ready\"" 1 60 &&
    inject user "{\"id\":\"r1\",\"content\":\"Remember PINEAPPLE\"}" &&
    wait_turn r1 &&
    assistant_text | grep -x "\[turn 1\] You said: Remember PINEAPPLE"
'

test_expect_success CODEX,JQ,PGREP 'kill -9 of the app-server mid-turn: turn_aborted, restart, resume' '
    inject user "{\"id\":\"k1\",\"content\":\"SLOW: 20\"}" &&
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"k1\"" &&
    k1=$(turn_of k1) &&
    outbox_wait ".type == \"rpc\" and .msg.method == \"item/agentMessage/delta\" and .msg.params.turnId == \"$k1\"" &&
    pid=$(app_server_pid) && test -n "$pid" &&
    kill -9 "$pid" &&
    outbox_wait ".type == \"app_server_exited\" and .signal == 9" &&
    rec=$(outbox_last ".type == \"turn_aborted\"") &&
    test "$(echo "$rec" | jq -r .turn_id)" = "$k1" &&
    test "$(echo "$rec" | jq -r .injection_id)" = k1 &&
    test "$(echo "$rec" | jq -r .reason)" = app_server_exited &&
    outbox_wait ".type == \"app_server_restarted\"" &&
    test "$(outbox_last ".type == \"app_server_restarted\"" | jq .attempt)" = 1 &&
    outbox_wait ".type == \"ready\" and .resumed == true" 1 60 &&
    test "$(outbox_last ".type == \"ready\" and .resumed == true" | jq -r .thread_id)" = \
         "$(outbox_last ".type == \"ready\" and .resumed == false" | jq -r .thread_id)" &&
    test "$(app_server_pid)" != "$pid"
'

test_expect_success CODEX,JQ,PGREP 'the next turn still sees the history' '
    inject user "{\"id\":\"k2\",\"content\":\"TURNS?\"}" &&
    wait_turn k2 &&
    assistant_text | grep "^\[turn 3\] I see 3 user turns"
'

test_expect_success CODEX,JQ,PGREP 'kill -9 of the worker mid-turn, with records queued' '
    cp "$state" state.before &&
    inject user "{\"id\":\"w1\",\"content\":\"SLOW: 20\"}" &&
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"w1\"" &&
    w1=$(turn_of w1) &&
    inject user "{\"id\":\"w2\",\"content\":\"queued two\"}" &&
    inject user "{\"id\":\"w3\",\"content\":\"queued three\"}" &&
    outbox_wait ".type == \"turn_queued\" and .injection_id == \"w3\"" &&
    pid=$(app_server_pid) &&
    kill -9 "$worker_pid" &&
    wait "$worker_pid" 2>/dev/null; worker_pid= &&
    wait_for -t 10 sh -c "! kill -0 $pid 2>/dev/null" &&
    test "$(jq -r .last_injection_id "$state")" = w1 &&
    test "$(jq -r .turn_id "$state")" = "$w1"
'

test_expect_success CODEX,JQ,PGREP 'after a restart no record runs twice and none is lost' '
    worker_start &&
    outbox_wait ".type == \"ready\" and .resumed == true" 2 60 &&
    rec=$(outbox_last ".type == \"turn_aborted\"") &&
    test "$(echo "$rec" | jq -r .reason)" = worker_restarted &&
    test "$(echo "$rec" | jq -r .injection_id)" = w1 &&
    wait_turn w3 &&
    test "$(model_saw "queued two")" = 1 &&
    test "$(model_saw "queued three")" = 1 &&
    test "$(outbox_count ".type == \"inject_accepted\" and .injection_id == \"w1\"")" = 1 &&
    test "$(jq -r "select(.reply.kind == \"slow\") | .reply.text" "$MOCK_MODEL_LOG" | wc -l)" = 2
'

test_expect_success CODEX,JQ,PGREP 'a crash between acceptance and checkpoint: the thread knows, no rerun' '
    worker_kill TERM &&
    worker_wait_exit 30 &&
    test "$worker_rc" = 0 &&
    jq -c "del(.outbox_seq)" state.before >"$state" &&
    n_slow=$(jq -r "select(.reply.kind == \"slow\") | .reply.text" "$MOCK_MODEL_LOG" | wc -l) &&
    worker_start &&
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"w3\" and .replayed == true" 1 60 &&
    outbox_has ".type == \"inject_accepted\" and .injection_id == \"w1\" and .replayed == true" &&
    outbox_has ".type == \"inject_accepted\" and .injection_id == \"w2\" and .replayed == true" &&
    sleep 1 &&
    test "$(jq -r "select(.reply.kind == \"slow\") | .reply.text" "$MOCK_MODEL_LOG" | wc -l)" = "$n_slow" &&
    test "$(model_saw "queued two")" = 1 &&
    test "$(model_saw "queued three")" = 1 &&
    test "$(jq -r .last_injection_id "$state")" = w3
'

test_expect_success CODEX,JQ,PGREP 'a crash before the checkpoint: the outbox tells, nothing reruns' '
    worker_kill TERM &&
    worker_wait_exit 30 &&
    n_acc=$(outbox_count ".type == \"inject_accepted\"") &&
    cp state.before "$state" &&
    n_slow=$(jq -r "select(.reply.kind == \"slow\") | .reply.text" "$MOCK_MODEL_LOG" | wc -l) &&
    worker_start &&
    outbox_wait ".type == \"ready\" and .resumed == true" 4 60 &&
    wait_for grep -q "(.w3.) was done before a restart: skipped" worker.log &&
    test "$(outbox_count ".type == \"inject_accepted\"")" = "$n_acc" &&
    test "$(jq -r "select(.reply.kind == \"slow\") | .reply.text" "$MOCK_MODEL_LOG" | wc -l)" = "$n_slow" &&
    test "$(model_saw "queued two")" = 1 &&
    test "$(model_saw "queued three")" = 1 &&
    test "$(jq -r .last_injection_id "$state")" = w3
'

test_expect_success CODEX,JQ,PGREP 'the worker is still usable' '
    inject user "{\"id\":\"z1\",\"content\":\"TURNS?\"}" &&
    wait_turn z1 &&
    assistant_text | grep "I see 7 user turns" &&
    worker_kill TERM &&
    worker_wait_exit 30 &&
    test "$worker_rc" = 0
'

test_done
