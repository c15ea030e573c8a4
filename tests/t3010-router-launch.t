#!/bin/bash
test_description='codeswarm-router: swarm_launch of a local swarm with its progress, providers_list, swarm_terminate -> swarm_terminated, bad launch payloads member by member, and the original CLI'"'"'s launch/terminate/stop-all flows'

. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/testbed/lib-codex.sh"
. "$CODESWARM_SRC_DIR/tests/lib-launch.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

router_trap
test_require_component JQ jq --version
codex_testbed_setup

# rpc TIMEOUT UNTIL COMMAND PAYLOAD: one command, events until UNTIL
rpc () {
    codeswarm-client rpc --timeout "$1" --until "$2" "$(rcmd "$3" "$4")"
}

# rpc_id TIMEOUT UNTIL RID COMMAND PAYLOAD: the same with request id RID
rpc_id () {
    codeswarm-client rpc --timeout "$1" --until "$2" \
        "{\"protocol\":\"codeswarm.router.v1\",\"type\":\"command\",\"command\":\"$4\",\"request_id\":\"$3\",\"payload\":$5}"
}

# jq_ok FILTER FILE: FILTER yields something for FILE's events, and only
# true (jq -e alone looks at the last input only)
jq_ok () {
    jq -s -e "[.[] | $1] | length > 0 and all" "$2" >/dev/null
}

# the events of request RID in FILE, in order: "event stage"
events_of () {
    jq -r "select(.data.request_id == \"$2\")
           | .event + (if .data.stage then \" \" + .data.stage else \"\" end)" "$1"
}

no_new_swarm () {
    test "$(ls "$CODESWARM_HOME/swarms" 2>/dev/null | wc -l)" = "$1"
}

test_expect_success JQ 'setup: a router on the socket' '
    router_start
'

test_expect_success JQ 'providers_list names the backends and their parameters' '
    rpc 30 providers_list providers_list "{}" >prov.json &&
    jq_ok "select(.event == \"providers_list\") | .data
           | .request_id == \"r-providers_list\"
             and (.providers | map(.id) == [\"local\", \"slurm\"])" prov.json &&
    jq -r "select(.event == \"providers_list\") | .data.providers[]
           | select(.id == \"slurm\") | .launch_fields[].key" prov.json >keys &&
    grep -x partition keys && grep -x time_limit keys && grep -x persist keys
'

test_expect_success JQ 'a bad launch payload is refused member by member, before anything exists' '
    while IFS="	" read -r code member payload; do
        rpc 30 command_rejected swarm_launch "$payload" >bad.json || {
            echo "no rejection for $payload"; return 1; }
        got=$(jq -r "select(.event == \"command_rejected\")
                     | .data.code + \" \" + (.data.member // \"payload.-\")" bad.json) &&
        test "$got" = "$code payload.$member" || {
            echo "$payload: got \"$got\", want \"$code $member\""; return 1; }
        jq -r "select(.event == \"command_rejected\") | .data.reason" bad.json >reason &&
        grep -F "\"${member##*.}" reason || grep -F "\"$member\"" reason || return 1
    done <<-\EOF &&
	bad_payload	nodes	{}
	bad_payload	nodes	{"nodes":0}
	bad_payload	nodes	{"nodes":"many"}
	bad_payload	system_prompt	{"nodes":2,"system_prompt":5}
	unsupported	provider	{"nodes":2,"provider":"aws"}
	bad_payload	provider	{"nodes":2,"provider":7}
	bad_payload	provider_params	{"nodes":2,"provider_params":[]}
	bad_payload	provider_params.foo	{"nodes":2,"provider_params":{"foo":1}}
	bad_payload	provider_params.partition	{"nodes":2,"provider":"local","provider_params":{"partition":"p"}}
	bad_payload	provider_params.time_limit	{"nodes":2,"provider":"slurm","provider_params":{"time_limit":"1:2:3:4"}}
	bad_payload	provider_params.persist	{"nodes":2,"provider":"slurm","provider_params":{"persist":"yes"}}
	unsupported	provider_params.execution_mode	{"nodes":2,"provider_params":{"execution_mode":"container"}}
	unsupported	provider_params.agent_runtime	{"nodes":2,"provider_params":{"agent_runtime":"claude"}}
	unsupported	provider_params.claude_model	{"nodes":2,"provider_params":{"claude_model":"x"}}
	bad_payload	provider_params.name	{"nodes":2,"provider":"local","provider_params":{"name":"../x"}}
	bad_payload	agents_md_content	{"nodes":2,"agents_md_content":5}
	bad_payload	agents_bundle	{"nodes":2,"agents_bundle":"x"}
	bad_payload	agents_bundle.mode	{"nodes":2,"agents_bundle":{"mode":"zip"}}
	bad_payload	agents_bundle.skills	{"nodes":2,"agents_bundle":{"skills":[]}}
	bad_payload	agents_bundle.skills_files	{"nodes":2,"agents_bundle":{"skills_files":{}}}
	bad_payload	agents_bundle.skills_files[0]	{"nodes":2,"agents_bundle":{"skills_files":["x"]}}
	bad_payload	agents_bundle.skills_files[0].path	{"nodes":2,"agents_bundle":{"skills_files":[{"path":"../escape","content":"x"}]}}
	bad_payload	agents_bundle.skills_files[0].path	{"nodes":2,"agents_bundle":{"skills_files":[{"path":"/etc/passwd","content":"x"}]}}
	bad_payload	agents_bundle.skills_files[1].path	{"nodes":2,"agents_bundle":{"skills_files":[{"path":"a","content":"x"},{"path":"a/../../b","content":"x"}]}}
	bad_payload	agents_bundle.skills_files[1].path	{"nodes":2,"agents_bundle":{"skills_files":[{"path":"a","content":"x"},{"path":"a","content":"y"}]}}
	bad_payload	agents_bundle.skills_files[0].content	{"nodes":2,"agents_bundle":{"skills_files":[{"path":"a","content":1}]}}
	bad_payload	extra	{"nodes":2,"extra":true}
	EOF
    no_new_swarm 0
'

test_expect_success CODEX,JQ 'swarm_launch of a local swarm: progress with the request id, then swarm_launched' '
    cat >payload.json <<-\EOF &&
	{"nodes": 2, "provider": "local", "provider_params": {"name": "pl"},
	 "system_prompt": "hello from the launch",
	 "agents_md_content": "# ignored: the bundle has its own",
	 "agents_bundle": {"mode": "directory",
	   "agents_md_content": "# Rules\nAnswer briefly.\n",
	   "skills_files": [{"path": "tooling/SKILL.md", "content": "a skill\n"},
	                    {"path": "deep/er/x.md", "content": "x\n"}]}}
	EOF
    rpc_id 120 swarm_launched launch-1 swarm_launch "$(jq -c . payload.json)" >launch.json &&
    events_of launch.json launch-1 >seen &&
    grep -x "swarm_launch_progress queued" seen &&
    grep -x "swarm_launch_progress created" seen &&
    test "$(grep -c -x "swarm_launch_progress node_ready" seen)" = 2 &&
    grep -x "swarm_launch_progress ready" seen &&
    test "$(tail -n1 seen)" = swarm_launched &&
    jq_ok "select(.event == \"swarm_launch_progress\" and .data.stage == \"node_ready\")
           | .data.swarm_id == \"pl\" and (.data.node_id | type) == \"number\"
             and (.data.message | test(\"ready\"))" launch.json &&
    jq_ok "select(.event == \"swarm_launched\") | .data
           | .swarm_id == \"pl\" and .node_count == 2 and .provider == \"local\"
             and .job_id == \"local\"" launch.json &&
    test "$(swarm_json pl .state)" = running
'

test_expect_success CODEX,JQ 'the bundle is in every workspace' '
    printf "# Rules\nAnswer briefly.\n" >agents.expect &&
    for k in 0 1; do
        w=$(swarm_dir pl)/work/$k &&
        test_cmp agents.expect $w/AGENTS.md &&
        echo "a skill" >skill.expect &&
        test_cmp skill.expect $w/.agents/skills/tooling/SKILL.md &&
        test -f $w/.agents/skills/deep/er/x.md &&
        test "$(stat -c %a $w/.agents/skills/tooling/SKILL.md)" = 600 || return 1
    done
'

test_expect_success CODEX,JQ 'the system prompt goes to every node and is answered' '
    wait_for -t 60 swarm_status_is pl .turns 2 &&
    node_texts pl 0 | grep "You said: hello from the launch" &&
    node_texts pl 1 | grep "You said: hello from the launch"
'

test_expect_success CODEX,JQ 'another client sees the same launch events' '
    codeswarm-client rpc --timeout 10 --until swarm_launched \
        "$(rcmd hello "{\"since\":0}")" >other.json &&
    events_of other.json launch-1 >seen2 &&
    grep -v "^inject" seen >seen1 &&
    test_cmp seen1 seen2
'

test_expect_success CODEX,JQ 'the original CLI'"'"'s launch flow: nothing but progress before swarm_launched' '
    jq -r "select(.data.request_id == \"launch-1\") | .event" launch.json |
        sed "/^swarm_launched$/q" | sort -u >before &&
    printf "swarm_launch_progress\nswarm_launched\n" >before.expect &&
    test_cmp before.expect before
'

test_expect_success CODEX,JQ 'a second launch with the same id is refused, naming the swarm' '
    rpc 30 command_rejected swarm_launch \
        "{\"nodes\":1,\"provider\":\"local\",\"provider_params\":{\"name\":\"pl\"}}" >dup.json &&
    jq_ok "select(.event == \"command_rejected\") | .data.reason | test(\"already exists\")" dup.json
'

test_expect_success CODEX,JQ 'swarm_terminate ends in swarm_terminated; the original CLI'"'"'s terminate flow' '
    pid=$(swarm_json pl .supervisor_pid) &&
    rpc_id 60 swarm_terminated term-1 swarm_terminate "{\"swarm_id\":\"pl\"}" >term.json &&
    jq -r "select(.data.request_id == \"term-1\") | .event" term.json >tev &&
    test "$(tail -n1 tev)" = swarm_terminated &&
    sed "\$d" tev | sort -u >tev.mid &&
    printf "swarm_status\nswarm_terminate_progress\n" >tev.expect &&
    test_cmp tev.expect tev.mid &&
    jq_ok "select(.event == \"swarm_terminated\") | .data.swarm_id == \"pl\"" term.json &&
    test "$(swarm_json pl .state)" = cancelled &&
    wait_for -t 20 pid_gone $pid &&
    # the CLI'"'"'s list right after: the swarm is over, not "terminating"
    rpc 10 swarm_list swarm_list "{}" >after.json &&
    jq_ok "select(.event == \"swarm_list\") | .data.swarms.pl.status == \"terminated\"" after.json
'

test_expect_success CODEX,JQ 'the original CLI'"'"'s stop-all flow: every listed swarm, ended ones too, ends in swarm_terminated' '
    rpc 10 swarm_list swarm_list "{}" >list.json &&
    jq -r "select(.event == \"swarm_list\") | .data.swarms | keys[]" list.json >ids &&
    grep -x pl ids &&
    while read -r id; do
        codeswarm-client rpc --timeout 30 --until swarm_terminated \
            "{\"protocol\":\"codeswarm.router.v1\",\"type\":\"command\",\"command\":\"swarm_terminate\",\"request_id\":\"stop-$id\",\"payload\":{\"swarm_id\":\"$id\"}}" >stop.json &&
        jq_ok "select(.event == \"swarm_terminated\") | .data.request_id == \"stop-$id\"" stop.json ||
        return 1
    done <ids
'

test_expect_success JQ 'queue_list is empty; the queue and project commands are typed unsupported' '
    rpc 10 queue_list queue_list "{}" >q.json &&
    jq_ok "select(.event == \"queue_list\") | .data.items == []" q.json &&
    for c in enqueue_inject project_create project_list project_resume project_resume_preview; do
        rpc 10 command_rejected $c "{}" >u.json &&
        jq_ok "select(.event == \"command_rejected\") | .data.code == \"unsupported\"" u.json ||
        return 1
    done
'

test_expect_success JQ 'a terminate with download_workspaces_on_shutdown is unsupported' '
    rpc 10 command_rejected swarm_terminate \
        "{\"swarm_id\":\"pl\",\"terminate_params\":{\"download_workspaces_on_shutdown\":true}}" >dl.json &&
    jq_ok "select(.event == \"command_rejected\") | .data.code == \"unsupported\"" dl.json
'

test_expect_success CODEX,JQ 'codeswarm launch goes through the router: the same output, and every client sees its events' '
    printf "# Rules\n" >cli-agents.md &&
    codeswarm launch --local --nodes 1 --name cli1 --agents-md cli-agents.md \
        >cli.out 2>cli.err &&
    grep -x "swarm cli1: started locally (1 node)" cli.out &&
    grep "node 0: ready" cli.err &&
    grep -x "swarm cli1: 1/1 nodes ready" cli.err &&
    test_cmp cli-agents.md "$(swarm_dir cli1)/work/0/AGENTS.md" &&
    jq -r "select(.event == \"swarm_launched\" and .data.swarm_id == \"cli1\")
           | .data.request_id" home/router/events.jsonl >rid &&
    grep "^cli-[0-9]*-swarm_launch\$" rid
'

test_expect_success CODEX,JQ 'a bad option through the router: exit 2, nothing created' '
    test_expect_code 2 codeswarm launch --local -N 1 --name cli2 --partition p 2>err &&
    grep "provider_params.partition" err &&
    ! test -d "$(swarm_dir cli2)"
'

test_expect_success CODEX,JQ 'codeswarm cancel goes through the router' '
    pid=$(swarm_json cli1 .supervisor_pid) &&
    codeswarm cancel cli1 >cancel.out &&
    grep -x "swarm cli1: cancelled" cancel.out &&
    test "$(swarm_json cli1 .state)" = cancelled &&
    wait_for -t 20 pid_gone $pid &&
    jq -e -s "map(select(.event == \"swarm_terminated\" and .data.swarm_id == \"cli1\")) | length == 1" \
        home/router/events.jsonl &&
    codeswarm cancel cli1 >cancel2.out &&
    grep -x "swarm cli1: already cancelled" cancel2.out &&
    test_expect_code 1 codeswarm cancel nosuch 2>err &&
    grep "no swarm .nosuch." err
'

test_expect_success 'stop the router' '
    router_kill
'

test_expect_success CODEX 'without a router, launch and cancel act directly' '
    codeswarm launch --local --nodes 1 --name direct1 >d.out 2>d.err &&
    grep -x "swarm direct1: started locally (1 node)" d.out &&
    codeswarm cancel direct1 >d2.out &&
    grep -x "swarm direct1: cancelled" d2.out &&
    ! jq -e -s "map(select(.data.swarm_id == \"direct1\")) | length > 0" \
        home/router/events.jsonl
'

test_done
