#!/bin/bash
test_description='relay: wrong password, wrong CA, wrong seal key, bad settings: clear errors'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"
. "$CODESWARM_SRC_DIR/tests/lib-relay.sh"

relay_trap
relay_setup

# start the far side with config FILE; wait until its log says WHAT
far_try () {
    : >far.log
    mkdir -p "home-$1" && chmod 700 "home-$1" || return 1
    CODESWARM_HOME=$(pwd)/home-$1 codeswarm-router --socket --relay-client \
        -c "$(pwd)/$1" -v </dev/null >>far.log 2>&1 3>&- 4>&- 5>&- 6>&- &
    echo $! >far.pid
    far_home=$(pwd)/home-$1
    wait_for -t 20 grep -q "$2" far.log
}
far_stop () {
    if test -s far.pid; then
        kill "$(cat far.pid)" 2>/dev/null
        wait "$(cat far.pid)" 2>/dev/null
        rm -f far.pid
    fi
    return 0
}
# a client of the far side sees a relay_state event with STATE
far_state_seen () {
    far codeswarm-client rpc --timeout 10 --until relay_state \
        "$(rcmd hello '{"subscribe":false}')" >state.out 2>&1 &&
    jq -e "select(.event == \"relay_state\") | select(.data.state == \"$1\")" \
        state.out >/dev/null
}

test_expect_success MQTT,JQ 'keygen refuses to overwrite a key' '
    test "$(stat -c %a seal.key)" = 600 &&
    cp seal.key seal.before &&
    test_must_fail codeswarm relay keygen seal.key 2>err &&
    grep "seal.key.*it exists (not overwritten)" err &&
    test_cmp seal.before seal.key
'

test_expect_success MQTT,JQ 'wrong password: refused, said in the log and to clients' '
    relay_yaml far "" &&
    sed "s|password_file: .*|password_file: $mqtt_dir/mallory.pw|" far.yaml >badpw.yaml &&
    test_when_finished far_stop &&
    far_try badpw.yaml "refused: the broker refused the connection: \(Not authorized\|Bad user name or password\)" &&
    far_state_seen refused &&
    jq -r "select(.event == \"relay_state\") | .data.detail" state.out |
        grep "the broker refused the connection"
'

test_expect_success MQTT,JQ 'wrong CA: the certificate is not verified' '
    sed "s|ca_file: .*|ca_file: $mqtt_dir/other-ca.crt|" far.yaml >badca.yaml &&
    test_when_finished far_stop &&
    far_try badca.yaml "retrying: .*certificate verify failed" &&
    far_state_seen retrying
'

test_expect_success MQTT,JQ 'wrong seal key: payloads do not open, said to clients' '
    test_when_finished "far_stop; near_kill" &&
    near_start &&
    codeswarm relay keygen other.key &&
    sed "s|seal_key_file: .*|seal_key_file: $(pwd)/other.key|" far.yaml >badkey.yaml &&
    far_try badkey.yaml "rejected a payload on .codeswarm/alice/hello.: payload does not open" &&
    far_state_seen refused &&
    jq -r "select(.event == \"relay_state\") | .data.detail" state.out | grep "seal_key_file"
'

test_expect_success MQTT 'plain mqtt:// to a host that is not loopback is refused' '
    printf "relay:\n  url: mqtt://broker.example.org:1883\n  insecure: true\n" >plain.yaml &&
    test_must_fail codeswarm-router --relay-client -c "$(pwd)/plain.yaml" 2>err &&
    grep "plain.yaml:2:8: relay.url: plain mqtt:// to \"broker.example.org\" would send credentials in clear text" err &&
    printf "relay:\n  url: mqtt://127.0.0.1:1883\n" >plain2.yaml &&
    test_must_fail codeswarm-router --relay -c "$(pwd)/plain2.yaml" 2>err &&
    grep "plain2.yaml:2:8: relay.url: plain mqtt:// needs relay.insecure: true" err
'

test_expect_success MQTT 'a seal key others can read, or none at all: refused' '
    cp seal.key open.key && chmod 644 open.key &&
    sed "s|seal_key_file: .*|seal_key_file: $(pwd)/open.key|" far.yaml >openkey.yaml &&
    test_must_fail codeswarm-router --relay-client -c "$(pwd)/openkey.yaml" 2>err &&
    grep "open.key.: mode 0644 gives access to others (chmod 600)" err &&
    grep -v seal_key_file far.yaml >nokey.yaml &&
    test_must_fail codeswarm-router --socket --relay -c "$(pwd)/nokey.yaml" 2>err &&
    grep "no relay.seal_key_file in .*codeswarm relay keygen" err
'

test_done
