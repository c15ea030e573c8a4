#!/bin/sh
test_description='the mock model speaks the streaming Responses API'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"

test_require_component CURL curl --version
test_require_component JQ jq --version

# post FILE: POST a JSON body from FILE, the SSE stream (or error) to stdout
post () {
    curl -sS -N --max-time 20 -H 'Content-Type: application/json' \
        --data-binary @"$1" "http://127.0.0.1:$MOCK_MODEL_PORT/v1/responses"
}

# events FILE: the "data:" payloads of an SSE stream, one JSON per line
events () {
    sed -n 's/^data: //p' "$1"
}

test_expect_success 'mock model starts and reports its port' '
    mock_model_start &&
    test -n "$MOCK_MODEL_PORT" &&
    test "$MOCK_MODEL_PORT" -gt 0 &&
    test "$(cat mock-model.port)" = "$MOCK_MODEL_PORT"
'

test_expect_success 'LISTENING line on stdout' '
    codeswarm-mock-model --port-file p2 --watch-pid $$ > out2 3>&- 4>&- 5>&- 6>&- &
    pid2=$! &&
    wait_for_file p2 10 &&
    kill $pid2 &&
    wait $pid2 &&
    echo "LISTENING $(cat p2)" > expect2 &&
    test_cmp expect2 out2
'

# the README's layout: a build in ./build of the source tree, the wrapper
# run by hand (no CODESWARM_BUILD_DIR, nothing of the build on PATH)
test "$CODESWARM_BUILD_DIR" -ef "$CODESWARM_SRC_DIR/build" &&
	test_set_prereq DEFAULT_BUILDDIR
test_expect_success DEFAULT_BUILDDIR 'tests/testbed/mock-model finds the binary of ./build' '
    (unset CODESWARM_BUILD_DIR && PATH=/usr/bin:/bin && export PATH &&
     ! command -v codeswarm-mock-model &&
     "$CODESWARM_SRC_DIR/tests/testbed/mock-model" --port-file p3 \
         --watch-pid $$ >out3 2>err3 3>&- 4>&- 5>&- 6>&- &
     echo $! >pid3) &&
    wait_for_file p3 10 &&
    kill $(cat pid3) &&
    echo "LISTENING $(cat p3)" >expect3 &&
    test_cmp expect3 out3
'

test_expect_success 'unusable options are refused' '
    test_must_fail codeswarm-mock-model --port 70000 &&
    test_must_fail codeswarm-mock-model --delay x &&
    test_must_fail codeswarm-mock-model extra-arg
'

test_expect_success CURL,JQ 'GET /v1/models' '
    curl -sS "http://127.0.0.1:$MOCK_MODEL_PORT/v1/models" > models &&
    jq -e ".data == [] and .models == []" models
'

cat > hello.json <<'EOF'
{"model":"m","stream":true,"input":[
 {"type":"message","role":"developer","content":[{"type":"input_text","text":"be brief"}]},
 {"type":"message","role":"user","content":[{"type":"input_text","text":"<environment_context>x</environment_context>"}]},
 {"type":"message","role":"user","content":[{"type":"input_text","text":"# AGENTS.md instructions"}]},
 {"type":"message","role":"user","content":[{"type":"input_text","text":"first"}]},
 {"type":"message","role":"assistant","content":[{"type":"output_text","text":"[turn 1] You said: first"}]},
 {"type":"message","role":"user","content":[{"type":"input_text","text":"hello mock world"}]}
],"tools":[{"type":"function","name":"exec_command"},{"type":"function","name":"write_stdin"}]}
EOF

test_expect_success CURL,JQ 'a text reply is an SSE stream in the right order' '
    post hello.json > hello.sse &&
    events hello.sse | jq -r .type > types &&
    cat > expect <<-\EOF &&
	response.created
	response.output_item.added
	response.output_text.delta
	response.output_text.delta
	response.output_text.delta
	response.output_text.delta
	response.output_text.delta
	response.output_text.delta
	response.output_text.delta
	response.output_item.done
	response.completed
	EOF
	test_cmp expect types &&
    grep "^event: " hello.sse | sed "s/^event: //" > etypes &&
    test_cmp types etypes
'

test_expect_success CURL,JQ 'the reply counts real user turns (context skipped)' '
    events hello.sse | jq -j "select(.type == \"response.output_text.delta\") | .delta" > text &&
    printf "[turn 2] You said: hello mock world" > expect &&
    test_cmp expect text &&
    events hello.sse | jq -r "select(.type == \"response.output_item.done\") | .item.content[0].text" > done-text &&
    echo "[turn 2] You said: hello mock world" > expect &&
    test_cmp expect done-text
'

test_expect_success CURL,JQ 'usage numbers follow the rule' '
    events hello.sse | jq -c "select(.type == \"response.completed\") | .response.usage | [.input_tokens, .output_tokens, .total_tokens]" > usage &&
    echo "[160,7,167]" > expect &&
    test_cmp expect usage
'

test_expect_success CURL,JQ 'TURNS? reports the turn count' '
    echo "{\"input\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"},{\"role\":\"user\",\"content\":\"TURNS?\"}]}" > turns.json &&
    post turns.json > turns.sse &&
    events turns.sse | jq -r "select(.type == \"response.output_item.done\") | .item.content[0].text" > out &&
    echo "[turn 3] I see 3 user turns" > expect &&
    test_cmp expect out
'

test_expect_success CURL,JQ 'RUN: calls the shell tool codex offered' '
    jq ".input[-1].content[0].text = \"RUN: echo hi\"" hello.json > run.json &&
    post run.json > run.sse &&
    events run.sse | jq -c "select(.type == \"response.output_item.done\") | .item | [.type, .name, (.arguments | fromjson)]" > call &&
    echo "[\"function_call\",\"exec_command\",{\"cmd\":\"echo hi\",\"login\":false,\"yield_time_ms\":10000}]" > expect &&
    test_cmp expect call
'

test_expect_success CURL,JQ 'RUN: with only shell_command, or no shell tool offered' '
    jq ".input[-1].content[0].text = \"RUN: ls\" | .tools = [{\"type\":\"function\",\"name\":\"shell_command\"}]" hello.json > run2.json &&
    post run2.json > run2.sse &&
    events run2.sse | jq -c "select(.type == \"response.output_item.done\") | .item | [.name, (.arguments | fromjson | .command)]" > call2 &&
    echo "[\"shell_command\",\"ls\"]" > expect &&
    test_cmp expect call2 &&
    jq ".input[-1].content[0].text = \"RUN: ls\" | del(.tools)" hello.json > run3.json &&
    post run3.json > run3.sse &&
    events run3.sse | jq -c "select(.type == \"response.output_item.done\") | .item | [.name, (.arguments | fromjson | .command)]" > call3 &&
    echo "[\"shell\",[\"bash\",\"-lc\",\"ls\"]]" > expect &&
    test_cmp expect call3
'

test_expect_success CURL,JQ 'ESCALATE: asks for sandbox escalation' '
    jq ".input[-1].content[0].text = \"ESCALATE: touch /x\"" hello.json > esc.json &&
    post esc.json > esc.sse &&
    events esc.sse | jq -c "select(.type == \"response.output_item.done\") | .item.arguments | fromjson | [.cmd, .sandbox_permissions, (.justification | length > 0)]" > esc &&
    echo "[\"touch /x\",\"require_escalated\",true]" > expect &&
    test_cmp expect esc
'

test_expect_success CURL,JQ 'a tool output gets "Tool finished"' '
    jq ".input += [{\"type\":\"function_call\",\"name\":\"exec_command\",\"call_id\":\"c1\",\"arguments\":\"{}\"},{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"Chunk ID: 1\nWall time: 0 seconds\nProcess exited with code 0\nOutput:\nabc-out\n\"}]" hello.json > tool.json &&
    post tool.json > tool.sse &&
    events tool.sse | jq -r "select(.type == \"response.output_item.done\") | .item.content[0].text" > out &&
    printf "Tool finished. Output: abc-out\n\n" > expect &&
    test_cmp expect out
'

test_expect_success CURL,JQ 'FAIL: answers with that HTTP status and a JSON error' '
    echo "{\"input\":\"FAIL: 503\"}" > fail.json &&
    curl -sS -o fail.out -w "%{http_code}\n" --data-binary @fail.json \
        "http://127.0.0.1:$MOCK_MODEL_PORT/v1/responses" > code &&
    echo 503 > expect &&
    test_cmp expect code &&
    jq -e ".error.message == \"mock failure 503\"" fail.out &&
    echo "{\"input\":\"FAIL: 401\"}" > fail.json &&
    curl -sS -o fail.out -w "%{http_code}\n" --data-binary @fail.json \
        "http://127.0.0.1:$MOCK_MODEL_PORT/v1/responses" > code &&
    echo 401 > expect &&
    test_cmp expect code
'

test_expect_success CURL,JQ 'gzip and deflate bodies are accepted, zstd is refused' '
    echo "{\"input\":\"zipped words\"}" > z.json &&
    gzip -c z.json > z.json.gz &&
    curl -sS -N -H "Content-Encoding: gzip" --data-binary @z.json.gz \
        "http://127.0.0.1:$MOCK_MODEL_PORT/v1/responses" > z.sse &&
    grep -q "You said: zipped words" z.sse &&
    if perl -MCompress::Zlib -e 1 2>/dev/null; then
        perl -MCompress::Zlib -e "local \$/; print compress(<STDIN>)" < z.json > z.json.zz &&
        curl -sS -N -H "Content-Encoding: deflate" --data-binary @z.json.zz \
            "http://127.0.0.1:$MOCK_MODEL_PORT/v1/responses" > zz.sse &&
        grep -q "You said: zipped words" zz.sse
    fi &&
    curl -sS -o zstd.out -w "%{http_code}\n" -H "Content-Encoding: zstd" \
        --data-binary @z.json "http://127.0.0.1:$MOCK_MODEL_PORT/v1/responses" > code &&
    echo 415 > expect &&
    test_cmp expect code
'

test_expect_success CURL,JQ 'chunked request bodies and bad JSON' '
    curl -sS -N -H "Transfer-Encoding: chunked" --data-binary @hello.json \
        "http://127.0.0.1:$MOCK_MODEL_PORT/v1/responses" > chunked.sse &&
    grep -q "You said: hello mock world" chunked.sse &&
    echo "not json" > bad.json &&
    curl -sS -o bad.out -w "%{http_code}\n" --data-binary @bad.json \
        "http://127.0.0.1:$MOCK_MODEL_PORT/v1/responses" > code &&
    echo 400 > expect &&
    test_cmp expect code &&
    curl -sS -o nf.out -w "%{http_code}\n" \
        "http://127.0.0.1:$MOCK_MODEL_PORT/v1/nothing" > code &&
    echo 404 > expect &&
    test_cmp expect code
'

test_expect_success CURL,JQ 'keep-alive: two requests on one connection' '
    curl -sS -v -N --data-binary @hello.json \
        "http://127.0.0.1:$MOCK_MODEL_PORT/v1/responses" \
        --next --data-binary @turns.json \
        "http://127.0.0.1:$MOCK_MODEL_PORT/v1/responses" > ka.sse 2> ka.err &&
    grep -q "Re-using existing connection" ka.err &&
    test $(grep -c "^event: response.completed" ka.sse) = 2
'

test_expect_success CURL,JQ 'SLOW: streams the words one by one, then completes' '
    echo "{\"input\":\"SLOW: 4\"}" > slow4.json &&
    post slow4.json > slow4.sse &&
    grep -q "response.completed" slow4.sse &&
    events slow4.sse | jq -j "select(.type == \"response.output_text.delta\") | .delta" > slowtext &&
    printf "w0 w1 w2 w3" > expect &&
    test_cmp expect slowtext
'

# a reply that would stream for minutes: another client is answered in full
# while it is still streaming (no clock in the test: the order of events)
test_expect_success CURL,JQ 'SLOW: a slow stream does not block other clients' '
    echo "{\"input\":\"SLOW: 1000\"}" > slow.json &&
    { (exec curl -sS -N --max-time 120 -H "Content-Type: application/json" \
        --data-binary @slow.json "http://127.0.0.1:$MOCK_MODEL_PORT/v1/responses" \
        > slow.sse 2> slow.err) & } &&
    slowpid=$! &&
    wait_for grep -q "output_text.delta" slow.sse &&
    post hello.json > fast.sse &&
    grep -q "response.completed" fast.sse &&
    ! grep -q "response.completed" slow.sse &&
    kill $slowpid &&
    { wait $slowpid; true; }
'

test_expect_success CURL,JQ 'every request is logged as one JSON line' '
    jq -e -s "length >= 10 and all(.[]; has(\"method\") and has(\"path\") and has(\"status\"))" "$MOCK_MODEL_LOG" &&
    jq -r "select(.status == 503) | .body.input" "$MOCK_MODEL_LOG" > failed &&
    echo "FAIL: 503" > expect &&
    test_cmp expect failed &&
    jq -r "select(.reply.kind == \"call\") | .reply.tool" "$MOCK_MODEL_LOG" | sort -u > tools &&
    printf "exec_command\nshell\nshell_command\n" > expect &&
    test_cmp expect tools
'

test_expect_success CURL 'the mock listens on 127.0.0.1 only' '
    addr=$(hostname -I 2>/dev/null | cut -d" " -f1) &&
    if test -n "$addr" && test "$addr" != 127.0.0.1; then
        test_must_fail curl -sS --max-time 3 "http://$addr:$MOCK_MODEL_PORT/health"
    fi &&
    curl -sS "http://127.0.0.1:$MOCK_MODEL_PORT/health"
'

test_expect_success 'SIGTERM stops it (exit 0), and the connections it serves' '
    echo "{\"input\":\"SLOW: 100\"}" > long.json &&
    { post long.json > long.sse 2>&1 & } &&
    longpid=$! &&
    wait_for grep -q output_text.delta long.sse &&
    pid=$mock_model_pid &&
    mock_model_stop &&
    test_must_fail mock_model_alive_ $pid &&
    wait $longpid;
    test $(grep -c output_text.delta long.sse) -lt 10
'

test_expect_success CURL 'mock_model_start again comes back on the same port' '
    old_port=$MOCK_MODEL_PORT &&
    test_must_fail curl -sS "http://127.0.0.1:$old_port/health" &&
    mock_model_start &&
    test "$MOCK_MODEL_PORT" = "$old_port" &&
    curl -sS "http://127.0.0.1:$MOCK_MODEL_PORT/health" &&
    mock_model_stop &&
    test -z "$mock_model_pid"
'

test_expect_success 'the mock model wrote no error (sanitizers, valgrind)' '
    test_must_be_empty_ () { test ! -s "$1" || { cat >&2 "$1"; false; }; } &&
    test_must_be_empty_ mock-model.err
'

test_done
