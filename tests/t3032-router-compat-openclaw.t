#!/bin/bash
test_description='the original OpenClaw skill'"'"'s flow as a scripted session: inject to all, every delta and answer has its text'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

# The OpenClaw skill (integrations/openclaw/skill/) sends commands with a
# "timestamp" in the envelope: inject with nodes "all", swarm_status; its
# handler streams "[node <node_id>] <content>" for every assistant_delta
# and assistant event, ends the stream at turn_complete and replies with
# command_rejected's reason.

codex_testbed_setup
test_require_component JQ jq --version
unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID
router_trap

# oc COMMAND REQUEST_ID PAYLOAD: a command as the OpenClaw client builds it
oc () {
    echo "{\"protocol\":\"codeswarm.router.v1\",\"type\":\"command\",\"timestamp\":\"$(date -u +%Y-%m-%dT%H:%M:%S.000Z)\",\"command\":\"$1\",\"request_id\":\"$2\",\"payload\":$3}"
}

# what the skill's handler streams
stream () {
    jq -r 'select(.event == "assistant_delta" or .event == "assistant")
           | "[node \(.data.node_id)] \(.data.content)"' "$1"
}

test_expect_success CODEX,JQ 'two workers and a router' '
    codex_workers_start claw 2 &&
    wait_for -t 60 codex_workers_ready claw 2 &&
    router_start
'

test_expect_success CODEX,JQ 'inject to all: every delta and answer carries its text' '
    codeswarm-client rpc --timeout 90 --until turn_complete --count 2 \
        "$(oc inject 0d7a "{\"swarm_id\":\"claw\",\"nodes\":\"all\",\"content\":\"hello claw\"}")" >oc.json &&
    stream oc.json >streamed &&
    test -s streamed &&
    ! grep -e "undefined" -e "] null$" streamed &&
    for k in 0 1; do
        grep -x "\[node $k\] \[turn 1\] You said: hello claw" streamed &&
        test "$(jq -r "select(.event == \"assistant_delta\" and .data.node_id == $k) | .data.content" oc.json | tr -d "\n")" = "[turn 1] You said: hello claw" &&
        test "$(jq -r "select(.event == \"turn_complete\" and .data.node_id == $k) | .data.swarm_id" oc.json)" = claw ||
        return 1
    done
'

test_expect_success CODEX,JQ 'status, and a rejection the handler can show' '
    codeswarm-client rpc --until swarm_status "$(oc swarm_status 0d7b "{\"swarm_id\":\"claw\"}")" >st.json &&
    jq -e -n "any(inputs; (.event == \"swarm_status\") and (.data.node_count == 2 and .data.status == \"running\"))" st.json &&
    codeswarm-client rpc --until command_rejected \
        "$(oc inject 0d7c "{\"swarm_id\":\"gone\",\"nodes\":\"all\",\"content\":\"x\"}")" >rej.json &&
    jq -e -n "any(inputs; (.event == \"command_rejected\") and (.data.request_id == \"0d7c\" and (.data.reason | test(\"gone\"))))" rej.json
'

test_expect_success CODEX,JQ 'stop' '
    codex_workers_stop &&
    router_kill TERM
'

test_done
