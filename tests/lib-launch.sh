# lib-launch.sh - functions for the launcher tests (codeswarm launch, status,
# cancel, doctor).  Source after tests/sharness.sh (and lib-codex.sh).
#
#   slurm_bed_setup          use the Slurm test bed when one is up (the env
#                            file of tests/testbed/slurm-up), and set the
#                            prereq SLURM (test_require_component)
#   slurm_acct_bed_setup     the same for the test bed with Slurm accounting
#                            (slurm-up with CODESWARM_SLURM_ACCOUNTING=1 in
#                            $CODESWARM_SLURM_ACCT_DIR, /tmp/codeswarm-slurm-acct
#                            by default); prereq SLURMACCT
#   swarm_dir ID             <home>/swarms/ID
#   swarm_json ID FILTER     jq FILTER on swarm.json
#   swarm_event_count ID TYPE   records of TYPE in outbox/swarm.jsonl
#   swarm_status ID FILTER   jq FILTER on "codeswarm status ID --json"'s
#                            element
#   node_texts ID K          the final text of every agent message of node K
#   node_count ID K FILTER   records of outbox K matching a jq boolean
#   node_worker_pid ID K     the pid of node K's newest worker (its
#                            worker_started record)
#   node_codex_pid ID K      the pids of that worker's children (its codex)
#   slurm_jobs_of NAME       ids of the jobs named NAME Slurm still lists
#   slurm_job_count          number of jobs Slurm lists
#   swarm_status_is, swarm_json_is, swarm_event_is, pid_gone,
#   slurm_job_done, slurm_job_running, slurm_name_done, all_turns_active:
#   status_aligned FILE      the columns of a status table line up
#                            conditions for wait_for

CODESWARM_SBATCH_TEMPLATE=$CODESWARM_SRC_DIR/etc/codeswarm.sbatch.in
export CODESWARM_SBATCH_TEMPLATE

slurm_bed_check_ () {
    test -n "$SLURM_CONF" && test -f "$SLURM_CONF" &&
    command -v sbatch >/dev/null &&
    squeue --json >/dev/null
}

slurm_bed_setup () {
    sbs_env_=${CODESWARM_SLURM_DIR:-/tmp/codeswarm-slurm}/env
    if test -z "$SLURM_CONF" && test -f "$sbs_env_"; then
        . "$sbs_env_"
    fi
    test_require_component SLURM slurm_bed_check_
}

slurm_acct_bed_check_ () {
    slurm_bed_check_ &&
    test "$CODESWARM_SLURM_ACCOUNTING" = 1 &&
    sacctmgr -n list cluster >/dev/null
}

slurm_acct_bed_setup () {
    sas_env_=${CODESWARM_SLURM_ACCT_DIR:-/tmp/codeswarm-slurm-acct}/env
    if test -f "$sas_env_"; then
        . "$sas_env_"
    fi
    test_require_component SLURMACCT slurm_acct_bed_check_
}

swarm_dir () {
    echo "$CODESWARM_HOME/swarms/$1"
}

swarm_json () {
    jq -r "$2" "$CODESWARM_HOME/swarms/$1/swarm.json"
}

swarm_event_count () {
    sec_f_=$CODESWARM_HOME/swarms/$1/outbox/swarm.jsonl
    if test -f "$sec_f_"; then
        jq -c "select(.type == \"$2\")" "$sec_f_" | wc -l
    else
        echo 0
    fi
}

swarm_status () {
    codeswarm status "$1" --json | jq -r ".[0] | $2"
}

node_texts () {
    nt_f_=$CODESWARM_HOME/swarms/$1/outbox/$2.jsonl
    test -f "$nt_f_" || return 0
    jq -r 'select(.type == "rpc" and .msg.method == "item/completed"
                  and .msg.params.item.type == "agentMessage")
           | .msg.params.item.text' "$nt_f_"
}

node_count () {
    nc_f_=$CODESWARM_HOME/swarms/$1/outbox/$2.jsonl
    if test -f "$nc_f_"; then
        jq -c "select($3)" "$nc_f_" | wc -l
    else
        echo 0
    fi
}

node_worker_pid () {
    jq -r 'select(.type == "worker_started") | .pid' \
        "$CODESWARM_HOME/swarms/$1/outbox/$2.jsonl" | tail -n 1
}

node_codex_pid () {
    pgrep -P "$(node_worker_pid "$1" "$2")"
}

slurm_jobs_of () {
    squeue --json | jq -r ".jobs[] | select(.name == \"$1\")
        | select(.job_state == \"PENDING\" or .job_state == \"RUNNING\"
                 or .job_state == \"COMPLETING\") | .job_id"
}

slurm_job_count () {
    squeue --json | jq '.jobs | length'
}

# for wait_for (which runs a command, not an expression):
#   wait_for swarm_status_is ID FILTER VALUE
#   wait_for swarm_json_is ID FILTER VALUE
#   wait_for swarm_event_is ID TYPE COUNT
#   wait_for pid_gone PID
swarm_status_is () {
    test "$(swarm_status "$1" "$2")" = "$3"
}
swarm_json_is () {
    test "$(swarm_json "$1" "$2")" = "$3"
}
swarm_event_is () {
    test "$(swarm_event_count "$1" "$2")" -ge "$3"
}
pid_gone () {
    ! kill -0 "$1" 2>/dev/null || grep -q "^[0-9]* ([^)]*) Z" "/proc/$1/stat"
}
# slurm_job_done JOBID: Slurm lists the job no more as pending, running or
# completing
slurm_job_done () {
    test -z "$(squeue --json | jq -r ".jobs[] | select(.job_id == $1)
        | select(.job_state == \"PENDING\" or .job_state == \"RUNNING\"
                 or .job_state == \"COMPLETING\") | .job_id")"
}
# slurm_job_running JOBID
slurm_job_running () {
    squeue --json | jq -e ".jobs[] | select(.job_id == $1
        and .job_state == \"RUNNING\")" >/dev/null
}
# slurm_name_done NAME: no job named NAME is pending, running or completing
slurm_name_done () {
    test -z "$(slurm_jobs_of "$1")"
}
# all_turns_active ID N: N nodes of swarm ID are in a turn
all_turns_active () {
    test "$(codeswarm status "$1" --json |
            jq "[.[0].node_states[] | select(.turn_active)] | length")" = "$2"
}

# status_aligned FILE: the rows of a "codeswarm status" table line up with
# its header: cells are separated by two blanks or more (a cell has single
# blanks at most); the left-aligned columns start, and TURNS, TOKENS and
# TIME LEFT end, where their header does
status_aligned () {
    awk '{
            pos = 1; j = 0
            while (match (substr ($0, pos), /[^ ]+( [^ ]+)*/)) {
                s = pos + RSTART - 1; e = s + RLENGTH - 1
                j++; st[NR, j] = s; en[NR, j] = e; pos = e + 1
            }
            nf[NR] = j
         }
         END {
            if (nf[1] != 8) { print "header: " nf[1] " columns"; exit 1 }
            for (r = 2; r <= NR; r++) {
                if (nf[r] != 8) { printf "row %d: %d cells\n", r, nf[r]; bad = 1 }
                for (j = 1; j <= 8; j++) {
                    right = (j >= 5 && j <= 7)
                    if (right ? en[r, j] != en[1, j] : st[r, j] != st[1, j]) {
                        printf "row %d: column %d out of line\n", r, j; bad = 1
                    }
                }
            }
            exit bad
         }' "$1"
}
