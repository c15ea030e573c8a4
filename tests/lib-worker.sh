# lib-worker.sh - helpers for the codeswarm-worker program tests
#
# Source after tests/sharness.sh.  The swarm is $SWARM (default "s"), the
# node 0; records are read straight from the outbox file with jq.
#
#   worker_start [ARGS...]    start codeswarm-worker in the background
#                             (log: worker.log, pid: $worker_pid), under
#                             $WORKER_WRAPPER (e.g. valgrind) when set
#   worker_wait_exit [SECS]   wait for it to exit; its status in $worker_rc
#   worker_kill [SIG]         signal it (default TERM)
#   inject TYPE JSON          append an inbox record (codeswarm-mailbox)
#   outbox_count FILTER       records matching the jq FILTER (a boolean
#                             expression on one record)
#   outbox_has FILTER [N]     at least N (default 1) such records
#   outbox_wait FILTER [N] [SECS]  wait until outbox_has
#   outbox_last FILTER        the last matching record (compact JSON)
#   assistant_text            the text of every completed agentMessage,
#                             one per line

SWARM=${SWARM:-s}
worker_pid=
outbox=$CODESWARM_HOME/swarms/$SWARM/outbox/0.jsonl
inbox=$CODESWARM_HOME/swarms/$SWARM/inbox/0.jsonl
state=$CODESWARM_HOME/swarms/$SWARM/state/0.json

worker_start () {
    worker_cleanup_         # one left by a failed test is not leaked
    $WORKER_WRAPPER codeswarm-worker --swarm "$SWARM" --node 0 -v "$@" \
        </dev/null >>worker.log 2>&1 3>&- 4>&- 5>&- 6>&- &
    worker_pid=$!
}

worker_kill () {
    test -n "$worker_pid" && kill -"${1:-TERM}" "$worker_pid" 2>/dev/null
}

worker_alive_ () {
    kill -0 "$worker_pid" 2>/dev/null
}

worker_wait_exit () {
    wwe_n_=$(( ${1:-30} * 10 ))
    while worker_alive_ && test $wwe_n_ -gt 0; do
        sleep 0.1
        wwe_n_=$((wwe_n_ - 1))
    done
    if worker_alive_; then
        echo >&2 "the worker did not exit"
        return 1
    fi
    wait "$worker_pid"
    worker_rc=$?
    worker_pid=
    return 0
}

# stop any worker left running when the script ends
worker_cleanup_ () {
    if test -n "$worker_pid"; then
        kill -KILL "$worker_pid" 2>/dev/null
        wait "$worker_pid" 2>/dev/null
        worker_pid=
    fi
}

inject () {
    codeswarm-mailbox append --type "$1" "$SWARM/inbox/0" "$2"
}

outbox_count () {
    if test -f "$outbox"; then
        jq -c "select($1)" "$outbox" 2>/dev/null | wc -l
    else
        echo 0
    fi
}

outbox_has () {
    test "$(outbox_count "$1")" -ge "${2:-1}"
}

outbox_wait () {
    wait_for -t "${3:-30}" outbox_has "$1" "${2:-1}"
}

outbox_last () {
    jq -c "select($1)" "$outbox" | tail -n 1
}

assistant_text () {
    jq -r 'select(.type == "rpc" and .msg.method == "item/completed"
                  and .msg.params.item.type == "agentMessage")
           | .msg.params.item.text' "$outbox"
}

# worker_trap: on exit, kill a worker left running, then run the exit
# handler that was there (lib-codex.sh's, or sharness's)
worker_exit_ () {
    we_rc_=$?
    worker_cleanup_
    if test -n "$worker_codex_"; then
        (exit $we_rc_)
        codex_testbed_exit_
    else
        (exit $we_rc_)
        sharness_die_
    fi
}

worker_trap () {
    if type codex_testbed_exit_ >/dev/null 2>&1; then
        worker_codex_=t
    fi
    trap 'worker_exit_' EXIT
}
