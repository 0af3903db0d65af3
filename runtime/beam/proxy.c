/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The proxy NIF: the .so BEAM loads in place of a real NIF library.
 *
 * `erlang:load_nif(Path, LoadInfo)` opens this file at Path. Its nif_init()
 * finds the real library beside it, starts a nifkit host that loads the real
 * library, asks the host for the real ErlNifEntry (module, functions,
 * arities) and hands BEAM an entry with the same names, each function bound
 * to a trampoline that knows its index. A call encodes its arguments as
 * External Term Format, runs the real function in the host, and decodes the
 * result (or the exception) into the caller's env.
 *
 * Where the real library is: for a proxy installed as DIR/NAME.so, the real
 * library is DIR/NAME.real.so (`nifkit wrap` puts both there; for now
 * scripts/nifkit-wrap-dev does). A sibling rather than a configured path
 * keeps a wrapped directory relocatable, and its name is one BEAM's own
 * lookups (NAME.so) never open. The policy the host runs under is
 * DIR/NAME.policy.json when that file exists; otherwise libnifkit's choice
 * ($NIFKIT_POLICY, else its default policy).
 *
 * One module at a time per copy: all state is static, and glibc gives every
 * dlopen of the same inode the same handle, hence the same statics. So every
 * wrapped library gets its own physical copy of the proxy, and a second
 * module loading the same copy while the first holds it is refused in load().
 * Reloading a module that still has old code (BEAM's upgrade) is refused the
 * same way: there is no upgrade callback, and BEAM says so.
 *
 * Scheduling: every proxied function is flagged ERL_NIF_DIRTY_JOB_IO_BOUND,
 * because a call blocks on a socket round trip (tens of microseconds, or as
 * long as the NIF runs) and must not hold a normal scheduler. The design's
 * fast path (start on the normal scheduler, move to a dirty one with
 * enif_schedule_nif after about a millisecond) comes with the shared-memory
 * transport; the real functions' own dirty flags are then kept.
 *
 * Resources: the host sends a resource as a reference of the reserved node
 * 'nifkit_resource@nohost' (hosts/etf.h); it decodes here as an external
 * reference. The same host object always gives the same bytes, so identity
 * (=:=) holds, and passing it back in a call decodes to the same resource in
 * the host. BEAM cannot tell us when such a reference dies, so the host keeps
 * those resources until it stops: wrapping them in proxy-side resources with
 * a destructor that calls nk_host_release_resource comes later.
 *
 * Atoms: results are decoded without ERL_NIF_BIN2TERM_SAFE, since real NIFs
 * legitimately return new atoms (fast_yaml's plain_as_atom); the atom budget
 * of the design is enforced by libnifkit on the response before it gets here.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <erl_nif.h>

#include "nifkit.h"
#include "nifkit_policy.h"

#define PROXY_EXPORT __attribute__((visibility("default")))

/* How many functions one proxied library may have: one trampoline each. */
#define PROXY_MAX_FUNCS 256

/*
 * Two-step start. BEAM asks nif_init() for the function table before it
 * hands load_info to load(), while nk_host_start() runs the real load() as
 * part of discovery. When libnifkit provides nk_host_open() (launch, load the
 * library, discover; load() not run) and nk_host_load() (run load() once),
 * the proxy uses them. Without them it discovers with load_info [] and, when
 * the real load_info differs, starts a second host with it — which cannot
 * work for a library whose load() refuses [] (OTP's crypto checks its
 * load_info), hence the weak references.
 */
int nk_host_open(nk_host *h, nk_error *err) __attribute__((weak));
int nk_host_load(nk_host *h, const uint8_t *load_info, size_t load_info_len,
                 nk_error *err) __attribute__((weak));

struct proxy {
        pthread_mutex_t lock;
        nk_host *host;
        bool loaded;            /* the real load() ran: a module owns this copy */
        bool discovered_plain;  /* discovery ran the real load() with [] */
        char *self;             /* this .so, resolved */
        char *real;             /* the real library beside it */
        struct nk_policy *policy;       /* NAME.policy.json, or NULL */
        char *module;
        ErlNifFunc *funcs;
        unsigned nfuncs;
        ErlNifEntry entry;
};

static struct proxy P = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
};

static ERL_NIF_TERM proxy_call(ErlNifEnv *env, unsigned index, int argc, const ERL_NIF_TERM argv[]);

/*
 * The trampolines: a C function pointer cannot carry an index, so there is
 * one function per index, generated here. Names are trampoline_0x00 …
 * trampoline_0xff.
 */
#define TRAMPOLINE(n)                                                                   \
        static ERL_NIF_TERM trampoline_##n(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) \
        {                                                                               \
                return proxy_call(env, n, argc, argv);                                  \
        }
#define TRAMPOLINE_PTR(n) trampoline_##n,
#define SIXTEEN(X, h)                                                                   \
        X(0x##h##0) X(0x##h##1) X(0x##h##2) X(0x##h##3) X(0x##h##4) X(0x##h##5)         \
        X(0x##h##6) X(0x##h##7) X(0x##h##8) X(0x##h##9) X(0x##h##a) X(0x##h##b)         \
        X(0x##h##c) X(0x##h##d) X(0x##h##e) X(0x##h##f)
#define ALL256(X)                                                                       \
        SIXTEEN(X, 0) SIXTEEN(X, 1) SIXTEEN(X, 2) SIXTEEN(X, 3) SIXTEEN(X, 4)           \
        SIXTEEN(X, 5) SIXTEEN(X, 6) SIXTEEN(X, 7) SIXTEEN(X, 8) SIXTEEN(X, 9)           \
        SIXTEEN(X, a) SIXTEEN(X, b) SIXTEEN(X, c) SIXTEEN(X, d) SIXTEEN(X, e)           \
        SIXTEEN(X, f)

ALL256(TRAMPOLINE)

typedef ERL_NIF_TERM (*trampoline_fn)(ErlNifEnv *, int, const ERL_NIF_TERM[]);
static const trampoline_fn trampolines[] = { ALL256(TRAMPOLINE_PTR) };
_Static_assert(sizeof(trampolines) / sizeof(trampolines[0]) == PROXY_MAX_FUNCS,
               "one trampoline per function slot");

/* ---- errors -------------------------------------------------------------- */

/*
 * nif_init() and load() can only say "failed" to BEAM (a NULL entry, a
 * non-zero return), so the reason goes to the VM's stderr, where the
 * operator reads load failures. Nothing else in the proxy writes there.
 */
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("nifkit proxy: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

static ERL_NIF_TERM make_binary(ErlNifEnv *env, const char *s)
{
        ERL_NIF_TERM t;
        size_t n = strlen(s);
        unsigned char *p = enif_make_new_binary(env, n, &t);
        if (p)
                memcpy(p, s, n);
        return t;
}

/* Raises {nifkit, Kind, Message}: the caller sees why nifkit failed, as a
 * value it can match, never a crash of the VM. */
static ERL_NIF_TERM raise_nifkit(ErlNifEnv *env, const char *kind, const char *msg)
{
        return enif_raise_exception(env, enif_make_tuple3(env, enif_make_atom(env, "nifkit"),
                                                          enif_make_atom(env, kind),
                                                          make_binary(env, msg)));
}

static ERL_NIF_TERM raise_nk_error(ErlNifEnv *env, const nk_error *err)
{
        const char *kind = nk_error_kind_name(err->kind);
        return raise_nifkit(env, kind ? kind : "unknown", err->msg);
}

/* ---- state --------------------------------------------------------------- */

static void free_funcs(struct proxy *p)
{
        for (unsigned i = 0; i < p->nfuncs; i++)
                free((char *) p->funcs[i].name);
        free(p->funcs);
        p->funcs = NULL;
        p->nfuncs = 0;
        free(p->module);
        p->module = NULL;
}

/* Back to the state of a freshly mapped copy; the lock is held. */
static void reset(struct proxy *p)
{
        nk_host_free(p->host);
        p->host = NULL;
        p->loaded = false;
        p->discovered_plain = false;
        free_funcs(p);
        free(p->self);
        p->self = NULL;
        free(p->real);
        p->real = NULL;
        nk_policy_free(p->policy);
        p->policy = NULL;
        memset(&p->entry, 0, sizeof p->entry);
}

/*
 * A host still running when the copy is unmapped (a load that BEAM refused
 * after nif_init, so unload never ran) would outlive its only user. A loaded
 * copy is left alone: destructors also run when the VM exits, while
 * schedulers may still be inside a call; that host exits by itself when its
 * channel closes with the VM.
 */
__attribute__((destructor)) static void proxy_fini(void)
{
        pthread_mutex_lock(&P.lock);
        if (!P.loaded)
                reset(&P);
        pthread_mutex_unlock(&P.lock);
}

/* DIR/NAME.so → DIR/NAME<suffix>, newly allocated. */
static char *sibling(const char *self, const char *suffix)
{
        size_t n = strlen(self);
        size_t stem = n > 3 && strcmp(self + n - 3, ".so") == 0 ? n - 3 : n;
        size_t m = strlen(suffix);
        char *s = malloc(stem + m + 1);
        if (s) {
                memcpy(s, self, stem);
                memcpy(s + stem, suffix, m + 1);
        }
        return s;
}

/* This .so's path, the real library's, and the policy beside them. */
static int locate(struct proxy *p)
{
        Dl_info info;
        if (dladdr((void *) &P, &info) == 0 || !info.dli_fname) {
                report("cannot find the proxy's own path (dladdr failed)");
                return -ENOENT;
        }
        p->self = realpath(info.dli_fname, NULL);
        if (!p->self) {
                int r = -errno;
                report("cannot resolve the proxy's path '%s': %s", info.dli_fname, strerror(-r));
                return r;
        }
        p->real = sibling(p->self, ".real.so");
        char *policy = sibling(p->self, ".policy.json");
        if (!p->real || !policy) {
                free(policy);
                return -ENOMEM;
        }
        if (access(p->real, R_OK) < 0) {
                int r = -errno;
                report("'%s' wraps no library: '%s': %s", p->self, p->real, strerror(-r));
                free(policy);
                return r;
        }
        int r = 0;
        if (access(policy, F_OK) == 0) {
                struct nk_policy_error perr;
                r = nk_policy_load(policy, &p->policy, &perr);
                if (r < 0)
                        report("'%s': %s", p->self, perr.msg);
        }
        free(policy);
        return r;
}

/* What the sandbox cannot enforce on this machine (a best-effort policy
 * without cgroup controllers): the operator must know. */
static void log_note(void *arg, const char *msg)
{
        report("%s", msg);
}

/* BEAM turns an enif_send from the host into a message; called on one of
 * libnifkit's threads, never a scheduler, hence the NULL caller env. */
static void deliver_send(void *arg, const uint8_t *to_pid, size_t to_len, const uint8_t *msg,
                         size_t msg_len)
{
        ErlNifEnv *env = enif_alloc_env();
        ERL_NIF_TERM pid_term, msg_term;
        ErlNifPid pid;

        if (!env)
                return;
        if (enif_binary_to_term(env, to_pid, to_len, &pid_term, 0) != to_len ||
            !enif_get_local_pid(env, pid_term, &pid) ||
            enif_binary_to_term(env, msg, msg_len, &msg_term, 0) != msg_len) {
                /* A host that sends garbage is broken; its calls will say so.
                 * A message that cannot be delivered is dropped, as BEAM drops
                 * a send to a dead process. */
                enif_free_env(env);
                return;
        }
        enif_send(NULL, &pid, env, msg_term);
        enif_free_env(env);
}

static int new_host(const struct proxy *p, nk_host **ret)
{
        nk_host *h = nk_host_new();
        if (!h)
                return -ENOMEM;
        int r = nk_host_set_library(h, p->real);
        if (r < 0) {
                nk_host_free(h);
                return r;
        }
        nk_host_set_send_callback(h, deliver_send, NULL);
        nk_host_set_log_callback(h, log_note, NULL);
        if (p->policy)
                nk_host_set_policy(h, p->policy);
        *ret = h;
        return 0;
}

/* Copies what discovery found, so that it outlives a host restart. */
static int take_functions(struct proxy *p, const nk_host *h)
{
        unsigned n = nk_host_function_count(h);
        const char *module = nk_host_module(h);

        if (!module || module[0] == '\0') {
                report("'%s': the host found no module name", p->real);
                return -EPROTO;
        }
        if (n > PROXY_MAX_FUNCS) {
                report("'%s' has %u functions; the proxy supports at most %u", p->real, n,
                       PROXY_MAX_FUNCS);
                return -E2BIG;
        }
        p->module = strdup(module);
        p->funcs = calloc(n ? n : 1, sizeof(ErlNifFunc));
        if (!p->module || !p->funcs)
                return -ENOMEM;
        for (unsigned i = 0; i < n; i++) {
                const nk_function *f = nk_host_function(h, i);
                if (!f || !f->name)
                        return -EPROTO;
                p->funcs[i].name = strdup(f->name);
                if (!p->funcs[i].name)
                        return -ENOMEM;
                p->nfuncs = i + 1;
                p->funcs[i].arity = f->arity;
                p->funcs[i].fptr = trampolines[i];
                p->funcs[i].flags = ERL_NIF_DIRTY_JOB_IO_BOUND;
        }
        return 0;
}

/* The restarted host must be the library nif_init() described to BEAM. */
static bool same_functions(const struct proxy *p, const nk_host *h)
{
        const char *module = nk_host_module(h);

        if (!module || strcmp(module, p->module) != 0 || nk_host_function_count(h) != p->nfuncs)
                return false;
        for (unsigned i = 0; i < p->nfuncs; i++) {
                const nk_function *f = nk_host_function(h, i);
                if (!f || strcmp(f->name, p->funcs[i].name) != 0 || f->arity != p->funcs[i].arity)
                        return false;
        }
        return true;
}

static int load_load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info);
static void unload(ErlNifEnv *env, void *priv_data);

static int discover(struct proxy *p)
{
        nk_error err = { 0 };
        int r;

        r = locate(p);
        if (r < 0)
                return r;
        r = new_host(p, &p->host);
        if (r < 0)
                return r;
        if (nk_host_open && nk_host_load) {
                r = nk_host_open(p->host, &err);
        } else {
                r = nk_host_start(p->host, NULL, 0, &err);
                p->discovered_plain = true;
        }
        if (r < 0) {
                report("'%s': %s: %s%s", p->real, nk_error_kind_name(err.kind), err.msg,
                       p->discovered_plain && err.kind == NK_ERR_LOAD
                       ? " (discovery had to run load() with load_info [], since libnifkit has no "
                         "two-step start; a library whose load() refuses [] cannot be wrapped yet)"
                       : "");
                return r;
        }
        r = take_functions(p, p->host);
        if (r < 0)
                return r;

        p->entry = (ErlNifEntry) {
                .major = ERL_NIF_MAJOR_VERSION,
                .minor = ERL_NIF_MINOR_VERSION,
                .name = p->module,
                .num_of_funcs = (int) p->nfuncs,
                .funcs = p->funcs,
                .load = load_load,
                .reload = NULL,
                .upgrade = NULL,
                .unload = unload,
                .vm_variant = ERL_NIF_VM_VARIANT,
                .options = 1,   /* the dirty flags in funcs are meant */
                .sizeof_ErlNifResourceTypeInit = sizeof(ErlNifResourceTypeInit),
                .min_erts = ERL_NIF_MIN_ERTS_VERSION,
        };
        return 0;
}

PROXY_EXPORT const ErlNifEntry *nif_init(void);
PROXY_EXPORT const ErlNifEntry *nif_init(void)
{
        const ErlNifEntry *entry = NULL;

        pthread_mutex_lock(&P.lock);
        if (P.host) {
                /* BEAM called nif_init again on a copy already set up: either
                 * a load it refused (the host is still unloaded and can serve
                 * the retry), or a second user, which load() refuses. */
                entry = &P.entry;
        } else if (discover(&P) >= 0) {
                entry = &P.entry;
        } else {
                reset(&P);
        }
        pthread_mutex_unlock(&P.lock);
        return entry;
}

/* Runs the real load() with load_info, in the host discovery started, or in
 * a new one when discovery already had to run it with []. */
static int run_load(struct proxy *p, const uint8_t *li, size_t li_len)
{
        static const uint8_t nil_etf[] = { 131, 106 };
        nk_error err = { 0 };
        nk_host *h = NULL;
        int r;

        if (!p->discovered_plain) {
                r = nk_host_load(p->host, li, li_len, &err);
                if (r < 0)
                        report("'%s': load: %s: %s", p->real, nk_error_kind_name(err.kind), err.msg);
                return r;
        }
        if (li_len == sizeof nil_etf && memcmp(li, nil_etf, li_len) == 0)
                return 0;

        r = new_host(p, &h);
        if (r < 0)
                return r;
        r = nk_host_start(h, li, li_len, &err);
        if (r < 0) {
                report("'%s': load: %s: %s", p->real, nk_error_kind_name(err.kind), err.msg);
                nk_host_free(h);
                return r;
        }
        if (!same_functions(p, h)) {
                report("'%s': the library's functions changed between discovery and load",
                       p->real);
                nk_host_free(h);
                return -EPROTO;
        }
        nk_host_free(p->host);
        p->host = h;
        return 0;
}

static int load_load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info)
{
        ErlNifBinary li;
        int ret = 1;

        pthread_mutex_lock(&P.lock);
        if (!P.host) {
                report("load without a discovered library");
        } else if (P.loaded) {
                report("'%s' is already used by module '%s'; every wrapped library needs its own "
                       "copy of the proxy", P.self, P.module);
                /* Not ours to reset: the first user still runs on it. */
                ret = 2;
        } else if (!enif_term_to_binary(env, load_info, &li)) {
                report("'%s': cannot encode load_info", P.real);
        } else {
                if (run_load(&P, li.data, li.size) >= 0) {
                        P.loaded = true;
                        *priv_data = &P;
                        ret = 0;
                }
                enif_release_binary(&li);
        }
        if (ret == 1)
                reset(&P);
        pthread_mutex_unlock(&P.lock);
        return ret;
}

static void unload(ErlNifEnv *env, void *priv_data)
{
        pthread_mutex_lock(&P.lock);
        reset(&P);
        pthread_mutex_unlock(&P.lock);
}

/* ---- calls --------------------------------------------------------------- */

static ERL_NIF_TERM proxy_call(ErlNifEnv *env, unsigned index, int argc, const ERL_NIF_TERM argv[])
{
        ErlNifBinary args, pid_etf = { 0 };
        ErlNifPid self;
        bool have_pid = false;
        nk_result res = { 0 };
        nk_error err = { 0 };
        ERL_NIF_TERM ret;
        nk_host *h;
        int r;

        /* Calls run while the module holds the library, and unload only runs
         * once no code refers to the functions any more: no lock needed to
         * read the host pointer, and nk_host_call is safe from many threads. */
        h = P.host;
        if (!h || !P.loaded)
                return raise_nifkit(env, "not_running", "the wrapped library is not loaded");

        if (!enif_term_to_binary(env, enif_make_list_from_array(env, argv, (unsigned) argc), &args))
                return raise_nifkit(env, "system", "cannot encode the arguments");
        if (enif_self(env, &self) &&
            enif_term_to_binary(env, enif_make_pid(env, &self), &pid_etf))
                have_pid = true;

        r = nk_host_call(h, index, have_pid ? pid_etf.data : NULL, have_pid ? pid_etf.size : 0,
                         args.data, args.size, &res, &err);
        enif_release_binary(&args);
        if (have_pid)
                enif_release_binary(&pid_etf);
        if (r < 0)
                return raise_nk_error(env, &err);

        if (enif_binary_to_term(env, res.etf, res.len, &ret, 0) != res.len) {
                nk_result_free(&res);
                return raise_nifkit(env, "protocol", "the host's result is not one valid term");
        }
        r = res.exception;
        nk_result_free(&res);
        return r ? enif_raise_exception(env, ret) : ret;
}
