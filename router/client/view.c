/* view.c - attach's output: whole lines per node, each answer once, a
 * node's latest turn on replay (see view.h)
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router/client/client.h"
#include "router/client/view.h"

/* after our headers: term.h defines many short macros */
#include <curses.h>
#include <term.h>

struct held {
    char *name;
    cJSON *data;
    char *raw;
};

struct view_node {
    char *buf;      /* the line being streamed (no prefix, no newline) */
    size_t len, cap;
    char *streamed; /* the item whose deltas were printed */
    double total;   /* the token total printed last */
    bool have_total;
    struct held *held; /* replay: events of the latest turn */
    size_t nheld, capheld;
};

static int view_putc (int c)
{
    return putchar (c);
}

void view_init (struct view *v, const char *swarm, int only_node, bool json)
{
    int err;

    memset (v, 0, sizeof (*v));
    v->swarm = swarm;
    v->only_node = only_node;
    v->json = json;
    v->live_node = -1;
    if (json || !isatty (STDOUT_FILENO) ||
        setupterm (NULL, STDOUT_FILENO, &err) != OK)
        return;
    if (clr_eol && clr_eol != (char *)-1)
        v->eraser = clr_eol;
    if (!getenv ("NO_COLOR") && set_a_foreground &&
        set_a_foreground != (char *)-1 && exit_attribute_mode &&
        exit_attribute_mode != (char *)-1) {
        v->setaf = set_a_foreground;
        v->sgr0 = exit_attribute_mode;
        if (enter_bold_mode && enter_bold_mode != (char *)-1)
            v->bold = enter_bold_mode;
        v->colour = true;
    }
}

static struct view_node *node_get (struct view *v, int k)
{
    if (k < 0)
        return NULL;
    if (k >= v->nnodes) {
        struct view_node *n = realloc (v->node, (size_t)(k + 1) * sizeof (*n));
        if (!n)
            log_msg_exit ("out of memory");
        memset (n + v->nnodes, 0, (size_t)(k + 1 - v->nnodes) * sizeof (*n));
        v->node = n;
        v->nnodes = k + 1;
    }
    return &v->node[k];
}

static void prefix (struct view *v, int k)
{
    if (v->colour) {
        if (k < 0 && v->bold)
            tputs (v->bold, 1, view_putc);
        else if (k >= 0)
            tputs (tiparm (v->setaf, 1 + k % 6), 1, view_putc);
    }
    if (k < 0)
        fputs ("[swarm]", stdout);
    else
        printf ("[n%d]", k);
    if (v->colour)
        tputs (v->sgr0, 1, view_putc);
    putchar (' ');
}

/* Take the partial line off the screen (it stays in its buffer). */
static void erase_live (struct view *v)
{
    if (v->live_node < 0)
        return;
    putchar ('\r');
    tputs (v->eraser, 1, view_putc);
    v->live_node = -1;
}

/* Show node k's partial line, on a terminal. */
static void show_live (struct view *v, int k)
{
    struct view_node *n = node_get (v, k);

    if (!v->eraser || !n || n->len == 0)
        return;
    erase_live (v);
    prefix (v, k);
    fwrite (n->buf, 1, n->len, stdout);
    v->live_node = k;
}

/* One whole line for node k, the partial line of another node kept. */
static void emit (struct view *v, int k, const char *lead, const char *text,
                  size_t len)
{
    int was = v->live_node;

    erase_live (v);
    prefix (v, k);
    printf ("%s%.*s\n", lead, (int)len, text);
    if (was >= 0 && was != k)
        show_live (v, was);
}

/* Every line of text, prefixed. */
static void emit_lines (struct view *v, int k, const char *lead,
                        const char *text)
{
    const char *p = text;

    do {
        const char *nl = strchr (p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen (p);
        if (!nl && len == 0 && p != text)
            break;
        emit (v, k, lead, p, len);
        p = nl ? nl + 1 : p + len;
    } while (*p);
}

/* Node k's partial line as a whole line (its answer ended). */
static void flush_partial (struct view *v, int k)
{
    struct view_node *n = node_get (v, k);

    if (!n || n->len == 0)
        return;
    if (v->live_node == k)
        erase_live (v);
    emit (v, k, "", n->buf, n->len);
    n->len = 0;
}

static void on_delta (struct view *v, int k, const char *item,
                      const char *delta)
{
    struct view_node *n = node_get (v, k);
    size_t dl = strlen (delta);
    char *nl;

    if (!n) {
        emit_lines (v, k, "", delta);
        return;
    }
    if (item && (!n->streamed || strcmp (n->streamed, item))) {
        flush_partial (v, k);
        free (n->streamed);
        n->streamed = strdup (item);
    }
    if (n->len + dl + 1 > n->cap) {
        size_t cap = (n->len + dl + 1) * 2;
        char *b = realloc (n->buf, cap);
        if (!b)
            log_msg_exit ("out of memory");
        n->buf = b;
        n->cap = cap;
    }
    memcpy (n->buf + n->len, delta, dl);
    n->len += dl;
    n->buf[n->len] = '\0';
    while ((nl = memchr (n->buf, '\n', n->len))) {
        size_t line = (size_t)(nl - n->buf);
        if (v->live_node == k)
            erase_live (v);
        emit (v, k, "", n->buf, line);
        memmove (n->buf, nl + 1, n->len - line - 1);
        n->len -= line + 1;
        n->buf[n->len] = '\0';
    }
    if (n->len)
        show_live (v, k);
}

static void hold (struct view *v, int k, const char *name, const cJSON *d,
                  const char *raw)
{
    struct view_node *n = node_get (v, k);
    struct held *h;

    if (!n)
        return; /* swarm events are not part of a node's turn */
    if (!strcmp (name, "turn_started")) {
        for (size_t i = 0; i < n->nheld; i++) {
            free (n->held[i].name);
            cJSON_Delete (n->held[i].data);
            free (n->held[i].raw);
        }
        n->nheld = 0;
    }
    if (n->nheld == n->capheld) {
        size_t cap = n->capheld ? 2 * n->capheld : 16;
        struct held *p = realloc (n->held, cap * sizeof (*p));
        if (!p)
            log_msg_exit ("out of memory");
        n->held = p;
        n->capheld = cap;
    }
    h = &n->held[n->nheld++];
    h->name = strdup (name);
    h->data = cJSON_Duplicate (d, true);
    h->raw = raw ? strdup (raw) : NULL;
}

void view_event (struct view *v, const char *name, const cJSON *d,
                 const char *raw)
{
    const cJSON *nv = cJSON_GetObjectItemCaseSensitive (d, "node_id");
    const char *sw = dstr (d, "swarm_id");
    int k = cJSON_IsNumber (nv) ? (int)nv->valuedouble : -1;
    struct view_node *n;
    char buf[512];

    /* an event without a swarm is the router's own (router_recovered):
     * it concerns every swarm, and every view shows it */
    if (v->swarm && sw && strcmp (sw, v->swarm))
        return;
    if (v->only_node >= 0 && k != v->only_node)
        return;
    if (v->replaying) {
        hold (v, k, name, d, raw);
        return;
    }
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
    n = node_get (v, k);
    if (!strcmp (name, "assistant_delta")) {
        if (dstr (d, "delta"))
            on_delta (v, k, dstr (d, "item_id"), dstr (d, "delta"));
        fflush (stdout);
        return;
    }
    if (!strcmp (name, "assistant")) {
        const char *item = dstr (d, "item_id");
        if (n && item && n->streamed && !strcmp (item, n->streamed))
            flush_partial (v, k); /* the deltas showed it */
        else {
            flush_partial (v, k);
            emit_lines (v, k, "", dstr (d, "text") ? dstr (d, "text") : "");
        }
        fflush (stdout);
        return;
    }
    if (!strcmp (name, "turn_started"))
        snprintf (buf, sizeof (buf), "-- turn started%s%s",
                  dstr (d, "injection_id") ? " for " : "",
                  dstr (d, "injection_id") ? dstr (d, "injection_id") : "");
    else if (!strcmp (name, "turn_complete")) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive (d, "error");
        flush_partial (v, k);
        if (n) {
            free (n->streamed);
            n->streamed = NULL;
        }
        snprintf (buf, sizeof (buf), "-- turn %s%s%s",
                  dstr (d, "status") ? dstr (d, "status") : "?",
                  cJSON_IsObject (e) ? ": " : "",
                  cJSON_IsObject (e) && dstr (e, "message") ? dstr (e, "message")
                                                            : "");
    } else if (!strcmp (name, "usage")) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive (d, "total_tokens");
        const cJSON *l =
            cJSON_GetObjectItemCaseSensitive (d, "last_total_tokens");
        double total = cJSON_IsNumber (t) ? t->valuedouble : 0;
        /* a resumed thread reports the same total again: say it once */
        if (n && n->have_total && n->total == total)
            return;
        if (n) {
            n->total = total;
            n->have_total = true;
        }
        snprintf (buf, sizeof (buf), "-- tokens: %.0f total, %.0f last", total,
                  cJSON_IsNumber (l) ? l->valuedouble : 0);
    } else if (!strcmp (name, "command_started"))
        snprintf (buf, sizeof (buf), "$ %s",
                  dstr (d, "command") ? dstr (d, "command") : "?");
    else if (!strcmp (name, "command_completed")) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive (d, "exit_code");
        if (dstr (d, "output") && *dstr (d, "output"))
            emit_lines (v, k, "| ", dstr (d, "output"));
        snprintf (buf, sizeof (buf), "-- %s, exit %.0f",
                  dstr (d, "status") ? dstr (d, "status") : "done",
                  cJSON_IsNumber (x) ? x->valuedouble : -1);
    } else if (!strcmp (name, "exec_approval_required"))
        snprintf (buf, sizeof (buf),
                  "!! approval %s: %s (%s) -- codeswarm "
                  "approve %s accept|decline",
                  dstr (d, "approval_id"),
                  dstr (d, "command") ? dstr (d, "command") : "?",
                  dstr (d, "reason") ? dstr (d, "reason") : "",
                  dstr (d, "approval_id"));
    else if (!strcmp (name, "agent_error"))
        snprintf (buf, sizeof (buf), "!! error: %s",
                  dstr (d, "message")  ? dstr (d, "message")
                  : dstr (d, "code") ? dstr (d, "code")
                                     : "?");
    else if (!strcmp (name, "reasoning"))
        snprintf (buf, sizeof (buf), "(thinking) %.400s",
                  dstr (d, "text") ? dstr (d, "text") : "");
    else if (!strcmp (name, "thread_status") ||
             !strcmp (name, "reasoning_delta") ||
             !strcmp (name, "inject_delivered") ||
             !strcmp (name, "inject_queued"))
        return;
    else
        snprintf (buf, sizeof (buf), "-- %s", name);
    emit_lines (v, k, "", buf);
    fflush (stdout);
}

void view_replay_start (struct view *v)
{
    v->replaying = true;
}

void view_replay_done (struct view *v)
{
    if (!v->replaying)
        return;
    v->replaying = false;
    for (int k = 0; k < v->nnodes; k++) {
        struct view_node *n = &v->node[k];
        for (size_t i = 0; i < n->nheld; i++) {
            view_event (v, n->held[i].name, n->held[i].data, n->held[i].raw);
            free (n->held[i].name);
            cJSON_Delete (n->held[i].data);
            free (n->held[i].raw);
        }
        n->nheld = 0;
        /* a turn still streaming goes on below: its line stays open */
    }
}

void view_close (struct view *v)
{
    view_replay_done (v);
    for (int k = 0; k < v->nnodes; k++)
        flush_partial (v, k);
    fflush (stdout);
    for (int k = 0; k < v->nnodes; k++) {
        free (v->node[k].buf);
        free (v->node[k].streamed);
        free (v->node[k].held);
    }
    free (v->node);
    v->node = NULL;
    v->nnodes = 0;
}
