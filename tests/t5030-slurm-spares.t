#!/bin/sh
test_description='codeswarm launch --spares on the Slurm test bed: a lost node moves to a spare'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"
. "$CODESWARM_SRC_DIR/tests/lib-bedhost.sh"

codex_testbed_setup
slurm_bed_setup
router_trap

# several runs may share the test bed
sp=spare-$$ mt=spmt-$$
node_started () {
	node_count ${sw:-$sp} "$1" '.type == "worker_started"'
}
node_ready_on_other () { # K HOST: K's newest worker is ready, not on HOST
	test "$(node_host "$1")" != "$2" &&
	test "$(jq -r 'select(.type == "worker_started" or .type == "ready")
	               | .type' "$(swarm_dir ${sw:-$sp})/outbox/$1.jsonl" |
	        tail -n 1)" = ready
}
answers () { # K TEXT
	node_texts $sp "$1" | grep -c -F -- "$2"
}
answered () {
	test "$(answers "$1" "$2")" -ge 1
}

# node K's worker accepted injection INJ (its turn started)
test_have_record () { # K INJ
	test "$(node_count ${sw:-$sp} "$1" ".type == \"inject_accepted\"
		and .injection_id == \"$2\"")" -ge 1
}
events_turn_started_for () { # INJ
	test "$(events turn_started "select(.injection_id == \"$1\")" |
		wc -l)" -ge 1
}
heartbeats () { # K
	node_count ${sw:-$sp} "$1" '.type == "heartbeat"'
}
more_heartbeats () { # K N
	test "$(heartbeats "$1")" -ge "$2"
}

test_expect_success 'a configuration with a short heartbeat' '
	cat >sp.yaml <<-\EOT
	worker:
	  heartbeat: 1s
	router:
	  node_lost_after: 5s
	EOT
'

test_expect_success SLURM,CODEX 'two nodes and a spare: the spare starts no agent' '
	codeswarm launch --nodes 2 --spares 1 --name $sp --config "$PWD/sp.yaml" \
		>out 2>err &&
	grep "swarm $sp: 2/2 nodes ready" err &&
	grep -e "--no-kill" "$(swarm_dir $sp)/job.sbatch" &&
	grep -e "--nodes=3" "$(swarm_dir $sp)/job.sbatch" &&
	test "$(swarm_json $sp .spares)" = 1 &&
	test "$(swarm_json $sp .nodes)" = 2 &&
	jobid=$(swarm_json $sp .job_id) &&
	squeue --json | jq -e ".jobs[] | select(.job_id == $jobid)
		| .node_count == 3" &&
	test ! -e "$(swarm_dir $sp)/outbox/2.jsonl" &&
	test "$(node_started 0)" = 1 && test "$(node_started 1)" = 1 &&
	test "$(node_host 0)" != "$(node_host 1)"
'

test_expect_success SLURM,CODEX 'a first prompt on both nodes' '
	codeswarm send $sp all "alpha" &&
	wait_for -t 60 answered 0 "You said: alpha" &&
	wait_for -t 60 answered 1 "You said: alpha"
'

test_expect_success SLURM,CODEX,BEDROOT 'node 1 dies idle: its index moves to the spare, node 0 is untouched' '
	w0=$(node_worker 0) && h0=$(node_host 0) && h1=$(node_host 1) &&
	test_when_finished "slurmd_restore $h1" &&
	t_kill=$(sharness_now_) &&
	host_kill $h1 1 &&
	wait_for -t 60 node_ready_on_other 1 $h1 &&
	say_elapsed "node 1 ready on the spare" "$t_kill" &&
	test "$(node_host 1)" != "$h0" &&
	test "$(swarm_event_count $sp node_moved)" = 1 &&
	jq -e "select(.type == \"node_moved\") | .node == \"1\"
	       and .from == \"$h1\" and .to == \"$(node_host 1)\"" \
		"$(swarm_dir $sp)/outbox/swarm.jsonl" &&
	test "$(node_worker 0)" = "$w0" && kill -0 "$w0" &&
	test "$(node_started 0)" = 1 &&
	jq -e "select(.type == \"ready\") | .resumed" \
		"$(swarm_dir $sp)/outbox/1.jsonl" | tail -n 1 | grep true
'

test_expect_success SLURM,CODEX,BEDROOT 'node 1 answers from the spare, with its history' '
	codeswarm send $sp 1 "TURNS?" &&
	wait_for -t 60 answered 1 "I see 2 user turns" &&
	test "$(answers 1 "You said: alpha")" = 1 &&
	test "$(node_worker 0)" = "$w0"
'

test_expect_success SLURM,CODEX,BEDROOT 'the dead host coming back brings no second worker for node 1' '
	test -z "$(ls killed.* 2>/dev/null)" &&
	wait_for -t 60 slurmd_responding $h1 &&
	hb=$(heartbeats 1) &&
	wait_for -t 60 more_heartbeats 1 $((hb + 3)) &&
	test "$(node_started 1)" = 2 &&
	test "$(swarm_event_count $sp node_moved)" = 1 &&
	test "$(pgrep -f "^[^ ]*codeswarm-worker --swarm $sp" | wc -l)" = 2 &&
	test "$(node_worker 0)" = "$w0" && kill -0 "$w0"
'

test_expect_success SLURM,CODEX 'cancel' '
	codeswarm cancel $sp >out &&
	grep "swarm $sp: cancelled" out &&
	wait_for -t 60 slurm_name_done $sp
'

# the router's events NAME of swarm mt's node 0, as jq FILTER
events () {
	jq -c "select(.event == \"$1\" and .data.swarm_id == \"$mt\"
	              and .data.node_id == 0) | .data | $2" \
		"$CODESWARM_HOME/router/events.jsonl"
}
lost_turn_reported () { # INJ
	test "$(events turn_complete "select(.injection_id == \"$1\"
		and .status == \"failed\" and .reason == \"node_lost\")" |
		wc -l)" = 1
}
retry_started () { # INJ
	test "$(node_count $mt 0 ".type == \"inject_accepted\"
		and .retry_of == \"$1\"")" -ge 1
}

test_expect_success SLURM,CODEX 'one node and a spare, a router' '
	codeswarm launch --nodes 1 --spares 1 --name $mt --config "$PWD/sp.yaml" \
		>out 2>err &&
	grep "swarm $mt: 1/1 nodes ready" err &&
	router_start --node-lost-after 5
'

test_expect_success SLURM,CODEX,BEDROOT 'node 0 dies mid-turn: the turn fails node_lost and runs again once on the spare' '
	sw=$mt &&
	codeswarm send --retry-on-loss $mt 0 "SLOW: 60" >sent &&
	inj=$(sed -n "s/^n0 //p" sent) &&
	wait_for -t 60 test_have_record 0 "$inj" &&
	h0=$(node_host 0) &&
	test_when_finished "slurmd_restore $h0" &&
	t_kill=$(sharness_now_) &&
	host_kill $h0 0 &&
	wait_for -t 60 node_ready_on_other 0 $h0 &&
	say_elapsed "node 0 ready on the spare" "$t_kill" &&
	wait_for -t 60 lost_turn_reported "$inj" &&
	wait_for -t 60 retry_started "$inj" &&
	test "$(node_count $mt 0 ".type == \"inject_retried\"")" = 1 &&
	test "$(node_count $mt 0 ".type == \"inject_accepted\"
		and .injection_id == \"$inj-retry\"")" = 1 &&
	wait_for -t 60 events_turn_started_for "$inj-retry"
'

test_expect_success SLURM,CODEX 'cancel the second swarm' '
	router_kill &&
	codeswarm cancel $mt >out &&
	grep "swarm $mt: cancelled" out &&
	wait_for -t 60 slurm_name_done $mt
'

test_done
