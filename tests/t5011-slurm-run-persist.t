#!/bin/sh
test_description='codeswarm run against a persistent swarm whose jobs expire in the middle of the run'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"

codex_testbed_setup
slurm_bed_setup
test_require_component JQ jq --version

# the swarm (and job) name of this run: several runs may share the test bed
per=rper-$$

# Slurm sends the warning (--signal=B:USR1@20) up to a minute early and
# ends jobs on a 30 s tick: each job of the chain lives ~20-60 s, and the
# tasks (a few seconds each) keep two nodes busy for longer than that.
test_expect_success SLURM,CODEX 'a persistent two-node swarm with a 1-minute walltime' '
	codeswarm launch --nodes 2 --name $per --time 1 --persist --warn 20s \
		>out 2>err &&
	grep "swarm $per: 2/2 nodes ready" err
'

# Task "cut" (a 200 s turn) outlives every job: the expiry of the first
# job cuts it, and it runs once more; the second cut is counted, so it
# fails and is reported.  The 24 short tasks pass once each.
test_expect_success SLURM,CODEX,JQ 'the run outlives a walltime expiry; every task runs once, a cut one once more' '
	test_when_finished "codeswarm cancel $per --grace 5s >/dev/null 2>&1; :" &&
	{
		echo "tasks:"
		printf "  - id: cut\n    prompt: \"SLOW: 400\"\n"
		for i in $(seq 24); do
			printf "  - id: t%d\n    prompt: \"RUN: sleep 4; echo t%d\"\n" $i $i
		done
	} >tasks.yaml &&
	test_expect_code 1 codeswarm run --swarm $per tasks.yaml 2>err &&
	cat err &&
	out=codeswarm-run-tasks &&
	test "$(swarm_event_count $per session_migrating)" -ge 1 &&
	test $(wc -l <$out/results.jsonl) = 25 &&
	test $(jq -r .id $out/results.jsonl | sort -u | wc -l) = 25 &&
	jq -r "select(.id != \"cut\") | .status" $out/results.jsonl | sort -u >st &&
	test "$(cat st)" = passed &&
	jq -c "select(.id != \"cut\" and .attempts > 2)" $out/results.jsonl >more &&
	! test -s more &&
	test "$(jq -r "select(.id == \"cut\") | \"\(.status) \(.attempts)\"" \
		$out/results.jsonl)" = "failed 2" &&
	# the second expiry cuts the turn by an interrupt or by the shutdown
	# at the end of the job, whichever comes first on the node
	jq -r "select(.id == \"cut\") | .reason" $out/results.jsonl >reason &&
	grep -E -x "turn (interrupted|failed: shutdown) \(attempt 2 of 2\)" reason &&
	jq -r "select(.type == \"task_attempt_failed\")
	       | \"\(.task) \(.attempt) \(.counted)\"" $out/state/run.jsonl >cut &&
	cat cut &&
	{ grep -v "^cut " cut || :; } >others &&
	! grep true others &&
	grep "^cut " cut >cuts &&
	printf "cut 1 false\ncut 2 true\n" >cuts.expect &&
	test_cmp cuts.expect cuts
'

test_done
