/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Strict UTF-8, read and written one way everywhere: atom text and
 * strings in the host, the term literals and printer of the tool, JSON
 * in the log and the policy. Strict as BEAM is for atoms: no overlong
 * forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no
 * sequence cut short.
 */
#ifndef NIFKIT_UTF8_H
#define NIFKIT_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NK_UTF8_MAX_CODE_POINT 0x10FFFF

/* One code point from s (len bytes left): its length in bytes (1-4) with
 * *ret_cp, or 0 when the bytes are not strict UTF-8. */
size_t nk_utf8_decode(const uint8_t *s, size_t len, uint32_t *ret_cp);

/* The same over a NUL-terminated string: the NUL ends any sequence. */
size_t nk_utf8_decode_str(const char *s, uint32_t *ret_cp);

/* Bytes cp takes (cp a code point, not a surrogate). */
static inline size_t nk_utf8_size(uint32_t cp)
{
        return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* Writes cp (≤ U+10FFFF) to out, which has room for 4 bytes; returns the
 * bytes written. */
size_t nk_utf8_encode(uint32_t cp, void *out);

/* The number of characters of s, or -1 when it is not strict UTF-8;
 * *ret_latin1 (when not NULL) says whether every one is ≤ U+00FF. */
long nk_utf8_chars(const uint8_t *s, size_t len, bool *ret_latin1);

#endif
