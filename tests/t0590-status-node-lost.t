#!/bin/sh
test_description='codeswarm status and send on a local swarm that loses a node'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

codex_testbed_setup
router_trap

# kill -9 node K's worker and its codex, as a node that dies would
node_kill () {
	nk_w_=$(node_worker_pid "$1" "$2") &&
	nk_c_=$(pgrep -P "$nk_w_") &&
	test -n "$nk_c_" &&
	kill -KILL "$nk_w_" $nk_c_ &&
	wait_for pid_gone "$nk_w_" &&
	for p in $nk_c_; do
		wait_for pid_gone "$p" || return 1
	done
}

# node K of swarm ID has been silent for more than SECS (a jq expression)
silent_more_than () {
	test "$(swarm_status "$1" ".node_states[$2].silent_for > $3")" = true
}

inbox_lines () {
	cat "$(swarm_dir "$1")"/inbox/*.jsonl 2>/dev/null | wc -l
}

# the supervisor restarts a killed worker after worker.restart_backoff_min:
# an hour, so that the node stays down while the test looks at it
test_expect_success 'a configuration with a short heartbeat' '
	cat >nl.yaml <<-\EOT
	worker:
	  heartbeat: 1s
	  restart_backoff_min: 1h
	  restart_backoff_max: 1h
	router:
	  node_lost_after: 6s
	EOT
'

test_expect_success CODEX 'a local swarm of two nodes is ready, no node lost' '
	codeswarm launch --local --nodes 2 --name nl --config nl.yaml \
		>out 2>err &&
	grep "swarm nl: 2/2 nodes ready" err &&
	test "$(swarm_status nl .lost)" = 0 &&
	test "$(swarm_status nl .ready)" = 2 &&
	codeswarm status nl >st &&
	! grep lost st
'

test_expect_success CODEX 'a node whose worker and codex die shows as lost' '
	w0=$(node_worker_pid nl 0) &&
	node_kill nl 1 &&
	wait_for -t 60 swarm_status_is nl ".node_states[1].phase" lost &&
	codeswarm status nl --json >st.json &&
	jq -e ".[0].lost == 1 and .[0].ready == 1" st.json &&
	jq -e ".[0].node_states[0].phase == \"ready\"" st.json &&
	jq -e ".[0].node_states[1].silent_for > 6" st.json &&
	jq -e ".[0].node_states[1] | .lost_since - .last_heard - 6
	       | . > -0.001 and . < 0.001" st.json &&
	codeswarm status nl >st &&
	grep "^nl  *running, n1 lost (silent [0-9]*s)  *local  *1/2 " st &&
	codeswarm status >st.all &&
	grep "^nl  *running, n1 lost (silent [0-9]*s) " st.all &&
	test "$(node_worker_pid nl 0)" = "$w0" &&
	kill -0 "$w0"
'

test_expect_success CODEX 'the lost node stays lost, for longer' '
	s1=$(swarm_status nl ".node_states[1].silent_for") &&
	wait_for -t 30 silent_more_than nl 1 "$s1 + 1" &&
	test "$(swarm_status nl ".node_states[1].phase")" = lost
'

test_expect_success CODEX 'send to an ended swarm is refused, nothing is written' '
	codeswarm cancel nl >out &&
	grep "swarm nl: cancelled" out &&
	test "$(swarm_status nl .lost)" = 0 &&
	codeswarm status nl >st &&
	! grep lost st &&
	before=$(inbox_lines nl) &&
	test_expect_code 1 codeswarm send nl all "anyone there" >out 2>err &&
	grep "swarm .nl. has ended (cancelled); nothing was sent" err &&
	test_must_be_empty out &&
	test "$(inbox_lines nl)" = "$before"
'

test_expect_success CODEX 'through a router too' '
	router_start &&
	before=$(inbox_lines nl) &&
	test_expect_code 1 codeswarm send nl 0 "anyone there" >out 2>err &&
	grep "swarm_ended: swarm \"nl\" has ended (cancelled); nothing was sent" err &&
	test_must_be_empty out &&
	test "$(inbox_lines nl)" = "$before" &&
	router_kill
'

test_done
