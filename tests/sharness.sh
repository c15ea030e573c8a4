# sharness.sh - a small sharness-style TAP library for codeswarm's program
# tests.  Source it from a test script after setting test_description:
#
#   #!/bin/sh
#   test_description='what this script tests'
#   . "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
#   test_expect_success 'name' 'commands'
#   test_done
#
# Output is TAP (what automake's tap-driver.sh reads) on stdout.  Test
# bodies run in the current shell (variables carry over between tests) with
# their stdout and stderr discarded, or sent to stderr with -v/--verbose or
# TEST_VERBOSE=1 (stderr is the log, never parsed as TAP).
#
# Options: -v|--verbose, -d|--debug (keep the trash directory),
#          -i|--immediate (stop at the first failure).
#
# Environment set for the tests:
#   PATH                 $CODESWARM_BUILD_DIR/{mailbox,worker,router,slurm,run,tools}
#                        first
#   CODESWARM_EXEC_PATH  the build tree's helper directories
#   CODESWARM_HOME       <trash>/home (0700); CODESWARM_CONFIG is unset
#   TEST_SRC_DIR, TEST_BUILD_DIR  the tests/ directory in each tree
#   SHARNESS_TRASH_DIRECTORY      the per-script scratch directory (the cwd)

# ---- locate the trees ----------------------------------------------------

if test -z "$CODESWARM_SRC_DIR"; then
    CODESWARM_SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
fi
if test -z "$CODESWARM_BUILD_DIR"; then
    # run by hand from the build tree's tests/ directory, or in-tree
    if test -d ../mailbox && test -f ../Makefile; then
        CODESWARM_BUILD_DIR=$(cd .. && pwd)
    else
        CODESWARM_BUILD_DIR=$CODESWARM_SRC_DIR
    fi
fi
export CODESWARM_SRC_DIR CODESWARM_BUILD_DIR
TEST_SRC_DIR=$CODESWARM_SRC_DIR/tests
TEST_BUILD_DIR=$CODESWARM_BUILD_DIR/tests
export TEST_SRC_DIR TEST_BUILD_DIR

# ---- options -------------------------------------------------------------

test "$TEST_VERBOSE" = 1 || test "$TEST_VERBOSE" = t && verbose=t
while test $# -gt 0; do
    case "$1" in
    -v|--verbose) verbose=t ;;
    -d|--debug) debug=t ;;
    -i|--immediate) immediate=t ;;
    *) echo "error: unknown test option '$1'" >&2; exit 1 ;;
    esac
    shift
done

# ---- environment ---------------------------------------------------------

b=$CODESWARM_BUILD_DIR
PATH=$b/mailbox:$b/worker:$b/router:$b/slurm:$b/run:$b/tools:$PATH
export PATH
CODESWARM_EXEC_PATH=$b/router:$b/slurm:$b/run:$b/tools
export CODESWARM_EXEC_PATH
unset b
unset CODESWARM_CONFIG
LC_ALL=C
export LC_ALL
TZ=UTC
export TZ

this_test=$(basename "$0" .t)
this_test=${this_test%.sh}
SHARNESS_TEST_NAME=$this_test
mkdir -p "$TEST_BUILD_DIR" || exit 1
SHARNESS_TRASH_DIRECTORY=$TEST_BUILD_DIR/trash.$this_test
export SHARNESS_TRASH_DIRECTORY

# fd 5: TAP (the real stdout); fd 6: the log (the real stderr);
# fd 3/4: where test bodies' stdout/stderr go
exec 5>&1 6>&2
if test "$verbose" = t; then
    exec 3>&2 4>&2
else
    exec 3>/dev/null 4>/dev/null
fi

test_count=0
test_success=0
test_failure=0
test_fixed=0
test_broken=0
test_skipped=0
test_cleanup=
test_prereqs=" "

say () {
    echo "# $*" >&5
}

say_err () {
    echo "$*" >&6
}

error () {
    say_err "error: $*"
    trap - EXIT
    exit 1
}

sharness_die_ () {
    code=$?
    if test -n "$sharness_exit_ok"; then
        exit $code
    fi
    # inside a test body the test was already counted
    test -n "$in_test_" || test_count=$((test_count + 1))
    echo "not ok $test_count - FATAL: unexpected exit with code $code" >&5
    echo "1..$test_count" >&5
    exit 1
}
trap 'sharness_die_' EXIT

# ---- trash directory -------------------------------------------------------

rm -rf "$SHARNESS_TRASH_DIRECTORY" || error "cannot remove old '$SHARNESS_TRASH_DIRECTORY'"
mkdir -p "$SHARNESS_TRASH_DIRECTORY" || error "cannot create '$SHARNESS_TRASH_DIRECTORY'"
cd "$SHARNESS_TRASH_DIRECTORY" || error "cannot enter '$SHARNESS_TRASH_DIRECTORY'"
CODESWARM_HOME=$SHARNESS_TRASH_DIRECTORY/home
(umask 077 && mkdir -p "$CODESWARM_HOME") || error "cannot create '$CODESWARM_HOME'"
chmod 0700 "$CODESWARM_HOME"
export CODESWARM_HOME
# A UNIX socket's path holds at most 107 bytes.  In a deep build tree (make
# distcheck, a CI folder) <home>/run/router.sock of a test with a long name
# would not fit: the router then puts its socket where it does on a login
# node with XDG_RUNTIME_DIR, in a short private directory of this test's
sharness_runtime_dir=
if test ${#SHARNESS_TRASH_DIRECTORY} -gt 56; then
    sharness_runtime_dir=$(mktemp -d "${TMPDIR:-/tmp}/csrun.XXXXXX") ||
        error "cannot create a runtime directory"
    XDG_RUNTIME_DIR=$sharness_runtime_dir
    export XDG_RUNTIME_DIR
fi

# ---- prerequisites ---------------------------------------------------------

test_set_prereq () {
    test_prereqs="$test_prereqs$1 "
}

# test_have_prereq A,B,!C: true when all listed prereqs hold
test_have_prereq () {
    save_IFS_=$IFS
    IFS=,
    set -- $1
    IFS=$save_IFS_
    for p_ in "$@"; do
        case "$p_" in
        !*)
            case "$test_prereqs" in
            *" ${p_#!} "*) missing_prereq=$p_; return 1 ;;
            esac
            ;;
        *)
            case "$test_prereqs" in
            *" $p_ "*) ;;
            *) missing_prereq=$p_; return 1 ;;
            esac
            ;;
        esac
    done
    return 0
}

# test_require_component NAME CHECK-CMD...: set prereq NAME when the check
# passes.  When it fails and CODESWARM_TEST_REQUIRE_ALL=1, a failing test
# is reported instead, so that a CI run with a missing component fails.
test_require_component () {
    name_=$1
    shift
    if ("$@") >&3 2>&4; then
        test_set_prereq "$name_"
        return 0
    fi
    if test "$CODESWARM_TEST_REQUIRE_ALL" = 1; then
        test_count=$((test_count + 1))
        test_failure=$((test_failure + 1))
        echo "not ok $test_count - component $name_ is required but missing" >&5
        echo "#	check failed: $*" >&5
    else
        say "component $name_ is missing (check: $*); its tests are skipped"
    fi
    return 1
}

# ---- running tests ---------------------------------------------------------

test_when_finished () {
    test_cleanup="{ $*
} && (exit \"\$eval_ret\"); eval_ret=\$?; $test_cleanup"
}

test_eval_ () {
    # The body runs in this shell; its output goes to fd 3/4.  fd 5/6 (the
    # TAP stream and the log) are closed for it, so that a process it leaves
    # behind cannot hold the TAP pipe open and hang the test driver.
    eval >&3 2>&4 "$1" 5>&- 6>&-
}

test_run_ () {
    test_cleanup=:
    if test "$verbose" = t; then
        printf "expecting success: %s\n" "$1" >&6
    fi
    in_test_=t
    test_eval_ "$1"
    eval_ret=$?
    test_eval_ "$test_cleanup"
    in_test_=
    cleanup_ret=$?
    if test "$eval_ret" = 0 && test "$cleanup_ret" != 0; then
        eval_ret=$cleanup_ret
    fi
    return 0
}

test_skip_ () {
    test_count=$((test_count + 1))
    to_skip_=
    if test -n "$1" && ! test_have_prereq "$1"; then
        to_skip_=t
    fi
    if test -n "$to_skip_"; then
        test_skipped=$((test_skipped + 1))
        echo "ok $test_count # skip $2 (missing $missing_prereq)" >&5
        return 0
    fi
    return 1
}

test_show_body_ () {
    printf "%s\n" "$1" | sed -e "s/^/#	/" >&5
}

test_ok_ () {
    test_success=$((test_success + 1))
    echo "ok $test_count - $1" >&5
}

test_failure_ () {
    test_failure=$((test_failure + 1))
    echo "not ok $test_count - $1" >&5
    test_show_body_ "$2"
    if test "$immediate" = t; then
        sharness_exit_ok=t
        echo "1..$test_count" >&5
        exit 1
    fi
}

# test_expect_success [PREREQ] NAME BODY
test_expect_success () {
    test "$#" = 3 && { prereq_=$1; shift; } || prereq_=
    test "$#" = 2 || error "bug in the test script: not 2 or 3 parameters to test_expect_success"
    if ! test_skip_ "$prereq_" "$1"; then
        test_run_ "$2"
        if test "$eval_ret" = 0; then
            test_ok_ "$1"
        else
            test_failure_ "$1" "$2"
        fi
    fi
}

# test_expect_failure [PREREQ] NAME BODY: a known breakage
test_expect_failure () {
    test "$#" = 3 && { prereq_=$1; shift; } || prereq_=
    test "$#" = 2 || error "bug in the test script: not 2 or 3 parameters to test_expect_failure"
    if ! test_skip_ "$prereq_" "$1"; then
        test_run_ "$2"
        if test "$eval_ret" = 0; then
            test_fixed=$((test_fixed + 1))
            echo "ok $test_count - $1 # TODO known breakage vanished" >&5
        else
            test_broken=$((test_broken + 1))
            echo "not ok $test_count - $1 # TODO known breakage" >&5
        fi
    fi
}

# test_skip_all REASON: plan nothing and stop
test_skip_all () {
    echo "1..0 # SKIP $*" >&5
    sharness_exit_ok=t
    cd "$TEST_BUILD_DIR" && rm -rf "$SHARNESS_TRASH_DIRECTORY"
    test -z "$sharness_runtime_dir" || rm -rf "$sharness_runtime_dir"
    exit 0
}

# valgrind cannot run a program built with AddressSanitizer: a valgrind
# test skips entirely in an --enable-sanitizers build (the plain build
# runs it).  Usage: test_skip_all_if_sanitized BINARY
test_skip_all_if_sanitized () {
    if grep -q __asan_init "$1" 2>/dev/null; then
        test_skip_all "built with --enable-sanitizers: valgrind cannot run it"
    fi
}

test_done () {
    sharness_exit_ok=t
    echo "1..$test_count" >&5
    if test "$test_fixed" != 0; then
        say "$test_fixed known breakage(s) vanished; please update the test"
    fi
    if test "$test_failure" = 0; then
        say "passed all $test_count test(s)"
        if test -z "$debug"; then
            cd "$TEST_BUILD_DIR" && rm -rf "$SHARNESS_TRASH_DIRECTORY"
            test -z "$sharness_runtime_dir" || rm -rf "$sharness_runtime_dir"
        fi
        exit 0
    fi
    say "failed $test_failure among $test_count test(s); kept '$SHARNESS_TRASH_DIRECTORY'"
    exit 1
}

# ---- helpers for test bodies ---------------------------------------------

# test_must_fail CMD...: CMD exits non-zero, but not by a signal, not
# "command not found" and not a sanitizer/valgrind error
test_must_fail () {
    "$@"
    exit_code_=$?
    if test $exit_code_ = 0; then
        echo >&2 "test_must_fail: command succeeded: $*"
        return 1
    elif test $exit_code_ -gt 128 && test $exit_code_ -le 192; then
        echo >&2 "test_must_fail: died by signal $((exit_code_ - 128)): $*"
        return 1
    elif test $exit_code_ = 127; then
        echo >&2 "test_must_fail: command not found: $*"
        return 1
    elif test $exit_code_ = 99; then
        echo >&2 "test_must_fail: memory error reported: $*"
        return 1
    fi
    return 0
}

# test_expect_code CODE CMD...: CMD exits with exactly CODE
test_expect_code () {
    want_code_=$1
    shift
    "$@"
    exit_code_=$?
    if test $exit_code_ = "$want_code_"; then
        return 0
    fi
    echo >&2 "test_expect_code: command exited with $exit_code_, we wanted $want_code_: $*"
    return 1
}

# test_might_fail CMD...: like test_must_fail, but success is fine too
test_might_fail () {
    "$@"
    exit_code_=$?
    if test $exit_code_ -gt 128 && test $exit_code_ -le 192; then
        echo >&2 "test_might_fail: died by signal $((exit_code_ - 128)): $*"
        return 1
    elif test $exit_code_ = 127; then
        echo >&2 "test_might_fail: command not found: $*"
        return 1
    fi
    return 0
}

# test_must_be_empty FILE
test_must_be_empty () {
    if ! test -f "$1"; then
        echo >&2 "'$1' is missing"
        return 1
    elif test -s "$1"; then
        echo >&2 "'$1' is not empty, it contains:"
        cat >&2 "$1"
        return 1
    fi
}

# test_cmp EXPECTED ACTUAL
test_cmp () {
    diff -u "$@"
}

# test_line_count OP N FILE  (e.g. test_line_count = 3 out)
test_line_count () {
    test $# = 3 || error "bug in the test script: test_line_count OP N FILE"
    lc_=$(wc -l < "$3")
    if ! test "$lc_" "$1" "$2"; then
        echo >&2 "test_line_count: line count for $3 ($lc_) is not $1 $2"
        cat >&2 "$3"
        return 1
    fi
}

test_path_is_file () {
    test -f "$1" || { echo >&2 "file '$1' does not exist"; return 1; }
}

test_path_is_dir () {
    test -d "$1" || { echo >&2 "directory '$1' does not exist"; return 1; }
}

test_path_is_missing () {
    test ! -e "$1" || { echo >&2 "path '$1' exists"; return 1; }
}

test_debug () {
    test "$verbose" = t && eval "$1"
    return 0
}

# sharness_now_: seconds since the epoch, fractional when possible
sharness_now_ () {
    date +%s.%N 2>/dev/null | sed -e 's/\.N$//' -e 's/^\([0-9]*\)\.\([0-9][0-9][0-9]\).*/\1.\2/'
}

# wait_for [-t SECS] CMD...: run CMD until it succeeds, every 50 ms, for
# at most SECS seconds (default 30, or $CODESWARM_TEST_TIMEOUT)
# value_is "COMMAND" OP VALUE: the output of the shell COMMAND, run anew at
# each call, compares with VALUE as test(1)'s OP says (for wait_for: an
# argument "$(...)" would be computed once, before the wait)
value_is () {
    test "$(eval "$1")" "$2" "$3"
}

wait_for () {
    wf_timeout_=${CODESWARM_TEST_TIMEOUT:-30}
    if test "$1" = -t; then
        wf_timeout_=$2
        shift 2
    fi
    wf_deadline_=$(echo "$(sharness_now_) $wf_timeout_" | awk '{ printf "%.3f", $1 + $2 }')
    while :; do
        if "$@"; then
            return 0
        fi
        if awk -v now="$(sharness_now_)" -v d="$wf_deadline_" \
               'BEGIN { exit !(now > d) }'; then
            echo >&2 "wait_for: timed out after ${wf_timeout_}s: $*"
            return 1
        fi
        sleep 0.05 2>/dev/null || sleep 1
    done
}

# wait_for_file FILE [SECS]: FILE exists and is not empty
wait_for_file () {
    wait_for -t "${2:-${CODESWARM_TEST_TIMEOUT:-30}}" test -s "$1"
}
