#include "config.h"

#include <limits.h>
#include <string.h>

#include "common/libtap/tap.h"
#include "common/prefix.h"

static const char *from (const char *dir, const char *const rels[])
{
    static char buf[PATH_MAX];
    if (prefix_from_dir (dir, rels, buf, sizeof (buf)) < 0)
        return "(none)";
    return buf;
}

int main (void)
{
    const char *const rels[] = {"bin", "libexec/codeswarm", NULL};
    const char *const abs[] = {"/opt/bin", NULL};
    char small[4];

    plan (NO_PLAN);
    is (from ("/opt/cs/1.0/bin", rels), "/opt/cs/1.0", "bindir");
    is (from ("/opt/cs/1.0/libexec/codeswarm", rels), "/opt/cs/1.0",
        "pkglibexecdir");
    is (from ("/opt/cs/1.0/bin/", rels), "/opt/cs/1.0", "trailing slash");
    is (from ("/bin", rels), "/", "the root as prefix");
    is (from ("/opt/cs/xbin", rels), "(none)", "whole components only");
    is (from ("/opt/cs/codeswarm", rels), "(none)", "part of a relative dir");
    is (from ("/build/tools", rels), "(none)", "the build tree");
    is (from ("bin", rels), "(none)", "nothing before the relative dir");
    is (from ("/opt/bin", abs), "(none)", "absolute dirs are ignored");
    ok (prefix_from_dir ("/opt/cs/1.0/bin", rels, small, sizeof (small)) < 0,
        "a prefix longer than the buffer is refused");

    /* the test program runs from the build tree: the configured prefix */
    ok (!prefix_is_runtime (), "the build tree is not an installed tree");
    ok (prefix_root ()[0] == '/', "the prefix is absolute");
    ok (strncmp (prefix_dir (PREFIX_DIR_PKGLIBEXEC), prefix_root (),
                 strlen (prefix_root ())) == 0,
        "pkglibexecdir is under the configured prefix");
    done_testing ();
}
