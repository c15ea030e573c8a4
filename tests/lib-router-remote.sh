# lib-router-remote.sh - the router's ssh transport tests, shared by
# t3004 (a stand-in for ssh that runs the command locally) and t4001 (the
# real sshd of the test bed).  Set before sourcing:
#   remote_prereq      the prereqs of the tests ("JQ" or "SSHD,JQ")
#   remote_args        codeswarm-router arguments for the link (--ssh ...)
# The "remote" home is $(pwd)/remote, the router's own home $CODESWARM_HOME.

remote_home=$(pwd)/remote
mkdir -p "$remote_home" && chmod 700 "$remote_home"

rappend () {
    CODESWARM_HOME=$remote_home codeswarm-mailbox append "$@" >/dev/null
}

delta () {
    printf '{"msg":{"method":"item/agentMessage/delta","params":{"turnId":"T","itemId":"m","delta":"%s"}}}' "$1"
}

produce () {
    for b in $(seq 1 "$1"); do
        set --
        for i in $(seq 1 50); do set -- "$@" "$(delta "d$b-$i")"; done
        rappend --type rpc s/outbox/0 "$@" || return 1
        sleep 0.02
    done
}

# the process at the other end of the router's link (ssh, or the stand-in)
link_pid () {
    ps -o pid= --ppid "$router_pid" | head -n1 | tr -d " "
}

# log_count_ge TEXT N: router.log has at least N lines with TEXT
log_count_ge () {
    test "$(grep -c "$1" router.log 2>/dev/null)" -ge "$2"
}

# link_connected [N]: a link process runs and router.log says "connected"
# at least N times (default 1; router.log is kept across router restarts)
link_connected () {
    test -n "$(link_pid)" && log_count_ge "ssh link connected" "${1:-1}"
}

# new_link PID: a link process other than PID (which may linger as a
# zombie until the router reaps it) runs
new_link () {
    nl_pid_=$(link_pid)
    test -n "$nl_pid_" && test "$nl_pid_" != "$1"
}

test_expect_success $remote_prereq 'remote: a swarm on the far side, a router over the link' '
    rappend --type worker_started s/outbox/0 "{\"node\":0,\"host\":\"h\",\"pid\":1,\"job_id\":\"j\"}" &&
    rappend --type worker_started s/outbox/1 "{\"node\":1,\"host\":\"h\",\"pid\":2,\"job_id\":\"j\"}" &&
    rappend --type rpc s/outbox/0 "{\"msg\":{\"method\":\"turn/started\",\"params\":{\"threadId\":\"th\",\"turn\":{\"id\":\"T\"}}}}" &&
    router_start $remote_args &&
    wait_for -t 30 link_connected
'

test_expect_success $remote_prereq 'remote: injects land in the far inboxes' '
    wait_for -t 20 eval "codeswarm send s all \"over the link\" >sent" &&
    test "$(wc -l <sent)" = 2 &&
    for k in 0 1; do
        id=$(sed -n "s/^n$k //p" sent) &&
        test "$(jq -r "select(.type == \"user\") | .id" remote/swarms/s/inbox/$k.jsonl)" = "$id" ||
        return 1
    done
'

test_expect_success $remote_prereq 'remote: the link killed mid-stream, every event once' '
    { codeswarm-client attach s --json --since 0 --turns 1 >all.json 2>attach.err & } &&
    apid=$! &&
    { produce 40 & } &&
    ppid=$! &&
    sleep 0.3 &&
    old=$(link_pid) &&
    kill -KILL "$old" &&
    wait_for -t 60 new_link "$old" &&
    kill -KILL "$(link_pid)" &&
    wait $ppid &&
    rappend --type rpc s/outbox/0 "{\"msg\":{\"method\":\"turn/completed\",\"params\":{\"threadId\":\"th\",\"turn\":{\"id\":\"T\",\"status\":\"completed\",\"error\":null}}}}" &&
    wait $apid &&
    check_seqs all.json 1 &&
    jq -r "select(.event == \"assistant_delta\") | .data.delta" all.json >deltas &&
    for b in $(seq 1 40); do for i in $(seq 1 50); do echo "d$b-$i"; done; done >deltas.expect &&
    test_cmp deltas.expect deltas &&
    wait_for log_count_ge "ssh link lost" 2
'

link_running () {
    test -n "$(link_pid)"
}

test_expect_success $remote_prereq 'remote: an inject sent while the link is down lands once' '
    wait_for -t 60 link_running &&
    kill -KILL "$(link_pid)" &&
    codeswarm send s 1 "while down" >sent2 &&
    id=$(sed -n "s/^n1 //p" sent2) &&
    test "$(jq -r "select(.id == \"$id\") | .content" remote/swarms/s/inbox/1.jsonl)" = "while down"
'

test_expect_success $remote_prereq 'remote: a restarted router resumes from its cursors' '
    n=$(grep -c "ssh link connected" router.log) &&
    router_kill TERM &&
    router_start $remote_args &&
    wait_for -t 60 link_connected $((n + 1)) &&
    rappend --type walltime_warning s/outbox/1 "{}" &&
    last=$(ev_seqs all.json | tail -n1) &&
    codeswarm-client rpc --until walltime_warning --timeout 20 \
        "$(rcmd subscribe "{\"since\":$last}")" >more.json &&
    # node liveness may change while the router is down on a loaded
    # machine; what must not come again is an event already delivered
    jq -r "select(.seq != null) | .event" more.json |
        grep -v -x -e node_lost -e node_recovered >evs &&
    echo walltime_warning >evs.expect &&
    test_cmp evs.expect evs &&
    router_kill TERM
'

# links_above N: the router has connected its link more than N times
links_above () {
    test "$(grep -c "ssh link connected" router.log)" -gt "$1"
}

test_expect_success $remote_prereq 'remote: swarm_terminate writes the far shutdown records, then swarm_terminated; no swarm_launch over ssh' '
    links=$(grep -c "ssh link connected" router.log) &&
    router_start $remote_args &&
    wait_for -t 60 links_above "$links" &&
    codeswarm-client rpc --timeout 60 --until swarm_terminated \
        "$(rcmd swarm_terminate "{\"swarm_id\":\"s\"}")" >term.json &&
    jq -s -e "map(select(.event == \"swarm_terminated\"))
              | .[0].data.request_id == \"r-swarm_terminate\"" term.json &&
    test "$(jq -r "select(.type == \"shutdown\") | .type" remote/swarms/s/inbox/0.jsonl | wc -l)" = 1 &&
    test "$(jq -r "select(.type == \"shutdown\") | .type" remote/swarms/s/inbox/1.jsonl | wc -l)" = 1 &&
    codeswarm-client rpc --timeout 10 --until command_rejected \
        "$(rcmd swarm_launch "{\"nodes\":1}")" >launch.json &&
    jq -s -e "map(select(.event == \"command_rejected\"))
              | .[0].data.code == \"unsupported\"" launch.json &&
    router_kill TERM
'
