#!/bin/sh
test_description='codeswarm-launch under valgrind: launch --local, the supervisor, status, cancel, job-event'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
test_skip_all_if_sanitized "$CODESWARM_BUILD_DIR/slurm/codeswarm-launch"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"

test_require_component VALGRIND command -v valgrind

vg () {
	valgrind --quiet --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect \
		"$CODESWARM_BUILD_DIR/slurm/codeswarm-launch" "$@"
}

# a stand-in worker: no codex needed to exercise the supervisor
cat >fake-worker <<'EOS'
#!/bin/sh
trap 'exit 0' TERM
while :; do sleep 1; done
EOS
chmod +x fake-worker
CODESWARM_WORKER=$PWD/fake-worker
export CODESWARM_WORKER
SLURM_CONF=$PWD/no-slurm.conf
export SLURM_CONF

test_expect_success VALGRIND 'launch --local --no-wait' '
	vg launch --local --nodes 2 --name vg --no-wait --parsable >out &&
	echo "vg;local" >expect &&
	test_cmp expect out &&
	wait_for -t 30 swarm_json_is vg .state running
'

test_expect_success VALGRIND 'status, table and JSON' '
	vg status >st &&
	grep "^vg  *running  *local  *0/2 " st &&
	vg status vg --json >st.json &&
	jq -e ".[0].nodes == 2" st.json
'

test_expect_success VALGRIND 'bad options' '
	test_expect_code 2 vg launch --nodes 0 2>err &&
	test_expect_code 2 vg launch -N 1 --time 1-2:3:4:5 2>err &&
	test_expect_code 2 vg status --bogus 2>err
'

test_expect_success VALGRIND 'the supervisor stops on cancel' '
	pid=$(swarm_json vg .supervisor_pid) &&
	vg cancel vg >out &&
	grep "swarm vg: cancelled" out &&
	wait_for -t 15 pid_gone "$pid" &&
	vg cancel vg >out &&
	grep "already cancelled" out
'

# --trace-children: the supervisor that launch execs runs under valgrind
# too; its reports go to its log
test_expect_success VALGRIND 'the supervisor itself under valgrind' '
	valgrind --quiet --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect --trace-children=yes \
		--trace-children-skip="*fake-worker*,*/sh,*/sleep" \
		"$CODESWARM_BUILD_DIR/slurm/codeswarm-launch" launch --local \
		--nodes 2 --name vs --no-wait >/dev/null &&
	wait_for -t 60 swarm_json_is vs .state running &&
	pid=$(swarm_json vs .supervisor_pid) &&
	kill -TERM "$pid" &&
	wait_for -t 60 pid_gone "$pid" &&
	test "$(swarm_json vs .end_reason)" = cancelled &&
	cat "$(swarm_dir vs)/log/supervisor.log" &&
	! grep "^==[0-9]*==" "$(swarm_dir vs)/log/supervisor.log"
'

test_expect_success VALGRIND 'job-event hooks of the batch script' '
	SLURM_JOB_ID=4242 SLURM_JOB_NODELIST="n[1-2]" vg job-event vg start;
	test $? = 3 &&
	mkdir -p "$CODESWARM_HOME/swarms" &&
	vg launch --local --nodes 1 --name je --no-wait >/dev/null &&
	pid=$(swarm_json je .supervisor_pid) &&
	SLURM_JOB_ID=4242 SLURM_JOB_NODELIST="n[1-2]" vg job-event je start &&
	SLURM_JOB_ID=4242 vg job-event je warning &&
	SLURM_JOB_ID=4242 vg job-event je end 0 &&
	test "$(swarm_json je ".jobs[0]")" = 4242 &&
	test "$(swarm_event_count je walltime_warning)" = 1 &&
	vg cancel je >/dev/null &&
	wait_for -t 15 pid_gone "$pid"
'

test_done
