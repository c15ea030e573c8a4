#!/bin/bash
test_description='one usage event per turn after the worker resumes its thread (real codex)

On thread/resume, codex announces the thread'"'"'s token usage again, naming
the last turn before the restart.  That turn had its usage event already:
the announcement must not make a second one.'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-worker.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

codex_testbed_setup
test_require_component JQ jq --version
unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID
cleanup_all_ () {
    rc_=$?
    test -z "$router_pid" || kill -KILL "$router_pid" 2>/dev/null
    (exit $rc_)
    worker_cleanup_
}
trap cleanup_all_ EXIT

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
# every turn of events.json has exactly one usage event, and there are $1
one_usage_per_turn () {
    jq -r "select(.event == \"turn_complete\") | .data.turn_id" events.json |
        sort >turns &&
    jq -r "select(.event == \"usage\") | .data.turn_id" events.json |
        sort >usages &&
    test "$(wc -l <turns)" = "$1" &&
    test_cmp turns usages
}

test_expect_success CODEX,JQ 'a turn, a worker restart that resumes the thread, a turn' '
    worker_start &&
    outbox_wait ".type == \"ready\"" 1 60 &&
    inject user "{\"id\":\"u1\",\"content\":\"first\"}" &&
    wait_turn u1 &&
    worker_kill TERM &&
    worker_wait_exit 30 &&
    worker_start &&
    outbox_wait ".type == \"ready\" and .resumed == true" 1 60 &&
    inject user "{\"id\":\"u2\",\"content\":\"second\"}" &&
    wait_turn u2 &&
    worker_kill TERM &&
    worker_wait_exit 30 &&
    test "$(outbox_count ".type == \"rpc\" and .msg.method == \"thread/tokenUsage/updated\" and .msg.params.turnId == \"$(turn_of u1)\"")" -ge 2
'

test_expect_success CODEX,JQ 'without a router: one usage event per turn' '
    CODESWARM_NO_ROUTER=1 timeout 60 codeswarm attach s --json --since 0 --turns 2 >events.json &&
    one_usage_per_turn 2
'

test_expect_success CODEX,JQ 'through the router: one usage event per turn' '
    router_start &&
    timeout 60 codeswarm attach s --json --since 0 --turns 2 >events.json &&
    one_usage_per_turn 2 &&
    router_kill TERM
'

test_done
