/* common/test/tail.c - the tail ring */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/libtap/tap.h"
#include "common/tail.h"

static void test_tail (void)
{
    struct tail t;
    char *s;

    ok (tail_init (&t, 8) == 0, "tail_init");
    tail_append (&t, "abc", 3);
    s = tail_str (&t);
    is (s, "abc", "tail holds what fits");
    free (s);
    tail_append (&t, "defghij", 7);
    s = tail_str (&t);
    is (s, "cdefghij", "tail keeps the last 8 bytes");
    free (s);
    tail_append (&t, "0123456789XY", 12);
    s = tail_str (&t);
    is (s, "456789XY", "a long append keeps its own end");
    free (s);
    tail_clear (&t);
    s = tail_str (&t);
    is (s, "", "tail_clear empties it");
    free (s);
    tail_release (&t);
}

int main (void)
{
    plan (NO_PLAN);
    test_tail ();
    done_testing ();
}
