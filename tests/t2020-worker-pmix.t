#!/bin/bash
test_description='codeswarm-worker under srun --mpi=pmix: node index from PMIx, ready after the fence'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-worker.sh"

worker_trap
test_require_component JQ jq --version

# The Slurm test bed (tests/testbed/slurm-up) when it is up; with
# CODESWARM_TEST_REQUIRE_ALL=1 it is brought up.
slurm_dir=${CODESWARM_SLURM_DIR:-/tmp/codeswarm-slurm}
if test "$CODESWARM_TEST_REQUIRE_ALL" = 1 && ! test -f "$slurm_dir/env"; then
    eval "$("$CODESWARM_SRC_DIR/tests/testbed/slurm-up" 2>&4)"
fi
test -f "$slurm_dir/env" && eval "$(cat "$slurm_dir/env")"
slurm_pmix_check () {
    test -n "$SLURM_CONF" &&
    sinfo -h -o %D >/dev/null &&
    srun --mpi=list 2>&1 | grep -q pmix &&
    test "$(sinfo -h -o %D | head -n 1)" -ge 2
}
test_require_component SLURM_PMIX slurm_pmix_check
# built with PMIx?  (libpmix is loaded at run time only)
if grep -q "define HAVE_PMIX 1" "$CODESWARM_BUILD_DIR/config.h" 2>/dev/null; then
    test_set_prereq BUILT_WITH_PMIX
fi

unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID
CODESWARM_CODEX=$CODESWARM_BUILD_DIR/tests/fake-app-server
export CODESWARM_CODEX
SWARM=px
# in a sanitizer build: what libpmix and its libraries keep after
# PMIx_Finalize is theirs, not the worker's
printf "leak:%s\n" libpmix.so libevent libhwloc libmunge >lsan.supp
LSAN_OPTIONS="suppressions=$(pwd)/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
out0=$CODESWARM_HOME/swarms/$SWARM/outbox/0.jsonl
out1=$CODESWARM_HOME/swarms/$SWARM/outbox/1.jsonl

rec () {
    jq -c "select(.type == \"$2\")" "$1" | tail -n 1
}

# node 1's app-server answers 2 s late; node 0 must not say ready before
test_expect_success SLURM_PMIX,BUILT_WITH_PMIX,JQ 'two workers under srun --mpi=pmix' '
    srun --mpi=pmix -N 2 --ntasks-per-node=1 -t 2 \
        sh -c "test \$SLURM_PROCID = 1 && export FAKE_APP_SERVER_DELAY=2; \
               unset SLURM_NODEID SLURM_PROCID; \
               exec codeswarm-worker --swarm $SWARM -v" \
        </dev/null >srun.log 2>&1 3>&- 4>&- 5>&- 6>&- &
    worker_pid=$! &&
    wait_for -t 60 sh -c "test -s \"$out0\" && test -s \"$out1\" &&
        grep -q \"\\\"type\\\":\\\"ready\\\"\" \"$out0\" &&
        grep -q \"\\\"type\\\":\\\"ready\\\"\" \"$out1\""
'

test_expect_success SLURM_PMIX,BUILT_WITH_PMIX,JQ 'the node index comes from the PMIx rank' '
    test "$(rec "$out0" worker_started | jq .node)" = 0 &&
    test "$(rec "$out1" worker_started | jq .node)" = 1 &&
    test "$(rec "$out0" worker_started | jq -r .job_id)" != null &&
    grep "node 0 from PMIx rank" srun.log &&
    grep "node 1 from PMIx rank" srun.log
'

test_expect_success SLURM_PMIX,BUILT_WITH_PMIX,JQ 'ready is written only after every worker has its thread' '
    t_thread0=$(jq -c "select(.type == \"rpc\" and .msg.id == 2)" "$out0" | jq .ts) &&
    t_thread1=$(jq -c "select(.type == \"rpc\" and .msg.id == 2)" "$out1" | jq .ts) &&
    t_ready0=$(rec "$out0" ready | jq .ts) &&
    awk -v a="$t_thread0" -v b="$t_thread1" -v r="$t_ready0" \
        "BEGIN { exit !(b - a > 1.5 && r >= b - 0.05) }"
'

test_expect_success SLURM_PMIX,BUILT_WITH_PMIX,JQ 'shutdown records end the step' '
    codeswarm-mailbox append --type shutdown $SWARM/inbox/0 "{\"id\":\"s0\"}" &&
    codeswarm-mailbox append --type shutdown $SWARM/inbox/1 "{\"id\":\"s1\"}" &&
    worker_wait_exit 30 &&
    test "$worker_rc" = 0 &&
    test "$(rec "$out0" worker_stopped | jq -r .reason)" = shutdown &&
    test "$(rec "$out1" worker_stopped | jq -r .reason)" = shutdown
'

# node 1 never starts its worker: node 0 waits in its fence, and a SIGTERM
# must still stop it at once (no ready record, a worker_stopped record)
fence_out=$CODESWARM_HOME/swarms/pxf/outbox/0.jsonl
test_expect_success SLURM_PMIX,BUILT_WITH_PMIX,JQ 'a worker waiting in its fence stops on TERM' '
    srun --mpi=pmix -N 2 --ntasks-per-node=1 -t 2 \
        sh -c "test \$SLURM_PROCID = 1 && exec sleep 110; \
               unset SLURM_NODEID SLURM_PROCID; \
               exec codeswarm-worker --swarm pxf -v" \
        </dev/null >srun-fence.log 2>&1 3>&- 4>&- 5>&- 6>&- &
    worker_pid=$! &&
    wait_for -t 60 grep -q "waiting for the other workers" srun-fence.log &&
    pid0=$(rec "$fence_out" worker_started | jq .pid) &&
    job=$(rec "$fence_out" worker_started | jq -r .job_id) &&
    kill -TERM "$pid0" &&
    wait_for -t 20 grep -q "\"type\":\"worker_stopped\"" "$fence_out" &&
    test "$(rec "$fence_out" worker_stopped | jq -r .reason)" = SIGTERM &&
    test -z "$(rec "$fence_out" ready)" &&
    wait_for -t 20 sh -c "! kill -0 $pid0 2>/dev/null" &&
    grep "stopped while waiting for the other workers" srun-fence.log &&
    scancel "$job" &&
    worker_wait_exit 60
'

test_done
