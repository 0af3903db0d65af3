/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The enif_* binary functions: ErlNifBinary ownership, binary terms,
 * sub-binaries, iolists and I/O vectors, with BEAM's (OTP 25) results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "nif_api.h"
#include "term.h"

static int setup(void **state)
{
        assert_int_equal(nk_atoms_init(), 0);
        *state = enif_alloc_env();
        assert_non_null(*state);
        return 0;
}

static int teardown(void **state)
{
        enif_free_env(*state);
        return 0;
}

static ERL_NIF_TERM bin_of(ErlNifEnv *env, const char *s, size_t n)
{
        ERL_NIF_TERM t;
        memcpy(enif_make_new_binary(env, n, &t), s, n);
        return t;
}

static ERL_NIF_TERM bitstring(ErlNifEnv *env, const char *data, size_t size, uint8_t bits)
{
        struct nk_binobj *obj = nk_binobj_new(size);
        memcpy(obj->data, data, size);
        ERL_NIF_TERM t = nk_make_binary_of(env, obj, 0, size, bits);
        nk_binobj_release(obj);
        return t;
}

static long refc(ERL_NIF_TERM bin)
{
        return atomic_load(&((const struct nk_binary *) nk_box_of(bin))->obj->refc);
}

static void alloc_realloc_release(void **state)
{
        ErlNifBinary b;
        void *spare0 = (void *) 0x1234;

        b.__spare__[0] = spare0;
        assert_true(enif_alloc_binary(5, &b));
        assert_int_equal(b.size, 5);
        assert_non_null(b.ref_bin);
        assert_ptr_equal(b.data, ((struct nk_binobj *) b.ref_bin)->data);
        memcpy(b.data, "hello", 5);

        assert_true(enif_realloc_binary(&b, 3));
        assert_int_equal(b.size, 3);
        assert_memory_equal(b.data, "hel", 3);
        assert_true(enif_realloc_binary(&b, 4096));
        assert_int_equal(b.size, 4096);
        assert_memory_equal(b.data, "hel", 3);
        assert_ptr_equal(b.__spare__[0], spare0);
        enif_release_binary(&b);
        assert_null(b.ref_bin);
        enif_release_binary(&b);        /* a second release does nothing */

        assert_true(enif_alloc_binary(0, &b));
        assert_int_equal(b.size, 0);
        enif_release_binary(&b);
}

static void realloc_of_inspected_copies(void **state)
{
        ErlNifEnv *env = *state;
        ErlNifBinary b;
        ERL_NIF_TERM t = bin_of(env, "abcdef", 6);

        assert_true(enif_inspect_binary(env, t, &b));
        assert_null(b.ref_bin);
        const unsigned char *orig = b.data;
        assert_true(enif_realloc_binary(&b, 8));
        assert_non_null(b.ref_bin);
        assert_ptr_not_equal(b.data, orig);
        assert_memory_equal(b.data, "abcdef", 6);
        b.data[0] = 'X';
        /* the term is untouched */
        ErlNifBinary again;
        assert_true(enif_inspect_binary(env, t, &again));
        assert_memory_equal(again.data, "abcdef", 6);
        enif_release_binary(&b);
}

static void inspect_binary_and_bitstrings(void **state)
{
        ErlNifEnv *env = *state;
        ErlNifBinary b;

        assert_true(enif_inspect_binary(env, bin_of(env, "xyz", 3), &b));
        assert_int_equal(b.size, 3);
        assert_memory_equal(b.data, "xyz", 3);
        assert_null(b.ref_bin);

        b.size = 77;
        assert_false(enif_inspect_binary(env, bitstring(env, "\x80", 1, 1), &b));
        assert_false(enif_inspect_binary(env, NK_NIL, &b));
        assert_false(enif_inspect_binary(env, enif_make_int(env, 1), &b));
        assert_int_equal(b.size, 77);
}

static void make_binary_takes_ownership(void **state)
{
        ErlNifEnv *env = *state;
        ErlNifBinary b, c;

        assert_true(enif_alloc_binary(4, &b));
        memcpy(b.data, "data", 4);
        struct nk_binobj *obj = b.ref_bin;
        ERL_NIF_TERM t = enif_make_binary(env, &b);
        assert_null(b.ref_bin);
        /* only the env's reference is left, and the data is still readable */
        assert_int_equal(atomic_load(&obj->refc), 1);
        assert_memory_equal(b.data, "data", 4);
        assert_true(enif_inspect_binary(env, t, &c));
        assert_int_equal(c.size, 4);
        assert_memory_equal(c.data, "data", 4);
        enif_release_binary(&b);        /* no-op after make_binary */

        /* a shrunk size is honoured */
        assert_true(enif_alloc_binary(10, &b));
        memcpy(b.data, "0123456789", 10);
        b.size = 2;
        t = enif_make_binary(env, &b);
        assert_true(enif_inspect_binary(env, t, &c));
        assert_int_equal(c.size, 2);
        assert_memory_equal(c.data, "01", 2);

        /* an inspected ErlNifBinary is copied, not shared */
        ERL_NIF_TERM src = bin_of(env, "copy", 4);
        assert_true(enif_inspect_binary(env, src, &c));
        t = enif_make_binary(env, &c);
        ErlNifBinary d;
        assert_true(enif_inspect_binary(env, t, &d));
        assert_memory_equal(d.data, "copy", 4);
        assert_ptr_not_equal(d.data, c.data);
}

static void make_new_binary(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM t;
        unsigned char *p = enif_make_new_binary(env, 3, &t);
        ErlNifBinary b;

        memcpy(p, "new", 3);
        assert_true(enif_inspect_binary(env, t, &b));
        assert_ptr_equal(b.data, p);
        assert_memory_equal(b.data, "new", 3);
        assert_non_null(enif_make_new_binary(env, 0, &t));
        assert_true(enif_is_binary(env, t));
}

static void sub_binaries(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM t = bin_of(env, "0123456789", 10);
        ErlNifBinary b;

        ERL_NIF_TERM s = enif_make_sub_binary(env, t, 2, 3);
        assert_true(enif_inspect_binary(env, s, &b));
        assert_int_equal(b.size, 3);
        assert_memory_equal(b.data, "234", 3);
        assert_int_equal(refc(s), 2);   /* shared, not copied */

        ERL_NIF_TERM ss = enif_make_sub_binary(env, s, 1, 2);
        assert_true(enif_inspect_binary(env, ss, &b));
        assert_memory_equal(b.data, "34", 2);
        assert_true(enif_inspect_binary(env, enif_make_sub_binary(env, t, 10, 0), &b));
        assert_int_equal(b.size, 0);

        /* whole bytes of a bitstring make a binary */
        ERL_NIF_TERM bits = bitstring(env, "ab\x80", 3, 1);
        assert_true(enif_inspect_binary(env, enif_make_sub_binary(env, bits, 0, 2), &b));
        assert_memory_equal(b.data, "ab", 2);

        /* out of range or not a binary: badarg */
        assert_true(enif_is_exception(env, enif_make_sub_binary(env, t, 8, 3)));
        assert_true(enif_is_exception(env, enif_make_sub_binary(env, bits, 0, 3)));
        assert_true(enif_is_exception(env, enif_make_sub_binary(env, NK_NIL, 0, 0)));
}

/* ---- iolists ------------------------------------------------------------------ */

static ERL_NIF_TERM cons(ErlNifEnv *env, ERL_NIF_TERM h, ERL_NIF_TERM t)
{
        return enif_make_list_cell(env, h, t);
}

static void iolist_accepts(void **state)
{
        ErlNifEnv *env = *state;
        ErlNifBinary b;

        /* [1, <<"ab">> | <<"cd">>] -> <<1,"abcd">> (BEAM) */
        ERL_NIF_TERM l = cons(env, enif_make_int(env, 1), cons(env, bin_of(env, "ab", 2), bin_of(env, "cd", 2)));
        assert_true(enif_inspect_iolist_as_binary(env, l, &b));
        assert_int_equal(b.size, 5);
        assert_memory_equal(b.data, "\x01" "abcd", 5);
        assert_null(b.ref_bin);

        assert_true(enif_inspect_iolist_as_binary(env, NK_NIL, &b));
        assert_int_equal(b.size, 0);
        assert_non_null(b.data);

        /* [[[]]] and a nested string */
        ERL_NIF_TERM nested = enif_make_list1(env, enif_make_list1(env, NK_NIL));
        assert_true(enif_inspect_iolist_as_binary(env, nested, &b));
        assert_int_equal(b.size, 0);
        l = enif_make_list3(env, enif_make_string(env, "ab", ERL_NIF_LATIN1), enif_make_int(env, 255),
                            enif_make_list2(env, bin_of(env, "c", 1), enif_make_int(env, 0)));
        assert_true(enif_inspect_iolist_as_binary(env, l, &b));
        assert_int_equal(b.size, 5);
        assert_memory_equal(b.data, "ab\xff" "c\0", 5);

        ERL_NIF_TERM single = bin_of(env, "bin", 3);
        assert_true(enif_inspect_iolist_as_binary(env, single, &b));
        assert_memory_equal(b.data, "bin", 3);
}

static void iolist_rejects(void **state)
{
        ErlNifEnv *env = *state;
        ErlNifBinary b;
        ERL_NIF_TERM bits = bitstring(env, "\x80", 1, 1);

        assert_false(enif_inspect_iolist_as_binary(env, bits, &b));
        assert_false(enif_inspect_iolist_as_binary(env, enif_make_list1(env, bits), &b));
        assert_false(enif_inspect_iolist_as_binary(env, enif_make_list1(env, enif_make_int(env, 256)), &b));
        assert_false(enif_inspect_iolist_as_binary(env, enif_make_list1(env, enif_make_int(env, -1)), &b));
        assert_false(enif_inspect_iolist_as_binary(env, cons(env, enif_make_int(env, 1), enif_make_int(env, 2)), &b));
        assert_false(enif_inspect_iolist_as_binary(env, nk_am_ok, &b));
        assert_false(enif_inspect_iolist_as_binary(env, enif_make_int(env, 1), &b));
        assert_false(enif_inspect_iolist_as_binary(env, enif_make_list1(env, nk_am_ok), &b));
        /* a bitstring tail */
        assert_false(enif_inspect_iolist_as_binary(env, cons(env, enif_make_int(env, 1), bits), &b));
}

static void iolist_deep_and_long(void **state)
{
        ErlNifEnv *env = *state;
        ErlNifBinary b;
        const size_t depth = 1000000;

        /* [[[...[7]...], 8] | <<"x">>], a million lists deep: a recursive
         * walk would overflow the stack */
        ERL_NIF_TERM deep = enif_make_list1(env, enif_make_int(env, 7));
        for (size_t i = 0; i < depth; i++)
                deep = enif_make_list1(env, deep);
        deep = enif_make_list_cell(env, deep, enif_make_list_cell(env, enif_make_int(env, 8), bin_of(env, "x", 1)));
        assert_true(enif_inspect_iolist_as_binary(env, deep, &b));
        assert_int_equal(b.size, 3);
        assert_memory_equal(b.data, "\x07\x08x", 3);

        /* a long flat list */
        ERL_NIF_TERM wide = NK_NIL;
        for (int i = 0; i < 100000; i++)
                wide = enif_make_list_cell(env, enif_make_int(env, i & 0xff), wide);
        assert_true(enif_inspect_iolist_as_binary(env, wide, &b));
        assert_int_equal(b.size, 100000);
        assert_int_equal(b.data[99999], 0);
}

/* ---- I/O vectors ---------------------------------------------------------------- */

static void iovec_basic(void **state)
{
        ErlNifEnv *env = *state;
        ErlNifIOVec vec, *iov = &vec;
        ERL_NIF_TERM tail = 0;
        char big[100];
        memset(big, 1, sizeof(big));
        ERL_NIF_TERM B = bin_of(env, big, 100);

        /* [<<"a">>, <<>>, B], max 10 -> 2 entries, 101 bytes, tail [] */
        ERL_NIF_TERM l = enif_make_list3(env, bin_of(env, "a", 1), bin_of(env, "", 0), B);
        assert_true(enif_inspect_iovec(env, 10, l, &tail, &iov));
        assert_ptr_equal(iov, &vec);
        assert_int_equal(iov->iovcnt, 2);
        assert_int_equal(iov->size, 101);
        assert_int_equal(tail, NK_NIL);
        assert_memory_equal(iov->iov[0].iov_base, "a", 1);
        assert_int_equal(iov->iov[1].iov_len, 100);
        assert_ptr_equal(iov->ref_bins[1], ((const struct nk_binary *) nk_box_of(B))->obj);

        /* max 0 still takes one element, as BEAM does; max 2 leaves one */
        ERL_NIF_TERM abc = enif_make_list3(env, bin_of(env, "a", 1), bin_of(env, "b", 1), bin_of(env, "c", 1));
        iov = &vec;
        assert_true(enif_inspect_iovec(env, 0, abc, &tail, &iov));
        assert_int_equal(iov->iovcnt, 1);
        unsigned len;
        assert_true(enif_get_list_length(env, tail, &len));
        assert_int_equal(len, 2);
        iov = &vec;
        assert_true(enif_inspect_iovec(env, 2, abc, &tail, &iov));
        assert_int_equal(iov->iovcnt, 2);
        assert_true(enif_get_list_length(env, tail, &len));
        assert_int_equal(len, 1);

        /* OTP 25: a bitstring under a byte counts as empty, [<<"ab">>,
         * <<1:1>>, <<"c">>] gives 2 entries of 3 bytes */
        ERL_NIF_TERM odd = enif_make_list3(env, bin_of(env, "ab", 2), bitstring(env, "\x80", 1, 1), bin_of(env, "c", 1));
        iov = &vec;
        assert_true(enif_inspect_iovec(env, 10, odd, &tail, &iov));
        assert_int_equal(iov->iovcnt, 2);
        assert_int_equal(iov->size, 3);
        assert_memory_equal(iov->iov[1].iov_base, "c", 1);

        iov = &vec;
        assert_true(enif_inspect_iovec(env, 5, NK_NIL, &tail, &iov));
        assert_int_equal(iov->iovcnt, 0);
        assert_int_equal(iov->size, 0);
}

static void iovec_rejects(void **state)
{
        ErlNifEnv *env = *state;
        ErlNifIOVec vec, *iov = &vec;
        ERL_NIF_TERM tail = 0;

        ERL_NIF_TERM improper = enif_make_list_cell(env, bin_of(env, "a", 1), bin_of(env, "b", 1));
        assert_false(enif_inspect_iovec(env, 5, improper, &tail, &iov));
        assert_false(enif_inspect_iovec(env, 5, enif_make_list1(env, bitstring(env, "ab\x80", 3, 1)), &tail, &iov));
        assert_false(enif_inspect_iovec(env, 5, enif_make_list1(env, enif_make_int(env, 1)), &tail, &iov));
        assert_false(enif_inspect_iovec(env, 5, bin_of(env, "x", 1), &tail, &iov));
        ERL_NIF_TERM nested = enif_make_list2(env, bin_of(env, "a", 1), enif_make_list1(env, bin_of(env, "b", 1)));
        assert_false(enif_inspect_iovec(env, 5, nested, &tail, &iov));
        assert_int_equal(tail, 0);
        assert_ptr_equal(iov, &vec);
}

static void iovec_large_and_envless(void **state)
{
        ErlNifEnv *env = *state;
        ErlNifIOVec vec, *iov = &vec;
        ERL_NIF_TERM tail, arr[20];

        for (int i = 0; i < 20; i++)
                arr[i] = bin_of(env, "z", 1);
        ERL_NIF_TERM l = enif_make_list_from_array(env, arr, 20);

        /* 20 entries do not fit small_iov: the iovec is allocated (in env) */
        assert_true(enif_inspect_iovec(env, 100, l, &tail, &iov));
        assert_ptr_not_equal(iov, &vec);
        assert_int_equal(iov->iovcnt, 20);
        assert_int_equal(iov->size, 20);
        enif_free_iovec(iov);   /* harmless for an env-owned iovec */

        /* without an env the iovec holds its own references */
        long before = refc(arr[0]);
        iov = NULL;
        assert_true(enif_inspect_iovec(NULL, 100, l, &tail, &iov));
        assert_non_null(iov);
        assert_int_equal(refc(arr[0]), before + 1);
        enif_free_iovec(iov);
        assert_int_equal(refc(arr[0]), before);

        /* ... also when the caller's struct is used */
        iov = &vec;
        assert_true(enif_inspect_iovec(NULL, 3, l, &tail, &iov));
        assert_ptr_equal(iov, &vec);
        assert_int_equal(refc(arr[0]), before + 1);
        enif_free_iovec(iov);
        assert_int_equal(refc(arr[0]), before);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(alloc_realloc_release, setup, teardown),
                cmocka_unit_test_setup_teardown(realloc_of_inspected_copies, setup, teardown),
                cmocka_unit_test_setup_teardown(inspect_binary_and_bitstrings, setup, teardown),
                cmocka_unit_test_setup_teardown(make_binary_takes_ownership, setup, teardown),
                cmocka_unit_test_setup_teardown(make_new_binary, setup, teardown),
                cmocka_unit_test_setup_teardown(sub_binaries, setup, teardown),
                cmocka_unit_test_setup_teardown(iolist_accepts, setup, teardown),
                cmocka_unit_test_setup_teardown(iolist_rejects, setup, teardown),
                cmocka_unit_test_setup_teardown(iolist_deep_and_long, setup, teardown),
                cmocka_unit_test_setup_teardown(iovec_basic, setup, teardown),
                cmocka_unit_test_setup_teardown(iovec_rejects, setup, teardown),
                cmocka_unit_test_setup_teardown(iovec_large_and_envless, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
