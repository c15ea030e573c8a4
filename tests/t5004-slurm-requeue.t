#!/bin/bash
test_description='codeswarm on the Slurm test bed: a requeued job keeps the session'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

codex_testbed_setup
slurm_bed_setup
test_require_component JQ jq --version

# the swarm (and job) name of this run: several runs may share the test bed
sw=rq-$$
attach_pid=

cleanup_ () {
	rc_=$?
	test -n "$attach_pid" && kill "$attach_pid" 2>/dev/null
	codeswarm cancel $sw >/dev/null 2>&1
	router_kill KILL
	(exit $rc_)
	sharness_die_
}
trap cleanup_ EXIT

answered_once () {
	test "$(node_texts $sw 0 | grep -c -F -- "$1")" = 1
}
# the router's events of the swarm, in the order given, each once
events_in_order () {
	jq -r 'select(.type == "event") | .event' events.json |
		grep -x -e job_requeued -e session_resumed -e job_started \
		>seen &&
	test "$(paste -s -d " " seen)" = "$*"
}

test_expect_success SLURM,CODEX,JQ 'the job asks for requeue and keeps its log' '
	codeswarm launch --nodes 1 --name $sw --time 10 >out 2>err &&
	grep "swarm $sw: 1/1 nodes ready" err &&
	grep -x "#SBATCH --requeue" "$(swarm_dir $sw)/job.sbatch" &&
	grep -x "#SBATCH --open-mode=append" "$(swarm_dir $sw)/job.sbatch" &&
	job=$(swarm_json $sw .job_id) &&
	scontrol show job $job >job.txt &&
	grep -E "Requeue=1" job.txt
'

test_expect_success SLURM,CODEX,JQ 'the router follows the swarm' '
	router_start &&
	{ codeswarm attach $sw --json --since 0 >events.json 2>attach.err &
	  attach_pid=$!; } &&
	wait_for -t 30 events_in_order job_started
'

test_expect_success SLURM,CODEX,JQ 'a prompt before the requeue runs' '
	codeswarm send $sw 0 "alpha" &&
	wait_for -t 90 answered_once "You said: alpha"
'

test_expect_success SLURM,CODEX,JQ 'scontrol requeue: the session resumes in the same job' '
	job=$(swarm_json $sw .job_id) &&
	scontrol requeue $job &&
	wait_for -t 300 swarm_event_is $sw session_resumed 1 &&
	test "$(swarm_event_count $sw job_requeued)" = 1 &&
	test "$(swarm_json $sw .state)" = running &&
	test "$(swarm_json $sw .job_id)" = "$job" &&
	test "$(swarm_json $sw ".jobs | length")" = 1 &&
	jq -r "select(.type == \"session_resumed\") |
		.job_id + \" \" + .previous_job_id + \" \" + .restart_count" \
		"$(swarm_dir $sw)/outbox/swarm.jsonl" >resumed &&
	echo "$job $job 1" >expect &&
	test_cmp expect resumed &&
	wait_for -t 120 swarm_status_is $sw .ready 1
'

test_expect_success SLURM,CODEX,JQ 'the router said what happened, in order' '
	wait_for -t 30 events_in_order job_started job_requeued job_started \
		session_resumed
'

test_expect_success SLURM,CODEX,JQ 'the thread was resumed; each prompt ran once' '
	codeswarm send $sw 0 "beta" &&
	wait_for -t 120 answered_once "You said: beta" &&
	answered_once "You said: alpha" &&
	jq -r "select(.type == \"ready\") | .thread_id" \
		"$(swarm_dir $sw)/outbox/0.jsonl" | sort -u >threads &&
	test_line_count = 1 threads &&
	test "$(node_count $sw 0 ".type == \"ready\" and .resumed")" -ge 1 &&
	test "$(node_count $sw 0 ".type == \"inject_accepted\"")" = 2
'

test_expect_success SLURM,CODEX,JQ 'the job log holds both runs' '
	job=$(swarm_json $sw .job_id) &&
	log="$(swarm_dir $sw)/log/job-$job.out" &&
	grep "codeswarm: job $job, run 0," "$log" &&
	grep "codeswarm: job $job, run 1," "$log"
'

test_expect_success SLURM,CODEX,JQ 'cancel ends the swarm and its job' '
	job=$(swarm_json $sw .job_id) &&
	codeswarm cancel $sw &&
	wait_for -t 120 slurm_job_done $job
'

test_done
