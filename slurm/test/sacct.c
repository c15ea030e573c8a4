/* sacct --parsable2 parsing and node-hours, on a fixture in sacct's
 * documented format (header line, '|'-separated fields) */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/libtap/tap.h"
#include "slurm/sacct.h"

static char *slurp (const char *path)
{
    FILE *f = fopen (path, "r");
    char *buf = NULL;
    size_t cap = 0, len = 0, n;

    if (!f)
        return NULL;
    do {
        if (len + 4096 > cap && !(buf = realloc (buf, cap = cap + 65536)))
            break;
        n = fread (buf + len, 1, 4096, f);
        len += n;
    } while (n > 0);
    fclose (f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

int main (void)
{
    char *text = slurp (SACCT_FIXTURE);
    cJSON *rows, *sw;
    cs_error_t e;
    int jobs = -1;
    double nh;
    char *ids;

    plan (NO_PLAN);
    ok (text != NULL, "read the fixture");
    rows = sacct_parse (text, &e);
    ok (rows && cJSON_GetArraySize (rows) == 5, "five rows");
    ok (!strcmp (cJSON_GetObjectItem (cJSON_GetArrayItem (rows, 3), "State")
                     ->valuestring,
                 "CANCELLED by 0"),
        "a field with blanks");
    ok (!strcmp (cJSON_GetObjectItem (cJSON_GetArrayItem (rows, 0), "AllocTRES")
                     ->valuestring,
                 "billing=2,cpu=2,mem=2000M,node=2"),
        "AllocTRES kept whole");
    nh = sacct_node_hours (rows, &jobs);
    ok (jobs == 3, "three allocations, steps left out (%d)", jobs);
    ok (nh > 2.4999 && nh < 2.5001,
        "2 x 1 h + 1 x 0.5 h = 2.5 node-hours "
        "(%.4f)",
        nh);
    cJSON_Delete (rows);

    ok (sacct_parse ("JobID|State\n1|RUNNING|extra\n", &e) == NULL &&
            strstr (e.text, "line 2: 3 fields, the header has 2"),
        "a row with too many fields: %s", e.text);
    ok (sacct_parse ("", &e) == NULL && strstr (e.text, "empty"),
        "empty output: %s", e.text);
    rows = sacct_parse ("JobID|NNodes|ElapsedRaw\n7|x|10\n", &e);
    ok (rows && sacct_node_hours (rows, &jobs) == 0 && jobs == 0,
        "rows without numbers are not counted");
    cJSON_Delete (rows);

    sw = cJSON_Parse ("{\"jobs\":[\"101\",\"102\",\"103\"]}");
    ids = sacct_chain_ids (sw);
    is (ids, "101,102,103", "the chain as sacct --jobs");
    free (ids);
    cJSON_Delete (sw);
    sw = cJSON_Parse ("{\"backend\":\"local\",\"jobs\":[]}");
    ok (sacct_chain_ids (sw) == NULL, "no job, no list");
    rows = sacct_accounting (sw, 100, 2);
    ok (rows && cJSON_IsFalse (cJSON_GetObjectItem (rows, "available")) &&
            strstr (cJSON_GetObjectItem (rows, "reason")->valuestring,
                    "local swarm"),
        "a local swarm has no accounting, and says why");
    cJSON_Delete (rows);
    cJSON_Delete (sw);
    free (text);
    done_testing ();
}
