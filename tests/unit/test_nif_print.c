/* SPDX-License-Identifier: Apache-2.0 */
/* enif_snprintf / enif_fprintf: C conversions and BEAM's %T for terms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "host_internal.h"
#include "term.h"

static ErlNifEnv *env;

static int setup(void **state)
{
        if (nk_atoms_init() < 0)
                return -1;
        env = enif_alloc_env();
        return env ? 0 : -1;
}

static int teardown(void **state)
{
        enif_free_env(env);
        return 0;
}

static void expect_term(ERL_NIF_TERM t, const char *want)
{
        char buf[512];
        int n = enif_snprintf(buf, sizeof(buf), "%T", t);

        assert_int_equal(n, (int) strlen(want));
        assert_string_equal(buf, want);
}

static ERL_NIF_TERM list_of(const char *s)
{
        ERL_NIF_TERM l = NK_NIL;
        for (size_t i = strlen(s); i-- > 0;)
                l = nk_make_cons(env, nk_make_small((unsigned char) s[i]), l);
        return l;
}

static void c_conversions(void **state)
{
        char buf[128];
        int n;

        n = enif_snprintf(buf, sizeof(buf), "%d|%5s|%-4u|%x|%c|%%|%ld|%lld|%zu|%.2f|%e",
                          -42, "ab", 7u, 255u, 'z', -1L, 1LL << 40, (size_t) 99, 3.14159, 1e10);
        assert_string_equal(buf, "-42|   ab|7   |ff|z|%|-1|1099511627776|99|3.14|1.000000e+10");
        assert_int_equal(n, (int) strlen(buf));

        n = enif_snprintf(buf, sizeof(buf), "[%*d] [%.*s] [%hhd]", 6, 12, 3, "abcdef", 300);
        assert_string_equal(buf, "[    12] [abc] [44]");
        (void) n;

        /* truncation: the return value is what would have been written */
        n = enif_snprintf(buf, 5, "%s-%d", "hello", 12345);
        assert_int_equal(n, 11);
        assert_string_equal(buf, "hell");
        n = enif_snprintf(NULL, 0, "%s", "size only");
        assert_int_equal(n, 9);

        char *big = malloc(2000);
        memset(big, 'q', 1999);
        big[1999] = '\0';
        char *out = malloc(2100);
        n = enif_snprintf(out, 2100, "<%s>", big);
        assert_int_equal(n, 2001);
        assert_int_equal(out[0], '<');
        assert_int_equal(out[2000], '>');
        free(big);
        free(out);

        /* a format that ends inside a conversion is refused */
        assert_true(enif_snprintf(buf, sizeof(buf), "abc %l") < 0);
}

static void terms_in_erlang_syntax(void **state)
{
        expect_term(nk_make_small(-17), "-17");
        expect_term(nk_am_ok, "ok");
        expect_term(nk_atom_latin1("Hello world", 11), "'Hello world'");
        expect_term(nk_atom_latin1("it's", 4), "'it\\'s'");
        expect_term(nk_atom_latin1("end", 3), "'end'");
        expect_term(nk_atom_latin1("node@host", 9), "node@host");
        expect_term(NK_NIL, "[]");
        expect_term(nk_make_float(env, 1.5), "1.5");
        expect_term(nk_make_float(env, 2.0), "2.0");
        expect_term(nk_make_float(env, 0.1), "0.1");
        expect_term(nk_make_float(env, 1e300), "1.0e300");
        expect_term(nk_make_float(env, -2.5e-7), "-2.5e-7");

        uint8_t two70[9] = { 0, 0, 0, 0, 0, 0, 0, 0, 0x40 };        /* 2^70 */
        expect_term(nk_make_big(env, false, two70, sizeof(two70)), "1180591620717411303424");
        expect_term(nk_make_big(env, true, two70, sizeof(two70)), "-1180591620717411303424");
        expect_term(nk_make_uint64(env, UINT64_MAX), "18446744073709551615");

        ERL_NIF_TERM elems[3] = { nk_make_small(1), nk_make_binary_copy(env, "ab", 2),
                                  nk_make_cons(env, nk_make_small(1), nk_make_cons(env, nk_make_small(2), NK_NIL)) };
        expect_term(nk_make_tuple_n(env, 3, elems), "{1,<<\"ab\">>,[1,2]}");
        expect_term(nk_make_tuple_n(env, 0, NULL), "{}");
        expect_term(list_of("abc"), "\"abc\"");
        expect_term(list_of("a\"b\n"), "\"a\\\"b\\n\"");
        expect_term(nk_make_cons(env, nk_am_ok, nk_make_small(5)), "[ok|5]");
        expect_term(nk_make_binary_copy(env, "\x01\xff", 2), "<<1,255>>");
        expect_term(nk_make_binary_copy(env, "", 0), "<<>>");

        ERL_NIF_TERM keys[2] = { nk_atom_latin1("b", 1), nk_atom_latin1("a", 1) };
        ERL_NIF_TERM vals[2] = { nk_make_small(2), list_of("x") };
        expect_term(nk_make_map(env, 2, keys, vals, true), "#{a => \"x\",b => 2}");

        struct nk_pid_data p = { nk_atom_index(nk_am_nonode), 85, 3, 0 };
        expect_term(nk_pid_intern(&p), "<0.85.3>");
        struct nk_port_data port = { nk_atom_index(nk_am_nonode), 0, 12 };
        expect_term(nk_port_intern(&port), "#Port<0.12>");

        /* %T mixed with other conversions consumes its argument in order */
        char buf[128];
        enif_snprintf(buf, sizeof(buf), "%s=%T (%d)", "reply", nk_am_ok, 7);
        assert_string_equal(buf, "reply=ok (7)");
}

static void fprintf_writes(void **state)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        assert_non_null(f);
        assert_int_equal(enif_fprintf(f, "%T and %d", nk_make_small(5), 6), 7);
        fclose(f);
        assert_string_equal(text, "5 and 6");
        free(text);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(c_conversions),
                cmocka_unit_test(terms_in_erlang_syntax),
                cmocka_unit_test(fprintf_writes),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
