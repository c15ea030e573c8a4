/* swarm.c - options, the swarm directory layout, filesystem detection */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <unistd.h>

#include "mailbox/mailbox.h"
#include "mailbox/private.h"
#include "common/path.h"

void mb_options_init (struct mb_options *opt)
{
    memset (opt, 0, sizeof (*opt));
    opt->fsync = MB_FSYNC_NEVER;
    opt->fsync_interval = 1.0;
    opt->rotate_bytes = 64ULL * 1024 * 1024;
    opt->rotate_records = 0;
    opt->max_record = MB_DEFAULT_MAX_RECORD;
    opt->follow = MB_FOLLOW_AUTO;
    opt->poll_min = 0.002;
    opt->poll_max = 1.0;
    opt->poll_idle_after = 60.0;
    opt->poll_idle_max = 0; /* 8 * poll_max */
}

static int path_fmt (char *buf, size_t len, cs_error_t *errp,
                     const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static int path_fmt (char *buf, size_t len, cs_error_t *errp,
                     const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start (ap, fmt);
    rc = vpathf (buf, len, fmt, ap);
    va_end (ap);
    return rc < 0 ? errprintf (errp, "path too long") : 0;
}

int mb_home (char *buf, size_t len, bool create, cs_error_t *errp)
{
    const char *h = getenv ("CODESWARM_HOME");

    if (h && *h) {
        if (path_fmt (buf, len, errp, "%s", h) < 0)
            return -1;
    }
    else {
        const char *home = getenv ("HOME");
        if (!home || !*home) {
            struct passwd *pw = getpwuid (geteuid ());
            if (!pw || !pw->pw_dir) {
                errno = ENOENT;
                return errprintf (errp, "cannot find the home directory: "
                                  "set CODESWARM_HOME or HOME");
            }
            home = pw->pw_dir;
        }
        if (path_fmt (buf, len, errp, "%s/.codeswarm", home) < 0)
            return -1;
    }
    if (create && mb_secure_dir (buf, true, errp) < 0)
        return -1;
    return 0;
}

static bool swarm_id_valid (const char *id)
{
    size_t n = 0;
    if (!id || id[0] == '.' || id[0] == '\0')
        return false;
    for (const char *p = id; *p; p++, n++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
              || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_'
              || *p == '-'))
            return false;
    }
    return n <= 64;
}

static const char *swarm_subdirs[] = {
    "inbox", "outbox", "cursors", "state", "archive", "work", "log", NULL,
};

int mb_swarm_dir (const char *home, const char *swarm_id, bool create,
                  char *buf, size_t len, cs_error_t *errp)
{
    char path[MB_PATH_MAX];
    struct stat st;

    if (!swarm_id_valid (swarm_id)) {
        errno = EINVAL;
        return errprintf (errp, "invalid swarm id '%s': use 1 to 64 of "
                          "A-Z a-z 0-9 . _ - not starting with '.'",
                          swarm_id ? swarm_id : "");
    }
    if (create) {
        if (mb_secure_dir (home, true, errp) < 0)
            return -1;
        if (path_fmt (path, sizeof (path), errp, "%s/swarms", home) < 0
            || mb_secure_dir (path, true, errp) < 0)
            return -1;
    }
    if (path_fmt (path, sizeof (path), errp, "%s/swarms/%s", home, swarm_id)
        < 0)
        return -1;
    if (!create && lstat (path, &st) < 0 && errno == ENOENT)
        return errprintf (errp, "swarm '%s' not found ('%s' does not exist)",
                          swarm_id, path);
    if (mb_secure_dir (path, create, errp) < 0)
        return -1;
    for (int i = 0; swarm_subdirs[i]; i++) {
        char sub[MB_PATH_MAX];
        if (path_fmt (sub, sizeof (sub), errp, "%s/%s", path,
                      swarm_subdirs[i]) < 0)
            return -1;
        if (!create && lstat (sub, &st) < 0 && errno == ENOENT)
            continue;   /* made by whoever writes there */
        if (mb_secure_dir (sub, create, errp) < 0)
            return -1;
    }
    return path_fmt (buf, len, errp, "%s", path);
}

int mb_stream_path (const char *swarmdir, const char *box, int node,
                    char *buf, size_t len, cs_error_t *errp)
{
    if (!box || (strcmp (box, "inbox") != 0 && strcmp (box, "outbox") != 0)) {
        errno = EINVAL;
        return errprintf (errp, "invalid box '%s': use inbox or outbox",
                          box ? box : "");
    }
    if (node < 0) {
        errno = EINVAL;
        return errprintf (errp, "invalid node index %d", node);
    }
    return path_fmt (buf, len, errp, "%s/%s/%d.jsonl", swarmdir, box, node);
}

int mb_stream_split (const char *path, struct mb_stream_name *sn,
                     cs_error_t *errp)
{
    const char *slash, *base;
    size_t plen, blen, dlen;

    if (!path || (plen = strlen (path)) == 0) {
        errno = EINVAL;
        return errprintf (errp, "empty stream path");
    }
    if (plen >= MB_PATH_MAX) {
        errno = ENAMETOOLONG;
        return errprintf (errp, "stream path too long");
    }
    if (!(slash = strrchr (path, '/')) || slash == path) {
        errno = EINVAL;
        return errprintf (errp, "invalid stream path '%s': it needs a "
                          "directory (<dir>/<box>/<name>.jsonl)", path);
    }
    base = slash + 1;
    blen = strlen (base);
    if (blen <= 6 || strcmp (base + blen - 6, ".jsonl") != 0
        || blen - 6 >= sizeof (sn->name)) {
        errno = EINVAL;
        return errprintf (errp, "invalid stream path '%s': the name must "
                          "be <name>.jsonl", path);
    }
    memcpy (sn->name, base, blen - 6);
    sn->name[blen - 6] = '\0';

    dlen = (size_t)(slash - path);
    memcpy (sn->dir, path, dlen);
    sn->dir[dlen] = '\0';
    while (dlen > 1 && sn->dir[dlen - 1] == '/')
        sn->dir[--dlen] = '\0';

    const char *dslash = strrchr (sn->dir, '/');
    const char *box = dslash ? dslash + 1 : sn->dir;
    if (!*box || strlen (box) >= sizeof (sn->box) || !strcmp (box, ".")
        || !strcmp (box, "..")) {
        errno = EINVAL;
        return errprintf (errp, "invalid stream path '%s': cannot name its "
                          "directory", path);
    }
    strcpy (sn->box, box);
    if (dslash == NULL)
        strcpy (sn->archive, "archive");
    else if (dslash == sn->dir)
        strcpy (sn->archive, "/archive");
    else {
        size_t alen = (size_t)(dslash - sn->dir);
        memcpy (sn->archive, sn->dir, alen);
        strcpy (sn->archive + alen, "/archive");
    }
    snprintf (sn->prefix, sizeof (sn->prefix), "%s-%s.", sn->box, sn->name);
    return 0;
}

/* ---- filesystem type --------------------------------------------------- */

struct fs_magic {
    unsigned long magic;
    const char *name;
    bool poll;
};

static const struct fs_magic fs_magics[] = {
    /* network and cluster filesystems: inotify sees only local changes */
    { 0x6969, "nfs", true },
    { 0x0BD00BD0, "lustre", true },
    { 0x47504653, "gpfs", true },
    { 0x19830326, "beegfs", true },
    { 0xFF534D42, "cifs", true },
    { 0xFE534D42, "smb2", true },
    { 0x517B, "smb", true },
    { 0x01021997, "9p", true },
    { 0x65735546, "fuse", true },
    { 0x5346414F, "afs", true },
    { 0x6B414653, "afs", true },
    { 0xAAD7AAEA, "panfs", true },
    { 0x00C36400, "ceph", true },
    { 0x20030528, "orangefs", true },
    { 0x01161970, "gfs2", true },
    { 0x7461636F, "ocfs2", true },
    { 0x013111A8, "ibrix", true },
    { 0xA501FCF5, "vxfs", true },
    /* local filesystems */
    { 0xEF53, "ext4", false },
    { 0x58465342, "xfs", false },
    { 0x01021994, "tmpfs", false },
    { 0x9123683E, "btrfs", false },
    { 0x794C7630, "overlay", false },
    { 0x2FC12FC1, "zfs", false },
    { 0xF2F52010, "f2fs", false },
    { 0x858458F6, "ramfs", false },
    { 0x52654973, "reiserfs", false },
    { 0x4D44, "vfat", false },
    { 0x2011BAB0, "exfat", false },
    { 0x5346544E, "ntfs", false },
    { 0x3153464A, "jfs", false },
    { 0, NULL, false },
};

int mb_fs_type (const char *path, char *name, size_t len, bool *poll,
                cs_error_t *errp)
{
    char p[MB_PATH_MAX];
    struct statfs sfs;
    unsigned long magic;

    if (!path || strlen (path) >= sizeof (p)) {
        errno = ENAMETOOLONG;
        return errprintf (errp, "path too long");
    }
    strcpy (p, path);
    /* a stream that does not exist yet: ask its nearest existing parent */
    while (statfs (p, &sfs) < 0) {
        char *slash;
        if (errno != ENOENT || !strcmp (p, "."))
            return errprintf (errp, "cannot statfs '%s': %s", path,
                              strerror (errno));
        if (!(slash = strrchr (p, '/')))
            strcpy (p, ".");
        else if (slash == p)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
    magic = (unsigned long)sfs.f_type & 0xFFFFFFFFUL;
    for (int i = 0; fs_magics[i].name; i++) {
        if (fs_magics[i].magic == magic) {
            if (name && len)
                snprintf (name, len, "%s", fs_magics[i].name);
            if (poll)
                *poll = fs_magics[i].poll;
            return 0;
        }
    }
    if (name && len)
        snprintf (name, len, "0x%lx", magic);
    if (poll)
        *poll = false;
    return 0;
}
