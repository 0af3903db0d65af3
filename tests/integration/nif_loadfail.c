/* SPDX-License-Identifier: Apache-2.0 */
/* A test NIF library whose load() refuses. */
#include <erl_nif.h>

static int load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info)
{
        return 1;
}

static ERL_NIF_TERM ok(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_atom(env, "ok");
}

static ErlNifFunc funcs[] = {
        { "ok", 0, ok, 0 },
};

ERL_NIF_INIT(nk_test_loadfail, funcs, load, NULL, NULL, NULL)
