/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hash_vs_beam TERMS PAIRS
 *
 * The host half of hash_vs_beam.escript. TERMS holds records
 * [u32 length][term_to_binary bytes][u32 erlang:phash2(T, 1 bsl 32)];
 * PAIRS holds records [u32 i][u32 j][i8 order][u8 identical][i8 key order]
 * for terms i and j as BEAM saw them: the sign of compare (A < B, A == B),
 * whether A =:= B, and the order maps:keys/1 gives the two as map keys.
 * Each term is decoded with the host's codec and checked with nk_phash2,
 * nk_compare, nk_identical and nk_map_key_cmp. Every difference is printed
 * as a "BAD" line naming the term indices (the script prints the terms);
 * the exit status is 1 if there was any.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etf.h"
#include "macro.h"
#include "term.h"

struct input {
        uint8_t *data;
        size_t len, pos;
};

static int read_file(const char *path, struct input *ret)
{
        FILE *f = fopen(path, "rbe");
        if (!f)
                return -errno;
        uint8_t *data = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (len == cap) {
                        cap = cap ? cap * 2 : 1 << 16;
                        uint8_t *p = realloc(data, cap);
                        if (!p) {
                                free(data);
                                fclose(f);
                                return -ENOMEM;
                        }
                        data = p;
                }
                size_t n = fread(data + len, 1, cap - len, f);
                if (n == 0)
                        break;
                len += n;
        }
        int err = ferror(f) ? -EIO : 0;
        fclose(f);
        if (err < 0) {
                free(data);
                return err;
        }
        *ret = (struct input) { data, len, 0 };
        return 0;
}

static bool get_u32(struct input *in, uint32_t *ret)
{
        if (in->len - in->pos < 4)
                return false;
        const uint8_t *p = in->data + in->pos;
        *ret = (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
        in->pos += 4;
        return true;
}

static bool get_u8(struct input *in, uint8_t *ret)
{
        if (in->pos >= in->len)
                return false;
        *ret = in->data[in->pos++];
        return true;
}

static int sgn(int c)
{
        return c < 0 ? -1 : c > 0;
}

int main(int argc, char **argv)
{
        struct input terms, pairs;
        ErlNifEnv env;
        ERL_NIF_TERM *t = NULL;
        size_t n = 0, cap = 0, bad = 0, npairs = 0;
        int r;

        if (argc != 3) {
                fprintf(stderr, "usage: %s TERMS PAIRS\n", argv[0]);
                return 2;
        }
        if (nk_atoms_init() < 0) {
                fprintf(stderr, "atoms: out of memory\n");
                return 2;
        }
        if ((r = read_file(argv[1], &terms)) < 0 || (r = read_file(argv[2], &pairs)) < 0) {
                fprintf(stderr, "reading input: %s\n", strerror(-r));
                return 2;
        }
        nk_env_init(&env);

        uint32_t len, want;
        while (get_u32(&terms, &len)) {
                if (terms.len - terms.pos < (size_t) len + 4) {
                        fprintf(stderr, "truncated record %zu\n", n);
                        return 2;
                }
                if (n == cap) {
                        cap = cap ? cap * 2 : 1024;
                        ERL_NIF_TERM *p = realloc(t, cap * sizeof(*t));
                        if (!p)
                                return 2;
                        t = p;
                }
                struct nk_etf_error err;
                size_t used;
                r = nk_etf_decode(&env, terms.data + terms.pos, len, 0, &t[n], &used, &err);
                terms.pos += len;
                get_u32(&terms, &want);
                if (r < 0 || used != len) {
                        printf("BAD decode %zu: %s at %zu\n", n, r < 0 ? err.msg : "trailing bytes", err.offset);
                        t[n++] = NK_NONE;
                        bad++;
                        continue;
                }
                uint32_t got = nk_phash2(t[n]);
                if (got != want) {
                        printf("BAD hash %zu: host %u, BEAM %u\n", n, got, want);
                        bad++;
                }
                n++;
        }

        uint32_t i, j;
        uint8_t order, ident, keyorder;
        while (get_u32(&pairs, &i) && get_u32(&pairs, &j) && get_u8(&pairs, &order) &&
               get_u8(&pairs, &ident) && get_u8(&pairs, &keyorder)) {
                if (i >= n || j >= n) {
                        fprintf(stderr, "pair %u %u: no such term\n", i, j);
                        return 2;
                }
                npairs++;
                if (t[i] == NK_NONE || t[j] == NK_NONE)
                        continue;
                int c = sgn(nk_compare(t[i], t[j]));
                int k = sgn(nk_map_key_cmp(t[i], t[j]));
                bool id = nk_identical(t[i], t[j]);
                if (c != (int8_t) order) {
                        printf("BAD compare %u %u: host %d, BEAM %d\n", i, j, c, (int8_t) order);
                        bad++;
                }
                if (id != (ident != 0)) {
                        printf("BAD identical %u %u: host %d, BEAM %d\n", i, j, id, ident);
                        bad++;
                }
                if (k != (int8_t) keyorder) {
                        printf("BAD keyorder %u %u: host %d, BEAM %d\n", i, j, k, (int8_t) keyorder);
                        bad++;
                }
                /* Identical terms must hash alike in the internal hash too. */
                if (id && nk_internal_hash(t[i], 42) != nk_internal_hash(t[j], 42)) {
                        printf("BAD internal_hash %u %u: identical terms hash differently\n", i, j);
                        bad++;
                }
        }
        printf("%zu terms, %zu pairs, %zu differences\n", n, npairs, bad);
        nk_env_destroy(&env);
        free(t);
        free(terms.data);
        free(pairs.data);
        return bad ? 1 : 0;
}
