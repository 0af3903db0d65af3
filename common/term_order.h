/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Erlang term order (OTP 25), the parts that do not depend on how a term
 * is stored: the ranks of the types and the order of every kind of term
 * that holds no other term. The host's enif_compare (hosts/order.c) and
 * the tool's printer, which sorts map keys as BEAM does
 * (runtime/cli/print.c), each walk their own representation of tuples,
 * maps and lists and call these for everything else, so the two cannot
 * disagree on what comes first.
 *
 * Every function returns -1, 0 or 1.
 */
#ifndef NIFKIT_TERM_ORDER_H
#define NIFKIT_TERM_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* number < atom < reference < fun < export fun < port < pid < tuple < map
 * < [] < cons < bitstring. BEAM orders local funs before export funs. */
enum nk_order_rank {
        NK_RANK_NUMBER, NK_RANK_ATOM, NK_RANK_REF, NK_RANK_FUN, NK_RANK_EXPORT, NK_RANK_PORT, NK_RANK_PID,
        NK_RANK_TUPLE, NK_RANK_MAP, NK_RANK_NIL, NK_RANK_LIST, NK_RANK_BITSTRING,
};

int nk_order_u64(uint64_t a, uint64_t b);

/* ---- numbers --------------------------------------------------------------- */

/* An integer of any size: its sign and its magnitude, least significant
 * byte first (high zero bytes allowed; zero is never negative). */
struct nk_order_int {
        bool negative;
        const uint8_t *mag;
        size_t len;
};

int nk_order_ints(const struct nk_order_int *a, const struct nk_order_int *b);
/* 0.0 and -0.0 are equal, as in OTP 25 (both == and =:=). */
int nk_order_doubles(double a, double b);
/* An integer against a finite double by exact value (==, <): no rounding
 * of the integer to a double. */
int nk_order_int64_double(int64_t v, double d);
int nk_order_int_double(const struct nk_order_int *a, double d);

/* ---- atoms ------------------------------------------------------------------- */

/* Atom texts in code point order. latin1: the bytes are Latin-1 (as ETF's
 * ATOM_EXT carries them), else UTF-8, whose byte order is code point
 * order. */
int nk_order_atom_texts(const uint8_t *a, size_t alen, bool a_latin1, const uint8_t *b, size_t blen,
                        bool b_latin1);

/* ---- pids, ports, references ------------------------------------------------ */

/* A pid, port or reference as term order sees it: its node (the name's
 * text and creation), then its numbers. */
struct nk_order_ident {
        const uint8_t *node;
        size_t node_len;
        bool node_latin1;
        uint32_t creation;
        uint64_t num;           /* pid: serial << 32 | number; port: number */
        uint32_t ids[5];        /* reference words, least significant first */
        unsigned nids;
};

/* Pids by their numbers, then by node; ports and references by node first. */
int nk_order_pids(const struct nk_order_ident *a, const struct nk_order_ident *b);
int nk_order_ports(const struct nk_order_ident *a, const struct nk_order_ident *b);
/* Trailing zero words do not tell references apart. */
int nk_order_refs(const struct nk_order_ident *a, const struct nk_order_ident *b);

/* ---- funs ----------------------------------------------------------------------- */

/* What orders a fun before its free variables. Export funs: module,
 * function, arity; local funs: module, old index, old uniq, the number of
 * free variables. */
struct nk_order_fun {
        bool is_export;
        const uint8_t *module, *function;       /* UTF-8 texts */
        size_t module_len, function_len;
        uint32_t arity;
        int64_t old_index, old_uniq;
        uint32_t num_free;
};

/* 0 for two local funs that differ at most in their free variables, which
 * the caller then compares in order (as terms). */
int nk_order_fun_heads(const struct nk_order_fun *a, const struct nk_order_fun *b);

/* ---- bitstrings ------------------------------------------------------------------ */

/* Bit by bit from the first, then the shorter first. */
int nk_order_bits(const uint8_t *a, size_t abits, const uint8_t *b, size_t bbits);

#endif
