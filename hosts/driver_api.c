/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The part of erl_driver.h that means something outside a port: memory,
 * driver binaries, threads, locks, thread-specific data, time, the
 * environment, dynamic loading and erl_errno_id. beam.smp exports them to
 * every NIF it loads, and NIFs written before the enif_ equivalents
 * existed (or by people who knew the driver API first) still call them.
 *
 * The lock, thread and option types are the same structs as their enif_
 * counterparts (erl_drv_nif.h shares them), so each function here is the
 * enif_ one under its driver name. What needs a port (output, queues,
 * timers, monitors, select) is not here: a library that calls it is
 * refused at load time, naming the missing symbols.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <erl_driver.h>

#include "host_internal.h"

/* ---- erl_errno_id ------------------------------------------------------------ */

/* errno numbers run below this on every Linux architecture. */
#define ERRNO_NAMES 160

static char errno_names[ERRNO_NAMES][24];
static pthread_once_t errno_once = PTHREAD_ONCE_INIT;

static void errno_names_init(void)
{
        for (int e = 0; e < ERRNO_NAMES; e++) {
                const char *name = strerrorname_np(e);
                char *out = errno_names[e];
                if (!name || strlen(name) >= sizeof errno_names[e]) {
                        snprintf(out, sizeof errno_names[e], "unknown");
                        continue;
                }
                for (size_t i = 0; name[i]; i++)
                        out[i] = (char) (name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
        }
}

/* The errno's name as BEAM spells it in {error, enoent}: lower case, and
 * "unknown" for a number that has none. */
char *erl_errno_id(int error)
{
        static char unknown[] = "unknown";
        if (error <= 0 || error >= ERRNO_NAMES)
                return unknown;
        pthread_once(&errno_once, errno_names_init);
        return errno_names[error];
}

/* ---- memory and driver binaries ---------------------------------------------- */

void *driver_alloc(ErlDrvSizeT size)
{
        return enif_alloc(size);
}

void *driver_realloc(void *ptr, ErlDrvSizeT size)
{
        return enif_realloc(ptr, size);
}

void driver_free(void *ptr)
{
        enif_free(ptr);
}

/* A driver binary's reference count sits in front of the struct the
 * caller sees, as BEAM's does in its Binary header. */
struct drv_binary {
        _Atomic ErlDrvSInt refc;
        ErlDrvBinary b;
};

static struct drv_binary *outer(ErlDrvBinary *b)
{
        return (struct drv_binary *) ((char *) b - offsetof(struct drv_binary, b));
}

ErlDrvBinary *driver_alloc_binary(ErlDrvSizeT size)
{
        if (size > (ErlDrvSizeT) PTRDIFF_MAX - sizeof(struct drv_binary))
                return NULL;
        struct drv_binary *d = malloc(sizeof *d + size);
        if (!d)
                return NULL;
        atomic_init(&d->refc, 1);
        d->b.orig_size = (ErlDrvSInt) size;
        return &d->b;
}

ErlDrvBinary *driver_realloc_binary(ErlDrvBinary *bin, ErlDrvSizeT size)
{
        if (!bin)
                return driver_alloc_binary(size);
        if (size > (ErlDrvSizeT) PTRDIFF_MAX - sizeof(struct drv_binary))
                return NULL;
        struct drv_binary *d = realloc(outer(bin), sizeof *d + size);
        if (!d)
                return NULL;
        d->b.orig_size = (ErlDrvSInt) size;
        return &d->b;
}

void driver_free_binary(ErlDrvBinary *bin)
{
        if (bin && atomic_fetch_sub(&outer(bin)->refc, 1) == 1)
                free(outer(bin));
}

ErlDrvSInt driver_binary_get_refc(ErlDrvBinary *bin)
{
        return atomic_load(&outer(bin)->refc);
}

ErlDrvSInt driver_binary_inc_refc(ErlDrvBinary *bin)
{
        return atomic_fetch_add(&outer(bin)->refc, 1) + 1;
}

ErlDrvSInt driver_binary_dec_refc(ErlDrvBinary *bin)
{
        return atomic_fetch_sub(&outer(bin)->refc, 1) - 1;
}

/* ---- system information -------------------------------------------------------- */

void driver_system_info(ErlDrvSysInfo *sip, size_t si_size)
{
        enif_system_info(sip, si_size);
}

/* ---- locks ------------------------------------------------------------------------- */

ErlDrvMutex *erl_drv_mutex_create(char *name)
{
        return enif_mutex_create(name);
}

void erl_drv_mutex_destroy(ErlDrvMutex *mtx)
{
        enif_mutex_destroy(mtx);
}

int erl_drv_mutex_trylock(ErlDrvMutex *mtx)
{
        return enif_mutex_trylock(mtx);
}

void erl_drv_mutex_lock(ErlDrvMutex *mtx)
{
        enif_mutex_lock(mtx);
}

void erl_drv_mutex_unlock(ErlDrvMutex *mtx)
{
        enif_mutex_unlock(mtx);
}

char *erl_drv_mutex_name(ErlDrvMutex *mtx)
{
        return enif_mutex_name(mtx);
}

ErlDrvCond *erl_drv_cond_create(char *name)
{
        return enif_cond_create(name);
}

void erl_drv_cond_destroy(ErlDrvCond *cnd)
{
        enif_cond_destroy(cnd);
}

void erl_drv_cond_signal(ErlDrvCond *cnd)
{
        enif_cond_signal(cnd);
}

void erl_drv_cond_broadcast(ErlDrvCond *cnd)
{
        enif_cond_broadcast(cnd);
}

void erl_drv_cond_wait(ErlDrvCond *cnd, ErlDrvMutex *mtx)
{
        enif_cond_wait(cnd, mtx);
}

char *erl_drv_cond_name(ErlDrvCond *cnd)
{
        return enif_cond_name(cnd);
}

ErlDrvRWLock *erl_drv_rwlock_create(char *name)
{
        return enif_rwlock_create(name);
}

void erl_drv_rwlock_destroy(ErlDrvRWLock *l)
{
        enif_rwlock_destroy(l);
}

int erl_drv_rwlock_tryrlock(ErlDrvRWLock *l)
{
        return enif_rwlock_tryrlock(l);
}

void erl_drv_rwlock_rlock(ErlDrvRWLock *l)
{
        enif_rwlock_rlock(l);
}

void erl_drv_rwlock_runlock(ErlDrvRWLock *l)
{
        enif_rwlock_runlock(l);
}

int erl_drv_rwlock_tryrwlock(ErlDrvRWLock *l)
{
        return enif_rwlock_tryrwlock(l);
}

void erl_drv_rwlock_rwlock(ErlDrvRWLock *l)
{
        enif_rwlock_rwlock(l);
}

void erl_drv_rwlock_rwunlock(ErlDrvRWLock *l)
{
        enif_rwlock_rwunlock(l);
}

char *erl_drv_rwlock_name(ErlDrvRWLock *l)
{
        return enif_rwlock_name(l);
}

/* ---- thread-specific data ------------------------------------------------------ */

int erl_drv_tsd_key_create(char *name, ErlDrvTSDKey *key)
{
        return enif_tsd_key_create(name, key);
}

void erl_drv_tsd_key_destroy(ErlDrvTSDKey key)
{
        enif_tsd_key_destroy(key);
}

void erl_drv_tsd_set(ErlDrvTSDKey key, void *data)
{
        enif_tsd_set(key, data);
}

void *erl_drv_tsd_get(ErlDrvTSDKey key)
{
        return enif_tsd_get(key);
}

/* ---- threads --------------------------------------------------------------------- */

ErlDrvThreadOpts *erl_drv_thread_opts_create(char *name)
{
        return enif_thread_opts_create(name);
}

void erl_drv_thread_opts_destroy(ErlDrvThreadOpts *opts)
{
        enif_thread_opts_destroy(opts);
}

int erl_drv_thread_create(char *name, ErlDrvTid *tid, void *(*func)(void *), void *arg,
                                 ErlDrvThreadOpts *opts)
{
        return enif_thread_create(name, tid, func, arg, opts);
}

ErlDrvTid erl_drv_thread_self(void)
{
        return enif_thread_self();
}

int erl_drv_equal_tids(ErlDrvTid a, ErlDrvTid b)
{
        return enif_equal_tids(a, b);
}

void erl_drv_thread_exit(void *resp)
{
        enif_thread_exit(resp);
}

int erl_drv_thread_join(ErlDrvTid tid, void **respp)
{
        return enif_thread_join(tid, respp);
}

char *erl_drv_thread_name(ErlDrvTid tid)
{
        return enif_thread_name(tid);
}

/* ---- time ------------------------------------------------------------------------- */

/* ErlDrvTimeUnit and ErlNifTimeUnit number the same units alike. */
_Static_assert((int) ERL_DRV_SEC == (int) ERL_NIF_SEC && (int) ERL_DRV_NSEC == (int) ERL_NIF_NSEC,
               "driver and NIF time units differ");

ErlDrvTime erl_drv_monotonic_time(ErlDrvTimeUnit unit)
{
        return enif_monotonic_time((ErlNifTimeUnit) unit);
}

ErlDrvTime erl_drv_time_offset(ErlDrvTimeUnit unit)
{
        return enif_time_offset((ErlNifTimeUnit) unit);
}

ErlDrvTime erl_drv_convert_time_unit(ErlDrvTime val, ErlDrvTimeUnit from, ErlDrvTimeUnit to)
{
        return enif_convert_time_unit(val, (ErlNifTimeUnit) from, (ErlNifTimeUnit) to);
}

/* ---- environment ----------------------------------------------------------------- */

int erl_drv_getenv(const char *key, char *value, size_t *value_size)
{
        return enif_getenv(key, value, value_size);
}

/* 0 when set, as BEAM's; the host's environment is its own. */
int erl_drv_putenv(const char *key, char *value)
{
        return setenv(key, value, 1) == 0 ? 0 : -1;
}

/* ---- dynamic loading ------------------------------------------------------------- */

static __thread char dl_error[256];

static void keep_dl_error(void *arg, const char *msg)
{
        (void) arg;
        snprintf(dl_error, sizeof dl_error, "%s", msg);
}

void *driver_dl_open(char *name)
{
        dl_error[0] = '\0';
        return enif_dlopen(name, keep_dl_error, NULL);
}

void *driver_dl_sym(void *handle, char *name)
{
        dl_error[0] = '\0';
        return enif_dlsym(handle, name, keep_dl_error, NULL);
}

int driver_dl_close(void *handle)
{
        /* The library's code may still run on one of its threads, as
         * run_load explains for NIF libraries: never unmapped. */
        (void) handle;
        return 0;
}

char *driver_dl_error(void)
{
        return dl_error;
}
