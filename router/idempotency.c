/* idempotency.c - the idempotency keys of inject commands
 *
 * <home>/router/idempotency.jsonl: one line per key, oldest first,
 * {"key":"<swarm>/<key>","ts":<wall clock>,"injections":[...]}.  A line is
 * written before the inbox records it names, and synced before they are
 * acknowledged, so a retry after a crash is answered "duplicate" and never
 * injects twice.  Locally the lines written in one loop iteration are
 * synced together by idem_sync () (commit.c holds the replies until then):
 * should the machine crash before, a key whose records reached an inbox is
 * found there and learnt again (commands.c, idem_learn); over ssh, where
 * the inboxes cannot be read that way, each line is synced before its
 * records are sent, and so are the lines of the relay's resent commands
 * (commands.c, relay_remember), whose ids an inbox cannot tell.  Keys
 * older than IDEM_MAX_AGE, or beyond the newest IDEM_MAX, are forgotten;
 * the file is rewritten when it holds twice as many lines as are kept.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/log.h"
#include "router/router-private.h"

void idem_free (struct idem *im)
{
    if (im) {
        free (im->key);
        cJSON_Delete (im->ids);
        free (im);
    }
}

struct idem *idem_find (struct router *r, const char *key)
{
    for (struct idem *im = r->idems; im; im = im->next)
        if (!strcmp (im->key, key))
            return im;
    return NULL;
}

/* The file's line for im, with its '\n' (free). */
static char *idem_line (const struct idem *im)
{
    cJSON *o = cJSON_CreateObject ();
    char *text = NULL, *line = NULL;

    if (o && json_add_str (o, "key", im->key) == 0
        && json_add_double (o, "ts", im->ts) == 0
        && json_add_item (o, "injections", cJSON_Duplicate (im->ids, 1)) == 0
        && (text = json_print (o))
        && (line = malloc (strlen (text) + 2)))
        sprintf (line, "%s\n", text);
    free (text);
    cJSON_Delete (o);
    return line;
}

/* Forget keys that are too old or too many (the list is newest first). */
static void idem_prune (struct router *r, double now)
{
    struct idem **pp = &r->idems;
    size_t n = 0;

    while (*pp) {
        struct idem *im = *pp;
        if (n >= IDEM_MAX || now - im->ts > IDEM_MAX_AGE) {
            *pp = im->next;
            idem_free (im);
            r->nidem--;
        }
        else {
            n++;
            pp = &im->next;
        }
    }
}

static int idem_open (struct router *r, const char *path, cs_error_t *errp)
{
    if (r->idem_fd >= 0)
        close (r->idem_fd);
    r->idem_fd = mb_secure_open (path, O_WRONLY | O_APPEND | O_CREAT, errp);
    return r->idem_fd < 0 ? -1 : 0;
}

/* Rewrite the file with the keys kept, oldest first. */
static int idem_rewrite (struct router *r, const char *path, cs_error_t *errp)
{
    struct jbuf b = JBUF_INIT;
    struct idem **v = NULL;
    size_t n = 0;
    int rc = -1;

    if (r->nidem && !(v = calloc (r->nidem, sizeof (*v)))) {
        errno = ENOMEM;
        return errprintf (errp, "out of memory");
    }
    for (struct idem *im = r->idems; im && n < r->nidem; im = im->next)
        v[n++] = im;
    if (jbuf_append (&b, "", 0) < 0)
        goto nomem;
    while (n-- > 0) {
        char *line = idem_line (v[n]);
        if (!line || jbuf_append (&b, line, strlen (line)) < 0) {
            free (line);
            goto nomem;
        }
        free (line);
    }
    if (atomic_file_write (path, b.data ? b.data : "", b.len, 0, errp) < 0)
        goto done;
    r->idem_lines = r->nidem;
    rc = idem_open (r, path, errp);
    goto done;
nomem:
    errno = ENOMEM;
    errprintf (errp, "out of memory");
done:
    jbuf_release (&b);
    free (v);
    return rc;
}

static void idem_path (struct router *r, char *buf, size_t len)
{
    snprintf (buf, len, "%s/idempotency.jsonl", r->dir);
}

/* Load the keys of earlier runs.  A torn last line (a crash while it was
 * written) is skipped: its inbox records were not written either.
 */
int idem_load (struct router *r)
{
    char path[PATH_MAX + 32];
    char buf[1 << 16];
    struct jbuf all = JBUF_INIT;
    cs_error_t error;
    double now = time_now ();
    size_t lines = 0;
    bool torn = false;
    ssize_t n;
    char *p, *end;
    int fd;

    idem_path (r, path, sizeof (path));
    if ((fd = mb_secure_open (path, O_RDONLY, &error)) < 0) {
        if (errno != ENOENT) {
            log_msg ("%s", error.text);
            return -1;
        }
        if (idem_open (r, path, &error) < 0) {
            log_msg ("%s", error.text);
            return -1;
        }
        return 0;
    }
    while ((n = read (fd, buf, sizeof (buf))) > 0)
        if (jbuf_append (&all, buf, (size_t)n) < 0) {
            n = -1;
            break;
        }
    close (fd);
    if (n < 0) {
        log_msg ("cannot read '%s': %s", path, strerror (errno));
        jbuf_release (&all);
        return -1;
    }
    for (p = all.data; p && p < all.data + all.len; p = end + 1) {
        const char *key;
        const cJSON *ids;
        struct idem *im;
        double ts;
        cJSON *o;

        if (!(end = memchr (p, '\n', (size_t)(all.data + all.len - p)))) {
            torn = true;        /* no newline */
            break;
        }
        lines++;
        if (!(o = json_parse (p, (size_t)(end - p), NULL)))
            continue;
        ids = cJSON_GetObjectItemCaseSensitive (o, "injections");
        if (json_get_str (o, "key", &key, NULL) == 0
            && json_get_double (o, "ts", &ts, NULL) == 0
            && cJSON_IsArray (ids) && now - ts <= IDEM_MAX_AGE
            && !idem_find (r, key) && (im = calloc (1, sizeof (*im)))) {
            im->key = strdup (key);
            im->ts = ts;
            im->ids = cJSON_Duplicate (ids, 1);
            if (!im->key || !im->ids)
                idem_free (im);
            else {
                im->next = r->idems;
                r->idems = im;
                r->nidem++;
            }
        }
        cJSON_Delete (o);
    }
    jbuf_release (&all);
    idem_prune (r, now);
    r->idem_lines = lines;
    if (r->nidem)
        log_debug ("%zu idempotency keys from earlier runs", r->nidem);
    if ((lines > r->nidem || torn)
        ? idem_rewrite (r, path, &error) < 0
        : idem_open (r, path, &error) < 0) {
        log_msg ("%s", error.text);
        return -1;
    }
    return 0;
}

/* Remember key with its injections, durably.  Returns the new entry. */
struct idem *idem_add (struct router *r, const char *key, cJSON *ids,
                       cs_error_t *errp)
{
    char path[PATH_MAX + 32];
    struct idem *im;
    char *line;

    if (!(im = calloc (1, sizeof (*im))) || !(im->key = strdup (key))) {
        free (im);
        cJSON_Delete (ids);
        errno = ENOMEM;
        errprintf (errp, "out of memory");
        return NULL;
    }
    im->ts = time_now ();
    im->ids = ids;
    if (!(line = idem_line (im))) {
        idem_free (im);
        errno = ENOMEM;
        errprintf (errp, "out of memory");
        return NULL;
    }
    idem_path (r, path, sizeof (path));
    if (r->idem_fd < 0 || fd_write_all (r->idem_fd, line, strlen (line)) < 0
        || (r->remote && fdatasync (r->idem_fd) < 0)) {
        errprintf (errp, "cannot write '%s': %s", path,
                   r->idem_fd < 0 ? "not open" : strerror (errno));
        free (line);
        idem_free (im);
        return NULL;
    }
    free (line);
    if (!r->remote)
        r->idem_unsynced = true;
    im->next = r->idems;
    r->idems = im;
    r->nidem++;
    r->idem_lines++;
    if (r->idem_lines > 2 * IDEM_MAX) {
        cs_error_t error;
        idem_prune (r, im->ts);
        if (idem_rewrite (r, path, &error) < 0)
            log_msg ("%s", error.text);
    }
    return im;
}

int idem_sync (struct router *r, cs_error_t *errp)
{
    if (!r->idem_unsynced)
        return 0;
    r->idem_unsynced = false;
    if (r->idem_fd >= 0 && fdatasync (r->idem_fd) < 0)
        return errprintf (errp, "cannot sync '%s/idempotency.jsonl': %s",
                          r->dir, strerror (errno));
    return 0;
}
