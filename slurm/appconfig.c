/* appconfig.c - ask "codex app-server" for its effective configuration
 * (see appconfig.h)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/lineio.h"
#include "common/log.h"
#include "common/spawn.h"
#include "slurm/appconfig.h"

#define APPCONFIG_MAX_LINE (4 * 1024 * 1024)

struct conn {
    spawn_t *sp;
    lineio_t *in;
    double deadline;            /* time_mono () */
};

static int send_msg (struct conn *c, cJSON *msg, cs_error_t *errp)
{
    char *s = msg ? cJSON_PrintUnformatted (msg) : NULL;
    int rc = 0;

    if (!s)
        rc = errprintf (errp, "out of memory");
    else if (fd_write_all (spawn_stdin_fd (c->sp), s, strlen (s)) < 0
             || fd_write_all (spawn_stdin_fd (c->sp), "\n", 1) < 0)
        rc = errprintf (errp, "cannot write to the app-server: %s",
                        strerror (errno));
    free (s);
    cJSON_Delete (msg);
    return rc;
}

/* A request {"id":id,"method":method,"params":params} (takes params). */
static int request (struct conn *c, int id, const char *method,
                    cJSON *params, cs_error_t *errp)
{
    cJSON *m = cJSON_CreateObject ();
    if (!m || !cJSON_AddNumberToObject (m, "id", id)
        || json_add_str (m, "method", method) < 0
        || json_add_item (m, "params", params) < 0) {
        cJSON_Delete (m);
        return errprintf (errp, "out of memory");
    }
    return send_msg (c, m, errp);
}

/* The response to request id (cJSON_Delete); notifications and other
 * messages on the way are skipped.  NULL on EOF, timeout or an error
 * response, with errp filled.
 */
static cJSON *response (struct conn *c, int id, const char *method,
                        cs_error_t *errp)
{
    int fd = spawn_stdout_fd (c->sp);

    for (;;) {
        const char *line;
        size_t len;
        bool overlong;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int ms, n;

        while (lineio_next (c->in, &line, &len, &overlong) == 1) {
            cJSON *o;
            int64_t rid;
            const cJSON *err;
            if (overlong || !(o = json_parse (line, len, NULL)))
                continue;
            if (json_get_i64 (o, "id", &rid, NULL) < 0 || rid != id
                || cJSON_GetObjectItemCaseSensitive (o, "method")) {
                cJSON_Delete (o);
                continue;
            }
            if ((err = cJSON_GetObjectItemCaseSensitive (o, "error"))) {
                const char *msg = NULL;
                (void)json_get_str (err, "message", &msg, NULL);
                errprintf (errp, "%s: %s", method, msg ? msg : "error");
                cJSON_Delete (o);
                return NULL;
            }
            return o;
        }
        if (lineio_eof (c->in)) {
            errprintf (errp, "%s: the app-server exited", method);
            return NULL;
        }
        ms = (int)((c->deadline - time_mono ()) * 1000);
        if (ms <= 0) {
            errprintf (errp, "%s: no answer from the app-server", method);
            return NULL;
        }
        if ((n = poll (&pfd, 1, ms)) < 0 && errno != EINTR) {
            errprintf (errp, "poll: %s", strerror (errno));
            return NULL;
        }
        if (n > 0 && lineio_fill (c->in, fd) < 0 && errno != EAGAIN
            && errno != EINTR) {
            errprintf (errp, "cannot read from the app-server: %s",
                       strerror (errno));
            return NULL;
        }
    }
}

/* initialize, initialized, config/read: the "config" of its result. */
static cJSON *ask (struct conn *c, cs_error_t *errp)
{
    cJSON *p = cJSON_CreateObject (), *ci, *o, *cfg = NULL, *n;

    if (!p || !(ci = cJSON_AddObjectToObject (p, "clientInfo"))
        || json_add_str (ci, "name", "codeswarm-doctor") < 0
        || json_add_str (ci, "version", PACKAGE_VERSION) < 0) {
        cJSON_Delete (p);
        errprintf (errp, "out of memory");
        return NULL;
    }
    if (request (c, 1, "initialize", p, errp) < 0
        || !(o = response (c, 1, "initialize", errp)))
        return NULL;
    cJSON_Delete (o);
    if (!(n = cJSON_CreateObject ())
        || json_add_str (n, "method", "initialized") < 0) {
        cJSON_Delete (n);
        errprintf (errp, "out of memory");
        return NULL;
    }
    if (send_msg (c, n, errp) < 0)
        return NULL;
    if (!(p = cJSON_CreateObject ())
        || !cJSON_AddBoolToObject (p, "includeLayers", 0)) {
        cJSON_Delete (p);
        errprintf (errp, "out of memory");
        return NULL;
    }
    if (request (c, 2, "config/read", p, errp) < 0
        || !(o = response (c, 2, "config/read", errp)))
        return NULL;
    cfg = cJSON_DetachItemFromObjectCaseSensitive (
        cJSON_GetObjectItemCaseSensitive (o, "result"), "config");
    cJSON_Delete (o);
    if (!cJSON_IsObject (cfg)) {
        cJSON_Delete (cfg);
        errprintf (errp, "config/read: the response has no config object");
        return NULL;
    }
    return cfg;
}

cJSON *appconfig_read (const char *codex, char *const *env_set,
                       double timeout, cs_error_t *errp)
{
    struct spawn_opts so = SPAWN_OPTS_INIT;
    char *argv[] = { (char *)codex, (char *)"app-server", NULL };
    struct conn c = { .deadline = time_mono () + timeout };
    struct spawn_status st;
    cJSON *cfg = NULL;
    int devnull;

    if ((devnull = open ("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
        errprintf (errp, "/dev/null: %s", strerror (errno));
        return NULL;
    }
    so.env_set = env_set;
    so.pipe_stdin = true;
    so.pipe_stdout = true;
    so.stderr_fd = devnull;     /* its log lines are not doctor's output */
    if (!(c.in = lineio_create (APPCONFIG_MAX_LINE))) {
        close (devnull);
        errprintf (errp, "out of memory");
        return NULL;
    }
    if ((c.sp = spawn_start (argv, &so, errp))) {
        cfg = ask (&c, errp);
        spawn_close_stdin (c.sp);
        (void)spawn_stop (c.sp, 2.0, &st);
        spawn_destroy (c.sp);
    }
    close (devnull);
    lineio_destroy (c.in);
    return cfg;
}
