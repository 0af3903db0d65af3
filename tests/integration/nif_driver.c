/* SPDX-License-Identifier: Apache-2.0 */
/* A test NIF library that uses what beam.smp exports beside erl_nif: the
 * driver API's errno names, memory, binaries, locks, threads and
 * environment, and a zlib function it does not link (beam.smp does). */
#include <errno.h>
#include <string.h>

#include <erl_driver.h>
#include <erl_nif.h>

extern const char *zlibVersion(void);

static void *thread_main(void *arg)
{
        ErlDrvMutex *m = arg;
        erl_drv_mutex_lock(m);
        erl_drv_mutex_unlock(m);
        return arg;
}

static ERL_NIF_TERM check(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ERL_NIF_TERM errnos = enif_make_tuple3(env, enif_make_atom(env, erl_errno_id(ENOENT)),
                                               enif_make_atom(env, erl_errno_id(EACCES)),
                                               enif_make_atom(env, erl_errno_id(99999)));
        char *mem = driver_alloc(16);
        mem = driver_realloc(mem, 64);
        memset(mem, 1, 64);
        driver_free(mem);

        ErlDrvBinary *bin = driver_alloc_binary(8);
        memcpy(bin->orig_bytes, "abcdefgh", 8);
        driver_binary_inc_refc(bin);
        long refc = driver_binary_get_refc(bin);
        refc = refc * 10 + driver_binary_dec_refc(bin);
        driver_free_binary(bin);

        ErlDrvMutex *m = erl_drv_mutex_create("nk_test_driver");
        ErlDrvTid tid;
        void *res = NULL;
        int joined = erl_drv_thread_create("nk_test_driver", &tid, thread_main, m, NULL) == 0 &&
                     erl_drv_thread_join(tid, &res) == 0 && res == m;
        erl_drv_mutex_destroy(m);

        char value[64];
        size_t size = sizeof value;
        int env_r = erl_drv_putenv("NK_TEST_DRIVER", "set") == 0 && erl_drv_getenv("NK_TEST_DRIVER", value, &size) == 0
                            ? (int) size
                            : -1;
        return enif_make_tuple5(env, errnos, enif_make_long(env, refc), enif_make_atom(env, joined ? "true" : "false"),
                                enif_make_int(env, env_r),
                                enif_make_atom(env, zlibVersion()[0] ? "zlib" : "none"));
}

static ErlNifFunc funcs[] = {
        { "check", 0, check, 0 },
};

ERL_NIF_INIT(nk_test_driver, funcs, NULL, NULL, NULL, NULL)
