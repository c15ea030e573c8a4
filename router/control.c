/* control.c - swarm_launch, providers_list and swarm_terminate through the
 * launcher (see control.h)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/path.h"
#include "common/lineio.h"
#include "common/log.h"
#include "mailbox/mailbox.h"
#include "router/control.h"
#include "router/launcher.h"
#include "router/router-private.h"

enum job_kind { JOB_LAUNCH, JOB_PROVIDERS, JOB_CANCEL };

struct job {
    enum job_kind kind;
    control_t *c;
    launcher_t *l;
    int client;
    char *request_id;
    char *swarm_id;             /* launch: once created; cancel: target */
    char *system_prompt;        /* launch */
    char backend[16];           /* launch: "local" or "slurm" once known */
    char job_id[64];            /* launch */
    int nodes;                  /* launch */
    char reqfile[PATH_MAX];     /* launch: the payload for --request */
    struct jbuf out;            /* providers: stdout */
    bool rejected;              /* launch: the launcher refused the payload */
    char rej_code[32];
    char rej_member[128];
    char rej_message[600];
    control_term_t *term;       /* cancel: the terminate it belongs to */
    int pfd_off, pfd_n;         /* its slice of the last control_pollfds */
    struct job *next;
};

struct control_term {
    control_t *c;
    int client;
    char *request_id;
    char *swarm_id;
    int acks;                   /* shutdown records not yet acknowledged */
    bool cancel_running;
    char error[640];            /* the first failure */
    struct control_term *next;
};

struct control {
    struct router *r;
    struct job *jobs;
    struct control_term *terms;
    unsigned counter;
};

static const char *no_router_env[] = { "CODESWARM_NO_ROUTER=1", NULL };

control_t *control_create (struct router *r)
{
    control_t *c = calloc (1, sizeof (*c));
    if (c)
        c->r = r;
    return c;
}

static void job_free (struct job *j)
{
    if (j) {
        launcher_destroy (j->l);
        if (j->reqfile[0])
            (void)unlink (j->reqfile);
        free (j->request_id);
        free (j->swarm_id);
        free (j->system_prompt);
        jbuf_release (&j->out);
        free (j);
    }
}

static void term_free (struct control_term *t)
{
    if (t) {
        free (t->request_id);
        free (t->swarm_id);
        free (t);
    }
}

void control_destroy (control_t *c)
{
    if (c) {
        while (c->jobs) {
            struct job *j = c->jobs;
            c->jobs = j->next;
            job_free (j);
        }
        while (c->terms) {
            struct control_term *t = c->terms;
            c->terms = t->next;
            term_free (t);
        }
        free (c);
    }
}

static cJSON *data_new (const char *request_id)
{
    cJSON *d = cJSON_CreateObject ();
    if (d) {
        if (request_id)
            json_add_str (d, "request_id", request_id);
        else
            cJSON_AddNullToObject (d, "request_id");
    }
    return d;
}

static struct job *job_new (control_t *c, enum job_kind kind, int client,
                            const char *request_id)
{
    struct job *j = calloc (1, sizeof (*j));

    if (!j)
        return NULL;
    j->kind = kind;
    j->c = c;
    j->client = client;
    j->nodes = 0;
    if (request_id && !(j->request_id = strdup (request_id))) {
        free (j);
        return NULL;
    }
    return j;
}

/* Start j's launcher and keep j; else free j and say why in reason. */
static int job_start (control_t *c, struct job *j, const char *const *args,
                      const struct launcher_ops *ops, char *reason,
                      size_t len)
{
    cs_error_t error;

    if (!(j->l = launcher_start (args, no_router_env, ops, j, &error))) {
        snprintf (reason, len, "cannot run the launcher: %s", error.text);
        log_msg ("%s", reason);
        job_free (j);
        return -1;
    }
    j->next = c->jobs;
    c->jobs = j;
    return 0;
}

static void job_start_or_reject (control_t *c, struct job *j,
                                 const char *const *args,
                                 const struct launcher_ops *ops)
{
    char reason[640];
    int client = j->client;
    char *rid = j->request_id ? strdup (j->request_id) : NULL;

    if (job_start (c, j, args, ops, reason, sizeof (reason)) < 0)
        client_reject (c->r, client, rid, RC_E_INTERNAL, reason);
    free (rid);
}

/* ---- swarm_launch -------------------------------------------------------- */

static void launch_progress (struct job *j, const cJSON *p)
{
    static const char *const copy[] = {
        "message", "swarm_id", "job_id", "reason", "hosts", "host",
        "thread_id", "state", NULL,
    };
    const char *stage = NULL, *s;
    const cJSON *v;
    cJSON *d;

    if (json_get_str (p, "stage", &stage, NULL) < 0)
        return;
    if (!strcmp (stage, "rejected")) {
        const char *code = "bad_payload", *member = "", *msg = "";
        (void)json_get_str (p, "code", &code, NULL);
        (void)json_get_str (p, "member", &member, NULL);
        (void)json_get_str (p, "message", &msg, NULL);
        j->rejected = true;
        snprintf (j->rej_code, sizeof (j->rej_code), "%s",
                  !strcmp (code, "unsupported") ? RC_E_UNSUPPORTED
                                                : RC_E_BAD_PAYLOAD);
        snprintf (j->rej_member, sizeof (j->rej_member), "%s", member);
        snprintf (j->rej_message, sizeof (j->rej_message), "%s", msg);
        return;
    }
    if (!strcmp (stage, "created")) {
        if (json_get_str (p, "swarm_id", &s, NULL) == 0) {
            free (j->swarm_id);
            j->swarm_id = strdup (s);
        }
        if (json_get_str (p, "backend", &s, NULL) == 0)
            snprintf (j->backend, sizeof (j->backend), "%s", s);
        if (json_get_str (p, "job_id", &s, NULL) == 0)
            snprintf (j->job_id, sizeof (j->job_id), "%s", s);
    }
    if (!(d = data_new (j->request_id)))
        return;
    json_add_str (d, "stage", stage);
    for (const char *const *k = copy; *k; k++)
        if (json_get_str (p, *k, &s, NULL) == 0)
            json_add_str (d, *k, s);
    if (!cJSON_GetObjectItemCaseSensitive (d, "swarm_id") && j->swarm_id)
        json_add_str (d, "swarm_id", j->swarm_id);
    if ((v = cJSON_GetObjectItemCaseSensitive (p, "node_id"))
        && cJSON_IsNumber (v))
        cJSON_AddNumberToObject (d, "node_id", v->valuedouble);
    if (j->backend[0])
        json_add_str (d, "provider", j->backend);
    router_event (j->c->r, "swarm_launch_progress", d);
}

static void launch_line (launcher_t *l, const char *line, size_t len,
                         void *arg)
{
    struct job *j = arg;
    cJSON *p = json_parse (line, len, NULL);

    (void)l;
    if (!p) {
        log_debug ("launcher: %.*s", (int)len, line);
        return;
    }
    launch_progress (j, p);
    cJSON_Delete (p);
}

static void launch_done (launcher_t *l, const struct spawn_status *st,
                         const char *error, void *arg)
{
    struct job *j = arg;
    control_t *c = j->c;
    char how[64];
    cJSON *d;

    (void)l;
    if (st->exited && st->code == 0 && j->swarm_id) {
        if ((d = data_new (j->request_id))) {
            json_add_str (d, "swarm_id", j->swarm_id);
            json_add_str (d, "job_id", j->job_id[0] ? j->job_id : "local");
            cJSON_AddNumberToObject (d, "node_count", j->nodes);
            json_add_str (d, "provider", j->backend);
            json_add_str (d, "provider_id", j->backend);
            json_add_str (d, "status", "running");
            router_event (c->r, "swarm_launched", d);
        }
        if (j->system_prompt)
            router_inject_text (c->r, j->client, j->request_id, j->swarm_id,
                                j->system_prompt);
        return;
    }
    if (!(d = data_new (j->request_id)))
        return;
    if (j->rejected) {
        json_add_str (d, "code", j->rej_code);
        json_add_str (d, "reason", j->rej_message);
        if (j->rej_member[0]) {
            char m[160];
            snprintf (m, sizeof (m), "payload.%s", j->rej_member);
            json_add_str (d, "member", m);
        }
        else
            cJSON_AddNullToObject (d, "member");
    }
    else {
        spawn_status_str (st, how, sizeof (how));
        /* exit 2: the launcher's own checks refused the options */
        json_add_str (d, "code", st->exited && st->code == 2
                                     ? RC_E_BAD_PAYLOAD
                                     : RC_E_LAUNCH_FAILED);
        if (error && *error)
            json_add_str (d, "reason", error);
        else {
            char reason[128];
            snprintf (reason, sizeof (reason), "the launcher ended (%s)",
                      how);
            json_add_str (d, "reason", reason);
        }
        if (j->swarm_id)
            json_add_str (d, "swarm_id", j->swarm_id);
    }
    client_reply (c->r, j->client, "command_rejected", d);
}

void control_launch (control_t *c, int client, const struct rc_command *cmd)
{
    static const struct launcher_ops ops = { launch_line, launch_done };
    const char *args[] = { "launch", "--progress-json", "--request", NULL,
                           NULL };
    const cJSON *n = cJSON_GetObjectItemCaseSensitive (cmd->payload, "nodes");
    struct job *j;
    cs_error_t error;
    char *text = NULL;
    cJSON *d;
    int fd;

    if (!(j = job_new (c, JOB_LAUNCH, client, cmd->request_id))
        || (cmd->content && !(j->system_prompt = strdup (cmd->content)))) {
        job_free (j);
        client_reject (c->r, client, cmd->request_id, RC_E_INTERNAL,
                       "out of memory");
        return;
    }
    j->nodes = cJSON_IsNumber (n) ? (int)n->valuedouble : 0;
    if (pathf (j->reqfile, sizeof (j->reqfile), "%s/launch-%d-%u.json",
               c->r->dir, (int)getpid (), ++c->counter) < 0) {
        j->reqfile[0] = '\0';
        job_free (j);
        client_reject (c->r, client, cmd->request_id, RC_E_INTERNAL,
                       "the router's directory has too long a path");
        return;
    }
    if ((fd = mb_secure_open (j->reqfile, O_WRONLY | O_CREAT | O_EXCL,
                              &error)) < 0
        || !(text = cJSON_PrintUnformatted (cmd->payload))
        || fd_write_all (fd, text, strlen (text)) < 0) {
        char reason[PATH_MAX + 600];
        snprintf (reason, sizeof (reason), "cannot write '%s': %s",
                  j->reqfile, fd < 0 ? error.text : strerror (errno));
        if (fd < 0)
            j->reqfile[0] = '\0';
        else
            close (fd);
        free (text);
        client_reject (c->r, client, cmd->request_id, RC_E_INTERNAL, reason);
        job_free (j);
        return;
    }
    close (fd);
    free (text);
    args[3] = j->reqfile;
    if ((d = data_new (cmd->request_id))) {
        json_add_str (d, "stage", "queued");
        json_add_str (d, "message", "launch request queued");
        router_event (c->r, "swarm_launch_progress", d);
    }
    job_start_or_reject (c, j, args, &ops);
}

/* ---- providers_list ------------------------------------------------------ */

static void providers_line (launcher_t *l, const char *line, size_t len,
                            void *arg)
{
    struct job *j = arg;
    (void)l;
    (void)jbuf_append (&j->out, line, len);
}

static void providers_done (launcher_t *l, const struct spawn_status *st,
                            const char *error, void *arg)
{
    struct job *j = arg;
    cJSON *list = NULL, *d;

    (void)l;
    if (st->exited && st->code == 0 && j->out.data)
        list = json_parse (j->out.data, j->out.len, NULL);
    if (!cJSON_IsArray (list)) {
        char reason[600];
        snprintf (reason, sizeof (reason), "cannot list the providers: %s",
                  error && *error ? error : "the launcher said nothing");
        cJSON_Delete (list);
        client_reject (j->c->r, j->client, j->request_id, RC_E_INTERNAL,
                       reason);
        return;
    }
    if (!(d = data_new (j->request_id))) {
        cJSON_Delete (list);
        return;
    }
    json_add_item (d, "providers", list);
    client_reply (j->c->r, j->client, "providers_list", d);
}

void control_providers (control_t *c, int client, const struct rc_command *cmd)
{
    static const struct launcher_ops ops = { providers_line, providers_done };
    const char *args[] = { "providers", "--json", NULL };
    struct job *j = job_new (c, JOB_PROVIDERS, client, cmd->request_id);

    if (!j) {
        client_reject (c->r, client, cmd->request_id, RC_E_INTERNAL,
                       "out of memory");
        return;
    }
    job_start_or_reject (c, j, args, &ops);
}

/* ---- swarm_terminate ----------------------------------------------------- */

static void term_finish (control_t *c, struct control_term *t)
{
    struct control_term **pp;
    cJSON *d;

    if (t->acks > 0 || t->cancel_running)
        return;
    if (!c->r->remote)
        swarms_scan (c->r);     /* swarm_list shows the new state at once */
    if (t->error[0])
        client_reject (c->r, t->client, t->request_id, RC_E_UNAVAILABLE,
                       t->error);
    else if ((d = data_new (t->request_id))) {
        json_add_str (d, "swarm_id", t->swarm_id);
        json_add_str (d, "status", "terminated");
        router_event (c->r, "swarm_terminated", d);
    }
    for (pp = &c->terms; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    term_free (t);
}

static void cancel_done (launcher_t *l, const struct spawn_status *st,
                         const char *error, void *arg)
{
    struct job *j = arg;
    struct control_term *t = j->term;

    (void)l;
    if (!t)
        return;
    t->cancel_running = false;
    if (!(st->exited && st->code == 0) && !t->error[0]) {
        char how[64];
        snprintf (t->error, sizeof (t->error), "cannot cancel swarm %s: %s",
                  t->swarm_id, error && *error
                                   ? error
                                   : spawn_status_str (st, how, sizeof (how)));
    }
    j->term = NULL;
    term_finish (j->c, t);
}

control_term_t *control_terminate (control_t *c, int client,
                                   const struct rc_command *cmd,
                                   const char *swarm_id, int records,
                                   bool cancel)
{
    static const struct launcher_ops ops = { NULL, cancel_done };
    struct control_term *t = calloc (1, sizeof (*t));
    struct job *j;

    if (!t || !(t->swarm_id = strdup (swarm_id))
        || (cmd->request_id && !(t->request_id = strdup (cmd->request_id)))) {
        term_free (t);
        client_reject (c->r, client, cmd->request_id, RC_E_INTERNAL,
                       "out of memory");
        return NULL;
    }
    t->c = c;
    t->client = client;
    t->acks = records;
    t->next = c->terms;
    c->terms = t;
    if (cancel && (j = job_new (c, JOB_CANCEL, client, cmd->request_id))) {
        char grace[32];
        const char *args[] = { "cancel", swarm_id, NULL, NULL, NULL };
        if (cmd->has_grace) {
            snprintf (grace, sizeof (grace), "%.3fs", cmd->grace);
            args[2] = "--grace";
            args[3] = grace;
        }
        j->term = t;
        t->cancel_running = true;
        if (job_start (c, j, args, &ops, t->error, sizeof (t->error)) < 0)
            t->cancel_running = false;
    }
    else if (cancel)
        snprintf (t->error, sizeof (t->error), "out of memory");
    if (t->acks == 0 && !t->cancel_running) {
        term_finish (c, t);
        return NULL;
    }
    return t;
}

void control_term_acked (control_t *c, control_term_t *t, const char *error)
{
    if (!t)
        return;
    if (error && !t->error[0])
        snprintf (t->error, sizeof (t->error), "%s", error);
    if (t->acks > 0)
        t->acks--;
    term_finish (c, t);
}

/* ---- poll ---------------------------------------------------------------- */

int control_pollfds (control_t *c, struct pollfd *pfd, int max)
{
    int n = 0;

    for (struct job *j = c->jobs; j; j = j->next) {
        j->pfd_off = n;
        j->pfd_n = launcher_pollfds (j->l, pfd + n, max - n);
        n += j->pfd_n;
    }
    return n;
}

void control_handle (control_t *c, const struct pollfd *pfd, int n)
{
    struct job **pp = &c->jobs;

    for (struct job *j = c->jobs; j; j = j->next)
        if (j->pfd_off + j->pfd_n <= n)
            launcher_handle (j->l, pfd + j->pfd_off, j->pfd_n);
    while (*pp) {
        struct job *j = *pp;
        if (launcher_finished (j->l)) {
            *pp = j->next;
            job_free (j);
        }
        else
            pp = &j->next;
    }
}
