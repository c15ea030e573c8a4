/* config.c - codeswarm.yaml, loaded with libyaml's document API
 *
 * The whole file is read into memory (a config file is small) and loaded
 * as one YAML document.  The tree is then walked against a table of known
 * keys; every error names file:line:column (1-based, from the node marks)
 * and the key, and nothing of a failed load is left behind.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <yaml.h>

#include "common/configfile.h"
#include "common/json.h"
#include "common/yamlnode.h"

#define CONFIG_MAX_SIZE (4 << 20)

enum ktype {
    K_STR,          /* string; "" is unset */
    K_PATH,         /* string with ~ expanded */
    K_ENUM,         /* one of choices */
    K_DURATION,     /* parse_duration() */
    K_SIZE,         /* parse_size() */
    K_U64,          /* plain non-negative integer */
    K_INT,          /* plain non-negative int */
    K_BOOL,
    K_ARGS,         /* list of strings -> codex_args */
    K_ENV,          /* mapping KEY: value -> codex_env */
    K_RULES,        /* list of approval rules */
};

static const char *const approval_choices[] = {
    "untrusted", "on-failure", "on-request", "never", NULL,
};
static const char *const sandbox_choices[] = {
    "read-only", "workspace-write", "danger-full-access", NULL,
};
static const char *const fsync_choices[] = {
    "never", "always", "interval", NULL,
};
static const char *const follow_choices[] = {
    "auto", "inotify", "poll", NULL,
};
static const char *const backend_choices[] = {
    "slurm", "local", NULL,
};
static const char *const decision_choices[] = {
    "accept", "decline", NULL,
};

struct key {
    const char *section;
    const char *name;
    enum ktype type;
    size_t off;
    const char *const *choices;
};

#define OFF(f) offsetof (struct cs_config, f)

static const struct key keys[] = {
    { "codex", "binary", K_PATH, OFF (codex_binary), NULL },
    { "codex", "home", K_PATH, OFF (codex_home), NULL },
    { "codex", "model", K_STR, OFF (model), NULL },
    { "codex", "provider", K_STR, OFF (model_provider), NULL },
    { "codex", "approval_policy", K_ENUM, OFF (approval_policy),
      approval_choices },
    { "codex", "sandbox", K_ENUM, OFF (sandbox), sandbox_choices },
    { "codex", "args", K_ARGS, 0, NULL },
    { "codex", "env", K_ENV, 0, NULL },

    { "worker", "workspace", K_PATH, OFF (workspace), NULL },
    { "worker", "heartbeat", K_DURATION, OFF (heartbeat), NULL },
    { "worker", "request_timeout", K_DURATION, OFF (request_timeout), NULL },
    { "worker", "restart_backoff_min", K_DURATION, OFF (restart_backoff_min),
      NULL },
    { "worker", "retry_on_loss", K_BOOL, OFF (retry_on_loss), NULL },
    { "worker", "restart_backoff_max", K_DURATION, OFF (restart_backoff_max),
      NULL },
    { "worker", "healthy_after", K_DURATION, OFF (healthy_after), NULL },
    { "worker", "max_failed_starts", K_INT, OFF (max_failed_starts), NULL },
    { "worker", "shutdown_grace", K_DURATION, OFF (shutdown_grace), NULL },
    { "worker", "max_line", K_SIZE, OFF (max_line), NULL },
    { "worker", "stderr_tail", K_SIZE, OFF (stderr_tail), NULL },

    { "approvals", "timeout", K_DURATION, OFF (approval_timeout), NULL },
    { "approvals", "rules", K_RULES, 0, NULL },

    { "mailbox", "fsync", K_ENUM, OFF (fsync), fsync_choices },
    { "mailbox", "fsync_interval", K_DURATION, OFF (fsync_interval), NULL },
    { "mailbox", "rotate_bytes", K_SIZE, OFF (rotate_bytes), NULL },
    { "mailbox", "rotate_records", K_U64, OFF (rotate_records), NULL },
    { "mailbox", "follow", K_ENUM, OFF (follow), follow_choices },
    { "mailbox", "poll_min", K_DURATION, OFF (poll_min), NULL },
    { "mailbox", "poll_max", K_DURATION, OFF (poll_max), NULL },

    { "router", "node_lost_after", K_DURATION, OFF (node_lost_after), NULL },
    { "router", "login_host", K_STR, OFF (login_host), NULL },

    { "slurm", "backend", K_ENUM, OFF (backend), backend_choices },
    { "slurm", "partition", K_STR, OFF (partition), NULL },
    { "slurm", "account", K_STR, OFF (account), NULL },
    { "slurm", "qos", K_STR, OFF (qos), NULL },
    { "slurm", "time", K_STR, OFF (time_limit), NULL },
    { "slurm", "template", K_PATH, OFF (sbatch_template), NULL },
    { "slurm", "warn_seconds", K_INT, OFF (warn_seconds), NULL },
    { "slurm", "pmix", K_BOOL, OFF (use_pmix), NULL },

    { "relay", "url", K_STR, OFF (relay_url), NULL },
    { "relay", "ca_file", K_PATH, OFF (relay_ca_file), NULL },
    { "relay", "cert_file", K_PATH, OFF (relay_cert_file), NULL },
    { "relay", "key_file", K_PATH, OFF (relay_key_file), NULL },
    { "relay", "username", K_STR, OFF (relay_username), NULL },
    { "relay", "password_file", K_PATH, OFF (relay_password_file), NULL },
    { "relay", "seal_key_file", K_PATH, OFF (relay_seal_key_file), NULL },
    { "relay", "topic_prefix", K_STR, OFF (relay_topic_prefix), NULL },
    { "relay", "client_id", K_STR, OFF (relay_client_id), NULL },
    { "relay", "proxy", K_STR, OFF (relay_proxy), NULL },
    { "relay", "keepalive", K_DURATION, OFF (relay_keepalive), NULL },
    { "relay", "backoff_min", K_DURATION, OFF (relay_backoff_min), NULL },
    { "relay", "backoff_max", K_DURATION, OFF (relay_backoff_max), NULL },
    { "relay", "session_expiry", K_DURATION, OFF (relay_session_expiry),
      NULL },
    { "relay", "queue_max", K_U64, OFF (relay_queue_max), NULL },
    { "relay", "insecure", K_BOOL, OFF (relay_insecure), NULL },
    { "metrics", "textfile", K_PATH, OFF (metrics_textfile), NULL },
    { "metrics", "interval", K_DURATION, OFF (metrics_interval), NULL },
};
#define NKEYS (sizeof (keys) / sizeof (keys[0]))

static const char *const sections[] = {
    "codex", "worker", "approvals", "mailbox", "router", "slurm", "relay",
    "metrics",
    NULL,
};

struct ctx {
    const char *file;
    yaml_document_t *doc;
    struct cs_config *cfg;
    bool set[NKEYS];            /* key given in the file */
    yaml_mark_t mark[NKEYS];    /* where its value is */
    cs_error_t *errp;
};

/* Strings are freed by config_release(); these are the owned ones. */
static char **str_field (struct cs_config *cfg, size_t off)
{
    return (char **)((char *)cfg + off);
}

static int ctx_err (struct ctx *c, yaml_mark_t m, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int ctx_err (struct ctx *c, yaml_mark_t m, const char *fmt, ...)
{
    va_list ap;

    va_start (ap, fmt);
    yamlnode_verr (c->errp, c->file, m, fmt, ap);
    va_end (ap);
    return -1;
}

/* <home>: $CODESWARM_HOME, else ~/.codeswarm.  Result: free(). */
static const char *user_home (void)
{
    const char *h = getenv ("HOME");
    struct passwd *pw;

    if (h && *h)
        return h;
    if ((pw = getpwuid (getuid ())) && pw->pw_dir && *pw->pw_dir)
        return pw->pw_dir;
    return NULL;
}

static char *codeswarm_home (void)
{
    const char *h = getenv ("CODESWARM_HOME");
    char *s;

    if (h && *h)
        return strdup (h);
    if (!(h = user_home ())) {
        errno = ENOENT;
        return NULL;
    }
    if (asprintf (&s, "%s/.codeswarm", h) < 0)
        return NULL;
    return s;
}

/* "~" and "~/x" -> $HOME, "~user/x" -> user's home.  Result: free(). */
static char *expand_tilde (const char *s)
{
    const char *rest, *home;
    char *out;

    if (s[0] != '~')
        return strdup (s);
    rest = s + 1 + strcspn (s + 1, "/");
    if (rest == s + 1)
        home = user_home ();
    else {
        char name[256];
        struct passwd *pw;
        size_t n = rest - (s + 1);
        if (n >= sizeof (name)) {
            errno = ENOENT;
            return NULL;
        }
        memcpy (name, s + 1, n);
        name[n] = '\0';
        pw = getpwnam (name);
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home) {
        errno = ENOENT;
        return NULL;
    }
    if (asprintf (&out, "%s%s", home, rest) < 0)
        return NULL;
    return out;
}

int config_defaults (struct cs_config *cfg, cs_error_t *errp)
{
    char *home = NULL;
    struct cs_config c;
    size_t i;
    char *p;

    if (!cfg) {
        errno = EINVAL;
        return errprintf (errp, "no config to fill");
    }
    memset (&c, 0, sizeof (c));
    c.heartbeat = 15;
    c.request_timeout = 120;
    c.restart_backoff_min = 1;
    c.restart_backoff_max = 60;
    c.healthy_after = 300;
    c.max_failed_starts = 5;
    c.shutdown_grace = 30;
    c.max_line = 8 << 20;
    c.stderr_tail = 4096;
    c.approval_timeout = 600;
    c.fsync_interval = 1;
    c.rotate_bytes = 64 << 20;
    c.rotate_records = 0;
    c.poll_min = 0.002;
    c.poll_max = 1;
    c.node_lost_after = 3 * c.heartbeat;
    c.warn_seconds = 300;
    c.metrics_interval = 15;
    c.use_pmix = true;
    c.relay_keepalive = 30;
    c.relay_backoff_min = 1;
    c.relay_backoff_max = 60;
    c.relay_session_expiry = 86400;
    c.relay_queue_max = 1000;

    if (!(home = codeswarm_home ())) {
        errprintf (errp, "cannot find the codeswarm home: %s "
                   "(set CODESWARM_HOME or HOME)", strerror (errno));
        goto error;
    }
    /* workspace: <home>/swarms/%s/work/%k, with any '%' in home doubled */
    if (!(c.workspace = malloc (2 * strlen (home) + 32)))
        goto nomem;
    for (p = c.workspace, i = 0; home[i]; i++) {
        if (home[i] == '%')
            *p++ = '%';
        *p++ = home[i];
    }
    strcpy (p, "/swarms/%s/work/%k");
    if (!(c.approval_policy = strdup ("on-request"))
        || !(c.sandbox = strdup ("workspace-write"))
        || !(c.fsync = strdup ("interval"))
        || !(c.follow = strdup ("auto"))
        || !(c.backend = strdup ("slurm")))
        goto nomem;
    {
        struct passwd *pw = getpwuid (geteuid ());
        const char *user = pw && pw->pw_name ? pw->pw_name : "user";
        char host[256] = "localhost";
        (void)gethostname (host, sizeof (host) - 1);
        if (asprintf (&c.relay_topic_prefix, "codeswarm/%s", user) < 0) {
            c.relay_topic_prefix = NULL;
            goto nomem;
        }
        if (asprintf (&c.relay_client_id, "%s@%s", user, host) < 0) {
            c.relay_client_id = NULL;
            goto nomem;
        }
    }
    free (home);
    *cfg = c;
    return 0;
nomem:
    errprintf (errp, "cannot set config defaults: %s", strerror (errno));
error:
    free (home);
    config_release (&c);
    return -1;
}

void config_release (struct cs_config *cfg)
{
    size_t i;
    int saved_errno = errno;

    if (!cfg)
        return;
    free (cfg->path);
    for (i = 0; i < NKEYS; i++) {
        if (keys[i].type == K_STR || keys[i].type == K_PATH
            || keys[i].type == K_ENUM)
            free (*str_field (cfg, keys[i].off));
    }
    for (i = 0; i < cfg->codex_nargs; i++)
        free (cfg->codex_args[i]);
    for (i = 0; i < cfg->codex_nenv; i++)
        free (cfg->codex_env[i]);
    for (i = 0; i < cfg->nrules; i++) {
        free (cfg->rules[i].prefix);
        free (cfg->rules[i].decision);
    }
    memset (cfg, 0, sizeof (*cfg));
    errno = saved_errno;
}

/* A scalar's text, checked for embedded NULs. */
static int scalar (struct ctx *c, yaml_node_t *n, const char *key,
                   const char *what, const char **val)
{
    return yamlnode_scalar (c->errp, c->file, n, key, what, val);
}

static int parse_u64 (const char *s, uint64_t *v)
{
    uint64_t x = 0;

    if (!*s)
        return -1;
    for (; *s; s++) {
        unsigned d = *s - '0';
        if (d > 9 || x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

static int set_string (struct ctx *c, char **field, const char *val,
                       bool path, const char *key, yaml_mark_t m)
{
    char *s;

    if (!*val) {
        free (*field);
        *field = NULL;
        return 0;
    }
    s = path ? expand_tilde (val) : strdup (val);
    if (!s) {
        if (errno == ENOMEM)
            return ctx_err (c, m, "%s: out of memory", key);
        return ctx_err (c, m, "%s: cannot expand \"%s\"", key, val);
    }
    free (*field);
    *field = s;
    return 0;
}

static const char *choices_str (const char *const *choices, char *buf,
                                size_t size)
{
    size_t len = 0;
    int i;

    buf[0] = '\0';
    for (i = 0; choices[i]; i++) {
        int n = snprintf (buf + len, size - len, "%s%s", i ? ", " : "",
                          choices[i]);
        if (n < 0 || (size_t)n >= size - len)
            break;
        len += n;
    }
    return buf;
}

static bool in_choices (const char *const *choices, const char *s)
{
    for (; *choices; choices++) {
        if (!strcmp (*choices, s))
            return true;
    }
    return false;
}

/* Key of a pair: a scalar, not repeated.  keyname gets prefix.key. */
static int pair_key (struct ctx *c, yaml_node_t *map, yaml_node_pair_t *pair,
                     const char *prefix, const char **name, char *keyname,
                     size_t size)
{
    return yamlnode_key (c->errp, c->file, c->doc, map, pair, prefix, name,
                         keyname, size);
}

static int load_args (struct ctx *c, yaml_node_t *v, const char *key)
{
    struct cs_config *cfg = c->cfg;
    yaml_node_item_t *it;
    size_t i;

    if (v->type != YAML_SEQUENCE_NODE)
        return ctx_err (c, v->start_mark, "%s: expected a list of strings, "
                        "not %s", key, yamlnode_kind (v));
    for (i = 0; i < cfg->codex_nargs; i++)
        free (cfg->codex_args[i]);
    cfg->codex_nargs = 0;
    for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *n = yaml_document_get_node (c->doc, *it);
        const char *s;
        if (!n || scalar (c, n, key, "a string", &s) < 0)
            return -1;
        if (cfg->codex_nargs == CS_CONFIG_MAX_LIST)
            return ctx_err (c, n->start_mark, "%s: too many entries "
                            "(at most %d)", key, CS_CONFIG_MAX_LIST);
        if (!(cfg->codex_args[cfg->codex_nargs] = strdup (s)))
            return ctx_err (c, n->start_mark, "%s: out of memory", key);
        cfg->codex_nargs++;
    }
    return 0;
}

static int load_env (struct ctx *c, yaml_node_t *v, const char *key)
{
    struct cs_config *cfg = c->cfg;
    yaml_node_pair_t *pair;
    char keyname[256];
    size_t i;

    if (v->type != YAML_MAPPING_NODE)
        return ctx_err (c, v->start_mark, "%s: expected a mapping of "
                        "NAME: value, not %s", key, yamlnode_kind (v));
    for (i = 0; i < cfg->codex_nenv; i++)
        free (cfg->codex_env[i]);
    cfg->codex_nenv = 0;
    for (pair = v->data.mapping.pairs.start; pair < v->data.mapping.pairs.top;
         pair++) {
        yaml_node_t *k = yaml_document_get_node (c->doc, pair->key);
        yaml_node_t *n = yaml_document_get_node (c->doc, pair->value);
        const char *name, *s;
        char *e;
        if (pair_key (c, v, pair, key, &name, keyname, sizeof (keyname)) < 0)
            return -1;
        if (!*name || strchr (name, '='))
            return ctx_err (c, k->start_mark, "%s: \"%s\" is not a valid "
                            "variable name", key, name);
        if (!n || scalar (c, n, keyname, "a string", &s) < 0)
            return -1;
        if (cfg->codex_nenv == CS_CONFIG_MAX_LIST)
            return ctx_err (c, k->start_mark, "%s: too many entries "
                            "(at most %d)", key, CS_CONFIG_MAX_LIST);
        if (yamlnode_is_null (n))
            s = "";
        if (asprintf (&e, "%s=%s", name, s) < 0)
            return ctx_err (c, n->start_mark, "%s: out of memory", key);
        cfg->codex_env[cfg->codex_nenv++] = e;
    }
    return 0;
}

static int load_rules (struct ctx *c, yaml_node_t *v, const char *key)
{
    struct cs_config *cfg = c->cfg;
    yaml_node_item_t *it;
    size_t i;

    if (v->type != YAML_SEQUENCE_NODE)
        return ctx_err (c, v->start_mark, "%s: expected a list of rules, "
                        "not %s", key, yamlnode_kind (v));
    for (i = 0; i < cfg->nrules; i++) {
        free (cfg->rules[i].prefix);
        free (cfg->rules[i].decision);
    }
    memset (cfg->rules, 0, sizeof (cfg->rules));
    cfg->nrules = 0;
    for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *m = yaml_document_get_node (c->doc, *it);
        struct cs_approval_rule *r;
        yaml_node_pair_t *pair;
        char rkey[300], keyname[400], buf[128];

        snprintf (rkey, sizeof (rkey), "%s[%zu]", key, cfg->nrules);
        if (!m || m->type != YAML_MAPPING_NODE)
            return ctx_err (c, m ? m->start_mark : v->start_mark,
                            "%s: expected a mapping {prefix, decision, "
                            "in_workspace}, not %s", rkey,
                            m ? yamlnode_kind (m) : "nothing");
        if (cfg->nrules == CS_CONFIG_MAX_RULES)
            return ctx_err (c, m->start_mark, "%s: too many rules "
                            "(at most %d)", key, CS_CONFIG_MAX_RULES);
        r = &cfg->rules[cfg->nrules++];
        for (pair = m->data.mapping.pairs.start;
             pair < m->data.mapping.pairs.top; pair++) {
            yaml_node_t *n = yaml_document_get_node (c->doc, pair->value);
            const char *name, *s;
            if (pair_key (c, m, pair, rkey, &name, keyname,
                          sizeof (keyname)) < 0)
                return -1;
            if (!n || scalar (c, n, keyname, "a scalar", &s) < 0)
                return -1;
            if (!strcmp (name, "prefix")) {
                if (!*s || yamlnode_is_null (n))
                    return ctx_err (c, n->start_mark, "%s: must not be "
                                    "empty", keyname);
                free (r->prefix);
                if (!(r->prefix = strdup (s)))
                    return ctx_err (c, n->start_mark, "out of memory");
            }
            else if (!strcmp (name, "decision")) {
                if (!in_choices (decision_choices, s))
                    return ctx_err (c, n->start_mark, "%s: \"%s\" is not "
                                    "one of %s", keyname, s,
                                    choices_str (decision_choices, buf,
                                                 sizeof (buf)));
                free (r->decision);
                if (!(r->decision = strdup (s)))
                    return ctx_err (c, n->start_mark, "out of memory");
            }
            else if (!strcmp (name, "in_workspace")) {
                if (yamlnode_bool (s, &r->in_workspace) < 0)
                    return ctx_err (c, n->start_mark, "%s: \"%s\" is not a "
                                    "boolean", keyname, s);
            }
            else {
                yaml_node_t *k = yaml_document_get_node (c->doc, pair->key);
                return ctx_err (c, k->start_mark, "unknown key \"%s\"",
                                keyname);
            }
        }
        if (!r->prefix)
            return ctx_err (c, m->start_mark, "%s: missing \"prefix\"", rkey);
        if (!r->decision)
            return ctx_err (c, m->start_mark, "%s: missing \"decision\"",
                            rkey);
    }
    return 0;
}

static int load_value (struct ctx *c, size_t ki, yaml_node_t *v,
                       const char *keyname)
{
    const struct key *k = &keys[ki];
    struct cs_config *cfg = c->cfg;
    void *field = (char *)cfg + k->off;
    const char *s;
    char buf[128];

    if (yamlnode_is_null (v))            /* "key:" alone keeps the default */
        return 0;
    c->set[ki] = true;
    c->mark[ki] = v->start_mark;
    switch (k->type) {
        case K_ARGS:
            return load_args (c, v, keyname);
        case K_ENV:
            return load_env (c, v, keyname);
        case K_RULES:
            return load_rules (c, v, keyname);
        case K_STR:
        case K_PATH:
            if (scalar (c, v, keyname, "a string", &s) < 0)
                return -1;
            return set_string (c, field, s, k->type == K_PATH, keyname,
                               v->start_mark);
        case K_ENUM:
            if (scalar (c, v, keyname, "a string", &s) < 0)
                return -1;
            if (!in_choices (k->choices, s))
                return ctx_err (c, v->start_mark, "%s: \"%s\" is not one "
                                "of %s", keyname, s,
                                choices_str (k->choices, buf, sizeof (buf)));
            return set_string (c, field, s, false, keyname, v->start_mark);
        case K_DURATION:
            if (scalar (c, v, keyname, "a duration", &s) < 0)
                return -1;
            if (parse_duration (s, field) < 0 && errno == ERANGE)
                return ctx_err (c, v->start_mark, "%s: \"%s\" is longer "
                                "than " DURATION_MAX_TEXT, keyname, s);
            if (parse_duration (s, field) < 0)
                return ctx_err (c, v->start_mark, "%s: \"%s\" is not a "
                                "duration (like 30, 250ms, 10s, 5m, 2h, 1d)",
                                keyname, s);
            return 0;
        case K_SIZE:
            if (scalar (c, v, keyname, "a size", &s) < 0)
                return -1;
            if (parse_size (s, field) < 0)
                return ctx_err (c, v->start_mark, "%s: \"%s\" is not a size "
                                "(like 4096, 64k, 8MiB, 1G)", keyname, s);
            return 0;
        case K_U64:
            if (scalar (c, v, keyname, "an integer", &s) < 0)
                return -1;
            if (parse_u64 (s, field) < 0)
                return ctx_err (c, v->start_mark, "%s: \"%s\" is not a "
                                "non-negative integer", keyname, s);
            return 0;
        case K_INT: {
            uint64_t u;
            if (scalar (c, v, keyname, "an integer", &s) < 0)
                return -1;
            if (parse_u64 (s, &u) < 0 || u > INT_MAX)
                return ctx_err (c, v->start_mark, "%s: \"%s\" is not a "
                                "non-negative integer", keyname, s);
            *(int *)field = (int)u;
            return 0;
        }
        case K_BOOL:
            if (scalar (c, v, keyname, "a boolean", &s) < 0)
                return -1;
            if (yamlnode_bool (s, field) < 0)
                return ctx_err (c, v->start_mark, "%s: \"%s\" is not a "
                                "boolean (true or false)", keyname, s);
            return 0;
        default:
            break;
    }
    errno = EINVAL;
    return -1;
}

static int load_section (struct ctx *c, const char *section, yaml_node_t *map)
{
    yaml_node_pair_t *pair;
    char keyname[256];

    if (yamlnode_is_null (map))
        return 0;
    if (map->type != YAML_MAPPING_NODE)
        return ctx_err (c, map->start_mark, "%s: expected a mapping, not %s",
                        section, yamlnode_kind (map));
    for (pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *v = yaml_document_get_node (c->doc, pair->value);
        const char *name;
        size_t i;

        if (pair_key (c, map, pair, section, &name, keyname,
                      sizeof (keyname)) < 0)
            return -1;
        for (i = 0; i < NKEYS; i++) {
            if (!strcmp (keys[i].section, section)
                && !strcmp (keys[i].name, name))
                break;
        }
        if (i == NKEYS) {
            yaml_node_t *k = yaml_document_get_node (c->doc, pair->key);
            return ctx_err (c, k->start_mark, "unknown key \"%s\"", keyname);
        }
        if (!v || load_value (c, i, v, keyname) < 0)
            return -1;
    }
    return 0;
}

static size_t key_index (const char *section, const char *name)
{
    size_t i;

    for (i = 0; i < NKEYS; i++) {
        if (!strcmp (keys[i].section, section) && !strcmp (keys[i].name, name))
            break;
    }
    return i;
}

/* min must not exceed max; the error points at whichever was given */
static int check_order (struct ctx *c, const char *section, const char *lo,
                        const char *hi)
{
    size_t a = key_index (section, lo), b = key_index (section, hi);
    double *va = (double *)((char *)c->cfg + keys[a].off);
    double *vb = (double *)((char *)c->cfg + keys[b].off);

    if (*va <= *vb)
        return 0;
    return ctx_err (c, c->set[b] ? c->mark[b] : c->mark[a],
                    "%s.%s (%g) is greater than %s.%s (%g)", section, lo,
                    *va, section, hi, *vb);
}

int config_parse_url (const char *url, struct cs_url *u, cs_error_t *errp)
{
    const char *p, *at, *hend, *q, *end_all;
    size_t n;

    memset (u, 0, sizeof (*u));
    errno = EINVAL;
    if (!(p = strstr (url, "://")) || p == url
        || (size_t)(p - url) >= sizeof (u->scheme))
        return errprintf (errp, "\"%s\" is not a URL (scheme://host:port)",
                          url);
    memcpy (u->scheme, url, (size_t)(p - url));
    if (!strcmp (u->scheme, "mqtt"))
        u->port = 1883;
    else if (!strcmp (u->scheme, "mqtts"))
        u->port = 8883;
    else if (!strcmp (u->scheme, "socks5"))
        u->port = 1080;
    else
        return errprintf (errp, "\"%s\": unknown scheme \"%s\" (mqtts, "
                          "mqtt or socks5)", url, u->scheme);
    p += 3;
    n = strcspn (p, "/?#");
    if (p[n] && strcmp (p + n, "/"))
        return errprintf (errp, "\"%s\": only a host and port are allowed, "
                          "not \"%s\"", url, p + n);
    if ((at = memchr (p, '@', n))) {
        const char *colon = memchr (p, ':', (size_t)(at - p));
        size_t ul = colon ? (size_t)(colon - p) : (size_t)(at - p);
        if (ul >= sizeof (u->user)
            || (colon && (size_t)(at - colon - 1) >= sizeof (u->password)))
            return errprintf (errp, "\"%s\": user name or password too "
                              "long", url);
        memcpy (u->user, p, ul);
        if (colon)
            memcpy (u->password, colon + 1, (size_t)(at - colon - 1));
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    end_all = p + n;
    if (*p == '[') {
        if (!(hend = memchr (p, ']', n)))
            return errprintf (errp, "\"%s\": unterminated [", url);
        q = hend + 1;
        p++;
    }
    else {
        hend = p;
        while (hend < p + n && *hend != ':')
            hend++;
        q = hend;
    }
    if (hend == p || (size_t)(hend - p) >= sizeof (u->host))
        return errprintf (errp, "\"%s\": no host", url);
    memcpy (u->host, p, (size_t)(hend - p));
    if (q < end_all && *q == ':') {
        char *end;
        long port = strtol (q + 1, &end, 10);
        if (end == q + 1 || port < 1 || port > 65535
            || (*end && *end != '/'))
            return errprintf (errp, "\"%s\": bad port", url);
        u->port = (int)port;
    }
    else if (q < end_all)
        return errprintf (errp, "\"%s\": bad host", url);
    errno = 0;
    return 0;
}

bool config_host_is_loopback (const char *host)
{
    return !strcmp (host, "localhost") || !strncmp (host, "127.", 4)
           || !strcmp (host, "::1");
}

static int check_relay (struct ctx *c)
{
    struct cs_config *cfg = c->cfg;
    cs_error_t e;
    size_t i;

    if (cfg->relay_url) {
        i = key_index ("relay", "url");
        if (config_parse_url (cfg->relay_url, &cfg->relay, &e) < 0)
            return ctx_err (c, c->mark[i], "relay.url: %s", e.text);
        if (!strcmp (cfg->relay.scheme, "socks5"))
            return ctx_err (c, c->mark[i], "relay.url: \"%s\" is a proxy "
                            "(relay.proxy), not a broker", cfg->relay_url);
        if (!strcmp (cfg->relay.scheme, "mqtt")) {
            if (!config_host_is_loopback (cfg->relay.host))
                return ctx_err (c, c->mark[i], "relay.url: plain mqtt:// to "
                                "\"%s\" would send credentials in clear "
                                "text; use mqtts:// (mqtt:// is allowed "
                                "only to a loopback host with relay.insecure: "
                                "true)", cfg->relay.host);
            if (!cfg->relay_insecure)
                return ctx_err (c, c->mark[i], "relay.url: plain mqtt:// "
                                "needs relay.insecure: true (loopback "
                                "only); use mqtts://");
        }
        if (cfg->relay.user[0] || cfg->relay.password[0])
            return ctx_err (c, c->mark[i], "relay.url: put the user in "
                            "relay.username and the password in "
                            "relay.password_file, not in the URL");
    }
    if (cfg->relay_proxy) {
        i = key_index ("relay", "proxy");
        if (config_parse_url (cfg->relay_proxy, &cfg->relay_socks, &e) < 0)
            return ctx_err (c, c->mark[i], "relay.proxy: %s", e.text);
        if (strcmp (cfg->relay_socks.scheme, "socks5"))
            return ctx_err (c, c->mark[i], "relay.proxy: \"%s\": only "
                            "socks5:// proxies are supported",
                            cfg->relay_proxy);
    }
    if (c->set[i = key_index ("relay", "keepalive")]
        && (cfg->relay_keepalive < 5 || cfg->relay_keepalive > 65535))
        return ctx_err (c, c->mark[i], "relay.keepalive: must be between 5s "
                        "and 65535s");
    if (c->set[i = key_index ("relay", "backoff_min")]
        && cfg->relay_backoff_min <= 0)
        return ctx_err (c, c->mark[i], "relay.backoff_min: must be more "
                        "than 0");
    if (c->set[i = key_index ("relay", "queue_max")]
        && (cfg->relay_queue_max < 1 || cfg->relay_queue_max > 1000000))
        return ctx_err (c, c->mark[i], "relay.queue_max: must be between 1 "
                        "and 1000000");
    if (c->set[i = key_index ("relay", "topic_prefix")]
        && (!cfg->relay_topic_prefix
            || strpbrk (cfg->relay_topic_prefix, "+#")
            || cfg->relay_topic_prefix[0] == '/'
            || cfg->relay_topic_prefix[strlen (cfg->relay_topic_prefix) - 1]
               == '/'))
        return ctx_err (c, c->mark[i], "relay.topic_prefix: must be a topic "
                        "name without wildcards (+ #) or a leading or "
                        "trailing /");
    if (c->set[i = key_index ("relay", "client_id")]
        && (!cfg->relay_client_id || strlen (cfg->relay_client_id) > 128
            || strpbrk (cfg->relay_client_id, "+#/")))
        return ctx_err (c, c->mark[i], "relay.client_id: must be 1 to 128 "
                        "characters without + # /");
    return check_order (c, "relay", "backoff_min", "backoff_max");
}

static int check (struct ctx *c)
{
    struct cs_config *cfg = c->cfg;
    size_t i;

    if (cfg->max_line == 0 || cfg->max_line > SIZE_MAX / 4) {
        i = key_index ("worker", "max_line");
        return ctx_err (c, c->mark[i], "worker.max_line: must be between 1 "
                        "and %zu", (size_t)(SIZE_MAX / 4));
    }
    i = key_index ("worker", "heartbeat");
    if (cfg->heartbeat <= 0)
        return ctx_err (c, c->mark[i], "worker.heartbeat: must be more "
                        "than 0");
    i = key_index ("mailbox", "poll_min");
    if (cfg->poll_min <= 0)
        return ctx_err (c, c->mark[i], "mailbox.poll_min: must be more "
                        "than 0");
    if (check_order (c, "worker", "restart_backoff_min",
                     "restart_backoff_max") < 0
        || check_order (c, "mailbox", "poll_min", "poll_max") < 0)
        return -1;
    if (!c->set[key_index ("router", "node_lost_after")])
        cfg->node_lost_after = 3 * cfg->heartbeat;
    return check_relay (c);
}

/* Load YAML text buf[0..len) named name over *cfg. */
static int load_buffer (struct cs_config *cfg, const char *name,
                        const char *buf, size_t len, cs_error_t *errp)
{
    struct ctx c;
    yaml_parser_t parser;
    yaml_document_t doc, doc2;
    yaml_node_t *root;
    bool have_doc = false;
    int rc = -1;

    memset (&c, 0, sizeof (c));
    c.file = name;
    c.cfg = cfg;
    c.errp = errp;
    c.doc = &doc;

    if (!yaml_parser_initialize (&parser)) {
        errno = ENOMEM;
        return errprintf (errp, "%s: out of memory", name);
    }
    yaml_parser_set_input_string (&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load (&parser, &doc)) {
        yamlnode_parse_error (c.errp, c.file, &parser, buf, len);
        goto done;
    }
    have_doc = true;
    if ((root = yaml_document_get_root_node (&doc))) {
        yaml_node_pair_t *pair;
        char keyname[256];

        if (root->type != YAML_MAPPING_NODE && !yamlnode_is_null (root)) {
            ctx_err (&c, root->start_mark, "expected a mapping of sections "
                     "(codex, worker, approvals, mailbox, router, slurm, "
                     "relay, metrics), "
                     "not %s", yamlnode_kind (root));
            goto done;
        }
        for (pair = root->type == YAML_MAPPING_NODE
                    ? root->data.mapping.pairs.start : NULL;
             pair && pair < root->data.mapping.pairs.top; pair++) {
            yaml_node_t *v = yaml_document_get_node (&doc, pair->value);
            const char *sect;
            int i;
            if (pair_key (&c, root, pair, NULL, &sect, keyname,
                          sizeof (keyname)) < 0)
                goto done;
            for (i = 0; sections[i]; i++) {
                if (!strcmp (sections[i], sect))
                    break;
            }
            if (!sections[i]) {
                yaml_node_t *k = yaml_document_get_node (&doc, pair->key);
                ctx_err (&c, k->start_mark, "unknown key \"%s\"", sect);
                goto done;
            }
            if (!v || load_section (&c, sect, v) < 0)
                goto done;
        }
    }
    /* a second document is a mistake worth reporting */
    if (!yaml_parser_load (&parser, &doc2)) {
        yamlnode_parse_error (c.errp, c.file, &parser, buf, len);
        goto done;
    }
    root = yaml_document_get_root_node (&doc2);
    if (root)
        ctx_err (&c, root->start_mark, "only one YAML document is allowed");
    yaml_document_delete (&doc2);
    if (root)
        goto done;
    if (check (&c) < 0)
        goto done;
    rc = 0;
done:
    if (have_doc)
        yaml_document_delete (&doc);
    yaml_parser_delete (&parser);
    return rc;
}

static int load_file (struct cs_config *cfg, const char *path,
                      cs_error_t *errp)
{
    char *buf;
    size_t len;
    int rc;

    if (!(buf = yamlnode_read_file (path, CONFIG_MAX_SIZE, &len, errp)))
        return -1;
    rc = load_buffer (cfg, path, buf, len, errp);
    free (buf);
    return rc;
}

int config_load_string (struct cs_config *cfg, const char *name,
                        const char *buf, size_t len, cs_error_t *errp)
{
    struct cs_config c;

    if (!cfg || (!buf && len > 0)) {
        errno = EINVAL;
        return errprintf (errp, "no config to fill");
    }
    if (!name)
        name = "(string)";
    if (config_defaults (&c, errp) < 0)
        goto error;
    if (load_buffer (&c, name, buf ? buf : "", len, errp) < 0) {
        config_release (&c);
        goto error;
    }
    *cfg = c;
    return 0;
error:
    memset (cfg, 0, sizeof (*cfg));
    return -1;
}

int config_load (struct cs_config *cfg, const char *path, cs_error_t *errp)
{
    struct cs_config c;
    char *found = NULL;
    int saved_errno;

    if (!cfg) {
        errno = EINVAL;
        return errprintf (errp, "no config to fill");
    }
    if (config_defaults (&c, errp) < 0)
        goto error_nocfg;
    if (!path) {
        const char *env = getenv ("CODESWARM_CONFIG");
        if (env && *env)
            path = env;
        else {
            char *home = codeswarm_home ();
            struct stat sb;
            if (!home || asprintf (&found, "%s/codeswarm.yaml", home) < 0) {
                free (home);
                errprintf (errp, "cannot find the codeswarm home: %s",
                           strerror (errno));
                goto error;
            }
            free (home);
            if (stat (found, &sb) < 0 && errno == ENOENT) {
                free (found);
                *cfg = c;           /* defaults only */
                return 0;
            }
            path = found;
        }
    }
    if (!(c.path = strdup (path))) {
        errprintf (errp, "%s: %s", path, strerror (errno));
        goto error;
    }
    if (load_file (&c, c.path, errp) < 0)
        goto error;
    free (found);
    *cfg = c;
    return 0;
error:
    saved_errno = errno;
    config_release (&c);
    free (found);
    errno = saved_errno;
error_nocfg:
    memset (cfg, 0, sizeof (*cfg));
    return -1;
}

/*
 * vi:ts=4 sw=4 expandtab
 */
