/* config.h - codeswarm.yaml, loaded with libyaml.
 *
 * Search order when no file is named: $CODESWARM_CONFIG, then
 * <home>/codeswarm.yaml, then built-in defaults.  Every error names
 * file:line:column and the offending key, e.g.
 *   codeswarm.yaml:12:5: worker.heartbeat: "ten" is not a duration
 *   codeswarm.yaml:3:1: unknown key "wroker"
 * A ~ at the start of a path value expands to $HOME (~user to that
 * user's home).  Unknown keys, duplicate keys and values of the wrong type
 * are errors.  A key without a value keeps its default; an empty string
 * unsets an optional string (NULL).  See codeswarm.yaml(5).
 */
#ifndef CODESWARM_CONFIG_H
#define CODESWARM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errprintf.h"

#define CS_CONFIG_MAX_RULES 32
#define CS_CONFIG_MAX_LIST 32

struct cs_approval_rule {
    char *prefix;               /* a command starting with these words */
    char *decision;             /* "accept" or "decline" */
    bool in_workspace;          /* only when cwd is inside the workspace */
};

/* A parsed scheme://[user[:password]@]host[:port] URL. */
struct cs_url {
    char scheme[16];
    char user[128];
    char password[128];
    char host[256];             /* without the brackets of an IPv6 literal */
    int port;                   /* the scheme's default when not given */
};

struct cs_config {
    char *path;                 /* the file loaded, NULL for defaults */

    /* codex: */
    char *codex_binary;         /* codex.binary: NULL = CODESWARM_CODEX / <home>/tools / PATH */
    char *codex_home;           /* codex.home: CODEX_HOME for the app-server */
    char *model;                /* codex.model (NULL: codex's default) */
    char *model_provider;       /* codex.provider */
    char *approval_policy;      /* codex.approval_policy: untrusted|on-failure|on-request|never (default on-request) */
    char *sandbox;              /* codex.sandbox: read-only|workspace-write|danger-full-access (default workspace-write) */
    char *codex_args[CS_CONFIG_MAX_LIST];   /* codex.args: extra app-server args */
    size_t codex_nargs;
    char *codex_env[CS_CONFIG_MAX_LIST];    /* codex.env: "KEY=VALUE" */
    size_t codex_nenv;

    /* worker: */
    /* worker.workspace: "%h" home, "%s" swarm, "%k" node, "%%" '%';
     * default <home>/swarms/%s/work/%k (a '%' in <home> doubled) */
    char *workspace;
    double heartbeat;           /* worker.heartbeat (s), default 15 */
    double request_timeout;     /* worker.request_timeout (s), default 120 */
    double restart_backoff_min; /* worker.restart_backoff_min, default 1 */
    double restart_backoff_max; /* worker.restart_backoff_max, default 60 */
    double healthy_after;       /* worker.healthy_after: backoff resets, default 300 */
    int max_failed_starts;      /* worker.max_failed_starts, default 5 */
    double shutdown_grace;      /* worker.shutdown_grace, default 30 */
    uint64_t max_line;          /* worker.max_line bytes, default 8 MiB */
    uint64_t stderr_tail;       /* worker.stderr_tail bytes, default 4096 */
    bool retry_on_loss;         /* worker.retry_on_loss, default false */

    /* approvals: */
    double approval_timeout;    /* approvals.timeout (s), default 600 */
    struct cs_approval_rule rules[CS_CONFIG_MAX_RULES];  /* approvals.rules */
    size_t nrules;

    /* mailbox: */
    char *fsync;                /* mailbox.fsync: never|always|interval (default interval) */
    double fsync_interval;      /* mailbox.fsync_interval, default 1 */
    uint64_t rotate_bytes;      /* mailbox.rotate_bytes, default 64 MiB */
    uint64_t rotate_records;    /* mailbox.rotate_records, default 0 */
    char *follow;               /* mailbox.follow: auto|inotify|poll */
    double poll_min;            /* mailbox.poll_min, default 0.002 */
    double poll_max;            /* mailbox.poll_max, default 1 */

    /* router: */
    double node_lost_after;     /* router.node_lost_after (s), default 3 x heartbeat */
    char *login_host;           /* router.login_host: for --ssh and doctor */

    /* slurm: */
    char *backend;              /* slurm.backend: slurm|local (default slurm):
                                 * where "codeswarm launch" runs the workers */
    char *partition;            /* slurm.partition */
    char *account;              /* slurm.account */
    char *qos;                  /* slurm.qos */
    char *time_limit;           /* slurm.time */
    char *sbatch_template;      /* slurm.template */
    int warn_seconds;           /* slurm.warn_seconds: walltime warning, default 300 */
    bool use_pmix;              /* slurm.pmix, default true */

    /* relay: (see codeswarm-router(1) --relay, --relay-client) */
    char *relay_url;            /* relay.url: mqtts://host[:port] */
    char *relay_ca_file;        /* relay.ca_file (NULL: the system's CAs) */
    char *relay_cert_file;      /* relay.cert_file: client certificate */
    char *relay_key_file;       /* relay.key_file: its private key */
    char *relay_username;       /* relay.username */
    char *relay_password_file;  /* relay.password_file: first line */
    char *relay_seal_key_file;  /* relay.seal_key_file (required) */
    char *relay_topic_prefix;   /* relay.topic_prefix, default codeswarm/<user> */
    char *relay_client_id;      /* relay.client_id (default <user>@<host>) */
    char *relay_proxy;          /* relay.proxy: socks5://[user:pass@]host:port */
    double relay_keepalive;     /* relay.keepalive (s), default 30 */
    double relay_backoff_min;   /* relay.backoff_min (s), default 1 */
    double relay_backoff_max;   /* relay.backoff_max (s), default 60 */
    double relay_session_expiry;/* relay.session_expiry (s), default 1d */
    uint64_t relay_queue_max;   /* relay.queue_max: unacknowledged
                                   messages before the near side pauses a
                                   stream, default 1000 */
    bool relay_insecure;        /* relay.insecure: allow mqtt:// on loopback */
    /* parsed from relay.url and relay.proxy when set */
    struct cs_url relay;        /* scheme mqtt or mqtts */
    struct cs_url relay_socks;  /* scheme socks5 */
    /* metrics: */
    char *metrics_textfile;     /* metrics.textfile: the router writes it */
    double metrics_interval;    /* metrics.interval (s), default 15 */
};

/* Fill *cfg with defaults (home: <home> for expanding defaults). */
int config_defaults (struct cs_config *cfg, cs_error_t *errp);

/* Fill *cfg with the defaults, then load path (or search as above when
 * path is NULL) over them.  Do not call config_defaults() first: *cfg is
 * overwritten.  On success free with config_release(); on failure *cfg
 * holds nothing to free.
 */
int config_load (struct cs_config *cfg, const char *path, cs_error_t *errp);

/* Like config_load(), from YAML text buf[0..len); name is used in error
 * messages (cfg->path stays NULL).
 */
int config_load_string (struct cs_config *cfg, const char *name,
                        const char *buf, size_t len, cs_error_t *errp);

/* Parse url (mqtt://, mqtts://: default ports 1883 and 8883; socks5://:
 * 1080) into *u.  Nothing but a host and port (and user info) is allowed.
 */
int config_parse_url (const char *url, struct cs_url *u, cs_error_t *errp);

/* Is host a loopback name or address (localhost, 127.0.0.0/8, ::1)? */
bool config_host_is_loopback (const char *host);

/* Free what config_defaults/config_load allocated. */
void config_release (struct cs_config *cfg);

#endif
