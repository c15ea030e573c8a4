#!/bin/sh
test_description='metrics without ports: the router textfile and status --prometheus, checked by promtool'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

router_trap
codex_testbed_setup
test_require_component JQ jq --version
test_require_component PROMTOOL promtool --version

# the value of a sample (exact name and labels) in a file
value () {
	awk -v k="$1" '$1 == k { print $2 }' "$2"
}
value_is () {
	test "$(value "$1" "$3")" = "$2"
}

test_expect_success CODEX 'setup: a local swarm, a router writing metrics every second' '
	codeswarm launch --local --nodes 1 --name met >out 2>err &&
	router_start --metrics-file "$PWD/m/metrics.prom" --metrics-interval 1s &&
	mkdir -p m
'

test_expect_success CODEX,PROMTOOL 'the textfile follows the swarm and passes promtool' '
	codeswarm send met all "count me" &&
	wait_for -t 60 value_is "codeswarm_node_turns_completed_total{swarm=\"met\",node=\"0\"}" 1 m/metrics.prom &&
	promtool check metrics <m/metrics.prom &&
	value_is "codeswarm_node_turns_started_total{swarm=\"met\",node=\"0\"}" 1 m/metrics.prom &&
	value_is "codeswarm_node_state{swarm=\"met\",node=\"0\",state=\"ready\"}" 1 m/metrics.prom &&
	test "$(value "codeswarm_node_input_tokens_total{swarm=\"met\",node=\"0\"}" m/metrics.prom)" -gt 0 &&
	test "$(value "codeswarm_node_output_tokens_total{swarm=\"met\",node=\"0\"}" m/metrics.prom)" -gt 0 &&
	value_is "codeswarm_node_inbox_lag_records{swarm=\"met\",node=\"0\"}" 0 m/metrics.prom &&
	grep "^codeswarm_node_last_heartbeat_age_seconds{swarm=\"met\",node=\"0\"} " m/metrics.prom &&
	test "$(value codeswarm_router_clients m/metrics.prom)" -ge 0 &&
	grep "^codeswarm_router_follow_mode{mode=\"\(inotify\|poll\)\"} 1$" m/metrics.prom &&
	test "$(value codeswarm_router_events_total m/metrics.prom)" -gt 0 &&
	! ls m | grep -v "^metrics.prom$"
'

# value of a sample is above (gt) a number
value_gt () {
	awk -v k="$1" -v n="$2" '$1 == k && $2 > n { f = 1 } END { exit !f }' "$3"
}

test_expect_success CODEX,PROMTOOL 'per swarm: the follow mode, and the node time of the running job' '
	grep "^codeswarm_swarm_follow_mode{swarm=\"met\",mode=\"\(inotify\|poll\)\"} 1$" m/metrics.prom &&
	start=$(jq -r "select(.type == \"job_started\") | .ts" \
		"$(swarm_dir met)/outbox/swarm.jsonl") &&
	test -n "$start" &&
	k="codeswarm_swarm_job_node_seconds{swarm=\"met\"}" &&
	s1=$(value "$k" m/metrics.prom) &&
	now=$(date +%s.%N) &&
	awk "BEGIN { exit !($s1 > 0 && $s1 <= $now - $start) }" &&
	wait_for -t 30 value_gt "$k" "$s1" m/metrics.prom &&
	promtool check metrics <m/metrics.prom
'

test_expect_success CODEX,PROMTOOL 'status --prometheus: one shot, the same node metrics' '
	codeswarm status --prometheus >one.prom &&
	promtool check metrics <one.prom &&
	value_is "codeswarm_node_turns_completed_total{swarm=\"met\",node=\"0\"}" 1 one.prom &&
	value_is "codeswarm_swarm_info{swarm=\"met\",state=\"running\",backend=\"local\"}" 1 one.prom &&
	value_is "codeswarm_swarm_accounting_available{swarm=\"met\"}" 0 one.prom &&
	codeswarm status met --json | jq -e ".[0].accounting.available == false
		and (.[0].accounting.reason | test(\"local swarm\"))" &&
	test_expect_code 2 codeswarm status --json --prometheus 2>err &&
	grep "exclude each other" err
'

test_expect_success CODEX 'a textfile that cannot be written: logged, retried, the router goes on' '
	router_kill &&
	router_start --metrics-file "$PWD/gone/metrics.prom" --metrics-interval 1s &&
	wait_for -t 10 grep -q "metrics: .*gone/metrics.prom.* (will retry" router.log &&
	codeswarm send met all "still served" >ack &&
	grep "^n0 inj-" ack &&
	mkdir gone &&
	wait_for -t 10 test -f gone/metrics.prom &&
	grep "metrics: .*written again" router.log
'

test_expect_success CODEX,PROMTOOL 'metrics.textfile in codeswarm.yaml' '
	router_kill &&
	printf "metrics:\n  textfile: %s\n  interval: 1s\n" "$PWD/cfg.prom" >cfg.yaml &&
	router_start -c "$PWD/cfg.yaml" &&
	wait_for -t 10 test -f cfg.prom &&
	promtool check metrics <cfg.prom
'

test_expect_success 'a bad --metrics-interval is a usage error' '
	test_expect_code 1 codeswarm-router --socket --metrics-file x \
		--metrics-interval soon 2>err &&
	grep "metrics-interval: .soon. is not a duration" err
'

test_expect_success 'cleanup' '
	router_kill &&
	if test -f "$(swarm_dir met)/swarm.json"; then
		codeswarm cancel met --grace 5s >/dev/null
	fi
'

test_done
