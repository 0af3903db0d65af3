/* SPDX-License-Identifier: Apache-2.0 */
/* A test NIF that declares its entitlements in one line, as a NIF author
 * would: a directory to read, one database to reach, a smaller memory
 * ceiling than policies give by default. */
#include <erl_nif.h>
#include <nifkit_entitlements.h>

NIFKIT_ENTITLEMENTS("{\"files\": [{\"path\": \"/var/lib/nk-entitled\", \"access\": \"read\"}],"
                    " \"network\": {\"connect\": [\"db.internal:5432\"], \"resolve\": [\"db.internal\"]},"
                    " \"limits\": {\"memory_mb\": 128, \"pids\": 64}}");

static ERL_NIF_TERM hello(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_atom(env, "entitled");
}

static ErlNifFunc funcs[] = {
        { "hello", 0, hello, 0 },
};

ERL_NIF_INIT(nk_test_entitled, funcs, NULL, NULL, NULL, NULL)
