/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loads a NIF library the way BEAM's erl_load_nif does, with the checks a
 * library relies on having passed: entry version, VM variant, a sane
 * function table, and load() returning 0.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etf.h"
#include "host_internal.h"
#include "macro.h"
#include "server.h"

__attribute__((format(printf, 4, 5)))
static int fail(char *errbuf, size_t errlen, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
        return code;
}

static int check_entry(const char *path, const ErlNifEntry *e, char *errbuf, size_t errlen)
{
        if (e->major != ERL_NIF_MAJOR_VERSION || e->minor < 0 || e->minor > NK_NIF_MINOR_MAX)
                return fail(errbuf, errlen, -ENOEXEC, "%s: NIF API version %d.%d not supported (2.0 to 2.%d are)",
                            path, e->major, e->minor, NK_NIF_MINOR_MAX);
        /* vm_variant exists from 2.1 on. */
        if (e->minor >= 1 && (!e->vm_variant || strcmp(e->vm_variant, ERL_NIF_VM_VARIANT) != 0))
                return fail(errbuf, errlen, -ENOEXEC, "%s: built for VM variant '%.64s', not '%s'", path,
                            e->vm_variant ? e->vm_variant : "(null)", ERL_NIF_VM_VARIANT);
        if (!e->name || !*e->name || strlen(e->name) > NK_ATOM_MAX_CHARS)
                return fail(errbuf, errlen, -ENOEXEC, "%s: the entry has no valid module name", path);
        if (e->num_of_funcs < 0 || e->num_of_funcs > 65536 || (e->num_of_funcs > 0 && !e->funcs))
                return fail(errbuf, errlen, -ENOEXEC, "%s: the entry has a bad function table (%d functions)",
                            path, e->num_of_funcs);
        for (int i = 0; i < e->num_of_funcs; i++) {
                const ErlNifFunc *f = &e->funcs[i];
                if (!f->name || !*f->name || strlen(f->name) > NK_ATOM_MAX_CHARS || !f->fptr)
                        return fail(errbuf, errlen, -ENOEXEC, "%s: function %d has no valid name or code",
                                    path, i);
                if (f->arity > 255)
                        return fail(errbuf, errlen, -ENOEXEC, "%s: %s/%u has more than 255 arguments", path,
                                    f->name, f->arity);
                if (f->flags != 0 && f->flags != ERL_NIF_DIRTY_JOB_CPU_BOUND &&
                    f->flags != ERL_NIF_DIRTY_JOB_IO_BOUND)
                        return fail(errbuf, errlen, -ENOEXEC, "%s: illegal flags %u for %s/%u", path, f->flags,
                                    f->name, f->arity);
        }
        return 0;
}

/* load_info's ETF into env (NULL/0: []). */
static int decode_load_info(const char *path, ErlNifEnv *env, const uint8_t *load_info, size_t load_info_len,
                            ERL_NIF_TERM *ret, char *errbuf, size_t errlen)
{
        *ret = NK_NIL;
        if (!load_info || load_info_len == 0)
                return 0;
        struct nk_etf_error err = {};
        size_t used = 0;
        int r = nk_etf_decode(env, load_info, load_info_len, 0, ret, &used, &err);
        if (r == 0 && used != load_info_len)
                r = -EINVAL, snprintf(err.msg, sizeof err.msg, "trailing bytes"), err.offset = used;
        if (r < 0)
                return fail(errbuf, errlen, r == -ENOMEM ? -ENOMEM : -EINVAL,
                            "%s: malformed load_info ETF at byte %zu: %s", path, err.offset, err.msg);
        return 0;
}

static int run_load(const char *path, const ErlNifEntry *e, const uint8_t *load_info, size_t load_info_len,
                    void **ret_priv, char *errbuf, size_t errlen)
{
        /* load() runs in a process-independent env: no caller, no self. */
        ErlNifEnv env;
        ERL_NIF_TERM info;
        nk_env_init(&env);
        int r = decode_load_info(path, &env, load_info, load_info_len, &info, errbuf, errlen);
        if (r < 0) {
                nk_env_destroy(&env);
                return r;
        }

        void *priv = NULL;
        int result = 0;
        nk_load_begin(e->name);
        if (e->load)
                result = e->load(&env, &priv, info);
        nk_load_end(result == 0);
        nk_env_destroy(&env);
        if (result != 0)
                return fail(errbuf, errlen, -ENOEXEC, "%s: load() returned %d", path, result);
        nk_module_set_priv(e->name, priv);
        *ret_priv = priv;
        return 0;
}

/* BEAM's words, for the same refusals (erl_nif.c). */
int nk_loader_run_upgrade(struct nk_library *lib, const uint8_t *load_info, size_t load_info_len,
                          char *errbuf, size_t errlen)
{
        const ErlNifEntry *e = lib->entry;
        if (!e->upgrade)
                return fail(errbuf, errlen, -ENOEXEC, "Upgrade not supported by this NIF library.");
        ErlNifEnv env;
        ERL_NIF_TERM info;
        nk_env_init(&env);
        int r = decode_load_info(lib->path, &env, load_info, load_info_len, &info, errbuf, errlen);
        if (r < 0) {
                nk_env_destroy(&env);
                return r;
        }
        /* The new instance's priv starts empty, as in BEAM; a refusal
         * leaves the old one's as it was. */
        void *priv = NULL, *old = lib->priv;
        nk_load_begin(e->name);
        int result = e->upgrade(&env, &priv, &old, info);
        nk_load_end(result == 0);
        nk_env_destroy(&env);
        if (result != 0)
                return fail(errbuf, errlen, -ENOEXEC, "Library upgrade-call unsuccessful (%d).", result);
        lib->old_priv = old;
        lib->has_old = true;
        /* Workers read it for every call they start (server.c). */
        __atomic_store_n(&lib->priv, priv, __ATOMIC_RELEASE);
        nk_module_set_priv(e->name, priv);
        return 0;
}

int nk_loader_run_unload(struct nk_library *lib, bool old, char *errbuf, size_t errlen)
{
        const ErlNifEntry *e = lib->entry;
        if (old && !lib->has_old)
                return fail(errbuf, errlen, -ENOENT, "%s: no old instance to unload", lib->path);
        if (e->unload) {
                ErlNifEnv env;
                nk_env_init(&env);
                /* enif_priv_data in unload is the purged instance's. */
                env.priv = old ? lib->old_priv : lib->priv;
                e->unload(&env, env.priv);
                nk_env_destroy(&env);
        }
        if (old) {
                lib->old_priv = NULL;
                lib->has_old = false;
        }
        return 0;
}

int nk_loader_open(const char *path, struct nk_library *ret, char *errbuf, size_t errlen)
{
        dlerror();
        void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
                const char *why = dlerror();
                return fail(errbuf, errlen, -ENOEXEC, "%s: dlopen failed: %s", path, why ? why : "unknown error");
        }

        const ErlNifEntry *(*init)(void) = (const ErlNifEntry *(*)(void)) dlsym(handle, "nif_init");
        if (!init) {
                dlclose(handle);
                return fail(errbuf, errlen, -ENOEXEC, "%s: no nif_init symbol", path);
        }
        const ErlNifEntry *e = init();
        if (!e) {
                dlclose(handle);
                return fail(errbuf, errlen, -ENOEXEC, "%s: nif_init() returned NULL", path);
        }
        int r = check_entry(path, e, errbuf, errlen);
        if (r < 0) {
                dlclose(handle);
                return r;
        }

        char *copy = strdup(path);
        if (!copy) {
                dlclose(handle);
                return fail(errbuf, errlen, -ENOMEM, "%s: out of memory", path);
        }
        *ret = (struct nk_library) { .handle = handle, .entry = e, .priv = NULL, .path = copy };
        return 0;
}

int nk_loader_run_load(struct nk_library *lib, const uint8_t *load_info, size_t load_info_len,
                       char *errbuf, size_t errlen)
{
        /* A failed load() may have started threads that still run the
         * library's code: unmapping it under them would turn a clean refusal
         * into a crash, so the handle stays open either way. */
        return run_load(lib->path, lib->entry, load_info, load_info_len, &lib->priv, errbuf, errlen);
}

int nk_loader_load(const char *path, const uint8_t *load_info, size_t load_info_len,
                   struct nk_library *ret, char *errbuf, size_t errlen)
{
        struct nk_library lib;
        int r = nk_loader_open(path, &lib, errbuf, errlen);
        if (r < 0)
                return r;
        r = nk_loader_run_load(&lib, load_info, load_info_len, errbuf, errlen);
        if (r < 0) {
                free(lib.path);
                return r;
        }
        *ret = lib;
        return 0;
}
