/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A NIF library (module nk_res_nif) for the proxy's own tests in a real
 * BEAM (proxy_beam.sh, nk_proxy_test.erl): resources whose destructor the
 * test can observe, and functions that crash, hang, return too much or too
 * many new atoms, or stop the whole host.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <erl_nif.h>

static ErlNifResourceType *obj_type;
/* Objects alive in this host: new/1 adds one, the destructor takes it. */
static atomic_long live_objects;
/* What load() was given: an integer, checked again after a restart. */
static int load_value;

struct obj {
        long value;
};

static void obj_dtor(ErlNifEnv *env, void *p)
{
        atomic_fetch_sub(&live_objects, 1);
}

static int load(ErlNifEnv *env, void **priv, ERL_NIF_TERM info)
{
        const ERL_NIF_TERM *t;
        int arity;
        /* load_info must be {nk_res, Int}: a load() with anything else (the
         * [] a proxy without two-step start would pass) fails. */
        if (!enif_get_tuple(env, info, &arity, &t) || arity != 2 || !enif_is_identical(t[0], enif_make_atom(env, "nk_res")) ||
            !enif_get_int(env, t[1], &load_value))
                return 1;
        obj_type = enif_open_resource_type(env, NULL, "obj", obj_dtor, ERL_NIF_RT_CREATE, NULL);
        return obj_type ? 0 : 1;
}

static ERL_NIF_TERM new_obj(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        long v;
        if (!enif_get_long(env, argv[0], &v))
                return enif_make_badarg(env);
        struct obj *o = enif_alloc_resource(obj_type, sizeof *o);
        if (!o)
                return enif_make_badarg(env);
        o->value = v;
        atomic_fetch_add(&live_objects, 1);
        ERL_NIF_TERM t = enif_make_resource(env, o);
        enif_release_resource(o);
        return t;
}

static ERL_NIF_TERM value(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct obj *o;
        if (!enif_get_resource(env, argv[0], obj_type, (void **) &o))
                return enif_make_badarg(env);
        return enif_make_long(env, o->value);
}

/* Whether two terms name the same object in the host. */
static ERL_NIF_TERM same(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct obj *a, *b;
        if (!enif_get_resource(env, argv[0], obj_type, (void **) &a) ||
            !enif_get_resource(env, argv[1], obj_type, (void **) &b))
                return enif_make_badarg(env);
        return enif_make_atom(env, a == b ? "true" : "false");
}

static ERL_NIF_TERM live(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_long(env, atomic_load(&live_objects));
}

/* One object the host itself keeps, handed out again by kept/0: its handle
 * crosses many times while the runtime drops and releases its terms. */
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct obj *kept_obj;

static ERL_NIF_TERM keep(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct obj *o;
        if (!enif_get_resource(env, argv[0], obj_type, (void **) &o))
                return enif_make_badarg(env);
        enif_keep_resource(o);
        pthread_mutex_lock(&kept_lock);
        struct obj *old = kept_obj;
        kept_obj = o;
        pthread_mutex_unlock(&kept_lock);
        if (old)
                enif_release_resource(old);
        return enif_make_atom(env, "ok");
}

static ERL_NIF_TERM kept(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        pthread_mutex_lock(&kept_lock);
        ERL_NIF_TERM t = kept_obj ? enif_make_resource(env, kept_obj) : enif_make_atom(env, "none");
        pthread_mutex_unlock(&kept_lock);
        return t;
}

static ERL_NIF_TERM echo(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return argv[0];
}

/* Host-side walks over whatever BEAM sent, for the deep-term tests: each
 * has a BIF in BEAM to compare with. */
static ERL_NIF_TERM iolist(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ErlNifBinary b;
        if (!enif_inspect_iolist_as_binary(env, argv[0], &b))
                return enif_make_badarg(env);
        return enif_make_binary(env, &b);
}

static ERL_NIF_TERM phash2(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_uint64(env, enif_hash(ERL_NIF_PHASH2, argv[0], 0));
}

static ERL_NIF_TERM compare(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_int(env, enif_compare(argv[0], argv[1]));
}

static ERL_NIF_TERM to_binary(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ErlNifBinary b;
        if (!enif_term_to_binary(env, argv[0], &b))
                return enif_make_badarg(env);
        return enif_make_binary(env, &b);
}

static ERL_NIF_TERM copy(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ErlNifEnv *own = enif_alloc_env();
        ERL_NIF_TERM t = enif_make_copy(env, enif_make_copy(own, argv[0]));
        enif_free_env(own);
        return t;
}

/* Whether the host sees the file at path (a binary). */
static ERL_NIF_TERM visible(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ErlNifBinary b;
        char path[4096];
        if (!enif_inspect_binary(env, argv[0], &b) || b.size >= sizeof path)
                return enif_make_badarg(env);
        memcpy(path, b.data, b.size);
        path[b.size] = '\0';
        return enif_make_atom(env, access(path, F_OK) == 0 ? "true" : "false");
}

static ERL_NIF_TERM get_load_info(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_int(env, load_value);
}

static ERL_NIF_TERM os_pid(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_long(env, (long) getpid());
}

static ERL_NIF_TERM crash(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        *(volatile int *) 0 = 1;
        return enif_make_atom(env, "survived");
}

/* Holds the calling scheduler (here, a host worker) for Ms milliseconds. */
static ERL_NIF_TERM sleep_ms(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        unsigned ms;
        if (!enif_get_uint(env, argv[0], &ms))
                return enif_make_badarg(env);
        struct timespec t = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };
        while (nanosleep(&t, &t) < 0)
                ;
        return enif_make_atom(env, "ok");
}

static ERL_NIF_TERM fast(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_atom(env, "ok");
}

static ERL_NIF_TERM big(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        unsigned long n;
        ERL_NIF_TERM t;
        if (!enif_get_ulong(env, argv[0], &n))
                return enif_make_badarg(env);
        unsigned char *p = enif_make_new_binary(env, n, &t);
        if (!p)
                return enif_make_badarg(env);
        memset(p, 'x', n);
        return t;
}

/* [Prefix_0, Prefix_1, …]: N atoms, new to the VM unless it made them. */
static ERL_NIF_TERM atoms(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ErlNifBinary prefix;
        unsigned n;
        if (!enif_inspect_binary(env, argv[0], &prefix) || prefix.size > 200 || !enif_get_uint(env, argv[1], &n))
                return enif_make_badarg(env);
        ERL_NIF_TERM list = enif_make_list(env, 0);
        for (unsigned i = n; i-- > 0;) {
                char name[256];
                int len = snprintf(name, sizeof name, "%.*s%u", (int) prefix.size, (const char *) prefix.data, i);
                list = enif_make_list_cell(env, enif_make_atom_len(env, name, (size_t) len), list);
        }
        return list;
}

static void *stop_later(void *arg)
{
        usleep(100 * 1000);
        kill(getpid(), SIGSTOP);
        return NULL;
}

/* Returns, then the whole host stops: idle and unresponsive, as a host
 * stuck in a deadlock is. */
static ERL_NIF_TERM freeze(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        pthread_t t;
        if (pthread_create(&t, NULL, stop_later, NULL) != 0)
                return enif_make_badarg(env);
        pthread_detach(t);
        return enif_make_atom(env, "ok");
}

static ErlNifFunc funcs[] = {
        { "new", 1, new_obj, 0 },
        { "value", 1, value, 0 },
        { "same", 2, same, 0 },
        { "live", 0, live, 0 },
        { "echo", 1, echo, 0 },
        { "keep", 1, keep, 0 },
        { "kept", 0, kept, 0 },
        { "load_info", 0, get_load_info, 0 },
        { "os_pid", 0, os_pid, 0 },
        { "crash", 0, crash, 0 },
        { "sleep", 1, sleep_ms, 0 },
        { "dirty_sleep", 1, sleep_ms, ERL_NIF_DIRTY_JOB_IO_BOUND },
        { "fast", 0, fast, 0 },
        { "big", 1, big, 0 },
        { "atoms", 2, atoms, 0 },
        { "freeze", 0, freeze, 0 },
        { "iolist", 1, iolist, 0 },
        { "phash2", 1, phash2, 0 },
        { "compare", 2, compare, 0 },
        { "to_binary", 1, to_binary, 0 },
        { "copy", 1, copy, 0 },
        { "visible", 1, visible, 0 },
};

ERL_NIF_INIT(nk_res_nif, funcs, load, NULL, NULL, NULL)
