/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The smallest useful NIF: add/2 of two small integers, and echo/1. What a
 * call costs around them is what bench/call_bench.erl measures, in BEAM and
 * wrapped.
 */
#include <erl_nif.h>

static ERL_NIF_TERM add(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        long a, b;

        if (!enif_get_long(env, argv[0], &a) || !enif_get_long(env, argv[1], &b))
                return enif_make_badarg(env);
        return enif_make_long(env, a + b);
}

/* Gives its argument back: what moving a term there and back costs. */
static ERL_NIF_TERM echo(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return argv[0];
}

static ErlNifFunc funcs[] = {
        { "add", 2, add, 0 },
        { "echo", 1, echo, 0 },
};

/* The module is trivial_nif unless the build names another
 * (bench/idle-libs.sh builds one per module); through a macro so that
 * NK_MODULE is expanded before ERL_NIF_INIT stringifies it. */
#ifndef NK_MODULE
#define NK_MODULE trivial_nif
#endif
#define INIT(module) ERL_NIF_INIT(module, funcs, NULL, NULL, NULL, NULL)
INIT(NK_MODULE)
