#!/bin/sh
test_description='codeswarm-worker: options, node index, records, checkpoint, signals (scripted app-server)'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-worker.sh"

worker_trap
test_require_component JQ jq --version
unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID
CODESWARM_CODEX=$CODESWARM_BUILD_DIR/tests/fake-app-server
FAKE_APP_SERVER_LOG=$(pwd)/fake.log
export CODESWARM_CODEX FAKE_APP_SERVER_LOG
cat >codeswarm.yaml <<EOF
codex:
  home: $(pwd)/chome
  env:
    FAKE_EXTRA: hello there
worker:
  heartbeat: 0.3
EOF
CODESWARM_CONFIG=$(pwd)/codeswarm.yaml
export CODESWARM_CONFIG

test_expect_success 'usage errors exit 2' '
    test_expect_code 2 codeswarm-worker &&
    test_expect_code 2 codeswarm-worker --swarm s extra &&
    test_expect_code 2 codeswarm-worker --bogus &&
    codeswarm-worker --help >help.out &&
    grep -q "^Usage: codeswarm-worker --swarm ID" help.out
'

test_expect_success 'without PMIx, Slurm or --node there is no node index' '
    test_expect_code 1 codeswarm-worker --swarm s 2>err &&
    grep "no node index" err
'

test_expect_success 'a bad config file is refused' '
    printf "worker:\n  heartbeat: ten\n" >bad.yaml &&
    test_expect_code 1 codeswarm-worker --swarm s --node 0 --config bad.yaml 2>err &&
    grep "heartbeat" err &&
    printf "worker:\n  heartbeat: 99999999999999999999d\n" >bad.yaml &&
    test_expect_code 1 codeswarm-worker --swarm s --node 0 --config bad.yaml 2>err &&
    grep "heartbeat: \"99999999999999999999d\" is longer than 366d" err
'

test_expect_success 'a node index outside the swarm is refused, and makes no stream' '
    mkdir -p -m 0700 "$CODESWARM_HOME/swarms/two" &&
    echo "{\"id\":\"two\",\"nodes\":2}" >"$CODESWARM_HOME/swarms/two/swarm.json" &&
    chmod 0600 "$CODESWARM_HOME/swarms/two/swarm.json" &&
    test_expect_code 1 codeswarm-worker --swarm two --node 7 2>err &&
    grep "node 7 is outside swarm .two.: its swarm.json has nodes 0..1" err &&
    test_path_is_missing "$CODESWARM_HOME/swarms/two/outbox/7.jsonl" &&
    test_path_is_missing "$CODESWARM_HOME/swarms/two/inbox/7.jsonl"
'

test_expect_success 'SLURM_NODEID wins over a different --node, and says so' '
    mkdir -p "$CODESWARM_HOME/swarms/s/work/0" &&
    printf "Be brief.\nAlways.\n" >"$CODESWARM_HOME/swarms/s/work/0/AGENTS.md" &&
    SLURM_NODEID=0 SLURM_JOB_ID=4242 codeswarm-worker --swarm s --node 5 -v \
        </dev/null >>worker.log 2>&1 3>&- 4>&- 5>&- 6>&- &
    worker_pid=$! &&
    outbox_wait ".type == \"ready\"" &&
    grep "\-\-node 5 ignored: SLURM_NODEID says 0" worker.log
'

test_expect_success 'worker_started names node, host, pid, job, codex' '
    rec=$(outbox_last ".type == \"worker_started\"") &&
    test "$(echo "$rec" | jq .node)" = 0 &&
    test "$(echo "$rec" | jq -r .job_id)" = 4242 &&
    test "$(echo "$rec" | jq .pid)" = "$worker_pid" &&
    test "$(echo "$rec" | jq -r .host)" = "$(hostname)" &&
    test "$(echo "$rec" | jq -r .codex_version)" = 0.0.0-fake &&
    echo "$rec" | jq -r .schema_hash | grep -E "^[0-9a-f]{16}$" &&
    test "$(echo "$rec" | jq -r .codex_binary)" = "$CODESWARM_CODEX"
'

test_expect_success 'ready carries the thread; the workspace is the cwd, AGENTS.md the instructions' '
    rec=$(outbox_last ".type == \"ready\"") &&
    test "$(echo "$rec" | jq -r .thread_id)" = fake-thread &&
    test "$(echo "$rec" | jq .resumed)" = false &&
    grep "\"method\":\"thread/start\"" fake.log >start.line &&
    jq -j .params.developerInstructions start.line >instr &&
    printf "Be brief.\nAlways.\n" >instr.expected &&
    test_cmp instr.expected instr &&
    ws=$(cd "$CODESWARM_HOME/swarms/s/work/0" && pwd -P) &&
    test "$(jq -r .params.cwd start.line)" = "$ws" &&
    test "$(jq -r .params.approvalPolicy start.line)" = on-request &&
    test "$(jq -r .params.sandbox start.line)" = workspace-write
'

test_expect_success 'the app-server gets CODEX_HOME, NO_COLOR and codex.env' '
    grep "^#env " fake.log | head -n 1 >env.line &&
    echo "#env CODEX_HOME=$(pwd)/chome NO_COLOR=1 FAKE_EXTRA=hello there" >env.expected &&
    test_cmp env.expected env.line
'

test_expect_success 'every app-server stdout line is an rpc record, unchanged' '
    test "$(outbox_count ".type == \"rpc\" and .msg.id == 1 and .msg.result.userAgent == \"fake/0.0.0-fake\"")" = 1 &&
    grep -c "\"method\":\"initialize\"" fake.log >n && test "$(cat n)" = 1 &&
    grep -q "^{\"method\":\"initialized\"}$" fake.log
'

test_expect_success 'a user record becomes turn/start with the injection id' '
    inject user "{\"id\":\"inj-1\",\"content\":\"hello\"}" &&
    outbox_wait ".type == \"rpc\" and .msg.method == \"turn/completed\"" &&
    rec=$(outbox_last ".type == \"inject_accepted\"") &&
    test "$(echo "$rec" | jq -r .injection_id)" = inj-1 &&
    test "$(echo "$rec" | jq -r .action)" = turn/start &&
    test "$(echo "$rec" | jq -r .turn_id)" = fake-turn-1 &&
    test "$(echo "$rec" | jq .inbox_seq)" = 1 &&
    grep "\"method\":\"turn/start\"" fake.log | tail -n 1 >ts.line &&
    test "$(jq -r .params.clientUserMessageId ts.line)" = inj-1 &&
    test "$(jq -r .params.input[0].text ts.line)" = hello &&
    test "$(jq -r .params.threadId ts.line)" = fake-thread &&
    test "$(outbox_count ".type == \"rpc\" and .msg.method == \"item/agentMessage/delta\"")" = 3
'

test_expect_success 'a steer with no turn running starts a turn' '
    inject user "{\"id\":\"st-1\",\"content\":\"steer me\",\"mode\":\"steer\"}" &&
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"st-1\"" &&
    test "$(outbox_last ".type == \"inject_accepted\" and .injection_id == \"st-1\"" | jq -r .action)" = turn/start &&
    ! grep -q "\"method\":\"turn/steer\"" fake.log &&
    outbox_wait ".type == \"rpc\" and .msg.method == \"turn/completed\"" 2
'

test_expect_success 'the same injection id twice runs once' '
    inject user "{\"id\":\"st-1\",\"content\":\"steer me\"}" &&
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"st-1\" and .replayed == true" &&
    test "$(grep -c "\"clientUserMessageId\":\"st-1\"" fake.log)" = 1
'

test_expect_success 'the checkpoint holds the thread, cursor and last injection' '
    wait_for value_is "jq -r .last_injection_id \"\$state\" 2>/dev/null" = st-1 &&
    test "$(jq -r .thread_id "$state")" = fake-thread &&
    test "$(jq .inbox_cursor.seq "$state")" = 3 &&
    test "$(jq -r .job_id "$state")" = 4242 &&
    test "$(stat -c %a "$state")" = 600
'

test_expect_success 'stderr goes to the node log without ANSI escapes' '
    log="$CODESWARM_HOME/swarms/s/log/0.codex.log" &&
    grep "WARN fake-app-server starting (mode ok)" "$log" &&
    ! grep -q "$(printf "\033")" "$log" &&
    test "$(stat -c %a "$log")" = 600
'

test_expect_success 'heartbeats at the configured interval say the app-server is up' '
    outbox_wait ".type == \"heartbeat\"" 2 &&
    rec=$(outbox_last ".type == \"heartbeat\"") &&
    test "$(echo "$rec" | jq .turn_active)" = false &&
    test "$(echo "$rec" | jq .queued)" = 0 &&
    test "$(echo "$rec" | jq -r .app_server)" = up
'

test_expect_success 'SIGUSR1 writes a checkpoint and a walltime warning' '
    worker_kill USR1 &&
    outbox_wait ".type == \"walltime_warning\"" &&
    rec=$(outbox_last ".type == \"checkpoint\"") &&
    test "$(echo "$rec" | jq -r .thread_id)" = fake-thread &&
    test "$(echo "$rec" | jq .inbox_cursor.seq)" = 3 &&
    echo "$rec" | jq -e ".rollout_path == \"/nonexistent/rollout.jsonl\""
'

test_expect_success 'malformed inbox records become error records; the worker goes on' '
    echo "this is not a record" >>"$inbox" &&
    inject user "{\"content\":\"no id\"}" &&
    inject user "{\"id\":\"x1\"}" &&
    inject user "{\"id\":\"x2\",\"content\":\"c\",\"mode\":\"sideways\"}" &&
    inject frobnicate "{\"id\":\"x3\"}" &&
    inject approval "{\"id\":\"x4\",\"approval_id\":\"n0-1-1-99\",\"decision\":\"accept\"}" &&
    inject approval "{\"id\":\"x5\",\"approval_id\":\"n0-1-1-99\",\"decision\":\"maybe\"}" &&
    inject interrupt "{\"id\":\"x6\"}" &&
    inject user "{\"id\":\"inj-2\",\"content\":\"still there?\"}" &&
    outbox_wait ".type == \"inject_accepted\" and .injection_id == \"inj-2\"" &&
    test "$(outbox_count ".type == \"error\" and .code == \"bad_inbox_record\"")" = 6 &&
    test "$(outbox_count ".type == \"error\" and .code == \"unknown_approval\"")" = 1 &&
    test "$(outbox_count ".type == \"error\" and .code == \"no_active_turn\"")" = 1 &&
    outbox_has ".type == \"error\" and .code == \"bad_inbox_record\" and (.message | test(\"frobnicate\"))" &&
    outbox_has ".type == \"error\" and .code == \"unknown_approval\" and .inbox_seq == 8"
'

test_expect_success 'a shutdown record stops the worker gracefully' '
    inject shutdown "{\"id\":\"stop-1\"}" &&
    worker_wait_exit 20 &&
    test "$worker_rc" = 0 &&
    rec=$(outbox_last ".type == \"worker_stopped\"") &&
    test "$(echo "$rec" | jq -r .reason)" = shutdown &&
    test "$(echo "$rec" | jq .status)" = 0 &&
    outbox_has ".type == \"app_server_exited\" and .code == 0" &&
    test "$(jq -r .last_injection_id "$state")" = stop-1 &&
    test "$(jq .inbox_cursor.seq "$state")" = 12
'

test_expect_success 'a restarted worker resumes, in a new epoch, and redoes nothing' '
    n_acc=$(outbox_count ".type == \"inject_accepted\"") &&
    n_turns=$(grep -c "\"method\":\"turn/start\"" fake.log) &&
    worker_start &&
    outbox_wait ".type == \"ready\" and .resumed == true" &&
    test "$(outbox_last ".type == \"worker_started\"" | jq .epoch)" = 2 &&
    grep "\"method\":\"thread/resume\"" fake.log | jq -r .params.threadId >tid &&
    test "$(cat tid)" = fake-thread &&
    sleep 0.5 &&
    worker_alive_ &&
    test "$(outbox_count ".type == \"inject_accepted\"")" = "$n_acc" &&
    test "$(grep -c "\"method\":\"turn/start\"" fake.log)" = "$n_turns"
'

test_expect_success 'SIGTERM stops it with status 0' '
    worker_kill TERM &&
    worker_wait_exit 20 &&
    test "$worker_rc" = 0 &&
    test "$(outbox_last ".type == \"worker_stopped\"" | jq -r .reason)" = SIGTERM
'

test_expect_success 'codex from <home>/tools when nothing else names it; --home' '
    other=$(pwd)/other-home &&
    mkdir -p "$other/tools/codex/bin" && chmod 700 "$other" &&
    ln -s "$CODESWARM_CODEX" "$other/tools/codex/bin/codex" &&
    (
        unset CODESWARM_CODEX CODESWARM_CONFIG &&
        codeswarm-worker --home "$other" --swarm h --node 3 \
            </dev/null >other.log 2>&1 3>&- 4>&- 5>&- 6>&- &
        echo $! >other.pid
    ) &&
    other_pid=$(cat other.pid) &&
    out3="$other/swarms/h/outbox/3.jsonl" &&
    wait_for test -s "$out3" &&
    wait_for grep -q "\"type\":\"ready\"" "$out3" &&
    test "$(jq -r "select(.type == \"worker_started\") | .codex_binary" "$out3")" = \
         "$other/tools/codex/bin/codex" &&
    test "$(jq -r "select(.type == \"worker_started\") | .node" "$out3")" = 3 &&
    test -d "$other/swarms/h/work/3" &&
    test "$(stat -c %a "$other/swarms/h/work/3")" = 700 &&
    kill -TERM "$other_pid" &&
    wait_for sh -c "! kill -0 $other_pid 2>/dev/null" &&
    test "$(jq -r "select(.type == \"worker_stopped\") | .status" "$out3")" = 0
'

test_done
