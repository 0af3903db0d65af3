/* SPDX-License-Identifier: Apache-2.0 */
/*
 * External Term Format codec for host terms (see etf.h).
 *
 * Both directions walk terms with an explicit stack of container frames
 * kept on the heap, so nesting depth costs memory, never C stack: a hostile
 * runtime message or a deeply nested NIF result cannot overflow the stack of
 * a worker thread.
 *
 * Every length read from the input is checked against the bytes that remain
 * before anything is allocated: each element of a tuple, list or map takes
 * at least one byte, so a 4-byte count can never claim more memory than the
 * message itself could fill.
 */
#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etf.h"
#include "macro.h"
#include "utf8.h"

enum {
        NEW_FLOAT_EXT = 70,
        BIT_BINARY_EXT = 77,
        COMPRESSED_EXT = 80,
        ATOM_CACHE_REF = 82,
        NEW_PID_EXT = 88,
        NEW_PORT_EXT = 89,
        NEWER_REFERENCE_EXT = 90,
        SMALL_INTEGER_EXT = 97,
        INTEGER_EXT = 98,
        FLOAT_EXT = 99,
        ATOM_EXT = 100,
        REFERENCE_EXT = 101,
        PORT_EXT = 102,
        PID_EXT = 103,
        SMALL_TUPLE_EXT = 104,
        LARGE_TUPLE_EXT = 105,
        NIL_EXT = 106,
        STRING_EXT = 107,
        LIST_EXT = 108,
        BINARY_EXT = 109,
        SMALL_BIG_EXT = 110,
        LARGE_BIG_EXT = 111,
        NEW_FUN_EXT = 112,
        EXPORT_EXT = 113,
        NEW_REFERENCE_EXT = 114,
        SMALL_ATOM_EXT = 115,
        MAP_EXT = 116,
        FUN_EXT = 117,
        ATOM_UTF8_EXT = 118,
        SMALL_ATOM_UTF8_EXT = 119,
        V4_PORT_EXT = 120,
};

/* BEAM switches from NEW_PORT_EXT to V4_PORT_EXT above 28-bit port numbers. */
#define MAX_V3_PORT_NUMBER UINT64_C(0x0fffffff)
/* Maps up to this size are flatmaps in BEAM: always sent in key order. */
#define FLATMAP_MAX 32
/* Frames kept in the caller's stack frame before the stack moves to the heap. */
#define INLINE_FRAMES 32

/* ---- decoding ------------------------------------------------------------ */

enum frame_kind {
        FR_TUPLE,
        FR_LIST,
        FR_MAP,
        FR_FUN,
};

/*
 * A container being filled. Slots always point into env arena memory (the
 * box itself, or scratch), never into the frame stack, which may move.
 * Tuples and lists are complete boxes as soon as they are pushed, so their
 * frame is dropped before their last slot is decoded: a chain of tails or
 * last elements does not grow the stack.
 */
struct frame {
        enum frame_kind kind;
        size_t i;               /* slots handed out */
        size_t n;               /* slots in total */
        ERL_NIF_TERM *dst;      /* map/fun: where the finished term goes */
        union {
                struct nk_tuple *tuple;
                struct nk_cons *cells;  /* n - 1 cells, then the tail slot */
                struct nk_map *map;     /* filled in arrival order, sorted when done */
                struct {
                        ERL_NIF_TERM *scratch;  /* module, old index, old uniq, pid, free var */
                        size_t start;           /* offset of the tag byte */
                        size_t end;             /* offset just past the fun */
                } fun;
        };
};

struct dec {
        ErlNifEnv *env;
        const uint8_t *buf;
        size_t len;
        size_t pos;
        unsigned flags;
        struct nk_etf_error *err;

        struct frame *stack;
        size_t depth;
        size_t cap;
        struct frame inline_stack[INLINE_FRAMES];
};

static int fail_at(struct dec *d, size_t off, int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int fail_at(struct dec *d, size_t off, int code, const char *fmt, ...)
{
        va_list ap;

        if (!d->err)
                return code;
        d->err->offset = off;
        va_start(ap, fmt);
        vsnprintf(d->err->msg, sizeof(d->err->msg), fmt, ap);
        va_end(ap);
        return code;
}

static int fail_nomem(struct dec *d)
{
        return fail_at(d, d->pos, -ENOMEM, "out of memory");
}

/* n more bytes must be there at d->pos. */
static int need(struct dec *d, size_t n, const char *what)
{
        if (d->len - d->pos < n)
                return fail_at(d, d->pos, -EINVAL, "truncated %s: need %zu bytes, %zu left",
                               what, n, d->len - d->pos);
        return 0;
}

static size_t remaining(const struct dec *d)
{
        return d->len - d->pos;
}

static uint8_t get8(struct dec *d)
{
        return d->buf[d->pos++];
}

static uint16_t get16(struct dec *d)
{
        uint16_t v = nk_get_be16(d->buf + d->pos);
        d->pos += 2;
        return v;
}

static uint32_t get32(struct dec *d)
{
        uint32_t v = nk_get_be32(d->buf + d->pos);
        d->pos += 4;
        return v;
}

static uint64_t get64(struct dec *d)
{
        uint64_t v = nk_get_be64(d->buf + d->pos);
        d->pos += 8;
        return v;
}

static void *arena(struct dec *d, size_t size)
{
        return nk_env_alloc(d->env, size);
}

/* Reads the atom whose tag is at d->pos. */
static int decode_atom(struct dec *d, ERL_NIF_TERM *ret)
{
        size_t start = d->pos, n;
        uint8_t tag;
        bool latin1;
        ERL_NIF_TERM a;
        int r;

        r = need(d, 1, "atom tag");
        if (r < 0)
                return r;
        tag = get8(d);
        switch (tag) {
        case ATOM_EXT:
        case ATOM_UTF8_EXT:
                r = need(d, 2, "atom length");
                if (r < 0)
                        return r;
                n = get16(d);
                break;
        case SMALL_ATOM_EXT:
        case SMALL_ATOM_UTF8_EXT:
                r = need(d, 1, "atom length");
                if (r < 0)
                        return r;
                n = get8(d);
                break;
        case ATOM_CACHE_REF:
                return fail_at(d, start, -EINVAL,
                               "ATOM_CACHE_REF outside a distribution header is not supported");
        default:
                return fail_at(d, start, -EINVAL, "expected an atom, found tag %u", tag);
        }
        r = need(d, n, "atom text");
        if (r < 0)
                return r;

        const uint8_t *text = d->buf + d->pos;
        latin1 = tag == ATOM_EXT || tag == SMALL_ATOM_EXT;
        if (latin1) {
                if (n > NK_ATOM_MAX_CHARS)
                        return fail_at(d, start, -EINVAL, "atom of %zu characters (at most %d)",
                                       n, NK_ATOM_MAX_CHARS);
        } else {
                ssize_t chars = nk_utf8_chars(text, n, NULL);
                if (chars < 0)
                        return fail_at(d, start, -EINVAL, "atom text is not valid UTF-8");
                if (chars > NK_ATOM_MAX_CHARS)
                        return fail_at(d, start, -EINVAL, "atom of %zd characters (at most %d)",
                                       chars, NK_ATOM_MAX_CHARS);
        }
        d->pos += n;

        if (d->flags & NK_ETF_SAFE) {
                char utf8[NK_ATOM_MAX_CHARS * 2];
                const char *s = (const char *) text;
                size_t slen = n;

                if (latin1) {
                        slen = 0;
                        for (size_t i = 0; i < n; i++) {
                                if (text[i] < 0x80)
                                        utf8[slen++] = (char) text[i];
                                else {
                                        utf8[slen++] = (char) (0xc0 | text[i] >> 6);
                                        utf8[slen++] = (char) (0x80 | (text[i] & 0x3f));
                                }
                        }
                        s = utf8;
                }
                a = nk_atom_find_utf8(s, slen);
                if (a == NK_NONE)
                        return fail_at(d, start, -EINVAL,
                                       "atom '%.*s' does not exist (safe decoding)",
                                       (int) (slen > 40 ? 40 : slen), s);
        } else {
                a = latin1 ? nk_atom_latin1((const char *) text, n)
                           : nk_atom_utf8((const char *) text, n);
                if (a == NK_NONE)
                        return fail_nomem(d);
        }
        *ret = a;
        return 0;
}

static int decode_pid(struct dec *d, uint8_t tag, ERL_NIF_TERM *ret)
{
        struct nk_pid_data p;
        ERL_NIF_TERM node;
        int r;

        r = decode_atom(d, &node);
        if (r < 0)
                return r;
        r = need(d, tag == NEW_PID_EXT ? 12 : 9, "pid");
        if (r < 0)
                return r;
        p.node = nk_atom_index(node);
        p.id = get32(d);
        p.serial = get32(d);
        p.creation = tag == NEW_PID_EXT ? get32(d) : get8(d);
        /* Every pid is interned, whatever its node: a NIF may keep it as an
         * ErlNifPid and turn it back into a term at any time. */
        *ret = nk_pid_intern(&p);
        return *ret == NK_NONE ? fail_nomem(d) : 0;
}

static int decode_port(struct dec *d, uint8_t tag, ERL_NIF_TERM *ret)
{
        struct nk_port_data p;
        ERL_NIF_TERM node;
        int r;

        r = decode_atom(d, &node);
        if (r < 0)
                return r;
        r = need(d, tag == V4_PORT_EXT ? 12 : tag == NEW_PORT_EXT ? 8 : 5, "port");
        if (r < 0)
                return r;
        p.node = nk_atom_index(node);
        p.id = tag == V4_PORT_EXT ? get64(d) : get32(d);
        p.creation = tag == PORT_EXT ? get8(d) : get32(d);
        *ret = nk_port_intern(&p);
        return *ret == NK_NONE ? fail_nomem(d) : 0;
}

static int resource_of_ref(struct dec *d, size_t start, const struct nk_ref *ref, ERL_NIF_TERM *ret)
{
        uint64_t handle = ref->ids[0] | (uint64_t) ref->ids[1] << 32;
        struct nk_resource *res;

        if (ref->ids[2] != 0 || handle == 0)
                return fail_at(d, start, -EINVAL, "malformed resource reference");
        res = nk_resource_by_handle(handle);
        if (!res)
                return fail_at(d, start, -EINVAL, "unknown resource handle %" PRIu64, handle);
        *ret = nk_make_resource_term(d->env, res);
        /* The term holds its own reference through the env. */
        nk_resource_release(res);
        return *ret == NK_NONE ? fail_nomem(d) : 0;
}

static int decode_ref(struct dec *d, uint8_t tag, ERL_NIF_TERM *ret)
{
        size_t start = d->pos - 1, n = 1;
        struct nk_ref *ref;
        ERL_NIF_TERM node;
        uint32_t creation;
        int r;

        if (tag != REFERENCE_EXT) {
                r = need(d, 2, "reference length");
                if (r < 0)
                        return r;
                n = get16(d);
                /* BEAM also takes a reference of no id words; the host's
                 * model has 1..5 and BEAM itself never makes one. */
                if (n < 1 || n > NK_ARRAY_SIZE(ref->ids))
                        return fail_at(d, start, -EINVAL, "reference with %zu id words (1..5)", n);
        }
        r = decode_atom(d, &node);
        if (r < 0)
                return r;
        r = need(d, (tag == NEWER_REFERENCE_EXT ? 4 : 1) + 4 * n, "reference");
        if (r < 0)
                return r;
        if (tag == REFERENCE_EXT) {
                uint32_t id = get32(d);
                creation = get8(d);
                ref = arena(d, sizeof(*ref));
                if (!ref)
                        return fail_nomem(d);
                memset(ref, 0, sizeof(*ref));
                ref->ids[0] = id;
        } else {
                creation = tag == NEWER_REFERENCE_EXT ? get32(d) : get8(d);
                ref = arena(d, sizeof(*ref));
                if (!ref)
                        return fail_nomem(d);
                memset(ref, 0, sizeof(*ref));
                for (size_t i = 0; i < n; i++)
                        ref->ids[i] = get32(d);
        }
        ref->h.kind = NK_REF;
        ref->h.n = (uint32_t) n;
        ref->node = node;
        ref->creation = creation;
        if (node == nk_am_resource_node && n == 3)
                return resource_of_ref(d, start, ref, ret);
        *ret = nk_box_term(ref);
        return 0;
}

static int decode_export(struct dec *d, ERL_NIF_TERM *ret)
{
        size_t start = d->pos - 1;
        ERL_NIF_TERM mod, fun;
        struct nk_fun *f;
        int r;

        r = decode_atom(d, &mod);
        if (r < 0)
                return r;
        r = decode_atom(d, &fun);
        if (r < 0)
                return r;
        r = need(d, 2, "export arity");
        if (r < 0)
                return r;
        if (get8(d) != SMALL_INTEGER_EXT)
                return fail_at(d, d->pos - 1, -EINVAL, "export arity is not a SMALL_INTEGER_EXT");
        d->pos++;
        f = arena(d, sizeof(*f) + (d->pos - start));
        if (!f)
                return fail_nomem(d);
        f->h.kind = NK_FUN;
        f->h.n = (uint32_t) (d->pos - start);
        memcpy(f->etf, d->buf + start, d->pos - start);
        *ret = nk_box_term(f);
        return 0;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void)
{
        c_locale = newlocale(LC_ALL_MASK, "C", (locale_t) 0);
}

/* FLOAT_EXT: "%.20e" text padded with NULs to 31 bytes. A NIF may have
 * changed the locale, so the text is read in the C locale. */
static int decode_old_float(struct dec *d, double *ret)
{
        size_t start = d->pos - 1;
        char text[32];
        char *end;
        int r;

        r = need(d, 31, "FLOAT_EXT");
        if (r < 0)
                return r;
        memcpy(text, d->buf + d->pos, 31);
        text[31] = '\0';
        d->pos += 31;
        pthread_once(&c_locale_once, c_locale_init);
        if (c_locale == (locale_t) 0)
                return fail_nomem(d);
        *ret = strtod_l(text, &end, c_locale);
        if (end == text || text[0] == ' ' || (*end != '\0' && *end != ' '))
                return fail_at(d, start, -EINVAL, "FLOAT_EXT text is not a number");
        return 0;
}

/* Makes room for one more frame in a stack that starts in the caller's
 * inline array and moves to the heap when it fills: the decoder's and the
 * encoder's stacks grow the same way. 0 or -ENOMEM; *stack and *cap change
 * only on success. */
static int grow_frames(void **stack, const void *inline_stack, size_t depth, size_t *cap, size_t elem)
{
        size_t ncap = *cap * 4;
        void *s;

        if (*stack == inline_stack) {
                s = malloc(ncap * elem);
                if (s)
                        memcpy(s, *stack, depth * elem);
        } else
                s = realloc(*stack, ncap * elem);
        if (!s)
                return -ENOMEM;
        *stack = s;
        *cap = ncap;
        return 0;
}

static int push(struct dec *d, const struct frame *f)
{
        if (d->depth == d->cap &&
            grow_frames((void **) &d->stack, d->inline_stack, d->depth, &d->cap, sizeof(*d->stack)) < 0)
                return fail_nomem(d);
        d->stack[d->depth++] = *f;
        return 0;
}

static int decode_list(struct dec *d, size_t n, ERL_NIF_TERM *slot)
{
        struct nk_cons *cells;

        cells = arena(d, n * sizeof(*cells));
        if (!cells)
                return fail_nomem(d);
        for (size_t i = 0; i < n; i++) {
                cells[i].h.kind = NK_CONS;
                cells[i].h.n = 0;
                cells[i].head = NK_NONE;
                cells[i].tail = i + 1 < n ? nk_box_term(&cells[i + 1]) : NK_NONE;
        }
        *slot = nk_box_term(cells);
        return push(d, &(struct frame) { .kind = FR_LIST, .n = n + 1, .cells = cells });
}

static int decode_string(struct dec *d, ERL_NIF_TERM *slot)
{
        struct nk_cons *cells;
        size_t n;
        int r;

        r = need(d, 2, "STRING_EXT length");
        if (r < 0)
                return r;
        n = get16(d);
        r = need(d, n, "STRING_EXT");
        if (r < 0)
                return r;
        if (n == 0) {
                *slot = NK_NIL;
                return 0;
        }
        cells = arena(d, n * sizeof(*cells));
        if (!cells)
                return fail_nomem(d);
        for (size_t i = 0; i < n; i++) {
                cells[i].h.kind = NK_CONS;
                cells[i].h.n = 0;
                cells[i].head = nk_make_small(get8(d));
                cells[i].tail = i + 1 < n ? nk_box_term(&cells[i + 1]) : NK_NIL;
        }
        *slot = nk_box_term(cells);
        return 0;
}

static int decode_tuple(struct dec *d, size_t arity, ERL_NIF_TERM *slot)
{
        struct nk_tuple *t;

        if (arity > remaining(d))
                return fail_at(d, d->pos, -EINVAL, "tuple of %zu elements in %zu bytes",
                               arity, remaining(d));
        t = arena(d, sizeof(*t) + arity * sizeof(ERL_NIF_TERM));
        if (!t)
                return fail_nomem(d);
        t->h.kind = NK_TUPLE;
        t->h.n = (uint32_t) arity;
        *slot = nk_box_term(t);
        if (arity == 0)
                return 0;
        for (size_t i = 0; i < arity; i++)
                t->elems[i] = NK_NONE;
        return push(d, &(struct frame) { .kind = FR_TUPLE, .n = arity, .tuple = t });
}

static int decode_binary(struct dec *d, uint8_t tag, ERL_NIF_TERM *slot)
{
        size_t start = d->pos - 1, n;
        uint8_t bits = 0;
        int r;

        r = need(d, tag == BIT_BINARY_EXT ? 5 : 4, "binary header");
        if (r < 0)
                return r;
        n = get32(d);
        if (tag == BIT_BINARY_EXT) {
                bits = get8(d);
                /* BEAM: 1..8 bits in the last byte, and no bits without bytes. */
                if (n == 0 ? bits != 0 : bits < 1 || bits > 8)
                        return fail_at(d, start, -EINVAL, "bitstring with %u bits in its last byte",
                                       bits);
                if (bits == 8)
                        bits = 0;
        }
        r = need(d, n, "binary data");
        if (r < 0)
                return r;
        *slot = nk_make_binary_copy(d->env, d->buf + d->pos, n);
        if (*slot == NK_NONE)
                return fail_nomem(d);
        d->pos += n;
        if (bits) {
                struct nk_binary *b = (struct nk_binary *) nk_box_of(*slot);
                /* Unused low bits are zero, as in BEAM, so that comparison
                 * and re-encoding see one representation. */
                ((uint8_t *) b->data)[n - 1] &= (uint8_t) (0xff << (8 - bits));
                b->bits = bits;
        }
        return 0;
}

static int decode_big(struct dec *d, uint8_t tag, ERL_NIF_TERM *slot)
{
        size_t n;
        bool neg;
        int r;

        r = need(d, tag == SMALL_BIG_EXT ? 2 : 5, "bignum header");
        if (r < 0)
                return r;
        n = tag == SMALL_BIG_EXT ? get8(d) : get32(d);
        neg = get8(d) != 0;
        r = need(d, n, "bignum digits");
        if (r < 0)
                return r;
        *slot = nk_make_big(d->env, neg, d->buf + d->pos, n);
        if (*slot == NK_NONE)
                return fail_nomem(d);
        d->pos += n;
        return 0;
}

/*
 * A map is one arena allocation: header, keys, values and, above the flatmap
 * size, the arrival order. Pairs are decoded straight into place and sorted
 * when the last one is in (finish_map).
 */
static int decode_map(struct dec *d, ERL_NIF_TERM *slot)
{
        struct nk_map *m;
        size_t n, size;
        int r;

        r = need(d, 4, "MAP_EXT arity");
        if (r < 0)
                return r;
        n = get32(d);
        if (n > remaining(d) / 2)
                return fail_at(d, d->pos, -EINVAL, "map of %zu pairs in %zu bytes", n, remaining(d));
        size = sizeof(*m) + 2 * n * sizeof(ERL_NIF_TERM) + (n > FLATMAP_MAX ? n * sizeof(uint32_t) : 0);
        m = arena(d, size);
        if (!m)
                return fail_nomem(d);
        m->h.kind = NK_MAP;
        m->h.n = (uint32_t) n;
        m->keys = (ERL_NIF_TERM *) (m + 1);
        m->vals = m->keys + n;
        m->iter_order = n > FLATMAP_MAX ? (uint32_t *) (m->vals + n) : NULL;
        for (size_t i = 0; i < n; i++)
                m->keys[i] = m->vals[i] = NK_NONE;
        *slot = nk_box_term(m);
        if (n == 0)
                return 0;
        return push(d, &(struct frame) { .kind = FR_MAP, .n = 2 * n, .map = m });
}

static int decode_fun(struct dec *d, ERL_NIF_TERM *slot)
{
        size_t start = d->pos - 1, size;
        ERL_NIF_TERM *scratch;
        uint32_t nfree;
        int r;

        /* Size, Arity, Uniq[16], Index, NumFree */
        r = need(d, 4 + 1 + 16 + 4 + 4, "NEW_FUN_EXT header");
        if (r < 0)
                return r;
        size = get32(d);
        if (size > d->len - start - 1 || size < 29)
                return fail_at(d, start, -EINVAL, "NEW_FUN_EXT of %zu bytes in %zu", size,
                               d->len - start - 1);
        d->pos += 1 + 16 + 4;
        nfree = get32(d);
        if (nfree > remaining(d))
                return fail_at(d, start, -EINVAL, "fun with %u free variables in %zu bytes", nfree,
                               remaining(d));
        scratch = arena(d, 5 * sizeof(*scratch));
        if (!scratch)
                return fail_nomem(d);
        return push(d, &(struct frame) { .kind = FR_FUN, .n = 4 + (size_t) nfree, .dst = slot,
                                         .fun = { scratch, start, start + 1 + size } });
}

static int finish_fun(struct dec *d, const struct frame *f)
{
        const ERL_NIF_TERM *s = f->fun.scratch;
        struct nk_fun *fun;
        size_t n = f->fun.end - f->fun.start;

        if (!nk_is_atom(s[0]) || !nk_is_small(s[1]) || !nk_is_integer(s[2]) || !nk_is_pid(s[3]))
                return fail_at(d, f->fun.start, -EINVAL, "malformed NEW_FUN_EXT fields");
        if (d->pos != f->fun.end)
                return fail_at(d, f->fun.start, -EINVAL,
                               "NEW_FUN_EXT size says %zu bytes, contents take %zu", n - 1,
                               d->pos - f->fun.start - 1);
        fun = arena(d, sizeof(*fun) + n);
        if (!fun)
                return fail_nomem(d);
        fun->h.kind = NK_FUN;
        fun->h.n = (uint32_t) n;
        memcpy(fun->etf, d->buf + f->fun.start, n);
        *f->dst = nk_box_term(fun);
        return 0;
}

static int cmp_key_at(const void *a, const void *b, void *keys)
{
        const ERL_NIF_TERM *k = keys;
        return nk_map_key_cmp(k[*(const uint32_t *) a], k[*(const uint32_t *) b]);
}

/* Flatmaps: insertion sort in place, no allocation. */
static int sort_small_map(struct dec *d, struct nk_map *m)
{
        for (size_t i = 1; i < m->h.n; i++) {
                ERL_NIF_TERM k = m->keys[i], v = m->vals[i];
                size_t j = i;
                for (; j > 0; j--) {
                        int c = nk_map_key_cmp(m->keys[j - 1], k);
                        if (c == 0)
                                return fail_at(d, d->pos, -EINVAL, "map has a duplicate key");
                        if (c < 0)
                                break;
                        m->keys[j] = m->keys[j - 1];
                        m->vals[j] = m->vals[j - 1];
                }
                m->keys[j] = k;
                m->vals[j] = v;
        }
        return 0;
}

/*
 * Larger maps arrive in BEAM's hash order, which a NIF iterating the map
 * would see there: iter_order[j] becomes the sorted position of the j-th
 * pair that arrived.
 */
static int sort_large_map(struct dec *d, struct nk_map *m)
{
        size_t n = m->h.n;
        _cleanup_free_ uint32_t *idx = malloc(n * sizeof(*idx));
        _cleanup_free_ ERL_NIF_TERM *keys = malloc(2 * n * sizeof(*keys));
        ERL_NIF_TERM *vals;

        if (!idx || !keys)
                return fail_nomem(d);
        vals = keys + n;
        for (size_t i = 0; i < n; i++)
                idx[i] = (uint32_t) i;
        qsort_r(idx, n, sizeof(*idx), cmp_key_at, m->keys);
        for (size_t i = 1; i < n; i++)
                if (nk_map_key_cmp(m->keys[idx[i - 1]], m->keys[idx[i]]) == 0)
                        return fail_at(d, d->pos, -EINVAL, "map has a duplicate key");
        memcpy(keys, m->keys, n * sizeof(*keys));
        memcpy(vals, m->vals, n * sizeof(*vals));
        for (size_t s = 0; s < n; s++) {
                m->keys[s] = keys[idx[s]];
                m->vals[s] = vals[idx[s]];
                m->iter_order[idx[s]] = (uint32_t) s;
        }
        return 0;
}

static int finish_map(struct dec *d, const struct frame *f)
{
        return f->map->h.n > FLATMAP_MAX ? sort_large_map(d, f->map) : sort_small_map(d, f->map);
}

static int decode_term(struct dec *d, ERL_NIF_TERM *slot)
{
        size_t start;
        uint8_t tag;
        int r;

again:
        start = d->pos;
        r = need(d, 1, "term");
        if (r < 0)
                return r;
        tag = get8(d);
        switch (tag) {
        case SMALL_INTEGER_EXT:
                r = need(d, 1, "SMALL_INTEGER_EXT");
                if (r < 0)
                        return r;
                *slot = nk_make_small(get8(d));
                return 0;
        case INTEGER_EXT:
                r = need(d, 4, "INTEGER_EXT");
                if (r < 0)
                        return r;
                *slot = nk_make_small((int32_t) get32(d));
                return 0;
        case NEW_FLOAT_EXT:
        case FLOAT_EXT: {
                union { uint64_t u; double f; } v = { 0 };
                if (tag == FLOAT_EXT) {
                        r = decode_old_float(d, &v.f);
                        if (r < 0)
                                return r;
                } else {
                        r = need(d, 8, "NEW_FLOAT_EXT");
                        if (r < 0)
                                return r;
                        v.u = get64(d);
                }
                if (!isfinite(v.f))
                        return fail_at(d, start, -EINVAL, "float is not finite");
                *slot = nk_make_float(d->env, v.f);
                return *slot == NK_NONE ? fail_nomem(d) : 0;
        }
        case ATOM_EXT:
        case SMALL_ATOM_EXT:
        case ATOM_UTF8_EXT:
        case SMALL_ATOM_UTF8_EXT:
        case ATOM_CACHE_REF:
                d->pos = start;
                return decode_atom(d, slot);
        case SMALL_TUPLE_EXT:
                r = need(d, 1, "SMALL_TUPLE_EXT arity");
                if (r < 0)
                        return r;
                return decode_tuple(d, get8(d), slot);
        case LARGE_TUPLE_EXT:
                r = need(d, 4, "LARGE_TUPLE_EXT arity");
                if (r < 0)
                        return r;
                return decode_tuple(d, get32(d), slot);
        case NIL_EXT:
                *slot = NK_NIL;
                return 0;
        case STRING_EXT:
                return decode_string(d, slot);
        case LIST_EXT: {
                size_t n;
                r = need(d, 4, "LIST_EXT length");
                if (r < 0)
                        return r;
                n = get32(d);
                /* n elements and a tail, each at least one byte */
                if (n >= remaining(d))
                        return fail_at(d, start, -EINVAL, "list of %zu elements in %zu bytes", n,
                                       remaining(d));
                if (n == 0)
                        goto again;     /* the term is just the tail */
                return decode_list(d, n, slot);
        }
        case BINARY_EXT:
        case BIT_BINARY_EXT:
                return decode_binary(d, tag, slot);
        case SMALL_BIG_EXT:
        case LARGE_BIG_EXT:
                return decode_big(d, tag, slot);
        case MAP_EXT:
                return decode_map(d, slot);
        case PID_EXT:
        case NEW_PID_EXT:
                return decode_pid(d, tag, slot);
        case PORT_EXT:
        case NEW_PORT_EXT:
        case V4_PORT_EXT:
                return decode_port(d, tag, slot);
        case REFERENCE_EXT:
        case NEW_REFERENCE_EXT:
        case NEWER_REFERENCE_EXT:
                return decode_ref(d, tag, slot);
        case EXPORT_EXT:
                return decode_export(d, slot);
        case NEW_FUN_EXT:
                return decode_fun(d, slot);
        case FUN_EXT:
                return fail_at(d, start, -EINVAL, "FUN_EXT (before OTP 23) is not supported");
        case COMPRESSED_EXT:
                return fail_at(d, start, -EINVAL,
                               "compressed terms are not supported (and only valid at the top)");
        default:
                return fail_at(d, start, -EINVAL, "unknown tag %u", tag);
        }
}

static ERL_NIF_TERM *frame_slot(struct frame *f, size_t i)
{
        switch (f->kind) {
        case FR_TUPLE:
                return &f->tuple->elems[i];
        case FR_LIST:
                return i + 1 < f->n ? &f->cells[i].head : &f->cells[f->n - 2].tail;
        case FR_MAP:
                return i % 2 ? &f->map->vals[i / 2] : &f->map->keys[i / 2];
        case FR_FUN:
        default:
                return &f->fun.scratch[i < 4 ? i : 4];
        }
}

static int decode_all(struct dec *d, ERL_NIF_TERM *root)
{
        ERL_NIF_TERM *slot = root;
        int r;

        for (;;) {
                r = decode_term(d, slot);
                if (r < 0)
                        return r;
                for (;;) {
                        struct frame *f;

                        if (d->depth == 0)
                                return 0;
                        f = &d->stack[d->depth - 1];
                        if (f->i < f->n) {
                                slot = frame_slot(f, f->i++);
                                if (f->i == f->n && (f->kind == FR_TUPLE || f->kind == FR_LIST))
                                        d->depth--;
                                break;
                        }
                        r = f->kind == FR_MAP ? finish_map(d, f) : finish_fun(d, f);
                        d->depth--;
                        if (r < 0)
                                return r;
                }
        }
}

int nk_etf_decode(ErlNifEnv *env, const uint8_t *buf, size_t len, unsigned flags,
                  ERL_NIF_TERM *ret_term, size_t *ret_used, struct nk_etf_error *err)
{
        struct dec d = {
                .env = env,
                .buf = buf,
                .len = len,
                .flags = flags,
                .err = err,
                .cap = INLINE_FRAMES,
        };
        ERL_NIF_TERM t = NK_NONE;
        int r;

        d.stack = d.inline_stack;
        if (err) {
                err->offset = 0;
                err->msg[0] = '\0';
        }
        if (len < 1 || buf[0] != NK_ETF_VERSION)
                return fail_at(&d, 0, -EINVAL, "no version byte %d at the start", NK_ETF_VERSION);
        d.pos = 1;
        r = decode_all(&d, &t);
        if (d.stack != d.inline_stack)
                free(d.stack);
        if (r < 0)
                return r;
        *ret_term = t;
        if (ret_used)
                *ret_used = d.pos;
        return 0;
}

/* ---- encoding ------------------------------------------------------------ */

enum eframe_kind {
        EF_TUPLE,
        EF_LIST,
        EF_MAP,
};

struct eframe {
        enum eframe_kind kind;
        size_t i, n;
        union {
                const struct nk_tuple *tuple;
                ERL_NIF_TERM cur;               /* list: next cons cell, or the tail */
                const struct nk_map *map;
        };
};

struct enc {
        struct nk_buf *out;
        size_t handles;         /* resource handles written */
        struct eframe *stack;
        size_t depth, cap;
        struct eframe inline_stack[INLINE_FRAMES];
};

static int epush(struct enc *e, const struct eframe *f)
{
        if (e->depth == e->cap &&
            grow_frames((void **) &e->stack, e->inline_stack, e->depth, &e->cap, sizeof(*e->stack)) < 0)
                return -ENOMEM;
        e->stack[e->depth++] = *f;
        return 0;
}

/* OTP 25 sends Latin-1 atoms as ATOM_EXT, others as (SMALL_)ATOM_UTF8_EXT. */
static int encode_atom(struct nk_buf *out, ERL_NIF_TERM a)
{
        size_t len, chars;
        const char *s = nk_atom_text(a, &len);
        bool latin1;
        int r;

        chars = nk_atom_chars(a, &latin1);
        if (latin1) {
                r = nk_buf_reserve(out, 3 + chars);
                if (r < 0)
                        return r;
                out->data[out->len++] = ATOM_EXT;
                out->data[out->len++] = (uint8_t) (chars >> 8);
                out->data[out->len++] = (uint8_t) chars;
                for (size_t i = 0; i < len; i++) {
                        uint8_t c = (uint8_t) s[i];
                        if (c >= 0x80) {
                                /* two-byte sequence of a code point <= 0xff */
                                c = (uint8_t) ((c & 0x03) << 6 | ((uint8_t) s[++i] & 0x3f));
                        }
                        out->data[out->len++] = c;
                }
                return 0;
        }
        if (len < 256) {
                r = nk_buf_put_u8(out, SMALL_ATOM_UTF8_EXT);
                if (r >= 0)
                        r = nk_buf_put_u8(out, (uint8_t) len);
        } else {
                r = nk_buf_put_u8(out, ATOM_UTF8_EXT);
                if (r >= 0)
                        r = nk_buf_put_be16(out, (uint16_t) len);
        }
        return r < 0 ? r : nk_buf_put(out, s, len);
}

/* Sign and little-endian magnitude, as SMALL_BIG_EXT or LARGE_BIG_EXT. */
static int encode_big_digits(struct nk_buf *out, bool neg, const uint8_t *digits, size_t n)
{
        int r;

        if (n < 256) {
                r = nk_buf_put_u8(out, SMALL_BIG_EXT);
                if (r >= 0)
                        r = nk_buf_put_u8(out, (uint8_t) n);
        } else {
                r = nk_buf_put_u8(out, LARGE_BIG_EXT);
                if (r >= 0)
                        r = nk_buf_put_be32(out, (uint32_t) n);
        }
        if (r >= 0)
                r = nk_buf_put_u8(out, neg ? 1 : 0);
        return r < 0 ? r : nk_buf_put(out, digits, n);
}

static int encode_small(struct nk_buf *out, int64_t v)
{
        uint8_t digits[8];
        uint64_t mag;
        size_t n = 0;
        int r;

        if (v >= 0 && v <= 255) {
                r = nk_buf_put_u8(out, SMALL_INTEGER_EXT);
                return r < 0 ? r : nk_buf_put_u8(out, (uint8_t) v);
        }
        if (v >= INT32_MIN && v <= INT32_MAX) {
                r = nk_buf_put_u8(out, INTEGER_EXT);
                return r < 0 ? r : nk_buf_put_be32(out, (uint32_t) (int32_t) v);
        }
        mag = v < 0 ? -(uint64_t) v : (uint64_t) v;
        while (mag) {
                digits[n++] = (uint8_t) mag;
                mag >>= 8;
        }
        return encode_big_digits(out, v < 0, digits, n);
}

static int encode_pid_data(struct nk_buf *out, ERL_NIF_TERM node, uint32_t id, uint32_t serial,
                           uint32_t creation)
{
        int r;

        r = nk_buf_put_u8(out, NEW_PID_EXT);
        if (r >= 0)
                r = encode_atom(out, node);
        if (r >= 0)
                r = nk_buf_put_be32(out, id);
        if (r >= 0)
                r = nk_buf_put_be32(out, serial);
        return r < 0 ? r : nk_buf_put_be32(out, creation);
}

static int encode_port_data(struct nk_buf *out, ERL_NIF_TERM node, uint64_t id, uint32_t creation)
{
        bool v4 = id > MAX_V3_PORT_NUMBER;
        int r;

        r = nk_buf_put_u8(out, v4 ? V4_PORT_EXT : NEW_PORT_EXT);
        if (r >= 0)
                r = encode_atom(out, node);
        if (r >= 0)
                r = v4 ? nk_buf_put_be64(out, id) : nk_buf_put_be32(out, (uint32_t) id);
        return r < 0 ? r : nk_buf_put_be32(out, creation);
}

static int encode_ref_data(struct nk_buf *out, ERL_NIF_TERM node, uint32_t creation,
                           const uint32_t *ids, size_t n)
{
        int r;

        r = nk_buf_put_u8(out, NEWER_REFERENCE_EXT);
        if (r >= 0)
                r = nk_buf_put_be16(out, (uint16_t) n);
        if (r >= 0)
                r = encode_atom(out, node);
        if (r >= 0)
                r = nk_buf_put_be32(out, creation);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = nk_buf_put_be32(out, ids[i]);
        return r;
}

static int encode_binary(struct nk_buf *out, const struct nk_binary *b)
{
        int r;

        /* ETF has 32-bit binary lengths; BEAM fails the same way */
        if (b->size > UINT32_MAX)
                return -EINVAL;
        if (b->bits == 0) {
                r = nk_buf_put_u8(out, BINARY_EXT);
                if (r >= 0)
                        r = nk_buf_put_be32(out, (uint32_t) b->size);
                return r < 0 ? r : nk_buf_put(out, b->data, b->size);
        }
        r = nk_buf_put_u8(out, BIT_BINARY_EXT);
        if (r >= 0)
                r = nk_buf_put_be32(out, (uint32_t) b->size);
        if (r >= 0)
                r = nk_buf_put_u8(out, b->bits);
        if (r >= 0 && b->size > 1)
                r = nk_buf_put(out, b->data, b->size - 1);
        if (r >= 0 && b->size > 0)
                r = nk_buf_put_u8(out, b->data[b->size - 1] & (uint8_t) (0xff << (8 - b->bits)));
        return r;
}

/* A proper list of 1..65535 integers in 0..255 goes out as STRING_EXT. */
static int encode_list(struct enc *e, ERL_NIF_TERM t)
{
        struct nk_buf *out = e->out;
        bool string = true;
        size_t n = 0;
        ERL_NIF_TERM l;
        int r;

        for (l = t; nk_is_kind(l, NK_CONS); l = ((const struct nk_cons *) nk_box_of(l))->tail) {
                ERL_NIF_TERM h = ((const struct nk_cons *) nk_box_of(l))->head;
                if (string && !(nk_is_small(h) && nk_small_value(h) >= 0 && nk_small_value(h) <= 255))
                        string = false;
                n++;
        }
        if (string && l == NK_NIL && n < 65536) {
                r = nk_buf_reserve(out, 3 + n);
                if (r < 0)
                        return r;
                out->data[out->len++] = STRING_EXT;
                out->data[out->len++] = (uint8_t) (n >> 8);
                out->data[out->len++] = (uint8_t) n;
                for (l = t; l != NK_NIL; l = ((const struct nk_cons *) nk_box_of(l))->tail)
                        out->data[out->len++] =
                                (uint8_t) nk_small_value(((const struct nk_cons *) nk_box_of(l))->head);
                return 0;
        }
        if (n > UINT32_MAX)
                return -EINVAL;
        r = nk_buf_put_u8(out, LIST_EXT);
        if (r >= 0)
                r = nk_buf_put_be32(out, (uint32_t) n);
        return r < 0 ? r : epush(e, &(struct eframe) { .kind = EF_LIST, .n = n + 1, .cur = t });
}

static int encode_box(struct enc *e, ERL_NIF_TERM t)
{
        const struct nk_box *b = nk_box_of(t);
        struct nk_buf *out = e->out;
        int r;

        switch (b->kind) {
        case NK_BIG: {
                const struct nk_big *big = (const struct nk_big *) b;
                return encode_big_digits(out, big->sign, big->digits, b->n);
        }
        case NK_FLOAT: {
                union { double f; uint64_t u; } v = { .f = ((const struct nk_float *) b)->value };
                r = nk_buf_put_u8(out, NEW_FLOAT_EXT);
                return r < 0 ? r : nk_buf_put_be64(out, v.u);
        }
        case NK_TUPLE:
                if (b->n < 256) {
                        r = nk_buf_put_u8(out, SMALL_TUPLE_EXT);
                        if (r >= 0)
                                r = nk_buf_put_u8(out, (uint8_t) b->n);
                } else {
                        r = nk_buf_put_u8(out, LARGE_TUPLE_EXT);
                        if (r >= 0)
                                r = nk_buf_put_be32(out, b->n);
                }
                if (r < 0 || b->n == 0)
                        return r;
                return epush(e, &(struct eframe) { .kind = EF_TUPLE, .n = b->n,
                                                   .tuple = (const struct nk_tuple *) b });
        case NK_CONS:
                return encode_list(e, t);
        case NK_MAP:
                r = nk_buf_put_u8(out, MAP_EXT);
                if (r >= 0)
                        r = nk_buf_put_be32(out, b->n);
                if (r < 0 || b->n == 0)
                        return r;
                return epush(e, &(struct eframe) { .kind = EF_MAP, .n = 2 * (size_t) b->n,
                                                   .map = (const struct nk_map *) b });
        case NK_BINARY:
                return encode_binary(out, (const struct nk_binary *) b);
        case NK_REF: {
                const struct nk_ref *ref = (const struct nk_ref *) b;
                return encode_ref_data(out, ref->node, ref->creation, ref->ids, b->n);
        }
        case NK_RESOURCE: {
                uint64_t h = nk_resource_handle(((const struct nk_resource_term *) b)->res);
                uint32_t ids[3] = { (uint32_t) h, (uint32_t) (h >> 32), 0 };
                if (h == 0)
                        return -ENOMEM;
                e->handles++;
                return encode_ref_data(out, nk_am_resource_node, 0, ids, 3);
        }
        case NK_EXTPID: {
                const struct nk_extpid *p = (const struct nk_extpid *) b;
                return encode_pid_data(out, p->node, (uint32_t) p->id, (uint32_t) (p->id >> 32),
                                       p->creation);
        }
        case NK_EXTPORT: {
                const struct nk_extpid *p = (const struct nk_extpid *) b;
                return encode_port_data(out, p->node, p->id, p->creation);
        }
        case NK_FUN:
                return nk_buf_put(out, ((const struct nk_fun *) b)->etf, b->n);
        default:
                return -EINVAL;
        }
}

static int encode_term(struct enc *e, ERL_NIF_TERM t)
{
        switch (nk_tag(t)) {
        case NK_TAG_SMALL:
                return encode_small(e->out, nk_small_value(t));
        case NK_TAG_ATOM:
                return encode_atom(e->out, t);
        case NK_TAG_PID: {
                const struct nk_pid_data *p = nk_pid_get(t);
                if (!p)
                        return -EINVAL;
                return encode_pid_data(e->out, nk_make_atom_term(p->node), p->id, p->serial,
                                       p->creation);
        }
        case NK_TAG_PORT: {
                const struct nk_port_data *p = nk_port_get(t);
                if (!p)
                        return -EINVAL;
                return encode_port_data(e->out, nk_make_atom_term(p->node), p->id, p->creation);
        }
        case NK_TAG_SPEC:
                if (t == NK_NIL)
                        return nk_buf_put_u8(e->out, NIL_EXT);
                return -EINVAL;         /* the exception marker is not a term */
        case NK_TAG_BOX:
                if (t == NK_NONE)
                        return -EINVAL;
                return encode_box(e, t);
        default:
                return -EINVAL;
        }
}

/* The next term the top frame wants written; pops finished frames. */
static ERL_NIF_TERM next_term(struct enc *e)
{
        while (e->depth > 0) {
                struct eframe *f = &e->stack[e->depth - 1];
                ERL_NIF_TERM t;

                if (f->i == f->n) {
                        e->depth--;
                        continue;
                }
                switch (f->kind) {
                case EF_TUPLE:
                        t = f->tuple->elems[f->i];
                        break;
                case EF_LIST:
                        if (f->i + 1 == f->n)
                                t = f->cur;     /* the tail */
                        else {
                                const struct nk_cons *c = (const struct nk_cons *) nk_box_of(f->cur);
                                t = c->head;
                                f->cur = c->tail;
                        }
                        break;
                case EF_MAP:
                default: {
                        size_t j = f->i / 2;
                        if (f->map->iter_order)
                                j = f->map->iter_order[j];
                        t = f->i % 2 ? f->map->vals[j] : f->map->keys[j];
                        break;
                }
                }
                f->i++;
                if (f->i == f->n)
                        e->depth--;
                return t;
        }
        return NK_NONE;
}

int nk_etf_encode(ERL_NIF_TERM t, struct nk_buf *out)
{
        return nk_etf_encode_counted(t, out, NULL);
}

int nk_etf_encode_counted(ERL_NIF_TERM t, struct nk_buf *out, size_t *ret_handles)
{
        struct enc e = {
                .out = out,
                .cap = INLINE_FRAMES,
        };
        size_t start = out->len;
        int r;

        e.stack = e.inline_stack;
        r = nk_buf_put_u8(out, NK_ETF_VERSION);
        while (r >= 0) {
                r = encode_term(&e, t);
                if (r < 0 || e.depth == 0)
                        break;
                t = next_term(&e);
                if (t == NK_NONE && e.depth == 0)
                        break;
        }
        if (e.stack != e.inline_stack)
                free(e.stack);
        if (r < 0)
                out->len = start;
        if (ret_handles)
                *ret_handles = e.handles;
        return r;
}
