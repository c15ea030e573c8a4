#!/bin/sh
test_description='permission errors are said as what they are, never as "no swarm"

A swarms directory or a swarm directory that the user cannot read or
search, and a file where a directory is expected: every verb names the
path and the reason and exits 1.  Run as root, the unreadable cases run as
the user nobody (setpriv), since root reads everything.'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"

unset XDG_RUNTIME_DIR CODESWARM_ROUTER_SOCKET

# user_prefix: runs a command as a user that modes apply to, in $uhome
if test "$(id -u)" != 0; then
    uhome=$(pwd)/uhome
    user_prefix="env CODESWARM_HOME=$uhome"
    test_set_prereq USER
elif command -v setpriv >/dev/null 2>&1 && id nobody >/dev/null 2>&1; then
    mkdir -p nb && chown nobody nb && chmod 0700 nb &&
    uhome=$(pwd)/nb/home
    user_prefix="setpriv --reuid=nobody --regid=$(id -g nobody) --clear-groups env CODESWARM_HOME=$uhome HOME=$(pwd)/nb"
    # nobody must reach the programs and this directory
    if $user_prefix sh -c "command -v codeswarm && touch nb/probe" >/dev/null 2>&1
    then
        test_set_prereq USER
    fi
fi
if test "$CODESWARM_TEST_REQUIRE_ALL" = 1 && ! test_have_prereq USER; then
    error "no user that file modes apply to (not root, or root with setpriv and a nobody that can run the programs)"
fi

# as_user CMD...: CMD as that user.  In the background use $user_prefix
# itself (each of its words execs the next, so that $! is the pid of CMD)
as_user () {
    $user_prefix "$@"
}

# every verb that names a swarm says "cannot access PATH: Permission denied"
verbs_say () {
    for v in "send s 0 hi" "interrupt s 0" "status s" "cancel s" \
             "forget s" "attach s --json --since 0"; do
        test_expect_code 1 as_user codeswarm $v >out 2>err || {
            echo "codeswarm $v: exit status"; return 1; }
        grep "cannot access .$1.*: $2" err || {
            echo "codeswarm $v:"; cat err; return 1; }
        ! grep "no swarm" err || return 1
    done
}

test_expect_success USER 'a swarm of one node, made by the user' '
    as_user codeswarm-mailbox append --type worker_started s/outbox/0 \
        "{\"node\":0,\"host\":\"h\",\"pid\":1,\"job_id\":null}" &&
    as_user codeswarm status s >out &&
    grep "^s " out
'

test_expect_success USER 'the swarms directory cannot be read: every verb says so' '
    as_user chmod 000 "$uhome/swarms" &&
    test_when_finished "as_user chmod 700 \"$uhome/swarms\"" &&
    verbs_say "$uhome/swarms" "Permission denied" &&
    test_expect_code 1 as_user codeswarm status >out 2>err &&
    grep "cannot access .$uhome/swarms.: Permission denied" err &&
    test_must_be_empty out &&
    test_expect_code 1 as_user codeswarm forget --purge 2>err &&
    grep "cannot access .$uhome/swarms.: Permission denied" err
'

test_expect_success USER 'the swarm directory cannot be read: every verb says so' '
    as_user chmod 000 "$uhome/swarms/s" &&
    test_when_finished "as_user chmod 700 \"$uhome/swarms/s\"" &&
    verbs_say "$uhome/swarms/s" "Permission denied" &&
    test_expect_code 1 as_user codeswarm status >out 2>err &&
    grep "cannot access .$uhome/swarms/s.: Permission denied" err
'

rpid=
trap 'rc_=$?; test -z "$rpid" || kill -KILL "$rpid" 2>/dev/null; (exit $rc_); sharness_die_' EXIT
hello_='{"protocol":"codeswarm.router.v1","type":"command","command":"hello","request_id":"h","payload":{"subscribe":false}}'
user_router_ready () {
    as_user codeswarm-client rpc --timeout 1 --until hello "$hello_" >/dev/null 2>&1
}

test_expect_success USER 'a router that cannot read the swarms directory says so' '
    as_user chmod 000 "$uhome/swarms" &&
    test_when_finished "as_user chmod 700 \"$uhome/swarms\"" &&
    { $user_prefix codeswarm-router --socket -v </dev/null >router.log 2>&1 & rpid=$!; } &&
    wait_for -t 20 user_router_ready &&
    for v in "send s 0 hi" "interrupt s 0"; do
        test_expect_code 1 as_user codeswarm $v 2>err &&
        grep "unavailable: cannot access .$uhome/swarms.: Permission denied" err &&
        ! grep "no swarm" err || return 1
    done &&
    kill $rpid && wait $rpid; rpid=
'

test_expect_success 'a file where the swarms directory should be' '
    mkdir -m 700 fhome &&
    echo x >fhome/swarms &&
    test_expect_code 1 env CODESWARM_HOME=$(pwd)/fhome codeswarm status s 2>err &&
    grep "cannot access .*fhome/swarms.: Not a directory" err &&
    test_expect_code 1 env CODESWARM_HOME=$(pwd)/fhome codeswarm status 2>err &&
    grep "cannot access .*fhome/swarms.: Not a directory" err &&
    test_expect_code 1 env CODESWARM_HOME=$(pwd)/fhome codeswarm send s 0 hi 2>err &&
    grep "fhome/swarms.*Not a directory" err &&
    ! grep "no swarm" err
'

test_expect_success 'a swarm that does not exist is still "no swarm"' '
    test_expect_code 1 codeswarm status nosuch 2>err &&
    grep "no swarm .nosuch." err
'

test_done
