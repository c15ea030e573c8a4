#!/bin/sh
test_description='codeswarm launch --local: options, the local supervisor, status, cancel, idle timeout'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"

codex_testbed_setup

# no swarm may exist after a refused launch
no_swarms () {
	! test -d "$CODESWARM_HOME/swarms" ||
	test -z "$(ls "$CODESWARM_HOME/swarms")"
}

test_expect_success 'bad options are refused before anything is created' '
	test_expect_code 2 codeswarm launch --local 2>err &&
	grep "\-\-nodes is required" err &&
	test_expect_code 2 codeswarm launch --local --nodes 0 2>err &&
	grep "\-\-nodes must be a positive integer, not .0." err &&
	test_expect_code 2 codeswarm launch --local --nodes x2 2>err &&
	grep "\-\-nodes must be a positive integer" err &&
	test_expect_code 2 codeswarm launch --local -N 2 --time 1:2:3:4 2>err &&
	grep "is not a Slurm time" err &&
	test_expect_code 2 codeswarm launch --local -N 2 --time 0 2>err &&
	grep "is zero" err &&
	test_expect_code 2 codeswarm launch --local -N 2 --bogus 2>err &&
	grep "unknown option .--bogus." err &&
	test_expect_code 2 codeswarm launch --local -N 2 --sbatch-opt exclusive 2>err &&
	grep "is not an sbatch option" err &&
	test_expect_code 2 codeswarm launch -N 2 --warn 30s 2>err &&
	grep "only meaningful with --persist" err &&
	test_expect_code 2 codeswarm launch -N 2 --persist --time 1 --warn 2m 2>err &&
	grep "must be shorter than --time" err &&
	test_expect_code 2 codeswarm launch --local -N 2 --slurm 2>err &&
	grep "\-\-local and \-\-slurm exclude each other" err &&
	test_expect_code 2 codeswarm launch --local -N 2 --idle-timeout soon 2>err &&
	grep "is not a duration" err &&
	test_expect_code 2 codeswarm launch --local -N 2 --config nope.yaml 2>err &&
	grep "cannot access .nope.yaml." err &&
	test_expect_code 2 codeswarm launch --local -N 2 --agents-md nope.md 2>err &&
	grep "cannot access .nope.md." err &&
	test_expect_code 2 codeswarm launch --local -N 2 --name ../x 2>err &&
	grep "not a valid swarm id" err &&
	test_expect_code 2 codeswarm launch --local -N 2 extra 2>err &&
	grep "unexpected argument .extra." err &&
	no_swarms
'

test_expect_success CODEX 'a local swarm of two nodes becomes ready' '
	printf "# Rules\nAnswer briefly.\n" >agents.md &&
	codeswarm launch --local --nodes 2 --name loc --agents-md agents.md \
		>out 2>err &&
	grep "swarm loc: started locally (2 nodes)" out &&
	grep "node 0: ready" err &&
	grep "node 1: ready" err &&
	grep "swarm loc: 2/2 nodes ready" err &&
	test "$(swarm_json loc .backend)" = local &&
	test "$(swarm_json loc .state)" = running &&
	test_cmp agents.md "$(swarm_dir loc)/work/0/AGENTS.md" &&
	test_cmp agents.md "$(swarm_dir loc)/work/1/AGENTS.md"
'

test_expect_success CODEX 'the supervisor is detached and recorded' '
	pid=$(swarm_json loc .supervisor_pid) &&
	kill -0 "$pid" &&
	tr "\0" " " </proc/$pid/cmdline | grep "supervise loc" &&
	sid=$(cut -d" " -f6 /proc/$pid/stat) &&
	test "$sid" != "$(cut -d" " -f6 /proc/$$/stat)" &&
	test "$(cut -d" " -f4 /proc/$pid/stat)" != "$$"
'

test_expect_success CODEX 'status shows the swarm' '
	codeswarm status >st &&
	grep "^loc  *running  *local  *2/2 " st &&
	test "$(swarm_status loc .ready)" = 2
'

test_expect_success CODEX 'a prompt to all is answered by all' '
	codeswarm send loc all "hello nodes" &&
	wait_for -t 60 swarm_status_is loc .turns 2 &&
	node_texts loc 0 | grep "You said: hello nodes" &&
	node_texts loc 1 | grep "You said: hello nodes" &&
	test "$(swarm_status loc .tokens)" -gt 0
'

node_count_is () {
	test "$(node_count "$1" "$2" "$3")" = "$4"
}

test_expect_success CODEX 'a worker killed by a signal is restarted by the supervisor' '
	wpid=$(jq -r "select(.type == \"worker_started\") | .pid" \
		"$(swarm_dir loc)/outbox/1.jsonl" | tail -n 1) &&
	kill -KILL "$wpid" &&
	wait_for -t 60 node_count_is loc 1 ".type == \"worker_started\"" 2 &&
	wait_for -t 60 node_count_is loc 1 ".type == \"ready\"" 2 &&
	codeswarm send loc 1 "again" &&
	wait_for -t 60 swarm_status_is loc .turns 3
'

test_expect_success CODEX 'cancel stops the workers and the supervisor' '
	pid=$(swarm_json loc .supervisor_pid) &&
	codeswarm cancel loc >out &&
	grep "swarm loc: cancelled" out &&
	wait_for -t 10 pid_gone $pid &&
	test "$(swarm_json loc .state)" = cancelled &&
	test "$(node_count loc 0 ".type == \"worker_stopped\"")" = 1 &&
	test "$(node_count loc 1 ".type == \"worker_stopped\"")" = 1 &&
	test "$(swarm_event_count loc swarm_ended)" = 1 &&
	for wpid in $(jq -r "select(.type == \"worker_started\") | .pid" \
			"$(swarm_dir loc)"/outbox/[01].jsonl); do
		pid_gone "$wpid" || return 1
	done &&
	codeswarm status >st &&
	grep "^loc  *cancelled " st
'

test_expect_success CODEX 'cancel is idempotent' '
	codeswarm cancel loc >out &&
	grep "swarm loc: already cancelled" out &&
	test "$(swarm_event_count loc swarm_ended)" = 1
'

test_expect_success CODEX 'cancel stops workers the supervisor no longer owns' '
	codeswarm launch --local --nodes 1 --name orphan >out 2>err &&
	sup=$(swarm_json orphan .supervisor_pid) &&
	wpid=$(jq -r "select(.type == \"worker_started\") | .pid" \
		"$(swarm_dir orphan)/outbox/0.jsonl") &&
	kill -KILL "$sup" &&
	wait_for -t 10 pid_gone "$sup" &&
	! pid_gone "$wpid" &&
	codeswarm cancel orphan >out 2>err &&
	grep "stopping worker $wpid" err &&
	wait_for -t 30 pid_gone "$wpid" &&
	test "$(node_count orphan 0 ".type == \"worker_stopped\"")" = 1
'

test_expect_success 'cancel and status of an unknown swarm fail clearly' '
	test_expect_code 1 codeswarm cancel nosuch 2>err &&
	grep "no swarm .nosuch." err &&
	test_expect_code 1 codeswarm status nosuch 2>err &&
	grep "no swarm .nosuch." err
'

test_expect_success CODEX 'a second launch with the same name is refused' '
	test_expect_code 2 codeswarm launch --local -N 1 --name loc 2>err &&
	grep "swarm .loc. already exists" err
'

# --no-wait: on a loaded machine the 3 s may pass before the node is ready,
# and launch would then (rightly) report that the swarm ended first
test_expect_success CODEX '--idle-timeout ends a local swarm without turns' '
	codeswarm launch --local --nodes 1 --name idle --idle-timeout 3s \
		--no-wait --parsable >out &&
	echo "idle;local" >expect &&
	test_cmp expect out &&
	pid=$(swarm_json idle .supervisor_pid) &&
	wait_for -t 30 swarm_json_is idle .state ended &&
	test "$(swarm_json idle .end_reason)" = "idle_timeout" &&
	wait_for -t 15 pid_gone $pid &&
	test "$(node_count idle 0 ".type == \"worker_stopped\"")" = 1 &&
	jq -r "select(.type == \"swarm_ended\") | .reason" \
		"$(swarm_dir idle)/outbox/swarm.jsonl" >reason &&
	echo idle_timeout >expect &&
	test_cmp expect reason
'

test_expect_success 'without a reachable Slurm, launch fails and starts nothing' '
	test_expect_code 1 env SLURM_CONF=$PWD/no-slurm.conf \
		codeswarm launch --nodes 1 --time 5 --partition gpu --name auto \
		>out 2>err &&
	grep "^codeswarm launch: cannot reach Slurm: no Slurm configuration" err &&
	grep "module load slurm" err &&
	grep "with --local" err &&
	grep "slurm.backend: local" err &&
	test_must_be_empty out &&
	! test -e "$(swarm_dir auto)"
'

test_expect_success 'Slurm options are errors with --local' '
	for opt in "--time 5" "--partition gpu" "--account a" "--qos q" \
		"--gpus-per-node 1" "--sbatch-opt --exclusive" "--persist" \
		"--template $CODESWARM_SBATCH_TEMPLATE"; do
		test_expect_code 2 codeswarm launch --local -N 1 $opt 2>err &&
		grep "^codeswarm launch: ${opt%% *} is a Slurm option: it means nothing with --local" err ||
		return 1
	done &&
	test_expect_code 2 codeswarm launch --local -N 1 --persist --warn 1m 2>err &&
	grep "\-\-persist is a Slurm option" err &&
	! test -e "$(swarm_dir auto)"
'

test_expect_success 'slurm.backend: local makes local the default' '
	printf "slurm:\n  backend: local\n  partition: gpu\n" >local.yaml &&
	test_expect_code 2 env CODESWARM_CONFIG=$PWD/local.yaml \
		codeswarm launch -N 1 --time 5 2>err &&
	grep "\-\-time is a Slurm option, and slurm.backend is .local. in .*local.yaml.: drop it, or add --slurm" err &&
	test_expect_code 1 env CODESWARM_CONFIG=$PWD/local.yaml \
		SLURM_CONF=$PWD/no-slurm.conf codeswarm launch -N 1 --slurm 2>err &&
	grep "cannot reach Slurm" err &&
	printf "slurm:\n  backend: lokal\n" >bad.yaml &&
	test_expect_code 2 env CODESWARM_CONFIG=$PWD/bad.yaml \
		codeswarm launch -N 1 2>err &&
	grep "bad.yaml:2:.*slurm.backend" err &&
	! test -e "$(swarm_dir auto)"
'

test_expect_success CODEX 'a configured local default runs the swarm locally' '
	CODESWARM_CONFIG=$PWD/local.yaml SLURM_CONF=$PWD/no-slurm.conf \
		codeswarm launch --nodes 1 --name auto >out 2>err &&
	! grep -i slurm err &&
	grep "swarm auto: started locally (1 node)" out &&
	test "$(swarm_json auto .backend)" = local &&
	codeswarm cancel auto
'

test_expect_success CODEX '--no-wait returns at once; status sees the swarm come up' '
	codeswarm launch --local --nodes 1 --name nw --no-wait >out 2>err &&
	! grep "ready" err &&
	wait_for -t 30 swarm_status_is nw .ready 1 &&
	codeswarm cancel nw
'

# a swarm whose workers a batch script of the user's own started: no
# swarm.json, only the mailbox (here written by hand, and outside Slurm)
test_expect_success 'status of a swarm without swarm.json comes from its mailbox' '
	codeswarm-mailbox append --type worker_started mine/outbox/0 \
		"{\"node\":0,\"host\":\"h0\",\"pid\":1,\"job_id\":null}" &&
	codeswarm-mailbox append --type ready mine/outbox/0 \
		"{\"thread_id\":\"t0\",\"resumed\":false}" &&
	codeswarm-mailbox append --type worker_started mine/outbox/1 \
		"{\"node\":1,\"host\":\"h1\",\"pid\":2,\"job_id\":null}" &&
	! test -e "$(swarm_dir mine)/swarm.json" &&
	swarm_status mine "[.backend, .state, .nodes, .ready, .job_id]
		| map(tostring) | join(\" \")" >st &&
	echo "user running 2 1 null" >expect &&
	test_cmp expect st &&
	codeswarm status >st &&
	grep "^mine  *running  *-  *1/2  *0 " st &&
	for k in 0 1; do
		codeswarm-mailbox append --type worker_stopped mine/outbox/$k \
			"{\"reason\":\"shutdown\",\"status\":0}" || return 1
	done &&
	test "$(swarm_status mine .state)" = stopped &&
	test "$(swarm_status mine .swarm_state)" = ended
'

test_expect_success 'cancel of such a swarm without a job id says why it cannot' '
	test_expect_code 1 codeswarm cancel mine 2>err &&
	grep "recorded a Slurm job id: nothing to cancel" err &&
	! test -e "$(swarm_dir mine)/swarm.json"
'

# cancel is idempotent: this also cleans up after a failed test above
test_expect_success 'no supervisor of this test is left' '
	for s in loc idle nw auto; do
		test -f "$(swarm_dir $s)/swarm.json" || continue
		codeswarm cancel $s --grace 5s >/dev/null &&
		pid=$(swarm_json $s ".supervisor_pid // 0") &&
		{ test "$pid" = 0 || wait_for -t 10 pid_gone "$pid"; } || return 1
	done
'

test_done
