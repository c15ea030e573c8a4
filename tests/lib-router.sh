# lib-router.sh - helpers for the router program tests
#
# Source after tests/sharness.sh.
#
#   router_start [ARGS...]   codeswarm-router --socket in the background
#                            (log: router.log, pid: $router_pid) and wait
#                            until it answers hello
#   router_kill [SIG]        signal it (default TERM) and reap it
#   router_ready             a router answers on the socket
#   rcmd COMMAND PAYLOAD     one command line (request id "r-COMMAND")
#   out_append NODE JSON...  append records of type rpc/...: see below
#   ev_seqs FILE             the "seq" of every stream event in FILE
#   check_seqs FILE [FIRST]  seqs are FIRST, FIRST+1, ... with no gap or repeat

router_pid=

router_ready () {
    codeswarm-client rpc --timeout 1 --until hello \
        "$(rcmd hello '{"subscribe":false}')" >/dev/null 2>&1
}

router_start () {
    codeswarm-router --socket -v "$@" </dev/null >>router.log 2>&1 \
        3>&- 4>&- 5>&- 6>&- &
    router_pid=$!
    wait_for -t 20 router_ready
}

router_kill () {
    if test -n "$router_pid"; then
        kill -"${1:-TERM}" "$router_pid" 2>/dev/null
        wait "$router_pid" 2>/dev/null
        router_pid=
    fi
    return 0
}

rcmd () {
    printf '{"protocol":"codeswarm.router.v1","type":"command","command":"%s","request_id":"r-%s","payload":%s}' "$1" "$1" "${2:-{\}}"
}

ev_seqs () {
    jq -r 'select(.seq != null) | .seq' "$1"
}

check_seqs () {
    ev_seqs "$1" >seqs.actual &&
    n=$(wc -l <seqs.actual) &&
    first=${2:-$(head -n1 seqs.actual)} &&
    seq "$first" $((first + n - 1)) >seqs.expect &&
    test_cmp seqs.expect seqs.actual
}

router_cleanup_ () {
    rc_=$?
    if test -n "$router_pid"; then
        kill -KILL "$router_pid" 2>/dev/null
        wait "$router_pid" 2>/dev/null
    fi
    (exit $rc_)
    if type codex_testbed_exit_ >/dev/null 2>&1; then
        codex_testbed_exit_     # the workers and the mock model too
    fi
    if type sharness_die_ >/dev/null 2>&1; then
        sharness_die_
    fi
    exit $rc_
}
router_trap () {
    trap 'router_cleanup_' EXIT
}
