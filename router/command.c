/* command.c - parse and validate router commands (see command.h) */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fnv.h"
#include "router/command.h"

/* The members of the envelope, and of each command's payload; anything
 * else is refused as unknown_member.  Upstream's clients send members we
 * do not need (the OpenClaw client's "timestamp", approve_execution's
 * job_id, node_id and injection_id): they are known, type-checked and
 * otherwise ignored.
 */
static const char *const envelope_members[] = {
    "protocol", "type", "command", "request_id", "payload", "timestamp", NULL
};

#define M(...) (const char *const[]){ __VA_ARGS__, NULL }

static const struct {
    const char *name;
    enum rc_cmd cmd;
    const char *const *members;
} commands[] = {
    { "hello", RC_HELLO, M ("subscribe", "since") },
    { "inject", RC_INJECT, M ("swarm_id", "nodes", "content", "prompt",
                              "mode", "idempotency_key", "cwd",
                              "new_thread", "retry_on_loss") },
    { "interrupt", RC_INTERRUPT, M ("swarm_id", "nodes") },
    { "approve_execution", RC_APPROVE, M ("approval_id", "call_id",
                                          "decision", "approved",
                                          "swarm_id", "job_id", "node_id",
                                          "injection_id") },
    { "swarm_list", RC_SWARM_LIST, M (NULL) },
    { "swarm_status", RC_SWARM_STATUS, M ("swarm_id") },
    { "approvals_list", RC_APPROVALS_LIST, M ("swarm_id") },
    { "subscribe", RC_SUBSCRIBE, M ("since") },
    { "swarm_terminate", RC_SWARM_TERMINATE, M ("swarm_id",
                                                "terminate_params") },
    /* the launcher checks swarm_launch's members (it knows the backends) */
    { "swarm_launch", RC_SWARM_LAUNCH, NULL },
    { "providers_list", RC_PROVIDERS_LIST, M (NULL) },
    { "queue_list", RC_QUEUE_LIST, M (NULL) },
    { "publish", RC_PUBLISH, M ("swarm_id", "node_id", "event", "data") },
};

/* upstream's commands that have no meaning here: a typed "unsupported" */
static const struct {
    const char *name;
    const char *why;
} unsupported[] = {
    { "enqueue_inject", "there is no inter-swarm queue: inject into the "
      "target swarm's nodes" },
    { "project_create", "there are no orchestrated projects: see "
      "\"codeswarm run\" for task graphs" },
    { "project_list", "there are no orchestrated projects" },
    { "project_plan", "there are no orchestrated projects" },
    { "project_start", "there are no orchestrated projects" },
    { "project_resume", "there are no orchestrated projects" },
    { "project_resume_preview", "there are no orchestrated projects" },
};

#undef M

static int reject_m (struct rc_reject *rej, const char *code,
                     const char *member, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static int reject_m (struct rc_reject *rej, const char *code,
                     const char *member, const char *fmt, ...)
{
    if (rej) {
        va_list ap;
        rej->code = code;
        snprintf (rej->member, sizeof (rej->member), "%s",
                  member ? member : "");
        va_start (ap, fmt);
        vsnprintf (rej->reason, sizeof (rej->reason), fmt, ap);
        va_end (ap);
    }
    errno = EINVAL;
    return -1;
}

#define reject(rej, code, ...) reject_m ((rej), (code), NULL, __VA_ARGS__)

/* A payload member's path for rejections: "payload.<key>". */
static const char *pm (const char *key, char *buf, size_t len)
{
    snprintf (buf, len, "payload.%s", key);
    return buf;
}

/* Refuse a member of o that is not in allowed (NULL-terminated). */
static int check_members (const cJSON *o, const char *const *allowed,
                          const char *prefix, struct rc_reject *rej)
{
    const cJSON *m;
    if (!allowed)
        return 0;               /* the command checks them itself */
    cJSON_ArrayForEach (m, o) {
        const char *const *a;
        for (a = allowed; *a; a++)
            if (m->string && !strcmp (m->string, *a))
                break;
        if (!*a) {
            char path[96];
            snprintf (path, sizeof (path), "%s%.64s", prefix,
                      m->string ? m->string : "");
            return reject_m (rej, RC_E_UNKNOWN_MEMBER, path,
                             "unknown member \"%s\"", path);
        }
    }
    return 0;
}

bool rc_decision_valid (const char *d)
{
    return d && (!strcmp (d, "accept") || !strcmp (d, "acceptForSession")
                 || !strcmp (d, "decline") || !strcmp (d, "cancel"));
}

/* ---- node selections -------------------------------------------------- */

void rc_nodes_release (struct rc_nodes *nodes)
{
    if (nodes) {
        free (nodes->list);
        nodes->list = NULL;
        nodes->count = 0;
        nodes->all = false;
    }
}

/* Add [lo, hi] to a bitmap of max bits. */
static void mark (unsigned char *bits, int lo, int hi)
{
    for (int i = lo; i <= hi; i++)
        bits[i / 8] |= (unsigned char)(1u << (i % 8));
}

static int parse_index (const char **sp, int max, int *val, cs_error_t *errp)
{
    const char *s = *sp;
    long v = 0;
    if (!isdigit ((unsigned char)*s))
        return errprintf (errp, "expected a node index at \"%.20s\"", s);
    while (isdigit ((unsigned char)*s)) {
        v = v * 10 + (*s - '0');
        if (v >= max)
            return errprintf (errp, "node index %ld... is out of range "
                              "(the swarm has %d nodes)", v, max);
        s++;
    }
    *val = (int)v;
    *sp = s;
    return 0;
}

static int parse_ranges (const char *s, int max, unsigned char *bits,
                         cs_error_t *errp)
{
    const char *p = s;
    while (isspace ((unsigned char)*p))
        p++;
    if (!*p)
        return errprintf (errp, "empty node list");
    for (;;) {
        int lo, hi;
        while (isspace ((unsigned char)*p))
            p++;
        if (parse_index (&p, max, &lo, errp) < 0)
            return -1;
        hi = lo;
        while (isspace ((unsigned char)*p))
            p++;
        if (*p == '-') {
            p++;
            while (isspace ((unsigned char)*p))
                p++;
            if (parse_index (&p, max, &hi, errp) < 0)
                return -1;
            if (hi < lo)
                return errprintf (errp, "range %d-%d is backwards", lo, hi);
        }
        mark (bits, lo, hi);
        while (isspace ((unsigned char)*p))
            p++;
        if (!*p)
            return 0;
        if (*p != ',')
            return errprintf (errp, "unexpected \"%.10s\" in node list", p);
        p++;
    }
}

static int bits_to_list (const unsigned char *bits, int max,
                         struct rc_nodes *nodes)
{
    size_t n = 0, i = 0;
    for (int k = 0; k < max; k++)
        if (bits[k / 8] & (1u << (k % 8)))
            n++;
    if (!(nodes->list = malloc ((n ? n : 1) * sizeof (int))))
        return -1;
    for (int k = 0; k < max; k++)
        if (bits[k / 8] & (1u << (k % 8)))
            nodes->list[i++] = k;
    nodes->count = n;
    return 0;
}

int rc_nodes_parse_str (const char *s, int max, struct rc_nodes *nodes,
                        cs_error_t *errp)
{
    unsigned char *bits;
    memset (nodes, 0, sizeof (*nodes));
    if (!s) {
        errno = EINVAL;
        return errprintf (errp, "no node list");
    }
    if (!strcmp (s, "all")) {
        nodes->all = true;
        return 0;
    }
    if (max <= 0) {
        errno = EINVAL;
        return errprintf (errp, "node index out of range (no nodes)");
    }
    if (!(bits = calloc ((size_t)max / 8 + 1, 1)))
        return errprintf (errp, "out of memory");
    if (parse_ranges (s, max, bits, errp) < 0) {
        free (bits);
        errno = EINVAL;
        return -1;
    }
    if (bits_to_list (bits, max, nodes) < 0) {
        free (bits);
        return errprintf (errp, "out of memory");
    }
    free (bits);
    return 0;
}

int rc_nodes_parse (const cJSON *v, int max, struct rc_nodes *nodes,
                    cs_error_t *errp)
{
    unsigned char *bits;
    const cJSON *e;

    memset (nodes, 0, sizeof (*nodes));
    if (cJSON_IsString (v))
        return rc_nodes_parse_str (v->valuestring, max, nodes, errp);
    if (!cJSON_IsNumber (v) && !cJSON_IsArray (v)) {
        errno = EINVAL;
        return errprintf (errp, "\"nodes\" must be \"all\", an index, a list "
                          "or a string like \"0,2-5\"");
    }
    if (cJSON_IsArray (v) && cJSON_GetArraySize (v) == 0) {
        errno = EINVAL;
        return errprintf (errp, "empty node list");
    }
    if (max <= 0) {
        errno = EINVAL;
        return errprintf (errp, "node index out of range (no nodes)");
    }
    if (!(bits = calloc ((size_t)max / 8 + 1, 1)))
        return errprintf (errp, "out of memory");
    for (e = cJSON_IsArray (v) ? v->child : v; e;
         e = cJSON_IsArray (v) ? e->next : NULL) {
        if (cJSON_IsNumber (e)) {
            double d = e->valuedouble;
            if (!(d >= 0) || d != (double)(long)d) {
                errprintf (errp, "node index %g is not a whole number >= 0",
                           d);
                goto inval;
            }
            if (d >= max) {
                errprintf (errp, "node index %ld is out of range (the swarm "
                           "has %d nodes)", (long)d, max);
                goto inval;
            }
            mark (bits, (int)d, (int)d);
        }
        else if (cJSON_IsString (e)) {
            if (parse_ranges (e->valuestring, max, bits, errp) < 0)
                goto inval;
        }
        else {
            errprintf (errp, "node list entries must be integers or strings");
            goto inval;
        }
    }
    if (bits_to_list (bits, max, nodes) < 0) {
        free (bits);
        return errprintf (errp, "out of memory");
    }
    free (bits);
    return 0;
inval:
    free (bits);
    errno = EINVAL;
    return -1;
}

/* ---- commands ----------------------------------------------------------- */

void rc_release (struct rc_command *cmd)
{
    if (cmd) {
        free (cmd->request_id);
        free (cmd->swarm_id);
        rc_nodes_release (&cmd->nodes);
        free (cmd->content);
        free (cmd->idempotency_key);
        free (cmd->cwd);
        free (cmd->event);
        free (cmd->data);
        free (cmd->approval_id);
        free (cmd->decision);
        cJSON_Delete (cmd->amendment);
        cJSON_Delete (cmd->payload);
        memset (cmd, 0, sizeof (*cmd));
    }
}

/* Optional string member: 0 and *out (strdup or NULL), -1 on wrong type. */
static int opt_str (const cJSON *o, const char *key, char **out,
                    struct rc_reject *rej)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
    *out = NULL;
    if (!v || cJSON_IsNull (v))
        return 0;
    if (!cJSON_IsString (v)) {
        char b[96];
        return reject_m (rej, RC_E_BAD_PAYLOAD, pm (key, b, sizeof (b)),
                         "\"%s\" must be a string", key);
    }
    if (!(*out = strdup (v->valuestring)))
        return reject (rej, RC_E_INTERNAL, "out of memory");
    return 0;
}

static int req_str (const cJSON *o, const char *key, char **out,
                    struct rc_reject *rej)
{
    if (opt_str (o, key, out, rej) < 0)
        return -1;
    if (!*out || !**out) {
        char b[96];
        return reject_m (rej, RC_E_BAD_PAYLOAD, pm (key, b, sizeof (b)),
                         "missing \"%s\"", key);
    }
    return 0;
}

static bool swarm_id_valid (const char *s)
{
    size_t n = strlen (s);
    if (n == 0 || n > 64 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum ((unsigned char)s[i]) && !strchr ("._-", s[i]))
            return false;
    return true;
}

static int get_swarm (const cJSON *p, bool required, struct rc_command *cmd,
                      struct rc_reject *rej)
{
    if ((required ? req_str (p, "swarm_id", &cmd->swarm_id, rej)
                  : opt_str (p, "swarm_id", &cmd->swarm_id, rej)) < 0)
        return -1;
    if (cmd->swarm_id && !swarm_id_valid (cmd->swarm_id))
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.swarm_id",
                         "\"swarm_id\" must match [A-Za-z0-9._-]{1,64}");
    return 0;
}

static int get_nodes (const cJSON *p, struct rc_command *cmd,
                      struct rc_reject *rej)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (p, "nodes");
    cs_error_t error;
    if (!v) {
        cmd->nodes.all = true;
        return 0;
    }
    /* the real bound is the swarm's node count, checked by the router */
    if (rc_nodes_parse (v, 100000, &cmd->nodes, &error) < 0)
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.nodes", "%s",
                         error.text);
    return 0;
}

static int parse_inject (const cJSON *p, struct rc_command *cmd,
                         struct rc_reject *rej)
{
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive (p, "mode");
    if (get_swarm (p, true, cmd, rej) < 0 || get_nodes (p, cmd, rej) < 0)
        return -1;
    if (opt_str (p, "content", &cmd->content, rej) < 0)
        return -1;
    if (!cmd->content) {
        /* upstream clients may say "prompt" */
        if (opt_str (p, "prompt", &cmd->content, rej) < 0)
            return -1;
    }
    if (!cmd->content || !*cmd->content)
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.content",
                         "missing \"content\"");
    if (strlen (cmd->content) > RC_MAX_CONTENT)
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.content",
                         "\"content\" is longer than %d bytes",
                         RC_MAX_CONTENT);
    if (mode && !cJSON_IsNull (mode)) {
        if (!cJSON_IsString (mode)
            || (strcmp (mode->valuestring, "queue")
                && strcmp (mode->valuestring, "steer")))
            return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.mode",
                             "\"mode\" must be \"queue\" or \"steer\"");
        cmd->steer = !strcmp (mode->valuestring, "steer");
    }
    if (opt_str (p, "idempotency_key", &cmd->idempotency_key, rej) < 0)
        return -1;
    if (opt_str (p, "cwd", &cmd->cwd, rej) < 0)
        return -1;
    if (cmd->cwd && cmd->cwd[0] != '/')
        return reject (rej, RC_E_BAD_PAYLOAD,
                       "\"cwd\" must be an absolute path");
    {
        const cJSON *nt = cJSON_GetObjectItemCaseSensitive (p, "new_thread");
        if (nt && !cJSON_IsNull (nt) && !cJSON_IsBool (nt))
            return reject (rej, RC_E_BAD_PAYLOAD,
                           "\"new_thread\" must be true or false");
        cmd->new_thread = cJSON_IsTrue (nt);
        if (cmd->new_thread && cmd->steer)
            return reject (rej, RC_E_BAD_PAYLOAD,
                           "\"new_thread\" needs mode \"queue\"");
    }
    {
        const cJSON *rl = cJSON_GetObjectItemCaseSensitive (p,
                                                            "retry_on_loss");
        if (rl && !cJSON_IsNull (rl) && !cJSON_IsBool (rl))
            return reject (rej, RC_E_BAD_PAYLOAD,
                           "\"retry_on_loss\" must be true or false");
        cmd->retry_on_loss = cJSON_IsTrue (rl);
    }
    if (cmd->idempotency_key
        && (!*cmd->idempotency_key || strlen (cmd->idempotency_key) > 128))
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.idempotency_key",
                         "\"idempotency_key\" must be 1 to 128 "
                         "characters");
    return 0;
}

/* One of the two amendment forms: its array of strings, or NULL. */
static const cJSON *amendment_of (const cJSON *d, const char *outer,
                                  const char *inner, struct rc_reject *rej,
                                  bool *bad)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive (d, outer);
    const cJSON *a, *e;
    char path[96];

    if (!o)
        return NULL;
    a = cJSON_GetObjectItemCaseSensitive (o, inner);
    snprintf (path, sizeof (path), "payload.decision.%s.%s", outer, inner);
    *bad = true;
    if (!cJSON_IsObject (o) || !cJSON_IsArray (a) || !a->child) {
        reject_m (rej, RC_E_BAD_PAYLOAD, path, "\"%s\" must be a non-empty "
                  "list of strings", path + 8);
        return NULL;
    }
    cJSON_ArrayForEach (e, a) {
        if (!cJSON_IsString (e)) {
            reject_m (rej, RC_E_BAD_PAYLOAD, path, "\"%s\" must be a "
                      "non-empty list of strings", path + 8);
            return NULL;
        }
    }
    *bad = false;
    return a;
}

int rc_decision_map (const cJSON *d, const char **name, cJSON **amendment,
                     struct rc_reject *rej)
{
    static const char *const map[][2] = {
        { "accept", "accept" },
        { "acceptForSession", "acceptForSession" },
        { "decline", "decline" },
        { "cancel", "cancel" },
        { "approved", "accept" },
        { "approved_for_session", "acceptForSession" },
        { "denied", "decline" },
        { "abort", "cancel" },
    };
    const cJSON *a;
    bool bad = false;

    *name = NULL;
    *amendment = NULL;
    if (cJSON_IsString (d)) {
        for (size_t i = 0; i < sizeof (map) / sizeof (map[0]); i++) {
            if (!strcmp (d->valuestring, map[i][0])) {
                *name = map[i][1];
                return 0;
            }
        }
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.decision",
                         "unknown decision \"%.64s\" (accept, "
                         "acceptForSession, decline, cancel, approved, "
                         "approved_for_session, denied, abort or an "
                         "execpolicy amendment)", d->valuestring);
    }
    if (!cJSON_IsObject (d))
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.decision",
                         "\"decision\" must be a string or an amendment "
                         "object");
    if (d->child && !d->child->next && d->child->string
        && (!strcmp (d->child->string, "applyNetworkPolicyAmendment")
            || !strcmp (d->child->string, "network_policy_amendment")))
        return reject_m (rej, RC_E_UNSUPPORTED_DECISION, "payload.decision",
                         "a network policy amendment cannot be carried to "
                         "the worker; answer accept, decline or cancel");
    if (!d->child || d->child->next)
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.decision",
                         "an amendment decision has exactly one member");
    a = amendment_of (d, "acceptWithExecpolicyAmendment",
                      "execpolicy_amendment", rej, &bad);
    if (!a && !bad)
        a = amendment_of (d, "approved_execpolicy_amendment",
                          "proposed_execpolicy_amendment", rej, &bad);
    if (bad)
        return -1;
    if (!a) {
        char path[96];
        snprintf (path, sizeof (path), "payload.decision.%.64s",
                  d->child->string ? d->child->string : "");
        return reject_m (rej, RC_E_UNSUPPORTED_DECISION, path,
                         "unknown decision object \"%s\"", path + 8);
    }
    if (!(*amendment = cJSON_Duplicate (a, true)))
        return reject (rej, RC_E_INTERNAL, "out of memory");
    return 0;
}

/* publish: an event of a client's own (codeswarm run's task events) */
static int parse_publish (const cJSON *p, struct rc_command *cmd,
                          struct rc_reject *rej)
{
    const cJSON *node = cJSON_GetObjectItemCaseSensitive (p, "node_id");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive (p, "data");

    if (get_swarm (p, true, cmd, rej) < 0
        || opt_str (p, "event", &cmd->event, rej) < 0)
        return -1;
    if (!cmd->event)
        return reject (rej, RC_E_BAD_PAYLOAD, "missing \"event\"");
    if (strcmp (cmd->event, "task_started") != 0
        && strcmp (cmd->event, "task_complete") != 0)
        return reject (rej, RC_E_BAD_PAYLOAD, "\"event\" must be "
                       "\"task_started\" or \"task_complete\"");
    cmd->node_id = -1;
    if (node && !cJSON_IsNull (node)) {
        if (!cJSON_IsNumber (node) || node->valuedouble < 0
            || node->valuedouble > 1e6
            || node->valuedouble != (double)(int)node->valuedouble)
            return reject (rej, RC_E_BAD_PAYLOAD,
                           "\"node_id\" must be a whole number >= 0");
        cmd->node_id = node->valueint;
    }
    if (data && !cJSON_IsObject (data))
        return reject (rej, RC_E_BAD_PAYLOAD, "\"data\" must be an object");
    if (data && !(cmd->data = cJSON_PrintUnformatted (data)))
        return reject (rej, RC_E_INTERNAL, "out of memory");
    return 0;
}

static int parse_approve (const cJSON *p, struct rc_command *cmd,
                          struct rc_reject *rej)
{
    const cJSON *approved = cJSON_GetObjectItemCaseSensitive (p, "approved");
    const cJSON *decision = cJSON_GetObjectItemCaseSensitive (p, "decision");
    const cJSON *v;
    const char *name = NULL;

    if (get_swarm (p, false, cmd, rej) < 0)
        return -1;
    if (opt_str (p, "approval_id", &cmd->approval_id, rej) < 0)
        return -1;
    if (!cmd->approval_id && opt_str (p, "call_id", &cmd->approval_id, rej) < 0)
        return -1;
    if (!cmd->approval_id || !*cmd->approval_id)
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.approval_id",
                         "missing \"approval_id\" (or \"call_id\")");
    /* upstream's routing members: checked, not needed */
    v = cJSON_GetObjectItemCaseSensitive (p, "job_id");
    if (v && !cJSON_IsNull (v) && !cJSON_IsString (v) && !cJSON_IsNumber (v))
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.job_id",
                         "\"job_id\" must be a string");
    v = cJSON_GetObjectItemCaseSensitive (p, "node_id");
    if (v && !cJSON_IsNull (v)
        && (!cJSON_IsNumber (v) || v->valuedouble < 0
            || v->valuedouble != (double)(long)v->valuedouble))
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.node_id",
                         "\"node_id\" must be a whole number >= 0");
    v = cJSON_GetObjectItemCaseSensitive (p, "injection_id");
    if (v && !cJSON_IsNull (v) && !cJSON_IsString (v))
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.injection_id",
                         "\"injection_id\" must be a string");
    if (approved && !cJSON_IsNull (approved) && !cJSON_IsBool (approved))
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.approved",
                         "\"approved\" must be a boolean");
    if (decision && !cJSON_IsNull (decision)) {
        /* the decision says more than approved: it wins, as upstream */
        if (rc_decision_map (decision, &name, &cmd->amendment, rej) < 0)
            return -1;
    }
    else if (cJSON_IsBool (approved))
        name = cJSON_IsTrue (approved) ? "accept" : "decline";
    else
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.decision",
                         "missing \"decision\" (or \"approved\")");
    if (name && !(cmd->decision = strdup (name)))
        return reject (rej, RC_E_INTERNAL, "out of memory");
    return 0;
}

static int parse_since (const cJSON *p, struct rc_command *cmd,
                        struct rc_reject *rej)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (p, "since");
    if (!v || cJSON_IsNull (v))
        return 0;
    if (!cJSON_IsNumber (v) || !(v->valuedouble >= 0)
        || v->valuedouble >= 9007199254740992.0
        || v->valuedouble != (double)(uint64_t)v->valuedouble)
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.since",
                         "\"since\" must be a whole number >= 0");
    cmd->has_since = true;
    cmd->since = (uint64_t)v->valuedouble;
    return 0;
}

/* terminate_params: "force" (a cancel is what we do anyway), "grace"
 * (seconds between SIGTERM and SIGKILL of the jobs or processes), and
 * upstream's "download_workspaces_on_shutdown" (false only: the
 * workspaces stay in the swarm directory) */
static int parse_terminate (const cJSON *p, struct rc_command *cmd,
                            struct rc_reject *rej)
{
    const cJSON *tp = cJSON_GetObjectItemCaseSensitive (p, "terminate_params");
    const cJSON *v;
    char m[160];

    if (!tp || cJSON_IsNull (tp))
        return 0;
    if (!cJSON_IsObject (tp))
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.terminate_params",
                         "\"terminate_params\" must be an object");
    cJSON_ArrayForEach (v, tp) {
        snprintf (m, sizeof (m), "payload.terminate_params.%.64s", v->string);
        if (!strcmp (v->string, "force")) {
            if (!cJSON_IsBool (v))
                return reject_m (rej, RC_E_BAD_PAYLOAD, m, "\"terminate_params."
                               "force\" must be a boolean");
            cmd->force = cJSON_IsTrue (v);
        }
        else if (!strcmp (v->string, "grace")) {
            if (!cJSON_IsNumber (v) || !(v->valuedouble >= 0)
                || v->valuedouble > 86400)
                return reject_m (rej, RC_E_BAD_PAYLOAD, m, "\"terminate_params."
                               "grace\" must be seconds (0 to 86400)");
            cmd->grace = v->valuedouble;
            cmd->has_grace = true;
        }
        else if (!strcmp (v->string, "download_workspaces_on_shutdown")) {
            if (!cJSON_IsBool (v))
                return reject_m (rej, RC_E_BAD_PAYLOAD, m, "\"terminate_params."
                               "download_workspaces_on_shutdown\" must be a "
                               "boolean");
            if (cJSON_IsTrue (v))
                return reject_m (rej, RC_E_UNSUPPORTED, m, "\"terminate_params."
                               "download_workspaces_on_shutdown\": no "
                               "archives are made; the workspaces stay in "
                               "<home>/swarms/<id>/work");
        }
        else
            return reject_m (rej, RC_E_BAD_PAYLOAD, m, "\"terminate_params."
                           "%.64s\": unknown member", v->string);
    }
    return 0;
}

/* swarm_launch: the shape here, the members in the launcher (it knows the
 * backends); system_prompt is ours to inject */
static int parse_launch (const cJSON *p, struct rc_command *cmd,
                         struct rc_reject *rej)
{
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive (p, "system_prompt");

    if (sp && !cJSON_IsNull (sp)) {
        if (!cJSON_IsString (sp))
            return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.system_prompt",
                             "\"system_prompt\" must be a string");
        if (strlen (sp->valuestring) > RC_MAX_CONTENT)
            return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.system_prompt",
                             "\"system_prompt\" is longer than %d bytes",
                             RC_MAX_CONTENT);
        if (*sp->valuestring && !(cmd->content = strdup (sp->valuestring)))
            return reject (rej, RC_E_INTERNAL, "out of memory");
    }
    if (!cJSON_GetObjectItemCaseSensitive (p, "nodes"))
        return reject_m (rej, RC_E_BAD_PAYLOAD, "payload.nodes", "\"nodes\": "
                         "missing (the number of nodes, a positive integer)");
    if (!(cmd->payload = cJSON_Duplicate (p, true)))
        return reject (rej, RC_E_INTERNAL, "out of memory");
    return 0;
}

/* The offset of a JSON escape of U+0000 ("\u0000") in line, or -1: a NUL
 * would silently cut every C string made from the value.  In valid JSON a
 * backslash appears only in strings, where an odd run of them escapes the
 * character after the run.
 */
static ssize_t nul_escape (const char *line, size_t len)
{
    for (size_t i = 0; i + 6 <= len; i++) {
        size_t run = 0;
        if (line[i] != '\\')
            continue;
        while (i + run < len && line[i + run] == '\\')
            run++;
        i += run - 1;
        if (run % 2 == 1 && i + 6 <= len && line[i + 1] == 'u'
            && !memcmp (line + i + 2, "0000", 4))
            return (ssize_t)i;
    }
    return -1;
}

int rc_parse (const char *line, size_t len, struct rc_command *cmd,
              struct rc_reject *rej)
{
    const char *end = NULL;
    const cJSON *v, *payload;
    cJSON *o;
    size_t i;
    int rc = -1;

    memset (cmd, 0, sizeof (*cmd));
    if (rej) {
        rej->code = RC_E_INTERNAL;
        rej->reason[0] = '\0';
        rej->member[0] = '\0';
    }
    if (!line)
        return reject (rej, RC_E_BAD_JSON, "empty command");
    if (len > RC_MAX_LINE)
        return reject (rej, RC_E_TOO_LONG,
                       "command of %zu bytes is over the limit of %d", len,
                       RC_MAX_LINE);
    if (memchr (line, '\0', len))
        return reject (rej, RC_E_BAD_JSON, "a NUL byte at byte %zu",
                       (size_t)((const char *)memchr (line, '\0', len) - line));
    o = cJSON_ParseWithLengthOpts (line, len, &end, false);
    if (!o)
        return reject (rej, RC_E_BAD_JSON, "not valid JSON near byte %zu",
                       end ? (size_t)(end - line) : (size_t)0);
    {
        ssize_t nul = nul_escape (line, len);
        if (nul >= 0) {
            reject (rej, RC_E_BAD_PAYLOAD, "a string holds a NUL character "
                    "(\\u0000) at byte %zd", nul);
            goto done;
        }
    }
    if (end) {
        while ((size_t)(end - line) < len && isspace ((unsigned char)*end))
            end++;
        if ((size_t)(end - line) < len) {
            reject (rej, RC_E_BAD_JSON, "trailing data at byte %zu",
                    (size_t)(end - line));
            goto done;
        }
    }
    if (!cJSON_IsObject (o)) {
        reject (rej, RC_E_BAD_ENVELOPE, "a command must be a JSON object");
        goto done;
    }
    v = cJSON_GetObjectItemCaseSensitive (o, "request_id");
    if (cJSON_IsString (v)) {
        if (!(cmd->request_id = strdup (v->valuestring))) {
            reject (rej, RC_E_INTERNAL, "out of memory");
            goto done;
        }
    }
    else if (cJSON_IsNumber (v)) {
        char buf[64];
        snprintf (buf, sizeof (buf), "%.17g", v->valuedouble);
        cmd->request_id = strdup (buf);
    }
    else if (v && !cJSON_IsNull (v)) {
        reject_m (rej, RC_E_BAD_ENVELOPE, "request_id",
                  "\"request_id\" must be a string");
        goto done;
    }
    v = cJSON_GetObjectItemCaseSensitive (o, "protocol");
    if (!cJSON_IsString (v) || strcmp (v->valuestring, RC_PROTOCOL)) {
        reject_m (rej, RC_E_BAD_ENVELOPE, "protocol",
                  "\"protocol\" must be \"%s\"", RC_PROTOCOL);
        goto done;
    }
    v = cJSON_GetObjectItemCaseSensitive (o, "type");
    if (!cJSON_IsString (v) || strcmp (v->valuestring, "command")) {
        reject_m (rej, RC_E_BAD_ENVELOPE, "type",
                  "\"type\" must be \"command\"");
        goto done;
    }
    v = cJSON_GetObjectItemCaseSensitive (o, "command");
    if (!cJSON_IsString (v)) {
        reject_m (rej, RC_E_BAD_ENVELOPE, "command",
                  "missing \"command\"");
        goto done;
    }
    for (i = 0; i < sizeof (commands) / sizeof (commands[0]); i++)
        if (!strcmp (v->valuestring, commands[i].name))
            break;
    if (i == sizeof (commands) / sizeof (commands[0])) {
        for (i = 0; i < sizeof (unsupported) / sizeof (unsupported[0]); i++)
            if (!strcmp (v->valuestring, unsupported[i].name)) {
                reject_m (rej, RC_E_UNSUPPORTED, "command", "\"%s\" is not "
                          "supported: %s", unsupported[i].name,
                          unsupported[i].why);
                goto done;
            }
        reject_m (rej, RC_E_UNKNOWN_COMMAND, "command",
                  "unknown command \"%.64s\"", v->valuestring);
        goto done;
    }
    cmd->cmd = commands[i].cmd;
    cmd->name = commands[i].name;
    payload = cJSON_GetObjectItemCaseSensitive (o, "payload");
    if (payload && !cJSON_IsNull (payload) && !cJSON_IsObject (payload)) {
        reject_m (rej, RC_E_BAD_ENVELOPE, "payload",
                  "\"payload\" must be an object");
        goto done;
    }
    if (!cJSON_IsObject (payload))
        payload = NULL;
    v = cJSON_GetObjectItemCaseSensitive (o, "timestamp");
    if (v && !cJSON_IsNull (v) && !cJSON_IsString (v)) {
        reject_m (rej, RC_E_BAD_ENVELOPE, "timestamp",
                  "\"timestamp\" must be a string");
        goto done;
    }
    if (check_members (o, envelope_members, "", rej) < 0
        || (payload && check_members (payload, commands[i].members,
                                      "payload.", rej) < 0))
        goto done;

    switch (cmd->cmd) {
    case RC_HELLO:
        v = payload ? cJSON_GetObjectItemCaseSensitive (payload, "subscribe")
                    : NULL;
        if (v && !cJSON_IsBool (v)) {
            reject_m (rej, RC_E_BAD_PAYLOAD, "payload.subscribe",
                      "\"subscribe\" must be a boolean");
            goto done;
        }
        cmd->subscribe = !v || cJSON_IsTrue (v);
        if (payload && parse_since (payload, cmd, rej) < 0)
            goto done;
        break;
    case RC_INJECT:
        if (!payload) {
            reject_m (rej, RC_E_BAD_PAYLOAD, "payload",
                      "missing \"payload\"");
            goto done;
        }
        if (parse_inject (payload, cmd, rej) < 0)
            goto done;
        break;
    case RC_INTERRUPT:
        if (!payload) {
            reject_m (rej, RC_E_BAD_PAYLOAD, "payload",
                      "missing \"payload\"");
            goto done;
        }
        if (get_swarm (payload, true, cmd, rej) < 0
            || get_nodes (payload, cmd, rej) < 0)
            goto done;
        break;
    case RC_APPROVE:
        if (!payload) {
            reject_m (rej, RC_E_BAD_PAYLOAD, "payload",
                      "missing \"payload\"");
            goto done;
        }
        if (parse_approve (payload, cmd, rej) < 0)
            goto done;
        break;
    case RC_SWARM_STATUS:
    case RC_SWARM_TERMINATE:
        if (!payload) {
            reject_m (rej, RC_E_BAD_PAYLOAD, "payload",
                      "missing \"payload\"");
            goto done;
        }
        if (get_swarm (payload, true, cmd, rej) < 0)
            goto done;
        if (cmd->cmd == RC_SWARM_TERMINATE
            && parse_terminate (payload, cmd, rej) < 0)
            goto done;
        break;
    case RC_SWARM_LAUNCH:
        if (!payload) {
            reject (rej, RC_E_BAD_PAYLOAD, "missing \"payload\"");
            goto done;
        }
        if (parse_launch (payload, cmd, rej) < 0)
            goto done;
        break;
    case RC_PROVIDERS_LIST:
    case RC_QUEUE_LIST:
        break;
    case RC_APPROVALS_LIST:
        if (payload && get_swarm (payload, false, cmd, rej) < 0)
            goto done;
        break;
    case RC_SUBSCRIBE:
        cmd->subscribe = true;
        if (payload && parse_since (payload, cmd, rej) < 0)
            goto done;
        break;
    case RC_PUBLISH:
        if (!payload) {
            reject (rej, RC_E_BAD_PAYLOAD, "missing \"payload\"");
            goto done;
        }
        if (parse_publish (payload, cmd, rej) < 0)
            goto done;
        break;
    case RC_SWARM_LIST:
        break;
    }
    rc = 0;
done:
    cJSON_Delete (o);
    if (rc < 0) {
        /* keep request_id for the rejection; drop the rest */
        char *rid = cmd->request_id;
        cmd->request_id = NULL;
        rc_release (cmd);
        cmd->request_id = rid;
        errno = EINVAL;
    }
    return rc;
}

void rc_key_injection_id (const char *swarm, const char *key, int node,
                          char *buf, size_t len)
{
    uint64_t h = fnv1a (fnv1a (fnv1a (FNV1A_INIT, swarm), "/"), key);

    snprintf (buf, len, "key-%016llx-n%d", (unsigned long long)h, node);
}
