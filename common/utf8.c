/* SPDX-License-Identifier: Apache-2.0 */
/* Strict UTF-8 (utf8.h). */
#include <string.h>

#include "utf8.h"

size_t nk_utf8_decode(const uint8_t *s, size_t len, uint32_t *ret_cp)
{
        static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
        uint32_t cp;
        size_t n;

        if (len == 0)
                return 0;
        if (s[0] < 0x80) {
                *ret_cp = s[0];
                return 1;
        }
        if ((s[0] & 0xe0) == 0xc0) {
                n = 2;
                cp = s[0] & 0x1f;
        } else if ((s[0] & 0xf0) == 0xe0) {
                n = 3;
                cp = s[0] & 0x0f;
        } else if ((s[0] & 0xf8) == 0xf0) {
                n = 4;
                cp = s[0] & 0x07;
        } else {
                return 0;
        }
        if (len < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if (cp < min[n] || cp > NK_UTF8_MAX_CODE_POINT || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return n;
}

size_t nk_utf8_decode_str(const char *s, uint32_t *ret_cp)
{
        return nk_utf8_decode((const uint8_t *) s, strnlen(s, 4), ret_cp);
}

size_t nk_utf8_encode(uint32_t cp, void *out)
{
        uint8_t *o = out;
        size_t n = nk_utf8_size(cp);

        switch (n) {
        case 1:
                o[0] = (uint8_t) cp;
                break;
        case 2:
                o[0] = (uint8_t) (0xc0 | cp >> 6);
                o[1] = (uint8_t) (0x80 | (cp & 0x3f));
                break;
        case 3:
                o[0] = (uint8_t) (0xe0 | cp >> 12);
                o[1] = (uint8_t) (0x80 | (cp >> 6 & 0x3f));
                o[2] = (uint8_t) (0x80 | (cp & 0x3f));
                break;
        default:
                o[0] = (uint8_t) (0xf0 | cp >> 18);
                o[1] = (uint8_t) (0x80 | (cp >> 12 & 0x3f));
                o[2] = (uint8_t) (0x80 | (cp >> 6 & 0x3f));
                o[3] = (uint8_t) (0x80 | (cp & 0x3f));
                break;
        }
        return n;
}

long nk_utf8_chars(const uint8_t *s, size_t len, bool *ret_latin1)
{
        bool latin1 = true;
        long chars = 0;

        for (size_t i = 0; i < len; chars++) {
                uint32_t cp;
                if (s[i] < 0x80) {
                        i++;
                        continue;
                }
                size_t n = nk_utf8_decode(s + i, len - i, &cp);
                if (n == 0)
                        return -1;
                latin1 = latin1 && cp <= 0xff;
                i += n;
        }
        if (ret_latin1)
                *ret_latin1 = latin1;
        return chars;
}
