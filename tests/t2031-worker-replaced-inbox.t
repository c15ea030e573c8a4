#!/bin/sh
test_description='codeswarm-worker: an inbox replaced under the worker and its writer

A symlink put in the inbox'"'"'s place for a while, then the file back: the
worker says it cannot read its inbox (node_degraded, heartbeat) and reads it
again once it is back.  An inbox replaced by an identical copy (cp -p, then
mv) while a writer holds it open: the writer appends to the new file, not to
the deleted one, and the worker runs what it appends.'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-worker.sh"

worker_trap
test_require_component JQ jq --version
unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID
CODESWARM_CODEX=$CODESWARM_BUILD_DIR/tests/fake-app-server
export CODESWARM_CODEX
cat >codeswarm.yaml <<EOF
worker:
  heartbeat: 0.2
EOF
CODESWARM_CONFIG=$(pwd)/codeswarm.yaml
export CODESWARM_CONFIG

accepted_is () {
    test "$(outbox_count ".type == \"inject_accepted\" and .injection_id == \"$1\"")" = "$2"
}
completions () {
    outbox_count ".type == \"rpc\" and .msg.method == \"turn/completed\""
}
completions_are () {
    test "$(completions)" = "$1"
}

test_expect_success 'a worker that ran a prompt' '
    worker_start &&
    outbox_wait ".type == \"ready\"" &&
    inject user "{\"id\":\"p1\",\"content\":\"one\"}" &&
    wait_for completions_are 1
'

test_expect_success 'the inbox becomes a symlink: degraded, not ready' '
    mv "$inbox" inbox.saved &&
    echo "{}" >elsewhere &&
    ln -s "$(pwd)/elsewhere" "$inbox" &&
    outbox_wait ".type == \"node_degraded\" and .reason == \"inbox_unreadable\"" &&
    outbox_wait ".type == \"heartbeat\" and .inbox == \"unreadable\"" &&
    grep "inbox not readable" worker.log &&
    codeswarm status "$SWARM" --json >status.json &&
    test "$(jq -r ".[0].node_states[0].phase" status.json)" = degraded &&
    test "$(jq -r ".[0].ready" status.json)" = 0
'

test_expect_success 'the file is back: the worker reads it again' '
    rm "$inbox" &&
    mv inbox.saved "$inbox" &&
    outbox_wait ".type == \"node_recovered\" and .reason == \"inbox_unreadable\"" &&
    inject user "{\"id\":\"p2\",\"content\":\"two\"}" &&
    wait_for completions_are 2 &&
    accepted_is p2 1 &&
    accepted_is p1 1 &&
    codeswarm status "$SWARM" --json >status.json &&
    test "$(jq -r ".[0].node_states[0].phase" status.json)" = ready
'

test_expect_success 'a writer that holds the inbox open' '
    mkfifo feed &&
    { codeswarm-mailbox append --type user "$SWARM/inbox/0" <feed >writer.out 2>writer.err & } &&
    writer_pid=$! &&
    exec 7>feed &&
    echo "{\"id\":\"p3\",\"content\":\"three\"}" >&7 &&
    wait_for completions_are 3
'

test_expect_success 'the inbox replaced by a copy: the next record reaches the worker' '
    cp -p "$inbox" inbox.copy &&
    mv inbox.copy "$inbox" &&
    echo "{\"id\":\"p4\",\"content\":\"four\"}" >&7 &&
    wait_for completions_are 4 &&
    accepted_is p4 1 &&
    test "$(jq -r "select(.id == \"p4\") | .seq" "$inbox")" = 4
'

test_expect_success 'the inbox removed under the writer: it refuses, nothing is lost silently' '
    rm "$inbox" &&
    echo "{\"id\":\"p5\",\"content\":\"five\"}" >&7 &&
    exec 7>&- &&
    { wait $writer_pid; test $? != 0; } &&
    grep "was removed.*not appending" writer.err
'

test_expect_success 'stop' '
    worker_kill TERM &&
    worker_wait_exit &&
    test "$worker_rc" = 0 &&
    codeswarm-mailbox check "$SWARM/outbox/0"
'

test_done
