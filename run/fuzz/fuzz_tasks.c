/* fuzz_tasks.c - libFuzzer target for the task file parser of
 * "codeswarm run" (codeswarm-tasks(5))
 *
 * Any input either loads into a consistent task graph (and is released) or
 * fails with a message that names the input.  ASan/UBSan catch the rest.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/tasks.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* A loaded graph: valid unique ids, resolved dependencies, and an order
 * that is a permutation with every dependency before its dependant.
 */
static void check_graph (const taskfile_t *tf)
{
    int *pos;

    if (tf->ntasks < 1 || tf->ntasks > TASKS_MAX || !tf->order)
        abort ();
    if (!(pos = malloc (tf->ntasks * sizeof (*pos))))
        abort ();
    for (int i = 0; i < tf->ntasks; i++)
        pos[i] = -1;
    for (int i = 0; i < tf->ntasks; i++) {
        int k = tf->order[i];
        if (k < 0 || k >= tf->ntasks || pos[k] != -1)
            abort ();
        pos[k] = i;
    }
    for (int i = 0; i < tf->ntasks; i++) {
        const struct task *t = &tf->tasks[i];
        if (!tasks_id_valid (t->id) || !t->prompt
            || taskfile_find (tf, t->id) != i || t->retries < 0
            || t->timeout < 0 || (t->repo && t->repo[0] != '/'))
            abort ();
        if (t->nodes && tasks_nodeset_check (t->nodes, NULL) < 0)
            abort ();
        for (int j = 0; j < t->ndeps; j++) {
            int d = t->dep[j];
            if (d < 0 || d >= tf->ntasks || d == i || pos[d] >= pos[i]
                || strcmp (tf->tasks[d].id, t->deps[j]) != 0)
                abort ();
        }
    }
    free (pos);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    taskfile_t *tf;
    cs_error_t e;

    if ((tf = taskfile_parse ((const char *)data, size, "fuzz.yaml",
                              "/base", &e))) {
        check_graph (tf);
        taskfile_destroy (tf);
    }
    else if (strncmp (e.text, "fuzz.yaml", 9) != 0) {
        fprintf (stderr, "message without the file name: %s\n", e.text);
        abort ();
    }
    return 0;
}
