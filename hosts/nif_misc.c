/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enif_* for memory, system facts, the environment, dynamic loading,
 * scheduling (enif_schedule_nif, enif_consume_timeslice) and options.
 */
#include <dlfcn.h>
#include <erl_driver.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "host_internal.h"
#include "nif_api.h"
#include "term.h"

/* ---- memory ---------------------------------------------------------------- */

/* BEAM's allocators guarantee 8-byte alignment; glibc's malloc gives 16. */
void *enif_alloc(size_t size)
{
        return malloc(size);
}

void enif_free(void *ptr)
{
        free(ptr);
}

void *enif_realloc(void *ptr, size_t size)
{
        return realloc(ptr, size);
}

void *enif_priv_data(ErlNifEnv *env)
{
        return env ? env->priv : NULL;
}

/* ---- system information ---------------------------------------------------- */

#ifdef NK_ERTS_VERSION
static const char default_erts_version[] = NK_ERTS_VERSION;
#else
static const char default_erts_version[] = "0";
#endif
static char erts_version[32];
static char otp_release[] = NK_OTP_RELEASE;
static int scheduler_count = 1;
static pthread_mutex_t info_lock = PTHREAD_MUTEX_INITIALIZER;

void nk_set_scheduler_count(int n)
{
        pthread_mutex_lock(&info_lock);
        scheduler_count = n > 0 ? n : 1;
        pthread_mutex_unlock(&info_lock);
}

void nk_set_erts_version(const char *version)
{
        pthread_mutex_lock(&info_lock);
        snprintf(erts_version, sizeof(erts_version), "%s", version ? version : "");
        pthread_mutex_unlock(&info_lock);
}

#define SYS_INFO_SIZE(field) (offsetof(ErlNifSysInfo, field) + sizeof(((ErlNifSysInfo *) 0)->field))

/*
 * Fills as many fields as the caller's struct has, in the groups BEAM adds
 * them: a library built against an older header passes a smaller si_size.
 * BEAM halts the VM when si_size does not even cover smp_support; the host
 * leaves such a struct untouched instead.
 */
void enif_system_info(ErlNifSysInfo *sip, size_t si_size)
{
        if (!sip || si_size < SYS_INFO_SIZE(smp_support))
                return;
        pthread_mutex_lock(&info_lock);
        if (!erts_version[0])
                snprintf(erts_version, sizeof(erts_version), "%s", default_erts_version);
        sip->driver_major_version = ERL_DRV_EXTENDED_MAJOR_VERSION;
        sip->driver_minor_version = ERL_DRV_EXTENDED_MINOR_VERSION;
        sip->erts_version = erts_version;
        sip->otp_release = otp_release;
        sip->thread_support = 1;
        sip->smp_support = 1;
        if (si_size >= SYS_INFO_SIZE(scheduler_threads)) {
                /* No async thread pool: BEAM has had none since OTP 21. */
                sip->async_threads = 0;
                sip->scheduler_threads = scheduler_count;
        }
        if (si_size >= SYS_INFO_SIZE(nif_minor_version)) {
                sip->nif_major_version = NK_NIF_MAJOR_VERSION;
                sip->nif_minor_version = NK_NIF_MINOR_VERSION;
        }
        if (si_size >= SYS_INFO_SIZE(dirty_scheduler_support))
                sip->dirty_scheduler_support = 1;
        pthread_mutex_unlock(&info_lock);
}

/*
 * 0: found, copied with its NUL, *value_size = its length.
 * 1: found but the buffer is too small, *value_size = the size needed.
 * -1: not set.
 * The host's environment is the one the runtime gave it, which is what the
 * NIF gets to see.
 */
int enif_getenv(const char *key, char *value, size_t *value_size)
{
        const char *v = getenv(key);
        size_t len;

        if (!v)
                return -1;
        len = strlen(v);
        if (len >= *value_size) {
                *value_size = len + 1;
                return 1;
        }
        memcpy(value, v, len + 1);
        *value_size = len;
        return 0;
}

/* ---- dynamic loading --------------------------------------------------------- */

void *enif_dlopen(const char *lib, void (*err_handler)(void *, const char *), void *err_arg)
{
        void *h;
        char *name;

        /* BEAM (erts_sys_ddll_open) appends the platform's extension. */
        if (asprintf(&name, "%s.so", lib) < 0) {
                if (err_handler)
                        err_handler(err_arg, "out of memory");
                return NULL;
        }
        dlerror();
        h = dlopen(name, RTLD_NOW);
        free(name);
        if (!h && err_handler) {
                const char *msg = dlerror();
                err_handler(err_arg, msg ? msg : "dlopen failed");
        }
        return h;
}

/* A symbol whose value is NULL is indistinguishable from a failure for the
 * caller, as in BEAM; only a dlerror() message counts as an error. */
void *enif_dlsym(void *handle, const char *symbol, void (*err_handler)(void *, const char *),
                 void *err_arg)
{
        const char *msg;
        void *p;

        dlerror();
        p = dlsym(handle, symbol);
        msg = dlerror();
        if (msg) {
                if (err_handler)
                        err_handler(err_arg, msg);
                return NULL;
        }
        return p;
}

/* ---- scheduling ------------------------------------------------------------------- */

#define NK_MAX_ARG 255

/* Dirty flags of the last enif_schedule_nif on this thread. A process-bound
 * env is used only by the thread running its call, which is also the thread
 * that reads the flags back when the NIF returns. */
static _Thread_local ErlNifEnv *resched_env;
static _Thread_local int resched_flags;

int nk_resched_flags(ErlNifEnv *env)
{
        return env == resched_env ? resched_flags : 0;
}

static ERL_NIF_TERM raise_badarg(ErlNifEnv *env)
{
        env->exception = nk_am_badarg;
        return NK_EXCEPTION;
}

/*
 * Records the continuation on the env; the server's call loop runs it when
 * the NIF returns NK_RESCHEDULE, with the argv copied here (the caller's
 * array may live on its stack). Dirty flags go to the server through
 * nk_resched_flags().
 */
ERL_NIF_TERM enif_schedule_nif(ErlNifEnv *env, const char *fun_name, int flags,
                               ERL_NIF_TERM (*fp)(ErlNifEnv *, int, const ERL_NIF_TERM[]),
                               int argc, const ERL_NIF_TERM argv[])
{
        ERL_NIF_TERM *copy = NULL;

        if (!env || !fp || argc < 0 || argc > NK_MAX_ARG || (argc > 0 && !argv))
                return env ? raise_badarg(env) : NK_EXCEPTION;
        /* BEAM makes the function name an atom and fails like make_atom. */
        if (!fun_name || nk_atom_latin1(fun_name, strlen(fun_name)) == NK_NONE)
                return raise_badarg(env);
        if (flags & ~(ERL_NIF_DIRTY_JOB_CPU_BOUND | ERL_NIF_DIRTY_JOB_IO_BOUND))
                return raise_badarg(env);
        if (!env->process_bound)
                return raise_badarg(env);
        if (argc > 0) {
                copy = nk_env_alloc(env, sizeof(*copy) * (size_t) argc);
                if (!copy)
                        return raise_badarg(env);
                memcpy(copy, argv, sizeof(*copy) * (size_t) argc);
        }
        env->resched_fp = fp;
        env->resched_argc = argc;
        env->resched_argv = copy;
        resched_env = env;
        resched_flags = flags;
        return NK_RESCHEDULE;
}

/*
 * BEAM counts reductions: each percent is 1% of a time slice and the call
 * answers 1 once the slice is used up. Out-of-range percentages are clamped
 * to 1..100 as a release BEAM does. On a dirty scheduler there is no slice
 * to consume and the answer is always 0.
 */
int enif_consume_timeslice(ErlNifEnv *env, int percent)
{
        int type = enif_thread_type();

        if (!env || type == ERL_NIF_THR_DIRTY_CPU_SCHEDULER || type == ERL_NIF_THR_DIRTY_IO_SCHEDULER)
                return 0;
        if (percent < 1)
                percent = 1;
        else if (percent > 100)
                percent = 100;
        env->timeslice += percent;
        if (env->timeslice >= 100) {
                env->timeslice = 100;
                return 1;
        }
        return 0;
}

/* ---- options (2.17) --------------------------------------------------------------- */

/*
 * Options are accepted only from a load or upgrade callback, as in BEAM.
 * Returns 0; EINVAL for an unknown option, a NULL callback or outside a
 * load; ENOTSUP never happens here because the host has dirty scheduler
 * support. The loader reads them back with nk_module_get_options().
 */
int enif_set_option(ErlNifEnv *env, ErlNifOption opt, ...)
{
        struct nk_module_options *o = nk_loading_options();
        va_list ap;
        int r = 0;

        if (!env || !o)
                return EINVAL;
        va_start(ap, opt);
        switch ((int) opt) {
        case ERL_NIF_OPT_DELAY_HALT:
                o->delay_halt = true;
                break;
        case ERL_NIF_OPT_ON_HALT: {
                void (*cb)(void *) = va_arg(ap, void (*)(void *));
                if (cb)
                        o->on_halt = cb;
                else
                        r = EINVAL;
                break;
        }
        case 3: /* ERL_NIF_OPT_ON_UNLOAD_THREAD, not in every 2.17 header */ {
                void (*cb)(void *) = va_arg(ap, void (*)(void *));
                if (cb)
                        o->on_unload_thread = cb;
                else
                        r = EINVAL;
                break;
        }
        default:
                r = EINVAL;
                break;
        }
        va_end(ap);
        return r;
}
