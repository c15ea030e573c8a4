#!/bin/sh
test_description='codeswarm run: a task graph over four local nodes with the real codex'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"
. "$CODESWARM_SRC_DIR/tests/lib-run.sh"

codex_testbed_setup
test_require_component JQ jq --version

# the agents commit through git: no sandbox, no approvals
cat >cs.yaml <<EOF
codex:
  sandbox: danger-full-access
  approval_policy: never
EOF
# twelve tasks in four levels
graph () {
	cat <<EOF
defaults:
  repo: {path: repo, base: main}
  accept: test -f \$(basename \$PWD).txt
  retries: 1
tasks:
EOF
	run_graph12
}

# turns started on the swarm's nodes
turns_started () {
	cat "$(swarm_dir "$1")"/outbox/[0-9]*.jsonl |
	jq -c 'select(.type == "rpc" and .msg.method == "turn/started")' | wc -l
}

# result_is DIR ID FILTER: FILTER is true of task ID's line in results.jsonl
result_is () {
	jq -s -e ".[] | select(.id == \"$2\") | $3" "$1/results.jsonl" >/dev/null
}

results_at_least () {
	test -f "$1/results.jsonl" && test $(wc -l <"$1/results.jsonl") -ge $2
}

state_count_is () {
	test -f "$1/state/run.jsonl" && test $(state_count "$1" "$2") = "$3"
}

state_count () {
	jq -c "select(.type == \"$2\")" "$1/state/run.jsonl" | wc -l
}

test_expect_success 'a bad task file is refused with where and why' '
	printf "tasks:\n  - id: a\n    prompt: x\n    depends_on: [b]\n" >bad.yaml &&
	test_expect_code 2 codeswarm run --swarm nope bad.yaml 2>err &&
	grep "bad.yaml:4:18: tasks.a.depends_on: unknown task \"b\"" err &&
	printf "tasks:\n  - id: a\n    prompt: x\n    depends_on: [b]\n  - id: b\n    prompt: y\n    depends_on: [a]\n" >cyc.yaml &&
	test_expect_code 2 codeswarm run --swarm nope cyc.yaml 2>err &&
	grep "cyc.yaml:2:5: tasks.a.depends_on: dependency cycle a -> b -> a" err &&
	test_expect_code 2 codeswarm run cyc.yaml --swarm 2>err &&
	! test -e codeswarm-run-bad && ! test -e codeswarm-run-cyc
'

test_expect_success 'run --check prints the order' '
	graph >tasks.yaml &&
	codeswarm run --check tasks.yaml >out &&
	grep "tasks.yaml: 12 tasks, in this order: a b c d e f g h i j k l" out
'

test_expect_success CODEX 'a swarm of four local nodes and a repository' '
	git init -q -b main repo &&
	echo base >repo/README &&
	git -C repo add README && git -C repo commit -qm base &&
	codeswarm launch --local --nodes 4 --name rl --config cs.yaml \
		>out 2>err &&
	grep "4/4 nodes ready" err
'

test_expect_success CODEX,JQ 'twelve tasks run once each, in dependency order' '
	codeswarm run --swarm rl --integrate tasks.yaml 2>err &&
	out=codeswarm-run-tasks &&
	test $(wc -l <$out/results.jsonl) = 13 &&
	test "$(jq -r "select(.id != \"integration\") | .status" $out/results.jsonl | sort -u)" = passed &&
	test "$(jq -r "select(.id != \"integration\") | .attempts" $out/results.jsonl | sort -u)" = 1 &&
	test $(state_count $out task_dispatched) = 12 &&
	test $(turns_started rl) = 12 &&
	for t in a b c d e f g h i j k l; do
		git -C repo rev-parse -q --verify codeswarm/tasks/$t >/dev/null || return 1
	done &&
	git -C repo show codeswarm/tasks/l:i.txt &&
	git -C repo show codeswarm/tasks/l:a.txt &&
	result_is $out l ".commits | length == 1" &&
	result_is $out l ".diffstat | test(\"1 file changed\")" &&
	result_is $out a ".usage.total_tokens > 0" &&
	result_is $out a ".final_answer | test(\"Tool finished\")" &&
	result_is $out a ".accept.passed" &&
	result_is $out integration ".status == \"passed\" and (.merged | length) == 12" &&
	for t in a b c d e f g h i j k l; do
		git -C repo show codeswarm/tasks/integration:$t.txt >/dev/null || return 1
	done &&
	codeswarm run status tasks >st &&
	grep "run tasks on swarm rl: 12 tasks: 12 passed, 0 running, 0 failed" st
'

test_expect_success CODEX,JQ 'running it again runs nothing' '
	codeswarm run --swarm rl tasks.yaml 2>err &&
	grep "run tasks resumed: 12 passed" err &&
	test $(turns_started rl) = 12
'

test_expect_success CODEX,JQ 'a failing accept command is retried on another node' '
	cat >flaky.yaml <<-EOF &&
	tasks:
	  - id: flaky
	    prompt: "RUN: echo x >flaky.txt"
	    repo: repo
	    retries: 2
	    accept: if test -f ../../marker; then exit 0; fi; touch ../../marker; exit 1
	EOF
	codeswarm run --swarm rl flaky.yaml 2>err &&
	out=codeswarm-run-flaky &&
	result_is $out flaky ".attempts == 2 and .status == \"passed\"" &&
	test $(state_count $out task_dispatched) = 2 &&
	jq -r "select(.type == \"task_dispatched\") | .node" $out/state/run.jsonl >nodes &&
	test $(sort -u nodes | wc -l) = 2 &&
	grep "accept command failed (exit 1); retrying on another node" err
'

test_expect_success CODEX,JQ 'a task that keeps failing fails the run; its dependants are skipped' '
	cat >fail.yaml <<-EOF &&
	tasks:
	  - id: bad
	    prompt: "hello"
	    accept: "false"
	    retries: 1
	  - id: after
	    prompt: "hello"
	    depends_on: [bad]
	EOF
	test_expect_code 1 codeswarm run --swarm rl fail.yaml 2>err &&
	out=codeswarm-run-fail &&
	result_is $out bad ".status == \"failed\" and .attempts == 2" &&
	result_is $out after ".status == \"skipped\"" &&
	grep "task after skipped: dependency \"bad\" failed" err
'

test_expect_success CODEX,JQ 'kill -9 of the run in the middle, then a restart' '
	sed -e "s/RUN: /RUN: sleep 1; /" tasks.yaml >slow.yaml &&
	turns0=$(turns_started rl) &&
	{ codeswarm run --swarm rl slow.yaml 2>err1 & } &&
	pid=$! &&
	wait_for -t 120 results_at_least codeswarm-run-slow 3 &&
	kill -9 $pid &&
	{ wait $pid || :; } &&
	before=$(wc -l <codeswarm-run-slow/results.jsonl) &&
	test $before -lt 12 &&
	codeswarm run --swarm rl slow.yaml 2>err2 &&
	grep "run slow resumed" err2 &&
	out=codeswarm-run-slow &&
	test $(wc -l <$out/results.jsonl) = 12 &&
	test "$(jq -r .status $out/results.jsonl | sort -u)" = passed &&
	test $(jq -r .id $out/results.jsonl | sort -u | wc -l) = 12 &&
	test $(state_count $out task_dispatched) = 12 &&
	test $(turns_started rl) = $((turns0 + 12))
'

test_expect_success CODEX,JQ 'task events reach the clients of a running router' '
	test_when_finished "router_kill; kill \$sub 2>/dev/null; :" &&
	router_start &&
	{ codeswarm-client rpc --until task_complete --count 2 --timeout 120 \
		"$(rcmd subscribe)" >events & } &&
	sub=$! &&
	wait_for grep -q "\"subscribed\"" events &&
	cat >ev.yaml <<-EOF &&
	tasks:
	  - id: one
	    prompt: first
	  - id: two
	    prompt: second
	    depends_on: [one]
	EOF
	codeswarm run --swarm rl ev.yaml 2>err &&
	wait $sub &&
	jq -s -e "map(select(.event == \"task_started\" and .data.run_id == \"ev\")) | length == 2" events &&
	jq -s -e "map(select(.event == \"task_complete\" and .data.run_id == \"ev\")) | length == 2" events &&
	jq -s -e "map(select(.event == \"task_complete\" and .data.task_id == \"two\"))[0]
		| .data.status == \"passed\" and (.data.last_agent_message | test(\"You said: second\"))
		and .data.swarm_id == \"rl\" and (.data.node_id | type) == \"number\" and .seq > 0" events &&
	! test -e codeswarm-run-ev/router.log
'

test_expect_success CODEX,JQ 'a conflict of the integration goes to an agent' '
	cat >conflict.yaml <<-EOF &&
	defaults:
	  repo: {path: repo, base: main}
	tasks:
	  - id: x
	    prompt: "RUN: echo x >same.txt"
	  - id: y
	    prompt: "RUN: echo y >same.txt"
	EOF
	test_expect_code 1 codeswarm run --swarm rl --integrate conflict.yaml 2>err &&
	out=codeswarm-run-conflict &&
	result_is $out x ".status == \"passed\"" &&
	result_is $out y ".status == \"passed\"" &&
	result_is $out integration ".status == \"failed\" and .merged == [\"x\"]
		and (.conflicts | length) == 1 and .conflicts[0].task == \"y\"
		and .conflicts[0].status == \"failed\"
		and (.conflicts[0].conflict | test(\"same.txt\"))
		and (.conflicts[0].final_answer | test(\"You said: Merging branch codeswarm/conflict/y\"))" &&
	grep "integration: a conflict merging .y. goes to node" err &&
	test "$(git -C repo show codeswarm/conflict/integration:same.txt)" = x &&
	test -z "$(git -C $out/work/_integration status --porcelain)"
'

test_expect_success CODEX,JQ 'a turn interrupted from outside runs once more' '
	cat >cut.yaml <<-EOF &&
	tasks:
	  - id: long
	    prompt: "SLOW: 20"
	EOF
	test_when_finished "router_kill" &&
	router_start &&
	{ codeswarm run --swarm rl cut.yaml 2>err & } &&
	pid=$! &&
	out=codeswarm-run-cut &&
	wait_for -t 60 state_count_is $out task_acked 1 &&
	node=$(jq -r "select(.type == \"task_dispatched\") | .node" $out/state/run.jsonl) &&
	inj=$(jq -r "select(.type == \"task_acked\") | .injection_id" $out/state/run.jsonl) &&
	# an interrupt only cuts a turn that has started: wait until codex
	# has taken the prompt in
	wait_for -t 60 grep -q "\"clientId\":\"$inj\"" \
		"$CODESWARM_HOME/swarms/rl/outbox/$node.jsonl" &&
	codeswarm interrupt rl $node &&
	wait $pid &&
	result_is $out long ".status == \"passed\" and .attempts == 2" &&
	jq -s -e "map(select(.type == \"task_attempt_failed\")) | length == 1
		and .[0].counted == false and .[0].reason == \"turn interrupted\"" \
		$out/state/run.jsonl &&
	grep "running it once more" err
'

# the mock model answers with the prompt it got: a specification with a
# fenced block is answered with that block
test_expect_success CODEX 'plan: a valid graph of the agent is written' '
	cat >spec.md <<-EOF &&
	Build it in two steps.
	\`\`\`yaml
	tasks:
	  - id: first
	    prompt: do the first part
	  - id: second
	    prompt: do the second part
	    depends_on: [first]
	\`\`\`
	EOF
	codeswarm plan --swarm rl spec.md -o planned.yaml >out 2>err &&
	grep "wrote planned.yaml" out &&
	codeswarm run --check planned.yaml >order &&
	grep "2 tasks, in this order: first second" order
'

test_expect_success CODEX 'plan: an invalid graph is shown with the reason, not written' '
	sed -e "s/depends_on: \[first\]/depends_on: [second]/" spec.md >cyc.md &&
	test_expect_code 1 codeswarm plan --swarm rl cyc.md -o cyc-plan.yaml 2>err &&
	grep "the plan is not a valid task file: plan:[0-9]*:[0-9]*: tasks.second.depends_on: task \"second\" depends on itself" err &&
	grep "the agent.s answer (not written)" err &&
	! test -e cyc-plan.yaml
'

test_expect_success CODEX 'cancel the swarm' '
	codeswarm cancel rl >out
'

test_done
