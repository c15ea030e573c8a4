#!/bin/sh
test_description='on the Slurm test bed: report and metrics without accounting, export of a running swarm, import elsewhere and launch --resume'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"

codex_testbed_setup
slurm_bed_setup
test_require_component JQ jq --version
test_require_component PROMTOOL promtool --version

sw=exr-$$
home2=$PWD/home2
codex2=$PWD/codex-home2
elsewhere () {
	env CODESWARM_HOME="$home2" CODEX_HOME="$codex2" "$@"
}
texts2 () {
	CODESWARM_HOME=$home2 node_texts $sw 0
}

test_expect_success SLURM,CODEX 'a one-node swarm on Slurm answers' '
	codeswarm launch --nodes 1 --name $sw --time 10 >out 2>err &&
	grep "swarm $sw: submitted as job [0-9]" out &&
	codeswarm send $sw all "first words" &&
	wait_for -t 90 swarm_status_is $sw .turns 1 &&
	node_texts $sw 0 | grep "\[turn 1\] You said: first words"
'

test_expect_success SLURM,CODEX,JQ 'report without accounting says so, and guesses nothing' '
	test_might_fail sacct --parsable2 --jobs 1 2>sacct.err &&
	codeswarm report $sw >rep &&
	grep "swarm $sw: 1 node, 1 turn, [1-9][0-9]* tokens" rep &&
	if grep -q "accounting storage is disabled" sacct.err; then
		grep "no Slurm accounting: sacct: Slurm accounting storage is disabled" rep &&
		grep "tokens per node-hour: not computed" rep &&
		codeswarm report $sw --json |
			jq -e ".accounting.available == false" &&
		codeswarm status $sw --json |
			jq -e ".[0].accounting.available == false"
	else
		grep "^node-hours: " rep &&
		grep "^tokens per node-hour: [0-9]" rep
	fi &&
	grep "^tokens per turn: [0-9]" rep
'

test_expect_success SLURM,CODEX,PROMTOOL 'status --prometheus on Slurm passes promtool' '
	codeswarm status $sw --prometheus >m.prom &&
	promtool check metrics <m.prom &&
	grep "^codeswarm_swarm_info{swarm=\"$sw\",state=\"running\",backend=\"slurm\"} 1$" m.prom &&
	grep "^codeswarm_node_turns_completed_total{swarm=\"$sw\",node=\"0\"} 1$" m.prom
'

test_expect_success SLURM,CODEX,JQ 'export of the running swarm names its job and the accounting' '
	codeswarm export $sw -o run.tar.gz &&
	mkdir x && tar -xzf run.tar.gz -C x &&
	job=$(swarm_json $sw .job_id) &&
	jq -e ".state == \"running\" and .accounting.jobs == \"$job\"" \
		x/$sw/export.json &&
	if jq -e ".accounting.available" x/$sw/export.json; then
		test -s x/$sw/sacct.txt
	else
		jq -e ".accounting.reason | test(\"sacct\")" x/$sw/export.json
	fi &&
	jq -e ".rollouts | length == 1" x/$sw/export.json
'

test_expect_success SLURM,CODEX 'cancel, export the ended swarm' '
	job=$(swarm_json $sw .job_id) &&
	codeswarm cancel $sw >out &&
	wait_for -t 60 slurm_job_done $job &&
	codeswarm export $sw -o ended.tar.gz
'

test_expect_success SLURM,CODEX,JQ 'import elsewhere; launch --resume on Slurm continues the thread' '
	mkdir -p "$codex2" && cp "$CODEX_HOME/config.toml" "$codex2/" &&
	elsewhere codeswarm import ended.tar.gz >out &&
	grep "swarm $sw imported" out &&
	elsewhere codeswarm launch --resume $sw >out 2>err &&
	grep "swarm $sw: submitted as job [0-9]" out &&
	grep "1/1 nodes ready" err &&
	test "$(jq -r .jobs[0] "$home2/swarms/$sw/swarm.json")" = \
		"$(swarm_json $sw .jobs[0])" &&
	elsewhere codeswarm send $sw all "second words" &&
	wait_for -t 90 eval "texts2 | grep -q \"turn 2\\] You said: second words\"" &&
	thread=$(jq -r .thread_id "$(swarm_dir $sw)/state/0.json") &&
	test "$(jq -r "select(.type == \"ready\") | .thread_id" \
		"$home2/swarms/$sw/outbox/0.jsonl" | tail -n1)" = "$thread"
'

test_expect_success SLURM 'cleanup: no job of this test is left' '
	for h in "$CODESWARM_HOME" "$home2"; do
		test -f "$h/swarms/$sw/swarm.json" || continue
		CODESWARM_HOME=$h codeswarm cancel $sw --grace 5s >/dev/null || return 1
	done &&
	wait_for -t 60 slurm_name_done $sw
'

test_done
