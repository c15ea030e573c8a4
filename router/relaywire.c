/* relaywire.c - topics, sealed messages, notices and state files of the
 * relay; see relaywire.h
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "router/command.h"
#include "router/eventlog.h"
#include "router/relaywire.h"

uint64_t relay_seq_block (uint64_t reserved)
{
    uint64_t now = (uint64_t)(time_now () * 1e6);
    return now > reserved ? now : reserved;
}

size_t relay_msg_cut (const char *s, size_t n)
{
    size_t cut = RELAY_MSG_MAX;
    const char *nl;

    if (n <= RELAY_MSG_MAX)
        return n;
    while (cut > 0 && s[cut - 1] != '\n')
        cut--;
    if (cut > 0)
        return cut;
    nl = memchr (s, '\n', n);
    return nl ? (size_t)(nl - s) + 1 : n;
}

int relay_topics (const char *prefix, const char *far_id, char *up,
                  char *down, char *hello, cs_error_t *errp)
{
    if (snprintf (up, RELAY_TOPIC_MAX, "%s/up/%s", prefix, far_id)
            >= RELAY_TOPIC_MAX
        || snprintf (down, RELAY_TOPIC_MAX, "%s/down/%s", prefix, far_id)
               >= RELAY_TOPIC_MAX
        || snprintf (hello, RELAY_TOPIC_MAX, "%s/hello", prefix)
               >= RELAY_TOPIC_MAX) {
        errno = ENAMETOOLONG;
        return errprintf (errp, "relay.topic_prefix '%s' is too long",
                          prefix);
    }
    return 0;
}

int relay_publish (mqlink_t *l, const unsigned char *key, enum seal_dir dir,
                   const char *link, uint64_t seq, const char *topic,
                   const void *pt, size_t len, bool retain, cs_error_t *errp)
{
    static unsigned char *buf;
    static size_t bufsize;
    size_t need = len + SEAL_OVERHEAD;

    if (need > bufsize) {
        unsigned char *nb = realloc (buf, need);
        if (!nb)
            return errprintf (errp, "out of memory");
        buf = nb;
        bufsize = need;
    }
    if (seal_box (key, dir, link, seq, pt, len, buf) < 0)
        return errprintf (errp, "cannot seal: %s", strerror (errno));
    return mqlink_publish (l, topic, buf, need, retain, errp);
}

bool relay_line_is_event (const char *line, size_t len, uint64_t *seq)
{
    const char *ev = memmem (line, len, ",\"event\":", 9);
    const char *sq = memmem (line, ev ? (size_t)(ev - line) : len,
                             ",\"seq\":", 7);
    char *end;

    if (!sq)
        return false;
    *seq = strtoull (sq + 7, &end, 10);
    return end != sq + 7;
}

int relay_notice (struct jbuf *b, const char *side, const char *state,
                  const char *detail, double retry_in)
{
    char ts[64];
    cJSON *d = cJSON_CreateObject ();
    char *s;
    int rc;

    if (!d)
        return -1;
    json_add_str (d, "side", side);
    json_add_str (d, "state", state);
    if (detail)
        json_add_str (d, "detail", detail);
    if (retry_in > 0)
        cJSON_AddNumberToObject (d, "retry_in", (double)(long)(retry_in * 10)
                                                / 10);
    s = json_print (d);
    cJSON_Delete (d);
    if (!s)
        return -1;
    eventlog_timestamp (time_now (), ts, sizeof (ts));
    rc = jbuf_printf (b, "{\"protocol\":\"" RC_PROTOCOL "\",\"type\":\"event\","
                      "\"timestamp\":\"%s\",\"event\":\"relay_state\","
                      "\"data\":%s}\n", ts, s);
    free (s);
    return rc;
}

cJSON *relay_state_read (const char *path, cs_error_t *errp)
{
    char buf[8192];
    ssize_t n;
    cJSON *o;
    int fd;

    if ((fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        errprintf (errp, "cannot open '%s': %s", path, strerror (errno));
        return NULL;
    }
    n = read (fd, buf, sizeof (buf) - 1);
    close (fd);
    if (n < 0) {
        errprintf (errp, "cannot read '%s': %s", path, strerror (errno));
        return NULL;
    }
    if (!(o = cJSON_ParseWithLengthOpts (buf, (size_t)n, NULL, false))
        || !cJSON_IsObject (o)) {
        cJSON_Delete (o);
        errno = EINVAL;
        errprintf (errp, "'%s' is not a JSON object", path);
        return NULL;
    }
    return o;
}

int relay_state_write (const char *path, const cJSON *state,
                       cs_error_t *errp)
{
    char *s = cJSON_PrintUnformatted (state);
    int rc;

    if (!s)
        return errprintf (errp, "out of memory");
    rc = atomic_file_write (path, s, strlen (s), 0, errp);
    free (s);
    return rc;
}
