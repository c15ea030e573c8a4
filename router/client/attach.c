/* attach.c - "codeswarm attach": a swarm's events, readable or as JSON
 *
 * From the router (subscribe, optionally --since a seq) or, without one,
 * by following the outboxes.  struct view turns events into lines
 * prefixed with their node; --json prints them as they are.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router/client/client.h"

struct view {
    const char *swarm;
    bool json;
    bool colour;
    int open_node;              /* node whose delta line is open, -1 none */
    int turns;                  /* exit after this many turn_complete (0: never) */
    int turns_seen;
    char *open_item;
};

static void view_prefix (struct view *v, int node, FILE *f)
{
    if (node < 0) {
        fprintf (f, v->colour ? "\033[1m[swarm]\033[0m " : "[swarm] ");
        return;
    }
    if (v->colour)
        fprintf (f, "\033[%dm[n%d]\033[0m ", 31 + node % 6, node);
    else
        fprintf (f, "[n%d] ", node);
}

static void view_close_line (struct view *v)
{
    if (v->open_node >= 0) {
        fputc ('\n', stdout);
        v->open_node = -1;
    }
}

/* Print text with every line prefixed. */
static void view_lines (struct view *v, int node, const char *lead,
                        const char *text)
{
    const char *p = text;
    view_close_line (v);
    do {
        const char *nl = strchr (p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen (p);
        if (!nl && len == 0 && p != text)
            break;
        view_prefix (v, node, stdout);
        printf ("%s%.*s\n", lead, (int)len, p);
        p = nl ? nl + 1 : p + len;
    } while (*p);
}

static void view_event (struct view *v, const char *name, const cJSON *d,
                        const char *raw)
{
    const cJSON *nv = cJSON_GetObjectItemCaseSensitive (d, "node_id");
    const char *sw = dstr (d, "swarm_id");
    int node = cJSON_IsNumber (nv) ? (int)nv->valuedouble : -1;
    char buf[512];

    if (v->swarm && (!sw || strcmp (sw, v->swarm)))
        return;
    if (!strcmp (name, "turn_complete"))
        v->turns_seen++;
    if (v->json) {
        if (raw)
            fputs (raw, stdout);
        else {
            char *s = cJSON_PrintUnformatted (d);
            printf ("{\"event\":\"%s\",\"data\":%s}\n", name, s ? s : "null");
            free (s);
        }
        fflush (stdout);
        return;
    }
    if (!strcmp (name, "assistant_delta")) {
        const char *delta = dstr (d, "delta");
        const char *item = dstr (d, "item_id");
        if (!delta)
            return;
        if (v->open_node != node) {
            view_close_line (v);
            view_prefix (v, node, stdout);
            v->open_node = node;
        }
        free (v->open_item);
        v->open_item = item ? strdup (item) : NULL;
        for (const char *p = delta; *p; p++) {
            fputc (*p, stdout);
            if (*p == '\n' && p[1])
                view_prefix (v, node, stdout);
        }
        if (delta[0] && delta[strlen (delta) - 1] == '\n')
            v->open_node = -1, free (v->open_item), v->open_item = NULL;
        fflush (stdout);
        return;
    }
    if (!strcmp (name, "assistant")) {
        const char *item = dstr (d, "item_id");
        if (v->open_node == node && v->open_item && item
            && !strcmp (item, v->open_item)) {
            view_close_line (v);       /* the deltas showed it already */
        }
        else
            view_lines (v, node, "", dstr (d, "text") ? dstr (d, "text") : "");
        fflush (stdout);
        return;
    }
    view_close_line (v);
    if (!strcmp (name, "turn_started"))
        snprintf (buf, sizeof (buf), "-- turn started%s%s",
                  dstr (d, "injection_id") ? " for " : "",
                  dstr (d, "injection_id") ? dstr (d, "injection_id") : "");
    else if (!strcmp (name, "turn_complete")) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive (d, "error");
        snprintf (buf, sizeof (buf), "-- turn %s%s%s",
                  dstr (d, "status") ? dstr (d, "status") : "?",
                  cJSON_IsObject (e) ? ": " : "",
                  cJSON_IsObject (e) && dstr (e, "message")
                      ? dstr (e, "message") : "");
    }
    else if (!strcmp (name, "usage")) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive (d, "total_tokens");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive (d,
                                                           "last_total_tokens");
        snprintf (buf, sizeof (buf), "-- tokens: %.0f total, %.0f last",
                  cJSON_IsNumber (t) ? t->valuedouble : 0,
                  cJSON_IsNumber (l) ? l->valuedouble : 0);
    }
    else if (!strcmp (name, "command_started"))
        snprintf (buf, sizeof (buf), "$ %s",
                  dstr (d, "command") ? dstr (d, "command") : "?");
    else if (!strcmp (name, "command_completed")) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive (d, "exit_code");
        if (dstr (d, "output") && *dstr (d, "output"))
            view_lines (v, node, "| ", dstr (d, "output"));
        snprintf (buf, sizeof (buf), "-- %s, exit %.0f",
                  dstr (d, "status") ? dstr (d, "status") : "done",
                  cJSON_IsNumber (x) ? x->valuedouble : -1);
    }
    else if (!strcmp (name, "exec_approval_required"))
        snprintf (buf, sizeof (buf), "!! approval %s: %s (%s) -- codeswarm "
                  "approve %s accept|decline", dstr (d, "approval_id"),
                  dstr (d, "command") ? dstr (d, "command") : "?",
                  dstr (d, "reason") ? dstr (d, "reason") : "",
                  dstr (d, "approval_id"));
    else if (!strcmp (name, "agent_error"))
        snprintf (buf, sizeof (buf), "!! error: %s",
                  dstr (d, "message") ? dstr (d, "message")
                                      : dstr (d, "code") ? dstr (d, "code")
                                                         : "?");
    else if (!strcmp (name, "reasoning"))
        snprintf (buf, sizeof (buf), "(thinking) %.400s",
                  dstr (d, "text") ? dstr (d, "text") : "");
    else if (!strcmp (name, "thread_status") || !strcmp (name, "reasoning_delta")
             || !strcmp (name, "inject_delivered")
             || !strcmp (name, "inject_queued"))
        return;
    else
        snprintf (buf, sizeof (buf), "-- %s", name);
    view_lines (v, node, "", buf);
    fflush (stdout);
}

static void direct_view_cb (const char *name, cJSON *data, void *arg)
{
    view_event (arg, name, data, NULL);
}

static void on_signal (int sig)
{
    client_stop = 1;
}

int cmd_attach (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' },
        { "since", required_argument, NULL, 's' },
        { "turns", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct view v = { .open_node = -1 };
    const char *since = NULL;
    int c;

    optind = 1;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': v.json = true; break;
        case 's': since = optarg; break;
        case 't': v.turns = atoi (optarg); break;
        case 'h':
            printf ("usage: codeswarm attach SWARM [--json] [--since N] "
                    "[--turns N]\n");
            return 0;
        default: return 1;
        }
    }
    if (argc - optind != 1) {
        fprintf (stderr, "usage: codeswarm attach SWARM [--json] [--since N] "
                 "[--turns N]\n");
        return 1;
    }
    v.swarm = argv[optind];
    v.colour = !v.json && isatty (STDOUT_FILENO) && !getenv ("NO_COLOR");
    signal (SIGINT, on_signal);
    signal (SIGTERM, on_signal);
    if (router_open ()) {
        cJSON *p = cJSON_CreateObject (), *o = NULL;
        char *end;
        if (since) {
            unsigned long long n = strtoull (since, &end, 10);
            if (*end || end == since)
                log_msg_exit ("--since: '%s' is not a number", since);
            json_add_u64 (p, "since", n);
        }
        router_send ("subscribe", p);
        while (!client_stop && (o = router_recv (-1))) {
            const char *name = ev_name (o);
            if (cJSON_GetObjectItemCaseSensitive (o, "seq")) {
                if (v.json) {
                    char *s = cJSON_PrintUnformatted (o);
                    size_t len = strlen (s);
                    s = realloc (s, len + 2);
                    s[len] = '\n';
                    s[len + 1] = '\0';
                    view_event (&v, name, ev_data (o), s);
                    free (s);
                }
                else
                    view_event (&v, name, ev_data (o), NULL);
            }
            else if (!strcmp (name, "command_rejected"))
                die_rejected (o);
            cJSON_Delete (o);
            if (v.turns && v.turns_seen >= v.turns)
                break;
        }
        view_close_line (&v);
        free (v.open_item);
        if (!client_stop && !o && !(v.turns && v.turns_seen >= v.turns)) {
            log_msg ("the router went away");
            return 1;
        }
        return 0;
    }
    {
        struct follow *fo = follow_open (v.swarm,
                                         since ? MB_START_BEGIN : MB_START_END,
                                         direct_view_cb, &v);
        double next_scan = time_mono () + 1;
        while (!client_stop && !(v.turns && v.turns_seen >= v.turns)) {
            cs_error_t error;
            if (mb_follower_run (fo->f, 200, &error) < 0)
                log_msg_exit ("%s", error.text);
            if (time_mono () >= next_scan) {
                follow_scan (fo);
                next_scan = time_mono () + 1;
            }
        }
        view_close_line (&v);
        free (v.open_item);
        follow_close (fo);
    }
    return 0;
}
