#!/bin/bash
test_description='codeswarm-router commands: every bad command is rejected with its code; approvals persist'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

router_trap
test_require_component JQ jq --version

P='"protocol":"codeswarm.router.v1","type":"command"'

test_expect_success 'setup: a swarm of two nodes' '
    codeswarm-mailbox append --type worker_started s1/outbox/0 \
        "{\"node\":0,\"host\":\"h\",\"pid\":1,\"job_id\":\"j\"}" &&
    codeswarm-mailbox append --type worker_started s1/outbox/1 \
        "{\"node\":1,\"host\":\"h\",\"pid\":2,\"job_id\":\"j\"}"
'

test_expect_success JQ 'the bad command corpus: one command_rejected each, with its code' '
    cut -f2- "$TEST_SRC_DIR/golden/bad-commands.txt" >cmds &&
    cut -f1 "$TEST_SRC_DIR/golden/bad-commands.txt" >codes.expect &&
    codeswarm-router <cmds >out.json 2>err &&
    jq -r "select(.event == \"command_rejected\") | .data.code" out.json >codes &&
    test_cmp codes.expect codes &&
    test "$(jq -r "select(.event != \"command_rejected\") | .event" out.json | wc -l)" = 0 &&
    jq -r "select(.event == \"command_rejected\") | .data.reason" out.json >reasons &&
    ! grep -x "" reasons
'

test_expect_success JQ 'rejections keep the request id' '
    jq -r "select(.event == \"command_rejected\") | .data.request_id" out.json >ids &&
    grep -x x2 ids && grep -x x3 ids
'

test_expect_success JQ 'the router survives the corpus and still works' '
    { cat cmds; echo "{$P,\"command\":\"swarm_list\",\"request_id\":\"l\"}"; } |
        codeswarm-router >out2.json &&
    test "$(jq -r "select(.event == \"swarm_list\") | .data.swarms.s1.node_count" out2.json)" = 2
'

test_expect_success JQ 'hello lists the capabilities' '
    echo "{$P,\"command\":\"hello\",\"request_id\":\"h\"}" | codeswarm-router >h.json &&
    jq -e "select(.event == \"hello\") | .data.capabilities | index(\"inject\") and index(\"subscribe\") and index(\"approve_execution\")" h.json
'

test_expect_success JQ 'inject: one ack per node, records in the inboxes; a reused key is a duplicate' '
    {
      echo "{$P,\"command\":\"inject\",\"request_id\":\"i1\",\"payload\":{\"swarm_id\":\"s1\",\"nodes\":\"0-1\",\"content\":\"hi\",\"idempotency_key\":\"k1\"}}"
      echo "{$P,\"command\":\"inject\",\"request_id\":\"i2\",\"payload\":{\"swarm_id\":\"s1\",\"nodes\":\"all\",\"content\":\"hi\",\"idempotency_key\":\"k1\"}}"
      echo "{$P,\"command\":\"inject\",\"request_id\":\"i3\",\"payload\":{\"swarm_id\":\"s1\",\"nodes\":[1],\"content\":\"steer me\",\"mode\":\"steer\"}}"
    } | codeswarm-router >inj.json &&
    test "$(jq -r "select(.event == \"inject_ack\" and .data.request_id == \"i1\") | .data.node_id" inj.json | sort | tr "\n" " ")" = "0 1 " &&
    test "$(jq -r "select(.event == \"command_rejected\" and .data.request_id == \"i2\") | .data.code" inj.json)" = duplicate &&
    test "$(jq -r "select(.event == \"inject_ack\" and .data.request_id == \"i3\") | .data.mode" inj.json)" = steer &&
    id0=$(jq -r "select(.event == \"inject_ack\" and .data.request_id == \"i1\" and .data.node_id == 0) | .data.injection_id" inj.json) &&
    test "$(jq -r "select(.type == \"user\") | .id" home/swarms/s1/inbox/0.jsonl)" = "$id0" &&
    test "$(jq -r "select(.type == \"user\") | .mode" home/swarms/s1/inbox/1.jsonl | tr "\n" " ")" = "queue steer "
'

test_expect_success JQ 'a burst of keyed injects read at once: each acked in order, each key and audit entry written' '
    keys0=$(grep -c . home/router/idempotency.jsonl) &&
    audit0=$(grep -c "\"action\":\"inject\"" home/swarms/s1/audit.jsonl) &&
    for i in $(seq 1 20); do
        echo "{$P,\"command\":\"inject\",\"request_id\":\"b$i\",\"payload\":{\"swarm_id\":\"s1\",\"nodes\":\"0\",\"content\":\"burst $i\",\"idempotency_key\":\"burst-$i\"}}"
    done >burst &&
    echo "{$P,\"command\":\"inject\",\"request_id\":\"b0\",\"payload\":{\"swarm_id\":\"s1\",\"nodes\":\"0\",\"content\":\"again\",\"idempotency_key\":\"burst-7\"}}" >>burst &&
    echo "{$P,\"command\":\"swarm_list\",\"request_id\":\"l\"}" >>burst &&
    codeswarm-router <burst >burst.json &&
    seq 1 20 | sed "s/^/b/" >acks.expect &&
    jq -r "select(.event == \"inject_ack\") | .data.request_id" burst.json >acks &&
    test_cmp acks.expect acks &&
    test "$(jq -r "select(.data.request_id == \"b0\") | .data.code" burst.json)" = duplicate &&
    jq -r ".data.request_id" burst.json | tail -n 2 >last &&
    printf "b0\nl\n" >last.expect &&
    test_cmp last.expect last &&
    test "$(grep -c . home/router/idempotency.jsonl)" = $((keys0 + 20)) &&
    test "$(grep -c "\"action\":\"inject\"" home/swarms/s1/audit.jsonl)" = $((audit0 + 20)) &&
    test "$(jq -r "select(.type == \"user\") | .content" home/swarms/s1/inbox/0.jsonl | grep -c "^burst ")" = 20
'

test_expect_success JQ 'pending approvals: listed, offered again after a restart, answered' '
    codeswarm-mailbox append --type approval_requested s1/outbox/1 \
        "{\"approval_id\":\"n1-1-1-0\",\"rpc_id\":0,\"method\":\"item/commandExecution/requestApproval\",\"thread_id\":\"th\",\"turn_id\":\"T\",\"item_id\":\"c\",\"command\":\"make install\",\"cwd\":\"/w\",\"reason\":\"needs root\",\"available_decisions\":[\"accept\",\"decline\"]}" &&
    echo "{$P,\"command\":\"approvals_list\",\"request_id\":\"a\"}" | codeswarm-router >ap1.json &&
    test "$(jq -r "select(.event == \"approvals_list\") | .data.approvals[0].approval_id" ap1.json)" = n1-1-1-0 &&
    echo "{$P,\"command\":\"approvals_list\",\"request_id\":\"a\"}" | codeswarm-router >ap2.json &&
    test "$(jq -r "select(.event == \"approvals_list\") | .data.approvals[0].command" ap2.json)" = "make install" &&
    echo "{$P,\"command\":\"approve_execution\",\"request_id\":\"ok\",\"payload\":{\"approval_id\":\"n1-1-1-0\",\"decision\":\"decline\"}}" |
        codeswarm-router >ap3.json &&
    test "$(jq -r "select(.event == \"approval_ack\") | .data.node_id" ap3.json)" = 1 &&
    test "$(jq -r "select(.type == \"approval\") | .decision" home/swarms/s1/inbox/1.jsonl)" = decline
'

test_expect_success JQ 'the human verbs without a router: approvals and approve' '
    codeswarm approvals >list &&
    grep "n1-1-1-0" list && grep "make install" list &&
    codeswarm approve n1-1-1-0 accept &&
    test "$(jq -r "select(.type == \"approval\") | .decision" home/swarms/s1/inbox/1.jsonl | tail -n1)" = accept &&
    test_must_fail codeswarm approve nope accept 2>err &&
    grep unknown_approval err &&
    test_must_fail codeswarm approve n1-1-1-0 perhaps
'

test_expect_success JQ 'send and interrupt without a router write the inboxes' '
    codeswarm send s1 1 "direct text" >sent &&
    grep "^n1 inj-" sent &&
    test "$(jq -r "select(.type == \"user\") | .content" home/swarms/s1/inbox/1.jsonl | tail -n1)" = "direct text" &&
    codeswarm interrupt s1 all >ints &&
    test "$(wc -l <ints)" = 2 &&
    test_must_fail codeswarm send s1 5 "x"
'

test_expect_success JQ 'swarm_terminate asks every node to shut down' '
    echo "{$P,\"command\":\"swarm_terminate\",\"request_id\":\"t\",\"payload\":{\"swarm_id\":\"s1\"}}" |
        codeswarm-router >term.json &&
    test "$(jq -r "select(.event == \"swarm_status\") | .data.status" term.json)" = terminating &&
    jq -c "select(.type == \"shutdown\")" home/swarms/s1/inbox/0.jsonl | grep -q . &&
    jq -c "select(.type == \"shutdown\")" home/swarms/s1/inbox/1.jsonl | grep -q .
'

test_done
