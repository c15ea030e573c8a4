#!/bin/bash
test_description='relay: a far-side client drives a local swarm of real codex workers through a TLS broker, sealed'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"
. "$CODESWARM_SRC_DIR/tests/lib-relay.sh"

codex_testbed_setup
relay_trap
relay_setup
relay_yaml near
codex_local_config near.yaml

hex () {
    printf '%s' "$1" | od -An -tx1 | tr -d ' \n'
}

test_expect_success CODEX,MQTT,JQ 'two codex workers, the near side, a spy, the far side' '
    codex_workers_start s 2 &&
    wait_for -t 60 codex_workers_ready s 2 &&
    spy_start spy.txt &&
    near_start &&
    far_start
'

test_expect_success CODEX,MQTT,JQ 'far side: a prompt to all nodes, every answer once' '
    far codeswarm send s all "hello relay" >sent &&
    test "$(wc -l <sent)" = 2 &&
    far timeout 90 codeswarm attach s --json --since 0 --turns 2 >events.json &&
    check_seqs events.json 1 &&
    for k in 0 1; do
        test "$(jq -r "select(.event == \"assistant\" and .data.node_id == $k and .data.final_answer) | .data.text" events.json)" = "[turn 1] You said: hello relay" &&
        test "$(jq -c "select(.event == \"turn_complete\" and .data.node_id == $k)" events.json | wc -l)" = 1 ||
        return 1
    done
'

test_expect_success CODEX,MQTT,JQ 'the broker sees neither the prompt nor the answer' '
    wait_for test -s spy.txt &&
    test "$(grep -c " " spy.txt)" -gt 4 &&
    grep -q "^codeswarm/alice/up/far " spy.txt &&
    grep -q "^codeswarm/alice/down/far " spy.txt &&
    ! grep -i "$(hex "hello relay")" spy.txt &&
    ! grep -i "$(hex "You said")" spy.txt &&
    ! grep -i "$(hex "assistant")" spy.txt
'

test_expect_success CODEX,MQTT,JQ 'replayed commands are dropped, not done again' '
    before=$(cat home/swarms/s/inbox/0.jsonl | wc -l) &&
    grep "^codeswarm/alice/up/far " spy.txt >up.txt &&
    while read -r topic payload; do
        publish_hex "$topic" "$payload" || return 1
    done <up.txt &&
    n=$(wc -l <up.txt) &&
    wait_for -t 20 value_is "grep -c dropped.a.message.from..far. near.log" -ge "$n" &&
    test "$(cat home/swarms/s/inbox/0.jsonl | wc -l)" = "$before"
'

test_expect_success CODEX,MQTT,JQ 'replayed and tampered events are rejected, a client still sees each once' '
    grep "^codeswarm/alice/down/far " spy.txt | tail -n 3 >down.txt &&
    while read -r topic payload; do
        publish_hex "$topic" "$payload" || return 1
    done <down.txt &&
    read -r topic payload <down.txt &&
    tampered=$(printf "%s" "$payload" | sed "s/^\(.\{120\}\)\(.\)/\1$(printf "%s" "$payload" | cut -c121 | tr 0-9a-f 1-9a-f0)/") &&
    publish_hex "$topic" "$tampered" &&
    wait_for -t 20 grep -q "rejected a payload on .codeswarm/alice/down/far.: payload does not open" far.log &&
    wait_for -t 20 grep -q "dropped" far.log &&
    far timeout 30 codeswarm attach s --json --since 0 --turns 2 >again.json &&
    check_seqs again.json 1 &&
    test "$(wc -l <again.json)" = "$(wc -l <events.json)"
'

test_done
