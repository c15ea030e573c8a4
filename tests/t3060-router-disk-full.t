#!/bin/sh
test_description='codeswarm-router: a full disk under its event log loses nothing

The router directory (its event log) is a small tmpfs that the test fills
while records keep arriving.  The router holds at most --hold-max events,
then reads no more records until space is back; then every event comes
once, in order, also when the router is killed while it waits.'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

test_require_component JQ jq --version

# the event log on a filesystem the test may fill: a tmpfs (root only)
fs=$CODESWARM_HOME/router
tmpfs_mount_ () {
    test "$(id -u)" = 0 && mkdir -p "$fs" &&
    mount -t tmpfs -o size=1m,mode=0700 codeswarm-test "$fs"
}
test_require_component TMPFS tmpfs_mount_ || { test_done; }
unmount_ () {
    um_rc_=$?
    if test -n "$router_pid"; then
        kill -KILL "$router_pid" 2>/dev/null
        wait "$router_pid" 2>/dev/null
        router_pid=
    fi
    if mountpoint -q "$fs"; then
        umount "$fs" 2>/dev/null || umount -l "$fs"
    fi
    (exit $um_rc_)
    if type sharness_die_ >/dev/null 2>&1; then
        sharness_die_
    fi
    exit $um_rc_
}
trap unmount_ EXIT

HOLD=50
start () {
    router_start --hold-max $HOLD --node-lost-after 1h \
        --metrics-file "$PWD/metrics.prom" --metrics-interval 0.1s "$@"
}
# fill the tmpfs to the last block (what the log reserved ahead remains)
fill () {
    dd if=/dev/zero of="$fs/fill" bs=4k 2>/dev/null
    test -s "$fs/fill"
}
rpc () {
    codeswarm-mailbox append --type rpc s/outbox/0 "$@" >/dev/null
}
started () {
    rpc "{\"msg\":{\"method\":\"turn/started\",\"params\":{\"threadId\":\"th\",\"turn\":{\"id\":\"$1\"}}}}"
}
completed () {
    rpc "{\"msg\":{\"method\":\"turn/completed\",\"params\":{\"threadId\":\"th\",\"turn\":{\"id\":\"$1\",\"status\":\"completed\",\"error\":null}}}}"
}
# B batches of 100 deltas of turn T: far more events than the 64 KiB the
# log reserves ahead and HOLD together
produce () {
    p_t_=$1
    for b in $(seq 1 "$2"); do
        set --
        for i in $(seq 1 100); do
            set -- "$@" "{\"msg\":{\"method\":\"item/agentMessage/delta\",\"params\":{\"turnId\":\"$p_t_\",\"itemId\":\"m$p_t_\",\"delta\":\"$p_t_-$b-$i\"}}}"
        done
        rpc "$@" || return 1
    done
}
# the seqs of an attach (the swarm's events and the router's own) go up
increasing () {
    ev_seqs "$1" >seqs &&
    sort -n -u seqs >seqs.sorted &&
    test_cmp seqs.sorted seqs
}
metric () {
    sed -n "s/^$1 //p" metrics.prom 2>/dev/null
}
deltas_of () {
    jq -r "select(.event == \"assistant_delta\" and .data.turn_id == \"$1\") | .data.delta" all.json
}
expect_deltas () {
    for b in $(seq 1 "$2"); do for i in $(seq 1 100); do
        echo "$1-$b-$i"
    done; done
}

test_expect_success JQ,TMPFS 'setup: a node with a turn in progress' '
    codeswarm-mailbox append --type worker_started s/outbox/0 \
        "{\"node\":0,\"host\":\"h\",\"pid\":1,\"job_id\":\"j1\"}" &&
    started T1 &&
    start &&
    wait_for grep -q "\"event_seq\":2" "$fs/state.json"
'

test_expect_success JQ,TMPFS 'on a full disk at most --hold-max events are held, then reading stops' '
    fill &&
    produce T1 10 &&
    wait_for grep -q "events held: reading no more records" router.log &&
    wait_for value_is "metric codeswarm_router_reading_paused" = 1 &&
    held=$(metric codeswarm_router_events_held) &&
    test "$held" -ge $HOLD && test "$held" -le $((HOLD + 2)) &&
    test "$(grep -c "reading no more records" router.log)" = 1 &&
    test "$(jq -s "map(select(.event == \"assistant_delta\")) | length" \
        "$fs/events.jsonl")" -lt 1000
'

test_expect_success JQ,TMPFS 'space back: reading resumes, every event once, in order' '
    rm -f "$fs/fill" &&
    wait_for grep -q "reading records again" router.log &&
    wait_for value_is "metric codeswarm_router_reading_paused" = 0 &&
    completed T1 &&
    codeswarm-client attach s --json --since 0 --turns 1 >all.json &&
    increasing all.json &&
    jq -c "select(.event == \"router_recovered\")" all.json >rec.attach &&
    test_line_count = 1 rec.attach &&
    deltas_of T1 >deltas &&
    expect_deltas T1 10 >deltas.expect &&
    test_cmp deltas.expect deltas &&
    jq -c "select(.event == \"router_recovered\") | .data" \
        "$fs/events.jsonl" >rec &&
    test_line_count = 1 rec &&
    test "$(jq -r .paused rec)" = true &&
    test "$(jq -r .reason rec)" = event_log_unwritable &&
    test "$(jq -r .hold_max rec)" = $HOLD &&
    test "$(jq -r .held rec)" -ge $HOLD
'

test_expect_success JQ,TMPFS 'killed while reading waits: the restart reads on, nothing twice' '
    started T2 &&
    wait_for value_is "jq -s \"map(select(.event == \\\"turn_started\\\")) | length\" $fs/events.jsonl" = 2 &&
    fill &&
    produce T2 10 &&
    wait_for value_is "grep -c \"reading no more records\" router.log" = 2 &&
    router_kill KILL &&
    rm -f "$fs/fill" &&
    start &&
    completed T2 &&
    codeswarm-client attach s --json --since 0 --turns 2 >all.json &&
    increasing all.json &&
    deltas_of T1 >deltas &&
    test_cmp deltas.expect deltas &&
    deltas_of T2 >deltas2 &&
    expect_deltas T2 10 >deltas2.expect &&
    test_cmp deltas2.expect deltas2 &&
    test "$(jq -r "select(.event == \"turn_complete\") | .data.turn_id" \
        all.json | sort | tr "\n" " ")" = "T1 T2 "
'

# over ssh (a stand-in that runs the command here): the router stops
# reading the link; the serve side still writes the inbox records asked of
# it, whose acknowledgements wait in the link until the hold ends
cat >fake-ssh <<'EOF'
#!/bin/sh
while test $# -gt 0; do case $1 in --) shift; break ;; *) shift ;; esac; done
shift
exec sh -c "$*"
EOF
chmod +x fake-ssh
CODESWARM_SSH=$(pwd)/fake-ssh
export CODESWARM_SSH
remote=$(pwd)/remote
mkdir -p "$remote" && chmod 700 "$remote"
ron () {  # a command on the remote home
    CODESWARM_HOME=$remote "$@"
}
rrpc () {
    ron codeswarm-mailbox append --type rpc r/outbox/0 "$@" >/dev/null
}
rproduce () {
    for b in $(seq 1 "$1"); do
        set --
        for i in $(seq 1 100); do
            set -- "$@" "{\"msg\":{\"method\":\"item/agentMessage/delta\",\"params\":{\"turnId\":\"T3\",\"itemId\":\"mT3\",\"delta\":\"T3-$b-$i\"}}}"
        done
        rrpc "$@" || return 1
    done
}
turns_started () {
    jq -s "map(select(.event == \"turn_started\")) | length" "$fs/events.jsonl"
}
users_in_r () {
    jq -c "select(.type == \"user\")" "$remote/swarms/r/inbox/0.jsonl" \
        2>/dev/null | wc -l
}

test_expect_success JQ,TMPFS 'over ssh: at most --hold-max events held, then the link is not read' '
    router_kill TERM &&
    ron codeswarm-mailbox append --type worker_started r/outbox/0 \
        "{\"node\":0,\"host\":\"h\",\"pid\":1,\"job_id\":\"j3\"}" >/dev/null &&
    rrpc "{\"msg\":{\"method\":\"turn/started\",\"params\":{\"threadId\":\"th\",\"turn\":{\"id\":\"T3\"}}}}" &&
    start --ssh login.example --remote-home "$remote" \
        --remote-command "$CODESWARM_BUILD_DIR/mailbox/codeswarm-mailbox" &&
    wait_for value_is turns_started = 3 &&
    fill &&
    rproduce 10 &&
    wait_for value_is "grep -c \"reading no more records\" router.log" = 3 &&
    wait_for value_is "metric codeswarm_router_reading_paused" = 1 &&
    held=$(metric codeswarm_router_events_held) &&
    test "$held" -ge $HOLD && test "$held" -le $((HOLD + 2)) &&
    { codeswarm send r 0 "sent during the hold" >sent 2>sent.err & } &&
    send_pid=$! &&
    wait_for value_is users_in_r = 1
'

test_expect_success JQ,TMPFS 'over ssh: space back, every event once, in order; the send acknowledged once' '
    rm -f "$fs/fill" &&
    wait_for value_is "grep -c \"reading records again\" router.log" = 2 &&
    wait $send_pid &&
    test_line_count = 1 sent &&
    grep "^n0 inj-" sent &&
    rrpc "{\"msg\":{\"method\":\"turn/completed\",\"params\":{\"threadId\":\"th\",\"turn\":{\"id\":\"T3\",\"status\":\"completed\",\"error\":null}}}}" &&
    codeswarm-client attach r --json --since 0 --turns 1 >all.json &&
    increasing all.json &&
    deltas_of T3 >deltas3 &&
    expect_deltas T3 10 >deltas3.expect &&
    test_cmp deltas3.expect deltas3 &&
    test "$(users_in_r)" = 1
'

test_expect_success '--hold-max takes a count' '
    test_expect_code 1 codeswarm-router --socket --hold-max 0 2>err &&
    grep "hold-max: .0. is not a count" err &&
    test_expect_code 1 codeswarm-router --socket --hold-max lots 2>err &&
    grep "hold-max: .lots. is not a count" err
'

test_expect_success TMPFS 'stop the router' '
    router_kill TERM &&
    umount "$fs"
'

test_done
