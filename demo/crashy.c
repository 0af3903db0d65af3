/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A NIF with a bug: crash/0 writes through a NULL pointer. Loaded into BEAM
 * directly it takes the whole VM down; wrapped by nifkit it costs the
 * caller an exception.
 */
#include <erl_nif.h>

static ERL_NIF_TERM hello(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_atom(env, "hello_from_the_host");
}

static ERL_NIF_TERM crash(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        volatile int *p = (volatile int *) 0;
        *p = 42;
        return enif_make_atom(env, "unreachable");
}

static ErlNifFunc funcs[] = {
        { "hello", 0, hello, 0 },
        { "crash", 0, crash, 0 },
};

ERL_NIF_INIT(crashy, funcs, NULL, NULL, NULL, NULL)
