#include "config.h"

#include <errno.h>
#include <string.h>

#include "common/errprintf.h"
#include "common/libtap/tap.h"

int main (void)
{
    cs_error_t e;

    plan (NO_PLAN);
    errno = ENOENT;
    ok (errprintf (&e, "cannot open '%s'", "/x") == -1, "errprintf returns -1");
    ok (errno == ENOENT, "errprintf keeps errno");
    is (e.text, "cannot open '/x'", "errprintf formats the text");
    errno = EACCES;
    errprefix (&e, "stream '%s'", "a");
    ok (errno == EACCES, "errprefix keeps errno");
    is (e.text, "stream 'a': cannot open '/x'", "errprefix prefixes");
    ok (errprintf (NULL, "x") == -1, "errprintf accepts NULL");
    char big[2000];
    memset (big, 'a', sizeof (big) - 1);
    big[sizeof (big) - 1] = '\0';
    errprintf (&e, "%s", big);
    ok (strlen (e.text) == sizeof (e.text) - 1, "long text is truncated");
    done_testing ();
}
