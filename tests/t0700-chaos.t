#!/bin/bash
test_description='chaos: workers, the router and codex killed at random

A local swarm of two nodes (the real codex against the mock model) gets a
stream of tiny prompts through "codeswarm send".  Between prompts the test
kills a worker, the router or codex at random (a fixed seed, printed: rerun
with CODESWARM_CHAOS_SEED=N to replay), and fills the mailbox filesystem
for a part of the run.  Then every prompt "send" acknowledged has exactly
one end (one turn_complete or one inject_failed) in the router stream
replayed from 0, no prompt was answered twice, and the mailbox is clean.'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

codex_testbed_setup
test_require_component JQ jq --version

# the mailbox on a filesystem the test may fill: a tmpfs (root only)
fs=$(pwd)/fs
tmpfs_mount_ () {
    test "$(id -u)" = 0 && mkdir -p "$fs" &&
    mount -t tmpfs -o size=16m,mode=0700 codeswarm-chaos "$fs"
}
test_require_component TMPFS tmpfs_mount_

attach_pid=
chaos_exit_ () {
    ce_rc_=$?
    test -n "$attach_pid" && kill -KILL "$attach_pid" 2>/dev/null
    if test -f "$CODESWARM_HOME/swarms/chaos/swarm.json"; then
        codeswarm cancel chaos --grace 2s >/dev/null 2>&1
        ce_sup_=$(jq -r ".supervisor_pid // 0" \
            "$CODESWARM_HOME/swarms/chaos/swarm.json" 2>/dev/null)
        test "${ce_sup_:-0}" != 0 && wait_for -t 20 pid_gone "$ce_sup_"
    fi
    test -n "$router_pid" && kill -KILL "$router_pid" 2>/dev/null
    wait 2>/dev/null
    mountpoint -q "$fs" 2>/dev/null && umount "$fs"
    (exit $ce_rc_)
    codex_testbed_exit_
}
trap chaos_exit_ EXIT

if test_have_prereq TMPFS; then
    CODESWARM_HOME=$fs/home
    mkdir -m 0700 "$CODESWARM_HOME"
    export CODESWARM_HOME
fi
# quick restarts however often the test kills
cat >codeswarm.yaml <<EOF
worker:
  heartbeat: 0.5
  restart_backoff_min: 50ms
  restart_backoff_max: 200ms
  max_failed_starts: 100000
EOF
CODESWARM_CONFIG=$(pwd)/codeswarm.yaml
export CODESWARM_CONFIG

seed=${CODESWARM_CHAOS_SEED:-$(date +%s)}
RANDOM=$seed
say "chaos seed: $seed (CODESWARM_CHAOS_SEED=$seed replays the schedule)"
echo "chaos seed: $seed" >seed

NODES=2
# each send goes to both nodes: 100 sends, 200 prompts
SENDS=${CODESWARM_CHAOS_SENDS:-100}
KILL_WORKER=50
KILL_ROUTER=20
KILL_CODEX=4

outbox () {
    echo "$CODESWARM_HOME/swarms/chaos/outbox/$1.jsonl"
}
# the pid of node $1's newest worker
worker_pid () {
    grep '"type":"worker_started"' "$(outbox "$1")" | tail -n 1 |
        jq -r .pid
}
# node $1 has a live worker other than pid $2
worker_replaced () {
    wr_p_=$(worker_pid "$1") &&
    test -n "$wr_p_" && test "$wr_p_" != "$2" && ! pid_gone "$wr_p_"
}
# the app-server (codex) of worker $1
codex_pid () {
    pgrep -P "$1" | head -n 1
}
codex_up () {
    test -n "$(codex_pid "$1")"
}

# the schedule: one action after each prompt, shuffled with the seed
schedule () {
    acts=()
    for i in $(seq 1 $KILL_WORKER); do acts+=(W); done
    for i in $(seq 1 $KILL_ROUTER); do acts+=(R); done
    for i in $(seq 1 $KILL_CODEX); do acts+=(C); done
    while test ${#acts[@]} -lt "$SENDS"; do acts+=(-); done
    for ((i = ${#acts[@]} - 1; i > 0; i--)); do
        j=$((RANDOM % (i + 1)))
        t=${acts[i]}; acts[i]=${acts[j]}; acts[j]=$t
    done
}

declare -a killed
# a node, from $1 on, whose worker is not the one killed last there
live_node () {
    for ln_j_ in $(seq 0 $((NODES - 1))); do
        ln_k_=$(( ($1 + ln_j_) % NODES ))
        if worker_replaced $ln_k_ "${killed[ln_k_]:-0}"; then
            echo $ln_k_
            return 0
        fi
    done
    return 1
}
# the same, with its codex up
codex_node () {
    for cn_j_ in $(seq 0 $((NODES - 1))); do
        cn_k_=$(( ($1 + cn_j_) % NODES ))
        if worker_replaced $cn_k_ "${killed[cn_k_]:-0}" &&
           codex_up "$(worker_pid $cn_k_)"; then
            echo $cn_k_
            return 0
        fi
    done
    return 1
}
kill_worker () {
    wait_for -t 60 live_node "$1" >/dev/null &&
    k=$(live_node "$1") &&
    p=$(worker_pid "$k") &&
    kill -KILL "$p" &&
    killed[k]=$p &&
    echo "W node $k pid $p $(date +%s.%N)" >>actions
}
kill_codex () {
    wait_for -t 60 codex_node "$1" >/dev/null &&
    k=$(codex_node "$1") &&
    p=$(worker_pid "$k") &&
    c=$(codex_pid "$p") &&
    test -n "$c" &&
    kill -KILL "$c" &&
    echo "C node $k pid $c $(date +%s.%N)" >>actions
}

act () {
    case $1 in
    W) kill_worker $((RANDOM % NODES)) ;;
    C) kill_codex $((RANDOM % NODES)) ;;
    R) router_kill KILL && restart_router=1 &&
       echo "R $(date +%s.%N)" >>actions ;;
    esac
}

fill () {
    dd if=/dev/zero of="$fs/fill" bs=64k 2>/dev/null
    test -s "$fs/fill"
}

test_expect_success CODEX,JQ,TMPFS 'a local swarm of two nodes and a router' '
    codeswarm launch --local --nodes $NODES --name chaos >launch.out 2>launch.err &&
    router_start
'

test_expect_success CODEX,JQ,TMPFS 'a stream of prompts while workers, the router and codex die' '
    schedule &&
    full_from=$((SENDS / 2)) && full_to=$((full_from + SENDS / 8)) &&
    : >acked && : >refused && : >actions &&
    restart_router= && deferred=() &&
    for i in $(seq 1 $SENDS); do
        test $i = $full_from && { fill || return 1; echo "disk full" >>actions; }
        test $i = $full_to && { rm -f "$fs/fill"; echo "disk free" >>actions; }
        echo "$(date +%s.%N) send $i" >>actions
        # every line printed is an ack, even when a node was refused
        codeswarm send chaos all "p$i" >send.out 2>send.err ||
            echo "p$i: $(cat send.err)" >>refused
        cat send.out >>acked
        if test -n "$restart_router"; then
            router_start || return 1
            restart_router=
        fi
        # a worker killed on the full disk cannot say that it started
        # again: its kills wait until there is space
        a=${acts[i - 1]}
        if test -e "$fs/fill"; then
            case $a in W|C) deferred+=($a); a=- ;; esac
        elif test ${#deferred[@]} -gt 0 && test "$a" = -; then
            a=${deferred[0]}; deferred=("${deferred[@]:1}")
        fi
        act $a || return 1
    done &&
    rm -f "$fs/fill" &&
    if test -n "$restart_router"; then router_start; fi &&
    for a in "${deferred[@]}"; do act $a || return 1; done &&
    test "$(grep -c "^W" actions)" = $KILL_WORKER &&
    test "$(grep -c "^R" actions)" = $KILL_ROUTER &&
    test "$(grep -c "^C" actions)" = $KILL_CODEX &&
    echo "# $(wc -l <acked) prompts acked, $(wc -l <refused) refused" &&
    test "$(wc -l <acked)" -gt 0
'

# the ends of each injection id in the stream replayed from 0:
# "ID turn_complete-count inject_failed-count final-answers turn_started"
ends () {
    jq -r "select(.seq != null and .data.injection_id != null) |
           [.data.injection_id, .event, (.data.final_answer // false)] |
           @tsv" stream.json |
    awk -F "\t" "{ id[\$1] = 1 }
         \$2 == \"turn_complete\" { c[\$1]++ }
         \$2 == \"inject_failed\" { f[\$1]++ }
         \$2 == \"assistant\" && \$3 == \"true\" { a[\$1]++ }
         \$2 == \"turn_started\" { s[\$1]++ }
         END { for (i in id) printf \"%s %d %d %d %d\\n\", i, c[i], f[i], a[i], s[i] }" |
    sort
}
acked_ids () {
    awk "{ print \$2 }" acked | sort
}
all_ended () {
    ends >ends.txt &&
    awk "\$2 + \$3 > 0 { print \$1 }" ends.txt >ended &&
    test -z "$(acked_ids | comm -23 - ended)"
}
all_idle () {
    codeswarm status chaos --json >st.json &&
    test "$(jq "[.[0].node_states[] | select(.turn_active != false or .inbox_lag != 0)]
        | length" st.json)" = 0
}

test_expect_success CODEX,JQ,TMPFS 'every acked prompt comes to an end' '
    rm -f "$fs/fill" &&
    { router_ready || router_start; } &&
    { codeswarm attach chaos --json --since 0 >stream.json 2>attach.err & } &&
    attach_pid=$! &&
    wait_for -t 300 all_ended &&
    wait_for -t 60 all_idle &&
    all_ended
'

test_expect_success CODEX,JQ,TMPFS 'exactly one end for each, no answer twice' '
    check_seqs stream.json 1 &&
    acked_ids >acked.ids &&
    test "$(uniq -d acked.ids)" = "" &&
    join acked.ids ends.txt >acked.ends &&
    test "$(wc -l <acked.ends)" = "$(wc -l <acked.ids)" &&
    awk "\$2 + \$3 != 1 { print \"not one end:\", \$0 }" ends.txt >bad &&
    awk "\$4 > 1 || \$5 > 1 { print \"twice:\", \$0 }" ends.txt >>bad &&
    test_must_be_empty bad &&
    echo "# $(jq -c "select(.event == \"node_degraded\")" stream.json | wc -l) node_degraded," \
        "$(jq -c "select(.event == \"turn_complete\" and .data.status != \"completed\")" stream.json | wc -l) turns cut"
'

test_expect_success CODEX,JQ,TMPFS 'the mailbox is clean' '
    kill "$attach_pid" && attach_pid= &&
    for f in "$CODESWARM_HOME"/swarms/chaos/inbox/*.jsonl \
             "$CODESWARM_HOME"/swarms/chaos/outbox/*.jsonl; do
        codeswarm-mailbox check "$f" || return 1
    done
'

test_expect_success CODEX,JQ,TMPFS 'cancel' '
    codeswarm cancel chaos >cancel.out &&
    grep "swarm chaos: cancelled" cancel.out &&
    router_kill TERM
'

test_done
