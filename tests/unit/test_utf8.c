/* SPDX-License-Identifier: Apache-2.0 */
/* Strict UTF-8 (common/utf8.c), which atoms, literals, the printer and
 * the JSON writers share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

static void test_decode(void **state)
{
        static const struct {
                const char *s;
                size_t len;
                uint32_t cp;
        } good[] = {
                { "A", 1, 'A' },
                { "\xc3\xa9", 2, 0xe9 },
                { "\xe2\x82\xac", 3, 0x20ac },
                { "\xf0\x9f\x98\x80", 4, 0x1f600 },
                { "\xf4\x8f\xbf\xbf", 4, 0x10ffff },
        };
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
                uint32_t cp = 0;
                assert_int_equal(nk_utf8_decode((const uint8_t *) good[i].s, good[i].len, &cp), good[i].len);
                assert_int_equal(cp, good[i].cp);
                uint8_t out[4];
                assert_int_equal(nk_utf8_encode(cp, out), good[i].len);
                assert_int_equal(nk_utf8_size(cp), good[i].len);
                assert_memory_equal(out, good[i].s, good[i].len);
        }
        /* Overlong forms, surrogates, past U+10FFFF, a lone continuation,
         * a sequence cut short, a bad continuation. */
        static const char *const bad[] = { "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf",
                                           "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80",
                                           "\x80", "\xe2\x82", "\xc3\x28" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                uint32_t cp;
                assert_int_equal(nk_utf8_decode((const uint8_t *) bad[i], strlen(bad[i]), &cp), 0);
                assert_int_equal(nk_utf8_decode_str(bad[i], &cp), 0);
        }
        uint32_t cp;
        /* The length bounds the sequence; the NUL ends it in a string. */
        assert_int_equal(nk_utf8_decode((const uint8_t *) "\xe2\x82\xac", 2, &cp), 0);
        assert_int_equal(nk_utf8_decode_str("\xe2\x82", &cp), 0);
        assert_int_equal(nk_utf8_decode_str("\xe2\x82\xac!", &cp), 3);
}

static void test_chars(void **state)
{
        bool latin1 = false;

        assert_int_equal(nk_utf8_chars((const uint8_t *) "caf\xc3\xa9", 5, &latin1), 4);
        assert_true(latin1);
        assert_int_equal(nk_utf8_chars((const uint8_t *) "\xe2\x82\xac" "1", 4, &latin1), 2);
        assert_false(latin1);
        assert_int_equal(nk_utf8_chars((const uint8_t *) "", 0, NULL), 0);
        assert_int_equal(nk_utf8_chars((const uint8_t *) "ok\xed\xa0\x80", 5, NULL), -1);
        assert_int_equal(nk_utf8_chars((const uint8_t *) "ok\xc3", 3, NULL), -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_decode),
                cmocka_unit_test(test_chars),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
