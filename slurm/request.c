/* request.c - "codeswarm launch --request FILE": the router protocol's
 * swarm_launch payload as launch options, member by member.
 *
 * The payload is the one the original codeswarm clients send:
 *   {"nodes": N, "system_prompt": "...", "provider": "local"|"slurm",
 *    "provider_params": {...}, "agents_md_content": "...",
 *    "agents_bundle": {"mode": "file"|"directory",
 *                      "agents_md_content": "...",
 *                      "skills_files": [{"path": "...", "content": "..."}]}}
 * Every member is checked here, and a rejection names the member it is
 * about ("provider_params.execution_mode").  Two kinds of rejection:
 * "bad_payload" (a wrong type or value, an unknown member) and
 * "unsupported" (a member the original accepts that this install cannot
 * do: another agent runtime, containers, ...).  system_prompt is the
 * router's business (it injects it once the nodes are ready) and only
 * type-checked here.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/configfile.h"
#include "common/confined.h"
#include "common/json.h"
#include "common/log.h"
#include "slurm/job.h"
#include "slurm/launch.h"
#include "slurm/walltime.h"

#define REQUEST_MAX_BYTES (16u * 1024 * 1024)
#define REQUEST_MAX_FILES 1000

struct rej {
    const char *code;
    char member[128];
    char message[600];
};

static int rej (struct rej *r, const char *code, const char *member,
                const char *fmt, ...) __attribute__ ((format (printf, 4, 5)));

static int rej (struct rej *r, const char *code, const char *member,
                const char *fmt, ...)
{
    char text[480];
    va_list ap;

    va_start (ap, fmt);
    vsnprintf (text, sizeof (text), fmt, ap);
    va_end (ap);
    r->code = code;
    snprintf (r->member, sizeof (r->member), "%s", member);
    if (member[0])
        snprintf (r->message, sizeof (r->message), "\"%s\": %s", member,
                  text);
    else
        snprintf (r->message, sizeof (r->message), "%s", text);
    return -1;
}

static int get_string (const cJSON *v, const char *member, const char **out,
                       struct rej *r)
{
    if (!cJSON_IsString (v))
        return rej (r, "bad_payload", member, "must be a string");
    *out = *v->valuestring ? v->valuestring : NULL;
    return 0;
}

static int get_count (const cJSON *v, const char *member, int max, int *out,
                      struct rej *r)
{
    double d;

    if (cJSON_IsString (v)) {
        char *end;
        errno = 0;
        d = strtod (v->valuestring, &end);
        if (errno || end == v->valuestring || *end)
            return rej (r, "bad_payload", member,
                        "must be a positive integer, not \"%.32s\"",
                        v->valuestring);
    }
    else if (cJSON_IsNumber (v))
        d = v->valuedouble;
    else
        return rej (r, "bad_payload", member, "must be a positive integer");
    if (!(d >= 1) || d > max || d != (double)(int)d)
        return rej (r, "bad_payload", member,
                    "must be a positive integer up to %d, not %g", max, d);
    *out = (int)d;
    return 0;
}

/* seconds, or a duration string ("30s", "5m") */
static int get_duration (const cJSON *v, const char *member, double *out,
                         struct rej *r)
{
    if (cJSON_IsNumber (v) && v->valuedouble > 0) {
        *out = v->valuedouble;
        return 0;
    }
    if (cJSON_IsString (v) && parse_duration (v->valuestring, out) == 0
        && *out > 0)
        return 0;
    return rej (r, "bad_payload", member, "must be a duration (seconds, or "
                "e.g. \"30s\", \"5m\", \"2h\")");
}

/* upstream's parameters for what this install does not have */
static bool param_unsupported (const char *key)
{
    static const char *const names[] = {
        "approval_policy", "fresh_thread_per_injection", "sandbox_mode",
        "model", "instance_type", "region", "ami", "ssh_key", NULL,
    };
    if (!strncmp (key, "claude_", 7) || !strncmp (key, "container_", 10)
        || !strncmp (key, "aws_", 4))
        return true;
    for (const char *const *p = names; *p; p++)
        if (!strcmp (key, *p))
            return true;
    return false;
}

static int apply_params (const cJSON *pp, struct launch_opts *o,
                         struct rej *r)
{
    const cJSON *v;
    char m[160];

    if (!pp || cJSON_IsNull (pp))
        return 0;
    if (!cJSON_IsObject (pp))
        return rej (r, "bad_payload", "provider_params", "must be an object");
    cJSON_ArrayForEach (v, pp) {
        const char *k = v->string;
        snprintf (m, sizeof (m), "provider_params.%.100s", k);
        if (cJSON_IsObject (v) || cJSON_IsArray (v))
            return rej (r, "bad_payload", m, "must be a string, a number or "
                        "a boolean");
        if (!strcmp (k, "partition")) {
            if (get_string (v, m, &o->partition, r) < 0)
                return -1;
        }
        else if (!strcmp (k, "account")) {
            if (get_string (v, m, &o->account, r) < 0)
                return -1;
        }
        else if (!strcmp (k, "qos")) {
            if (get_string (v, m, &o->qos, r) < 0)
                return -1;
        }
        else if (!strcmp (k, "time_limit") || !strcmp (k, "time")) {
            cs_error_t e;
            if (get_string (v, m, &o->time, r) < 0)
                return -1;
            if (o->time && walltime_parse (o->time, &o->time_secs, &e) < 0)
                return rej (r, "bad_payload", m, "%s", e.text);
        }
        else if (!strcmp (k, "gpus_per_node")) {
            if (get_count (v, m, 100000, &o->gpus_per_node, r) < 0)
                return -1;
        }
        else if (!strcmp (k, "persist")) {
            if (!cJSON_IsBool (v))
                return rej (r, "bad_payload", m, "must be a boolean");
            o->persist = cJSON_IsTrue (v);
        }
        else if (!strcmp (k, "warn")) {
            if (get_duration (v, m, &o->warn, r) < 0)
                return -1;
            o->warn_given = true;
        }
        else if (!strcmp (k, "idle_timeout")) {
            if (get_duration (v, m, &o->idle_timeout, r) < 0)
                return -1;
        }
        else if (!strcmp (k, "pending_timeout")) {
            if (get_duration (v, m, &o->pending_timeout, r) < 0)
                return -1;
        }
        else if (!strcmp (k, "name") || !strcmp (k, "swarm_id")) {
            if (get_string (v, m, &o->name, r) < 0)
                return -1;
            if (o->name && !launch_valid_id (o->name))
                return rej (r, "bad_payload", m, "\"%.64s\" is not a valid "
                            "swarm id (1-64 of A-Z a-z 0-9 . _ - not "
                            "starting with '.')", v->valuestring);
        }
        else if (!strcmp (k, "agent_runtime") || !strcmp (k, "worker_mode")) {
            const char *s = NULL;
            if (get_string (v, m, &s, r) < 0)
                return -1;
            if (s && strcmp (s, "codex"))
                return rej (r, "unsupported", m, "\"%.32s\": the agents are "
                            "codex app-servers only", s);
        }
        else if (!strcmp (k, "execution_mode")) {
            const char *s = NULL;
            if (get_string (v, m, &s, r) < 0)
                return -1;
            if (s && strcmp (s, "native"))
                return rej (r, "unsupported", m, "\"%.32s\": workers run "
                            "natively (codex's own sandbox), not in "
                            "containers", s);
        }
        else if (param_unsupported (k))
            return rej (r, "unsupported", m, "not supported by this install "
                        "(see providers_list for the parameters it takes)");
        else
            return rej (r, "bad_payload", m, "unknown parameter (see "
                        "providers_list for the parameters this install "
                        "takes)");
    }
    return 0;
}

static int check_skills (const cJSON *files, struct rej *r)
{
    const cJSON *f;
    char m[96];
    int i = 0;

    if (!files || cJSON_IsNull (files))
        return 0;
    if (!cJSON_IsArray (files))
        return rej (r, "bad_payload", "agents_bundle.skills_files",
                    "must be an array");
    if (cJSON_GetArraySize (files) > REQUEST_MAX_FILES)
        return rej (r, "bad_payload", "agents_bundle.skills_files",
                    "more than %d files", REQUEST_MAX_FILES);
    cJSON_ArrayForEach (f, files) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive (f, "path");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive (f, "content");
        const cJSON *x;
        cs_error_t e;

        snprintf (m, sizeof (m), "agents_bundle.skills_files[%d]", i);
        if (!cJSON_IsObject (f))
            return rej (r, "bad_payload", m, "must be an object "
                        "{\"path\", \"content\"}");
        cJSON_ArrayForEach (x, f) {
            if (strcmp (x->string, "path") && strcmp (x->string, "content")) {
                snprintf (m, sizeof (m), "agents_bundle.skills_files[%d]."
                          "%.40s", i, x->string);
                return rej (r, "bad_payload", m, "unknown member");
            }
        }
        snprintf (m, sizeof (m), "agents_bundle.skills_files[%d].path", i);
        if (!cJSON_IsString (p))
            return rej (r, "bad_payload", m, "must be a string");
        if (confined_path_check (p->valuestring, &e) < 0)
            return rej (r, "bad_payload", m, "%s (a path relative to the "
                        "skills directory)", e.text);
        snprintf (m, sizeof (m), "agents_bundle.skills_files[%d].content", i);
        if (!cJSON_IsString (c))
            return rej (r, "bad_payload", m, "must be a string");
        /* the same file twice would be refused on the first node only */
        for (const cJSON *g = files->child; g != f; g = g->next) {
            const cJSON *gp = cJSON_GetObjectItemCaseSensitive (g, "path");
            if (!strcmp (gp->valuestring, p->valuestring)) {
                snprintf (m, sizeof (m), "agents_bundle.skills_files[%d]."
                          "path", i);
                return rej (r, "bad_payload", m, "\"%.64s\" is given twice",
                            p->valuestring);
            }
        }
        i++;
    }
    return 0;
}

/* Pick the AGENTS.md text and the skills files of the payload. */
static int apply_agents (const cJSON *req, const struct launch_opts *o,
                         const char **md, const cJSON **skills,
                         struct rej *r)
{
    const cJSON *top = cJSON_GetObjectItemCaseSensitive (req,
                                                         "agents_md_content");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive (req, "agents_bundle");
    const cJSON *v;

    *md = NULL;
    *skills = NULL;
    if (top && !cJSON_IsNull (top)) {
        if (!cJSON_IsString (top))
            return rej (r, "bad_payload", "agents_md_content",
                        "must be a string");
        if (*top->valuestring)
            *md = top->valuestring;
    }
    if (b && !cJSON_IsNull (b)) {
        if (!cJSON_IsObject (b))
            return rej (r, "bad_payload", "agents_bundle", "must be an object");
        cJSON_ArrayForEach (v, b) {
            if (strcmp (v->string, "mode")
                && strcmp (v->string, "agents_md_content")
                && strcmp (v->string, "skills_files")) {
                char m[96];
                snprintf (m, sizeof (m), "agents_bundle.%.60s", v->string);
                return rej (r, "bad_payload", m, "unknown member");
            }
        }
        v = cJSON_GetObjectItemCaseSensitive (b, "mode");
        if (v && !cJSON_IsNull (v)
            && (!cJSON_IsString (v) || (strcmp (v->valuestring, "file")
                                        && strcmp (v->valuestring,
                                                   "directory"))))
            return rej (r, "bad_payload", "agents_bundle.mode",
                        "must be \"file\" or \"directory\"");
        v = cJSON_GetObjectItemCaseSensitive (b, "agents_md_content");
        if (v && !cJSON_IsNull (v)) {
            if (!cJSON_IsString (v))
                return rej (r, "bad_payload",
                            "agents_bundle.agents_md_content",
                            "must be a string");
            if (*v->valuestring)
                *md = v->valuestring;   /* the bundle's wins, as upstream */
        }
        v = cJSON_GetObjectItemCaseSensitive (b, "skills_files");
        if (check_skills (v, r) < 0)
            return -1;
        if (cJSON_GetArraySize (v) > 0)
            *skills = v;
    }
    if (*md && o->agents_md)
        return rej (r, "bad_payload", "agents_md_content",
                    "given with --agents-md as well");
    return 0;
}

static int apply (const cJSON *req, struct launch_opts *o, const char **md,
                  const cJSON **skills, struct rej *r)
{
    static const char *const known[] = {
        "nodes", "system_prompt", "provider", "provider_params",
        "agents_md_content", "agents_bundle", NULL,
    };
    const cJSON *v;

    if (!cJSON_IsObject (req))
        return rej (r, "bad_payload", "", "the payload must be an object");
    cJSON_ArrayForEach (v, req) {
        const char *const *p;
        for (p = known; *p; p++)
            if (!strcmp (*p, v->string))
                break;
        if (!*p)
            return rej (r, "bad_payload", v->string, "unknown member");
    }
    v = cJSON_GetObjectItemCaseSensitive (req, "nodes");
    if (!v)
        return rej (r, "bad_payload", "nodes", "missing (the number of "
                    "nodes, a positive integer)");
    if (get_count (v, "nodes", 100000, &o->nodes, r) < 0)
        return -1;
    v = cJSON_GetObjectItemCaseSensitive (req, "system_prompt");
    if (v && !cJSON_IsNull (v) && !cJSON_IsString (v))
        return rej (r, "bad_payload", "system_prompt", "must be a string");
    v = cJSON_GetObjectItemCaseSensitive (req, "provider");
    if (v && !cJSON_IsNull (v)) {
        if (!cJSON_IsString (v))
            return rej (r, "bad_payload", "provider", "must be a string");
        if (!strcmp (v->valuestring, "local"))
            o->local = true;
        else if (!strcmp (v->valuestring, "slurm"))
            o->slurm = true;
        else if (*v->valuestring && strcmp (v->valuestring, "auto"))
            return rej (r, "unsupported", "provider", "\"%.32s\": this "
                        "install has \"local\" and \"slurm\" (and \"auto\": the "
                        "slurm.backend of codeswarm.yaml)", v->valuestring);
    }
    v = cJSON_GetObjectItemCaseSensitive (req, "provider_params");
    if (apply_params (v, o, r) < 0)
        return -1;
    if (o->local && cJSON_IsObject (v)) {
        static const char *const slurm_only[] = {
            "partition", "account", "qos", "time_limit", "time",
            "gpus_per_node", "persist", "warn", "pending_timeout", NULL,
        };
        for (const char *const *p = slurm_only; *p; p++) {
            char m[64];
            if (!cJSON_GetObjectItemCaseSensitive (v, *p))
                continue;
            snprintf (m, sizeof (m), "provider_params.%s", *p);
            return rej (r, "bad_payload", m, "a Slurm parameter: it means "
                        "nothing with provider \"local\"");
        }
    }
    return apply_agents (req, o, md, skills, r);
}

int launch_request_apply (const char *file, struct launch_opts *o,
                          cJSON **reqp, char **agents, const cJSON **skills)
{
    struct rej r = { .code = "bad_payload" };
    char *text = NULL;
    size_t len = 0;
    const char *md = NULL;
    cJSON *req = NULL;
    cs_error_t e;
    FILE *f;

    *reqp = NULL;
    *agents = NULL;
    *skills = NULL;
    if (!(f = fopen (file, "r"))) {
        log_msg ("--request: cannot open '%s': %s", file, strerror (errno));
        return -1;
    }
    {
        FILE *m = open_memstream (&text, &len);
        char chunk[8192];
        size_t n;
        while (m && (n = fread (chunk, 1, sizeof (chunk), f)) > 0
               && len <= REQUEST_MAX_BYTES)
            fwrite (chunk, 1, n, m);
        if (m)
            fclose (m);
    }
    fclose (f);
    if (!text || len > REQUEST_MAX_BYTES) {
        rej (&r, "bad_payload", "", "the request is larger than %u bytes",
             REQUEST_MAX_BYTES);
        goto reject;
    }
    if (!(req = json_parse (text, len, &e))) {
        rej (&r, "bad_payload", "", "%s", e.text);
        goto reject;
    }
    if (apply (req, o, &md, skills, &r) < 0)
        goto reject;
    if (md && !(*agents = strdup (md))) {
        rej (&r, "internal", "", "out of memory");
        goto reject;
    }
    free (text);
    *reqp = req;
    return 0;
reject:
    if (o->progress_json) {
        cJSON *j = cJSON_CreateObject ();
        char *line;
        if (j && json_add_str (j, "stage", "rejected") == 0
            && json_add_str (j, "code", r.code) == 0
            && json_add_str (j, "member", r.member) == 0
            && json_add_str (j, "message", r.message) == 0
            && (line = cJSON_PrintUnformatted (j))) {
            printf ("%s\n", line);
            fflush (stdout);
            free (line);
        }
        cJSON_Delete (j);
    }
    log_msg ("%s", r.message);
    free (text);
    cJSON_Delete (req);
    *skills = NULL;
    return -1;
}

/* ---- "codeswarm-launch providers": what swarm_launch accepts ------------ */

static cJSON *field (const char *key, const char *label, const char *type)
{
    cJSON *f = cJSON_CreateObject ();
    if (f && (json_add_str (f, "key", key) < 0
              || json_add_str (f, "label", label) < 0
              || json_add_str (f, "type", type) < 0)) {
        cJSON_Delete (f);
        return NULL;
    }
    return f;
}

static cJSON *fields (bool slurm)
{
    static const struct {
        const char *key, *label, *type;
        bool slurm;
    } all[] = {
        { "partition", "Partition", "text", true },
        { "time_limit", "Walltime (Slurm format)", "text", true },
        { "account", "Account", "text", true },
        { "qos", "QOS", "text", true },
        { "gpus_per_node", "GPUs per node", "number", true },
        { "persist", "Outlive the walltime (job chain)", "boolean", true },
        { "warn", "Warning before the walltime (seconds or 5m)", "text",
          true },
        { "pending_timeout", "Cancel when still pending after (seconds "
          "or 10m)", "text", true },
        { "idle_timeout", "End after this long without turns", "text",
          false },
        { "name", "Swarm id", "text", false },
    };
    cJSON *a = cJSON_CreateArray ();

    for (size_t i = 0; a && i < sizeof (all) / sizeof (all[0]); i++) {
        cJSON *f;
        if (all[i].slurm && !slurm)
            continue;
        if (!(f = field (all[i].key, all[i].label, all[i].type))
            || !cJSON_AddItemToArray (a, f)) {
            cJSON_Delete (f);
            cJSON_Delete (a);
            return NULL;
        }
    }
    return a;
}

int cmd_providers (int argc, char **argv)
{
    struct cs_config cfg;
    cs_error_t e;
    cJSON *list, *p, *d;
    char *text;
    bool is_local_default;
    int ping;

    if (argc > 1 && strcmp (argv[1], "--json")) {
        log_msg ("usage: providers [--json]");
        return 2;
    }
    if (config_load (&cfg, NULL, &e) < 0) {
        log_msg ("%s", e.text);
        return 1;
    }
    is_local_default = cfg.backend && !strcmp (cfg.backend, "local");
    ping = job_slurm_ping (&e);
    if (!(list = cJSON_CreateArray ()))
        goto nomem;

    if (!(p = cJSON_CreateObject ()) || !cJSON_AddItemToArray (list, p))
        goto nomem;
    json_add_str (p, "id", "local");
    json_add_str (p, "label", "Processes on this machine");
    json_add_str (p, "backend", "local");
    json_add_bool (p, "default", is_local_default);
    json_add_item (p, "defaults", cJSON_CreateObject ());
    json_add_item (p, "launch_fields", fields (false));

    if (!(p = cJSON_CreateObject ()) || !cJSON_AddItemToArray (list, p))
        goto nomem;
    json_add_str (p, "id", "slurm");
    json_add_str (p, "label", "Slurm job, one node per agent");
    json_add_str (p, "backend", "slurm");
    json_add_bool (p, "default", !is_local_default);
    if ((d = cJSON_CreateObject ())) {
        if (cfg.partition)
            json_add_str (d, "partition", cfg.partition);
        if (cfg.time_limit)
            json_add_str (d, "time_limit", cfg.time_limit);
        if (cfg.account)
            json_add_str (d, "account", cfg.account);
        if (cfg.qos)
            json_add_str (d, "qos", cfg.qos);
        json_add_item (p, "defaults", d);
    }
    json_add_item (p, "launch_fields", fields (true));
    json_add_bool (p, "disabled", ping < 0);
    if (ping < 0)
        json_add_str (p, "disabled_reason", e.text);

    if (!(text = cJSON_PrintUnformatted (list)))
        goto nomem;
    printf ("%s\n", text);
    free (text);
    cJSON_Delete (list);
    config_release (&cfg);
    return 0;
nomem:
    log_msg ("out of memory");
    cJSON_Delete (list);
    config_release (&cfg);
    return 1;
}
