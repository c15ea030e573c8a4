#!/bin/bash
test_description='codeswarm-router --ssh through a stand-in for ssh: both directions, reconnects'
. "${CODESWARM_SRC_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/sharness.sh"
. "$CODESWARM_SRC_DIR/tests/lib-router.sh"

router_trap
test_require_component JQ jq --version

# the stand-in: drops the options and the host, runs the command here
cat >fake-ssh <<'EOF'
#!/bin/sh
while test $# -gt 0; do case $1 in --) shift; break ;; *) shift ;; esac; done
shift
exec sh -c "$*"
EOF
chmod +x fake-ssh
CODESWARM_SSH=$(pwd)/fake-ssh
export CODESWARM_SSH

remote_prereq=JQ
remote_args="--ssh login.example --remote-home $(pwd)/remote --remote-command $CODESWARM_BUILD_DIR/mailbox/codeswarm-mailbox"
. "$CODESWARM_SRC_DIR/tests/lib-router-remote.sh"

test_done
