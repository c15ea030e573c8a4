#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "common/configfile.h"
#include "common/libtap/tap.h"

static char tmpdir[PATH_MAX];

static void write_file (const char *path, const char *content, size_t len)
{
    FILE *f = fopen (path, "w");
    if (!f || fwrite (content, 1, len, f) != len || fclose (f) != 0)
        bail_out ("cannot write %s", path);
}

static void write_str (const char *path, const char *s)
{
    write_file (path, s, strlen (s));
}

static void test_defaults (void)
{
    struct cs_config cfg;
    cs_error_t e;
    char want[PATH_MAX + 64];

    setenv ("CODESWARM_HOME", "/srv/cs%home", 1);
    ok (config_defaults (&cfg, &e) == 0, "config_defaults");
    ok (cfg.path == NULL, "no path");
    is (cfg.workspace, "/srv/cs%%home/swarms/%s/work/%k",
        "workspace default under <home> (%% doubled)");
    is (cfg.approval_policy, "on-request", "approval_policy default");
    is (cfg.sandbox, "workspace-write", "sandbox default");
    is (cfg.fsync, "interval", "fsync default");
    is (cfg.follow, "auto", "follow default");
    ok (cfg.codex_binary == NULL && cfg.codex_home == NULL
        && cfg.model == NULL && cfg.model_provider == NULL
        && cfg.login_host == NULL && cfg.partition == NULL
        && cfg.account == NULL && cfg.qos == NULL && cfg.time_limit == NULL
        && cfg.sbatch_template == NULL, "unset strings are NULL");
    ok (cfg.heartbeat == 15 && cfg.request_timeout == 120
        && cfg.restart_backoff_min == 1 && cfg.restart_backoff_max == 60
        && cfg.healthy_after == 300 && cfg.max_failed_starts == 5
        && cfg.shutdown_grace == 30 && cfg.max_line == 8 << 20
        && cfg.stderr_tail == 4096, "worker defaults");
    ok (cfg.approval_timeout == 600 && cfg.nrules == 0, "approvals defaults");
    ok (cfg.fsync_interval == 1 && cfg.rotate_bytes == 64 << 20
        && cfg.rotate_records == 0 && cfg.poll_min == 0.002
        && cfg.poll_max == 1, "mailbox defaults");
    ok (cfg.node_lost_after == 45, "node_lost_after is 3 x heartbeat");
    ok (cfg.warn_seconds == 300 && cfg.use_pmix, "slurm defaults");
    ok (cfg.codex_nargs == 0 && cfg.codex_nenv == 0, "no args, no env");
    config_release (&cfg);
    ok (cfg.workspace == NULL, "config_release clears");
    config_release (&cfg);
    pass ("config_release twice is harmless");

    unsetenv ("CODESWARM_HOME");
    setenv ("HOME", "/home/u", 1);
    ok (config_defaults (&cfg, &e) == 0, "defaults without CODESWARM_HOME");
    is (cfg.workspace, "/home/u/.codeswarm/swarms/%s/work/%k",
        "home is ~/.codeswarm");
    config_release (&cfg);

    /* search: no file anywhere -> defaults only */
    snprintf (want, sizeof (want), "%s/home", tmpdir);
    setenv ("CODESWARM_HOME", want, 1);
    unsetenv ("CODESWARM_CONFIG");
    ok (config_load (&cfg, NULL, &e) == 0 && cfg.path == NULL
        && cfg.heartbeat == 15, "no file: defaults only");
    config_release (&cfg);
}

static void test_search (void)
{
    struct cs_config cfg;
    cs_error_t e;
    char home[PATH_MAX + 16], file[PATH_MAX + 48], other[PATH_MAX + 32];

    snprintf (home, sizeof (home), "%s/home", tmpdir);
    snprintf (file, sizeof (file), "%s/codeswarm.yaml", home);
    snprintf (other, sizeof (other), "%s/other.yaml", tmpdir);
    ok (mkdir (home, 0700) == 0, "made a home");
    setenv ("CODESWARM_HOME", home, 1);
    write_str (file, "worker:\n  heartbeat: 7\n");
    write_str (other, "worker:\n  heartbeat: 9\n");

    ok (config_load (&cfg, NULL, &e) == 0, "load <home>/codeswarm.yaml");
    ok (cfg.path && !strcmp (cfg.path, file), "path is %s", cfg.path);
    ok (cfg.heartbeat == 7 && cfg.node_lost_after == 21,
        "value from the file, node_lost_after follows heartbeat");
    config_release (&cfg);

    setenv ("CODESWARM_CONFIG", other, 1);
    ok (config_load (&cfg, NULL, &e) == 0 && cfg.heartbeat == 9
        && !strcmp (cfg.path, other), "$CODESWARM_CONFIG comes first");
    config_release (&cfg);

    ok (config_load (&cfg, file, &e) == 0 && cfg.heartbeat == 7,
        "an explicit path wins over $CODESWARM_CONFIG");
    config_release (&cfg);

    char missing[PATH_MAX + 32];
    snprintf (missing, sizeof (missing), "%s/missing.yaml", tmpdir);
    setenv ("CODESWARM_CONFIG", missing, 1);
    errno = 0;
    ok (config_load (&cfg, NULL, &e) < 0 && errno == ENOENT,
        "a missing $CODESWARM_CONFIG is an error");
    char want[PATH_MAX + 128];
    snprintf (want, sizeof (want), "cannot open '%s': "
              "No such file or directory", missing);
    is (e.text, want, "message names the file");
    ok (cfg.path == NULL && cfg.workspace == NULL,
        "failed load leaves nothing to free");
    config_release (&cfg);
    unsetenv ("CODESWARM_CONFIG");

    write_file (file, "", 0);
    ok (config_load (&cfg, NULL, &e) == 0 && cfg.heartbeat == 15
        && cfg.path != NULL, "an empty file is all defaults");
    config_release (&cfg);

    write_str (file, "# just a comment\n---\n");
    ok (config_load (&cfg, NULL, &e) == 0 && cfg.heartbeat == 15,
        "a comment-only document is all defaults");
    config_release (&cfg);
    unlink (file);
    rmdir (home);
}

static const char full[] =
    "# every key\n"
    "codex:\n"
    "  binary: ~/bin/codex\n"
    "  home: \"~\"\n"
    "  model: gpt-test\n"
    "  provider: mock\n"
    "  approval_policy: never\n"
    "  sandbox: read-only\n"
    "  args: [\"-c\", 'model_reasoning_effort=\"low\"']\n"
    "  env:\n"
    "    RUST_LOG: info\n"
    "    EMPTY:\n"
    "    NUM: 42\n"
    "worker:\n"
    "  workspace: /scratch/%s/%k\n"
    "  heartbeat: 5s\n"
    "  request_timeout: 2m\n"
    "  restart_backoff_min: 500ms\n"
    "  restart_backoff_max: 1m\n"
    "  healthy_after: 1h\n"
    "  max_failed_starts: 3\n"
    "  shutdown_grace: 10\n"
    "  max_line: 1MiB\n"
    "  stderr_tail: 8k\n"
    "approvals:\n"
    "  timeout: 1d\n"
    "  rules:\n"
    "    - prefix: git status\n"
    "      decision: accept\n"
    "      in_workspace: true\n"
    "    - {prefix: rm -rf, decision: decline}\n"
    "mailbox:\n"
    "  fsync: always\n"
    "  fsync_interval: 250ms\n"
    "  rotate_bytes: 1G\n"
    "  rotate_records: 100000\n"
    "  follow: poll\n"
    "  poll_min: 1ms\n"
    "  poll_max: 2s\n"
    "router:\n"
    "  node_lost_after: 90\n"
    "  login_host: login1.example.org\n"
    "slurm:\n"
    "  partition: gpu\n"
    "  account: proj42\n"
    "  qos: \"normal\"\n"
    "  time: \"1-00:00:00\"\n"
    "  template: ~/sbatch.in\n"
    "  warn_seconds: 600\n"
    "  pmix: no\n";

static void test_full (void)
{
    struct cs_config cfg;
    cs_error_t e;
    char path[PATH_MAX + 32];

    setenv ("HOME", "/home/tester", 1);
    snprintf (path, sizeof (path), "%s/full.yaml", tmpdir);
    write_file (path, full, sizeof (full) - 1);
    if (config_load (&cfg, path, &e) < 0) {
        fail ("load a file with every key: %s", e.text);
        return;
    }
    pass ("load a file with every key");
    is (cfg.codex_binary, "/home/tester/bin/codex", "codex.binary, ~ expanded");
    is (cfg.codex_home, "/home/tester", "codex.home: \"~\" alone");
    is (cfg.model, "gpt-test", "codex.model");
    is (cfg.model_provider, "mock", "codex.provider");
    is (cfg.approval_policy, "never", "codex.approval_policy");
    is (cfg.sandbox, "read-only", "codex.sandbox");
    ok (cfg.codex_nargs == 2, "codex.args: 2");
    is (cfg.codex_args[0], "-c", "args[0]");
    is (cfg.codex_args[1], "model_reasoning_effort=\"low\"", "args[1]");
    ok (cfg.codex_nenv == 3, "codex.env: 3");
    is (cfg.codex_env[0], "RUST_LOG=info", "env[0]");
    is (cfg.codex_env[1], "EMPTY=", "env[1]: null is empty");
    is (cfg.codex_env[2], "NUM=42", "env[2]: number as text");
    is (cfg.workspace, "/scratch/%s/%k", "worker.workspace");
    ok (cfg.heartbeat == 5 && cfg.request_timeout == 120
        && cfg.restart_backoff_min == 0.5 && cfg.restart_backoff_max == 60
        && cfg.healthy_after == 3600 && cfg.max_failed_starts == 3
        && cfg.shutdown_grace == 10 && cfg.max_line == 1 << 20
        && cfg.stderr_tail == 8192, "worker values");
    ok (cfg.approval_timeout == 86400, "approvals.timeout");
    ok (cfg.nrules == 2, "two rules");
    is (cfg.rules[0].prefix, "git status", "rule 0 prefix");
    is (cfg.rules[0].decision, "accept", "rule 0 decision");
    ok (cfg.rules[0].in_workspace, "rule 0 in_workspace");
    is (cfg.rules[1].prefix, "rm -rf", "rule 1 prefix (flow mapping)");
    is (cfg.rules[1].decision, "decline", "rule 1 decision");
    ok (!cfg.rules[1].in_workspace, "rule 1 in_workspace defaults to false");
    is (cfg.fsync, "always", "mailbox.fsync");
    is (cfg.follow, "poll", "mailbox.follow");
    ok (cfg.fsync_interval == 0.25 && cfg.rotate_bytes == 1ULL << 30
        && cfg.rotate_records == 100000 && cfg.poll_min == 0.001
        && cfg.poll_max == 2, "mailbox values");
    ok (cfg.node_lost_after == 90, "router.node_lost_after set explicitly");
    is (cfg.login_host, "login1.example.org", "router.login_host");
    is (cfg.partition, "gpu", "slurm.partition");
    is (cfg.account, "proj42", "slurm.account");
    is (cfg.qos, "normal", "slurm.qos");
    is (cfg.time_limit, "1-00:00:00", "slurm.time");
    is (cfg.sbatch_template, "/home/tester/sbatch.in", "slurm.template");
    ok (cfg.warn_seconds == 600 && !cfg.use_pmix, "slurm numbers");
    config_release (&cfg);

    /* null values keep the defaults */
    write_str (path, "codex:\n  sandbox:\n  args:\nworker:\nslurm: ~\n");
    ok (config_load (&cfg, path, &e) == 0, "null values: %s",
        cfg.path ? "loaded" : e.text);
    is (cfg.sandbox, "workspace-write", "null keeps the default");
    config_release (&cfg);

    /* "" unsets a string */
    write_str (path, "slurm:\n  partition: \"\"\n");
    ok (config_load (&cfg, path, &e) == 0 && cfg.partition == NULL,
        "an empty string is unset");
    config_release (&cfg);

    /* anchors and aliases */
    const char alias[] = "worker:\n  heartbeat: &hb 20\n"
                         "router:\n  node_lost_after: *hb\n";
    write_file (path, alias, sizeof (alias) - 1);
    ok (config_load (&cfg, path, &e) == 0 && cfg.node_lost_after == 20,
        "aliases work");
    config_release (&cfg);
}

struct bad {
    const char *yaml;
    const char *msg;    /* after "<path>:" */
};

static const struct bad bad[] = {
    { "wroker:\n  heartbeat: 10\n",
      "1:1: unknown key \"wroker\"" },
    { "worker:\n  heartbeat: ten\n",
      "2:14: worker.heartbeat: \"ten\" is not a duration "
      "(like 30, 250ms, 10s, 5m, 2h, 1d)" },
    { "worker:\n  heartbeat: 10\n  hartbeat: 10\n",
      "3:3: unknown key \"worker.hartbeat\"" },
    { "codex:\n  sandbox: open\n",
      "2:12: codex.sandbox: \"open\" is not one of read-only, "
      "workspace-write, danger-full-access" },
    { "codex:\n  approval_policy: [never]\n",
      "2:20: codex.approval_policy: expected a string, not a list" },
    { "slurm:\n  pmix: maybe\n",
      "2:9: slurm.pmix: \"maybe\" is not a boolean (true or false)" },
    { "worker:\n  max_failed_starts: -1\n",
      "2:22: worker.max_failed_starts: \"-1\" is not a non-negative integer" },
    { "slurm:\n  warn_seconds: 3000000000\n",
      "2:17: slurm.warn_seconds: \"3000000000\" is not a non-negative "
      "integer" },
    { "worker:\n  max_line: lots\n",
      "2:13: worker.max_line: \"lots\" is not a size "
      "(like 4096, 64k, 8MiB, 1G)" },
    { "worker:\n  max_line: 0\n",
      "2:13: worker.max_line: must be between 1 and 4611686018427387903" },
    { "worker:\n  heartbeat: 0\n",
      "2:14: worker.heartbeat: must be more than 0" },
    { "mailbox:\n  rotate_records: 1k\n",
      "2:19: mailbox.rotate_records: \"1k\" is not a non-negative integer" },
    { "approvals:\n  rules:\n    - prefix: git status\n      decision: maybe\n",
      "4:17: approvals.rules[0].decision: \"maybe\" is not one of "
      "accept, decline" },
    { "approvals:\n  rules:\n    - prefix: ls\n      decision: accept\n"
      "    - prefix: cat\n",
      "5:7: approvals.rules[1]: missing \"decision\"" },
    { "approvals:\n  rules:\n    - decision: accept\n",
      "3:7: approvals.rules[0]: missing \"prefix\"" },
    { "approvals:\n  rules:\n    - prefix: ls\n      desicion: accept\n",
      "4:7: unknown key \"approvals.rules[0].desicion\"" },
    { "approvals:\n  rules:\n    - ls\n",
      "3:7: approvals.rules[0]: expected a mapping {prefix, decision, "
      "in_workspace}, not a scalar" },
    { "approvals:\n  rules:\n    - {prefix: ls, decision: accept, "
      "in_workspace: sometimes}\n",
      "3:52: approvals.rules[0].in_workspace: \"sometimes\" is not a boolean" },
    { "approvals:\n  rules: {prefix: ls}\n",
      "2:10: approvals.rules: expected a list of rules, not a mapping" },
    { "worker:\n  heartbeat: 10\n  heartbeat: 20\n",
      "3:3: duplicate key \"worker.heartbeat\"" },
    { "worker: {}\nworker: {}\n",
      "2:1: duplicate key \"worker\"" },
    { "codex:\n  args: --foo\n",
      "2:9: codex.args: expected a list of strings, not a scalar" },
    { "codex:\n  args:\n    - ok\n    - [nested]\n",
      "4:7: codex.args: expected a string, not a list" },
    { "codex:\n  env:\n    A: [1]\n",
      "3:8: codex.env.A: expected a string, not a list" },
    { "codex:\n  env:\n    \"A=B\": x\n",
      "3:5: codex.env: \"A=B\" is not a valid variable name" },
    { "codex:\n  env: [A=1]\n",
      "2:8: codex.env: expected a mapping of NAME: value, not a list" },
    { "- codex\n",
      "1:1: expected a mapping of sections (codex, worker, approvals, "
      "mailbox, router, slurm, relay, metrics), not a list" },
    { "worker: 5\n",
      "1:9: worker: expected a mapping, not a scalar" },
    { "worker:\n  restart_backoff_min: 10m\n  restart_backoff_max: 1m\n",
      "3:24: worker.restart_backoff_min (600) is greater than "
      "worker.restart_backoff_max (60)" },
    { "mailbox:\n  poll_min: 5s\n",
      "2:13: mailbox.poll_min (5) is greater than mailbox.poll_max (1)" },
    { "worker: {}\n---\nslurm: {}\n",
      "3:1: only one YAML document is allowed" },
    { "---\n---\nworker: {}\n",
      "3:1: only one YAML document is allowed" },
    { "? [a, b]\n: c\n",
      "1:3: key is not a string" },
    { "worker:\n  heartbeat: \"a\\0b\"\n",
      "2:14: worker.heartbeat: contains a NUL character" },
    { "codex:\n  home: ~nosuchuser-cs/x\n",
      "2:9: codex.home: cannot expand \"~nosuchuser-cs/x\"" },
    /* syntax errors: libyaml's words and position */
    { "worker:\n  heartbeat: 10\n    bad: 1\n",
      "3:8: mapping values are not allowed in this context" },
    { "worker:\n\theartbeat: 10\n",
      "2:1: found character that cannot start any token "
      "(while scanning for the next token at line 2 column 1)" },
    { "worker:\n  heartbeat: [1, 2\n",
      "3:1: did not find expected ',' or ']' "
      "(while parsing a flow sequence at line 2 column 14)" },
    { "worker:\n  heartbeat: \"10\n",
      "3:1: found unexpected end of stream "
      "(while scanning a quoted scalar at line 2 column 14)" },
    { "worker:\n  heartbeat: \xff\n",
      "2:14: invalid leading UTF-8 octet (#FF)" },
    { "worker:\n  heartbeat: *nope\n",
      "2:14: found undefined alias" },
    { "relay:\n  url: mqtt://broker.example.org\n",
      "2:8: relay.url: plain mqtt:// to \"broker.example.org\" would send "
      "credentials in clear text; use mqtts:// (mqtt:// is allowed only to "
      "a loopback host with relay.insecure: true)" },
    { "relay:\n  url: mqtt://127.0.0.1:1883\n",
      "2:8: relay.url: plain mqtt:// needs relay.insecure: true (loopback "
      "only); use mqtts://" },
    { "relay:\n  url: https://broker:443\n",
      "2:8: relay.url: \"https://broker:443\": unknown scheme \"https\" "
      "(mqtts, mqtt or socks5)" },
    { "relay:\n  url: mqtts://broker:99999\n",
      "2:8: relay.url: \"mqtts://broker:99999\": bad port" },
    { "relay:\n  url: mqtts://u:p@broker\n",
      "2:8: relay.url: put the user in relay.username and the password in "
      "relay.password_file, not in the URL" },
    { "relay:\n  url: mqtts://broker\n  proxy: http://proxy:3128\n",
      "3:10: relay.proxy: \"http://proxy:3128\": unknown scheme \"http\" "
      "(mqtts, mqtt or socks5)" },
    { "relay:\n  topic_prefix: a/#\n",
      "2:17: relay.topic_prefix: must be a topic name without wildcards "
      "(+ #) or a leading or trailing /" },
    { "relay:\n  keepalive: 1\n",
      "2:14: relay.keepalive: must be between 5s and 65535s" },
    { "relay:\n  backoff_min: 10\n  backoff_max: 5\n",
      "3:16: relay.backoff_min (10) is greater than relay.backoff_max (5)" },
    { "relay:\n  urll: x\n",
      "2:3: unknown key \"relay.urll\"" },
};

static void test_bad (void)
{
    char path[PATH_MAX + 32];
    size_t i;

    snprintf (path, sizeof (path), "%s/bad.yaml", tmpdir);
    for (i = 0; i < sizeof (bad) / sizeof (bad[0]); i++) {
        struct cs_config cfg;
        cs_error_t e = { "" };
        char want[PATH_MAX + 512];
        int rc;

        write_file (path, bad[i].yaml, strlen (bad[i].yaml));
        snprintf (want, sizeof (want), "%s:%s", path, bad[i].msg);
        errno = 0;
        rc = config_load (&cfg, path, &e);
        ok (rc < 0 && errno == EINVAL, "bad case %zu fails with EINVAL", i);
        is (e.text, want, "bad case %zu: message", i);
        ok (cfg.path == NULL && cfg.workspace == NULL && cfg.nrules == 0,
            "bad case %zu: nothing left to free", i);
    }

    /* too many list entries */
    struct jb {
        char *p;
        size_t len;
    } b = { NULL, 0 };
    FILE *f = open_memstream (&b.p, &b.len);
    fprintf (f, "codex:\n  args:\n");
    for (i = 0; i < CS_CONFIG_MAX_LIST + 1; i++)
        fprintf (f, "    - a%zu\n", i);
    fclose (f);
    write_file (path, b.p, b.len);
    free (b.p);
    struct cs_config cfg;
    cs_error_t e;
    char want[PATH_MAX + 128];
    ok (config_load (&cfg, path, &e) < 0, "33 args are too many");
    snprintf (want, sizeof (want), "%s:35:7: codex.args: too many entries "
              "(at most %d)", path, CS_CONFIG_MAX_LIST);
    is (e.text, want, "message");

    f = open_memstream (&b.p, &b.len);
    fprintf (f, "approvals:\n  rules:\n");
    for (i = 0; i < CS_CONFIG_MAX_RULES + 1; i++)
        fprintf (f, "    - {prefix: p%zu, decision: accept}\n", i);
    fclose (f);
    write_file (path, b.p, b.len);
    free (b.p);
    ok (config_load (&cfg, path, &e) < 0, "33 rules are too many");
    snprintf (want, sizeof (want), "%s:35:7: approvals.rules: too many rules "
              "(at most %d)", path, CS_CONFIG_MAX_RULES);
    is (e.text, want, "message");

    /* unreadable: a directory */
    errno = 0;
    ok (config_load (&cfg, tmpdir, &e) < 0, "a directory is not a config");
    diag ("%s", e.text);
    unlink (path);
}

static void test_relay (void)
{
    struct cs_config cfg;
    struct cs_url u;
    cs_error_t e;
    const char y[] = "relay:\n  url: mqtts://[::1]:8884\n"
                     "  proxy: socks5://me:pw@proxy.site:1081\n"
                     "  topic_prefix: site/alice\n  insecure: true\n";

    ok (config_load_string (&cfg, "r", y, strlen (y), &e) == 0, "relay "
        "section loads: %s", e.text);
    ok (!strcmp (cfg.relay.scheme, "mqtts") && !strcmp (cfg.relay.host, "::1")
        && cfg.relay.port == 8884, "url parsed (IPv6 literal)");
    ok (!strcmp (cfg.relay_socks.host, "proxy.site")
        && cfg.relay_socks.port == 1081 && !strcmp (cfg.relay_socks.user, "me")
        && !strcmp (cfg.relay_socks.password, "pw"), "proxy parsed");
    ok (!strcmp (cfg.relay_topic_prefix, "site/alice"), "topic_prefix");
    config_release (&cfg);
    ok (config_load_string (&cfg, "r", "", 0, &e) == 0
        && !strncmp (cfg.relay_topic_prefix, "codeswarm/", 10)
        && cfg.relay_keepalive == 30 && cfg.relay_queue_max == 1000
        && cfg.relay_url == NULL, "relay defaults");
    config_release (&cfg);
    ok (config_parse_url ("mqtts://host", &u, &e) == 0 && u.port == 8883,
        "mqtts default port");
    ok (config_parse_url ("mqtt://localhost/", &u, &e) == 0 && u.port == 1883
        && !strcmp (u.host, "localhost"), "mqtt default port, trailing /");
    ok (config_parse_url ("mqtts://host/topic", &u, &e) < 0, "a path is "
        "refused: %s", e.text);
    ok (config_parse_url ("mqtts://:80", &u, &e) < 0, "no host: %s", e.text);
    ok (config_host_is_loopback ("127.0.0.2") && config_host_is_loopback ("::1")
        && !config_host_is_loopback ("10.0.0.1"), "loopback hosts");
}

static void test_string (void)
{
    struct cs_config cfg;
    cs_error_t e;
    const char good[] = "worker:\n  heartbeat: 3\n";
    const char badtxt[] = "worker:\n  heartbeat: ten\n";

    ok (config_load_string (&cfg, "inline", good, strlen (good), &e) == 0
        && cfg.heartbeat == 3 && cfg.path == NULL && cfg.workspace != NULL,
        "config_load_string");
    config_release (&cfg);
    ok (config_load_string (&cfg, "inline", badtxt, strlen (badtxt), &e) < 0,
        "config_load_string with an error");
    is (e.text, "inline:2:14: worker.heartbeat: \"ten\" is not a duration "
        "(like 30, 250ms, 10s, 5m, 2h, 1d)", "message uses the name");
    ok (cfg.workspace == NULL, "nothing to free");
    ok (config_load_string (&cfg, NULL, NULL, 0, &e) == 0
        && cfg.heartbeat == 15, "empty string: defaults");
    config_release (&cfg);
    /* not NUL-terminated: the length counts */
    ok (config_load_string (&cfg, "n", "worker: {heartbeat: 4}XXX", 22, &e) == 0
        && cfg.heartbeat == 4, "uses the length");
    config_release (&cfg);
}

/* The example file loads as is (all comments), and with its commented
 * settings enabled it loads too and shows the real defaults.
 */
static void test_example (void)
{
    char src[PATH_MAX + 64], dst[PATH_MAX + 32], line[1024];
    struct cs_config cfg, def;
    cs_error_t e;
    FILE *in, *out;
    bool prev = false;

    snprintf (src, sizeof (src), "%s/etc/codeswarm.yaml.example",
              TOP_SRCDIR);
    snprintf (dst, sizeof (dst), "%s/example.yaml", tmpdir);
    setenv ("CODESWARM_HOME", "/h", 1);
    setenv ("HOME", "/home/tester", 1);
    ok (config_load (&cfg, src, &e) == 0, "example loads as is: %s",
        cfg.path ? "yes" : e.text);
    config_release (&cfg);

    if (!(in = fopen (src, "r")) || !(out = fopen (dst, "w")))
        bail_out ("cannot open %s or %s", src, dst);
    while (fgets (line, sizeof (line), in)) {
        char *h = line + strspn (line, " ");
        if (*h == '#' && (h[1] != ' ' || (prev && h[1] == ' ' && h[2] == ' '))
            && h[1] != '\n') {
            memmove (h, h + 1, strlen (h));
            prev = true;
        }
        else
            prev = false;
        fputs (line, out);
    }
    fclose (in);
    fclose (out);
    ok (config_load (&cfg, dst, &e) == 0, "example with settings enabled "
        "loads: %s", cfg.path ? "yes" : e.text);
    ok (config_defaults (&def, &e) == 0, "defaults");
    is (cfg.workspace, "%h/swarms/%s/work/%k", "workspace as shown");
    is (cfg.approval_policy, def.approval_policy, "approval_policy default");
    is (cfg.sandbox, def.sandbox, "sandbox default");
    ok (cfg.heartbeat == def.heartbeat
        && cfg.request_timeout == def.request_timeout
        && cfg.restart_backoff_min == def.restart_backoff_min
        && cfg.restart_backoff_max == def.restart_backoff_max
        && cfg.healthy_after == def.healthy_after
        && cfg.max_failed_starts == def.max_failed_starts
        && cfg.shutdown_grace == def.shutdown_grace
        && cfg.max_line == def.max_line
        && cfg.stderr_tail == def.stderr_tail, "worker defaults as shown");
    ok (cfg.approval_timeout == def.approval_timeout && cfg.nrules == 2,
        "approvals as shown");
    is (cfg.fsync, def.fsync, "fsync default");
    is (cfg.follow, def.follow, "follow default");
    ok (cfg.fsync_interval == def.fsync_interval
        && cfg.rotate_bytes == def.rotate_bytes
        && cfg.rotate_records == def.rotate_records
        && cfg.poll_min == def.poll_min && cfg.poll_max == def.poll_max,
        "mailbox defaults as shown");
    ok (cfg.node_lost_after == def.node_lost_after, "router default as shown");
    ok (cfg.warn_seconds == def.warn_seconds && cfg.use_pmix == def.use_pmix,
        "slurm defaults as shown");
    ok (cfg.codex_nargs == 2 && cfg.codex_nenv == 1, "args and env examples");
    config_release (&cfg);
    config_release (&def);
    unlink (dst);
}

int main (void)
{
    const char *t = getenv ("TMPDIR");

    plan (NO_PLAN);
    snprintf (tmpdir, sizeof (tmpdir), "%s/cs-config-XXXXXX", t ? t : "/tmp");
    if (!mkdtemp (tmpdir))
        bail_out ("mkdtemp: %s", strerror (errno));
    test_defaults ();
    test_search ();
    test_full ();
    test_bad ();
    test_example ();
    test_string ();
    test_relay ();
    unlink (tmpdir);
    char p[PATH_MAX + 32];
    snprintf (p, sizeof (p), "%s/full.yaml", tmpdir);
    unlink (p);
    snprintf (p, sizeof (p), "%s/other.yaml", tmpdir);
    unlink (p);
    rmdir (tmpdir);
    done_testing ();
}
