/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Envs (term arenas), binary objects and the constructors every part of the
 * host shares. See term.h for the representation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "term.h"

/* ---- arena ------------------------------------------------------------------ */

#define CHUNK_MIN 4096

struct nk_arena_chunk {
        struct nk_arena_chunk *next;
        size_t size;                    /* usable bytes after the header */
        _Alignas(16) char mem[];
};

void nk_env_init(ErlNifEnv *env)
{
        memset(env, 0, sizeof(*env));
        env->exception = NK_NONE;
}

void *nk_env_alloc(ErlNifEnv *env, size_t size)
{
        size = (size + 7) & ~(size_t) 7;
        if (size == 0)
                size = 8;
        if ((size_t) (env->end - env->cur) < size || !env->cur) {
                /* Each chunk at least doubles the previous one up to 1 MiB,
                 * so a call that builds a large result makes few mallocs. */
                size_t want = env->chunks ? env->chunks->size * 2 : CHUNK_MIN;
                if (want > (1u << 20))
                        want = 1u << 20;
                if (want < size)
                        want = size;
                if (want > SIZE_MAX - sizeof(struct nk_arena_chunk))
                        return NULL;
                struct nk_arena_chunk *c = malloc(sizeof(*c) + want);
                if (!c)
                        return NULL;
                c->size = want;
                c->next = env->chunks;
                env->chunks = c;
                env->cur = c->mem;
                env->end = c->mem + want;
        }
        void *p = env->cur;
        env->cur += size;
        return p;
}

static int grow(void **arr, size_t *cap, size_t elem)
{
        size_t n = *cap ? *cap * 2 : 8;
        void *p = realloc(*arr, n * elem);
        if (!p)
                return -ENOMEM;
        *arr = p;
        *cap = n;
        return 0;
}

int nk_env_hold_bin(ErlNifEnv *env, struct nk_binobj *obj)
{
        if (env->nbins == env->capbins && grow((void **) &env->bins, &env->capbins, sizeof(*env->bins)) < 0)
                return -ENOMEM;
        env->bins[env->nbins++] = obj;
        return 0;
}

int nk_env_hold_res(ErlNifEnv *env, struct nk_resource *res)
{
        if (env->nress == env->capress && grow((void **) &env->ress, &env->capress, sizeof(*env->ress)) < 0)
                return -ENOMEM;
        env->ress[env->nress++] = res;
        return 0;
}

void nk_env_reset(ErlNifEnv *env)
{
        /* Resource destructors may build terms in an env of their own, never
         * in this one, so releasing while this env is half-reset is safe. */
        for (size_t i = 0; i < env->nbins; i++)
                nk_binobj_release(env->bins[i]);
        for (size_t i = 0; i < env->nress; i++)
                nk_resource_release(env->ress[i]);
        env->nbins = env->nress = 0;

        /* Keep the newest chunk if it is a small one: calls reuse envs, and
         * most of them fit in one chunk. */
        struct nk_arena_chunk *keep = NULL, *c = env->chunks;
        if (c && c->size <= CHUNK_MIN * 4) {
                keep = c;
                c = c->next;
                keep->next = NULL;
        }
        while (c) {
                struct nk_arena_chunk *next = c->next;
                free(c);
                c = next;
        }
        env->chunks = keep;
        env->cur = keep ? keep->mem : NULL;
        env->end = keep ? keep->mem + keep->size : NULL;
        env->exception = NK_NONE;
        env->timeslice = 0;
        env->resched_fp = NULL;
        env->resched_argc = 0;
        env->resched_argv = NULL;
}

void nk_env_destroy(ErlNifEnv *env)
{
        nk_env_reset(env);
        struct nk_arena_chunk *c = env->chunks;
        while (c) {
                struct nk_arena_chunk *next = c->next;
                free(c);
                c = next;
        }
        free(env->bins);
        free(env->ress);
        nk_env_init(env);
}

/* ---- binary objects ----------------------------------------------------- */

struct nk_binobj *nk_binobj_new(size_t size)
{
        struct nk_binobj *o = malloc(sizeof(*o));
        if (!o)
                return NULL;
        /* malloc(0) may return NULL; a binary of 0 bytes still needs a
         * non-NULL data pointer for callers that memcpy from it. */
        o->data = malloc(size ? size : 1);
        if (!o->data) {
                free(o);
                return NULL;
        }
        atomic_init(&o->refc, 1);
        o->size = size;
        o->release_fn = NULL;
        o->release_arg = NULL;
        return o;
}

struct nk_binobj *nk_binobj_external(void *data, size_t size, void (*release_fn)(void *), void *arg)
{
        struct nk_binobj *o = malloc(sizeof(*o));
        if (!o)
                return NULL;
        atomic_init(&o->refc, 1);
        o->size = size;
        o->data = data;
        o->release_fn = release_fn;
        o->release_arg = arg;
        return o;
}

void nk_binobj_keep(struct nk_binobj *obj)
{
        atomic_fetch_add_explicit(&obj->refc, 1, memory_order_relaxed);
}

void nk_binobj_release(struct nk_binobj *obj)
{
        if (!obj)
                return;
        if (atomic_fetch_sub_explicit(&obj->refc, 1, memory_order_acq_rel) != 1)
                return;
        if (obj->release_fn)
                obj->release_fn(obj->release_arg);
        else
                free(obj->data);
        free(obj);
}

/* ---- constructors ----------------------------------------------------------- */

static void *new_box(ErlNifEnv *env, size_t size, enum nk_box_kind kind, uint32_t n)
{
        struct nk_box *b = nk_env_alloc(env, size);
        if (!b)
                return NULL;
        b->kind = (uint32_t) kind;
        b->n = n;
        return b;
}

ERL_NIF_TERM nk_make_big(ErlNifEnv *env, bool negative, const uint8_t *digits, size_t n)
{
        while (n > 0 && digits[n - 1] == 0)
                n--;
        if (n <= 8) {
                uint64_t mag = 0;
                for (size_t i = n; i-- > 0;)
                        mag = mag << 8 | digits[i];
                if (!negative && mag <= (uint64_t) NK_SMALL_MAX)
                        return nk_make_small((int64_t) mag);
                if (negative && mag <= (uint64_t) NK_SMALL_MAX + 1)
                        return nk_make_small(-(int64_t) (mag - 1) - 1);
        }
        if (n > UINT32_MAX)
                return NK_NONE;
        struct nk_big *b = new_box(env, sizeof(*b) + n, NK_BIG, (uint32_t) n);
        if (!b)
                return NK_NONE;
        b->sign = negative;
        memcpy(b->digits, digits, n);
        return nk_box_term(b);
}

ERL_NIF_TERM nk_make_uint64(ErlNifEnv *env, uint64_t v)
{
        if (v <= (uint64_t) NK_SMALL_MAX)
                return nk_make_small((int64_t) v);
        uint8_t d[8];
        for (int i = 0; i < 8; i++)
                d[i] = (uint8_t) (v >> (8 * i));
        return nk_make_big(env, false, d, 8);
}

ERL_NIF_TERM nk_make_int64(ErlNifEnv *env, int64_t v)
{
        if (v >= NK_SMALL_MIN && v <= NK_SMALL_MAX)
                return nk_make_small(v);
        /* magnitude without overflow for INT64_MIN */
        uint64_t mag = v < 0 ? (uint64_t) (-(v + 1)) + 1 : (uint64_t) v;
        uint8_t d[8];
        for (int i = 0; i < 8; i++)
                d[i] = (uint8_t) (mag >> (8 * i));
        return nk_make_big(env, v < 0, d, 8);
}

bool nk_is_integer(ERL_NIF_TERM t)
{
        return nk_is_small(t) || nk_is_kind(t, NK_BIG);
}

bool nk_get_uint64(ERL_NIF_TERM t, uint64_t *ret)
{
        if (nk_is_small(t)) {
                if (nk_small_value(t) < 0)
                        return false;
                *ret = (uint64_t) nk_small_value(t);
                return true;
        }
        if (!nk_is_kind(t, NK_BIG))
                return false;
        const struct nk_big *b = (const struct nk_big *) nk_box_of(t);
        if (b->sign || b->h.n > 8)
                return false;
        uint64_t mag = 0;
        for (size_t i = b->h.n; i-- > 0;)
                mag = mag << 8 | b->digits[i];
        *ret = mag;
        return true;
}

bool nk_get_int64(ERL_NIF_TERM t, int64_t *ret)
{
        if (nk_is_small(t)) {
                *ret = nk_small_value(t);
                return true;
        }
        if (!nk_is_kind(t, NK_BIG))
                return false;
        const struct nk_big *b = (const struct nk_big *) nk_box_of(t);
        if (b->h.n > 8)
                return false;
        uint64_t mag = 0;
        for (size_t i = b->h.n; i-- > 0;)
                mag = mag << 8 | b->digits[i];
        if (!b->sign) {
                if (mag > (uint64_t) INT64_MAX)
                        return false;
                *ret = (int64_t) mag;
        } else {
                if (mag > (uint64_t) INT64_MAX + 1)
                        return false;
                *ret = mag == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) mag;
        }
        return true;
}

ERL_NIF_TERM nk_make_float(ErlNifEnv *env, double d)
{
        struct nk_float *f = new_box(env, sizeof(*f), NK_FLOAT, 0);
        if (!f)
                return NK_NONE;
        f->value = d;
        return nk_box_term(f);
}

ERL_NIF_TERM nk_make_tuple_n(ErlNifEnv *env, size_t arity, const ERL_NIF_TERM *elems)
{
        if (arity > UINT32_MAX || arity > (SIZE_MAX - sizeof(struct nk_tuple)) / sizeof(ERL_NIF_TERM))
                return NK_NONE;
        struct nk_tuple *t = new_box(env, sizeof(*t) + arity * sizeof(ERL_NIF_TERM), NK_TUPLE,
                                     (uint32_t) arity);
        if (!t)
                return NK_NONE;
        if (elems && arity)
                memcpy(t->elems, elems, arity * sizeof(ERL_NIF_TERM));
        else if (arity)
                memset(t->elems, 0, arity * sizeof(ERL_NIF_TERM));
        return nk_box_term(t);
}

ERL_NIF_TERM nk_make_cons(ErlNifEnv *env, ERL_NIF_TERM head, ERL_NIF_TERM tail)
{
        struct nk_cons *c = new_box(env, sizeof(*c), NK_CONS, 0);
        if (!c)
                return NK_NONE;
        c->head = head;
        c->tail = tail;
        return nk_box_term(c);
}

ERL_NIF_TERM nk_make_binary_of(ErlNifEnv *env, struct nk_binobj *obj, size_t off, size_t size,
                               uint8_t bits)
{
        struct nk_binary *b = new_box(env, sizeof(*b), NK_BINARY, 0);
        if (!b)
                return NK_NONE;
        if (nk_env_hold_bin(env, obj) < 0)
                return NK_NONE;
        nk_binobj_keep(obj);
        b->obj = obj;
        b->data = obj->data + off;
        b->size = size;
        b->bits = bits;
        return nk_box_term(b);
}

ERL_NIF_TERM nk_make_binary_copy(ErlNifEnv *env, const void *data, size_t size)
{
        struct nk_binobj *obj = nk_binobj_new(size);
        if (!obj)
                return NK_NONE;
        if (data && size)
                memcpy(obj->data, data, size);
        else if (size)
                memset(obj->data, 0, size);
        ERL_NIF_TERM t = nk_make_binary_of(env, obj, 0, size, 0);
        nk_binobj_release(obj);         /* the env holds its own reference */
        return t;
}

/* qsort over {key, original position} records: by key, ties by position,
 * which makes the sort stable. */
static int cmp2(const void *a, const void *b)
{
        const ERL_NIF_TERM *pa = a, *pb = b;
        int c = nk_map_key_cmp(pa[0], pb[0]);
        if (c)
                return c;
        return pa[1] < pb[1] ? -1 : pa[1] > pb[1];
}

ERL_NIF_TERM nk_make_map(ErlNifEnv *env, size_t n, const ERL_NIF_TERM *keys,
                         const ERL_NIF_TERM *vals, bool dup_is_error)
{
        if (n > UINT32_MAX || n > SIZE_MAX / (4 * sizeof(ERL_NIF_TERM)))
                return NK_NONE;
        struct nk_map *m = new_box(env, sizeof(*m), NK_MAP, 0);
        if (!m)
                return NK_NONE;
        m->iter_order = NULL;
        m->keys = nk_env_alloc(env, (n ? n : 1) * sizeof(ERL_NIF_TERM));
        m->vals = nk_env_alloc(env, (n ? n : 1) * sizeof(ERL_NIF_TERM));
        if (!m->keys || !m->vals)
                return NK_NONE;
        if (n == 0)
                return nk_box_term(m);

        /* Sort (key, original position) pairs so that the last of equal keys
         * can win, as in maps:from_list/1. */
        ERL_NIF_TERM *pairs = malloc(n * 2 * sizeof(ERL_NIF_TERM));
        if (!pairs)
                return NK_NONE;
        for (size_t i = 0; i < n; i++) {
                pairs[2 * i] = keys[i];
                pairs[2 * i + 1] = (ERL_NIF_TERM) i;
        }
        qsort(pairs, n, 2 * sizeof(ERL_NIF_TERM), cmp2);
        size_t out = 0;
        for (size_t i = 0; i < n; i++) {
                ERL_NIF_TERM k = pairs[2 * i];
                size_t pos = (size_t) pairs[2 * i + 1];
                if (out > 0 && nk_map_key_cmp(m->keys[out - 1], k) == 0) {
                        if (dup_is_error) {
                                free(pairs);
                                return NK_NONE;
                        }
                        m->vals[out - 1] = vals[pos];   /* later position wins */
                        continue;
                }
                m->keys[out] = k;
                m->vals[out] = vals[pos];
                out++;
        }
        free(pairs);
        m->h.n = (uint32_t) out;
        return nk_box_term(m);
}

ERL_NIF_TERM nk_make_resource_term(ErlNifEnv *env, struct nk_resource *res)
{
        struct nk_resource_term *r = new_box(env, sizeof(*r), NK_RESOURCE, 0);
        if (!r)
                return NK_NONE;
        if (nk_env_hold_res(env, res) < 0)
                return NK_NONE;
        nk_resource_keep(res);
        r->res = res;
        return nk_box_term(r);
}

/* ---- deep copy ---------------------------------------------------------- */

/*
 * Copies with an explicit work list instead of recursion: terms from a
 * runtime or a NIF may nest deeper than a thread stack allows.
 */
struct copy_item {
        ERL_NIF_TERM src;
        ERL_NIF_TERM *dst;
};

static ERL_NIF_TERM copy_box(ErlNifEnv *dst, ERL_NIF_TERM t, struct copy_item **stack, size_t *sp,
                             size_t *cap)
{
        const struct nk_box *h = nk_box_of(t);

#define PUSH(s, d)                                                                               \
        do {                                                                                     \
                if (*sp == *cap) {                                                               \
                        size_t nc = *cap ? *cap * 2 : 64;                                        \
                        struct copy_item *ns = realloc(*stack, nc * sizeof(**stack));            \
                        if (!ns)                                                                 \
                                return NK_NONE;                                                  \
                        *stack = ns;                                                             \
                        *cap = nc;                                                               \
                }                                                                                \
                (*stack)[(*sp)++] = (struct copy_item) { (s), (d) };                             \
        } while (0)

        switch ((enum nk_box_kind) h->kind) {
        case NK_BIG: {
                const struct nk_big *b = (const struct nk_big *) h;
                struct nk_big *c = new_box(dst, sizeof(*c) + h->n, NK_BIG, h->n);
                if (!c)
                        return NK_NONE;
                c->sign = b->sign;
                memcpy(c->digits, b->digits, h->n);
                return nk_box_term(c);
        }
        case NK_FLOAT:
                return nk_make_float(dst, ((const struct nk_float *) h)->value);
        case NK_TUPLE: {
                const struct nk_tuple *s = (const struct nk_tuple *) h;
                ERL_NIF_TERM r = nk_make_tuple_n(dst, h->n, NULL);
                if (r == NK_NONE)
                        return NK_NONE;
                struct nk_tuple *c = (struct nk_tuple *) nk_box_of(r);
                for (uint32_t i = 0; i < h->n; i++)
                        PUSH(s->elems[i], &c->elems[i]);
                return r;
        }
        case NK_CONS: {
                const struct nk_cons *s = (const struct nk_cons *) h;
                ERL_NIF_TERM r = nk_make_cons(dst, NK_NIL, NK_NIL);
                if (r == NK_NONE)
                        return NK_NONE;
                struct nk_cons *c = (struct nk_cons *) nk_box_of(r);
                PUSH(s->tail, &c->tail);
                PUSH(s->head, &c->head);
                return r;
        }
        case NK_MAP: {
                const struct nk_map *s = (const struct nk_map *) h;
                struct nk_map *c = new_box(dst, sizeof(*c), NK_MAP, h->n);
                if (!c)
                        return NK_NONE;
                size_t n = h->n ? h->n : 1;
                c->keys = nk_env_alloc(dst, n * sizeof(ERL_NIF_TERM));
                c->vals = nk_env_alloc(dst, n * sizeof(ERL_NIF_TERM));
                c->iter_order = NULL;
                if (!c->keys || !c->vals)
                        return NK_NONE;
                if (s->iter_order) {
                        c->iter_order = nk_env_alloc(dst, n * sizeof(uint32_t));
                        if (!c->iter_order)
                                return NK_NONE;
                        memcpy(c->iter_order, s->iter_order, h->n * sizeof(uint32_t));
                }
                for (uint32_t i = 0; i < h->n; i++) {
                        PUSH(s->keys[i], &c->keys[i]);
                        PUSH(s->vals[i], &c->vals[i]);
                }
                return nk_box_term(c);
        }
        case NK_BINARY: {
                const struct nk_binary *s = (const struct nk_binary *) h;
                return nk_make_binary_of(dst, s->obj, (size_t) (s->data - s->obj->data), s->size, s->bits);
        }
        case NK_REF: {
                const struct nk_ref *s = (const struct nk_ref *) h;
                struct nk_ref *c = new_box(dst, sizeof(*c), NK_REF, h->n);
                if (!c)
                        return NK_NONE;
                c->node = s->node;
                c->creation = s->creation;
                memcpy(c->ids, s->ids, sizeof(c->ids));
                return nk_box_term(c);
        }
        case NK_RESOURCE:
                return nk_make_resource_term(dst, ((const struct nk_resource_term *) h)->res);
        case NK_EXTPID:
        case NK_EXTPORT: {
                const struct nk_extpid *s = (const struct nk_extpid *) h;
                struct nk_extpid *c = new_box(dst, sizeof(*c), (enum nk_box_kind) h->kind, 0);
                if (!c)
                        return NK_NONE;
                c->node = s->node;
                c->id = s->id;
                c->creation = s->creation;
                return nk_box_term(c);
        }
        case NK_FUN: {
                struct nk_fun *c = new_box(dst, sizeof(*c) + h->n, NK_FUN, h->n);
                if (!c)
                        return NK_NONE;
                memcpy(c->etf, ((const struct nk_fun *) h)->etf, h->n);
                return nk_box_term(c);
        }
        }
#undef PUSH
        return NK_NONE;
}

ERL_NIF_TERM nk_copy_term(ErlNifEnv *dst, ERL_NIF_TERM t)
{
        ERL_NIF_TERM result = NK_NONE;
        struct copy_item *stack = NULL;
        size_t sp = 0, cap = 0;
        bool failed = false;

        struct copy_item first = { t, &result };
        struct copy_item cur = first;
        for (;;) {
                if (nk_is_box(cur.src)) {
                        ERL_NIF_TERM c = copy_box(dst, cur.src, &stack, &sp, &cap);
                        if (c == NK_NONE) {
                                failed = true;
                                break;
                        }
                        *cur.dst = c;
                } else {
                        *cur.dst = cur.src;
                }
                if (sp == 0)
                        break;
                cur = stack[--sp];
        }
        free(stack);
        return failed ? NK_NONE : result;
}
