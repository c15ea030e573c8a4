#!/bin/bash
# record.sh - regenerate the golden translation inputs from the real codex
#
#   tests/golden/record.sh [BUILD-DIR] [SCENARIO...]
#
# For each scenario, runs one codeswarm-worker (built in BUILD-DIR, default
# $CODESWARM_BUILD_DIR or the current directory) with the real codex against
# the loopback mock model (tests/testbed), feeds it inbox records, waits for
# the turns to end, stops it, and saves its outbox as
# tests/golden/<scenario>.outbox.jsonl.  Then writes the translation of each
# outbox (router/test_golden.t --print) to <scenario>.events.jsonl: review
# the diff before committing it.  Needs jq and codex (tests/testbed/
# codex-install).
set -u

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-${CODESWARM_BUILD_DIR:-$(pwd)}}
shift $(( $# > 0 ? 1 : 0 ))
build=$(cd "$build" && pwd)
golden=$src/tests/golden
scenarios=${*:-hello multi_turn exec approval interrupt model_error steer}

for p in worker/codeswarm-worker mailbox/codeswarm-mailbox \
         tools/codeswarm-mock-model router/test_golden.t; do
    test -x "$build/$p" || { echo "record.sh: no $build/$p (make first)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "record.sh: jq is needed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/golden.XXXXXX")
trap 'kill $mock_pid $worker_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
mock_pid=
worker_pid=
export PATH=$build/worker:$build/mailbox:$build/tools:$PATH
export NO_COLOR=1 MOCK_API_KEY=golden-key
# codex refuses its helper links when CODEX_HOME is under TMPDIR
mkdir -p "$work/tmp"
export TMPDIR=$work/tmp

case $(uname -m) in
aarch64|arm64) arch=arm64 triple=aarch64-unknown-linux-musl ;;
*) arch=x64 triple=x86_64-unknown-linux-musl ;;
esac
tbdir=${CODESWARM_TESTBED_DIR:-/tmp/codeswarm-testbed}
CODESWARM_CODEX=${CODESWARM_CODEX:-$tbdir/codex/node_modules/@openai/codex-linux-$arch/vendor/$triple/bin/codex}
if ! test -x "$CODESWARM_CODEX"; then
    CODESWARM_CODEX=$("$src/tests/testbed/codex-install" "$tbdir/codex" | tail -n 1)
fi
export CODESWARM_CODEX

codeswarm-mock-model --port 0 --port-file "$work/port" --log "$work/mock.log" \
    --watch-pid $$ </dev/null >/dev/null 2>"$work/mock.err" &
mock_pid=$!
for i in $(seq 100); do test -s "$work/port" && break; sleep 0.05; done
port=$(cat "$work/port")
export CODEX_HOME=$work/codex-home
"$src/tests/testbed/codex-env" "$CODEX_HOME" "$port" >/dev/null

outbox () { echo "$CODESWARM_HOME/swarms/g/outbox/0.jsonl"; }
has () { test -f "$(outbox)" && test "$(jq -c "select($1)" "$(outbox)" | wc -l)" -ge "${2:-1}"; }
wait_for () {   # FILTER [N]
    for i in $(seq 600); do has "$1" "${2:-1}" && return 0; sleep 0.1; done
    echo "record.sh: timed out waiting for $1" >&2
    return 1
}
inject () { codeswarm-mailbox append --type "$1" g/inbox/0 "$2" >/dev/null; }
turns_done () { wait_for '.type == "rpc" and .msg.method == "turn/completed"' "$1"; }

run_scenario () {
    name=$1
    export CODESWARM_HOME=$work/home-$name
    mkdir -p "$CODESWARM_HOME"
    chmod 700 "$CODESWARM_HOME"
    policy=on-request
    test "$name" = exec && policy=never
    cat >"$work/$name.yaml" <<EOF
codex:
  approval_policy: $policy
  sandbox: workspace-write
worker:
  heartbeat: 60
EOF
    export CODESWARM_CONFIG=$work/$name.yaml
    unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID
    codeswarm-worker --swarm g --node 0 </dev/null >"$work/$name.worker.log" 2>&1 &
    worker_pid=$!
    wait_for '.type == "ready"' || return 1
    case $name in
    hello)
        inject user '{"id":"inj-hello","content":"Say hello."}'
        turns_done 1 ;;
    multi_turn)
        inject user '{"id":"inj-a","content":"first question"}'
        turns_done 1
        inject user '{"id":"inj-b","content":"second question"}'
        turns_done 2 ;;
    exec)
        inject user '{"id":"inj-exec","content":"RUN: echo golden-output"}'
        turns_done 1 ;;
    approval)
        inject user '{"id":"inj-apr","content":"ESCALATE: echo approved-run"}'
        wait_for '.type == "approval_requested"' || return 1
        aid=$(jq -r 'select(.type == "approval_requested") | .approval_id' "$(outbox)" | head -n1)
        inject approval "{\"id\":\"apr-1\",\"approval_id\":\"$aid\",\"decision\":\"accept\"}"
        turns_done 1 ;;
    interrupt)
        inject user '{"id":"inj-slow","content":"SLOW: 40"}'
        wait_for '.type == "rpc" and .msg.method == "item/agentMessage/delta"'
        inject interrupt '{"id":"int-1"}'
        turns_done 1 ;;
    model_error)
        inject user '{"id":"inj-fail","content":"FAIL: 500"}'
        turns_done 1 ;;
    steer)
        inject user '{"id":"inj-long","content":"SLOW: 6"}'
        wait_for '.type == "rpc" and .msg.method == "item/agentMessage/delta"'
        inject user '{"id":"inj-steer","content":"Second while busy.","mode":"steer"}'
        turns_done 1 ;;
    esac
    kill -TERM "$worker_pid"
    wait "$worker_pid"
    worker_pid=
    wait_for '.type == "worker_stopped"' || true
    cp "$(outbox)" "$golden/$name.outbox.jsonl"
    "$build/router/test_golden.t" --print "$golden/$name.outbox.jsonl" \
        >"$golden/$name.events.jsonl"
    echo "recorded $name: $(wc -l <"$golden/$name.outbox.jsonl") records," \
         "$(wc -l <"$golden/$name.events.jsonl") events"
}

rc=0
for s in $scenarios; do
    run_scenario "$s" || { echo "record.sh: scenario $s failed" >&2; rc=1; }
done
exit $rc
