/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsing of what a host sends the runtime (protocol.h), kept free of I/O
 * and locks so that a fuzzer can drive it with arbitrary bytes. None of it
 * trusts a length: every field is checked against its payload.
 */
#ifndef NIFKIT_MSG_PARSE_H
#define NIFKIT_MSG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nifkit.h"

/* What LOADED describes. names owns every string; module and each
 * funcs[i].name point into it. */
struct nk_discovery {
        char *names;
        char *module;
        nk_function *funcs;
        unsigned nfuncs;
        unsigned callbacks;     /* NK_CALLBACK_*: the entry's upgrade and unload */
};

/* At least a version byte and one more: full validation happens where the
 * term is decoded. */
bool nk_parse_is_etf(const uint8_t *p, size_t len);
/* Valid UTF-8 without NUL, 1 to 255 characters, as BEAM wants atom text. */
bool nk_parse_is_atom_text(const uint8_t *p, size_t len);

/* LOADED: NULL and *ret filled (free with nk_discovery_free), or what is
 * wrong and *ret untouched. */
const char *nk_parse_loaded(const uint8_t *p, size_t len, struct nk_discovery *ret);
void nk_discovery_free(struct nk_discovery *d);

/* The fixed part of a reply of type `type` to a request expecting
 * `expect` (RESULT, PONG, LOAD_DONE or ERROR; LOADED goes through
 * nk_parse_loaded): NULL if well-formed, else what is wrong. */
const char *nk_parse_reply(uint32_t type, uint32_t expect, const uint8_t *p, size_t len);

/* SEND (id must be 0): 0 with the pid's and the message's ETF, both
 * pointing into p, or -EBADMSG. */
int nk_parse_send(uint64_t id, const uint8_t *p, size_t len, const uint8_t **ret_to, size_t *ret_to_len,
                  const uint8_t **ret_msg, size_t *ret_msg_len);

#endif
