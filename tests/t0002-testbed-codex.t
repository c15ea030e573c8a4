#!/bin/bash
test_description='the real codex app-server runs offline against the mock model'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"

codex_testbed_setup
test_require_component JQ jq --version

# A small JSON-RPC client: codex app-server as a bash coprocess, every
# line it writes appended to the file "transcript".
rpc_start () {
    mkdir -p work &&
    coproc APP { cd work && exec "$CODESWARM_CODEX" app-server \
                     2>../app-server.err 3>&- 4>&- 5>&- 6>&-; }
    app_pid=$APP_PID
}

rpc_send () {
    printf '%s\n' "$1" >&"${APP[1]}"
}

# rpc_until FILTER: read lines until one satisfies the jq FILTER; that line
# is left in $rpc_line
rpc_until () {
    while IFS= read -r -t 30 rpc_line <&"${APP[0]}"; do
        printf '%s\n' "$rpc_line" >> transcript
        if printf '%s\n' "$rpc_line" | jq -e "$1" >/dev/null 2>&1; then
            return 0
        fi
    done
    echo >&2 "no line matching '$1' within 30 s"
    return 1
}

# turn TEXT: run one turn; its lines go to the file "turn"
turn () {
    : > transcript &&
    rpc_send "$(jq -nc --arg t "$thread" --arg x "$1" \
        '{id: 10, method: "turn/start", params: {threadId: $t, input: [{type: "text", text: $x}]}}')" &&
    rpc_until '.method == "turn/completed"' &&
    cp transcript turn
}

deltas () {
    jq -j 'select(.method == "item/agentMessage/delta") | .params.delta' turn
}

test_expect_success CODEX 'the offline config passes codex --strict-config' '
    echo "{\"id\":1,\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"t\",\"version\":\"0\"}}}" > init.json &&
    # stdin stays open until the answer is out (on EOF the server stops)
    { cat init.json; wait_for -t 60 grep -q "^{\"id\":1,\"result\"" strict.out; } |
        timeout 90 "$CODESWARM_CODEX" app-server --strict-config > strict.out 2> strict.err &&
    grep -q "^{\"id\":1,\"result\"" strict.out &&
    mkdir bad-home &&
    cp "$CODEX_HOME/config.toml" bad-home/ &&
    echo "no_such_key = 1" >> bad-home/config.toml &&
    test_must_fail env CODEX_HOME="$(pwd)/bad-home" timeout 60 "$CODESWARM_CODEX" \
        app-server --strict-config < init.json > /dev/null 2> bad.err &&
    grep -q "unknown configuration field" bad.err
'

test_expect_success CODEX,JQ 'initialize handshake' '
    rpc_start &&
    rpc_send "{\"id\":1,\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"codeswarm-test\",\"version\":\"0\"}}}" &&
    rpc_until ".id == 1" &&
    test "$(printf "%s" "$rpc_line" | jq -r .result.codexHome)" = "$CODEX_HOME" &&
    rpc_send "{\"method\":\"initialized\"}"
'

test_expect_success CODEX,JQ 'thread/start' '
    rpc_send "$(jq -nc --arg cwd "$(pwd)/work" "{id: 2, method: \"thread/start\", params: {cwd: \$cwd, approvalPolicy: \"never\"}}")" &&
    rpc_until ".id == 2" &&
    thread=$(printf "%s" "$rpc_line" | jq -r .result.thread.id) &&
    test -n "$thread" && test "$thread" != null
'

test_expect_success CODEX,JQ 'a turn streams the mock reply as deltas' '
    turn "hello testbed" &&
    printf "[turn 1] You said: hello testbed" > expect &&
    deltas > actual &&
    test_cmp expect actual &&
    jq -r "select(.method == \"turn/completed\") | .params.turn.status" turn > status &&
    echo completed > expect &&
    test_cmp expect status
'

test_expect_success CODEX,JQ 'token usage comes from the mock usage numbers' '
    jq -c "select(.method == \"thread/tokenUsage/updated\") | .params.tokenUsage.last | [.outputTokens, (.inputTokens > 100)]" turn > usage &&
    echo "[6,true]" > expect &&
    test_cmp expect usage
'

test_expect_success CODEX,JQ 'the second turn sees the history' '
    turn "TURNS?" &&
    printf "[turn 2] I see 2 user turns" > expect &&
    deltas > actual &&
    test_cmp expect actual
'

test_expect_success CODEX,JQ 'model HTTP 500: the turn fails, the next one works' '
    turn "FAIL: 500" &&
    jq -r "select(.method == \"turn/completed\") | .params.turn.status" turn > status &&
    echo failed > expect &&
    test_cmp expect status &&
    turn "after the failure" &&
    deltas > actual &&
    printf "[turn 4] You said: after the failure" > expect &&
    test_cmp expect actual
'

test_expect_success CODEX,JQ 'RUN: codex runs the command and the mock sees its output' '
    turn "RUN: echo testbed-run-output" &&
    jq -r "select(.method == \"item/completed\" and .params.item.type == \"commandExecution\") | .params.item.aggregatedOutput" turn > out &&
    grep -q "^testbed-run-output$" out &&
    deltas > actual &&
    grep -q "^Tool finished. Output: testbed-run-output" actual
'

test_expect_success CODEX,JQ 'ESCALATE: codex asks for approval (on-request); decline it' '
    rpc_send "$(jq -nc --arg cwd "$(pwd)/work" "{id: 20, method: \"thread/start\", params: {cwd: \$cwd, approvalPolicy: \"on-request\"}}")" &&
    rpc_until ".id == 20" &&
    thread2=$(printf "%s" "$rpc_line" | jq -r .result.thread.id) &&
    : > transcript &&
    rpc_send "$(jq -nc --arg t "$thread2" "{id: 21, method: \"turn/start\", params: {threadId: \$t, input: [{type: \"text\", text: \"ESCALATE: echo escalated\"}]}}")" &&
    rpc_until ".method == \"item/commandExecution/requestApproval\"" &&
    printf "%s" "$rpc_line" | jq -e ".params.command | test(\"echo escalated\")" &&
    rid=$(printf "%s" "$rpc_line" | jq .id) &&
    rpc_send "{\"id\":$rid,\"result\":{\"decision\":\"decline\"}}" &&
    rpc_until ".method == \"turn/completed\"" &&
    cp transcript turn &&
    jq -r "select(.method == \"item/completed\" and .params.item.type == \"commandExecution\") | .params.item.status" turn > status &&
    echo declined > expect &&
    test_cmp expect status
'

test_expect_success CODEX,JQ 'codex reached the mock offline, as configured' '
    jq -r "select(.method == \"POST\") | .path" "$MOCK_MODEL_LOG" | sort -u > paths &&
    echo /v1/responses > expect &&
    test_cmp expect paths &&
    jq -r "select(.method == \"POST\") | .authorization" "$MOCK_MODEL_LOG" | sort -u > auth &&
    echo "Bearer $MOCK_API_KEY" > expect &&
    test_cmp expect auth &&
    # codex sends plain JSON bodies (no Content-Encoding)
    test -z "$(jq -r "select(.headers[\"content-encoding\"]) | .path" "$MOCK_MODEL_LOG")"
'

test_expect_success CODEX 'stdin EOF ends the app-server with status 0' '
    exec {APP[1]}>&- &&
    wait $app_pid
'

test_done
