#!/bin/bash
test_description='codeswarm-router --tcp: loopback only, our own uid only (inet_diag); --stdio relays to a running router'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

router_trap
test_require_component JQ jq --version

P='"protocol":"codeswarm.router.v1","type":"command"'

# A second user to connect as: created here when we are root (removed at
# the end), else the prereq is missing.
other_user=codeswarm-t3011
other_user_setup_ () {
    test "$(id -u)" = 0 && command -v setpriv >/dev/null &&
    command -v useradd >/dev/null || return 1
    id -u "$other_user" >/dev/null 2>&1 ||
        useradd --system --no-create-home --shell /usr/sbin/nologin \
            "$other_user" || return 1
    created_user=yes
}
test_require_component OTHER_USER other_user_setup_

# a TCP client in bash (/dev/tcp): PORT LINES...; prints what comes back
# until the router closes
tcp_client='exec 3<>/dev/tcp/127.0.0.1/$0 || exit 9
for l in "$@"; do printf "%s\n" "$l" >&3; done
cat <&3'

# tcp_session PORT LINES...: the client as ourselves, for at most 10 s
tcp_session () {
    timeout 10 bash -c "$tcp_client" "$@"
}

tcp_port () {
    sed -n "s/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p" router.log | tail -n1
}

test_expect_success 'a non-loopback address is refused before anything listens' '
    for a in 0.0.0.0:8765 192.0.2.1:8765 "[::]:8765" example.com:8765; do
        test_expect_code 1 codeswarm-router --socket --tcp "$a" 2>err </dev/null &&
        grep -e "not a loopback address" -e "not a numeric IP address" err ||
        return 1
    done &&
    ! test -e home/run/router.sock
'

test_expect_success JQ 'setup: a router on the socket and on 127.0.0.1' '
    router_start --tcp 127.0.0.1:0 &&
    wait_for value_is tcp_port != "" &&
    grep "listening on 127.0.0.1:.* (loopback, uid $(id -u) only)" router.log
'

test_expect_success JQ 'a connection of our own uid is admitted and served' '
    tcp_session "$(tcp_port)" "{$P,\"command\":\"hello\",\"request_id\":\"h1\",\"payload\":{\"subscribe\":false}}" \
        "{$P,\"command\":\"swarm_list\",\"request_id\":\"l1\"}" </dev/null >same.json &
    wait_for -t 10 grep -q "\"l1\"" same.json &&
    jq -e -s "map(select(.event == \"hello\")) | .[0].data.request_id == \"h1\"" same.json &&
    ! grep "refusing" router.log
'

test_expect_success JQ,OTHER_USER 'a connection of another uid is refused and logged' '
    uid=$(id -u "$other_user") &&
    timeout 10 setpriv --reuid="$uid" --regid="$(id -g "$other_user")" \
        --clear-groups bash -c "$tcp_client" "$(tcp_port)" \
        "{$P,\"command\":\"swarm_list\",\"request_id\":\"x\"}" \
        </dev/null >other.out 2>other.err;
    cat other.err &&
    wait_for -t 10 grep -q "refusing a connection from 127.0.0.1:[0-9]*: it belongs to uid $uid, not $(id -u)" router.log &&
    ! test -s other.out
'

test_expect_success JQ 'the router still serves after the refusal' '
    tcp_session "$(tcp_port)" "{$P,\"command\":\"swarm_list\",\"request_id\":\"l2\"}" </dev/null >after.json &
    wait_for -t 10 grep -q "\"l2\"" after.json
'

test_expect_success JQ '--stdio relays to the running router: one-shot clients get their replies' '
    n0=$(grep -c "client .* connected" router.log) &&
    printf "%s\n" "{$P,\"command\":\"hello\",\"request_id\":\"s1\",\"payload\":{\"subscribe\":false}}" \
        "{$P,\"command\":\"queue_list\",\"request_id\":\"s2\"}" |
        codeswarm-router --stdio >stdio.json 2>stdio.err &&
    jq -e -s "map(.data.request_id) == [\"s1\", \"s2\"]" stdio.json &&
    n1=$(grep -c "client .* connected" router.log) &&
    test "$n1" -gt "$n0" &&
    ! test -e home/router/events.jsonl.2
'

test_expect_success 'stop the router' '
    router_kill &&
    if test "$created_user" = yes; then userdel "$other_user"; fi
'

test_done
