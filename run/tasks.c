/* tasks.c - the task file: YAML (libyaml's document API) to a checked
 * task graph.
 *
 * The document is walked against the known keys; every error names
 * file:line:column of the node at fault and the key.  The graph is checked
 * after all tasks are read: unknown dependencies at the entry that names
 * them, a cycle at the first of its tasks with the whole cycle spelled out.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/json.h"
#include "common/yamlnode.h"
#include "run/tasks.h"

#define TASKS_MAX_SIZE (16 << 20)

struct ctx {
    const char *file;
    const char *basedir;
    yaml_document_t *doc;
    cs_error_t *errp;
};

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

static int scalar (struct ctx *c, yaml_node_t *n, const char *key,
                   const char *what, const char **val)
{
    return yamlnode_scalar (c->errp, c->file, n, key, what, val);
}

static int get_string (struct ctx *c, yaml_node_t *n, const char *key,
                       char **out)
{
    const char *s;
    char *d;

    if (scalar (c, n, key, "a string", &s) < 0)
        return -1;
    if (!(d = strdup (s)))
        return ctx_err (c, n->start_mark, "%s: out of memory", key);
    free (*out);
    *out = d;
    return 0;
}

static int get_bool (struct ctx *c, yaml_node_t *n, const char *key, bool *b)
{
    const char *s;

    if (scalar (c, n, key, "a boolean", &s) < 0)
        return -1;
    if (yamlnode_bool (s, b) < 0)
        return ctx_err (c, n->start_mark, "%s: \"%s\" is not a boolean "
                        "(true or false)", key, s);
    return 0;
}

static int get_int (struct ctx *c, yaml_node_t *n, const char *key, int max,
                    int *v)
{
    const char *s, *p;
    long x = 0;

    if (scalar (c, n, key, "an integer", &s) < 0)
        return -1;
    for (p = s; *p >= '0' && *p <= '9' && x <= max; p++)
        x = x * 10 + (*p - '0');
    if (p == s || *p || x > max)
        return ctx_err (c, n->start_mark, "%s: \"%s\" is not an integer "
                        "from 0 to %d", key, s, max);
    *v = (int)x;
    return 0;
}

static int get_duration (struct ctx *c, yaml_node_t *n, const char *key,
                         double *v)
{
    const char *s;

    if (scalar (c, n, key, "a duration", &s) < 0)
        return -1;
    if (parse_duration (s, v) < 0)
        return ctx_err (c, n->start_mark, "%s: \"%s\" is not a duration "
                        "(e.g. 90s, 30m, 2h)", key, s);
    return 0;
}

static int get_nodes (struct ctx *c, yaml_node_t *n, const char *key,
                      char **out)
{
    cs_error_t err;
    char *s = NULL;

    if (get_string (c, n, key, &s) < 0)
        return -1;
    if (tasks_nodeset_check (s, &err) < 0) {
        free (s);
        return ctx_err (c, n->start_mark, "%s: %s", key, err.text);
    }
    free (*out);
    *out = s;
    return 0;
}

/* "/abs", "rel" (to basedir) -> an absolute path (free) */
static char *resolve_path (struct ctx *c, const char *p)
{
    char *s;

    if (p[0] == '/' || !c->basedir)
        return strdup (p);
    if (asprintf (&s, "%s/%s", c->basedir, p) < 0)
        return NULL;
    return s;
}

/* repo: PATH | {path: PATH, base: REF} */
static int get_repo (struct ctx *c, yaml_node_t *n, const char *key,
                     char **repo, char **base)
{
    const char *s;
    char *path = NULL, *b = NULL;
    yaml_node_pair_t *pair;

    if (n->type == YAML_SCALAR_NODE) {
        if (scalar (c, n, key, "a path", &s) < 0)
            return -1;
        if (!*s)
            return ctx_err (c, n->start_mark, "%s: empty path", key);
        if (!(path = resolve_path (c, s)))
            return ctx_err (c, n->start_mark, "%s: out of memory", key);
    }
    else if (n->type == YAML_MAPPING_NODE) {
        yaml_mark_t m = n->start_mark;
        for (pair = n->data.mapping.pairs.start;
             pair < n->data.mapping.pairs.top; pair++) {
            yaml_node_t *k = yaml_document_get_node (c->doc, pair->key);
            yaml_node_t *v = yaml_document_get_node (c->doc, pair->value);
            const char *kn;
            if (!k || !v || scalar (c, k, key, "a key", &kn) < 0)
                goto error;
            if (!strcmp (kn, "path")) {
                if (path) {
                    ctx_err (c, k->start_mark, "duplicate key \"%s.path\"",
                             key);
                    goto error;
                }
                if (scalar (c, v, "repo.path", "a path", &s) < 0)
                    goto error;
                if (!*s) {
                    ctx_err (c, v->start_mark, "%s.path: empty path", key);
                    goto error;
                }
                if (!(path = resolve_path (c, s))) {
                    ctx_err (c, v->start_mark, "out of memory");
                    goto error;
                }
            }
            else if (!strcmp (kn, "base")) {
                if (b) {
                    ctx_err (c, k->start_mark, "duplicate key \"%s.base\"",
                             key);
                    goto error;
                }
                if (scalar (c, v, "repo.base", "a git ref", &s) < 0)
                    goto error;
                if (!*s || s[0] == '-') {
                    ctx_err (c, v->start_mark, "%s.base: \"%s\" is not a "
                             "git ref", key, s);
                    goto error;
                }
                if (!(b = strdup (s))) {
                    ctx_err (c, v->start_mark, "out of memory");
                    goto error;
                }
            }
            else {
                ctx_err (c, k->start_mark, "unknown key \"%s.%s\"", key, kn);
                goto error;
            }
        }
        if (!path) {
            ctx_err (c, m, "%s: missing \"path\"", key);
            goto error;
        }
    }
    else
        return ctx_err (c, n->start_mark, "%s: expected a path or a mapping "
                        "of path and base, not %s", key, yamlnode_kind (n));
    free (*repo);
    free (*base);
    *repo = path;
    *base = b;
    return 0;
error:
    free (path);
    free (b);
    return -1;
}

static void task_release (struct task *t)
{
    int i;

    free (t->id);
    free (t->prompt);
    for (i = 0; i < t->ndeps; i++)
        free (t->deps[i]);
    free (t->deps);
    free (t->dep);
    free (t->repo);
    free (t->base);
    free (t->accept);
    free (t->nodes);
    memset (t, 0, sizeof (*t));
}

/* A key shared by defaults and tasks; 1 if handled, 0 if not one of them */
static int common_key (struct ctx *c, const char *kn, const char *key,
                       yaml_node_t *v, struct task *t)
{
    if (!strcmp (kn, "repo"))
        return get_repo (c, v, key, &t->repo, &t->base) < 0 ? -1 : 1;
    if (!strcmp (kn, "accept"))
        return get_string (c, v, key, &t->accept) < 0 ? -1 : 1;
    if (!strcmp (kn, "retries"))
        return get_int (c, v, key, 100, &t->retries) < 0 ? -1 : 1;
    if (!strcmp (kn, "timeout"))
        return get_duration (c, v, key, &t->timeout) < 0 ? -1 : 1;
    if (!strcmp (kn, "nodes"))
        return get_nodes (c, v, key, &t->nodes) < 0 ? -1 : 1;
    if (!strcmp (kn, "fresh_thread"))
        return get_bool (c, v, key, &t->fresh_thread) < 0 ? -1 : 1;
    return 0;
}

/* Iterate a mapping's pairs: key name (checked scalar, not repeated). */
static int pair_of (struct ctx *c, yaml_node_t *map, yaml_node_pair_t *pair,
                    const char *prefix, const char **name, yaml_node_t **v,
                    yaml_mark_t *km)
{
    yaml_node_t *k = yaml_document_get_node (c->doc, pair->key);
    char keyname[256];

    if (yamlnode_key (c->errp, c->file, c->doc, map, pair, prefix, name,
                      keyname, sizeof (keyname)) < 0)
        return -1;
    *km = k->start_mark;
    if (!(*v = yaml_document_get_node (c->doc, pair->value)))
        return ctx_err (c, k->start_mark, "\"%s\" has no value", keyname);
    return 0;
}

static int load_defaults (struct ctx *c, yaml_node_t *map, struct task *d)
{
    yaml_node_pair_t *pair;

    if (yamlnode_is_null (map))
        return 0;
    if (map->type != YAML_MAPPING_NODE)
        return ctx_err (c, map->start_mark, "defaults: expected a mapping, "
                        "not %s", yamlnode_kind (map));
    for (pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        const char *kn;
        char key[128];
        yaml_node_t *v;
        yaml_mark_t km;
        int rc;
        if (pair_of (c, map, pair, "defaults", &kn, &v, &km) < 0)
            return -1;
        snprintf (key, sizeof (key), "defaults.%s", kn);
        if ((rc = common_key (c, kn, key, v, d)) < 0)
            return -1;
        if (rc == 0)
            return ctx_err (c, km, "unknown key \"%s\"", key);
    }
    return 0;
}

static int copy_defaults (struct task *t, const struct task *d)
{
    if ((d->repo && !(t->repo = strdup (d->repo)))
        || (d->base && !(t->base = strdup (d->base)))
        || (d->accept && !(t->accept = strdup (d->accept)))
        || (d->nodes && !(t->nodes = strdup (d->nodes))))
        return -1;
    t->retries = d->retries;
    t->timeout = d->timeout;
    t->fresh_thread = d->fresh_thread;
    return 0;
}

static int load_deps (struct ctx *c, yaml_node_t *v, const char *key,
                      struct task *t)
{
    yaml_node_item_t *it;
    int n = 0;

    if (v->type == YAML_SCALAR_NODE && yamlnode_is_null (v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE)
        return ctx_err (c, v->start_mark, "%s: expected a list of task ids, "
                        "not %s", key, yamlnode_kind (v));
    n = v->data.sequence.items.top - v->data.sequence.items.start;
    if (n > TASKS_MAX)
        return ctx_err (c, v->start_mark, "%s: too many entries", key);
    if (n == 0)
        return 0;
    if (!(t->deps = calloc (n, sizeof (*t->deps)))
        || !(t->dep = calloc (n, sizeof (*t->dep))))
        return ctx_err (c, v->start_mark, "%s: out of memory", key);
    for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *e = yaml_document_get_node (c->doc, *it);
        const char *s;
        int i;
        if (!e || scalar (c, e, key, "a task id", &s) < 0)
            return -1;
        for (i = 0; i < t->ndeps; i++) {
            if (!strcmp (t->deps[i], s))
                return ctx_err (c, e->start_mark, "%s: \"%s\" is listed "
                                "twice", key, s);
        }
        if (!strcmp (s, t->id))
            return ctx_err (c, e->start_mark, "%s: task \"%s\" depends on "
                            "itself", key, s);
        if (!(t->deps[t->ndeps] = strdup (s)))
            return ctx_err (c, e->start_mark, "%s: out of memory", key);
        t->dep[t->ndeps++] = -1;
    }
    return 0;
}

static int load_task (struct ctx *c, yaml_node_t *map, const struct task *d,
                      struct task *t, int idx)
{
    yaml_node_pair_t *pair;
    yaml_node_t *idnode = NULL, *depnode = NULL;
    bool have_prompt = false;
    char prefix[TASKS_ID_MAX + 32];

    t->line = map->start_mark.line + 1;
    t->col = map->start_mark.column + 1;
    if (map->type != YAML_MAPPING_NODE)
        return ctx_err (c, map->start_mark, "tasks[%d]: expected a mapping, "
                        "not %s", idx, yamlnode_kind (map));
    if (copy_defaults (t, d) < 0)
        return ctx_err (c, map->start_mark, "out of memory");
    /* the id first, so that every later message can name the task */
    for (pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node (c->doc, pair->key);
        if (k && k->type == YAML_SCALAR_NODE
            && !strcmp ((char *)k->data.scalar.value, "id")
            && !idnode)
            idnode = yaml_document_get_node (c->doc, pair->value);
    }
    if (!idnode)
        return ctx_err (c, map->start_mark, "tasks[%d]: missing \"id\"", idx);
    snprintf (prefix, sizeof (prefix), "tasks[%d].id", idx);
    if (get_string (c, idnode, prefix, &t->id) < 0)
        return -1;
    if (!tasks_id_valid (t->id))
        return ctx_err (c, idnode->start_mark, "%s: \"%s\" is not a valid "
                        "task id (letters, digits, '.', '_', '-'; at most %d; "
                        "not starting with '.' or '-')", prefix, t->id,
                        TASKS_ID_MAX);
    snprintf (prefix, sizeof (prefix), "tasks.%s", t->id);

    for (pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        const char *kn;
        char key[TASKS_ID_MAX + 64];
        yaml_node_t *v;
        yaml_mark_t km;
        int rc;
        if (pair_of (c, map, pair, prefix, &kn, &v, &km) < 0)
            return -1;
        snprintf (key, sizeof (key), "%s.%s", prefix, kn);
        if (!strcmp (kn, "id"))
            continue;
        if (!strcmp (kn, "prompt")) {
            if (get_string (c, v, key, &t->prompt) < 0)
                return -1;
            if (!*t->prompt)
                return ctx_err (c, v->start_mark, "%s: empty prompt", key);
            have_prompt = true;
            continue;
        }
        if (!strcmp (kn, "depends_on")) {
            depnode = v;
            if (load_deps (c, v, key, t) < 0)
                return -1;
            continue;
        }
        if ((rc = common_key (c, kn, key, v, t)) < 0)
            return -1;
        if (rc == 0)
            return ctx_err (c, km, "unknown key \"%s\"", key);
    }
    (void)depnode;
    if (!have_prompt)
        return ctx_err (c, map->start_mark, "%s: missing \"prompt\"",
                        prefix);
    if (t->repo && !t->base && !(t->base = strdup ("HEAD")))
        return ctx_err (c, map->start_mark, "out of memory");
    return 0;
}

/* ---- the graph ------------------------------------------------------------ */

static int find_in (const struct task *tasks, int n, const char *id)
{
    int i;

    for (i = 0; i < n; i++) {
        if (!strcmp (tasks[i].id, id))
            return i;
    }
    return -1;
}

/* Resolve dependency ids, then order by Kahn's algorithm (ties in file
 * order); what remains lies on or behind a cycle, found by walking it.
 */
static int check_graph (struct ctx *c, taskfile_t *tf, yaml_node_t *seq)
{
    int n = tf->ntasks, i, j, head = 0, tail = 0;
    int *indeg = calloc (n ? n : 1, sizeof (int));
    int *state = NULL;
    yaml_node_item_t *items = seq->data.sequence.items.start;

    if (!indeg || !(tf->order = calloc (n ? n : 1, sizeof (int))))
        goto nomem;
    for (i = 0; i < n; i++) {
        struct task *t = &tf->tasks[i];
        for (j = 0; j < t->ndeps; j++) {
            if ((t->dep[j] = find_in (tf->tasks, n, t->deps[j])) < 0) {
                yaml_node_t *tn = yaml_document_get_node (c->doc, items[i]);
                /* point at the entry in depends_on */
                yaml_mark_t m = tn->start_mark;
                yaml_node_pair_t *p;
                for (p = tn->data.mapping.pairs.start;
                     p < tn->data.mapping.pairs.top; p++) {
                    yaml_node_t *k = yaml_document_get_node (c->doc, p->key);
                    yaml_node_t *v = yaml_document_get_node (c->doc,
                                                             p->value);
                    if (strcmp ((char *)k->data.scalar.value, "depends_on")
                        || v->type != YAML_SEQUENCE_NODE)
                        continue;
                    m = yaml_document_get_node (c->doc,
                            v->data.sequence.items.start[j])->start_mark;
                }
                free (indeg);
                return ctx_err (c, m, "tasks.%s.depends_on: unknown task "
                                "\"%s\"", t->id, t->deps[j]);
            }
            indeg[i]++;
        }
    }
    /* Kahn, a queue in tf->order; dependants found by scanning (n is small
     * enough: the check runs once) */
    for (i = 0; i < n; i++) {
        if (indeg[i] == 0)
            tf->order[tail++] = i;
    }
    while (head < tail) {
        int u = tf->order[head++];
        for (i = 0; i < n; i++) {
            for (j = 0; j < tf->tasks[i].ndeps; j++) {
                if (tf->tasks[i].dep[j] == u && --indeg[i] == 0)
                    tf->order[tail++] = i;
            }
        }
    }
    if (tail < n) {
        /* a task left over: follow unfinished dependencies until one
         * repeats; that one is on a cycle */
        char cyc[512];
        size_t len = 0;
        int u = -1, v, steps;
        if (!(state = calloc (n, sizeof (int))))
            goto nomem;
        for (i = 0; i < n && u < 0; i++) {
            if (indeg[i] > 0)
                u = i;
        }
        while (!state[u]) {
            state[u] = 1;
            for (j = 0; j < tf->tasks[u].ndeps; j++) {
                if (indeg[tf->tasks[u].dep[j]] > 0)
                    break;
            }
            u = tf->tasks[u].dep[j];
        }
        /* u is on the cycle: spell it from the task that comes first in
         * the file */
        v = u;
        for (steps = 0, i = u;; steps++) {
            for (j = 0; j < tf->tasks[i].ndeps; j++) {
                if (indeg[tf->tasks[i].dep[j]] > 0
                    && state[tf->tasks[i].dep[j]])
                    break;
            }
            i = tf->tasks[i].dep[j];
            if (i < v)
                v = i;
            if (i == u)
                break;
        }
        cyc[0] = '\0';
        i = v;
        do {
            int k = snprintf (cyc + len, sizeof (cyc) - len, "%s -> ",
                              tf->tasks[i].id);
            if (k > 0 && (size_t)k < sizeof (cyc) - len)
                len += k;
            for (j = 0; j < tf->tasks[i].ndeps; j++) {
                if (indeg[tf->tasks[i].dep[j]] > 0
                    && state[tf->tasks[i].dep[j]])
                    break;
            }
            i = tf->tasks[i].dep[j];
        } while (i != v);
        snprintf (cyc + len, sizeof (cyc) - len, "%s", tf->tasks[v].id);
        {
            yaml_node_t *tn = yaml_document_get_node (c->doc, items[v]);
            free (indeg);
            free (state);
            return ctx_err (c, tn->start_mark, "tasks.%s.depends_on: "
                            "dependency cycle %s", tf->tasks[v].id, cyc);
        }
    }
    free (indeg);
    free (state);
    return 0;
nomem:
    free (indeg);
    free (state);
    errno = ENOMEM;
    return errprintf (c->errp, "%s: out of memory", c->file);
}

/* ---- loading -------------------------------------------------------------- */

static int load_root (struct ctx *c, yaml_node_t *root, taskfile_t *tf)
{
    yaml_node_pair_t *pair;
    yaml_node_t *tasks = NULL, *defaults = NULL;
    yaml_mark_t tasks_mark = root->start_mark;
    struct task d;
    yaml_node_item_t *it;
    int n, i = 0, rc = -1;

    memset (&d, 0, sizeof (d));
    d.fresh_thread = true;
    if (root->type != YAML_MAPPING_NODE)
        return ctx_err (c, root->start_mark, "expected a mapping with "
                        "\"tasks\", not %s", yamlnode_kind (root));
    for (pair = root->data.mapping.pairs.start;
         pair < root->data.mapping.pairs.top; pair++) {
        const char *kn;
        yaml_node_t *v;
        yaml_mark_t km;
        if (pair_of (c, root, pair, "", &kn, &v, &km) < 0)
            return -1;
        if (!strcmp (kn, "tasks")) {
            tasks = v;
            tasks_mark = km;
        }
        else if (!strcmp (kn, "defaults"))
            defaults = v;
        else
            return ctx_err (c, km, "unknown key \"%s\"", kn);
    }
    if (!tasks)
        return ctx_err (c, root->start_mark, "missing \"tasks\"");
    if (tasks->type != YAML_SEQUENCE_NODE)
        return ctx_err (c, tasks->start_mark, "tasks: expected a list, not "
                        "%s", yamlnode_kind (tasks));
    n = tasks->data.sequence.items.top - tasks->data.sequence.items.start;
    if (n == 0)
        return ctx_err (c, tasks_mark, "tasks: the list is empty");
    if (n > TASKS_MAX)
        return ctx_err (c, tasks_mark, "tasks: more than %d tasks",
                        TASKS_MAX);
    if (defaults && load_defaults (c, defaults, &d) < 0)
        goto done;
    if (!(tf->tasks = calloc (n, sizeof (*tf->tasks)))) {
        ctx_err (c, tasks_mark, "out of memory");
        goto done;
    }
    for (it = tasks->data.sequence.items.start;
         it < tasks->data.sequence.items.top; it++, i++) {
        yaml_node_t *tn = yaml_document_get_node (c->doc, *it);
        int prev;
        tf->ntasks = i + 1;
        if (load_task (c, tn, &d, &tf->tasks[i], i) < 0)
            goto done;
        if ((prev = find_in (tf->tasks, i, tf->tasks[i].id)) >= 0) {
            ctx_err (c, tn->start_mark, "tasks.%s: duplicate task id (the "
                     "first is at line %d)", tf->tasks[i].id,
                     tf->tasks[prev].line);
            goto done;
        }
    }
    rc = check_graph (c, tf, tasks);
done:
    task_release (&d);
    return rc;
}

taskfile_t *taskfile_parse (const char *buf, size_t len, const char *name,
                            const char *basedir, cs_error_t *errp)
{
    struct ctx c = { .file = name, .basedir = basedir, .errp = errp };
    yaml_parser_t parser;
    yaml_document_t doc, doc2;
    yaml_node_t *root;
    taskfile_t *tf = calloc (1, sizeof (*tf));
    int rc = -1;

    if (!tf || !(tf->path = strdup (name))) {
        free (tf);
        errprintf (errp, "%s: out of memory", name);
        return NULL;
    }
    c.doc = &doc;
    if (!yaml_parser_initialize (&parser)) {
        taskfile_destroy (tf);
        errno = ENOMEM;
        errprintf (errp, "%s: out of memory", name);
        return NULL;
    }
    yaml_parser_set_input_string (&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load (&parser, &doc)) {
        yamlnode_parse_error (errp, name, &parser, buf, len);
        goto out;
    }
    if (!(root = yaml_document_get_root_node (&doc))) {
        errno = EINVAL;
        errprintf (errp, "%s: empty file: expected \"tasks\"", name);
        yaml_document_delete (&doc);
        goto out;
    }
    /* one document only */
    if (!yaml_parser_load (&parser, &doc2))
        yamlnode_parse_error (errp, name, &parser, buf, len);
    else if (yaml_document_get_root_node (&doc2)) {
        ctx_err (&c, doc2.start_mark, "a second YAML document; a task file "
                 "holds one");
        yaml_document_delete (&doc2);
    }
    else {
        yaml_document_delete (&doc2);
        rc = load_root (&c, root, tf);
    }
    yaml_document_delete (&doc);
out:
    yaml_parser_delete (&parser);
    if (rc < 0) {
        taskfile_destroy (tf);
        return NULL;
    }
    return tf;
}

taskfile_t *taskfile_load (const char *path, cs_error_t *errp)
{
    char *buf, *dir = NULL, *slash;
    size_t len = 0;
    taskfile_t *tf = NULL;

    if (!(buf = yamlnode_read_file (path, TASKS_MAX_SIZE, &len, errp)))
        return NULL;
    /* relative repo paths: relative to the file's directory, absolute */
    {
        char *real = realpath (path, NULL);
        if (!real) {
            errprintf (errp, "cannot resolve '%s': %s", path,
                       strerror (errno));
            goto done;
        }
        slash = strrchr (real, '/');
        if (slash == real)
            slash[1] = '\0';
        else
            *slash = '\0';
        dir = real;
    }
    tf = taskfile_parse (buf, len, path, dir, errp);
done:
    {
        int saved = errno;
        free (buf);
        free (dir);
        errno = saved;
    }
    return tf;
}

void taskfile_destroy (taskfile_t *tf)
{
    if (tf) {
        int saved = errno, i;
        for (i = 0; i < tf->ntasks; i++)
            task_release (&tf->tasks[i]);
        free (tf->tasks);
        free (tf->order);
        free (tf->path);
        free (tf);
        errno = saved;
    }
}

int taskfile_find (const taskfile_t *tf, const char *id)
{
    return find_in (tf->tasks, tf->ntasks, id);
}

bool tasks_id_valid (const char *s)
{
    size_t n = strlen (s), i;

    if (n == 0 || n > TASKS_ID_MAX || s[0] == '.' || s[0] == '-'
        || strstr (s, "..")
        || (n >= 5 && !strcmp (s + n - 5, ".lock")))
        return false;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_'
              || ch == '-'))
            return false;
    }
    return true;
}

/* Walk a node set; for each range call (when k >= 0) test membership.
 * Returns 1 (k in it), 0 (not), -1 (bad syntax, errp).
 */
static int nodeset_walk (const char *s, int k, cs_error_t *errp)
{
    const char *p = s;

    if (!strcmp (s, "all"))
        return 1;
    if (!*s)
        return errprintf (errp, "empty node set");
    for (;;) {
        char *end;
        long a, b;
        if (*p < '0' || *p > '9')
            return errprintf (errp, "\"%s\" is not a node set (e.g. \"all\", "
                              "\"3\", \"0,2-5\")", s);
        a = strtol (p, &end, 10);
        b = a;
        p = end;
        if (*p == '-') {
            p++;
            if (*p < '0' || *p > '9')
                return errprintf (errp, "\"%s\" is not a node set (e.g. "
                                  "\"all\", \"3\", \"0,2-5\")", s);
            b = strtol (p, &end, 10);
            p = end;
        }
        if (a > b || b > INT_MAX - 1)
            return errprintf (errp, "\"%s\": bad range %ld-%ld", s, a, b);
        if (k >= 0 && k >= a && k <= b)
            return 1;
        if (!*p)
            return 0;
        if (*p++ != ',')
            return errprintf (errp, "\"%s\" is not a node set (e.g. \"all\", "
                              "\"3\", \"0,2-5\")", s);
    }
}

bool tasks_node_allowed (const char *s, int k)
{
    cs_error_t err;
    return !s || nodeset_walk (s, k, &err) == 1;
}

int tasks_nodeset_check (const char *s, cs_error_t *errp)
{
    return nodeset_walk (s, -1, errp) < 0 ? -1 : 0;
}

/* vi: set ts=4 sw=4 expandtab: */
