#!/bin/sh
test_description='the sharness test library itself'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"

# run a nested test script and capture its TAP
run_sub () {
    cat > "$1.t" &&
    chmod +x "$1.t" &&
    (unset TEST_VERBOSE CODESWARM_TEST_REQUIRE_ALL; "./$1.t") > "$1.out" 2> "$1.err"
}

test_expect_success 'environment is set up' '
    test -d "$CODESWARM_HOME" &&
    test "$(stat -c %a "$CODESWARM_HOME")" = 700 &&
    test -z "$CODESWARM_CONFIG" &&
    case "$PATH" in "$CODESWARM_BUILD_DIR/mailbox:"*) ;; *) false ;; esac &&
    test "$CODESWARM_EXEC_PATH" = "$CODESWARM_BUILD_DIR/router:$CODESWARM_BUILD_DIR/slurm:$CODESWARM_BUILD_DIR/run:$CODESWARM_BUILD_DIR/tools" &&
    test "$(pwd)" = "$SHARNESS_TRASH_DIRECTORY" &&
    test -f "$TEST_SRC_DIR/sharness.sh"
'

test_expect_success 'variables carry over between tests' '
    carried=yes
'
test_expect_success 'variables carry over between tests (2)' '
    test "$carried" = yes
'

test_expect_success 'passing, failing, skipped and broken tests' '
    test_must_fail run_sub sub1 <<-\INNER &&
	#!/bin/sh
	test_description=sub
	. "$TEST_SRC_DIR/sharness.sh"
	test_set_prereq HAVE
	test_expect_success "pass" "true"
	test_expect_success "fail" "false"
	test_expect_success NOPE "skipped" "false"
	test_expect_success HAVE "with prereq" "true"
	test_expect_success !HAVE "negated" "false"
	test_expect_failure "broken" "false"
	test_done
	INNER
    cat >expect <<-\EOF &&
	ok 1 - pass
	not ok 2 - fail
	#	false
	ok 3 # skip skipped (missing NOPE)
	ok 4 - with prereq
	ok 5 # skip negated (missing !HAVE)
	not ok 6 - broken # TODO known breakage
	1..6
	EOF
    grep -v "^# failed" sub1.out >actual &&
    test_cmp expect actual &&
    test -d "$TEST_BUILD_DIR/trash.sub1"
'

test_expect_success 'trash directory is removed on success' '
    run_sub sub2 <<-\INNER &&
	#!/bin/sh
	test_description=sub
	. "$TEST_SRC_DIR/sharness.sh"
	test_expect_success "pass" "touch x"
	test_done
	INNER
    grep "^1\.\.1$" sub2.out &&
    ! test -e "$TEST_BUILD_DIR/trash.sub2"
'

test_expect_success 'test_when_finished runs, and its failure fails the test' '
    test_must_fail run_sub sub3 <<-\INNER &&
	#!/bin/sh
	test_description=sub
	. "$TEST_SRC_DIR/sharness.sh"
	test_expect_success "cleanup" "test_when_finished \"touch cleaned\" && false"
	test_expect_success "cleaned" "test -f cleaned"
	test_expect_success "bad cleanup" "test_when_finished false && true"
	test_done
	INNER
    grep "^not ok 1 - cleanup" sub3.out &&
    grep "^ok 2 - cleaned" sub3.out &&
    grep "^not ok 3 - bad cleanup" sub3.out
'

test_expect_success 'test_require_component skips, or fails under REQUIRE_ALL' '
    cat >sub4.body <<-\INNER &&
	#!/bin/sh
	test_description=sub
	. "$TEST_SRC_DIR/sharness.sh"
	test_require_component THERE true
	test_require_component GONE false
	test_expect_success THERE "there" "true"
	test_expect_success GONE "gone" "true"
	test_done
	INNER
    run_sub sub4 <sub4.body &&
    grep "^ok 1 - there" sub4.out &&
    grep "^ok 2 # skip gone (missing GONE)" sub4.out &&
    cp sub4.body sub5.t && chmod +x sub5.t &&
    test_must_fail env CODESWARM_TEST_REQUIRE_ALL=1 ./sub5.t >sub5.out &&
    grep "^not ok 1 - component GONE is required but missing" sub5.out
'

test_expect_success 'unexpected exit is reported as a failure' '
    test_must_fail run_sub sub6 <<-\INNER &&
	#!/bin/sh
	test_description=sub
	. "$TEST_SRC_DIR/sharness.sh"
	test_expect_success "exits" "exit 0"
	test_done
	INNER
    grep "^not ok 1 - FATAL: unexpected exit" sub6.out
'

test_expect_success 'test_skip_all' '
    run_sub sub7 <<-\INNER &&
	#!/bin/sh
	test_description=sub
	. "$TEST_SRC_DIR/sharness.sh"
	test_skip_all "nothing to do"
	INNER
    grep "^1\.\.0 # SKIP nothing to do" sub7.out
'

test_expect_success 'verbose output goes to stderr, never to the TAP stream' '
    cat >sub8.t <<-\INNER &&
	#!/bin/sh
	test_description=sub
	. "$TEST_SRC_DIR/sharness.sh"
	test_expect_success "chatty" "echo ok 99 - fake; echo err >&2"
	test_done
	INNER
    chmod +x sub8.t &&
    ./sub8.t -v >sub8.out 2>sub8.err &&
    ! grep "fake" sub8.out &&
    grep "ok 99 - fake" sub8.err &&
    TEST_VERBOSE=1 ./sub8.t >sub8.out 2>sub8.err &&
    grep "^err$" sub8.err
'

test_expect_success 'test_must_fail, test_expect_code, test_line_count' '
    test_must_fail false &&
    ! test_must_fail true &&
    ! test_must_fail sh -c "kill -9 \$\$" &&
    ! test_must_fail no-such-command-here &&
    test_expect_code 3 sh -c "exit 3" &&
    ! test_expect_code 3 true &&
    printf "a\nb\n" >two &&
    test_line_count = 2 two &&
    ! test_line_count = 3 two
'

test_expect_success 'test_might_fail, test_must_be_empty' '
    test_might_fail false &&
    test_might_fail true &&
    ! test_might_fail sh -c "kill -9 \$\$" &&
    : >empty &&
    test_must_be_empty empty &&
    echo x >full &&
    ! test_must_be_empty full &&
    ! test_must_be_empty missing
'

test_expect_success 'wait_for and wait_for_file' '
    { (sleep 0.3; echo hi >later) & } &&
    wait_for_file later 5 &&
    ! wait_for -t 0.3 test -e never &&
    wait_for -t 5 grep -q hi later
'

# the sub-tests that failed on purpose kept their trash directories
test_expect_success 'remove the sub-tests trash directories' '
    rm -rf "$TEST_BUILD_DIR"/trash.sub[0-9]* &&
    ! ls -d "$TEST_BUILD_DIR"/trash.sub[0-9]* 2>/dev/null
'

test_done
