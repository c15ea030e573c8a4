/* common/test/fnv.c - FNV-1a against the reference values */
#include "config.h"

#include <stdint.h>

#include "common/libtap/tap.h"
#include "common/fnv.h"

int main (void)
{
    plan (NO_PLAN);
    ok (fnv1a (FNV1A_INIT, "") == 0xcbf29ce484222325ULL, "64: empty string");
    ok (fnv1a (FNV1A_INIT, "a") == 0xaf63dc4c8601ec8cULL, "64: \"a\"");
    ok (fnv1a (fnv1a (FNV1A_INIT, "a"), "b") == fnv1a (FNV1A_INIT, "ab"),
        "64: continues from h");
    ok (fnv1a_mem (FNV1A_INIT, "ab\0c", 4)
            == fnv1a (fnv1a_mem (FNV1A_INIT, "ab\0", 3), "c"),
        "64: over bytes, a NUL included");
    ok (fnv1a_mem (FNV1A_INIT, "abc", 2) == fnv1a (FNV1A_INIT, "ab"),
        "64: over len bytes only");
    ok (fnv1a_32 ("") == 0x811c9dc5u, "32: empty string");
    ok (fnv1a_32 ("a") == 0xe40c292cu, "32: \"a\"");
    done_testing ();
}
