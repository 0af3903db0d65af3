/* SPDX-License-Identifier: Apache-2.0 */
/* A test NIF library whose crash/0 dereferences NULL, and whose load()
 * does the same when load_info is the atom crash_in_load. */
#include <string.h>

#include <erl_nif.h>

static int load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info)
{
        char what[32];
        if (enif_get_atom(env, load_info, what, sizeof what, ERL_NIF_LATIN1) > 0 &&
            strcmp(what, "crash_in_load") == 0) {
                volatile int *p = NULL;
                *p = 1;
        }
        return 0;
}

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

ERL_NIF_INIT(nk_test_crash, funcs, load, NULL, NULL, NULL)
