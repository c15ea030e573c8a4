#!/bin/sh
test_description='codeswarm-mailbox: a writer killed with SIGKILL over and over while one follower reads

Every record that made it into the stream is delivered exactly once and in
order, seq continues across restarts with a new epoch for each writer, and
check passes on the result; the second half rotates segments while being
killed.'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"

mb=codeswarm-mailbox
kills=${CRASH_KILLS:-120}       # per phase; two phases
S=crash/outbox/0

# numbered payloads, paced (about 6000 a second) so the stream stays small
gen () {
    awk 'BEGIN { for (i = 1; ; i++) {
        printf "{\"i\":%d}\n", i
        if (i % 50 == 0) { fflush (); system ("sleep 0.008") }
    } }'
}

# random delays in seconds, one a line: a few immediate kills (during the
# writer's startup and recovery), the rest up to 60 ms
delays () {
    awk -v n="$1" -v seed="$2" 'BEGIN { srand (seed); for (i = 0; i < n; i++) {
        r = rand (); printf "%.3f\n", (r < 0.15 ? 0 : r * 0.06) } }'
}

# run_phase NAME N [append options]: start, kill -9, restart, N times
run_phase () {
    phase=$1 n=$2
    shift 2
    i=0
    for d in $(delays $n $(date +%s)); do
        i=$((i + 1))
        out=printed.$phase.$(printf %04d $i)
        gen | $mb append --print-seq "$@" $S >$out 2>>writer.err &
        wpid=$!
        # one writer in three is killed only after it has appended, so
        # that a loaded machine still kills many writers mid-stream
        if test $((i % 3)) = 0; then
            wait_for -t 60 test -s $out || return 1
        fi
        test "$d" = 0.000 || sleep $d
        kill -9 $wpid 2>/dev/null && echo "$i $d" >>kills.$phase
        wait $wpid 2>/dev/null
    done
    return 0
}

test_expect_success 'start one follower' '
    $mb append $S "{\"start\":true}" &&
    { $mb follow --from-start --cursor-file cursor.json $S >follow.out 2>follow.err & } &&
    fpid=$! &&
    echo $fpid >follow.pid
'
test_expect_success "kill the writer $kills times" '
    run_phase a $kills &&
    test_line_count = $kills kills.a
'
test_expect_success "kill the writer $kills more times while it rotates segments" '
    run_phase b $kills --rotate-records 400 &&
    test_line_count = $kills kills.b
'
test_expect_success 'a last writer finishes cleanly' '
    awk "BEGIN { for (i = 1; i <= 500; i++) printf \"{\\\"last\\\":%d}\\n\", i }" |
        $mb append --print-seq --rotate-records 400 $S >printed.c.0001 &&
    test_line_count = 500 printed.c.0001
'
test_expect_success 'check passes on the result' '
    $mb check $S >check.out &&
    cat check.out &&
    grep " 0 problems" check.out &&
    total=$(sed -n "s/.*: \([0-9]*\) records (seq 1\.\.\([0-9]*\)).*/\2/p" check.out) &&
    test -n "$total" && test "$total" -gt 1000
'
test_expect_success 'the follower delivers everything' '
    wait_for -t 60 sh -c "test \$(wc -l <follow.out) -ge $total" &&
    kill -TERM $(cat follow.pid) &&
    wait $(cat follow.pid)
'
test_expect_success 'delivered exactly once, in order: the stream itself' '
    sw=$CODESWARM_HOME/swarms/crash &&
    ls $sw/archive/outbox-0.*.jsonl.gz >segments &&
    test $(wc -l <segments) -gt 2 &&
    { for seg in $(cat segments); do zcat $seg || exit 1; done; cat $sw/outbox/0.jsonl; } >all &&
    grep -E "^\{\"v\":1,\"seq\":[0-9]+,\"epoch\":[0-9]+,\"ts\":[0-9.e+-]+,\"type\":\"data\",(\"i\"|\"last\"|\"start\"):[0-9a-z]+\}$" all >ref &&
    test $(wc -l <ref) = $total &&
    test_cmp ref follow.out
'
test_expect_success 'seq is 1..N without holes; epochs never go down' '
    awk -F"[:,]" "{ if (\$4 != NR) { print \"bad seq at line \" NR; exit 1 }
                    if (\$6 < e) { print \"epoch down at line \" NR; exit 1 }
                    e = \$6 }" follow.out
'
test_expect_success 'every printed seq was delivered; each writer has its own, newer epoch' '
    sed -n "s/^{\"v\":1,\"seq\":\([0-9]*\),\"epoch\":\([0-9]*\),.*/\1 \2/p" follow.out >seq-epoch &&
    for f in printed.*; do
        test -s $f || continue
        echo "$f $(awk "NR == FNR { e[\$1] = \$2; next }
                        !(\$1 in e) { print \"undelivered\"; exit }
                        { if (ep == \"\") ep = e[\$1]; else if (e[\$1] != ep) { print \"mixed\"; exit } }
                        END { print ep }" seq-epoch $f)"
    done >writers &&
    ! grep -E "undelivered|mixed" writers &&
    test $(wc -l <writers) -gt 50 &&
    awk "{ if (\$2 <= last) { print \"epoch not newer: \" \$0; exit 1 } last = \$2 }" writers &&
    cat printed.* | sort -n | uniq -d >dups &&
    test_line_count = 0 dups
'
test_expect_success 'the follower saw no gap and no duplicate' '
    ! grep -E "gap|duplicate" follow.err
'
test_expect_success 'the saved cursor is at the end' '
    $mb follow --timeout 0.3 --cursor-file cursor.json $S >rest &&
    test_line_count = 0 rest
'
test_done
