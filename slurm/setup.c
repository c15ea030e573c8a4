/* setup.c - "codeswarm setup-codex [--version V]": install a pinned codex
 * from npm into <home>/tools/codex, on the login node, so that compute
 * nodes need neither npm nor internet access to run it.
 *
 * npm installs @openai/codex and its platform package (a static native
 * binary) under <home>/tools/codex/node_modules; <home>/tools/codex/bin/codex
 * is a symlink to that binary, which is what the workers run by default.
 * npm takes the proxy from HTTPS_PROXY/HTTP_PROXY/NO_PROXY as usual.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "mailbox/mailbox.h"
#include "slurm/launch.h"
#include "slurm/run.h"

#define CODEX_DEFAULT_VERSION "0.169.0"

static void setup_usage (FILE *f)
{
    fprintf (f, "usage: codeswarm setup-codex [--version V] [--force]\n"
                "\n"
                "Install @openai/codex@V (default " CODEX_DEFAULT_VERSION
                ") from npm into\n"
                "<home>/tools/codex and link <home>/tools/codex/bin/codex to "
                "its native\n"
                "binary; workers use that binary unless codex.binary or "
                "CODESWARM_CODEX\n"
                "says otherwise.  Run it on a node with npm and internet "
                "access (proxy\n"
                "variables are honoured); <home> must be on the filesystem the "
                "compute\n"
                "nodes share.  --force reinstalls.\n");
}

static bool version_valid (const char *v)
{
    size_t n = strlen (v);
    return n > 0 && n < 64 &&
           strspn (v, "0123456789.-abcdefghijklmnopqrstuvwxyz") == n;
}

/* "version" from the installed package.json, or "" */
static void installed_version (const char *prefix, char *buf, size_t len)
{
    char path[LAUNCH_PATH_MAX], line[512];
    FILE *f;

    buf[0] = '\0';
    pathf (path, sizeof (path), "%s/node_modules/@openai/codex/package.json",
             prefix);
    if (!(f = fopen (path, "r")))
        return;
    while (fgets (line, sizeof (line), f)) {
        char *p = strstr (line, "\"version\"");
        char *q, *end;
        if (!p || !(q = strchr (p + 9, '"')) || !(end = strchr (q + 1, '"')))
            continue;
        snprintf (buf, len, "%.*s", (int)(end - q - 1), q + 1);
        break;
    }
    fclose (f);
}

static int find_native (const char *prefix, char *buf, size_t len)
{
    static const char *patterns[] = {
        "/node_modules/@openai/codex-linux-*/vendor/*/bin/codex",
        "/node_modules/@openai/codex-linux-*/vendor/*/codex/codex",
        "/node_modules/@openai/codex/vendor/*/bin/codex",
        "/node_modules/@openai/codex/vendor/*/codex/codex",
        NULL,
    };

    for (int i = 0; patterns[i]; i++) {
        char pat[LAUNCH_PATH_MAX];
        glob_t g;
        if (pathf (pat, sizeof (pat), "%s%s", prefix, patterns[i]) < 0)
            continue;
        if (glob (pat, 0, NULL, &g) == 0) {
            for (size_t k = 0; k < g.gl_pathc; k++) {
                if (access (g.gl_pathv[k], X_OK) == 0) {
                    snprintf (buf, len, "%s", g.gl_pathv[k]);
                    globfree (&g);
                    return 0;
                }
            }
        }
        globfree (&g);
    }
    return -1;
}

int cmd_setup_codex (int argc, char **argv)
{
    static const struct option longopts[] = {
        {"version", required_argument, NULL, 'V'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *version = CODEX_DEFAULT_VERSION;
    char home[LAUNCH_PATH_MAX], tools[LAUNCH_PATH_MAX], prefix[LAUNCH_PATH_MAX];
    char bindir[LAUNCH_PATH_MAX], link[LAUNCH_PATH_MAX],
        native[LAUNCH_PATH_MAX];
    char have[64], spec[128], line[512], tmp[LAUNCH_PATH_MAX];
    struct run_result res;
    cs_error_t e;
    bool force = false;
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long (argc, argv, ":V:fh", longopts, NULL)) != -1) {
        switch (c) {
        case 'V':
            version = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'h':
            setup_usage (stdout);
            return 0;
        case ':':
            log_msg ("option '%s' needs a value", argv[optind - 1]);
            return 2;
        default:
            log_msg ("unknown option '%s'", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        setup_usage (stderr);
        return 2;
    }
    if (!version_valid (version)) {
        log_msg ("--version '%s' is not a version (e.g. %s)", version,
                 CODEX_DEFAULT_VERSION);
        return 2;
    }
    if (launch_home (home, sizeof (home), true) < 0)
        return 1;
    pathf (tools, sizeof (tools), "%s/tools", home);
    pathf (prefix, sizeof (prefix), "%s/codex", tools);
    pathf (bindir, sizeof (bindir), "%s/bin", prefix);
    pathf (link, sizeof (link), "%s/codex", bindir);
    if (mb_secure_dir (tools, true, &e) < 0 ||
        mb_secure_dir (prefix, true, &e) < 0 ||
        mb_secure_dir (bindir, true, &e) < 0) {
        log_msg ("%s", e.text);
        return 1;
    }

    installed_version (prefix, have, sizeof (have));
    if (force || strcmp (have, version) ||
        find_native (prefix, native, sizeof (native)) < 0) {
        const char *av[] = {"npm",
                            "install",
                            "--prefix",
                            prefix,
                            "--include=optional",
                            "--no-audit",
                            "--no-fund",
                            "--prefer-offline",
                            "--loglevel=error",
                            spec,
                            NULL};
        snprintf (spec, sizeof (spec), "@openai/codex@%s", version);
        fprintf (stderr, "codeswarm setup-codex: installing %s into '%s'\n",
                 spec, prefix);
        if (run_capture ((char *const *)av, NULL, NULL, 900, &res, &e) < 0) {
            log_msg ("%s (Debian: apt-get install npm)", e.text);
            return 1;
        }
        if (!run_ok (&res)) {
            log_msg ("npm install %s failed: %s", spec,
                     run_first_line (*res.err ? res.err : res.out, line,
                                     sizeof (line)));
            fprintf (stderr, "%s", res.err);
            fprintf (stderr, "(behind a proxy? set HTTPS_PROXY and "
                             "HTTP_PROXY)\n");
            run_result_release (&res);
            return 1;
        }
        run_result_release (&res);
        installed_version (prefix, have, sizeof (have));
        if (strcmp (have, version)) {
            log_msg ("npm installed version '%s', not '%s'", have, version);
            return 1;
        }
        if (find_native (prefix, native, sizeof (native)) < 0) {
            log_msg ("no native codex binary for this machine under '%s' "
                     "(is the platform package @openai/codex-linux-* "
                     "available for it?)",
                     prefix);
            return 1;
        }
    } else
        fprintf (stderr, "codeswarm setup-codex: codex %s already installed\n",
                 version);

    /* bin/codex -> the native binary (relative, so the tree can move) */
    pathf (tmp, sizeof (tmp), "%s.tmp", link);
    unlink (tmp);
    {
        const char *rel = native + strlen (prefix) + 1;
        char target[LAUNCH_PATH_MAX];
        pathf (target, sizeof (target), "../%s", rel);
        if (symlink (target, tmp) < 0 || rename (tmp, link) < 0) {
            log_err ("cannot link '%s'", link);
            unlink (tmp);
            return 1;
        }
    }

    /* it runs? (CODEX_HOME in a scratch place: --version creates it) */
    {
        char scratch[LAUNCH_PATH_MAX], envh[LAUNCH_PATH_MAX + 16];
        char *env[] = {envh, NULL};
        const char *av[] = {link, "--version", NULL};
        pathf (scratch, sizeof (scratch), "%s/.codex-home", prefix);
        pathf (envh, sizeof (envh), "CODEX_HOME=%s", scratch);
        mkdir (scratch, 0700);
        if (run_capture ((char *const *)av, env, NULL, 60, &res, &e) < 0) {
            log_msg ("%s", e.text);
            return 1;
        }
        if (!run_ok (&res)) {
            log_msg ("'%s --version' failed: %s", link,
                     run_first_line (res.err, line, sizeof (line)));
            run_result_release (&res);
            return 1;
        }
        printf ("%s: %s\n", link,
                run_first_line (res.out, line, sizeof (line)));
        run_result_release (&res);
    }
    return 0;
}
