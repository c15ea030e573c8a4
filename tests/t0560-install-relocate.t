#!/bin/sh
test_description='a relocatable install: make install, move the tree, every verb still finds its helpers, man pages and data'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

router_trap
codex_testbed_setup
test_require_component JQ jq --version
test_require_component MAN man -w man
lmod_check_ () {
	LMOD_CMD=${LMOD_CMD:-/usr/share/lmod/lmod/libexec/lmod} &&
	test -x "$LMOD_CMD"
}
test_require_component LMOD lmod_check_
LMOD_CMD=${LMOD_CMD:-/usr/share/lmod/lmod/libexec/lmod}

# the moved tree, and an environment that knows nothing of the build tree
# nor of the configured prefix
site=$PWD/site/codeswarm/1.0
moved_env () {
	env -u CODESWARM_EXEC_PATH -u CODESWARM_SBATCH_TEMPLATE \
		-u CODESWARM_WORKER -u MANPATH \
		PATH="$site/bin:/usr/bin:/bin" "$@"
}

test_expect_success 'make install into a staging directory, then move the tree' '
	prefix=$(sed -n "s/^prefix = //p" "$CODESWARM_BUILD_DIR/Makefile") &&
	test -n "$prefix" &&
	# a make of its own, not a job of the make that runs the tests
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -C "$CODESWARM_BUILD_DIR" install DESTDIR="$PWD/stage" \
		>install.log 2>&1 &&
	test -x "stage$prefix/bin/codeswarm" &&
	mkdir -p site/codeswarm &&
	mv "stage$prefix" "$site" &&
	rm -rf stage &&
	test -x "$site/bin/codeswarm" &&
	test -x "$site/libexec/codeswarm/codeswarm-launch"
'

test_expect_success 'the umbrella command finds the moved tree' '
	moved_env codeswarm --exec-path >out &&
	echo "$site/libexec/codeswarm" >expect &&
	test_cmp expect out &&
	moved_env codeswarm --man-path >out &&
	echo "$site/share/man" >expect &&
	test_cmp expect out &&
	moved_env codeswarm --data-path >out &&
	echo "$site/share/codeswarm" >expect &&
	test_cmp expect out &&
	moved_env codeswarm --version >out &&
	grep "^codeswarm [0-9]" out &&
	moved_env codeswarm help >out &&
	grep "^  launch " out
'

test_expect_success 'every verb reaches its program in the moved tree' '
	for v in launch status cancel doctor setup-codex; do
		moved_env codeswarm $v --help >out 2>&1 &&
		grep "usage: codeswarm $v" out || return 1
	done &&
	for v in send attach approvals approve interrupt; do
		test_might_fail moved_env codeswarm $v --help >out 2>&1 &&
		grep "usage: codeswarm $v" out || return 1
	done
'

test_expect_success 'launch uses the moved batch script template' '
	moved_env codeswarm launch --help >out &&
	grep "$site/share/codeswarm/codeswarm.sbatch.in" out &&
	test -f "$site/share/codeswarm/codeswarm.sbatch.in"
'

test_expect_success MAN 'codeswarm help shows the moved man pages' '
	MANOPT=-w moved_env codeswarm help codeswarm >out &&
	echo "$site/share/man/man1/codeswarm.1" >expect &&
	test_cmp expect out &&
	MANOPT=-w moved_env codeswarm help config >out &&
	echo "$site/share/man/man5/codeswarm.yaml.5" >expect &&
	test_cmp expect out &&
	MANOPT=-w moved_env codeswarm help router >out &&
	echo "$site/share/man/man1/codeswarm-router.1" >expect &&
	test_cmp expect out &&
	MANOPT=-w moved_env codeswarm help overview >out &&
	echo "$site/share/man/man7/codeswarm.7" >expect &&
	test_cmp expect out &&
	MANPAGER=cat MANWIDTH=80 moved_env codeswarm help codeswarm >page &&
	grep "codeswarm launch" page &&
	test_expect_code 2 moved_env codeswarm help nosuch 2>err &&
	grep "nosuch. is not a codeswarm verb nor a help topic" err
'

test_expect_success 'doctor runs from the moved tree' '
	test_might_fail moved_env codeswarm doctor >out 2>&1 &&
	! grep "cannot find" out &&
	grep -i codex out
'

test_expect_success LMOD 'the modulefile puts the moved tree on PATH and MANPATH' '
	mf=$site/share/modulefiles/codeswarm &&
	test -f "$mf"/*.lua &&
	(
		MODULEPATH=$site/share/modulefiles && export MODULEPATH &&
		PATH=/usr/bin:/bin && export PATH &&
		unset MANPATH CODESWARM_EXEC_PATH CODESWARM_SBATCH_TEMPLATE &&
		eval "$("$LMOD_CMD" sh load codeswarm)" &&
		test "$(command -v codeswarm)" = "$site/bin/codeswarm" &&
		case ":$MANPATH:" in *":$site/share/man:"*) ;; *) false ;; esac &&
		test "$CODESWARM_ROOT" = "$site" &&
		codeswarm --exec-path >out &&
		echo "$site/libexec/codeswarm" >expect &&
		test_cmp expect out
	)
'

test_expect_success CODEX,JQ 'a local swarm runs the moved worker, through the moved router' '
	env -u CODESWARM_EXEC_PATH PATH="$site/bin:/usr/bin:/bin" \
		codeswarm-router --socket -v </dev/null >>router.log 2>&1 \
		3>&- 4>&- 5>&- 6>&- &
	router_pid=$! &&
	wait_for -t 20 router_ready &&
	test "$(readlink /proc/$router_pid/exe)" = "$site/bin/codeswarm-router" &&
	moved_env codeswarm launch --local --nodes 1 --name rel >out 2>err &&
	grep "swarm rel: started locally (1 node)" out &&
	sup=$(swarm_json rel .supervisor_pid) &&
	test "$(readlink /proc/$sup/exe)" = \
		"$site/libexec/codeswarm/codeswarm-launch" &&
	wpid=$(jq -r "select(.type == \"worker_started\") | .pid" \
		"$(swarm_dir rel)/outbox/0.jsonl") &&
	test "$(readlink /proc/$wpid/exe)" = "$site/bin/codeswarm-worker" &&
	moved_env codeswarm status rel >st &&
	grep "^rel  *running  *local  *1/1 " st
'

test_expect_success CODEX,JQ 'send, attach, approvals, interrupt and cancel from the moved tree' '
	moved_env codeswarm send rel all "hello from a moved tree" &&
	wait_for -t 60 swarm_status_is rel .turns 1 &&
	moved_env timeout 60 codeswarm attach rel --since 0 --turns 1 >attach.out &&
	grep "You said: hello from a moved tree" attach.out &&
	moved_env codeswarm approvals rel >ap.out &&
	moved_env codeswarm interrupt rel all &&
	pid=$(swarm_json rel .supervisor_pid) &&
	moved_env codeswarm cancel rel >out &&
	grep "swarm rel: cancelled" out &&
	wait_for -t 10 pid_gone $pid
'

test_expect_success 'cleanup: no supervisor nor router left' '
	if test -f "$(swarm_dir rel)/swarm.json"; then
		moved_env codeswarm cancel rel --grace 5s >/dev/null &&
		pid=$(swarm_json rel ".supervisor_pid // 0") &&
		{ test "$pid" = 0 || wait_for -t 10 pid_gone "$pid"; }
	fi &&
	router_kill
'

test_done
