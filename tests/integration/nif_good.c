/* SPDX-License-Identifier: Apache-2.0 */
/* A well-behaved test NIF library: one function per behaviour the
 * integration tests check through libnifkit. */
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <erl_nif.h>

struct priv {
        ErlNifEnv *env;                 /* holds load_info */
        ERL_NIF_TERM load_info;
        ErlNifResourceType *counter;
};

static atomic_int destructed;

static void counter_dtor(ErlNifEnv *env, void *obj)
{
        atomic_fetch_add(&destructed, 1);
}

static int load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info)
{
        struct priv *p = enif_alloc(sizeof *p);
        if (!p)
                return 1;
        p->env = enif_alloc_env();
        p->load_info = enif_make_copy(p->env, load_info);
        p->counter = enif_open_resource_type(env, NULL, "counter", counter_dtor, ERL_NIF_RT_CREATE, NULL);
        if (!p->counter)
                return 2;
        *priv_data = p;
        return 0;
}

static ERL_NIF_TERM add(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ErlNifSInt64 a, b;
        if (!enif_get_int64(env, argv[0], &a) || !enif_get_int64(env, argv[1], &b))
                return enif_make_badarg(env);
        return enif_make_int64(env, a + b);
}

static ERL_NIF_TERM echo(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return argv[0];
}

static ERL_NIF_TERM raise_(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_raise_exception(env, argv[0]);
}

static ERL_NIF_TERM badarg(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_badarg(env);
}

static ERL_NIF_TERM get_load_info(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct priv *p = enif_priv_data(env);
        return enif_make_copy(env, p->load_info);
}

static ERL_NIF_TERM make_resource(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct priv *p = enif_priv_data(env);
        int v;
        if (!enif_get_int(env, argv[0], &v))
                return enif_make_badarg(env);
        int *obj = enif_alloc_resource(p->counter, sizeof *obj);
        if (!obj)
                return enif_make_badarg(env);
        *obj = v;
        ERL_NIF_TERM t = enif_make_resource(env, obj);
        enif_release_resource(obj);
        return t;
}

static ERL_NIF_TERM resource_value(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct priv *p = enif_priv_data(env);
        int *obj;
        if (!enif_get_resource(env, argv[0], p->counter, (void **) &obj))
                return enif_make_badarg(env);
        return enif_make_int(env, *obj);
}

static ERL_NIF_TERM destructed_count(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_int(env, atomic_load(&destructed));
}

static ERL_NIF_TERM self(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ErlNifPid pid;
        if (!enif_self(env, &pid))
                return enif_make_atom(env, "undefined");
        return enif_make_pid(env, &pid);
}

static ERL_NIF_TERM send_self(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ErlNifPid pid;
        if (!enif_self(env, &pid))
                return enif_make_badarg(env);
        ErlNifEnv *msg_env = enif_alloc_env();
        ERL_NIF_TERM msg = enif_make_tuple2(msg_env, enif_make_atom(msg_env, "from_call"),
                                            enif_make_copy(msg_env, argv[0]));
        int ok = enif_send(env, &pid, msg_env, msg);
        enif_free_env(msg_env);
        return enif_make_atom(env, ok ? "ok" : "error");
}

struct sender_arg {
        ErlNifPid to;
        ErlNifEnv *env;
        ERL_NIF_TERM msg;
        int detached;
        int ok;
};

static void *sender_main(void *arg)
{
        struct sender_arg *a = arg;
        if (a->detached)
                usleep(50 * 1000);
        /* From a non-scheduler thread the env argument must be NULL. */
        a->ok = enif_send(NULL, &a->to, a->env, a->msg);
        if (a->detached) {
                enif_free_env(a->env);
                enif_free(a);
        }
        return NULL;
}

/*
 * send_thread(Msg): a thread it starts sends {from_thread, Msg} to the
 * caller. The call waits for the thread, except for Msg = {later, _}: then
 * the thread outlives the call and sends 50 ms after it returned, as
 * fxml's threads do.
 */
static ERL_NIF_TERM send_thread(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct sender_arg *a = enif_alloc(sizeof *a);
        if (!a || !enif_self(env, &a->to)) {
                enif_free(a);
                return enif_make_badarg(env);
        }
        const ERL_NIF_TERM *tuple;
        int arity;
        char tag[8];
        a->detached = enif_get_tuple(env, argv[0], &arity, &tuple) && arity == 2 &&
                      enif_get_atom(env, tuple[0], tag, sizeof tag, ERL_NIF_LATIN1) > 0 && strcmp(tag, "later") == 0;
        a->env = enif_alloc_env();
        a->msg = enif_make_tuple2(a->env, enif_make_atom(a->env, "from_thread"), enif_make_copy(a->env, argv[0]));
        a->ok = 0;
        ErlNifTid tid;
        ErlNifThreadOpts *opts = enif_thread_opts_create("sender");
        int r = enif_thread_create("sender", &tid, sender_main, a, opts);
        enif_thread_opts_destroy(opts);
        if (r != 0) {
                enif_free_env(a->env);
                enif_free(a);
                return enif_make_badarg(env);
        }
        if (a->detached)
                return enif_make_atom(env, "ok");
        enif_thread_join(tid, NULL);
        int ok = a->ok;
        enif_free_env(a->env);
        enif_free(a);
        return enif_make_atom(env, ok ? "ok" : "error");
}

/* yield(N): sums N..1, one step per enif_schedule_nif continuation. */
static ERL_NIF_TERM yield_step(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ErlNifSInt64 n, acc;
        if (!enif_get_int64(env, argv[0], &n) || !enif_get_int64(env, argv[1], &acc))
                return enif_make_badarg(env);
        if (n == 0)
                return enif_make_int64(env, acc);
        ERL_NIF_TERM next[2] = { enif_make_int64(env, n - 1), enif_make_int64(env, acc + n) };
        return enif_schedule_nif(env, "yield_step", 0, yield_step, 2, next);
}

static ERL_NIF_TERM yield(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ERL_NIF_TERM next[2] = { argv[0], enif_make_int(env, 0) };
        return enif_schedule_nif(env, "yield_step", 0, yield_step, 2, next);
}

static ERL_NIF_TERM sleep_ms(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        unsigned ms;
        if (!enif_get_uint(env, argv[0], &ms))
                return enif_make_badarg(env);
        usleep((useconds_t) ms * 1000);
        return enif_make_atom(env, "ok");
}

static ERL_NIF_TERM thread_type(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_int(env, enif_thread_type());
}

static ErlNifFunc funcs[] = {
        { "add", 2, add, 0 },
        { "echo", 1, echo, 0 },
        { "raise", 1, raise_, 0 },
        { "badarg", 0, badarg, 0 },
        { "load_info", 0, get_load_info, 0 },
        { "make_resource", 1, make_resource, 0 },
        { "resource_value", 1, resource_value, 0 },
        { "destructed", 0, destructed_count, 0 },
        { "self", 0, self, 0 },
        { "send_self", 1, send_self, 0 },
        { "send_thread", 1, send_thread, 0 },
        { "yield", 1, yield, 0 },
        { "sleep", 1, sleep_ms, ERL_NIF_DIRTY_JOB_IO_BOUND },
        { "thread_type", 0, thread_type, 0 },
        { "thread_type_cpu", 0, thread_type, ERL_NIF_DIRTY_JOB_CPU_BOUND },
};

ERL_NIF_INIT(nk_test_good, funcs, load, NULL, NULL, NULL)
