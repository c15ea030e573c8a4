/* audit.c - a swarm's audit trail (audit.h) */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/lineio.h"
#include "common/path.h"
#include "mailbox/audit.h"
#include "mailbox/mailbox.h"

int mb_audit_identity (cJSON *entry, uid_t uid, const char *via,
                       const char *peer)
{
    struct passwd *pw = getpwuid (uid);

    return mb_audit_identity_as (entry, uid, pw ? pw->pw_name : NULL, via,
                                 peer);
}

int mb_audit_identity_as (cJSON *entry, uid_t uid, const char *user,
                          const char *via, const char *peer)
{
    cJSON *who;

    cJSON_DeleteItemFromObjectCaseSensitive (entry, "who");
    if (!(who = cJSON_AddObjectToObject (entry, "who")) ||
        json_add_u64 (who, "uid", (uint64_t)uid) < 0 ||
        (user && json_add_str (who, "user", user) < 0) ||
        (via && json_add_str (entry, "via", via) < 0) ||
        (peer && json_add_str (entry, "peer", peer) < 0)) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

const char *mb_audit_via (const char *dflt, const char **peer)
{
    static char addr[64];
    const char *ssh = getenv ("SSH_CONNECTION");

    *peer = NULL;
    if (ssh && *ssh) {
        /* "client-ip client-port server-ip server-port" */
        snprintf (addr, sizeof (addr), "%.*s", (int)strcspn (ssh, " "), ssh);
        *peer = addr;
        return "ssh";
    }
    return dflt;
}

int mb_audit_append (const char *swarmdir, cJSON *entry, cs_error_t *errp)
{
    return mb_audit_write (swarmdir, entry, true, errp);
}

int mb_audit_write (const char *swarmdir, cJSON *entry, bool sync,
                    cs_error_t *errp)
{
    char path[4096];
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char *s = NULL;
    size_t len;
    int fd, rc = -1;

    if (!cJSON_GetObjectItemCaseSensitive (entry, "v"))
        cJSON_AddNumberToObject (entry, "v", 1);
    if (!cJSON_GetObjectItemCaseSensitive (entry, "ts"))
        json_add_double (entry, "ts", time_now ());
    if (!(s = cJSON_PrintUnformatted (entry)))
        return errprintf (errp, "out of memory");
    len = strlen (s);
    s[len++] = '\n'; /* over the NUL: written by length */
    if (pathf (path, sizeof (path), "%s/%s", swarmdir, MB_AUDIT_FILE) < 0) {
        errprintf (errp, "'%s': path too long", swarmdir);
        goto done;
    }
    if ((fd = mb_secure_open (path, O_WRONLY | O_CREAT | O_APPEND, errp)) < 0)
        goto done;
    while (fcntl (fd, F_SETLKW, &lk) < 0) {
        if (errno != EINTR) {
            errprintf (errp, "cannot lock '%s': %s", path, strerror (errno));
            close (fd);
            goto done;
        }
    }
    {
        /* a short write (no space) must not leave half a line */
        off_t end = lseek (fd, 0, SEEK_END);
        if (fd_write_all (fd, s, len) < 0 || (sync && fdatasync (fd) < 0)) {
            int saved = errno;
            if (end >= 0)
                (void)ftruncate (fd, end);
            errprintf (errp, "cannot append to '%s': %s", path,
                       strerror (saved));
            close (fd);
            goto done;
        }
    }
    if (close (fd) < 0) {
        errprintf (errp, "cannot append to '%s': %s", path, strerror (errno));
        goto done;
    }
    rc = 0;
done:
    cJSON_free (s);
    return rc;
}

int mb_audit_sync (const char *swarmdir, cs_error_t *errp)
{
    char path[4096];
    int fd;

    if (pathf (path, sizeof (path), "%s/%s", swarmdir, MB_AUDIT_FILE) < 0)
        return errprintf (errp, "'%s': path too long", swarmdir);
    if ((fd = mb_secure_open (path, O_WRONLY | O_APPEND, errp)) < 0)
        return -1;
    if (fdatasync (fd) < 0) {
        int saved = errno;
        close (fd);
        errno = saved;
        return errprintf (errp, "cannot sync '%s': %s", path,
                          strerror (saved));
    }
    close (fd);
    return 0;
}
