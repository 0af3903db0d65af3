/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A call's request as the proxy hands it to libnifkit: the ETF of the
 * argument list and of the caller's pid.
 *
 * The arguments are usually one term_to_binary of the list. A large binary
 * argument (a document to parse, a buffer to hash) is not copied into an
 * encoding first: the list is written in pieces, the binary's own bytes
 * one of them, so that its only copy is the one into the host's region. Its
 * term must then stay alive as long as the call: a hop to a dirty
 * scheduler passes it on (request.keep).
 */
#include <string.h>

#include "proxy.h"

/* A binary argument at least this long is sent from its own bytes. */
#define BIG_BINARY (64 * 1024)

enum {
        LIST_EXT = 108,
        NIL_EXT = 106,
        BINARY_EXT = 109,
};

static void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

void request_release(struct request *rq)
{
        for (unsigned i = 0; i < rq->nbins; i++)
                enif_release_binary(&rq->bins[i]);
        enif_free(rq->head);
        *rq = (struct request) {};
}

/*
 * The caller's pid's ETF, encoded at every call: the same immediate term
 * names the same process, but its encoding holds the node's name and
 * creation, which net_kernel:start/1 changes, so it is not cached.
 */
static void caller_pid(ErlNifEnv *env, struct request *rq)
{
        ErlNifPid self;
        ErlNifBinary b;

        if (!enif_self(env, &self) || !enif_term_to_binary(env, enif_make_pid(env, &self), &b))
                return;
        if (b.size <= sizeof rq->pid) {
                memcpy(rq->pid, b.data, b.size);
                rq->pid_len = b.size;
        }
        enif_release_binary(&b);
}

static void add_piece(struct request *rq, const void *p, size_t n)
{
        rq->iov[rq->niov++] = (struct iovec) { .iov_base = (void *) p, .iov_len = n };
        rq->len += n;
}

/* The list in pieces; false (nothing kept) if it needs more of them than a
 * request has, or memory runs out. */
static bool build_pieces(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[], unsigned nbig,
                         struct request *rq)
{
        if (2 + (unsigned) argc + nbig > REQUEST_PIECES)
                return false;
        rq->head = enif_alloc(6 + 5 * (size_t) nbig + 1);
        if (!rq->head)
                return false;
        uint8_t *h = rq->head;
        h[0] = 131;
        h[1] = LIST_EXT;
        put_be32(h + 2, (uint32_t) argc);
        add_piece(rq, h, 6);
        h += 6;
        for (int i = 0; i < argc; i++) {
                ErlNifBinary b;
                if (enif_inspect_binary(env, argv[i], &b) && b.size >= BIG_BINARY && b.size <= UINT32_MAX) {
                        h[0] = BINARY_EXT;
                        put_be32(h + 1, (uint32_t) b.size);
                        add_piece(rq, h, 5);
                        add_piece(rq, b.data, b.size);
                        rq->keep[rq->nkeep++] = argv[i];
                        h += 5;
                        continue;
                }
                ErlNifBinary *e = &rq->bins[rq->nbins];
                if (!enif_term_to_binary(env, argv[i], e))
                        return false;
                rq->nbins++;
                add_piece(rq, e->data + 1, e->size - 1);        /* without its version byte */
        }
        h[0] = NIL_EXT;
        add_piece(rq, h, 1);
        return true;
}

int request_build(ErlNifEnv *env, const struct gen *g, int argc, const ERL_NIF_TERM argv[], struct request *rq,
                  ERL_NIF_TERM *ret_exception)
{
        *rq = (struct request) {};
        unsigned nbig = 0;
        for (int i = 0; i < argc; i++) {
                ErlNifBinary b;
                if (enif_inspect_binary(env, argv[i], &b) && b.size >= BIG_BINARY && b.size <= UINT32_MAX)
                        nbig++;
        }
        if (nbig > 0 && !res_args_have_handles(env, argc, argv)) {
                if (build_pieces(env, argc, argv, nbig, rq))
                        goto pid;
                request_release(rq);
        }
        if (!res_encode_args(env, g, argc, argv, &rq->bins[0], ret_exception))
                return 0;
        rq->nbins = 1;
        add_piece(rq, rq->bins[0].data, rq->bins[0].size);
pid:
        caller_pid(env, rq);
        return 1;
}
