/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Term order, identity and hashing for host terms.
 *
 * enif_compare and enif_hash must give a NIF the answers BEAM (OTP 25) would
 * give for the same terms, because NIFs sort with them, build hash tables
 * keyed by them, and return results the Erlang side compares with its own
 * operators. So:
 *
 *  - nk_compare is Erlang term order (==, <): numbers by exact value across
 *    integers and floats, then atom < reference < fun < export fun < port <
 *    pid < tuple < map < [] < cons < bitstring;
 *  - nk_map_key_cmp is the stricter order BEAM sorts map keys in (=:=
 *    semantics, every integer before every float);
 *  - nk_phash2 reproduces erlang:phash2/1 before its range reduction, which
 *    is what enif_hash(ERL_NIF_PHASH2) exposes;
 *  - nk_internal_hash is our own: erl_nif only promises that its values are
 *    stable within one VM instance, so they need not equal BEAM's.
 *
 * Terms may be deeper than a thread stack (a NIF can build any nesting), so
 * every walk here keeps its own work stack on the heap. Lists are walked
 * cell by cell without growing that stack.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "etf.h"
#include "term.h"
#include "term_order.h"

/* ---- work stacks ------------------------------------------------------- */

/*
 * A growable array of fixed-size items that starts in a caller-provided
 * buffer. compare and hash have no error channel (enif_compare returns the
 * order, enif_hash the value), and BEAM itself ends the VM when its
 * allocator fails; running out of memory here likewise ends the host, which
 * the runtime reports as a crash without harming the VM.
 */
struct wstack {
        char *items;
        size_t n, cap, size;
        char *initial;
};

static void wstack_init(struct wstack *s, void *buf, size_t cap, size_t size)
{
        s->items = s->initial = buf;
        s->n = 0;
        s->cap = cap;
        s->size = size;
}

static void *wstack_push(struct wstack *s)
{
        if (s->n == s->cap) {
                size_t cap = s->cap * 2;
                char *p;
                if (s->items == s->initial) {
                        p = malloc(cap * s->size);
                        if (p)
                                memcpy(p, s->items, s->n * s->size);
                } else
                        p = realloc(s->items, cap * s->size);
                if (!p)
                        abort();
                s->items = p;
                s->cap = cap;
        }
        return s->items + s->size * s->n++;
}

static void *wstack_top(struct wstack *s)
{
        return s->n ? s->items + s->size * (s->n - 1) : NULL;
}

static void wstack_free(struct wstack *s)
{
        if (s->items != s->initial)
                free(s->items);
}

/* ---- term access ------------------------------------------------------- */

/* ETF tags the fun parser needs. */
enum {
        ETF_SMALL_INTEGER = 97, ETF_INTEGER = 98, ETF_ATOM = 100, ETF_PID = 103,
        ETF_NIL = 106, ETF_LIST = 108, ETF_SMALL_BIG = 110, ETF_NEW_FUN = 112, ETF_EXPORT = 113,
        ETF_SMALL_ATOM = 115, ETF_ATOM_UTF8 = 118, ETF_SMALL_ATOM_UTF8 = 119,
        ETF_NEW_PID = 88,
};

static enum nk_order_rank rank_of(ERL_NIF_TERM t)
{
        switch (nk_tag(t)) {
        case NK_TAG_SMALL:
                return NK_RANK_NUMBER;
        case NK_TAG_ATOM:
                return NK_RANK_ATOM;
        case NK_TAG_PID:
                return NK_RANK_PID;
        case NK_TAG_PORT:
                return NK_RANK_PORT;
        case NK_TAG_SPEC:
                return NK_RANK_NIL;
        default:
                break;
        }
        const struct nk_box *b = nk_box_of(t);
        switch ((enum nk_box_kind) b->kind) {
        case NK_BIG:
        case NK_FLOAT:
                return NK_RANK_NUMBER;
        case NK_TUPLE:
                return NK_RANK_TUPLE;
        case NK_CONS:
                return NK_RANK_LIST;
        case NK_MAP:
                return NK_RANK_MAP;
        case NK_BINARY:
                return NK_RANK_BITSTRING;
        case NK_REF:
        case NK_RESOURCE:
                return NK_RANK_REF;
        case NK_EXTPID:
                return NK_RANK_PID;
        case NK_EXTPORT:
                return NK_RANK_PORT;
        case NK_FUN: {
                const struct nk_fun *f = (const struct nk_fun *) b;
                return f->h.n > 0 && f->etf[0] == ETF_EXPORT ? NK_RANK_EXPORT : NK_RANK_FUN;
        }
        }
        return NK_RANK_BITSTRING;
}

/* A pid, port or reference in the shape BEAM compares them: node name and
 * creation, then numbers. */
struct ident {
        ERL_NIF_TERM node;
        uint32_t creation;
        uint64_t num;           /* pid: serial << 32 | id;  port: id */
        uint32_t ids[5];        /* references */
        unsigned nids;
};

static void pid_ident(ERL_NIF_TERM t, struct ident *ret)
{
        memset(ret, 0, sizeof(*ret));
        if (nk_is_pid(t)) {
                const struct nk_pid_data *p = nk_pid_get(t);
                ret->node = nk_make_atom_term(p->node);
                ret->creation = p->creation;
                ret->num = (uint64_t) p->serial << 32 | p->id;
        } else {
                const struct nk_extpid *p = (const struct nk_extpid *) nk_box_of(t);
                ret->node = p->node;
                ret->creation = p->creation;
                ret->num = p->id;
        }
}

static void port_ident(ERL_NIF_TERM t, struct ident *ret)
{
        memset(ret, 0, sizeof(*ret));
        if (nk_is_port(t)) {
                const struct nk_port_data *p = nk_port_get(t);
                ret->node = nk_make_atom_term(p->node);
                ret->creation = p->creation;
                ret->num = p->id;
        } else {
                const struct nk_extpid *p = (const struct nk_extpid *) nk_box_of(t);
                ret->node = p->node;
                ret->creation = p->creation;
                ret->num = p->id;
        }
}

/*
 * A resource term is a reference in BEAM. Here it is ordered and hashed as a
 * reference of the reserved resource node whose numbers are the object's
 * address: stable for the object's life, distinct between live objects, and
 * independent of whether a handle was assigned yet (handles appear lazily,
 * when a resource first crosses to the runtime).
 */
static void ref_ident(ERL_NIF_TERM t, struct ident *ret)
{
        memset(ret, 0, sizeof(*ret));
        const struct nk_box *b = nk_box_of(t);
        if (b->kind == NK_RESOURCE) {
                uint64_t addr = (uint64_t) (uintptr_t) ((const struct nk_resource_term *) b)->res;
                ret->node = nk_am_resource_node;
                ret->ids[0] = (uint32_t) addr;
                ret->ids[1] = (uint32_t) (addr >> 32);
                ret->nids = 2;
        } else {
                const struct nk_ref *r = (const struct nk_ref *) b;
                ret->node = r->node;
                ret->creation = r->creation;
                ret->nids = r->h.n > 5 ? 5 : r->h.n;
                memcpy(ret->ids, r->ids, ret->nids * sizeof(uint32_t));
        }
        /* Trailing zero words do not distinguish references (BEAM compares
         * refs of different lengths that way). */
        while (ret->nids > 1 && ret->ids[ret->nids - 1] == 0)
                ret->nids--;
}

static int sign_of(int64_t d)
{
        return d < 0 ? -1 : d > 0;
}

static int cmp_atoms(ERL_NIF_TERM a, ERL_NIF_TERM b)
{
        if (a == b)
                return 0;
        size_t la, lb;
        const char *ta = nk_atom_text(a, &la);
        const char *tb = nk_atom_text(b, &lb);
        return nk_order_atom_texts((const uint8_t *) ta, la, false, (const uint8_t *) tb, lb, false);
}

/* The ident as term_order.h takes it: the node's name as text. */
static void order_ident(const struct ident *id, struct nk_order_ident *ret)
{
        const char *text = nk_atom_text(id->node, &ret->node_len);
        ret->node = (const uint8_t *) text;
        ret->node_latin1 = false;
        ret->creation = id->creation;
        ret->num = id->num;
        ret->nids = id->nids;
        memcpy(ret->ids, id->ids, sizeof ret->ids);
}

/* ---- numbers ------------------------------------------------------------ */

static struct nk_order_int order_int(const struct nk_big *b)
{
        return (struct nk_order_int) { .negative = b->sign, .mag = b->digits, .len = b->h.n };
}

/*
 * Integers are canonical (a value in the small range is never a big), so an
 * integer outside the small range is greater than every small one when
 * positive and smaller when negative.
 */
static int cmp_numbers(ERL_NIF_TERM a, ERL_NIF_TERM b, bool exact)
{
        bool af = nk_is_kind(a, NK_FLOAT), bf = nk_is_kind(b, NK_FLOAT);
        if (af && bf)
                return nk_order_doubles(((const struct nk_float *) nk_box_of(a))->value,
                                   ((const struct nk_float *) nk_box_of(b))->value);
        if (af != bf && exact)
                return af ? 1 : -1;     /* exact order: every integer before every float */
        if (bf) {
                double d = ((const struct nk_float *) nk_box_of(b))->value;
                if (nk_is_small(a))
                        return nk_order_int64_double(nk_small_value(a), d);
                struct nk_order_int ai = order_int((const struct nk_big *) nk_box_of(a));
                return nk_order_int_double(&ai, d);
        }
        if (af)
                return -cmp_numbers(b, a, exact);
        if (nk_is_small(a) && nk_is_small(b))
                return sign_of(nk_small_value(a) - nk_small_value(b));
        if (nk_is_small(a))
                return ((const struct nk_big *) nk_box_of(b))->sign ? 1 : -1;
        if (nk_is_small(b))
                return ((const struct nk_big *) nk_box_of(a))->sign ? -1 : 1;
        struct nk_order_int ai = order_int((const struct nk_big *) nk_box_of(a));
        struct nk_order_int bi = order_int((const struct nk_big *) nk_box_of(b));
        return nk_order_ints(&ai, &bi);
}

/* ---- binaries ----------------------------------------------------------- */

static size_t bin_bits(const struct nk_binary *b)
{
        return b->bits ? (b->size - 1) * 8 + b->bits : b->size * 8;
}

static int cmp_binaries(const struct nk_binary *a, const struct nk_binary *b)
{
        return nk_order_bits(a->data, bin_bits(a), b->data, bin_bits(b));
}

/* ---- funs ------------------------------------------------------------------ */

/*
 * Funs cross as their ETF bytes (struct nk_fun). BEAM orders and hashes them
 * by module, index and uniq (or module, function and arity for export funs)
 * and then by their free variables, which are decoded on demand here.
 */
struct fun_info {
        bool is_export;
        char module[NK_ATOM_MAX_CHARS * 4];
        size_t module_len;
        char function[NK_ATOM_MAX_CHARS * 4];
        size_t function_len;
        uint32_t arity;
        int64_t old_index, old_uniq;
        uint32_t num_free;
        const uint8_t *env;     /* the free variables' ETF bytes */
        size_t env_len;
};

struct reader {
        const uint8_t *p, *end;
};

static int rd_u8(struct reader *r, uint32_t *ret)
{
        if (r->end - r->p < 1)
                return -EINVAL;
        *ret = *r->p++;
        return 0;
}

static int rd_u32(struct reader *r, uint32_t *ret)
{
        if (r->end - r->p < 4)
                return -EINVAL;
        *ret = (uint32_t) r->p[0] << 24 | (uint32_t) r->p[1] << 16 | (uint32_t) r->p[2] << 8 | r->p[3];
        r->p += 4;
        return 0;
}

static int rd_skip(struct reader *r, size_t n)
{
        if ((size_t) (r->end - r->p) < n)
                return -EINVAL;
        r->p += n;
        return 0;
}

/* Reads an atom as UTF-8 text into buf (NK_ATOM_MAX_CHARS * 4 bytes). */
static int rd_atom(struct reader *r, char *buf, size_t *ret_len)
{
        uint32_t tag, len;
        if (rd_u8(r, &tag) < 0)
                return -EINVAL;
        bool latin1 = tag == ETF_ATOM || tag == ETF_SMALL_ATOM;
        if (tag == ETF_SMALL_ATOM || tag == ETF_SMALL_ATOM_UTF8) {
                if (rd_u8(r, &len) < 0)
                        return -EINVAL;
        } else if (tag == ETF_ATOM || tag == ETF_ATOM_UTF8) {
                uint32_t hi, lo;
                if (rd_u8(r, &hi) < 0 || rd_u8(r, &lo) < 0)
                        return -EINVAL;
                len = hi << 8 | lo;
        } else
                return -EINVAL;
        if ((size_t) (r->end - r->p) < len || len > NK_ATOM_MAX_CHARS * (latin1 ? 1 : 4))
                return -EINVAL;
        size_t o = 0;
        for (uint32_t i = 0; i < len; i++) {
                uint8_t c = r->p[i];
                if (latin1 && c >= 0x80) {
                        buf[o++] = (char) (0xc0 | c >> 6);
                        buf[o++] = (char) (0x80 | (c & 0x3f));
                } else
                        buf[o++] = (char) c;
        }
        r->p += len;
        *ret_len = o;
        return 0;
}

static int rd_int(struct reader *r, int64_t *ret)
{
        uint32_t tag, v;
        if (rd_u8(r, &tag) < 0)
                return -EINVAL;
        if (tag == ETF_SMALL_INTEGER) {
                if (rd_u8(r, &v) < 0)
                        return -EINVAL;
                *ret = v;
        } else if (tag == ETF_INTEGER) {
                if (rd_u32(r, &v) < 0)
                        return -EINVAL;
                *ret = (int32_t) v;
        } else if (tag == ETF_SMALL_BIG) {
                /* A fun's uniq above 2^31 arrives as a bignum. */
                uint32_t n, sign, byte;
                uint64_t m = 0;
                if (rd_u8(r, &n) < 0 || n > 7 || rd_u8(r, &sign) < 0)
                        return -EINVAL;
                for (uint32_t i = 0; i < n; i++) {
                        if (rd_u8(r, &byte) < 0)
                                return -EINVAL;
                        m |= (uint64_t) byte << (8 * i);
                }
                *ret = sign ? -(int64_t) m : (int64_t) m;
        } else
                return -EINVAL;
        return 0;
}

static int parse_fun(const struct nk_fun *f, struct fun_info *ret)
{
        struct reader r = { f->etf, f->etf + f->h.n };
        uint32_t tag;
        size_t skip_len;
        char skip[NK_ATOM_MAX_CHARS * 4];

        ret->is_export = false;
        ret->module_len = ret->function_len = 0;
        ret->arity = ret->num_free = 0;
        ret->old_index = ret->old_uniq = 0;
        ret->env = NULL;
        ret->env_len = 0;
        if (rd_u8(&r, &tag) < 0)
                return -EINVAL;
        if (tag == ETF_EXPORT) {
                ret->is_export = true;
                if (rd_atom(&r, ret->module, &ret->module_len) < 0 ||
                    rd_atom(&r, ret->function, &ret->function_len) < 0 ||
                    rd_u8(&r, &tag) < 0 || tag != ETF_SMALL_INTEGER || rd_u8(&r, &ret->arity) < 0)
                        return -EINVAL;
                return 0;
        }
        if (tag != ETF_NEW_FUN)
                return -EINVAL;
        /* Size, Arity, Uniq[16], Index, then NumFree */
        if (rd_skip(&r, 4 + 1 + 16 + 4) < 0 || rd_u32(&r, &ret->num_free) < 0 ||
            rd_atom(&r, ret->module, &ret->module_len) < 0 ||
            rd_int(&r, &ret->old_index) < 0 || rd_int(&r, &ret->old_uniq) < 0 ||
            rd_u8(&r, &tag) < 0)
                return -EINVAL;
        /* The creator pid takes no part in order or hash. */
        if (tag != ETF_NEW_PID && tag != ETF_PID)
                return -EINVAL;
        if (rd_atom(&r, skip, &skip_len) < 0 || rd_skip(&r, tag == ETF_NEW_PID ? 12 : 9) < 0)
                return -EINVAL;
        ret->env = r.p;
        ret->env_len = (size_t) (r.end - r.p);
        return 0;
}

/*
 * Decodes a local fun's free variables into env as an array of terms.
 * Returns the number of terms, or -errno.
 */
static int decode_fun_env(ErlNifEnv *env, const struct fun_info *fi, const ERL_NIF_TERM **ret)
{
        size_t len = 1 + 1 + 4 + fi->env_len + 1;
        uint8_t *buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        buf[0] = NK_ETF_VERSION;
        buf[1] = ETF_LIST;
        buf[2] = (uint8_t) (fi->num_free >> 24);
        buf[3] = (uint8_t) (fi->num_free >> 16);
        buf[4] = (uint8_t) (fi->num_free >> 8);
        buf[5] = (uint8_t) fi->num_free;
        memcpy(buf + 6, fi->env, fi->env_len);
        buf[len - 1] = ETF_NIL;

        ERL_NIF_TERM list;
        size_t used;
        struct nk_etf_error err;
        int r = nk_etf_decode(env, buf, len, 0, &list, &used, &err);
        free(buf);
        if (r < 0)
                return r;
        if (used != len)
                return -EINVAL;
        ERL_NIF_TERM *arr = nk_env_alloc(env, (fi->num_free ? fi->num_free : 1) * sizeof(ERL_NIF_TERM));
        if (!arr)
                return -ENOMEM;
        for (uint32_t i = 0; i < fi->num_free; i++) {
                if (!nk_is_kind(list, NK_CONS))
                        return -EINVAL;
                const struct nk_cons *c = (const struct nk_cons *) nk_box_of(list);
                arr[i] = c->head;
                list = c->tail;
        }
        *ret = arr;
        return (int) fi->num_free;
}

static int cmp_text(const char *a, size_t la, const char *b, size_t lb)
{
        int c = memcmp(a, b, la < lb ? la : lb);
        if (c)
                return c < 0 ? -1 : 1;
        return nk_order_u64(la, lb);
}

static struct nk_order_fun order_fun(const struct fun_info *f)
{
        return (struct nk_order_fun) {
                .is_export = f->is_export,
                .module = (const uint8_t *) f->module, .module_len = f->module_len,
                .function = (const uint8_t *) f->function, .function_len = f->function_len,
                .arity = f->arity, .old_index = f->old_index, .old_uniq = f->old_uniq,
                .num_free = f->num_free,
        };
}

static int compare(ERL_NIF_TERM a, ERL_NIF_TERM b, bool exact);

static int cmp_funs(const struct nk_fun *a, const struct nk_fun *b, bool exact)
{
        struct fun_info fa, fb;
        int c;

        /* The decoder only keeps funs it parsed, so this fallback (the raw
         * bytes) is for the impossible case, not a second semantics. */
        if (parse_fun(a, &fa) < 0 || parse_fun(b, &fb) < 0) {
                c = memcmp(a->etf, b->etf, a->h.n < b->h.n ? a->h.n : b->h.n);
                return c ? (c < 0 ? -1 : 1) : nk_order_u64(a->h.n, b->h.n);
        }
        struct nk_order_fun ha = order_fun(&fa), hb = order_fun(&fb);
        c = nk_order_fun_heads(&ha, &hb);
        if (c || fa.is_export || fa.num_free == 0)
                return c;

        ErlNifEnv env;
        const ERL_NIF_TERM *ea, *eb;
        nk_env_init(&env);
        if (decode_fun_env(&env, &fa, &ea) < 0 || decode_fun_env(&env, &fb, &eb) < 0) {
                nk_env_destroy(&env);
                c = cmp_text((const char *) fa.env, fa.env_len, (const char *) fb.env, fb.env_len);
                return c;
        }
        c = 0;
        /* Recursion depth here is the nesting of funs inside funs' free
         * variables, which the decoder's depth limit bounds. */
        for (uint32_t i = 0; i < fa.num_free && c == 0; i++)
                c = compare(ea[i], eb[i], exact);
        nk_env_destroy(&env);
        return c;
}

/* ---- compare ------------------------------------------------------------ */

/* Pending element pairs: a[0..n) against b[0..n). */
struct cmp_frame {
        const ERL_NIF_TERM *a, *b;
        size_t n;
        bool exact;
};

static void push_pairs(struct wstack *st, const ERL_NIF_TERM *a, const ERL_NIF_TERM *b, size_t n,
                       bool exact)
{
        if (n == 0)
                return;
        struct cmp_frame *f = wstack_push(st);
        f->a = a;
        f->b = b;
        f->n = n;
        f->exact = exact;
}

/* Orders two terms of the same rank that hold no other terms; 2 when the
 * rank is a container the caller walks. */
static int cmp_leaf(ERL_NIF_TERM a, ERL_NIF_TERM b, enum nk_order_rank r, bool exact)
{
        struct ident ia, ib;
        struct nk_order_ident oa, ob;

        switch (r) {
        case NK_RANK_NUMBER:
                return cmp_numbers(a, b, exact);
        case NK_RANK_ATOM:
                return cmp_atoms(a, b);
        case NK_RANK_PID:
                /* BEAM orders pids by serial and number before the node. */
                pid_ident(a, &ia);
                pid_ident(b, &ib);
                order_ident(&ia, &oa);
                order_ident(&ib, &ob);
                return nk_order_pids(&oa, &ob);
        case NK_RANK_PORT:
                port_ident(a, &ia);
                port_ident(b, &ib);
                order_ident(&ia, &oa);
                order_ident(&ib, &ob);
                return nk_order_ports(&oa, &ob);
        case NK_RANK_REF:
                ref_ident(a, &ia);
                ref_ident(b, &ib);
                order_ident(&ia, &oa);
                order_ident(&ib, &ob);
                return nk_order_refs(&oa, &ob);
        case NK_RANK_FUN:
        case NK_RANK_EXPORT:
                return cmp_funs((const struct nk_fun *) nk_box_of(a), (const struct nk_fun *) nk_box_of(b),
                                exact);
        case NK_RANK_BITSTRING:
                return cmp_binaries((const struct nk_binary *) nk_box_of(a),
                                    (const struct nk_binary *) nk_box_of(b));
        case NK_RANK_NIL:
                return 0;
        default:
                return 2;
        }
}

static int compare(ERL_NIF_TERM a, ERL_NIF_TERM b, bool exact)
{
        struct cmp_frame initial[32];
        struct wstack st;
        int c = 0;

        wstack_init(&st, initial, sizeof(initial) / sizeof(initial[0]), sizeof(initial[0]));
        for (;;) {
                if (a == b)
                        goto next;
                enum nk_order_rank ra = rank_of(a), rb = rank_of(b);
                if (ra != rb) {
                        c = ra < rb ? -1 : 1;
                        break;
                }
                c = cmp_leaf(a, b, ra, exact);
                if (c == 0)
                        goto next;
                if (c != 2)
                        break;
                c = 0;

                if (ra == NK_RANK_TUPLE) {
                        const struct nk_tuple *ta = (const struct nk_tuple *) nk_box_of(a);
                        const struct nk_tuple *tb = (const struct nk_tuple *) nk_box_of(b);
                        if (ta->h.n != tb->h.n) {
                                c = ta->h.n < tb->h.n ? -1 : 1;
                                break;
                        }
                        push_pairs(&st, ta->elems, tb->elems, ta->h.n, exact);
                } else if (ra == NK_RANK_MAP) {
                        /* Size, then the keys in key order compared exactly,
                         * then the values in the same order. */
                        const struct nk_map *ma = (const struct nk_map *) nk_box_of(a);
                        const struct nk_map *mb = (const struct nk_map *) nk_box_of(b);
                        if (ma->h.n != mb->h.n) {
                                c = ma->h.n < mb->h.n ? -1 : 1;
                                break;
                        }
                        push_pairs(&st, ma->vals, mb->vals, ma->h.n, exact);
                        push_pairs(&st, ma->keys, mb->keys, ma->h.n, true);
                } else {
                        /* Lists: walk the cells here; a head that needs a
                         * deeper look parks the tails, so the work stack
                         * grows with nesting, never with length. */
                        const struct nk_cons *la = (const struct nk_cons *) nk_box_of(a);
                        const struct nk_cons *lb = (const struct nk_cons *) nk_box_of(b);
                        for (;;) {
                                ERL_NIF_TERM ha = la->head, hb = lb->head;
                                if (ha != hb) {
                                        if (nk_is_small(ha) && nk_is_small(hb))
                                                c = sign_of(nk_small_value(ha) - nk_small_value(hb));
                                        else if (nk_is_atom(ha) && nk_is_atom(hb))
                                                c = cmp_atoms(ha, hb);
                                        else {
                                                push_pairs(&st, &la->tail, &lb->tail, 1, exact);
                                                a = ha;
                                                b = hb;
                                                break;
                                        }
                                        if (c)
                                                break;
                                }
                                if (la->tail == lb->tail) {
                                        a = b = NK_NIL;
                                        break;
                                }
                                if (!nk_is_kind(la->tail, NK_CONS) || !nk_is_kind(lb->tail, NK_CONS)) {
                                        a = la->tail;
                                        b = lb->tail;
                                        break;
                                }
                                la = (const struct nk_cons *) nk_box_of(la->tail);
                                lb = (const struct nk_cons *) nk_box_of(lb->tail);
                        }
                        if (c)
                                break;
                        continue;
                }
        next: {
                struct cmp_frame *f = wstack_top(&st);
                if (!f)
                        break;
                a = *f->a++;
                b = *f->b++;
                exact = f->exact;
                if (--f->n == 0)
                        st.n--;
        }
        }
        wstack_free(&st);
        return c;
}

int nk_compare(ERL_NIF_TERM a, ERL_NIF_TERM b)
{
        return compare(a, b, false);
}

int nk_map_key_cmp(ERL_NIF_TERM a, ERL_NIF_TERM b)
{
        return compare(a, b, true);
}

bool nk_identical(ERL_NIF_TERM a, ERL_NIF_TERM b)
{
        return a == b || compare(a, b, true) == 0;
}

/* ---- phash2 --------------------------------------------------------------- */

/*
 * erlang:phash2/1 is BEAM's make_hash2: Bob Jenkins' lookup2 mixing of
 * 32-bit values with a per-type constant (multiples of the golden ratio),
 * a lookup2 block hash for binaries, hashpjw for atoms, and an xor of
 * per-pair hashes for maps so that their iteration order does not matter.
 * The order in which it visits subterms is part of the value, so the walk
 * below visits them exactly as BEAM does.
 */
#define GOLDEN UINT32_C(0x9e3779b9)
#define HC(i) ((uint32_t) (GOLDEN * (uint32_t) (i)))
/* BEAM mixes its internal type code of [] when [] is not the first thing
 * hashed, and a fixed value when it is. */
#define NIL_TYPE_CODE 2u
#define NIL_FIRST_HASH UINT32_C(3468870702)

static inline void jmix(uint32_t *a, uint32_t *b, uint32_t *c)
{
        *a -= *b; *a -= *c; *a ^= *c >> 13;
        *b -= *c; *b -= *a; *b ^= *a << 8;
        *c -= *a; *c -= *b; *c ^= *b >> 13;
        *a -= *b; *a -= *c; *a ^= *c >> 12;
        *b -= *c; *b -= *a; *b ^= *a << 16;
        *c -= *a; *c -= *b; *c ^= *b >> 5;
        *a -= *b; *a -= *c; *a ^= *c >> 3;
        *b -= *c; *b -= *a; *b ^= *a << 10;
        *c -= *a; *c -= *b; *c ^= *b >> 15;
}

static inline void hash_2(uint32_t *hash, uint32_t x, uint32_t y, uint32_t k)
{
        uint32_t a = k + x, b = k + y;
        jmix(&a, &b, hash);
}

static inline void hash_1(uint32_t *hash, uint32_t x, uint32_t k)
{
        hash_2(hash, x, 0, k);
}

static uint32_t le32(const uint8_t *k)
{
        return k[0] | (uint32_t) k[1] << 8 | (uint32_t) k[2] << 16 | (uint32_t) k[3] << 24;
}

/* lookup2's hash() over len bytes, seeded with initval. */
static uint32_t block_hash(const uint8_t *k, size_t length, uint32_t initval)
{
        uint32_t a = GOLDEN, b = GOLDEN, c = initval;
        size_t len = length;

        while (len >= 12) {
                a += le32(k);
                b += le32(k + 4);
                c += le32(k + 8);
                jmix(&a, &b, &c);
                k += 12;
                len -= 12;
        }
        /* The low byte of c is taken by the length (truncated to 32 bits,
         * as BEAM does). */
        c += (uint32_t) length;
        uint8_t tail[12] = { 0 };
        memcpy(tail, k, len);
        a += le32(tail);
        b += le32(tail + 4);
        c += (uint32_t) tail[8] << 8 | (uint32_t) tail[9] << 16 | (uint32_t) tail[10] << 24;
        jmix(&a, &b, &c);
        return c;
}

/* The hash BEAM's atom table keeps for an atom: hashpjw over its UTF-8
 * text, except that a two-byte sequence for a Latin-1 character (lead byte
 * C2 or C3) counts as that one character. */
static uint32_t atom_text_hash(const char *text, size_t len)
{
        const uint8_t *p = (const uint8_t *) text;
        uint32_t h = 0;

        while (len--) {
                uint8_t v = *p++;
                if (len && (v & 0xfe) == 0xc2 && (*p & 0xc0) == 0x80) {
                        v = (uint8_t) (v << 6 | (*p & 0x3f));
                        p++;
                        len--;
                }
                h = (h << 4) + v;
                uint32_t g = h & 0xf0000000u;
                if (g) {
                        h ^= g >> 24;
                        h ^= g;
                }
        }
        return h;
}

static uint32_t atom_hvalue(ERL_NIF_TERM atom)
{
        size_t len;
        const char *text = nk_atom_text(atom, &len);
        return atom_text_hash(text, len);
}

enum h2_op {
        H2_TERM,        /* hash term */
        H2_ELEMS,       /* hash p[0], then the rest of p[0..n) */
        H2_MAP_NEXT,    /* hash pair n of map */
        H2_PAIR_END,    /* fold the pair's hash into the map's xor */
        H2_MAP_END,     /* restore the enclosing hash and mix the xor in */
};

struct h2_item {
        uint32_t op;
        uint32_t saved_hash, saved_xor;
        ERL_NIF_TERM term;
        const ERL_NIF_TERM *p;
        const struct nk_map *map;
        size_t n;
};

struct h2 {
        uint32_t hash;
        uint32_t xor_pairs;
        struct wstack st;
        ErlNifEnv *scratch;     /* decoded fun environments, freed at the end */
};

static void h2_push(struct h2 *s, enum h2_op op, ERL_NIF_TERM term, const ERL_NIF_TERM *p, size_t n)
{
        struct h2_item *it = wstack_push(&s->st);
        it->op = op;
        it->term = term;
        it->p = p;
        it->n = n;
        it->map = NULL;
}

static void h2_small(struct h2 *s, int64_t v)
{
        if (v >= -(INT64_C(1) << 27) && v < (INT64_C(1) << 27)) {
                int32_t y = (int32_t) v;
                if (y < 0)
                        hash_1(&s->hash, (uint32_t) -y, HC(1));
                hash_1(&s->hash, (uint32_t) y, HC(1));
                return;
        }
        /* Beyond 28 bits BEAM hashes an integer as a bignum of one 64-bit
         * digit. */
        uint64_t m = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
        hash_2(&s->hash, (uint32_t) m, (uint32_t) (m >> 32), v < 0 ? HC(10) : HC(11));
}

static void h2_big(struct h2 *s, const struct nk_big *b)
{
        uint32_t con = b->sign ? HC(10) : HC(11);
        size_t n = b->h.n;
        size_t i = 0;
        do {
                uint64_t d = 0;
                for (unsigned j = 0; j < 8 && i + j < n; j++)
                        d |= (uint64_t) b->digits[i + j] << (8 * j);
                hash_2(&s->hash, (uint32_t) d, (uint32_t) (d >> 32), con);
                i += 8;
        } while (i < n);
}

static void h2_binary(struct h2 *s, const struct nk_binary *b)
{
        size_t sz = b->bits ? b->size - 1 : b->size;
        uint32_t con = HC(13) + s->hash;
        if (sz == 0 && b->bits == 0) {
                s->hash = con;
                return;
        }
        s->hash = block_hash(b->data, sz & 0xffffffffu, con);
        if (b->bits)
                hash_2(&s->hash, b->bits, (uint32_t) (b->data[sz] >> (8 - b->bits)), HC(15));
}

static ErlNifEnv *h2_scratch(struct h2 *s)
{
        if (!s->scratch) {
                s->scratch = malloc(sizeof(*s->scratch));
                if (!s->scratch)
                        return NULL;
                nk_env_init(s->scratch);
        }
        return s->scratch;
}

/* Returns the next term to hash, or NK_NONE when the work stack decides. */
static ERL_NIF_TERM h2_fun(struct h2 *s, const struct nk_fun *f)
{
        struct fun_info fi;
        if (parse_fun(f, &fi) < 0) {
                s->hash = block_hash(f->etf, f->h.n, s->hash);
                return NK_NONE;
        }
        uint32_t mod = atom_text_hash(fi.module, fi.module_len);
        if (fi.is_export) {
                hash_2(&s->hash, fi.arity, mod, HC(1));
                hash_1(&s->hash, atom_text_hash(fi.function, fi.function_len), HC(14));
                return NK_NONE;
        }
        hash_2(&s->hash, fi.num_free, mod, HC(1));
        hash_2(&s->hash, (uint32_t) fi.old_index, (uint32_t) fi.old_uniq, HC(1));
        if (fi.num_free == 0)
                return NK_NONE;
        const ERL_NIF_TERM *env;
        ErlNifEnv *scratch = h2_scratch(s);
        if (!scratch || decode_fun_env(scratch, &fi, &env) < 0) {
                s->hash = block_hash(fi.env, fi.env_len, s->hash);
                return NK_NONE;
        }
        if (fi.num_free > 1)
                h2_push(s, H2_ELEMS, NK_NONE, env + 1, fi.num_free - 1);
        return env[0];
}

static ERL_NIF_TERM h2_cons(struct h2 *s, ERL_NIF_TERM t)
{
        /* Runs of bytes (integers 0..255) go four to a mix. */
        uint32_t sh = 0;
        int c = 0;
        const struct nk_cons *cell = (const struct nk_cons *) nk_box_of(t);
        for (;;) {
                ERL_NIF_TERM h = cell->head;
                if (!nk_is_small(h) || nk_small_value(h) < 0 || nk_small_value(h) > 255)
                        break;
                sh = (sh << 8) + (uint32_t) nk_small_value(h);
                if (c == 3) {
                        hash_1(&s->hash, sh, HC(4));
                        c = 0;
                        sh = 0;
                } else
                        c++;
                t = cell->tail;
                if (!nk_is_kind(t, NK_CONS))
                        break;
                cell = (const struct nk_cons *) nk_box_of(t);
        }
        if (c > 0)
                hash_1(&s->hash, sh, HC(4));
        if (!nk_is_kind(t, NK_CONS))
                return t;       /* the tail, [] for a proper list */
        h2_push(s, H2_TERM, cell->tail, NULL, 0);
        return cell->head;
}

static ERL_NIF_TERM h2_box(struct h2 *s, ERL_NIF_TERM t)
{
        const struct nk_box *b = nk_box_of(t);
        struct ident id;

        switch ((enum nk_box_kind) b->kind) {
        case NK_BIG:
                h2_big(s, (const struct nk_big *) b);
                return NK_NONE;
        case NK_FLOAT: {
                double d = ((const struct nk_float *) b)->value;
                uint64_t bits;
                if (d == 0)
                        d = 0.0;        /* -0.0 hashes as 0.0 */
                memcpy(&bits, &d, sizeof(bits));
                hash_2(&s->hash, (uint32_t) (bits >> 32), (uint32_t) bits, HC(12));
                return NK_NONE;
        }
        case NK_TUPLE: {
                const struct nk_tuple *tu = (const struct nk_tuple *) b;
                hash_1(&s->hash, tu->h.n, HC(9));
                if (tu->h.n == 0)
                        return NK_NONE;
                if (tu->h.n > 1)
                        h2_push(s, H2_ELEMS, NK_NONE, tu->elems + 1, tu->h.n - 1);
                return tu->elems[0];
        }
        case NK_CONS:
                return h2_cons(s, t);
        case NK_MAP: {
                const struct nk_map *m = (const struct nk_map *) b;
                hash_1(&s->hash, m->h.n, HC(16));
                if (m->h.n == 0)
                        return NK_NONE;
                struct h2_item *it = wstack_push(&s->st);
                it->op = H2_MAP_END;
                it->saved_hash = s->hash;
                it->saved_xor = s->xor_pairs;
                it = wstack_push(&s->st);
                it->op = H2_MAP_NEXT;
                it->map = m;
                it->n = 0;
                s->hash = 0;
                s->xor_pairs = 0;
                return NK_NONE;
        }
        case NK_BINARY:
                h2_binary(s, (const struct nk_binary *) b);
                return NK_NONE;
        case NK_REF:
        case NK_RESOURCE:
                ref_ident(t, &id);
                hash_1(&s->hash, id.ids[0], HC(7));
                return NK_NONE;
        case NK_EXTPID:
                hash_1(&s->hash, (uint32_t) ((const struct nk_extpid *) b)->id, HC(5));
                return NK_NONE;
        case NK_EXTPORT: {
                uint64_t n = ((const struct nk_extpid *) b)->id;
                hash_2(&s->hash, (uint32_t) n, (uint32_t) (n >> 32), HC(6));
                return NK_NONE;
        }
        case NK_FUN:
                return h2_fun(s, (const struct nk_fun *) b);
        }
        return NK_NONE;
}

/* Hashes t into s; returns a subterm to hash next, or NK_NONE. */
static ERL_NIF_TERM h2_step(struct h2 *s, ERL_NIF_TERM t)
{
        switch (nk_tag(t)) {
        case NK_TAG_SMALL:
                h2_small(s, nk_small_value(t));
                return NK_NONE;
        case NK_TAG_ATOM:
                /* An atom hashed first keeps its table hash unmixed. */
                if (s->hash == 0)
                        s->hash = atom_hvalue(t);
                else
                        hash_1(&s->hash, atom_hvalue(t), HC(3));
                return NK_NONE;
        case NK_TAG_SPEC:
                if (s->hash == 0)
                        s->hash = NIL_FIRST_HASH;
                else
                        hash_1(&s->hash, NIL_TYPE_CODE, HC(2));
                return NK_NONE;
        case NK_TAG_PID:
                hash_1(&s->hash, nk_pid_get(t)->id, HC(5));
                return NK_NONE;
        case NK_TAG_PORT: {
                uint64_t n = nk_port_get(t)->id;
                hash_2(&s->hash, (uint32_t) n, (uint32_t) (n >> 32), HC(6));
                return NK_NONE;
        }
        default:
                return h2_box(s, t);
        }
}

uint32_t nk_phash2(ERL_NIF_TERM t)
{
        struct h2_item initial[32];
        struct h2 s = { .hash = 0, .xor_pairs = 0, .scratch = NULL };

        wstack_init(&s.st, initial, sizeof(initial) / sizeof(initial[0]), sizeof(initial[0]));
        for (;;) {
                while (t != NK_NONE)
                        t = h2_step(&s, t);

                struct h2_item *it = wstack_top(&s.st);
                if (!it)
                        break;
                switch ((enum h2_op) it->op) {
                case H2_TERM:
                        t = it->term;
                        s.st.n--;
                        break;
                case H2_ELEMS:
                        t = *it->p++;
                        if (--it->n == 0)
                                s.st.n--;
                        break;
                case H2_MAP_NEXT: {
                        const struct nk_map *m = it->map;
                        size_t i = it->n++;
                        if (it->n == m->h.n)
                                s.st.n--;
                        h2_push(&s, H2_PAIR_END, NK_NONE, NULL, 0);
                        h2_push(&s, H2_TERM, m->vals[i], NULL, 0);
                        t = m->keys[i];
                        break;
                }
                case H2_PAIR_END:
                        s.xor_pairs ^= s.hash;
                        s.hash = 0;
                        s.st.n--;
                        break;
                case H2_MAP_END:
                        s.hash = it->saved_hash;
                        hash_1(&s.hash, s.xor_pairs, HC(19));
                        s.xor_pairs = it->saved_xor;
                        s.st.n--;
                        break;
                }
        }
        wstack_free(&s.st);
        if (s.scratch) {
                nk_env_destroy(s.scratch);
                free(s.scratch);
        }
        return s.hash;
}

/* ---- internal hash -------------------------------------------------------- */

/*
 * ERL_NIF_INTERNAL_HASH: erl_nif documents its values as valid only within
 * one VM instance, so this is not BEAM's make_internal_hash but a 64-bit
 * structural hash of our own. It must agree with nk_identical: identical
 * terms hash alike (0.0 and -0.0, references that differ only in trailing
 * zero words, a fun's creator pid are all ignored as =:= ignores them).
 */
static inline uint64_t fmix64(uint64_t h)
{
        h ^= h >> 33;
        h *= UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 33;
        h *= UINT64_C(0xc4ceb9fe1a85ec53);
        h ^= h >> 33;
        return h;
}

static inline void ih_mix(uint64_t *h, uint64_t x)
{
        *h = fmix64(*h ^ (x + UINT64_C(0x9e3779b97f4a7c15) + (*h << 6) + (*h >> 2)));
}

static void ih_bytes(uint64_t *h, const uint8_t *p, size_t n)
{
        ih_mix(h, n);
        while (n >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                ih_mix(h, w);
                p += 8;
                n -= 8;
        }
        if (n) {
                uint64_t w = 0;
                memcpy(&w, p, n);
                ih_mix(h, w);
        }
}

static void ih_ident(uint64_t *h, const struct ident *id)
{
        ih_mix(h, nk_atom_index(id->node));
        ih_mix(h, id->creation);
        ih_mix(h, id->num);
        for (unsigned i = 0; i < id->nids; i++)
                ih_mix(h, id->ids[i]);
}

struct ih_frame {
        const ERL_NIF_TERM *p;
        size_t n;
};

static void ih_push(struct wstack *st, const ERL_NIF_TERM *p, size_t n)
{
        if (n == 0)
                return;
        struct ih_frame *f = wstack_push(st);
        f->p = p;
        f->n = n;
}

/* Mixes in t; pushes its subterms. Returns a subterm to go on with, or
 * NK_NONE. */
static ERL_NIF_TERM ih_step(uint64_t *h, struct wstack *st, ERL_NIF_TERM t)
{
        struct ident id;

        if (!nk_is_box(t)) {
                /* Immediates are canonical and atoms, pids and ports
                 * interned: the word itself identifies the term. */
                ih_mix(h, t);
                return NK_NONE;
        }
        const struct nk_box *b = nk_box_of(t);
        ih_mix(h, b->kind);
        switch ((enum nk_box_kind) b->kind) {
        case NK_BIG: {
                const struct nk_big *g = (const struct nk_big *) b;
                ih_mix(h, g->sign);
                ih_bytes(h, g->digits, g->h.n);
                return NK_NONE;
        }
        case NK_FLOAT: {
                double d = ((const struct nk_float *) b)->value;
                uint64_t bits;
                if (d == 0)
                        d = 0.0;
                memcpy(&bits, &d, sizeof(bits));
                ih_mix(h, bits);
                return NK_NONE;
        }
        case NK_TUPLE: {
                const struct nk_tuple *tu = (const struct nk_tuple *) b;
                ih_mix(h, tu->h.n);
                ih_push(st, tu->elems, tu->h.n);
                return NK_NONE;
        }
        case NK_CONS: {
                /* The tail waits while the head is hashed: long lists keep
                 * the work stack at one frame. */
                const struct nk_cons *c = (const struct nk_cons *) b;
                ih_push(st, &c->tail, 1);
                return c->head;
        }
        case NK_MAP: {
                const struct nk_map *m = (const struct nk_map *) b;
                ih_mix(h, m->h.n);
                ih_push(st, m->vals, m->h.n);
                ih_push(st, m->keys, m->h.n);
                return NK_NONE;
        }
        case NK_BINARY: {
                const struct nk_binary *bin = (const struct nk_binary *) b;
                size_t whole = bin->bits ? bin->size - 1 : bin->size;
                ih_bytes(h, bin->data, whole);
                if (bin->bits) {
                        uint8_t last = bin->data[whole] & (uint8_t) (0xff00u >> bin->bits);
                        ih_mix(h, (uint64_t) bin->bits << 8 | last);
                }
                return NK_NONE;
        }
        case NK_REF:
        case NK_RESOURCE:
                ref_ident(t, &id);
                ih_ident(h, &id);
                return NK_NONE;
        case NK_EXTPID:
                pid_ident(t, &id);
                ih_ident(h, &id);
                return NK_NONE;
        case NK_EXTPORT:
                port_ident(t, &id);
                ih_ident(h, &id);
                return NK_NONE;
        case NK_FUN: {
                const struct nk_fun *f = (const struct nk_fun *) b;
                struct fun_info fi;
                if (parse_fun(f, &fi) < 0) {
                        ih_bytes(h, f->etf, f->h.n);
                        return NK_NONE;
                }
                ih_bytes(h, (const uint8_t *) fi.module, fi.module_len);
                ih_bytes(h, (const uint8_t *) fi.function, fi.function_len);
                ih_mix(h, fi.arity);
                ih_mix(h, (uint64_t) fi.old_index);
                ih_mix(h, (uint64_t) fi.old_uniq);
                ih_mix(h, fi.num_free);
                /* Free variables by their bytes: BEAM encodes a term the
                 * same way every time, so identical funs carry identical
                 * bytes here. */
                ih_bytes(h, fi.env, fi.env_len);
                return NK_NONE;
        }
        }
        return NK_NONE;
}

uint64_t nk_internal_hash(ERL_NIF_TERM t, uint64_t salt)
{
        struct ih_frame initial[32];
        struct wstack st;
        uint64_t h = fmix64(salt ^ UINT64_C(0x6e6b696e74687368));

        wstack_init(&st, initial, sizeof(initial) / sizeof(initial[0]), sizeof(initial[0]));
        for (;;) {
                while (t != NK_NONE)
                        t = ih_step(&h, &st, t);
                struct ih_frame *f = wstack_top(&st);
                if (!f)
                        break;
                t = *f->p++;
                if (--f->n == 0)
                        st.n--;
        }
        wstack_free(&st);
        return fmix64(h);
}
