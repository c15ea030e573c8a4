#!/bin/sh
test_description='codeswarm attach, readable: each answer once, whole lines per node, the latest turn first, tokens once'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"
. "$CODESWARM_SRC_DIR/tests/lib-term.sh"

term_setup

# The outboxes of swarm "w" written by hand, as a worker writes them: the
# client follows them itself (no router).
CODESWARM_NO_ROUTER=1
export CODESWARM_NO_ROUTER

rec () { # NODE TYPE JSON
	codeswarm-mailbox append --type "$2" w/outbox/$1 "$3" >/dev/null
}
rpc () { # NODE METHOD PARAMS
	rec $1 rpc "{\"msg\":{\"jsonrpc\":\"2.0\",\"method\":\"$2\",\"params\":$3}}"
}
start_node () { # NODE
	rec $1 worker_started "{\"node\":$1,\"host\":\"h$1\",\"pid\":1,\"job_id\":null}" &&
	rec $1 ready "{\"thread_id\":\"t$1\",\"resumed\":false}"
}
turn_start () { # NODE TURN
	rpc $1 turn/started "{\"threadId\":\"t$1\",\"turn\":{\"id\":\"u$1-$2\",\"status\":\"inProgress\",\"items\":[]}}" &&
	rpc $1 item/started "{\"item\":{\"type\":\"agentMessage\",\"id\":\"m$1-$2\",\"text\":\"\"},\"threadId\":\"t$1\",\"turnId\":\"u$1-$2\"}"
}
delta () { # NODE TURN TEXT
	rpc $1 item/agentMessage/delta "{\"threadId\":\"t$1\",\"turnId\":\"u$1-$2\",\"itemId\":\"m$1-$2\",\"delta\":\"$3\"}"
}
message () { # NODE TURN TEXT
	rpc $1 item/completed "{\"item\":{\"type\":\"agentMessage\",\"id\":\"m$1-$2\",\"text\":\"$3\"},\"threadId\":\"t$1\",\"turnId\":\"u$1-$2\"}"
}
tokens () { # NODE TURN TOTAL
	rpc $1 thread/tokenUsage/updated "{\"threadId\":\"t$1\",\"turnId\":\"u$1-$2\",\"tokenUsage\":{\"total\":{\"totalTokens\":$3},\"last\":{\"totalTokens\":$3}}}"
}
turn_end () { # NODE TURN
	rpc $1 turn/completed "{\"threadId\":\"t$1\",\"turn\":{\"id\":\"u$1-$2\",\"status\":\"completed\",\"items\":[]}}"
}

test_expect_success 'an answer is printed once, with a token count between its text and its final message' '
	start_node 0 &&
	turn_start 0 1 &&
	delta 0 1 "[turn " && delta 0 1 "1] You said: " && delta 0 1 "hello" &&
	tokens 0 1 146 &&
	message 0 1 "[turn 1] You said: hello" &&
	turn_end 0 1 &&
	timeout 20 codeswarm attach w --since 0 --turns 1 >out &&
	cat out &&
	test "$(grep -c "You said: hello" out)" = 1 &&
	grep "^\[n0\] \[turn 1\] You said: hello$" out &&
	grep "^\[n0\] -- tokens: 146 total, 146 last$" out &&
	grep "^\[n0\] -- turn completed$" out
'

test_expect_success 'the token line is not repeated when a resumed thread reports the same count' '
	rec 0 app_server_restarted "{\"attempt\":1}" &&
	rec 0 ready "{\"thread_id\":\"t0\",\"resumed\":true}" &&
	tokens 0 1 146 &&
	turn_start 0 2 && delta 0 2 "again" && message 0 2 "again" &&
	tokens 0 2 300 && turn_end 0 2 &&
	timeout 20 codeswarm attach w --since 0 --turns 2 >out &&
	test "$(grep -c "tokens: 146 total" out)" = 1 &&
	test "$(grep -c "tokens: 300 total" out)" = 1
'

test_expect_success 'without --since, attach shows each node latest turn, then follows' '
	start_node 1 &&
	turn_start 1 1 && delta 1 1 "one\\ntwo" && message 1 1 "one\\ntwo" &&
	turn_end 1 1 &&
	timeout 20 codeswarm attach w --turns 2 >out &&
	cat out &&
	grep "^\[n0\] again$" out &&
	! grep "You said: hello" out &&
	grep "^\[n1\] one$" out &&
	grep "^\[n1\] two$" out &&
	test "$(grep -n "^\[n0\] -- turn completed" out | cut -d: -f1)" -lt \
	     "$(grep -n "^\[n1\] -- turn started" out | cut -d: -f1)"
'

test_expect_success '--node shows one node' '
	timeout 20 codeswarm attach w --node 1 --turns 1 >out &&
	grep "^\[n1\] one$" out &&
	! grep "^\[n0\]" out
'

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 codeswarm attach 2>err &&
	grep "usage: codeswarm attach SWARM" err &&
	test_expect_code 2 codeswarm attach w --turns x 2>err &&
	grep "\-\-turns: .x. is not a number" err &&
	test_expect_code 2 codeswarm attach w --since -1 2>err &&
	grep "\-\-since: .-1. is not a number" err &&
	test_expect_code 2 codeswarm attach w --bogus 2>err &&
	grep "unknown option .--bogus." err
'

test_expect_success TMUX 'two nodes streaming at once: lines are never split' '
	test_when_finished "term_stop" &&
	term_start "codeswarm attach w" &&
	wait_for -t 20 term_shows "^\\[n1\\] two$" &&
	turn_start 0 3 && turn_start 1 3 &&
	delta 0 3 "[turn " &&
	wait_for -t 20 term_shows "^\\[n0\\] \\[turn $" &&
	delta 1 3 "[turn " &&
	wait_for -t 20 term_shows "^\\[n1\\] \\[turn $" &&
	delta 0 3 "3] You said: left" &&
	wait_for -t 20 term_shows "^\\[n0\\] \\[turn 3\\] You said: left$" &&
	delta 1 3 "3] You said: right" &&
	tokens 0 3 400 &&
	message 0 3 "[turn 3] You said: left" && turn_end 0 3 &&
	message 1 3 "[turn 3] You said: right" && turn_end 1 3 &&
	wait_for -t 20 term_shows "^\\[n1\\] -- turn completed" &&
	term_screen >screen &&
	cat screen &&
	test "$(grep -c "^\\[n0\\] \\[turn 3\\] You said: left$" screen)" = 1 &&
	test "$(grep -c "^\\[n1\\] \\[turn 3\\] You said: right$" screen)" = 1 &&
	! grep "^\\[n.\\] \\[turn $" screen &&
	! grep "You said: [a-z]*\\[n" screen
'

codex_testbed_setup

test_expect_success CODEX 'the README order, with a router: send, then attach shows the answers' '
	unset CODESWARM_NO_ROUTER &&
	codeswarm launch --local --nodes 2 --name rd >/dev/null 2>&1 &&
	test_when_finished "router_kill; codeswarm cancel rd >/dev/null 2>&1 || :" &&
	router_start &&
	codeswarm send rd all "hello readme" >/dev/null &&
	wait_for -t 60 swarm_status_is rd .turns 2 &&
	timeout 30 codeswarm attach rd --turns 2 >out &&
	cat out &&
	test "$(grep -c "^\[n0\] \[turn 1\] You said: hello readme$" out)" = 1 &&
	test "$(grep -c "^\[n1\] \[turn 1\] You said: hello readme$" out)" = 1
'

test_done
