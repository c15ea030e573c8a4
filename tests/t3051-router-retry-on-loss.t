#!/bin/sh
test_description='send --retry-on-loss: a prompt cut with its node fails, and runs again once'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

codex_testbed_setup
router_trap

workers_started () {
	node_count "$1" 0 '.type == "worker_started"'
}
# records of node 0 of swarm ID of TYPE for injection INJ
for_injection () { # ID TYPE INJ
	node_count "$1" 0 ".type == \"$2\" and .injection_id == \"$3\""
}
retries_of () { # ID INJ
	node_count "$1" 0 ".type == \"inject_accepted\" and .retry_of == \"$2\""
}
# the router's events NAME of node 0 of swarm ID, as jq FILTER
events () {
	jq -c "select(.event == \"$2\" and .data.swarm_id == \"$1\"
	              and .data.node_id == 0) | .data | $3" \
		"$CODESWARM_HOME/router/events.jsonl"
}
event_count () {
	test "$(events "$1" "$2" . | wc -l)" -ge "$3"
}
# node 0 of swarm ID: a new worker (the COUNT-th) is ready
restarted () { # ID COUNT
	test "$(workers_started "$1")" -ge "$2" &&
	test "$(jq -r 'select(.type == "worker_started" or .type == "ready")
	               | .type' "$(swarm_dir "$1")/outbox/0.jsonl" |
	        tail -n 1)" = ready
}

# kill node 0 of swarm ID mid-turn, as a node that dies would, while its
# supervisor is stopped; once the router has said node_lost COUNT times,
# let the supervisor restart the worker (the node's next home)
lose_node () { # ID COUNT
	ln_w_=$(node_worker_pid "$1" 0) &&
	ln_s_=$(awk '{ print $4 }' "/proc/$ln_w_/stat") &&
	ln_c_=$(pgrep -P "$ln_w_") &&
	kill -STOP "$ln_s_" &&
	kill -KILL "$ln_w_" $ln_c_ &&
	wait_for -t 60 event_count "$1" node_lost "$2"
	ln_rc_=$?
	kill -CONT "$ln_s_"
	return $ln_rc_
}
turning () { # ID N: the N-th turn_started event
	event_count "$1" turn_started "$2"
}

test_expect_success CODEX 'a local swarm, a router' '
	cat >rl.yaml <<-\EOT &&
	worker:
	  heartbeat: 1s
	  restart_backoff_min: 1s
	  restart_backoff_max: 1s
	EOT
	codeswarm launch --local --nodes 1 --name rl --config rl.yaml \
		>out 2>err &&
	grep "swarm rl: 1/1 nodes ready" err &&
	router_start --node-lost-after 3
'

test_expect_success CODEX 'send --retry-on-loss: the cut turn fails node_lost, then runs again' '
	codeswarm send --retry-on-loss rl 0 "SLOW: 400" >sent &&
	inj=$(sed -n "s/^n0 //p" sent) &&
	grep -q "\"retry_on_loss\":true" "$(swarm_dir rl)/inbox/0.jsonl" &&
	wait_for -t 60 turning rl 1 &&
	lose_node rl 1 &&
	events rl turn_complete . >tc &&
	test_line_count = 1 tc &&
	jq -e --arg i "$inj" ".injection_id == \$i and .status == \"failed\"
		and .reason == \"node_lost\"" tc &&
	wait_for -t 60 restarted rl 2 &&
	wait_for -t 60 turning rl 2 &&
	test "$(retries_of rl "$inj")" = 1 &&
	test "$(for_injection rl inject_retried "$inj")" = 1 &&
	node_count rl 0 ".type == \"inject_accepted\" and .retry_of == \"$inj\"
		and .injection_id == \"$inj-retry\"" >n && test "$(cat n)" = 1
'

test_expect_success CODEX 'the retry cut again is not retried a second time' '
	lose_node rl 2 &&
	wait_for -t 60 restarted rl 3 &&
	test "$(retries_of rl "$inj")" = 1 &&
	test "$(for_injection rl inject_retried "$inj")" = 1 &&
	test "$(node_count rl 0 ".type == \"inject_retried\"")" = 1
'

test_expect_success CODEX 'without --retry-on-loss a cut prompt is not run again' '
	codeswarm send rl 0 "SLOW: 400" >sent &&
	inj2=$(sed -n "s/^n0 //p" sent) &&
	wait_for -t 60 turning rl 3 &&
	lose_node rl 3 &&
	wait_for -t 60 restarted rl 4 &&
	test "$(for_injection rl turn_aborted "$inj2")" = 1 &&
	test "$(retries_of rl "$inj2")" = 0 &&
	test "$(node_count rl 0 ".type == \"inject_retried\"")" = 1
'

test_expect_success CODEX 'worker.retry_on_loss: every cut prompt runs again once' '
	router_kill &&
	codeswarm cancel rl >out &&
	cat >rc.yaml <<-\EOT &&
	worker:
	  heartbeat: 1s
	  restart_backoff_min: 1s
	  restart_backoff_max: 1s
	  retry_on_loss: true
	EOT
	codeswarm launch --local --nodes 1 --name rc --config rc.yaml \
		>out 2>err &&
	grep "swarm rc: 1/1 nodes ready" err &&
	router_start --node-lost-after 3 &&
	codeswarm send rc 0 "SLOW: 400" >sent &&
	inj=$(sed -n "s/^n0 //p" sent) &&
	wait_for -t 60 turning rc 1 &&
	lose_node rc 1 &&
	wait_for -t 60 restarted rc 2 &&
	test "$(retries_of rc "$inj")" = 1
'

test_expect_success CODEX 'cancel' '
	router_kill &&
	codeswarm cancel rc >out &&
	grep "swarm rc: cancelled" out
'

test_done
