#!/bin/bash
test_description='codeswarm-worker under valgrind: no errors, no leaks'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
test_skip_all_if_sanitized "$CODESWARM_BUILD_DIR/worker/codeswarm-worker"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-worker.sh"

codex_testbed_setup
worker_trap
test_require_component JQ jq --version
test_require_component VALGRIND valgrind --version
unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID
cat >codeswarm.yaml <<EOF
worker:
  heartbeat: 0.5
  request_timeout: 20
EOF
cat >fake.yaml <<EOF
worker:
  request_timeout: 2
  restart_backoff_min: 0.1
  restart_backoff_max: 0.2
  max_failed_starts: 2
EOF
CODESWARM_CONFIG=$(pwd)/codeswarm.yaml
export CODESWARM_CONFIG
WORKER_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
    --track-fds=no --log-file=$(pwd)/valgrind.%p.log"

# every valgrind log is empty (--quiet: only errors and leaks are logged)
vg_clean () {
    for f in valgrind.*.log; do
        test -e "$f" || return 1
        if test -s "$f"; then
            cat "$f" >&2
            return 1
        fi
    done
}

saw_text () {
    assistant_text | grep -q "$1"
}

test_expect_success CODEX,JQ,VALGRIND 'a hello turn, bad records, USR1 and a stop under valgrind' '
    worker_start &&
    outbox_wait ".type == \"ready\"" 1 120 &&
    inject user "{\"id\":\"v1\",\"content\":\"hello valgrind\"}" &&
    echo garbage >>"$inbox" &&
    inject approval "{\"id\":\"v2\",\"approval_id\":\"none\",\"decision\":\"accept\"}" &&
    outbox_wait ".type == \"error\" and .code == \"unknown_approval\"" 1 60 &&
    wait_for -t 60 saw_text "You said: hello valgrind" &&
    worker_kill USR1 &&
    outbox_wait ".type == \"walltime_warning\"" 1 30 &&
    worker_kill TERM &&
    worker_wait_exit 60 &&
    test "$worker_rc" = 0 &&
    vg_clean
'

test_expect_success JQ,VALGRIND 'app-server faults under valgrind (scripted app-server)' '
    rm -f valgrind.*.log &&
    SWARM=vgfake &&
    outbox=$CODESWARM_HOME/swarms/$SWARM/outbox/0.jsonl &&
    CODESWARM_CODEX=$CODESWARM_BUILD_DIR/tests/fake-app-server \
    FAKE_APP_SERVER_MODE=garbage worker_start --config fake.yaml &&
    outbox_wait ".type == \"ready\"" 1 60 &&
    inject user "{\"id\":\"g1\",\"content\":\"x\"}" &&
    outbox_wait ".type == \"rpc\" and .msg.method == \"turn/completed\"" 1 60 &&
    worker_kill TERM &&
    worker_wait_exit 60 &&
    test "$worker_rc" = 0 &&
    CODESWARM_CODEX=$CODESWARM_BUILD_DIR/tests/fake-app-server \
    FAKE_APP_SERVER_MODE=exit-handshake worker_start --config fake.yaml &&
    worker_wait_exit 60 &&
    test "$worker_rc" = 1 &&
    vg_clean
'

test_done
