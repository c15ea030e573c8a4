/* mqlink.c - an MQTT connection driven by the caller's poll() loop; see
 * mqlink.h
 *
 * libmosquitto does the protocol.  Its own loop functions are called with
 * a zero timeout whenever poll() saw the socket ready, so that it handles
 * the non-blocking TCP connect, the TLS handshake, keepalive and QoS 1
 * retries itself.  Connecting is in phases: until the TCP connection is
 * made the socket is polled for writing; during the TLS handshake and the
 * CONNECT exchange for reading, with short ticks; once the broker
 * accepted us, for reading and (when libmosquitto has output) writing.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "common/json.h"
#include "router/mqlink.h"

enum phase {
    PH_DOWN,            /* waiting for next_attempt */
    PH_TCP,             /* TCP connect in progress */
    PH_HANDSHAKE,       /* TLS / SOCKS / CONNECT..CONNACK */
    PH_UP,
};

struct mqlink {
    struct mosquitto *mosq;
    const struct cs_config *cfg;
    char *client_id;
    char **topics;
    int ntopics;
    mqlink_msg_f msg_cb;
    mqlink_state_f state_cb;
    void *arg;
    enum phase phase;
    bool started;               /* mosquitto_connect_bind_async done once */
    double next_attempt;        /* time_mono */
    double backoff;
    double attempt_start;
    bool refused;               /* the CONNACK said no */
    char why[640];              /* the reason of the last failure */
    char lastlog[256];          /* libmosquitto's last error log line */
    unsigned unacked;
    unsigned connects;
    char password[256];
};

static bool lib_ready;

static void set_down (mqlink_t *l, const char *why)
{
    double retry;

    if (l->phase == PH_DOWN)
        return;
    l->phase = PH_DOWN;
    retry = l->backoff;
    l->next_attempt = time_mono () + retry;
    l->backoff *= 2;
    if (l->backoff > l->cfg->relay_backoff_max)
        l->backoff = l->cfg->relay_backoff_max;
    if (why)
        snprintf (l->why, sizeof (l->why), "%s", why);
    if (l->state_cb)
        l->state_cb (l, l->refused ? "refused" : "retrying", l->why, retry,
                     l->arg);
}

static void on_connect (struct mosquitto *m, void *arg, int rc, int flags,
                        const mosquitto_property *props)
{
    mqlink_t *l = arg;

    if (rc != 0) {
        l->refused = true;
        snprintf (l->why, sizeof (l->why), "the broker refused the "
                  "connection: %s", mosquitto_reason_string (rc));
        return;
    }
    l->refused = false;
    l->phase = PH_UP;
    l->backoff = l->cfg->relay_backoff_min;
    l->unacked = 0;
    l->connects++;
    if (l->ntopics > 0)
        (void)mosquitto_subscribe_multiple (m, NULL, l->ntopics, l->topics, 1,
                                            0, NULL);
    if (l->state_cb)
        l->state_cb (l, "connected", NULL, 0, l->arg);
}

static void on_disconnect (struct mosquitto *m, void *arg, int rc,
                           const mosquitto_property *props)
{
    mqlink_t *l = arg;
    char buf[600];

    if (l->refused)
        set_down (l, NULL);
    else {
        /* rc 0: a DISCONNECT, ours (mqlink_destroy reports none) or the
         * broker's, which says no more than that */
        snprintf (buf, sizeof (buf), "connection lost: %s%s%s",
                  rc == MOSQ_ERR_SUCCESS ? "the broker disconnected us"
                  : rc == MOSQ_ERR_ERRNO ? strerror (errno)
                                         : mosquitto_strerror (rc),
                  l->lastlog[0] ? "; " : "", l->lastlog);
        set_down (l, buf);
    }
}

static void on_publish (struct mosquitto *m, void *arg, int mid, int rc,
                        const mosquitto_property *props)
{
    mqlink_t *l = arg;
    if (l->unacked > 0)
        l->unacked--;
}

static void on_message (struct mosquitto *m, void *arg,
                        const struct mosquitto_message *msg,
                        const mosquitto_property *props)
{
    mqlink_t *l = arg;
    if (l->msg_cb)
        l->msg_cb (l, msg->topic, msg->payload, (size_t)msg->payloadlen,
                   l->arg);
}

static void on_log (struct mosquitto *m, void *arg, int level,
                    const char *str)
{
    mqlink_t *l = arg;
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
        snprintf (l->lastlog, sizeof (l->lastlog), "%s", str);
}

static int read_password (const char *path, char *buf, size_t len,
                          cs_error_t *errp)
{
    struct stat sb;
    ssize_t n;
    int fd;

    if ((fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return errprintf (errp, "relay.password_file '%s': %s", path,
                          errno == ELOOP ? "is a symbolic link"
                                         : strerror (errno));
    if (fstat (fd, &sb) < 0 || !S_ISREG (sb.st_mode)
        || sb.st_uid != geteuid () || (sb.st_mode & 077)) {
        close (fd);
        errno = EPERM;
        return errprintf (errp, "relay.password_file '%s': must be a "
                          "regular file of yours with mode 0600", path);
    }
    n = read (fd, buf, len - 1);
    close (fd);
    if (n < 0)
        return errprintf (errp, "relay.password_file '%s': %s", path,
                          strerror (errno));
    buf[n] = '\0';
    buf[strcspn (buf, "\r\n")] = '\0';
    return 0;
}

static int mosq_err (int rc, const char *what, cs_error_t *errp)
{
    errno = EINVAL;
    return errprintf (errp, "%s: %s", what,
                      rc == MOSQ_ERR_ERRNO ? strerror (errno)
                                           : mosquitto_strerror (rc));
}

mqlink_t *mqlink_create (const struct mqlink_opts *o, cs_error_t *errp)
{
    const struct cs_config *cfg = o->cfg;
    mosquitto_property *props = NULL;
    mqlink_t *l;
    int rc, keepalive = (int)cfg->relay_keepalive;

    if (!cfg->relay_url) {
        errno = EINVAL;
        errprintf (errp, "no relay.url in %s", cfg->path ? cfg->path
                                                        : "codeswarm.yaml");
        return NULL;
    }
    if (!lib_ready) {
        mosquitto_lib_init ();
        lib_ready = true;
    }
    if (!(l = calloc (1, sizeof (*l))))
        goto nomem;
    l->cfg = cfg;
    l->msg_cb = o->msg_cb;
    l->state_cb = o->state_cb;
    l->arg = o->arg;
    l->backoff = cfg->relay_backoff_min;
    l->phase = PH_DOWN;
    l->next_attempt = 0;
    if (!(l->client_id = strdup (o->client_id)))
        goto nomem;
    for (const char *const *t = o->subscribe; t && *t; t++)
        l->ntopics++;
    if (l->ntopics
        && !(l->topics = calloc ((size_t)l->ntopics, sizeof (char *))))
        goto nomem;
    for (int i = 0; i < l->ntopics; i++)
        if (!(l->topics[i] = strdup (o->subscribe[i])))
            goto nomem;
    if (cfg->relay_password_file
        && read_password (cfg->relay_password_file, l->password,
                          sizeof (l->password), errp) < 0)
        goto error;
    if (!(l->mosq = mosquitto_new (l->client_id, false, l)))
        goto nomem;
    mosquitto_int_option (l->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                          MQTT_PROTOCOL_V5);
    mosquitto_int_option (l->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_v5_callback_set (l->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set (l->mosq, on_disconnect);
    mosquitto_publish_v5_callback_set (l->mosq, on_publish);
    mosquitto_message_v5_callback_set (l->mosq, on_message);
    mosquitto_log_callback_set (l->mosq, on_log);
    if (cfg->relay_username || cfg->relay_password_file) {
        rc = mosquitto_username_pw_set (l->mosq, cfg->relay_username,
                                        cfg->relay_password_file
                                            ? l->password : NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            mosq_err (rc, "relay.username", errp);
            goto error;
        }
    }
    if (!strcmp (cfg->relay.scheme, "mqtts")) {
        if (!cfg->relay_ca_file)
            mosquitto_int_option (l->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
        rc = mosquitto_tls_set (l->mosq, cfg->relay_ca_file, NULL,
                                cfg->relay_cert_file, cfg->relay_key_file,
                                NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            errprintf (errp, "relay TLS files (ca_file '%s', cert_file "
                       "'%s', key_file '%s'): %s",
                       cfg->relay_ca_file ? cfg->relay_ca_file : "-",
                       cfg->relay_cert_file ? cfg->relay_cert_file : "-",
                       cfg->relay_key_file ? cfg->relay_key_file : "-",
                       rc == MOSQ_ERR_ERRNO ? strerror (errno)
                                            : mosquitto_strerror (rc));
            errno = EINVAL;
            goto error;
        }
        (void)mosquitto_tls_opts_set (l->mosq, 1, "tlsv1.2", NULL);
    }
    if (cfg->relay_proxy) {
        rc = mosquitto_socks5_set (l->mosq, cfg->relay_socks.host,
                                   cfg->relay_socks.port,
                                   cfg->relay_socks.user[0]
                                       ? cfg->relay_socks.user : NULL,
                                   cfg->relay_socks.password[0]
                                       ? cfg->relay_socks.password : NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            mosq_err (rc, "relay.proxy", errp);
            goto error;
        }
    }
    /* the CONNECT properties: mosquitto_connect_bind_v5 stores them before
     * it looks at the host, so a NULL host stores them without blocking;
     * the asynchronous connect below then sends them */
    if (mosquitto_property_add_int32 (&props,
                                      MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                      (uint32_t)cfg->relay_session_expiry)
        != MOSQ_ERR_SUCCESS)
        goto nomem;
    rc = mosquitto_connect_bind_v5 (l->mosq, NULL, 0, keepalive, NULL, props);
    mosquitto_property_free_all (&props);
    if (rc != MOSQ_ERR_INVAL) {
        mosq_err (rc, "relay: cannot set the connect properties", errp);
        goto error;
    }
    return l;
nomem:
    errprintf (errp, "out of memory");
error:
    mqlink_destroy (l);
    return NULL;
}

void mqlink_destroy (mqlink_t *l)
{
    int saved = errno;

    if (!l)
        return;
    if (l->mosq) {
        /* our own DISCONNECT is reported to on_disconnect (rc 0): it is
         * no lost connection, and the owner is going away */
        l->state_cb = NULL;
        if (l->phase == PH_UP) {
            (void)mosquitto_disconnect_v5 (l->mosq, 0, NULL);
            (void)mosquitto_loop_write (l->mosq, 1);
        }
        mosquitto_destroy (l->mosq);
    }
    for (int i = 0; i < l->ntopics && l->topics; i++)
        free (l->topics[i]);
    free (l->topics);
    free (l->client_id);
    memset (l->password, 0, sizeof (l->password));
    free (l);
    errno = saved;
}

static void attempt (mqlink_t *l)
{
    int rc;
    char buf[600];

    l->refused = false;
    l->lastlog[0] = '\0';
    l->attempt_start = time_mono ();
    if (!l->started) {
        rc = mosquitto_connect_bind_async (l->mosq, l->cfg->relay.host,
                                           l->cfg->relay.port,
                                           (int)l->cfg->relay_keepalive,
                                           NULL);
        if (rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_CONN_PENDING)
            l->started = true;
    }
    else
        rc = mosquitto_reconnect_async (l->mosq);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_CONN_PENDING) {
        snprintf (buf, sizeof (buf), "cannot connect to %s:%d: %s%s%s",
                  l->cfg->relay.host, l->cfg->relay.port,
                  rc == MOSQ_ERR_ERRNO ? strerror (errno)
                                       : mosquitto_strerror (rc),
                  l->lastlog[0] ? "; " : "", l->lastlog);
        l->phase = PH_TCP;      /* so that set_down reports it */
        set_down (l, buf);
        return;
    }
    l->phase = PH_TCP;
}

/* run libmosquitto without waiting; a failure it did not report through
 * on_disconnect (the TLS handshake) is reported here */
static void run_loop (mqlink_t *l)
{
    int rc = mosquitto_loop (l->mosq, 0, 1);
    char buf[600];

    if (rc == MOSQ_ERR_SUCCESS || l->phase == PH_DOWN)
        return;
    if (l->refused) {
        set_down (l, NULL);
        return;
    }
    snprintf (buf, sizeof (buf), "%s%s%s",
              rc == MOSQ_ERR_ERRNO ? strerror (errno)
                                   : mosquitto_strerror (rc),
              l->lastlog[0] ? ": " : "", l->lastlog);
    set_down (l, buf);
}

int mqlink_pollfd (mqlink_t *l, struct pollfd *pfd)
{
    int fd;

    if (l->phase == PH_DOWN || (fd = mosquitto_socket (l->mosq)) < 0)
        return 0;
    pfd->fd = fd;
    pfd->revents = 0;
    switch (l->phase) {
    case PH_TCP:
        pfd->events = POLLOUT | POLLIN;
        break;
    case PH_HANDSHAKE:
        pfd->events = POLLIN;
        break;
    default:
        pfd->events = POLLIN | (mosquitto_want_write (l->mosq) ? POLLOUT : 0);
        break;
    }
    return 1;
}

void mqlink_handle (mqlink_t *l, const struct pollfd *pfd)
{
    if (!pfd->revents || l->phase == PH_DOWN)
        return;
    if (l->phase == PH_TCP)
        l->phase = PH_HANDSHAKE;
    run_loop (l);
    if (l->phase == PH_UP && mosquitto_want_write (l->mosq))
        run_loop (l);
}

int mqlink_timeout (mqlink_t *l)
{
    double d;

    switch (l->phase) {
    case PH_DOWN:
        d = l->next_attempt - time_mono ();
        return d <= 0 ? 0 : (int)(d * 1000) + 1;
    case PH_TCP:
    case PH_HANDSHAKE:
        return 10;
    default:
        return 1000;
    }
}

void mqlink_tick (mqlink_t *l)
{
    double now = time_mono ();
    double limit = l->cfg->relay_keepalive > 10 ? 10 : l->cfg->relay_keepalive;

    if (l->phase == PH_DOWN) {
        if (now >= l->next_attempt)
            attempt (l);
        return;
    }
    if (l->phase != PH_UP && now - l->attempt_start > limit) {
        char buf[600];
        snprintf (buf, sizeof (buf), "no answer from %s:%d within %gs%s%s",
                  l->cfg->relay.host, l->cfg->relay.port, limit,
                  l->lastlog[0] ? ": " : "", l->lastlog);
        set_down (l, buf);
        return;
    }
    run_loop (l);
}

int mqlink_publish (mqlink_t *l, const char *topic, const void *payload,
                    size_t len, bool retain, cs_error_t *errp)
{
    int rc = mosquitto_publish_v5 (l->mosq, NULL, topic, (int)len, payload, 1,
                                   retain, NULL);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
        return mosq_err (rc, "publish", errp);
    l->unacked++;
    if (l->phase == PH_UP)
        run_loop (l);   /* start writing now */
    return 0;
}

bool mqlink_connected (mqlink_t *l)
{
    return l->phase == PH_UP;
}

unsigned mqlink_unacked (mqlink_t *l)
{
    return l->unacked;
}

unsigned mqlink_connects (mqlink_t *l)
{
    return l->connects;
}

void mqlink_drop (mqlink_t *l)
{
    int fd = mosquitto_socket (l->mosq);
    if (fd >= 0)
        (void)shutdown (fd, SHUT_RDWR);
}
