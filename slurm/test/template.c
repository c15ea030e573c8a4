/* template.c - @NAME@ placeholders */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/libtap/tap.h"
#include "slurm/template.h"

int main (void)
{
    struct template_var vars[] = {
        {"SWARM_ID", "sw-1"},
        {"NODES", "4"},
        {"EMPTY", ""},
        {"NULLV", NULL},
    };
    size_t n = sizeof (vars) / sizeof (vars[0]);
    cs_error_t e = {""};
    char *s;

    plan (NO_PLAN);
    s = template_render ("#SBATCH --job-name=@SWARM_ID@ -N @NODES@\n", vars, n,
                         &e);
    is (s, "#SBATCH --job-name=sw-1 -N 4\n", "placeholders are replaced");
    free (s);
    s = template_render ("@SWARM_ID@@NODES@", vars, n, &e);
    is (s, "sw-14", "adjacent placeholders");
    free (s);
    s = template_render ("a@EMPTY@b@NULLV@c", vars, n, &e);
    is (s, "abc", "empty and NULL values");
    free (s);
    s = template_render ("mail user@example.org; --signal=B:USR1@300 @ @@ @x@",
                         vars, n, &e);
    is (s, "mail user@example.org; --signal=B:USR1@300 @ @@ @x@",
        "other @ signs are kept");
    free (s);
    s = template_render ("", vars, n, &e);
    is (s, "", "empty template");
    free (s);
    s = template_render ("line 1\nline 2 @NODES@\nline3 @NODEZ@\n", vars, n,
                         &e);
    ok (s == NULL, "an unknown placeholder is an error");
    is (e.text, "unknown placeholder @NODEZ@ on line 3",
        "the error names it "
        "and its line");

    s = template_shell_quote ("it's a \"test\" $x");
    is (s, "'it'\\''s a \"test\" $x'", "shell quoting");
    free (s);
    s = template_shell_quote ("");
    is (s, "''", "quoting the empty string");
    free (s);
    done_testing ();
}
