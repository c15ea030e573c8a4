#!/bin/bash
test_description='codeswarm-router: swarm_launch of a Slurm swarm on the test bed (job progress as events), then swarm_terminate'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

router_trap
test_require_component JQ jq --version
codex_testbed_setup
slurm_bed_setup

# swarm (and job) name of this run: several runs may share the test bed
name=rl-$$

rpc_id () {
    codeswarm-client rpc --timeout "$1" --until "$2" \
        "{\"protocol\":\"codeswarm.router.v1\",\"type\":\"command\",\"command\":\"$4\",\"request_id\":\"$3\",\"payload\":$5}"
}

test_expect_success SLURM,CODEX,JQ 'setup: a router on the socket' '
    router_start
'

test_expect_success SLURM,CODEX,JQ 'swarm_launch of a Slurm swarm: submitted, job state, ready per node, then swarm_launched' '
    rpc_id 300 swarm_launched sl-1 swarm_launch \
        "{\"nodes\":2,\"provider\":\"slurm\",\"provider_params\":{\"name\":\"$name\",\"time_limit\":\"10\"},\"system_prompt\":\"hello slurm\"}" >launch.json &&
    jq -r "select(.data.request_id == \"sl-1\")
           | .event + \" \" + (.data.stage // \"\")" launch.json >seen &&
    grep -x "swarm_launch_progress queued" seen &&
    grep -x "swarm_launch_progress created" seen &&
    grep -E -x "swarm_launch_progress (pending|running)" seen &&
    test "$(grep -c -x "swarm_launch_progress node_ready" seen)" = 2 &&
    test "$(tail -n1 seen)" = "swarm_launched " &&
    jq -s -e "map(select(.event == \"swarm_launch_progress\" and .data.stage == \"created\"))
              | .[0].data | .provider == \"slurm\" and (.job_id | test(\"^[0-9]+\$\"))" launch.json &&
    jq -s -e "map(select(.event == \"swarm_launched\" and .data.request_id == \"sl-1\"))
              | .[0].data | .swarm_id == \"$name\" and .node_count == 2
                and .provider == \"slurm\"" launch.json &&
    test "$(swarm_json $name .backend)" = slurm
'

test_expect_success SLURM,CODEX,JQ 'the system prompt is answered on the compute nodes' '
    wait_for -t 90 swarm_status_is $name .turns 2 &&
    node_texts $name 0 | grep "You said: hello slurm" &&
    node_texts $name 1 | grep "You said: hello slurm"
'

test_expect_success SLURM,CODEX,JQ 'swarm_terminate cancels the job and ends in swarm_terminated' '
    job=$(swarm_json $name .job_id) &&
    rpc_id 120 swarm_terminated st-1 swarm_terminate "{\"swarm_id\":\"$name\"}" >term.json &&
    jq -s -e "map(select(.event == \"swarm_terminated\")) | .[0].data.request_id == \"st-1\"" term.json &&
    test "$(swarm_json $name .state)" = cancelled &&
    wait_for -t 60 slurm_job_done $job
'

test_expect_success SLURM,CODEX,JQ 'stop the router' '
    router_kill
'

test_done
