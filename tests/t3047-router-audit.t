#!/bin/sh
test_description='the audit trail: who injected, interrupted, approved, launched and cancelled, from where, through the router and without it'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

router_trap
codex_testbed_setup
test_require_component JQ jq --version

trail () {
	echo "$(swarm_dir aud)/audit.jsonl"
}
# entries of the trail matching a jq boolean
entries () {
	jq -c "select($1)" "$(trail)" 2>/dev/null | wc -l
}
entries_are () {
	test "$(entries "$1")" -ge "$2"
}
me=$(id -un)
# the way in is "ssh" under sshd: not here
unset SSH_CONNECTION

test_expect_success CODEX,JQ 'setup: a local swarm with an approval rule, a router on the socket' '
	cat >cfg.yaml <<-\EOF &&
	approvals:
	  rules:
	    - { prefix: "echo by-policy", decision: accept }
	EOF
	codeswarm launch --local --nodes 1 --name aud --config "$PWD/cfg.yaml" \
		>out 2>err &&
	router_start &&
	entries_are ".action == \"launch\" and .via == \"cli\" and .who.user == \"$me\"" 1
'

test_expect_success CODEX,JQ 'the trail is a private file' '
	test "$(stat -c %a "$(trail)")" = 600
'

test_expect_success CODEX,JQ 'an injection through the socket: who, from where, what' '
	codeswarm send aud all "audited words" >ack &&
	inj=$(awk "{print \$2}" ack) &&
	wait_for -t 30 entries_are ".action == \"inject\" and .id == \"$inj\"" 1 &&
	jq -e "select(.id == \"$inj\") | .via == \"socket\" and .who.uid == $(id -u)
		and .who.user == \"$me\" and .node == 0 and .result == \"ok\"
		and .inbox_seq > 0 and (.peer | startswith(\"pid \"))" "$(trail)"
'

test_expect_success CODEX,JQ 'an approval decided by a person, and one by the policy rule' '
	codeswarm send aud 0 "ESCALATE: echo by-hand" &&
	wait_for -t 60 eval "codeswarm approvals aud --json | jq -e \"length == 1\" >/dev/null" &&
	aid=$(codeswarm approvals aud --json | jq -r ".[0].approval_id") &&
	codeswarm approve "$aid" decline &&
	wait_for -t 30 entries_are ".action == \"approval\" and .approval_id == \"$aid\"" 1 &&
	jq -e "select(.approval_id == \"$aid\") | .decision == \"decline\"
		and .decided_by == \"client\" and .via == \"socket\"" "$(trail)" &&
	codeswarm send aud 0 "ESCALATE: echo by-policy" &&
	wait_for -t 60 entries_are ".decided_by == \"policy\"" 1 &&
	jq -e "select(.decided_by == \"policy\") | .decision == \"accept\"
		and .rule.index == 0 and .rule.prefix == \"echo by-policy\"
		and .via == \"worker\"" "$(trail)"
'

test_expect_success CODEX,JQ 'an interrupt; the trail survives a router restart' '
	before=$(wc -l <"$(trail)") &&
	head -n "$before" "$(trail)" >kept &&
	router_kill &&
	router_start &&
	codeswarm interrupt aud 0 &&
	wait_for -t 30 entries_are ".action == \"interrupt\"" 1 &&
	test "$(wc -l <"$(trail)")" -gt "$before" &&
	head -n "$before" "$(trail)" >now &&
	test_cmp kept now
'

test_expect_success CODEX,JQ 'without a router the client verbs write the trail themselves' '
	router_kill &&
	codeswarm send aud 0 "no router here" &&
	entries_are ".action == \"inject\" and .via == \"mailbox\"" 1 &&
	SSH_CONNECTION="192.0.2.7 50000 192.0.2.1 22" \
		codeswarm send aud 0 "over ssh, no router" &&
	entries_are ".via == \"ssh\" and .peer == \"192.0.2.7\"
		and .through == \"mailbox\"" 1 &&
	router_start
'

test_expect_success CODEX,JQ 'a trail that cannot be written: logged, retried, the router goes on' '
	mv "$(trail)" trail.saved &&
	mkdir "$(trail)" &&
	codeswarm send aud 0 "while the trail is broken" >ack &&
	inj=$(awk "{print \$2}" ack) &&
	wait_for -t 10 grep -q "audit: .* (will retry)" router.log &&
	cp trail.saved trail.new && chmod 600 trail.new &&
	rmdir "$(trail)" &&
	# the old trail goes back, unless the router, retrying, made a new
	# one first: then the old entries go before what it wrote
	{ ln trail.new "$(trail)" 2>/dev/null ||
	  { cat "$(trail)" >>trail.new && mv trail.new "$(trail)"; }; } &&
	wait_for -t 20 entries_are ".id == \"$inj\"" 1 &&
	grep "audit: written again" router.log &&
	codeswarm status aud >/dev/null
'

test_expect_success CODEX,JQ 'cancel through the launcher is in the trail' '
	pid=$(swarm_json aud .supervisor_pid) &&
	codeswarm cancel aud &&
	wait_for -t 10 pid_gone $pid &&
	entries_are ".action == \"cancel\" and .via == \"cli\"" 1
'

test_expect_success CODEX,JQ 'codeswarm audit shows the trail, as text and as JSON' '
	codeswarm audit aud >out &&
	grep "  aud  *$me($(id -u))  *socket  *inject  *node 0 inj-" out &&
	grep "  worker  *approval .*accept by policy (rule \"echo by-policy\")" out &&
	grep "  cli  *launch" out &&
	grep "  cli  *cancel" out &&
	codeswarm audit aud --json >all.json &&
	test "$(jq length all.json)" = "$(wc -l <"$(trail)")" &&
	codeswarm audit >every &&
	test "$(wc -l <every)" = "$(wc -l <"$(trail)")"
'

test_expect_success CODEX,JQ 'a bad line is reported with its number, the rest still shown' '
	cp "$(trail)" trail.good &&
	echo "{not json" >>"$(trail)" &&
	test_expect_code 1 codeswarm audit aud >out 2>err &&
	grep "audit.jsonl:$(($(wc -l <trail.good) + 1)): not an audit entry" err &&
	test "$(wc -l <out)" = "$(wc -l <trail.good)" &&
	cp trail.good "$(trail)"
'

test_expect_success CODEX,JQ 'a launch through the router names the client of the router' '
	codeswarm launch --local --nodes 1 --name aud2 >out 2>err &&
	jq -e "select(.action == \"launch\") | .via == \"socket\"
		and .through == \"router\" and .who.user == \"$me\"
		and (.peer | startswith(\"pid \"))" \
		"$(swarm_dir aud2)/audit.jsonl" &&
	pid=$(swarm_json aud2 .supervisor_pid) &&
	codeswarm cancel aud2 >/dev/null &&
	wait_for -t 10 pid_gone $pid
'

test_expect_success 'cleanup' '
	router_kill &&
	for s in aud aud2; do
		test -f "$(swarm_dir $s)/swarm.json" || continue
		codeswarm cancel $s --grace 5s >/dev/null || return 1
	done
'

test_done
