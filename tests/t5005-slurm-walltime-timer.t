#!/bin/bash
test_description='codeswarm --persist on the Slurm test bed: the job'"'"'s own timer warns at its end time less --warn'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"

codex_testbed_setup
slurm_bed_setup
test_require_component JQ jq --version

# the swarm (and job) name of this run: several runs may share the test bed
sw=wt-$$

cleanup_ () {
	rc_=$?
	codeswarm cancel $sw >/dev/null 2>&1
	(exit $rc_)
	sharness_die_
}
trap cleanup_ EXIT

# ts of the first swarm event $1
event_ts () {
	jq -r "select(.type == \"$1\") | .ts" \
		"$(swarm_dir $sw)/outbox/swarm.jsonl" | head -n 1
}

test_expect_success SLURM,CODEX,JQ 'a persistent swarm with a 2-minute walltime' '
	codeswarm launch --nodes 1 --name $sw --time 2 --persist --warn 20s \
		>out 2>err &&
	grep "swarm $sw: 1/1 nodes ready" err
'

test_expect_success SLURM,CODEX,JQ 'the job'"'"'s own timer warned, at its end time less 20 s' '
	wait_for -t 200 swarm_event_is $sw session_migrating 1 &&
	jq -r "select(.type == \"walltime_warning\") | .source" \
		"$(swarm_dir $sw)/outbox/swarm.jsonl" >sources &&
	echo timer >expect &&
	test_cmp expect sources &&
	job=$(swarm_json $sw ".jobs[0]") &&
	log="$(swarm_dir $sw)/log/job-$job.out" &&
	sed -n "s/.*job $job ends at \([0-9]*\): the timer warns at \([0-9]*\).*/\1 \2/p" \
		"$log" | tail -n 1 >endfire &&
	read end fire <endfire &&
	test $((end - fire)) = 20 &&
	started=$(event_ts job_started) &&
	warned=$(event_ts walltime_warning) &&
	# the end time is Slurm'"'"'s: 120 s after the job started
	awk -v s="$started" -v e="$end" "BEGIN { exit !(e - s > 100 && e - s <= 121) }" &&
	# and the warning came at the end less 20 s, not a tick early
	awk -v w="$warned" -v f="$fire" "BEGIN { exit !(w >= f - 1) }"
'

test_expect_success SLURM,CODEX,JQ 'the successor resumes the session' '
	wait_for -t 200 swarm_event_is $sw session_resumed 1 &&
	test "$(swarm_json $sw ".jobs | length")" -ge 2 &&
	wait_for -t 60 swarm_status_is $sw .ready 1
'

test_expect_success SLURM,CODEX,JQ 'cancel stops the chain' '
	codeswarm cancel $sw &&
	wait_for -t 120 slurm_name_done $sw
'

test_done
