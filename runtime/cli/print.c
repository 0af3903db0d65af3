/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Two passes: a bounds-checked decoder turns the ETF into a flat array of
 * nodes (children by index, data pointing into the input), maps are sorted
 * into the order BEAM keeps their keys in, then the printer walks the nodes.
 * A node costs one input byte at least, so the array is bounded by the
 * input's size.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atom_syntax.h"
#include "buf.h"
#include "macro.h"
#include "print.h"
#include "term_order.h"
#include "utf8.h"

enum {
        VERSION = 131,
        SMALL_INTEGER_EXT = 97,
        INTEGER_EXT = 98,
        FLOAT_EXT = 99,
        NEW_FLOAT_EXT = 70,
        ATOM_EXT = 100,
        SMALL_ATOM_EXT = 115,
        ATOM_UTF8_EXT = 118,
        SMALL_ATOM_UTF8_EXT = 119,
        REFERENCE_EXT = 101,
        NEW_REFERENCE_EXT = 114,
        NEWER_REFERENCE_EXT = 90,
        PORT_EXT = 102,
        NEW_PORT_EXT = 89,
        V4_PORT_EXT = 120,
        PID_EXT = 103,
        NEW_PID_EXT = 88,
        SMALL_TUPLE_EXT = 104,
        LARGE_TUPLE_EXT = 105,
        MAP_EXT = 116,
        NIL_EXT = 106,
        STRING_EXT = 107,
        LIST_EXT = 108,
        BINARY_EXT = 109,
        BIT_BINARY_EXT = 77,
        SMALL_BIG_EXT = 110,
        LARGE_BIG_EXT = 111,
        NEW_FUN_EXT = 112,
        EXPORT_EXT = 113,
};

#define MAX_BIG_BYTES (((size_t) 1 << 19) - 1) * 8

/* In the order erts sorts map keys: every integer before every float. */
enum kind {
        T_INT, T_BIG, T_FLOAT, T_ATOM, T_REF, T_FUN, T_EXPORT, T_PORT, T_PID,
        T_TUPLE, T_MAP, T_NIL, T_LIST, T_STRING, T_BIN,
};

struct node {
        uint8_t kind;
        uint8_t flag;           /* T_ATOM: latin1; T_BIG: negative; T_BIN: bits used in last byte */
        uint32_t n;             /* atom bytes, tuple arity, map pairs, list elements, string bytes, ref words */
        const uint8_t *p;       /* atom text, big magnitude (little endian), string/binary bytes, ref words */
        size_t len;             /* big magnitude bytes, binary bytes */
        size_t first;           /* first child; pids, ports, refs and funs: their node/module atom */
        union {
                int64_t i;
                double f;
                uint64_t a;     /* pid/port id, fun old index, export arity */
        };
        uint64_t b;             /* pid serial, fun old uniq */
        uint32_t creation;      /* pid, port, reference: the node's creation */
};

struct decoder {
        const uint8_t *d;
        size_t len, pos;
        struct node *t;
        size_t n, cap;
        unsigned depth;
};

static int need(const struct decoder *dc, size_t n)
{
        return dc->len - dc->pos >= n ? 0 : -EBADMSG;
}

static uint32_t get32(const struct decoder *dc, size_t at)
{
        return nk_get_be32(dc->d + at);
}

/* Reserves k consecutive nodes; returns the first index. k never exceeds the
 * bytes left, so the total stays below the input size. */
static int reserve(struct decoder *dc, size_t k, size_t *ret_first)
{
        if (k > dc->len - dc->pos + 1)
                return -EBADMSG;
        if (dc->n + k > dc->cap) {
                size_t cap = dc->cap ? dc->cap : 16;
                struct node *t;
                while (cap < dc->n + k)
                        cap *= 2;
                t = reallocarray(dc->t, cap, sizeof(*t));
                if (!t)
                        return -ENOMEM;
                dc->t = t;
                dc->cap = cap;
        }
        *ret_first = dc->n;
        memset(dc->t + dc->n, 0, k * sizeof(*dc->t));
        dc->n += k;
        return 0;
}

static int decode(struct decoder *dc, size_t slot);

static int decode_atom(struct decoder *dc, size_t slot)
{
        struct node *t = &dc->t[slot];
        uint8_t tag;
        size_t n, chars = 0;
        int r;

        r = need(dc, 1);
        if (r < 0)
                return r;
        tag = dc->d[dc->pos++];
        if (tag == ATOM_EXT || tag == ATOM_UTF8_EXT) {
                r = need(dc, 2);
                if (r < 0)
                        return r;
                n = nk_get_be16(dc->d + dc->pos);
                dc->pos += 2;
        } else if (tag == SMALL_ATOM_EXT || tag == SMALL_ATOM_UTF8_EXT) {
                r = need(dc, 1);
                if (r < 0)
                        return r;
                n = dc->d[dc->pos++];
        } else
                return -EBADMSG;
        r = need(dc, n);
        if (r < 0)
                return r;
        t->kind = T_ATOM;
        t->p = dc->d + dc->pos;
        t->n = (uint32_t) n;
        t->flag = tag == ATOM_EXT || tag == SMALL_ATOM_EXT;
        if (!t->flag)
                for (size_t i = 0; i < n; chars++) {
                        uint32_t cp;
                        size_t k = nk_utf8_decode(t->p + i, n - i, &cp);
                        if (k == 0)
                                return -EBADMSG;
                        i += k;
                }
        else
                chars = n;
        if (chars > 255)
                return -EBADMSG;
        dc->pos += n;
        return 0;
}

/* An atom as a separate node, for the node of pids and the module of funs. */
static int decode_atom_child(struct decoder *dc, size_t slot)
{
        size_t first;
        int r = reserve(dc, 1, &first);

        if (r < 0)
                return r;
        dc->t[slot].first = first;
        return decode_atom(dc, first);
}

static int decode_children(struct decoder *dc, size_t slot, size_t k)
{
        size_t first;
        int r = reserve(dc, k, &first);

        if (r < 0)
                return r;
        dc->t[slot].first = first;
        for (size_t i = 0; i < k; i++) {
                r = decode(dc, first + i);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int decode_big(struct decoder *dc, size_t slot, size_t n)
{
        struct node *t = &dc->t[slot];
        size_t len = n;
        int r = need(dc, n + 1);

        if (r < 0)
                return r;
        /* BEAM holds at most 2^19-1 words of magnitude (BIG_ARITY_MAX), so
         * binary_to_term refuses more; so does this, which also bounds the
         * quadratic decimal conversion. */
        if (dc->d[dc->pos] > 1 || n > MAX_BIG_BYTES)
                return -EBADMSG;
        t->kind = T_BIG;
        t->flag = dc->d[dc->pos];
        t->p = dc->d + dc->pos + 1;
        /* High zero bytes do not change the value; drop them for comparing. */
        while (len > 0 && t->p[len - 1] == 0)
                len--;
        t->len = len;
        dc->pos += 1 + n;
        return 0;
}

static int decode_float_ext(struct decoder *dc, struct node *t)
{
        char s[32];
        char *end;
        int r = need(dc, 31);

        if (r < 0)
                return r;
        memcpy(s, dc->d + dc->pos, 31);
        s[31] = '\0';
        t->f = strtod(s, &end);
        if (end == s || !isfinite(t->f))
                return -EBADMSG;
        t->kind = T_FLOAT;
        dc->pos += 31;
        return 0;
}

static int decode_pid_port_ref(struct decoder *dc, size_t slot, uint8_t tag)
{
        size_t words = 0, creation;
        int r;

        if (tag == NEW_REFERENCE_EXT || tag == NEWER_REFERENCE_EXT) {
                r = need(dc, 2);
                if (r < 0)
                        return r;
                words = nk_get_be16(dc->d + dc->pos);
                dc->pos += 2;
                if (words < 1 || words > 5)
                        return -EBADMSG;
        }
        r = decode_atom_child(dc, slot);
        if (r < 0)
                return r;
        struct node *t = &dc->t[slot];
        creation = tag == PID_EXT || tag == PORT_EXT || tag == REFERENCE_EXT || tag == NEW_REFERENCE_EXT ? 1 : 4;
        switch (tag) {
        case PID_EXT:
        case NEW_PID_EXT:
                r = need(dc, 8 + creation);
                t->kind = T_PID;
                if (r >= 0) {
                        t->a = get32(dc, dc->pos);
                        t->b = get32(dc, dc->pos + 4);
                        t->creation = creation == 1 ? dc->d[dc->pos + 8] : get32(dc, dc->pos + 8);
                }
                dc->pos += 8 + creation;
                return r;
        case PORT_EXT:
        case NEW_PORT_EXT:
        case V4_PORT_EXT: {
                size_t idlen = tag == V4_PORT_EXT ? 8 : 4;
                r = need(dc, idlen + creation);
                t->kind = T_PORT;
                if (r >= 0) {
                        t->a = idlen == 8 ? nk_get_be64(dc->d + dc->pos) : get32(dc, dc->pos);
                        t->creation = creation == 1 ? dc->d[dc->pos + idlen] : get32(dc, dc->pos + idlen);
                }
                dc->pos += idlen + creation;
                return r;
        }
        case REFERENCE_EXT:
                r = need(dc, 4 + creation);
                t->kind = T_REF;
                t->n = 1;
                t->p = dc->d + dc->pos;
                if (r >= 0)
                        t->creation = dc->d[dc->pos + 4];
                dc->pos += 4 + creation;
                return r;
        default:
                r = need(dc, creation + 4 * words);
                t->kind = T_REF;
                t->n = (uint32_t) words;
                t->p = dc->d + dc->pos + creation;
                if (r >= 0)
                        t->creation = creation == 1 ? dc->d[dc->pos] : get32(dc, dc->pos);
                dc->pos += creation + 4 * words;
                return r;
        }
}

static int decode_small_int_term(struct decoder *dc, uint64_t *ret)
{
        int r = need(dc, 2);

        if (r < 0)
                return r;
        if (dc->d[dc->pos] == SMALL_INTEGER_EXT) {
                *ret = dc->d[dc->pos + 1];
                dc->pos += 2;
                return 0;
        }
        r = need(dc, 5);
        if (r < 0 || dc->d[dc->pos] != INTEGER_EXT)
                return -EBADMSG;
        *ret = (uint64_t) (int64_t) (int32_t) get32(dc, dc->pos + 1);
        dc->pos += 5;
        return 0;
}

static int decode_fun(struct decoder *dc, size_t slot)
{
        size_t start = dc->pos, size, numfree, first;
        uint64_t idx, uniq;
        int r;

        /* Size, Arity, Uniq[16], Index, NumFree, Module, OldIndex, OldUniq, Pid, Free... */
        r = need(dc, 4 + 1 + 16 + 4 + 4);
        if (r < 0)
                return r;
        size = get32(dc, dc->pos);
        numfree = get32(dc, dc->pos + 25);
        dc->pos += 29;
        r = decode_atom_child(dc, slot);
        if (r < 0)
                return r;
        r = decode_small_int_term(dc, &idx);
        if (r < 0)
                return r;
        r = decode_small_int_term(dc, &uniq);
        if (r < 0)
                return r;
        /* The creator pid and the free variables are not printed, but they
         * must be well-formed terms for the size to be believed. */
        if (numfree > dc->len - dc->pos)
                return -EBADMSG;
        r = reserve(dc, 1 + numfree, &first);
        if (r < 0)
                return r;
        for (size_t i = 0; i <= numfree; i++) {
                r = decode(dc, first + i);
                if (r < 0)
                        return r;
        }
        if (dc->pos - start != size)
                return -EBADMSG;
        dc->t[slot].kind = T_FUN;
        dc->t[slot].a = idx;
        dc->t[slot].b = uniq;
        /* The free variables, after the creator pid: term order reads them. */
        dc->t[slot].n = (uint32_t) numfree;
        dc->t[slot].len = first + 1;
        return 0;
}

/* fun M:F/A: module and function atoms as children, the arity a small integer. */
static int decode_export(struct decoder *dc, size_t slot)
{
        size_t first;
        int r;

        r = reserve(dc, 2, &first);
        if (r < 0)
                return r;
        dc->t[slot].first = first;
        r = decode_atom(dc, first);
        if (r < 0)
                return r;
        r = decode_atom(dc, first + 1);
        if (r < 0)
                return r;
        if (need(dc, 2) < 0 || dc->d[dc->pos] != SMALL_INTEGER_EXT)
                return -EBADMSG;
        dc->t[slot].kind = T_EXPORT;
        dc->t[slot].a = dc->d[dc->pos + 1];
        dc->pos += 2;
        return 0;
}

static int decode_list(struct decoder *dc, size_t slot, size_t n)
{
        size_t first;
        int r;

        if (n == 0)     /* no elements: the term is its tail */
                return decode(dc, slot);
        r = reserve(dc, n + 1, &first);
        if (r < 0)
                return r;
        dc->t[slot].kind = T_LIST;
        dc->t[slot].n = (uint32_t) n;
        dc->t[slot].first = first;
        for (size_t i = 0; i <= n; i++) {
                r = decode(dc, first + i);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int decode_tag(struct decoder *dc, size_t slot, uint8_t tag)
{
        struct node *t = &dc->t[slot];
        size_t n;
        int r;

        switch (tag) {
        case SMALL_INTEGER_EXT:
                r = need(dc, 1);
                t->kind = T_INT;
                t->i = r < 0 ? 0 : dc->d[dc->pos++];
                return r;
        case INTEGER_EXT:
                r = need(dc, 4);
                t->kind = T_INT;
                if (r < 0)
                        return r;
                t->i = (int32_t) get32(dc, dc->pos);
                dc->pos += 4;
                return 0;
        case NEW_FLOAT_EXT: {
                uint64_t u;
                r = need(dc, 8);
                if (r < 0)
                        return r;
                u = nk_get_be64(dc->d + dc->pos);
                memcpy(&t->f, &u, sizeof(u));
                if (!isfinite(t->f))
                        return -EBADMSG;
                t->kind = T_FLOAT;
                dc->pos += 8;
                return 0;
        }
        case FLOAT_EXT:
                return decode_float_ext(dc, t);
        case ATOM_EXT:
        case SMALL_ATOM_EXT:
        case ATOM_UTF8_EXT:
        case SMALL_ATOM_UTF8_EXT:
                dc->pos--;
                return decode_atom(dc, slot);
        case SMALL_BIG_EXT:
                r = need(dc, 1);
                if (r < 0)
                        return r;
                n = dc->d[dc->pos++];
                return decode_big(dc, slot, n);
        case LARGE_BIG_EXT:
                r = need(dc, 4);
                if (r < 0)
                        return r;
                n = get32(dc, dc->pos);
                dc->pos += 4;
                return decode_big(dc, slot, n);
        case SMALL_TUPLE_EXT:
        case LARGE_TUPLE_EXT:
                r = need(dc, tag == SMALL_TUPLE_EXT ? 1 : 4);
                if (r < 0)
                        return r;
                n = tag == SMALL_TUPLE_EXT ? dc->d[dc->pos] : get32(dc, dc->pos);
                dc->pos += tag == SMALL_TUPLE_EXT ? 1 : 4;
                t->kind = T_TUPLE;
                t->n = (uint32_t) n;
                return decode_children(dc, slot, n);
        case MAP_EXT:
                r = need(dc, 4);
                if (r < 0)
                        return r;
                n = get32(dc, dc->pos);
                dc->pos += 4;
                if (n > (dc->len - dc->pos) / 2)
                        return -EBADMSG;
                t->kind = T_MAP;
                t->n = (uint32_t) n;
                return decode_children(dc, slot, 2 * n);
        case NIL_EXT:
                t->kind = T_NIL;
                return 0;
        case STRING_EXT:
                r = need(dc, 2);
                if (r < 0)
                        return r;
                n = nk_get_be16(dc->d + dc->pos);
                dc->pos += 2;
                r = need(dc, n);
                if (r < 0)
                        return r;
                t->kind = n ? T_STRING : T_NIL;
                t->n = (uint32_t) n;
                t->p = dc->d + dc->pos;
                dc->pos += n;
                return 0;
        case LIST_EXT:
                r = need(dc, 4);
                if (r < 0)
                        return r;
                n = get32(dc, dc->pos);
                dc->pos += 4;
                return decode_list(dc, slot, n);
        case BINARY_EXT:
        case BIT_BINARY_EXT:
                r = need(dc, tag == BINARY_EXT ? 4 : 5);
                if (r < 0)
                        return r;
                n = get32(dc, dc->pos);
                t->flag = tag == BINARY_EXT ? 8 : dc->d[dc->pos + 4];
                dc->pos += tag == BINARY_EXT ? 4 : 5;
                if (t->flag < 1 || t->flag > 8 || (n == 0 && t->flag != 8))
                        return -EBADMSG;
                r = need(dc, n);
                if (r < 0)
                        return r;
                t->kind = T_BIN;
                t->p = dc->d + dc->pos;
                t->len = n;
                dc->pos += n;
                return 0;
        case PID_EXT:
        case NEW_PID_EXT:
        case PORT_EXT:
        case NEW_PORT_EXT:
        case V4_PORT_EXT:
        case REFERENCE_EXT:
        case NEW_REFERENCE_EXT:
        case NEWER_REFERENCE_EXT:
                return decode_pid_port_ref(dc, slot, tag);
        case NEW_FUN_EXT:
                return decode_fun(dc, slot);
        case EXPORT_EXT:
                return decode_export(dc, slot);
        default:
                /* Compressed terms, atom cache references and the old
                 * FUN_EXT never come from a host. */
                return -EBADMSG;
        }
}

static int decode(struct decoder *dc, size_t slot)
{
        uint8_t tag;
        int r;

        if (++dc->depth > NK_PRINT_MAX_DEPTH)
                return -EBADMSG;
        r = need(dc, 1);
        if (r < 0)
                return r;
        tag = dc->d[dc->pos++];
        r = decode_tag(dc, slot, tag);
        dc->depth--;
        return r;
}

/* ---- term order ---------------------------------------------------- */

/* Leaves are ordered by common/term_order.c, as the host orders them;
 * this walks tuples, maps and lists. */
static int cmp(const struct node *t, size_t a, size_t b);

static enum nk_order_rank rank(uint8_t kind)
{
        static const enum nk_order_rank ranks[] = {
                [T_INT] = NK_RANK_NUMBER, [T_BIG] = NK_RANK_NUMBER, [T_FLOAT] = NK_RANK_NUMBER,
                [T_ATOM] = NK_RANK_ATOM, [T_REF] = NK_RANK_REF, [T_FUN] = NK_RANK_FUN,
                [T_EXPORT] = NK_RANK_EXPORT, [T_PORT] = NK_RANK_PORT, [T_PID] = NK_RANK_PID,
                [T_TUPLE] = NK_RANK_TUPLE, [T_MAP] = NK_RANK_MAP, [T_NIL] = NK_RANK_NIL,
                [T_LIST] = NK_RANK_LIST, [T_STRING] = NK_RANK_LIST, [T_BIN] = NK_RANK_BITSTRING,
        };
        return ranks[kind];
}

static int cmp_atoms(const struct node *x, const struct node *y)
{
        return nk_order_atom_texts(x->p, x->n, x->flag, y->p, y->n, y->flag);
}

/* Integers as sign and little-endian magnitude, for comparing any two. */
static struct nk_order_int order_int(const struct node *x, uint8_t buf[static 8])
{
        if (x->kind == T_BIG)
                return (struct nk_order_int) { .negative = x->flag, .mag = x->p, .len = x->len };
        uint64_t u = x->i < 0 ? -(uint64_t) x->i : (uint64_t) x->i;
        size_t l = 0;
        for (; u; u >>= 8)
                buf[l++] = (uint8_t) u;
        return (struct nk_order_int) { .negative = x->i < 0, .mag = buf, .len = l };
}

static int cmp_ints(const struct node *x, const struct node *y)
{
        uint8_t bx[8], by[8];
        struct nk_order_int ix = order_int(x, bx), iy = order_int(y, by);
        return nk_order_ints(&ix, &iy);
}

static size_t bits_of(const struct node *x)
{
        return x->len ? (x->len - 1) * 8 + x->flag : 0;
}

/* A pid, port or reference with its node. */
static struct nk_order_ident order_ident(const struct node *t, const struct node *x)
{
        const struct node *node = &t[x->first];
        struct nk_order_ident id = {
                .node = node->p, .node_len = node->n, .node_latin1 = node->flag,
                .creation = x->creation,
        };
        if (x->kind == T_PID)
                id.num = x->b << 32 | (x->a & 0xffffffffu);
        else if (x->kind == T_PORT)
                id.num = x->a;
        id.nids = x->kind == T_REF ? x->n : 0;
        for (unsigned i = 0; i < id.nids; i++)
                id.ids[i] = nk_get_be32(x->p + 4 * i);
        return id;
}

static struct nk_order_fun order_fun(const struct node *t, const struct node *x)
{
        const struct node *m = &t[x->first];
        struct nk_order_fun f = { .is_export = x->kind == T_EXPORT, .module = m->p, .module_len = m->n };
        if (f.is_export) {
                f.function = t[x->first + 1].p;
                f.function_len = t[x->first + 1].n;
                f.arity = (uint32_t) x->a;
        } else {
                f.old_index = (int64_t) x->a;
                f.old_uniq = (int64_t) x->b;
                f.num_free = x->n;
        }
        return f;
}

/* Walks a list's elements through tails that are lists themselves. */
struct list_iter {
        const struct node *t;
        const struct node *list;        /* current T_LIST or T_STRING node */
        size_t i;
        struct node ch;         /* the current character of a T_STRING */
};

static void iter_init(struct list_iter *it, const struct node *t, const struct node *list)
{
        *it = (struct list_iter) { .t = t, .list = list };
}

/* Next element, or NULL at the end; then *ret_tail is the tail's index, or
 * SIZE_MAX for []. */
static const struct node *iter_next(struct list_iter *it, size_t *ret_tail)
{
        for (;;) {
                const struct node *l = it->list;
                if (l->kind == T_STRING) {
                        if (it->i < l->n) {
                                it->ch = (struct node) { .kind = T_INT, .i = l->p[it->i++] };
                                return &it->ch;
                        }
                        *ret_tail = SIZE_MAX;
                        return NULL;
                }
                if (it->i < l->n)
                        return &it->t[l->first + it->i++];
                size_t tail = l->first + l->n;
                if (it->t[tail].kind == T_LIST || it->t[tail].kind == T_STRING) {
                        it->list = &it->t[tail];
                        it->i = 0;
                        continue;
                }
                *ret_tail = it->t[tail].kind == T_NIL ? SIZE_MAX : tail;
                return NULL;
        }
}

static int cmp_nodes(const struct node *t, const struct node *x, const struct node *y);

static int cmp_lists(const struct node *t, const struct node *a, const struct node *b)
{
        struct list_iter ia, ib;
        size_t ta = SIZE_MAX, tb = SIZE_MAX;

        iter_init(&ia, t, a);
        iter_init(&ib, t, b);
        for (;;) {
                const struct node *x = iter_next(&ia, &ta), *y = iter_next(&ib, &tb);
                struct node nil = { .kind = T_NIL };
                int c;
                if (!x && !y)
                        return cmp_nodes(t, ta == SIZE_MAX ? &nil : &t[ta], tb == SIZE_MAX ? &nil : &t[tb]);
                if (!x || !y) {
                        /* One list goes on; the other's tail meets a list. */
                        const struct node *end = !x ? (ta == SIZE_MAX ? &nil : &t[ta]) : (tb == SIZE_MAX ? &nil : &t[tb]);
                        c = rank(end->kind) < NK_RANK_LIST ? -1 : 1;
                        return !x ? c : -c;
                }
                c = cmp_nodes(t, x, y);
                if (c != 0)
                        return c;
        }
}

/* Map keys are ordered exactly (every integer before every float), at
 * every depth: that is the only order this printer sorts by. */
static int cmp_nodes(const struct node *t, const struct node *x, const struct node *y)
{
        enum nk_order_rank rx = rank(x->kind), ry = rank(y->kind);
        struct nk_order_ident ix, iy;
        struct nk_order_fun fx, fy;
        int c;

        if (rx != ry)
                return rx < ry ? -1 : 1;
        switch (rx) {
        case NK_RANK_NUMBER:
                if ((x->kind == T_FLOAT) != (y->kind == T_FLOAT))
                        return x->kind == T_FLOAT ? 1 : -1;
                if (x->kind == T_FLOAT)
                        return nk_order_doubles(x->f, y->f);
                return cmp_ints(x, y);
        case NK_RANK_ATOM:
                return cmp_atoms(x, y);
        case NK_RANK_REF:
        case NK_RANK_PORT:
        case NK_RANK_PID:
                ix = order_ident(t, x);
                iy = order_ident(t, y);
                return rx == NK_RANK_REF ? nk_order_refs(&ix, &iy)
                       : rx == NK_RANK_PORT ? nk_order_ports(&ix, &iy) : nk_order_pids(&ix, &iy);
        case NK_RANK_FUN:
        case NK_RANK_EXPORT:
                fx = order_fun(t, x);
                fy = order_fun(t, y);
                c = nk_order_fun_heads(&fx, &fy);
                for (size_t i = 0; c == 0 && !fx.is_export && i < fx.num_free; i++)
                        c = cmp(t, x->len + i, y->len + i);
                return c;
        case NK_RANK_TUPLE:
                if (x->n != y->n)
                        return x->n < y->n ? -1 : 1;
                for (size_t i = 0; i < x->n; i++) {
                        c = cmp(t, x->first + i, y->first + i);
                        if (c != 0)
                                return c;
                }
                return 0;
        case NK_RANK_MAP:
                /* Keys first, then values, both in key order (maps are sorted). */
                if (x->n != y->n)
                        return x->n < y->n ? -1 : 1;
                for (size_t i = 0; i < x->n; i++) {
                        c = cmp(t, x->first + 2 * i, y->first + 2 * i);
                        if (c != 0)
                                return c;
                }
                for (size_t i = 0; i < x->n; i++) {
                        c = cmp(t, x->first + 2 * i + 1, y->first + 2 * i + 1);
                        if (c != 0)
                                return c;
                }
                return 0;
        case NK_RANK_NIL:
                return 0;
        case NK_RANK_LIST:
                return cmp_lists(t, x, y);
        case NK_RANK_BITSTRING:
                return nk_order_bits(x->p, bits_of(x), y->p, bits_of(y));
        }
        return 0;
}

static int cmp(const struct node *t, size_t a, size_t b)
{
        return cmp_nodes(t, &t[a], &t[b]);
}

static int pair_cmp(const void *a, const void *b, void *arg)
{
        const struct node *t = arg;

        return cmp_nodes(t, a, b);
}

/* Children always come after their parent, so going backwards sorts every
 * map's keys before a map that holds it is compared. */
static void sort_maps(struct decoder *dc)
{
        for (size_t i = dc->n; i > 0; i--) {
                struct node *m = &dc->t[i - 1];
                if (m->kind == T_MAP && m->n > 1)
                        qsort_r(dc->t + m->first, m->n, 2 * sizeof(struct node), pair_cmp, dc->t);
        }
}

/* ---- printing ------------------------------------------------------- */

static uint32_t atom_char(const struct node *a, size_t *i)
{
        uint32_t cp;

        if (a->flag)
                return a->p[(*i)++];
        *i += nk_utf8_decode(a->p + *i, a->n - *i, &cp);
        return cp;
}

/* Output with a sticky error, so the printer reads as a straight walk. */
struct out {
        struct nk_buf b;
        int err;
};

static void put(struct out *o, const void *s, size_t n)
{
        if (o->err == 0)
                o->err = nk_buf_put(&o->b, s, n);
}

static void puts_(struct out *o, const char *s)
{
        put(o, s, strlen(s));
}

static void put_utf8(struct out *o, uint32_t cp)
{
        char u[4];
        put(o, u, nk_utf8_encode(cp, u));
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
        char s[64];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(s, sizeof(s), fmt, ap);
        va_end(ap);
        if (n > 0)
                put(o, s, (size_t) n < sizeof(s) ? (size_t) n : sizeof(s) - 1);
}

/* io_lib's Latin-1 printable characters: what makes a list a "string". */
static bool printable(uint64_t c)
{
        return (c >= 0x20 && c <= 0x7E) || (c >= 0xA0 && c <= 0xFF) || c == '\n' || c == '\r' ||
               c == '\t' || c == '\v' || c == '\b' || c == '\f' || c == 0x1B;
}

/* One character inside quotes, escaped as io_lib does in Latin-1 mode. */
static void put_quoted_char(struct out *o, uint32_t c, char quote)
{
        static const char esc[][2] = {
                { '\n', 'n' }, { '\r', 'r' }, { '\t', 't' }, { '\v', 'v' },
                { '\b', 'b' }, { '\f', 'f' }, { 0x1B, 'e' }, { 0x7F, 'd' },
        };

        if (c == (uint32_t) quote || c == '\\') {
                char s[2] = { '\\', (char) c };
                put(o, s, 2);
                return;
        }
        if ((c >= 0x20 && c <= 0x7E) || (c >= 0xA0 && c <= 0xFF)) {
                put_utf8(o, c);
                return;
        }
        for (size_t i = 0; i < NK_ARRAY_SIZE(esc); i++)
                if (c == (uint32_t) esc[i][0]) {
                        char s[2] = { '\\', esc[i][1] };
                        put(o, s, 2);
                        return;
                }
        if (c < 0xA0)
                putf(o, "\\%c%c%c", '0' + (c >> 6), '0' + (c >> 3 & 7), '0' + (c & 7));
        else
                putf(o, "\\x{%X}", (unsigned) c);
}

static bool atom_needs_quotes(const struct node *a)
{
        size_t i = 0;
        bool first = true;

        if (a->n == 0)
                return true;
        while (i < a->n) {
                uint32_t c = atom_char(a, &i);
                if (first ? !nk_atom_is_lower(c) : !nk_atom_is_name_char(c))
                        return true;
                first = false;
        }
        return nk_atom_is_reserved((const char *) a->p, a->n);
}

static void print_atom(struct out *o, const struct node *a)
{
        size_t i = 0;

        if (!atom_needs_quotes(a)) {
                while (i < a->n)
                        put_utf8(o, atom_char(a, &i));
                return;
        }
        put(o, "'", 1);
        while (i < a->n)
                put_quoted_char(o, atom_char(a, &i), '\'');
        put(o, "'", 1);
}

static void print_big(struct out *o, const struct node *t)
{
        _cleanup_free_ uint32_t *limb = NULL;
        _cleanup_free_ char *digits = NULL;
        size_t n = (t->len + 3) / 4, nd = 0;

        if (t->len == 0) {
                put(o, "0", 1);
                return;
        }
        limb = calloc(n, sizeof(*limb));
        /* Nine digits per 30 bits at most: 10 digits per limb is ample. */
        digits = malloc(n * 10 + 1);
        if (!limb || !digits) {
                o->err = -ENOMEM;
                return;
        }
        for (size_t i = 0; i < t->len; i++)
                limb[i / 4] |= (uint32_t) t->p[i] << (8 * (i % 4));
        while (n > 0) {
                uint64_t rem = 0;
                for (size_t i = n; i > 0; i--) {
                        uint64_t v = rem << 32 | limb[i - 1];
                        limb[i - 1] = (uint32_t) (v / 1000000000u);
                        rem = v % 1000000000u;
                }
                while (n > 0 && limb[n - 1] == 0)
                        n--;
                for (int k = 0; k < 9 && (n > 0 || rem > 0); k++) {
                        digits[nd++] = (char) ('0' + rem % 10);
                        rem /= 10;
                }
        }
        if (t->flag)
                put(o, "-", 1);
        for (size_t i = nd; i > 0; i--)
                put(o, &digits[i - 1], 1);
}

/* The shortest decimal D × 10^E that reads back as v (v > 0): the correctly
 * rounded p-digit form for the least p that round-trips, or a neighbour of
 * it where the rounding interval is lopsided (at powers of two). This is
 * the digit string Ryu gives, which is what OTP prints. */
static void shortest_digits(double v, uint64_t *ret_d, int *ret_e)
{
        for (int p = 1; p <= 17; p++) {
                char s[40];
                uint64_t d = 0;
                int e;
                char *x;

                snprintf(s, sizeof(s), "%.*e", p - 1, v);
                for (x = s; *x != 'e'; x++)
                        if (*x >= '0' && *x <= '9')
                                d = d * 10 + (uint64_t) (*x - '0');
                e = atoi(x + 1) - (p - 1);
                for (int delta = 0; delta <= 2; delta++) {
                        uint64_t c = delta == 0 ? d : delta == 1 ? d - 1 : d + 1;
                        snprintf(s, sizeof(s), "%" PRIu64 "e%d", c, e);
                        if (c > 0 && strtod(s, NULL) == v) {
                                while (c % 10 == 0) {
                                        c /= 10;
                                        e++;
                                }
                                *ret_d = c;
                                *ret_e = e;
                                return;
                        }
                }
        }
        /* %.16e always round-trips, so this is not reached. */
        *ret_d = 0;
        *ret_e = 0;
}

/* OTP's choice between 123.45 and 1.2345e2: the shorter text, fixed on a
 * tie, and always scientific for integral values from 2^53 up. */
static void print_float(struct out *o, double v)
{
        char s[24], sci[48], fixed[400];
        uint64_t d;
        int place, len, exp;

        if (v == 0) {
                puts_(o, signbit(v) ? "-0.0" : "0.0");
                return;
        }
        if (v < 0)
                put(o, "-", 1);
        v = fabs(v);
        shortest_digits(v, &d, &place);
        len = snprintf(s, sizeof(s), "%" PRIu64, d);
        exp = place + len - 1;
        snprintf(sci, sizeof(sci), "%c.%se%d", s[0], len == 1 ? "0" : s + 1, exp);
        if (place >= 0) {
                if (v < 9007199254740992.0 && len + place + 2 <= (int) strlen(sci)) {
                        snprintf(fixed, sizeof(fixed), "%s%0*d.0", s, place, 0);
                        /* %0*d wrote one "0" even for place 0. */
                        if (place == 0)
                                snprintf(fixed, sizeof(fixed), "%s.0", s);
                        puts_(o, fixed);
                } else
                        puts_(o, sci);
        } else if (exp >= 0) {
                put(o, s, (size_t) (len + place));
                put(o, ".", 1);
                puts_(o, s + len + place);
        } else if (2 - place <= (int) strlen(sci)) {
                put(o, "0.", 2);
                for (int i = 0; i < -place - len; i++)
                        put(o, "0", 1);
                puts_(o, s);
        } else
                puts_(o, sci);
}

static void print_node(struct out *o, const struct node *t, const struct node *x);

static bool list_printable(const struct node *t, const struct node *l)
{
        struct list_iter it;
        const struct node *e;
        size_t tail;

        iter_init(&it, t, l);
        while ((e = iter_next(&it, &tail)))
                if (e->kind != T_INT || e->i < 0 || !printable((uint64_t) e->i))
                        return false;
        return tail == SIZE_MAX;
}

static void print_list(struct out *o, const struct node *t, const struct node *l)
{
        struct list_iter it;
        const struct node *e;
        size_t tail;
        bool first = true;

        iter_init(&it, t, l);
        if (list_printable(t, l)) {
                put(o, "\"", 1);
                while ((e = iter_next(&it, &tail)))
                        put_quoted_char(o, (uint32_t) e->i, '"');
                put(o, "\"", 1);
                return;
        }
        put(o, "[", 1);
        while ((e = iter_next(&it, &tail))) {
                if (!first)
                        put(o, ",", 1);
                first = false;
                print_node(o, t, e);
        }
        if (tail != SIZE_MAX) {
                put(o, "|", 1);
                print_node(o, t, &t[tail]);
        }
        put(o, "]", 1);
}

static void print_binary(struct out *o, const struct node *b)
{
        bool text = b->flag == 8 && b->len > 0;
        size_t whole = b->flag == 8 ? b->len : b->len - 1;

        for (size_t i = 0; text && i < b->len; i++)
                text = printable(b->p[i]);
        put(o, "<<", 2);
        if (text) {
                put(o, "\"", 1);
                for (size_t i = 0; i < b->len; i++)
                        put_quoted_char(o, b->p[i], '"');
                put(o, "\"", 1);
        } else {
                for (size_t i = 0; i < whole; i++)
                        putf(o, i ? ",%u" : "%u", b->p[i]);
                if (whole < b->len)
                        putf(o, "%s%u:%u", whole ? "," : "", (unsigned) (b->p[whole] >> (8 - b->flag)),
                             (unsigned) b->flag);
        }
        put(o, ">>", 2);
}

static void print_node(struct out *o, const struct node *t, const struct node *x)
{
        switch (x->kind) {
        case T_INT:
                putf(o, "%" PRId64, x->i);
                return;
        case T_BIG:
                print_big(o, x);
                return;
        case T_FLOAT:
                print_float(o, x->f);
                return;
        case T_ATOM:
                print_atom(o, x);
                return;
        case T_REF:
                /* Only local terms print as 0.: the shell numbers other
                 * nodes by their place in its own table. */
                puts_(o, "#Ref<0");
                for (size_t i = x->n; i > 0; i--)
                        putf(o, ".%" PRIu32, nk_get_be32(x->p + 4 * (i - 1)));
                put(o, ">", 1);
                return;
        case T_FUN:
                puts_(o, "#Fun<");
                print_atom(o, &t[x->first]);
                putf(o, ".%" PRIu64 ".%" PRIu64 ">", x->a, x->b);
                return;
        case T_EXPORT:
                puts_(o, "fun ");
                print_atom(o, &t[x->first]);
                put(o, ":", 1);
                print_atom(o, &t[x->first + 1]);
                putf(o, "/%" PRIu64, x->a);
                return;
        case T_PORT:
                putf(o, "#Port<0.%" PRIu64 ">", x->a);
                return;
        case T_PID:
                putf(o, "<0.%" PRIu64 ".%" PRIu64 ">", x->a, x->b);
                return;
        case T_TUPLE:
                put(o, "{", 1);
                for (size_t i = 0; i < x->n; i++) {
                        if (i)
                                put(o, ",", 1);
                        print_node(o, t, &t[x->first + i]);
                }
                put(o, "}", 1);
                return;
        case T_MAP:
                put(o, "#{", 2);
                for (size_t i = 0; i < x->n; i++) {
                        if (i)
                                put(o, ",", 1);
                        print_node(o, t, &t[x->first + 2 * i]);
                        put(o, " => ", 4);
                        print_node(o, t, &t[x->first + 2 * i + 1]);
                }
                put(o, "}", 1);
                return;
        case T_NIL:
                put(o, "[]", 2);
                return;
        case T_LIST:
        case T_STRING:
                print_list(o, t, x);
                return;
        case T_BIN:
                print_binary(o, x);
                return;
        }
}

static void decoder_done(struct decoder *dc)
{
        free(dc->t);
}

static int decode_all(struct decoder *dc, const uint8_t *etf, size_t len)
{
        size_t root;
        int r;

        *dc = (struct decoder) { .d = etf, .len = len };
        if (len < 1 || etf[0] != VERSION)
                return -EBADMSG;
        dc->pos = 1;
        r = reserve(dc, 1, &root);
        if (r < 0)
                return r;
        r = decode(dc, root);
        if (r < 0)
                return r;
        if (dc->pos != dc->len)
                return -EBADMSG;
        sort_maps(dc);
        return 0;
}

static int finish(struct out *o, char **ret_text)
{
        put(o, "", 1);
        if (o->err < 0) {
                nk_buf_free(&o->b);
                return o->err;
        }
        *ret_text = (char *) o->b.data;
        return 0;
}

int nk_print_etf(const uint8_t *etf, size_t len, char **ret_text)
{
        _cleanup_(decoder_done) struct decoder dc = { 0 };
        struct out o = { 0 };
        int r;

        r = decode_all(&dc, etf, len);
        if (r < 0)
                return r;
        print_node(&o, dc.t, &dc.t[0]);
        return finish(&o, ret_text);
}

static bool atom_is(const struct node *a, const char *s)
{
        return a->kind == T_ATOM && strlen(s) == a->n && memcmp(a->p, s, a->n) == 0;
}

/* What erl_error says for the error reasons a NIF can raise that have words. */
int nk_print_exception(const uint8_t *etf, size_t len, char **ret_text)
{
        static const struct { const char *atom, *text; } atoms[] = {
                { "badarg", "bad argument" },
                { "badarith", "an error occurred when evaluating an arithmetic expression" },
                { "if_clause", "no true branch found when evaluating an if expression" },
                { "system_limit", "a system limit has been reached" },
                { "timeout_value", "bad receive timeout value" },
                { "noproc", "no such process or port" },
        };
        static const struct { const char *tag, *text; } tagged[] = {
                { "badmatch", "no match of right hand side value " },
                { "case_clause", "no case clause matching " },
                { "try_clause", "no try clause matching " },
                { "badfun", "bad function " },
                { "badkey", "bad key: " },
                { "badmap", "bad map: " },
                { "badarg", "bad argument: " },
        };
        _cleanup_(decoder_done) struct decoder dc = { 0 };
        struct out o = { 0 };
        const struct node *t, *x;
        int r;

        r = decode_all(&dc, etf, len);
        if (r < 0)
                return r;
        t = dc.t;
        x = &t[0];
        puts_(&o, "exception error: ");
        for (size_t i = 0; i < NK_ARRAY_SIZE(atoms); i++)
                if (atom_is(x, atoms[i].atom)) {
                        puts_(&o, atoms[i].text);
                        return finish(&o, ret_text);
                }
        if (x->kind == T_TUPLE && x->n == 2)
                for (size_t i = 0; i < NK_ARRAY_SIZE(tagged); i++)
                        if (atom_is(&t[x->first], tagged[i].tag)) {
                                puts_(&o, tagged[i].text);
                                print_node(&o, t, &t[x->first + 1]);
                                return finish(&o, ret_text);
                        }
        print_node(&o, t, x);
        return finish(&o, ret_text);
}
