/* prefix.h - where the installed tree is, found at run time
 *
 * An installed codeswarm is a tree: programs in bin/ and
 * libexec/codeswarm/, the batch script template in share/codeswarm/, man
 * pages in share/man/ (as configure laid it out under --prefix).  Sites
 * copy such a tree to another prefix to deploy it as a module, so a
 * program finds the rest of the tree from where its own executable is
 * (/proc/self/exe), the way git's RUNTIME_PREFIX does: when the
 * executable's directory ends with the configured bindir or pkglibexecdir
 * (relative to the configured prefix), the part before it is the prefix,
 * and every other directory is taken relative to it.  Otherwise (a
 * program run from the build tree, or a directory configured outside the
 * prefix) the configured absolute directories are used.
 *
 * The answers are computed once and kept in static storage: the strings
 * returned are never freed.
 */
#ifndef CODESWARM_PREFIX_H
#define CODESWARM_PREFIX_H

#include <stdbool.h>
#include <stddef.h>

enum prefix_dir {
    PREFIX_DIR_BIN,        /* codeswarm, codeswarm-router, -worker ... */
    PREFIX_DIR_PKGLIBEXEC, /* codeswarm-launch, codeswarm-client */
    PREFIX_DIR_PKGDATA,    /* codeswarm.sbatch.in */
    PREFIX_DIR_MAN,        /* man1, man5, man7 */
    PREFIX_DIR_DOC,        /* examples/ */
    PREFIX_DIR_COUNT
};

/* The installation prefix: found from the executable, or the configured
 * one.
 */
const char *prefix_root (void);

/* The directory d of the installed tree. */
const char *prefix_dir (enum prefix_dir d);

/* True when the prefix was found from the running executable (the
 * program runs from an installed tree), false when it is the configured
 * one.
 */
bool prefix_is_runtime (void);

/* The pure part, for tests: when dir (an executable's directory) ends
 * with "/" rel for one of the relative directories rels[] (NULL
 * terminated), write the part of dir before it into buf and return 0;
 * otherwise -1.  rels[] entries that are absolute are ignored.
 */
int prefix_from_dir (const char *dir, const char *const rels[], char *buf,
                     size_t len);

#endif
