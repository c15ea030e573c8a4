#!/bin/sh
test_description='codeswarm setup-codex: a pinned codex under <home>/tools from npm'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"

# npm and its registry (or a cache that has the package: the test bed's
# codex-install fills it)
npm_check_ () {
	command -v npm >/dev/null &&
	npm view --prefer-offline "@openai/codex@0.169.0" version >/dev/null 2>&1
}
test_require_component NPM npm_check_

test_expect_success 'a bad --version is refused' '
	test_expect_code 2 codeswarm setup-codex --version "1.0;rm" 2>err &&
	grep "is not a version" err &&
	test_expect_code 2 codeswarm setup-codex --bogus 2>err &&
	grep "unknown option" err
'

test_expect_success NPM 'setup-codex installs codex 0.169.0 and links bin/codex' '
	unset CODESWARM_CODEX &&
	codeswarm setup-codex >out 2>err &&
	link=$CODESWARM_HOME/tools/codex/bin/codex &&
	test -L "$link" &&
	test -x "$link" &&
	readlink "$link" | grep "^\.\./node_modules/@openai/codex-linux-.*/codex$" &&
	grep "^$link: codex-cli 0.169.0$" out &&
	"$link" --version | grep "codex-cli 0.169.0"
'

test_expect_success NPM 'running it again does nothing' '
	codeswarm setup-codex >out 2>err &&
	grep "already installed" err &&
	grep "codex-cli 0.169.0" out
'

test_expect_success NPM 'doctor finds the installed codex' '
	unset CODESWARM_CODEX &&
	CODEX_HOME=$PWD/codex-home && export CODEX_HOME &&
	mkdir -p "$CODEX_HOME" &&
	test_might_fail_ () { "$@"; return 0; } &&
	test_might_fail_ codeswarm doctor >doctor.out &&
	grep "^ok    codex binary: $CODESWARM_HOME/tools/codex/bin/codex (installed by setup-codex)" doctor.out &&
	grep "^ok    codex version: codex-cli 0.169.0" doctor.out
'

test_expect_success 'doctor says how to fix a missing codex' '
	rm -rf "$CODESWARM_HOME/tools" &&
	CODESWARM_CODEX= PATH=/usr/bin:/bin test_expect_code 1 \
		"$CODESWARM_BUILD_DIR/slurm/codeswarm-launch" doctor >doctor.out &&
	grep "^FAIL  codex binary: not found" doctor.out &&
	grep "fix: run .codeswarm setup-codex." doctor.out &&
	grep "some checks failed" doctor.out
'

test_done
