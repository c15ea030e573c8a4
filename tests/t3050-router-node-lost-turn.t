#!/bin/sh
test_description='router: a turn in flight on a lost node ends with node_lost, once'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

codex_testbed_setup
router_trap

# events of the router's log: NAME on node K of swarm lt, as jq FILTER
events () {
	jq -c "select(.event == \"$1\" and .data.swarm_id == \"lt\"
	              and .data.node_id == $2) | .data | $3" \
		"$CODESWARM_HOME/router/events.jsonl"
}
event_count () {
	test "$(events "$1" "$2" . | wc -l)" -ge "$3"
}
# the seq of the first event NAME of node K in the router's log
event_seq () {
	jq -r "select(.event == \"$1\" and .data.swarm_id == \"lt\"
	              and .data.node_id == $2) | .seq" \
		"$CODESWARM_HOME/router/events.jsonl" | head -n 1
}

# node K's codex said turn/completed
node_turn_completed () {
	test "$(node_count "$1" "$2" ".type == \"rpc\" and
		.msg.method == \"turn/completed\"")" -ge 1
}

# a killed worker is restarted only after an hour: node 1 stays down
test_expect_success CODEX 'a local swarm of two nodes, a router' '
	cat >lt.yaml <<-\EOT &&
	worker:
	  heartbeat: 1s
	  restart_backoff_min: 1h
	  restart_backoff_max: 1h
	EOT
	codeswarm launch --local --nodes 2 --name lt --config lt.yaml \
		>out 2>err &&
	grep "swarm lt: 2/2 nodes ready" err &&
	router_start --node-lost-after 4
'

test_expect_success CODEX 'node 1 dies mid-turn: its turn fails at once, reason node_lost' '
	codeswarm send lt 1 "SLOW: 400" >sent &&
	inj=$(sed -n "s/^n1 //p" sent) &&
	wait_for -t 60 event_count turn_started 1 1 &&
	tid=$(events turn_started 1 .turn_id | tr -d "\"") &&
	w=$(node_worker_pid lt 1) && c=$(node_codex_pid lt 1) &&
	test -n "$c" &&
	kill -KILL $w $c &&
	wait_for -t 60 event_count turn_complete 1 1 &&
	events turn_complete 1 . >tc &&
	test_line_count = 1 tc &&
	jq -e --arg t "$tid" --arg i "$inj" ".turn_id == \$t and
		.injection_id == \$i and .status == \"failed\" and
		.reason == \"node_lost\" and .error.code == \"node_lost\"" tc &&
	test "$(events node_lost 1 . | wc -l)" = 1 &&
	test "$(event_seq node_lost 1)" -lt "$(event_seq turn_complete 1)" &&
	test "$(events node_lost 0 . | wc -l)" = 0
'

test_expect_success CODEX 'node 0 stops mid-turn and comes back: one turn_complete' '
	codeswarm send lt 0 "SLOW: 30" >sent &&
	wait_for -t 60 event_count turn_started 0 1 &&
	tid=$(events turn_started 0 .turn_id | tr -d "\"") &&
	w=$(node_worker_pid lt 0) && c=$(node_codex_pid lt 0) &&
	kill -STOP $w $c &&
	wait_for -t 60 event_count turn_complete 0 1 &&
	kill -CONT $w $c &&
	events turn_complete 0 . >tc &&
	jq -e --arg t "$tid" ".turn_id == \$t and .status == \"failed\" and
		.reason == \"node_lost\"" tc &&
	wait_for -t 60 event_count node_recovered 0 1 &&
	wait_for -t 60 node_turn_completed lt 0 &&
	codeswarm send lt 0 "hello again" &&
	wait_for -t 60 event_count turn_complete 0 2 &&
	events turn_complete 0 . >tc &&
	test_line_count = 2 tc &&
	test "$(jq -r --arg t "$tid" "select(.turn_id == \$t) | .status" tc)" = failed &&
	jq -e "select(.turn_id != \"$tid\") | .status == \"completed\"" tc
'

test_expect_success CODEX 'cancel' '
	router_kill &&
	codeswarm cancel lt >out &&
	grep "swarm lt: cancelled" out
'

test_done
