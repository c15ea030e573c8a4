/* ansi.c - strip terminal escape sequences (see ansi.h) */
#include "config.h"

#include <stddef.h>

#include "common/ansi.h"

size_t ansi_strip (char *s, size_t len)
{
    size_t i = 0, o = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0x1b) {
            if (i + 1 >= len)
                break;                          /* cut off */
            unsigned char n = (unsigned char)s[i + 1];
            if (n == '[') {                     /* CSI: params, final 0x40-0x7e */
                size_t j = i + 2;
                while (j < len && !((unsigned char)s[j] >= 0x40
                                    && (unsigned char)s[j] <= 0x7e))
                    j++;
                i = j < len ? j + 1 : len;
            }
            else if (n == ']') {                /* OSC: to BEL or ESC \ */
                size_t j = i + 2;
                while (j < len && s[j] != '\a'
                       && !(s[j] == 0x1b && j + 1 < len && s[j + 1] == '\\'))
                    j++;
                if (j >= len)
                    i = len;
                else
                    i = j + (s[j] == '\a' ? 1 : 2);
            }
            else {                              /* ESC [intermediates] final */
                size_t j = i + 1;
                while (j < len && (unsigned char)s[j] >= 0x20
                       && (unsigned char)s[j] <= 0x2f)
                    j++;
                i = j < len ? j + 1 : len;
            }
            continue;
        }
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
            i++;
            continue;
        }
        s[o++] = s[i++];
    }
    return o;
}
