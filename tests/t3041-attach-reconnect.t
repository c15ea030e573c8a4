#!/bin/sh
test_description='codeswarm attach: the router goes away and comes back

attach waits for a router again (never the mailbox in the middle of a
session), resumes after the last event it saw, and exits non-zero only when
told to give up.'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

test_require_component JQ jq --version

apid=
cleanup_ () {
    rc_=$?
    test -n "$apid" && kill -KILL "$apid" 2>/dev/null
    test -n "$router_pid" && kill -KILL "$router_pid" 2>/dev/null
    wait 2>/dev/null
    (exit $rc_)
    sharness_die_
}
trap cleanup_ EXIT

rec () {
    codeswarm-mailbox append --type "$1" s/outbox/0 "$2"
}
events () {
    jq -r "select(.seq != null) | .event" all.json 2>/dev/null | grep -c -x "$1"
}
events_are () {
    test "$(events "$1")" = "$2"
}

test_expect_success 'attach to a router' '
    rec worker_started "{\"node\":0,\"host\":\"h\",\"pid\":1,\"job_id\":null}" &&
    router_start &&
    { codeswarm attach s --json --since 0 >all.json 2>attach.err & } &&
    apid=$! &&
    wait_for events_are node_started 1
'

test_expect_success 'the router goes away; events meanwhile; a new router' '
    router_kill TERM &&
    wait_for grep -q "reconnecting" attach.err &&
    rec walltime_warning "{}" &&
    rec walltime_warning "{}" &&
    router_start &&
    wait_for events_are walltime_warning 2 &&
    kill -0 "$apid"
'

test_expect_success 'no event twice, no gap' '
    check_seqs all.json 1 &&
    events_are node_started 1 &&
    grep "reconnected to the router" attach.err
'

test_expect_success 'interrupted by the user: exit 0' '
    kill -INT "$apid" &&
    wait "$apid"; rc=$? &&
    apid= &&
    test "$rc" = 0
'

test_expect_success 'a swarm the router does not know: an error, exit 1' '
    test_expect_code 1 timeout 60 codeswarm attach nosuch >out 2>err &&
    grep "no swarm \"nosuch\"" err &&
    test_expect_code 1 timeout 60 codeswarm attach --json nosuch >out 2>err &&
    grep "unknown_swarm" err
'

test_expect_success 'told to give up: exit 1 once the router stays away' '
    { codeswarm attach s --json --since 0 --give-up-after 1s >all2.json 2>attach2.err & } &&
    apid=$! &&
    wait_for test -s all2.json &&
    router_kill TERM &&
    { wait "$apid"; rc=$?; } &&
    apid= &&
    test "$rc" = 1 &&
    grep "giving up" attach2.err
'

test_done
