/* policy.c - the worker's approval policy and the approval decisions
 *
 * Which command an approval request is about, whether a rule of
 * codeswarm.yaml decides it, and the decision in the wire form of each
 * approval protocol (see policy.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/policy.h"

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
