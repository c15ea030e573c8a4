#!/bin/sh
test_description='on the Slurm test bed with accounting (slurmdbd): a swarm runs turns, its job ends, and report, status --json and the metrics show the node-hours sacct measured and tokens per node-hour'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"

codex_testbed_setup
slurm_acct_bed_setup
test_require_component JQ jq --version
test_require_component PROMTOOL promtool --version

sw=acct-$$

# the job's allocation row, once slurmdbd has its end: "NNodes ElapsedRaw"
acct_row () {
	sacct --parsable2 --noheader --allocations --jobs "$1" \
		--format State,NNodes,ElapsedRaw >row.raw 2>row.err &&
	grep -v "^\(PENDING\|RUNNING\|REQUEUED\|SUSPENDED\)|" row.raw |
		awk -F"|" "NF == 3 && \$3 > 0 { print \$2, \$3 }" | grep .
}
# near VALUE EXPR TOLERANCE: VALUE is within TOLERANCE of awk's EXPR
near () {
	awk "BEGIN { d = ($1) - ($2); exit !(d <= $3 && d >= -$3) }"
}
acct_final () {
	acct_row "$1" >/dev/null
}

test_expect_success SLURMACCT,CODEX 'a two-node swarm answers on each node' '
	codeswarm launch --nodes 2 --name $sw --time 10 >out 2>err &&
	grep "swarm $sw: submitted as job [0-9]" out &&
	codeswarm send $sw all "count me" &&
	wait_for -t 120 swarm_status_is $sw .turns 2 &&
	node_texts $sw 0 | grep "You said: count me" &&
	node_texts $sw 1 | grep "You said: count me"
'

test_expect_success SLURMACCT,CODEX 'its job ends and slurmdbd records it' '
	job=$(swarm_json $sw .job_id) &&
	codeswarm cancel $sw --grace 5s >out &&
	wait_for -t 60 slurm_job_done $job &&
	wait_for -t 60 acct_final $job &&
	acct_row $job >row &&
	read nnodes elapsed <row &&
	test "$nnodes" = 2 &&
	echo "$job $nnodes $elapsed" >job.acct
'

test_expect_success SLURMACCT,CODEX,JQ 'report: node-hours from sacct, tokens per node-hour and per turn' '
	read job nnodes elapsed <job.acct &&
	codeswarm report $sw >rep &&
	cat rep &&
	tokens=$(codeswarm report $sw --json | jq .tokens) &&
	test "$tokens" -gt 0 &&
	grep "swarm $sw: 2 nodes, 2 turns, $tokens tokens" rep &&
	grep "^$job  *[A-Z]*  *2 " rep &&
	nh=$(sed -n "s/^node-hours: //p" rep) &&
	near "$nh" "$nnodes * $elapsed / 3600" 0.00005 &&
	tph=$(sed -n "s/^tokens per node-hour: //p" rep) &&
	near "$tph" "$tokens / ($nnodes * $elapsed / 3600)" 0.05 &&
	tpt=$(awk "BEGIN { printf \"%.1f\", $tokens / 2 }") &&
	grep "^tokens per turn: $tpt$" rep &&
	! grep "no Slurm accounting" rep
'

test_expect_success SLURMACCT,CODEX,JQ 'status --json joins the same accounting' '
	read job nnodes elapsed <job.acct &&
	codeswarm status $sw --json >st.json &&
	jq -e ".[0].accounting.available == true" st.json &&
	jq -e ".[0].accounting.jobs[0].JobID == \"$job\"" st.json &&
	jq -e ".[0].accounting.jobs[0].ElapsedRaw == \"$elapsed\"" st.json &&
	jq -e "(.[0].accounting.node_hours - $nnodes * $elapsed / 3600 | fabs) < 1e-9" st.json &&
	jq -e "(.[0].accounting.tokens_per_node_hour * .[0].accounting.node_hours - .[0].accounting.tokens | fabs) < 1e-6" st.json
'

test_expect_success SLURMACCT,CODEX,PROMTOOL 'status --prometheus carries the node time and passes promtool' '
	read job nnodes elapsed <job.acct &&
	codeswarm status $sw --prometheus >m.prom &&
	promtool check metrics <m.prom &&
	grep "^codeswarm_swarm_accounting_available{swarm=\"$sw\"} 1$" m.prom &&
	v=$(sed -n "s/^codeswarm_swarm_node_seconds{swarm=\"$sw\"} //p" m.prom) &&
	near "$v" "$nnodes * $elapsed" 0.01
'

test_expect_success SLURMACCT 'cleanup: no job of this test is left' '
	test -f "$(swarm_dir $sw)/swarm.json" || return 0
	codeswarm cancel $sw --grace 5s >/dev/null &&
	wait_for -t 60 slurm_name_done $sw
'

test_done
