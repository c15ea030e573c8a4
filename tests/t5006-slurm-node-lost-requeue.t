#!/bin/bash
test_description='codeswarm on the Slurm test bed: a node lost without spares, the session survives by an explicit requeue

A host of a two-node swarm dies (its slurmd, slurmstepd, worker and codex
killed); Slurm marks the node down, which requeues the job (it asked for
--requeue); the next run of the job resumes every node thread, and the
router says node_lost, job_requeued, job_started, session_resumed.'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"
. "$CODESWARM_SRC_DIR/tests/lib-bedhost.sh"

codex_testbed_setup
slurm_bed_setup
test_require_component JQ jq --version

# the swarm (and job) name of this run: several runs may share the test bed
sp=nlr-$$
attach_pid=
down_host=

cleanup_ () {
	rc_=$?
	test -n "$attach_pid" && kill "$attach_pid" 2>/dev/null
	codeswarm cancel $sp >/dev/null 2>&1
	router_kill KILL
	test -n "$down_host" && slurmd_restore "$down_host" &&
		wait_for -t 60 node_back "$down_host"
	(exit $rc_)
	sharness_die_
}
trap cleanup_ EXIT

answers () { # K TEXT
	node_texts $sp "$1" | grep -c -F -- "$2"
}
answered_once () { # K TEXT
	test "$(answers "$1" "$2")" = 1
}
# the router's events of the swarm named here, in the order given, each once
events_in_order () {
	jq -r 'select(.type == "event") | .event' events.json |
		grep -x -e job_requeued -e session_resumed -e job_started \
			-e node_lost >seen &&
	test "$(paste -s -d " " seen)" = "$*"
}
node_state_has () { # HOST WORD
	scontrol show node "$1" | grep -q "State=[A-Z+]*$2"
}
# HOST is in service again (the bed returns a registered node to service
# by itself, ReturnToService=2; else it is resumed here)
node_back () { # HOST
	if node_state_has "$1" DOWN; then
		scontrol update nodename="$1" state=resume 2>/dev/null
	fi
	! node_state_has "$1" DOWN
}

test_expect_success 'a configuration with a short heartbeat' '
	cat >nl.yaml <<-\EOT
	worker:
	  heartbeat: 1s
	router:
	  node_lost_after: 5s
	EOT
'

test_expect_success SLURM,CODEX,JQ 'two nodes, no spare; the router follows' '
	codeswarm launch --nodes 2 --name $sp --time 10 --sbatch-opt=--exclusive \
		--config "$PWD/nl.yaml" >out 2>err &&
	grep "swarm $sp: 2/2 nodes ready" err &&
	router_start --node-lost-after 5 &&
	{ codeswarm attach $sp --json --since 0 >events.json 2>attach.err &
	  attach_pid=$!; } &&
	wait_for -t 30 events_in_order job_started &&
	codeswarm send $sp all "alpha" &&
	wait_for -t 90 answered_once 0 "You said: alpha" &&
	wait_for -t 90 answered_once 1 "You said: alpha"
'

test_expect_success SLURM,CODEX,JQ,BEDROOT 'node 1 dies: node_lost, the job is requeued, the session resumes' '
	job=$(swarm_json $sp .job_id) &&
	h1=$(node_host 1) &&
	down_host=$h1 &&
	t_kill=$(sharness_now_) &&
	host_kill $h1 1 &&
	wait_for -t 60 events_in_order job_started node_lost &&
	# slurmctld marks a silent node down after SlurmdTimeout (60 s on the
	# bed); the test marks it at once, as a site health check would
	# bed); the test marks it at once, as a site health check would (the
	# job is exclusive: no other job is on the node)
	scontrol update nodename=$h1 state=down reason="codeswarm test: host lost" &&
	wait_for -t 300 swarm_event_is $sp session_resumed 1 &&
	say_elapsed "session resumed" "$t_kill" &&
	test "$(swarm_event_count $sp job_requeued)" = 1 &&
	test "$(swarm_json $sp .job_id)" = "$job" &&
	test "$(swarm_json $sp .state)" = running &&
	wait_for -t 120 swarm_status_is $sp .ready 2 &&
	say_elapsed "both nodes ready again" "$t_kill"
'

test_expect_success SLURM,CODEX,JQ,BEDROOT 'the router said what happened, in order' '
	wait_for -t 30 events_in_order job_started node_lost job_requeued \
		job_started session_resumed
'

test_expect_success SLURM,CODEX,JQ,BEDROOT 'every node answers again, with its history; no prompt ran twice' '
	codeswarm send $sp all "TURNS?" &&
	wait_for -t 120 answered_once 0 "I see 2 user turns" &&
	wait_for -t 120 answered_once 1 "I see 2 user turns" &&
	answered_once 0 "You said: alpha" &&
	answered_once 1 "You said: alpha" &&
	for k in 0 1; do
		test "$(node_count $sp $k ".type == \"inject_accepted\"")" = 2 || return 1
	done
'

test_expect_success SLURM,CODEX,JQ,BEDROOT 'the lost host comes back into service' '
	slurmd_restore $h1 &&
	down_host= &&
	wait_for -t 60 slurmd_responding $h1 &&
	wait_for -t 60 node_back $h1
'

test_expect_success SLURM,CODEX,JQ 'cancel ends the swarm and its job' '
	job=$(swarm_json $sp .job_id) &&
	codeswarm cancel $sp &&
	wait_for -t 120 slurm_job_done $job
'

test_done
