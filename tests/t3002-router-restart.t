#!/bin/bash
test_description='codeswarm-router killed mid-stream and restarted: every event exactly once'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

router_trap
test_require_component JQ jq --version

# a producer standing in for a worker: B batches of 50 assistant deltas
delta () {
    printf '{"msg":{"method":"item/agentMessage/delta","params":{"turnId":"T","itemId":"m","delta":"%s"}}}' "$1"
}
produce () {
    for b in $(seq 1 "$1"); do
        set --
        for i in $(seq 1 50); do set -- "$@" "$(delta "d$b-$i")"; done
        codeswarm-mailbox append --type rpc s/outbox/0 "$@" >/dev/null || return 1
        sleep 0.02
    done
}

test_expect_success JQ 'setup: a swarm with a turn in progress' '
    codeswarm-mailbox append --type worker_started s/outbox/0 \
        "{\"node\":0,\"host\":\"h\",\"pid\":1,\"job_id\":\"j1\"}" &&
    codeswarm-mailbox append --type rpc s/outbox/0 \
        "{\"msg\":{\"method\":\"turn/started\",\"params\":{\"threadId\":\"th\",\"turn\":{\"id\":\"T\"}}}}" &&
    router_start &&
    wait_for grep -q "\"event_seq\":2" home/router/state.json &&
    mkdir snapshot &&
    cp home/router/state.json home/swarms/s/cursors/router.outbox-0.json snapshot/
'

test_expect_success JQ 'kill -9 the router while it streams, restart, resume with since' '
    { codeswarm-client attach s --json --since 0 --give-up-after 0.2s >part1.json 2>attach1.err & } &&
    attach_pid=$! &&
    { produce 40 & } &&
    producer_pid=$! &&
    sleep 0.4 &&
    router_kill KILL &&
    wait $attach_pid;
    last=$(ev_seqs part1.json | tail -n1) &&
    test -n "$last" &&
    router_start &&
    wait $producer_pid &&
    codeswarm-mailbox append --type rpc s/outbox/0 \
        "{\"msg\":{\"method\":\"turn/completed\",\"params\":{\"threadId\":\"th\",\"turn\":{\"id\":\"T\",\"status\":\"completed\",\"error\":null}}}}" &&
    codeswarm-client attach s --json --since "$last" --turns 1 >part2.json &&
    cat part1.json part2.json >all.json &&
    check_seqs all.json 1
'

test_expect_success JQ 'every delta arrived exactly once, in order' '
    jq -r "select(.event == \"assistant_delta\") | .data.delta" all.json >deltas &&
    for b in $(seq 1 40); do for i in $(seq 1 50); do echo "d$b-$i"; done; done >deltas.expect &&
    test_cmp deltas.expect deltas &&
    test "$(jq -r "select(.event == \"turn_complete\") | .data.turn_id" all.json)" = T &&
    test "$(jq -r "select(.event == \"node_started\") | .data.job_id" all.json)" = j1
'

test_expect_success JQ 'a fresh subscriber from 0 sees the same stream' '
    codeswarm-client attach s --json --since 0 --turns 1 >again.json &&
    check_seqs again.json 1 &&
    jq -c "[.seq,.event,.data]" all.json >a &&
    jq -c "[.seq,.event,.data]" again.json >b &&
    test_cmp a b
'

test_expect_success JQ 'a restart from stale cursors repeats nothing' '
    router_kill TERM &&
    cp snapshot/state.json home/router/ &&
    cp snapshot/router.outbox-0.json home/swarms/s/cursors/ &&
    router_start &&
    grep "streams have events logged after the checkpoint" router.log &&
    codeswarm-client attach s --json --since 0 --turns 1 >again2.json &&
    jq -c "[.seq,.event,.data]" again2.json >c &&
    test_cmp a c &&
    before=$(ev_seqs again.json | tail -n1) &&
    codeswarm-mailbox append --type walltime_warning s/outbox/0 "{}" &&
    codeswarm-client rpc --until walltime_warning --timeout 10 \
        "$(rcmd subscribe "{\"since\":$before}")" >more.json &&
    test "$(ev_seqs more.json)" = $((before + 1))
'

inject_cmd () {
    rcmd inject "{\"swarm_id\":\"s\",\"nodes\":\"0\",\"content\":\"$1\",\"idempotency_key\":\"$2\"}"
}
user_records () {
    jq -c "select(.type == \"user\" and .content == \"$1\")" \
        home/swarms/s/inbox/0.jsonl | wc -l
}

test_expect_success JQ 'an idempotency key survives kill -9 of the router' '
    codeswarm-client rpc --until inject_ack --timeout 10 \
        "$(inject_cmd once K1)" >inj1.json &&
    id1=$(jq -r "select(.event == \"inject_ack\") | .data.injection_id" \
        inj1.json) &&
    test -n "$id1" && test "$id1" != null &&
    test "$(user_records once)" = 1 &&
    router_kill KILL &&
    router_start &&
    codeswarm-client rpc --until command_rejected --timeout 10 \
        "$(inject_cmd once K1)" >inj2.json &&
    test "$(jq -r "select(.event == \"command_rejected\") | .data.code" \
        inj2.json)" = duplicate &&
    test "$(jq -r "select(.event == \"command_rejected\") |
        .data.injections[0].injection_id" inj2.json)" = "$id1" &&
    test "$(user_records once)" = 1
'

test_expect_success JQ 'a torn key line is ignored, other keys still work' '
    printf "{\"key\":\"s/K2\",\"ts\":" >>home/router/idempotency.jsonl &&
    router_kill KILL &&
    router_start &&
    codeswarm-client rpc --until inject_ack --timeout 10 \
        "$(inject_cmd twice K2)" >inj3.json &&
    test "$(jq -r "select(.event == \"inject_ack\") | .data.idempotency_key" \
        inj3.json)" = K2 &&
    codeswarm-client rpc --until command_rejected --timeout 10 \
        "$(inject_cmd once K1)" >inj4.json &&
    test "$(jq -r "select(.event == \"command_rejected\") | .data.code" \
        inj4.json)" = duplicate &&
    test "$(user_records once)" = 1 &&
    test "$(user_records twice)" = 1 &&
    test "$(grep -c . home/router/idempotency.jsonl)" = 2
'

lost_count () {
    jq -r "select(.event == \"$1\" and .data.swarm_id == \"q\") |
        .data.node_id" home/router/events.jsonl | wc -l
}
lost_is () {
    test "$(lost_count "$1")" = "$2"
}

test_expect_success JQ 'node_lost: a node goes silent' '
    router_kill TERM &&
    router_start --node-lost-after 1 &&
    codeswarm-mailbox append --type heartbeat q/outbox/0 \
        "{\"turn_active\":false,\"queued\":0}" &&
    wait_for grep -q "\"lost\":false" \
        home/swarms/q/cursors/router.outbox-0.json &&
    rm -rf snap-q && mkdir snap-q &&
    cp home/router/state.json home/swarms/q/cursors/router.outbox-0.json \
        snap-q/ &&
    wait_for -t 10 grep -q "\"lost\":true" \
        home/swarms/q/cursors/router.outbox-0.json &&
    test "$(lost_count node_lost)" = 1
'

test_expect_success JQ 'node_lost: not again for the same silence after a restart' '
    router_kill KILL &&
    cp snap-q/state.json home/router/ &&
    cp snap-q/router.outbox-0.json home/swarms/q/cursors/ &&
    router_start --node-lost-after 1 &&
    sleep 2.5 &&
    test "$(lost_count node_lost)" = 1 &&
    wait_for grep -q "\"lost\":true" \
        home/swarms/q/cursors/router.outbox-0.json &&
    router_kill KILL &&
    router_start --node-lost-after 1 &&
    sleep 2.5 &&
    test "$(lost_count node_lost)" = 1
'

test_expect_success JQ 'node_lost: again after the node recovered and went silent' '
    codeswarm-mailbox append --type heartbeat q/outbox/0 \
        "{\"turn_active\":false,\"queued\":0}" &&
    wait_for -t 10 lost_is node_recovered 1 &&
    wait_for -t 10 lost_is node_lost 2 &&
    router_kill KILL &&
    codeswarm-mailbox append --type heartbeat q/outbox/0 \
        "{\"turn_active\":false,\"queued\":0}" &&
    router_start --node-lost-after 1 &&
    wait_for -t 10 lost_is node_lost 3 &&
    test "$(lost_count node_recovered)" = 2
'

test_expect_success 'stop the router' '
    router_kill TERM
'

test_done
