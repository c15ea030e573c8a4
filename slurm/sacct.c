/* sacct.c - Slurm accounting of a swarm's job chain (sacct.h) */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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
