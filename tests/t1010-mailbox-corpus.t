#!/bin/sh
test_description='codeswarm-mailbox: bad input is reported with file and offset, and the stream goes on'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"

mb=codeswarm-mailbox
corpus=$TEST_SRC_DIR/corpus/mailbox

# a private copy of a corpus file as a stream: c/box/NAME.jsonl
stream () {
    mkdir -p -m 700 c c/box &&
    cp "$corpus/$1.jsonl" "c/box/$1.jsonl" &&
    chmod 600 "c/box/$1.jsonl"
}

# the "n" payload members of the records in a follow output
ns () {
    sed -n 's/.*"n":\([0-9]*\)}$/\1/p' "$1" | tr '\n' ' ' | sed 's/ $//'
}

# test_bad_line NAME OFFSET REASON-REGEX: follow delivers all four good
# records and reports the bad line; check exits 1 naming it
test_bad_line () {
    test_expect_success "$1: follow reports file:offset and goes on" "
        stream $1 &&
        $mb follow --from-start --timeout 0.5 c/box/$1.jsonl >out 2>err &&
        test \"\$(ns out)\" = '1 2 3 4' &&
        grep 'c/box/$1.jsonl:$2: corrupt record: $3' err
    "
    test_expect_success "$1: check exits 1 and names file:offset" "
        test_expect_code 1 $mb check c/box/$1.jsonl >out &&
        grep 'c/box/$1.jsonl:$2: corrupt record: $3' out &&
        grep '4 records (seq 1\.\.4).* 1 problem' out
    "
}

test_bad_line truncated-line 138 'torn record: not valid JSON near byte [0-9]*'
test_bad_line invalid-utf8 138 'invalid UTF-8 at byte 65'
test_bad_line nul-byte 138 'NUL byte at byte 53'
test_bad_line not-object 138 'not a JSON object'
test_bad_line not-json 138 'not valid JSON near byte [0-9]*'
test_bad_line missing-seq 138 'missing \"seq\"'
test_bad_line non-integer-seq 138 '\"seq\" is not a non-negative integer'
test_bad_line fractional-seq 138 '\"seq\" is not a non-negative integer'

test_expect_success 'a line over the limit is reported and skipped' '
    mkdir -p -m 700 c c/box &&
    head -n 2 $corpus/clean.jsonl >c/box/big.jsonl &&
    { printf "{\"v\":1,\"seq\":3,\"epoch\":1,\"ts\":1,\"type\":\"data\",\"x\":\"" &&
      head -c 9000000 /dev/zero | tr "\\0" x &&
      printf "\"}\n"; } >>c/box/big.jsonl &&
    printf "%s\n" "{\"v\":1,\"seq\":3,\"epoch\":1,\"ts\":1700000000.3,\"type\":\"data\",\"n\":3}" \
        "{\"v\":1,\"seq\":4,\"epoch\":1,\"ts\":1700000000.4,\"type\":\"data\",\"n\":4}" >>c/box/big.jsonl &&
    chmod 600 c/box/big.jsonl &&
    $mb follow --from-start --timeout 1 c/box/big.jsonl >out 2>err &&
    test "$(ns out)" = "1 2 3 4" &&
    grep "c/box/big.jsonl:138: corrupt record: .*over the limit" err &&
    test_expect_code 1 $mb check c/box/big.jsonl >out &&
    grep "c/box/big.jsonl:138: corrupt record: .*over the limit" out
'

test_expect_success 'seq going backwards: a duplicate is reported, not delivered' '
    stream seq-backwards &&
    $mb follow --from-start --timeout 0.5 c/box/seq-backwards.jsonl >out 2>err &&
    test "$(ns out)" = "1 2 3 4 5" &&
    grep "c/box/seq-backwards.jsonl:207: duplicate record: seq 2" err &&
    test_expect_code 1 $mb check c/box/seq-backwards.jsonl >out &&
    grep "c/box/seq-backwards.jsonl:207: duplicate record: seq 2" out
'
test_expect_success 'a seq gap is reported and the stream goes on' '
    stream seq-gap &&
    $mb follow --from-start --timeout 0.5 c/box/seq-gap.jsonl >out 2>err &&
    test "$(ns out)" = "1 2 5 6" &&
    grep "c/box/seq-gap.jsonl:138: gap: expected seq 3, found 5" err &&
    test_expect_code 1 $mb check c/box/seq-gap.jsonl >out &&
    grep "c/box/seq-gap.jsonl:138: gap: expected seq 3, found 5" out
'
test_expect_success 'follow --events puts problems on stdout as JSON' '
    $mb follow --from-start --events --timeout 0.5 c/box/seq-gap.jsonl >out 2>err &&
    grep "^{\"event\":\"gap\",\"stream\":\".*c/box/seq-gap.jsonl\",\"file\":\".*c/box/seq-gap.jsonl\",\"offset\":138,\"expected\":3,\"seq\":5,\"epoch\":1}$" out &&
    $mb follow --from-start --events --timeout 0.5 c/box/not-object.jsonl >out 2>err &&
    grep "^{\"event\":\"corrupt\",.*\"offset\":138,\"reason\":\"not a JSON object\"}$" out &&
    test "$(ns out)" = "1 2 3 4" &&
    ! grep corrupt err
'
test_expect_success 'epoch going backwards fails check' '
    stream epoch-backwards &&
    test_expect_code 1 $mb check c/box/epoch-backwards.jsonl >out &&
    grep "epoch-backwards.jsonl:138: .*epoch" out
'
test_expect_success 'a torn tail sealed by a restarted writer is a note, not a failure' '
    stream torn-tail &&
    $mb follow --from-start --timeout 0.5 c/box/torn-tail.jsonl >out 2>err &&
    test "$(ns out)" = "1 2 3 4" &&
    grep "c/box/torn-tail.jsonl:138: corrupt record" err &&
    $mb check c/box/torn-tail.jsonl >out &&
    grep "c/box/torn-tail.jsonl:138: corrupt record: .*note: torn tail" out &&
    grep "4 records (seq 1\.\.4), 1 segment, 2 epochs, 0 problems, 1 note" out
'
test_expect_success 'a clean stream with several epochs passes check' '
    stream clean &&
    $mb check c/box/clean.jsonl >out &&
    grep "4 records (seq 1\.\.4), 1 segment, 3 epochs, 0 problems, 0 notes" out
'
test_expect_success 'a bad line appended while follow runs is reported live' '
    $mb append s/outbox/0 "{\"n\":1}" &&
    f=$CODESWARM_HOME/swarms/s/outbox/0.jsonl &&
    off=$(stat -c %s $f) &&
    { $mb follow --since 1 --count 2 --timeout 20 s/outbox/0 >live 2>err & } &&
    pid=$! &&
    sleep 0.3 &&
    echo "{\"v\":1,\"garbage" >>$f &&
    $mb append s/outbox/0 "{\"n\":2}" "{\"n\":3}" &&
    wait $pid &&
    test "$(ns live)" = "2 3" &&
    grep "s/outbox/0.jsonl:$off: corrupt record: torn record: not valid JSON" err
'
test_expect_success 'a writer seals a torn tail before appending' '
    f=$CODESWARM_HOME/swarms/s/outbox/0.jsonl &&
    off=$(stat -c %s $f) &&
    printf "{\"v\":1,\"seq\":4,\"ep" >>$f &&
    $mb append s/outbox/0 "{\"n\":4}" &&
    tail -n 2 $f >tail &&
    head -n 1 tail >torn &&
    echo "{\"v\":1,\"seq\":4,\"ep" >expect &&
    test_cmp expect torn &&
    tail -n 1 tail | grep "\"seq\":4,.*\"n\":4}$" &&
    $mb check s/outbox/0 >out &&
    grep "0.jsonl:$off: corrupt record: .*note: torn tail" out
'

# ---- unsafe paths --------------------------------------------------------

test_expect_success 'a symlinked stream is refused' '
    mkdir -p -m 700 l l/box &&
    cp $corpus/clean.jsonl l/box/real.jsonl && chmod 600 l/box/real.jsonl &&
    ln -s real.jsonl l/box/link.jsonl &&
    test_expect_code 2 $mb follow --from-start --timeout 0.5 l/box/link.jsonl >out 2>err &&
    grep "l/box/link.jsonl.*symbolic link" err &&
    test_line_count = 0 out &&
    test_expect_code 2 $mb check l/box/link.jsonl 2>err &&
    grep "l/box/link.jsonl.*symbolic link" err &&
    test_expect_code 2 $mb append l/box/link.jsonl "{}" 2>err &&
    grep "l/box/link.jsonl.*symbolic link" err &&
    test_cmp $corpus/clean.jsonl l/box/real.jsonl
'
test_expect_success 'a symlinked swarm directory is refused' '
    $mb append real/outbox/0 "{}" &&
    ln -s real $CODESWARM_HOME/swarms/fake &&
    test_expect_code 2 $mb append fake/outbox/0 "{}" 2>err &&
    grep "fake.*symbolic link" err
'
test "$(id -u)" = 0 && test_set_prereq ROOT
test_expect_success ROOT 'a foreign-owned directory is refused' '
    mkdir -p -m 700 f f/box &&
    cp $corpus/clean.jsonl f/box/s.jsonl && chmod 600 f/box/s.jsonl &&
    chown 65534 f/box &&
    test_expect_code 2 $mb follow --from-start --timeout 0.5 f/box/s.jsonl >out 2>err &&
    grep "f/box.*owned by uid 65534" err &&
    test_expect_code 2 $mb check f/box/s.jsonl 2>err &&
    grep "f/box.*owned by uid 65534" err &&
    test_expect_code 2 $mb append f/box/s.jsonl "{}" 2>err &&
    grep "f/box.*owned by uid 65534" err
'
test_expect_success ROOT 'a foreign-owned stream file is refused' '
    mkdir -p -m 700 g g/box &&
    cp $corpus/clean.jsonl g/box/s.jsonl && chmod 600 g/box/s.jsonl &&
    chown 65534 g/box/s.jsonl &&
    test_expect_code 2 $mb check g/box/s.jsonl 2>err &&
    grep "g/box/s.jsonl.*owned by uid 65534" err
'
test_expect_success ROOT 'a foreign-owned swarm directory is refused' '
    $mb append owned/outbox/0 "{}" &&
    chown 65534 $CODESWARM_HOME/swarms/owned &&
    test_expect_code 2 $mb append owned/outbox/0 "{}" 2>err &&
    grep "swarms/owned.*owned by uid 65534" err &&
    test_expect_code 2 $mb follow --timeout 0.3 owned/outbox/0 2>err &&
    grep "swarms/owned.*owned by uid 65534" err
'
test_expect_success 'a group-writable directory is refused' '
    mkdir -p -m 700 w w/box &&
    cp $corpus/clean.jsonl w/box/s.jsonl && chmod 600 w/box/s.jsonl &&
    chmod 770 w/box &&
    test_expect_code 2 $mb check w/box/s.jsonl 2>err &&
    grep "w/box.*writable by group" err
'
test_done
