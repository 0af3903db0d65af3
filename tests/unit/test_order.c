/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Term order, identity, map key order and hashing (hosts/order.c).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "etf.h"
#include "term.h"

static ErlNifEnv env;

static int setup(void **state)
{
        assert_int_equal(nk_atoms_init(), 0);
        nk_env_init(&env);
        return 0;
}

static int teardown(void **state)
{
        nk_env_destroy(&env);
        return 0;
}

static int sgn(int c)
{
        return c < 0 ? -1 : c > 0;
}

/* ---- builders ------------------------------------------------------------ */

static ERL_NIF_TERM atom(const char *s)
{
        ERL_NIF_TERM t = nk_atom_utf8(s, strlen(s));
        assert_true(t != NK_NONE);
        return t;
}

static ERL_NIF_TERM flt(double d)
{
        return nk_make_float(&env, d);
}

static ERL_NIF_TERM i64(int64_t v)
{
        return nk_make_int64(&env, v);
}

/* A bignum 2^shift (+ add), or its negation. */
static ERL_NIF_TERM pow2(unsigned shift, bool negative, uint8_t add)
{
        uint8_t mag[160] = { 0 };
        mag[shift / 8] = (uint8_t) (1u << (shift % 8));
        mag[0] = (uint8_t) (mag[0] + add);
        return nk_make_big(&env, negative, mag, shift / 8 + 1);
}

static ERL_NIF_TERM tuple(size_t n, ...)
{
        ERL_NIF_TERM e[16];
        va_list ap;
        va_start(ap, n);
        for (size_t i = 0; i < n; i++)
                e[i] = va_arg(ap, ERL_NIF_TERM);
        va_end(ap);
        return nk_make_tuple_n(&env, n, e);
}

/* A proper list of n terms, or improper with tail. */
static ERL_NIF_TERM list_tail(ERL_NIF_TERM tail, size_t n, ...)
{
        ERL_NIF_TERM e[16];
        va_list ap;
        va_start(ap, n);
        for (size_t i = 0; i < n; i++)
                e[i] = va_arg(ap, ERL_NIF_TERM);
        va_end(ap);
        ERL_NIF_TERM l = tail;
        while (n-- > 0)
                l = nk_make_cons(&env, e[n], l);
        return l;
}
#define list(...) list_tail(NK_NIL, __VA_ARGS__)

static ERL_NIF_TERM bin(const char *data, size_t size)
{
        return nk_make_binary_copy(&env, data, size);
}

/* A bitstring of size bytes whose last byte holds bits bits. */
static ERL_NIF_TERM bits(const uint8_t *data, size_t size, uint8_t nbits)
{
        struct nk_binobj *obj = nk_binobj_new(size);
        assert_non_null(obj);
        memcpy(obj->data, data, size);
        ERL_NIF_TERM t = nk_make_binary_of(&env, obj, 0, size, nbits);
        nk_binobj_release(obj);
        return t;
}

static ERL_NIF_TERM map2(ERL_NIF_TERM k1, ERL_NIF_TERM v1, ERL_NIF_TERM k2, ERL_NIF_TERM v2, size_t n)
{
        ERL_NIF_TERM k[2] = { k1, k2 }, v[2] = { v1, v2 };
        ERL_NIF_TERM m = nk_make_map(&env, n, k, v, false);
        assert_true(m != NK_NONE);
        return m;
}

static ERL_NIF_TERM ref(const char *node, uint32_t creation, unsigned n, uint32_t id0, uint32_t id1, uint32_t id2)
{
        struct nk_ref *r = nk_env_alloc(&env, sizeof(*r));
        assert_non_null(r);
        memset(r, 0, sizeof(*r));
        r->h.kind = NK_REF;
        r->h.n = n;
        r->node = atom(node);
        r->creation = creation;
        r->ids[0] = id0;
        r->ids[1] = id1;
        r->ids[2] = id2;
        return nk_box_term(r);
}

static ERL_NIF_TERM pid(const char *node, uint32_t id, uint32_t serial, uint32_t creation)
{
        struct nk_pid_data p = { nk_atom_index(atom(node)), id, serial, creation };
        ERL_NIF_TERM t = nk_pid_intern(&p);
        assert_true(t != NK_NONE);
        return t;
}

static ERL_NIF_TERM extpid(const char *node, uint32_t id, uint32_t serial, uint32_t creation)
{
        struct nk_extpid *p = nk_env_alloc(&env, sizeof(*p));
        assert_non_null(p);
        memset(p, 0, sizeof(*p));
        p->h.kind = NK_EXTPID;
        p->node = atom(node);
        p->id = (uint64_t) serial << 32 | id;
        p->creation = creation;
        return nk_box_term(p);
}

static ERL_NIF_TERM port(const char *node, uint64_t id, uint32_t creation)
{
        struct nk_port_data p = { nk_atom_index(atom(node)), creation, id };
        ERL_NIF_TERM t = nk_port_intern(&p);
        assert_true(t != NK_NONE);
        return t;
}

static ERL_NIF_TERM fun_bytes(const uint8_t *etf, size_t n)
{
        struct nk_fun *f = nk_env_alloc(&env, sizeof(*f) + n);
        assert_non_null(f);
        f->h.kind = NK_FUN;
        f->h.n = (uint32_t) n;
        memcpy(f->etf, etf, n);
        return nk_box_term(f);
}

/* term_to_binary(fun lists:map/2) and (fun lists:seq/3), without the
 * version byte. */
static const uint8_t export_map2[] = { 113, 100, 0, 5, 'l', 'i', 's', 't', 's', 100, 0, 3,
                                       'm', 'a', 'p', 97, 2 };
static const uint8_t export_seq3[] = { 113, 100, 0, 5, 'l', 'i', 's', 't', 's', 100, 0, 3,
                                       's', 'e', 'q', 97, 3 };

static ERL_NIF_TERM decode_hex(const char *hex)
{
        size_t n = strlen(hex) / 2;
        uint8_t *buf = malloc(n);
        assert_non_null(buf);
        for (size_t i = 0; i < n; i++) {
                unsigned x;
                assert_int_equal(sscanf(hex + 2 * i, "%2x", &x), 1);
                buf[i] = (uint8_t) x;
        }
        ERL_NIF_TERM t;
        size_t used;
        struct nk_etf_error err;
        int r = nk_etf_decode(&env, buf, n, 0, &t, &used, &err);
        free(buf);
        if (r < 0)
                fail_msg("decoding %s: %s at %zu", hex, err.msg, err.offset);
        assert_int_equal(used, n);
        return t;
}

/* ---- order across and within types ---------------------------------------- */

static void check_ascending(const ERL_NIF_TERM *t, size_t n)
{
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++) {
                        int want = i < j ? -1 : i > j;
                        if (sgn(nk_compare(t[i], t[j])) != want)
                                fail_msg("compare(#%zu, #%zu) = %d, want %d", i, j,
                                         nk_compare(t[i], t[j]), want);
                }
}

static void term_order_across_types(void **state)
{
        uint8_t one_bit[] = { 0x80 }, zero_bit[] = { 0x00 };
        ERL_NIF_TERM t[] = {
                /* numbers */
                pow2(100, true, 0), flt(-1.5), i64(-1), i64(0), flt(0.5), i64(1), flt(1.5),
                pow2(64, false, 0), flt(1e300),
                /* atoms, by UTF-8 bytes */
                atom(""), atom("a"), atom("ab"), atom("b"), atom("\xc3\xa4"),
                /* references: node, then numbers from the highest word */
                ref("a@h", 1, 3, 9, 0, 0), ref("a@h", 1, 3, 1, 1, 0), ref("a@h", 2, 3, 0, 0, 0),
                ref("b@h", 0, 3, 0, 0, 0),
                /* local funs before export funs */
                fun_bytes(export_map2, sizeof(export_map2)), fun_bytes(export_seq3, sizeof(export_seq3)),
                /* ports: node, then number */
                port("a@h", 9, 1), port("b@h", 1, 1), port("b@h", 2, 1),
                /* pids: serial and number before the node */
                pid("z@h", 1, 0, 1), extpid("a@h", 2, 0, 1), pid("a@h", 3, 0, 1), extpid("a@h", 0, 1, 1),
                /* tuples by arity first */
                tuple(0), tuple(1, i64(9)), tuple(2, i64(1), i64(2)), tuple(2, i64(2), i64(1)),
                /* maps by size, keys, values */
                map2(atom("a"), i64(1), NK_NONE, NK_NONE, 0), map2(atom("a"), i64(1), NK_NONE, NK_NONE, 1),
                map2(atom("a"), i64(2), NK_NONE, NK_NONE, 1), map2(atom("b"), i64(0), NK_NONE, NK_NONE, 1),
                /* [] before any cons; a number tail before [] */
                NK_NIL, list_tail(i64(2), 1, i64(1)), list(1, i64(1)), list(2, i64(1), i64(2)), list(1, i64(2)),
                /* bitstrings: bits in order, then length */
                bin(NULL, 0), bits(zero_bit, 1, 1), bin("\0", 1), bits(one_bit, 1, 1), bin("\x80", 1),
                bin("\x80\x00", 2),
        };
        check_ascending(t, sizeof(t) / sizeof(t[0]));
}

static void numbers_exactly(void **state)
{
        ERL_NIF_TERM big60 = pow2(60, false, 0);         /* NK_SMALL_MAX + 1 */
        ERL_NIF_TERM max = i64(NK_SMALL_MAX), min = i64(NK_SMALL_MIN);
        ERL_NIF_TERM below_min = i64(NK_SMALL_MIN - 1);

        assert_true(nk_is_small(max) && nk_is_small(min));
        assert_true(nk_is_kind(big60, NK_BIG) && nk_is_kind(below_min, NK_BIG));
        assert_true(nk_compare(max, big60) < 0);
        assert_true(nk_compare(below_min, min) < 0);
        assert_int_equal(nk_compare(big60, flt(ldexp(1, 60))), 0);
        assert_int_equal(nk_compare(min, flt(-ldexp(1, 60))), 0);
        assert_true(nk_compare(max, flt(ldexp(1, 60))) < 0);
        assert_true(nk_compare(pow2(60, false, 1), flt(ldexp(1, 60))) > 0);

        /* 2^53 + 1 is not a double: a lossy conversion would say equal. */
        assert_true(nk_compare(i64((INT64_C(1) << 53) + 1), flt(ldexp(1, 53))) > 0);
        assert_true(nk_compare(flt(ldexp(1, 53)), i64((INT64_C(1) << 53) + 1)) < 0);
        assert_true(nk_compare(pow2(64, false, 1), flt(ldexp(1, 64))) > 0);
        assert_int_equal(nk_compare(pow2(64, false, 0), flt(ldexp(1, 64))), 0);
        assert_true(nk_compare(pow2(64, true, 1), flt(-ldexp(1, 64))) < 0);
        assert_true(nk_compare(pow2(1000, false, 0), flt(1.7976931348623157e308)) < 0);
        assert_true(nk_compare(pow2(1024, false, 0), flt(1.7976931348623157e308)) > 0);
        assert_true(nk_compare(pow2(1024, true, 0), flt(-1.7976931348623157e308)) < 0);
        assert_true(nk_compare(pow2(100, true, 0), flt(1.0)) < 0);
        assert_true(nk_compare(i64(3), flt(2.9999999999999996)) > 0);
        assert_true(nk_compare(i64(-3), flt(-2.9999999999999996)) < 0);
        assert_int_equal(nk_compare(i64(1), flt(1.0)), 0);
        assert_int_equal(nk_compare(i64(0), flt(-0.0)), 0);
        assert_int_equal(nk_compare(flt(0.0), flt(-0.0)), 0);
        assert_true(nk_compare(pow2(200, false, 0), pow2(100, false, 0)) > 0);
        assert_true(nk_compare(pow2(200, true, 0), pow2(100, true, 0)) < 0);
        assert_true(nk_compare(pow2(100, false, 1), pow2(100, false, 0)) > 0);

        /* Inside containers numbers still compare by value. */
        assert_int_equal(nk_compare(tuple(2, i64(1), flt(2.0)), tuple(2, flt(1.0), i64(2))), 0);
        assert_int_equal(nk_compare(list(2, i64(1), flt(2.0)), list(2, flt(1.0), i64(2))), 0);
}

static void identity(void **state)
{
        assert_true(nk_identical(i64(5), i64(5)));
        assert_false(nk_identical(i64(1), flt(1.0)));
        assert_true(nk_identical(flt(0.0), flt(-0.0)));          /* OTP 25 */
        assert_true(nk_identical(pow2(90, true, 3), pow2(90, true, 3)));
        assert_false(nk_identical(pow2(90, true, 3), pow2(90, false, 3)));
        assert_true(nk_identical(tuple(2, atom("a"), bin("xy", 2)), tuple(2, atom("a"), bin("xy", 2))));
        assert_false(nk_identical(tuple(2, atom("a"), flt(2.0)), tuple(2, atom("a"), i64(2))));
        assert_true(nk_identical(list_tail(atom("t"), 2, i64(1), i64(2)),
                                 list_tail(atom("t"), 2, i64(1), i64(2))));
        assert_false(nk_identical(list(1, i64(1)), list_tail(atom("t"), 1, i64(1))));
        /* References ignore trailing zero words. */
        assert_true(nk_identical(ref("a@h", 1, 3, 7, 8, 0), ref("a@h", 1, 2, 7, 8, 0)));
        assert_false(nk_identical(ref("a@h", 1, 3, 7, 8, 0), ref("a@h", 2, 3, 7, 8, 0)));
        assert_true(nk_identical(extpid("a@h", 4, 5, 6), extpid("a@h", 4, 5, 6)));
        assert_false(nk_identical(extpid("a@h", 4, 5, 6), extpid("b@h", 4, 5, 6)));
        assert_true(nk_identical(fun_bytes(export_map2, sizeof(export_map2)),
                                 fun_bytes(export_map2, sizeof(export_map2))));
        assert_false(nk_identical(map2(i64(1), i64(1), NK_NONE, NK_NONE, 1),
                                  map2(flt(1.0), i64(1), NK_NONE, NK_NONE, 1)));
        uint8_t a[] = { 0xa0 }, b[] = { 0xbf };
        assert_true(nk_identical(bits(a, 1, 3), bits(b, 1, 3)));  /* only 3 bits count */
        assert_false(nk_identical(bits(a, 1, 3), bits(a, 1, 4)));
}

static void map_key_order(void **state)
{
        /* Every integer before every float, each group by value (BEAM:
         * maps:keys(#{1.0 => a, 2 => b, 1 => c, 0.5 => d, 3 => e}) is
         * [1,2,3,0.5,1.0]). */
        ERL_NIF_TERM t[] = {
                pow2(70, true, 0), i64(-1), i64(1), i64(2), pow2(70, false, 0),
                flt(-1e300), flt(-1.0), flt(0.5), flt(1.0), atom("a"), NK_NIL,
        };
        size_t n = sizeof(t) / sizeof(t[0]);
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++)
                        assert_int_equal(sgn(nk_map_key_cmp(t[i], t[j])), i < j ? -1 : i > j);
        assert_int_equal(nk_map_key_cmp(flt(0.0), flt(-0.0)), 0);
        assert_true(nk_map_key_cmp(tuple(1, i64(2)), tuple(1, flt(1.0))) < 0);

        /* nk_make_map sorts by it, and a map keyed 1 sorts below one keyed
         * 1.0 although 1 == 1.0. */
        ERL_NIF_TERM m = map2(flt(1.0), atom("x"), i64(5), atom("y"), 2);
        const struct nk_map *mp = (const struct nk_map *) nk_box_of(m);
        assert_true(mp->keys[0] == i64(5));
        assert_true(nk_compare(map2(i64(1), i64(0), NK_NONE, NK_NONE, 1),
                               map2(flt(1.0), i64(0), NK_NONE, NK_NONE, 1)) < 0);
        /* Values compare by value once keys are equal. */
        assert_int_equal(nk_compare(map2(atom("k"), i64(1), NK_NONE, NK_NONE, 1),
                                    map2(atom("k"), flt(1.0), NK_NONE, NK_NONE, 1)), 0);
}

/* ---- deep and long terms ----------------------------------------------------- */

static void long_and_deep(void **state)
{
        ErlNifEnv big;
        nk_env_init(&big);
        const size_t len = 1000000, depth = 100000;
        ERL_NIF_TERM l1 = NK_NIL, l2 = NK_NIL;
        for (size_t i = len; i-- > 0;) {
                l1 = nk_make_cons(&big, nk_make_small((int64_t) (i % 1000)), l1);
                l2 = nk_make_cons(&big, nk_make_small((int64_t) (i % 1000)), l2);
        }
        assert_int_equal(nk_compare(l1, l2), 0);
        assert_true(nk_identical(l1, l2));
        assert_int_equal(nk_phash2(l1), nk_phash2(l2));
        assert_true(nk_internal_hash(l1, 1) == nk_internal_hash(l2, 1));
        ERL_NIF_TERM l3 = nk_make_cons(&big, nk_make_small(0), l1);
        assert_true(nk_compare(l1, l3) > 0);    /* [0,1,...] vs [0,0,1,...] */

        /* 100,000 levels of {[...]} */
        ERL_NIF_TERM d1 = atom("leaf"), d2 = atom("leaf"), d3 = atom("leaf2");
        for (size_t i = 0; i < depth; i++) {
                d1 = nk_make_tuple_n(&big, 1, &d1);
                d1 = nk_make_cons(&big, d1, NK_NIL);
                d2 = nk_make_tuple_n(&big, 1, &d2);
                d2 = nk_make_cons(&big, d2, NK_NIL);
                d3 = nk_make_tuple_n(&big, 1, &d3);
                d3 = nk_make_cons(&big, d3, NK_NIL);
        }
        assert_int_equal(nk_compare(d1, d2), 0);
        assert_true(nk_compare(d1, d3) < 0);
        assert_true(nk_identical(d1, d2));
        assert_int_equal(nk_phash2(d1), nk_phash2(d2));
        assert_true(nk_phash2(d1) != nk_phash2(d3));
        assert_true(nk_internal_hash(d1, 7) == nk_internal_hash(d2, 7));

        /* 100,000 nested maps */
        ERL_NIF_TERM m1 = NK_NIL, m2 = NK_NIL, k = atom("k");
        for (size_t i = 0; i < depth; i++) {
                m1 = nk_make_map(&big, 1, &k, &m1, false);
                m2 = nk_make_map(&big, 1, &k, &m2, false);
        }
        assert_int_equal(nk_compare(m1, m2), 0);
        assert_int_equal(nk_phash2(m1), nk_phash2(m2));
        nk_env_destroy(&big);
}

/* ---- phash2 ------------------------------------------------------------------- */

/*
 * Made by tests/compat/phash2_vectors.escript on OTP 25: for each
 * expression E, term_to_binary(E) and erlang:phash2(E, 1 bsl 32).
 */
static const struct vector {
        const char *expr;
        const char *etf_hex;
        uint32_t phash2;
} vectors[] = {
        { "0",
          "836100",
          3175731469u },
        { "1",
          "836101",
          539485162u },
        { "-1",
          "8362ffffffff",
          1117813597u },
        { "42",
          "83612a",
          701417368u },
        { "255",
          "8361ff",
          715823293u },
        { "256",
          "836200000100",
          3929335767u },
        { "-255",
          "8362ffffff01",
          661110369u },
        { "134217727",
          "836207ffffff",
          4273352567u },
        { "134217728",
          "836208000000",
          2562491755u },
        { "-134217728",
          "8362f8000000",
          874979335u },
        { "-134217729",
          "8362f7ffffff",
          1418916782u },
        { "1 bsl 31",
          "836e040000000080",
          2832818325u },
        { "(1 bsl 32) - 1",
          "836e0400ffffffff",
          2108319181u },
        { "1 bsl 32",
          "836e05000000000001",
          2108323275u },
        { "-(1 bsl 32)",
          "836e05010000000001",
          2586067094u },
        { "(1 bsl 59) - 1",
          "836e0800ffffffffffffff07",
          1638133000u },
        { "1 bsl 59",
          "836e08000000000000000008",
          2442888721u },
        { "-(1 bsl 59)",
          "836e08010000000000000008",
          2316875190u },
        { "(1 bsl 60) - 1",
          "836e0800ffffffffffffff0f",
          721980592u },
        { "1 bsl 60",
          "836e08000000000000000010",
          1373980788u },
        { "-(1 bsl 60)",
          "836e08010000000000000010",
          1301172511u },
        { "-(1 bsl 60) - 1",
          "836e08010100000000000010",
          1556022474u },
        { "(1 bsl 64) - 1",
          "836e0800ffffffffffffffff",
          321870806u },
        { "1 bsl 64",
          "836e0900000000000000000001",
          2519041713u },
        { "-(1 bsl 64)",
          "836e0901000000000000000001",
          2563594619u },
        { "1 bsl 100",
          "836e0d0000000000000000000000000010",
          528873168u },
        { "-(1 bsl 100) + 12345",
          "836e0d01c7cfffffffffffffffffffff0f",
          897730178u },
        { "(1 bsl 200) + 7",
          "836e1a000700000000000000000000000000000000000000000000000001",
          3923017828u },
        { "1 bsl 1000",
          "836e7e00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001",
          3369726496u },
        { "0.0",
          "83460000000000000000",
          423528920u },
        { "-0.0",
          "83468000000000000000",
          423528920u },
        { "1.0",
          "83463ff0000000000000",
          3029937084u },
        { "-1.0",
          "8346bff0000000000000",
          1043224280u },
        { "0.5",
          "83463fe0000000000000",
          4216441325u },
        { "3.141592653589793",
          "8346400921fb54442d18",
          764465415u },
        { "1.0e300",
          "83467e37e43c8800759c",
          387524106u },
        { "-2.5e-300",
          "834681bac9a7b3b7302f",
          4032507185u },
        { "4.9406564584124654e-324",
          "83460000000000000001",
          3731526247u },
        { "1.7976931348623157e308",
          "83467fefffffffffffff",
          4183028378u },
        { "a",
          "8364000161",
          97u },
        { "ok",
          "836400026f6b",
          1883u },
        { "'hello world'",
          "8364000b68656c6c6f20776f726c64",
          18131988u },
        { "''",
          "83640000",
          0u },
        { "'\303\204rger'",
          "83640005c472676572",
          13340098u },
        { "'\303\274n\303\257c\303\270d\303\251'",
          "83640007fc6eef63f864e9",
          64368681u },
        { "'\346\227\245\346\234\254'",
          "837706e697a5e69cac",
          251805804u },
        { "true",
          "8364000474727565",
          506293u },
        { "nonode@nohost",
          "8364000d6e6f6e6f6465406e6f686f7374",
          70306884u },
        { "[]",
          "836a",
          3468870702u },
        { "{}",
          "836800",
          221703996u },
        { "<<>>",
          "836d00000000",
          147926629u },
        { "#{}",
          "837400000000",
          844985373u },
        { "[1]",
          "836b000101",
          2768963718u },
        { "[1,2]",
          "836b00020102",
          3234232173u },
        { "[1,2,3]",
          "836b0003010203",
          4186538188u },
        { "[1,2,3,4]",
          "836b000401020304",
          1029573448u },
        { "[1,2,3,4,5]",
          "836b00050102030405",
          3824152778u },
        { "\"hello world\"",
          "836b000b68656c6c6f20776f726c64",
          2943300141u },
        { "[255,0,255]",
          "836b0003ff00ff",
          2387735098u },
        { "[256]",
          "836c0000000162000001006a",
          1684221134u },
        { "[-1]",
          "836c0000000162ffffffff6a",
          3800508964u },
        { "[a]",
          "836c00000001640001616a",
          1634476877u },
        { "[a|b]",
          "836c000000016400016164000162",
          2356411656u },
        { "[1|2]",
          "836c0000000161016102",
          3844221178u },
        { "[1,2|3]",
          "836c00000002610161026103",
          4169601349u },
        { "[[]]",
          "836c000000016a6a",
          499070068u },
        { "[[1],[2,3]]",
          "836c000000026b0001016b000202036a",
          844072643u },
        { "[1,300,2,3,4,5]",
          "836c000000066101620000012c61026103610461056a",
          3201987125u },
        { "[<<1>>, 1.0, x]",
          "836c000000036d0000000101463ff0000000000000640001786a",
          1943860848u },
        { "lists:seq(1, 100)",
          "836b00640102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f6061626364",
          1698018711u },
        { "{a}",
          "83680164000161",
          2853905094u },
        { "{1,2}",
          "83680261016102",
          4118095950u },
        { "{a,b,c}",
          "836803640001616400016264000163",
          113425870u },
        { "{{}}",
          "8368016800",
          2165044361u },
        { "{[], []}",
          "8368026a6a",
          694848342u },
        { "{ok, <<\"data\">>}",
          "8368026400026f6b6d0000000464617461",
          1220675149u },
        { "{1.0, -1, 1 bsl 70}",
          "836803463ff000000000000062ffffffff6e0900000000000000000040",
          2759635736u },
        { "<<0>>",
          "836d0000000100",
          2914887855u },
        { "<<1,2,3>>",
          "836d00000003010203",
          4167228639u },
        { "<<\"abcdefghijk\">>",
          "836d0000000b6162636465666768696a6b",
          96993671u },
        { "<<\"abcdefghijkl\">>",
          "836d0000000c6162636465666768696a6b6c",
          686521495u },
        { "<<\"abcdefghijklm\">>",
          "836d0000000d6162636465666768696a6b6c6d",
          3501102500u },
        { "list_to_binary(lists:seq(0, 255))",
          "836d00000100000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
          4163814291u },
        { "<<1:1>>",
          "834d000000010180",
          3994547237u },
        { "<<5:3>>",
          "834d0000000103a0",
          3354768668u },
        { "<<1,2,3:7>>",
          "834d0000000307010206",
          1914855714u },
        { "<<255,255:4>>",
          "834d0000000204fff0",
          1063457554u },
        { "#{a => 1}",
          "837400000001640001616101",
          1401795262u },
        { "#{1 => a}",
          "837400000001610164000161",
          2659091216u },
        { "#{a => 1, b => 2}",
          "837400000002640001616101640001626102",
          1982682855u },
        { "#{b => 2, a => 1}",
          "837400000002640001616101640001626102",
          1982682855u },
        { "#{1 => 1.0, 1.0 => 1}",
          "8374000000026101463ff0000000000000463ff00000000000006101",
          859632179u },
        { "#{[] => [], {} => {}}",
          "837400000002680068006a6a",
          727898247u },
        { "#{k => #{k => v}}",
          "8374000000016400016b74000000016400016b64000176",
          2985287585u },
        { "maps:from_list([{I, I * I} || I <- lists:seq(1, 40)])",
          "83740000002861216200000441610c619061176200000211611d6200000349611e6200000384612762000005f1611a62000002a4611f62000003c1610b61796125620000055961096151612062000004006122620000048461196200000271611c620000031061066124612662000005a4610d61a96128620000064061146200000190610f61e1610e61c4610261046107613161016101610861406103610961116200000121611662000001e4611562000001b9610461106124620000051061186200000240610a6164612362000004c9611b62000002d961136200000169610561196112620000014461106200000100",
          708446302u },
        { "{#{a => []}, [#{}]}",
          "8368027400000001640001616a6c0000000174000000006a",
          773434117u },
        { "fun lists:map/2",
          "83716400056c697374736400036d61706102",
          840287883u },
        { "fun erlang:phash2/2",
          "837164000665726c616e676400067068617368326102",
          4236273757u },
        { "binary_to_term(<<131,88,100,0,13,\"nonode@nohost\",0,0,0,5,0,0,0,0,0,0,0,0>>)",
          "835864000d6e6f6e6f6465406e6f686f7374000000050000000000000000",
          1742111205u },
        { "binary_to_term(<<131,88,100,0,3,\"a@b\",0,0,0,7,0,0,0,3,0,0,0,1>>)",
          "8358640003614062000000070000000300000001",
          591482922u },
        { "binary_to_term(<<131,88,100,0,3,\"a@b\",128,0,0,1,0,0,0,3,0,0,0,1>>)",
          "8358640003614062800000010000000300000001",
          211850158u },
        { "binary_to_term(<<131,120,100,0,3,\"a@b\",0,0,0,0,0,0,0,9,0,0,0,2>>)",
          "83596400036140620000000900000002",
          3256501370u },
        { "binary_to_term(<<131,120,100,0,3,\"a@b\",0,0,0,1,0,0,0,9,0,0,0,2>>)",
          "8378640003614062000000010000000900000002",
          3381782320u },
        { "binary_to_term(<<131,90,0,3,100,0,3,\"a@b\",0,0,0,1,0,0,0,17,0,0,0,2,0,0,0,3>>)",
          "835a000364000361406200000001000000110000000200000003",
          2556336649u },
        { "binary_to_term(<<131,90,0,3,100,0,13,\"nonode@nohost\",0,0,0,0,0,1,2,3,4,5,6,7,8,9,10,11>>)",
          "835a000364000d6e6f6e6f6465406e6f686f737400000000000102030405060708090a0b",
          2153817640u },
};

static void phash2_table(void **state)
{
        size_t bad = 0;
        for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
                ERL_NIF_TERM t = decode_hex(vectors[i].etf_hex);
                uint32_t h = nk_phash2(t);
                if (h != vectors[i].phash2) {
                        print_error("phash2(%s) = %u, BEAM says %u\n", vectors[i].expr, h,
                                    vectors[i].phash2);
                        bad++;
                }
        }
        assert_int_equal(bad, 0);
}

/* The same values for terms built without the decoder. */
static void phash2_built(void **state)
{
        assert_int_equal(nk_phash2(i64(0)), 3175731469u);
        assert_int_equal(nk_phash2(i64(-1)), 1117813597u);
        assert_int_equal(nk_phash2(atom("a")), 97u);
        assert_int_equal(nk_phash2(NK_NIL), 3468870702u);
        uint8_t mag[9] = { 0, 0, 0, 0, 0, 0, 0, 0, 1 };
        assert_int_equal(nk_phash2(nk_make_big(&env, false, mag, 9)), nk_phash2(pow2(64, false, 0)));
        assert_int_equal(nk_phash2(flt(0.0)), nk_phash2(flt(-0.0)));
        assert_int_equal(nk_phash2(flt(0.0)), 423528920u);
        uint8_t b5[] = { 5 << 5 };
        assert_true(nk_phash2(bits(b5, 1, 3)) != nk_phash2(bin("\xa0", 1)));
        ERL_NIF_TERM hw = NK_NIL;
        for (const char *p = "dlrow olleh"; *p; p++)
                hw = nk_make_cons(&env, nk_make_small(*p), hw);
        assert_int_equal(nk_phash2(hw), nk_phash2(decode_hex("836b000b68656c6c6f20776f726c64")));
        /* map pairs combine independently of order */
        ERL_NIF_TERM m1 = map2(atom("a"), i64(1), atom("b"), i64(2), 2);
        ERL_NIF_TERM m2 = map2(atom("b"), i64(2), atom("a"), i64(1), 2);
        assert_int_equal(nk_phash2(m1), nk_phash2(m2));
}

static void internal_hash(void **state)
{
        ERL_NIF_TERM a = tuple(3, atom("x"), list(2, i64(1), flt(0.0)), pow2(80, false, 0));
        ERL_NIF_TERM b = tuple(3, atom("x"), list(2, i64(1), flt(-0.0)), pow2(80, false, 0));
        assert_true(nk_identical(a, b));
        assert_true(nk_internal_hash(a, 0) == nk_internal_hash(b, 0));
        assert_true(nk_internal_hash(a, 0) != nk_internal_hash(a, 1));
        assert_true(nk_internal_hash(i64(1), 0) != nk_internal_hash(flt(1.0), 0));
        assert_true(nk_internal_hash(list(2, i64(1), i64(2)), 0) !=
                    nk_internal_hash(list(2, i64(2), i64(1)), 0));
        assert_true(nk_internal_hash(ref("a@h", 1, 3, 7, 8, 0), 3) ==
                    nk_internal_hash(ref("a@h", 1, 2, 7, 8, 0), 3));
        uint8_t x[] = { 0xa0 }, y[] = { 0xbf };
        assert_true(nk_internal_hash(bits(x, 1, 3), 0) == nk_internal_hash(bits(y, 1, 3), 0));
}

/* A resource object the test owns: one reference kept back so that the
 * env's release never destroys it. */
static struct nk_resource *fake_resource(void)
{
        struct nk_resource *r = aligned_alloc(16, sizeof(*r) + 16);
        assert_non_null(r);
        memset(r, 0, sizeof(*r));
        r->magic = NK_RESOURCE_MAGIC;
        atomic_init(&r->refc, 1);
        r->size = 16;
        return r;
}

static void resources_are_references(void **state)
{
        struct nk_resource *r1 = fake_resource(), *r2 = fake_resource();
        ERL_NIF_TERM a = nk_make_resource_term(&env, r1), a2 = nk_make_resource_term(&env, r1);
        ERL_NIF_TERM b = nk_make_resource_term(&env, r2);
        assert_true(a != NK_NONE && a2 != NK_NONE && b != NK_NONE);

        assert_int_equal(nk_compare(a, a2), 0);
        assert_true(nk_identical(a, a2));
        assert_int_equal(nk_phash2(a), nk_phash2(a2));
        assert_true(nk_internal_hash(a, 5) == nk_internal_hash(a2, 5));
        assert_int_equal(sgn(nk_compare(a, b)), -sgn(nk_compare(b, a)));
        assert_true(nk_compare(a, b) != 0);
        assert_false(nk_identical(a, b));

        /* Among references, by their node 'nifkit_resource@nohost'. */
        ERL_NIF_TERM before = ref("a@h", 1, 3, 1, 2, 3), after = ref("z@h", 1, 3, 1, 2, 3);
        assert_true(nk_compare(before, a) < 0 && nk_compare(a, after) < 0);
        assert_true(nk_compare(atom("zzz"), a) < 0);
        assert_true(nk_compare(a, fun_bytes(export_map2, sizeof(export_map2))) < 0);
        nk_env_reset(&env);
        free(r1);
        free(r2);
}

static void sub_binaries(void **state)
{
        struct nk_binobj *obj = nk_binobj_new(64);
        assert_non_null(obj);
        for (size_t i = 0; i < 64; i++)
                obj->data[i] = (uint8_t) (i * 7);
        ERL_NIF_TERM sub = nk_make_binary_of(&env, obj, 13, 30, 0);
        ERL_NIF_TERM copy = nk_make_binary_copy(&env, obj->data + 13, 30);
        ERL_NIF_TERM subbits = nk_make_binary_of(&env, obj, 5, 3, 4);
        ERL_NIF_TERM copybits = bits(obj->data + 5, 3, 4);
        nk_binobj_release(obj);
        assert_int_equal(nk_compare(sub, copy), 0);
        assert_true(nk_identical(sub, copy));
        assert_int_equal(nk_phash2(sub), nk_phash2(copy));
        assert_true(nk_internal_hash(sub, 9) == nk_internal_hash(copy, 9));
        assert_true(nk_identical(subbits, copybits));
        assert_int_equal(nk_phash2(subbits), nk_phash2(copybits));
        assert_true(nk_compare(subbits, sub) < 0);      /* 5*7=35 < 13*7=91 */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(term_order_across_types),
                cmocka_unit_test(numbers_exactly),
                cmocka_unit_test(identity),
                cmocka_unit_test(map_key_order),
                cmocka_unit_test(long_and_deep),
                cmocka_unit_test(phash2_table),
                cmocka_unit_test(phash2_built),
                cmocka_unit_test(internal_hash),
                cmocka_unit_test(resources_are_references),
                cmocka_unit_test(sub_binaries),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
