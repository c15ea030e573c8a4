#!/bin/sh
test_description='codeswarm top: a live view of the nodes, in a terminal (tmux) and as plain text'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-term.sh"

codex_testbed_setup
term_setup

# rows ID K: the lines of the screen that show node K of swarm ID
rows () {
	term_screen | grep -c "^ *$1  *n$2 "
}

test_expect_success 'usage errors' '
	test_expect_code 2 codeswarm top --bogus 2>err &&
	grep "unknown option .--bogus." err &&
	test_expect_code 2 codeswarm top a b 2>err &&
	grep "unexpected argument .b." err &&
	test_expect_code 1 codeswarm top nosuch 2>err &&
	grep "no swarm .nosuch." err
'

test_expect_success 'no running swarm, as plain text' '
	codeswarm top >out &&
	grep "^no running swarms in " out
'

test_expect_success CODEX 'a swarm of two nodes after a turn, as plain text' '
	codeswarm launch --local --nodes 2 --name top >/dev/null 2>&1 &&
	codeswarm send top all "hello top" >/dev/null &&
	wait_for -t 60 swarm_status_is top .turns 2 &&
	codeswarm top >out &&
	head -1 out | grep "^SWARM  *NODE  *STATE  *TURN  *AGE  *TOKENS  *APPR  *LAST ANSWER$" &&
	grep "^top  *n0  *idle  *1  *[0-9]*s  *[1-9][0-9]*  *0  *\\[turn 1\\] You said: hello top$" out &&
	grep "^top  *n1  *idle  *1  " out &&
	test $(wc -l <out) = 3
'

test_expect_success CODEX,TMUX 'on a terminal: one row per node, refreshed in place' '
	test_when_finished "term_stop" &&
	term_start "codeswarm top top" &&
	wait_for -t 30 term_shows "^top  *n1  *idle " &&
	codeswarm send top 0 "SLOW: 400" >/dev/null &&
	wait_for -t 60 term_shows "^top  *n0  *working  *2 " &&
	wait_for -t 60 term_shows "^top  *n0  *working  *2  .*  w0 w1 w2" &&
	test "$(rows top 0)" = 1 && test "$(rows top 1)" = 1 &&
	term_screen >screen1 &&
	grep "^codeswarm top - 1 swarm, 2 nodes" screen1 &&
	grep "a attach  y approve  n decline  i interrupt  q quit" screen1
'

test_expect_success CODEX,TMUX 'i interrupts the selected node' '
	test_when_finished "term_stop" &&
	term_start "codeswarm top top" &&
	wait_for -t 30 term_shows "^top  *n0  *working " &&
	term_keys i &&
	wait_for -t 30 term_shows "^interrupt: " &&
	wait_for -t 60 term_shows "^top  *n0  *idle " &&
	term_keys q &&
	wait_for -t 10 term_shows "^\\[exit 0\\]"
'

test_expect_success CODEX,TMUX 'y answers the approval request of the selected node' '
	test_when_finished "term_stop" &&
	term_start "codeswarm top top" &&
	wait_for -t 30 term_shows "^top  *n1  *idle " &&
	codeswarm send top 1 "ESCALATE: echo approved-by-top" >/dev/null &&
	wait_for -t 60 term_shows "^top  *n1  *approval  *2  .*  1  " &&
	term_keys n &&
	term_keys Down &&
	term_keys y &&
	wait_for -t 30 term_shows "^accept: " &&
	wait_for -t 60 term_shows "^top  *n1  *idle  *2  .*  0  " &&
	term_screen >screen &&
	! grep "^accept: failed" screen &&
	jq -r "select(.type == \"approval_resolved\") | .decision" \
		"$(swarm_dir top)/outbox/1.jsonl" >decisions &&
	echo accept >expect &&
	test_cmp expect decisions
'

test_expect_success CODEX,TMUX 'a attaches to the selected node; Ctrl-C comes back to top' '
	test_when_finished "term_stop" &&
	term_start "codeswarm top top" &&
	wait_for -t 30 term_shows "^top  *n1  *idle " &&
	term_keys Down &&
	term_keys a &&
	wait_for -t 30 term_shows "^attached to swarm top node 1: Ctrl-C comes back to top" &&
	wait_for -t 30 term_shows "^\\[n1\\] -- turn completed" &&
	term_screen >screen &&
	! grep "^\\[n0\\]" screen &&
	term_keys C-c &&
	wait_for -t 30 term_shows "^detached from swarm top node 1" &&
	term_shows "^SWARM  *NODE  *STATE" &&
	term_keys q &&
	wait_for -t 10 term_shows "^\\[exit 0\\]"
'

test_expect_success CODEX,TMUX 'launch on a terminal: a line per node, updated in place' '
	test_when_finished "term_stop; codeswarm cancel tl >/dev/null 2>&1 || :" &&
	term_start "codeswarm launch --local --nodes 3 --name tl" &&
	wait_for -t 60 term_shows "^\\[exit " &&
	term_screen >screen &&
	cat screen &&
	grep "^\\[exit 0\\]" screen &&
	for k in 0 1 2; do
		test "$(grep -c "^node $k: " screen)" = 1 &&
		grep "^node $k: ready (thread [0-9a-f-]*)$" screen || return 1
	done &&
	! grep "worker started" screen &&
	! grep "waiting" screen &&
	grep "^swarm tl: 3/3 nodes ready$" screen
'

test_expect_success CODEX 'launch into a pipe: a new line for each change, as before' '
	codeswarm launch --local --nodes 1 --name tp 2>err >/dev/null &&
	test_when_finished "codeswarm cancel tp >/dev/null 2>&1 || :" &&
	grep "^node 0: worker started on " err &&
	grep "^node 0: ready (thread " err &&
	! grep "$(printf "\\033")" err
'

test_expect_success CODEX 'no worker of this test is left' '
	codeswarm cancel top --grace 20s >/dev/null
'

test_done
