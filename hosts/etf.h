/* SPDX-License-Identifier: Apache-2.0 */
/*
 * External Term Format codec for host terms.
 *
 * The host writes its own codec instead of using libei's ei_decode_*: those
 * take no buffer length and trust the bytes they are given, and the host must
 * reject malformed input without reading past it. The encoder must also
 * reproduce BEAM's own bytes (enif_term_to_binary), which needs control over
 * every tag choice. libei is used on the runtime side, where it only encodes.
 *
 * Resource terms cross the boundary as references of the reserved node
 * 'nifkit_resource@nohost' whose id words carry the resource's handle (see
 * nk_resource_handle()); decoding such a reference gives the resource back.
 */
#ifndef NIFKIT_HOST_ETF_H
#define NIFKIT_HOST_ETF_H

#include <stddef.h>
#include <stdint.h>

#include "term.h"
#include "buf.h"

#define NK_ETF_VERSION 131

enum {
        NK_ETF_SAFE = 1 << 0,   /* refuse to create atoms (ERL_NIF_BIN2TERM_SAFE) */
};

/* Why a decode failed, for the error reply; offset is into buf. */
struct nk_etf_error {
        size_t offset;
        char msg[96];
};

/*
 * Decodes one term, starting with the version byte 131, into env.
 * On success returns 0, sets *ret_term and *ret_used (bytes consumed).
 * Returns -EINVAL for malformed or unsupported input (err says where and
 * why) or -ENOMEM. Nesting has no limit of its own, as in BEAM: the frames
 * live on the heap, each costs at least one byte of input, and the host's
 * memory limit bounds them. Never reads outside buf[0..len).
 */
int nk_etf_decode(ErlNifEnv *env, const uint8_t *buf, size_t len, unsigned flags,
                  ERL_NIF_TERM *ret_term, size_t *ret_used, struct nk_etf_error *err);

/*
 * Appends the encoding of t, starting with the version byte, to out, with
 * the bytes BEAM's term_to_binary/1 (OTP 25, minor version 1) gives.
 * Returns 0, or -ENOMEM; -EINVAL if t is not a term (NK_NONE, NK_EXCEPTION)
 * or holds a binary longer than ETF's 32-bit lengths. On failure out is left
 * as it was.
 */
int nk_etf_encode(ERL_NIF_TERM t, struct nk_buf *out);
/* The same, and how many resource handles the encoding holds. */
int nk_etf_encode_counted(ERL_NIF_TERM t, struct nk_buf *out, size_t *ret_handles);

#endif
