/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The enif_* term functions against the values BEAM (OTP 25) returns for
 * the same calls: type tests, comparison, hashing, numbers, atoms, strings,
 * lists, tuples, envs, exceptions, references, ETF.
 */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "host_internal.h"
#include "nif_api.h"
#include "term.h"

static int setup(void **state)
{
        assert_int_equal(nk_atoms_init(), 0);
        ErlNifEnv *env = enif_alloc_env();
        assert_non_null(env);
        *state = env;
        return 0;
}

static int teardown(void **state)
{
        enif_free_env(*state);
        return 0;
}

static ERL_NIF_TERM atom(const char *s)
{
        return nk_atom_utf8(s, strlen(s));
}

static ERL_NIF_TERM bitstring(ErlNifEnv *env, const char *data, size_t size, uint8_t bits)
{
        struct nk_binobj *obj = nk_binobj_new(size);
        memcpy(obj->data, data, size);
        ERL_NIF_TERM t = nk_make_binary_of(env, obj, 0, size, bits);
        nk_binobj_release(obj);
        return t;
}

/* ---- type tests -------------------------------------------------------------- */

static void type_tests(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM bin, bits = bitstring(env, "\x80", 1, 1);
        memcpy(enif_make_new_binary(env, 2, &bin), "ab", 2);
        ERL_NIF_TERM list = enif_make_list2(env, enif_make_int(env, 1), enif_make_int(env, 2));
        ERL_NIF_TERM tuple = enif_make_tuple1(env, enif_make_int(env, 1));
        ERL_NIF_TERM map = enif_make_new_map(env);
        ERL_NIF_TERM ref = enif_make_ref(env);
        ERL_NIF_TERM flt = enif_make_double(env, 1.5);
        ERL_NIF_TERM big = enif_make_uint64(env, UINT64_MAX);
        struct nk_pid_data pd = { nk_atom_index(nk_am_nonode), 80, 0, 0 };
        ERL_NIF_TERM pid = nk_pid_intern(&pd);
        struct nk_port_data qd = { nk_atom_index(nk_am_nonode), 0, 7 };
        ERL_NIF_TERM port = nk_port_intern(&qd);

        assert_true(enif_is_atom(env, nk_am_ok));
        assert_false(enif_is_atom(env, bin));
        assert_true(enif_is_binary(env, bin));
        assert_false(enif_is_binary(env, bits));
        assert_false(enif_is_binary(env, list));
        assert_true(enif_is_ref(env, ref));
        assert_false(enif_is_ref(env, tuple));
        assert_false(enif_is_fun(env, ref));
        assert_true(enif_is_pid(env, pid));
        assert_false(enif_is_pid(env, port));
        assert_true(enif_is_port(env, port));
        assert_false(enif_is_port(env, pid));
        assert_true(enif_is_list(env, list));
        assert_true(enif_is_list(env, NK_NIL));
        assert_false(enif_is_list(env, tuple));
        assert_true(enif_is_empty_list(env, NK_NIL));
        assert_false(enif_is_empty_list(env, list));
        assert_true(enif_is_tuple(env, tuple));
        assert_false(enif_is_tuple(env, list));
        assert_true(enif_is_map(env, map));
        assert_false(enif_is_map(env, tuple));
        assert_true(enif_is_number(env, enif_make_int(env, 3)));
        assert_true(enif_is_number(env, flt));
        assert_true(enif_is_number(env, big));
        assert_false(enif_is_number(env, nk_am_ok));

        assert_int_equal(enif_term_type(env, nk_am_ok), ERL_NIF_TERM_TYPE_ATOM);
        assert_int_equal(enif_term_type(env, bits), ERL_NIF_TERM_TYPE_BITSTRING);
        assert_int_equal(enif_term_type(env, bin), ERL_NIF_TERM_TYPE_BITSTRING);
        assert_int_equal(enif_term_type(env, flt), ERL_NIF_TERM_TYPE_FLOAT);
        assert_int_equal(enif_term_type(env, big), ERL_NIF_TERM_TYPE_INTEGER);
        assert_int_equal(enif_term_type(env, enif_make_int(env, -1)), ERL_NIF_TERM_TYPE_INTEGER);
        assert_int_equal(enif_term_type(env, NK_NIL), ERL_NIF_TERM_TYPE_LIST);
        assert_int_equal(enif_term_type(env, list), ERL_NIF_TERM_TYPE_LIST);
        assert_int_equal(enif_term_type(env, map), ERL_NIF_TERM_TYPE_MAP);
        assert_int_equal(enif_term_type(env, pid), ERL_NIF_TERM_TYPE_PID);
        assert_int_equal(enif_term_type(env, port), ERL_NIF_TERM_TYPE_PORT);
        assert_int_equal(enif_term_type(env, ref), ERL_NIF_TERM_TYPE_REFERENCE);
        assert_int_equal(enif_term_type(env, tuple), ERL_NIF_TERM_TYPE_TUPLE);
        assert_int_equal(enif_term_type(env, NK_EXCEPTION),
                         ERL_NIF_TERM_TYPE__MISSING_DEFAULT_CASE__READ_THE_MANUAL);
}

static void resources_and_funs(void **state)
{
        ErlNifEnv *env = *state;
        ErlNifResourceFlags tried;

        /* a resource term is a reference to BEAM as well */
        nk_load_begin("nif_terms_test");
        ErlNifResourceType *type = enif_open_resource_type(env, NULL, "res", NULL, ERL_NIF_RT_CREATE, &tried);
        nk_load_end(true);
        assert_non_null(type);
        void *obj = enif_alloc_resource(type, 8);
        ERL_NIF_TERM res = enif_make_resource(env, obj);
        enif_release_resource(obj);
        assert_true(enif_is_ref(env, res));
        assert_false(enif_is_binary(env, res));
        assert_int_equal(enif_term_type(env, res), ERL_NIF_TERM_TYPE_REFERENCE);

        /* funs only arrive from the runtime, as their ETF bytes */
        struct nk_fun *f = nk_env_alloc(env, sizeof(*f) + 1);
        f->h.kind = NK_FUN;
        f->h.n = 1;
        f->etf[0] = 0;
        ERL_NIF_TERM fun = nk_box_term(f);
        assert_true(enif_is_fun(env, fun));
        assert_false(enif_is_ref(env, fun));
        assert_int_equal(enif_term_type(env, fun), ERL_NIF_TERM_TYPE_FUN);
}

/* ---- comparison and hashing ------------------------------------------------------ */

static void compare_and_identity(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM one = enif_make_int(env, 1), onef = enif_make_double(env, 1.0);
        ERL_NIF_TERM bin;
        enif_make_new_binary(env, 0, &bin);

        /* values from BEAM: enif_compare(1, 1.0) == 0 but not identical */
        assert_int_equal(enif_compare(one, onef), 0);
        assert_false(enif_is_identical(one, onef));
        assert_int_equal(enif_compare(one, enif_make_int(env, 2)), -1);
        assert_int_equal(enif_compare(enif_make_int(env, 3), enif_make_int(env, 2)), 1);
        assert_int_equal(enif_compare(atom("a"), one), 1);
        assert_int_equal(enif_compare(bin, NK_NIL), 1);
        ERL_NIF_TERM t1 = enif_make_tuple2(env, one, atom("x"));
        ERL_NIF_TERM t2 = enif_make_tuple2(env, enif_make_int(env, 1), atom("x"));
        assert_true(enif_is_identical(t1, t2));
        assert_false(enif_is_identical(t1, enif_make_tuple2(env, onef, atom("x"))));
}

static void hash_phash2_matches_beam(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM tup = enif_make_tuple2(env, enif_make_int(env, 1), enif_make_int(env, 2));

        /* erlang:phash2/1 values; BEAM ignores the salt for PHASH2 */
        assert_int_equal(enif_hash(ERL_NIF_PHASH2, atom("foo"), 0), 27999);
        assert_int_equal(enif_hash(ERL_NIF_PHASH2, atom("foo"), 12345), 27999);
        assert_int_equal(enif_hash(ERL_NIF_PHASH2, tup, 1), 91564110);
        assert_int_equal(enif_hash(ERL_NIF_PHASH2, enif_make_int(env, 0), 0), 88723725);

        /* internal hash: deterministic per salt, and the salt matters */
        uint64_t a = enif_hash(ERL_NIF_INTERNAL_HASH, tup, 1);
        assert_int_equal(a, enif_hash(ERL_NIF_INTERNAL_HASH, tup, 1));
        assert_int_not_equal(a, enif_hash(ERL_NIF_INTERNAL_HASH, tup, 2));
        assert_int_equal(enif_hash((ErlNifHash) 99, tup, 0), 0);
}

/* ---- numbers ------------------------------------------------------------------ */

static void integers_in_and_out_of_range(void **state)
{
        ErlNifEnv *env = *state;
        int i;
        unsigned u;
        long l;
        unsigned long ul;
        ErlNifSInt64 i64;
        ErlNifUInt64 u64;

        assert_true(enif_get_int(env, enif_make_int(env, INT_MIN), &i));
        assert_int_equal(i, INT_MIN);
        assert_true(enif_get_int(env, enif_make_int(env, INT_MAX), &i));
        assert_int_equal(i, INT_MAX);
        assert_false(enif_get_int(env, enif_make_long(env, (long) INT_MAX + 1), &i));
        assert_false(enif_get_int(env, enif_make_long(env, (long) INT_MIN - 1), &i));
        assert_false(enif_get_int(env, enif_make_double(env, 1.0), &i));

        assert_true(enif_get_uint(env, enif_make_uint(env, UINT_MAX), &u));
        assert_int_equal(u, UINT_MAX);
        assert_false(enif_get_uint(env, enif_make_int(env, -1), &u));
        assert_false(enif_get_uint(env, enif_make_ulong(env, (unsigned long) UINT_MAX + 1), &u));

        assert_true(enif_get_long(env, enif_make_long(env, LONG_MIN), &l));
        assert_true(l == LONG_MIN);
        assert_true(enif_get_long(env, enif_make_long(env, LONG_MAX), &l));
        assert_true(l == LONG_MAX);
        assert_false(enif_get_long(env, enif_make_ulong(env, (unsigned long) LONG_MAX + 1), &l));
        assert_false(enif_get_long(env, atom("x"), &l));

        assert_true(enif_get_ulong(env, enif_make_ulong(env, ULONG_MAX), &ul));
        assert_true(ul == ULONG_MAX);
        assert_false(enif_get_ulong(env, enif_make_int(env, -1), &ul));

        /* 2^64 does not fit anything */
        uint8_t d[9] = { 0, 0, 0, 0, 0, 0, 0, 0, 1 };
        ERL_NIF_TERM two64 = nk_make_big(env, false, d, 9);
        assert_false(enif_get_ulong(env, two64, &ul));
        assert_false(enif_get_long(env, two64, &l));

        assert_true(enif_get_int64(env, enif_make_int64(env, INT64_MIN), &i64));
        assert_true(i64 == INT64_MIN);
        assert_true(enif_get_uint64(env, enif_make_uint64(env, UINT64_MAX), &u64));
        assert_true(u64 == UINT64_MAX);
        assert_false(enif_get_uint64(env, enif_make_int64(env, -5), &u64));
}

static void doubles(void **state)
{
        ErlNifEnv *env = *state;
        double d = 0;
        ERL_NIF_TERM reason;

        assert_true(enif_get_double(env, enif_make_double(env, -2.5), &d));
        assert_true(d == -2.5);
        /* integers are not doubles */
        assert_false(enif_get_double(env, enif_make_int(env, 1), &d));
        assert_false(enif_has_pending_exception(env, NULL));

        /* NaN and infinities raise badarg, as in BEAM */
        ERL_NIF_TERM t = enif_make_double(env, NAN);
        assert_true(enif_is_exception(env, t));
        assert_true(enif_has_pending_exception(env, &reason));
        assert_int_equal(reason, nk_am_badarg);
        enif_clear_env(env);
        assert_true(enif_is_exception(env, enif_make_double(env, INFINITY)));
        enif_clear_env(env);
        assert_true(enif_is_exception(env, enif_make_double(env, -INFINITY)));
}

static void unique_integers(void **state)
{
        ErlNifEnv *env = *state;
        long a, b, p;

        assert_true(enif_get_long(env, enif_make_unique_integer(env, ERL_NIF_UNIQUE_MONOTONIC), &a));
        assert_true(enif_get_long(env, enif_make_unique_integer(env, ERL_NIF_UNIQUE_MONOTONIC), &b));
        assert_true(b > a);
        /* without POSITIVE they start near the smallest 60-bit integer */
        assert_true(a < -(1L << 58));
        assert_true(enif_get_long(env, enif_make_unique_integer(env, ERL_NIF_UNIQUE_POSITIVE), &p));
        assert_true(p > 0);
        long q;
        assert_true(enif_get_long(env, enif_make_unique_integer(env, ERL_NIF_UNIQUE_POSITIVE
                                                                       | ERL_NIF_UNIQUE_MONOTONIC), &q));
        assert_true(q > p);
        assert_true(enif_get_long(env, enif_make_unique_integer(env, 0), &b));
        assert_true(b != a);
}

/* ---- atoms ------------------------------------------------------------------ */

static void atoms_make_and_existing(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM a, b;

        a = enif_make_atom(env, "nif_terms_hello");
        assert_true(enif_is_atom(env, a));
        assert_int_equal(a, enif_make_atom_len(env, "nif_terms_hello!!", 15));
        assert_true(enif_make_existing_atom(env, "nif_terms_hello", &b, ERL_NIF_LATIN1));
        assert_int_equal(a, b);
        assert_false(enif_make_existing_atom(env, "nif_terms_never_made", &b, ERL_NIF_LATIN1));
        assert_false(enif_make_existing_atom_len(env, "nif_terms_never_made", 20, &b, ERL_NIF_UTF8));

        /* Latin-1 "é" and UTF-8 "é" name one atom */
        a = enif_make_atom_len(env, "caf\xe9", 4);
        assert_true(enif_make_existing_atom_len(env, "caf\xc3\xa9", 5, &b, ERL_NIF_UTF8));
        assert_int_equal(a, b);
        assert_true(enif_make_existing_atom_len(env, "caf\xe9", 4, &b, ERL_NIF_LATIN1));
        assert_int_equal(a, b);

        /* 255 characters at most; more is badarg */
        char name[300];
        memset(name, 'q', sizeof(name));
        assert_true(enif_is_atom(env, enif_make_atom_len(env, name, 255)));
        assert_false(enif_has_pending_exception(env, NULL));
        assert_true(enif_is_exception(env, enif_make_atom_len(env, name, 256)));
        assert_false(enif_make_existing_atom_len(env, name, 256, &b, ERL_NIF_LATIN1));
}

static void atoms_new_2_17(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM a = 0, b = 0;

        assert_true(enif_make_new_atom(env, "\xe2\x98\x83snow", &a, ERL_NIF_UTF8));
        assert_true(enif_make_existing_atom(env, "\xe2\x98\x83snow", &b, ERL_NIF_UTF8));
        assert_int_equal(a, b);
        /* invalid UTF-8 fails and leaves *atom alone */
        b = 42;
        assert_false(enif_make_new_atom_len(env, "\xc3", 1, &b, ERL_NIF_UTF8));
        assert_int_equal(b, 42);
        assert_true(enif_make_new_atom_len(env, "x\xff", 2, &b, ERL_NIF_LATIN1));
        assert_false(enif_make_new_atom(env, "x", &b, (ErlNifCharEncoding) 7));
        assert_false(enif_has_pending_exception(env, NULL));
}

static void atoms_get_buffers(void **state)
{
        ErlNifEnv *env = *state;
        char buf[16];
        unsigned len = 999;

        /* BEAM: 'foo' in 4 bytes returns 4 (with the NUL), in 3 returns 0 */
        ERL_NIF_TERM foo = enif_make_atom(env, "foo");
        memset(buf, 'X', sizeof(buf));
        assert_int_equal(enif_get_atom(env, foo, buf, 4, ERL_NIF_LATIN1), 4);
        assert_memory_equal(buf, "foo\0X", 5);
        memset(buf, 'X', sizeof(buf));
        assert_int_equal(enif_get_atom(env, foo, buf, 3, ERL_NIF_LATIN1), 0);
        assert_int_equal(buf[0], 'X');
        assert_int_equal(enif_get_atom(env, foo, buf, 0, ERL_NIF_LATIN1), 0);
        assert_int_equal(enif_get_atom(env, enif_make_int(env, 1), buf, 16, ERL_NIF_LATIN1), 0);
        assert_true(enif_get_atom_length(env, foo, &len, ERL_NIF_LATIN1));
        assert_int_equal(len, 3);

        /* 'é': one Latin-1 byte, two UTF-8 bytes */
        ERL_NIF_TERM e = enif_make_atom_len(env, "\xe9", 1);
        assert_int_equal(enif_get_atom(env, e, buf, 2, ERL_NIF_LATIN1), 2);
        assert_memory_equal(buf, "\xe9", 2);
        assert_int_equal(enif_get_atom(env, e, buf, 2, ERL_NIF_UTF8), 0);
        assert_int_equal(enif_get_atom(env, e, buf, 3, ERL_NIF_UTF8), 3);
        assert_memory_equal(buf, "\xc3\xa9", 3);
        assert_true(enif_get_atom_length(env, e, &len, ERL_NIF_LATIN1));
        assert_int_equal(len, 1);
        assert_true(enif_get_atom_length(env, e, &len, ERL_NIF_UTF8));
        assert_int_equal(len, 2);

        /* U+2603 has no Latin-1 form: Latin-1 length and text fail */
        ERL_NIF_TERM snow = nk_atom_utf8("\xe2\x98\x83", 3);
        len = 999;
        assert_false(enif_get_atom_length(env, snow, &len, ERL_NIF_LATIN1));
        assert_int_equal(len, 999);
        assert_int_equal(enif_get_atom(env, snow, buf, 16, ERL_NIF_LATIN1), 0);
        assert_int_equal(enif_get_atom(env, snow, buf, 16, ERL_NIF_UTF8), 4);
        assert_false(enif_get_atom_length(env, NK_NIL, &len, ERL_NIF_UTF8));
}

/* ---- strings ------------------------------------------------------------------ */

static void strings_make(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM s = enif_make_string_len(env, "a\xe9\xff", 3, ERL_NIF_LATIN1);
        ERL_NIF_TERM h, t;
        int v;

        assert_true(enif_get_list_cell(env, s, &h, &t));
        assert_true(enif_get_int(env, h, &v) && v == 'a');
        assert_true(enif_get_list_cell(env, t, &h, &t));
        assert_true(enif_get_int(env, h, &v) && v == 0xe9);
        assert_true(enif_get_list_cell(env, t, &h, &t));
        assert_true(enif_get_int(env, h, &v) && v == 0xff);
        assert_int_equal(t, NK_NIL);
        assert_int_equal(enif_make_string(env, "", ERL_NIF_LATIN1), NK_NIL);

        s = enif_make_string(env, "\xe2\x98\x83!", ERL_NIF_UTF8);
        unsigned len;
        assert_true(enif_get_list_length(env, s, &len));
        assert_int_equal(len, 2);
        assert_true(enif_get_list_cell(env, s, &h, &t));
        assert_true(enif_get_int(env, h, &v) && v == 0x2603);

        /* invalid UTF-8 is badarg */
        assert_true(enif_is_exception(env, enif_make_string(env, "\xed\xa0\x80", ERL_NIF_UTF8)));
}

static void strings_get_latin1(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM abc = enif_make_string(env, "abc", ERL_NIF_LATIN1);
        char buf[16];

        /* every expected value below is what BEAM returns */
        memset(buf, 'X', sizeof(buf));
        assert_int_equal(enif_get_string(env, abc, buf, 4, ERL_NIF_LATIN1), 4);
        assert_memory_equal(buf, "abc\0X", 5);
        memset(buf, 'X', sizeof(buf));
        assert_int_equal(enif_get_string(env, abc, buf, 3, ERL_NIF_LATIN1), -3);
        assert_memory_equal(buf, "ab\0X", 4);
        memset(buf, 'X', sizeof(buf));
        assert_int_equal(enif_get_string(env, abc, buf, 1, ERL_NIF_LATIN1), -1);
        assert_memory_equal(buf, "\0X", 2);
        memset(buf, 'X', sizeof(buf));
        assert_int_equal(enif_get_string(env, abc, buf, 0, ERL_NIF_LATIN1), 0);
        assert_int_equal(buf[0], 'X');
        assert_int_equal(enif_get_string(env, NK_NIL, buf, 1, ERL_NIF_LATIN1), 1);
        assert_int_equal(buf[0], 0);

        memset(buf, 'X', sizeof(buf));
        assert_int_equal(enif_get_string(env, atom("foo"), buf, 5, ERL_NIF_LATIN1), 0);
        assert_int_equal(buf[0], 0);

        ERL_NIF_TERM wide = enif_make_list2(env, enif_make_int(env, 'a'), enif_make_int(env, 256));
        memset(buf, 'X', sizeof(buf));
        assert_int_equal(enif_get_string(env, wide, buf, 5, ERL_NIF_LATIN1), 0);
        assert_memory_equal(buf, "a\0X", 3);

        ERL_NIF_TERM improper = enif_make_list_cell(env, enif_make_int(env, 'a'), enif_make_int(env, 'b'));
        assert_int_equal(enif_get_string(env, improper, buf, 5, ERL_NIF_LATIN1), 0);
        assert_memory_equal(buf, "a\0", 2);
        /* truncation is reported before the improper tail is seen */
        ERL_NIF_TERM improper2 = enif_make_list_cell(env, enif_make_int(env, 'a'), improper);
        assert_int_equal(enif_get_string(env, improper2, buf, 2, ERL_NIF_LATIN1), -2);
        assert_memory_equal(buf, "a\0", 2);
}

static void strings_get_utf8_2_17(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM s = enif_make_string(env, "a\xc3\xa9\xe2\x98\x83", ERL_NIF_UTF8); /* a é ☃ */
        char buf[16];
        unsigned len = 0;

        assert_int_equal(enif_get_string(env, s, buf, 16, ERL_NIF_UTF8), 7);
        assert_string_equal(buf, "a\xc3\xa9\xe2\x98\x83");
        /* a truncated copy stops at a whole character */
        assert_int_equal(enif_get_string(env, s, buf, 3, ERL_NIF_UTF8), -2);
        assert_string_equal(buf, "a");
        assert_int_equal(enif_get_string(env, s, buf, 4, ERL_NIF_UTF8), -4);
        assert_string_equal(buf, "a\xc3\xa9");
        /* Latin-1 cannot hold U+2603 */
        assert_int_equal(enif_get_string(env, s, buf, 16, ERL_NIF_LATIN1), 0);

        assert_true(enif_get_string_length(env, s, &len, ERL_NIF_UTF8));
        assert_int_equal(len, 6);
        assert_false(enif_get_string_length(env, s, &len, ERL_NIF_LATIN1));
        assert_true(enif_get_string_length(env, enif_make_string(env, "abc", ERL_NIF_LATIN1), &len,
                                           ERL_NIF_LATIN1));
        assert_int_equal(len, 3);
        assert_true(enif_get_string_length(env, NK_NIL, &len, ERL_NIF_UTF8));
        assert_int_equal(len, 0);

        ERL_NIF_TERM surrogate = enif_make_list1(env, enif_make_int(env, 0xd800));
        assert_false(enif_get_string_length(env, surrogate, &len, ERL_NIF_UTF8));
        assert_int_equal(enif_get_string(env, surrogate, buf, 16, ERL_NIF_UTF8), 0);
        assert_false(enif_get_string_length(env, atom("x"), &len, ERL_NIF_UTF8));
}

/* ---- lists and tuples ------------------------------------------------------------ */

static void lists(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM arr[20], l, r, h, t;
        unsigned len = 777;
        int v;

        for (int i = 0; i < 20; i++)
                arr[i] = enif_make_int(env, i);
        l = enif_make_list_from_array(env, arr, 20);
        assert_true(enif_get_list_length(env, l, &len));
        assert_int_equal(len, 20);
        assert_int_equal(enif_make_list_from_array(env, arr, 0), NK_NIL);
        assert_int_equal(enif_make_list(env, 0), NK_NIL);

        /* more arguments than fit the small on-stack array */
        l = enif_make_list(env, 17, arr[0], arr[1], arr[2], arr[3], arr[4], arr[5], arr[6], arr[7], arr[8],
                           arr[9], arr[10], arr[11], arr[12], arr[13], arr[14], arr[15], arr[16]);
        assert_true(enif_get_list_length(env, l, &len));
        assert_int_equal(len, 17);
        assert_true(enif_make_reverse_list(env, l, &r));
        assert_true(enif_get_list_cell(env, r, &h, &t));
        assert_true(enif_get_int(env, h, &v) && v == 16);
        assert_true(enif_make_reverse_list(env, NK_NIL, &r));
        assert_int_equal(r, NK_NIL);

        /* improper lists and non-lists: BEAM returns 0 and leaves outputs */
        ERL_NIF_TERM improper = enif_make_list_cell(env, arr[1], arr[2]);
        len = 777;
        assert_false(enif_get_list_length(env, improper, &len));
        assert_false(enif_get_list_length(env, atom("foo"), &len));
        assert_int_equal(len, 777);
        r = 5;
        assert_false(enif_make_reverse_list(env, improper, &r));
        assert_int_equal(r, 5);
        assert_true(enif_get_list_cell(env, improper, &h, &t));
        assert_int_equal(h, arr[1]);
        assert_int_equal(t, arr[2]);
        assert_false(enif_get_list_cell(env, NK_NIL, &h, &t));
        assert_true(enif_get_list_length(env, NK_NIL, &len));
        assert_int_equal(len, 0);
}

static void tuples(void **state)
{
        ErlNifEnv *env = *state;
        const ERL_NIF_TERM *elems;
        int arity = -1;

        ERL_NIF_TERM t = enif_make_tuple3(env, nk_am_ok, enif_make_int(env, 2), NK_NIL);
        assert_true(enif_get_tuple(env, t, &arity, &elems));
        assert_int_equal(arity, 3);
        assert_int_equal(elems[0], nk_am_ok);
        assert_int_equal(elems[2], NK_NIL);

        ERL_NIF_TERM arr[2] = { nk_am_error, nk_am_true };
        t = enif_make_tuple_from_array(env, arr, 2);
        assert_true(enif_get_tuple(env, t, &arity, &elems));
        assert_int_equal(arity, 2);
        assert_int_equal(elems[1], nk_am_true);

        t = enif_make_tuple(env, 0);
        assert_true(enif_get_tuple(env, t, &arity, &elems));
        assert_int_equal(arity, 0);

        arity = -1;
        assert_false(enif_get_tuple(env, NK_NIL, &arity, &elems));
        assert_int_equal(arity, -1);
}

/* ---- envs and exceptions -------------------------------------------------------- */

static void envs_and_copy(void **state)
{
        ErlNifEnv *a = enif_alloc_env(), *b = enif_alloc_env();
        ERL_NIF_TERM bin;
        memcpy(enif_make_new_binary(a, 3, &bin), "xyz", 3);
        ERL_NIF_TERM t = enif_make_tuple2(a, enif_make_string(a, "hi", ERL_NIF_LATIN1), bin);
        ERL_NIF_TERM c = enif_make_copy(b, t);

        enif_free_env(a);       /* the copy must not depend on a */
        const ERL_NIF_TERM *e;
        int arity;
        ErlNifBinary ib;
        char s[8];
        assert_true(enif_get_tuple(b, c, &arity, &e));
        assert_int_equal(enif_get_string(b, e[0], s, sizeof(s), ERL_NIF_LATIN1), 3);
        assert_string_equal(s, "hi");
        assert_true(enif_inspect_binary(b, e[1], &ib));
        assert_memory_equal(ib.data, "xyz", 3);

        enif_clear_env(b);
        assert_true(enif_is_atom(b, enif_make_atom(b, "still_usable")));
        enif_free_env(b);
        enif_free_env(NULL);
}

static void exceptions(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM reason = 0;

        assert_false(enif_has_pending_exception(env, &reason));
        assert_false(enif_is_exception(env, NK_EXCEPTION));
        ERL_NIF_TERM e = enif_make_badarg(env);
        assert_true(enif_is_exception(env, e));
        assert_false(enif_is_exception(env, nk_am_badarg));
        assert_true(enif_has_pending_exception(env, NULL));
        assert_true(enif_has_pending_exception(env, &reason));
        assert_int_equal(reason, nk_am_badarg);

        ERL_NIF_TERM why = enif_make_tuple2(env, atom("my_error"), enif_make_int(env, 7));
        e = enif_raise_exception(env, why);
        assert_true(enif_is_exception(env, e));
        assert_true(enif_has_pending_exception(env, &reason));
        assert_int_equal(reason, why);

        enif_clear_env(env);
        assert_false(enif_has_pending_exception(env, NULL));
}

static void references(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM a = enif_make_ref(env), b = enif_make_ref(env);

        assert_true(enif_is_ref(env, a));
        assert_false(enif_is_identical(a, b));
        assert_true(enif_is_identical(a, enif_make_copy(env, a)));
        const struct nk_ref *r = (const struct nk_ref *) nk_box_of(a);
        size_t len;
        assert_string_equal(nk_atom_text(r->node, &len), "nifkit_ref@nohost");
        assert_int_equal(r->h.n, 3);
        assert_true(r->ids[0] < (1u << 18));    /* BEAM rejects larger first words */
        assert_int_not_equal(r->creation, 0);
}

/* ---- External Term Format ------------------------------------------------------ */

static void etf_round_trip(void **state)
{
        ErlNifEnv *env = *state;
        ErlNifBinary bin;
        ERL_NIF_TERM t, back;
        ERL_NIF_TERM b;
        memcpy(enif_make_new_binary(env, 1, &b), "b", 1);
        t = enif_make_tuple3(env, atom("a"), b, enif_make_double(env, 1.5));

        /* term_to_binary({a, <<"b">>, 1.5}) on OTP 25 */
        static const uint8_t want[] = { 131, 104, 3, 100, 0, 1, 97, 109, 0, 0, 0, 1, 98,
                                        70, 63, 248, 0, 0, 0, 0, 0, 0 };
        assert_true(enif_term_to_binary(env, t, &bin));
        assert_int_equal(bin.size, sizeof(want));
        assert_memory_equal(bin.data, want, sizeof(want));
        assert_int_equal(enif_binary_to_term(env, bin.data, bin.size, &back, 0), sizeof(want));
        assert_true(enif_is_identical(t, back));
        /* the encoder's buffer belongs to the ErlNifBinary like any other */
        assert_true(enif_realloc_binary(&bin, 2));
        assert_memory_equal(bin.data, want, 2);
        enif_release_binary(&bin);

        /* bytes after the term are not read: BEAM returns 3 for 5 bytes */
        assert_int_equal(enif_binary_to_term(env, (const unsigned char *) "\x83\x61\x01zz", 5, &back, 0), 3);
        int v;
        assert_true(enif_get_int(env, back, &v) && v == 1);
        /* unknown options and, with SAFE, unknown atoms fail with 0 */
        assert_int_equal(enif_binary_to_term(env, (const unsigned char *) "\x83\x61\x01", 3, &back, 1), 0);
        assert_int_equal(enif_binary_to_term(env, (const unsigned char *) "\x83\x64\x00\x0cnif_terms_zz",
                                             16, &back, ERL_NIF_BIN2TERM_SAFE), 0);
        assert_int_equal(enif_binary_to_term(env, (const unsigned char *) "\x83\x64\x00\x0cnif_terms_zz",
                                             16, &back, 0), 16);
        assert_int_equal(enif_binary_to_term(env, (const unsigned char *) "\x83\x68", 2, &back, 0), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(type_tests, setup, teardown),
                cmocka_unit_test_setup_teardown(resources_and_funs, setup, teardown),
                cmocka_unit_test_setup_teardown(compare_and_identity, setup, teardown),
                cmocka_unit_test_setup_teardown(hash_phash2_matches_beam, setup, teardown),
                cmocka_unit_test_setup_teardown(integers_in_and_out_of_range, setup, teardown),
                cmocka_unit_test_setup_teardown(doubles, setup, teardown),
                cmocka_unit_test_setup_teardown(unique_integers, setup, teardown),
                cmocka_unit_test_setup_teardown(atoms_make_and_existing, setup, teardown),
                cmocka_unit_test_setup_teardown(atoms_new_2_17, setup, teardown),
                cmocka_unit_test_setup_teardown(atoms_get_buffers, setup, teardown),
                cmocka_unit_test_setup_teardown(strings_make, setup, teardown),
                cmocka_unit_test_setup_teardown(strings_get_latin1, setup, teardown),
                cmocka_unit_test_setup_teardown(strings_get_utf8_2_17, setup, teardown),
                cmocka_unit_test_setup_teardown(lists, setup, teardown),
                cmocka_unit_test_setup_teardown(tuples, setup, teardown),
                cmocka_unit_test_setup_teardown(envs_and_copy, setup, teardown),
                cmocka_unit_test_setup_teardown(exceptions, setup, teardown),
                cmocka_unit_test_setup_teardown(references, setup, teardown),
                cmocka_unit_test_setup_teardown(etf_round_trip, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
