# lib-term.sh - drive a command in a real terminal (tmux) and read what the
# user sees.  Source after tests/sharness.sh.
#
#   term_setup              set the prereq TMUX (test_require_component)
#   term_start CMD...       run CMD in a new 160x40 terminal with this
#                           environment (a private tmux server in the trash
#                           directory); the pane stays after CMD exits and
#                           then shows "[exit N]"
#   term_screen             print what the terminal shows now (wrapped
#                           lines joined)
#   term_shows REGEX        the screen matches REGEX (for wait_for)
#   term_keys KEYS...       type KEYS (tmux send-keys names: C-c, Enter, q)
#   term_stop               stop the terminal and its server

term_sock_=

term_setup () {
    test_require_component TMUX tmux -V
}

term_n_=0

term_start () {
    # a socket per terminal: a server being stopped is never reused
    term_n_=$((term_n_ + 1))
    term_sock_=$PWD/tmux$term_n_.sock
    # a private server: it starts with our environment, and nothing of a
    # user's tmux is touched
    tmux -S "$term_sock_" -f /dev/null new-session -d -s t -x 160 -y 40 \
        "$* ; echo \"[exit \$?]\"; sleep 3600" || return 1
}

term_screen () {
    tmux -S "$term_sock_" capture-pane -p -J -t t
}

term_shows () {
    term_screen | grep -E -q "$1"
}

term_keys () {
    tmux -S "$term_sock_" send-keys -t t "$@"
}

term_stop () {
    test -n "$term_sock_" || return 0
    tmux -S "$term_sock_" kill-server 2>/dev/null
    rm -f "$term_sock_"
    term_sock_=
    return 0
}
