/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The enif_* map functions and map iterators, against BEAM's (OTP 25)
 * results: key order, head/tail positions, hash-ordered large maps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

static ERL_NIF_TERM atom(const char *s)
{
        return nk_atom_utf8(s, strlen(s));
}

static int int_of(ErlNifEnv *env, ERL_NIF_TERM t)
{
        int v = -999;
        assert_true(enif_get_int(env, t, &v));
        return v;
}

static void build_and_lookup(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM m = enif_make_new_map(env), m2, m3, v;
        size_t size = 99;

        assert_true(enif_is_map(env, m));
        assert_true(enif_get_map_size(env, m, &size));
        assert_int_equal(size, 0);

        assert_true(enif_make_map_put(env, m, atom("a"), enif_make_int(env, 1), &m2));
        assert_true(enif_make_map_put(env, m2, atom("b"), enif_make_int(env, 2), &m3));
        assert_true(enif_get_map_size(env, m3, &size));
        assert_int_equal(size, 2);
        assert_true(enif_get_map_value(env, m3, atom("b"), &v));
        assert_int_equal(int_of(env, v), 2);
        /* maps are values: the older ones are unchanged */
        assert_true(enif_get_map_size(env, m2, &size));
        assert_int_equal(size, 1);
        assert_false(enif_get_map_value(env, m2, atom("b"), &v));

        /* put over an existing key replaces */
        assert_true(enif_make_map_put(env, m3, atom("a"), enif_make_int(env, 10), &m));
        assert_true(enif_get_map_value(env, m, atom("a"), &v));
        assert_int_equal(int_of(env, v), 10);
        assert_true(enif_get_map_size(env, m, &size));
        assert_int_equal(size, 2);

        /* 1 and 1.0 are different keys */
        assert_true(enif_make_map_put(env, m, enif_make_int(env, 1), atom("int"), &m));
        assert_false(enif_get_map_value(env, m, enif_make_double(env, 1.0), &v));
        assert_true(enif_get_map_value(env, m, enif_make_int(env, 1), &v));
        assert_int_equal(v, atom("int"));

        /* not a map */
        assert_false(enif_get_map_size(env, NK_NIL, &size));
        assert_false(enif_make_map_put(env, NK_NIL, atom("a"), atom("b"), &m2));
        assert_false(enif_get_map_value(env, atom("x"), atom("a"), &v));
        assert_false(enif_is_map(env, enif_make_tuple(env, 0)));
}

static void update_and_remove(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM keys[2] = { atom("x"), atom("y") };
        ERL_NIF_TERM vals[2] = { enif_make_int(env, 1), enif_make_int(env, 2) };
        ERL_NIF_TERM m, out = 0, v;
        size_t size;

        assert_true(enif_make_map_from_arrays(env, keys, vals, 2, &m));
        assert_true(enif_make_map_update(env, m, atom("x"), enif_make_int(env, 5), &out));
        assert_true(enif_get_map_value(env, out, atom("x"), &v));
        assert_int_equal(int_of(env, v), 5);
        /* update needs the key to exist */
        out = 0;
        assert_false(enif_make_map_update(env, m, atom("z"), enif_make_int(env, 5), &out));
        assert_int_equal(out, 0);
        assert_false(enif_make_map_update(env, NK_NIL, atom("x"), NK_NIL, &out));

        assert_true(enif_make_map_remove(env, m, atom("x"), &out));
        assert_true(enif_get_map_size(env, out, &size));
        assert_int_equal(size, 1);
        assert_false(enif_get_map_value(env, out, atom("x"), &v));
        /* removing an absent key succeeds and gives the same map */
        assert_true(enif_make_map_remove(env, m, atom("nope"), &out));
        assert_int_equal(out, m);
        assert_false(enif_make_map_remove(env, enif_make_int(env, 1), atom("x"), &out));
}

static void from_arrays(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM m = 0, v;
        ERL_NIF_TERM dupk[2] = { atom("a"), atom("a") };
        ERL_NIF_TERM vals[2] = { enif_make_int(env, 1), enif_make_int(env, 2) };
        ERL_NIF_TERM numk[2] = { enif_make_int(env, 1), enif_make_double(env, 1.0) };

        /* BEAM: duplicates fail, 1 and 1.0 do not collide */
        assert_false(enif_make_map_from_arrays(env, dupk, vals, 2, &m));
        assert_int_equal(m, 0);
        assert_true(enif_make_map_from_arrays(env, numk, vals, 2, &m));
        assert_true(enif_get_map_value(env, m, numk[1], &v));
        assert_int_equal(int_of(env, v), 2);
        assert_true(enif_make_map_from_arrays(env, NULL, NULL, 0, &m));
        size_t size = 9;
        assert_true(enif_get_map_size(env, m, &size));
        assert_int_equal(size, 0);
}

/* Keys in iteration order, from FIRST onwards. */
static size_t iterate(ErlNifEnv *env, ERL_NIF_TERM map, ERL_NIF_TERM *out, size_t max)
{
        ErlNifMapIterator it;
        ERL_NIF_TERM k, v;
        size_t n = 0;

        assert_true(enif_map_iterator_create(env, map, &it, ERL_NIF_MAP_ITERATOR_FIRST));
        while (enif_map_iterator_get_pair(env, &it, &k, &v)) {
                assert_true(n < max);
                out[n++] = k;
                enif_map_iterator_next(env, &it);
        }
        enif_map_iterator_destroy(env, &it);
        return n;
}

static void iterator_order_and_ends(void **state)
{
        ErlNifEnv *env = *state;
        /* #{b => 1, a => 2, 1 => 3, 1.0 => 4}: BEAM visits 1, 1.0, a, b */
        ERL_NIF_TERM keys[4] = { atom("b"), atom("a"), enif_make_int(env, 1), enif_make_double(env, 1.0) };
        ERL_NIF_TERM vals[4] = { enif_make_int(env, 1), enif_make_int(env, 2), enif_make_int(env, 3),
                                 enif_make_int(env, 4) };
        ERL_NIF_TERM m, k, v, seen[4];
        ErlNifMapIterator it;

        assert_true(enif_make_map_from_arrays(env, keys, vals, 4, &m));
        assert_int_equal(iterate(env, m, seen, 4), 4);
        assert_int_equal(seen[0], keys[2]);
        assert_int_equal(seen[1], keys[3]);
        assert_int_equal(seen[2], keys[1]);
        assert_int_equal(seen[3], keys[0]);

        /* forwards: fresh iterator is neither head nor tail */
        assert_true(enif_map_iterator_create(env, m, &it, ERL_NIF_MAP_ITERATOR_FIRST));
        assert_false(enif_map_iterator_is_head(env, &it));
        assert_false(enif_map_iterator_is_tail(env, &it));
        for (int i = 0; i < 3; i++)
                assert_true(enif_map_iterator_next(env, &it));
        assert_false(enif_map_iterator_next(env, &it));        /* now past the end */
        assert_true(enif_map_iterator_is_tail(env, &it));
        assert_false(enif_map_iterator_is_head(env, &it));
        assert_false(enif_map_iterator_get_pair(env, &it, &k, &v));
        assert_false(enif_map_iterator_next(env, &it));        /* stays at the tail */
        assert_true(enif_map_iterator_prev(env, &it));         /* back onto b */
        assert_true(enif_map_iterator_get_pair(env, &it, &k, &v));
        assert_int_equal(k, keys[0]);
        assert_int_equal(int_of(env, v), 1);
        enif_map_iterator_destroy(env, &it);

        /* backwards from LAST to the head */
        assert_true(enif_map_iterator_create(env, m, &it, ERL_NIF_MAP_ITERATOR_LAST));
        assert_true(enif_map_iterator_get_pair(env, &it, &k, &v));
        assert_int_equal(k, keys[0]);
        for (int i = 0; i < 3; i++)
                assert_true(enif_map_iterator_prev(env, &it));
        assert_true(enif_map_iterator_get_pair(env, &it, &k, &v));
        assert_int_equal(k, keys[2]);
        assert_false(enif_map_iterator_prev(env, &it));
        assert_true(enif_map_iterator_is_head(env, &it));
        assert_false(enif_map_iterator_is_tail(env, &it));
        assert_false(enif_map_iterator_get_pair(env, &it, &k, &v));
        assert_true(enif_map_iterator_next(env, &it));
        assert_true(enif_map_iterator_get_pair(env, &it, &k, &v));
        assert_int_equal(k, keys[2]);
        enif_map_iterator_destroy(env, &it);
}

static void iterator_empty_and_invalid(void **state)
{
        ErlNifEnv *env = *state;
        ErlNifMapIterator it;
        ERL_NIF_TERM k, v, m = enif_make_new_map(env);

        /* BEAM: an empty map's iterator is head and tail at once */
        assert_true(enif_map_iterator_create(env, m, &it, ERL_NIF_MAP_ITERATOR_FIRST));
        assert_true(enif_map_iterator_is_head(env, &it));
        assert_true(enif_map_iterator_is_tail(env, &it));
        assert_false(enif_map_iterator_get_pair(env, &it, &k, &v));
        assert_false(enif_map_iterator_next(env, &it));
        enif_map_iterator_destroy(env, &it);
        assert_true(enif_map_iterator_create(env, m, &it, ERL_NIF_MAP_ITERATOR_LAST));
        assert_true(enif_map_iterator_is_head(env, &it));
        assert_true(enif_map_iterator_is_tail(env, &it));
        assert_false(enif_map_iterator_prev(env, &it));
        enif_map_iterator_destroy(env, &it);

        assert_false(enif_map_iterator_create(env, NK_NIL, &it, ERL_NIF_MAP_ITERATOR_FIRST));
        assert_false(enif_map_iterator_create(env, m, &it, (ErlNifMapIteratorEntry) 7));
}

/* maps:to_list(maps:from_list([{I, I} || I <- 1..33])) on OTP 25: the
 * order term_to_binary sends the pairs in. A NIF iterator walks it from
 * the other end: in BEAM, enif_map_iterator_next visits 16 first. */
static const int beam33[33] = { 33, 12, 23, 29, 30, 26, 31, 11, 9, 32, 25, 28, 6, 13, 20, 15, 14,
                                2, 7, 1, 8, 3, 17, 22, 21, 4, 24, 10, 27, 19, 5, 18, 16 };

static ERL_NIF_TERM decode_map33(ErlNifEnv *env)
{
        uint8_t etf[6 + 33 * 4] = { 131, 116, 0, 0, 0, 33 };
        ERL_NIF_TERM m;

        for (int i = 0; i < 33; i++) {
                uint8_t *p = etf + 6 + 4 * i;
                p[0] = 97;
                p[1] = (uint8_t) beam33[i];
                p[2] = 97;
                p[3] = (uint8_t) beam33[i];
        }
        assert_int_equal(enif_binary_to_term(env, etf, sizeof(etf), &m, 0), sizeof(etf));
        return m;
}

static void large_maps_keep_beam_order(void **state)
{
        ErlNifEnv *env = *state;
        ERL_NIF_TERM m = decode_map33(env), out, seen[40], v;
        size_t size;

        assert_int_equal(iterate(env, m, seen, 40), 33);
        for (int i = 0; i < 33; i++)
                assert_int_equal(int_of(env, seen[i]), beam33[32 - i]);
        assert_true(enif_get_map_value(env, m, enif_make_int(env, 17), &v));
        assert_int_equal(int_of(env, v), 17);

        /* LAST is the last pair BEAM's iterator visits */
        ErlNifMapIterator it;
        ERL_NIF_TERM k;
        assert_true(enif_map_iterator_create(env, m, &it, ERL_NIF_MAP_ITERATOR_LAST));
        assert_true(enif_map_iterator_get_pair(env, &it, &k, &v));
        assert_int_equal(int_of(env, k), 33);
        assert_true(enif_map_iterator_prev(env, &it));
        assert_true(enif_map_iterator_get_pair(env, &it, &k, &v));
        assert_int_equal(int_of(env, k), 12);
        enif_map_iterator_destroy(env, &it);

        /* replacing a value keeps the order */
        assert_true(enif_make_map_update(env, m, enif_make_int(env, 9), atom("nine"), &out));
        assert_int_equal(iterate(env, out, seen, 40), 33);
        for (int i = 0; i < 33; i++)
                assert_int_equal(int_of(env, seen[i]), beam33[32 - i]);
        assert_true(enif_get_map_value(env, out, enif_make_int(env, 9), &v));
        assert_int_equal(v, atom("nine"));

        /* a new key keeps the others in BEAM's order (and comes first) */
        assert_true(enif_make_map_put(env, m, enif_make_int(env, 34), enif_make_int(env, 34), &out));
        assert_int_equal(iterate(env, out, seen, 40), 34);
        assert_int_equal(int_of(env, seen[0]), 34);
        for (int i = 0; i < 33; i++)
                assert_int_equal(int_of(env, seen[i + 1]), beam33[32 - i]);
        assert_true(enif_make_map_remove(env, out, enif_make_int(env, 18), &out));
        assert_int_equal(iterate(env, out, seen, 40), 33);
        assert_int_equal(int_of(env, seen[0]), 34);
        assert_int_equal(int_of(env, seen[1]), 16);
        assert_int_equal(int_of(env, seen[2]), 5);

        /* BEAM: down to 32 pairs the map is a flatmap again, in key order */
        assert_true(enif_make_map_remove(env, m, enif_make_int(env, 33), &out));
        assert_true(enif_get_map_size(env, out, &size));
        assert_int_equal(size, 32);
        assert_int_equal(iterate(env, out, seen, 40), 32);
        for (int i = 0; i < 32; i++)
                assert_int_equal(int_of(env, seen[i]), i + 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(build_and_lookup, setup, teardown),
                cmocka_unit_test_setup_teardown(update_and_remove, setup, teardown),
                cmocka_unit_test_setup_teardown(from_arrays, setup, teardown),
                cmocka_unit_test_setup_teardown(iterator_order_and_ends, setup, teardown),
                cmocka_unit_test_setup_teardown(iterator_empty_and_invalid, setup, teardown),
                cmocka_unit_test_setup_teardown(large_maps_keep_beam_order, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
