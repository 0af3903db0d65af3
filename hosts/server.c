/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's protocol server. The main thread reads requests; LOAD, PING,
 * RELEASE and STOP are handled there, CALLs go to a pool of worker threads
 * so that several calls run at once, as they do on BEAM's schedulers.
 *
 * A malformed request is answered with an ERROR for its id and the server
 * goes on: only the runtime decides that a host must die.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "etf.h"
#include "broker_client.h"
#include "hooks.h"
#include "host_internal.h"
#include "macro.h"
#include "protocol.h"
#include "server.h"
#include "shm_serve.h"
#include "transport.h"

#define DEFAULT_WORKERS 4
#define MAX_WORKERS 1024

struct job {
        struct job *next;
        struct nk_msg msg;
};

struct server {
        struct nk_transport tr;
        struct nk_library lib;
        bool opened;            /* OPEN done: lib is set, load() not run yet */
        unsigned workers;
        bool loaded;

        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct job *head, *tail;
};

/* The one server of this process: enif_send reaches it from any thread. */
static struct server *the_server;

/* Calls in flight, counted by the instance they started under (the parity
 * of the upgrades so far), so that an instance's unload() waits until none
 * of its calls still runs; and whether the current one is unloaded. */
static _Atomic unsigned instance_epoch;
static _Atomic unsigned calls_in_flight[2];
static _Atomic bool unloaded;
/* How long an unload waits for its instance's calls, at most: below the
 * runtime's wait for the reply (START_TIMEOUT_MS). */
#define UNLOAD_DRAIN_MS 2000

/* SENDs that went out, and RELEASEs that were carried out: the two counts
 * that order the shared-memory path's calls against the socket (server.h). */
static _Atomic uint64_t sends_sent;
static _Atomic uint64_t releases_done;
static pthread_mutex_t releases_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t releases_cond = PTHREAD_COND_INITIALIZER;
static unsigned releases_waiters;

uint64_t nk_server_sends(void)
{
        return atomic_load(&sends_sent);
}

void nk_server_wait_releases(uint64_t n)
{
        if (atomic_load(&releases_done) >= n)
                return;
        pthread_mutex_lock(&releases_lock);
        releases_waiters++;
        while (atomic_load(&releases_done) < n)
                pthread_cond_wait(&releases_cond, &releases_lock);
        releases_waiters--;
        pthread_mutex_unlock(&releases_lock);
}

static void release_done(void)
{
        atomic_fetch_add(&releases_done, 1);
        pthread_mutex_lock(&releases_lock);
        if (releases_waiters)
                pthread_cond_broadcast(&releases_cond);
        pthread_mutex_unlock(&releases_lock);
}

/* ---- replies ------------------------------------------------------------- */

static int socket_send(struct nk_reply_sink *sink, uint32_t type, uint64_t id, const struct iovec *iov,
                       size_t niov)
{
        return nk_transport_send(&the_server->tr, type, id, iov, niov);
}

/* Replies to requests that came over the socket go back over it. */
static struct nk_reply_sink socket_sink = { .send = socket_send };

__attribute__((format(printf, 4, 5)))
int nk_server_reply_error(struct nk_reply_sink *sink, uint64_t id, uint32_t category, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        if ((size_t) n >= sizeof msg)
                n = sizeof msg - 1;
        const struct iovec iov[] = { { &category, sizeof category }, { msg, (size_t) n } };
        return sink->send(sink, NK_MSG_ERROR, id, iov, NK_ARRAY_SIZE(iov));
}

#define reply_error(s, id, category, ...) nk_server_reply_error(&socket_sink, id, category, __VA_ARGS__)

/* ---- enif_send ----------------------------------------------------------- */

static int op_send(ERL_NIF_TERM to, ERL_NIF_TERM msg)
{
        struct server *s = the_server;
        if (!s)
                return -ENOTCONN;
        struct nk_buf to_b = {}, msg_b = {};
        int r = nk_etf_encode(to, &to_b);
        if (r >= 0)
                r = nk_etf_encode(msg, &msg_b);
        if (r >= 0 && to_b.len > UINT32_MAX)
                r = -EMSGSIZE;
        if (r >= 0) {
                uint32_t to_len = (uint32_t) to_b.len;
                const struct iovec iov[] = {
                        { &to_len, sizeof to_len },
                        { to_b.data, to_b.len },
                        { msg_b.data, msg_b.len },
                };
                r = nk_transport_send(&s->tr, NK_MSG_SEND, 0, iov, NK_ARRAY_SIZE(iov));
                if (r >= 0)
                        atomic_fetch_add(&sends_sent, 1);
        }
        nk_buf_free(&to_b);
        nk_buf_free(&msg_b);
        return r;
}

/* What the host cannot know yet: these need requests the protocol does not
 * have, so the enif_* functions behind them return their documented
 * failure values. */
static int op_alive(ERL_NIF_TERM id)
{
        return -ENOTSUP;
}

static int op_whereis(ERL_NIF_TERM name, ERL_NIF_TERM *ret)
{
        return -ENOTSUP;
}

static int op_monitor(uint64_t resource_handle, ERL_NIF_TERM pid, uint64_t *ret_monitor)
{
        return -ENOTSUP;
}

static int op_demonitor(uint64_t monitor)
{
        return -ENOTSUP;
}

static const struct nk_runtime_ops server_ops = {
        .send = op_send,
        .process_alive = op_alive,
        .port_alive = op_alive,
        .whereis = op_whereis,
        .monitor = op_monitor,
        .demonitor = op_demonitor,
};

/* ---- calls ----------------------------------------------------------------- */

static int thread_type_for(unsigned flags)
{
        if (flags & ERL_NIF_DIRTY_JOB_CPU_BOUND)
                return ERL_NIF_THR_DIRTY_CPU_SCHEDULER;
        if (flags & ERL_NIF_DIRTY_JOB_IO_BOUND)
                return ERL_NIF_THR_DIRTY_IO_SCHEDULER;
        return ERL_NIF_THR_NORMAL_SCHEDULER;
}

/* Decodes one whole ETF term; on failure replies and returns -1. */
static int decode_whole(struct nk_reply_sink *sink, uint64_t id, ErlNifEnv *env, const char *what,
                        const uint8_t *p, size_t len, ERL_NIF_TERM *ret)
{
        struct nk_etf_error err = {};
        size_t used = 0;
        int r = nk_etf_decode(env, p, len, 0, ret, &used, &err);
        if (r == -ENOMEM)
                nk_server_reply_error(sink, id, NK_PERR_INTERNAL, "out of memory decoding %s", what);
        else if (r < 0)
                nk_server_reply_error(sink, id, NK_PERR_REJECTED, "malformed %s ETF at byte %zu: %s", what, err.offset,
                               err.msg);
        else if (used != len)
                nk_server_reply_error(sink, id, NK_PERR_REJECTED, "malformed %s ETF: %zu trailing bytes", what,
                               len - used);
        return r < 0 || used != len ? -1 : 0;
}

/* Runs the function and its enif_schedule_nif continuations. */
static ERL_NIF_TERM invoke(ErlNifEnv *env, const ErlNifFunc *f, int argc, const ERL_NIF_TERM *argv)
{
        nk_set_thread_type(thread_type_for(f->flags));
        ERL_NIF_TERM r = f->fptr(env, argc, argv);
        while (r == NK_RESCHEDULE && env->resched_fp && env->exception == NK_NONE) {
                ERL_NIF_TERM (*fp)(ErlNifEnv *, int, const ERL_NIF_TERM[]) = env->resched_fp;
                int n = env->resched_argc;
                const ERL_NIF_TERM *args = env->resched_argv;
                nk_set_thread_type(thread_type_for((unsigned) nk_resched_flags(env)));
                env->resched_fp = NULL;
                env->timeslice = 0;
                r = fp(env, n, args);
        }
        nk_set_thread_type(ERL_NIF_THR_NORMAL_SCHEDULER);
        return r;
}

void nk_server_call(ErlNifEnv *env, uint64_t id, const uint8_t *payload, size_t payload_len, struct nk_buf *out,
                    struct nk_reply_sink *sink)
{
        struct server *s = the_server;
        struct nk_rd rd = nk_rd_init(payload, payload_len);
        const uint8_t *pid, *args;
        size_t pid_len, args_len;
        uint32_t index;

        if (!nk_rd_u32(&rd, &index) || !nk_rd_str(&rd, SIZE_MAX, &pid, &pid_len)) {
                nk_server_reply_error(sink, id, NK_PERR_REJECTED, "malformed CALL: payload too short");
                return;
        }
        nk_rd_rest(&rd, &args, &args_len);
        const ErlNifEntry *e = s->lib.entry;
        if (index >= (uint32_t) e->num_of_funcs) {
                nk_server_reply_error(sink, id, NK_PERR_REJECTED, "bad function index %u (the library has %d functions)", index,
                            e->num_of_funcs);
                return;
        }
        const ErlNifFunc *f = &e->funcs[index];

        nk_env_reset(env);
        ERL_NIF_TERM self = NK_NONE, list;
        /* The same caller calls again and again: pids are interned, so the
         * last one's term stands for the same bytes on this thread. */
        static __thread uint8_t last_pid[64];
        static __thread size_t last_pid_len;
        static __thread ERL_NIF_TERM last_self;
        if (pid_len > 0 && pid_len == last_pid_len && memcmp(pid, last_pid, pid_len) == 0) {
                self = last_self;
        } else if (pid_len > 0) {
                if (decode_whole(sink, id, env, "caller pid", pid, pid_len, &self) < 0)
                        return;
                if (!nk_is_pid(self) && !nk_is_kind(self, NK_EXTPID)) {
                        nk_server_reply_error(sink, id, NK_PERR_REJECTED, "caller pid ETF is not a pid");
                        return;
                }
                if (pid_len <= sizeof last_pid) {
                        memcpy(last_pid, pid, pid_len);
                        last_pid_len = pid_len;
                        last_self = self;
                }
        }
        if (decode_whole(sink, id, env, "args", args, args_len, &list) < 0)
                return;

        size_t argc = 0;
        for (ERL_NIF_TERM t = list; nk_is_kind(t, NK_CONS); t = ((struct nk_cons *) nk_box_of(t))->tail)
                argc++;
        ERL_NIF_TERM *argv = nk_env_alloc(env, (argc ? argc : 1) * sizeof *argv);
        if (!argv) {
                nk_server_reply_error(sink, id, NK_PERR_INTERNAL, "out of memory");
                return;
        }
        ERL_NIF_TERM t = list;
        for (size_t i = 0; i < argc; i++) {
                const struct nk_cons *c = (const struct nk_cons *) nk_box_of(t);
                argv[i] = c->head;
                t = c->tail;
        }
        if (t != NK_NIL) {
                nk_server_reply_error(sink, id, NK_PERR_REJECTED, "args ETF is not a proper list");
                return;
        }
        if (argc != f->arity) {
                nk_server_reply_error(sink, id, NK_PERR_REJECTED, "wrong arity: %s/%u called with %zu arguments", f->name,
                            f->arity, argc);
                return;
        }

        if (atomic_load(&unloaded)) {
                nk_server_reply_error(sink, id, NK_PERR_REJECTED, "CALL after the library was unloaded");
                return;
        }
        /* Counted under the instance it starts under; an upgrade stores
         * the new priv before it moves the epoch on, so a call counted
         * under the new epoch never sees the old priv. */
        unsigned epoch;
        for (;;) {
                epoch = atomic_load(&instance_epoch);
                atomic_fetch_add(&calls_in_flight[epoch & 1], 1);
                if (atomic_load(&instance_epoch) == epoch)
                        break;
                atomic_fetch_sub(&calls_in_flight[epoch & 1], 1);
        }

        struct nk_call call = { .id = id, .index = index, .func = f };
        /* Every call's env is process-bound, as in BEAM, even when the
         * runtime names no caller (enif_self then fails). */
        env->process_bound = true;
        env->self = self;
        env->call = &call;
        /* An upgrade may replace it while workers run calls. */
        env->priv = __atomic_load_n(&s->lib.priv, __ATOMIC_ACQUIRE);
        env->exception = NK_NONE;
        env->timeslice = 0;

        ERL_NIF_TERM result = invoke(env, f, (int) argc, argv);
        atomic_fetch_sub(&calls_in_flight[epoch & 1], 1);
        uint32_t status = 0;
        if (env->exception != NK_NONE) {
                /* As in BEAM, a raised exception wins over whatever the NIF
                 * returned after raising it. */
                status = 1;
                result = env->exception;
        }

        out->len = 0;
        int r = -EINVAL;
        size_t handles = 0;
        if (result != NK_NONE && result != NK_EXCEPTION && result != NK_RESCHEDULE)
                r = nk_etf_encode_counted(result, out, &handles);
        if (handles == 0)
                status |= NK_RESULT_NO_HANDLES;
        /* The call's terms die before the runtime can see the result: a
         * RELEASE it sends in response must find the env's references to
         * resources already gone, as they are in BEAM once a NIF returns. */
        env->call = NULL;
        env->process_bound = false;
        env->self = NK_NONE;
        nk_env_reset(env);
        if (r < 0)
                nk_server_reply_error(sink, id, NK_PERR_INTERNAL, "%s/%u returned %s", f->name, f->arity,
                            r == -ENOMEM ? "a term too large to encode (out of memory)" : "an invalid term");
        else {
                const struct iovec iov[] = { { &status, sizeof status }, { out->data, out->len } };
                r = sink->send(sink, NK_MSG_RESULT, id, iov, NK_ARRAY_SIZE(iov));
                if (r == -EMSGSIZE)
                        nk_server_reply_error(sink, id, NK_PERR_INTERNAL, "%s/%u returned a term of %zu bytes, above the limit",
                                    f->name, f->arity, out->len);
        }
        /* A huge result's buffer is not worth keeping for the next call. */
        if (out->cap > (1u << 20))
                nk_buf_free(out);
}

static void *worker_main(void *arg)
{
        struct server *s = arg;
        ErlNifEnv env;
        struct nk_buf out = {};

        nk_env_init(&env);
        nk_set_thread_type(ERL_NIF_THR_NORMAL_SCHEDULER);
        for (;;) {
                pthread_mutex_lock(&s->lock);
                while (!s->head)
                        pthread_cond_wait(&s->cond, &s->lock);
                struct job *j = s->head;
                s->head = j->next;
                if (!s->head)
                        s->tail = NULL;
                pthread_mutex_unlock(&s->lock);

                nk_server_call(&env, j->msg.h.id, j->msg.payload, j->msg.h.payload_len, &out, &socket_sink);
                nk_msg_free(&j->msg);
                free(j);
        }
        return NULL;
}

static int enqueue(struct server *s, struct nk_msg *m)
{
        struct job *j = malloc(sizeof *j);
        if (!j)
                return -ENOMEM;
        *j = (struct job) { .msg = *m };
        *m = (struct nk_msg) {};
        pthread_mutex_lock(&s->lock);
        if (s->tail)
                s->tail->next = j;
        else
                s->head = j;
        s->tail = j;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        return 0;
}

/* ---- requests on the main thread ---------------------------------------- */

/* The LOADED reply: module name and function table. */
static void send_loaded(struct server *s, uint64_t id)
{
        const ErlNifEntry *e = s->lib.entry;
        struct nk_buf b = {};
        int r = nk_put_str(&b, e->name, strlen(e->name));
        if (r >= 0)
                r = nk_put_u32(&b, (uint32_t) e->num_of_funcs);
        for (int i = 0; r >= 0 && i < e->num_of_funcs; i++) {
                r = nk_put_str(&b, e->funcs[i].name, strlen(e->funcs[i].name));
                if (r >= 0)
                        r = nk_put_u32(&b, e->funcs[i].arity);
                if (r >= 0)
                        r = nk_put_u32(&b, e->funcs[i].flags);
        }
        if (r >= 0)
                r = nk_put_u32(&b, (e->upgrade ? NK_CALLBACK_UPGRADE : 0) | (e->unload ? NK_CALLBACK_UNLOAD : 0));
        if (r < 0)
                reply_error(s, id, NK_PERR_INTERNAL, "out of memory");
        else {
                const struct iovec iov[] = { { b.data, b.len } };
                nk_transport_send(&s->tr, NK_MSG_LOADED, id, iov, 1);
        }
        nk_buf_free(&b);
}

/* LOAD's scope libraries, each into the global scope (RTLD_GLOBAL) where
 * the library about to be loaded binds to them, as a NIF does to the
 * libraries beam.smp links. */
static int load_scope(struct nk_rd *rd, char *err, size_t errlen)
{
        uint32_t n;
        if (!nk_rd_u32(rd, &n) || n > NK_SCOPE_MAX) {
                snprintf(err, errlen, "malformed LOAD: bad scope count");
                return -EINVAL;
        }
        for (uint32_t i = 0; i < n; i++) {
                const uint8_t *p;
                size_t len;
                char path[PATH_MAX];
                if (!nk_rd_str(rd, PATH_MAX - 1, &p, &len) || len == 0 || memchr(p, 0, len)) {
                        snprintf(err, errlen, "malformed LOAD: bad scope library %u", i);
                        return -EINVAL;
                }
                memcpy(path, p, len);
                path[len] = '\0';
                dlerror();
                if (!dlopen(path, RTLD_NOW | RTLD_GLOBAL)) {
                        const char *why = dlerror();
                        snprintf(err, errlen, "cannot load %.300s into the global scope: %.500s", path,
                                 why ? why : "unknown error");
                        return -ENOEXEC;
                }
        }
        return 0;
}

/* LOAD's and OPEN's first half: workers, path, dlopen and entry checks.
 * Leaves the rest of the payload (LOAD's load_info) in rd. */
static bool open_library(struct server *s, uint64_t id, struct nk_rd *rd)
{
        const uint8_t *path_p;
        size_t path_len;
        uint32_t workers;

        if (s->opened || s->loaded) {
                reply_error(s, id, NK_PERR_REJECTED, "a library is already loaded (%s)", s->lib.path);
                return false;
        }
        if (!nk_rd_u32(rd, &workers) || !nk_rd_str(rd, PATH_MAX - 1, &path_p, &path_len) || path_len == 0 ||
            memchr(path_p, 0, path_len)) {
                reply_error(s, id, NK_PERR_REJECTED, "malformed LOAD: bad library path");
                return false;
        }
        if (workers == 0)
                workers = DEFAULT_WORKERS;
        if (workers > MAX_WORKERS)
                workers = MAX_WORKERS;
        char path[PATH_MAX];
        memcpy(path, path_p, path_len);
        path[path_len] = '\0';

        char err[900];
        int r = load_scope(rd, err, sizeof err);
        if (r < 0) {
                reply_error(s, id, r == -EINVAL ? NK_PERR_REJECTED : NK_PERR_LOAD, "%s", err);
                return false;
        }
        nk_set_scheduler_count((int) workers);
        r = nk_loader_open(path, &s->lib, err, sizeof err);
        if (r < 0) {
                reply_error(s, id, r == -ENOMEM ? NK_PERR_INTERNAL : NK_PERR_LOAD, "%s", err);
                return false;
        }
        s->workers = workers;
        s->opened = true;
        return true;
}

/* The second half: load(), then the workers. */
static bool run_load(struct server *s, uint64_t id, const uint8_t *info, size_t info_len)
{
        char err[900];
        int r = nk_loader_run_load(&s->lib, info, info_len, err, sizeof err);
        if (r < 0) {
                reply_error(s, id, r == -ENOMEM ? NK_PERR_INTERNAL : NK_PERR_LOAD, "%s", err);
                return false;
        }

        unsigned started = 0;
        if (nk_shm_serve_active()) {
                /* One worker per slot, however many workers LOAD asked for:
                 * the runtime sized the region by the same policy. */
                started = nk_shm_serve_start();
        } else {
                for (; started < s->workers; started++) {
                        pthread_t t;
                        if (pthread_create(&t, NULL, worker_main, s) != 0)
                                break;
                        pthread_detach(t);
                }
        }
        if (started == 0) {
                reply_error(s, id, NK_PERR_INTERNAL, "%s: cannot start worker threads", s->lib.path);
                return false;
        }
        s->loaded = true;
        return true;
}

static void handle_load(struct server *s, const struct nk_msg *m)
{
        struct nk_rd rd = nk_rd_init(m->payload, m->h.payload_len);
        const uint8_t *info;
        size_t info_len;

        if (!open_library(s, m->h.id, &rd))
                return;
        nk_rd_rest(&rd, &info, &info_len);
        if (run_load(s, m->h.id, info, info_len))
                send_loaded(s, m->h.id);
}

static void handle_open(struct server *s, const struct nk_msg *m)
{
        struct nk_rd rd = nk_rd_init(m->payload, m->h.payload_len);

        if (!open_library(s, m->h.id, &rd))
                return;
        if (rd.left != 0) {
                reply_error(s, m->h.id, NK_PERR_REJECTED, "malformed OPEN: trailing bytes");
                return;
        }
        send_loaded(s, m->h.id);
}

static void handle_run_load(struct server *s, const struct nk_msg *m)
{
        if (!s->opened || s->loaded) {
                reply_error(s, m->h.id, NK_PERR_REJECTED, "RUN_LOAD %s",
                            s->loaded ? "after the library was loaded" : "before OPEN");
                return;
        }
        if (run_load(s, m->h.id, m->payload, m->h.payload_len))
                nk_transport_send(&s->tr, NK_MSG_LOAD_DONE, m->h.id, NULL, 0);
}

static void handle_upgrade(struct server *s, const struct nk_msg *m)
{
        char err[900];
        if (!s->loaded) {
                reply_error(s, m->h.id, NK_PERR_REJECTED, "UPGRADE before the library was loaded");
                return;
        }
        int r = nk_loader_run_upgrade(&s->lib, m->payload, m->h.payload_len, err, sizeof err);
        if (r < 0) {
                reply_error(s, m->h.id, r == -ENOMEM ? NK_PERR_INTERNAL : NK_PERR_LOAD, "%s", err);
                return;
        }
        atomic_fetch_add(&instance_epoch, 1);   /* after the new priv is stored */
        nk_transport_send(&s->tr, NK_MSG_LOAD_DONE, m->h.id, NULL, 0);
}

static void handle_unload(struct server *s, const struct nk_msg *m)
{
        struct nk_rd rd = nk_rd_init(m->payload, m->h.payload_len);
        uint32_t which;
        char err[900];
        if (!s->loaded || !nk_rd_u32(&rd, &which) || which > 1 || rd.left != 0) {
                reply_error(s, m->h.id, NK_PERR_REJECTED, "%s", s->loaded ? "malformed UNLOAD"
                                                                          : "UNLOAD before the library was loaded");
                return;
        }
        /* BEAM unloads an instance once no code of it runs: here, once
         * none of the calls that started under it still does. */
        unsigned epoch = atomic_load(&instance_epoch) - (which == 1 ? 1 : 0);
        if (which == 0)
                atomic_store(&unloaded, true);
        for (int waited = 0; atomic_load(&calls_in_flight[epoch & 1]) > 0 && waited < UNLOAD_DRAIN_MS; waited++)
                usleep(1000);
        int r = nk_loader_run_unload(&s->lib, which == 1, err, sizeof err);
        if (r < 0)
                reply_error(s, m->h.id, NK_PERR_REJECTED, "%s", err);
        else
                nk_transport_send(&s->tr, NK_MSG_LOAD_DONE, m->h.id, NULL, 0);
}

/* Returns false when the server must stop. */
static bool handle(struct server *s, struct nk_msg *m)
{
        uint64_t id = m->h.id;
        uint64_t handle;

        if (m->h.flags != 0) {
                reply_error(s, id, NK_PERR_REJECTED, "%s with unknown flags 0x%x", nk_msg_type_name(m->h.type),
                            m->h.flags);
                return true;
        }
        switch (m->h.type) {
        case NK_MSG_LOAD:
                handle_load(s, m);
                return true;
        case NK_MSG_OPEN:
                handle_open(s, m);
                return true;
        case NK_MSG_RUN_LOAD:
                handle_run_load(s, m);
                return true;
        case NK_MSG_UPGRADE:
                handle_upgrade(s, m);
                return true;
        case NK_MSG_UNLOAD:
                handle_unload(s, m);
                return true;
        case NK_MSG_CALL:
                if (!s->loaded)
                        reply_error(s, id, NK_PERR_REJECTED, "CALL before a library was loaded");
                else if (nk_shm_serve_active())
                        reply_error(s, id, NK_PERR_REJECTED, "CALL on the socket, but calls go through shared memory");
                else if (enqueue(s, m) < 0)
                        reply_error(s, id, NK_PERR_INTERNAL, "out of memory");
                return true;
        case NK_MSG_RELEASE:
                if (m->h.payload_len == sizeof handle) {
                        memcpy(&handle, m->payload, sizeof handle);
                        nk_resource_handle_drop(handle);
                } else if (m->h.payload_len == 2 * sizeof handle) {
                        uint64_t count;
                        memcpy(&handle, m->payload, sizeof handle);
                        memcpy(&count, m->payload + sizeof handle, sizeof count);
                        nk_resource_handle_release(handle, count);
                } else {
                        reply_error(s, id, NK_PERR_REJECTED, "malformed RELEASE");
                }
                release_done();
                return true;
        case NK_MSG_PING:
                nk_transport_send(&s->tr, NK_MSG_PONG, id, NULL, 0);
                return true;
        case NK_MSG_STOP:
                return false;
        default:
                reply_error(s, id, NK_PERR_REJECTED, "unexpected message type %u (%s)", m->h.type,
                            nk_msg_type_name(m->h.type));
                return true;
        }
}

/* The datagrams that carry descriptors come first on the channel. */
static int accept_descriptors(int fd)
{
        for (;;) {
                struct nk_msg_header h;
                ssize_t n;
                do
                        n = recv(fd, &h, sizeof h, MSG_PEEK);
                while (n < 0 && errno == EINTR);
                if (n < 0)
                        return -errno;
                if (n < (ssize_t) sizeof h)
                        return 0;
                int r;
                if (h.type == NK_MSG_BROKER_CHANNEL)
                        r = nk_broker_client_accept(fd);
                else if (h.type == NK_MSG_SHM_REGION)
                        r = nk_shm_serve_accept(fd);
                else
                        return 0;
                if (r <= 0)
                        return r;
        }
}

int nk_server_run(int fd)
{
        static struct server s;
        /* The runtime bounds what it sends by the policy's max_args_bytes
         * (up to 2^40): the host takes whatever that allows, memory
         * permitting. */
        int r = nk_transport_init(&s.tr, fd, (size_t) 1 << 40);
        if (r < 0)
                return 1;
        pthread_mutex_init(&s.lock, NULL);
        pthread_cond_init(&s.cond, NULL);
        the_server = &s;
        nk_set_runtime_ops(&server_ops);
        /* load() runs here, and BEAM runs it on a normal scheduler. */
        nk_set_thread_type(ERL_NIF_THR_NORMAL_SCHEDULER);
        /* Before the first request, in any order: the broker's socket
         * and the shared-memory region, if the runtime passes them. */
        if (accept_descriptors(fd) < 0)
                return 1;

        for (;;) {
                struct nk_msg m;
                r = nk_transport_recv(&s.tr, &m);
                if (r == -ECONNRESET)
                        return 0;       /* the runtime is gone: nobody to serve */
                if (r == -EMSGSIZE) {
                        reply_error(&s, m.h.id, NK_PERR_REJECTED, "%s of %llu bytes is above the limit of %zu",
                                    nk_msg_type_name(m.h.type), (unsigned long long) m.h.payload_len,
                                    s.tr.max_payload);
                        continue;
                }
                if (r == -ENOMEM) {
                        reply_error(&s, m.h.id, NK_PERR_INTERNAL, "out of memory receiving %s",
                                    nk_msg_type_name(m.h.type));
                        continue;
                }
                if (r == -EBADMSG) {
                        reply_error(&s, 0, NK_PERR_REJECTED, "malformed datagram");
                        continue;
                }
                if (r < 0)
                        return 1;
                bool go_on = handle(&s, &m);
                nk_msg_free(&m);
                if (!go_on)
                        return 0;
        }
}
