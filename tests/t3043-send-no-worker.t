#!/bin/sh
test_description='codeswarm send refuses a swarm that no worker serves

A local swarm whose supervisor is gone (killed, crashed) and whose
outboxes no worker writes any more takes no prompt: send says so and
exits 1, through the router and without one, and writes nothing.  A
swarm that has ended refuses sends the same way.'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

test_require_component JQ jq --version
sdir=$CODESWARM_HOME/swarms/l
holder=
cleanup_holder_ () {
    rc_=$?
    test -z "$holder" || kill "$holder" 2>/dev/null
    router_cleanup_
}
trap cleanup_holder_ EXIT

prompts () {
    cat "$sdir"/inbox/*.jsonl 2>/dev/null | jq -r 'select(.type == "user") | .content'
}

# swarm.json of a local swarm of two nodes: state $1, supervisor pid $2
swarm_json () {
    printf '{"id":"l","created":1,"updated":1,"nodes":2,"backend":"local","state":"%s","supervisor_pid":%s}\n' "$1" "$2" >"$sdir/swarm.json"
}

test_expect_success JQ 'a local swarm whose supervisor and workers are gone' '
    for k in 0 1; do
        codeswarm-mailbox append --type worker_started l/outbox/$k "{\"node\":$k,\"host\":\"h\",\"pid\":1,\"job_id\":null}" ||
        return 1
    done &&
    { sh -c "exit 0" & dead=$!; } &&
    wait $dead &&
    ! kill -0 $dead 2>/dev/null &&
    swarm_json running $dead
'

test_expect_success JQ 'without a router: refused, nothing written' '
    test_expect_code 1 codeswarm send l all "lost prompt" >out 2>err &&
    test_must_be_empty out &&
    grep "swarm .l. has no live worker" err &&
    grep "nothing was sent" err &&
    test -z "$(prompts)"
'

test_expect_success JQ 'through the router: refused with a typed error' '
    router_start &&
    test_expect_code 1 codeswarm send l 0 "lost prompt" >out 2>err &&
    test_must_be_empty out &&
    grep "unavailable: swarm \"l\" has no live worker" err &&
    test -z "$(prompts)"
'

test_expect_success JQ 'a worker that still writes its outbox takes prompts' '
    mkfifo hold &&
    { codeswarm-mailbox append l/outbox/1 <hold & holder=$!; } &&
    exec 8>hold &&
    wait_for -t 20 sh -c "grep -qx $holder \"$sdir/outbox/1.jsonl.lock\"" &&
    codeswarm send l 1 "served" >out &&
    grep "^n1 " out &&
    router_kill TERM &&
    CODESWARM_NO_ROUTER=1 codeswarm send l 1 "served direct" >out &&
    grep "^n1 " out &&
    exec 8>&- &&
    wait $holder &&
    holder= &&
    printf "served\nserved direct\n" >expect &&
    prompts >actual &&
    test_cmp expect actual
'

test_expect_success JQ 'a pid that is not the supervisor does not count' '
    swarm_json running $$ &&
    test_expect_code 1 codeswarm send l 0 "lost prompt" 2>err &&
    grep "supervisor (pid $$) is gone" err
'

test_expect_success JQ 'a live supervisor: prompts are taken (a worker may be restarting)' '
    mkfifo hold2 &&
    { sh -c "read x; :" supervise l <hold2 & holder=$!; } &&
    exec 9>hold2 &&
    wait_for -t 20 grep -q supervise /proc/$holder/cmdline &&
    swarm_json running $holder &&
    codeswarm send l 0 "while restarting" >out &&
    grep "^n0 " out &&
    exec 9>&- &&
    wait $holder &&
    holder=
'

test_expect_success JQ 'an ended swarm refuses sends, with a router and without' '
    swarm_json ended $$ &&
    test_expect_code 1 codeswarm send l 0 "too late" 2>err &&
    grep "swarm .l. has ended (ended); nothing was sent" err &&
    router_kill TERM &&
    router_start &&
    test_expect_code 1 codeswarm send l 0 "too late" 2>err &&
    grep "swarm_ended: swarm \"l\" has ended (ended)" err &&
    router_kill TERM &&
    ! prompts | grep "too late"
'

test_done
