/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host resources as BEAM resources.
 *
 * The host sends a resource as a reference of the reserved node
 * 'nifkit_resource@nohost' carrying its handle (hosts/etf.h). Here each
 * handle becomes an object of the proxy's own resource type
 * "nifkit_handle" holding {generation, handle}, so that BEAM's garbage
 * collector tells us when the last term referring to it dies: the
 * destructor sends a counted RELEASE (protocol.h) and the host drops its
 * reference once every copy it sent is accounted for.
 *
 * Identity: the same host object must give =:= terms, so the same handle
 * must give the same BEAM object while it lives. A table maps handle →
 * object without holding a reference (a strong one would keep every object
 * forever); the destructor removes the entry. Between BEAM dropping the
 * count to zero and the destructor taking the table's lock, a lookup could
 * find an object already doomed, and enif_keep_resource cannot refuse. So
 * a lookup only takes an object whose count it can raise from a non-zero
 * value (compare-and-swap on BEAM's reference count, whose place next to
 * the object is measured at load: see calibrate()); a doomed object is
 * replaced by a new one for the same handle, and both RELEASEs count. Where
 * the measurement fails, every result gets new objects: lifetimes stay
 * right, only =:= across calls is lost, and load says so.
 *
 * Arguments: enif_term_to_binary would encode a proxy resource as BEAM's own
 * reference, which the host does not know. When the arguments hold one,
 * they are encoded here: containers (tuples, lists, maps) by this code,
 * proxy resources as the host's reference, and every other term by
 * enif_term_to_binary. A resource of an older generation (the host
 * restarted since) raises error:{nifkit, stale_resource, Message}.
 *
 * Every walk here keeps its pending terms in a heap array, never on the C
 * stack: a term nested a million deep costs memory, as it does in BEAM, and
 * cannot overflow a scheduler's stack.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

#define RESOURCE_NODE "nifkit_resource@nohost"
enum { ATOM_EXT = 100, SMALL_ATOM_EXT = 115, ATOM_UTF8_EXT = 118, SMALL_ATOM_UTF8_EXT = 119,
       NEWER_REFERENCE_EXT = 90, SMALL_TUPLE_EXT = 104, LARGE_TUPLE_EXT = 105, NIL_EXT = 106,
       LIST_EXT = 108, MAP_EXT = 116 };

struct pres {
        uint64_t handle;        /* 0: the calibration object */
        unsigned gen;
        uint64_t seen;          /* copies received, under T.lock */
        bool in_table;
        struct pres *next;      /* bucket chain, under T.lock */
};

static struct {
        pthread_mutex_t lock;
        struct pres **buckets;
        size_t nbuckets, n;
} T = { .lock = PTHREAD_MUTEX_INITIALIZER };

static ErlNifResourceType *handle_type;
/* The types of earlier loads of this copy: purging a module orphans its
 * resource types, and a new load makes a new one, so objects of an earlier
 * load are recognised (as stale) only through these. Only compared, never
 * dereferenced: an orphaned type is freed with its last object. */
#define MAX_OLD_TYPES 16
static ErlNifResourceType *old_types[MAX_OLD_TYPES];
static unsigned nold;
/* Proxy resources alive, of any load: while there is none, arguments need
 * no walk. */
static atomic_long live_objects;
/* Bytes from an object's data back to BEAM's reference count; 0: unknown. */
static size_t refc_offset;

/* ---- the table ----------------------------------------------------------- */

static size_t bucket(uint64_t h, size_t n)
{
        h ^= h >> 31;
        h *= UINT64_C(0x9e3779b97f4a7c15);
        return (size_t) (h >> 32) & (n - 1);
}

static struct pres *table_find(uint64_t handle)
{
        if (!T.nbuckets)
                return NULL;
        for (struct pres *o = T.buckets[bucket(handle, T.nbuckets)]; o; o = o->next)
                if (o->handle == handle)
                        return o;
        return NULL;
}

static void table_remove(struct pres *o)
{
        for (struct pres **pp = &T.buckets[bucket(o->handle, T.nbuckets)]; *pp; pp = &(*pp)->next)
                if (*pp == o) {
                        *pp = o->next;
                        T.n--;
                        break;
                }
        o->in_table = false;
        o->next = NULL;
}

/* Call with T.lock. Returns false (object not tracked) without memory. */
static bool table_add(struct pres *o)
{
        if (T.n >= T.nbuckets) {
                size_t n = T.nbuckets ? 2 * T.nbuckets : 256;
                struct pres **b = calloc(n, sizeof *b);
                if (!b)
                        return false;
                for (size_t i = 0; i < T.nbuckets; i++)
                        for (struct pres *x = T.buckets[i], *next; x; x = next) {
                                next = x->next;
                                x->next = b[bucket(x->handle, n)];
                                b[bucket(x->handle, n)] = x;
                        }
                free(T.buckets);
                T.buckets = b;
                T.nbuckets = n;
        }
        size_t k = bucket(o->handle, T.nbuckets);
        o->next = T.buckets[k];
        T.buckets[k] = o;
        o->in_table = true;
        T.n++;
        return true;
}

void res_forget_all(void)
{
        pthread_mutex_lock(&T.lock);
        for (size_t i = 0; i < T.nbuckets; i++) {
                for (struct pres *x = T.buckets[i], *next; x; x = next) {
                        next = x->next;
                        x->in_table = false;
                        x->next = NULL;
                }
                T.buckets[i] = NULL;
        }
        T.n = 0;
        pthread_mutex_unlock(&T.lock);
}

/* ---- BEAM's reference count ------------------------------------------------ */

static _Atomic long *refc_of(struct pres *o)
{
        return (_Atomic long *) ((uintptr_t) o - refc_offset);
}

/* enif_keep_resource, unless the count already reached zero. */
static bool try_keep(struct pres *o)
{
        if (!refc_offset)
                return false;
        _Atomic long *c = refc_of(o);
        long v = atomic_load(c);
        while (v > 0)
                if (atomic_compare_exchange_weak(c, &v, v + 1))
                        return true;
        return false;
}

/*
 * Finds the word before a fresh object that follows enif_keep_resource and
 * enif_release_resource exactly (1, 2, 3, 2, 1), and accepts it only if it
 * is the one word that does. The object lives in one allocation with BEAM's
 * header in front, so the words read are BEAM's own.
 */
static void calibrate(void)
{
        struct pres *o = enif_alloc_resource(handle_type, sizeof *o);
        size_t found = 0;
        unsigned hits = 0;

        if (!o)
                return;
        memset(o, 0, sizeof *o);
        for (size_t off = sizeof(long); off <= 96; off += sizeof(long)) {
                volatile long *w = (volatile long *) ((uintptr_t) o - off);
                if (*w != 1)
                        continue;
                enif_keep_resource(o);
                bool two = *w == 2;
                enif_keep_resource(o);
                bool three = *w == 3;
                enif_release_resource(o);
                bool back = *w == 2;
                enif_release_resource(o);
                if (two && three && back && *w == 1) {
                        found = off;
                        hits++;
                }
        }
        refc_offset = hits == 1 ? found : 0;
        enif_release_resource(o);
}

/* ---- lifetime ----------------------------------------------------------- */

static void handle_dtor(ErlNifEnv *env, void *obj)
{
        struct pres *o = obj;

        if (o->handle == 0)
                return;
        atomic_fetch_sub(&live_objects, 1);
        pthread_mutex_lock(&T.lock);
        if (o->in_table)
                table_remove(o);
        uint64_t seen = o->seen;
        pthread_mutex_unlock(&T.lock);

        /* A handle of an older generation died with its host. */
        struct gen *g = gen_get();
        if (g && g->number == o->gen)
                (void) nk_host_release_resource_counted(g->host, o->handle, seen);
        if (g)
                gen_put(g);
}

int res_init(ErlNifEnv *env)
{
        ErlNifResourceFlags tried;
        ErlNifResourceType *t = enif_open_resource_type(env, NULL, "nifkit_handle", handle_dtor,
                                                        ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, &tried);
        if (!t)
                return -1;
        if (handle_type && handle_type != t) {
                /* The oldest is forgotten: its objects then reach the host as
                 * plain references, which it refuses. */
                if (nold == MAX_OLD_TYPES)
                        memmove(old_types, old_types + 1, (MAX_OLD_TYPES - 1) * sizeof *old_types);
                old_types[nold < MAX_OLD_TYPES ? nold++ : MAX_OLD_TYPES - 1] = handle_type;
        }
        handle_type = t;
        calibrate();
        if (!refc_offset)
                fprintf(stderr, "nifkit proxy: cannot find BEAM's resource reference count; resources "
                                "from the host get a new term on every call (=:= across calls is lost)\n");
        return 0;
}

/* The proxy resource for handle of g: the live one, or a new one. */
static ERL_NIF_TERM import_handle(ErlNifEnv *env, const struct gen *g, uint64_t handle)
{
        pthread_mutex_lock(&T.lock);
        struct pres *o = table_find(handle);
        if (o && o->gen == g->number && try_keep(o)) {
                o->seen++;
                pthread_mutex_unlock(&T.lock);
        } else {
                if (o)
                        table_remove(o);        /* doomed: its destructor still releases what it saw */
                o = enif_alloc_resource(handle_type, sizeof *o);
                if (!o) {
                        pthread_mutex_unlock(&T.lock);
                        return enif_make_badarg(env);
                }
                *o = (struct pres) { .handle = handle, .gen = g->number, .seen = 1 };
                atomic_fetch_add(&live_objects, 1);
                if (refc_offset)
                        (void) table_add(o);
                pthread_mutex_unlock(&T.lock);
        }
        ERL_NIF_TERM t = enif_make_resource(env, o);
        enif_release_resource(o);
        return t;
}

/* ---- results: host references → proxy resources ------------------------ */

bool res_etf_has_handles(const uint8_t *etf, size_t len)
{
        return memmem(etf, len, RESOURCE_NODE, sizeof RESOURCE_NODE - 1) != NULL;
}

static uint32_t be32(const uint8_t *p)
{
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* Whether ref is a host handle reference; its handle in *ret. */
static bool host_ref(ErlNifEnv *env, ERL_NIF_TERM ref, uint64_t *ret)
{
        ErlNifBinary b;
        bool ok = false;

        if (!enif_term_to_binary(env, ref, &b))
                return false;
        const uint8_t *p = b.data, *end = b.data + b.size;
        const size_t nl = sizeof RESOURCE_NODE - 1;
        if (b.size < 5 || p[0] != 131 || p[1] != NEWER_REFERENCE_EXT || p[2] != 0 || p[3] != 3)
                goto out;
        p += 4;
        if ((p[0] == ATOM_EXT || p[0] == ATOM_UTF8_EXT) && end - p >= 3 && p[1] == 0 && p[2] == nl)
                p += 3;
        else if ((p[0] == SMALL_ATOM_EXT || p[0] == SMALL_ATOM_UTF8_EXT) && end - p >= 2 && p[1] == nl)
                p += 2;
        else
                goto out;
        if ((size_t) (end - p) != nl + 4 + 12 || memcmp(p, RESOURCE_NODE, nl) != 0)
                goto out;
        p += nl + 4;
        *ret = be32(p) | (uint64_t) be32(p + 4) << 32;
        ok = be32(p + 8) == 0 && *ret != 0;
out:
        enif_release_binary(&b);
        return ok;
}

/* ---- walks ------------------------------------------------------------------ */

/* A growable array of terms, the walks' explicit stack. */
struct tvec {
        ERL_NIF_TERM *v;
        size_t n, cap;
};

static bool tvec_reserve(struct tvec *s, size_t more)
{
        if (s->cap - s->n >= more)
                return true;
        size_t cap = s->cap ? s->cap : 64;
        while (cap - s->n < more)
                cap *= 2;
        ERL_NIF_TERM *v = enif_realloc(s->v, cap * sizeof *v);
        if (!v)
                return false;
        s->v = v;
        s->cap = cap;
        return true;
}

static bool tvec_push(struct tvec *s, ERL_NIF_TERM t)
{
        if (!tvec_reserve(s, 1))
                return false;
        s->v[s->n++] = t;
        return true;
}

static void tvec_reverse(struct tvec *s, size_t from)
{
        for (size_t i = from, j = s->n; i + 1 < j; i++, j--) {
                ERL_NIF_TERM x = s->v[i];
                s->v[i] = s->v[j - 1];
                s->v[j - 1] = x;
        }
}

static void tvec_free(struct tvec *s)
{
        enif_free(s->v);
        *s = (struct tvec) {};
}

/* Pushes the direct subterms of t in order: tuple elements; a list's heads
 * then its tail unless []; a map's keys and values, pair by pair. A term
 * without subterms pushes nothing. false without memory. */
static bool push_children(ErlNifEnv *env, struct tvec *s, ERL_NIF_TERM t)
{
        const ERL_NIF_TERM *el;
        int arity;

        switch (enif_term_type(env, t)) {
        case ERL_NIF_TERM_TYPE_TUPLE:
                if (!enif_get_tuple(env, t, &arity, &el) || !tvec_reserve(s, (size_t) arity))
                        return false;
                memcpy(s->v + s->n, el, (size_t) arity * sizeof *el);
                s->n += (size_t) arity;
                return true;
        case ERL_NIF_TERM_TYPE_LIST: {
                ERL_NIF_TERM head;
                while (enif_get_list_cell(env, t, &head, &t))
                        if (!tvec_push(s, head))
                                return false;
                return enif_is_empty_list(env, t) || tvec_push(s, t);
        }
        case ERL_NIF_TERM_TYPE_MAP: {
                ErlNifMapIterator it;
                ERL_NIF_TERM k, v;
                bool ok = true;
                if (!enif_map_iterator_create(env, t, &it, ERL_NIF_MAP_ITERATOR_FIRST))
                        return true;
                while (ok && enif_map_iterator_get_pair(env, &it, &k, &v)) {
                        ok = tvec_push(s, k) && tvec_push(s, v);
                        enif_map_iterator_next(env, &it);
                }
                enif_map_iterator_destroy(env, &it);
                return ok;
        }
        default:
                return true;
        }
}

static bool is_container(ErlNifEnv *env, ERL_NIF_TERM t)
{
        switch (enif_term_type(env, t)) {
        case ERL_NIF_TERM_TYPE_TUPLE:
        case ERL_NIF_TERM_TYPE_LIST:
        case ERL_NIF_TERM_TYPE_MAP:
                return !enif_is_empty_list(env, t);
        default:
                return false;
        }
}

/* ---- results: host references → proxy resources, continued ---------------- */

/*
 * One container being rebuilt: its subterms are kids.v[first ..
 * first + n), replaced in place by their imports as they finish; done
 * counts the finished ones.
 */
struct iframe {
        ERL_NIF_TERM orig;
        size_t first, n, done;
        bool changed;
};

static ERL_NIF_TERM rebuild(ErlNifEnv *env, const struct iframe *f, ERL_NIF_TERM *kids)
{
        if (!f->changed)
                return f->orig;
        switch (enif_term_type(env, f->orig)) {
        case ERL_NIF_TERM_TYPE_TUPLE:
                return enif_make_tuple_from_array(env, kids, (unsigned) f->n);
        case ERL_NIF_TERM_TYPE_LIST: {
                /* The heads, then the tail if the list is improper. */
                ERL_NIF_TERM head, tail = f->orig, out;
                size_t heads = 0;
                while (enif_get_list_cell(env, tail, &head, &tail))
                        heads++;
                out = heads < f->n ? kids[heads] : enif_make_list(env, 0);
                for (size_t i = heads; i-- > 0;)
                        out = enif_make_list_cell(env, kids[i], out);
                return out;
        }
        case ERL_NIF_TERM_TYPE_MAP: {
                size_t pairs = f->n / 2;
                ERL_NIF_TERM *keys = enif_alloc((pairs ? 2 * pairs : 1) * sizeof *keys), out;
                if (!keys)
                        return enif_make_badarg(env);
                for (size_t i = 0; i < pairs; i++) {
                        keys[i] = kids[2 * i];
                        keys[pairs + i] = kids[2 * i + 1];
                }
                if (!enif_make_map_from_arrays(env, keys, keys + pairs, pairs, &out))
                        out = enif_make_badarg(env);
                enif_free(keys);
                return out;
        }
        default:
                return f->orig;
        }
}

/* t with every host handle reference replaced by its proxy resource; a
 * badarg term if memory runs out. Post-order over an explicit stack. */
static ERL_NIF_TERM import(ErlNifEnv *env, const struct gen *g, ERL_NIF_TERM root)
{
        struct tvec kids = {};
        struct iframe *frames = NULL;
        size_t depth = 0, cap = 0;
        ERL_NIF_TERM t = root, v;
        uint64_t handle;

        for (;;) {
                /* t: the next term to import. A leaf gives v at once. */
                if (enif_is_ref(env, t)) {
                        v = host_ref(env, t, &handle) ? import_handle(env, g, handle) : t;
                } else if (is_container(env, t)) {
                        if (depth == cap) {
                                size_t ncap = cap ? 2 * cap : 32;
                                struct iframe *nf = enif_realloc(frames, ncap * sizeof *nf);
                                if (!nf)
                                        goto nomem;
                                frames = nf;
                                cap = ncap;
                        }
                        struct iframe *f = &frames[depth++];
                        *f = (struct iframe) { .orig = t, .first = kids.n };
                        if (!push_children(env, &kids, t))
                                goto nomem;
                        f->n = kids.n - f->first;
                        if (f->n > 0) {
                                t = kids.v[f->first];
                                continue;
                        }
                        v = t;
                        depth--;
                } else {
                        v = t;
                }
                /* v finished: hand it to its container, and finish every
                 * container that it completes. */
                for (;;) {
                        if (depth == 0)
                                goto out;
                        struct iframe *f = &frames[depth - 1];
                        ERL_NIF_TERM *slot = &kids.v[f->first + f->done++];
                        f->changed |= v != *slot;
                        *slot = v;
                        if (f->done < f->n) {
                                t = kids.v[f->first + f->done];
                                break;
                        }
                        v = rebuild(env, f, kids.v + f->first);
                        kids.n = f->first;
                        depth--;
                }
        }
nomem:
        v = enif_make_badarg(env);
out:
        tvec_free(&kids);
        enif_free(frames);
        return v;
}

ERL_NIF_TERM res_import(ErlNifEnv *env, const struct gen *g, ERL_NIF_TERM t)
{
        return import(env, g, t);
}

/* ---- arguments: proxy resources → host references ----------------------- */

/* A proxy resource of this load or of an earlier one; generations only
 * grow, so an earlier load's objects are all older than this load's hosts. */
static bool get_handle(ErlNifEnv *env, ERL_NIF_TERM t, struct pres **ret_obj)
{
        void *obj;
        if (enif_get_resource(env, t, handle_type, &obj)) {
                *ret_obj = obj;
                return true;
        }
        for (unsigned i = 0; i < nold; i++)
                if (old_types[i] != handle_type && enif_get_resource(env, t, old_types[i], &obj)) {
                        *ret_obj = obj;
                        return true;
                }
        return false;
}

/* Whether any term in the arguments is a proxy resource (true also when
 * memory runs out: the careful encoder then runs and reports it). */
static bool has_handles(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct tvec s = {};
        struct pres *obj;
        bool found = false;

        for (int i = argc; i-- > 0;)
                if (!tvec_push(&s, argv[i])) {
                        found = true;
                        goto out;
                }
        while (!found && s.n > 0) {
                ERL_NIF_TERM t = s.v[--s.n];
                if (enif_is_ref(env, t))
                        found = get_handle(env, t, &obj);
                else if (!push_children(env, &s, t))
                        found = true;
        }
out:
        tvec_free(&s);
        return found;
}

struct enc {
        ErlNifEnv *env;
        const struct gen *g;
        ErlNifBinary bin;
        size_t len;
        unsigned stale;         /* generation of a stale resource met, or 0 */
};

static bool put(struct enc *e, const void *p, size_t n)
{
        if (e->len + n > e->bin.size) {
                size_t cap = e->bin.size * 2;
                while (cap < e->len + n)
                        cap *= 2;
                if (!enif_realloc_binary(&e->bin, cap))
                        return false;
        }
        memcpy(e->bin.data + e->len, p, n);
        e->len += n;
        return true;
}

static bool put_u8_u32(struct enc *e, uint8_t tag, uint32_t v)
{
        uint8_t b[5] = { tag, (uint8_t) (v >> 24), (uint8_t) (v >> 16), (uint8_t) (v >> 8), (uint8_t) v };
        return put(e, b, sizeof b);
}

static bool put_handle(struct enc *e, uint64_t handle)
{
        const size_t nl = sizeof RESOURCE_NODE - 1;
        uint8_t b[4 + 2 + sizeof RESOURCE_NODE + 16];
        size_t n = 0;
        b[n++] = NEWER_REFERENCE_EXT;
        b[n++] = 0;
        b[n++] = 3;
        b[n++] = SMALL_ATOM_UTF8_EXT;
        b[n++] = (uint8_t) nl;
        memcpy(b + n, RESOURCE_NODE, nl);
        n += nl;
        uint32_t words[4] = { 0, (uint32_t) handle, (uint32_t) (handle >> 32), 0 };   /* creation, ids */
        for (int i = 0; i < 4; i++) {
                b[n++] = (uint8_t) (words[i] >> 24);
                b[n++] = (uint8_t) (words[i] >> 16);
                b[n++] = (uint8_t) (words[i] >> 8);
                b[n++] = (uint8_t) words[i];
        }
        return put(e, b, n);
}

/* Any term without containers to look into: BEAM's own encoding. */
static bool put_leaf(struct enc *e, ERL_NIF_TERM t)
{
        ErlNifBinary b;
        if (!enif_term_to_binary(e->env, t, &b))
                return false;
        bool ok = put(e, b.data + 1, b.size - 1);
        enif_release_binary(&b);
        return ok;
}

/* The header of a container, and its subterms pushed so that they pop in
 * order. */
static bool encode_container(struct enc *e, struct tvec *s, ERL_NIF_TERM t)
{
        size_t from = s->n, n;
        int arity;
        const ERL_NIF_TERM *el;
        bool ok, nil = false;

        switch (enif_term_type(e->env, t)) {
        case ERL_NIF_TERM_TYPE_TUPLE:
                if (!enif_get_tuple(e->env, t, &arity, &el))
                        return false;
                if (arity < 256) {
                        uint8_t b[2] = { SMALL_TUPLE_EXT, (uint8_t) arity };
                        ok = put(e, b, 2);
                } else {
                        ok = put_u8_u32(e, LARGE_TUPLE_EXT, (uint32_t) arity);
                }
                break;
        case ERL_NIF_TERM_TYPE_LIST: {
                ERL_NIF_TERM head, tail = t;
                n = 0;
                while (enif_get_list_cell(e->env, tail, &head, &tail))
                        n++;
                if (n > UINT32_MAX)
                        return false;
                ok = put_u8_u32(e, LIST_EXT, (uint32_t) n);
                nil = enif_is_empty_list(e->env, tail);
                break;
        }
        case ERL_NIF_TERM_TYPE_MAP:
                ok = enif_get_map_size(e->env, t, &n) && n <= UINT32_MAX &&
                     put_u8_u32(e, MAP_EXT, (uint32_t) n);
                break;
        default:
                return false;
        }
        /* LIST_EXT always carries its tail, [] included. */
        if (!ok || !push_children(e->env, s, t) || (nil && !tvec_push(s, enif_make_list(e->env, 0))))
                return false;
        tvec_reverse(s, from);
        return true;
}

/* The arguments' list, in order, with proxy resources as host references. */
static bool encode(struct enc *e, ERL_NIF_TERM root)
{
        struct tvec s = {};
        struct pres *obj;
        bool ok = tvec_push(&s, root);

        while (ok && s.n > 0) {
                ERL_NIF_TERM t = s.v[--s.n];
                if (enif_is_ref(e->env, t) && get_handle(e->env, t, &obj)) {
                        if (obj->gen != e->g->number) {
                                e->stale = obj->gen;
                                ok = false;
                        } else {
                                ok = put_handle(e, obj->handle);
                        }
                } else if (is_container(e->env, t)) {
                        ok = encode_container(e, &s, t);
                } else {
                        ok = put_leaf(e, t);
                }
        }
        tvec_free(&s);
        return ok;
}

static ERL_NIF_TERM nifkit_error(ErlNifEnv *env, const char *kind, const char *msg)
{
        ERL_NIF_TERM bin;
        size_t n = strlen(msg);
        unsigned char *p = enif_make_new_binary(env, n, &bin);
        if (p)
                memcpy(p, msg, n);
        return enif_make_tuple3(env, enif_make_atom(env, "nifkit"), enif_make_atom(env, kind), bin);
}

bool res_args_have_handles(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        if (atomic_load(&live_objects) == 0)
                return false;
        return has_handles(env, argc, argv);
}

int res_encode_args(ErlNifEnv *env, const struct gen *g, int argc, const ERL_NIF_TERM argv[],
                    ErlNifBinary *bin, ERL_NIF_TERM *ret_exception)
{
        ERL_NIF_TERM list = enif_make_list_from_array(env, argv, (unsigned) argc);

        if (atomic_load(&live_objects) == 0 || !has_handles(env, argc, argv)) {
                if (enif_term_to_binary(env, list, bin))
                        return 1;
                *ret_exception = nifkit_error(env, "system", "cannot encode the arguments");
                return 0;
        }
        struct enc e = { .env = env, .g = g };
        if (!enif_alloc_binary(256, &e.bin)) {
                *ret_exception = nifkit_error(env, "system", "cannot encode the arguments: out of memory");
                return 0;
        }
        uint8_t version = 131;
        if (put(&e, &version, 1) && encode(&e, list) && enif_realloc_binary(&e.bin, e.len)) {
                *bin = e.bin;
                return 1;
        }
        enif_release_binary(&e.bin);
        if (e.stale) {
                char msg[96];
                snprintf(msg, sizeof msg, "resource of host generation %u used after restart", e.stale);
                *ret_exception = nifkit_error(env, "stale_resource", msg);
        } else {
                *ret_exception = nifkit_error(env, "system", "cannot encode the arguments");
        }
        return 0;
}
