#!/bin/bash
test_description='relay: broker killed, links dropped, routers killed mid-stream: every event once at the far side'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"
. "$CODESWARM_SRC_DIR/tests/lib-relay.sh"

relay_trap
relay_setup

# a producer standing in for a worker: batches of 50 assistant deltas
# "d<tag><b>-<i>" (no subshell per delta: forks are slow on a busy machine)
produce () {   # produce TURN TAG BATCHES
    for b in $(seq 1 "$3"); do
        args_=()
        for i in $(seq 1 50); do
            printf -v d_ '{"msg":{"method":"item/agentMessage/delta","params":{"turnId":"%s","itemId":"m","delta":"d%s%s-%s"}}}' "$1" "$2" "$b" "$i"
            args_+=("$d_")
        done
        codeswarm-mailbox append --type rpc s/outbox/0 "${args_[@]}" >/dev/null || return 1
        sleep 0.02
    done
}
turn () {      # turn started|completed ID
    if test "$1" = started; then
        codeswarm-mailbox append --type rpc s/outbox/0 \
            "{\"msg\":{\"method\":\"turn/started\",\"params\":{\"threadId\":\"th\",\"turn\":{\"id\":\"$2\"}}}}"
    else
        codeswarm-mailbox append --type rpc s/outbox/0 \
            "{\"msg\":{\"method\":\"turn/completed\",\"params\":{\"threadId\":\"th\",\"turn\":{\"id\":\"$2\",\"status\":\"completed\",\"error\":null}}}}"
    fi >/dev/null
}
expect_deltas () {  # expect_deltas TAG BATCHES FILE
    jq -r "select(.event == \"assistant_delta\") | .data.delta" "$3" |
        grep "^d$1" >deltas.$1 &&
    for b in $(seq 1 "$2"); do for i in $(seq 1 50); do echo "d$1$b-$i"; done; done >deltas.$1.expect &&
    test_cmp deltas.$1.expect deltas.$1
}
connects_over () {  # connects_over N: the far side connected more than N times
    test "$(grep -c "relay: connected" far.log)" -gt "$1"
}
lines_over () {     # lines_over FILE N
    test "$(wc -l <"$1" 2>/dev/null || echo 0)" -gt "$2"
}
# drop every connection to the broker: ss -K where the kernel lets us,
# else a broker restart (the routers see the same: their link is cut)
if ss -K dst 127.0.0.1 dport = :1 >/dev/null 2>&1 && test "$(id -u)" = 0; then
    link_drop () {
        ss -K dst 127.0.0.1 dport = :"$(cat "$mqtt_dir/port")" >/dev/null 2>&1
    }
else
    link_drop () {
        broker_kill && broker_start
    }
fi

test_expect_success MQTT,JQ 'setup: a swarm, the near side, the far side' '
    codeswarm-mailbox append --type worker_started s/outbox/0 \
        "{\"node\":0,\"host\":\"h\",\"pid\":1,\"job_id\":\"j1\"}" &&
    near_start &&
    far_start
'

test_expect_success MQTT,JQ 'kill -9 of the broker mid-stream, restart: nothing lost or repeated' '
    turn started A &&
    { far codeswarm-client attach s --json --since 0 --turns 1 >a.json 2>a.err & } &&
    attach_pid=$! &&
    { produce A a 40 & } &&
    producer_pid=$! &&
    wait_for -t 30 lines_over a.json 200 &&
    broker_kill --kill &&
    broker_start &&
    wait $producer_pid &&
    turn completed A &&
    wait $attach_pid &&
    check_seqs a.json 1 &&
    expect_deltas a 40 a.json &&
    grep "relay: retrying: connection lost" far.log
'

test_expect_success MQTT,JQ '50 link drops while streaming: nothing lost or repeated' '
    last=$(ev_seqs a.json | tail -n1) &&
    turn started B &&
    { far codeswarm-client attach s --json --since "$last" --turns 1 >b.json 2>b.err & } &&
    attach_pid=$! &&
    { produce B b 60 & } &&
    producer_pid=$! &&
    drops=0 &&
    while test $drops -lt 50; do
        before=$(grep -c "relay: connected" far.log) &&
        link_drop &&
        wait_for -t 20 connects_over "$before" &&
        drops=$((drops + 1)) || return 1
    done &&
    wait $producer_pid &&
    turn completed B &&
    wait $attach_pid &&
    check_seqs b.json $((last + 1)) &&
    expect_deltas b 60 b.json
'

test_expect_success MQTT,JQ 'kill -9 of the near side mid-stream, restart: nothing lost or repeated' '
    last=$(ev_seqs b.json | tail -n1) &&
    turn started C &&
    { far codeswarm-client attach s --json --since "$last" --turns 1 >c.json 2>c.err & } &&
    attach_pid=$! &&
    { produce C c 40 & } &&
    producer_pid=$! &&
    wait_for -t 30 lines_over c.json 200 &&
    near_kill KILL &&
    near_start &&
    wait $producer_pid &&
    turn completed C &&
    wait $attach_pid &&
    check_seqs c.json $((last + 1)) &&
    expect_deltas c 40 c.json
'

test_expect_success MQTT,JQ 'kill -9 of the far side mid-stream, restart, attach --since: nothing lost or repeated' '
    last=$(ev_seqs c.json | tail -n1) &&
    turn started D &&
    { far codeswarm-client attach s --json --since "$last" --give-up-after 0.2s \
        >d1.json 2>d1.err & } &&
    attach_pid=$! &&
    { produce D d 40 & } &&
    producer_pid=$! &&
    wait_for -t 30 lines_over d1.json 200 &&
    far_kill KILL &&
    { wait $attach_pid; true; } &&
    far_start &&
    wait $producer_pid &&
    turn completed D &&
    mid=$(ev_seqs d1.json | tail -n1) &&
    far codeswarm-client attach s --json --since "$mid" --turns 1 >d2.json &&
    cat d1.json d2.json >d.json &&
    check_seqs d.json $((last + 1)) &&
    expect_deltas d 40 d.json
'

test_expect_success MQTT,JQ 'a far side that lost its state file is still heard' '
    far_kill &&
    rm far-home/router/relay-client.json &&
    far_start &&
    far codeswarm-client rpc --until swarm_list "$(rcmd swarm_list)" >list.out &&
    jq -e "select(.event == \"swarm_list\") | .data.swarms | has(\"s\")" list.out
'

test_expect_success MQTT,JQ 'the far side keeps its state private' '
    test "$(stat -c %a far-home/router/relay-client.json)" = 600 &&
    test "$(stat -c %a home/router/relay.json)" = 600
'

test_done
