#!/bin/bash
test_description='codeswarm-router --ssh through a real sshd on loopback'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

test_require_component JQ jq --version
sshd_check_ () {
    { test -x /usr/sbin/sshd || command -v sshd; } &&
    command -v ssh && command -v ssh-keygen
}
test_require_component SSHD sshd_check_

tb=$CODESWARM_SRC_DIR/tests/testbed
cleanup_ () {
    rc_=$?
    test -n "$router_pid" && kill -KILL "$router_pid" 2>/dev/null
    "$tb/sshd-down" "$SHARNESS_TRASH_DIRECTORY/sshd" 2>/dev/null
    (exit $rc_)
    sharness_die_
}
trap cleanup_ EXIT

test_have_prereq SSHD && "$tb/sshd-up" sshd >&3 2>&4 || test_set_prereq NO_SSHD_UP

test_expect_success SSHD 'sshd is up' '
    test -s sshd/ssh_config
'

remote_prereq=SSHD,JQ
remote_args="--ssh codeswarm-test --ssh-opt=-F --ssh-opt=$(pwd)/sshd/ssh_config --remote-home $(pwd)/remote --remote-command $CODESWARM_BUILD_DIR/mailbox/codeswarm-mailbox"
. "$CODESWARM_SRC_DIR/tests/lib-router-remote.sh"

test_done
