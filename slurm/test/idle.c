/* idle.c - the idle clock of a swarm runs across its job chain */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/libtap/tap.h"
#include "mailbox/mailbox.h"
#include "slurm/idle.h"
#include "slurm/nodes.h"
#include "slurm/swarm.h"

static void append (mb_writer_t *w, const char *type, const char *json)
{
    cs_error_t e;
    cJSON *p = json ? json_parse (json, strlen (json), &e) : NULL;

    if (mb_writer_append (w, type, p, NULL, &e) < 0)
        bail_out ("append %s: %s", type, e.text);
    cJSON_Delete (p);
    usleep (20000); /* distinct timestamps */
}

static mb_writer_t *open_outbox (const char *dir, int k)
{
    char path[4096];
    cs_error_t e;
    mb_writer_t *w;

    if (mb_stream_path (dir, "outbox", k, path, sizeof (path), &e) < 0 ||
        !(w = mb_writer_open (path, NULL, &e)))
        bail_out ("outbox %d: %s", k, e.text);
    return w;
}

/* a job of the chain: its job_started event and its workers' start */
static void job_starts (const char *dir, const char *jobid, int nodes)
{
    cs_error_t e;
    cJSON *p = cJSON_CreateObject ();

    json_add_str (p, "job_id", jobid);
    if (swarm_event (dir, "job_started", p, &e) < 0)
        bail_out ("job_started: %s", e.text);
    cJSON_Delete (p);
    for (int k = 0; k < nodes; k++) {
        mb_writer_t *w = open_outbox (dir, k);
        char js[128];
        snprintf (js, sizeof (js), "{\"node\":%d,\"job_id\":\"%s\"}", k,
                  jobid);
        append (w, "worker_started", js);
        append (w, "ready", "{\"thread_id\":\"th\",\"resumed\":false}");
        append (w, "heartbeat", "{\"turn_active\":false,\"queued\":0}");
        mb_writer_close (w);
    }
}

static double since (const char *dir, int nodes, double created, bool *active)
{
    struct nodes ns;
    struct idle_inbox ib;
    cs_error_t e;
    double first = 0, t;

    if (idle_first_event (dir, "job_started", &first, &e) < 0)
        bail_out ("%s", e.text);
    if (nodes_open (&ns, dir, nodes, &e) < 0 ||
        nodes_update (&ns, NULL, NULL, &e) < 0 ||
        idle_inbox_open (&ib, dir, nodes, &e) < 0 ||
        idle_inbox_update (&ib, &e) < 0)
        bail_out ("%s", e.text);
    t = idle_since (&ns, ib.last_prompt, first, created, active);
    idle_inbox_close (&ib);
    nodes_close (&ns);
    return t;
}

int main (void)
{
    char tmpl[] = "/tmp/idle-test.XXXXXX", dir[4096];
    char *home = mkdtemp (tmpl);
    cs_error_t e;
    double created, lo, hi, t, first;
    bool active;
    mb_writer_t *w;

    plan (NO_PLAN);
    if (!home || mb_swarm_dir (home, "sw", true, dir, sizeof (dir), &e) < 0)
        bail_out ("swarm dir");
    created = time_now () - 100;

    ok (idle_first_event (dir, "job_started", &first, &e) == 0,
        "no swarm events yet: no first job");
    t = since (dir, 2, created, &active);
    ok (t == created && !active, "no job yet: idle since the swarm's creation");

    lo = time_now ();
    job_starts (dir, "101", 2);
    hi = time_now ();
    job_starts (dir, "102", 2);
    t = since (dir, 2, created, &active);
    ok (t >= lo && t <= hi && !active,
        "no turn in a chain of two jobs: idle since the first job started");

    /* a turn on node 1 in job 102 */
    w = open_outbox (dir, 1);
    append (w, "inject_accepted",
            "{\"inbox_seq\":1,\"injection_id\":\"i1\",\"action\":\"turn/start\"}");
    append (w, "rpc", "{\"msg\":{\"method\":\"turn/started\",\"params\":{}}}");
    t = since (dir, 2, created, &active);
    ok (active, "a node in a turn is active");
    append (w, "heartbeat", "{\"turn_active\":true,\"queued\":0}");
    lo = time_now ();
    append (w, "rpc", "{\"msg\":{\"method\":\"turn/completed\",\"params\":{}}}");
    hi = time_now ();
    mb_writer_close (w);
    t = since (dir, 2, created, &active);
    ok (t >= lo && t <= hi && !active, "idle since the turn completed");

    /* the successor jobs do not restart the clock */
    job_starts (dir, "103", 2);
    job_starts (dir, "104", 2);
    t = since (dir, 2, created, &active);
    ok (t >= lo && t <= hi && !active,
        "successor jobs without turns leave the clock where the last turn "
        "left it");
    diag ("idle for %.3f s", time_now () - t);

    /* a prompt sent while no job runs (the gap between two jobs) */
    {
        char path[4096];
        mb_writer_t *iw;
        if (mb_stream_path (dir, "inbox", 0, path, sizeof (path), &e) < 0 ||
            !(iw = mb_writer_open (path, NULL, &e)))
            bail_out ("inbox: %s", e.text);
        lo = time_now ();
        append (iw, "user", "{\"id\":\"u1\",\"content\":\"hi\"}");
        hi = time_now ();
        mb_writer_close (iw);
    }
    t = since (dir, 2, created, &active);
    ok (t >= lo && t <= hi && !active,
        "a prompt waiting in an inbox restarts the clock");

    {
        char cmd[4200];
        snprintf (cmd, sizeof (cmd), "rm -rf '%s'", home);
        if (system (cmd) != 0)
            diag ("cannot remove %s", home);
    }
    done_testing ();
}
