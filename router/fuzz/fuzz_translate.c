/* fuzz_translate.c - libFuzzer target: outbox record lines -> translator.
 * The input is split at newlines; each line goes to node (first byte % 4)
 * of one translator, so that state carries across records; the state of
 * every node is saved and restored into a second translator as well.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "router/translate.h"

static void emit (const char *name, cJSON *data, void *arg)
{
    char *s = cJSON_PrintUnformatted (data);
    cJSON_free (s);
    cJSON_Delete (data);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    rt_trans_t *t = rt_trans_create ("fuzz", emit, NULL);
    rt_trans_t *t2 = rt_trans_create ("fuzz", emit, NULL);
    const char *p = (const char *)data, *end = p + size;
    cJSON *a;

    rt_trans_set_debug (t, size % 2);
    while (p < end) {
        const char *nl = memchr (p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        int node = len ? (unsigned char)p[0] % 4 : 0;
        (void)rt_trans_line (t, node, p, len, 1.0, NULL);
        p += len + 1;
    }
    (void)rt_trans_check_lost (t, 1000.0, 10.0);
    for (int k = -1; k < 4; k++) {
        cJSON *st = rt_trans_state (t, k);
        if (st) {
            (void)rt_trans_restore (t2, k, st, 1.0, NULL);
            cJSON_Delete (st);
        }
    }
    cJSON_Delete (rt_trans_approvals (t2));
    cJSON_Delete (rt_trans_nodes (t2));
    if ((a = cJSON_ParseWithLength ((const char *)data, size))) {
        (void)rt_trans_swarm_record (t, a, 1.0, NULL);
        cJSON_Delete (a);
    }
    rt_trans_destroy (t);
    rt_trans_destroy (t2);
    return 0;
}
