#!/bin/sh
test_description='codeswarm-worker: app-server faults the real codex cannot show on demand'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-worker.sh"

worker_trap
test_require_component JQ jq --version
unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID
CODESWARM_CODEX=$CODESWARM_BUILD_DIR/tests/fake-app-server
FAKE_APP_SERVER_LOG=$(pwd)/fake.log
export CODESWARM_CODEX FAKE_APP_SERVER_LOG
cat >codeswarm.yaml <<EOF
worker:
  heartbeat: 0.2
  request_timeout: 1
  restart_backoff_min: 0.1
  restart_backoff_max: 0.4
  max_failed_starts: 3
  max_line: 64KiB
  stderr_tail: 200
EOF
CODESWARM_CONFIG=$(pwd)/codeswarm.yaml
export CODESWARM_CONFIG

# fresh swarm per scenario
new_swarm () {
    SWARM=$1
    outbox=$CODESWARM_HOME/swarms/$SWARM/outbox/0.jsonl
    inbox=$CODESWARM_HOME/swarms/$SWARM/inbox/0.jsonl
    state=$CODESWARM_HOME/swarms/$SWARM/state/0.json
}

test_expect_success 'exit during the handshake: K failed starts, then an error and exit 1' '
    new_swarm hs &&
    FAKE_APP_SERVER_MODE=exit-handshake worker_start &&
    worker_wait_exit 30 &&
    test "$worker_rc" = 1 &&
    test "$(outbox_count ".type == \"app_server_exited\" and .code == 3")" = 3 &&
    test "$(outbox_count ".type == \"app_server_restarted\"")" = 2 &&
    outbox_has ".type == \"app_server_exited\" and (.stderr_tail | test(\"exiting during the handshake\"))" &&
    outbox_has ".type == \"error\" and .code == \"app_server_failed\"" &&
    rec=$(outbox_last ".type == \"worker_stopped\"") &&
    test "$(echo "$rec" | jq .status)" = 1 &&
    test "$(echo "$rec" | jq -r .reason)" = app_server_failed &&
    ! outbox_has ".type == \"ready\""
'

test_expect_success 'backoff doubles between failed starts' '
    jq -r "select(.type == \"app_server_restarted\") | .backoff" "$outbox" >backoffs &&
    printf "0.1\n0.2\n" >backoffs.expected &&
    test_cmp backoffs.expected backoffs
'

test_expect_success 'a failed start while down is visible in heartbeats' '
    new_swarm hb &&
    FAKE_APP_SERVER_MODE=exit-handshake worker_start &&
    worker_wait_exit 30 &&
    test "$worker_rc" = 1 &&
    ! outbox_has ".type == \"heartbeat\" and .app_server == \"up\""
'

test_expect_success 'no answer to initialize: killed after request_timeout, counts as a failed start' '
    new_swarm silent &&
    FAKE_APP_SERVER_MODE=silent worker_start &&
    worker_wait_exit 30 &&
    test "$worker_rc" = 1 &&
    test "$(outbox_count ".type == \"error\" and .code == \"app_server_timeout\"")" = 3 &&
    test "$(outbox_count ".type == \"app_server_exited\" and .signal == 9")" = 3 &&
    outbox_has ".type == \"error\" and .code == \"app_server_failed\""
'

test_expect_success 'no answer to turn/start: kill, restart, resume, the turn is tried again' '
    new_swarm noturn &&
    : >fake.log &&
    FAKE_APP_SERVER_MODE=silent-turn worker_start &&
    outbox_wait ".type == \"ready\"" &&
    inject user "{\"id\":\"t1\",\"content\":\"hello\"}" &&
    outbox_wait ".type == \"error\" and .code == \"app_server_timeout\"" &&
    outbox_wait ".type == \"app_server_exited\" and .signal == 9" &&
    outbox_wait ".type == \"app_server_restarted\"" &&
    outbox_wait ".type == \"ready\" and .resumed == true" &&
    wait_for value_is "grep -c clientUserMessageId.:.t1. fake.log" -ge 2 &&
    ! outbox_has ".type == \"inject_accepted\"" &&
    worker_kill TERM &&
    worker_wait_exit 20 &&
    test "$worker_rc" = 0
'

test_expect_success 'garbage on stdout: error records, the stream and the turn go on' '
    new_swarm garbage &&
    FAKE_APP_SERVER_MODE=garbage worker_start &&
    outbox_wait ".type == \"ready\"" &&
    inject user "{\"id\":\"g1\",\"content\":\"hello\"}" &&
    outbox_wait ".type == \"rpc\" and .msg.method == \"turn/completed\"" &&
    outbox_wait ".type == \"error\" and .code == \"bad_app_server_line\"" 8 &&
    outbox_has ".type == \"error\" and .code == \"bad_app_server_line\" and (.message | test(\"this is not JSON\"))" &&
    outbox_has ".type == \"error\" and (.message | test(\"over 65536 bytes\"))" &&
    outbox_has ".type == \"inject_accepted\" and .injection_id == \"g1\"" &&
    ! outbox_has ".type == \"rpc\" and (.msg | type) != \"object\"" &&
    test "$(outbox_count ".type == \"app_server_exited\"")" = 0
'

test_expect_success 'invalid UTF-8 on stdout is refused too' '
    outbox_has ".type == \"error\" and .code == \"bad_app_server_line\" and (.message | test(\"invalid UTF-8\"))"
'

test_expect_success 'the stderr tail in app_server_exited is bounded' '
    jq -r "select(.type == \"app_server_exited\") | .stderr_tail | length" \
        "$CODESWARM_HOME/swarms/hs/outbox/0.jsonl" >lens &&
    test -s lens &&
    ! awk "\$1 > 200 { bad = 1 } END { exit !bad }" lens
'

test_expect_success 'the outbox stays valid: every line is a record' '
    codeswarm-mailbox check "$outbox"
'

test_expect_success 'SIGTERM while the app-server is healthy: exit 0' '
    worker_kill TERM &&
    worker_wait_exit 20 &&
    test "$worker_rc" = 0
'

test_expect_success 'a refused turn/start: an error naming the injection and its request' '
    new_swarm refused &&
    FAKE_APP_SERVER_MODE=reject-turn worker_start &&
    outbox_wait ".type == \"ready\"" &&
    inject user "{\"id\":\"r1\",\"content\":\"hello\",\"request_id\":\"req-r1\"}" &&
    outbox_wait ".type == \"error\" and .code == \"turn_start_failed\"" &&
    outbox_has ".type == \"error\" and .injection_id == \"r1\" and .request_id == \"req-r1\" and .inbox_seq == 1 and (.message | test(\"turn refused\"))" &&
    ! outbox_has ".type == \"inject_accepted\"" &&
    worker_kill TERM && worker_wait_exit 20
'

backoffs () {
    jq -r "select(.type == \"app_server_restarted\") | .backoff" "$outbox" |
        head -n 4 | tr "\n" " "
}

test_expect_success 'crashes after a short healthy run: the backoff grows to its cap' '
    new_swarm unhealthy &&
    printf "worker:\n  restart_backoff_min: 0.1\n  restart_backoff_max: 0.4\n  healthy_after: 10\n" >unhealthy.yaml &&
    FAKE_APP_SERVER_DIE_AFTER=0.3 worker_start --config unhealthy.yaml &&
    outbox_wait ".type == \"app_server_restarted\"" 4 &&
    worker_kill TERM &&
    worker_wait_exit 20 &&
    test "$worker_rc" = 0 &&
    test "$(backoffs)" = "0.1 0.2 0.4 0.4 " &&
    outbox_has ".type == \"app_server_exited\" and .signal == 14" &&
    ! outbox_has ".type == \"error\" and .code == \"app_server_failed\""
'

test_expect_success 'crashes after a healthy period: the backoff is reset' '
    new_swarm healthy &&
    printf "worker:\n  restart_backoff_min: 0.1\n  restart_backoff_max: 0.4\n  healthy_after: 0.2\n" >healthy.yaml &&
    FAKE_APP_SERVER_DIE_AFTER=0.4 worker_start --config healthy.yaml &&
    outbox_wait ".type == \"app_server_restarted\"" 4 &&
    worker_kill TERM &&
    worker_wait_exit 20 &&
    test "$(backoffs)" = "0.1 0.1 0.1 0.1 "
'

test_done
