/* SPDX-License-Identifier: Apache-2.0 */
/* A test NIF library that needs what neither BEAM nor the host gives a
 * NIF: a symbol no library defines, and a port-only driver function. */
#include <erl_nif.h>

extern int nk_no_such_function(int);
extern int driver_output(void *port, char *buf, long len);

static ERL_NIF_TERM ok(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_int(env, nk_no_such_function(argc) + driver_output(NULL, NULL, 0));
}

static ErlNifFunc funcs[] = {
        { "ok", 0, ok, 0 },
};

ERL_NIF_INIT(nk_test_undefined, funcs, NULL, NULL, NULL, NULL)
