/* pathtemplate.c - expand path templates (see pathtemplate.h) */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pathtemplate.h"

char *path_template_expand (const char *tmpl, const char *home,
                            const char *swarm, int node)
{
    char nodebuf[32];
    size_t len = 1;
    char *out;

    snprintf (nodebuf, sizeof (nodebuf), "%d", node);
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '%' && p[1]) {
            p++;
            len += *p == 'h' ? strlen (home) : *p == 's' ? strlen (swarm)
                   : *p == 'k' ? strlen (nodebuf) : 2;
        }
        else
            len++;
    }
    if (!(out = malloc (len)))
        return NULL;
    char *o = out;
    for (const char *p = tmpl; *p; p++) {
        const char *sub = NULL;
        if (p[0] == '%' && p[1]) {
            switch (p[1]) {
            case 'h': sub = home; break;
            case 's': sub = swarm; break;
            case 'k': sub = nodebuf; break;
            case '%': sub = "%"; break;
            default: break;
            }
            if (sub) {
                o = stpcpy (o, sub);
                p++;
                continue;
            }
        }
        *o++ = *p;
    }
    *o = '\0';
    return out;
}
