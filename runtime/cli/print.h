/* SPDX-License-Identifier: Apache-2.0 */
/*
 * External Term Format → the text erl prints for a result.
 *
 * The text is what io_lib:print(Term, 1, 1000000, -1) gives on OTP 25 —
 * ~p on one line, Latin-1 printable ranges: strings and binaries of
 * printable Latin-1 characters in quotes, atoms quoted where the scanner
 * needs it, floats in their shortest round-trip form, maps in the order
 * their keys have in a map (integers before floats). It is written as UTF-8.
 *
 * Known departures: BEAM keeps a map of more than 32 keys in the order of
 * its internal hash and prints it so; that hash takes atoms and pids by
 * their index in one VM's tables, so no order outside that VM can match,
 * and here every map prints in key order. Pids, ports and
 * references of other nodes print with node number 0, since the shell's
 * numbers come from its own node table.
 *
 * The bytes are not trusted: every length is checked against the buffer,
 * nesting is bounded, and anything that is not exactly one well-formed term
 * is refused.
 */
#ifndef NIFKIT_CLI_PRINT_H
#define NIFKIT_CLI_PRINT_H

#include <stddef.h>
#include <stdint.h>

/* Nesting deeper than this is refused rather than recursed into. */
#define NK_PRINT_MAX_DEPTH 10000

/*
 * Formats the term in etf (version byte 131 first). Returns 0 and a
 * NUL-terminated string the caller frees, -EBADMSG when the bytes are not
 * one well-formed term, -ENOMEM.
 */
int nk_print_etf(const uint8_t *etf, size_t len, char **ret_text);

/*
 * Formats an error reason the way the erl shell's first line of an
 * exception does, without its "** ": "exception error: bad argument",
 * "exception error: no match of right hand side value 1", or the reason
 * printed as a term. Same returns as nk_print_etf.
 */
int nk_print_exception(const uint8_t *etf, size_t len, char **ret_text);

#endif
