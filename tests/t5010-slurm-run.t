#!/bin/sh
test_description='codeswarm run in a batch job on the Slurm test bed: the example sbatch script'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-run.sh"

codex_testbed_setup
slurm_bed_setup
test_require_component JQ jq --version

# the name of this run's swarm and job: several runs may share the test bed
name=run-$$

cat >codeswarm.yaml <<EOF
codex:
  sandbox: danger-full-access
  approval_policy: never
EOF
CODESWARM_CONFIG=$PWD/codeswarm.yaml
export CODESWARM_CONFIG

job_exit_code () {
	scontrol show job "$1" | sed -n "s/.*ExitCode=\([0-9]*\):.*/\1/p"
}

test_expect_success SLURM,CODEX,JQ 'the example script runs twelve tasks over four nodes' '
	git init -q -b main repo &&
	echo base >repo/README &&
	git -C repo add README && git -C repo commit -qm base &&
	{
		printf "defaults:\n  repo: {path: repo, base: main}\n"
		printf "  accept: test -f \$(basename \$PWD).txt\ntasks:\n"
		run_graph12
	} >tasks.yaml &&
	sed -e "s/my-run/$name/g" -e "s/^#SBATCH --time=.*/#SBATCH --time=5/" \
		-e "s|^#SBATCH --output=.*|#SBATCH --output=$PWD/job-%j.out|" \
		-e "s|^export CODESWARM_HOME=.*|export CODESWARM_HOME=$CODESWARM_HOME|" \
		-e "s|^tasks=.*|tasks=$PWD/tasks.yaml|" \
		-e "s|^output=.*|output=$PWD/out|" \
		"$CODESWARM_SRC_DIR/etc/codeswarm-run.sbatch.example" >run.sbatch &&
	grep "^srun .*--mpi=pmix" run.sbatch &&
	job=$(sbatch --parsable run.sbatch) &&
	test_when_finished "scancel $job 2>/dev/null; :" &&
	wait_for -t 240 slurm_job_done $job &&
	cat job-$job.out &&
	test "$(job_exit_code $job)" = 0 &&
	test $(wc -l <out/results.jsonl) = 13 &&
	test "$(jq -r "select(.id != \"integration\") | .status" out/results.jsonl | sort -u)" = passed &&
	test "$(jq -r "select(.id != \"integration\") | .attempts" out/results.jsonl | sort -u)" = 1 &&
	jq -r "select(.id != \"integration\") | .node" out/results.jsonl | sort -u >nodes &&
	test $(wc -l <nodes) -ge 2 &&
	jq -s -e "map(select(.id == \"integration\"))[0] | .status == \"passed\" and (.merged | length) == 12" out/results.jsonl &&
	for t in a b c d e f g h i j k l; do
		git -C repo show codeswarm/$name/integration:$t.txt >/dev/null || return 1
	done &&
	test $(jq -c "select(.type == \"task_dispatched\")" out/state/run.jsonl | wc -l) = 12 &&
	for k in 0 1 2 3; do
		test "$(node_count $name $k ".type == \"worker_stopped\"")" = 1 || return 1
	done
'

test_expect_success SLURM,CODEX,JQ 'submitted again, the job runs no task again' '
	job=$(sbatch --parsable run.sbatch) &&
	test_when_finished "scancel $job 2>/dev/null; :" &&
	wait_for -t 240 slurm_job_done $job &&
	test "$(job_exit_code $job)" = 0 &&
	grep "run $name resumed: 12 passed" job-$job.out &&
	test $(jq -c "select(.type == \"task_dispatched\")" out/state/run.jsonl | wc -l) = 12
'

test_expect_success SLURM,CODEX,JQ 'a failing task makes the job fail' '
	printf "tasks:\n  - id: bad\n    prompt: hello\n    accept: \"false\"\n" >bad.yaml &&
	sed -e "s|^tasks=.*|tasks=$PWD/bad.yaml|" -e "s|^output=.*|output=$PWD/badout|" \
		run.sbatch >bad.sbatch &&
	job=$(sbatch --parsable bad.sbatch) &&
	test_when_finished "scancel $job 2>/dev/null; :" &&
	wait_for -t 240 slurm_job_done $job &&
	test "$(job_exit_code $job)" = 1 &&
	jq -e ".status == \"failed\"" badout/results.jsonl
'

test_done
