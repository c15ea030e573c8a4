#!/bin/bash
test_description='relay: a command in flight when the near side is killed is answered once and done once'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"
. "$CODESWARM_SRC_DIR/tests/lib-relay.sh"

relay_trap
relay_setup
test_require_component PROMTOOL promtool --version

# The near side reaches its swarm over the ssh transport (a stand-in for
# ssh that runs the command here, as in t3004), so that an inject waits
# for the mailbox server's answer: stopping that server holds a command
# between the near side taking it from the broker and answering it.
# Everything the near side sends the server is copied to link-in.log.
# The server ignores SIGHUP: a stopped process whose parent dies is sent
# SIGHUP and SIGCONT by the kernel (an orphaned process group).
remote=$(pwd)/remote
mkdir -p "$remote" && chmod 700 "$remote"
cat >fake-ssh <<EOF
#!/bin/sh
while test \$# -gt 0; do case \$1 in --) shift; break ;; *) shift ;; esac; done
shift
exec sh -c "trap '' HUP; tee -a '$(pwd)/link-in.log' | \$*"
EOF
chmod +x fake-ssh
CODESWARM_SSH=$(pwd)/fake-ssh
export CODESWARM_SSH
remote_args="--ssh login.example --remote-home $remote --remote-command $CODESWARM_BUILD_DIR/mailbox/codeswarm-mailbox"

server_pid () {
    pgrep -f "^[^ ]*codeswarm-mailbox serve .*$remote" | head -n1
}
link_up () {
    test -n "$(server_pid)" &&
    test "$(grep -c "ssh link connected" near.log)" -ge "$1"
}
user_records () {
    jq -c "select(.type == \"user\" and .content == \"$1\")" \
        "$remote/swarms/s/inbox/0.jsonl" 2>/dev/null | wc -l
}
forwarded () {  # the near side handed the inject of TEXT to the server
    grep -q "$1" link-in.log 2>/dev/null
}
links=0
near_up () {
    near_start $remote_args --metrics-file "$(pwd)/near.prom" \
        --metrics-interval 1s &&
    links=$((links + 1)) &&
    wait_for -t 30 link_up $links
}

test_expect_success MQTT,JQ 'setup: a remote swarm, the near side over ssh, the far side' '
    CODESWARM_HOME=$remote codeswarm-mailbox append --type worker_started \
        s/outbox/0 "{\"node\":0,\"host\":\"h\",\"pid\":1,\"job_id\":\"j\"}" >/dev/null &&
    near_up &&
    far_start
'

test_expect_success MQTT,JQ 'near side killed after the inject was written, before its answer: one ack, one record' '
    srv=$(server_pid) &&
    kill -STOP "$srv" &&
    { far timeout 120 codeswarm send s 0 "written once" >sent1 2>sent1.err & } &&
    send_pid=$! &&
    wait_for -t 30 forwarded "written once" &&
    near_kill KILL &&
    { kill -CONT "$srv" 2>/dev/null; true; } &&
    wait_for -t 30 value_is "user_records \"written once\"" = 1 &&
    near_up &&
    wait $send_pid &&
    test "$(wc -l <sent1)" = 1 &&
    grep "^n0 key-" sent1 &&
    test "$(user_records "written once")" = 1 &&
    grep "answering a command sent again" near.log
'

test_expect_success MQTT,JQ 'near side killed before the inject was written: one ack, one record' '
    srv=$(server_pid) &&
    kill -STOP "$srv" &&
    { far timeout 120 codeswarm send s 0 "lost in flight" >sent2 2>sent2.err & } &&
    send_pid=$! &&
    wait_for -t 30 forwarded "lost in flight" &&
    kill -STOP "$near_pid" &&
    kill -KILL "$srv" &&
    near_kill KILL &&
    test "$(user_records "lost in flight")" = 0 &&
    near_up &&
    wait $send_pid &&
    test "$(wc -l <sent2)" = 1 &&
    grep "^n0 key-" sent2 &&
    test "$(user_records "lost in flight")" = 1
'

# whether the broker got the inject before the near side died or after,
# it is done once: redelivered by the broker and sent again by the far
# side, the near side answers the first copy and drops the second
test_expect_success MQTT,JQ 'near side stopped, then killed, with an inject queued for it: one ack, one record' '
    kill -STOP "$near_pid" &&
    { far timeout 120 codeswarm send s 0 "taken late" >sent3 2>sent3.err & } &&
    send_pid=$! &&
    near_kill KILL &&
    near_up &&
    wait $send_pid &&
    test "$(wc -l <sent3)" = 1 &&
    grep "^n0 key-" sent3 &&
    wait_for -t 30 value_is "user_records \"taken late\"" = 1 &&
    test "$(user_records "written once")" = 1 &&
    test "$(user_records "lost in flight")" = 1
'

frames () {  # appends of records of type $1 the near side sent the server
    grep -c "\"type\":\"$1\"" link-in.log 2>/dev/null
}
inbox_count () {  # records of type $1 in the inbox of node 0
    jq -c "select(.type == \"$1\")" "$remote/swarms/s/inbox/0.jsonl" \
        2>/dev/null | wc -l
}

# an interrupt or an approval writes a record under an id the near side
# makes up: it remembers that id by the far-side client and request id,
# so the far side sends the command again when no answer came, and the
# near side answers it once and writes its record once
test_expect_success MQTT,JQ 'interrupt: near side killed after its record was written, before its answer: one ack, one record' '
    srv=$(server_pid) &&
    kill -STOP "$srv" &&
    { far timeout 60 codeswarm interrupt s 0 >int1 2>int1.err & } &&
    int_pid=$! &&
    wait_for -t 30 forwarded "\"type\":\"interrupt\"" &&
    near_kill KILL &&
    { kill -CONT "$srv" 2>/dev/null; true; } &&
    wait_for -t 30 value_is "inbox_count interrupt" = 1 &&
    near_up &&
    wait $int_pid &&
    test "$(wc -l <int1)" = 1 &&
    grep "^n0 int-" int1 &&
    test "$(inbox_count interrupt)" = 1 &&
    grep "was handled before: answered again" near.log
'

test_expect_success MQTT,JQ 'interrupt: near side killed before its record was written: one ack, one record' '
    before=$(frames interrupt) &&
    srv=$(server_pid) &&
    kill -STOP "$srv" &&
    { far timeout 60 codeswarm interrupt s 0 >int2 2>int2.err & } &&
    int_pid=$! &&
    wait_for -t 30 value_is "frames interrupt" -gt "$before" &&
    kill -STOP "$near_pid" &&
    kill -KILL "$srv" &&
    near_kill KILL &&
    test "$(inbox_count interrupt)" = 1 &&
    near_up &&
    wait $int_pid &&
    test "$(wc -l <int2)" = 1 &&
    grep "^n0 int-" int2 &&
    test "$(inbox_count interrupt)" = 2
'

test_expect_success MQTT,JQ 'approval: near side killed after the decision was written, before its answer: one ack, one record' '
    CODESWARM_HOME=$remote codeswarm-mailbox append --type approval_requested s/outbox/0 \
        "{\"approval_id\":\"n0-1-1-0\",\"rpc_id\":0,\"method\":\"item/commandExecution/requestApproval\",\"thread_id\":\"th\",\"turn_id\":\"T\",\"item_id\":\"c\",\"command\":\"make install\",\"cwd\":\"/w\",\"reason\":\"needs root\",\"available_decisions\":[\"accept\",\"decline\"]}" >/dev/null &&
    wait_for -t 30 eval "far codeswarm approvals 2>/dev/null | grep -q n0-1-1-0" &&
    srv=$(server_pid) &&
    kill -STOP "$srv" &&
    { far timeout 60 codeswarm approve n0-1-1-0 decline >apr 2>apr.err & } &&
    apr_pid=$! &&
    wait_for -t 30 forwarded "\"type\":\"approval\"" &&
    near_kill KILL &&
    { kill -CONT "$srv" 2>/dev/null; true; } &&
    wait_for -t 30 value_is "inbox_count approval" = 1 &&
    near_up &&
    wait $apr_pid &&
    test "$(inbox_count approval)" = 1 &&
    test "$(jq -r "select(.type == \"approval\") | .decision" "$remote/swarms/s/inbox/0.jsonl")" = decline
'

prom_value () {   # prom_value NAME FILE
    awk -v n="$1" '$1 == n { print $2 }' "$2" 2>/dev/null
}
test_expect_success MQTT,JQ 'the audit trail names the relay and the far side for each inject' '
    test "$(jq -c "select(.action == \"inject\")" home/router/audit/s/audit.jsonl | wc -l)" -ge 3 &&
    test "$(jq -c "select(.action == \"inject\" and (.via != \"relay\" or (.peer | test(\"^.+@.+ far$\") | not)))" home/router/audit/s/audit.jsonl | wc -l)" = 0 &&
    me=$(id -un) && host=$(hostname) &&
    test "$(jq -c "select(.action == \"inject\" and .peer == \"$me@$host far\")" home/router/audit/s/audit.jsonl | wc -l)" -ge 3
'

# a copy of the near side's metrics file that says the relay is connected
# (the router replaces the file at each interval: the checks read one copy)
snap_connected () {
    cp near.prom snap.prom 2>/dev/null &&
    test "$(prom_value "codeswarm_router_relay_state{state=\"connected\"}" snap.prom)" = 1
}

test_expect_success MQTT,JQ,PROMTOOL 'the metrics file says the relay is connected, and passes promtool' '
    wait_for -t 30 snap_connected &&
    promtool check metrics <snap.prom &&
    test "$(prom_value "codeswarm_router_relay_state{state=\"retrying\"}" snap.prom)" = 0 &&
    test "$(prom_value codeswarm_router_relay_payloads_rejected_total snap.prom)" = 0 &&
    test -n "$(prom_value codeswarm_router_relay_reconnects_total snap.prom)"
'

test_expect_success MQTT,JQ 'stopped with TERM, neither side logs its own disconnection as a lost connection' '
    near_kill TERM &&
    far_kill TERM &&
    grep "signal 15: exiting" near.log &&
    ! grep "connection lost" near.log far.log
'

test_done
