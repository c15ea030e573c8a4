#!/bin/sh
test_description='codeswarm-mailbox: one follower on 1000 streams'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"

mb=codeswarm-mailbox
N=1000

streams () {
    k=0
    while test $k -lt $N; do
        echo many/outbox/$k
        k=$((k + 1))
    done
}

# per stream k, the "n" values delivered, in order: "k: 1 2 3"
per_stream () {
    sed -n "s/.*\"k\":\([0-9]*\),\"n\":\([0-9]*\)}$/\1 \2/p" "$1" |
        awk "{ s[\$1] = s[\$1] \" \" \$2 } END { for (k in s) print k \":\" s[k] }" |
        sort -n
}

test_expect_success "create $N streams with one record each" '
    for s in $(streams); do
        $mb append $s "{\"k\":${s##*/},\"n\":1}" || exit 1
    done &&
    test $(ls $CODESWARM_HOME/swarms/many/outbox/*.jsonl | wc -l) = $N
'
test_expect_success 'start a follower in auto mode and one in poll mode' '
    { $mb -v follow --from-start --count $((3 * N)) --timeout 60 $(streams) >auto.out 2>auto.err & } &&
    apid=$! &&
    { $mb follow --mode poll --from-start --count $((3 * N)) --timeout 60 $(streams) >poll.out 2>poll.err & } &&
    ppid=$! &&
    wait_for -t 30 sh -c "test \$(wc -l <auto.out) -ge $N && test \$(wc -l <poll.out) -ge $N"
'
test_expect_success 'append two more records to every stream while they follow' '
    for s in $(streams); do
        $mb append $s "{\"k\":${s##*/},\"n\":2}" "{\"k\":${s##*/},\"n\":3}" || exit 1
    done
'
test_expect_success 'both followers deliver every record once, in order per stream' '
    wait $apid &&
    wait $ppid &&
    for k in $(seq 0 $((N - 1))); do echo "$k: 1 2 3"; done >expect &&
    per_stream auto.out >auto.per &&
    test_cmp expect auto.per &&
    per_stream poll.out >poll.per &&
    test_cmp expect poll.per &&
    test_line_count = $((3 * N)) auto.out &&
    test_line_count = $((3 * N)) poll.out
'
test_expect_success 'the auto follower said which mode it chose' '
    grep "following $N stream(s) in \(inotify\|poll\) mode" auto.err
'
test_expect_success 'check on many streams at once' '
    $mb check --quiet $(streams) &&
    $mb check $(streams) >out &&
    test $(grep -c "3 records (seq 1\.\.3), 1 segment, 2 epochs, 0 problems" out) = $N
'
test_done
