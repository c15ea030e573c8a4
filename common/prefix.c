/* prefix.c - where the installed tree is, found at run time (prefix.h)
 *
 * The configured directories come from the Makefile as absolute paths
 * (CS_PREFIX, CS_BINDIR ...); a directory under CS_PREFIX is kept as the
 * part after it ("bin", "libexec/codeswarm"), one elsewhere stays
 * absolute.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/path.h"
#include "common/prefix.h"

#ifndef CS_PREFIX
#define CS_PREFIX "/usr/local"
#endif
#ifndef CS_BINDIR
#define CS_BINDIR CS_PREFIX "/bin"
#endif
#ifndef CS_PKGLIBEXECDIR
#define CS_PKGLIBEXECDIR CS_PREFIX "/libexec/codeswarm"
#endif
#ifndef CS_PKGDATADIR
#define CS_PKGDATADIR CS_PREFIX "/share/codeswarm"
#endif
#ifndef CS_MANDIR
#define CS_MANDIR CS_PREFIX "/share/man"
#endif
#ifndef CS_DOCDIR
#define CS_DOCDIR CS_PREFIX "/share/doc/codeswarm"
#endif

static const char *const configured[PREFIX_DIR_COUNT] = {
    [PREFIX_DIR_BIN] = CS_BINDIR,
    [PREFIX_DIR_PKGLIBEXEC] = CS_PKGLIBEXECDIR,
    [PREFIX_DIR_PKGDATA] = CS_PKGDATADIR,
    [PREFIX_DIR_MAN] = CS_MANDIR,
    [PREFIX_DIR_DOC] = CS_DOCDIR,
};

static bool done;
static bool runtime;
static char root[PATH_MAX];
static char dirs[PREFIX_DIR_COUNT][PATH_MAX];

/* dir relative to CS_PREFIX ("bin"), or dir itself when it is elsewhere */
static const char *relative (const char *dir)
{
    size_t n = strlen (CS_PREFIX);

    while (n > 1 && CS_PREFIX[n - 1] == '/')
        n--;
    if (strncmp (dir, CS_PREFIX, n) == 0 && dir[n] == '/' && dir[n + 1])
        return dir + n + 1;
    return dir;
}

int prefix_from_dir (const char *dir, const char *const rels[], char *buf,
                     size_t len)
{
    size_t dlen = strlen (dir);

    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    for (int i = 0; rels[i]; i++) {
        size_t rlen = strlen (rels[i]);
        while (rlen > 0 && rels[i][rlen - 1] == '/')
            rlen--;
        if (rels[i][0] == '/' || rlen == 0 || rlen + 1 > dlen)
            continue;
        if (dir[dlen - rlen - 1] != '/' ||
            strncmp (dir + dlen - rlen, rels[i], rlen) != 0)
            continue;
        if (dlen - rlen - 1 == 0)
            return pathf (buf, len, "/");
        return pathf (buf, len, "%.*s", (int)(dlen - rlen - 1), dir);
    }
    return -1;
}

static void prefix_init (void)
{
    const char *rels[] = {relative (CS_BINDIR), relative (CS_PKGLIBEXECDIR),
                          NULL};
    char exe[PATH_MAX];
    ssize_t n;

    if (done)
        return;
    done = true;
    runtime = false;
    n = readlink ("/proc/self/exe", exe, sizeof (exe) - 1);
    if (n > 0) {
        char *slash;
        exe[n] = '\0';
        if ((slash = strrchr (exe, '/')) && slash > exe) {
            *slash = '\0';
            if (prefix_from_dir (exe, rels, root, sizeof (root)) == 0)
                runtime = true;
        }
    }
    if (!runtime)
        snprintf (root, sizeof (root), "%s", CS_PREFIX);
    for (int d = 0; d < PREFIX_DIR_COUNT; d++) {
        const char *rel = relative (configured[d]);
        if (!runtime || rel[0] == '/' ||
            pathf (dirs[d], sizeof (dirs[d]), "%s%s%s", root,
                   strcmp (root, "/") ? "/" : "", rel) < 0)
            snprintf (dirs[d], sizeof (dirs[d]), "%s", configured[d]);
    }
}

const char *prefix_root (void)
{
    prefix_init ();
    return root;
}

const char *prefix_dir (enum prefix_dir d)
{
    prefix_init ();
    if ((int)d < 0 || d >= PREFIX_DIR_COUNT)
        return "";
    return dirs[d];
}

bool prefix_is_runtime (void)
{
    prefix_init ();
    return runtime;
}
