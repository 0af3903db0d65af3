/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The proxy NIF: the .so BEAM loads in place of a real NIF library.
 *
 * `erlang:load_nif(Path, LoadInfo)` opens this file at Path. Its nif_init()
 * finds the real library beside it, starts a nifkit host that loads the real
 * library without running its load() (nk_host_open), and hands BEAM an entry
 * with the same module, names, arities and dirty flags, each function bound
 * to a trampoline that knows its index. BEAM then calls our load() with
 * load_info, which runs the real load() in the host (nk_host_load) and keeps
 * load_info's ETF for restarts. docs/PROXY.md tells the whole story; the
 * parts:
 *
 * Where the real library is: for a proxy installed as DIR/NAME.so, the real
 * library is DIR/NAME.real.so (`nifkit wrap` puts both there). A sibling
 * rather than a configured path keeps a wrapped directory relocatable, and
 * its name is one BEAM's own lookups (NAME.so) never open. The policy is
 * DIR/NAME.policy.json when that file exists, else $NIFKIT_POLICY, else
 * libnifkit's default policy; the proxy reads it itself, for its limits.
 *
 * One module per copy: all state is static, and glibc gives every dlopen of
 * the same inode the same handle, hence the same statics. So every wrapped
 * library gets its own physical copy of the proxy (BEAM itself refuses a
 * library whose module name differs from the caller's). Reloading a module
 * that still has old code (BEAM's upgrade) runs the real library's
 * upgrade() in the same host, and the old instance's purge its unload()
 * (docs/PROXY.md). Loading it again after a purge while proxy
 * resources of the old load still live (BEAM then defers the old unload)
 * starts afresh with a new host; the old load's late unload is ignored.
 *
 * Calls: the arguments become ETF, the call goes to the
 * host, the result (or the exception the NIF raised) is decoded into the
 * caller's env. A function the library flags dirty stays dirty and waits
 * there. Any other starts on the normal scheduler, waits up to about a
 * millisecond for the answer, and otherwise continues on a dirty I/O
 * scheduler (enif_schedule_nif) with the pending call in a resource, so a
 * slow host never holds a normal scheduler.
 *
 * Resources (proxy_res.c): a host resource becomes a proxy-side resource
 * whose destructor, run when BEAM's GC drops its last term, sends a counted
 * RELEASE; the same host object gives the same term (=:=) while it lives,
 * and passing it back gives the host its own object.
 *
 * Supervision (the proxy's policy, libnifkit's nk_restart_intensity and
 * nk_heartbeat): a host that dies, for any reason, fails the calls it
 * had with error:{nifkit, Reason, Details}, Reason the atom of nk_error's
 * reason (crashed, oom, timeout, seccomp, exited, pids_limit, protocol,
 * heartbeat, result_too_large, atom_budget) and Details
 * #{library, message, signal, syscall}. A new host then replaces it, with
 * the original load_info, as long as the policy's restart intensity allows
 * (max_restarts within period_s); beyond it every call raises
 * {nifkit, restart_limit, Details} until the module is loaded again. The
 * heartbeat's thread pings the host (every HEARTBEAT_MS while it is used, less and less
 * often while it is not), so a host that hangs is killed (reason heartbeat)
 * and replaced too. Unloading the module stops
 * the host (nk_host_free removes its cgroup); so does the VM's exit (see
 * proxy_fini). When the VM is killed, the host's channel closes and the
 * host's main thread, which never runs NIF code, sees it and exits, calls
 * in flight or not. PR_SET_PDEATHSIG is not
 * used: the host's seccomp filter denies prctl, and it would follow the
 * launching thread rather than the VM.
 *
 * Limits: libnifkit refuses a message above max_result_bytes from its
 * header (reason result_too_large). Results are decoded with
 * ERL_NIF_BIN2TERM_SAFE; only if that fails are the atoms BEAM does not
 * know counted (proxy_atoms.c), and within the host's lifetime budget of
 * max_new_atoms the term is decoded without SAFE; beyond it the host is
 * killed (reason atom_budget) and no atom is made.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <erl_nif.h>
#include <jansson.h>

#include "nifkit.h"
#include "nifkit_policy.h"
#include "operator.h"
#include "proxy.h"

#define PROXY_EXPORT __attribute__((visibility("default")))

/* How many functions one proxied library may have: one trampoline each. */
#define PROXY_MAX_FUNCS 256
/* How long a call without dirty flags may wait on a normal scheduler. */
#define FAST_WAIT_MS 1
/* How often the host is pinged while it is used, how far the interval
 * grows (doubling) while nothing calls it, and how long a PONG may take
 * when the policy sets no call timeout. */
#define HEARTBEAT_MS 2000
#define HEARTBEAT_IDLE_MAX_MS 64000
#define PING_TIMEOUT_MS 5000

struct proxy {
        pthread_mutex_t lock;           /* everything below but restart_lock's */
        bool loaded;                    /* the real load() ran: a module owns this copy */
        char *self;                     /* this .so, resolved */
        char *real;                     /* the real library beside it */
        char *host;                     /* the host binary nifkit wrap recorded, or NULL */
        struct nk_policy *policy;       /* the one the host runs under */
        struct nk_operator_env env;     /* the NIFKIT_* variables, read once by nif_init */
        int log_fd;                     /* NIFKIT_LOG's, or -1 */
        char *module;
        ErlNifFunc *funcs;
        unsigned nfuncs;
        ErlNifEntry entry;
        ErlNifResourceType *call_type;  /* a call waiting on a dirty scheduler */

        struct gen *cur;                /* the current host, NULL before open */
        unsigned generations;           /* hosts started by this copy, the current's number */
        uint8_t *load_info;             /* ETF, for restarts */
        size_t load_info_len;
        bool limited;                   /* restart_limit reached */
        char limit_msg[sizeof(((nk_error *) 0)->msg)];

        pthread_mutex_t restart_lock;   /* one restart at a time; taken before lock */
        nk_restart_intensity *intensity;        /* under restart_lock; made at the first death */

        nk_heartbeat *heartbeat;        /* while loaded; freed outside lock, so used under it */
        uintptr_t instance;             /* loads so far; each load's priv_data */
        uintptr_t old_instance;         /* the one an upgrade left old, until its unload (0: none) */

        struct gen *graveyard;          /* replaced hosts left by their own threads */
};

static struct proxy P = {
        .log_fd = -1,
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .restart_lock = PTHREAD_MUTEX_INITIALIZER,
};

static ERL_NIF_TERM proxy_call(ErlNifEnv *env, unsigned index, int argc, const ERL_NIF_TERM argv[]);
static void pending_call_dtor(ErlNifEnv *env, void *obj);


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
 * operator reads load failures; so do restarts and their failures.
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

/* {nifkit, Kind, Message}: why nifkit failed, as a value the caller can
 * match, never a crash of the VM. */
static ERL_NIF_TERM nifkit_error(ErlNifEnv *env, const char *kind, const char *msg)
{
        return enif_make_tuple3(env, enif_make_atom(env, "nifkit"), enif_make_atom(env, kind),
                                make_binary(env, msg));
}

/* "… seccomp denied NAME(2)" names the system call. */
static ERL_NIF_TERM syscall_of(ErlNifEnv *env, const nk_error *err)
{
        const char *p = strstr(err->msg, "seccomp denied ");
        if (strcmp(err->reason, "seccomp") != 0 || !p)
                return enif_make_atom(env, "undefined");
        p += strlen("seccomp denied ");
        size_t n = strcspn(p, "( ");
        if (n == 0)
                return enif_make_atom(env, "undefined");
        ERL_NIF_TERM t;
        unsigned char *b = enif_make_new_binary(env, n, &t);
        if (b)
                memcpy(b, p, n);
        return t;
}

/* {nifkit, Reason, #{library, message, signal, syscall}}, and size and
 * limit for a message above a limit (args_too_large, result_too_large). */
static ERL_NIF_TERM death_error(ErlNifEnv *env, const char *reason, const nk_error *err)
{
        ERL_NIF_TERM keys[] = { enif_make_atom(env, "library"), enif_make_atom(env, "message"),
                                enif_make_atom(env, "signal"), enif_make_atom(env, "syscall"),
                                enif_make_atom(env, "size"), enif_make_atom(env, "limit") };
        ERL_NIF_TERM vals[] = { make_binary(env, P.real ? P.real : ""), make_binary(env, err->msg),
                                err->signo ? enif_make_int(env, err->signo) : enif_make_atom(env, "undefined"),
                                syscall_of(env, err), enif_make_uint64(env, err->size),
                                enif_make_uint64(env, err->limit) };
        ERL_NIF_TERM map;
        if (!enif_make_map_from_arrays(env, keys, vals, err->limit ? 6 : 4, &map))
                map = vals[1];
        return enif_make_tuple3(env, enif_make_atom(env, "nifkit"), enif_make_atom(env, reason), map);
}

static ERL_NIF_TERM error_term(ErlNifEnv *env, const nk_error *err)
{
        if (nk_error_is_death(err) || strcmp(err->reason, "args_too_large") == 0)
                return death_error(env, err->reason, err);
        const char *kind = nk_error_kind_name(err->kind);
        return nifkit_error(env, kind ? kind : "unknown", err->msg);
}

/* ---- generations --------------------------------------------------------- */

static void gen_free(struct gen *g)
{
        if (!g)
                return;
        nk_host_free(g->host);
        free(g);
}

struct gen *gen_get(void)
{
        pthread_mutex_lock(&P.lock);
        struct gen *g = P.cur;
        if (g)
                g->users++;
        pthread_mutex_unlock(&P.lock);
        return g;
}

void gen_put(struct gen *g)
{
        pthread_mutex_lock(&P.lock);
        bool last = --g->users == 0 && g != P.cur;
        pthread_mutex_unlock(&P.lock);
        /* A replaced host lives until its last call finished. */
        if (last)
                gen_free(g);
}

/* gen_put on one of g's own libnifkit threads, which nk_host_free joins:
 * a last reference leaves g to the heartbeat thread (or unload) to free. */
static void gen_put_from_host(struct gen *g)
{
        pthread_mutex_lock(&P.lock);
        if (--g->users == 0 && g != P.cur) {
                g->next_dead = P.graveyard;
                P.graveyard = g;
        }
        pthread_mutex_unlock(&P.lock);
}

static void free_graveyard(struct proxy *p)
{
        pthread_mutex_lock(&p->lock);
        struct gen *g = p->graveyard;
        p->graveyard = NULL;
        pthread_mutex_unlock(&p->lock);
        while (g) {
                struct gen *next = g->next_dead;
                gen_free(g);
                g = next;
        }
}

uint32_t proxy_max_new_atoms(void)
{
        return P.policy ? P.policy->limits.max_new_atoms : 0;
}

bool gen_take_atoms(struct gen *g, uint64_t n, uint64_t max, uint64_t *ret_used)
{
        pthread_mutex_lock(&P.lock);
        bool ok = g->new_atoms + n <= max;
        if (ret_used)
                *ret_used = g->new_atoms;
        if (ok)
                g->new_atoms += n;
        pthread_mutex_unlock(&P.lock);
        return ok;
}

/* Makes g current; the one it replaces is freed now or by its last user.
 * Call without P.lock. */
static void gen_install(struct gen *g)
{
        pthread_mutex_lock(&P.lock);
        struct gen *old = P.cur;
        P.cur = g;
        bool free_old = old && old->users == 0;
        pthread_mutex_unlock(&P.lock);
        if (free_old)
                gen_free(old);
}

/* ---- state --------------------------------------------------------------- */

static void wait_events(void);

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

static void stop_heartbeat(struct proxy *p)
{
        pthread_mutex_lock(&p->lock);
        nk_heartbeat *hb = p->heartbeat;
        p->heartbeat = NULL;
        pthread_mutex_unlock(&p->lock);
        nk_heartbeat_stop(hb);
}

/* Back to the state of a freshly mapped copy. The heartbeat is stopped and
 * no call runs. */
static void reset(struct proxy *p)
{
        pthread_mutex_lock(&p->restart_lock);
        nk_restart_intensity_free(p->intensity);
        p->intensity = NULL;
        pthread_mutex_unlock(&p->restart_lock);
        gen_install(NULL);
        free_graveyard(p);
        res_forget_all();
        pthread_mutex_lock(&p->lock);
        p->loaded = false;
        p->old_instance = 0;
        /* generations keeps counting: resources of an earlier load may
         * still live, and must not pass for the next load's. */
        p->limited = false;
        p->limit_msg[0] = '\0';
        free(p->load_info);
        p->load_info = NULL;
        p->load_info_len = 0;
        free_funcs(p);
        free(p->self);
        p->self = NULL;
        free(p->real);
        free(p->host);
        p->host = NULL;
        p->real = NULL;
        nk_policy_free(p->policy);
        p->policy = NULL;
        memset(&p->entry, 0, sizeof p->entry);
        pthread_mutex_unlock(&p->lock);
        /* The stopped host's events may still be on their way. */
        wait_events();
}

/*
 * A host still running when the copy is unmapped (a load that BEAM refused
 * after nif_init, so unload never ran) would outlive its only user: reset.
 * A loaded copy sees this at the VM's exit (erlang:halt runs exit()), while
 * schedulers may still be inside a call: its host is stopped, which fails
 * the calls in flight and removes the host's cgroup, but nothing they use is
 * freed. (OTP 25 has no halt callback for NIFs; a VM killed outright leaves
 * the host to see its channel close.)
 */
__attribute__((destructor)) static void proxy_fini(void)
{
        pthread_mutex_lock(&P.lock);
        bool loaded = P.loaded;
        pthread_mutex_unlock(&P.lock);
        if (!loaded) {
                reset(&P);
                return;
        }
        stop_heartbeat(&P);
        /* No restart may start a host now. */
        pthread_mutex_lock(&P.restart_lock);
        pthread_mutex_lock(&P.lock);
        P.limited = true;
        snprintf(P.limit_msg, sizeof P.limit_msg, "the VM is exiting");
        pthread_mutex_unlock(&P.lock);
        pthread_mutex_unlock(&P.restart_lock);
        struct gen *g = gen_get();
        if (g) {
                nk_host_stop(g->host);
                gen_put(g);
        }
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

/* The policy beside the proxy, else the one libnifkit would choose: the
 * proxy needs its limits and restart intensity itself. */
static int load_policy(struct proxy *p)
{
        struct nk_policy_error perr;
        char *beside = sibling(p->self, ".policy.json");
        const char *env = p->env.policy;
        int r;

        if (!beside)
                return -ENOMEM;
        if (access(beside, F_OK) == 0) {
                r = nk_policy_load(beside, &p->policy, &perr);
                if (r < 0)
                        report("'%s': %s", p->self, perr.msg);
        } else if (env) {
                r = nk_policy_load(env, &p->policy, &perr);
                if (r < 0)
                        report("'%s': $NIFKIT_POLICY: %s", p->self, perr.msg);
        } else {
                r = nk_policy_default(&p->policy);
                if (r < 0)
                        report("'%s': cannot build the default policy: %s", p->self, strerror(-r));
        }
        free(beside);
        return r;
}

/* This .so's path, the real library's, and the policy. */
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
        if (!p->real)
                return -ENOMEM;
        /* NAME.host: the host nifkit wrap found (a link to it). */
        char *host = sibling(p->self, ".host");
        if (!host)
                return -ENOMEM;
        p->host = realpath(host, NULL);
        free(host);
        if (access(p->real, R_OK) < 0) {
                int r = -errno;
                report("'%s' wraps no library: '%s': %s", p->self, p->real, strerror(-r));
                return r;
        }
        return load_policy(p);
}

/* ---- events for nifkit:subscribe/0 ------------------------------------------ */

/* A JSON value of an event as a term: objects become maps with atom keys,
 * strings binaries (the values of "reason" and "level" atoms, as callers
 * match them), integers integers. */
static ERL_NIF_TERM json_term(ErlNifEnv *env, const char *key, json_t *v)
{
        if (json_is_integer(v))
                return enif_make_int64(env, json_integer_value(v));
        if (json_is_string(v) && key && (strcmp(key, "reason") == 0 || strcmp(key, "level") == 0))
                return enif_make_atom_len(env, json_string_value(v), json_string_length(v));
        if (json_is_string(v))
                return make_binary(env, json_string_value(v));
        if (json_is_object(v)) {
                ERL_NIF_TERM m = enif_make_new_map(env);
                const char *k;
                json_t *x;
                json_object_foreach(v, k, x)
                        if (strcmp(k, "event") != 0)
                                enif_make_map_put(env, m, enif_make_atom(env, k), json_term(env, k, x), &m);
                return m;
        }
        return enif_make_atom(env, json_is_true(v) ? "true" : json_is_false(v) ? "false" : "undefined");
}

/* Sends {nifkit, Event, Info} to the relay nifkit_events, when the nifkit
 * application runs it; nothing otherwise. Only on a thread ERTS did not
 * start: enif_whereis_pid and enif_send take a NULL caller env there and
 * nowhere else. */
static void send_event(const char *event, json_t *info)
{
        ErlNifEnv *env = enif_alloc_env();
        ErlNifPid relay;

        if (!env)
                return;
        if (enif_whereis_pid(NULL, enif_make_atom(env, "nifkit_events"), &relay)) {
                ERL_NIF_TERM msg = enif_make_tuple3(env, enif_make_atom(env, "nifkit"), enif_make_atom(env, event),
                                                    json_term(env, NULL, info));
                enif_send(NULL, &relay, env, msg);
        }
        enif_free_env(env);
}

/* Events raised on a scheduler (a call that saw the death, a load, an
 * unload) go out from a short-lived thread of their own: there are a few
 * per host's life. Each such thread first joins the one before it, so at
 * most one is left unjoined; reset() joins that one, so that none runs
 * this library's code once BEAM may unmap it. */
struct pending_event {
        char event[32];
        json_t *info;
        pthread_t prev;
        bool has_prev;
};

static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t last_event_thread;
static bool has_last_event_thread;

static void *event_main(void *arg)
{
        struct pending_event *e = arg;
        if (e->has_prev)
                pthread_join(e->prev, NULL);
        send_event(e->event, e->info);
        json_decref(e->info);
        free(e);
        return NULL;
}

static void notify(const char *event, json_t *info)
{
        if (enif_thread_type() == ERL_NIF_THR_UNDEFINED) {
                send_event(event, info);
                return;
        }
        struct pending_event *e = calloc(1, sizeof *e);
        if (!e)
                return;
        snprintf(e->event, sizeof e->event, "%s", event);
        e->info = json_incref(info);
        pthread_mutex_lock(&events_lock);
        e->prev = last_event_thread;
        e->has_prev = has_last_event_thread;
        pthread_t t;
        if (pthread_create(&t, NULL, event_main, e) == 0) {
                last_event_thread = t;
                has_last_event_thread = true;
        } else {
                /* Dropped: an event is worth no more than the call it rode
                 * on. The chain stays as it was. */
                json_decref(e->info);
                free(e);
        }
        pthread_mutex_unlock(&events_lock);
}

/* Every event thread has ended. */
static void wait_events(void)
{
        pthread_mutex_lock(&events_lock);
        bool has = has_last_event_thread;
        pthread_t t = last_event_thread;
        has_last_event_thread = false;
        pthread_mutex_unlock(&events_lock);
        if (has)
                pthread_join(t, NULL);
}

static bool subscribed_event(const char *event)
{
        return strcmp(event, "host_started") == 0 || strcmp(event, "host_died") == 0 ||
               strcmp(event, "host_stopped") == 0;
}

/* libnifkit's one sink: a note for a person (what the sandbox cannot
 * enforce on this machine, an unsandboxed host) goes where load failures
 * go, the VM's stderr; every event at NIFKIT_LOG_LEVEL or above to
 * NIFKIT_LOG as a JSON line; host events to nifkit:subscribe/0's
 * subscribers. */
static void log_sink(void *arg, const struct nk_log_record *rec)
{
        const struct proxy *p = arg;

        if (rec->note)
                report("%s", rec->note);
        if (p->log_fd >= 0 && rec->level >= p->env.log_level)
                nk_operator_log_write(p->log_fd, rec);
        if (subscribed_event(rec->event)) {
                json_t *info = json_loads(rec->line, 0, NULL);
                if (info)
                        notify(rec->event, info);
                json_decref(info);
        }
}

static void report_line(const char *line)
{
        report("%s", line);
}

/* The operator's decisions, read once per copy of the proxy (its libnifkit
 * is its own): the variables, the status directory, the log. */
static void read_environment(struct proxy *p)
{
        nk_operator_setup(&p->env, &p->log_fd, report_line);
        /* Host events are info: subscribers get them whatever the log's level. */
        enum nk_log_level level = nk_operator_sink_level(&p->env, p->log_fd);
        nk_log_set_sink(log_sink, p, level < NK_LOG_INFO ? level : NK_LOG_INFO);
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
        struct gen *g = gen_get();
        if (!g) {
                enif_free_env(env);
                return;
        }
        /* The host's pid may not carry this VM's creation, which SAFE
         * refuses; its node atom must exist all the same. The message's
         * new atoms come out of the host's budget, as a result's do. */
        uint32_t max = proxy_max_new_atoms();
        long fresh = 0;
        if (atoms_new_in_etf(env, to_pid, to_len) != 0 ||
            enif_binary_to_term(env, to_pid, to_len, &pid_term, 0) != to_len ||
            !enif_get_local_pid(env, pid_term, &pid))
                goto drop;
        if (enif_binary_to_term(env, msg, msg_len, &msg_term, ERL_NIF_BIN2TERM_SAFE) != msg_len) {
                fresh = atoms_new_in_etf(env, msg, msg_len);
                if (fresh < 0 || (fresh > 0 && max && !gen_take_atoms(g, (uint64_t) fresh, max, NULL)) ||
                    enif_binary_to_term(env, msg, msg_len, &msg_term, 0) != msg_len)
                        goto drop;
        }
        if (res_etf_has_handles(msg, msg_len))
                msg_term = res_import(env, g, msg_term);
        enif_send(NULL, &pid, env, msg_term);
        gen_put_from_host(g);
        enif_free_env(env);
        return;
drop:
        /* A host that sends garbage or too many atoms is broken; its calls
         * will say so. A message that cannot be delivered is dropped, as
         * BEAM drops a send to a dead process. */
        if (fresh > 0)
                (void) nk_host_kill(g->host, "atom_budget", "a message it sent has too many new atoms "
                                                            "(max_new_atoms)");
        gen_put_from_host(g);
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
        nk_host_set_policy(h, p->policy);
        nk_host_set_result_alloc(h, &pool_results);
        /* $NIFKIT_HOST overrides what wrap recorded, as it overrides the
         * installed default. */
        if ((p->host && (r = nk_host_set_host_binary(h, p->host)) < 0) ||
            (r = nk_operator_env_apply(&p->env, h, true)) < 0) {
                nk_host_free(h);
                return r;
        }
        *ret = h;
        return 0;
}

/* Copies what discovery found, so that it outlives a host restart. The
 * library's dirty flags are kept: its dirty functions run dirty here too. */
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
                p->funcs[i].flags = f->flags;
        }
        return 0;
}

/* A restarted host must be the library nif_init() described to BEAM. */
static bool same_functions(const struct proxy *p, const nk_host *h)
{
        const char *module = nk_host_module(h);

        if (!module || strcmp(module, p->module) != 0 || nk_host_function_count(h) != p->nfuncs)
                return false;
        for (unsigned i = 0; i < p->nfuncs; i++) {
                const nk_function *f = nk_host_function(h, i);
                if (!f || strcmp(f->name, p->funcs[i].name) != 0 || f->arity != p->funcs[i].arity ||
                    f->flags != p->funcs[i].flags)
                        return false;
        }
        return true;
}

static int load_load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info);
static int upgrade(ErlNifEnv *env, void **priv_data, void **old_priv_data, ERL_NIF_TERM load_info);
static void unload(ErlNifEnv *env, void *priv_data);
static int open_types(ErlNifEnv *env);

static int discover(struct proxy *p)
{
        nk_error err = { 0 };
        nk_host *h;
        int r;

        read_environment(p);
        r = locate(p);
        if (r < 0)
                return r;
        r = new_host(p, &h);
        if (r < 0)
                return r;
        r = nk_host_open(h, &err);
        if (r < 0) {
                report("'%s': %s: %s", p->real, nk_error_kind_name(err.kind), err.msg);
                nk_host_free(h);
                return r;
        }
        struct gen *g = calloc(1, sizeof *g);
        if (!g) {
                nk_host_free(h);
                return -ENOMEM;
        }
        *g = (struct gen) { .host = h, .number = ++p->generations };
        gen_install(g);
        r = take_functions(p, h);
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
                /* As the real library's: without upgrade(), BEAM refuses a
                 * reload with old code present in its own words. */
                .upgrade = nk_host_callbacks(h) & NK_HOST_HAS_UPGRADE ? upgrade : NULL,
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
        pthread_mutex_lock(&P.lock);
        bool set_up = P.cur != NULL;
        pthread_mutex_unlock(&P.lock);
        /* Called again on a copy already set up: the module is loaded again
         * after a purge whose unload BEAM deferred (load() starts afresh,
         * see load_again). */
        if (set_up)
                return &P.entry;
        if (discover(&P) >= 0)
                return &P.entry;
        reset(&P);
        return NULL;
}

/* ---- supervision (restart intensity and heartbeat: libnifkit's) ---------- */

/* Whether the restart intensity allows one more now; records it if so.
 * Under restart_lock. */
static bool restart_allowed(struct proxy *p)
{
        if (!p->intensity)
                p->intensity = nk_restart_intensity_new(p->policy->restart.max_restarts, p->policy->restart.period_s);
        return p->intensity && nk_restart_intensity_allow(p->intensity);
}

/* A new host like the first: open, same functions, load() with the
 * original load_info. */
static int start_again(struct proxy *p, struct gen **ret)
{
        nk_error err = { 0 };
        nk_host *h;
        int r = new_host(p, &h);
        if (r < 0)
                return r;
        r = nk_host_open(h, &err);
        if (r >= 0 && !same_functions(p, h)) {
                report("'%s': the restarted library's functions differ from the first's", p->real);
                r = -EPROTO;
        } else if (r >= 0) {
                r = nk_host_load(h, p->load_info, p->load_info_len, &err);
        }
        if (r < 0 && err.msg[0])
                report("'%s': restart failed: %s: %s", p->real, nk_error_kind_name(err.kind), err.msg);
        struct gen *g = r < 0 ? NULL : calloc(1, sizeof *g);
        if (!g) {
                nk_host_free(h);
                return r < 0 ? r : -ENOMEM;
        }
        pthread_mutex_lock(&p->lock);
        *g = (struct gen) { .host = h, .number = ++p->generations };
        pthread_mutex_unlock(&p->lock);
        *ret = g;
        return 0;
}

/*
 * The host of generation number died (why): replace it, once, if the
 * restart intensity allows. Callers that saw the same death all come here;
 * only the first still finds that generation current. Runs off the normal
 * schedulers (a dirty one, or the heartbeat thread): starting a host takes
 * milliseconds.
 */
static void host_died(unsigned number, const nk_error *why)
{
        pthread_mutex_lock(&P.restart_lock);
        pthread_mutex_lock(&P.lock);
        bool ours = P.loaded && P.cur && P.cur->number == number && !P.limited;
        pthread_mutex_unlock(&P.lock);
        if (!ours)
                goto out;

        if (!restart_allowed(&P)) {
                pthread_mutex_lock(&P.lock);
                P.limited = true;
                snprintf(P.limit_msg, sizeof P.limit_msg,
                         "%s: more than %u restarts within %u s; the last host died: %.200s (%s); load the module "
                         "again to start a new one", P.real, P.policy->restart.max_restarts,
                         P.policy->restart.period_s, why->msg, why->reason);
                pthread_mutex_unlock(&P.lock);
                report("%s", P.limit_msg);
                json_t *info = json_pack("{s:s, s:s, s:s, s:i, s:i}", "library", P.real, "reason", why->reason,
                                         "message", why->msg, "max_restarts", (int) P.policy->restart.max_restarts,
                                         "period_s", (int) P.policy->restart.period_s);
                if (info)
                        notify("restart_limit", info);
                json_decref(info);
                goto out;
        }
        struct gen *g;
        if (start_again(&P, &g) < 0)
                goto out;       /* the next caller sees the death and tries again */
        /* Handles of the dead host mean nothing to the new one. */
        res_forget_all();
        gen_install(g);
        report("'%s': host %u died (%s), host %u started", P.real, number, why->reason, g->number);
out:
        pthread_mutex_unlock(&P.restart_lock);
}

/*
 * The heartbeat (nk_heartbeat) pings the current host every HEARTBEAT_MS
 * while it is used, backing off to HEARTBEAT_IDLE_MAX_MS while it is not;
 * an idle host's death needs no ping (its channel closes), and the first
 * call after the spell brings the short interval back (call_gen).
 */
static nk_host *beat_acquire(void *arg, void **ret_token, bool *ret_busy)
{
        struct proxy *p = arg;
        pthread_mutex_lock(&p->lock);
        struct gen *g = p->limited ? NULL : p->cur;
        if (g) {
                *ret_busy = g->users > 0;
                g->users++;
        }
        pthread_mutex_unlock(&p->lock);
        *ret_token = g;
        return g ? g->host : NULL;
}

static void beat_release(void *arg, void *token)
{
        gen_put(token);
        free_graveyard(arg);
}

static void beat_died(void *arg, void *token, const nk_error *why)
{
        (void) arg;
        host_died(((struct gen *) token)->number, why);
}

static const struct nk_heartbeat_ops beat_ops = {
        .acquire = beat_acquire,
        .release = beat_release,
        .died = beat_died,
};

/* ---- load and unload ----------------------------------------------------- */

/* Keeps load_info's ETF for every host this load starts. */
static int keep_load_info(ErlNifEnv *env, ERL_NIF_TERM load_info)
{
        ErlNifBinary li;
        if (!enif_term_to_binary(env, load_info, &li)) {
                report("'%s': cannot encode load_info", P.real);
                return -EINVAL;
        }
        uint8_t *copy = malloc(li.size ? li.size : 1);
        if (copy)
                memcpy(copy, li.data, li.size);
        pthread_mutex_lock(&P.lock);
        free(P.load_info);
        P.load_info = copy;
        P.load_info_len = copy ? li.size : 0;
        pthread_mutex_unlock(&P.lock);
        enif_release_binary(&li);
        return copy ? 0 : -ENOMEM;
}

/*
 * BEAM loads a module's library while an earlier load of it is still
 * marked loaded only after purging the old code (an upgrade, with old code
 * present, is refused for want of an upgrade callback): the old instance's
 * unload is deferred as long as resources of its types live. This load
 * starts afresh, with a new host and restart budget; the old instance's
 * resources are stale and its late unload is ignored (see unload).
 */
static int load_again(void)
{
        struct gen *g;
        stop_heartbeat(&P);
        res_forget_all();
        if (start_again(&P, &g) < 0)
                return -1;
        gen_install(g);
        pthread_mutex_lock(&P.restart_lock);
        if (P.intensity)
                nk_restart_intensity_reset(P.intensity);
        pthread_mutex_unlock(&P.restart_lock);
        pthread_mutex_lock(&P.lock);
        P.limited = false;
        P.limit_msg[0] = '\0';
        pthread_mutex_unlock(&P.lock);
        return 0;
}

static int load_load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info)
{
        nk_error err = { 0 };
        pthread_mutex_lock(&P.lock);
        bool loaded = P.loaded;
        struct gen *g = P.cur;
        pthread_mutex_unlock(&P.lock);
        if (!g) {
                report("load without a discovered library");
                return 1;
        }
        /* The reserved node of host references exists before any result
         * is decoded, so that it never counts against the atom budget. */
        (void) enif_make_atom(env, "nifkit_resource@nohost");
        if (open_types(env) < 0)
                goto fail;
        if (keep_load_info(env, load_info) < 0)
                goto fail;
        if (loaded) {
                if (load_again() < 0)
                        goto fail;
        } else if (nk_host_load(g->host, P.load_info, P.load_info_len, &err) < 0) {
                report("'%s': load: %s: %s", P.real, nk_error_kind_name(err.kind), err.msg);
                goto fail;
        }
        nk_heartbeat *hb = NULL;
        unsigned ping_timeout = P.policy->limits.call_timeout_ms ? P.policy->limits.call_timeout_ms : PING_TIMEOUT_MS;
        int hr = nk_heartbeat_start(&beat_ops, &P, HEARTBEAT_MS, HEARTBEAT_IDLE_MAX_MS, ping_timeout, &hb);
        pthread_mutex_lock(&P.lock);
        P.loaded = true;
        *priv_data = (void *) (uintptr_t) ++P.instance;
        P.heartbeat = hb;
        pthread_mutex_unlock(&P.lock);
        if (hr < 0)
                report("'%s': no heartbeat thread (%s): a host that hangs while idle is found by the next call only",
                       P.real, strerror(-hr));
        return 0;
fail:
        stop_heartbeat(&P);
        reset(&P);
        return 1;
}

/* The proxy's own resource types, created by a load and taken over by an
 * upgrade, so that resources live on across it as BEAM's do. */
static int open_types(ErlNifEnv *env)
{
        ErlNifResourceFlags tried;

        P.call_type = enif_open_resource_type(env, NULL, "nifkit_call", pending_call_dtor,
                                              ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, &tried);
        if (!P.call_type || res_init(env) < 0 || pool_init(env) < 0) {
                report("'%s': cannot create the proxy's resource types", P.real);
                return -1;
        }
        return 0;
}

/* The current host, held; NULL when there is none to ask, and why in why
 * (when given). */
static struct gen *hold_current(char *why, size_t size)
{
        pthread_mutex_lock(&P.lock);
        struct gen *g = P.loaded && !P.limited ? P.cur : NULL;
        if (g)
                g->users++;
        else if (why)
                snprintf(why, size, "%s", P.limited ? P.limit_msg : "not loaded");
        pthread_mutex_unlock(&P.lock);
        return g;
}

/*
 * BEAM's upgrade: the module was loaded again while its old code still
 * runs, and this copy (the same library) serves both. The real library's
 * upgrade() runs in the same host with the old instance's priv data; the
 * old instance stays until its purge (unload). Restarts from now on run
 * load() with the new load_info. A refusal is BEAM's: the real upgrade()'s
 * own return value when it gave one.
 */
static int upgrade(ErlNifEnv *env, void **priv_data, void **old_priv_data, ERL_NIF_TERM load_info)
{
        nk_error err = { 0 };
        ErlNifBinary li;
        int code = 1;

        /* BEAM calls upgrade whenever the old code has a NIF library, even
         * another file's: a copy not yet loaded is that other library's
         * successor. Its old instance lives in another host, out of reach;
         * this one starts as a load does. */
        pthread_mutex_lock(&P.lock);
        bool fresh = !P.loaded;
        pthread_mutex_unlock(&P.lock);
        if (fresh)
                return load_load(env, priv_data, load_info);
        char why[sizeof P.limit_msg];
        struct gen *g = hold_current(why, sizeof why);
        if (!g) {
                report("'%s': upgrade: no host to upgrade (%s)", P.real, why);
                return 1;
        }
        /* Everything that can fail on this side first: once the host ran
         * upgrade(), BEAM must not be told no (it would keep the old code
         * while the host serves the new instance). A refusal from here on
         * is rolled back by BEAM, resource types included. */
        uint8_t *copy = NULL;
        if (open_types(env) < 0 || !enif_term_to_binary(env, load_info, &li)) {
                gen_put(g);
                report("'%s': upgrade: cannot take the resource types over or encode load_info", P.real);
                return 1;
        }
        copy = malloc(li.size ? li.size : 1);
        int r = copy ? nk_host_upgrade(g->host, li.data, li.size, &err) : -ENOMEM;
        if (!copy)
                snprintf(err.msg, sizeof err.msg, "out of memory");
        if (r < 0) {
                gen_put(g);
                enif_release_binary(&li);
                free(copy);
                if (sscanf(err.msg, "Library upgrade-call unsuccessful (%d).", &code) != 1 || code == 0)
                        code = 1;
                report("'%s': upgrade: %s", P.real, err.msg);
                return code;
        }
        memcpy(copy, li.data, li.size);
        pthread_mutex_lock(&P.lock);
        g->upgraded = true;
        free(P.load_info);
        P.load_info = copy;
        P.load_info_len = li.size;
        P.old_instance = (uintptr_t) *old_priv_data;
        *priv_data = (void *) (uintptr_t) ++P.instance;
        pthread_mutex_unlock(&P.lock);
        gen_put(g);
        enif_release_binary(&li);
        return 0;
}

/* The module let go of an instance (purge). The old one an upgrade left:
 * its unload() runs in the host, which serves on. The current one: its
 * unload() runs, then the host stops, its cgroup is removed
 * (nk_host_free), and a later load starts afresh. */
static void unload(ErlNifEnv *env, void *priv_data)
{
        uintptr_t which = (uintptr_t) priv_data;
        nk_error err = { 0 };

        pthread_mutex_lock(&P.lock);
        bool current = which == P.instance, old = P.old_instance && which == P.old_instance;
        if (old)
                P.old_instance = 0;
        pthread_mutex_unlock(&P.lock);
        /* A late unload of an instance a newer load replaced (load_again). */
        if (!current && !old)
                return;
        struct gen *g = hold_current(NULL, 0);
        /* The old instance lives only in the host that ran the upgrade: a
         * host restarted since ran load() and has none. */
        bool ask = g && (nk_host_callbacks(g->host) & NK_HOST_HAS_UNLOAD) && (!old || g->upgraded);
        if (ask && nk_host_unload(g->host, old, &err) < 0)
                report("'%s': unload: %s", P.real, err.msg);
        if (g && old)
                g->upgraded = false;
        if (g)
                gen_put(g);
        if (old)
                return;
        stop_heartbeat(&P);
        reset(&P);
}

/* ---- calls --------------------------------------------------------------- */

/* A call that moved to a dirty scheduler: the ticket, its host, and the
 * request's buffers, which live as long as the call (nifkit.h). */
struct pending_call {
        nk_call *call;
        struct gen *g;
        unsigned index;
        struct request req;
};

static void pending_call_dtor(ErlNifEnv *env, void *obj)
{
        struct pending_call *pc = obj;
        /* Only when the continuation never ran (enif_schedule_nif failed). */
        if (pc->call)
                nk_host_call_cancel(pc->call);
        request_release(&pc->req);
        if (pc->g)
                gen_put(pc->g);
}

/* Raises the death's error after the restart it calls for, on a dirty
 * scheduler. argv: the error term, the dead generation's number, and the
 * nk_error as a binary. */
static ERL_NIF_TERM restart_then_raise(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        unsigned number;
        ErlNifBinary b;
        if (argc == 3 && enif_get_uint(env, argv[1], &number) && enif_inspect_binary(env, argv[2], &b) &&
            b.size == sizeof(nk_error)) {
                nk_error why;
                memcpy(&why, b.data, sizeof why);
                host_died(number, &why);
        }
        return enif_raise_exception(env, argv[0]);
}

/* The host of g died during a call: the caller gets why, after the
 * restart, which must not run on a normal scheduler. */
static ERL_NIF_TERM died(ErlNifEnv *env, struct gen *g, const nk_error *err, bool dirty)
{
        ERL_NIF_TERM e = error_term(env, err);
        unsigned number = g->number;
        gen_put(g);
        if (dirty) {
                host_died(number, err);
                return enif_raise_exception(env, e);
        }
        ERL_NIF_TERM why;
        unsigned char *p = enif_make_new_binary(env, sizeof *err, &why);
        if (!p)
                return enif_raise_exception(env, e);
        memcpy(p, err, sizeof *err);
        ERL_NIF_TERM a[3] = { e, enif_make_uint(env, number), why };
        return enif_schedule_nif(env, "nifkit_restart", ERL_NIF_DIRTY_JOB_IO_BOUND, restart_then_raise, 3, a);
}

/* The host broke a limit or the protocol in its result: it is killed, and
 * the call fails as for any death. */
static void kill_host(struct gen *g, const char *reason, const char *msg, nk_error *err)
{
        (void) nk_host_kill(g->host, reason, msg);
        *err = (nk_error) { .kind = NK_ERR_HOST_DIED, .code = -ECONNRESET };
        snprintf(err->msg, sizeof err->msg, "host for %s killed: %s", P.real, msg);
        snprintf(err->reason, sizeof err->reason, "%s", reason);
}

/*
 * The result's ETF as a term of env. SAFE first: it refuses atoms BEAM does
 * not have. Only then are those counted, and decoded if the host's budget
 * allows them. Returns false with err filled when the host was killed.
 */
/* A result that is one binary becomes a binary over its buffer, with no
 * copy. Takes res's memory when it does. */
static bool binary_result(ErlNifEnv *env, nk_result *res, ERL_NIF_TERM *ret)
{
        const uint8_t *e = res->etf;
        if (res->alloc != &pool_results || res->len < 6 || e[0] != 131 || e[1] != 109 ||
            ((uint32_t) e[2] << 24 | (uint32_t) e[3] << 16 | (uint32_t) e[4] << 8 | e[5]) != res->len - 6)
                return false;
        if (!pool_binary(env, res->owner, e + 6, res->len - 6, ret))
                return false;
        res->owner = NULL;
        return true;
}

static bool decode_result(ErlNifEnv *env, struct gen *g, nk_result *res, ERL_NIF_TERM *ret, nk_error *err)
{
        char msg[224];

        if (binary_result(env, res, ret))
                return true;
        if (enif_binary_to_term(env, res->etf, res->len, ret, ERL_NIF_BIN2TERM_SAFE) != res->len) {
                long fresh = atoms_new_in_etf(env, res->etf, res->len);
                uint32_t max = proxy_max_new_atoms();
                if (fresh < 0) {
                        kill_host(g, "protocol", "its result is not one valid term", err);
                        return false;
                }
                uint64_t used = 0;
                if (fresh > 0 && max && !gen_take_atoms(g, (uint64_t) fresh, max, &used)) {
                        snprintf(msg, sizeof msg, "its result has %ld new atoms; with the %" PRIu64 " it made "
                                 "before, beyond the budget of %u for the host's lifetime (max_new_atoms)",
                                 fresh, used, max);
                        kill_host(g, "atom_budget", msg, err);
                        return false;
                }
                if (enif_binary_to_term(env, res->etf, res->len, ret, 0) != res->len) {
                        kill_host(g, "protocol", "its result is not one valid term", err);
                        return false;
                }
        }
        if (!res->no_handles && res_etf_has_handles(res->etf, res->len))
                *ret = res_import(env, g, *ret);
        return true;
}

/* Ends a call with its outcome r (nk_host_call_poll's). dirty: on a dirty
 * scheduler now. Lets go of g. */
static ERL_NIF_TERM finish(ErlNifEnv *env, struct gen *g, int r, nk_result *res, nk_error *err, bool dirty)
{
        ERL_NIF_TERM t;

        if (r < 0) {
                if (nk_error_is_death(err))
                        return died(env, g, err, dirty);
                gen_put(g);
                return enif_raise_exception(env, error_term(env, err));
        }
        bool ok = decode_result(env, g, res, &t, err);
        int exception = res->exception;
        nk_result_free(res);
        if (!ok)
                return died(env, g, err, dirty);
        gen_put(g);
        return exception ? enif_raise_exception(env, t) : t;
}

static int start_call(struct gen *g, unsigned index, const struct request *rq, nk_call **ret, nk_error *err)
{
        return nk_host_call_startv(g->host, index, rq->pid_len ? rq->pid : NULL, rq->pid_len, rq->iov, rq->niov,
                                   ret, err);
}

/* The continuation on a dirty I/O scheduler: starts the call if it is not
 * yet (a request too long to send without waiting), waits for the rest. */
static ERL_NIF_TERM resume(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct pending_call *pc;
        nk_result res = { 0 };
        nk_error err = { 0 };

        if (argc < 1 || !enif_get_resource(env, argv[0], P.call_type, (void **) &pc) || !pc->g)
                return enif_raise_exception(env, nifkit_error(env, "system", "lost a pending call"));
        struct gen *g = pc->g;
        struct request *rq = &pc->req;
        pc->g = NULL;
        int r = 0;
        nk_call *c = pc->call;
        pc->call = NULL;
        if (!c)
                r = start_call(g, pc->index, rq, &c, &err);
        if (r >= 0)
                r = nk_host_call_poll(c, -1, &res, &err);
        request_release(rq);
        return finish(env, g, r, &res, &err, true);
}

/* Moves a call to a dirty I/O scheduler: one still running in the host (c),
 * or one not started yet (c NULL). Takes the request's buffers. */
static ERL_NIF_TERM hop(ErlNifEnv *env, unsigned index, struct gen *g, nk_call *c, struct request *rq)
{
        struct pending_call *pc = enif_alloc_resource(P.call_type, sizeof *pc);
        if (!pc) {
                /* Nowhere to keep it: wait here after all. */
                nk_result res = { 0 };
                nk_error err = { 0 };
                int r = 0;
                if (!c)
                        r = start_call(g, index, rq, &c, &err);
                if (r >= 0)
                        r = nk_host_call_poll(c, -1, &res, &err);
                request_release(rq);
                return finish(env, g, r, &res, &err, false);
        }
        *pc = (struct pending_call) { .call = c, .g = g, .index = index, .req = *rq };
        *rq = (struct request) {};
        /* The binaries whose bytes the request points at go along, so that
         * they live as long as the call. */
        ERL_NIF_TERM a[1 + REQUEST_PIECES] = { enif_make_resource(env, pc) };
        for (unsigned i = 0; i < pc->req.nkeep; i++)
                a[1 + i] = pc->req.keep[i];
        enif_release_resource(pc);
        return enif_schedule_nif(env, P.funcs[index].name, ERL_NIF_DIRTY_JOB_IO_BOUND, resume,
                                 1 + (int) pc->req.nkeep, a);
}

/* The current host for a call, or NULL with the exception to raise. */
static struct gen *call_gen(ErlNifEnv *env, ERL_NIF_TERM *exc)
{
        pthread_mutex_lock(&P.lock);
        struct gen *g = P.loaded && !P.limited ? P.cur : NULL;
        if (g)
                g->users++;
        /* Under P.lock: stop_heartbeat frees the heartbeat only after
         * taking it from P under the same lock. */
        nk_heartbeat_used(P.heartbeat);
        bool limited = P.limited;
        nk_error why = { .kind = NK_ERR_NOT_RUNNING };
        if (limited) {
                snprintf(why.msg, sizeof why.msg, "%s", P.limit_msg);
                snprintf(why.reason, sizeof why.reason, "restart_limit");
        }
        pthread_mutex_unlock(&P.lock);
        if (g)
                return g;
        *exc = limited ? death_error(env, "restart_limit", &why)
                       : nifkit_error(env, "not_running", "the wrapped library is not loaded");
        return NULL;
}

static ERL_NIF_TERM proxy_call(ErlNifEnv *env, unsigned index, int argc, const ERL_NIF_TERM argv[])
{
        struct request rq;
        nk_result res = { 0 };
        nk_error err = { 0 };
        ERL_NIF_TERM exc;
        nk_call *c = NULL;

        struct gen *g = call_gen(env, &exc);
        if (!g)
                return enif_raise_exception(env, exc);
        if (!request_build(env, g, argc, argv, &rq, &exc)) {
                gen_put(g);
                return enif_raise_exception(env, exc);
        }
        /* Refused here, before any scheduler hop or byte sent. */
        uint64_t max_args = P.policy->limits.max_args_bytes;
        if (max_args && rq.len > max_args) {
                err = (nk_error) { .kind = NK_ERR_REJECTED, .code = -E2BIG };
                snprintf(err.msg, sizeof err.msg,
                         "the arguments of %s:%s/%u are %zu bytes as ETF, above max_args_bytes (%llu)", P.module,
                         P.funcs[index].name, P.funcs[index].arity, rq.len, (unsigned long long) max_args);
                snprintf(err.reason, sizeof err.reason, "args_too_large");
                err.size = rq.len;
                err.limit = max_args;
                request_release(&rq);
                gen_put(g);
                return enif_raise_exception(env, error_term(env, &err));
        }

        /* A function the library flags dirty already runs on a dirty
         * scheduler: it waits there, as it would for the real NIF. Any
         * other must not hold a normal scheduler, so a request too long to
         * send without waiting for the host goes to a dirty one first. */
        bool dirty = P.funcs[index].flags != 0;
        if (!dirty && rq.len > nk_host_call_inline_max(g->host))
                return hop(env, index, g, NULL, &rq);
        int r = start_call(g, index, &rq, &c, &err);
        if (r >= 0) {
                r = nk_host_call_poll(c, dirty ? -1 : FAST_WAIT_MS, &res, &err);
                if (r == -EAGAIN)
                        return hop(env, index, g, c, &rq);
        }
        request_release(&rq);
        return finish(env, g, r, &res, &err, dirty);
}
