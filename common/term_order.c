/* SPDX-License-Identifier: Apache-2.0 */
/* Erlang term order for terms that hold no other term (term_order.h). */
#include <math.h>
#include <string.h>

#include "term_order.h"
#include "utf8.h"

int nk_order_u64(uint64_t a, uint64_t b)
{
        return a < b ? -1 : a > b;
}

/* ---- numbers --------------------------------------------------------------- */

/* Without its high zero bytes. */
static size_t mag_len(const uint8_t *mag, size_t n)
{
        while (n > 0 && mag[n - 1] == 0)
                n--;
        return n;
}

int nk_order_ints(const struct nk_order_int *a, const struct nk_order_int *b)
{
        size_t la = mag_len(a->mag, a->len), lb = mag_len(b->mag, b->len);
        bool na = a->negative && la > 0, nb = b->negative && lb > 0;
        int c = 0;

        if (na != nb)
                return na ? -1 : 1;
        if (la != lb)
                c = la < lb ? -1 : 1;
        else
                for (size_t i = la; i-- > 0;)
                        if (a->mag[i] != b->mag[i]) {
                                c = a->mag[i] < b->mag[i] ? -1 : 1;
                                break;
                        }
        return na ? -c : c;
}

int nk_order_doubles(double a, double b)
{
        return a < b ? -1 : a > b;
}

int nk_order_int64_double(int64_t v, double d)
{
        if (d >= 9223372036854775808.0)
                return -1;
        if (d < -9223372036854775808.0)
                return 1;
        int64_t t = (int64_t) d;        /* truncates; exact below 2^63 */
        if (v != t)
                return v < t ? -1 : 1;
        double frac = d - (double) t;   /* exact: t is d without its fraction */
        return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static size_t mag_bits(const uint8_t *mag, size_t n)
{
        n = mag_len(mag, n);
        if (n == 0)
                return 0;
        unsigned top = mag[n - 1], bits = 0;
        while (top) {
                bits++;
                top >>= 1;
        }
        return (n - 1) * 8 + bits;
}

/* A magnitude against a positive finite double, exactly. */
static int mag_double(const uint8_t *mag, size_t n, double ad)
{
        int e;
        double f = frexp(ad, &e);       /* ad = f * 2^e, 0.5 <= f < 1 */
        size_t bits = mag_bits(mag, n);
        if (e <= 0)                     /* ad < 1 */
                return bits > 0 ? 1 : -1;
        if (bits != (size_t) e)
                return bits > (size_t) e ? 1 : -1;
        if (e <= 53) {
                /* Both below 2^53: the magnitude converts to a double exactly. */
                uint64_t m = 0;
                for (size_t i = (bits + 7) / 8; i-- > 0;)
                        m = m << 8 | mag[i];
                double md = (double) m;
                return md < ad ? -1 : md > ad;
        }
        /* ad is an integer here: m * 2^(e-53) with a 53-bit m. Lay it out as
         * bytes and compare from the top; e <= 1024 bounds the size. */
        uint8_t fb[130] = { 0 };
        uint64_t m = (uint64_t) ldexp(f, 53);
        unsigned shift = (unsigned) e - 53;
        for (unsigned i = 0; i < 53; i++)
                if (m >> i & 1)
                        fb[(shift + i) / 8] |= (uint8_t) (1u << ((shift + i) % 8));
        for (size_t i = (bits + 7) / 8; i-- > 0;) {
                uint8_t x = i < n ? mag[i] : 0;
                if (x != fb[i])
                        return x < fb[i] ? -1 : 1;
        }
        return 0;
}

int nk_order_int_double(const struct nk_order_int *a, double d)
{
        if (mag_len(a->mag, a->len) == 0)
                return d > 0 ? -1 : d < 0;
        bool neg = a->negative;
        if (d == 0 || (d < 0) != neg)
                return neg ? -1 : 1;
        int c = mag_double(a->mag, a->len, fabs(d));
        return neg ? -c : c;
}

/* ---- atoms ------------------------------------------------------------------- */

static uint32_t next_cp(const uint8_t *s, size_t n, bool latin1, size_t *i)
{
        uint32_t cp;

        if (latin1)
                return s[(*i)++];
        size_t step = nk_utf8_decode(s + *i, n - *i, &cp);
        if (step == 0) {
                /* Not UTF-8 (atoms are checked where they are made): by byte. */
                return s[(*i)++];
        }
        *i += step;
        return cp;
}

int nk_order_atom_texts(const uint8_t *a, size_t alen, bool a_latin1, const uint8_t *b, size_t blen,
                        bool b_latin1)
{
        if (a_latin1 == b_latin1) {
                /* Latin-1 and UTF-8 byte orders are both code point orders. */
                int c = memcmp(a, b, alen < blen ? alen : blen);
                if (c)
                        return c < 0 ? -1 : 1;
                return nk_order_u64(alen, blen);
        }
        size_t i = 0, j = 0;
        while (i < alen && j < blen) {
                uint32_t x = next_cp(a, alen, a_latin1, &i), y = next_cp(b, blen, b_latin1, &j);
                if (x != y)
                        return x < y ? -1 : 1;
        }
        return (i < alen) - (j < blen);
}

/* ---- pids, ports, references ------------------------------------------------ */

static int nodes(const struct nk_order_ident *a, const struct nk_order_ident *b)
{
        int c = nk_order_atom_texts(a->node, a->node_len, a->node_latin1, b->node, b->node_len, b->node_latin1);
        return c ? c : nk_order_u64(a->creation, b->creation);
}

int nk_order_pids(const struct nk_order_ident *a, const struct nk_order_ident *b)
{
        if (a->num != b->num)
                return nk_order_u64(a->num, b->num);
        return nodes(a, b);
}

int nk_order_ports(const struct nk_order_ident *a, const struct nk_order_ident *b)
{
        int c = nodes(a, b);
        return c ? c : nk_order_u64(a->num, b->num);
}

static unsigned ref_words(const struct nk_order_ident *r)
{
        unsigned n = r->nids > 5 ? 5 : r->nids;
        while (n > 1 && r->ids[n - 1] == 0)
                n--;
        return n;
}

int nk_order_refs(const struct nk_order_ident *a, const struct nk_order_ident *b)
{
        int c = nodes(a, b);
        if (c)
                return c;
        unsigned na = ref_words(a), nb = ref_words(b);
        if (na != nb)
                return na < nb ? -1 : 1;
        for (unsigned i = na; i-- > 0;)
                if (a->ids[i] != b->ids[i])
                        return a->ids[i] < b->ids[i] ? -1 : 1;
        return 0;
}

/* ---- funs ----------------------------------------------------------------------- */

int nk_order_fun_heads(const struct nk_order_fun *a, const struct nk_order_fun *b)
{
        if (a->is_export != b->is_export)
                return a->is_export ? 1 : -1;
        int c = nk_order_atom_texts(a->module, a->module_len, false, b->module, b->module_len, false);
        if (c)
                return c;
        if (a->is_export) {
                c = nk_order_atom_texts(a->function, a->function_len, false, b->function, b->function_len, false);
                return c ? c : nk_order_u64(a->arity, b->arity);
        }
        if (a->old_index != b->old_index)
                return a->old_index < b->old_index ? -1 : 1;
        if (a->old_uniq != b->old_uniq)
                return a->old_uniq < b->old_uniq ? -1 : 1;
        return nk_order_u64(a->num_free, b->num_free);
}

/* ---- bitstrings ------------------------------------------------------------------ */

int nk_order_bits(const uint8_t *a, size_t abits, const uint8_t *b, size_t bbits)
{
        size_t min = abits < bbits ? abits : bbits;
        size_t whole = min / 8;
        int c = whole ? memcmp(a, b, whole) : 0;
        if (c)
                return c < 0 ? -1 : 1;
        if (min % 8) {
                uint8_t mask = (uint8_t) (0xff00u >> (min % 8));
                uint8_t x = a[whole] & mask, y = b[whole] & mask;
                if (x != y)
                        return x < y ? -1 : 1;
        }
        return nk_order_u64(abits, bbits);
}
