/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The atom budget's counter: which atoms of a result would be new to BEAM.
 *
 * BEAM never frees an atom, so a host that returns ever new atoms fills the
 * VM's atom table and brings it down. The proxy decodes results with
 * ERL_NIF_BIN2TERM_SAFE first, which refuses unknown atoms; only when that
 * fails does it count them here, without creating any, and decodes without
 * SAFE if the host's lifetime budget allows them.
 *
 * The walk is iterative: `need` counts the terms still to read, and every
 * container adds its elements to it, since ETF lays a term out in prefix
 * order. Pids, ports and references start with their node atom, which is
 * read in place.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

enum {
        NEW_FLOAT_EXT = 70, BIT_BINARY_EXT = 77, COMPRESSED = 80, NEW_PID_EXT = 88, NEW_PORT_EXT = 89,
        NEWER_REFERENCE_EXT = 90, SMALL_INTEGER_EXT = 97, INTEGER_EXT = 98, FLOAT_EXT = 99,
        ATOM_EXT = 100, REFERENCE_EXT = 101, PORT_EXT = 102, PID_EXT = 103, SMALL_TUPLE_EXT = 104,
        LARGE_TUPLE_EXT = 105, NIL_EXT = 106, STRING_EXT = 107, LIST_EXT = 108, BINARY_EXT = 109,
        SMALL_BIG_EXT = 110, LARGE_BIG_EXT = 111, NEW_FUN_EXT = 112, EXPORT_EXT = 113,
        NEW_REFERENCE_EXT = 114, SMALL_ATOM_EXT = 115, MAP_EXT = 116, ATOM_UTF8_EXT = 118,
        SMALL_ATOM_UTF8_EXT = 119, V4_PORT_EXT = 120,
};

struct name {
        const uint8_t *p;
        size_t len;
};

struct walk {
        ErlNifEnv *env;
        const uint8_t *p;
        size_t left;
        struct name *fresh;     /* atoms BEAM does not have, duplicates included */
        size_t nfresh, cap;
};

static bool take(struct walk *w, size_t n, const uint8_t **ret)
{
        if (w->left < n)
                return false;
        if (ret)
                *ret = w->p;
        w->p += n;
        w->left -= n;
        return true;
}

static uint32_t be(const uint8_t *p, size_t n)
{
        uint32_t v = 0;
        for (size_t i = 0; i < n; i++)
                v = v << 8 | p[i];
        return v;
}

/* Whether BEAM has the atom. UTF-8 text beyond Latin-1 cannot be looked up
 * through OTP 25's enif_make_existing_atom_len (Latin-1 only), so it counts
 * as new: the budget errs on the side of the atom table. */
static bool exists(ErlNifEnv *env, const uint8_t *p, size_t len, bool utf8)
{
        char buf[256];
        size_t n = 0;
        ERL_NIF_TERM t;

        if (!utf8)
                return enif_make_existing_atom_len(env, (const char *) p, len, &t, ERL_NIF_LATIN1);
        for (size_t i = 0; i < len; i++) {
                if (n >= sizeof buf)
                        return false;
                if (p[i] < 0x80) {
                        buf[n++] = (char) p[i];
                } else if ((p[i] == 0xc2 || p[i] == 0xc3) && i + 1 < len) {
                        buf[n++] = (char) (((p[i] & 0x03) << 6) | (p[i + 1] & 0x3f));
                        i++;
                } else {
                        return false;
                }
        }
        return enif_make_existing_atom_len(env, buf, n, &t, ERL_NIF_LATIN1);
}

static int atom(struct walk *w, uint8_t tag)
{
        const uint8_t *h, *text;
        size_t len;

        if (tag == ATOM_EXT || tag == ATOM_UTF8_EXT) {
                if (!take(w, 2, &h))
                        return -EBADMSG;
                len = be(h, 2);
        } else if (tag == SMALL_ATOM_EXT || tag == SMALL_ATOM_UTF8_EXT) {
                if (!take(w, 1, &h))
                        return -EBADMSG;
                len = h[0];
        } else {
                return -EBADMSG;
        }
        if (!take(w, len, &text))
                return -EBADMSG;
        if (exists(w->env, text, len, tag == ATOM_UTF8_EXT || tag == SMALL_ATOM_UTF8_EXT))
                return 0;
        if (w->nfresh == w->cap) {
                size_t cap = w->cap ? 2 * w->cap : 64;
                struct name *n = realloc(w->fresh, cap * sizeof *n);
                if (!n)
                        return -ENOMEM;
                w->fresh = n;
                w->cap = cap;
        }
        w->fresh[w->nfresh++] = (struct name) { text, len };
        return 0;
}

/* The node atom that starts a pid, port or reference. */
static int node_atom(struct walk *w)
{
        const uint8_t *t;
        if (!take(w, 1, &t))
                return -EBADMSG;
        return atom(w, t[0]);
}

/* Reads one term's own bytes; *more gets how many terms follow as its
 * elements. */
static int one(struct walk *w, uint64_t *more)
{
        const uint8_t *t, *h;
        int r;

        *more = 0;
        if (!take(w, 1, &t))
                return -EBADMSG;
        switch (t[0]) {
        case SMALL_INTEGER_EXT: return take(w, 1, NULL) ? 0 : -EBADMSG;
        case INTEGER_EXT: return take(w, 4, NULL) ? 0 : -EBADMSG;
        case NEW_FLOAT_EXT: return take(w, 8, NULL) ? 0 : -EBADMSG;
        case FLOAT_EXT: return take(w, 31, NULL) ? 0 : -EBADMSG;
        case ATOM_EXT: case ATOM_UTF8_EXT: case SMALL_ATOM_EXT: case SMALL_ATOM_UTF8_EXT:
                return atom(w, t[0]);
        case SMALL_TUPLE_EXT:
                if (!take(w, 1, &h))
                        return -EBADMSG;
                *more = h[0];
                return 0;
        case LARGE_TUPLE_EXT:
                if (!take(w, 4, &h))
                        return -EBADMSG;
                *more = be(h, 4);
                return 0;
        case MAP_EXT:
                if (!take(w, 4, &h))
                        return -EBADMSG;
                *more = 2 * (uint64_t) be(h, 4);
                return 0;
        case LIST_EXT:
                if (!take(w, 4, &h))
                        return -EBADMSG;
                *more = (uint64_t) be(h, 4) + 1;
                return 0;
        case NIL_EXT: return 0;
        case STRING_EXT:
                if (!take(w, 2, &h))
                        return -EBADMSG;
                return take(w, be(h, 2), NULL) ? 0 : -EBADMSG;
        case BINARY_EXT:
                if (!take(w, 4, &h))
                        return -EBADMSG;
                return take(w, be(h, 4), NULL) ? 0 : -EBADMSG;
        case BIT_BINARY_EXT:
                if (!take(w, 4, &h))
                        return -EBADMSG;
                return take(w, (size_t) be(h, 4) + 1, NULL) ? 0 : -EBADMSG;
        case SMALL_BIG_EXT:
                if (!take(w, 1, &h))
                        return -EBADMSG;
                return take(w, (size_t) h[0] + 1, NULL) ? 0 : -EBADMSG;
        case LARGE_BIG_EXT:
                if (!take(w, 4, &h))
                        return -EBADMSG;
                return take(w, (size_t) be(h, 4) + 1, NULL) ? 0 : -EBADMSG;
        case PID_EXT: case NEW_PID_EXT:
                r = node_atom(w);
                return r < 0 ? r : take(w, t[0] == PID_EXT ? 9 : 12, NULL) ? 0 : -EBADMSG;
        case PORT_EXT: case NEW_PORT_EXT: case V4_PORT_EXT:
                r = node_atom(w);
                return r < 0 ? r : take(w, t[0] == PORT_EXT ? 5 : t[0] == NEW_PORT_EXT ? 8 : 12, NULL)
                                   ? 0 : -EBADMSG;
        case REFERENCE_EXT:
                r = node_atom(w);
                return r < 0 ? r : take(w, 5, NULL) ? 0 : -EBADMSG;
        case NEW_REFERENCE_EXT: case NEWER_REFERENCE_EXT: {
                if (!take(w, 2, &h))
                        return -EBADMSG;
                size_t ids = be(h, 2);
                r = node_atom(w);
                if (r < 0)
                        return r;
                return take(w, (t[0] == NEW_REFERENCE_EXT ? 1 : 4) + 4 * ids, NULL) ? 0 : -EBADMSG;
        }
        case EXPORT_EXT:
                *more = 3;
                return 0;
        case NEW_FUN_EXT:
                /* Size, Arity, Uniq, Index, NumFree; then Module, OldIndex,
                 * OldUniq, Pid and the free variables as terms. */
                if (!take(w, 4 + 1 + 16 + 4, NULL) || !take(w, 4, &h))
                        return -EBADMSG;
                *more = 4 + (uint64_t) be(h, 4);
                return 0;
        default:
                /* COMPRESSED and anything unknown: not something the host's
                 * encoder makes. */
                return -EBADMSG;
        }
}

static int cmp_name(const void *a, const void *b)
{
        const struct name *x = a, *y = b;
        size_t n = x->len < y->len ? x->len : y->len;
        int c = memcmp(x->p, y->p, n);
        return c ? c : (x->len > y->len) - (x->len < y->len);
}

long atoms_new_in_etf(ErlNifEnv *env, const uint8_t *etf, size_t len)
{
        struct walk w = { .env = env, .p = etf, .left = len };
        uint64_t need = 1;
        long r = 0;

        if (!take(&w, 1, NULL) || etf[0] != 131)
                return -EBADMSG;
        while (need > 0) {
                uint64_t more;
                int k = one(&w, &more);
                if (k < 0) {
                        r = k;
                        goto out;
                }
                need = need - 1 + more;
                /* Every term takes at least one byte: more pending terms
                 * than bytes left is malformed, and bounds the counter. */
                if (need > w.left) {
                        r = -EBADMSG;
                        goto out;
                }
        }
        if (w.left != 0) {
                r = -EBADMSG;
                goto out;
        }
        if (w.nfresh > 1)
                qsort(w.fresh, w.nfresh, sizeof *w.fresh, cmp_name);
        for (size_t i = 0; i < w.nfresh; i++)
                if (i == 0 || cmp_name(&w.fresh[i - 1], &w.fresh[i]) != 0)
                        r++;
out:
        free(w.fresh);
        return r;
}
