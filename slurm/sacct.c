/* sacct.c - Slurm accounting of a swarm's job chain (sacct.h) */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "common/json.h"
#include "slurm/run.h"
#include "slurm/sacct.h"

int sacct_query (const char *jobids, char **text, cs_error_t *errp)
{
    const char *av[] = {"sacct",  "--parsable2", "--format", SACCT_FIELDS,
                        "--jobs", jobids,        NULL};
    struct run_result res;
    char line[200];

    *text = NULL;
    if (run_capture ((char *const *)av, NULL, NULL, 60, &res, errp) < 0)
        return -1;
    if (!run_ok (&res)) {
        const char *why = run_first_line (res.err, line, sizeof (line));
        errprintf (errp, "sacct: %s", *why ? why : "failed");
        run_result_release (&res);
        errno = EIO;
        return -1;
    }
    *text = res.out;
    res.out = NULL;
    run_result_release (&res);
    return 0;
}

/* split s (modified) at '|' into at most max fields */
static int split (char *s, char **f, int max)
{
    int n = 0;

    for (;;) {
        char *bar = strchr (s, '|');
        if (n == max)
            return -1;
        f[n++] = s;
        if (!bar)
            return n;
        *bar = '\0';
        s = bar + 1;
    }
}

cJSON *sacct_parse (const char *text, cs_error_t *errp)
{
    char *copy = strdup (text ? text : ""), *save = NULL, *line;
    char *head[64], *f[64];
    int nhead = -1, lineno = 0;
    cJSON *rows = cJSON_CreateArray ();

    if (!copy || !rows)
        goto nomem;
    for (line = strtok_r (copy, "\n", &save); line;
         line = strtok_r (NULL, "\n", &save)) {
        int n;
        lineno++;
        if (line[0] == '\0')
            continue;
        if (nhead < 0) {
            if ((nhead = split (line, head, 64)) < 0) {
                errprintf (errp, "sacct output line 1: too many fields");
                goto error;
            }
            continue;
        }
        if ((n = split (line, f, 64)) != nhead) {
            errprintf (errp,
                       "sacct output line %d: %d fields, the header "
                       "has %d",
                       lineno, n, nhead);
            goto error;
        }
        cJSON *o = cJSON_CreateObject ();
        if (!o || !cJSON_AddItemToArray (rows, o)) {
            cJSON_Delete (o);
            goto nomem;
        }
        for (int i = 0; i < n; i++)
            if (json_add_str (o, head[i], f[i]) < 0)
                goto nomem;
    }
    if (nhead < 0) {
        errprintf (errp, "sacct output is empty (no header line)");
        goto error;
    }
    free (copy);
    return rows;
nomem:
    errprintf (errp, "out of memory");
error:
    free (copy);
    cJSON_Delete (rows);
    errno = EINVAL;
    return NULL;
}

static double field_num (const cJSON *row, const char *key, bool *ok)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (row, key);
    char *end;
    double d;

    if (!cJSON_IsString (v) || !*v->valuestring) {
        *ok = false;
        return 0;
    }
    d = strtod (v->valuestring, &end);
    if (*end)
        *ok = false;
    return d;
}

double sacct_node_hours (const cJSON *rows, int *jobs)
{
    const cJSON *row;
    double sum = 0;
    int n = 0;

    cJSON_ArrayForEach (row, rows)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive (row, "JobID");
        bool ok = true;
        double nodes, secs;
        if (!cJSON_IsString (id) || strchr (id->valuestring, '.'))
            continue;
        nodes = field_num (row, "NNodes", &ok);
        secs = field_num (row, "ElapsedRaw", &ok);
        if (!ok)
            continue;
        sum += nodes * secs / 3600.0;
        n++;
    }
    if (jobs)
        *jobs = n;
    return sum;
}

char *sacct_chain_ids (const cJSON *swarm)
{
    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive (swarm, "jobs"), *it;
    size_t len = 1;
    char *s;

    cJSON_ArrayForEach (it, jobs)
        if (cJSON_IsString (it))
            len += strlen (it->valuestring) + 1;
    if (len == 1 || !(s = calloc (1, len)))
        return NULL;
    cJSON_ArrayForEach (it, jobs)
    {
        if (!cJSON_IsString (it))
            continue;
        if (*s)
            strcat (s, ",");
        strcat (s, it->valuestring);
    }
    return s;
}

cJSON *sacct_accounting (const cJSON *swarm, uint64_t tokens, uint64_t turns)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive (swarm, "backend");
    cJSON *o = cJSON_CreateObject (), *rows = NULL, *jobs;
    char *ids = NULL, *text = NULL;
    const char *why = NULL;
    cs_error_t e;
    double nh;
    int njobs = 0;

    if (!o)
        return NULL;
    if (cJSON_IsString (b) && !strcmp (b->valuestring, "local"))
        why = "a local swarm runs no Slurm job: no accounting";
    else if (!(ids = sacct_chain_ids (swarm)))
        why = "the swarm has no Slurm job yet";
    else if (sacct_query (ids, &text, &e) < 0 ||
             !(rows = sacct_parse (text, &e)))
        why = e.text;
    if (why) {
        json_add_bool (o, "available", false);
        json_add_str (o, "reason", why);
        goto done;
    }
    nh = sacct_node_hours (rows, &njobs);
    if (njobs == 0) {
        json_add_bool (o, "available", false);
        json_add_str (o, "reason", "sacct knows none of the swarm's jobs");
        goto done;
    }
    if (!(jobs = cJSON_CreateArray ()))
        goto done;
    {
        const cJSON *row;
        cJSON_ArrayForEach (row, rows)
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive (row, "JobID");
            if (cJSON_IsString (id) && !strchr (id->valuestring, '.'))
                cJSON_AddItemToArray (jobs, cJSON_Duplicate (row, 1));
        }
    }
    json_add_bool (o, "available", true);
    json_add_item (o, "jobs", jobs);
    json_add_double (o, "node_hours", nh);
    json_add_u64 (o, "tokens", tokens);
    json_add_u64 (o, "turns", turns);
    if (nh > 0)
        json_add_double (o, "tokens_per_node_hour", (double)tokens / nh);
    else
        cJSON_AddNullToObject (o, "tokens_per_node_hour");
    if (turns > 0)
        json_add_double (o, "tokens_per_turn", (double)tokens / (double)turns);
    else
        cJSON_AddNullToObject (o, "tokens_per_turn");
done:
    cJSON_Delete (rows);
    free (ids);
    free (text);
    return o;
}
