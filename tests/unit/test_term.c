/* SPDX-License-Identifier: Apache-2.0 */
/* The host's term model: atoms, interned pids, integers, arenas, deep copy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "term.h"

static void atoms_are_interned(void **state)
{
        ERL_NIF_TERM a = nk_atom_utf8("hello", 5);
        ERL_NIF_TERM b = nk_atom_latin1("hello", 5);
        assert_true(nk_is_atom(a));
        assert_int_equal(a, b);
        assert_int_equal(nk_atom_find_utf8("hello", 5), a);
        assert_int_equal(nk_atom_find_utf8("never-made-xyz", 14), NK_NONE);

        size_t len;
        assert_string_equal(nk_atom_text(nk_am_true, &len), "true");
        assert_int_equal(len, 4);
        assert_string_equal(nk_atom_text(nk_am_resource_node, NULL), "nifkit_resource@nohost");
}

static void atoms_latin1_and_utf8(void **state)
{
        /* "é" as Latin-1 (one byte) and as UTF-8 (two) name the same atom */
        ERL_NIF_TERM l = nk_atom_latin1("\xe9t\xe9", 3);
        ERL_NIF_TERM u = nk_atom_utf8("\xc3\xa9t\xc3\xa9", 5);
        assert_int_equal(l, u);
        bool latin1;
        assert_int_equal(nk_atom_chars(u, &latin1), 3);
        assert_true(latin1);

        ERL_NIF_TERM snow = nk_atom_utf8("\xe2\x98\x83", 3); /* U+2603 */
        assert_int_equal(nk_atom_chars(snow, &latin1), 1);
        assert_false(latin1);
}

static void atoms_reject_bad_text(void **state)
{
        assert_int_equal(nk_atom_utf8("\xc3", 1), NK_NONE);             /* truncated */
        assert_int_equal(nk_atom_utf8("\xc0\xaf", 2), NK_NONE);         /* overlong */
        assert_int_equal(nk_atom_utf8("\xed\xa0\x80", 3), NK_NONE);     /* surrogate */
        assert_int_equal(nk_atom_utf8("\xf4\x90\x80\x80", 4), NK_NONE); /* > U+10FFFF */
        char longname[257];
        memset(longname, 'a', sizeof(longname));
        assert_int_not_equal(nk_atom_utf8(longname, 255), NK_NONE);
        assert_int_equal(nk_atom_utf8(longname, 256), NK_NONE);
        assert_int_equal(nk_atom_latin1(longname, 256), NK_NONE);
}

static void pids_are_interned(void **state)
{
        struct nk_pid_data p = { nk_atom_index(nk_am_nonode), 80, 0, 0 };
        ERL_NIF_TERM a = nk_pid_intern(&p);
        ERL_NIF_TERM b = nk_pid_intern(&p);
        assert_true(nk_is_pid(a));
        assert_int_equal(a, b);
        p.id = 81;
        assert_int_not_equal(nk_pid_intern(&p), a);
        assert_int_equal(nk_pid_get(a)->id, 80);

        struct nk_port_data q = { nk_atom_index(nk_am_nonode), 0, 5 };
        ERL_NIF_TERM port = nk_port_intern(&q);
        assert_true(nk_is_port(port));
        assert_int_equal(nk_port_get(port)->id, 5);
        assert_null(nk_pid_get(port));
}

static void integers_are_canonical(void **state)
{
        ErlNifEnv env;
        nk_env_init(&env);
        int64_t v;
        uint64_t u;

        assert_true(nk_is_small(nk_make_int64(&env, NK_SMALL_MAX)));
        assert_true(nk_is_small(nk_make_int64(&env, NK_SMALL_MIN)));
        ERL_NIF_TERM big = nk_make_int64(&env, NK_SMALL_MAX + 1);
        assert_true(nk_is_kind(big, NK_BIG));
        assert_true(nk_get_int64(big, &v));
        assert_true(v == NK_SMALL_MAX + 1);

        ERL_NIF_TERM min = nk_make_int64(&env, INT64_MIN);
        assert_true(nk_get_int64(min, &v));
        assert_true(v == INT64_MIN);
        assert_false(nk_get_uint64(min, &u));

        ERL_NIF_TERM umax = nk_make_uint64(&env, UINT64_MAX);
        assert_true(nk_get_uint64(umax, &u));
        assert_true(u == UINT64_MAX);
        assert_false(nk_get_int64(umax, &v));

        /* a big encoding of a small value comes back small */
        uint8_t d[] = { 7, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
        ERL_NIF_TERM seven = nk_make_big(&env, true, d, sizeof(d));
        assert_int_equal(seven, nk_make_small(-7));

        /* 2^80 fits nowhere but a box */
        uint8_t e[11] = { [10] = 1 };
        ERL_NIF_TERM huge = nk_make_big(&env, false, e, sizeof(e));
        assert_true(nk_is_kind(huge, NK_BIG));
        assert_int_equal(nk_box_of(huge)->n, 11);
        assert_false(nk_get_uint64(huge, &u));
        nk_env_destroy(&env);
}

static void binaries_are_shared_and_released(void **state)
{
        ErlNifEnv a, b;
        nk_env_init(&a);
        nk_env_init(&b);
        ERL_NIF_TERM bin = nk_make_binary_copy(&a, "abcdef", 6);
        struct nk_binary *x = (struct nk_binary *) nk_box_of(bin);
        struct nk_binobj *obj = x->obj;
        assert_int_equal(atomic_load(&obj->refc), 1);

        ERL_NIF_TERM copy = nk_copy_term(&b, bin);
        assert_int_equal(atomic_load(&obj->refc), 2);
        assert_memory_equal(((struct nk_binary *) nk_box_of(copy))->data, "abcdef", 6);

        nk_env_destroy(&a);
        assert_int_equal(atomic_load(&obj->refc), 1);
        assert_memory_equal(((struct nk_binary *) nk_box_of(copy))->data, "abcdef", 6);
        nk_env_destroy(&b);
}

static void deep_copy_does_not_recurse(void **state)
{
        ErlNifEnv a, b;
        nk_env_init(&a);
        nk_env_init(&b);
        /* [{N}] nested a million deep: recursion would need ~100 MB of stack */
        ERL_NIF_TERM t = NK_NIL;
        for (int i = 0; i < 1000000; i++) {
                ERL_NIF_TERM e = nk_make_small(i);
                t = nk_make_cons(&a, nk_make_tuple_n(&a, 1, &e), t);
                e = t;
                t = nk_make_tuple_n(&a, 1, &e);
        }
        ERL_NIF_TERM c = nk_copy_term(&b, t);
        nk_env_destroy(&a);
        int depth = 0;
        while (nk_is_kind(c, NK_TUPLE)) {
                ERL_NIF_TERM l = ((struct nk_tuple *) nk_box_of(c))->elems[0];
                struct nk_cons *cell = (struct nk_cons *) nk_box_of(l);
                ERL_NIF_TERM n = ((struct nk_tuple *) nk_box_of(cell->head))->elems[0];
                assert_int_equal(nk_small_value(n), 999999 - depth);
                c = cell->tail;
                depth++;
        }
        assert_int_equal(depth, 1000000);
        assert_int_equal(c, NK_NIL);
        nk_env_destroy(&b);
}

static void maps_sort_and_dedupe(void **state)
{
        ErlNifEnv env;
        nk_env_init(&env);
        ERL_NIF_TERM keys[] = { nk_atom_utf8("b", 1), nk_atom_utf8("a", 1), nk_atom_utf8("b", 1) };
        ERL_NIF_TERM vals[] = { nk_make_small(1), nk_make_small(2), nk_make_small(3) };
        ERL_NIF_TERM m = nk_make_map(&env, 3, keys, vals, false);
        struct nk_map *map = (struct nk_map *) nk_box_of(m);
        assert_int_equal(map->h.n, 2);
        assert_int_equal(map->keys[0], keys[1]);
        assert_int_equal(map->vals[1], nk_make_small(3));       /* last one wins */
        assert_int_equal(nk_make_map(&env, 3, keys, vals, true), NK_NONE);
        nk_env_destroy(&env);
}

static void arena_reuse_after_reset(void **state)
{
        ErlNifEnv env;
        nk_env_init(&env);
        for (int round = 0; round < 3; round++) {
                for (int i = 0; i < 10000; i++)
                        assert_int_not_equal(nk_make_float(&env, i), NK_NONE);
                /* a large allocation gets a chunk of its own */
                assert_non_null(nk_env_alloc(&env, 5u << 20));
                nk_env_reset(&env);
        }
        nk_env_destroy(&env);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(atoms_are_interned),
                cmocka_unit_test(atoms_latin1_and_utf8),
                cmocka_unit_test(atoms_reject_bad_text),
                cmocka_unit_test(pids_are_interned),
                cmocka_unit_test(integers_are_canonical),
                cmocka_unit_test(binaries_are_shared_and_released),
                cmocka_unit_test(deep_copy_does_not_recurse),
                cmocka_unit_test(maps_sort_and_dedupe),
                cmocka_unit_test(arena_reuse_after_reset),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
