# A host of the Slurm test bed dies as a node does, and comes back
# (sourced by the tests of node loss, after lib-launch.sh).  The swarm is
# $sw, or else $sp.

bed=${CODESWARM_SLURM_DIR:-/tmp/codeswarm-slurm}

# root on the bed's machine: a node's slurmd is killed and started again
# the way tests/testbed/slurm-up starts it
if test "$(id -u)" = 0 && test -f "$bed/hosts" && test -f "$bed/run/pids"
then
	test_set_prereq BEDROOT
fi

# node K's newest worker (worker_started): its pid, its host
node_worker () {
	jq -r 'select(.type == "worker_started") | .pid' \
		"$(swarm_dir ${sw:-$sp})/outbox/$1.jsonl" | tail -n 1
}
node_host () {
	jq -r 'select(.type == "worker_started") | .host' \
		"$(swarm_dir ${sw:-$sp})/outbox/$1.jsonl" | tail -n 1
}
# say_elapsed WHAT T0: how long since T0 (a figure for the log, not a check)
say_elapsed () {
	echo "# $1 $(awk -v a="$2" -v b="$(sharness_now_)" "BEGIN { printf \"%.1f\", b - a }") s after its host died"
}

# kill -9 the slurmd of HOST, and node K's worker, its step's slurmstepd
# and its codex: HOST dies as a node does
host_kill () { # HOST K
	hk_d_=$(cat "$bed/run/slurmd.$1.pid") &&
	hk_w_=$(node_worker "$2") &&
	hk_s_=$(awk '{ print $4 }' "/proc/$hk_w_/stat") &&
	test "$(cat "/proc/$hk_s_/comm")" = slurmstepd &&
	hk_c_=$(pgrep -P "$hk_w_") &&
	echo "$hk_d_" >"killed.$1" &&
	kill -KILL "$hk_d_" "$hk_s_" "$hk_w_" $hk_c_ &&
	for p in "$hk_d_" "$hk_s_" "$hk_w_" $hk_c_; do
		wait_for pid_gone "$p" || return 1
	done
}

# start HOST's slurmd again as slurm-up does (its own UTS and mount
# namespace, the bed's /etc/hosts) and put its pid in the bed's list
slurmd_restore () { # HOST
	test -f "killed.$1" || return 0
	sr_old_=$(cat "killed.$1") &&
	unshare --uts --mount --propagation private \
		sh -c 'mount --bind "$1" /etc/hosts && hostname "$2" && shift 2 && exec "$@"' \
		sh "$bed/hosts" "$1" slurmd -N "$1" \
		</dev/null >>"$bed/log/daemons.out" 2>&1 &&
	wait_for slurmd_new "$1" "$sr_old_" &&
	sr_new_=$(cat "$bed/run/slurmd.$1.pid") &&
	sed -i "s|^slurmd $sr_old_ .*|slurmd $sr_new_ $(readlink "/proc/$sr_new_/ns/mnt")|" \
		"$bed/run/pids" &&
	grep -q "^slurmd $sr_new_ " "$bed/run/pids" &&
	rm -f "killed.$1"
}
slurmd_new () { # HOST OLDPID
	sn_p_=$(cat "$bed/run/slurmd.$1.pid" 2>/dev/null) &&
	test -n "$sn_p_" && test "$sn_p_" != "$2" &&
	test "$(cat "/proc/$sn_p_/comm" 2>/dev/null)" = slurmd
}
slurmd_responding () { # HOST
	scontrol show node "$1" | grep -q "State=[A-Z]*[^*]* " &&
	! scontrol show node "$1" | grep -q "State=[A-Z+]*\*"
}
