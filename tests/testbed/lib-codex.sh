# lib-codex.sh - the real codex against the mock model, for program tests
#
# Source it after tests/sharness.sh, then call codex_testbed_setup:
#
#   . "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
#   codex_testbed_setup
#   test_expect_success CODEX 'a turn' '...'
#
# codex_testbed_setup [MOCK-OPTIONS...]
#   Finds codex: $CODESWARM_CODEX when set, else the testbed's install
#   (${CODESWARM_TESTBED_DIR:-/tmp/codeswarm-testbed}/codex), which it
#   installs with tests/testbed/codex-install when it is missing and npm is
#   there (unless CODESWARM_TESTBED_NO_INSTALL=1).  Starts the mock model
#   (codeswarm-mock-model from the build tree) on a free loopback port in
#   the trash directory, writes an offline CODEX_HOME for it, and exports
#     CODESWARM_CODEX   the codex binary
#     CODEX_HOME        <trash>/codex-home (config.toml for the mock)
#     MOCK_API_KEY      what the config's env_key names
#     MOCK_MODEL_PORT   the mock's port
#     MOCK_MODEL_LOG    <trash>/mock-model.log, one JSON line per request
#     NO_COLOR=1        codex's stderr without ANSI colours
#     TMPDIR            <trash>/tmp: codex refuses to create its helper links
#                       when CODEX_HOME is under $TMPDIR (default /tmp), and
#                       then every sandboxed command fails with "bwrap:
#                       execvp codex-linux-sandbox: No such file or directory"
#   and sets the prereq CODEX through test_require_component, so that a
#   missing codex skips the CODEX tests, or fails the script when
#   CODESWARM_TEST_REQUIRE_ALL=1.  MOCK-OPTIONS go to the mock model
#   (e.g. --delay 0.1).  The mock is stopped when the script exits.
#
# mock_model_start [OPTIONS...] / mock_model_stop
#   Start (on the same port when it ran before) or stop the mock model, for
#   tests of an unreachable model.
#
# mock_model_requests
#   Prints the number of POST requests the mock has answered so far.
#
# codex_local_config [FILE]
#   For workers started here by hand: unsets Slurm's and PMIx's rank
#   variables, appends the codex settings of these tests (approvals asked
#   for, a workspace-write sandbox, a 1 s heartbeat) to FILE (default
#   codeswarm.yaml) and exports CODESWARM_CONFIG as its path.
#
# codex_workers_start SWARM N
#   Starts codeswarm-worker for nodes 0..N-1 of SWARM in the background
#   (logs worker<k>.log); their pids are added to $codex_worker_pids.
# codex_workers_ready SWARM N
#   Every one of them has said ready (a condition for wait_for).
# codex_workers_stop
#   Stops them (TERM) and reaps them; each must exit 0.  The EXIT trap
#   kills those left.

codex_testbed_dir=${CODESWARM_TESTBED_DIR:-/tmp/codeswarm-testbed}
codex_testbed_tools=$CODESWARM_SRC_DIR/tests/testbed
mock_model_pid=
MOCK_MODEL_PORT=
codex_worker_pids=

# codex_testbed_find_: print the codex binary, installing it when needed
codex_testbed_find_ () {
    if test -n "$CODESWARM_CODEX"; then
        if test -x "$CODESWARM_CODEX"; then
            echo "$CODESWARM_CODEX"
            return 0
        fi
        echo >&2 "CODESWARM_CODEX='$CODESWARM_CODEX' is not executable"
        return 1
    fi
    case $(uname -m) in
    x86_64|amd64) ctf_arch_=x64; ctf_triple_=x86_64-unknown-linux-musl ;;
    aarch64|arm64) ctf_arch_=arm64; ctf_triple_=aarch64-unknown-linux-musl ;;
    *) return 1 ;;
    esac
    ctf_bin_=$codex_testbed_dir/codex/node_modules/@openai/codex-linux-$ctf_arch_/vendor/$ctf_triple_/bin/codex
    if test -x "$ctf_bin_"; then
        echo "$ctf_bin_"
        return 0
    fi
    if test "${CODESWARM_TESTBED_NO_INSTALL:-0}" = 1 \
       || ! command -v npm >/dev/null 2>&1; then
        echo >&2 "codex is not installed in '$codex_testbed_dir/codex'" \
                 "(run tests/testbed/codex-install)"
        return 1
    fi
    # tests run in parallel: one installs, the others wait for it
    mkdir -p "$codex_testbed_dir" || return 1
    if command -v flock >/dev/null 2>&1; then
        flock "$codex_testbed_dir/.install.lock" \
            "$codex_testbed_tools/codex-install" "$codex_testbed_dir/codex" \
            | tail -n 1
    else
        "$codex_testbed_tools/codex-install" "$codex_testbed_dir/codex" \
            | tail -n 1
    fi
}

mock_model_start () {
    mms_dir_=${SHARNESS_TRASH_DIRECTORY:-$(pwd)}
    MOCK_MODEL_LOG=${MOCK_MODEL_LOG:-$mms_dir_/mock-model.log}
    export MOCK_MODEL_LOG
    rm -f "$mms_dir_/mock-model.port"
    # started from a subshell, so that it is not a job of this shell: a
    # test's bare "wait" must not wait for the mock
    mock_model_pid=$(
        codeswarm-mock-model --port "${MOCK_MODEL_PORT:-0}" \
            --port-file "$mms_dir_/mock-model.port" \
            --log "$MOCK_MODEL_LOG" --watch-pid $$ "$@" \
            </dev/null >/dev/null 2>>"$mms_dir_/mock-model.err" \
            3>&- 4>&- 5>&- 6>&- &
        echo $!
    )
    mms_i_=0
    while ! test -s "$mms_dir_/mock-model.port"; do
        if ! mock_model_alive_ "$mock_model_pid"; then
            echo >&2 "the mock model did not start:"
            cat >&2 "$mms_dir_/mock-model.err"
            mock_model_pid=
            return 1
        fi
        mms_i_=$((mms_i_ + 1))
        if test $mms_i_ -gt 200; then
            echo >&2 "the mock model did not start within 10 s"
            mock_model_stop
            return 1
        fi
        sleep 0.05
    done
    MOCK_MODEL_PORT=$(cat "$mms_dir_/mock-model.port")
    export MOCK_MODEL_PORT
}

# mock_model_alive_ PID: running and not a zombie
mock_model_alive_ () {
    kill -0 "$1" 2>/dev/null || return 1
    case $(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null) in
    Z*) return 1 ;;
    esac
    return 0
}

mock_model_stop () {
    if test -n "$mock_model_pid"; then
        kill "$mock_model_pid" 2>/dev/null
        mmst_i_=0
        while mock_model_alive_ "$mock_model_pid" && test $mmst_i_ -lt 200; do
            mmst_i_=$((mmst_i_ + 1))
            sleep 0.05
        done
        mock_model_pid=
    fi
    return 0
}

mock_model_requests () {
    if test -f "$MOCK_MODEL_LOG"; then
        grep -c '"method":"POST"' "$MOCK_MODEL_LOG"
    else
        echo 0
    fi
}

codex_local_config () {
    unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID
    clc_file_=$(pwd)/${1:-codeswarm.yaml}
    printf '%s\n' "codex:" "  approval_policy: on-request" \
        "  sandbox: workspace-write" "worker:" "  heartbeat: 1" \
        >>"$clc_file_"
    CODESWARM_CONFIG=$clc_file_
    export CODESWARM_CONFIG
}

codex_workers_start () {
    cws_k_=0
    while test $cws_k_ -lt "$2"; do
        codeswarm-worker --swarm "$1" --node $cws_k_ </dev/null \
            >worker$cws_k_.log 2>&1 3>&- 4>&- 5>&- 6>&- &
        codex_worker_pids="${codex_worker_pids:+$codex_worker_pids }$!"
        cws_k_=$((cws_k_ + 1))
    done
}

codex_workers_ready () {
    cwr_k_=0
    while test $cwr_k_ -lt "$2"; do
        jq -c 'select(.type == "ready")' \
            "$CODESWARM_HOME/swarms/$1/outbox/$cwr_k_.jsonl" 2>/dev/null |
            grep -q . || return 1
        cwr_k_=$((cwr_k_ + 1))
    done
}

codex_workers_stop () {
    for cwx_p_ in $codex_worker_pids; do
        kill -TERM "$cwx_p_" || return 1
    done
    for cwx_p_ in $codex_worker_pids; do
        wait "$cwx_p_" || return 1
    done
    codex_worker_pids=
}

# kill the workers left running (for the EXIT traps)
codex_workers_kill_ () {
    for cwk_p_ in $codex_worker_pids; do
        kill -KILL "$cwk_p_" 2>/dev/null
    done
    codex_worker_pids=
}

# the EXIT trap: stop the workers and the mock, then let sharness report
# as it would
codex_testbed_exit_ () {
    cte_rc_=$?
    codex_workers_kill_
    wait 2>/dev/null
    mock_model_stop
    if type sharness_die_ >/dev/null 2>&1; then
        (exit $cte_rc_)
        sharness_die_
    fi
    exit $cte_rc_
}

# the check behind the CODEX prereq
codex_testbed_check_ () {
    test -x "$CODESWARM_CODEX" &&
    test -n "$mock_model_pid" &&
    mock_model_alive_ "$mock_model_pid" &&
    test -f "$CODEX_HOME/config.toml"
}

codex_testbed_setup () {
    trap 'codex_testbed_exit_' EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    NO_COLOR=1
    TMPDIR=${SHARNESS_TRASH_DIRECTORY:-$(pwd)}/tmp
    mkdir -p "$TMPDIR"
    MOCK_API_KEY=${MOCK_API_KEY:-codeswarm-mock-key}
    export NO_COLOR MOCK_API_KEY TMPDIR
    if cts_bin_=$(codex_testbed_find_ 2>&4) && test -n "$cts_bin_"; then
        CODESWARM_CODEX=$cts_bin_
        export CODESWARM_CODEX
    fi
    CODEX_HOME=${SHARNESS_TRASH_DIRECTORY:-$(pwd)}/codex-home
    export CODEX_HOME
    if mock_model_start "$@" >&3 2>&4; then
        "$codex_testbed_tools/codex-env" "$CODEX_HOME" "$MOCK_MODEL_PORT" >&3 2>&4
    fi
    test_require_component CODEX codex_testbed_check_
}
