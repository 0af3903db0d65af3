/* SPDX-License-Identifier: Apache-2.0 */
/* The proxy NIF's parts (proxy.c), shared between its files. */
#ifndef NIFKIT_PROXY_H
#define NIFKIT_PROXY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <erl_nif.h>

#include "nifkit.h"

/*
 * One host's lifetime. A restart makes a new generation; the old one is
 * freed when the last call or destructor using it lets go. number counts
 * from 1 within a load of the module.
 */
struct gen {
        nk_host *host;
        unsigned number;
        unsigned users;         /* under P.lock */
        uint64_t new_atoms;     /* atoms its results created in BEAM, cumulative */
        bool upgraded;          /* its host ran an upgrade(): an old instance lives there */
        struct gen *next_dead;  /* in P.graveyard */
};

/* ---- proxy.c ---- */

/* The current generation, held (gen_put), or NULL with why in ret_err: not
 * loaded, or stopped after the restart limit. */
struct gen *gen_get(void);
void gen_put(struct gen *g);
/* The policy's max_new_atoms, or 0 for no limit. */
uint32_t proxy_max_new_atoms(void);
/* Atomically adds n to g's atom count if it stays within max; false if
 * not. ret_used (or NULL): the count before. */
bool gen_take_atoms(struct gen *g, uint64_t n, uint64_t max, uint64_t *ret_used);

/* ---- proxy_res.c: resources ---- */

/* In load: the resource type for host handles; 0 or -1. */
int res_init(ErlNifEnv *env);
/* A restart: handles of older generations are no longer looked up. */
void res_forget_all(void);
/*
 * The ETF of the list of argv for the host, with proxy resources turned
 * back into the host's handle references. Returns 1 and fills bin, or 0
 * and raises in env (stale_resource, or out of memory).
 */
int res_encode_args(ErlNifEnv *env, const struct gen *g, int argc, const ERL_NIF_TERM argv[],
                    ErlNifBinary *bin, ERL_NIF_TERM *ret_exception);
/* Whether a result's ETF may hold host handles (cheap byte search). */
bool res_etf_has_handles(const uint8_t *etf, size_t len);
/* Replaces the host handle references in t by proxy resources of g. */
ERL_NIF_TERM res_import(ErlNifEnv *env, const struct gen *g, ERL_NIF_TERM t);

/* Whether argv holds proxy resources that must become host handles. */
bool res_args_have_handles(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);

/* ---- proxy_args.c: a call's request ---- */

#define REQUEST_PIECES 12

/* What nk_host_call_startv is given; it must live as long as the call. It
 * points into no part of itself, so it may be moved. */
struct request {
        struct iovec iov[REQUEST_PIECES];       /* the argument list's ETF, in pieces */
        size_t niov, len;
        uint8_t pid[NK_CALLER_PID_MAX];         /* the caller's pid's ETF */
        size_t pid_len;                         /* 0: no caller process */
        ErlNifBinary bins[REQUEST_PIECES];      /* encodings the pieces point into */
        unsigned nbins;
        uint8_t *head;                          /* the pieces written here (enif_alloc) */
        ERL_NIF_TERM keep[REQUEST_PIECES];      /* binaries whose own bytes are pieces */
        unsigned nkeep;
};

/* 1 and rq filled, or 0 with the exception to raise (as res_encode_args). */
int request_build(ErlNifEnv *env, const struct gen *g, int argc, const ERL_NIF_TERM argv[], struct request *rq,
                  ERL_NIF_TERM *ret_exception);
void request_release(struct request *rq);

/* ---- proxy_pool.c: memory for results ---- */

/* The allocator for nk_host_set_result_alloc. */
extern const nk_result_alloc pool_results;
/* In load: the resource type that holds a binary result's buffer; 0 or -1. */
int pool_init(ErlNifEnv *env);
/* A binary term of data[0..len), inside the buffer owner (pool_results's),
 * which it takes: no copy. false (owner still the caller's) if it cannot. */
bool pool_binary(ErlNifEnv *env, void *owner, const uint8_t *data, size_t len, ERL_NIF_TERM *ret);

/* ---- proxy_atoms.c ---- */

/*
 * Counts the distinct atoms in etf that BEAM does not know yet. Returns the
 * count, or -EBADMSG when etf is not one well-formed term (compressed terms
 * included: the host never sends them).
 */
long atoms_new_in_etf(ErlNifEnv *env, const uint8_t *etf, size_t len);

#endif
