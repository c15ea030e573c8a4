#!/bin/sh
test_description='client verbs: a router socket planted by another user is refused before anything is sent

The socket lives in a directory everyone may write (a shared runtime
directory, /tmp).  Another user plants a listener there that records what
it receives; the verbs must neither talk to it nor quietly go around it.'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"

planter=cstest-planter
other_user_ () {
    test "$(id -u)" = 0 &&
    { id -u $planter >/dev/null 2>&1 ||
      useradd --system --no-create-home --shell /usr/sbin/nologin $planter; }
}
test_require_component ROOT other_user_
test_require_component SOCAT socat -V

shared=
pids=
cleanup_ () {
    rc_=$?
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    test -n "$shared" && rm -rf "$shared"
    (exit $rc_)
    sharness_die_
}
trap cleanup_ EXIT

# plant: another user serves $sock with a fake router that appends what
# it gets to $got and acks every request
plant () {
    rm -f "$sock" "$got" &&
    cat >"$shared/fake-router" <<-\EOF &&
	#!/bin/sh
	while IFS= read -r line; do
	    printf "%s\n" "$line" >>"$GOT"
	    rid=$(printf "%s" "$line" | sed -n "s/.*\"request_id\":\"\([^\"]*\)\".*/\1/p")
	    printf "{\"protocol\":\"codeswarm.router.v1\",\"type\":\"response\",\"request_id\":\"%s\",\"ok\":true}\n" "$rid"
	done
	EOF
    chmod 0755 "$shared/fake-router" &&
    GOT=$got runuser -u $planter -- socat "UNIX-LISTEN:$sock,fork,mode=0777" \
        "EXEC:$shared/fake-router" &
    pids="$pids $!" &&
    wait_for test -S "$sock"
}

test_expect_success ROOT,SOCAT 'a shared directory with a socket of another user' '
    shared=$(mktemp -d /tmp/codeswarm-shared.XXXXXX) &&
    chmod 1777 "$shared" &&
    sock=$shared/router.sock &&
    got=$shared/got &&
    CODESWARM_ROUTER_SOCKET=$sock &&
    export CODESWARM_ROUTER_SOCKET &&
    codeswarm-mailbox append s/inbox/0 "{\"x\":1}" &&
    plant
'

test_expect_success ROOT,SOCAT 'send refuses it, says whose it is, sends nothing' '
    test_expect_code 1 codeswarm send s 0 "secret prompt text" >out 2>err &&
    grep "refusing .$sock.: the socket is owned by uid $(id -u $planter)" err &&
    ! test -s "$got" &&
    test_must_be_empty out &&
    ! grep "secret prompt text" "$CODESWARM_HOME/swarms/s/inbox/0.jsonl"
'

test_expect_success ROOT,SOCAT 'a socket file of ours served by another user: the peer is checked' '
    chown "$(id -u):$(id -g)" "$sock" &&
    test_expect_code 1 codeswarm send s 0 "secret prompt text" >out 2>err &&
    grep "refusing .$sock.: it is served by uid $(id -u $planter)" err &&
    ! test -s "$got"
'

test_expect_success ROOT,SOCAT 'the other verbs refuse it too' '
    test_expect_code 1 codeswarm approvals s 2>err &&
    grep "refusing" err &&
    ! test -s "$got"
'

test_expect_success ROOT,SOCAT 'no socket at all: the verbs go on without a router' '
    rm -f "$sock" &&
    codeswarm send s 0 "plain prompt" &&
    grep "plain prompt" "$CODESWARM_HOME/swarms/s/inbox/0.jsonl"
'

test_done
