#!/bin/sh
test_description='the mock model is clean under valgrind'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
test_skip_all_if_sanitized "$CODESWARM_BUILD_DIR/tools/codeswarm-mock-model"

test_require_component VALGRIND valgrind --version
test_require_component CURL curl --version

url () {
    echo "http://127.0.0.1:$(cat port)$1"
}

test_expect_success VALGRIND,CURL 'start the mock model under valgrind' '
    valgrind --quiet --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect --log-file=vg.%p \
        "$CODESWARM_BUILD_DIR/tools/codeswarm-mock-model" \
        --port-file port --log requests.log --watch-pid $$ \
        > /dev/null 2> mock.err 3>&- 4>&- 5>&- 6>&- &
    vg_pid=$! &&
    wait_for_file port 60
'

test_expect_success VALGRIND,CURL 'requests of every kind' '
    echo "{\"input\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"name\":\"exec_command\"}]}" > a.json &&
    curl -sS -N --data-binary @a.json "$(url /v1/responses)" | grep -q "You said: hi" &&
    echo "{\"input\":\"RUN: ls\",\"tools\":[{\"name\":\"exec_command\"}]}" > run.json &&
    curl -sS -N --data-binary @run.json "$(url /v1/responses)" | grep -q function_call &&
    echo "{\"input\":[{\"role\":\"user\",\"content\":\"x\"},{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":\"Output:\\nok\"}]}" > tool.json &&
    curl -sS -N --data-binary @tool.json "$(url /v1/responses)" | grep -q "Tool finished" &&
    gzip -c a.json > a.json.gz &&
    curl -sS -N -H "Content-Encoding: gzip" --data-binary @a.json.gz "$(url /v1/responses)" | grep -q "You said: hi" &&
    curl -sS -N -H "Transfer-Encoding: chunked" --data-binary @a.json "$(url /v1/responses)" | grep -q "You said: hi" &&
    echo "{\"input\":\"FAIL: 429\"}" > f.json &&
    test "$(curl -sS -o /dev/null -w "%{http_code}" --data-binary @f.json "$(url /v1/responses)")" = 429 &&
    echo "garbage" > g.json &&
    test "$(curl -sS -o /dev/null -w "%{http_code}" --data-binary @g.json "$(url /v1/responses)")" = 400 &&
    test "$(curl -sS -o /dev/null -w "%{http_code}" -H "Content-Encoding: zstd" --data-binary @a.json "$(url /v1/responses)")" = 415 &&
    curl -sS "$(url /v1/models)" | grep -q models &&
    test "$(curl -sS -o /dev/null -w "%{http_code}" "$(url /nothing)")" = 404 &&
    echo "{\"input\":\"SLOW: 2\"}" > s.json &&
    curl -sS -N --data-binary @s.json "$(url /v1/responses)" | grep -q "w1"
'

test_expect_success VALGRIND,CURL 'a client that goes away mid-stream' '
    echo "{\"input\":\"SLOW: 50\"}" > long.json &&
    test_expect_code 28 curl -sS -N --max-time 2 --data-binary @long.json "$(url /v1/responses)" > /dev/null &&
    sleep 1
'

test_expect_success VALGRIND,CURL 'SIGTERM: exit 0 and no valgrind error in any process' '
    kill $vg_pid &&
    wait $vg_pid &&
    for f in vg.*; do
        if test -s "$f"; then cat "$f" >&2; false; fi
    done &&
    test ! -s mock.err
'

test_done
