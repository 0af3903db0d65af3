/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Erlang term literal reader. Every good case's expected bytes are what
 * term_to_binary(T, [{minor_version, 2}]) gives for the term erl_eval makes
 * of the same text; every bad case's message is asserted word for word.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "literal.h"

struct good {
        const char *text;
        const char *etf;
        size_t len;
};

#define T(text, etf) { text, etf, sizeof(etf) - 1 }

static const struct good good[] = {
        T("0", "\x83\x61\x00"),
        T("42", "\x83\x61\x2a"),
        T("-42", "\x83\x62\xff\xff\xff\xd6"),
        T("+7", "\x83\x61\x07"),
        T("1_000_000", "\x83\x62\x00\x0f\x42\x40"),
        T("16#ff", "\x83\x61\xff"),
        T("16#FF", "\x83\x61\xff"),
        T("-16#10", "\x83\x62\xff\xff\xff\xf0"),
        T("2#1010", "\x83\x61\x0a"),
        T("36#zz", "\x83\x62\x00\x00\x05\x0f"),
        T("$a", "\x83\x61\x61"),
        T("$\\n", "\x83\x61\x0a"),
        T("$\\x{3B1}", "\x83\x62\x00\x00\x03\xb1"),
        T("$\303\251", "\x83\x61\xe9"),
        T("$\\\\", "\x83\x61\x5c"),
        T("$ ", "\x83\x61\x20"),
        T("-$a", "\x83\x62\xff\xff\xff\x9f"),
        T("255", "\x83\x61\xff"),
        T("256", "\x83\x62\x00\x00\x01\x00"),
        T("2147483647", "\x83\x62\x7f\xff\xff\xff"),
        T("2147483648", "\x83\x6e\x04\x00\x00\x00\x00\x80"),
        T("-2147483649", "\x83\x6e\x04\x01\x01\x00\x00\x80"),
        T("9223372036854775807", "\x83\x6e\x08\x00\xff\xff\xff\xff\xff\xff\xff\x7f"),
        T("9223372036854775808", "\x83\x6e\x08\x00\x00\x00\x00\x00\x00\x00\x00\x80"),
        T("-9223372036854775808", "\x83\x6e\x08\x01\x00\x00\x00\x00\x00\x00\x00\x80"),
        T("-9223372036854775809", "\x83\x6e\x08\x01\x01\x00\x00\x00\x00\x00\x00\x80"),
        T("18446744073709551616", "\x83\x6e\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"),
        T("340282366920938463463374607431768211456", "\x83\x6e\x11\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"),
        T("1.5", "\x83\x46\x3f\xf8\x00\x00\x00\x00\x00\x00"),
        T("1.0e10", "\x83\x46\x42\x02\xa0\x5f\x20\x00\x00\x00"),
        T("-2.5e-3", "\x83\x46\xbf\x64\x7a\xe1\x47\xae\x14\x7b"),
        T("0.0", "\x83\x46\x00\x00\x00\x00\x00\x00\x00\x00"),
        T("-0.0", "\x83\x46\x80\x00\x00\x00\x00\x00\x00\x00"),
        T("1.0E+3", "\x83\x46\x40\x8f\x40\x00\x00\x00\x00\x00"),
        T("3.141_592", "\x83\x46\x40\x09\x21\xfa\xfc\x8b\x00\x7a"),
        T("1.7976931348623157e308", "\x83\x46\x7f\xef\xff\xff\xff\xff\xff\xff"),
        T("5.0e-324", "\x83\x46\x00\x00\x00\x00\x00\x00\x00\x01"),
        T("abc", "\x83\x77\x03\x61\x62\x63"),
        T("'Hello'", "\x83\x77\x05\x48\x65\x6c\x6c\x6f"),
        T("'a b'", "\x83\x77\x03\x61\x20\x62"),
        T("''", "\x83\x77\x00"),
        T("'\\n'", "\x83\x77\x01\x0a"),
        T("'it\\'s'", "\x83\x77\x04\x69\x74\x27\x73"),
        T("'\316\261\316\262'", "\x83\x77\x04\xce\xb1\xce\xb2"),
        T("\303\237", "\x83\x77\x02\xc3\x9f"),
        T("a\303\200@_9", "\x83\x77\x06\x61\xc3\x80\x40\x5f\x39"),
        T("'end'", "\x83\x77\x03\x65\x6e\x64"),
        T("true", "\x83\x77\x04\x74\x72\x75\x65"),
        T("\"\"", "\x83\x6a"),
        T("\"abc\"", "\x83\x6b\x00\x03\x61\x62\x63"),
        T("\"a\\nb\\t\\\\\\\"\"", "\x83\x6b\x00\x06\x61\x0a\x62\x09\x5c\x22"),
        T("\"\\x41\\x{3B1}\"", "\x83\x6c\x00\x00\x00\x02\x61\x41\x62\x00\x00\x03\xb1\x6a"),
        T("\"\\101\\7\"", "\x83\x6b\x00\x02\x41\x07"),
        T("\"\\^a\\^Z\"", "\x83\x6b\x00\x02\x01\x1a"),
        T("\"a\" \"b\"", "\x83\x6b\x00\x02\x61\x62"),
        T("\"\316\261\316\262\"", "\x83\x6c\x00\x00\x00\x02\x62\x00\x00\x03\xb1\x62\x00\x00\x03\xb2\x6a"),
        T("\"\\s\\d\\e\\b\\f\\v\\r\"", "\x83\x6b\x00\x07\x20\x7f\x1b\x08\x0c\x0b\x0d"),
        T("\"\\q\"", "\x83\x6b\x00\x01\x71"),
        T("<<>>", "\x83\x6d\x00\x00\x00\x00"),
        T("<<\"text\">>", "\x83\x6d\x00\x00\x00\x04\x74\x65\x78\x74"),
        T("<<1,2,3>>", "\x83\x6d\x00\x00\x00\x03\x01\x02\x03"),
        T("<<\"utf8 \303\251\"/utf8>>", "\x83\x6d\x00\x00\x00\x07\x75\x74\x66\x38\x20\xc3\xa9"),
        T("<<1:3>>", "\x83\x4d\x00\x00\x00\x01\x03\x20"),
        T("<<-1>>", "\x83\x6d\x00\x00\x00\x01\xff"),
        T("<<256:16>>", "\x83\x6d\x00\x00\x00\x02\x01\x00"),
        T("<<1:16/little>>", "\x83\x6d\x00\x00\x00\x02\x01\x00"),
        T("<<1.5/float>>", "\x83\x6d\x00\x00\x00\x08\x3f\xf8\x00\x00\x00\x00\x00\x00"),
        T("<<1.5:32/float>>", "\x83\x6d\x00\x00\x00\x04\x3f\xc0\x00\x00"),
        T("<<-1.0:64/little-float>>", "\x83\x6d\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\xf0\xbf"),
        T("<<$a,\"bc\">>", "\x83\x6d\x00\x00\x00\x03\x61\x62\x63"),
        T("<<\"\316\261\316\262\"/utf16>>", "\x83\x6d\x00\x00\x00\x04\x03\xb1\x03\xb2"),
        T("<<\"a\"/utf32-little>>", "\x83\x6d\x00\x00\x00\x04\x61\x00\x00\x00"),
        T("<<16#1F600/utf8>>", "\x83\x6d\x00\x00\x00\x04\xf0\x9f\x98\x80"),
        T("<<16#1F600/utf16>>", "\x83\x6d\x00\x00\x00\x04\xd8\x3d\xde\x00"),
        T("<<1:4,2:4>>", "\x83\x6d\x00\x00\x00\x01\x12"),
        T("<<7:3,1:100>>", "\x83\x4d\x00\x00\x00\x0d\x07\xe0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"),
        T("<<-2:70>>", "\x83\x4d\x00\x00\x00\x09\x06\xff\xff\xff\xff\xff\xff\xff\xff\xf8"),
        T("<<1:2/unit:8>>", "\x83\x6d\x00\x00\x00\x02\x00\x01"),
        T("<<\"ab\":16>>", "\x83\x6d\x00\x00\x00\x04\x00\x61\x00\x62"),
        T("[]", "\x83\x6a"),
        T("[1,2,3]", "\x83\x6b\x00\x03\x01\x02\x03"),
        T("[a,b]", "\x83\x6c\x00\x00\x00\x02\x77\x01\x61\x77\x01\x62\x6a"),
        T("[a|b]", "\x83\x6c\x00\x00\x00\x01\x77\x01\x61\x77\x01\x62"),
        T("[1|[2,3]]", "\x83\x6b\x00\x03\x01\x02\x03"),
        T("[a|\"bc\"]", "\x83\x6c\x00\x00\x00\x03\x77\x01\x61\x61\x62\x61\x63\x6a"),
        T("[1,[2]]", "\x83\x6c\x00\x00\x00\x02\x61\x01\x6b\x00\x01\x02\x6a"),
        T("[a,b|[]]", "\x83\x6c\x00\x00\x00\x02\x77\x01\x61\x77\x01\x62\x6a"),
        T("[ 1 , 2 ]", "\x83\x6b\x00\x02\x01\x02"),
        T("[256,1]", "\x83\x6c\x00\x00\x00\x02\x62\x00\x00\x01\x00\x61\x01\x6a"),
        T("[1.0]", "\x83\x6c\x00\x00\x00\x01\x46\x3f\xf0\x00\x00\x00\x00\x00\x00\x6a"),
        T("{}", "\x83\x68\x00"),
        T("{a}", "\x83\x68\x01\x77\x01\x61"),
        T("{1,{2,{3}}}", "\x83\x68\x02\x61\x01\x68\x02\x61\x02\x68\x01\x61\x03"),
        T("#{}", "\x83\x74\x00\x00\x00\x00"),
        T("#{a=>1}", "\x83\x74\x00\x00\x00\x01\x77\x01\x61\x61\x01"),
        T("#{a => 1, a => 2}", "\x83\x74\x00\x00\x00\x01\x77\x01\x61\x61\x02"),
        T("#{\"ab\"=>1,[97,98]=>2}", "\x83\x74\x00\x00\x00\x01\x6b\x00\x02\x61\x62\x61\x02"),
        T("#{#{}=>[]}", "\x83\x74\x00\x00\x00\x01\x74\x00\x00\x00\x00\x6a"),
        T("#{b=>1,a=>2}", "\x83\x74\x00\x00\x00\x02\x77\x01\x61\x61\x02\x77\x01\x62\x61\x01"),
        T(" {a, \"b\", <<\"c\">>, 1.0, #{k => [v]}} ", "\x83\x68\x05\x77\x01\x61\x6b\x00\x01\x62\x6d\x00\x00\x00\x01\x63\x46\x3f\xf0\x00\x00\x00\x00\x00\x00\x74\x00\x00\x00\x01\x77\x01\x6b\x6c\x00\x00\x00\x01\x77\x01\x76\x6a"),
        T("<<<<1,2>>/binary, 3>>", "\x83\x6d\x00\x00\x00\x03\x01\x02\x03"),
        T("<<<<1,2>>:1/binary, 3>>", "\x83\x6d\x00\x00\x00\x02\x01\x03"),
        T("<<<<1:3>>/bitstring, 1:5>>", "\x83\x6d\x00\x00\x00\x01\x21"),
        T("<<<<1,2>>/bytes>>", "\x83\x6d\x00\x00\x00\x02\x01\x02"),
        T("<<<<1:3>>:2/bits>>", "\x83\x4d\x00\x00\x00\x01\x02\x00"),
        T("<<<<\"ab\">>:1/binary-unit:16>>", "\x83\x6d\x00\x00\x00\x02\x61\x62"),
        T("<<1, <<>>/binary, 2>>", "\x83\x6d\x00\x00\x00\x02\x01\x02"),
};

static void hexdump(const char *what, const void *p, size_t n)
{
        fprintf(stderr, "%s:", what);
        for (size_t i = 0; i < n; i++)
                fprintf(stderr, " %02x", ((const unsigned char *) p)[i]);
        fputc('\n', stderr);
}

static void test_good(void **state)
{
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                struct nk_literal_error err;
                ei_x_buff x;
                int r = nk_literal_to_etf(good[i].text, &x, &err);
                if (r < 0)
                        fprintf(stderr, "%s: %s\n", good[i].text, err.msg);
                assert_int_equal(r, 0);
                if ((size_t) x.index != good[i].len || memcmp(x.buff, good[i].etf, good[i].len) != 0) {
                        fprintf(stderr, "literal: %s\n", good[i].text);
                        hexdump("want", good[i].etf, good[i].len);
                        hexdump("got ", x.buff, (size_t) x.index);
                        fail();
                }
                ei_x_free(&x);
        }
}

/* Big integers are written here rather than through GMP: check the LARGE_BIG_EXT
 * form (more than 255 bytes) of 2^2100 and of -(2^2100). */
static void test_large_big(void **state)
{
        char text[2200];
        int sign;

        for (sign = 0; sign <= 1; sign++) {
                struct nk_literal_error err;
                ei_x_buff x;
                /* 2^2100 in base 2: a one and 2100 zeros. */
                int n = snprintf(text, sizeof(text), "%s2#1", sign ? "-" : "");
                memset(text + n, '0', 2100);
                text[n + 2100] = '\0';
                assert_int_equal(nk_literal_to_etf(text, &x, &err), 0);
                /* 131, 111, length 263 (big endian), sign, 262 zero bytes, 16. */
                assert_int_equal(x.index, 1 + 1 + 4 + 1 + 263);
                assert_int_equal((unsigned char) x.buff[1], 111);
                assert_int_equal((unsigned char) x.buff[4], 1);
                assert_int_equal((unsigned char) x.buff[5], 7);
                assert_int_equal(x.buff[6], sign);
                for (int i = 0; i < 262; i++)
                        assert_int_equal(x.buff[7 + i], 0);
                assert_int_equal(x.buff[7 + 262], 16);
                ei_x_free(&x);
        }
}

/* Several terms appended to one buffer, as `nifkit call` builds its
 * argument list. */
static void test_append(void **state)
{
        static const char want[] = "\x83\x6c\x00\x00\x00\x02\x61\x01\x77\x01\x62\x6a";
        struct nk_literal_error err;
        ei_x_buff x;

        assert_int_equal(ei_x_new_with_version(&x), 0);
        assert_int_equal(ei_x_encode_list_header(&x, 2), 0);
        assert_int_equal(nk_literal_encode(&x, "1", &err), 0);
        assert_int_equal(nk_literal_encode(&x, " b ", &err), 0);
        assert_int_equal(ei_x_encode_empty_list(&x), 0);
        assert_int_equal(x.index, sizeof(want) - 1);
        assert_memory_equal(x.buff, want, sizeof(want) - 1);
        ei_x_free(&x);
}

struct bad {
        const char *text;
        const char *msg;
        unsigned column;
};

static const struct bad bad[] = {
        { "", "column 1: expected a term, found end of input", 1 },
        { "   ", "column 4: expected a term, found end of input", 4 },
        { "[1,2", "column 5: expected ',', '|' or ']', found end of input", 5 },
        { "[a}", "column 3: expected ',', '|' or ']', found '}'", 3 },
        { "[1,2,]", "column 6: expected a term, found ']'", 6 },
        { "[a|b,c]", "column 5: expected ']', found ','", 5 },
        { "{a b}", "column 4: expected ',' or '}', found 'b'", 4 },
        { "#{a 1}", "column 5: expected '=>', found '1'", 5 },
        { "#{a := 1}", "column 5: expected '=>', found ':'", 5 },
        { "#{1=>2", "column 7: expected ',' or '}', found end of input", 7 },
        { "#a", "column 2: expected '{' after '#', found 'a'", 2 },
        { "Foo", "column 1: variable Foo is not a term (quote it for an atom)", 1 },
        { "[_]", "column 2: variable _ is not a term (quote it for an atom)", 2 },
        { "end", "column 1: reserved word 'end' must be quoted to be an atom", 1 },
        { "{ok, 'abc}", "column 6: unterminated quoted atom", 6 },
        { "\"abc", "column 1: unterminated string", 1 },
        { "37#1", "column 1: base 37 is out of range (2..36)", 1 },
        { "1#1", "column 1: base 1 is out of range (2..36)", 1 },
        { "16#", "column 4: expected a digit of base 16, found end of input", 4 },
        { "16#g", "column 4: expected a digit of base 16, found 'g'", 4 },
        { "2#102", "column 5: unexpected '2' after the term", 5 },
        { "1.0e", "column 5: expected the digits of an exponent, found end of input", 5 },
        { "1.0e999", "column 1: float out of range", 1 },
        { "1 2", "column 3: unexpected '2' after the term", 3 },
        { "1.", "column 2: unexpected '.' after the term", 2 },
        { "-a", "column 1: expected a term, found '-'", 1 },
        { "$", "column 2: expected a character after '$', found end of input", 2 },
        { "<<1,>>", "column 5: expected a string, a number or a binary in a binary segment, found '>'", 5 },
        { "<<a>>", "column 3: expected a string, a number or a binary in a binary segment, found 'a'", 3 },
        { "<<1:4", "column 6: expected ',' or '>>', found end of input", 6 },
        { "<<1/foo>>", "column 5: unknown segment type 'foo'", 5 },
        { "<<1/binary>>", "column 3: /binary and /bitstring take a binary value", 3 },
        { "<<\"abc\"/binary>>", "column 3: /binary and /bitstring take a binary value", 3 },
        { "<<<<1,2>>, 3>>", "column 3: a binary value needs /binary or /bitstring", 3 },
        { "<<<<1:3>>/binary>>", "column 3: a /binary segment must be a whole number of bytes", 3 },
        { "<<<<1>>:2/binary>>", "column 3: binary value shorter than its segment size", 3 },
        { "<<<<1>>:9/bits>>", "column 3: binary value shorter than its segment size", 3 },
        { "<<1/utf8-bits>>", "column 3: /binary and /bitstring take a binary value", 3 },
        { "<<1:3/little>>", "column 3: a little-endian segment must be a whole number of bytes", 3 },
        { "<<1.5>>", "column 3: a float segment needs /float", 3 },
        { "<<1:16/float>>", "column 3: float segments are 32 or 64 bits", 3 },
        { "<<\"a\":8/utf8>>", "column 3: a UTF segment takes no size", 3 },
        { "<<\"\\x{D800}\"/utf8>>", "column 3: U+D800 cannot be encoded as UTF", 3 },
        { "<<1:99999999999>>", "column 5: segment size too large", 5 },
        { "<<0:200000000>>", "column 5: segment size too large", 5 },
        { "<<1/unit:0>>", "column 5: unit must be 1..256", 5 },
        { "'\\x{110000}'", "column 2: escape beyond U+10FFFF", 2 },
        { "\"\\x{zz}\"", "column 2: malformed \\x{...} escape", 2 },
        { "\"\\xZ1\"", "column 2: malformed \\xHH escape", 2 },
        { "\"\\^1\"", "column 2: malformed \\^ escape", 2 },
        { "'\\", "column 2: unfinished escape", 2 },
        { "'\\x{D800}'", "column 1: atom holds U+D800, which is not a character", 1 },
        { "'\xff'", "column 2: invalid UTF-8", 2 },
        { "\"\xc3\x28\"", "column 2: invalid UTF-8", 2 },
        { "\xce\xb1\xce\xb2", "column 1: expected a term, found '\xce\xb1'", 1 },
        { "[\xce\xb1, \xce\xb2}", "column 2: expected a term, found '\xce\xb1'", 2 },
        { "\x01", "column 1: expected a term, found control character 1", 1 },
        { "fun", "column 1: reserved word 'fun' must be quoted to be an atom", 1 },
        { "<0.1.2>", "column 1: expected a term, found '<'", 1 },
};

static void test_bad(void **state)
{
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct nk_literal_error err;
                ei_x_buff x;
                int r = nk_literal_to_etf(bad[i].text, &x, &err);
                if (r != -EINVAL || strcmp(err.msg, bad[i].msg) != 0)
                        fprintf(stderr, "literal: %s\nwant: %s\ngot:  %s (%d)\n", bad[i].text, bad[i].msg,
                                err.msg, r);
                assert_int_equal(r, -EINVAL);
                assert_string_equal(err.msg, bad[i].msg);
                assert_int_equal(err.column, bad[i].column);
        }
}

static void test_long_atom(void **state)
{
        char text[260];
        struct nk_literal_error err;
        ei_x_buff x;

        memset(text, 'a', 255);
        text[255] = '\0';
        assert_int_equal(nk_literal_to_etf(text, &x, &err), 0);
        ei_x_free(&x);
        text[255] = 'a';
        text[256] = '\0';
        assert_int_equal(nk_literal_to_etf(text, &x, &err), -EINVAL);
        assert_string_equal(err.msg, "column 1: atom too long (more than 255 characters)");
        /* A quote, 256 letters, a quote. */
        text[0] = '\'';
        text[256] = 'a';
        text[257] = '\'';
        text[258] = '\0';
        assert_int_equal(nk_literal_to_etf(text, &x, &err), -EINVAL);
        assert_string_equal(err.msg, "column 1: atom too long (more than 255 characters)");
}

/* open × levels, then inner, then close × levels. */
static char *nest(const char *open, const char *inner, const char *close, int levels)
{
        size_t n = 0, size = (strlen(open) + strlen(close)) * (size_t) levels + strlen(inner) + 1;
        char *s = malloc(size);

        assert_non_null(s);
        for (int i = 0; i < levels; i++)
                n += (size_t) sprintf(s + n, "%s", open);
        n += (size_t) sprintf(s + n, "%s", inner);
        for (int i = 0; i < levels; i++)
                n += (size_t) sprintf(s + n, "%s", close);
        return s;
}

static void test_depth(void **state)
{
        static const struct { const char *open, *close; } kinds[] = {
                { "[", "]" }, { "{", "}" }, { "#{a=>", "}" }, { "[1|", "]" },
        };

        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
                struct nk_literal_error err;
                ei_x_buff x;
                char *s;

                /* 1000 levels are accepted, 1001 are not. */
                s = nest(kinds[k].open, "1", kinds[k].close, 1000);
                assert_int_equal(nk_literal_to_etf(s, &x, &err), 0);
                ei_x_free(&x);
                free(s);
                s = nest(kinds[k].open, "1", kinds[k].close, 1001);
                assert_int_equal(nk_literal_to_etf(s, &x, &err), -EINVAL);
                assert_int_equal(err.column, (unsigned) (1000 * strlen(kinds[k].open) + 1));
                assert_string_equal(strchr(err.msg, ':'), ": nesting deeper than 1000");
                free(s);
        }
}

/* [1|[2|[3|[]]]] is the list [1,2,3] and encodes as term_to_binary's string. */
static void test_tail_spliced(void **state)
{
        struct nk_literal_error err;
        ei_x_buff x;

        assert_int_equal(nk_literal_to_etf("[1|[2|[3|[]]]]", &x, &err), 0);
        assert_int_equal(x.index, 7);
        assert_memory_equal(x.buff, "\x83\x6b\x00\x03\x01\x02\x03", 7);
        ei_x_free(&x);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good),
                cmocka_unit_test(test_large_big),
                cmocka_unit_test(test_append),
                cmocka_unit_test(test_bad),
                cmocka_unit_test(test_long_atom),
                cmocka_unit_test(test_depth),
                cmocka_unit_test(test_tail_spliced),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
