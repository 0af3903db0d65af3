/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A recursive-descent reader for Erlang term literals that writes ETF as it
 * goes. Compound terms are built in a scratch buffer first because ETF puts
 * the element count before the elements; the copy costs at most depth ×
 * size, and depth is bounded.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atom_syntax.h"
#include "literal.h"
#include "macro.h"
#include "utf8.h"

/* A binary literal is typed by a person: a few megabytes is plenty, and the
 * limit keeps <<0:99999999999>> from asking for all memory. */
#define MAX_BINARY_BYTES (16u << 20)
#define MAX_ATOM_CHARS 255
#define MAX_CODE_POINT 0x10FFFF

struct parser {
        const char *s;
        size_t pos;
        unsigned depth;
        struct nk_literal_error *err;
};

/* Magnitude of an integer, 32-bit limbs, least significant first. */
struct bigint {
        uint32_t *limb;
        size_t n;
        size_t cap;
};

struct number {
        bool is_float;
        bool neg;
        double f;
        struct bigint mag;
};

static void bigint_free(struct bigint *b)
{
        free(b->limb);
        *b = (struct bigint) { 0 };
}

static void number_done(struct number *n)
{
        bigint_free(&n->mag);
}

static void ei_x_done(ei_x_buff *x)
{
        if (x->buff)
                ei_x_free(x);
        x->buff = NULL;
}

#define _cleanup_number_ _cleanup_(number_done)
#define _cleanup_ei_x_ _cleanup_(ei_x_done)

static int bigint_muladd(struct bigint *b, uint32_t mul, uint32_t add)
{
        uint64_t carry = add;

        for (size_t i = 0; i < b->n; i++) {
                uint64_t v = (uint64_t) b->limb[i] * mul + carry;
                b->limb[i] = (uint32_t) v;
                carry = v >> 32;
        }
        if (carry == 0)
                return 0;
        if (b->n == b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 4;
                uint32_t *l = realloc(b->limb, cap * sizeof(*l));
                if (!l)
                        return -ENOMEM;
                b->limb = l;
                b->cap = cap;
        }
        b->limb[b->n++] = (uint32_t) carry;
        return 0;
}

static bool bigint_bit(const struct bigint *b, size_t i)
{
        size_t l = i / 32;
        return l < b->n && (b->limb[l] >> (i % 32) & 1);
}

static size_t bigint_bits(const struct bigint *b)
{
        if (b->n == 0)
                return 0;
        return (b->n - 1) * 32 + (32 - (size_t) __builtin_clz(b->limb[b->n - 1]));
}

static double bigint_to_double(bool neg, const struct bigint *b)
{
        double d = 0;

        for (size_t i = b->n; i > 0; i--)
                d = d * 4294967296.0 + b->limb[i - 1];
        return neg ? -d : d;
}

/* In place b - 1 for b ≥ 1, for two's complement of negative values. */
static void bigint_dec(struct bigint *b)
{
        for (size_t i = 0; i < b->n; i++)
                if (b->limb[i]-- != 0)
                        break;
        while (b->n > 0 && b->limb[b->n - 1] == 0)
                b->n--;
}

static unsigned column_at(const struct parser *p, size_t at)
{
        unsigned col = 1;

        for (size_t i = 0; i < at && p->s[i]; i++)
                if (((unsigned char) p->s[i] & 0xC0) != 0x80)
                        col++;
        return col;
}

static int fail(struct parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct parser *p, size_t at, const char *fmt, ...)
{
        va_list ap;
        int n;

        p->err->column = column_at(p, at);
        n = snprintf(p->err->msg, sizeof(p->err->msg), "column %u: ", p->err->column);
        if (n < 0 || (size_t) n >= sizeof(p->err->msg))
                return -EINVAL;
        va_start(ap, fmt);
        vsnprintf(p->err->msg + n, sizeof(p->err->msg) - (size_t) n, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* What stands at `at`, for messages: 'x', end of input, or a code. */
static const char *found(const struct parser *p, size_t at, char *buf, size_t len)
{
        uint32_t cp;
        size_t n;

        if (p->s[at] == '\0')
                return "end of input";
        n = nk_utf8_decode_str(p->s + at, &cp);
        if (n == 0)
                snprintf(buf, len, "byte 0x%02x", (unsigned char) p->s[at]);
        else if (cp < 0x20 || cp == 0x7F)
                snprintf(buf, len, "control character %u", (unsigned) cp);
        else
                snprintf(buf, len, "'%.*s'", (int) n, p->s + at);
        return buf;
}

static int fail_expected(struct parser *p, const char *what)
{
        char b[32];

        return fail(p, p->pos, "expected %s, found %s", what, found(p, p->pos, b, sizeof(b)));
}

static void skip_ws(struct parser *p)
{
        while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
               p->s[p->pos] == '\r')
                p->pos++;
}

static int ei_err(int r)
{
        return r < 0 ? -ENOMEM : 0;
}

static int append(ei_x_buff *x, const void *data, size_t len)
{
        if (len > INT_MAX)
                return -E2BIG;
        return ei_err(ei_x_append_buf(x, data, (int) len));
}

static int digit_value(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'Z')
                return c - 'A' + 10;
        return 99;
}

/* Digits of `base`, with single underscores between digits as Erlang allows. */
static int parse_digits(struct parser *p, unsigned base, struct bigint *mag)
{
        size_t start = p->pos;
        char b[32];

        for (;;) {
                int d = digit_value(p->s[p->pos]);
                if (d >= (int) base) {
                        if (p->pos == start)
                                return fail(p, p->pos, "expected a digit of base %u, found %s", base,
                                            found(p, p->pos, b, sizeof(b)));
                        return 0;
                }
                if (bigint_muladd(mag, base, (uint32_t) d) < 0)
                        return -ENOMEM;
                p->pos++;
                if (p->s[p->pos] == '_' && digit_value(p->s[p->pos + 1]) < (int) base)
                        p->pos++;
        }
}

static int parse_escape(struct parser *p, uint32_t *ret_cp);

/* $c: the code point of one character or escape. */
static int parse_char(struct parser *p, uint32_t *ret_cp)
{
        size_t n;

        p->pos++;
        if (p->s[p->pos] == '\\') {
                p->pos++;
                return parse_escape(p, ret_cp);
        }
        if (p->s[p->pos] == '\0')
                return fail_expected(p, "a character after '$'");
        n = nk_utf8_decode_str(p->s + p->pos, ret_cp);
        if (n == 0)
                return fail(p, p->pos, "invalid UTF-8");
        p->pos += n;
        return 0;
}

static int parse_float_tail(struct parser *p, size_t start, struct number *num)
{
        _cleanup_free_ char *text = NULL;
        size_t j = 0;

        /* p->pos is at '.', and a digit follows it. */
        p->pos++;
        while (digit_value(p->s[p->pos]) < 10 || (p->s[p->pos] == '_' && digit_value(p->s[p->pos + 1]) < 10))
                p->pos++;
        if ((p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
                size_t e = p->pos + 1;
                if (p->s[e] == '+' || p->s[e] == '-')
                        e++;
                if (digit_value(p->s[e]) >= 10) {
                        p->pos = e;
                        return fail_expected(p, "the digits of an exponent");
                }
                p->pos = e;
                while (digit_value(p->s[p->pos]) < 10 ||
                       (p->s[p->pos] == '_' && digit_value(p->s[p->pos + 1]) < 10))
                        p->pos++;
        }
        text = malloc(p->pos - start + 1);
        if (!text)
                return -ENOMEM;
        for (size_t i = start; i < p->pos; i++)
                if (p->s[i] != '_')
                        text[j++] = p->s[i];
        text[j] = '\0';
        errno = 0;
        num->f = strtod(text, NULL);
        if (isinf(num->f))
                return fail(p, start, "float out of range");
        if (num->neg)
                num->f = -num->f;
        num->is_float = true;
        return 0;
}

/* An integer or a float, with an optional sign directly before it. */
static int parse_number(struct parser *p, struct number *num)
{
        size_t start;
        int r;

        *num = (struct number) { 0 };
        if (p->s[p->pos] == '-' || p->s[p->pos] == '+') {
                num->neg = p->s[p->pos] == '-';
                p->pos++;
        }
        if (p->s[p->pos] == '$') {
                uint32_t cp;
                r = parse_char(p, &cp);
                if (r < 0)
                        return r;
                return bigint_muladd(&num->mag, 1, cp);
        }
        start = p->pos;
        if (digit_value(p->s[start]) >= 10)
                return fail_expected(p, "a digit");
        r = parse_digits(p, 10, &num->mag);
        if (r < 0)
                return r;
        if (p->s[p->pos] == '.' && digit_value(p->s[p->pos + 1]) < 10)
                return parse_float_tail(p, start, num);
        if (p->s[p->pos] == '#') {
                uint32_t base = num->mag.n == 1 ? num->mag.limb[0] : 0;
                if (base < 2 || base > 36)
                        return fail(p, start, "base %.*s is out of range (2..36)", (int) (p->pos - start),
                                    p->s + start);
                p->pos++;
                bigint_free(&num->mag);
                return parse_digits(p, base, &num->mag);
        }
        return 0;
}

/* The encoding term_to_binary picks: SMALL_INTEGER_EXT for 0..255 (through
 * libei), INTEGER_EXT for the rest of the 32-bit range, SMALL_BIG_EXT or
 * LARGE_BIG_EXT beyond. The last two are written here: libei's
 * ei_x_encode_bignum needs GMP, which this libei is built without, and its
 * long long encoders switch to bignums past 28 bits, unlike term_to_binary;
 * map keys are deduplicated by their bytes, so the form must be canonical. */
static int encode_integer(ei_x_buff *x, bool neg, const struct bigint *mag)
{
        size_t nbytes;
        uint8_t hdr[6];
        size_t hlen;
        int r;

        if (mag->n <= 1) {
                uint32_t v = mag->n ? mag->limb[0] : 0;
                if (!neg && v <= 255)
                        return ei_err(ei_x_encode_long(x, (long) v));
                if (v < 0x80000000u || (neg && v == 0x80000000u)) {
                        uint32_t u = neg ? -v : v;
                        uint8_t b[5] = { ERL_INTEGER_EXT, (uint8_t) (u >> 24), (uint8_t) (u >> 16),
                                         (uint8_t) (u >> 8), (uint8_t) u };
                        return append(x, b, sizeof(b));
                }
        }
        nbytes = (bigint_bits(mag) + 7) / 8;
        if (nbytes > UINT32_MAX)
                return -E2BIG;
        if (nbytes <= 255) {
                hdr[0] = ERL_SMALL_BIG_EXT;
                hdr[1] = (uint8_t) nbytes;
                hdr[2] = neg;
                hlen = 3;
        } else {
                hdr[0] = ERL_LARGE_BIG_EXT;
                hdr[1] = (uint8_t) (nbytes >> 24);
                hdr[2] = (uint8_t) (nbytes >> 16);
                hdr[3] = (uint8_t) (nbytes >> 8);
                hdr[4] = (uint8_t) nbytes;
                hdr[5] = neg;
                hlen = 6;
        }
        r = append(x, hdr, hlen);
        if (r < 0)
                return r;
        for (size_t i = 0; i < nbytes; i++) {
                uint8_t byte = (uint8_t) (mag->limb[i / 4] >> (8 * (i % 4)));
                r = append(x, &byte, 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_escape(struct parser *p, uint32_t *ret_cp)
{
        size_t at = p->pos - 1;
        char c = p->s[p->pos];
        uint32_t v = 0;
        size_t n;

        if (c >= '0' && c <= '7') {
                for (int i = 0; i < 3 && p->s[p->pos] >= '0' && p->s[p->pos] <= '7'; i++)
                        v = v * 8 + (uint32_t) (p->s[p->pos++] - '0');
                *ret_cp = v;
                return 0;
        }
        if (c == 'x') {
                p->pos++;
                if (p->s[p->pos] == '{') {
                        size_t digits = 0;
                        p->pos++;
                        while (digit_value(p->s[p->pos]) < 16) {
                                v = v * 16 + (uint32_t) digit_value(p->s[p->pos++]);
                                if (v > MAX_CODE_POINT)
                                        return fail(p, at, "escape beyond U+10FFFF");
                                digits++;
                        }
                        if (digits == 0 || p->s[p->pos] != '}')
                                return fail(p, at, "malformed \\x{...} escape");
                        p->pos++;
                } else {
                        if (digit_value(p->s[p->pos]) >= 16 || digit_value(p->s[p->pos + 1]) >= 16)
                                return fail(p, at, "malformed \\xHH escape");
                        v = (uint32_t) (digit_value(p->s[p->pos]) * 16 + digit_value(p->s[p->pos + 1]));
                        p->pos += 2;
                }
                *ret_cp = v;
                return 0;
        }
        if (c == '^') {
                char k = p->s[p->pos + 1];
                if (!((k >= '@' && k <= '_') || (k >= 'a' && k <= 'z')))
                        return fail(p, at, "malformed \\^ escape");
                p->pos += 2;
                *ret_cp = (uint32_t) k & 31;
                return 0;
        }
        switch (c) {
        case 'b': v = 8; break;
        case 'd': v = 127; break;
        case 'e': v = 27; break;
        case 'f': v = 12; break;
        case 'n': v = 10; break;
        case 'r': v = 13; break;
        case 's': v = 32; break;
        case 't': v = 9; break;
        case 'v': v = 11; break;
        case '\0':
                return fail(p, at, "unfinished escape");
        default:
                /* Erlang reads any other escaped character as itself. */
                n = nk_utf8_decode_str(p->s + p->pos, ret_cp);
                if (n == 0)
                        return fail(p, p->pos, "invalid UTF-8");
                p->pos += n;
                return 0;
        }
        p->pos++;
        *ret_cp = v;
        return 0;
}

/* The code points between quotes; p->pos is at the opening quote. */
static int parse_quoted(struct parser *p, char quote, uint32_t **ret_cps, size_t *ret_n)
{
        _cleanup_free_ uint32_t *cps = NULL;
        size_t n = 0, cap = 0, open = p->pos;

        p->pos++;
        for (;;) {
                uint32_t cp;
                char c = p->s[p->pos];
                int r;

                if (c == '\0')
                        return fail(p, open, quote == '"' ? "unterminated string" : "unterminated quoted atom");
                if (c == quote) {
                        p->pos++;
                        break;
                }
                if (c == '\\') {
                        p->pos++;
                        r = parse_escape(p, &cp);
                        if (r < 0)
                                return r;
                } else {
                        size_t len = nk_utf8_decode_str(p->s + p->pos, &cp);
                        if (len == 0)
                                return fail(p, p->pos, "invalid UTF-8");
                        p->pos += len;
                }
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        uint32_t *m = realloc(cps, ncap * sizeof(*m));
                        if (!m)
                                return -ENOMEM;
                        cps = m;
                        cap = ncap;
                }
                cps[n++] = cp;
        }
        *ret_cps = TAKE_PTR(cps);
        *ret_n = n;
        return 0;
}

/* "a" "b" is one string in Erlang, as in C. */
static int parse_string(struct parser *p, uint32_t **ret_cps, size_t *ret_n)
{
        _cleanup_free_ uint32_t *all = NULL;
        size_t n = 0;

        for (;;) {
                _cleanup_free_ uint32_t *cps = NULL;
                size_t k, save;
                uint32_t *m;
                int r;

                r = parse_quoted(p, '"', &cps, &k);
                if (r < 0)
                        return r;
                m = realloc(all, (n + k + 1) * sizeof(*m));
                if (!m)
                        return -ENOMEM;
                all = m;
                if (k > 0)
                        memcpy(all + n, cps, k * sizeof(*cps));
                n += k;
                save = p->pos;
                skip_ws(p);
                if (p->s[p->pos] != '"') {
                        p->pos = save;
                        break;
                }
        }
        *ret_cps = TAKE_PTR(all);
        *ret_n = n;
        return 0;
}

static int encode_string(ei_x_buff *x, const uint32_t *cps, size_t n)
{
        bool bytes = n <= 65535;
        int r;

        for (size_t i = 0; bytes && i < n; i++)
                bytes = cps[i] <= 255;
        if (bytes) {
                _cleanup_free_ char *s = malloc(n + 1);
                if (!s)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++)
                        s[i] = (char) cps[i];
                return ei_err(ei_x_encode_string_len(x, s, (int) n));
        }
        r = ei_err(ei_x_encode_list_header(x, (long) n));
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = ei_err(ei_x_encode_ulong(x, cps[i]));
        return r < 0 ? r : ei_err(ei_x_encode_empty_list(x));
}

static int encode_atom(struct parser *p, size_t at, ei_x_buff *x, const uint32_t *cps, size_t n)
{
        char buf[MAX_ATOM_CHARS * 4];
        size_t len = 0;

        if (n > MAX_ATOM_CHARS)
                return fail(p, at, "atom too long (more than %d characters)", MAX_ATOM_CHARS);
        for (size_t i = 0; i < n; i++) {
                if (cps[i] > MAX_CODE_POINT || (cps[i] >= 0xD800 && cps[i] <= 0xDFFF))
                        return fail(p, at, "atom holds U+%04X, which is not a character", (unsigned) cps[i]);
                len += nk_utf8_encode(cps[i], buf + len);
        }
        return ei_err(ei_x_encode_atom_len_as(x, buf, (int) len, ERLANG_UTF8, ERLANG_UTF8));
}

static int parse_bare_word(struct parser *p, ei_x_buff *x)
{
        uint32_t cps[MAX_ATOM_CHARS + 1];
        size_t start = p->pos, n = 0;
        uint32_t cp;
        size_t len;

        for (;;) {
                len = nk_utf8_decode_str(p->s + p->pos, &cp);
                if (len == 0 || !(n == 0 ? nk_atom_is_lower(cp) || (cp >= 'A' && cp <= 'Z') || cp == '_'
                                         : nk_atom_is_name_char(cp)))
                        break;
                if (n == MAX_ATOM_CHARS)
                        return fail(p, start, "atom too long (more than %d characters)", MAX_ATOM_CHARS);
                cps[n++] = cp;
                p->pos += len;
        }
        if (n == 0)
                return fail_expected(p, "a term");
        if (!nk_atom_is_lower(cps[0]))
                return fail(p, start, "variable %.*s is not a term (quote it for an atom)",
                            (int) (p->pos - start), p->s + start);
        if (nk_atom_is_reserved(p->s + start, p->pos - start))
                return fail(p, start, "reserved word '%.*s' must be quoted to be an atom",
                            (int) (p->pos - start), p->s + start);
        return encode_atom(p, start, x, cps, n);
}

static int parse_term(struct parser *p, ei_x_buff *x);

static int enter(struct parser *p)
{
        if (++p->depth > NK_LITERAL_MAX_DEPTH)
                return fail(p, p->pos, "nesting deeper than %d", NK_LITERAL_MAX_DEPTH);
        return 0;
}

/* Moves a STRING_EXT or LIST_EXT tail's elements into the list being built,
 * so that [a|[b]] and [a,b] encode alike. Returns what remains to write as
 * the tail: NULL when the elements already end with their own tail. */
static int splice_tail(ei_x_buff *elems, size_t *count, bool *small_ints, const ei_x_buff *tail,
                       bool *ret_proper)
{
        const uint8_t *t = (const uint8_t *) tail->buff;
        int r;

        if (t[0] == ERL_NIL_EXT) {
                *ret_proper = true;
                return 0;
        }
        if (t[0] == ERL_STRING_EXT) {
                size_t n = (size_t) t[1] << 8 | t[2];
                for (size_t i = 0; i < n; i++) {
                        uint8_t e[2] = { ERL_SMALL_INTEGER_EXT, t[3 + i] };
                        r = append(elems, e, 2);
                        if (r < 0)
                                return r;
                }
                *count += n;
                *ret_proper = true;
                return 0;
        }
        if (t[0] == ERL_LIST_EXT) {
                size_t n = (size_t) t[1] << 24 | (size_t) t[2] << 16 | (size_t) t[3] << 8 | t[4];
                *count += n;
                *small_ints = false;
                *ret_proper = false;
                /* Its elements and its own tail, which ends the list. */
                return append(elems, t + 5, (size_t) tail->index - 5);
        }
        *small_ints = false;
        *ret_proper = false;
        return append(elems, t, (size_t) tail->index);
}

static int parse_list(struct parser *p, ei_x_buff *x)
{
        _cleanup_ei_x_ ei_x_buff elems = { 0 };
        size_t count = 0;
        bool small_ints = true, proper = true;
        int r;

        r = enter(p);
        if (r < 0)
                return r;
        p->pos++;
        skip_ws(p);
        if (p->s[p->pos] == ']') {
                p->pos++;
                p->depth--;
                return ei_err(ei_x_encode_empty_list(x));
        }
        if (ei_x_new(&elems) < 0)
                return -ENOMEM;
        for (;;) {
                int start = elems.index;
                r = parse_term(p, &elems);
                if (r < 0)
                        return r;
                if (elems.index - start != 2 || elems.buff[start] != ERL_SMALL_INTEGER_EXT)
                        small_ints = false;
                count++;
                skip_ws(p);
                if (p->s[p->pos] == ',') {
                        p->pos++;
                        continue;
                }
                if (p->s[p->pos] == '|') {
                        _cleanup_ei_x_ ei_x_buff tail = { 0 };
                        p->pos++;
                        if (ei_x_new(&tail) < 0)
                                return -ENOMEM;
                        r = parse_term(p, &tail);
                        if (r < 0)
                                return r;
                        r = splice_tail(&elems, &count, &small_ints, &tail, &proper);
                        if (r < 0)
                                return r;
                        skip_ws(p);
                        if (p->s[p->pos] != ']')
                                return fail_expected(p, "']'");
                        p->pos++;
                        break;
                }
                if (p->s[p->pos] == ']') {
                        p->pos++;
                        break;
                }
                return fail_expected(p, "',', '|' or ']'");
        }
        p->depth--;
        if (count > LONG_MAX)
                return -E2BIG;
        /* term_to_binary's choice: a proper list of bytes is a STRING_EXT. */
        if (proper && small_ints && count <= 65535) {
                _cleanup_free_ char *s = malloc(count + 1);
                if (!s)
                        return -ENOMEM;
                for (size_t i = 0; i < count; i++)
                        s[i] = elems.buff[2 * i + 1];
                return ei_err(ei_x_encode_string_len(x, s, (int) count));
        }
        r = ei_err(ei_x_encode_list_header(x, (long) count));
        if (r < 0)
                return r;
        r = append(x, elems.buff, (size_t) elems.index);
        if (r < 0)
                return r;
        return proper ? ei_err(ei_x_encode_empty_list(x)) : 0;
}

static int parse_tuple(struct parser *p, ei_x_buff *x)
{
        _cleanup_ei_x_ ei_x_buff elems = { 0 };
        long count = 0;
        int r;

        r = enter(p);
        if (r < 0)
                return r;
        p->pos++;
        skip_ws(p);
        if (ei_x_new(&elems) < 0)
                return -ENOMEM;
        if (p->s[p->pos] == '}')
                p->pos++;
        else
                for (;;) {
                        r = parse_term(p, &elems);
                        if (r < 0)
                                return r;
                        count++;
                        skip_ws(p);
                        if (p->s[p->pos] == ',') {
                                p->pos++;
                                continue;
                        }
                        if (p->s[p->pos] == '}') {
                                p->pos++;
                                break;
                        }
                        return fail_expected(p, "',' or '}'");
                }
        p->depth--;
        r = ei_err(ei_x_encode_tuple_header(x, count));
        return r < 0 ? r : append(x, elems.buff, (size_t) elems.index);
}

struct pair {
        size_t key, value, end, order;
};

static int pair_cmp(const void *a, const void *b, void *arg)
{
        const struct pair *pa = a, *pb = b;
        const char *buf = arg;
        size_t la = pa->value - pa->key, lb = pb->value - pb->key;
        int c = memcmp(buf + pa->key, buf + pb->key, la < lb ? la : lb);

        if (c != 0)
                return c;
        if (la != lb)
                return la < lb ? -1 : 1;
        return pa->order < pb->order ? -1 : 1;
}

static bool same_key(const char *buf, const struct pair *a, const struct pair *b)
{
        return a->value - a->key == b->value - b->key && memcmp(buf + a->key, buf + b->key, a->value - a->key) == 0;
}

/* Pairs sorted by key bytes, a later duplicate replacing an earlier one. */
static int emit_map(ei_x_buff *x, const ei_x_buff *kv, struct pair *pairs, size_t n)
{
        size_t kept = 0;
        int r;

        if (n > 1)
                qsort_r(pairs, n, sizeof(*pairs), pair_cmp, kv->buff);
        for (size_t i = 0; i < n; i++)
                if (i + 1 == n || !same_key(kv->buff, &pairs[i], &pairs[i + 1]))
                        pairs[kept++] = pairs[i];
        r = ei_err(ei_x_encode_map_header(x, (long) kept));
        for (size_t i = 0; r >= 0 && i < kept; i++)
                r = append(x, kv->buff + pairs[i].key, pairs[i].end - pairs[i].key);
        return r;
}

static int parse_map(struct parser *p, ei_x_buff *x)
{
        _cleanup_ei_x_ ei_x_buff kv = { 0 };
        _cleanup_free_ struct pair *pairs = NULL;
        size_t n = 0, cap = 0;
        int r;

        r = enter(p);
        if (r < 0)
                return r;
        p->pos += 2;
        skip_ws(p);
        if (ei_x_new(&kv) < 0)
                return -ENOMEM;
        if (p->s[p->pos] == '}')
                p->pos++;
        else
                for (;;) {
                        struct pair pr = { .key = (size_t) kv.index, .order = n };
                        r = parse_term(p, &kv);
                        if (r < 0)
                                return r;
                        skip_ws(p);
                        if (p->s[p->pos] != '=' || p->s[p->pos + 1] != '>')
                                return fail_expected(p, "'=>'");
                        p->pos += 2;
                        pr.value = (size_t) kv.index;
                        r = parse_term(p, &kv);
                        if (r < 0)
                                return r;
                        pr.end = (size_t) kv.index;
                        if (n == cap) {
                                size_t ncap = cap ? cap * 2 : 8;
                                struct pair *m = realloc(pairs, ncap * sizeof(*m));
                                if (!m)
                                        return -ENOMEM;
                                pairs = m;
                                cap = ncap;
                        }
                        pairs[n++] = pr;
                        skip_ws(p);
                        if (p->s[p->pos] == ',') {
                                p->pos++;
                                continue;
                        }
                        if (p->s[p->pos] == '}') {
                                p->pos++;
                                break;
                        }
                        return fail_expected(p, "',' or '}'");
                }
        p->depth--;
        return emit_map(x, &kv, pairs, n);
}

/* The bits of a binary literal, most significant bit of each byte first. */
struct bits {
        uint8_t *data;
        size_t nbits;
        size_t cap;
};

static int bits_put(struct bits *b, bool bit)
{
        if (b->nbits / 8 >= b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 64;
                uint8_t *d;
                if (b->cap >= MAX_BINARY_BYTES)
                        return -E2BIG;
                d = realloc(b->data, cap);
                if (!d)
                        return -ENOMEM;
                memset(d + b->cap, 0, cap - b->cap);
                b->data = d;
                b->cap = cap;
        }
        if (bit)
                b->data[b->nbits / 8] |= (uint8_t) (0x80 >> (b->nbits % 8));
        b->nbits++;
        return 0;
}

/* `size` bits of the two's complement of ±mag, in the given byte order.
 * mag is changed for negative values. */
static int bits_put_int(struct bits *b, bool neg, struct bigint *mag, size_t size, bool little)
{
        int r;

        if (neg && mag->n > 0)
                bigint_dec(mag);
        else
                neg = false;
        for (size_t k = 0; k < size; k++) {
                /* Big endian: bit size-1 first. Little endian: byte 0 first. */
                size_t i = little ? (k / 8) * 8 + (7 - k % 8) : size - 1 - k;
                r = bits_put(b, bigint_bit(mag, i) != neg);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int bits_put_u32(struct bits *b, uint32_t v, size_t size, bool little)
{
        struct bigint m = { .limb = &v, .n = v ? 1 : 0, .cap = 1 };

        return bits_put_int(b, false, &m, size, little);
}

struct segment_type {
        enum { SEG_INTEGER, SEG_FLOAT, SEG_BINARY, SEG_BITS, SEG_UTF8, SEG_UTF16, SEG_UTF32 } kind;
        bool little;
        size_t unit;            /* 0 until given: the type's default then */
};

static int parse_segment_type(struct parser *p, struct segment_type *t)
{
        for (;;) {
                size_t start = p->pos;
                size_t len;

                while ((p->s[p->pos] >= 'a' && p->s[p->pos] <= 'z') || (p->s[p->pos] >= '0' && p->s[p->pos] <= '9'))
                        p->pos++;
                len = p->pos - start;
#define IS(w) (len == strlen(w) && memcmp(p->s + start, w, len) == 0)
                if (len == 0)
                        return fail_expected(p, "a segment type");
                else if (IS("integer"))
                        t->kind = SEG_INTEGER;
                else if (IS("float"))
                        t->kind = SEG_FLOAT;
                else if (IS("binary") || IS("bytes"))
                        t->kind = SEG_BINARY;
                else if (IS("bitstring") || IS("bits"))
                        t->kind = SEG_BITS;
                else if (IS("utf8"))
                        t->kind = SEG_UTF8;
                else if (IS("utf16"))
                        t->kind = SEG_UTF16;
                else if (IS("utf32"))
                        t->kind = SEG_UTF32;
                else if (IS("big"))
                        t->little = false;
                else if (IS("little"))
                        t->little = true;
                else if (IS("signed") || IS("unsigned"))
                        ;       /* the same bits either way when building */
                else if (IS("unit")) {
                        struct bigint u = { 0 };
                        int r;
                        if (p->s[p->pos] != ':')
                                return fail_expected(p, "':' after unit");
                        p->pos++;
                        r = parse_digits(p, 10, &u);
                        t->unit = u.n == 1 ? u.limb[0] : 0;
                        bigint_free(&u);
                        if (r < 0)
                                return r;
                        if (t->unit < 1 || t->unit > 256)
                                return fail(p, start, "unit must be 1..256");
                } else
                        return fail(p, start, "unknown segment type '%.*s'", (int) len, p->s + start);
#undef IS
                if (p->s[p->pos] != '-')
                        return 0;
                p->pos++;
        }
}

static int put_code_point(struct parser *p, size_t at, struct bits *b, uint32_t cp, const struct segment_type *t)
{
        int r = 0;

        if (cp > MAX_CODE_POINT || (cp >= 0xD800 && cp <= 0xDFFF))
                return fail(p, at, "U+%04X cannot be encoded as UTF", (unsigned) cp);
        if (t->kind == SEG_UTF8) {
                char u[4];
                size_t n = nk_utf8_encode(cp, u);
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = bits_put_u32(b, (uint8_t) u[i], 8, false);
        } else if (t->kind == SEG_UTF16) {
                if (cp >= 0x10000) {
                        uint32_t c = cp - 0x10000;
                        r = bits_put_u32(b, 0xD800 | c >> 10, 16, t->little);
                        if (r >= 0)
                                r = bits_put_u32(b, 0xDC00 | (c & 0x3FF), 16, t->little);
                } else
                        r = bits_put_u32(b, cp, 16, t->little);
        } else
                r = bits_put_u32(b, cp, 32, t->little);
        return r;
}

static int put_float(struct parser *p, size_t at, struct bits *b, double f, size_t size, bool little)
{
        uint64_t u;

        if (size == 64)
                memcpy(&u, &f, sizeof(u));
        else if (size == 32) {
                float g = (float) f;
                uint32_t w;
                if (isinf(g))
                        return fail(p, at, "float does not fit in 32 bits");
                memcpy(&w, &g, sizeof(w));
                u = w;
        } else
                return fail(p, at, "float segments are 32 or 64 bits");
        {
                uint32_t limbs[2] = { (uint32_t) u, (uint32_t) (u >> 32) };
                struct bigint m = { .limb = limbs, .n = 2, .cap = 2 };
                return bits_put_int(b, false, &m, size, little);
        }
}

static int parse_bits(struct parser *p, struct bits *b);

/* A <<...>> value inside a binary: all its bits, or the first Size units. */
static int put_binary(struct parser *p, size_t at, struct bits *b, const struct bits *v, const struct segment_type *t,
                      bool has_size, size_t size)
{
        size_t n = has_size ? size : v->nbits;
        int r;

        if (t->kind != SEG_BINARY && t->kind != SEG_BITS)
                return fail(p, at, "a binary value needs /binary or /bitstring");
        if (n > v->nbits)
                return fail(p, at, "binary value shorter than its segment size");
        if (t->kind == SEG_BINARY && n % 8 != 0)
                return fail(p, at, "a /binary segment must be a whole number of bytes");
        for (size_t i = 0; i < n; i++) {
                r = bits_put(b, v->data[i / 8] >> (7 - i % 8) & 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Value[:Size][/Type-Type...], Value a string, an integer, a float or a
 * binary. */
static int parse_segment(struct parser *p, struct bits *b)
{
        _cleanup_free_ uint32_t *cps = NULL;
        _cleanup_free_ uint8_t *nested_data = NULL;
        _cleanup_number_ struct number num = { 0 };
        struct segment_type t = { .kind = SEG_INTEGER };
        struct bits nested = { 0 };
        size_t ncps = 0, at = p->pos, size = 0;
        bool is_string = false, is_binary = false, has_size = false;
        char c = p->s[p->pos];
        int r;

        if (c == '"') {
                r = parse_string(p, &cps, &ncps);
                is_string = true;
        } else if (c == '<' && p->s[p->pos + 1] == '<') {
                r = parse_bits(p, &nested);
                nested_data = nested.data;
                is_binary = true;
        } else if ((c >= '0' && c <= '9') || c == '$' || c == '-' || c == '+')
                r = parse_number(p, &num);
        else
                return fail_expected(p, "a string, a number or a binary in a binary segment");
        if (r < 0)
                return r;
        skip_ws(p);
        if (p->s[p->pos] == ':') {
                struct bigint s = { 0 };
                size_t sat;
                p->pos++;
                skip_ws(p);
                sat = p->pos;
                r = parse_digits(p, 10, &s);
                size = s.n == 1 ? s.limb[0] : s.n == 0 ? 0 : SIZE_MAX;
                bigint_free(&s);
                if (r < 0)
                        return r;
                if (size > (size_t) MAX_BINARY_BYTES * 8)
                        return fail(p, sat, "segment size too large");
                has_size = true;
                skip_ws(p);
        }
        if (p->s[p->pos] == '/') {
                p->pos++;
                r = parse_segment_type(p, &t);
                if (r < 0)
                        return r;
        }
        if (t.unit == 0)
                t.unit = t.kind == SEG_BINARY ? 8 : 1;
        if (is_binary)
                return put_binary(p, at, b, &nested, &t, has_size, size * t.unit);
        if (t.kind == SEG_BINARY || t.kind == SEG_BITS)
                return fail(p, at, "/binary and /bitstring take a binary value");
        if (t.kind >= SEG_UTF8) {
                if (has_size)
                        return fail(p, at, "a UTF segment takes no size");
                if (num.is_float)
                        return fail(p, at, "a float is not a code point");
                if (!is_string) {
                        if (num.neg || num.mag.n > 1)
                                return fail(p, at, "not a code point");
                        return put_code_point(p, at, b, num.mag.n ? num.mag.limb[0] : 0, &t);
                }
                for (size_t i = 0; i < ncps; i++) {
                        r = put_code_point(p, at, b, cps[i], &t);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (!has_size)
                size = t.kind == SEG_FLOAT ? 64 : 8;
        if (size > (size_t) MAX_BINARY_BYTES * 8 / t.unit)
                return fail(p, at, "segment size too large");
        size *= t.unit;
        if (t.little && size % 8 != 0)
                return fail(p, at, "a little-endian segment must be a whole number of bytes");
        if (t.kind == SEG_FLOAT) {
                if (is_string)
                        return fail(p, at, "a string is not a float");
                return put_float(p, at, b, num.is_float ? num.f : bigint_to_double(num.neg, &num.mag), size,
                                 t.little);
        }
        if (num.is_float)
                return fail(p, at, "a float segment needs /float");
        if (!is_string)
                return bits_put_int(b, num.neg, &num.mag, size, t.little);
        for (size_t i = 0; i < ncps; i++) {
                r = bits_put_u32(b, cps[i], size, t.little);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* <<Segment, ...>> into b; on failure b->data may still need freeing. */
static int parse_bits(struct parser *p, struct bits *b)
{
        int r;

        r = enter(p);
        if (r < 0)
                return r;
        p->pos += 2;
        skip_ws(p);
        if (p->s[p->pos] == '>' && p->s[p->pos + 1] == '>')
                p->pos += 2;
        else
                for (;;) {
                        r = parse_segment(p, b);
                        if (r == -E2BIG)
                                return fail(p, p->pos, "binary larger than %u bytes", MAX_BINARY_BYTES);
                        if (r < 0)
                                return r;
                        skip_ws(p);
                        if (p->s[p->pos] == ',') {
                                p->pos++;
                                skip_ws(p);
                                continue;
                        }
                        if (p->s[p->pos] == '>' && p->s[p->pos + 1] == '>') {
                                p->pos += 2;
                                break;
                        }
                        return fail_expected(p, "',' or '>>'");
                }
        p->depth--;
        return 0;
}

static int parse_binary(struct parser *p, ei_x_buff *x)
{
        struct bits b = { 0 };
        _cleanup_free_ uint8_t *data = NULL;
        int r;

        r = parse_bits(p, &b);
        data = b.data;
        if (r < 0)
                return r;
        if (b.nbits / 8 > INT_MAX)
                return -E2BIG;
        if (b.nbits % 8 == 0)
                return ei_err(ei_x_encode_binary(x, b.data ? (const void *) b.data : "", (int) (b.nbits / 8)));
        return ei_err(ei_x_encode_bitstring(x, (const char *) b.data, 0, b.nbits));
}

static int parse_term(struct parser *p, ei_x_buff *x)
{
        char c, n;
        int r;

        skip_ws(p);
        c = p->s[p->pos];
        n = c ? p->s[p->pos + 1] : '\0';
        switch (c) {
        case '[':
                return parse_list(p, x);
        case '{':
                return parse_tuple(p, x);
        case '#':
                if (n != '{') {
                        p->pos++;
                        return fail_expected(p, "'{' after '#'");
                }
                return parse_map(p, x);
        case '<':
                if (n != '<')
                        return fail_expected(p, "a term");
                return parse_binary(p, x);
        case '"': {
                _cleanup_free_ uint32_t *cps = NULL;
                size_t len;
                r = parse_string(p, &cps, &len);
                return r < 0 ? r : encode_string(x, cps, len);
        }
        case '\'': {
                _cleanup_free_ uint32_t *cps = NULL;
                size_t len, at = p->pos;
                r = parse_quoted(p, '\'', &cps, &len);
                return r < 0 ? r : encode_atom(p, at, x, cps, len);
        }
        case '-':
        case '+':
                if (!(n >= '0' && n <= '9') && n != '$')
                        return fail_expected(p, "a term");
                /* fall through */
        case '$':
        case '0' ... '9': {
                _cleanup_number_ struct number num = { 0 };
                r = parse_number(p, &num);
                if (r < 0)
                        return r;
                if (num.is_float)
                        return ei_err(ei_x_encode_double(x, num.f));
                return encode_integer(x, num.neg, &num.mag);
        }
        default:
                return parse_bare_word(p, x);
        }
}

int nk_literal_encode(ei_x_buff *x, const char *text, struct nk_literal_error *err)
{
        struct parser p = { .s = text, .err = err };
        int r;

        *err = (struct nk_literal_error) { 0 };
        r = parse_term(&p, x);
        if (r < 0) {
                if (r != -EINVAL)
                        snprintf(err->msg, sizeof(err->msg), "%s", strerror(-r));
                return r;
        }
        skip_ws(&p);
        if (p.s[p.pos] != '\0') {
                char b[32];
                return fail(&p, p.pos, "unexpected %s after the term", found(&p, p.pos, b, sizeof(b)));
        }
        return 0;
}

int nk_literal_to_etf(const char *text, ei_x_buff *ret_x, struct nk_literal_error *err)
{
        _cleanup_ei_x_ ei_x_buff x = { 0 };
        int r;

        if (ei_x_new_with_version(&x) < 0)
                return -ENOMEM;
        r = nk_literal_encode(&x, text, err);
        if (r < 0)
                return r;
        *ret_x = x;
        x.buff = NULL;
        return 0;
}
