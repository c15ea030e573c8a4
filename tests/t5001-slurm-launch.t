#!/bin/sh
test_description='codeswarm on the Slurm test bed: launch, PMIx, prompts, pending, cancel, doctor'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"

codex_testbed_setup
slurm_bed_setup

# swarm (and job) names of this run: several runs may share the test bed
four=four-$$ waits=waits-$$ proxied=proxied-$$ lazy=lazy-$$ mine=mine-$$

test_expect_success SLURM 'bad options are refused before anything is submitted' '
	before=$(slurm_job_count) &&
	test_expect_code 2 codeswarm launch --nodes 0 2>err &&
	grep "\-\-nodes must be a positive integer" err &&
	test_expect_code 2 codeswarm launch -N 2 --time 25:61:00:00 2>err &&
	grep "is not a Slurm time" err &&
	test_expect_code 2 codeswarm launch -N 2 --gpus-per-node -1 2>err &&
	grep "\-\-gpus-per-node must be a positive integer" err &&
	test_expect_code 2 codeswarm launch -N 2 --persist --time 2 --warn 5m 2>err &&
	grep "must be shorter than --time" err &&
	printf "#!/bin/bash\n#SBATCH --nodes=@NODES@\nsrun @WORKR@\n" >bad.sbatch.in &&
	test_expect_code 2 codeswarm launch -N 2 --template bad.sbatch.in 2>err &&
	grep "unknown placeholder @WORKR@ on line 3" err &&
	test_expect_code 2 codeswarm launch -N 2 --frobnicate 2>err &&
	grep "unknown option .--frobnicate." err &&
	test "$(slurm_job_count)" = "$before" &&
	! test -d "$CODESWARM_HOME/swarms" || test -z "$(ls "$CODESWARM_HOME/swarms")"
'

test_expect_success SLURM 'doctor passes on the login node' '
	codeswarm doctor >doctor.out &&
	grep "^ok    codex binary: $CODESWARM_CODEX" doctor.out &&
	grep "^ok    codex version: codex-cli" doctor.out &&
	grep "^ok    mailbox home: $CODESWARM_HOME" doctor.out &&
	grep "^ok    slurm: controller answers" doctor.out &&
	grep "^ok    slurm partition: debug (default)" doctor.out &&
	grep "all checks passed" doctor.out
'

test_expect_success SLURM,CODEX 'doctor --on-node passes on a compute node' '
	codeswarm doctor --on-node >doctor.out 2>&1 &&
	grep "^ok    node: n[0-9]" doctor.out &&
	grep "^ok    codex version: codex-cli" doctor.out &&
	grep "node checks passed" doctor.out
'

test_expect_success SLURM 'doctor --on-node fails clearly when codex is missing' '
	CODESWARM_CODEX=$PWD/no/codex test_expect_code 1 \
		codeswarm doctor --on-node >doctor.out 2>&1 &&
	grep "^FAIL  codex binary: .*no/codex" doctor.out &&
	grep "fix: run .codeswarm setup-codex." doctor.out &&
	grep "^FAIL  node checks" doctor.out
'

test_expect_success SLURM,CODEX 'four nodes: four workers on four node names' '
	codeswarm launch --nodes 4 --name $four --time 10 >out 2>err &&
	grep "swarm $four: submitted as job [0-9]" out &&
	grep "job [0-9]*: running on n\[1-4\]" err &&
	grep "swarm $four: 4/4 nodes ready" err &&
	for k in 0 1 2 3; do
		jq -r "select(.type == \"worker_started\") | \"\(.node) \(.host)\"" \
			"$(swarm_dir $four)/outbox/$k.jsonl" || return 1
	done >placement &&
	cut -d" " -f1 placement | sort >nodes &&
	printf "0\n1\n2\n3\n" >expect &&
	test_cmp expect nodes &&
	test "$(cut -d" " -f2 placement | sort -u | wc -l)" = 4 &&
	test "$(cut -d" " -f2 placement | sort -u | tr "\n" " ")" = "n1 n2 n3 n4 "
'

test_expect_success SLURM,CODEX 'the job is named after the swarm, tagged, and uses PMIx' '
	job=$(swarm_json $four .job_id) &&
	squeue --json | jq -r ".jobs[] | select(.job_id == $job)
		| \"\(.name) \(.comment) \(.job_state)\"" >job &&
	echo "$four codeswarm:$four RUNNING" >expect &&
	test_cmp expect job &&
	grep -e "--mpi=pmix" "$(swarm_dir $four)/job.sbatch" &&
	! grep "PMIx_Init" "$(swarm_dir $four)/log/job-$job.out"
'

test_expect_success SLURM,CODEX 'a prompt to all is answered by all four' '
	codeswarm send $four all "hello cluster" &&
	wait_for -t 90 swarm_status_is $four .turns 4 &&
	for k in 0 1 2 3; do
		node_texts $four $k | grep "You said: hello cluster" || return 1
	done &&
	codeswarm status >st &&
	grep "^$four  *running  *[0-9][0-9]*  *4/4  *4 " st
'

test_expect_success SLURM,CODEX 'cancel in the middle of a turn' '
	job=$(swarm_json $four .job_id) &&
	codeswarm send $four all "SLOW: 200" &&
	wait_for -t 60 all_turns_active $four 4 &&
	codeswarm cancel $four --grace 5s >out &&
	grep "swarm $four: cancelled" out &&
	test "$(swarm_json $four .state)" = cancelled &&
	wait_for -t 30 slurm_job_done $job &&
	test "$(swarm_event_count $four swarm_ended)" = 1 &&
	codeswarm status $four >st &&
	grep "^$four  *cancelled " st &&
	codeswarm cancel $four >out &&
	grep "already cancelled" out
'

test_expect_success SLURM,CODEX 'a job that must wait shows pending, then runs' '
	blocker=$(sbatch --parsable --exclusive -N 4 -J blocker -o /dev/null \
		--wrap "sleep 12") &&
	test_when_finished "scancel $blocker; codeswarm cancel $waits --grace 5s" &&
	wait_for -t 60 slurm_job_running $blocker &&
	codeswarm launch --nodes 2 --name $waits --time 5 >out 2>err &&
	grep "job [0-9]*: pending (" err &&
	grep "job [0-9]*: running on n" err &&
	grep "swarm $waits: 2/2 nodes ready" err &&
	test "$(grep -n pending err | head -1 | cut -d: -f1)" -lt \
		"$(grep -n running err | head -1 | cut -d: -f1)" &&
	test "$(grep -n running err | head -1 | cut -d: -f1)" -lt \
		"$(grep -n "worker started" err | head -1 | cut -d: -f1)"
'

test_expect_success SLURM 'proxy variables given at launch reach the batch script' '
	HTTPS_PROXY=http://proxy.invalid:3128 NO_PROXY=localhost,127.0.0.1 \
	https_proxy=http://proxy.invalid:3128 \
		codeswarm launch --nodes 1 --name $proxied --no-wait \
		--sbatch-opt=--hold --parsable >out &&
	grep "^$proxied;[0-9][0-9]*$" out &&
	script="$(swarm_dir $proxied)/job.sbatch" &&
	grep "^export HTTPS_PROXY=.http://proxy.invalid:3128.$" "$script" &&
	grep "^export https_proxy=.http://proxy.invalid:3128.$" "$script" &&
	grep "^export NO_PROXY=.localhost,127.0.0.1.$" "$script" &&
	grep "^#SBATCH --hold$" "$script" &&
	job=$(cut -d";" -f2 out) &&
	squeue --json | jq -r ".jobs[] | select(.job_id == $job) | .job_state" >state &&
	echo PENDING >expect &&
	test_cmp expect state &&
	codeswarm status $proxied >st &&
	grep "^$proxied  *pending (JobHeldUser) " st &&
	codeswarm cancel $proxied &&
	test -z "$(slurm_jobs_of $proxied)"
'

test_expect_success SLURM,CODEX '--idle-timeout ends the swarm and its job' '
	# --no-wait: on a loaded machine the 5 s may pass before the node is
	# ready, and launch would then (rightly) report that the swarm ended
	codeswarm launch --nodes 1 --name $lazy --idle-timeout 5s --time 5 \
		--no-wait >out 2>err &&
	job=$(swarm_json $lazy .job_id) &&
	wait_for -t 60 swarm_json_is $lazy .state ended &&
	test "$(swarm_json $lazy .end_reason)" = idle_timeout &&
	wait_for -t 60 slurm_job_done $job &&
	# a worker that started stopped cleanly, once
	started=$(node_count $lazy 0 ".type == \"worker_started\"") &&
	test "$(node_count $lazy 0 ".type == \"worker_stopped\"")" = "$started" &&
	jq -r "select(.type == \"swarm_ended\") | .reason" \
		"$(swarm_dir $lazy)/outbox/swarm.jsonl" >reason &&
	echo idle_timeout >expect &&
	test_cmp expect reason
'

# the example of etc/ as a user would submit it: no "codeswarm launch",
# no swarm.json; status and cancel find the job in the mailbox
test_expect_success SLURM,CODEX 'a swarm of a user sbatch script: status and cancel' '
	sed -e "s/my-swarm/$mine/g" -e "s/^#SBATCH --nodes=4$/#SBATCH --nodes=2/" \
		-e "s/^#SBATCH --time=.*/#SBATCH --time=10/" \
		-e "s|^export CODESWARM_HOME=.*|export CODESWARM_HOME=$CODESWARM_HOME|" \
		"$CODESWARM_SRC_DIR/etc/codeswarm-user.sbatch.example" >user.sbatch &&
	grep "^srun .*codeswarm-worker --swarm $mine$" user.sbatch &&
	job=$(sbatch --parsable -o "$PWD/user-%j.out" user.sbatch) &&
	test_when_finished "scancel $job" &&
	wait_for -t 90 swarm_status_is $mine .ready 2 &&
	! test -e "$(swarm_dir $mine)/swarm.json" &&
	swarm_status $mine "[.backend, .state, .nodes, .job_id, (.jobs | join(\",\"))]
		| map(tostring) | join(\" \")" >st &&
	echo "user running 2 $job $job" >expect &&
	test_cmp expect st &&
	codeswarm status >st &&
	grep "^$mine  *running  *$job  *2/2  *0 " st &&
	codeswarm send $mine all "hello mine" &&
	wait_for -t 90 swarm_status_is $mine .turns 2 &&
	codeswarm cancel $mine --grace 10s >out &&
	grep "^swarm $mine: cancelled (job $job)$" out &&
	wait_for -t 30 slurm_job_done $job &&
	for k in 0 1; do
		test "$(node_count $mine $k ".type == \"worker_stopped\"")" = 1 ||
		return 1
	done &&
	! test -e "$(swarm_dir $mine)/swarm.json" &&
	test "$(swarm_status $mine .swarm_state)" = ended &&
	jq -r "select(.type == \"swarm_ended\") | \"\(.reason) \(.job_id)\"" \
		"$(swarm_dir $mine)/outbox/swarm.jsonl" >reason &&
	echo "cancelled $job" >expect &&
	test_cmp expect reason &&
	codeswarm cancel $mine >out &&
	grep "^swarm $mine: already ended (job $job)$" out
'

test_expect_success SLURM,CODEX 'no job of the test is left' '
	codeswarm cancel $four --grace 5s &&
	test -z "$(slurm_jobs_of $four)" &&
	test -z "$(slurm_jobs_of $waits)" &&
	test -z "$(slurm_jobs_of $lazy)" &&
	test -z "$(slurm_jobs_of $mine)"
'

test_done
