/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A NIF library for the nifkit tool's integration test: each function
 * provokes one of the outcomes `nifkit call` must report (a result, an
 * exception, a crash, a hang, a load failure) and two carry dirty flags
 * for `nifkit inspect`.
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <erl_nif.h>

struct priv {
        ErlNifEnv *env;
        ERL_NIF_TERM load_info;
};

/* load_info 'fail' makes load() fail, so a load failure can be tested. */
static int load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info)
{
        struct priv *p;

        if (enif_is_atom(env, load_info)) {
                char name[16];
                if (enif_get_atom(env, load_info, name, sizeof(name), ERL_NIF_LATIN1) > 0 &&
                    strcmp(name, "fail") == 0)
                        return 7;
        }
        p = enif_alloc(sizeof(*p));
        if (!p)
                return 1;
        p->env = enif_alloc_env();
        p->load_info = enif_make_copy(p->env, load_info);
        *priv_data = p;
        return 0;
}

static void unload(ErlNifEnv *env, void *priv_data)
{
        struct priv *p = priv_data;

        enif_free_env(p->env);
        enif_free(p);
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

static ERL_NIF_TERM crash(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        raise(SIGSEGV);
        return enif_make_atom(env, "survived");
}

static ERL_NIF_TERM sleep_ms(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        unsigned ms;

        if (!enif_get_uint(env, argv[0], &ms))
                return enif_make_badarg(env);
        usleep((useconds_t) ms * 1000);
        return enif_make_atom(env, "slept");
}

static ERL_NIF_TERM load_info(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct priv *p = enif_priv_data(env);

        return enif_make_copy(env, p->load_info);
}

static ERL_NIF_TERM add(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        long a, b;

        if (!enif_get_long(env, argv[0], &a) || !enif_get_long(env, argv[1], &b))
                return enif_make_badarg(env);
        return enif_make_long(env, a + b);
}

static ErlNifFunc funcs[] = {
        { "echo", 1, echo, 0 },
        { "raise", 1, raise_, 0 },
        { "badarg", 0, badarg, 0 },
        { "crash", 0, crash, 0 },
        { "sleep", 1, sleep_ms, ERL_NIF_DIRTY_JOB_IO_BOUND },
        { "load_info", 0, load_info, 0 },
        { "add", 2, add, ERL_NIF_DIRTY_JOB_CPU_BOUND },
        { "add", 3, add, 0 },
};

ERL_NIF_INIT(nk_cli_test, funcs, load, NULL, NULL, unload)
