#!/bin/sh
test_description='a partial line left by another writer is sealed before the next record

Someone who is not the stream'"'"'s writer (a script, an editor, a writer that
died mid-write on another node) leaves a line without its newline at the
end of an inbox.  The writer that holds the stream open must seal it with
a newline before it appends, so that the next record is not glued to it.'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

test_require_component JQ jq --version
router_trap
inbox=$CODESWARM_HOME/swarms/s/inbox/0.jsonl

# the prompts of the inbox that parse as records
contents () {
    codeswarm-mailbox follow --from-start --timeout 0 "$inbox" 2>/dev/null |
    jq -r "select(.type == \"user\") | .content"
}

test_expect_success JQ 'a swarm of one node, a router that holds its inbox open' '
    codeswarm-mailbox append --type worker_started s/outbox/0 "{\"node\":0,\"host\":\"h\",\"pid\":1,\"job_id\":null}" &&
    router_start &&
    codeswarm send s 0 "before" &&
    test "$(contents)" = before
'

test_expect_success JQ 'a partial line planted at the end, then a send through the router' '
    printf "{\"v\":1,\"seq\":7,\"type\":\"user\",\"content\":\"planted" >>"$inbox" &&
    codeswarm send s 0 "after" >out &&
    grep "^n0 " out &&
    printf "before\nafter\n" >expect &&
    contents >actual &&
    test_cmp expect actual
'

test_expect_success JQ 'the planted fragment is a corrupt line of its own' '
    test_expect_code 1 codeswarm-mailbox check "$inbox" >check.out 2>&1 &&
    test "$(grep -c "corrupt\|torn" check.out)" = 1 &&
    test "$(tail -c 1 "$inbox" | od -An -c | tr -d " ")" = "\\n"
'

test_expect_success JQ 'the router keeps sealing: a second fragment, two sends' '
    printf "half a line" >>"$inbox" &&
    codeswarm send s 0 "third" &&
    codeswarm send s 0 "fourth" &&
    printf "before\nafter\nthird\nfourth\n" >expect &&
    contents >actual &&
    test_cmp expect actual
'

test_done
