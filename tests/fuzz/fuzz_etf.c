/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the host's ETF codec. Whatever the bytes, decoding
 * must not crash, over-read or leak; a term that decodes must encode, and
 * its encoding must be a fixed point: decoding it again and encoding gives
 * the same bytes (the codec has one canonical form per term).
 *
 * Odd-sized inputs decode with NK_ETF_SAFE, so both atom paths are covered.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static bool ready;
        struct nk_buf once = { 0 }, twice = { 0 };
        struct nk_etf_error err;
        ERL_NIF_TERM t;
        ErlNifEnv env;
        size_t used;

        if (!ready) {
                if (nk_atoms_init() < 0)
                        abort();
                ready = true;
        }
        nk_env_init(&env);
        if (nk_etf_decode(&env, data, size, size & 1 ? NK_ETF_SAFE : 0, &t, &used, &err) == 0) {
                if (used > size || used < 2)
                        abort();
                if (nk_etf_encode(t, &once) < 0)
                        abort();
                if (nk_etf_decode(&env, once.data, once.len, 0, &t, &used, &err) != 0 ||
                    used != once.len)
                        abort();
                if (nk_etf_encode(t, &twice) < 0)
                        abort();
                if (twice.len != once.len || memcmp(twice.data, once.data, once.len) != 0)
                        abort();
        } else if (err.offset > size || err.msg[0] == '\0') {
                abort();
        }
        nk_buf_free(&once);
        nk_buf_free(&twice);
        nk_env_destroy(&env);
        return 0;
}
