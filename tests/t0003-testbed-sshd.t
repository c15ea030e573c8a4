#!/bin/sh
test_description='the private sshd of the test bed'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"

sshd_check_ () {
    { test -x /usr/sbin/sshd || command -v sshd; } &&
    command -v ssh &&
    command -v ssh-keygen
}
test_require_component SSHD sshd_check_

tb=$CODESWARM_SRC_DIR/tests/testbed

# leave no sshd behind, whatever happens to the script
sshd_exit_ () {
    rc_=$?
    "$tb/sshd-down" "$SHARNESS_TRASH_DIRECTORY/sshd" 2>/dev/null
    (exit $rc_)
    sharness_die_
}
trap 'sshd_exit_' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
ssh_t () {
    ssh -F "$(pwd)/sshd/ssh_config" codeswarm-test "$@"
}

test_expect_success SSHD 'sshd-up starts a server and writes ssh_config' '
    "$tb/sshd-up" sshd &&
    test -s sshd/sshd.pid &&
    kill -0 $(cat sshd/sshd.pid) &&
    grep -q "^Host codeswarm-test" sshd/ssh_config &&
    grep -q "Port $(cat sshd/port)" sshd/ssh_config &&
    test "$(stat -c %a sshd)" = 700
'

test_expect_success SSHD 'ssh -F ssh_config codeswarm-test runs a command' '
    ssh_t true &&
    ssh_t "echo hello from \$(id -un)" > out &&
    echo "hello from $(id -un)" > expect &&
    test_cmp expect out
'

test_expect_success SSHD 'exit status and stdin pass through' '
    test_expect_code 3 ssh_t "exit 3" &&
    echo "line one" | ssh_t cat > out &&
    echo "line one" > expect &&
    test_cmp expect out
'

command -v ss >/dev/null 2>&1 && test_set_prereq SS
test_expect_success SSHD,SS 'it listens on the loopback address only' '
    port=$(cat sshd/port) &&
    ss -Hltn "sport = :$port" > listen &&
    test_line_count = 1 listen &&
    grep -q " 127.0.0.1:$port " listen
'

test_expect_success SSHD 'the remote side sees the build tree and CODESWARM_HOME' '
    ssh_t "echo \$CODESWARM_HOME" > out &&
    echo "$CODESWARM_HOME" > expect &&
    test_cmp expect out &&
    ssh_t "command -v codeswarm-mock-model" > out &&
    echo "$CODESWARM_BUILD_DIR/tools/codeswarm-mock-model" > expect &&
    test_cmp expect out
'

test_expect_success SSHD 'a host key that does not match is refused' '
    ssh-keygen -q -t ed25519 -N "" -f otherkey &&
    echo "codeswarm-test $(cut -d" " -f1,2 otherkey.pub)" > bad_known_hosts &&
    test_must_fail ssh -F sshd/ssh_config \
        -o UserKnownHostsFile="$(pwd)/bad_known_hosts" codeswarm-test true
'

test_expect_success SSHD 'several sessions at once' '
    for i in 1 2 3 4 5; do
        ssh_t "sleep 0.3; echo \$0 $i" > par.$i &
    done &&
    wait &&
    cat par.* | wc -l > count &&
    echo 5 > expect &&
    test_cmp expect count
'

test_expect_success SSHD 'sshd-down stops it, twice is harmless' '
    pid=$(cat sshd/sshd.pid) &&
    "$tb/sshd-down" sshd &&
    test_must_fail kill -0 $pid 2>/dev/null &&
    test_path_is_missing sshd/sshd.pid &&
    "$tb/sshd-down" sshd &&
    test_must_fail ssh_t true
'

test_expect_success SSHD 'sshd stops by itself once the caller of sshd-up is gone' '
    sh -c "\"$tb/sshd-up\" sshd2" &&
    pid2=$(cat sshd2/sshd.pid) &&
    wait_for -t 10 eval "! kill -0 $pid2 2>/dev/null" &&
    "$tb/sshd-up" sshd3 --no-watch &&
    pid3=$(cat sshd3/sshd.pid) &&
    sleep 2 &&
    kill -0 $pid3 &&
    "$tb/sshd-down" sshd3 &&
    test_must_fail "$tb/sshd-up" sshd4 --bogus
'

test_expect_success SSHD 'sshd-up again in the same directory' '
    "$tb/sshd-up" sshd &&
    test_when_finished "\"$tb/sshd-down\" sshd" &&
    ssh_t true
'

test_done
