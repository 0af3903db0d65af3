/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Erlang term literals → External Term Format.
 *
 * Accepts what a person types on a command line to stand for a term, and
 * nothing more: integers (decimal, Base#digits, $c, any size), floats, atoms
 * (bare or quoted), strings, binaries (<<...>> with Value:Size/Type
 * segments), lists (also improper), tuples and maps. No variables,
 * operators, records, funs, pids or references: those have no literal.
 *
 * The ETF written is canonical (what term_to_binary/1 writes for the same
 * term, apart from tuple and big-integer header choices), so two literals
 * for equal terms encode to the same bytes; maps rely on that to drop
 * duplicate keys as Erlang does (the last one wins).
 */
#ifndef NIFKIT_CLI_LITERAL_H
#define NIFKIT_CLI_LITERAL_H

#include <ei.h>

/* Deepest nesting of lists, tuples, maps and binaries accepted. */
#define NK_LITERAL_MAX_DEPTH 1000

struct nk_literal_error {
        unsigned column;        /* 1-based, in characters; 0 when not about a position */
        char msg[256];          /* "column 7: expected ',', '|' or ']'" */
};

/*
 * Appends the ETF of the term that text spells (no version byte) to x.
 * Returns 0, -EINVAL with err filled when text is not a term literal, or
 * -ENOMEM. On failure x may hold a partial encoding past its old index.
 */
int nk_literal_encode(ei_x_buff *x, const char *text, struct nk_literal_error *err);

/* The whole ETF of one term (version byte first) into a fresh buffer
 * the caller frees with ei_x_free(). */
int nk_literal_to_etf(const char *text, ei_x_buff *ret_x, struct nk_literal_error *err);

#endif
