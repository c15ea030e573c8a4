/* prom.c - swarms and nodes in the Prometheus text format (prom.h) */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "slurm/prom.h"

const char *prom_escape (const char *s, char *buf, size_t len)
{
    size_t n = 0;

    for (; s && *s && n + 3 < len; s++) {
        if (*s == '\\' || *s == '"') {
            buf[n++] = '\\';
            buf[n++] = *s;
        } else if (*s == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else
            buf[n++] = *s;
    }
    buf[n] = '\0';
    return buf;
}

void prom_family (FILE *f, const char *name, const char *type, const char *help)
{
    fprintf (f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *str (const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
    return cJSON_IsString (v) ? v->valuestring : NULL;
}

static double num (const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
    return cJSON_IsNumber (v) ? v->valuedouble : dflt;
}

/* a sample with the swarm label (and the node's, k >= 0) */
static void sample (FILE *f, const char *name, const char *swarm, int k,
                    const char *extra, double v)
{
    char esc[256];

    fprintf (f, "%s{swarm=\"%s\"", name,
             prom_escape (swarm, esc, sizeof (esc)));
    if (k >= 0)
        fprintf (f, ",node=\"%d\"", k);
    if (extra)
        fprintf (f, ",%s", extra);
    if (v == floor (v) && fabs (v) < 1e15)
        fprintf (f, "} %.0f\n", v);
    else
        fprintf (f, "} %.6g\n", v);
}

struct node_metric {
    const char *name, *type, *help, *key;
};

static const struct node_metric node_metrics[] = {
    {"codeswarm_node_turns_started_total", "counter",
     "Turns the node's codex started.", "turns_started"},
    {"codeswarm_node_turns_completed_total", "counter",
     "Turns that ended (completed, interrupted or failed).", "turns"},
    {"codeswarm_node_turns_failed_total", "counter",
     "Turns that ended with status failed.", "turns_failed"},
    {"codeswarm_node_input_tokens_total", "counter",
     "Input tokens of the node's thread.", "tokens_in"},
    {"codeswarm_node_output_tokens_total", "counter",
     "Output tokens of the node's thread.", "tokens_out"},
    {"codeswarm_node_approvals_pending", "gauge",
     "Approval requests waiting for a decision.", "approvals"},
    {"codeswarm_node_approvals_decided_total", "counter",
     "Approval requests decided (by a person or the policy).",
     "approvals_decided"},
    {"codeswarm_node_app_server_restarts_total", "counter",
     "Restarts of the node's codex app-server.", "restarts"},
    {"codeswarm_node_inbox_lag_records", "gauge",
     "Inbox records the worker has not acted on yet.", "inbox_lag"},
    {NULL, NULL, NULL, NULL},
};

void prom_write_swarms (FILE *f, const cJSON *swarms, double now)
{
    static const char *phases[] = {"none",    "started",  "ready",
                                   "stopped", "degraded", "lost"};
    const cJSON *sw, *n;
    char esc[3][256], extra[600];

    prom_family (f, "codeswarm_swarm_info", "gauge",
                 "A swarm: its state, what launch recorded, and backend.");
    cJSON_ArrayForEach (sw, swarms)
    {
        snprintf (extra, sizeof (extra), "state=\"%s\",backend=\"%s\"",
                  prom_escape (str (sw, "state"), esc[0], sizeof (esc[0])),
                  prom_escape (str (sw, "backend"), esc[1], sizeof (esc[1])));
        sample (f, "codeswarm_swarm_info", str (sw, "id"), -1, extra, 1);
    }
    prom_family (f, "codeswarm_swarm_nodes", "gauge", "Nodes of the swarm.");
    cJSON_ArrayForEach (sw, swarms)
        sample (f, "codeswarm_swarm_nodes", str (sw, "id"), -1, NULL,
                num (sw, "nodes", 0));
    prom_family (f, "codeswarm_swarm_accounting_available", "gauge",
                 "1 when Slurm accounting (sacct) answered for the swarm's "
                 "jobs.");
    cJSON_ArrayForEach (sw, swarms)
    {
        const cJSON *acc = cJSON_GetObjectItemCaseSensitive (sw, "accounting");
        const cJSON *av = cJSON_GetObjectItemCaseSensitive (acc, "available");
        if (acc)
            sample (f, "codeswarm_swarm_accounting_available", str (sw, "id"),
                    -1, NULL, cJSON_IsTrue (av) ? 1 : 0);
    }
    prom_family (f, "codeswarm_swarm_node_seconds", "gauge",
                 "Node time of the swarm's Slurm jobs (sacct: NNodes x "
                 "ElapsedRaw, summed over the chain; / 3600 for "
                 "node-hours).");
    cJSON_ArrayForEach (sw, swarms)
    {
        const cJSON *acc = cJSON_GetObjectItemCaseSensitive (sw, "accounting");
        if (cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (acc, "available")))
            sample (f, "codeswarm_swarm_node_seconds", str (sw, "id"), -1,
                    NULL, num (acc, "node_hours", 0) * 3600);
    }
    prom_family (f, "codeswarm_node_state", "gauge",
                 "The node's phase: 1 for the current one.");
    cJSON_ArrayForEach (sw, swarms)
    {
        int k = 0;
        cJSON_ArrayForEach (
            n, cJSON_GetObjectItemCaseSensitive (sw, "node_states"))
        {
            const char *ph = str (n, "phase");
            for (int i = 0; i < (int)(sizeof (phases) / sizeof (*phases));
                 i++) {
                snprintf (extra, sizeof (extra), "state=\"%s\"", phases[i]);
                sample (f, "codeswarm_node_state", str (sw, "id"), k, extra,
                        ph && !strcmp (ph, phases[i]) ? 1 : 0);
            }
            k++;
        }
    }
    for (const struct node_metric *m = node_metrics; m->name; m++) {
        prom_family (f, m->name, m->type, m->help);
        cJSON_ArrayForEach (sw, swarms)
        {
            int k = 0;
            cJSON_ArrayForEach (
                n, cJSON_GetObjectItemCaseSensitive (sw, "node_states"))
                sample (f, m->name, str (sw, "id"), k++, NULL,
                        num (n, m->key, 0));
        }
    }
    prom_family (
        f, "codeswarm_node_last_heartbeat_age_seconds", "gauge",
        "Seconds since the node's last heartbeat (before the first: its "
        "last record).");
    cJSON_ArrayForEach (sw, swarms)
    {
        int k = 0;
        cJSON_ArrayForEach (
            n, cJSON_GetObjectItemCaseSensitive (sw, "node_states"))
        {
            double hb = num (n, "last_heartbeat_ts", 0);
            if (hb > 0)
                sample (f, "codeswarm_node_last_heartbeat_age_seconds",
                        str (sw, "id"), k, NULL, now > hb ? now - hb : 0);
            k++;
        }
    }
}
