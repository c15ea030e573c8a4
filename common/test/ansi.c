/* common/test/ansi.c - ANSI stripping */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/libtap/tap.h"
#include "common/ansi.h"

static void test_ansi (void)
{
    char s[128];
    size_t n;

    strcpy (s, "\033[2m2026\033[0m \033[33mWARN\033[0m hi");
    n = ansi_strip (s, strlen (s));
    s[n] = '\0';
    is (s, "2026 WARN hi", "CSI colour sequences are removed");

    strcpy (s, "a\033]0;title\007b\033]8;;x\033\\c");
    n = ansi_strip (s, strlen (s));
    s[n] = '\0';
    is (s, "abc", "OSC sequences (BEL and ST) are removed");

    strcpy (s, "x\033(By\rz\033[");
    n = ansi_strip (s, strlen (s));
    s[n] = '\0';
    is (s, "xyz", "two-byte escapes, CR and a cut-off CSI are removed");

    strcpy (s, "tab\tkept");
    n = ansi_strip (s, strlen (s));
    s[n] = '\0';
    is (s, "tab\tkept", "tabs are kept");
}

int main (void)
{
    plan (NO_PLAN);
    test_ansi ();
    done_testing ();
}
