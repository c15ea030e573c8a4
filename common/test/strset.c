/* common/test/strset.c - the string set */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/libtap/tap.h"
#include "common/strset.h"

static void test_strset (void)
{
    struct strset set = { 0 };
    char buf[32];
    int added = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf (buf, sizeof (buf), "id-%d", i);
        added += strset_add (&set, buf);
    }
    cmp_ok (added, "==", 1000, "1000 ids added");
    ok (strset_add (&set, "id-7") == 0, "a duplicate is not added");
    ok (strset_has (&set, "id-999") && !strset_has (&set, "id-1000"),
        "membership");
    strset_release (&set);
}

int main (void)
{
    plan (NO_PLAN);
    test_strset ();
    done_testing ();
}
