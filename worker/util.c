/* util.c - pure helpers of codeswarm-worker (see util.h) */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/util.h"

/* ---- ANSI ------------------------------------------------------------ */

size_t ansi_strip (char *s, size_t len)
{
    size_t i = 0, o = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0x1b) {
            if (i + 1 >= len)
                break;                          /* cut off */
            unsigned char n = (unsigned char)s[i + 1];
            if (n == '[') {                     /* CSI: params, final 0x40-0x7e */
                size_t j = i + 2;
                while (j < len && !((unsigned char)s[j] >= 0x40
                                    && (unsigned char)s[j] <= 0x7e))
                    j++;
                i = j < len ? j + 1 : len;
            }
            else if (n == ']') {                /* OSC: to BEL or ESC \ */
                size_t j = i + 2;
                while (j < len && s[j] != '\a'
                       && !(s[j] == 0x1b && j + 1 < len && s[j + 1] == '\\'))
                    j++;
                if (j >= len)
                    i = len;
                else
                    i = j + (s[j] == '\a' ? 1 : 2);
            }
            else {                              /* ESC [intermediates] final */
                size_t j = i + 1;
                while (j < len && (unsigned char)s[j] >= 0x20
                       && (unsigned char)s[j] <= 0x2f)
                    j++;
                i = j < len ? j + 1 : len;
            }
            continue;
        }
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
            i++;
            continue;
        }
        s[o++] = s[i++];
    }
    return o;
}

/* ---- tail ring ----------------------------------------------------------- */

int tail_init (struct tail *t, size_t size)
{
    memset (t, 0, sizeof (*t));
    if (size == 0)
        size = 1;
    if (!(t->buf = malloc (size)))
        return -1;
    t->size = size;
    return 0;
}

void tail_release (struct tail *t)
{
    int saved = errno;
    free (t->buf);
    memset (t, 0, sizeof (*t));
    errno = saved;
}

void tail_clear (struct tail *t)
{
    t->start = t->len = 0;
}

void tail_append (struct tail *t, const char *data, size_t len)
{
    if (!t->buf)
        return;
    if (len >= t->size) {
        memcpy (t->buf, data + len - t->size, t->size);
        t->start = 0;
        t->len = t->size;
        return;
    }
    for (size_t i = 0; i < len; i++) {
        size_t end = (t->start + t->len) % t->size;
        t->buf[end] = data[i];
        if (t->len < t->size)
            t->len++;
        else
            t->start = (t->start + 1) % t->size;
    }
}

char *tail_str (const struct tail *t)
{
    char *s = malloc (t->len + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < t->len; i++)
        s[i] = t->buf[(t->start + i) % t->size];
    s[t->len] = '\0';
    return s;
}

/* ---- policy ---------------------------------------------------------------- */

static const char *skip_blanks (const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

bool policy_prefix_match (const char *prefix, const char *command)
{
    const char *p = skip_blanks (prefix);
    const char *c = skip_blanks (command);

    if (*p == '\0')
        return false;                           /* an empty rule matches nothing */
    while (*p) {
        size_t pw = strcspn (p, " \t");
        size_t cw = strcspn (c, " \t");
        if (pw != cw || strncmp (p, c, pw) != 0)
            return false;
        p = skip_blanks (p + pw);
        c = skip_blanks (c + cw);
    }
    return true;
}

static size_t trimmed_len (const char *s)
{
    size_t n = strlen (s);
    while (n > 1 && s[n - 1] == '/')
        n--;
    return n;
}

bool policy_path_within (const char *dir, const char *path)
{
    size_t dn, pn;

    if (!dir || !path || dir[0] != '/' || path[0] != '/')
        return false;
    dn = trimmed_len (dir);
    pn = trimmed_len (path);
    if (pn < dn || strncmp (dir, path, dn) != 0)
        return false;
    if (strstr (path, "/../") || (pn >= 3 && !strncmp (path + pn - 3, "/..", 3)))
        return false;                           /* not canonical: refuse */
    return pn == dn || path[dn] == '/' || (dn == 1 && dir[0] == '/');
}

/* "/bin/bash -c 'echo hi'" -> "echo hi" (only for the simple quoting codex
 * emits: one single-quoted script with no embedded quote).
 */
static char *unwrap_shell (const char *cmd)
{
    static const char *shells[] = { "/bin/bash", "bash", "/bin/sh", "sh",
                                    "/usr/bin/bash", "/bin/zsh", "zsh", NULL };
    for (int i = 0; shells[i]; i++) {
        size_t n = strlen (shells[i]);
        if (strncmp (cmd, shells[i], n) != 0 || (cmd[n] != ' '))
            continue;
        const char *r = skip_blanks (cmd + n);
        if (!strncmp (r, "-c ", 3))
            r = skip_blanks (r + 3);
        else if (!strncmp (r, "-lc ", 4))
            r = skip_blanks (r + 4);
        else
            break;
        size_t rn = strlen (r);
        if (rn >= 2 && r[0] == '\'' && r[rn - 1] == '\''
            && !memchr (r + 1, '\'', rn - 2))
            return strndup (r + 1, rn - 2);
        return strdup (r);
    }
    return strdup (cmd);
}

size_t policy_commands (const cJSON *params, char **cmds, size_t max)
{
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive (params, "command");
    const cJSON *acts = cJSON_GetObjectItemCaseSensitive (params,
                                                          "commandActions");
    size_t n = 0;

    if (max == 0)
        return 0;
    if (cJSON_IsArray (acts) && cJSON_GetArraySize (acts) > 0) {
        const cJSON *a;
        cJSON_ArrayForEach (a, acts) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive (a, "command");
            if (!cJSON_IsString (c) || n == max)
                goto fallback;
            if (!(cmds[n] = strdup (c->valuestring)))
                goto fallback;
            n++;
        }
        return n;
    }
fallback:
    while (n > 0)
        free (cmds[--n]);
    if (cJSON_IsString (cmd)) {
        if ((cmds[0] = unwrap_shell (cmd->valuestring)))
            return 1;
        return 0;
    }
    if (cJSON_IsArray (cmd)) {                  /* legacy: argv */
        size_t len = 1;
        const cJSON *w;
        cJSON_ArrayForEach (w, cmd) {
            if (!cJSON_IsString (w))
                return 0;
            len += strlen (w->valuestring) + 1;
        }
        char *s = calloc (1, len);
        if (!s)
            return 0;
        cJSON_ArrayForEach (w, cmd) {
            if (s[0])
                strcat (s, " ");
            strcat (s, w->valuestring);
        }
        /* ["bash","-lc","script"] -> script */
        char *u = unwrap_shell (s);
        if (u && cJSON_GetArraySize (cmd) == 3) {
            const cJSON *last = cJSON_GetArrayItem (cmd, 2);
            const cJSON *flag = cJSON_GetArrayItem (cmd, 1);
            if (!strcmp (flag->valuestring, "-c")
                || !strcmp (flag->valuestring, "-lc")) {
                free (u);
                u = strdup (last->valuestring);
            }
        }
        free (s);
        if (!u)
            return 0;
        cmds[0] = u;
        return 1;
    }
    return 0;
}

const char *policy_decide (const struct cs_approval_rule *rules,
                           size_t nrules, const cJSON *params,
                           const char *workspace)
{
    char *cmds[16];
    size_t n = policy_commands (params, cmds, 16);
    const char *result = NULL;
    const cJSON *cwd = cJSON_GetObjectItemCaseSensitive (params, "cwd");

    if (n == 0)
        return NULL;
    for (size_t r = 0; r < nrules && !result; r++) {
        if (!rules[r].prefix || !rules[r].decision)
            continue;
        if (rules[r].in_workspace
            && !(cJSON_IsString (cwd)
                 && policy_path_within (workspace, cwd->valuestring)))
            continue;
        bool all = true;
        for (size_t i = 0; i < n && all; i++)
            all = policy_prefix_match (rules[r].prefix, cmds[i]);
        if (all)
            result = rules[r].decision;
    }
    for (size_t i = 0; i < n; i++)
        free (cmds[i]);
    return result;
}

/* ---- decisions -------------------------------------------------------------- */

bool decision_valid (const char *s)
{
    return s && (!strcmp (s, "accept") || !strcmp (s, "acceptForSession")
                 || !strcmp (s, "decline") || !strcmp (s, "cancel"));
}

cJSON *decision_wire (const char *method, const char *decision)
{
    bool legacy = !strcmp (method, "execCommandApproval")
                  || !strcmp (method, "applyPatchApproval");

    if (!decision_valid (decision))
        return NULL;
    if (!legacy)
        return cJSON_CreateString (decision);
    if (!strcmp (decision, "accept"))
        return cJSON_CreateString ("approved");
    if (!strcmp (decision, "acceptForSession"))
        return cJSON_CreateString ("approved_for_session");
    if (!strcmp (decision, "cancel"))
        return cJSON_CreateString ("abort");
    cJSON *o = cJSON_CreateObject ();
    cJSON *d;
    if (!o)
        return NULL;
    if (!(d = cJSON_AddObjectToObject (o, "denied"))
        || !cJSON_AddStringToObject (d, "rejection",
                                     "declined through codeswarm")) {
        cJSON_Delete (o);
        return NULL;
    }
    return o;
}

static bool strings_array (const cJSON *a)
{
    const cJSON *e;
    if (!cJSON_IsArray (a) || !a->child)
        return false;
    cJSON_ArrayForEach (e, a) {
        if (!cJSON_IsString (e))
            return false;
    }
    return true;
}

const cJSON *decision_amendment (const cJSON *decision)
{
    const cJSON *o, *a;
    if (!cJSON_IsObject (decision) || !decision->child
        || decision->child->next)
        return NULL;
    o = cJSON_GetObjectItemCaseSensitive (decision,
                                          "acceptWithExecpolicyAmendment");
    a = cJSON_GetObjectItemCaseSensitive (o, "execpolicy_amendment");
    return strings_array (a) ? a : NULL;
}

cJSON *decision_amendment_wire (const char *method, const cJSON *amendment)
{
    const char *outer, *inner;
    cJSON *o, *in, *c;

    if (!strcmp (method, "item/commandExecution/requestApproval")) {
        outer = "acceptWithExecpolicyAmendment";
        inner = "execpolicy_amendment";
    }
    else if (!strcmp (method, "execCommandApproval")) {
        outer = "approved_execpolicy_amendment";
        inner = "proposed_execpolicy_amendment";
    }
    else {
        errno = EINVAL;
        return NULL;
    }
    if (!strings_array (amendment)) {
        errno = EINVAL;
        return NULL;
    }
    if (!(o = cJSON_CreateObject ()))
        return NULL;
    if (!(in = cJSON_AddObjectToObject (o, outer))
        || !(c = cJSON_Duplicate (amendment, true))
        || !cJSON_AddItemToObject (in, inner, c)) {
        cJSON_Delete (o);
        return NULL;
    }
    return o;
}

/* ---- paths -------------------------------------------------------------------- */

char *path_expand (const char *tmpl, const char *home, const char *swarm,
                   int node)
{
    char nodebuf[32];
    size_t len = 1;
    char *out;

    snprintf (nodebuf, sizeof (nodebuf), "%d", node);
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '%' && p[1]) {
            p++;
            len += *p == 'h' ? strlen (home) : *p == 's' ? strlen (swarm)
                   : *p == 'k' ? strlen (nodebuf) : 2;
        }
        else
            len++;
    }
    if (!(out = malloc (len)))
        return NULL;
    char *o = out;
    for (const char *p = tmpl; *p; p++) {
        const char *sub = NULL;
        if (p[0] == '%' && p[1]) {
            switch (p[1]) {
            case 'h': sub = home; break;
            case 's': sub = swarm; break;
            case 'k': sub = nodebuf; break;
            case '%': sub = "%"; break;
            default: break;
            }
            if (sub) {
                o = stpcpy (o, sub);
                p++;
                continue;
            }
        }
        *o++ = *p;
    }
    *o = '\0';
    return out;
}

uint64_t fnv1a (uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- string set ------------------------------------------------------------------ */

static int strset_grow (struct strset *s)
{
    size_t nsize = s->size ? s->size * 2 : 64;
    char **nslot = calloc (nsize, sizeof (*nslot));
    if (!nslot)
        return -1;
    for (size_t i = 0; i < s->size; i++) {
        if (!s->slot[i])
            continue;
        size_t j = fnv1a (FNV1A_INIT, s->slot[i]) & (nsize - 1);
        while (nslot[j])
            j = (j + 1) & (nsize - 1);
        nslot[j] = s->slot[i];
    }
    free (s->slot);
    s->slot = nslot;
    s->size = nsize;
    return 0;
}

bool strset_has (const struct strset *s, const char *str)
{
    if (!s->size || !str)
        return false;
    size_t j = fnv1a (FNV1A_INIT, str) & (s->size - 1);
    while (s->slot[j]) {
        if (!strcmp (s->slot[j], str))
            return true;
        j = (j + 1) & (s->size - 1);
    }
    return false;
}

int strset_add (struct strset *s, const char *str)
{
    if (strset_has (s, str))
        return 0;
    if ((s->count + 1) * 2 > s->size && strset_grow (s) < 0)
        return -1;
    size_t j = fnv1a (FNV1A_INIT, str) & (s->size - 1);
    while (s->slot[j])
        j = (j + 1) & (s->size - 1);
    if (!(s->slot[j] = strdup (str)))
        return -1;
    s->count++;
    return 1;
}

void strset_release (struct strset *s)
{
    int saved = errno;
    for (size_t i = 0; i < s->size; i++)
        free (s->slot[i]);
    free (s->slot);
    memset (s, 0, sizeof (*s));
    errno = saved;
}
