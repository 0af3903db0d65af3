/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The C half of the compatibility test of the nifkit tool's term printer
 * and literal reader; cli_compat.escript, run by the real erl, is the other.
 *
 *   cli_compat print FILE     FILE holds records [u32 etf length][etf]
 *                             [u32 text length][text io_lib:print gave];
 *                             prints the first differences, exits 1 on any.
 *   cli_compat parse IN OUT   IN holds records [u32 length][literal text];
 *                             OUT gets [u32 length][etf] for each, or
 *                             [0xffffffff][u32 length][error message].
 * Lengths are big endian.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "literal.h"
#include "macro.h"
#include "print.h"

#define MAX_SHOWN 10

static void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}

static int read_file(const char *path, uint8_t **ret_data, size_t *ret_len)
{
        _cleanup_(fclosep) FILE *f = fopen(path, "rbe");
        struct nk_buf b = { 0 };
        uint8_t chunk[65536];
        size_t n;

        if (!f)
                return -errno;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                if (nk_buf_put(&b, chunk, n) < 0) {
                        nk_buf_free(&b);
                        return -ENOMEM;
                }
        if (ferror(f)) {
                nk_buf_free(&b);
                return -EIO;
        }
        *ret_data = nk_buf_steal(&b, ret_len);
        return 0;
}

/* The next [u32 length][bytes] record at *pos, or false at the end. */
static bool next_record(const uint8_t *d, size_t len, size_t *pos, const uint8_t **ret_p, size_t *ret_n)
{
        size_t n;

        if (len - *pos < 4)
                return false;
        n = nk_get_be32(d + *pos);
        if (len - *pos - 4 < n)
                return false;
        *ret_p = d + *pos + 4;
        *ret_n = n;
        *pos += 4 + n;
        return true;
}

static int cmd_print(const char *path)
{
        _cleanup_free_ uint8_t *d = NULL;
        size_t len, pos = 0, count = 0, bad = 0;
        const uint8_t *etf, *want;
        size_t etf_len, want_len;
        int r;

        r = read_file(path, &d, &len);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return 2;
        }
        while (next_record(d, len, &pos, &etf, &etf_len)) {
                _cleanup_free_ char *got = NULL;
                if (!next_record(d, len, &pos, &want, &want_len)) {
                        fprintf(stderr, "%s: truncated at record %zu\n", path, count);
                        return 2;
                }
                r = nk_print_etf(etf, etf_len, &got);
                count++;
                if (r < 0) {
                        if (++bad <= MAX_SHOWN)
                                printf("term %zu: refused (%s)\n  erl:  %.*s\n", count, strerror(-r),
                                       (int) want_len, want);
                        continue;
                }
                if (strlen(got) != want_len || memcmp(got, want, want_len) != 0) {
                        size_t at = 0;
                        while (at < want_len && got[at] == (char) want[at])
                                at++;
                        if (++bad <= MAX_SHOWN)
                                printf("term %zu: differs at byte %zu\n  erl:    %.*s\n  nifkit: %s\n", count, at,
                                       (int) want_len, want, got);
                }
        }
        if (pos != len) {
                fprintf(stderr, "%s: trailing bytes after record %zu\n", path, count);
                return 2;
        }
        printf("%zu terms printed, %zu differ\n", count, bad);
        return bad == 0 && count > 0 ? 0 : 1;
}

static int put_record(FILE *f, const void *p, size_t n)
{
        uint8_t hdr[4] = { (uint8_t) (n >> 24), (uint8_t) (n >> 16), (uint8_t) (n >> 8), (uint8_t) n };

        if (fwrite(hdr, 1, 4, f) != 4 || (n > 0 && fwrite(p, 1, n, f) != n))
                return -EIO;
        return 0;
}

static int cmd_parse(const char *in, const char *out)
{
        _cleanup_free_ uint8_t *d = NULL;
        _cleanup_(fclosep) FILE *f = NULL;
        size_t len, pos = 0, count = 0;
        const uint8_t *text;
        size_t text_len;
        int r;

        r = read_file(in, &d, &len);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", in, strerror(-r));
                return 2;
        }
        f = fopen(out, "wbe");
        if (!f) {
                fprintf(stderr, "%s: %s\n", out, strerror(errno));
                return 2;
        }
        while (next_record(d, len, &pos, &text, &text_len)) {
                _cleanup_free_ char *s = strndup((const char *) text, text_len);
                struct nk_literal_error err;
                ei_x_buff x = { 0 };
                if (!s)
                        return 2;
                r = nk_literal_to_etf(s, &x, &err);
                if (r < 0) {
                        static const uint8_t fail[4] = { 0xff, 0xff, 0xff, 0xff };
                        if (fwrite(fail, 1, 4, f) != 4 || put_record(f, err.msg, strlen(err.msg)) < 0)
                                return 2;
                } else {
                        r = put_record(f, x.buff, (size_t) x.index);
                        ei_x_free(&x);
                        if (r < 0)
                                return 2;
                }
                count++;
        }
        if (fflush(f) != 0)
                return 2;
        printf("%zu literals parsed\n", count);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc == 3 && strcmp(argv[1], "print") == 0)
                return cmd_print(argv[2]);
        if (argc == 4 && strcmp(argv[1], "parse") == 0)
                return cmd_parse(argv[2], argv[3]);
        fprintf(stderr, "usage: cli_compat print FILE | cli_compat parse IN OUT\n");
        return 64;
}
