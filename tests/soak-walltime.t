#!/bin/bash
test_description='soak (make soak): a persistent swarm on the Slurm test bed through many walltime expirations'
# Not part of make check: it takes about 2.5 minutes per expiration.
# CODESWARM_SOAK_EXPIRIES (default 10) expirations of 2-minute jobs with
# --warn CODESWARM_SOAK_WARN (default 10s); a prompt before each one; no
# prompt lost or run twice; then the figures of the chain: the walltime
# lost per expiry, from the events.

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"

codex_testbed_setup
slurm_bed_setup
test_require_component JQ jq --version

sw=soak-$$
n=${CODESWARM_SOAK_EXPIRIES:-10}
warn=${CODESWARM_SOAK_WARN:-10s}

cleanup_ () {
	rc_=$?
	codeswarm cancel $sw >/dev/null 2>&1
	(exit $rc_)
	sharness_die_
}
trap cleanup_ EXIT

# prompts "soak-<i>-": none is a prefix of another
answered_once () {
	test "$(node_texts $sw 0 | grep -c -F -- "You said: soak-$1-")" = 1
}

test_expect_success SLURM,CODEX,JQ 'a persistent one-node swarm of 2-minute jobs' '
	codeswarm launch --nodes 1 --name $sw --time 2 --persist \
		--warn $warn >out 2>err
'

test_expect_success SLURM,CODEX,JQ "$n expirations, a prompt in each job, each run once" '
	i=1 &&
	while test $i -le $n; do
		codeswarm send $sw 0 "soak-$i-" &&
		wait_for -t 120 answered_once $i &&
		wait_for -t 240 swarm_event_is $sw session_resumed $i || return 1
		i=$((i + 1))
	done &&
	i=1 &&
	while test $i -le $n; do
		answered_once $i || return 1
		i=$((i + 1))
	done &&
	test "$(node_count $sw 0 ".type == \"inject_accepted\"")" = $n
'

# per expiry, from the swarm's events and the node's records:
#   warned:  job start + walltime - the warning (the walltime not served)
#   gap:     the warning -> the node ready again in the successor
test_expect_success SLURM,CODEX,JQ 'the figures' '
	wait_for -t 60 swarm_status_is $sw .ready 1 &&
	secs=$(swarm_json $sw .options.time_secs) &&
	jq -s --argjson T "$secs" "
		(map(select(.type == \"job_started\"))) as \$st |
		(map(select(.type == \"walltime_warning\"))) as \$w |
		[range(0; \$w | length) as \$i |
			{job: \$w[\$i].job_id, source: \$w[\$i].source,
			 unserved: ((\$st[\$i].ts + \$T) - \$w[\$i].ts),
			 start: \$st[\$i].ts, warned: \$w[\$i].ts}]
		" "$(swarm_dir $sw)/outbox/swarm.jsonl" >expiries.json &&
	jq -r "select(.type == \"ready\") | .ts" \
		"$(swarm_dir $sw)/outbox/0.jsonl" >ready.ts &&
	jq -r ".[] | [.job, .source, .warned, .unserved] | @tsv" \
		expiries.json >expiries.tsv &&
	awk -v T="$secs" "
		NR == FNR { ready[++r] = \$1; next }
		{ w = \$3; nx = 0
		  for (k = 1; k <= r; k++) if (ready[k] > w) { nx = ready[k]; break }
		  if (!nx) next
		  gap = nx - w; un = \$4; m++
		  su += un; sg += gap; if (gap > mg) mg = gap
		  if (\$2 == \"timer\") timer++
		  printf \"expiry %d: job %s, warned by the %s %.1f s before the limit, node ready again %.1f s after the warning\n\", m, \$1, \$2, un, gap }
		END { if (!m) exit 1
		  printf \"walltime %d s, %d expiries (%d warned by the job timer)\n\", T, m, timer
		  printf \"walltime not served per expiry: %.1f s (%.1f %%)\n\", su / m, 100 * su / m / T
		  printf \"service gap per expiry (warning -> ready): mean %.1f s (%.1f %%), max %.1f s\n\", sg / m, 100 * sg / m / T, mg
		}" ready.ts expiries.tsv >figures &&
	cat figures &&
	test "$(grep -c "^expiry" figures)" -ge $n
'

test_expect_success SLURM,CODEX,JQ 'cancel stops the chain' '
	codeswarm cancel $sw &&
	wait_for -t 120 slurm_name_done $sw
'

test_done
