#!/bin/sh
test_description='codeswarm help VERB, --help of every verb, one exit-status convention, man pages that agree'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"

test_require_component GROFF groff --version

verbs="launch status cancel forget top doctor setup-codex send attach approvals
	approve interrupt"

test_expect_success 'codeswarm help VERB is VERB --help, for every verb' '
	for v in $verbs; do
		codeswarm help $v >help.out &&
		codeswarm $v --help >dash.out &&
		test_cmp dash.out help.out &&
		head -1 help.out | grep "^usage: codeswarm $v" || return 1
	done
'

test_expect_success 'codeswarm help lists the verbs and states the exit statuses' '
	codeswarm help >out &&
	grep "^  forget " out &&
	grep "codeswarm help VERB" out &&
	grep "0 done, 1 not done" out &&
	grep "2 usage error" out
'

test_expect_success 'help of something that is not a verb is a usage error' '
	test_expect_code 2 codeswarm help frobnicate 2>err &&
	grep "^codeswarm: .frobnicate. is not a codeswarm verb" err &&
	test_expect_code 2 codeswarm help send attach 2>err &&
	grep "help takes one verb" err
'

test_expect_success 'the verbs that talk to agents have a full --help' '
	codeswarm send --help >out &&
	grep "\-\-steer" out && grep "\-\-key KEY" out && grep "^Exit status" out &&
	codeswarm attach --help >out &&
	grep "\-\-json" out && grep "\-\-since N" out && grep "\-\-turns N" out &&
	grep "\-\-node K" out && grep "^Exit status" out &&
	codeswarm approvals --help >out &&
	grep "\-\-json" out && grep "^Exit status" out &&
	codeswarm approve --help >out &&
	grep "acceptForSession" out && grep "^  cancel" out && grep "^Exit status" out &&
	codeswarm interrupt --help >out &&
	grep "NODES" out && grep "^Exit status" out
'

test_expect_success 'a missing or bad argument is a usage error (exit 2) in every verb' '
	test_expect_code 2 codeswarm send 2>err && grep "usage: codeswarm send" err &&
	test_expect_code 2 codeswarm send s all "" 2>err && grep "nothing to send" err &&
	test_expect_code 2 codeswarm interrupt s 2>err &&
	test_expect_code 2 codeswarm interrupt s all --steer 2>err &&
	test_expect_code 2 codeswarm attach 2>err &&
	test_expect_code 2 codeswarm approvals a b 2>err &&
	test_expect_code 2 codeswarm approve x 2>err &&
	test_expect_code 2 codeswarm approve x maybe 2>err &&
	grep "is not a decision" err &&
	test_expect_code 2 codeswarm cancel 2>err &&
	test_expect_code 2 codeswarm launch 2>err &&
	test_expect_code 2 codeswarm forget 2>err &&
	test_expect_code 2 codeswarm status a b 2>err &&
	test_expect_code 2 codeswarm top a b 2>err
'

test_expect_success 'an unknown option is a usage error (exit 2) in every verb' '
	for v in $verbs; do
		test_expect_code 2 codeswarm $v --frobnicate 2>err &&
		grep -- "--frobnicate" err || { echo "verb $v"; return 1; }
	done
'

# render PAGE: the man page as plain text, one line
render () {
	groff -man -Tascii -P-cbou "$CODESWARM_BUILD_DIR/man/$1" 2>/dev/null |
		tr -s " \n" "  "
}

test_expect_success GROFF 'the codex binary precedence reads the same in every page' '
	sentence="The codex binary is codex.binary when it is set, else \$CODESWARM_CODEX, else <home>/tools/codex/bin/codex when it is executable, else codex on PATH." &&
	for p in man7/codeswarm.7 man5/codeswarm.yaml.5 man1/codeswarm-worker.1; do
		render $p | grep -F "$sentence" >/dev/null ||
		{ echo "$p does not say: $sentence"; return 1; }
	done
'

test_expect_success 'every codeswarm page a page refers to exists' '
	for f in "$CODESWARM_SRC_DIR"/man/man*/*.in; do
		sed -n "s/^\\.BR* \\(codeswarm[a-z.\\\\-]*\\) *(\\([1-8]\\)).*/\\1 \\2/p" "$f" |
		sed "s/\\\\-/-/g" |
		while read name sec; do
			test -f "$CODESWARM_SRC_DIR/man/man$sec/$name.$sec.in" ||
			{ echo "$f refers to $name($sec), which does not exist"; exit 1; }
		done || return 1
	done
'

test_expect_success 'codeswarm(1) examples use swarm ids as launch makes them' '
	sed -n "/^\\.SH EXAMPLES/,/^\\.SH/p" "$CODESWARM_SRC_DIR/man/man1/codeswarm.1.in" |
		sed "s/\\\\-/-/g" >examples &&
	grep "codeswarm send sw-[0-9]\\{8\\}-[0-9]\\{6\\}-[0-9a-f]\\{4\\} all" examples &&
	! grep -E "codeswarm (send|attach|cancel|interrupt) [^s]" examples &&
	grep "make_id\\|sw-%04d%02d%02d-%02d%02d%02d-%04x" \
		"$CODESWARM_SRC_DIR/slurm/launch.c"
'

test_expect_success 'the exit statuses are documented as the verbs use them' '
	render man1/codeswarm.1 >page &&
	grep -q -F "EXIT STATUS Every verb follows one convention: 0 done. 1 not done" page &&
	grep -q -F "2 a usage error: an unknown option, a bad or missing argument; nothing was done." page
'

test_done
