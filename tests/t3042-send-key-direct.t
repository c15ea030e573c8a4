#!/bin/sh
test_description='codeswarm send --key: idempotent with a router, without one, and across the two

A retry of a keyed send after the router died goes to the mailbox
directly; it must not inject the prompt a second time.'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

test_require_component JQ jq --version
router_trap
inbox=$CODESWARM_HOME/swarms/s/inbox/0.jsonl

# records of the inbox with the content $1
count_content () {
    jq -r "select(.type == \"user\") | .content" "$inbox" | grep -c -x "$1"
}

test_expect_success 'a swarm of one node' '
    codeswarm-mailbox append --type worker_started s/outbox/0 "{\"node\":0,\"host\":\"h\",\"pid\":1,\"job_id\":null}" &&
    codeswarm-mailbox append --type note s/inbox/0 "{\"x\":1}"
'

test_expect_success 'without a router: the same key twice sends once' '
    codeswarm send s 0 "first prompt" --key k1 >out1 &&
    grep "^n0 key-" out1 &&
    test_expect_code 1 codeswarm send s 0 "first prompt" --key k1 >out2 2>err2 &&
    grep "used already" err2 &&
    test_must_be_empty out2 &&
    test "$(count_content "first prompt")" = 1
'

test_expect_success 'with a router, then without: the retry is recognised' '
    router_start &&
    codeswarm send s 0 "second prompt" --key k2 >out3 &&
    grep "^n0 key-" out3 &&
    router_kill TERM &&
    test_expect_code 1 codeswarm send s 0 "second prompt" --key k2 2>err4 &&
    grep "used already" err4 &&
    grep "$(cut -d" " -f2 out3)" err4 &&
    test "$(count_content "second prompt")" = 1
'

test_expect_success 'without a router, then with one: the router knows the key' '
    codeswarm send s 0 "third prompt" --key k3 >out5 &&
    grep "^n0 key-" out5 &&
    router_start &&
    test_expect_code 1 codeswarm send s 0 "third prompt" --key k3 >out6 2>err6 &&
    grep "used already" err6 &&
    test_must_be_empty out6 &&
    test "$(count_content "third prompt")" = 1 &&
    test_expect_code 1 codeswarm send s 0 "third prompt" --key k3 2>err7 &&
    grep "used already" err7 &&
    router_kill TERM &&
    test "$(count_content "third prompt")" = 1
'

test_expect_success 'sends without a key are never deduplicated' '
    codeswarm send s 0 "plain" &&
    codeswarm send s 0 "plain" &&
    test "$(count_content plain)" = 2
'

test_done
