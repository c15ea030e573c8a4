#!/bin/sh
test_description='codeswarm status: aligned columns and the last event; codeswarm forget'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"

codex_testbed_setup

# user_swarm ID NODES: a swarm whose workers a batch script of the user's
# own started, written by hand: every node started, node 0 ready
user_swarm () {
	k=0
	while test $k -lt $2; do
		codeswarm-mailbox append --type worker_started $1/outbox/$k \
			"{\"node\":$k,\"host\":\"h$k\",\"pid\":1,\"job_id\":null}" ||
			return 1
		k=$((k + 1))
	done &&
	codeswarm-mailbox append --type ready $1/outbox/0 \
		"{\"thread_id\":\"t0\",\"resumed\":false}"
}
user_swarm_stop () {
	k=0
	while test $k -lt $2; do
		codeswarm-mailbox append --type worker_stopped $1/outbox/$k \
			"{\"reason\":\"shutdown\",\"status\":0}" || return 1
		k=$((k + 1))
	done
}

long=a-swarm-id-of-sixty-characters-that-is-longer-than-a-column

test_expect_success 'columns stay aligned with a long id, and a last event is shown' '
	user_swarm s1 2 &&
	user_swarm $long 12 &&
	codeswarm status >st &&
	cat st &&
	status_aligned st &&
	head -1 st | grep "TIME LEFT  LAST EVENT$" &&
	grep "^s1  .*  n0 ready ([0-9]*s ago)$" st &&
	grep "^$long  *running  .*  1/12 " st &&
	codeswarm status s1 --json | jq -e ".[0].last_event == \"n0 ready\"
		and (.[0].last_event_ts | type) == \"number\""
'

test_expect_success 'forget refuses a running swarm and names the way out' '
	test_expect_code 1 codeswarm forget s1 2>err &&
	grep "swarm s1 is running: .codeswarm cancel s1. first" err &&
	test -d "$(swarm_dir s1)"
'

test_expect_success 'forget removes an ended swarm; status no longer lists it' '
	user_swarm_stop s1 2 &&
	codeswarm forget s1 >out &&
	echo "forgot swarm s1 (ended)" >expect &&
	test_cmp expect out &&
	! test -e "$(swarm_dir s1)" &&
	codeswarm status >st &&
	! grep "^s1 " st
'

test_expect_success 'a swarm whose workspaces hold files is kept unless --force' '
	user_swarm s2 1 && user_swarm_stop s2 1 &&
	mkdir -p "$(swarm_dir s2)/work/0" &&
	echo result >"$(swarm_dir s2)/work/0/report.txt" &&
	test_expect_code 1 codeswarm forget s2 2>err &&
	grep "swarm s2 (ended) kept: .*work/0. holds files its agent wrote" err &&
	grep "codeswarm forget --force s2" err &&
	test -f "$(swarm_dir s2)/work/0/report.txt" &&
	codeswarm forget --force s2 >out &&
	grep "forgot swarm s2 (ended)" out &&
	! test -e "$(swarm_dir s2)"
'

test_expect_success '--purge forgets every ended swarm, and leaves running ones' '
	user_swarm s3 1 && user_swarm_stop s3 1 &&
	user_swarm s4 1 && user_swarm_stop s4 1 &&
	codeswarm forget --purge >out &&
	sort out >sorted &&
	printf "forgot swarm s3 (ended)\nforgot swarm s4 (ended)\n" >expect &&
	test_cmp expect sorted &&
	test -d "$(swarm_dir $long)" &&
	codeswarm forget --purge >out &&
	echo "no ended swarm to forget" >expect &&
	test_cmp expect out
'

test_expect_success 'forget: usage errors exit 2' '
	test_expect_code 2 codeswarm forget 2>err &&
	grep "name the swarms to forget, or --purge" err &&
	test_expect_code 2 codeswarm forget --purge s1 2>err &&
	grep "\-\-purge takes no SWARM" err &&
	test_expect_code 2 codeswarm forget --bogus 2>err &&
	grep "unknown option .--bogus." err &&
	test_expect_code 1 codeswarm forget nosuch 2>err &&
	grep "no swarm .nosuch." err
'

test_expect_success CODEX 'a local swarm: the last event follows its turns, then its end' '
	codeswarm launch --local --nodes 1 --name loc >/dev/null 2>&1 &&
	test_when_finished "codeswarm cancel loc >/dev/null 2>&1 || :" &&
	codeswarm send loc all "hello" >/dev/null &&
	wait_for -t 60 swarm_status_is loc .turns 1 &&
	codeswarm status >st &&
	status_aligned st &&
	grep "^loc  .*  n0 turn 1 completed ([0-9]*s ago)$" st &&
	test "$(swarm_status loc ".node_states[0].answer")" = "[turn 1] You said: hello" &&
	codeswarm cancel loc >/dev/null &&
	codeswarm status >st &&
	grep "^loc  *cancelled  .*  ended: cancelled ([0-9]*s ago)$" st &&
	codeswarm forget loc >out &&
	grep "forgot swarm loc (cancelled)" out
'

test_done
