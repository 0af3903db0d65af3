/* SPDX-License-Identifier: Apache-2.0 */
/* A test NIF library whose crash/0 dereferences NULL. */
#include <erl_nif.h>

static ERL_NIF_TERM crash(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        volatile int *p = NULL;
        *p = 1;
        return enif_make_atom(env, "unreachable");
}

static ERL_NIF_TERM ok(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_atom(env, "ok");
}

static ErlNifFunc funcs[] = {
        { "crash", 0, crash, 0 },
        { "ok", 0, ok, 0 },
};

ERL_NIF_INIT(nk_test_crash, funcs, NULL, NULL, NULL, NULL)
