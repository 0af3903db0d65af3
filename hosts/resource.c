/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resource types, resource lifetime and the handle table.
 *
 * Types are registered per (module, name), as BEAM does, and only while a
 * library's load/upgrade callback runs: nk_load_begin() opens a window on the
 * loader's thread, enif_open_resource_type* record what they would create or
 * take over, and nk_load_end() commits or undoes it all at once. Types live
 * as long as the host: the host never purges a library while it runs.
 *
 * A resource object is one allocation: struct nk_resource, then the user
 * data 16-byte aligned. Its reference count covers NIF keep/release, env
 * references (resource terms), resource binaries and the handle table; the
 * destructor runs once, on the thread that drops the last reference.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "host_internal.h"
#include "term.h"

/* ---- module registry: priv data and options ---------------------------- */

struct module_entry {
        struct module_entry *next;
        char *module;
        void *priv;
        bool has_options;
        struct nk_module_options options;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct module_entry *modules;            /* under reg_lock */
static struct nk_resource_type *types;          /* committed, under reg_lock */

/* Call with reg_lock held. */
static struct module_entry *module_find(const char *module, bool create)
{
        struct module_entry *m;

        for (m = modules; m; m = m->next)
                if (strcmp(m->module, module) == 0)
                        return m;
        if (!create)
                return NULL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return NULL;
        m->module = strdup(module);
        if (!m->module) {
                free(m);
                return NULL;
        }
        m->next = modules;
        modules = m;
        return m;
}

void nk_module_set_priv(const char *module, void *priv)
{
        struct module_entry *m;

        pthread_mutex_lock(&reg_lock);
        m = module_find(module, true);
        if (m)
                m->priv = priv;
        pthread_mutex_unlock(&reg_lock);
}

void *nk_module_get_priv(const char *module)
{
        struct module_entry *m;
        void *priv = NULL;

        pthread_mutex_lock(&reg_lock);
        m = module_find(module, false);
        if (m)
                priv = m->priv;
        pthread_mutex_unlock(&reg_lock);
        return priv;
}

int nk_module_get_options(const char *module, struct nk_module_options *ret)
{
        struct module_entry *m;
        int r = -ENOENT;

        pthread_mutex_lock(&reg_lock);
        m = module_find(module, false);
        if (m && m->has_options) {
                *ret = m->options;
                r = 0;
        }
        pthread_mutex_unlock(&reg_lock);
        return r;
}

/* ---- the load window ---------------------------------------------------- */

struct opened_type {
        struct opened_type *next;
        ErlNifResourceFlags op;
        struct nk_resource_type *type;
        ErlNifResourceTypeInit fn;
};

/* Loads are serialised by the loader; the window belongs to its thread so
 * that a NIF thread cannot open types behind a running load's back. */
static _Thread_local char *loading_module;
static _Thread_local struct opened_type *opened;
static _Thread_local struct nk_module_options loading_options;
static _Thread_local bool loading_has_options;

void nk_load_begin(const char *module)
{
        free(loading_module);
        loading_module = strdup(module);
        opened = NULL;
        loading_has_options = false;
        memset(&loading_options, 0, sizeof(loading_options));
}

static void free_type(struct nk_resource_type *t)
{
        free(t->module);
        free(t->name);
        free(t);
}

void nk_load_end(bool success)
{
        struct opened_type *o;

        pthread_mutex_lock(&reg_lock);
        while ((o = opened)) {
                opened = o->next;
                if (success) {
                        o->type->fn = o->fn;
                        if (o->op == ERL_NIF_RT_CREATE) {
                                o->type->committed = true;
                                o->type->next = types;
                                types = o->type;
                        }
                } else if (o->op == ERL_NIF_RT_CREATE)
                        free_type(o->type);
                free(o);
        }
        if (success && loading_has_options && loading_module) {
                struct module_entry *m = module_find(loading_module, true);
                if (m) {
                        m->options = loading_options;
                        m->has_options = true;
                }
        }
        pthread_mutex_unlock(&reg_lock);
        free(loading_module);
        loading_module = NULL;
        loading_has_options = false;
}

const char *nk_loading_module(void)
{
        return loading_module;
}

struct nk_module_options *nk_loading_options(void)
{
        if (!loading_module)
                return NULL;
        loading_has_options = true;
        return &loading_options;
}

/* Call with reg_lock held. */
static struct nk_resource_type *type_find(const char *module, const char *name)
{
        for (struct nk_resource_type *t = types; t; t = t->next)
                if (strcmp(t->module, module) == 0 && strcmp(t->name, name) == 0)
                        return t;
        return NULL;
}

static struct nk_resource_type *type_new(const char *module, const char *name)
{
        struct nk_resource_type *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        t->module = strdup(module);
        t->name = strdup(name);
        t->module_atom = nk_atom_latin1(module, strlen(module));
        t->name_atom = nk_atom_latin1(name, strlen(name));
        if (!t->module || !t->name || t->module_atom == NK_NONE || t->name_atom == NK_NONE) {
                free_type(t);
                return NULL;
        }
        return t;
}

/*
 * The three enif_open_resource_type* differ only in how many callbacks of
 * ErlNifResourceTypeInit they read: 1 (dtor), 3 (dtor, stop, down), or
 * init->members (up to 4, adding dyncall).
 */
static ErlNifResourceType *open_type(const char *name, const ErlNifResourceTypeInit *init,
                                     int members, ErlNifResourceFlags flags,
                                     ErlNifResourceFlags *tried)
{
        struct nk_resource_type *type = NULL;
        ErlNifResourceFlags op = flags;
        struct opened_type *o;

        if (!loading_module || !name || members < 0 || members > 4)
                goto done;

        pthread_mutex_lock(&reg_lock);
        type = type_find(loading_module, name);
        pthread_mutex_unlock(&reg_lock);
        if (!type) {
                if (!(flags & ERL_NIF_RT_CREATE))
                        goto done;
                type = type_new(loading_module, name);
                if (!type)
                        goto done;
                op = ERL_NIF_RT_CREATE;
        } else if (flags & ERL_NIF_RT_TAKEOVER)
                op = ERL_NIF_RT_TAKEOVER;
        else {
                type = NULL;
                goto done;
        }

        o = calloc(1, sizeof(*o));
        if (!o) {
                if (op == ERL_NIF_RT_CREATE)
                        free_type(type);
                type = NULL;
                goto done;
        }
        o->op = op;
        o->type = type;
        switch (members) {
        case 4:
                o->fn.dyncall = init->dyncall;
                /* fall through */
        case 3:
                o->fn.down = init->down;
                /* fall through */
        case 2:
                o->fn.stop = init->stop;
                /* fall through */
        case 1:
                o->fn.dtor = init->dtor;
                /* fall through */
        default:
                break;
        }
        o->fn.members = members;
        o->next = opened;
        opened = o;
done:
        if (tried)
                *tried = op;
        return (ErlNifResourceType *) type;
}

/* module_str is reserved by BEAM and must be NULL: types always belong to
 * the module being loaded. */
ErlNifResourceType *enif_open_resource_type(ErlNifEnv *env, const char *module_str,
                                            const char *name_str,
                                            void (*dtor)(ErlNifEnv *, void *),
                                            ErlNifResourceFlags flags,
                                            ErlNifResourceFlags *tried)
{
        ErlNifResourceTypeInit init = { .dtor = dtor };

        if (module_str) {
                if (tried)
                        *tried = flags;
                return NULL;
        }
        return open_type(name_str, &init, 1, flags, tried);
}

ErlNifResourceType *enif_open_resource_type_x(ErlNifEnv *env, const char *name_str,
                                              const ErlNifResourceTypeInit *init,
                                              ErlNifResourceFlags flags,
                                              ErlNifResourceFlags *tried)
{
        return open_type(name_str, init, 3, flags, tried);
}

ErlNifResourceType *enif_init_resource_type(ErlNifEnv *env, const char *name_str,
                                            const ErlNifResourceTypeInit *init,
                                            ErlNifResourceFlags flags,
                                            ErlNifResourceFlags *tried)
{
        return open_type(name_str, init, init ? init->members : -1, flags, tried);
}

ERL_NIF_TERM nk_resource_type_module(const struct nk_resource_type *type)
{
        return type->module_atom;
}

ERL_NIF_TERM nk_resource_type_name(const struct nk_resource_type *type)
{
        return type->name_atom;
}

static ErlNifResourceTypeInit type_fn(const struct nk_resource_type *type)
{
        ErlNifResourceTypeInit fn;

        pthread_mutex_lock(&reg_lock);
        fn = type->fn;
        pthread_mutex_unlock(&reg_lock);
        return fn;
}

ErlNifResourceDown *nk_resource_down_fn(const struct nk_resource_type *type)
{
        return type_fn(type).down;
}

ErlNifResourceDynCall *nk_resource_dyncall_fn(const struct nk_resource_type *type)
{
        return type_fn(type).dyncall;
}

ErlNifEnv *nk_callback_env_new(const struct nk_resource_type *type)
{
        ErlNifEnv *env = enif_alloc_env();

        if (env)
                env->priv = nk_module_get_priv(type->module);
        return env;
}

void nk_callback_env_free(ErlNifEnv *env)
{
        if (env)
                enif_free_env(env);
}

bool nk_resource_call_stop(struct nk_resource *res, ErlNifEvent e, int is_direct_call)
{
        ErlNifResourceStop *stop = type_fn(res->type).stop;
        ErlNifEnv *env;

        if (!stop)
                return false;
        env = nk_callback_env_new(res->type);
        stop(env, res->data, e, is_direct_call);
        nk_callback_env_free(env);
        return true;
}

/* ---- lifetime ------------------------------------------------------------ */

void nk_resource_keep(struct nk_resource *res)
{
        long old = atomic_fetch_add_explicit(&res->refc, 1, memory_order_relaxed);

        assert(old > 0);
        (void) old;
}

bool nk_resource_try_keep(struct nk_resource *res)
{
        long old = atomic_load_explicit(&res->refc, memory_order_relaxed);

        while (old > 0)
                if (atomic_compare_exchange_weak_explicit(&res->refc, &old, old + 1,
                                                          memory_order_acquire,
                                                          memory_order_relaxed))
                        return true;
        return false;
}

static void resource_destroy(struct nk_resource *res)
{
        ErlNifResourceDtor *dtor;

        nk_monitors_drop_resource(res);
        dtor = type_fn(res->type).dtor;
        if (dtor) {
                ErlNifEnv *env = nk_callback_env_new(res->type);
                dtor(env, res->data);
                nk_callback_env_free(env);
        }
        res->magic = 0;
        free(res);
}

void nk_resource_release(struct nk_resource *res)
{
        long old = atomic_fetch_sub_explicit(&res->refc, 1, memory_order_acq_rel);

        assert(old > 0);
        if (old == 1)
                resource_destroy(res);
}

/* ---- handle table --------------------------------------------------------- */

/* Chained hash keyed by handle. Handles are never reused for another object:
 * an object keeps its handle for life (res->handle), so a handle the runtime
 * still holds can never name a different object. */
struct handle_entry {
        struct handle_entry *next;
        uint64_t handle;
        struct nk_resource *res;
        /* Times the handle was given out (encoded for the runtime) and not
         * yet released: a counted RELEASE subtracts what the runtime saw, so
         * a copy still in flight when the runtime let go keeps the entry. */
        uint64_t outstanding;
};

static pthread_mutex_t handle_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handle_entry **buckets;
static size_t nbuckets, nentries;
static uint64_t next_handle = 1;

static size_t bucket_of(uint64_t h, size_t n)
{
        h ^= h >> 33;
        h *= UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 33;
        return (size_t) (h & (n - 1));
}

/* Call with handle_lock held. */
static struct handle_entry *handle_find(uint64_t handle)
{
        if (!nbuckets)
                return NULL;
        for (struct handle_entry *e = buckets[bucket_of(handle, nbuckets)]; e; e = e->next)
                if (e->handle == handle)
                        return e;
        return NULL;
}

/* Call with handle_lock held. */
static int handle_grow(void)
{
        size_t n = nbuckets ? nbuckets * 2 : 64;
        struct handle_entry **nb = calloc(n, sizeof(*nb));

        if (!nb)
                return -ENOMEM;
        for (size_t i = 0; i < nbuckets; i++) {
                struct handle_entry *e = buckets[i], *next;
                for (; e; e = next) {
                        size_t b = bucket_of(e->handle, n);
                        next = e->next;
                        e->next = nb[b];
                        nb[b] = e;
                }
        }
        free(buckets);
        buckets = nb;
        nbuckets = n;
        return 0;
}

uint64_t nk_resource_handle(struct nk_resource *res)
{
        struct handle_entry *e;
        uint64_t h = 0;
        size_t b;

        pthread_mutex_lock(&handle_lock);
        e = res->handle ? handle_find(res->handle) : NULL;
        if (e) {
                e->outstanding++;
                h = res->handle;
                goto out;
        }
        if (nentries >= nbuckets && handle_grow() < 0)
                goto out;
        e = malloc(sizeof(*e));
        if (!e)
                goto out;
        if (!res->handle)
                res->handle = next_handle++;
        e->handle = res->handle;
        e->res = res;
        e->outstanding = 1;
        nk_resource_keep(res);
        b = bucket_of(e->handle, nbuckets);
        e->next = buckets[b];
        buckets[b] = e;
        nentries++;
        h = e->handle;
out:
        pthread_mutex_unlock(&handle_lock);
        return h;
}

struct nk_resource *nk_resource_by_handle(uint64_t handle)
{
        struct handle_entry *e;
        struct nk_resource *res = NULL;

        pthread_mutex_lock(&handle_lock);
        e = handle_find(handle);
        if (e) {
                res = e->res;
                nk_resource_keep(res);
        }
        pthread_mutex_unlock(&handle_lock);
        return res;
}

/* Removes the entry when count is 0 (unconditional) or brings its
 * outstanding count to 0. */
static void handle_release(uint64_t handle, uint64_t count)
{
        struct handle_entry **pp, *e = NULL;

        pthread_mutex_lock(&handle_lock);
        if (nbuckets)
                for (pp = &buckets[bucket_of(handle, nbuckets)]; *pp; pp = &(*pp)->next) {
                        if ((*pp)->handle != handle)
                                continue;
                        e = *pp;
                        if (count != 0 && count < e->outstanding) {
                                e->outstanding -= count;
                                e = NULL;
                                break;
                        }
                        *pp = e->next;
                        nentries--;
                        break;
                }
        pthread_mutex_unlock(&handle_lock);
        /* The destructor may run here: outside the lock, since it may make
         * and drop handles itself. */
        if (e) {
                nk_resource_release(e->res);
                free(e);
        }
}

void nk_resource_handle_drop(uint64_t handle)
{
        handle_release(handle, 0);
}

void nk_resource_handle_release(uint64_t handle, uint64_t count)
{
        /* 0 would mean "unconditional": a runtime that saw nothing has
         * nothing to release. */
        if (count > 0)
                handle_release(handle, count);
}
