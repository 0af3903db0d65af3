/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Term order for leaves (common/term_order.c), which the host's
 * enif_compare and the tool's printer share. Each expectation was checked
 * against erl (OTP 25) with the same values; the walkers' own tests
 * (test_order.c, test_print.c) cover containers.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "term_order.h"

#define INT(neg, ...) ((struct nk_order_int) { .negative = neg, .mag = (const uint8_t[]) { __VA_ARGS__ }, \
                                               .len = sizeof((const uint8_t[]) { __VA_ARGS__ }) })

static void test_ints(void **state)
{
        struct nk_order_int zero = { .negative = false, .len = 0 }, negzero = { .negative = true, .len = 0 };
        struct nk_order_int one = INT(false, 1), one_padded = INT(false, 1, 0, 0), minus_one = INT(true, 1);
        struct nk_order_int big = INT(false, 0, 0, 0, 0, 0, 0, 0, 0, 1), minus_big = INT(true, 0, 0, 0, 0, 0, 0, 0, 0, 1);
        struct nk_order_int two_five_six = INT(false, 0, 1), two_five_five = INT(false, 255);

        assert_int_equal(nk_order_ints(&zero, &negzero), 0);
        assert_int_equal(nk_order_ints(&one, &one_padded), 0);
        assert_int_equal(nk_order_ints(&minus_one, &zero), -1);
        assert_int_equal(nk_order_ints(&negzero, &minus_one), 1);
        assert_int_equal(nk_order_ints(&big, &one), 1);
        assert_int_equal(nk_order_ints(&minus_big, &minus_one), -1);
        assert_int_equal(nk_order_ints(&two_five_five, &two_five_six), -1);
        assert_int_equal(nk_order_ints(&two_five_six, &two_five_five), 1);
}

static void test_int_double(void **state)
{
        /* 1 < 1.5, 2 > 1.5, 1 == 1.0, -1 > -1.5, 0 == -0.0 */
        assert_int_equal(nk_order_int64_double(1, 1.5), -1);
        assert_int_equal(nk_order_int64_double(2, 1.5), 1);
        assert_int_equal(nk_order_int64_double(1, 1.0), 0);
        assert_int_equal(nk_order_int64_double(-1, -1.5), 1);
        assert_int_equal(nk_order_int64_double(0, -0.0), 0);
        /* 9007199254740993 (2^53 + 1) > 9007199254740992.0: no rounding */
        assert_int_equal(nk_order_int64_double(9007199254740993LL, 9007199254740992.0), 1);
        assert_int_equal(nk_order_int64_double(INT64_MAX, 9223372036854775808.0), -1);
        assert_int_equal(nk_order_int64_double(INT64_MIN, -9223372036854775808.0), 0);

        /* 1 bsl 64 against 1.8446744073709552e19 (= 2^64) and its neighbours */
        struct nk_order_int two64 = INT(false, 0, 0, 0, 0, 0, 0, 0, 0, 1);
        struct nk_order_int two64_plus1 = INT(false, 1, 0, 0, 0, 0, 0, 0, 0, 1);
        struct nk_order_int minus_two64 = INT(true, 0, 0, 0, 0, 0, 0, 0, 0, 1);
        assert_int_equal(nk_order_int_double(&two64, ldexp(1, 64)), 0);
        assert_int_equal(nk_order_int_double(&two64_plus1, ldexp(1, 64)), 1);
        assert_int_equal(nk_order_int_double(&two64, nextafter(ldexp(1, 64), INFINITY)), -1);
        assert_int_equal(nk_order_int_double(&minus_two64, -ldexp(1, 64)), 0);
        assert_int_equal(nk_order_int_double(&minus_two64, -1.0), -1);
        assert_int_equal(nk_order_int_double(&two64, 0.5), 1);
        struct nk_order_int zero = { .len = 0 };
        assert_int_equal(nk_order_int_double(&zero, 0.25), -1);
        assert_int_equal(nk_order_int_double(&zero, -0.25), 1);
        assert_int_equal(nk_order_int_double(&zero, -0.0), 0);

        assert_int_equal(nk_order_doubles(0.0, -0.0), 0);
        assert_int_equal(nk_order_doubles(-1.0, 1.0), -1);
}

static void test_atoms(void **state)
{
        /* 'é' written as Latin-1 (ATOM_EXT) and as UTF-8 are one atom */
        assert_int_equal(nk_order_atom_texts((const uint8_t *) "\xe9", 1, true, (const uint8_t *) "\xc3\xa9", 2,
                                             false), 0);
        /* z < é < € by code point, whichever encoding */
        assert_int_equal(nk_order_atom_texts((const uint8_t *) "z", 1, false, (const uint8_t *) "\xe9", 1, true), -1);
        assert_int_equal(nk_order_atom_texts((const uint8_t *) "\xe9", 1, true, (const uint8_t *) "\xe2\x82\xac", 3,
                                             false), -1);
        /* a prefix comes first */
        assert_int_equal(nk_order_atom_texts((const uint8_t *) "ab", 2, false, (const uint8_t *) "abc", 3, false), -1);
        assert_int_equal(nk_order_atom_texts((const uint8_t *) "abc", 3, true, (const uint8_t *) "ab", 2, false), 1);
}

static struct nk_order_ident ident(const char *node, uint32_t creation, uint64_t num)
{
        return (struct nk_order_ident) { .node = (const uint8_t *) node, .node_len = strlen(node),
                                         .creation = creation, .num = num };
}

static void test_idents(void **state)
{
        /* Ports and references: node first (a port of a@h numbered 2 comes
         * before one of b@h numbered 1); pids: numbers first. */
        struct nk_order_ident pa = ident("a@h", 1, 2), pb = ident("b@h", 1, 1);
        assert_int_equal(nk_order_ports(&pa, &pb), -1);
        assert_int_equal(nk_order_pids(&pa, &pb), 1);
        struct nk_order_ident qa = ident("a@h", 1, 1), qb = ident("b@h", 1, 1);
        assert_int_equal(nk_order_pids(&qa, &qb), -1);

        struct nk_order_ident ra = ident("a@h", 1, 0), rb = ident("b@h", 1, 0);
        ra.ids[0] = 2, ra.nids = 3;
        rb.ids[0] = 1, rb.nids = 3;
        assert_int_equal(nk_order_refs(&ra, &rb), -1);
        /* then creation */
        struct nk_order_ident c1 = ident("a@h", 1, 0), c2 = ident("a@h", 2, 0);
        c1.ids[0] = 1, c1.nids = 1;
        c2.nids = 1;
        assert_int_equal(nk_order_refs(&c1, &c2), -1);
        /* trailing zero words tell nothing: [7,0] == [7]; [5] < [1,1] */
        struct nk_order_ident x = ident("a@h", 1, 0), y = ident("a@h", 1, 0);
        x.ids[0] = 7, x.nids = 2;
        y.ids[0] = 7, y.nids = 1;
        assert_int_equal(nk_order_refs(&x, &y), 0);
        x.ids[0] = 5, x.nids = 1;
        y.ids[0] = 1, y.ids[1] = 1, y.nids = 2;
        assert_int_equal(nk_order_refs(&x, &y), -1);
}

static void test_funs(void **state)
{
        struct nk_order_fun local = { .module = (const uint8_t *) "m", .module_len = 1, .old_index = 1,
                                      .old_uniq = 5, .num_free = 1 };
        struct nk_order_fun other = local, exp = { .is_export = true, .module = (const uint8_t *) "a",
                                                   .module_len = 1, .function = (const uint8_t *) "f",
                                                   .function_len = 1, .arity = 2 };
        assert_int_equal(nk_order_fun_heads(&local, &other), 0);
        other.old_uniq = 4;
        assert_int_equal(nk_order_fun_heads(&local, &other), 1);
        other = local;
        other.num_free = 2;
        assert_int_equal(nk_order_fun_heads(&local, &other), -1);
        /* a local fun of module m before an export fun of module a */
        assert_int_equal(nk_order_fun_heads(&local, &exp), -1);
        struct nk_order_fun exp2 = exp;
        exp2.arity = 1;
        assert_int_equal(nk_order_fun_heads(&exp, &exp2), 1);
        exp2 = exp;
        exp2.function = (const uint8_t *) "g";
        assert_int_equal(nk_order_fun_heads(&exp, &exp2), -1);
}

static void test_bits(void **state)
{
        const uint8_t a[] = { 0xff, 0x80 }, b[] = { 0xff, 0xc0 };
        /* <<255,1:1>> == <<255,1:1>> whatever the unused bits hold */
        assert_int_equal(nk_order_bits(a, 9, b, 9), 0);
        /* <<255,1:1>> < <<255,3:2>> (a prefix) */
        assert_int_equal(nk_order_bits(a, 9, b, 10), -1);
        /* <<255,2:2>> < <<255,3:2>> */
        assert_int_equal(nk_order_bits(a, 10, b, 10), -1);
        assert_int_equal(nk_order_bits(a, 0, b, 0), 0);
        assert_int_equal(nk_order_bits((const uint8_t *) "b", 8, (const uint8_t *) "ab", 16), 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ints),  cmocka_unit_test(test_int_double), cmocka_unit_test(test_atoms),
                cmocka_unit_test(test_idents), cmocka_unit_test(test_funs),      cmocka_unit_test(test_bits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
