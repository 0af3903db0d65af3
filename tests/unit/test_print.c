/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The term printer. The canonical cases' bytes and texts come from erl:
 * term_to_binary(T, [{minor_version, 2}]) and io_lib:print(T, 1, 1000000, -1)
 * (as UTF-8). The hand-made cases are forms BEAM does not write itself but
 * accepts, and malformed input that must be refused rather than read past.
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

#include "print.h"

struct good {
        const char *etf;
        size_t len;
        const char *text;
};

#define T(etf, text) { etf, sizeof(etf) - 1, text }

static const struct good canonical[] = {
        /* 0 */
        T("\x83\x61\x00",
          "0"),
        /* -1 */
        T("\x83\x62\xff\xff\xff\xff",
          "-1"),
        /* 255 */
        T("\x83\x61\xff",
          "255"),
        /* 256 */
        T("\x83\x62\x00\x00\x01\x00",
          "256"),
        /* -2147483648 */
        T("\x83\x62\x80\x00\x00\x00",
          "-2147483648"),
        /* 2147483648 */
        T("\x83\x6e\x04\x00\x00\x00\x00\x80",
          "2147483648"),
        /* -(1 bsl 64) */
        T("\x83\x6e\x09\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01",
          "-18446744073709551616"),
        /* 1 bsl 2100 */
        T("\x83\x6f\x00\x00\x01\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10",
          "145542856500486309361890238449330649728809442059217056345945587654749356876225241259209611218744456911185381599558875746375475103914048669297745718921773427823433158419120765536610198213840157598554853892256499754024901966411683189991501042476088459679727981986945418043202748661248211748339825091903351744676279304293991165443043691726770700206972879550908196640425338921571293316568559870845121133328067132170701239967995835212682384168881471395081720829376174989450825971966494657064899340276140769794081777796371143547287807483740385375334659668424882133140661394443058747655483603144141890006567217223554270198636103730385125376"),
        /* 1.0 */
        T("\x83\x46\x3f\xf0\x00\x00\x00\x00\x00\x00",
          "1.0"),
        /* -0.0 */
        T("\x83\x46\x80\x00\x00\x00\x00\x00\x00\x00",
          "-0.0"),
        /* 0.1 */
        T("\x83\x46\x3f\xb9\x99\x99\x99\x99\x99\x9a",
          "0.1"),
        /* 1.0e10 */
        T("\x83\x46\x42\x02\xa0\x5f\x20\x00\x00\x00",
          "1.0e10"),
        /* 1.0e-5 */
        T("\x83\x46\x3e\xe4\xf8\xb5\x88\xe3\x68\xf1",
          "1.0e-5"),
        /* 0.0001 */
        T("\x83\x46\x3f\x1a\x36\xe2\xeb\x1c\x43\x2d",
          "0.0001"),
        /* 100.0 */
        T("\x83\x46\x40\x59\x00\x00\x00\x00\x00\x00",
          "100.0"),
        /* 1000.0 */
        T("\x83\x46\x40\x8f\x40\x00\x00\x00\x00\x00",
          "1.0e3"),
        /* 1.2345678901234568e17 */
        T("\x83\x46\x43\x7b\x69\xb4\xba\x63\x0f\x35",
          "1.2345678901234568e17"),
        /* 9007199254740992.0 */
        T("\x83\x46\x43\x40\x00\x00\x00\x00\x00\x00",
          "9.007199254740992e15"),
        /* 5.0e-324 */
        T("\x83\x46\x00\x00\x00\x00\x00\x00\x00\x01",
          "5.0e-324"),
        /* 123.456 */
        T("\x83\x46\x40\x5e\xdd\x2f\x1a\x9f\xbe\x77",
          "123.456"),
        /* abc */
        T("\x83\x77\x03\x61\x62\x63",
          "abc"),
        /* 'Hello' */
        T("\x83\x77\x05\x48\x65\x6c\x6c\x6f",
          "'Hello'"),
        /* 'a b' */
        T("\x83\x77\x03\x61\x20\x62",
          "'a b'"),
        /* '[]' */
        T("\x83\x77\x02\x5b\x5d",
          "'[]'"),
        /* '' */
        T("\x83\x77\x00",
          "''"),
        /* 'end' */
        T("\x83\x77\x03\x65\x6e\x64",
          "'end'"),
        /* maybe */
        T("\x83\x77\x05\x6d\x61\x79\x62\x65",
          "maybe"),
        /* 'ß' */
        T("\x83\x77\x02\xc3\x9f",
          "\303\237"),
        /* 'aÀ' */
        T("\x83\x77\x03\x61\xc3\x80",
          "a\303\200"),
        /* 'a×' */
        T("\x83\x77\x03\x61\xc3\x97",
          "'a\303\227'"),
        /* 'αβ' */
        T("\x83\x77\x04\xce\xb1\xce\xb2",
          "'\\x{3B1}\\x{3B2}'"),
        /* 'a\nb\x{7f}\x{80}\x{1}' */
        T("\x83\x77\x07\x61\x0a\x62\x7f\xc2\x80\x01",
          "'a\\nb\\d\\200\\001'"),
        /* 'it\'s' */
        T("\x83\x77\x04\x69\x74\x27\x73",
          "'it\\'s'"),
        /* [] */
        T("\x83\x6a",
          "[]"),
        /* "abc" */
        T("\x83\x6b\x00\x03\x61\x62\x63",
          "\"abc\""),
        /* "a\nb\e\"\\" */
        T("\x83\x6b\x00\x06\x61\x0a\x62\x1b\x22\x5c",
          "\"a\\nb\\e\\\"\\\\\""),
        /* [127] */
        T("\x83\x6b\x00\x01\x7f",
          "[127]"),
        /* [160,255] */
        T("\x83\x6b\x00\x02\xa0\xff",
          "\"\302\240\303\277\""),
        /* [256] */
        T("\x83\x6c\x00\x00\x00\x01\x62\x00\x00\x01\x00\x6a",
          "[256]"),
        /* [$a|b] */
        T("\x83\x6c\x00\x00\x00\x01\x61\x61\x77\x01\x62",
          "[97|b]"),
        /* [1,2|3] */
        T("\x83\x6c\x00\x00\x00\x02\x61\x01\x61\x02\x61\x03",
          "[1,2|3]"),
        /* [[]] */
        T("\x83\x6c\x00\x00\x00\x01\x6a\x6a",
          "[[]]"),
        /* ["ab",c] */
        T("\x83\x6c\x00\x00\x00\x02\x6b\x00\x02\x61\x62\x77\x01\x63\x6a",
          "[\"ab\",c]"),
        /* <<>> */
        T("\x83\x6d\x00\x00\x00\x00",
          "<<>>"),
        /* <<"text">> */
        T("\x83\x6d\x00\x00\x00\x04\x74\x65\x78\x74",
          "<<\"text\">>"),
        /* <<1,2,3>> */
        T("\x83\x6d\x00\x00\x00\x03\x01\x02\x03",
          "<<1,2,3>>"),
        /* <<"a\"\\">> */
        T("\x83\x6d\x00\x00\x00\x03\x61\x22\x5c",
          "<<\"a\\\"\\\\\">>"),
        /* <<128>> */
        T("\x83\x6d\x00\x00\x00\x01\x80",
          "<<128>>"),
        /* <<"é"/utf8>> */
        T("\x83\x6d\x00\x00\x00\x02\xc3\xa9",
          "<<\"\303\203\302\251\">>"),
        /* <<1:3>> */
        T("\x83\x4d\x00\x00\x00\x01\x03\x20",
          "<<1:3>>"),
        /* <<1,2,3:4>> */
        T("\x83\x4d\x00\x00\x00\x03\x04\x01\x02\x30",
          "<<1,2,3:4>>"),
        /* {} */
        T("\x83\x68\x00",
          "{}"),
        /* {a,"b",<<"c">>} */
        T("\x83\x68\x03\x77\x01\x61\x6b\x00\x01\x62\x6d\x00\x00\x00\x01\x63",
          "{a,\"b\",<<\"c\">>}"),
        /* #{} */
        T("\x83\x74\x00\x00\x00\x00",
          "#{}"),
        /* #{b => 1, a => 2} */
        T("\x83\x74\x00\x00\x00\x02\x77\x01\x61\x61\x02\x77\x01\x62\x61\x01",
          "#{a => 2,b => 1}"),
        /* #{1 => a, 1.0 => b, -1 => c, 0.5 => d} */
        T("\x83\x74\x00\x00\x00\x04\x62\xff\xff\xff\xff\x77\x01\x63\x61\x01\x77\x01\x61\x46\x3f\xe0\x00\x00\x00\x00\x00\x00\x77\x01\x64\x46\x3f\xf0\x00\x00\x00\x00\x00\x00\x77\x01\x62",
          "#{-1 => c,1 => a,0.5 => d,1.0 => b}"),
        /* #{{1.0} => a, {2} => b} */
        T("\x83\x74\x00\x00\x00\x02\x68\x01\x61\x02\x77\x01\x62\x68\x01\x46\x3f\xf0\x00\x00\x00\x00\x00\x00\x77\x01\x61",
          "#{{2} => b,{1.0} => a}"),
        /* #{[1.0] => a, [2] => b} */
        T("\x83\x74\x00\x00\x00\x02\x6b\x00\x01\x02\x77\x01\x62\x6c\x00\x00\x00\x01\x46\x3f\xf0\x00\x00\x00\x00\x00\x00\x6a\x77\x01\x61",
          "#{[2] => b,[1.0] => a}"),
        /* #{<<0:1>> => c, <<1>> => b, <<1:3>> => a} */
        T("\x83\x74\x00\x00\x00\x03\x4d\x00\x00\x00\x01\x01\x00\x77\x01\x63\x6d\x00\x00\x00\x01\x01\x77\x01\x62\x4d\x00\x00\x00\x01\x03\x20\x77\x01\x61",
          "#{<<0:1>> => c,<<1>> => b,<<1:3>> => a}"),
        /* #{#{a => 2} => x, #{b => 1} => y, #{a => 1} => z} */
        T("\x83\x74\x00\x00\x00\x03\x74\x00\x00\x00\x01\x77\x01\x61\x61\x01\x77\x01\x7a\x74\x00\x00\x00\x01\x77\x01\x61\x61\x02\x77\x01\x78\x74\x00\x00\x00\x01\x77\x01\x62\x61\x01\x77\x01\x79",
          "#{#{a => 1} => z,#{a => 2} => x,#{b => 1} => y}"),
        /* #{"s" => 1, [] => 2, {} => 3, #{} => 4, <<>> => 5, a => 6, 7 => 7} */
        T("\x83\x74\x00\x00\x00\x07\x61\x07\x61\x07\x77\x01\x61\x61\x06\x68\x00\x61\x03\x74\x00\x00\x00\x00\x61\x04\x6a\x61\x02\x6b\x00\x01\x73\x61\x01\x6d\x00\x00\x00\x00\x61\x05",
          "#{7 => 7,a => 6,{} => 3,#{} => 4,[] => 2,\"s\" => 1,<<>> => 5}"),
        /* list_to_pid("<0.80.0>") */
        T("\x83\x58\x77\x0d\x6e\x6f\x6e\x6f\x64\x65\x40\x6e\x6f\x68\x6f\x73\x74\x00\x00\x00\x50\x00\x00\x00\x00\x00\x00\x00\x00",
          "<0.80.0>"),
        /* erlang:list_to_ref("#Ref<0.1.2.3>") */
        T("\x83\x5a\x00\x03\x77\x0d\x6e\x6f\x6e\x6f\x64\x65\x40\x6e\x6f\x68\x6f\x73\x74\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x02\x00\x00\x00\x01",
          "#Ref<0.1.2.3>"),
        /* erlang:list_to_port("#Port<0.5>") */
        T("\x83\x59\x77\x0d\x6e\x6f\x6e\x6f\x64\x65\x40\x6e\x6f\x68\x6f\x73\x74\x00\x00\x00\x05\x00\x00\x00\x00",
          "#Port<0.5>"),
        /* fun lists:map/2 */
        T("\x83\x71\x77\x05\x6c\x69\x73\x74\x73\x77\x03\x6d\x61\x70\x61\x02",
          "fun lists:map/2"),
        /* fun 'A':'b c'/0 */
        T("\x83\x71\x77\x01\x41\x77\x03\x62\x20\x63\x61\x00",
          "fun 'A':'b c'/0"),
        /* #{list_to_pid("<0.1.2>") => a, list_to_pid("<0.2.1>") => b} */
        T("\x83\x74\x00\x00\x00\x02\x58\x77\x0d\x6e\x6f\x6e\x6f\x64\x65\x40\x6e\x6f\x68\x6f\x73\x74\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x00\x77\x01\x62\x58\x77\x0d\x6e\x6f\x6e\x6f\x64\x65\x40\x6e\x6f\x68\x6f\x73\x74\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x00\x77\x01\x61",
          "#{<0.2.1> => b,<0.1.2> => a}"),
};

#define B(...) (const uint8_t[]) { __VA_ARGS__ }, sizeof((const uint8_t[]) { __VA_ARGS__ })
#define NONODE 119, 13, 'n', 'o', 'n', 'o', 'd', 'e', '@', 'n', 'o', 'h', 'o', 's', 't'

struct bytes_case {
        const uint8_t *etf;
        size_t len;
        const char *text;
};

static const struct bytes_case handmade[] = {
        /* [97|"bc"] */
        { B(131, 108, 0, 0, 0, 1, 97, 97, 107, 0, 2, 98, 99), "\"abc\"" },
        /* [1|[2]] written as nested LIST_EXTs */
        { B(131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 106), "[1,2]" },
        /* [1|[2|x]] */
        { B(131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 119, 1, 'x'), "[1,2|x]" },
        /* a LIST_EXT without elements is its tail */
        { B(131, 108, 0, 0, 0, 0, 106), "[]" },
        /* Latin-1 atoms, old tags */
        { B(131, 100, 0, 1, 0xE9), "\xc3\xa9" },
        { B(131, 115, 2, 'H', 'i'), "'Hi'" },
        { B(131, 115, 1, 0xD7), "'\xc3\x97'" },
        /* FLOAT_EXT, the old text form */
        { B(131, 99, '1', '.', '5', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0',
            '0', '0', '0', '0', 'e', '+', '0', '0', 0, 0, 0, 0, 0), "1.5" },
        /* bignums with high zero bytes, negative, zero */
        { B(131, 110, 3, 0, 5, 0, 0), "5" },
        { B(131, 110, 1, 1, 5), "-5" },
        { B(131, 110, 0, 1), "0" },
        { B(131, 111, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), "18446744073709551616" },
        /* map keys out of order in the bytes */
        { B(131, 116, 0, 0, 0, 2, 119, 1, 'b', 97, 1, 119, 1, 'a', 97, 2), "#{a => 2,b => 1}" },
        /* a string key and the same list written as a list sort alike */
        { B(131, 116, 0, 0, 0, 2, 108, 0, 0, 0, 1, 97, 'b', 106, 97, 1, 107, 0, 1, 'a', 97, 2),
          "#{\"a\" => 2,\"b\" => 1}" },
        /* PID_EXT, NEW_REFERENCE_EXT, V4_PORT_EXT, REFERENCE_EXT */
        { B(131, 103, NONODE, 0, 0, 0, 80, 0, 0, 0, 0, 0), "<0.80.0>" },
        { B(131, 114, 0, 3, NONODE, 0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1), "#Ref<0.1.2.3>" },
        { B(131, 101, NONODE, 0, 0, 0, 7, 0), "#Ref<0.7>" },
        { B(131, 120, NONODE, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0), "#Port<0.5>" },
        /* map keys that are references and ports of two nodes, in the bytes
         * out of BEAM's order: BEAM orders both by node before their
         * numbers (checked with erl: the order term_to_binary writes) */
        { B(131, 116, 0, 0, 0, 4,
            89, 100, 0, 3, 'b', '@', 'h', 0, 0, 0, 1, 0, 0, 0, 1, 97, 1,
            89, 100, 0, 3, 'a', '@', 'h', 0, 0, 0, 2, 0, 0, 0, 1, 97, 2,
            90, 0, 3, 100, 0, 3, 'b', '@', 'h', 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 97, 3,
            90, 0, 3, 100, 0, 3, 'a', '@', 'h', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 97, 4),
          "#{#Ref<0.0.0.2> => 4,#Ref<0.0.0.1> => 3,#Port<0.2> => 2,#Port<0.1> => 1}" },
        /* the unused low bits of a bitstring's last byte are not printed */
        { B(131, 77, 0, 0, 0, 1, 3, 0x3F), "<<1:3>>" },
        { B(131, 77, 0, 0, 0, 2, 8, 'h', 'i'), "<<\"hi\">>" },
        /* a local fun: #Fun<Module.OldIndex.OldUniq>, its pid and free variable skipped */
        { B(131, 112, 0, 0, 0, 69, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 3,
            0, 0, 0, 1, 119, 1, 'm', 97, 2, 98, 0, 0, 1, 0, 88, NONODE, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0,
            97, 42),
          "#Fun<m.2.256>" },
};

static void check_text(const uint8_t *etf, size_t len, const char *want)
{
        char *got = NULL;
        int r = nk_print_etf(etf, len, &got);

        if (r < 0 || strcmp(got, want) != 0)
                fprintf(stderr, "want: %s\ngot:  %s (%d)\n", want, got ? got : "", r);
        assert_int_equal(r, 0);
        assert_string_equal(got, want);
        free(got);
}

static void test_canonical(void **state)
{
        for (size_t i = 0; i < sizeof(canonical) / sizeof(canonical[0]); i++)
                check_text((const uint8_t *) canonical[i].etf, canonical[i].len, canonical[i].text);
}

static void test_handmade(void **state)
{
        for (size_t i = 0; i < sizeof(handmade) / sizeof(handmade[0]); i++)
                check_text(handmade[i].etf, handmade[i].len, handmade[i].text);
}

static const struct bytes_case malformed[] = {
        { B(130, 97, 1), "wrong version" },
        { B(131), "no term" },
        { B(131, 97), "truncated small integer" },
        { B(131, 98, 0, 0, 1), "truncated integer" },
        { B(131, 97, 1, 0), "trailing byte" },
        { B(131, 108, 0xff, 0xff, 0xff, 0xff, 106), "list longer than the input" },
        { B(131, 108, 0, 0, 0, 1, 97, 1), "list without its tail" },
        { B(131, 104, 5, 97, 1), "tuple shorter than its arity" },
        { B(131, 105, 0x7f, 0xff, 0xff, 0xff), "large tuple longer than the input" },
        { B(131, 116, 0x7f, 0xff, 0xff, 0xff), "map longer than the input" },
        { B(131, 116, 0, 0, 0, 1, 97, 1), "map without the value" },
        { B(131, 107, 0, 5, 'a', 'b'), "string longer than the input" },
        { B(131, 109, 0, 0, 0, 9, 1), "binary longer than the input" },
        { B(131, 119, 2, 0xff, 0xfe), "atom that is not UTF-8" },
        { B(131, 119, 2, 0xc3), "atom longer than the input" },
        { B(131, 118, 0, 3, 0xed, 0xa0, 0x80), "atom holding a surrogate" },
        { B(131, 70, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0), "NaN" },
        { B(131, 70, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0), "infinity" },
        { B(131, 99, 'x'), "truncated FLOAT_EXT" },
        { B(131, 77, 0, 0, 0, 1, 0, 0xff), "bitstring using 0 bits of its last byte" },
        { B(131, 77, 0, 0, 0, 1, 9, 0xff), "bitstring using 9 bits of its last byte" },
        { B(131, 77, 0, 0, 0, 0, 3), "empty bitstring with a bit count" },
        { B(131, 110, 1, 2, 5), "bignum sign 2" },
        { B(131, 110, 9, 0, 1), "bignum longer than the input" },
        { B(131, 111, 0xff, 0xff, 0xff, 0xff, 0), "large bignum longer than the input" },
        { B(131, 200), "unknown tag" },
        { B(131, 80, 0, 0, 0, 1, 0x78, 0x9c), "compressed term" },
        { B(131, 82, 0), "atom cache reference" },
        { B(131, 114, 0, 0, NONODE, 0), "reference of no words" },
        { B(131, 90, 0, 6, NONODE, 0, 0, 0, 0), "reference of six words" },
        { B(131, 88, 97, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), "pid whose node is not an atom" },
        { B(131, 88, NONODE, 0, 0, 0, 1), "truncated pid" },
        { B(131, 113, 119, 1, 'm', 119, 1, 'f', 98, 0, 0, 0, 1), "export whose arity is not a small integer" },
        { B(131, 112, 0, 0, 0, 99, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 3,
            0, 0, 0, 0, 119, 1, 'm', 97, 2, 98, 0, 0, 1, 0, 88, NONODE, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0),
          "fun whose size is wrong" },
        { B(131, 112, 0, 0, 0, 59, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 3,
            0xff, 0xff, 0xff, 0xff, 119, 1, 'm', 97, 2, 98, 0, 0, 1, 0, 88, NONODE, 0, 0, 0, 9, 0, 0, 0, 0,
            0, 0, 0, 0), "fun with more free variables than bytes" },
};

static void test_malformed(void **state)
{
        for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
                char *got = NULL;
                int r = nk_print_etf(malformed[i].etf, malformed[i].len, &got);
                if (r != -EBADMSG)
                        fprintf(stderr, "accepted %s: %s\n", malformed[i].text, got ? got : "");
                assert_int_equal(r, -EBADMSG);
                assert_null(got);
        }
        assert_int_equal(nk_print_etf((const uint8_t *) "", 0, &(char *) { NULL }), -EBADMSG);
}

/* Every prefix of a valid term is refused, never read past. */
static void test_prefixes(void **state)
{
        for (size_t i = 0; i < sizeof(canonical) / sizeof(canonical[0]); i++)
                for (size_t n = 0; n < canonical[i].len; n++) {
                        char *got = NULL;
                        assert_int_equal(nk_print_etf((const uint8_t *) canonical[i].etf, n, &got), -EBADMSG);
                }
}

static void test_long_atom(void **state)
{
        uint8_t etf[4 + 256] = { 131, 118, 1, 0 };
        char *got = NULL;

        memset(etf + 4, 'a', 256);
        assert_int_equal(nk_print_etf(etf, sizeof(etf), &got), -EBADMSG);
        /* 255 characters are fine. */
        etf[2] = 0;
        etf[3] = 255;
        assert_int_equal(nk_print_etf(etf, sizeof(etf) - 1, &got), 0);
        assert_int_equal(strlen(got), 255);
        free(got);
}

/* BEAM's largest integer has 2^19-1 64-bit words; a magnitude one byte
 * longer is refused even though every byte of it is there. */
static void test_big_limit(void **state)
{
        size_t n = (((size_t) 1 << 19) - 1) * 8 + 1, len = 1 + 1 + 4 + 1 + n;
        uint8_t *etf = calloc(1, len);
        char *got = NULL;

        assert_non_null(etf);
        etf[0] = 131;
        etf[1] = 111;
        etf[2] = (uint8_t) (n >> 24);
        etf[3] = (uint8_t) (n >> 16);
        etf[4] = (uint8_t) (n >> 8);
        etf[5] = (uint8_t) n;
        etf[len - 1] = 1;
        assert_int_equal(nk_print_etf(etf, len, &got), -EBADMSG);
        assert_null(got);
        free(etf);
}

static void test_depth(void **state)
{
        size_t levels = NK_PRINT_MAX_DEPTH, len = 1 + 2 * levels + 1;
        uint8_t *etf = malloc(len);
        char *got = NULL;

        assert_non_null(etf);
        /* {{{...{[]}...}}}: the [] counts as a level. One too deep is
         * refused; one tuple less prints. */
        etf[0] = 131;
        for (size_t i = 0; i < levels; i++) {
                etf[1 + 2 * i] = 104;
                etf[2 + 2 * i] = 1;
        }
        etf[len - 1] = 106;
        assert_int_equal(nk_print_etf(etf, len, &got), -EBADMSG);
        assert_int_equal(nk_print_etf(etf + 2, len - 2, &got), -EBADMSG);  /* no version byte there */
        etf[2] = 131;
        assert_int_equal(nk_print_etf(etf + 2, len - 2, &got), 0);
        assert_int_equal(strlen(got), 2 * (levels - 1) + 2);
        assert_memory_equal(got, "{{{", 3);
        free(got);
        free(etf);
}

struct exception_case {
        const uint8_t *etf;
        size_t len;
        const char *text;
};

static const struct exception_case exceptions[] = {
        { B(131, 119, 6, 'b', 'a', 'd', 'a', 'r', 'g'), "exception error: bad argument" },
        { B(131, 119, 8, 'b', 'a', 'd', 'a', 'r', 'i', 't', 'h'),
          "exception error: an error occurred when evaluating an arithmetic expression" },
        { B(131, 119, 12, 's', 'y', 's', 't', 'e', 'm', '_', 'l', 'i', 'm', 'i', 't'),
          "exception error: a system limit has been reached" },
        { B(131, 104, 2, 119, 8, 'b', 'a', 'd', 'm', 'a', 't', 'c', 'h', 97, 1),
          "exception error: no match of right hand side value 1" },
        { B(131, 104, 2, 119, 11, 'c', 'a', 's', 'e', '_', 'c', 'l', 'a', 'u', 's', 'e', 119, 1, 'x'),
          "exception error: no case clause matching x" },
        { B(131, 104, 2, 119, 6, 'b', 'a', 'd', 'k', 'e', 'y', 119, 1, 'k'), "exception error: bad key: k" },
        { B(131, 104, 2, 119, 6, 'b', 'a', 'd', 'a', 'r', 'g', 119, 1, 'x'), "exception error: bad argument: x" },
        { B(131, 104, 3, 119, 6, 'b', 'a', 'd', 'k', 'e', 'y', 119, 1, 'k', 119, 1, 'm'),
          "exception error: {badkey,k,m}" },
        { B(131, 104, 2, 119, 3, 'f', 'o', 'o', 107, 0, 3, 'b', 'a', 'r'), "exception error: {foo,\"bar\"}" },
        { B(131, 119, 15, 'f', 'u', 'n', 'c', 't', 'i', 'o', 'n', '_', 'c', 'l', 'a', 'u', 's', 'e'),
          "exception error: function_clause" },
        { B(131, 109, 0, 0, 0, 1, 'x'), "exception error: <<\"x\">>" },
};

static void test_exception(void **state)
{
        for (size_t i = 0; i < sizeof(exceptions) / sizeof(exceptions[0]); i++) {
                char *got = NULL;
                assert_int_equal(nk_print_exception(exceptions[i].etf, exceptions[i].len, &got), 0);
                assert_string_equal(got, exceptions[i].text);
                free(got);
        }
        assert_int_equal(nk_print_exception(B(131, 104, 2, 97), &(char *) { NULL }), -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_canonical),
                cmocka_unit_test(test_handmade),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_prefixes),
                cmocka_unit_test(test_long_atom),
                cmocka_unit_test(test_big_limit),
                cmocka_unit_test(test_depth),
                cmocka_unit_test(test_exception),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
