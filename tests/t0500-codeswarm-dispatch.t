#!/bin/sh
test_description='codeswarm: the umbrella command finds and runs the programs of its verbs'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"

test_expect_success 'codeswarm --help lists every verb' '
	codeswarm --help >help.out &&
	for v in launch status cancel doctor setup-codex send attach approvals \
	         approve interrupt; do
		grep "^  $v " help.out || return 1
	done
'

test_expect_success 'codeswarm --version prints the version' '
	codeswarm --version >version.out &&
	grep "^codeswarm [0-9]" version.out
'

test_expect_success 'no verb is a usage error' '
	test_expect_code 2 codeswarm 2>err &&
	grep "usage: codeswarm VERB" err
'

test_expect_success 'an unknown verb is exit 2 with a clear message' '
	test_expect_code 2 codeswarm frobnicate 2>err &&
	grep "'"'"'frobnicate'"'"' is not a codeswarm verb" err &&
	test_expect_code 2 codeswarm --frob 2>err &&
	grep "unknown option" err
'

test_expect_success 'launch verbs reach codeswarm-launch' '
	codeswarm launch --help >out &&
	grep "usage: codeswarm launch --nodes N" out &&
	codeswarm status --help >out &&
	grep "usage: codeswarm status" out &&
	codeswarm cancel --help >out &&
	grep "usage: codeswarm cancel SWARM" out &&
	codeswarm doctor --help >out &&
	grep "usage: codeswarm doctor" out &&
	codeswarm setup-codex --help >out &&
	grep "usage: codeswarm setup-codex" out
'

test_expect_success 'client verbs reach codeswarm-client' '
	test_must_fail codeswarm send >out 2>&1 &&
	grep "codeswarm send SWARM NODES" out
'

test_expect_success 'arguments pass through unchanged' '
	test_expect_code 2 codeswarm launch --nodes "two words" 2>err &&
	grep "two words" err
'

test_expect_success 'a program missing from CODESWARM_EXEC_PATH is reported' '
	mkdir empty &&
	(CODESWARM_EXEC_PATH=$PWD/empty && export CODESWARM_EXEC_PATH &&
	 PATH=/usr/bin:/bin && export PATH &&
	 test_expect_code 127 "$CODESWARM_BUILD_DIR/tools/codeswarm" status 2>err) &&
	grep "cannot find .codeswarm-launch. for verb .status. in CODESWARM_EXEC_PATH ($PWD/empty)" err &&
	grep "hint: add the directory that holds .codeswarm-launch. to CODESWARM_EXEC_PATH, or unset it" err
'

# CODESWARM_EXEC_PATH replaces the compiled-in directory (it does not come
# before it): an installed copy under the prefix (make check after make
# install) cannot stand in for a helper the build tree lacks
test_expect_success 'a helper missing from CODESWARM_EXEC_PATH is not taken from the prefix' '
	(CODESWARM_EXEC_PATH=$PWD/empty && export CODESWARM_EXEC_PATH &&
	 test_expect_code 127 codeswarm launch --help >out 2>err) &&
	test_must_be_empty out &&
	grep "cannot find .codeswarm-launch. for verb .launch. in CODESWARM_EXEC_PATH" err
'

test_expect_success 'the first directory of CODESWARM_EXEC_PATH that has it wins' '
	mkdir -p fake &&
	printf "#!/bin/sh\necho fake-launch \"\$@\"\n" >fake/codeswarm-launch &&
	chmod +x fake/codeswarm-launch &&
	CODESWARM_EXEC_PATH=$PWD/empty:$PWD/fake:$CODESWARM_EXEC_PATH \
		codeswarm status a "b c" >out &&
	echo "fake-launch status a b c" >expect &&
	test_cmp expect out
'

test_done
