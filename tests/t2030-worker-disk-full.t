#!/bin/sh
test_description='codeswarm-worker: a full disk loses no prompt and runs none twice

The mailbox lives on a small tmpfs that the test fills.  While the outbox
cannot be written the worker holds its records, takes no new prompt and
says so; once space is back every prompt has exactly one turn.'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-worker.sh"

worker_trap
test_require_component JQ jq --version
unset SLURM_NODEID SLURM_PROCID PMIX_RANK SLURM_JOB_ID

# a filesystem the test may fill: a tmpfs (root only)
fs=$(pwd)/fs
tmpfs_mount_ () {
    test "$(id -u)" = 0 && mkdir -p "$fs" &&
    mount -t tmpfs -o size=4m,mode=0700 codeswarm-test "$fs"
}
test_require_component TMPFS tmpfs_mount_ || { test_done; }
unmount_ () {
    um_rc_=$?
    worker_cleanup_
    if mountpoint -q "$fs"; then
        umount "$fs"
    fi
    (exit $um_rc_)
    worker_exit_
}
trap unmount_ EXIT

CODESWARM_HOME=$fs/home
mkdir -m 0700 "$CODESWARM_HOME"
export CODESWARM_HOME
outbox=$CODESWARM_HOME/swarms/$SWARM/outbox/0.jsonl
inbox=$CODESWARM_HOME/swarms/$SWARM/inbox/0.jsonl
CODESWARM_CODEX=$CODESWARM_BUILD_DIR/tests/fake-app-server
FAKE_APP_SERVER_LOG=$(pwd)/fake.log
# a turn of ~150 KiB: more than the 64 KiB the writer reserves ahead
FAKE_DELTAS=600
export CODESWARM_CODEX FAKE_APP_SERVER_LOG FAKE_DELTAS
cat >codeswarm.yaml <<EOF
worker:
  heartbeat: 0.2
  workspace: $(pwd)/work
EOF
CODESWARM_CONFIG=$(pwd)/codeswarm.yaml
export CODESWARM_CONFIG

accepted () {
    outbox_count ".type == \"inject_accepted\" and .injection_id == \"$1\""
}
# turns completed for injection $1 (through the turn id of its acceptance)
# (the fake app-server numbers its turns from 1 again after a restart:
# only completions after the acceptance count)
completed () {
    c_rec_=$(jq -c "select(.type == \"inject_accepted\" and .injection_id == \"$1\")" "$outbox" | head -n 1)
    test -n "$c_rec_" || { echo 0; return; }
    c_tid_=$(echo "$c_rec_" | jq -r .turn_id)
    c_seq_=$(echo "$c_rec_" | jq -r .seq)
    outbox_count ".type == \"rpc\" and .msg.method == \"turn/completed\" and .msg.params.turn.id == \"$c_tid_\" and .seq > $c_seq_"
}
# exactly one end for injection $1: its turn completed, or was aborted
ended_once () {
    test $(( $(completed "$1") + $(outbox_count ".type == \"turn_aborted\" and .injection_id == \"$1\"") )) = 1
}
seq_of () {
    jq -r "select($1) | .seq" "$outbox" | head -n 1
}
fill () {
    dd if=/dev/zero of="$fs/fill" bs=4k 2>/dev/null
    test -s "$fs/fill"
}

log_count () {
    test "$(grep -c "$1" worker.log)" = "$2"
}
accepted_is () {
    test "$(accepted "$1")" = "$2"
}
turn_done () {
    test "$(completed "$1")" = "${2:-1}"
}

test_expect_success 'a prompt runs while there is space' '
    worker_start &&
    outbox_wait ".type == \"ready\"" &&
    inject user "{\"id\":\"p1\",\"content\":\"one\"}" &&
    wait_for turn_done p1
'

test_expect_success 'disk full: the worker holds the outbox, says so, takes no prompt' '
    fill &&
    inject user "{\"id\":\"p2\",\"content\":\"two\"}" &&
    wait_for grep -q "outbox not writable" worker.log &&
    inject user "{\"id\":\"p3\",\"content\":\"three\"}" &&
    worker_alive_
'

test_expect_success 'space is back: node_degraded, the held records, node_recovered' '
    rm -f "$fs/fill" &&
    outbox_wait ".type == \"node_recovered\" and .reason == \"outbox_unwritable\"" &&
    outbox_has ".type == \"node_degraded\" and .reason == \"outbox_unwritable\"" &&
    grep "outbox writable again" worker.log
'

test_expect_success 'every prompt ran exactly once' '
    wait_for turn_done p3 &&
    test "$(accepted p1)" = 1 && turn_done p1 &&
    test "$(accepted p2)" = 1 && turn_done p2 &&
    test "$(accepted p3)" = 1 && turn_done p3 &&
    test "$(outbox_count ".type == \"rpc\" and .msg.method == \"turn/completed\"")" = 3 &&
    test "$(grep -c "\"clientUserMessageId\":\"p2\"" fake.log)" = 1 &&
    test "$(grep -c "\"clientUserMessageId\":\"p3\"" fake.log)" = 1
'

test_expect_success 'the prompt that came while degraded started after the recovery' '
    test "$(seq_of ".type == \"inject_accepted\" and .injection_id == \"p3\"")" -gt \
         "$(seq_of ".type == \"node_recovered\"")"
'

test_expect_success 'the outbox is clean: no torn record, no gap' '
    codeswarm-mailbox check "$SWARM/outbox/0" &&
    codeswarm-mailbox check "$SWARM/inbox/0"
'

test_expect_success 'a second full disk, and a worker killed while degraded' '
    fill &&
    inject user "{\"id\":\"p4\",\"content\":\"four\"}" &&
    wait_for log_count "outbox not writable" 2 &&
    worker_kill KILL &&
    worker_wait_exit &&
    rm -f "$fs/fill" &&
    worker_start &&
    outbox_wait ".type == \"ready\"" 2 &&
    wait_for ended_once p4 &&
    accepted_is p4 1 &&
    codeswarm-mailbox check "$SWARM/outbox/0"
'

test_expect_success 'a launch on the full disk fails; its swarm is listed failed, cancel and forget work' '
    fill &&
    test_must_fail codeswarm launch --local --nodes 2 --no-wait >launch.out 2>launch.err &&
    grep "No space left on device" launch.err &&
    rm -f "$fs/fill" &&
    half=$(ls "$CODESWARM_HOME/swarms" | grep -v -x "$SWARM") &&
    test -n "$half" &&
    codeswarm status --json >status.json &&
    test "$(jq -r ".[] | select(.id == \"$half\") | .swarm_state" status.json)" = failed &&
    codeswarm status >status.txt &&
    grep "$half.*failed" status.txt &&
    codeswarm cancel "$half" 2>cancel.err &&
    grep "launch did not finish" cancel.err &&
    codeswarm forget "$half" &&
    test_path_is_missing "$CODESWARM_HOME/swarms/$half"
'

test_expect_success 'stop' '
    worker_kill TERM &&
    worker_wait_exit &&
    test "$worker_rc" = 0 &&
    umount "$fs" &&
    rmdir "$fs"
'

test_done
