/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which atoms may be written bare, as erl_scan on OTP 25 reads them. The
 * literal reader accepts a bare atom exactly when the printer writes one
 * without quotes, so both ask here.
 */
#ifndef NIFKIT_CLI_ATOM_SYNTAX_H
#define NIFKIT_CLI_ATOM_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "macro.h"

/* May start a bare atom: a Latin-1 lowercase letter. */
static inline bool nk_atom_is_lower(uint32_t c)
{
        return (c >= 'a' && c <= 'z') || (c >= 0xDF && c <= 0xFF && c != 0xF7);
}

/* May follow the first character of a bare atom (or of a variable). */
static inline bool nk_atom_is_name_char(uint32_t c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '@' || (c >= 0xC0 && c <= 0xFF && c != 0xD7 && c != 0xF7);
}

/* erl_scan's reserved words on OTP 25 (maybe/else only with a feature on):
 * these atoms need quotes although their characters would not. */
static inline bool nk_atom_is_reserved(const char *s, size_t n)
{
        static const char *const reserved_words[] = {
                "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor",
                "case", "catch", "cond", "div", "end", "fun", "if", "let", "not", "of",
                "or", "orelse", "receive", "rem", "try", "when", "xor",
        };
        for (size_t i = 0; i < NK_ARRAY_SIZE(reserved_words); i++)
                if (strlen(reserved_words[i]) == n && memcmp(reserved_words[i], s, n) == 0)
                        return true;
        return false;
}

#endif
