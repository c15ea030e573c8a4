#!/bin/sh
test_description='codeswarm launch on the Slurm test bed: a job that can never start, --pending-timeout, Ctrl-C while waiting'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-term.sh"

slurm_bed_setup
term_setup

# swarm names of this run: several runs may share the test bed
big=big-$$ slow=slow-$$ intr=intr-$$ det=det-$$

# a job that stays pending for a reason that resolves by itself
later="--sbatch-opt=--begin=now+1hour"

test_expect_success 'options that need waiting are refused with --no-wait' '
	test_expect_code 2 codeswarm launch -N 1 --no-wait --detach 2>err &&
	grep "\-\-detach needs launch to wait: drop --no-wait" err &&
	test_expect_code 2 codeswarm launch -N 1 --no-wait \
		--pending-timeout 1m 2>err &&
	grep "\-\-pending-timeout needs launch to wait" err &&
	test_expect_code 2 codeswarm launch -N 1 --pending-timeout soon 2>err &&
	grep "\-\-pending-timeout: .soon. is not a duration" err &&
	test_expect_code 2 codeswarm launch --local -N 1 --pending-timeout 1m \
		2>err &&
	grep "\-\-pending-timeout is a Slurm option" err
'

test_expect_success SLURM 'more nodes than the partition has: an error with the limit, the job cancelled' '
	n=$(sinfo -h -p debug -o %D) &&
	test_expect_code 1 codeswarm launch --nodes $((n + 1)) --time 5 \
		--name $big >out 2>err &&
	job=$(swarm_json $big .job_id) &&
	grep "swarm $big: submitted as job $job" out &&
	grep "^codeswarm launch: job $job can never start: $((n + 1)) nodes requested; partition .debug. has $n nodes (Partition[A-Za-z]*); cancelled it" err &&
	! grep "None" err &&
	wait_for -t 30 slurm_job_done $job &&
	test "$(swarm_json $big .state)" = failed &&
	test "$(swarm_json $big .end_reason)" = unsatisfiable &&
	codeswarm status $big >st &&
	grep "^$big  *failed " st
'

test_expect_success SLURM '--pending-timeout cancels a job that has not started' '
	test_expect_code 1 codeswarm launch --nodes 1 --time 5 $later \
		--pending-timeout 2s --name $slow >out 2>err &&
	job=$(swarm_json $slow .job_id) &&
	grep "^job $job: pending (BeginTime)" err &&
	grep "^codeswarm launch: job $job still pending (BeginTime) after 2s (--pending-timeout); cancelled it" err &&
	wait_for -t 30 slurm_job_done $job &&
	test "$(swarm_json $slow .end_reason)" = pending_timeout
'

test_expect_success SLURM,TMUX 'Ctrl-C while waiting cancels the job, and says so' '
	test_when_finished "term_stop; codeswarm cancel $intr >/dev/null 2>&1" &&
	term_start "codeswarm launch --nodes 1 --time 5 $later --name $intr" &&
	wait_for -t 30 term_shows "^job [0-9]+: pending \\(BeginTime\\)" &&
	job=$(swarm_json $intr .job_id) &&
	term_keys C-c &&
	wait_for -t 30 term_shows "^\\[exit " &&
	term_screen >screen &&
	grep "^codeswarm launch: interrupted: cancelling swarm $intr (job $job) (with --detach, Ctrl-C leaves it be)" screen &&
	grep "^swarm $intr: cancelled" screen &&
	grep "^\\[exit 130\\]" screen &&
	wait_for -t 30 slurm_job_done $job &&
	test "$(swarm_json $intr .state)" = cancelled
'

test_expect_success SLURM,TMUX 'with --detach, Ctrl-C leaves the job queued' '
	test_when_finished "term_stop; codeswarm cancel $det >/dev/null 2>&1" &&
	term_start "codeswarm launch --nodes 1 --time 5 $later --detach --name $det" &&
	wait_for -t 30 term_shows "^job [0-9]+: pending \\(BeginTime\\)" &&
	job=$(swarm_json $det .job_id) &&
	term_keys C-c &&
	wait_for -t 30 term_shows "^\\[exit " &&
	term_screen >screen &&
	grep "^codeswarm launch: interrupted: swarm $det (job $job) is left as it is (--detach); .codeswarm status $det. shows it, .codeswarm cancel $det. stops it" screen &&
	grep "^\\[exit 0\\]" screen &&
	test "$(slurm_jobs_of $det)" = $job &&
	test "$(swarm_json $det .state)" = submitted &&
	codeswarm status >st &&
	status_aligned st &&
	grep "^$det  *pending (BeginTime)  *$job  *0/1 .* job $job submitted ([0-9]*s ago)$" st &&
	codeswarm cancel $det >out &&
	wait_for -t 30 slurm_job_done $job
'

test_done
