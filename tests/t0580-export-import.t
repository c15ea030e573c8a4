#!/bin/sh
test_description='codeswarm export and import: one tar.gz of a running or ended swarm, restored elsewhere and resumed with the real codex'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"

codex_testbed_setup
test_require_component JQ jq --version
test_require_component TAR tar --version
# a small filesystem of our own: a tmpfs in a private mount namespace
unshare_check_ () {
	unshare -rm sh -c "mkdir -p small && mount -t tmpfs -o size=64k none small"
}
test_require_component UNSHARE unshare_check_

home1=$CODESWARM_HOME
home2=$PWD/home2
codex2=$PWD/codex-home2

# the imported side: another codeswarm home and another codex home, as
# on another machine
elsewhere () {
	env CODESWARM_HOME="$home2" CODEX_HOME="$codex2" "$@"
}

no_import_left () {
	! test -d "$home2/swarms" ||
	test -z "$(ls -A "$home2/swarms" | grep -v "^${1:-NONE}\$")"
}

test_expect_success CODEX 'a local swarm of one node answers a prompt' '
	codeswarm launch --local --nodes 1 --name exp >out 2>err &&
	codeswarm send exp all "first words" &&
	wait_for -t 60 swarm_status_is exp .turns 1 &&
	node_texts exp 0 | grep "\[turn 1\] You said: first words"
'

test_expect_success CODEX,JQ,TAR 'export of the running swarm: a consistent cut' '
	codeswarm export exp -o run.tar.gz >out &&
	grep "swarm exp exported to .run.tar.gz." out &&
	tar -tzf run.tar.gz >list &&
	grep -x "exp/swarm.json" list &&
	grep -x "exp/export.json" list &&
	grep -x "exp/outbox/0.jsonl" list &&
	grep -x "exp/inbox/0.jsonl" list &&
	grep -x "exp/state/0.json" list &&
	grep -x "exp/config.json" list &&
	grep "^exp/rollouts/0/rollout-.*\.jsonl$" list &&
	mkdir x && tar -xzf run.tar.gz -C x &&
	jq -e ".format == \"codeswarm-export\" and .state == \"running\"" \
		x/exp/export.json &&
	last=$(tail -n1 x/exp/outbox/0.jsonl | jq .seq) &&
	test "$(jq ".streams[\"outbox/0.jsonl\"].last_seq" x/exp/export.json)" = "$last" &&
	for f in x/exp/outbox/*.jsonl x/exp/inbox/*.jsonl; do
		test "$(tail -c1 "$f" | od -An -c | tr -d " ")" = "\n" || return 1
	done &&
	ckpt=$(jq ".inbox_cursor.seq // 0" x/exp/state/0.json) &&
	test "$ckpt" -le "$(jq ".streams[\"inbox/0.jsonl\"].last_seq" x/exp/export.json)"
'

test_expect_success CODEX,JQ,TAR 'export of the ended swarm; no Slurm accounting for a local one' '
	pid=$(swarm_json exp .supervisor_pid) &&
	codeswarm cancel exp >out &&
	wait_for -t 10 pid_gone $pid &&
	codeswarm export exp >out &&
	test -f exp.tar.gz &&
	rm -rf x && mkdir x && tar -xzf exp.tar.gz -C x &&
	jq -e ".state == \"cancelled\"" x/exp/export.json &&
	jq -e ".accounting.available == false" x/exp/export.json &&
	jq -e ".rollouts[0].node == 0 and (.rollouts[0].thread_id | length) > 0" \
		x/exp/export.json &&
	test_cmp "$(swarm_dir exp)/outbox/0.jsonl" x/exp/outbox/0.jsonl &&
	! ls -A | grep "\.tmp"
'

test_expect_success CODEX 'the effective configuration has no secret values' '
	cat >secret.yaml <<-\EOF &&
	codex:
	  env: { OPENAI_API_KEY: sk-very-secret }
	EOF
	rm -rf y && mkdir y &&
	CODESWARM_CONFIG=$PWD/secret.yaml codeswarm export exp -o s.tar.gz &&
	tar -xzf s.tar.gz -C y &&
	grep "OPENAI_API_KEY=(removed)" y/exp/config.json &&
	! grep -r "sk-very-secret" y
'

test_expect_success CODEX,JQ 'import elsewhere, then launch --resume continues the thread' '
	mkdir -p "$codex2" && cp "$CODEX_HOME/config.toml" "$codex2/" &&
	elsewhere codeswarm import exp.tar.gz >out &&
	grep "swarm exp imported from .exp.tar.gz. (1 node)" out &&
	thread=$(jq -r .thread_id "$home1/swarms/exp/state/0.json") &&
	test "$(jq -r .thread_id "$home2/swarms/exp/state/0.json")" = "$thread" &&
	rollout=$(jq -r .rollout_path "$home2/swarms/exp/state/0.json") &&
	case "$rollout" in "$codex2"/sessions/*) ;; *) false ;; esac &&
	test -f "$rollout" &&
	elsewhere codeswarm launch --resume exp >out 2>err &&
	grep "swarm exp: started locally (1 node)" out &&
	grep "1/1 nodes ready" err &&
	elsewhere codeswarm send exp all "second words" &&
	wait_for -t 60 eval "CODESWARM_HOME=$home2 node_texts exp 0 | grep -q \"turn 2\\] You said: second words\"" &&
	test "$(jq -r "select(.type == \"ready\") | .thread_id" \
		"$home2/swarms/exp/outbox/0.jsonl" | tail -n1)" = "$thread" &&
	test "$(jq -r "select(.type == \"ready\") | .resumed" \
		"$home2/swarms/exp/outbox/0.jsonl" | tail -n1)" = true
'

test_expect_success CODEX 'resume refuses a swarm that runs; cancel it' '
	test_expect_code 2 elsewhere codeswarm launch --resume exp 2>err &&
	grep "is running, not over" err &&
	pid=$(CODESWARM_HOME=$home2 swarm_json exp .supervisor_pid) &&
	elsewhere codeswarm cancel exp &&
	wait_for -t 10 pid_gone $pid
'

test_expect_success CODEX 'import refuses an existing swarm id, and a thread already in the codex home' '
	test_expect_code 1 elsewhere codeswarm import exp.tar.gz 2>err &&
	grep "swarm .exp. exists already" err &&
	test_expect_code 1 elsewhere codeswarm import exp.tar.gz --as exp2 2>err &&
	grep "exists already (the thread is in this codex home)" err &&
	no_import_left exp
'

test_expect_success TAR 'import refuses symlinks, paths outside the root, other junk' '
	mkdir -p evil/state other &&
	echo "{}" >evil/swarm.json && echo x >other/file &&
	ln -s /etc evil/link &&
	tar --format=ustar -czf sym.tar.gz evil &&
	test_expect_code 1 elsewhere codeswarm import sym.tar.gz 2>err &&
	grep "evil/link. is a symbolic link: refused" err &&
	rm evil/link &&
	tar --format=ustar -czf out.tar.gz evil other &&
	test_expect_code 1 elsewhere codeswarm import out.tar.gz 2>err &&
	grep "other. is outside the archive.s root .evil/.: refused" err &&
	tar --format=ustar -czPf dotdot.tar.gz evil evil/../other/file &&
	test_expect_code 1 elsewhere codeswarm import dotdot.tar.gz 2>err &&
	grep "a path outside the archive.s root" err &&
	tar --format=ustar -czf nomanifest.tar.gz evil &&
	test_expect_code 1 elsewhere codeswarm import nomanifest.tar.gz 2>err &&
	grep "not a swarm export" err &&
	echo "not gzip" >junk.tar.gz &&
	test_expect_code 1 elsewhere codeswarm import junk.tar.gz 2>err &&
	grep "cannot import .junk.tar.gz." err &&
	test_expect_code 2 elsewhere codeswarm import exp.tar.gz --as ../x 2>err &&
	grep "not a valid swarm id" err &&
	no_import_left exp &&
	! test -e /etc/codeswarm-import-test
'

test_expect_success CODEX,UNSHARE 'an export that runs out of space leaves nothing and says why' '
	mkdir -p small &&
	test_expect_code 1 unshare -rm sh -c "mount -t tmpfs -o size=8k none small &&
		codeswarm export exp -o small/exp.tar.gz 2>err; rc=\$?;
		ls -A small >left; exit \$rc" &&
	grep "No space left on device" err &&
	grep "nothing was written" err &&
	test_must_be_empty left
'

test_expect_success 'export of an unknown swarm fails clearly' '
	test_expect_code 1 codeswarm export nosuch 2>err &&
	grep "no swarm .nosuch." err
'

test_expect_success 'cleanup: no supervisor left' '
	for h in "$home1" "$home2"; do
		test -f "$h/swarms/exp/swarm.json" || continue
		CODESWARM_HOME=$h codeswarm cancel exp --grace 5s >/dev/null &&
		pid=$(jq -r ".supervisor_pid // 0" "$h/swarms/exp/swarm.json") &&
		{ test "$pid" = 0 || wait_for -t 10 pid_gone "$pid"; } || return 1
	done
'

test_done
