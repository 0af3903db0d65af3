/* SPDX-License-Identifier: Apache-2.0 */
/* IP address literals (common/inet.c): what is one, and its canonical text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "inet.h"

static void test_parse(void **state)
{
        unsigned char a[NK_IP_ADDR_MAX];

        assert_int_equal(nk_ip_parse("127.0.0.1", a), AF_INET);
        assert_memory_equal(a, "\x7f\x00\x00\x01", 4);
        assert_int_equal(nk_ip_parse("::1", a), AF_INET6);
        assert_memory_equal(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
        assert_int_equal(nk_ip_parse("::ffff:10.0.0.1", NULL), AF_INET6);
        /* Not literals: names, the shorthands getaddrinfo would take,
         * brackets, zones, ports, nothing. */
        static const char *const no[] = { "localhost", "127.1", "0x7f.0.0.1", "127.0.0.1 ", "[::1]",
                                          "fe80::1%eth0", "127.0.0.1:80", "", "256.0.0.1", "1.2.3" };
        for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
                assert_int_equal(nk_ip_parse(no[i], a), 0);
                assert_false(nk_ip_is_literal(no[i]));
        }
}

static void test_canonical(void **state)
{
        char buf[NK_IP_TEXT_MAX];

        assert_int_equal(nk_ip_canonical("0:0:0:0:0:0:0:1", buf), AF_INET6);
        assert_string_equal(buf, "::1");
        assert_int_equal(nk_ip_canonical("2001:DB8::0:1", buf), AF_INET6);
        assert_string_equal(buf, "2001:db8::1");
        assert_int_equal(nk_ip_canonical("10.0.0.1", buf), AF_INET);
        assert_string_equal(buf, "10.0.0.1");
        assert_int_equal(nk_ip_canonical("example.org", buf), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_canonical),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
