/* launch_opts.c - the command line of "codeswarm launch": its usage, the
 * option table, the parsing and checks of each option that need nothing
 * but the option itself, the options of the swarm that --resume takes
 * over, and which options only Slurm can honour.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/configfile.h"
#include "common/json.h"
#include "common/log.h"
#include "common/prefix.h"
#include "slurm/launch.h"
#include "slurm/launch_steps.h"
#include "slurm/swarm.h"
#include "slurm/walltime.h"

static void launch_usage (FILE *f)
{
    fprintf (
        f,
        "usage: codeswarm launch --nodes N [OPTIONS]\n"
        "\n"
        "Start a swarm: one codex agent per node, as a Slurm job, or as local\n"
        "processes with --local (or slurm.backend: local in codeswarm.yaml).\n"
        "Without --local, a Slurm controller that does not answer is an error.\n"
        "\n"
        "  -N, --nodes N            number of nodes (agents), required\n"
        "      --spares S           S more nodes that start no agent: a lost "
        "node's\n"
        "                           index moves to one, the others go on "
        "untouched\n"
        "  -t, --time T             walltime in Slurm's format (minutes, M:S, "
        "H:M:S,\n"
        "                           D-H, D-H:M, D-H:M:S)\n"
        "  -p, --partition P        Slurm partition\n"
        "  -A, --account A          Slurm account\n"
        "  -q, --qos Q              Slurm QOS\n"
        "  -G, --gpus-per-node G    GPUs per node\n"
        "      --sbatch-opt OPT     extra sbatch option, e.g. "
        "--sbatch-opt=--exclusive\n"
        "                           (repeatable; the job is then submitted by "
        "sbatch)\n"
        "  -c, --config FILE        codeswarm.yaml for the workers and "
        "defaults\n"
        "      --agents-md FILE     copied to every node's workspace as "
        "AGENTS.md\n"
        "      --persist            outlive the walltime: on the warning "
        "signal the\n"
        "                           workers checkpoint and a successor job "
        "resumes\n"
        "      --warn D             warning before the walltime (default "
        "300s;\n"
        "                           slurm.warn_seconds)\n"
        "      --idle-timeout D     end the swarm (and its chain) after D "
        "without turns\n"
        "      --local              run the workers as processes on this "
        "machine;\n"
        "                           the Slurm options above are then errors\n"
        "      --slurm              submit to Slurm even when slurm.backend is "
        "local\n"
        "      --pending-timeout D  cancel the job when it has not started "
        "after D\n"
        "      --no-wait            return once submitted\n"
        "      --detach             wait, but on Ctrl-C leave the swarm "
        "queued or\n"
        "                           running (by default Ctrl-C while waiting "
        "cancels it)\n"
        "      --parsable           print \"SWARM;JOBID\" only\n"
        "      --progress-json      progress as JSON lines on stdout (for "
        "programs)\n"
        "      --request FILE       the options as a swarm_launch payload of "
        "the router\n"
        "                           protocol (JSON; see "
        "codeswarm-protocol(7))\n"
        "      --template FILE      batch script template (default:\n"
        "                           %s/codeswarm.sbatch.in)\n"
        "      --name ID            swarm id (default: generated)\n"
        "      --resume ID          relaunch the ended (or imported) swarm ID "
        "with its\n"
        "                           options: every node resumes its thread\n"
        "\n"
        "Durations: 30s, 5m, 2h or seconds.  Everything is checked before "
        "anything\n"
        "is submitted.  A job Slurm will never start as asked (more nodes or "
        "time than\n"
        "the partition allows, an invalid account...) is reported with the "
        "limit and\n"
        "cancelled.\n",
        prefix_dir (PREFIX_DIR_PKGDATA));
}

static int parse_positive (const char *opt, const char *s, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol (s, &end, 10);
    if (errno || end == s || *end || v <= 0 || v > 100000) {
        log_msg ("%s must be a positive integer, not '%s'", opt, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_dur (const char *opt, const char *s, double *out)
{
    if (parse_duration (s, out) < 0 && errno == ERANGE) {
        log_msg ("%s: '%s' is longer than " DURATION_MAX_TEXT, opt, s);
        return -1;
    }
    if (parse_duration (s, out) < 0 || *out <= 0) {
        log_msg ("%s: '%s' is not a duration (use e.g. 30s, 5m, 2h)", opt, s);
        return -1;
    }
    return 0;
}

int launch_readable_file (const char *opt, const char *path)
{
    struct stat st;

    if (stat (path, &st) < 0) {
        log_msg ("%s: cannot access '%s': %s", opt, path, strerror (errno));
        return -1;
    }
    if (!S_ISREG (st.st_mode) || access (path, R_OK) < 0) {
        log_msg ("%s: '%s' is not a readable file", opt, path);
        return -1;
    }
    return 0;
}

enum {
    OPT_SBATCH = 256,
    OPT_AGENTS,
    OPT_PERSIST,
    OPT_IDLE,
    OPT_LOCAL,
    OPT_SLURM,
    OPT_NOWAIT,
    OPT_DETACH,
    OPT_PENDING,
    OPT_PARSABLE,
    OPT_TEMPLATE,
    OPT_RESUME,
    OPT_NAME,
    OPT_WARN,
    OPT_PROGRESS_JSON,
    OPT_REQUEST,
    OPT_SPARES,
};

static const struct option launch_longopts[] = {
    {"nodes", required_argument, NULL, 'N'},
    {"spares", required_argument, NULL, OPT_SPARES},
    {"time", required_argument, NULL, 't'},
    {"partition", required_argument, NULL, 'p'},
    {"account", required_argument, NULL, 'A'},
    {"qos", required_argument, NULL, 'q'},
    {"gpus-per-node", required_argument, NULL, 'G'},
    {"sbatch-opt", required_argument, NULL, OPT_SBATCH},
    {"config", required_argument, NULL, 'c'},
    {"agents-md", required_argument, NULL, OPT_AGENTS},
    {"persist", no_argument, NULL, OPT_PERSIST},
    {"warn", required_argument, NULL, OPT_WARN},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"local", no_argument, NULL, OPT_LOCAL},
    {"slurm", no_argument, NULL, OPT_SLURM},
    {"no-wait", no_argument, NULL, OPT_NOWAIT},
    {"detach", no_argument, NULL, OPT_DETACH},
    {"pending-timeout", required_argument, NULL, OPT_PENDING},
    {"parsable", no_argument, NULL, OPT_PARSABLE},
    {"progress-json", no_argument, NULL, OPT_PROGRESS_JSON},
    {"request", required_argument, NULL, OPT_REQUEST},
    {"template", required_argument, NULL, OPT_TEMPLATE},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"name", required_argument, NULL, OPT_NAME},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* --resume ID: the options of the swarm's swarm.json, where the command
 * line did not say otherwise; the swarm must have ended.
 */
static int launch_resume_opts (struct launch_opts *o)
{
    static cJSON *sw; /* kept: o borrows its strings */
    char home[LAUNCH_PATH_MAX], dir[LAUNCH_PATH_MAX];
    const cJSON *opts, *sb, *it;
    const char *state, *cfg;
    cs_error_t e;

    if (launch_home (home, sizeof (home), false) < 0)
        return -1;
    if (launch_swarm_dir (home, o->resume, dir, sizeof (dir), &e) < 0 ||
        !(sw = swarm_load (dir, &e))) {
        log_msg ("--resume: %s", e.text);
        return -1;
    }
    state = swarm_str (sw, "state");
    if (!swarm_state_final (state)) {
        log_msg ("--resume: swarm '%s' is %s, not over (cancel it first)",
                 o->resume, state ? state : "in an unknown state");
        return -1;
    }
    opts = cJSON_GetObjectItemCaseSensitive (sw, "options");
    o->name = o->resume;
    o->nodes = swarm_int (sw, "nodes", 0);
    if (!o->spares)
        o->spares = swarm_int (sw, "spares", 0);
    if (!o->local && !o->slurm && swarm_str (sw, "backend") &&
        !strcmp (swarm_str (sw, "backend"), "local"))
        o->local = true;
    if (o->local)
        return 0;
    if (!o->time && swarm_str (opts, "time")) {
        o->time = swarm_str (opts, "time");
        o->time_secs = (uint64_t)swarm_num (opts, "time_secs", 0);
    }
    if (!o->partition)
        o->partition = swarm_str (opts, "partition");
    if (!o->account)
        o->account = swarm_str (opts, "account");
    if (!o->qos)
        o->qos = swarm_str (opts, "qos");
    if (!o->gpus_per_node)
        o->gpus_per_node = swarm_int (opts, "gpus_per_node", 0);
    cfg = swarm_str (opts, "config");
    if (!o->config && cfg && access (cfg, R_OK) == 0)
        o->config = cfg;
    if (!o->template && swarm_str (opts, "template") &&
        access (swarm_str (opts, "template"), R_OK) == 0)
        o->template = swarm_str (opts, "template");
    if (!o->persist &&
        cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (opts, "persist"))) {
        o->persist = true;
        if (!o->warn_given && swarm_num (opts, "warn", 0) > 0) {
            o->warn = swarm_num (opts, "warn", 0);
            o->warn_given = true;
        }
    }
    if (o->idle_timeout == 0)
        o->idle_timeout = swarm_num (opts, "idle_timeout", 0);
    sb = cJSON_GetObjectItemCaseSensitive (opts, "sbatch_opts");
    if (o->nsbatch_opts == 0)
        cJSON_ArrayForEach (it, sb)
            if (cJSON_IsString (it) && o->nsbatch_opts < MAX_SBATCH_OPTS)
                o->sbatch_opts[o->nsbatch_opts++] = it->valuestring;
    return 0;
}

int launch_opts_parse (int argc, char **argv, struct launch_opts *o)
{
    int c;
    cs_error_t e;

    memset (o, 0, sizeof (*o));
    opterr = 0;
    optind = 1;
    while ((c = getopt_long (argc, argv, ":N:t:p:A:q:G:c:h", launch_longopts,
                             NULL)) != -1) {
        switch (c) {
        case 'N':
            if (parse_positive ("--nodes", optarg, &o->nodes) < 0)
                return -1;
            break;
        case OPT_SPARES:
            if (parse_positive ("--spares", optarg, &o->spares) < 0)
                return -1;
            break;
        case 't':
            o->time = optarg;
            if (walltime_parse (optarg, &o->time_secs, &e) < 0) {
                log_msg ("--time: %s", e.text);
                return -1;
            }
            break;
        case 'p':
            o->partition = optarg;
            break;
        case 'A':
            o->account = optarg;
            break;
        case 'q':
            o->qos = optarg;
            break;
        case 'G':
            if (parse_positive ("--gpus-per-node", optarg, &o->gpus_per_node) <
                0)
                return -1;
            break;
        case OPT_SBATCH:
            if (optarg[0] != '-' || strchr (optarg, '\n')) {
                log_msg ("--sbatch-opt '%s' is not an sbatch option (it must "
                         "start with '-', e.g. --sbatch-opt=--exclusive)",
                         optarg);
                return -1;
            }
            if (o->nsbatch_opts == MAX_SBATCH_OPTS) {
                log_msg ("too many --sbatch-opt (at most %d)", MAX_SBATCH_OPTS);
                return -1;
            }
            o->sbatch_opts[o->nsbatch_opts++] = optarg;
            break;
        case 'c':
            o->config = optarg;
            break;
        case OPT_AGENTS:
            o->agents_md = optarg;
            break;
        case OPT_PERSIST:
            o->persist = true;
            break;
        case OPT_WARN:
            if (parse_dur ("--warn", optarg, &o->warn) < 0)
                return -1;
            o->warn_given = true;
            break;
        case OPT_IDLE:
            if (parse_dur ("--idle-timeout", optarg, &o->idle_timeout) < 0)
                return -1;
            break;
        case OPT_LOCAL:
            o->local = true;
            break;
        case OPT_SLURM:
            o->slurm = true;
            break;
        case OPT_NOWAIT:
            o->no_wait = true;
            break;
        case OPT_DETACH:
            o->detach = true;
            break;
        case OPT_PENDING:
            if (parse_dur ("--pending-timeout", optarg, &o->pending_timeout) <
                0)
                return -1;
            break;
        case OPT_PARSABLE:
            o->parsable = true;
            break;
        case OPT_PROGRESS_JSON:
            o->progress_json = true;
            break;
        case OPT_REQUEST:
            o->request = optarg;
            break;
        case OPT_TEMPLATE:
            o->template = optarg;
            break;
        case OPT_NAME:
            o->name = optarg;
            break;
        case OPT_RESUME:
            o->resume = optarg;
            break;
        case 'h':
            launch_usage (stdout);
            exit (0);
        case ':':
            log_msg ("option '%s' needs a value", argv[optind - 1]);
            return -1;
        default:
            log_msg ("unknown option '%s' (see 'codeswarm launch --help')",
                     argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        log_msg ("unexpected argument '%s' (see 'codeswarm launch --help')",
                 argv[optind]);
        return -1;
    }
    if (o->resume && (o->nodes || o->name)) {
        log_msg ("--resume takes the node count and the id of the swarm: "
                 "drop %s", o->nodes ? "--nodes" : "--name");
        return -1;
    }
    if (o->resume && launch_resume_opts (o) < 0)
        return -1;
    if (o->nodes == 0 && !o->request) {
        log_msg ("--nodes is required (a positive integer)");
        return -1;
    }
    if (o->local && o->slurm) {
        log_msg ("--local and --slurm exclude each other");
        return -1;
    }
    if (o->no_wait && (o->detach || o->pending_timeout > 0)) {
        log_msg ("%s needs launch to wait: drop --no-wait",
                 o->detach ? "--detach" : "--pending-timeout");
        return -1;
    }
    if (o->config) {
        /* the workers read it on other nodes, from another directory */
        static char abs_config[PATH_MAX];
        if (launch_readable_file ("--config", o->config) < 0)
            return -1;
        if (!realpath (o->config, abs_config)) {
            log_msg ("--config: cannot resolve '%s': %s", o->config,
                     strerror (errno));
            return -1;
        }
        o->config = abs_config;
    }
    if (o->agents_md &&
        launch_readable_file ("--agents-md", o->agents_md) < 0)
        return -1;
    if (o->request && launch_readable_file ("--request", o->request) < 0)
        return -1;
    if (o->template && launch_readable_file ("--template", o->template) < 0)
        return -1;
    return 0;
}

bool launch_valid_id (const char *id)
{
    size_t n = strlen (id);

    if (n == 0 || n > 64 || id[0] == '.')
        return false;
    return strspn (id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789._-") == n;
}

/* The first option of the command line that only Slurm can honour, or
 * NULL.  (The slurm.* defaults of codeswarm.yaml are not applied to a local
 * swarm, so they are not errors.)
 */
const char *launch_opts_slurm_only (const struct launch_opts *o)
{
    if (o->time)
        return "--time";
    if (o->partition)
        return "--partition";
    if (o->account)
        return "--account";
    if (o->qos)
        return "--qos";
    if (o->gpus_per_node)
        return "--gpus-per-node";
    if (o->nsbatch_opts)
        return "--sbatch-opt";
    if (o->persist)
        return "--persist";
    if (o->warn_given)
        return "--warn";
    if (o->template)
        return "--template";
    if (o->pending_timeout > 0)
        return "--pending-timeout";
    if (o->spares)
        return "--spares";
    return NULL;
}
