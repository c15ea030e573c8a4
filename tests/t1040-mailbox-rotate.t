#!/bin/sh
test_description='codeswarm-mailbox: rotation under a live follower, gzip archive, cursors into sealed segments'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"

mb=codeswarm-mailbox
S=rot/outbox/0

# NUMBER FROM: payload lines {"n":FROM}..{"n":FROM+NUMBER-1}
payloads () {
    awk -v n=$1 -v f=$2 "BEGIN { for (i = f; i < f + n; i++) printf \"{\\\"n\\\":%d}\\n\", i }"
}
seqs () {
    sed -n 's/^{"v":1,"seq":\([0-9]*\),.*/\1/p' "$1" | tr '\n' ' ' | sed 's/ $//'
}
# the whole stream as stored: sealed segments (zcat), then the active one
stored () {
    for seg in $CODESWARM_HOME/swarms/rot/archive/outbox-0.*.jsonl.gz; do
        zcat "$seg" || return 1
    done
    cat $CODESWARM_HOME/swarms/rot/outbox/0.jsonl
}

test_expect_success 'a live follower, a writer rotating every 100 records' '
    $mb append $S "{\"n\":0}" &&
    { $mb follow --from-start --count 1051 --timeout 30 --cursor-file live.cur $S >live.out 2>live.err & } &&
    fpid=$! &&
    payloads 1050 1 | $mb append --rotate-records 100 $S &&
    wait $fpid &&
    test_line_count = 1051 live.out
'
test_expect_success 'sealed segments are gzip files named by their seqs' '
    ls $CODESWARM_HOME/swarms/rot/archive/ >names &&
    test_line_count = 10 names &&
    head -n 1 names >first &&
    echo outbox-0.00000000000000000001-00000000000000000100.jsonl.gz >expect &&
    test_cmp expect first &&
    tail -n 1 names | grep "^outbox-0\.00000000000000000901-00000000000000001000\.jsonl\.gz$" &&
    for f in $(cat names); do
        gzip -t $CODESWARM_HOME/swarms/rot/archive/$f || exit 1
        test "$(stat -c %a $CODESWARM_HOME/swarms/rot/archive/$f)" = 600 || exit 1
    done &&
    zcat $CODESWARM_HOME/swarms/rot/archive/$(sed -n 2p names) >seg2 &&
    test_line_count = 100 seg2 &&
    test "$(seqs seg2 | cut -d" " -f1)" = 101
'
test_expect_success 'the live follower got every record exactly once, in order' '
    stored >all &&
    test_line_count = 1051 all &&
    test_cmp all live.out &&
    ! grep -E "gap|duplicate|corrupt" live.err
'
test_expect_success 'check and stat see the archive' '
    $mb check $S >out &&
    grep "1051 records (seq 1\.\.1051), 11 segments, 2 epochs, 0 problems" out &&
    $mb stat --json $S >js &&
    grep "\"archive_segments\":10," js &&
    grep "\"records\":1051," js
'
test_expect_success 'follow --from-start replays the archive transparently' '
    $mb follow --from-start --timeout 0.5 $S >replay &&
    test_cmp all replay
'
test_expect_success 'a cursor in the middle of a sealed segment resumes there' '
    $mb follow --from-start --count 150 --timeout 10 --cursor-file mid.cur $S >a &&
    test "$(seqs a | tr " " "\n" | tail -n 1)" = 150 &&
    $mb follow --count 10 --timeout 10 --cursor-file mid.cur $S >b &&
    test "$(seqs b)" = "151 152 153 154 155 156 157 158 159 160" &&
    $mb follow --timeout 0.5 --cursor-file mid.cur $S >c &&
    cat a b c >abc &&
    test_cmp all abc
'
test_expect_success 'a cursor taken in the active segment survives its sealing' '
    $mb follow --from-start --timeout 0.5 --cursor-file act.cur $S >/dev/null &&
    payloads 60 2000 | $mb append --rotate-records 100 $S &&
    ls $CODESWARM_HOME/swarms/rot/archive/ >names &&
    test_line_count = 11 names &&
    tail -n 1 names | grep "01001-0*1100\.jsonl\.gz$" &&
    $mb follow --timeout 0.5 --cursor-file act.cur $S >rest &&
    test "$(seqs rest)" = "$(seq 1052 1111 | tr "\n" " " | sed "s/ $//")"
'
test_expect_success 'follow --since a seq inside the archive' '
    $mb follow --since 250 --count 3 --timeout 10 $S >out &&
    test "$(seqs out)" = "251 252 253" &&
    $mb follow --since 1099 --count 3 --timeout 10 $S >out &&
    test "$(seqs out)" = "1100 1101 1102"
'
test_expect_success 'rotation by size' '
    payloads 300 1 | $mb append --rotate-bytes 4096 size/outbox/0 &&
    test $(ls $CODESWARM_HOME/swarms/size/archive/ | wc -l) -ge 4 &&
    for f in $CODESWARM_HOME/swarms/size/archive/*; do
        test $(zcat $f | wc -c) -le 4200 || exit 1
    done &&
    $mb check size/outbox/0 >out &&
    grep "300 records (seq 1\.\.300)" out
'
test_done
