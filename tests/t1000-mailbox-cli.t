#!/bin/sh
test_description='codeswarm-mailbox: append, follow, check, stat basics'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"

mb=codeswarm-mailbox

# seqs of the records in a follow output
seqs () {
    sed -n 's/.*"seq":\([0-9]*\).*/\1/p' "$1" | tr '\n' ' ' | sed 's/ $//'
}

test_expect_success 'the program is built' '
    command -v $mb
'
test_expect_success '--help and --version' '
    $mb --help >out &&
    grep "^Usage: codeswarm-mailbox" out &&
    grep "follow" out &&
    $mb --version >out &&
    grep "^codeswarm-mailbox (codeswarm) [0-9]" out
'
test_expect_success 'no verb or an unknown verb: exit 2' '
    test_expect_code 2 $mb 2>err &&
    grep Usage err &&
    test_expect_code 2 $mb frobnicate 2>err &&
    grep "unknown verb .frobnicate." err
'
test_expect_success 'append with payload arguments creates the swarm layout' '
    $mb append --type note s1/outbox/0 "{\"text\":\"hello\"}" "{\"n\":2}" &&
    sw=$CODESWARM_HOME/swarms/s1 &&
    test -f $sw/outbox/0.jsonl &&
    test "$(stat -c %a $CODESWARM_HOME/swarms)" = 700 &&
    test "$(stat -c %a $sw)" = 700 &&
    test "$(stat -c %a $sw/outbox)" = 700 &&
    test "$(stat -c %a $sw/outbox/0.jsonl)" = 600 &&
    test_line_count = 2 $sw/outbox/0.jsonl &&
    head -n1 $sw/outbox/0.jsonl >first &&
    grep "^{\"v\":1,\"seq\":1,\"epoch\":1,\"ts\":[0-9.e+]*,\"type\":\"note\",\"text\":\"hello\"}$" first &&
    grep "\"seq\":2,\"epoch\":1,.*\"type\":\"note\",\"n\":2}$" $sw/outbox/0.jsonl
'
test_expect_success 'append from stdin, one object a line; type from the object' '
    printf "%s\n" "{\"a\":1}" "" "{\"type\":\"rpc\",\"msg\":{\"id\":1}}" |
        $mb append --print-seq s1/outbox/0 >seqs &&
    printf "3\n4\n" >expect &&
    test_cmp expect seqs &&
    tail -n1 $CODESWARM_HOME/swarms/s1/outbox/0.jsonl >last &&
    grep "\"seq\":4,\"epoch\":2,.*\"type\":\"rpc\",\"msg\":{\"id\":1}}$" last
'
test_expect_success 'bad stdin lines are named by line number; the rest goes in' '
    printf "%s\n" "{\"ok\":1}" "not json" "[1]" "{\"seq\":9}" "{\"ok\":2}" |
        test_expect_code 1 $mb append --print-seq s1/outbox/0 >seqs 2>err &&
    printf "5\n6\n" >expect &&
    test_cmp expect seqs &&
    grep "stdin:2: not valid JSON" err &&
    grep "stdin:3: not a JSON object" err &&
    grep "stdin:4: \"seq\" is set by the writer" err &&
    test_line_count = 3 err
'
test_expect_success 'a final line without newline is appended' '
    printf "{\"last\":true}" | $mb append --print-seq s1/outbox/0 >seqs &&
    echo 7 >expect &&
    test_cmp expect seqs
'
test_expect_success 'a path names a stream as well' '
    $mb append $CODESWARM_HOME/swarms/s1/outbox/0.jsonl "{\"via\":\"path\"}" &&
    (cd $CODESWARM_HOME/swarms/s1/outbox && $mb append 0.jsonl "{\"via\":\"relative\"}") &&
    test_line_count = 9 $CODESWARM_HOME/swarms/s1/outbox/0.jsonl
'
test_expect_success '--home overrides CODESWARM_HOME' '
    mkdir -m 700 other &&
    $mb --home "$(pwd)/other" append s2/inbox/1 "{}" &&
    test -f other/swarms/s2/inbox/1.jsonl &&
    ! test -e $CODESWARM_HOME/swarms/s2
'
test_expect_success 'follow --from-start --count prints records unchanged' '
    $mb follow --from-start --count 9 --timeout 10 s1/outbox/0 >out &&
    test_cmp $CODESWARM_HOME/swarms/s1/outbox/0.jsonl out
'
test_expect_success 'follow --timeout exits 0 when idle' '
    $mb follow --from-start --timeout 0.3 s1/outbox/0 >out &&
    test_line_count = 9 out
'
test_expect_success 'follow without --from-start starts at the end' '
    $mb follow --timeout 0.3 s1/outbox/0 >out &&
    test_line_count = 0 out
'
test_expect_success 'follow --since SEQ' '
    $mb follow --since 6 --timeout 0.3 s1/outbox/0 >out &&
    test "$(seqs out)" = "7 8 9"
'
test_expect_success 'follow sees records appended while it runs' '
    { $mb follow --since 9 --count 3 --timeout 20 s1/outbox/0 >live & } &&
    pid=$! &&
    sleep 0.3 &&
    $mb append s1/outbox/0 "{\"live\":1}" &&
    $mb append s1/outbox/0 "{\"live\":2}" "{\"live\":3}" &&
    wait $pid &&
    test "$(seqs live)" = "10 11 12"
'
test_expect_success 'follow --cursor-file resumes where it stopped' '
    $mb follow --from-start --count 4 --timeout 10 --cursor-file cur.json s1/outbox/0 >a &&
    test -f cur.json &&
    $mb follow --from-start --count 4 --timeout 10 --cursor-file cur.json s1/outbox/0 >b &&
    $mb follow --from-start --timeout 0.3 --cursor-file cur.json s1/outbox/0 >c &&
    test "$(seqs a)" = "1 2 3 4" &&
    test "$(seqs b)" = "5 6 7 8" &&
    test "$(seqs c)" = "9 10 11 12" &&
    cat a b c >abc &&
    test_cmp $CODESWARM_HOME/swarms/s1/outbox/0.jsonl abc
'
test_expect_success 'follow --reader keeps cursors in the swarm cursors/ directory' '
    $mb follow --from-start --count 2 --timeout 10 --reader me s1/outbox/0 >a &&
    ls $CODESWARM_HOME/swarms/s1/cursors/ >list &&
    grep "^me\." list &&
    $mb follow --count 1 --timeout 10 --reader me s1/outbox/0 >b &&
    test "$(seqs b)" = 3
'
test_expect_success 'SIGTERM stops follow with status 0 after saving the cursor' '
    rm -f term.json &&
    { $mb follow --from-start --timeout 60 --cursor-file term.json s1/outbox/0 >term.out & } &&
    pid=$! &&
    wait_for_file term.json 10 &&
    wait_for -t 10 sh -c "test \$(wc -l <term.out) = 12" &&
    kill -TERM $pid &&
    wait $pid &&
    $mb follow --timeout 0.3 --cursor-file term.json s1/outbox/0 >rest &&
    test_line_count = 0 rest &&
    $mb append s1/outbox/0 "{\"after\":1}" &&
    $mb follow --count 1 --timeout 5 --cursor-file term.json s1/outbox/0 >rest &&
    test "$(seqs rest)" = 13
'
test_expect_success 'follow exits when the reader of its output goes away' '
    ($mb follow --from-start s1/outbox/0; echo $? >follow.rc) | head -n 1 >one &&
    wait_for_file follow.rc 10 &&
    test "$(cat follow.rc)" = 0 &&
    test_line_count = 1 one
'
test_expect_success 'follow --events reports epochs as JSON lines on stdout' '
    $mb follow --from-start --events --timeout 0.3 s1/outbox/0 >ev &&
    grep "^{\"event\":\"epoch\",\"stream\":\"[^\"]*/s1/outbox/0.jsonl\",\"file\":\"[^\"]*\",\"offset\":[0-9]*,\"seq\":3,\"epoch\":2,\"prev_epoch\":1}$" ev &&
    test "$(grep -c "^{\"v\":1," ev)" = 13
'
test_expect_success 'follow: an unknown swarm is an error, a missing stream is awaited' '
    test_expect_code 2 $mb follow --timeout 0.3 nosuch/outbox/0 2>err &&
    grep "swarm .nosuch. not found" err &&
    ! test -e $CODESWARM_HOME/swarms/nosuch &&
    { $mb follow --from-start --count 1 --timeout 20 s1/outbox/5 >later & } &&
    pid=$! &&
    sleep 0.3 &&
    $mb append s1/outbox/5 "{\"late\":1}" &&
    wait $pid &&
    grep "\"late\":1" later
'
test_expect_success 'follow several streams at once' '
    $mb append s1/outbox/1 "{\"one\":1}" &&
    $mb follow --from-start --timeout 0.3 s1/outbox/0 s1/outbox/1 >both &&
    test_line_count = 14 both &&
    grep "\"one\":1" both
'
test_expect_success 'check: a clean stream exits 0 with a summary' '
    $mb check s1/outbox/0 >out &&
    grep "s1/outbox/0.jsonl: 13 records (seq 1..13), 1 segment, [0-9]* epochs, 0 problems" out &&
    $mb check --quiet s1/outbox/0 >out &&
    test_line_count = 0 out
'
test_expect_success 'check: problems exit 1, an unreadable stream exits 2' '
    cp $CODESWARM_HOME/swarms/s1/outbox/0.jsonl $CODESWARM_HOME/swarms/s1/outbox/7.jsonl &&
    echo "garbage" >>$CODESWARM_HOME/swarms/s1/outbox/7.jsonl &&
    test_expect_code 1 $mb check s1/outbox/7 >out &&
    grep "7.jsonl:[0-9]*: corrupt record: not valid JSON" out &&
    test_expect_code 2 $mb check s1/outbox/99 2>err &&
    grep "99.jsonl" err &&
    test_expect_code 2 $mb check nosuchswarm/outbox/0 2>err &&
    grep "nosuchswarm" err
'
test_expect_success 'stat describes a stream' '
    $mb stat s1/outbox/0 >out &&
    grep "^path: *.*/s1/outbox/0.jsonl$" out &&
    grep "^filesystem: .* (follow mode \(inotify\|poll\))$" out &&
    grep "^records: *13 " out &&
    grep "^writer: *none$" out &&
    grep "^last record: 20[0-9-]*T" out &&
    $mb stat --json s1/outbox/0 >js &&
    grep "\"records\":13," js &&
    grep "\"writer_pid\":null" js &&
    grep "\"size\":$(stat -c %s $CODESWARM_HOME/swarms/s1/outbox/0.jsonl)," js
'
test_expect_success 'one writer per stream; stat shows the holder' '
    mkfifo hold &&
    { ($mb append s1/outbox/0 <hold; echo done >hold.done) & } &&
    exec 7>hold &&
    wait_for -t 10 sh -c "$mb stat --json s1/outbox/0 | grep -q \"writer_pid.:[0-9]\"" &&
    test_expect_code 2 $mb append s1/outbox/0 "{}" 2>err &&
    grep "already has a writer" err &&
    echo "{\"held\":1}" >&7 &&
    exec 7>&- &&
    wait_for_file hold.done 10 &&
    $mb stat --json s1/outbox/0 >js &&
    grep "\"writer_pid\":null" js &&
    tail -n 1 $CODESWARM_HOME/swarms/s1/outbox/0.jsonl | grep "\"held\":1"
'
test_expect_success 'bad options exit 2' '
    test_expect_code 2 $mb follow --mode bogus s1/outbox/0 2>err &&
    grep "mode" err &&
    test_expect_code 2 $mb append --fsync sometimes s1/outbox/0 2>err &&
    test_expect_code 2 $mb follow 2>err &&
    test_expect_code 2 $mb follow --cursor-file x s1/outbox/0 s1/outbox/1 2>err &&
    grep "one STREAM" err
'
test_expect_success 'fsync policies and rotation options are accepted' '
    $mb append --fsync always s3/outbox/0 "{\"a\":1}" &&
    $mb append --fsync interval --fsync-interval 0.01 s3/outbox/0 "{\"a\":2}" &&
    $mb append --fsync never s3/outbox/0 "{\"a\":3}" &&
    $mb check s3/outbox/0
'
test_expect_success 'the serve verb is dispatched to the mailbox server' '
    $mb serve --help >out 2>err </dev/null;
    ! grep "unknown verb" err
'
test_done
