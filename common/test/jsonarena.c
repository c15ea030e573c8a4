/* common/test/jsonarena.c - cJSON on the arena: trees parse, print and
 * delete as with malloc; blocks are reused; a long-lived tree or a large
 * one does not stop allocation
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/libtap/tap.h"
#include "common/jsonarena.h"

static const char doc[] =
    "{\"v\":1,\"seq\":7,\"type\":\"rpc\",\"msg\":{\"method\":\"m\","
    "\"params\":{\"delta\":\"word \",\"list\":[1,2,3,null,true]}}}";

/* parse doc, check one member, print it back; the printed text */
static char *roundtrip (void)
{
    cJSON *o = cJSON_Parse (doc);
    char *s;

    if (!o)
        return NULL;
    s = cJSON_PrintUnformatted (o);
    cJSON_Delete (o);
    return s;
}

int main (void)
{
    cJSON *keep[64];
    char *s;
    bool same = true;

    plan (NO_PLAN);
    ok (jsonarena_install () == 0, "installed");
    ok (jsonarena_install () == 0, "installing again is harmless");

    s = roundtrip ();
    ok (s && !strcmp (s, doc), "a tree parses and prints back the same");
    cJSON_free (s);

    /* one tree at a time: the block is reused from its start */
    {
        cJSON *a = cJSON_Parse (doc);
        void *pa = a;
        cJSON_Delete (a);
        a = cJSON_Parse (doc);
        ok (a == pa, "a tree deleted before the next: same memory reused");
        cJSON_Delete (a);
    }

    /* many trees alive at once (more than the blocks hold), all intact */
    {
        int n = 0;
        cJSON *many[2000];
        for (int i = 0; i < 2000; i++) {
            char buf[128];
            snprintf (buf, sizeof (buf), "{\"i\":%d,\"s\":\"%0*d\"}", i, 40, i);
            if ((many[i] = cJSON_Parse (buf)))
                n++;
        }
        ok (n == 2000, "2000 trees alive at once (past the arena: malloc)");
        for (int i = 0; i < 2000; i++) {
            cJSON *x = cJSON_GetObjectItem (many[i], "i");
            if (!cJSON_IsNumber (x) || x->valueint != i)
                same = false;
        }
        ok (same, "each of them intact");
        for (int i = 0; i < 2000; i++)
            cJSON_Delete (many[i]);
    }

    /* a long-lived tree in each block but one: the last one turns over */
    for (int i = 0; i < 64; i++)
        keep[i] = cJSON_Parse (doc);
    same = true;
    for (int i = 0; i < 20000; i++) {
        s = roundtrip ();
        if (!s || strcmp (s, doc))
            same = false;
        cJSON_free (s);
    }
    ok (same, "20000 round trips beside 64 long-lived trees");
    for (int i = 0; i < 64; i++) {
        s = cJSON_PrintUnformatted (keep[i]);
        if (!s || strcmp (s, doc))
            same = false;
        cJSON_free (s);
        cJSON_Delete (keep[i]);
    }
    ok (same, "the long-lived trees are intact");

    /* larger than a block: from malloc */
    {
        size_t len = 200 * 1024;
        char *big = malloc (len + 3);
        cJSON *o;
        if (!big)
            bail_out ("out of memory");
        big[0] = '"';
        memset (big + 1, 'x', len);
        big[len + 1] = '"';
        big[len + 2] = '\0';
        o = cJSON_Parse (big);
        ok (o && cJSON_IsString (o) && strlen (o->valuestring) == len,
            "a string larger than a block");
        cJSON_Delete (o);
        free (big);
    }
    cJSON_free (NULL);
    pass ("cJSON_free (NULL) is harmless");
    done_testing ();
}
