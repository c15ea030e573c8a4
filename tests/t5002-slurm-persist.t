#!/bin/sh
test_description='codeswarm --persist on the Slurm test bed: a session survives walltime expirations'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"

codex_testbed_setup
slurm_bed_setup

# the swarm (and job) names of this run: several runs may share the test bed
per=per-$$ idle=idle-$$

# answers of node $2 that contain $3
answers () {
	node_texts $per "$1" | grep -c -F -- "$2"
}
answered_once () {
	test "$(answers 0 "$1")" = 1 && test "$(answers 1 "$1")" = 1
}

# Slurm sends the warning (--signal=B:USR1@20) up to a minute early and
# ends jobs on a 30 s tick: each job of the chain lives ~20-60 s.
test_expect_success SLURM,CODEX 'a persistent two-node swarm with a 1-minute walltime' '
	codeswarm launch --nodes 2 --name $per --time 1 --persist --warn 20s \
		>out 2>err &&
	grep "swarm $per: 2/2 nodes ready" err &&
	grep -e "--signal=B:USR1@20" "$(swarm_dir $per)/job.sbatch" &&
	grep -e "--dependency=singleton" "$(swarm_dir $per)/job.sbatch" &&
	test "$(swarm_json $per ".jobs | length")" = 1
'

# a second persistent swarm, without turns, runs meanwhile on the third
# node: each of its jobs lives less than its idle timeout, which must
# count across the chain
test_expect_success SLURM,CODEX 'a persistent swarm with an idle timeout longer than its jobs' '
	codeswarm launch --nodes 1 --name $idle --time 1 --persist --warn 20s \
		--idle-timeout 90s --no-wait >out 2>err &&
	grep "swarm $idle: submitted as job" out
'

test_expect_success SLURM,CODEX 'a prompt before the first expiry runs' '
	codeswarm send $per all "alpha" &&
	wait_for -t 60 answered_once "You said: alpha" &&
	test "$(swarm_event_count $per session_migrating)" = 0
'

test_expect_success SLURM,CODEX 'the walltime warning migrates the session' '
	wait_for -t 150 swarm_event_is $per session_migrating 1 &&
	test "$(swarm_event_count $per walltime_warning)" -ge 1
'

test_expect_success SLURM,CODEX 'a prompt sent during the gap runs once in the successor' '
	codeswarm send $per all "beta" &&
	wait_for -t 150 swarm_event_is $per session_resumed 1 &&
	wait_for -t 90 answered_once "You said: beta" &&
	test "$(swarm_json $per ".jobs | length")" -ge 2
'

test_expect_success SLURM,CODEX 'the session survives a second expiry' '
	wait_for -t 180 swarm_event_is $per session_resumed 2 &&
	test "$(swarm_event_count $per session_migrating)" -ge 2 &&
	wait_for -t 60 swarm_status_is $per .ready 2
'

test_expect_success SLURM,CODEX 'the thread kept its history: the model sees all three turns' '
	codeswarm send $per all "TURNS?" &&
	wait_for -t 90 answered_once "I see 3 user turns"
'

test_expect_success SLURM,CODEX 'every prompt ran exactly once, on one thread per node' '
	answered_once "You said: alpha" &&
	answered_once "You said: beta" &&
	for k in 0 1; do
		test "$(node_count $per $k ".type == \"inject_accepted\"")" = 3 &&
		jq -r "select(.type == \"ready\") | .thread_id" \
			"$(swarm_dir $per)/outbox/$k.jsonl" | sort -u >threads.$k &&
		test_line_count = 1 threads.$k &&
		test "$(node_count $per $k ".type == \"ready\" and .resumed")" -ge 2 ||
		return 1
	done
'

test_expect_success SLURM,CODEX 'swarm.json holds the chain; the events name it' '
	swarm_json $per ".jobs[]" >chain &&
	test "$(sort -u chain | wc -l)" = "$(wc -l <chain)" &&
	test "$(wc -l <chain)" -ge 3 &&
	jq -r "select(.type == \"session_resumed\") | .job_id" \
		"$(swarm_dir $per)/outbox/swarm.jsonl" >resumed &&
	sed -n "2,3p" chain >expect &&
	head -n 2 resumed >got &&
	test_cmp expect got
'

test_expect_success SLURM,CODEX 'the idle timeout ended the idle chain after 90 s without turns' '
	wait_for -t 300 swarm_json_is $idle .state ended &&
	test "$(swarm_json $idle .end_reason)" = idle_timeout &&
	test "$(swarm_json $idle ".jobs | length")" -ge 2 &&
	test "$(swarm_event_count $idle session_resumed)" -ge 1 &&
	test "$(swarm_event_count $idle swarm_ended)" = 1 &&
	jq -s "(map(select(.type == \"swarm_ended\"))[0].ts)
		- (map(select(.type == \"job_started\"))[0].ts) | floor" \
		"$(swarm_dir $idle)/outbox/swarm.jsonl" >idle_secs &&
	test "$(cat idle_secs)" -ge 90 &&
	test "$(cat idle_secs)" -lt 150 &&
	test "$(node_count $idle 0 ".type == \"inject_accepted\"")" = 0 &&
	wait_for -t 60 slurm_name_done $idle
'

test_expect_success SLURM,CODEX 'cancel stops the chain' '
	codeswarm cancel $per --grace 5s &&
	wait_for -t 60 slurm_name_done $per &&
	test "$(swarm_json $per .state)" = cancelled &&
	codeswarm cancel $idle --grace 5s &&
	test -z "$(slurm_jobs_of $idle)"
'

test_done
