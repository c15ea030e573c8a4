/* top.c - "codeswarm top [SWARM]": the nodes of the running swarms (or of
 * SWARM), one row each: state, current turn and its age, tokens, pending
 * approvals and the last line of the answer.
 *
 * On a terminal it is a full-screen view (curses) that refreshes in place
 * every second from the node outboxes (read incrementally, as status
 * reads them), with keys to attach to the selected node, answer its oldest
 * approval request and interrupt its turn; those run the codeswarm verbs.
 * When stdout is not a terminal it prints the table once.
 */
#include "config.h"

#include <curses.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/prefix.h"
#include "common/spawn.h"
#include "slurm/launch.h"
#include "slurm/nodes.h"
#include "slurm/run.h"
#include "slurm/swarm.h"

#define TOP_MAX_SWARMS 64

struct top_swarm {
    char id[80];
    char dir[LAUNCH_PATH_MAX];
    char state[32];
    struct nodes ns;
    bool seen; /* found in this scan */
};

struct top {
    char home[LAUNCH_PATH_MAX];
    const char *only; /* SWARM, or NULL for every running swarm */
    struct top_swarm *sw[TOP_MAX_SWARMS];
    int nsw;
    int sel;       /* selected row */
    char msg[256]; /* the result of the last key */
};

static volatile sig_atomic_t top_interrupted;

static void top_sigint (int sig)
{
    (void)sig;
    top_interrupted = 1;
}

/* ---- the data ----------------------------------------------------------- */

static void swarm_free (struct top_swarm *s)
{
    if (s) {
        nodes_close (&s->ns);
        free (s);
    }
}

/* Read swarm.json (state, node count) and what is new in the outboxes.
 * false when the swarm is gone or unreadable.
 */
static bool swarm_refresh (struct top_swarm *s)
{
    cs_error_t e;
    cJSON *sw = swarm_load (s->dir, &e);
    int count;

    if (sw) {
        const char *st = swarm_str (sw, "state");
        snprintf (s->state, sizeof (s->state), "%s", st ? st : "?");
        count = swarm_int (sw, "nodes", 0);
        cJSON_Delete (sw);
    } else if (errno == ENOENT && (count = nodes_outbox_count (s->dir, &e)) >= 0)
        snprintf (s->state, sizeof (s->state), "user");
    else
        return false;
    if (count != s->ns.count || !s->ns.node) {
        nodes_close (&s->ns);
        if (nodes_open (&s->ns, s->dir, count, &e) < 0)
            return false;
    }
    return nodes_update (&s->ns, NULL, NULL, &e) >= 0;
}

static struct top_swarm *top_find (struct top *t, const char *id)
{
    for (int i = 0; i < t->nsw; i++)
        if (!strcmp (t->sw[i]->id, id))
            return t->sw[i];
    return NULL;
}

static int cmp_swarm (const void *a, const void *b)
{
    return strcmp ((*(struct top_swarm *const *)a)->id,
                   (*(struct top_swarm *const *)b)->id);
}

/* The swarms to show: SWARM, or every swarm that has not ended. */
static void top_scan (struct top *t)
{
    char path[LAUNCH_PATH_MAX];
    DIR *d;
    struct dirent *de;
    int k = 0;

    for (int i = 0; i < t->nsw; i++)
        t->sw[i]->seen = false;
    pathf (path, sizeof (path), "%s/swarms", t->home);
    if ((d = opendir (path))) {
        while ((de = readdir (d))) {
            struct top_swarm *s;
            char dir[LAUNCH_PATH_MAX];
            cs_error_t e;
            if (de->d_name[0] == '.' || (t->only && strcmp (de->d_name, t->only)))
                continue;
            if (!(s = top_find (t, de->d_name))) {
                if (t->nsw == TOP_MAX_SWARMS ||
                    launch_swarm_dir (t->home, de->d_name, dir, sizeof (dir),
                                      &e) < 0 ||
                    !(s = calloc (1, sizeof (*s))))
                    continue;
                snprintf (s->id, sizeof (s->id), "%.*s", (int)sizeof (s->id) - 1, de->d_name);
                snprintf (s->dir, sizeof (s->dir), "%s", dir);
                t->sw[t->nsw++] = s;
            }
            s->seen = swarm_refresh (s) &&
                      (t->only || !swarm_state_final (s->state));
        }
        closedir (d);
    }
    for (int i = 0; i < t->nsw; i++) {
        if (t->sw[i]->seen)
            t->sw[k++] = t->sw[i];
        else
            swarm_free (t->sw[i]);
    }
    t->nsw = k;
    qsort (t->sw, (size_t)t->nsw, sizeof (t->sw[0]), cmp_swarm);
}

static int top_rows (const struct top *t)
{
    int n = 0;

    for (int i = 0; i < t->nsw; i++)
        n += t->sw[i]->ns.count;
    return n;
}

/* row -> swarm and node */
static struct top_swarm *top_row (const struct top *t, int row, int *k)
{
    for (int i = 0; i < t->nsw; i++) {
        if (row < t->sw[i]->ns.count) {
            *k = row;
            return t->sw[i];
        }
        row -= t->sw[i]->ns.count;
    }
    return NULL;
}

static const char *node_words (const struct node_state *n)
{
    switch (n->phase) {
    case NODE_NONE:
        return "waiting";
    case NODE_STARTED:
        return "starting";
    case NODE_STOPPED:
        return "stopped";
    default:
        break;
    }
    if (n->approvals > 0)
        return "approval";
    return n->turn_active ? "working" : "idle";
}

/* "42s", "3:05", "1:02:03" */
static void dur_str (double secs, char *buf, size_t len)
{
    long s = secs < 0 ? 0 : (long)secs;

    if (s < 60)
        snprintf (buf, len, "%lds", s);
    else if (s < 3600)
        snprintf (buf, len, "%ld:%02ld", s / 60, s % 60);
    else
        snprintf (buf, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

#define TOP_HEAD_FMT "%-*s %-4s %-8s %5s %8s %8s %4s  %s"

/* One row of the table into buf (width: of the swarm column). */
static void row_text (const struct top_swarm *s, int k, int width, char *buf,
                      size_t len)
{
    const struct node_state *n = &s->ns.node[k];
    char node[16], turn[16], age[32] = "-", tokens[32], appr[16];
    double now = time_now ();

    snprintf (node, sizeof (node), "n%d", k);
    snprintf (turn, sizeof (turn), "%llu",
              (unsigned long long)(n->turns + (n->turn_active ? 1 : 0)));
    if (n->turn_active && n->turn_started > 0)
        dur_str (now - n->turn_started, age, sizeof (age));
    else if (n->last_activity > 0)
        dur_str (now - n->last_activity, age, sizeof (age));
    snprintf (tokens, sizeof (tokens), "%llu", (unsigned long long)n->tokens);
    snprintf (appr, sizeof (appr), "%d", n->approvals);
    snprintf (buf, len, TOP_HEAD_FMT, width, s->id, node, node_words (n), turn,
              age, tokens, appr, n->answer[0] ? n->answer : "-");
}

static int id_width (const struct top *t)
{
    int w = 5;

    for (int i = 0; i < t->nsw; i++)
        if ((int)strlen (t->sw[i]->id) > w)
            w = (int)strlen (t->sw[i]->id);
    return w;
}

static void head_text (int width, char *buf, size_t len)
{
    snprintf (buf, len, TOP_HEAD_FMT, width, "SWARM", "NODE", "STATE", "TURN",
              "AGE", "TOKENS", "APPR", "LAST ANSWER");
}

/* ---- plain text --------------------------------------------------------- */

static int top_plain (struct top *t)
{
    char line[512];
    int w = id_width (t);

    if (t->nsw == 0) {
        printf ("no running swarms in '%s/swarms'\n", t->home);
        return 0;
    }
    head_text (w, line, sizeof (line));
    printf ("%s\n", line);
    for (int i = 0; i < t->nsw; i++)
        for (int k = 0; k < t->sw[i]->ns.count; k++) {
            row_text (t->sw[i], k, w, line, sizeof (line));
            printf ("%s\n", line);
        }
    return 0;
}

/* ---- the verbs behind the keys ------------------------------------------ */

/* The codeswarm command: on PATH, else where it is installed. */
static const char *top_codeswarm (char *buf, size_t len)
{
    const char *path = getenv ("PATH");

    while (path && *path) {
        const char *end = strchrnul (path, ':');
        if (end > path) {
            snprintf (buf, len, "%.*s/codeswarm", (int)(end - path), path);
            if (access (buf, X_OK) == 0)
                return buf;
        }
        path = *end ? end + 1 : end;
    }
    snprintf (buf, len, "%s/codeswarm", prefix_dir (PREFIX_DIR_BIN));
    return buf;
}

/* Run "codeswarm ARGS" and keep the first line it printed as the message. */
static void top_run (struct top *t, const char *what, char *const args[])
{
    char cmd[PATH_MAX], line[200];
    char *av[8];
    struct run_result res;
    cs_error_t e;
    int n = 0;

    av[n++] = (char *)top_codeswarm (cmd, sizeof (cmd));
    for (int i = 0; args[i] && n < 7; i++)
        av[n++] = args[i];
    av[n] = NULL;
    if (run_capture (av, NULL, NULL, 60, &res, &e) < 0) {
        snprintf (t->msg, sizeof (t->msg), "%s: %.200s", what, e.text);
        return;
    }
    run_first_line (run_ok (&res) && *res.out ? res.out : res.err, line,
                    sizeof (line));
    snprintf (t->msg, sizeof (t->msg), "%s: %s%s", what,
              run_ok (&res) ? "" : "failed: ", line);
    run_result_release (&res);
}

/* Leave the screen to "codeswarm attach SWARM --node K" until it ends or
 * Ctrl-C, then come back.
 */
static void top_attach (struct top *t, const struct top_swarm *s, int k)
{
    char cmd[PATH_MAX], node[16];
    char *av[] = {(char *)top_codeswarm (cmd, sizeof (cmd)), (char *)"attach",
                  (char *)s->id, (char *)"--node", node, NULL};
    struct spawn_opts so = SPAWN_OPTS_INIT;
    struct spawn_status st;
    struct sigaction sa = {.sa_handler = top_sigint}, old;
    cs_error_t e;
    spawn_t *p;

    snprintf (node, sizeof (node), "%d", k);
    def_prog_mode ();
    endwin ();
    printf ("attached to swarm %s node %d: Ctrl-C comes back to top\n", s->id,
            k);
    fflush (stdout);
    sigemptyset (&sa.sa_mask);
    top_interrupted = 0;
    sigaction (SIGINT, &sa, &old);
    if (!(p = spawn_start (av, &so, &e)))
        snprintf (t->msg, sizeof (t->msg), "attach: %.200s", e.text);
    else {
        /* the child has its own process group: the terminal's Ctrl-C is
         * ours to pass on */
        while (spawn_poll (p, &st) == 0) {
            if (top_interrupted) {
                spawn_stop (p, 2, &st);
                break;
            }
            usleep (50000);
        }
        spawn_destroy (p);
        snprintf (t->msg, sizeof (t->msg), "detached from swarm %s node %d",
                  s->id, k);
    }
    sigaction (SIGINT, &old, NULL);
    top_interrupted = 0;
    reset_prog_mode ();
    clear ();
    refresh ();
}

/* ---- the screen --------------------------------------------------------- */

static void top_draw (struct top *t)
{
    char line[512], clock[16];
    int w = id_width (t), rows = top_rows (t), maxy, maxx, r = 0;
    time_t now = time (NULL);
    struct tm tm;

    getmaxyx (stdscr, maxy, maxx);
    (void)maxx;
    localtime_r (&now, &tm);
    strftime (clock, sizeof (clock), "%H:%M:%S", &tm);
    erase ();
    mvprintw (0, 0, "codeswarm top - %d swarm%s, %d node%s   %s", t->nsw,
              t->nsw == 1 ? "" : "s", rows, rows == 1 ? "" : "s", clock);
    head_text (w, line, sizeof (line));
    attron (A_BOLD);
    mvaddnstr (2, 0, line, COLS);
    attroff (A_BOLD);
    if (rows == 0)
        mvprintw (3, 0, "no running swarms in '%s/swarms'", t->home);
    for (int i = 0; i < t->nsw; i++) {
        for (int k = 0; k < t->sw[i]->ns.count; k++, r++) {
            if (3 + r >= maxy - 2)
                break;
            row_text (t->sw[i], k, w, line, sizeof (line));
            if (r == t->sel)
                attron (A_REVERSE);
            mvaddnstr (3 + r, 0, line, COLS);
            if (r == t->sel)
                attroff (A_REVERSE);
        }
    }
    mvaddnstr (maxy - 2, 0, t->msg, COLS);
    mvaddnstr (maxy - 1, 0,
               "up/down select  a attach  y approve  n decline  i interrupt  "
               "q quit",
               COLS);
    refresh ();
}

/* Handle one key; false to quit. */
static bool top_key (struct top *t, int ch)
{
    int rows = top_rows (t), k = 0;
    struct top_swarm *s;
    char node[16];

    switch (ch) {
    case 'q':
    case 'Q':
        return false;
    case KEY_UP:
    case 'k':
        if (t->sel > 0)
            t->sel--;
        return true;
    case KEY_DOWN:
    case 'j':
        if (t->sel < rows - 1)
            t->sel++;
        return true;
    default:
        break;
    }
    if (!(s = top_row (t, t->sel, &k)))
        return true;
    snprintf (node, sizeof (node), "%d", k);
    switch (ch) {
    case 'a':
    case '\n':
    case KEY_ENTER:
        top_attach (t, s, k);
        break;
    case 'i': {
        char *args[] = {(char *)"interrupt", s->id, node, NULL};
        top_run (t, "interrupt", args);
        break;
    }
    case 'y':
    case 'n': {
        const char *dec = ch == 'y' ? "accept" : "decline";
        char *args[] = {(char *)"approve", s->ns.node[k].approval_id[0],
                        (char *)dec, NULL};
        if (s->ns.node[k].approvals == 0 || !s->ns.node[k].approval_id[0][0])
            snprintf (t->msg, sizeof (t->msg),
                      "node %d of %s has no approval request", k, s->id);
        else
            top_run (t, dec, args);
        break;
    }
    default:
        break;
    }
    return true;
}

static int top_screen (struct top *t)
{
    struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
    double next = 0;
    bool go = true;

    initscr ();
    cbreak ();
    noecho ();
    keypad (stdscr, TRUE);
    curs_set (0);
    timeout (0);
    while (go) {
        int ch;
        if (time_mono () >= next) {
            top_scan (t);
            next = time_mono () + 1;
        }
        if (t->sel >= top_rows (t))
            t->sel = top_rows (t) > 0 ? top_rows (t) - 1 : 0;
        top_draw (t);
        if (poll (&pfd, 1, 1000) < 0 && errno != EINTR)
            break;
        while (go && (ch = getch ()) != ERR)
            go = top_key (t, ch);
    }
    endwin ();
    return 0;
}

static void top_usage (FILE *f)
{
    fprintf (f,
             "usage: codeswarm top [SWARM]\n"
             "\n"
             "The nodes of every running swarm (or of SWARM), one row each: "
             "state\n"
             "(waiting, starting, idle, working, approval, stopped), the "
             "current turn\n"
             "and its age, tokens, pending approval requests and the last "
             "line of the\n"
             "answer.  On a terminal it refreshes in place every second; "
             "keys:\n"
             "\n"
             "  up/down, j/k   select a node\n"
             "  a, Enter       attach to the node (Ctrl-C comes back)\n"
             "  y / n          accept / decline its oldest approval request\n"
             "  i              interrupt its turn\n"
             "  q              quit\n"
             "\n"
             "When the output is not a terminal, the table is printed once.\n"
             "Exit status: 0, 1 when SWARM does not exist, 2 on a usage "
             "error.\n");
}

int cmd_top (int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct top t = {.sel = 0};
    char dir[LAUNCH_PATH_MAX];
    cs_error_t e;
    int c, rc;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            top_usage (stdout);
            return 0;
        default:
            log_msg ("unknown option '%s' (see 'codeswarm top --help')",
                     argv[optind - 1]);
            return 2;
        }
    }
    if (argc - optind > 1) {
        log_msg ("unexpected argument '%s' (see 'codeswarm top --help')",
                 argv[optind + 1]);
        return 2;
    }
    if (launch_home (t.home, sizeof (t.home), false) < 0)
        return 1;
    if (optind < argc) {
        t.only = argv[optind];
        if (launch_swarm_dir (t.home, t.only, dir, sizeof (dir), &e) < 0) {
            log_msg ("%s", e.text);
            return 1;
        }
    }
    top_scan (&t);
    rc = isatty (STDOUT_FILENO) && isatty (STDIN_FILENO) ? top_screen (&t)
                                                          : top_plain (&t);
    for (int i = 0; i < t.nsw; i++)
        swarm_free (t.sw[i]);
    return rc;
}
