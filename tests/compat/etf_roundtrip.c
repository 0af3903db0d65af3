/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etf_roundtrip IN OUT: decodes every record of IN with the host's codec,
 * encodes it again and writes the result to OUT. A record is a 4-byte
 * big-endian length and that many bytes of term_to_binary/1 output.
 *
 * Exits 1 if any record fails to decode or encodes to other bytes than it
 * came in as (which, for bytes from OTP 25, means other bytes than BEAM's),
 * saying which record and where; etf_vs_beam.escript then checks in BEAM
 * that what came back is the same term.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etf.h"
#include "macro.h"

static void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}

static int read_all(const char *path, uint8_t **ret, size_t *ret_len)
{
        __attribute__((cleanup(fclosep))) FILE *f = fopen(path, "rbe");
        struct nk_buf b = { 0 };
        size_t n;

        if (!f)
                return -errno;
        do {
                if (nk_buf_reserve(&b, 65536) < 0) {
                        nk_buf_free(&b);
                        return -ENOMEM;
                }
                n = fread(b.data + b.len, 1, 65536, f);
                b.len += n;
        } while (n > 0);
        if (ferror(f)) {
                nk_buf_free(&b);
                return -EIO;
        }
        *ret = nk_buf_steal(&b, ret_len);
        return 0;
}

static int round_trip(ErlNifEnv *env, size_t index, const uint8_t *rec, size_t len,
                      struct nk_buf *out)
{
        struct nk_etf_error err;
        ERL_NIF_TERM t;
        size_t used, start;
        int r;

        r = nk_etf_decode(env, rec, len, 0, &t, &used, &err);
        if (r < 0) {
                fprintf(stderr, "record %zu: decode failed (%s) at byte %zu: %s\n", index,
                        strerror(-r), err.offset, err.msg);
                return r;
        }
        if (used != len) {
                fprintf(stderr, "record %zu: decoded %zu of %zu bytes\n", index, used, len);
                return -EINVAL;
        }
        r = nk_buf_put_be32(out, 0);
        if (r < 0)
                return r;
        start = out->len;
        r = nk_etf_encode(t, out);
        if (r < 0) {
                fprintf(stderr, "record %zu: encode failed: %s\n", index, strerror(-r));
                return r;
        }
        size_t n = out->len - start;
        uint8_t *p = out->data + start - 4;
        p[0] = (uint8_t) (n >> 24), p[1] = (uint8_t) (n >> 16), p[2] = (uint8_t) (n >> 8),
        p[3] = (uint8_t) n;
        if (n != len || memcmp(out->data + start, rec, len) != 0) {
                size_t at = 0;
                while (at < n && at < len && out->data[start + at] == rec[at])
                        at++;
                fprintf(stderr, "record %zu: re-encoded %zu bytes, BEAM gave %zu; first "
                        "difference at byte %zu\n", index, n, len, at);
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char **argv)
{
        _cleanup_free_ uint8_t *in = NULL;
        struct nk_buf out = { 0 };
        ErlNifEnv env;
        size_t len, pos = 0, index = 0, failed = 0;
        int r;

        if (argc != 3) {
                fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
                return 2;
        }
        if (nk_atoms_init() < 0)
                return 2;
        r = read_all(argv[1], &in, &len);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", argv[1], strerror(-r));
                return 2;
        }
        nk_env_init(&env);
        while (pos < len) {
                size_t n, saved = out.len;

                if (len - pos < 4 || len - pos - 4 < (n = nk_get_be32(in + pos))) {
                        fprintf(stderr, "record %zu: truncated input file\n", index);
                        return 2;
                }
                if (round_trip(&env, index, in + pos + 4, n, &out) < 0) {
                        failed++;
                        /* an empty record keeps the others aligned for BEAM */
                        out.len = saved;
                        if (nk_buf_put_be32(&out, 0) < 0)
                                return 2;
                }
                nk_env_reset(&env);
                pos += 4 + n;
                index++;
        }
        nk_env_destroy(&env);

        __attribute__((cleanup(fclosep))) FILE *f = fopen(argv[2], "wbe");
        if (!f || fwrite(out.data, 1, out.len, f) != out.len) {
                fprintf(stderr, "%s: %s\n", argv[2], strerror(errno));
                return 2;
        }
        nk_buf_free(&out);
        printf("%zu records, %zu failed\n", index, failed);
        return failed ? 1 : 0;
}
