/* common/test/pathtemplate.c - path templates */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/libtap/tap.h"
#include "common/pathtemplate.h"

static void test_expand (void)
{
    char *s = path_template_expand ("%h/swarms/%s/work/%k/%%", "/H", "sw", 12);
    is (s, "/H/swarms/sw/work/12/%", "path_template_expand");
    free (s);
}

int main (void)
{
    plan (NO_PLAN);
    test_expand ();
    done_testing ();
}
