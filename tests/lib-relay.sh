# lib-relay.sh - helpers for the relay program tests (6xxx)
#
# Source after tests/sharness.sh (and tests/lib-router.sh).
#
#   relay_setup          start a private mosquitto (tests/testbed/mqtt-up,
#                        prereq MQTT), make a seal key and write near.yaml
#                        and far.yaml (relay: sections for user alice)
#   relay_yaml SIDE [YAML...]  write SIDE.yaml: the relay section, then YAML
#   near_start [ARGS]    codeswarm-router --socket --relay in the background
#                        (home: $CODESWARM_HOME, log near.log, $near_pid)
#   far_start [ARGS]     codeswarm-router --socket --relay-client (home:
#                        $far_home, log far.log, $far_pid); waits until a
#                        hello goes through the relay and back
#   far CMD...           CMD with the far side's home
#   near_kill/far_kill [SIG]
#   broker_kill [--kill] / broker_start   stop / restart the broker (same
#                        port, same persistence directory)
#   spy_start FILE       record every payload on the broker, as user spy
#                        (who may read every topic) into FILE, one line per
#                        message: "<topic> <payload as hex>"
#   publish_hex TOPIC HEX   publish bytes as alice (replays, tampering)

mqtt_dir=$(pwd)/mqtt
far_home=$(pwd)/far-home
near_pid=
far_pid=
spy_pid=

broker_start () {
    "$CODESWARM_SRC_DIR/tests/testbed/mqtt-up" "$mqtt_dir" --watch-pid $$ \
        >>mqtt-up.log 2>&1
}

broker_kill () {
    "$CODESWARM_SRC_DIR/tests/testbed/mqtt-down" "$mqtt_dir" "$@"
}

relay_yaml () {
    side_=$1
    shift
    {
        echo "relay:"
        echo "  url: mqtts://localhost:$(cat "$mqtt_dir/port")"
        echo "  ca_file: $mqtt_dir/ca.crt"
        echo "  username: alice"
        echo "  password_file: $mqtt_dir/alice.pw"
        echo "  seal_key_file: $(pwd)/seal.key"
        echo "  topic_prefix: codeswarm/alice"
        echo "  client_id: $side_"
        echo "  keepalive: 5s"
        echo "  backoff_min: 50ms"
        echo "  backoff_max: 500ms"
        for y_ in "$@"; do printf '%s\n' "$y_"; done
    } >"$side_.yaml"
}

relay_setup () {
    test_require_component MQTT broker_start || return 1
    test_require_component JQ jq --version || return 1
    mkdir -p "$far_home" && chmod 700 "$far_home" &&
    codeswarm relay keygen seal.key &&
    relay_yaml near &&
    relay_yaml far
}

near_start () {
    codeswarm-router --socket --relay -c "$(pwd)/near.yaml" -v "$@" \
        </dev/null >>near.log 2>&1 3>&- 4>&- 5>&- 6>&- &
    near_pid=$!
    wait_for -t 20 router_ready
}

far () {
    CODESWARM_HOME=$far_home "$@"
}

far_ready () {
    far codeswarm-client rpc --timeout 2 --until hello \
        "$(rcmd hello '{"subscribe":false}')" >/dev/null 2>&1
}

far_start () {
    CODESWARM_HOME=$far_home codeswarm-router --socket --relay-client \
        -c "$(pwd)/far.yaml" -v "$@" </dev/null >>far.log 2>&1 \
        3>&- 4>&- 5>&- 6>&- &
    far_pid=$!
    wait_for -t 30 far_ready
}

near_kill () {
    if test -n "$near_pid"; then
        kill -"${1:-TERM}" "$near_pid" 2>/dev/null
        wait "$near_pid" 2>/dev/null
        near_pid=
    fi
    return 0
}

far_kill () {
    if test -n "$far_pid"; then
        kill -"${1:-TERM}" "$far_pid" 2>/dev/null
        wait "$far_pid" 2>/dev/null
        far_pid=
    fi
    return 0
}

spy_start () {
    mosquitto_sub -h localhost -p "$(cat "$mqtt_dir/port")" \
        --cafile "$mqtt_dir/ca.crt" -u spy -P "$(cat "$mqtt_dir/spy.pw")" \
        -i codeswarm-spy -t '#' -q 1 -F '%t %x' >"$1" 2>spy.err &
    spy_pid=$!
}

spy_stop () {
    test -z "$spy_pid" || kill "$spy_pid" 2>/dev/null
    wait "$spy_pid" 2>/dev/null
    spy_pid=
    return 0
}

publish_hex () {
    perl -e 'print pack("H*", $ARGV[0])' "$2" >payload.bin &&
    mosquitto_pub -h localhost -p "$(cat "$mqtt_dir/port")" \
        --cafile "$mqtt_dir/ca.crt" -u alice -P "$(cat "$mqtt_dir/alice.pw")" \
        -q 1 -t "$1" -f payload.bin
}

relay_cleanup_ () {
    rc_=$?
    for p_ in $near_pid $far_pid $spy_pid $relay_pids $codex_worker_pids \
             $(cat far.pid 2>/dev/null); do
        kill -KILL "$p_" 2>/dev/null
    done
    wait 2>/dev/null
    "$CODESWARM_SRC_DIR/tests/testbed/mqtt-down" "$mqtt_dir" >/dev/null 2>&1
    if type mock_model_stop >/dev/null 2>&1; then
        mock_model_stop
    fi
    (exit $rc_)
    if type sharness_die_ >/dev/null 2>&1; then
        sharness_die_
    fi
    exit $rc_
}
relay_trap () {
    trap 'relay_cleanup_' EXIT
}
