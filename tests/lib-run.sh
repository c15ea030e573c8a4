# lib-run.sh - helpers for the codeswarm run program tests
#
# Source after tests/sharness.sh.  Sets the git identity of the agents'
# commits (GIT_AUTHOR_* and GIT_COMMITTER_*, exported).
#
#   run_task ID DEPS...   a task of codeswarm-tasks(5) (one item of
#                         "tasks:") whose agent checks that the files of
#                         its dependencies are there, writes its own
#                         (ID.txt) and commits it
#   run_graph12           twelve such tasks in four levels, a to l

GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@localhost
GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@localhost
export GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL

run_task () {
	t_id=$1
	shift
	t_check=
	t_deps=
	for d in "$@"; do
		t_check="${t_check}test -f $d.txt && "
		t_deps="${t_deps:+$t_deps, }$d"
	done
	cat <<EOF
  - id: $t_id
    prompt: "RUN: ${t_check}echo $t_id >$t_id.txt && git add $t_id.txt && git commit -qm $t_id"
    depends_on: [$t_deps]
EOF
}

run_graph12 () {
	run_task a; run_task b; run_task c; run_task d
	run_task e a; run_task f a b; run_task g c; run_task h d c
	run_task i e f; run_task j g; run_task k h e
	run_task l i j k
}

