/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's ETF codec: exact bytes against BEAM, every tag, and malformed
 * input. The byte arrays below were produced once by OTP 25's
 * erlang:term_to_binary/1 on the expression in the comment above each.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "etf.h"
#include "host_internal.h"
#include "macro.h"

/* term_to_binary(255) */
static const uint8_t small_int[] = {
        131, 97, 255,
};

/* term_to_binary(-1) */
static const uint8_t int_neg[] = {
        131, 98, 255, 255, 255, 255,
};

/* term_to_binary(256) */
static const uint8_t int_256[] = {
        131, 98, 0, 0, 1, 0,
};

/* term_to_binary(-2147483648) */
static const uint8_t int_min32[] = {
        131, 98, 128, 0, 0, 0,
};

/* term_to_binary(2147483648) */
static const uint8_t big_2_31[] = {
        131, 110, 4, 0, 0, 0, 0, 128,
};

/* term_to_binary(-(1 bsl 40)) */
static const uint8_t big_neg_2_40[] = {
        131, 110, 6, 1, 0, 0, 0, 0, 0, 1,
};

/* term_to_binary(1 bsl 64) */
static const uint8_t big_2_64[] = {
        131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
};

/* term_to_binary(1 bsl 2100) */
static const uint8_t big_2_2100[] = {
        131, 111, 0, 0, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 16,
};

/* term_to_binary(1.5) */
static const uint8_t float_1_5[] = {
        131, 70, 63, 248, 0, 0, 0, 0, 0, 0,
};

/* term_to_binary(-0.0) */
static const uint8_t float_neg_zero[] = {
        131, 70, 128, 0, 0, 0, 0, 0, 0, 0,
};

/* term_to_binary(abc) */
static const uint8_t atom_abc[] = {
        131, 100, 0, 3, 97, 98, 99,
};

/* term_to_binary(list_to_atom([$h,16#f6])) */
static const uint8_t atom_latin1[] = {
        131, 100, 0, 2, 104, 246,
};

/* term_to_binary(list_to_atom([16#65e5,16#672c])) */
static const uint8_t atom_utf8[] = {
        131, 119, 6, 230, 151, 165, 230, 156, 172,
};

/* term_to_binary(list_to_atom(lists:duplicate(100,16#65e5))) */
static const uint8_t atom_utf8_long[] = {
        131, 118, 1, 44, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151,
        165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230,
        151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165,
        230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151,
        165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230,
        151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165,
        230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151,
        165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230,
        151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165,
        230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151,
        165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230,
        151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165,
        230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151,
        165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230,
        151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165,
        230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151,
        165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230,
        151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165, 230, 151, 165,
};

/* term_to_binary([]) */
static const uint8_t nil[] = {
        131, 106,
};

/* term_to_binary("abc") */
static const uint8_t string_abc[] = {
        131, 107, 0, 3, 97, 98, 99,
};

/* term_to_binary([1,2|3]) */
static const uint8_t list_improper[] = {
        131, 108, 0, 0, 0, 2, 97, 1, 97, 2, 97, 3,
};

/* term_to_binary([1,a,300]) */
static const uint8_t list_mixed[] = {
        131, 108, 0, 0, 0, 3, 97, 1, 100, 0, 1, 97, 98, 0, 0, 1, 44, 106,
};

/* term_to_binary({1,{},<<>>}) */
static const uint8_t tuple[] = {
        131, 104, 3, 97, 1, 104, 0, 109, 0, 0, 0, 0,
};

/* term_to_binary(list_to_tuple(lists:seq(1,256))) */
static const uint8_t large_tuple[] = {
        131, 105, 0, 0, 1, 0, 97, 1, 97, 2, 97, 3, 97, 4, 97, 5, 97, 6, 97, 7, 97, 8, 97, 9, 97,
        10, 97, 11, 97, 12, 97, 13, 97, 14, 97, 15, 97, 16, 97, 17, 97, 18, 97, 19, 97, 20, 97,
        21, 97, 22, 97, 23, 97, 24, 97, 25, 97, 26, 97, 27, 97, 28, 97, 29, 97, 30, 97, 31, 97,
        32, 97, 33, 97, 34, 97, 35, 97, 36, 97, 37, 97, 38, 97, 39, 97, 40, 97, 41, 97, 42, 97,
        43, 97, 44, 97, 45, 97, 46, 97, 47, 97, 48, 97, 49, 97, 50, 97, 51, 97, 52, 97, 53, 97,
        54, 97, 55, 97, 56, 97, 57, 97, 58, 97, 59, 97, 60, 97, 61, 97, 62, 97, 63, 97, 64, 97,
        65, 97, 66, 97, 67, 97, 68, 97, 69, 97, 70, 97, 71, 97, 72, 97, 73, 97, 74, 97, 75, 97,
        76, 97, 77, 97, 78, 97, 79, 97, 80, 97, 81, 97, 82, 97, 83, 97, 84, 97, 85, 97, 86, 97,
        87, 97, 88, 97, 89, 97, 90, 97, 91, 97, 92, 97, 93, 97, 94, 97, 95, 97, 96, 97, 97, 97,
        98, 97, 99, 97, 100, 97, 101, 97, 102, 97, 103, 97, 104, 97, 105, 97, 106, 97, 107, 97,
        108, 97, 109, 97, 110, 97, 111, 97, 112, 97, 113, 97, 114, 97, 115, 97, 116, 97, 117,
        97, 118, 97, 119, 97, 120, 97, 121, 97, 122, 97, 123, 97, 124, 97, 125, 97, 126, 97,
        127, 97, 128, 97, 129, 97, 130, 97, 131, 97, 132, 97, 133, 97, 134, 97, 135, 97, 136,
        97, 137, 97, 138, 97, 139, 97, 140, 97, 141, 97, 142, 97, 143, 97, 144, 97, 145, 97,
        146, 97, 147, 97, 148, 97, 149, 97, 150, 97, 151, 97, 152, 97, 153, 97, 154, 97, 155,
        97, 156, 97, 157, 97, 158, 97, 159, 97, 160, 97, 161, 97, 162, 97, 163, 97, 164, 97,
        165, 97, 166, 97, 167, 97, 168, 97, 169, 97, 170, 97, 171, 97, 172, 97, 173, 97, 174,
        97, 175, 97, 176, 97, 177, 97, 178, 97, 179, 97, 180, 97, 181, 97, 182, 97, 183, 97,
        184, 97, 185, 97, 186, 97, 187, 97, 188, 97, 189, 97, 190, 97, 191, 97, 192, 97, 193,
        97, 194, 97, 195, 97, 196, 97, 197, 97, 198, 97, 199, 97, 200, 97, 201, 97, 202, 97,
        203, 97, 204, 97, 205, 97, 206, 97, 207, 97, 208, 97, 209, 97, 210, 97, 211, 97, 212,
        97, 213, 97, 214, 97, 215, 97, 216, 97, 217, 97, 218, 97, 219, 97, 220, 97, 221, 97,
        222, 97, 223, 97, 224, 97, 225, 97, 226, 97, 227, 97, 228, 97, 229, 97, 230, 97, 231,
        97, 232, 97, 233, 97, 234, 97, 235, 97, 236, 97, 237, 97, 238, 97, 239, 97, 240, 97,
        241, 97, 242, 97, 243, 97, 244, 97, 245, 97, 246, 97, 247, 97, 248, 97, 249, 97, 250,
        97, 251, 97, 252, 97, 253, 97, 254, 97, 255, 98, 0, 0, 1, 0,
};

/* term_to_binary(<<1,2,3>>) */
static const uint8_t binary[] = {
        131, 109, 0, 0, 0, 3, 1, 2, 3,
};

/* term_to_binary(<<1,2,3:5>>) */
static const uint8_t bitstring[] = {
        131, 77, 0, 0, 0, 3, 5, 1, 2, 24,
};

/* term_to_binary(#{b=>2,a=>1,1=>x,1.0=>y}) */
static const uint8_t map_small[] = {
        131, 116, 0, 0, 0, 4, 97, 1, 100, 0, 1, 120, 70, 63, 240, 0, 0, 0, 0, 0, 0, 100, 0, 1,
        121, 100, 0, 1, 97, 97, 1, 100, 0, 1, 98, 97, 2,
};

/* term_to_binary(maps:from_list([{I,I} || I <- lists:seq(1,33)])) */
static const uint8_t map_33[] = {
        131, 116, 0, 0, 0, 33, 97, 33, 97, 33, 97, 12, 97, 12, 97, 23, 97, 23, 97, 29, 97, 29,
        97, 30, 97, 30, 97, 26, 97, 26, 97, 31, 97, 31, 97, 11, 97, 11, 97, 9, 97, 9, 97, 32,
        97, 32, 97, 25, 97, 25, 97, 28, 97, 28, 97, 6, 97, 6, 97, 13, 97, 13, 97, 20, 97, 20,
        97, 15, 97, 15, 97, 14, 97, 14, 97, 2, 97, 2, 97, 7, 97, 7, 97, 1, 97, 1, 97, 8, 97, 8,
        97, 3, 97, 3, 97, 17, 97, 17, 97, 22, 97, 22, 97, 21, 97, 21, 97, 4, 97, 4, 97, 24, 97,
        24, 97, 10, 97, 10, 97, 27, 97, 27, 97, 19, 97, 19, 97, 5, 97, 5, 97, 18, 97, 18, 97,
        16, 97, 16,
};

/* term_to_binary(list_to_pid("<0.80.3>")) */
static const uint8_t pid[] = {
        131, 88, 100, 0, 13, 110, 111, 110, 111, 100, 101, 64, 110, 111, 104, 111, 115, 116, 0,
        0, 0, 80, 0, 0, 0, 3, 0, 0, 0, 0,
};

/* term_to_binary(list_to_port("#Port<0.7>")) */
static const uint8_t port[] = {
        131, 89, 100, 0, 13, 110, 111, 110, 111, 100, 101, 64, 110, 111, 104, 111, 115, 116, 0,
        0, 0, 7, 0, 0, 0, 0,
};

/* term_to_binary(fun lists:map/2) */
static const uint8_t export[] = {
        131, 113, 100, 0, 5, 108, 105, 115, 116, 115, 100, 0, 3, 109, 97, 112, 97, 2,
};

/* term_to_binary(list_to_ref("#Ref<0.1.2.3>")) */
static const uint8_t ref[] = {
        131, 90, 0, 3, 100, 0, 13, 110, 111, 110, 111, 100, 101, 64, 110, 111, 104, 111, 115,
        116, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1,
};

/* term_to_binary(fun(X) -> X end) */
static const uint8_t fun_eval[] = {
        131, 112, 0, 0, 0, 160, 1, 6, 83, 97, 170, 70, 21, 144, 209, 189, 241, 235, 98, 209,
        166, 235, 8, 0, 0, 0, 42, 0, 0, 0, 1, 100, 0, 8, 101, 114, 108, 95, 101, 118, 97, 108,
        97, 42, 98, 0, 50, 155, 13, 88, 100, 0, 13, 110, 111, 110, 111, 100, 101, 64, 110, 111,
        104, 111, 115, 116, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 104, 6, 97, 1, 106, 100, 0, 4,
        110, 111, 110, 101, 100, 0, 4, 110, 111, 110, 101, 116, 0, 0, 0, 0, 108, 0, 0, 0, 1,
        104, 5, 100, 0, 6, 99, 108, 97, 117, 115, 101, 97, 1, 108, 0, 0, 0, 1, 104, 3, 100, 0,
        3, 118, 97, 114, 97, 1, 100, 0, 1, 88, 106, 106, 108, 0, 0, 0, 1, 104, 3, 100, 0, 3,
        118, 97, 114, 97, 1, 100, 0, 1, 88, 106, 106,
};

/* term_to_binary({ok,[#{k=>[<<"v">>]}],-5,2.0e100}) */
static const uint8_t nested[] = {
        131, 104, 4, 100, 0, 2, 111, 107, 108, 0, 0, 0, 1, 116, 0, 0, 0, 1, 100, 0, 1, 107, 108,
        0, 0, 0, 1, 109, 0, 0, 0, 1, 118, 106, 106, 98, 255, 255, 255, 251, 70, 84, 194, 73,
        173, 37, 148, 195, 125,
};

struct sample {
        const char *name;
        const uint8_t *bytes;
        size_t len;
};

#define SAMPLE(x) { #x, x, sizeof(x) }
static const struct sample samples[] = {
        SAMPLE(small_int), SAMPLE(int_neg), SAMPLE(int_256), SAMPLE(int_min32),
        SAMPLE(big_2_31), SAMPLE(big_neg_2_40), SAMPLE(big_2_64), SAMPLE(big_2_2100),
        SAMPLE(float_1_5), SAMPLE(float_neg_zero), SAMPLE(atom_abc), SAMPLE(atom_latin1),
        SAMPLE(atom_utf8), SAMPLE(atom_utf8_long), SAMPLE(nil), SAMPLE(string_abc),
        SAMPLE(list_improper), SAMPLE(list_mixed), SAMPLE(tuple), SAMPLE(large_tuple),
        SAMPLE(binary), SAMPLE(bitstring), SAMPLE(map_small), SAMPLE(map_33), SAMPLE(pid),
        SAMPLE(port), SAMPLE(export), SAMPLE(ref), SAMPLE(fun_eval), SAMPLE(nested),
};

static ErlNifEnv env;

static int group_setup(void **state)
{
        return nk_atoms_init();
}

static int setup(void **state)
{
        nk_env_init(&env);
        return 0;
}

static int teardown(void **state)
{
        nk_env_destroy(&env);
        return 0;
}

static int decode(const uint8_t *b, size_t n, unsigned flags, ERL_NIF_TERM *ret,
                  struct nk_etf_error *err)
{
        size_t used = 0;
        int r = nk_etf_decode(&env, b, n, flags, ret, &used, err);
        if (r == 0)
                assert_int_equal(used, n);
        return r;
}

static ERL_NIF_TERM decode_ok(const uint8_t *b, size_t n)
{
        struct nk_etf_error err;
        ERL_NIF_TERM t = NK_NONE;
        int r = decode(b, n, 0, &t, &err);
        if (r != 0)
                print_error("decode: %d, %s at %zu\n", r, err.msg, err.offset);
        assert_int_equal(r, 0);
        return t;
}

static void assert_encodes_to(ERL_NIF_TERM t, const uint8_t *b, size_t n)
{
        struct nk_buf out = { 0 };
        assert_int_equal(nk_etf_encode(t, &out), 0);
        if (out.len != n || memcmp(out.data, b, n) != 0) {
                print_error("encoded %zu bytes, expected %zu:\n", out.len, n);
                for (size_t i = 0; i < out.len; i++)
                        print_error("%u%s", out.data[i], i + 1 < out.len ? "," : "\n");
        }
        assert_int_equal(out.len, n);
        assert_memory_equal(out.data, b, n);
        nk_buf_free(&out);
}

/* Decode with an expected failure; the message must say something. */
static void assert_rejects(const uint8_t *b, size_t n, unsigned flags, int code, const char *msg_part)
{
        struct nk_etf_error err = { 0 };
        ERL_NIF_TERM t;
        int r = decode(b, n, flags, &t, &err);
        if (r != code)
                print_error("expected %d, got %d (%s)\n", code, r, err.msg);
        assert_int_equal(r, code);
        assert_true(err.msg[0] != '\0');
        assert_true(err.offset <= n);
        if (msg_part && !strstr(err.msg, msg_part)) {
                print_error("message \"%s\" lacks \"%s\"\n", err.msg, msg_part);
                fail();
        }
}

static void beam_bytes_round_trip(void **state)
{
        for (size_t i = 0; i < NK_ARRAY_SIZE(samples); i++) {
                ERL_NIF_TERM t = decode_ok(samples[i].bytes, samples[i].len);
                assert_encodes_to(t, samples[i].bytes, samples[i].len);
                nk_env_reset(&env);
        }
}

static void decoded_values(void **state)
{
        int64_t v;

        assert_int_equal(decode_ok(small_int, sizeof(small_int)), nk_make_small(255));
        assert_int_equal(decode_ok(int_min32, sizeof(int_min32)), nk_make_small(INT32_MIN));
        /* bignums that fit are canonical small integers */
        assert_int_equal(decode_ok(big_2_31, sizeof(big_2_31)), nk_make_small(INT64_C(1) << 31));
        assert_true(nk_get_int64(decode_ok(big_neg_2_40, sizeof(big_neg_2_40)), &v));
        assert_int_equal(v, -(INT64_C(1) << 40));
        ERL_NIF_TERM big = decode_ok(big_2_2100, sizeof(big_2_2100));
        assert_true(nk_is_kind(big, NK_BIG));
        assert_int_equal(nk_box_of(big)->n, 2100 / 8 + 1);

        ERL_NIF_TERM f = decode_ok(float_neg_zero, sizeof(float_neg_zero));
        assert_true(nk_is_kind(f, NK_FLOAT));
        assert_true(signbit(((struct nk_float *) nk_box_of(f))->value));

        assert_int_equal(decode_ok(atom_latin1, sizeof(atom_latin1)), nk_atom_latin1("h\xf6", 2));
        assert_int_equal(decode_ok(atom_utf8, sizeof(atom_utf8)),
                         nk_atom_utf8("\xe6\x97\xa5\xe6\x9c\xac", 6));

        ERL_NIF_TERM l = decode_ok(list_improper, sizeof(list_improper));
        struct nk_cons *c = (struct nk_cons *) nk_box_of(l);
        assert_int_equal(c->head, nk_make_small(1));
        c = (struct nk_cons *) nk_box_of(c->tail);
        assert_int_equal(c->head, nk_make_small(2));
        assert_int_equal(c->tail, nk_make_small(3));

        ERL_NIF_TERM s = decode_ok(string_abc, sizeof(string_abc));
        c = (struct nk_cons *) nk_box_of(s);
        assert_int_equal(c->head, nk_make_small('a'));

        ERL_NIF_TERM bits = decode_ok(bitstring, sizeof(bitstring));
        struct nk_binary *b = (struct nk_binary *) nk_box_of(bits);
        assert_int_equal(b->size, 3);
        assert_int_equal(b->bits, 5);

        ERL_NIF_TERM m = decode_ok(map_small, sizeof(map_small));
        assert_int_equal(nk_box_of(m)->n, 4);         /* 1 and 1.0 are two keys */
        assert_null(((struct nk_map *) nk_box_of(m))->iter_order);
        m = decode_ok(map_33, sizeof(map_33));
        struct nk_map *map = (struct nk_map *) nk_box_of(m);
        assert_int_equal(map->h.n, 33);
        assert_non_null(map->iter_order);
        /* map_33 arrives with key 33 first (BEAM's hash order): keys are
         * sorted, and iter_order gives back the order of arrival */
        assert_int_equal(map->keys[map->iter_order[0]], nk_make_small(33));
        for (size_t j = 0; j < 33; j++) {
                assert_int_equal(map->keys[j], nk_make_small((int64_t) j + 1));
                assert_int_equal(map->keys[map->iter_order[j]], nk_make_small(map_33[7 + 4 * j]));
                assert_int_equal(map->vals[map->iter_order[j]], nk_make_small(map_33[9 + 4 * j]));
        }

        ERL_NIF_TERM p = decode_ok(pid, sizeof(pid));
        assert_true(nk_is_pid(p));
        assert_int_equal(nk_pid_get(p)->id, 80);
        assert_int_equal(nk_pid_get(p)->serial, 3);
        assert_int_equal(nk_pid_get(p)->node, nk_atom_index(nk_am_nonode));
        ERL_NIF_TERM pt = decode_ok(port, sizeof(port));
        assert_true(nk_is_port(pt));
        assert_int_equal(nk_port_get(pt)->id, 7);

        ERL_NIF_TERM r = decode_ok(ref, sizeof(ref));
        assert_true(nk_is_kind(r, NK_REF));
        struct nk_ref *rr = (struct nk_ref *) nk_box_of(r);
        assert_int_equal(rr->h.n, 3);
        assert_int_equal(rr->ids[0], 3);
        assert_int_equal(rr->ids[2], 1);
        assert_true(nk_is_kind(decode_ok(fun_eval, sizeof(fun_eval)), NK_FUN));
        assert_true(nk_is_kind(decode_ok(export, sizeof(export)), NK_FUN));
}

/* Forms BEAM still accepts but no longer emits, and what they become. */
static void older_forms(void **state)
{
        /* FLOAT_EXT "1.50000000000000000000e+00" */
        static const uint8_t old_float[] = {
                131, 99, '1', '.', '5', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0',
                '0', '0', '0', '0', '0', '0', '0', '0', 'e', '+', '0', '0', 0, 0, 0, 0, 0,
        };
        assert_encodes_to(decode_ok(old_float, sizeof(old_float)), float_1_5, sizeof(float_1_5));

        static const uint8_t small_atom[] = { 131, 115, 3, 'a', 'b', 'c' };
        assert_encodes_to(decode_ok(small_atom, sizeof(small_atom)), atom_abc, sizeof(atom_abc));
        static const uint8_t utf8_latin[] = { 131, 119, 3, 'h', 0xc3, 0xb6 };
        assert_encodes_to(decode_ok(utf8_latin, sizeof(utf8_latin)), atom_latin1,
                          sizeof(atom_latin1));

        /* SMALL_BIG_EXT 1, and LIST_EXT with no elements: just its tail */
        static const uint8_t big_one[] = { 131, 110, 2, 0, 1, 0 };
        static const uint8_t one[] = { 131, 97, 1 };
        assert_encodes_to(decode_ok(big_one, sizeof(big_one)), one, sizeof(one));
        static const uint8_t empty_list_ext[] = { 131, 108, 0, 0, 0, 0, 97, 1 };
        assert_encodes_to(decode_ok(empty_list_ext, sizeof(empty_list_ext)), one, sizeof(one));
        static const uint8_t big_zero[] = { 131, 111, 0, 0, 0, 0, 1 };
        static const uint8_t zero[] = { 131, 97, 0 };
        assert_encodes_to(decode_ok(big_zero, sizeof(big_zero)), zero, sizeof(zero));

        /* PID_EXT <0.80.3>, creation byte 0 */
        static const uint8_t old_pid[] = {
                131, 103, 100, 0, 13, 'n', 'o', 'n', 'o', 'd', 'e', '@', 'n', 'o', 'h', 'o', 's',
                't', 0, 0, 0, 80, 0, 0, 0, 3, 0,
        };
        assert_int_equal(decode_ok(old_pid, sizeof(old_pid)), decode_ok(pid, sizeof(pid)));
        /* PORT_EXT #Port<0.7> */
        static const uint8_t old_port[] = {
                131, 102, 100, 0, 13, 'n', 'o', 'n', 'o', 'd', 'e', '@', 'n', 'o', 'h', 'o', 's',
                't', 0, 0, 0, 7, 0,
        };
        assert_int_equal(decode_ok(old_port, sizeof(old_port)), decode_ok(port, sizeof(port)));
        /* V4_PORT_EXT with a 64-bit number goes back out as V4_PORT_EXT */
        static const uint8_t v4_port[] = {
                131, 120, 100, 0, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 9,
        };
        ERL_NIF_TERM p4 = decode_ok(v4_port, sizeof(v4_port));
        assert_int_equal(nk_port_get(p4)->id, (UINT64_C(1) << 56) + 2);
        assert_encodes_to(p4, v4_port, sizeof(v4_port));
        /* NEW_REFERENCE_EXT, creation byte 2, goes out as NEWER_REFERENCE_EXT */
        static const uint8_t new_ref[] = {
                131, 114, 0, 2, 100, 0, 1, 'a', 2, 0, 0, 0, 5, 0, 0, 0, 6,
        };
        static const uint8_t newer_ref[] = {
                131, 90, 0, 2, 100, 0, 1, 'a', 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 6,
        };
        assert_encodes_to(decode_ok(new_ref, sizeof(new_ref)), newer_ref, sizeof(newer_ref));
        static const uint8_t old_ref[] = { 131, 101, 100, 0, 1, 'a', 0, 0, 0, 5, 2 };
        static const uint8_t old_ref_out[] = {
                131, 90, 0, 1, 100, 0, 1, 'a', 0, 0, 0, 2, 0, 0, 0, 5,
        };
        assert_encodes_to(decode_ok(old_ref, sizeof(old_ref)), old_ref_out, sizeof(old_ref_out));

        /* BIT_BINARY_EXT with 8 bits is a binary; unused low bits are cleared */
        static const uint8_t full_bits[] = { 131, 77, 0, 0, 0, 1, 8, 255 };
        static const uint8_t full_bin[] = { 131, 109, 0, 0, 0, 1, 255 };
        assert_encodes_to(decode_ok(full_bits, sizeof(full_bits)), full_bin, sizeof(full_bin));
        static const uint8_t dirty_bits[] = { 131, 77, 0, 0, 0, 1, 3, 255 };
        static const uint8_t clean_bits[] = { 131, 77, 0, 0, 0, 1, 3, 224 };
        assert_encodes_to(decode_ok(dirty_bits, sizeof(dirty_bits)), clean_bits, sizeof(clean_bits));
        static const uint8_t empty_bits[] = { 131, 77, 0, 0, 0, 0, 0 };
        static const uint8_t empty_bin[] = { 131, 109, 0, 0, 0, 0 };
        assert_encodes_to(decode_ok(empty_bits, sizeof(empty_bits)), empty_bin, sizeof(empty_bin));
}

static void trailing_bytes_are_not_consumed(void **state)
{
        uint8_t buf[sizeof(nested) + 3];
        size_t used = 0;
        ERL_NIF_TERM t;

        memcpy(buf, nested, sizeof(nested));
        memset(buf + sizeof(nested), 97, 3);
        assert_int_equal(nk_etf_decode(&env, buf, sizeof(buf), 0, &t, &used, NULL), 0);
        assert_int_equal(used, sizeof(nested));
}

static void every_truncation_fails(void **state)
{
        for (size_t i = 0; i < NK_ARRAY_SIZE(samples); i++) {
                for (size_t n = 0; n < samples[i].len; n++) {
                        /* a copy of exactly n bytes, so ASan sees any over-read */
                        uint8_t *b = malloc(n ? n : 1);
                        assert_non_null(b);
                        memcpy(b, samples[i].bytes, n);
                        assert_rejects(b, n, 0, -EINVAL, NULL);
                        free(b);
                        nk_env_reset(&env);
                }
        }
}

static void bad_tags_and_headers(void **state)
{
        static const uint8_t no_version[] = { 130, 97, 1 };
        assert_rejects(no_version, sizeof(no_version), 0, -EINVAL, "version");
        static const uint8_t unknown[] = { 131, 1 };
        assert_rejects(unknown, sizeof(unknown), 0, -EINVAL, "unknown tag 1");
        static const uint8_t cache_ref[] = { 131, 82, 0 };
        assert_rejects(cache_ref, sizeof(cache_ref), 0, -EINVAL, "ATOM_CACHE_REF");
        static const uint8_t old_fun[] = { 131, 117, 0, 0, 0, 0 };
        assert_rejects(old_fun, sizeof(old_fun), 0, -EINVAL, "FUN_EXT");
        static const uint8_t compressed[] = { 131, 80, 0, 0, 0, 3, 120, 156 };
        assert_rejects(compressed, sizeof(compressed), 0, -EINVAL, "compressed");
        static const uint8_t inf[] = { 131, 70, 127, 240, 0, 0, 0, 0, 0, 0 };
        assert_rejects(inf, sizeof(inf), 0, -EINVAL, "finite");
        static const uint8_t bad_text_float[] = {
                131, 99, 'x', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0,
        };
        assert_rejects(bad_text_float, sizeof(bad_text_float), 0, -EINVAL, "FLOAT_EXT");
        static const uint8_t bits_zero[] = { 131, 77, 0, 0, 0, 1, 0, 255 };
        assert_rejects(bits_zero, sizeof(bits_zero), 0, -EINVAL, "bits");
        static const uint8_t bits_nine[] = { 131, 77, 0, 0, 0, 1, 9, 255 };
        assert_rejects(bits_nine, sizeof(bits_nine), 0, -EINVAL, "bits");
        static const uint8_t bits_no_bytes[] = { 131, 77, 0, 0, 0, 0, 3 };
        assert_rejects(bits_no_bytes, sizeof(bits_no_bytes), 0, -EINVAL, "bits");
        static const uint8_t pid_int_node[] = { 131, 88, 97, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 };
        assert_rejects(pid_int_node, sizeof(pid_int_node), 0, -EINVAL, "expected an atom");
        static const uint8_t ref_six[] = { 131, 90, 0, 6, 100, 0, 1, 'a', 0, 0, 0, 0 };
        assert_rejects(ref_six, sizeof(ref_six), 0, -EINVAL, "id words");
        static const uint8_t ref_none[] = { 131, 90, 0, 0, 100, 0, 1, 'a', 0, 0, 0, 0 };
        assert_rejects(ref_none, sizeof(ref_none), 0, -EINVAL, "id words");
        static const uint8_t export_bad_arity[] = {
                131, 113, 100, 0, 1, 'm', 100, 0, 1, 'f', 98, 0, 0, 0, 1,
        };
        assert_rejects(export_bad_arity, sizeof(export_bad_arity), 0, -EINVAL, "arity");
}

static void lengths_beyond_the_buffer(void **state)
{
        static const uint8_t list[] = { 131, 108, 255, 255, 255, 255, 97, 1, 106 };
        assert_rejects(list, sizeof(list), 0, -EINVAL, "list of 4294967295");
        static const uint8_t huge_tuple[] = { 131, 105, 255, 255, 255, 255, 97, 1 };
        assert_rejects(huge_tuple, sizeof(huge_tuple), 0, -EINVAL, "tuple of 4294967295");
        static const uint8_t map[] = { 131, 116, 128, 0, 0, 0, 97, 1, 97, 1 };
        assert_rejects(map, sizeof(map), 0, -EINVAL, "map of 2147483648");
        static const uint8_t bin[] = { 131, 109, 255, 255, 255, 255, 1 };
        assert_rejects(bin, sizeof(bin), 0, -EINVAL, "truncated binary data");
        static const uint8_t str[] = { 131, 107, 255, 255, 'a' };
        assert_rejects(str, sizeof(str), 0, -EINVAL, "truncated STRING_EXT");
        static const uint8_t big[] = { 131, 111, 255, 255, 255, 255, 0, 1 };
        assert_rejects(big, sizeof(big), 0, -EINVAL, "bignum");
        static const uint8_t atom[] = { 131, 118, 255, 255, 'a' };
        assert_rejects(atom, sizeof(atom), 0, -EINVAL, "atom text");

        uint8_t fun[sizeof(fun_eval)];
        memcpy(fun, fun_eval, sizeof(fun));
        fun[2] = 0x7f;          /* Size far beyond the buffer */
        assert_rejects(fun, sizeof(fun), 0, -EINVAL, "NEW_FUN_EXT");
        memcpy(fun, fun_eval, sizeof(fun));
        fun[5]--;               /* Size one short of the contents */
        assert_rejects(fun, sizeof(fun), 0, -EINVAL, "NEW_FUN_EXT size");
        memcpy(fun, fun_eval, sizeof(fun));
        fun[27] = 0xff;         /* NumFree */
        assert_rejects(fun, sizeof(fun), 0, -EINVAL, "free variables");
}

/* [[[...[]...]]]: each level is the head of a one-element LIST_EXT. */
static uint8_t *nested_lists(size_t depth, size_t *ret_len)
{
        size_t n = 1 + depth * 5 + 1 + depth;
        uint8_t *b = malloc(n), *p = b;

        assert_non_null(b);
        *p++ = 131;
        for (size_t i = 0; i < depth; i++) {
                *p++ = 108;
                *p++ = 0, *p++ = 0, *p++ = 0, *p++ = 1;
        }
        *p++ = 106;
        for (size_t i = 0; i < depth; i++)
                *p++ = 106;
        *ret_len = n;
        return b;
}

static void depth_has_no_limit(void **state)
{
        /* BEAM decodes any depth that fits in memory, and so must the host:
         * a million levels decode and encode back to the same bytes */
        size_t n;
        uint8_t *b = nested_lists(1000000, &n);
        ERL_NIF_TERM t = decode_ok(b, n);
        assert_encodes_to(t, b, n);

        /* the same, cut short: malformed, not a limit */
        assert_rejects(b, n - 1, 0, -EINVAL, "");
        free(b);

        /* nesting in last position (tails, last tuple elements) costs no
         * depth, so a long chain of 1-tuples is fine */
        size_t chain = 200000;
        n = 1 + 2 * chain + 2;
        b = malloc(n);
        assert_non_null(b);
        b[0] = 131;
        for (size_t i = 0; i < chain; i++) {
                b[1 + 2 * i] = 104;
                b[2 + 2 * i] = 1;
        }
        b[n - 2] = 97;
        b[n - 1] = 7;
        t = decode_ok(b, n);
        assert_encodes_to(t, b, n);
        free(b);
}

static void atoms_checked(void **state)
{
        static const uint8_t bad_utf8[] = { 131, 119, 2, 0xc3, 0x28 };
        assert_rejects(bad_utf8, sizeof(bad_utf8), 0, -EINVAL, "UTF-8");
        static const uint8_t overlong[] = { 131, 119, 2, 0xc0, 0xaf };
        assert_rejects(overlong, sizeof(overlong), 0, -EINVAL, "UTF-8");
        static const uint8_t surrogate[] = { 131, 119, 3, 0xed, 0xa0, 0x80 };
        assert_rejects(surrogate, sizeof(surrogate), 0, -EINVAL, "UTF-8");
        static const uint8_t cut[] = { 131, 119, 2, 'a', 0xe6 };
        assert_rejects(cut, sizeof(cut), 0, -EINVAL, "UTF-8");

        uint8_t long_latin1[4 + 256];
        long_latin1[0] = 131, long_latin1[1] = 100, long_latin1[2] = 1, long_latin1[3] = 0;
        memset(long_latin1 + 4, 'x', 256);
        assert_rejects(long_latin1, sizeof(long_latin1), 0, -EINVAL, "256 characters");

        /* 256 two-byte characters: 512 bytes */
        uint8_t long_utf8[4 + 512];
        long_utf8[0] = 131, long_utf8[1] = 118, long_utf8[2] = 2, long_utf8[3] = 0;
        for (size_t i = 0; i < 256; i++)
                long_utf8[4 + 2 * i] = 0xc3, long_utf8[5 + 2 * i] = 0xa9;
        assert_rejects(long_utf8, sizeof(long_utf8), 0, -EINVAL, "256 characters");
        long_utf8[2] = 1, long_utf8[3] = 254;   /* 255 characters: fine */
        assert_true(nk_is_atom(decode_ok(long_utf8, sizeof(long_utf8) - 2)));
}

static void safe_decoding_makes_no_atoms(void **state)
{
        static const uint8_t fresh[] = { 131, 100, 0, 9, 'n', 'e', 'v', 'e', 'r', '_', 'm', 'a', 'd' };
        static const uint8_t fresh_pid[] = {
                131, 88, 100, 0, 9, 'n', 'e', 'v', 'e', 'r', '_', 'm', 'a', 'd', 0, 0, 0, 1, 0, 0,
                0, 0, 0, 0, 0, 0,
        };
        size_t before = nk_atom_count();
        ERL_NIF_TERM t;

        assert_rejects(fresh, sizeof(fresh), NK_ETF_SAFE, -EINVAL, "does not exist");
        assert_rejects(fresh_pid, sizeof(fresh_pid), NK_ETF_SAFE, -EINVAL, "does not exist");
        assert_int_equal(nk_atom_count(), before);
        /* existing atoms, Latin-1 ones included, are found */
        assert_int_equal(decode(atom_abc, sizeof(atom_abc), NK_ETF_SAFE, &t, NULL) , 0);
        assert_true(nk_is_atom(nk_atom_latin1("h\xf6", 2)));
        assert_int_equal(decode(atom_latin1, sizeof(atom_latin1), NK_ETF_SAFE, &t, NULL), 0);
        assert_int_equal(t, nk_atom_latin1("h\xf6", 2));
        assert_int_equal(decode(fresh, sizeof(fresh), 0, &t, NULL), 0);
        assert_int_equal(decode(fresh, sizeof(fresh), NK_ETF_SAFE, &t, NULL), 0);
}

static void duplicate_map_keys(void **state)
{
        static const uint8_t dup[] = { 131, 116, 0, 0, 0, 2, 97, 1, 97, 1, 97, 1, 97, 2 };
        assert_rejects(dup, sizeof(dup), 0, -EINVAL, "duplicate");
        /* the same in a map that BEAM would send in hash order */
        uint8_t big[6 + 40 * 4];
        big[0] = 131, big[1] = 116, big[2] = 0, big[3] = 0, big[4] = 0, big[5] = 40;
        for (size_t i = 0; i < 40; i++) {
                big[6 + 4 * i] = 97;
                big[7 + 4 * i] = (uint8_t) (i == 39 ? 0 : i);
                big[8 + 4 * i] = 97;
                big[9 + 4 * i] = 0;
        }
        assert_rejects(big, sizeof(big), 0, -EINVAL, "duplicate");
}

static void encode_choices(void **state)
{
        /* 2^40 made in the host: SMALL_BIG_EXT, as BEAM sends it */
        static const uint8_t two_40[] = { 131, 110, 6, 0, 0, 0, 0, 0, 0, 1 };
        assert_encodes_to(nk_make_int64(&env, INT64_C(1) << 40), two_40, sizeof(two_40));
        static const uint8_t min64[] = { 131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128 };
        assert_encodes_to(nk_make_int64(&env, INT64_MIN), min64, sizeof(min64));

        /* a host-made map of more than 32 keys has no arrival order: sorted */
        ERL_NIF_TERM keys[33], vals[33];
        for (int i = 0; i < 33; i++)
                keys[i] = vals[i] = nk_make_small(33 - i);
        ERL_NIF_TERM m = nk_make_map(&env, 33, keys, vals, true);
        struct nk_buf out = { 0 };
        assert_int_equal(nk_etf_encode(m, &out), 0);
        assert_int_equal(out.data[1], 116);
        for (int i = 0; i < 33; i++)
                assert_int_equal(out.data[7 + 4 * i], i + 1);
        nk_buf_free(&out);

        /* 65535 bytes is still a STRING_EXT; 65536 is a LIST_EXT */
        ERL_NIF_TERM l = NK_NIL;
        for (int i = 0; i < 65535; i++)
                l = nk_make_cons(&env, nk_make_small('x'), l);
        assert_int_equal(nk_etf_encode(l, &out), 0);
        assert_int_equal(out.len, 1 + 3 + 65535);
        assert_int_equal(out.data[1], 107);
        nk_buf_free(&out);
        l = nk_make_cons(&env, nk_make_small('x'), l);
        assert_int_equal(nk_etf_encode(l, &out), 0);
        assert_int_equal(out.len, 1 + 5 + 2 * 65536 + 1);
        assert_int_equal(out.data[1], 108);
        nk_buf_free(&out);

        /* not terms: nothing is appended */
        out.len = 0;
        assert_int_equal(nk_etf_encode(NK_EXCEPTION, &out), -EINVAL);
        assert_int_equal(out.len, 0);
        nk_buf_free(&out);
}

static void unknown_resource_handle(void **state)
{
        /* #Ref<nifkit_resource@nohost> with handle 12345 that nobody made */
        static const uint8_t res[] = {
                131, 90, 0, 3, 100, 0, 22, 'n', 'i', 'f', 'k', 'i', 't', '_', 'r', 'e', 's', 'o',
                'u', 'r', 'c', 'e', '@', 'n', 'o', 'h', 'o', 's', 't', 0, 0, 0, 0,
                0, 0, 48, 57, 0, 0, 0, 0, 0, 0, 0, 0,
        };
        assert_rejects(res, sizeof(res), 0, -EINVAL, "unknown resource handle 12345");
        /* two words: an ordinary reference of that node */
        static const uint8_t two[] = {
                131, 90, 0, 2, 100, 0, 22, 'n', 'i', 'f', 'k', 'i', 't', '_', 'r', 'e', 's', 'o',
                'u', 'r', 'c', 'e', '@', 'n', 'o', 'h', 'o', 's', 't', 0, 0, 0, 0,
                0, 0, 48, 57, 0, 0, 0, 0,
        };
        assert_true(nk_is_kind(decode_ok(two, sizeof(two)), NK_REF));
}

static void resources_cross_as_handles(void **state)
{
        nk_load_begin("test_etf");
        ErlNifResourceType *type = enif_open_resource_type(NULL, NULL, "etf_res", NULL,
                                                           ERL_NIF_RT_CREATE, NULL);
        nk_load_end(true);
        assert_non_null(type);
        void *obj = enif_alloc_resource(type, 16);
        assert_non_null(obj);
        struct nk_resource *res = nk_resource_of_data(obj);
        ERL_NIF_TERM t = nk_make_resource_term(&env, res);
        enif_release_resource(obj);

        struct nk_buf out = { 0 };
        assert_int_equal(nk_etf_encode(t, &out), 0);
        uint64_t h = nk_resource_handle(res);
        assert_int_not_equal(h, 0);
        uint8_t expect[] = {
                131, 90, 0, 3, 100, 0, 22, 'n', 'i', 'f', 'k', 'i', 't', '_', 'r', 'e', 's', 'o',
                'u', 'r', 'c', 'e', '@', 'n', 'o', 'h', 'o', 's', 't', 0, 0, 0, 0,
                (uint8_t) (h >> 24), (uint8_t) (h >> 16), (uint8_t) (h >> 8), (uint8_t) h,
                (uint8_t) (h >> 56), (uint8_t) (h >> 48), (uint8_t) (h >> 40), (uint8_t) (h >> 32),
                0, 0, 0, 0,
        };
        assert_int_equal(out.len, sizeof(expect));
        assert_memory_equal(out.data, expect, sizeof(expect));

        ERL_NIF_TERM back = decode_ok(out.data, out.len);
        assert_true(nk_is_kind(back, NK_RESOURCE));
        assert_ptr_equal(((struct nk_resource_term *) nk_box_of(back))->res, res);
        nk_buf_free(&out);
        nk_resource_handle_drop(h);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(beam_bytes_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(decoded_values, setup, teardown),
                cmocka_unit_test_setup_teardown(older_forms, setup, teardown),
                cmocka_unit_test_setup_teardown(trailing_bytes_are_not_consumed, setup, teardown),
                cmocka_unit_test_setup_teardown(every_truncation_fails, setup, teardown),
                cmocka_unit_test_setup_teardown(bad_tags_and_headers, setup, teardown),
                cmocka_unit_test_setup_teardown(lengths_beyond_the_buffer, setup, teardown),
                cmocka_unit_test_setup_teardown(depth_has_no_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(atoms_checked, setup, teardown),
                cmocka_unit_test_setup_teardown(safe_decoding_makes_no_atoms, setup, teardown),
                cmocka_unit_test_setup_teardown(duplicate_map_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(encode_choices, setup, teardown),
                cmocka_unit_test_setup_teardown(unknown_resource_handle, setup, teardown),
                cmocka_unit_test_setup_teardown(resources_cross_as_handles, setup, teardown),
        };
        return cmocka_run_group_tests(tests, group_setup, NULL);
}
