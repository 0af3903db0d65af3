/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enif_fprintf, enif_snprintf and their va_list forms: C's printf plus
 * BEAM's %T, which prints an ERL_NIF_TERM in Erlang syntax.
 *
 * Each conversion other than %T is handed to vsnprintf one at a time, with
 * its argument fetched here by type, so the C library keeps doing the
 * number formatting; %T goes to the term printer below.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "macro.h"
#include "host_internal.h"
#include "term.h"

#define MAX_DEPTH 1000

static int put_str(struct nk_buf *b, const char *s)
{
        return nk_buf_put(b, s, strlen(s));
}

static int put_fmt(struct nk_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put_fmt(struct nk_buf *b, const char *fmt, ...)
{
        char tmp[64];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        return nk_buf_put(b, tmp, (size_t) n < sizeof(tmp) ? (size_t) n : sizeof(tmp) - 1);
}

/* ---- the term printer ----------------------------------------------------- */

static int print_term(struct nk_buf *b, ERL_NIF_TERM t, int depth);

static int print_big(struct nk_buf *b, const struct nk_big *big)
{
        size_t nlimbs = (big->h.n + 3) / 4, ndec = 0;
        _cleanup_free_ uint32_t *limbs = calloc(nlimbs ? nlimbs : 1, sizeof(uint32_t));
        /* Each 9-digit group holds at least 29.8 bits. */
        _cleanup_free_ uint32_t *dec = calloc(nlimbs * 32 / 29 + 2, sizeof(uint32_t));
        int r;

        if (!limbs || !dec)
                return -ENOMEM;
        for (size_t i = 0; i < big->h.n; i++)
                limbs[i / 4] |= (uint32_t) big->digits[i] << (8 * (i % 4));
        while (nlimbs > 0) {
                uint64_t rem = 0;
                for (size_t i = nlimbs; i-- > 0;) {
                        uint64_t cur = rem << 32 | limbs[i];
                        limbs[i] = (uint32_t) (cur / 1000000000);
                        rem = cur % 1000000000;
                }
                dec[ndec++] = (uint32_t) rem;
                while (nlimbs > 0 && limbs[nlimbs - 1] == 0)
                        nlimbs--;
        }
        if (big->sign && (r = put_str(b, "-")) < 0)
                return r;
        if (ndec == 0)
                return put_str(b, "0");
        r = put_fmt(b, "%u", dec[ndec - 1]);
        for (size_t i = ndec - 1; r >= 0 && i-- > 0;)
                r = put_fmt(b, "%09u", dec[i]);
        return r;
}

/* Erlang prints the shortest text that reads back as the same double, and
 * always with a fraction: 1.0, 1.5e300. */
static int print_float(struct nk_buf *b, double d)
{
        char s[40];
        char *e;

        for (int prec = 1; prec <= 17; prec++) {
                snprintf(s, sizeof(s), "%.*g", prec, d);
                if (strtod(s, NULL) == d)
                        break;
        }
        e = strchr(s, 'e');
        if (e) {
                /* Erlang writes exponents bare: 1.0e300, 1.0e-5. */
                char *dst = e + 1, *src = e + 1;
                if (*src == '+')
                        src++;
                else if (*src == '-')
                        *dst++ = *src++;
                while (*src == '0' && src[1])
                        src++;
                memmove(dst, src, strlen(src) + 1);
        }
        if (!strchr(s, '.')) {
                char rest[40] = "";
                if (e) {
                        snprintf(rest, sizeof(rest), "%s", e);
                        *e = '\0';
                }
                return put_fmt(b, "%s.0%s", s, rest);
        }
        return put_str(b, s);
}

static bool atom_needs_quotes(const char *s, size_t len)
{
        static const char *const reserved[] = {
                "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr",
                "bxor", "case", "catch", "cond", "div", "else", "end", "fun", "if", "let",
                "maybe", "not", "of", "or", "orelse", "receive", "rem", "try", "when", "xor",
        };

        if (len == 0 || !(s[0] >= 'a' && s[0] <= 'z'))
                return true;
        for (size_t i = 1; i < len; i++) {
                unsigned char c = (unsigned char) s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '@'))
                        return true;
        }
        for (size_t i = 0; i < NK_ARRAY_SIZE(reserved); i++)
                if (strcmp(s, reserved[i]) == 0)
                        return true;
        return false;
}

static int print_atom(struct nk_buf *b, ERL_NIF_TERM a)
{
        size_t len;
        const char *s = nk_atom_text(a, &len);
        int r;

        if (!s)
                return put_str(b, "'$bad_atom'");
        if (!atom_needs_quotes(s, len))
                return nk_buf_put(b, s, len);
        if ((r = put_str(b, "'")) < 0)
                return r;
        for (size_t i = 0; i < len && r >= 0; i++) {
                if (s[i] == '\'' || s[i] == '\\')
                        r = nk_buf_put_u8(b, '\\');
                if (r >= 0)
                        r = nk_buf_put_u8(b, (uint8_t) s[i]);
        }
        return r < 0 ? r : put_str(b, "'");
}

static bool printable_char(int64_t c)
{
        return (c >= 32 && c <= 126) || c == '\n' || c == '\t' || c == '\r';
}

static int put_escaped(struct nk_buf *b, int64_t c, char quote)
{
        switch (c) {
        case '\n': return put_str(b, "\\n");
        case '\t': return put_str(b, "\\t");
        case '\r': return put_str(b, "\\r");
        case '\\': return put_str(b, "\\\\");
        default:
                if (c == quote && nk_buf_put_u8(b, '\\') < 0)
                        return -ENOMEM;
                return nk_buf_put_u8(b, (uint8_t) c);
        }
}

/* A non-empty proper list of printable characters prints as "text". */
static bool is_printable_string(ERL_NIF_TERM t)
{
        if (t == NK_NIL)
                return false;
        while (nk_is_kind(t, NK_CONS)) {
                const struct nk_cons *c = (const struct nk_cons *) nk_box_of(t);
                if (!nk_is_small(c->head) || !printable_char(nk_small_value(c->head)))
                        return false;
                t = c->tail;
        }
        return t == NK_NIL;
}

static int print_list(struct nk_buf *b, ERL_NIF_TERM t, int depth)
{
        int r;

        if (is_printable_string(t)) {
                r = put_str(b, "\"");
                for (; r >= 0 && t != NK_NIL; t = ((const struct nk_cons *) nk_box_of(t))->tail)
                        r = put_escaped(b, nk_small_value(((const struct nk_cons *) nk_box_of(t))->head), '"');
                return r < 0 ? r : put_str(b, "\"");
        }
        r = put_str(b, "[");
        for (bool first = true; r >= 0 && nk_is_kind(t, NK_CONS); first = false) {
                const struct nk_cons *c = (const struct nk_cons *) nk_box_of(t);
                if (!first && (r = put_str(b, ",")) < 0)
                        return r;
                r = print_term(b, c->head, depth + 1);
                t = c->tail;
        }
        if (r >= 0 && t != NK_NIL) {
                r = put_str(b, "|");
                if (r >= 0)
                        r = print_term(b, t, depth + 1);
        }
        return r < 0 ? r : put_str(b, "]");
}

static int print_binary(struct nk_buf *b, const struct nk_binary *bin)
{
        size_t whole = bin->bits ? bin->size - 1 : bin->size;
        bool text = whole > 0 && !bin->bits;
        int r;

        for (size_t i = 0; text && i < whole; i++)
                text = printable_char(bin->data[i]);
        if (text) {
                r = put_str(b, "<<\"");
                for (size_t i = 0; r >= 0 && i < whole; i++)
                        r = put_escaped(b, bin->data[i], '"');
                return r < 0 ? r : put_str(b, "\">>");
        }
        r = put_str(b, "<<");
        for (size_t i = 0; r >= 0 && i < whole; i++)
                r = put_fmt(b, i ? ",%u" : "%u", bin->data[i]);
        if (r >= 0 && bin->bits)
                r = put_fmt(b, "%s%u:%u", whole ? "," : "",
                            (unsigned) (bin->data[whole] >> (8 - bin->bits)), bin->bits);
        return r < 0 ? r : put_str(b, ">>");
}

static int print_seq(struct nk_buf *b, const ERL_NIF_TERM *elems, size_t n, int depth)
{
        int r = 0;

        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (i && (r = put_str(b, ",")) < 0)
                        return r;
                r = print_term(b, elems[i], depth + 1);
        }
        return r;
}

static int print_box(struct nk_buf *b, ERL_NIF_TERM t, int depth)
{
        const struct nk_box *h = nk_box_of(t);
        int r;

        switch (h->kind) {
        case NK_BIG:
                return print_big(b, (const struct nk_big *) h);
        case NK_FLOAT:
                return print_float(b, ((const struct nk_float *) h)->value);
        case NK_TUPLE:
                if ((r = put_str(b, "{")) < 0 ||
                    (r = print_seq(b, ((const struct nk_tuple *) h)->elems, h->n, depth)) < 0)
                        return r;
                return put_str(b, "}");
        case NK_CONS:
                return print_list(b, t, depth);
        case NK_MAP: {
                const struct nk_map *m = (const struct nk_map *) h;
                r = put_str(b, "#{");
                for (size_t i = 0; r >= 0 && i < h->n; i++) {
                        if (i && (r = put_str(b, ",")) < 0)
                                return r;
                        if ((r = print_term(b, m->keys[i], depth + 1)) < 0 ||
                            (r = put_str(b, " => ")) < 0)
                                return r;
                        r = print_term(b, m->vals[i], depth + 1);
                }
                return r < 0 ? r : put_str(b, "}");
        }
        case NK_BINARY:
                return print_binary(b, (const struct nk_binary *) h);
        case NK_REF: {
                const struct nk_ref *ref = (const struct nk_ref *) h;
                r = put_str(b, "#Ref<0");
                for (uint32_t i = ref->h.n; r >= 0 && i-- > 0;)
                        r = put_fmt(b, ".%u", ref->ids[i]);
                return r < 0 ? r : put_str(b, ">");
        }
        case NK_RESOURCE: {
                /* BEAM shows a resource as the magic reference it is. */
                uintptr_t p = (uintptr_t) ((const struct nk_resource_term *) h)->res;
                return put_fmt(b, "#Ref<0.%u.%u.%u>", (unsigned) (p >> 40),
                               (unsigned) ((p >> 20) & 0xfffff), (unsigned) (p & 0xfffff));
        }
        case NK_EXTPID: {
                const struct nk_extpid *p = (const struct nk_extpid *) h;
                if ((r = put_str(b, "<")) < 0 || (r = print_atom(b, p->node)) < 0)
                        return r;
                return put_fmt(b, ".%u.%u>", (unsigned) (p->id & 0xffffffff), (unsigned) (p->id >> 32));
        }
        case NK_EXTPORT: {
                const struct nk_extpid *p = (const struct nk_extpid *) h;
                if ((r = put_str(b, "#Port<")) < 0 || (r = print_atom(b, p->node)) < 0)
                        return r;
                return put_fmt(b, ".%llu>", (unsigned long long) p->id);
        }
        case NK_FUN:
                return put_str(b, "#Fun<>");
        default:
                return put_str(b, "#Bad<>");
        }
}

static int print_term(struct nk_buf *b, ERL_NIF_TERM t, int depth)
{
        if (depth > MAX_DEPTH)
                return put_str(b, "...");
        if (t == NK_NONE || t == NK_EXCEPTION)
                return put_str(b, "THE_NON_VALUE");
        if (t == NK_NIL)
                return put_str(b, "[]");
        switch (nk_tag(t)) {
        case NK_TAG_SMALL:
                return put_fmt(b, "%lld", (long long) nk_small_value(t));
        case NK_TAG_ATOM:
                return print_atom(b, t);
        case NK_TAG_PID: {
                const struct nk_pid_data *p = nk_pid_get(t);
                return p ? put_fmt(b, "<0.%u.%u>", p->id, p->serial) : put_str(b, "<bad pid>");
        }
        case NK_TAG_PORT: {
                const struct nk_port_data *p = nk_port_get(t);
                return p ? put_fmt(b, "#Port<0.%llu>", (unsigned long long) p->id)
                         : put_str(b, "#Port<bad>");
        }
        case NK_TAG_BOX:
                return print_box(b, t, depth);
        default:
                return put_str(b, "#Bad<>");
        }
}

int nk_print_term(struct nk_buf *b, ERL_NIF_TERM t)
{
        return print_term(b, t, 0);
}

/* ---- format parsing ------------------------------------------------------- */

enum len_mod { LEN_NONE, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_BIGL, LEN_J, LEN_Z, LEN_T };

/* Formats one conversion spec[0..] ('%'...conv) with its argument. */
static int format_one(struct nk_buf *b, const char *spec, enum len_mod len, char conv,
                      int width, int prec, bool star_w, bool star_p, va_list *ap)
{
        char tmp[512];
        char *out = tmp;
        int n;

#define EMIT(arg)                                                                       \
        do {                                                                            \
                if (star_w && star_p)                                                   \
                        n = snprintf(out, sizeof(tmp), spec, width, prec, arg);         \
                else if (star_w)                                                        \
                        n = snprintf(out, sizeof(tmp), spec, width, arg);               \
                else if (star_p)                                                        \
                        n = snprintf(out, sizeof(tmp), spec, prec, arg);                \
                else                                                                    \
                        n = snprintf(out, sizeof(tmp), spec, arg);                      \
                if (n >= (int) sizeof(tmp)) {                                           \
                        out = malloc((size_t) n + 1);                                   \
                        if (!out)                                                       \
                                return -ENOMEM;                                         \
                        if (star_w && star_p)                                           \
                                snprintf(out, (size_t) n + 1, spec, width, prec, arg);  \
                        else if (star_w)                                                \
                                snprintf(out, (size_t) n + 1, spec, width, arg);        \
                        else if (star_p)                                                \
                                snprintf(out, (size_t) n + 1, spec, prec, arg);         \
                        else                                                            \
                                snprintf(out, (size_t) n + 1, spec, arg);               \
                }                                                                       \
        } while (0)

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        switch (conv) {
        case 'd': case 'i':
                switch (len) {
                case LEN_L: { long v = va_arg(*ap, long); EMIT(v); break; }
                case LEN_LL: { long long v = va_arg(*ap, long long); EMIT(v); break; }
                case LEN_J: { intmax_t v = va_arg(*ap, intmax_t); EMIT(v); break; }
                case LEN_Z: { ssize_t v = va_arg(*ap, ssize_t); EMIT(v); break; }
                case LEN_T: { ptrdiff_t v = va_arg(*ap, ptrdiff_t); EMIT(v); break; }
                default: { int v = va_arg(*ap, int); EMIT(v); break; }
                }
                break;
        case 'u': case 'o': case 'x': case 'X':
                switch (len) {
                case LEN_L: { unsigned long v = va_arg(*ap, unsigned long); EMIT(v); break; }
                case LEN_LL: { unsigned long long v = va_arg(*ap, unsigned long long); EMIT(v); break; }
                case LEN_J: { uintmax_t v = va_arg(*ap, uintmax_t); EMIT(v); break; }
                case LEN_Z: { size_t v = va_arg(*ap, size_t); EMIT(v); break; }
                case LEN_T: { ptrdiff_t v = va_arg(*ap, ptrdiff_t); EMIT(v); break; }
                default: { unsigned v = va_arg(*ap, unsigned); EMIT(v); break; }
                }
                break;
        case 'c': { int v = va_arg(*ap, int); EMIT(v); break; }
        case 'e': case 'E': case 'f': case 'F': case 'g': case 'G': case 'a': case 'A':
                if (len == LEN_BIGL) {
                        long double v = va_arg(*ap, long double);
                        EMIT(v);
                } else {
                        double v = va_arg(*ap, double);
                        EMIT(v);
                }
                break;
        case 's': { const char *v = va_arg(*ap, const char *); if (!v) v = "(null)"; EMIT(v); break; }
        case 'p': { void *v = va_arg(*ap, void *); EMIT(v); break; }
        default:
                return -EINVAL;
        }
#pragma GCC diagnostic pop
#undef EMIT
        if (n < 0) {
                if (out != tmp)
                        free(out);
                return -EINVAL;
        }
        int r = nk_buf_put(b, out, (size_t) n);
        if (out != tmp)
                free(out);
        return r;
}

/* Formats into b; -EINVAL on a malformed format, -ENOMEM. */
static int format(struct nk_buf *b, const char *fmt, va_list ap_in)
{
        va_list ap;
        int r = 0;

        va_copy(ap, ap_in);
        for (const char *p = fmt; *p && r >= 0;) {
                const char *start = p;
                char spec[64];
                enum len_mod len = LEN_NONE;
                int width = 0, prec = 0;
                bool star_w = false, star_p = false;
                size_t speclen;

                if (*p != '%') {
                        const char *q = strchr(p, '%');
                        size_t n = q ? (size_t) (q - p) : strlen(p);
                        r = nk_buf_put(b, p, n);
                        p += n;
                        continue;
                }
                p++;
                if (*p == '%') {
                        r = nk_buf_put_u8(b, '%');
                        p++;
                        continue;
                }
                while (*p && strchr("-+ #0'", *p))
                        p++;
                if (*p == '*') {
                        star_w = true;
                        width = va_arg(ap, int);
                        p++;
                } else
                        while (*p >= '0' && *p <= '9')
                                p++;
                if (*p == '.') {
                        p++;
                        if (*p == '*') {
                                star_p = true;
                                prec = va_arg(ap, int);
                                p++;
                        } else
                                while (*p >= '0' && *p <= '9')
                                        p++;
                }
                switch (*p) {
                case 'h': len = p[1] == 'h' ? LEN_HH : LEN_H; p += p[1] == 'h' ? 2 : 1; break;
                case 'l': len = p[1] == 'l' ? LEN_LL : LEN_L; p += p[1] == 'l' ? 2 : 1; break;
                case 'q': len = LEN_LL; p++; break;
                case 'L': len = LEN_BIGL; p++; break;
                case 'j': len = LEN_J; p++; break;
                case 'z': len = LEN_Z; p++; break;
                case 't': len = LEN_T; p++; break;
                default: break;
                }
                if (!*p) {
                        r = -EINVAL;
                        break;
                }
                if (*p == 'T') {
                        /* BEAM's extension: the argument is an ERL_NIF_TERM. */
                        ERL_NIF_TERM t = va_arg(ap, ERL_NIF_TERM);
                        r = print_term(b, t, 0);
                        p++;
                        continue;
                }
                if (*p == 'n') {
                        /* Stores the count so far, as C does. */
                        int *np = va_arg(ap, int *);
                        if (np)
                                *np = (int) b->len;
                        p++;
                        continue;
                }
                speclen = (size_t) (p - start) + 1;
                if (speclen >= sizeof(spec)) {
                        r = -EINVAL;
                        break;
                }
                memcpy(spec, start, speclen);
                spec[speclen] = '\0';
                r = format_one(b, spec, len, *p, width, prec, star_w, star_p, &ap);
                p++;
        }
        va_end(ap);
        return r;
}

int enif_vsnprintf(char *buffer, size_t size, const char *fmt, va_list ap)
{
        struct nk_buf b = {};
        int r = format(&b, fmt, ap);

        if (r >= 0 && b.len > INT_MAX)
                r = -EOVERFLOW;
        if (r < 0) {
                nk_buf_free(&b);
                return -1;
        }
        if (size > 0) {
                size_t n = b.len < size - 1 ? b.len : size - 1;
                if (n)
                        memcpy(buffer, b.data, n);
                buffer[n] = '\0';
        }
        r = (int) b.len;
        nk_buf_free(&b);
        return r;
}

int enif_snprintf(char *buffer, size_t size, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = enif_vsnprintf(buffer, size, fmt, ap);
        va_end(ap);
        return r;
}

int enif_vfprintf(FILE *f, const char *fmt, va_list ap)
{
        struct nk_buf b = {};
        int r = format(&b, fmt, ap);

        if (r >= 0 && b.len > INT_MAX)
                r = -EOVERFLOW;
        if (r >= 0 && b.len && fwrite(b.data, 1, b.len, f) != b.len)
                r = -EIO;
        if (r >= 0)
                r = (int) b.len;
        else
                r = -1;
        nk_buf_free(&b);
        return r;
}

int enif_fprintf(FILE *f, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = enif_vfprintf(f, fmt, ap);
        va_end(ap);
        return r;
}
