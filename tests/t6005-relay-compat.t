#!/bin/bash
test_description='relay: the original CLI'"'"'s flows (list, status, inject, attach, terminate) over loopback TCP to the far side'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"
. "$CODESWARM_SRC_DIR/tests/lib-relay.sh"

# Each session sends, on one TCP connection to the far side's --tcp
# listener, what the original codeswarm CLI (cli/src/index.ts) sends for
# one of its verbs, and checks what that verb waits for before it prints
# and exits (as t3031 does against a local router).

codex_testbed_setup
relay_trap
relay_setup
relay_yaml near
codex_local_config near.yaml

P='"protocol":"codeswarm.router.v1","type":"command"'
cmd () {
    echo "{$P,\"command\":\"$1\",\"request_id\":\"$2\",\"payload\":$3}"
}
tcp_port () {
    sed -n "s/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p" far.log | tail -n1
}
# session FILE LINES...: a TCP client in the background that sends the
# lines and records what comes back in FILE ($session_pid)
session () {
    out_=$1
    shift
    timeout 120 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$0 || exit 9
        for l in "$@"; do printf "%s\n" "$l" >&3; done
        cat <&3' "$(tcp_port)" "$@" >"$out_" 2>"$out_.err" &
    session_pid=$!
}
session_end () {
    kill "$session_pid" 2>/dev/null
    wait "$session_pid" 2>/dev/null
    session_pid=
    return 0
}
# has FILE JQ-CONDITION: a line of FILE satisfies it
has () {
    jq -e -n "any(inputs; $2)" "$1" >/dev/null 2>&1
}
exited () {
    ! kill -0 "$1" 2>/dev/null || ps -o stat= -p "$1" | grep -q Z
}

test_expect_success CODEX,MQTT,JQ 'a codex worker, the near side, the far side on loopback TCP' '
    codex_workers_start s 1 &&
    worker_pid=$codex_worker_pids &&
    wait_for -t 60 codex_workers_ready s 1 &&
    near_start &&
    far_start --tcp 127.0.0.1:0 &&
    wait_for value_is tcp_port != ""
'

test_expect_success CODEX,MQTT,JQ 'list: swarm_list answered once with what the CLI prints' '
    session list.json "$(cmd swarm_list up-list "{}")" &&
    wait_for -t 30 has list.json "(.event == \"swarm_list\")" &&
    session_end &&
    has list.json "(.event == \"swarm_list\" and .data.request_id == \"up-list\"
        and .data.swarms.s.node_count == 1 and .data.swarms.s.status == \"running\"
        and (.data.swarms.s | has(\"job_id\")))" &&
    test "$(jq -c "select(.data.request_id == \"up-list\")" list.json | wc -l)" = 1
'

test_expect_success CODEX,MQTT,JQ 'status: swarm_status with its request id' '
    session st.json "$(cmd swarm_status up-st "{\"swarm_id\":\"s\"}")" &&
    wait_for -t 30 has st.json "(.event == \"swarm_status\")" &&
    session_end &&
    has st.json "(.event == \"swarm_status\" and .data.request_id == \"up-st\"
        and .data.node_count == 1)"
'

test_expect_success CODEX,MQTT,JQ 'inject and attach: ack, delivery, the answer and turn_complete, each once' '
    session attach.json "$(cmd swarm_status up-att "{\"swarm_id\":\"s\"}")" &&
    attach_session=$session_pid &&
    wait_for -t 30 has attach.json "(.data.request_id == \"up-att\")" &&
    session inj.json "$(cmd swarm_status up-ist "{\"swarm_id\":\"s\"}")" \
        "$(cmd inject up-n0 "{\"swarm_id\":\"s\",\"nodes\":0,\"content\":\"over the relay\"}")" &&
    wait_for -t 90 has inj.json "(.event == \"turn_complete\")" &&
    session_end &&
    wait_for -t 30 has attach.json "(.event == \"turn_complete\")" &&
    session_pid=$attach_session && session_end &&
    for f in inj.json attach.json; do
        test "$(jq -r "select(.event == \"assistant\" and .data.node_id == 0) | .data.content" $f)" = "[turn 1] You said: over the relay" &&
        test "$(jq -c "select(.event == \"turn_complete\" and .data.swarm_id == \"s\" and .data.node_id == 0)" $f | wc -l)" = 1 ||
        return 1
    done &&
    test "$(jq -c "select(.event == \"inject_ack\" and .data.request_id == \"up-n0\" and .data.node_id == 0)" inj.json | wc -l)" = 1 &&
    test "$(jq -c "select(.event == \"inject_delivered\" and .data.request_id == \"up-n0\" and .data.node_id == 0)" inj.json | wc -l)" = 1 &&
    has attach.json "(.event == \"turn_started\" and .data.node_id == 0)" &&
    test "$(jq -c "select(.type == \"user\" and .content == \"over the relay\")" home/swarms/s/inbox/0.jsonl | wc -l)" = 1
'

test_expect_success CODEX,MQTT,JQ 'terminate: swarm_terminated with its request id, the worker ends' '
    session term.json "$(cmd swarm_terminate up-term "{\"swarm_id\":\"s\"}")" &&
    wait_for -t 90 has term.json "(.event == \"swarm_terminated\" or .event == \"command_rejected\")" &&
    session_end &&
    has term.json "(.event == \"swarm_terminated\" and .data.request_id == \"up-term\")" &&
    wait_for -t 60 exited "$worker_pid" &&
    ! has term.json "(.data.request_id == \"up-term\" and (.event | IN(\"swarm_status\", \"swarm_terminate_progress\", \"queue_updated\", \"swarm_terminated\") | not))"
'

test_done
