#!/bin/sh
test_description='codeswarm doctor runs a command under codex sandbox and names why it fails'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"

codex_testbed_setup
slurm_bed_setup

test_expect_success CODEX 'a CODEX_HOME outside TMPDIR: a sandboxed command runs' '
	codeswarm doctor >doctor.out 2>&1 || : &&
	grep "^ok    codex sandbox: a command runs under codex.s sandbox (CODEX_HOME $CODEX_HOME)" doctor.out
'

test_expect_success CODEX 'a CODEX_HOME under TMPDIR fails the check, and doctor says why' '
	cp -R "$CODEX_HOME" "$TMPDIR/codex-home" &&
	test_expect_code 1 env CODEX_HOME="$TMPDIR/codex-home" \
		codeswarm doctor >doctor.out 2>&1 &&
	grep "^FAIL  codex sandbox: sandboxed commands fail (bwrap: execvp codex-linux-sandbox: No such file or directory): CODEX_HOME .$TMPDIR/codex-home. is under TMPDIR .$TMPDIR." doctor.out &&
	grep "^      fix: use a CODEX_HOME outside the temporary directory" doctor.out &&
	grep "^some checks failed" doctor.out
'

test_expect_success CODEX 'the same through codex.home in codeswarm.yaml' '
	printf "codex:\n  home: %s\n" "$TMPDIR/codex-home" >tmp-home.yaml &&
	test_expect_code 1 codeswarm doctor --config tmp-home.yaml \
		>doctor.out 2>&1 &&
	grep "^FAIL  codex sandbox: .*CODEX_HOME .$TMPDIR/codex-home. is under TMPDIR" doctor.out
'

test_expect_success CODEX 'no sandbox to check with codex.sandbox: danger-full-access' '
	printf "codex:\n  sandbox: danger-full-access\n" >full.yaml &&
	env CODEX_HOME="$TMPDIR/codex-home" \
		codeswarm doctor --config full.yaml >doctor.out 2>&1 || : &&
	grep "^ok    codex sandbox: not used (codex.sandbox is danger-full-access)" doctor.out
'

test_expect_success SLURM,CODEX 'doctor --on-node finds the same cause on a compute node' '
	test_expect_code 1 env CODEX_HOME="$TMPDIR/codex-home" \
		codeswarm doctor --on-node >doctor.out 2>&1 &&
	grep "^ok    node: " doctor.out &&
	grep "^FAIL  codex sandbox: .*CODEX_HOME .$TMPDIR/codex-home. is under TMPDIR" doctor.out &&
	grep "^FAIL  node checks" doctor.out
'

test_done
