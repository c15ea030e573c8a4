/* cursor.c - reader positions: text form, JSON form, durable files
 *
 * A cursor file is one JSON object and a newline:
 *   {"seq":N,"epoch":E,"segment":S,"offset":O}
 * replaced atomically by atomic_file_write() (common/atomicfile.h): written
 * to a temporary in the same directory (O_EXCL|O_NOFOLLOW, 0600), fsync'd,
 * rename(2)d over the old file, and the directory fsync'd.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "mailbox/mailbox.h"
#include "mailbox/private.h"

#define CURSOR_FILE_MAX 4096

int mb_cursor_format (const struct mb_cursor *c, char *buf, size_t len)
{
    int n = snprintf (buf, len, "%ju:%ju:%ju:%ju", (uintmax_t)c->seq,
                      (uintmax_t)c->epoch, (uintmax_t)c->segment,
                      (uintmax_t)c->offset);
    if (n < 0 || (size_t)n >= len) {
        errno = ENOSPC;
        return -1;
    }
    return 0;
}

int mb_cursor_parse (const char *s, struct mb_cursor *c, cs_error_t *errp)
{
    uint64_t v[4] = { 0, 0, 0, 0 };
    const char *p = s;
    int n = 0;

    if (!s) {
        errno = EINVAL;
        return errprintf (errp, "invalid cursor: empty");
    }
    for (;;) {
        const char *colon = strchr (p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen (p);
        if (n == 4 || mb_u64_parse (p, len, &v[n]) < 0)
            goto inval;
        n++;
        if (!colon)
            break;
        p = colon + 1;
    }
    if (n != 1 && n != 4)
        goto inval;
    c->seq = v[0];
    c->epoch = v[1];
    c->segment = v[2];
    c->offset = v[3];
    return 0;
inval:
    errno = EINVAL;
    return errprintf (errp, "invalid cursor '%s': expected SEQ or "
                      "SEQ:EPOCH:SEGMENT:OFFSET (decimal, below 2^53)",
                      s);
}

cJSON *mb_cursor_to_json (const struct mb_cursor *c)
{
    cJSON *o = cJSON_CreateObject ();
    if (!o || !cJSON_AddNumberToObject (o, "seq", (double)c->seq)
        || !cJSON_AddNumberToObject (o, "epoch", (double)c->epoch)
        || !cJSON_AddNumberToObject (o, "segment", (double)c->segment)
        || !cJSON_AddNumberToObject (o, "offset", (double)c->offset)) {
        cJSON_Delete (o);
        errno = ENOMEM;
        return NULL;
    }
    return o;
}

static int json_uint (const cJSON *o, const char *name, bool required,
                      uint64_t *v, cs_error_t *errp)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive (o, name);
    if (!m) {
        if (!required) {
            *v = 0;
            return 0;
        }
        errno = EINVAL;
        return errprintf (errp, "cursor: missing \"%s\"", name);
    }
    double d = m->valuedouble;
    if (!cJSON_IsNumber (m) || !(d >= 0) || d >= MB_MAX_SAFE_INT
        || (double)(uint64_t)d != d) {
        errno = EINVAL;
        return errprintf (errp, "cursor: \"%s\" is not a non-negative "
                          "integer below 2^53", name);
    }
    *v = (uint64_t)d;
    return 0;
}

int mb_cursor_from_json (const cJSON *o, struct mb_cursor *c,
                         cs_error_t *errp)
{
    struct mb_cursor t;

    if (!cJSON_IsObject (o)) {
        errno = EINVAL;
        return errprintf (errp, "cursor: not a JSON object");
    }
    if (json_uint (o, "seq", true, &t.seq, errp) < 0
        || json_uint (o, "epoch", false, &t.epoch, errp) < 0
        || json_uint (o, "segment", false, &t.segment, errp) < 0
        || json_uint (o, "offset", false, &t.offset, errp) < 0)
        return -1;
    *c = t;
    return 0;
}

static int split_dir (const char *path, char *dir, size_t dlen,
                      const char **base)
{
    const char *slash = strrchr (path, '/');
    if (!slash) {
        snprintf (dir, dlen, ".");
        *base = path;
        return 0;
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= dlen) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy (dir, path, n);
    dir[n] = '\0';
    *base = slash + 1;
    return 0;
}

int mb_cursor_save (const char *path, const struct mb_cursor *c,
                    cs_error_t *errp)
{
    char dir[MB_PATH_MAX], text[256];
    const char *base;
    int n;

    if (split_dir (path, dir, sizeof (dir), &base) < 0 || !*base)
        return errprintf (errp, "invalid cursor path '%s'", path);
    if (mb_secure_dir (dir, false, errp) < 0)
        return -1;
    n = snprintf (text, sizeof (text),
                  "{\"seq\":%ju,\"epoch\":%ju,\"segment\":%ju,"
                  "\"offset\":%ju}\n",
                  (uintmax_t)c->seq, (uintmax_t)c->epoch,
                  (uintmax_t)c->segment, (uintmax_t)c->offset);
    return atomic_file_write (path, text, (size_t)n, ATOMIC_FILE_SYNC_DIR,
                              errp);
}

int mb_cursor_load (const char *path, struct mb_cursor *c, bool *found,
                    cs_error_t *errp)
{
    char buf[CURSOR_FILE_MAX];
    size_t len = 0;
    int fd;
    cJSON *o;
    const char *end = NULL;

    if (found)
        *found = false;
    if ((fd = mb_secure_open (path, O_RDONLY, errp)) < 0) {
        if (errno == ENOENT) {
            memset (c, 0, sizeof (*c));
            return 0;
        }
        return -1;
    }
    for (;;) {
        ssize_t n = read (fd, buf + len, sizeof (buf) - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;
            close (fd);
            errno = saved;
            return errprintf (errp, "cannot read '%s': %s", path,
                              strerror (errno));
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == sizeof (buf)) {
            close (fd);
            errno = EINVAL;
            return errprintf (errp, "cursor file '%s' is too large", path);
        }
    }
    close (fd);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '
                       || buf[len - 1] == '\r' || buf[len - 1] == '\t'))
        len--;
    if (len == 0) {
        errno = EINVAL;
        return errprintf (errp, "cursor file '%s' is empty", path);
    }
    o = cJSON_ParseWithLengthOpts (buf, len, &end, false);
    if (!o || end != buf + len) {
        size_t off = end && end >= buf && end <= buf + len
                         ? (size_t)(end - buf)
                         : 0;
        cJSON_Delete (o);
        errno = EINVAL;
        return errprintf (errp, "cursor file '%s' is not valid JSON near "
                          "byte %zu", path, off);
    }
    if (mb_cursor_from_json (o, c, errp) < 0) {
        cJSON_Delete (o);
        return errprefix (errp, "'%s'", path);
    }
    cJSON_Delete (o);
    if (found)
        *found = true;
    return 0;
}

static bool reader_name_valid (const char *s)
{
    size_t n = 0;
    if (!s || !*s || *s == '.')
        return false;
    for (; *s; s++, n++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')
              || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_'
              || *s == '-'))
            return false;
    }
    return n <= 128;
}

int mb_cursor_path (const char *stream_path, const char *reader, char *buf,
                    size_t len, cs_error_t *errp)
{
    struct mb_stream_name sn;
    char swarm[MB_PATH_MAX];

    if (!reader_name_valid (reader)) {
        errno = EINVAL;
        return errprintf (errp, "invalid reader name '%s': use 1 to 128 of "
                          "A-Z a-z 0-9 . _ - not starting with '.'",
                          reader ? reader : "");
    }
    if (mb_stream_split (stream_path, &sn, errp) < 0)
        return -1;
    /* the swarm directory is the parent of the archive directory */
    size_t alen = strlen (sn.archive) - strlen ("archive");
    memcpy (swarm, sn.archive, alen);
    swarm[alen] = '\0';
    int n = snprintf (buf, len, "%scursors/%s.%s-%s.json", swarm, reader,
                      sn.box, sn.name);
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return errprintf (errp, "cursor path too long");
    }
    return 0;
}
