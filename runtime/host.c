/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libnifkit: one nk_host per NIF library, each with its own host process.
 *
 * Threads: callers send requests under the transport's send lock and sleep
 * on their own condition variable; one reader thread per host receives
 * every message, hands replies to the waiting caller by id, delivers SENDs
 * to the callback, and when the channel ends reaps the host and fails
 * every pending call with the reason. Only the reader reaps.
 *
 * Nothing from the host is trusted: a message with a bad length, an unknown
 * type, a reply to nobody or a malformed field kills the host (it may be
 * compromised) and fails its calls with NK_ERR_PROTOCOL.
 *
 * Starting the host process (policy, launcher, environment, channel) is
 * host_launch.c's; this file sends LOAD and runs everything after.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "beam_scope.h"
#include "broker.h"
#include "buf.h"
#include "deadline.h"
#include "error.h"
#include "host_internal.h"
#include "launcher.h"
#include "macro.h"
#include "msg_parse.h"
#include "nifkit.h"
#include "nifkit_policy.h"
#include "protocol.h"
#include "sandbox.h"
#include "sequencer.h"
#include "shm_chan.h"
#include "status.h"
#include "transport.h"
#include "violation.h"

/* How long a host may take to start and run load(). */
#define START_TIMEOUT_MS 30000
/* How long a host may take to exit after STOP or after closing its end. */
#define EXIT_GRACE_MS 1000
#define ETF_VERSION 131

NK_EXPORT void nk_result_free(nk_result *res)
{
        if (!res)
                return;
        if (res->alloc && res->owner)
                res->alloc->release(res->alloc->arg, res->owner);
        else
                free(res->owner);
        *res = (nk_result) {};
}

NK_EXPORT int nk_library_is_nif(const char *path)
{
        char name[] = "nif_init";
        char *names[] = { name };
        struct nk_pathset want = { .paths = names, .n = 1, .cap = 1 };
        bool found = false;
        int r = nk_elf_mark_defined(path, &want, &found);

        return r < 0 ? r : found;
}

NK_EXPORT nk_host *nk_host_new(void)
{
        nk_host *h = calloc(1, sizeof *h);
        if (!h)
                return NULL;
        h->workers = 4;
        h->fd = -1;
        h->child.pidfd = -1;
        h->launcher = &nk_launcher_native;
        pthread_mutex_init(&h->lock, NULL);
        pthread_cond_init(&h->idle, NULL);
        pthread_condattr_t a;
        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(&h->sends_cond, &a);
        pthread_condattr_destroy(&a);
        return h;
}

static int set_string(char **dst, const char *src)
{
        if (!src)
                return -EINVAL;
        char *s = strdup(src);
        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

NK_EXPORT int nk_host_set_library(nk_host *h, const char *path)
{
        return set_string(&h->library, path);
}

NK_EXPORT int nk_host_set_host_binary(nk_host *h, const char *path)
{
        return set_string(&h->host_binary, path);
}

NK_EXPORT void nk_host_set_call_timeout(nk_host *h, unsigned ms)
{
        h->call_timeout_ms = ms;
}

NK_EXPORT void nk_host_set_workers(nk_host *h, unsigned n)
{
        h->workers = n ? n : 4;
}

NK_EXPORT void nk_host_set_policy(nk_host *h, const struct nk_policy *policy)
{
        h->policy = policy;
        if (!policy)
                return;
        h->call_timeout_ms = policy->limits.call_timeout_ms;
        h->workers = policy->workers ? policy->workers : 4;
}

NK_EXPORT int nk_host_set_cgroup_root(nk_host *h, const char *path)
{
        return set_string(&h->cgroup_root, path);
}

NK_EXPORT int nk_host_set_audit_log(nk_host *h, const char *path)
{
        return set_string(&h->audit_log, path);
}

NK_EXPORT void nk_host_set_environment(nk_host *h, nk_getenv_fn lookup, void *arg)
{
        h->getenv_fn = lookup;
        h->getenv_arg = arg;
}

NK_EXPORT void nk_host_allow_unsandboxed_development(nk_host *h)
{
        h->unsandboxed = true;
}

NK_EXPORT void nk_host_set_sandbox_ids(nk_host *h, unsigned uid, unsigned gid)
{
        h->sandbox_uid = uid;
        h->sandbox_gid = gid;
}

NK_EXPORT void nk_host_set_result_alloc(nk_host *h, const nk_result_alloc *alloc)
{
        h->result_alloc = alloc;
        if (alloc)
                h->shm_alloc = (struct nk_shm_alloc) { .alloc = alloc->alloc, .release = alloc->release,
                                                       .arg = alloc->arg };
}

NK_EXPORT void nk_host_set_send_callback(nk_host *h, nk_send_fn fn, void *arg)
{
        h->send_fn = fn;
        h->send_arg = arg;
}

NK_EXPORT const char *nk_host_module(const nk_host *h)
{
        return h->module;
}

NK_EXPORT unsigned nk_host_function_count(const nk_host *h)
{
        return h->nfuncs;
}

NK_EXPORT const nk_function *nk_host_function(const nk_host *h, unsigned index)
{
        return index < h->nfuncs ? &h->funcs[index] : NULL;
}

NK_EXPORT int nk_host_find_function(const nk_host *h, const char *name, unsigned arity)
{
        for (unsigned i = 0; i < h->nfuncs; i++)
                if (h->funcs[i].arity == arity && strcmp(h->funcs[i].name, name) == 0)
                        return (int) i;
        return -ENOENT;
}

NK_EXPORT int nk_host_pid(const nk_host *h)
{
        /* The reader marks the child reaped: read it under the lock. */
        pthread_mutex_t *lock = (pthread_mutex_t *) &h->lock;
        pthread_mutex_lock(lock);
        int pid = h->launched && !h->child.reaped ? (int) h->child.pid : -1;
        pthread_mutex_unlock(lock);
        return pid;
}

/* ---- death -------------------------------------------------------------- */

/* The host is dead (h->death says why): calls waiting in shared memory, for
 * a slot, or for SENDs ahead of their reply, stop waiting. */
static void wake_for_death_locked(nk_host *h)
{
        nk_shm_chan_kill(h->shm);
        pthread_cond_broadcast(&h->sends_cond);
}

/* Records why the host is gone (the first reason wins), kills it and shuts
 * our end down so the reader wakes even if someone else holds the host's
 * end. Call with h->lock held. */
__attribute__((format(printf, 4, 5)))
static void fail_host_locked(nk_host *h, int kind, int code, const char *fmt, ...)
{
        if (!h->dead) {
                char msg[sizeof h->death.msg];
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(msg, sizeof msg, fmt, ap);
                va_end(ap);
                nk_error_set(&h->death, kind, code, "%s", msg);
                snprintf(h->death.reason, sizeof h->death.reason, "%s",
                         kind == NK_ERR_TIMEOUT ? "timeout" : kind == NK_ERR_PROTOCOL ? "protocol" :
                         kind == NK_ERR_NOT_RUNNING ? "stopped" : "system");
                h->dead = true;
        }
        if (h->launched && !h->child.reaped)
                (void) h->launcher->kill(&h->child, SIGKILL);
        if (h->fd >= 0)
                shutdown(h->fd, SHUT_RDWR);
        /* Only after the death is recorded: a call woken here reads it. */
        wake_for_death_locked(h);
}

static void free_abandoned(struct pending *p)
{
        nk_msg_free(&p->msg);
        pthread_cond_destroy(&p->cond);
        free(p);
}

static void fail_pending_locked(nk_host *h)
{
        struct pending **pp = &h->pending;
        while (*pp) {
                struct pending *p = *pp;
                if (p->abandoned) {
                        *pp = p->next;
                        free_abandoned(p);
                        continue;
                }
                pp = &p->next;
                if (p->done)
                        continue;
                p->done = true;
                p->failed = true;
                p->err = h->death;
                pthread_cond_signal(&p->cond);
        }
}

static struct pending *find_pending_locked(nk_host *h, uint64_t id)
{
        for (struct pending *p = h->pending; p; p = p->next)
                if (p->id == id && !p->done)
                        return p;
        return NULL;
}

static void unlink_pending_locked(nk_host *h, struct pending *p)
{
        for (struct pending **pp = &h->pending; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        return;
                }
}

/* ---- the reader ----------------------------------------------------------- */

/* Parses LOADED into h's discovery fields. Returns NULL or what is wrong. */
static const char *parse_loaded(nk_host *h, const struct nk_msg *m)
{
        struct nk_discovery d;
        const char *bad = nk_parse_loaded(m->payload, m->h.payload_len, &d);
        if (bad)
                return bad;
        /* One LOADED per host: only one request ever expects it. */
        free(h->names);
        free(h->funcs);
        h->module = d.module;
        h->names = d.names;
        h->funcs = d.funcs;
        h->nfuncs = d.nfuncs;
        h->callbacks = d.callbacks;
        return NULL;
}

/* Checks a reply's fields; NULL if well-formed, else what is wrong. */
static const char *check_reply(nk_host *h, const struct nk_msg *m, uint32_t expect)
{
        if (m->h.type == NK_MSG_LOADED && expect == NK_MSG_LOADED)
                return parse_loaded(h, m);
        return nk_parse_reply(m->h.type, expect, m->payload, m->h.payload_len);
}

static int deliver_send(nk_host *h, const struct nk_msg *m)
{
        const uint8_t *to, *msg;
        size_t to_len, msg_len;

        int r = nk_parse_send(m->h.id, m->payload, m->h.payload_len, &to, &to_len, &msg, &msg_len);
        if (r < 0)
                return r;
        if (h->send_fn)
                h->send_fn(h->send_arg, to, to_len, msg, msg_len);
        atomic_fetch_add(&h->sends_seen, 1);
        if (h->shm) {
                pthread_mutex_lock(&h->lock);
                if (h->sends_waiters)
                        pthread_cond_broadcast(&h->sends_cond);
                pthread_mutex_unlock(&h->lock);
        }
        return 0;
}

/* Handles one message; takes ownership of m. Returns -EPROTO after killing
 * the host for a malformed message. */
static int dispatch(nk_host *h, struct nk_msg *m)
{
        const char *type = nk_msg_type_name(m->h.type);
        int r = 0;

        if (m->h.flags != 0) {
                pthread_mutex_lock(&h->lock);
                fail_host_locked(h, NK_ERR_PROTOCOL, -EPROTO, "host for %s sent %s with unknown flags 0x%x",
                                 h->library, type, m->h.flags);
                pthread_mutex_unlock(&h->lock);
                nk_msg_free(m);
                return -EPROTO;
        }

        switch (m->h.type) {
        case NK_MSG_SEND:
                r = deliver_send(h, m);
                if (r < 0) {
                        pthread_mutex_lock(&h->lock);
                        fail_host_locked(h, NK_ERR_PROTOCOL, -EPROTO, "host for %s sent a malformed SEND",
                                         h->library);
                        pthread_mutex_unlock(&h->lock);
                }
                nk_msg_free(m);
                return r < 0 ? -EPROTO : 0;
        case NK_MSG_LOADED:
        case NK_MSG_RESULT:
        case NK_MSG_ERROR:
        case NK_MSG_LOAD_DONE:
        case NK_MSG_PONG: {
                pthread_mutex_lock(&h->lock);
                struct pending *p = find_pending_locked(h, m->h.id);
                const char *bad = p ? check_reply(h, m, p->expect) : "reply to no pending request";
                if (bad) {
                        fail_host_locked(h, NK_ERR_PROTOCOL, -EPROTO, "host for %s sent %s (id %llu): %s",
                                         h->library, type, (unsigned long long) m->h.id, bad);
                        r = -EPROTO;
                        nk_msg_free(m);
                } else if (p->abandoned) {
                        unlink_pending_locked(h, p);
                        nk_msg_free(m);
                        free_abandoned(p);
                } else {
                        p->msg = *m;
                        p->done = true;
                        pthread_cond_signal(&p->cond);
                }
                *m = (struct nk_msg) {};
                pthread_mutex_unlock(&h->lock);
                return r;
        }
        case NK_MSG_VIOLATION: {
                /* The host is about to die by SIGSYS; this only names the
                 * call in the reason. */
                int nr;
                uint32_t arch;
                r = m->h.id == 0 ? nk_violation_parse(m->payload, m->h.payload_len, &nr, &arch) : -EBADMSG;
                pthread_mutex_lock(&h->lock);
                if (r < 0) {
                        fail_host_locked(h, NK_ERR_PROTOCOL, -EPROTO, "host for %s sent a malformed VIOLATION",
                                         h->library);
                } else if (!h->violation) {
                        h->violation = true;
                        h->violation_nr = nr;
                }
                pthread_mutex_unlock(&h->lock);
                nk_msg_free(m);
                return r < 0 ? -EPROTO : 0;
        }
        default:
                pthread_mutex_lock(&h->lock);
                fail_host_locked(h, NK_ERR_PROTOCOL, -EPROTO, "host for %s sent an unexpected message (type %u, %s)",
                                 h->library, m->h.type, type);
                pthread_mutex_unlock(&h->lock);
                nk_msg_free(m);
                return -EPROTO;
        }
}

/* A reason the counters or the host's own report give for its death, or
 * false: the seccomp filter, the cgroup's OOM killer, pids.max. */
static bool explain_death_locked(nk_host *h, const struct nk_child_exit *ex)
{
        if (h->violation || ex->signo == SIGSYS) {
                char name[64] = "a system call";
                if (h->violation) {
                        char nr[48];
                        snprintf(name, sizeof name, "%s(2)", nk_seccomp_syscall_name(h->violation_nr, nr, sizeof nr));
                }
                nk_error_set(&h->death, NK_ERR_HOST_DIED, -ECONNRESET, "host for %s killed: seccomp denied %s",
                             h->library, name);
                snprintf(h->death.reason, sizeof h->death.reason, "seccomp");
                return true;
        }
        if (h->child.memory_by_rlimit && !ex->signo && ex->status == NK_HOST_EXIT_OOM) {
                nk_error_set(&h->death, NK_ERR_HOST_DIED, -ECONNRESET,
                             "host for %s died: out of memory (RLIMIT_AS from memory_mb %llu, the fallback for the memory "
                             "limit without a cgroup memory controller)", h->library,
                             (unsigned long long) h->policy->limits.memory_mb);
                snprintf(h->death.reason, sizeof h->death.reason, "oom");
                return true;
        }
        struct nk_cgroup_events ev;
        if (nk_child_cgroup_events(&h->child, &ev) < 0)
                return false;
        if (ev.oom_kill > h->cg_start.oom_kill) {
                nk_error_set(&h->death, NK_ERR_HOST_DIED, -ECONNRESET,
                             "host for %s killed: out of memory (its cgroup's memory limit)", h->library);
                snprintf(h->death.reason, sizeof h->death.reason, "oom");
                return true;
        }
        if (ev.pids_max > h->cg_start.pids_max) {
                nk_error_set(&h->death, NK_ERR_HOST_DIED, -ECONNRESET,
                             "host for %s died after its cgroup's pids limit refused %llu fork(s)%s%s", h->library,
                             (unsigned long long) (ev.pids_max - h->cg_start.pids_max),
                             ex->signo ? ": " : "", ex->signo ? nk_signal_name(ex->signo) : "");
                snprintf(h->death.reason, sizeof h->death.reason, "pids_limit");
                return true;
        }
        return false;
}

static void record_exit_locked(nk_host *h, int wait_r, const struct nk_child_exit *ex)
{
        if (h->dead)
                return;
        /* The counters and the host's own report hold even when its exit
         * status was lost (reaped by the kernel before Linux 6.15). */
        static const struct nk_child_exit unknown;
        if (explain_death_locked(h, wait_r >= 0 ? ex : &unknown))
                ;
        else if (wait_r == -ENOLINK)
                nk_error_set(&h->death, NK_ERR_HOST_DIED, -ECONNRESET,
                             "host for %s died with the host template that started it", h->library);
        else if (wait_r < 0)
                nk_error_set(&h->death, NK_ERR_HOST_DIED, -ECONNRESET,
                             "host for %s closed its channel (cannot reap it: %s)", h->library, strerror(-wait_r));
        else if (ex->signo)
                nk_error_set(&h->death, NK_ERR_HOST_DIED, -ECONNRESET, "host for %s killed by signal %d (%s)%s",
                             h->library, ex->signo, nk_signal_name(ex->signo),
                             ex->core_dumped ? ", core dumped" : "");
        else
                nk_error_set(&h->death, NK_ERR_HOST_DIED, -ECONNRESET, "host for %s exited with status %d",
                             h->library, ex->status);
        if (!h->death.reason[0])
                snprintf(h->death.reason, sizeof h->death.reason, "%s",
                         wait_r < 0 ? "exited" : ex->signo ? "crashed" : "exited");
        if (wait_r >= 0) {
                h->death.signo = ex->signo;
                h->death.status = ex->status;
        }
        h->dead = true;
        wake_for_death_locked(h);
}

static void *reader_main(void *arg)
{
        /* Named for ps, top and gdb in the VM (15 characters at most). */
        pthread_setname_np(pthread_self(), "nk-reader");
        nk_host *h = arg;

        for (;;) {
                struct nk_msg m;
                int r = nk_transport_recv(&h->tr, &m);
                if (r == -ECONNRESET)
                        break;
                if (r < 0) {
                        pthread_mutex_lock(&h->lock);
                        if (r == -EMSGSIZE) {
                                /* Refused from its header, before anything
                                 * is allocated for it. */
                                bool was_dead = h->dead;
                                fail_host_locked(h, NK_ERR_PROTOCOL, -EPROTO,
                                                 "host for %s killed: it sent a %llu-byte message, above the "
                                                 "limit of %zu (max_result_bytes)",
                                                 h->library, (unsigned long long) m.h.payload_len, h->tr.max_payload);
                                /* Beyond what the protocol allows at all, the
                                 * length is a forgery rather than a result. */
                                if (!was_dead && m.h.payload_len <= NK_PAYLOAD_MAX_DEFAULT) {
                                        snprintf(h->death.reason, sizeof h->death.reason, "result_too_large");
                                        h->death.size = m.h.payload_len;
                                        h->death.limit = h->policy->limits.max_result_bytes;
                                }
                        } else
                                fail_host_locked(h, NK_ERR_PROTOCOL, r == -ENOMEM ? -ENOMEM : -EPROTO,
                                                 "host for %s: cannot receive: %s", h->library,
                                                 r == -EBADMSG ? "malformed datagram" : strerror(-r));
                        pthread_mutex_unlock(&h->lock);
                        break;
                }
                if (dispatch(h, &m) < 0)
                        break;
        }

        /* The channel is gone: give the host a moment to exit by itself so
         * that its own exit status or signal is what we report. */
        pthread_mutex_lock(&h->lock);
        struct nk_child c = h->child;
        pthread_mutex_unlock(&h->lock);
        struct nk_child_exit ex = {};
        int r = h->launcher->wait(&c, EXIT_GRACE_MS, &ex);
        if (r == -ETIMEDOUT) {
                (void) h->launcher->kill(&c, SIGKILL);
                r = h->launcher->wait(&c, -1, &ex);
        }

        pthread_mutex_lock(&h->lock);
        h->child.reaped = true;
        record_exit_locked(h, r, &ex);
        fail_pending_locked(h);
        pthread_mutex_unlock(&h->lock);
        return NULL;
}

/* ---- requests ---------------------------------------------------------- */

static void pending_init_locked(nk_host *h, struct pending *p, uint32_t expect)
{
        pthread_condattr_t a;
        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        *p = (struct pending) { .id = ++h->next_id, .expect = expect, .next = h->pending };
        pthread_cond_init(&p->cond, &a);
        pthread_condattr_destroy(&a);
        h->pending = p;
}

static void pending_done(struct pending *p)
{
        nk_msg_free(&p->msg);
        pthread_cond_destroy(&p->cond);
}

static bool before(const struct timespec *a, const struct timespec *b)
{
        return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Waits for p's reply until deadline (NULL: no limit). Returns 0 once it
 * is done, else -ETIMEDOUT; p stays linked either way. */
static int wait_until(nk_host *h, struct pending *p, const struct timespec *deadline)
{
        int r = 0;
        pthread_mutex_lock(&h->lock);
        while (!p->done) {
                if (!deadline) {
                        pthread_cond_wait(&p->cond, &h->lock);
                        continue;
                }
                if (pthread_cond_timedwait(&p->cond, &h->lock, deadline) == ETIMEDOUT && !p->done) {
                        r = -ETIMEDOUT;
                        break;
                }
        }
        pthread_mutex_unlock(&h->lock);
        return r;
}

/* Waits for p's reply. Returns 0, or -ETIMEDOUT after timeout_ms (0 = no
 * limit); p is unlinked on return in every case. */
static int wait_reply(nk_host *h, struct pending *p, unsigned timeout_ms)
{
        struct timespec deadline = nk_deadline_in(timeout_ms);
        int r = wait_until(h, p, timeout_ms ? &deadline : NULL);
        pthread_mutex_lock(&h->lock);
        unlink_pending_locked(h, p);
        pthread_mutex_unlock(&h->lock);
        return r;
}

/* Adds reason to an error that reports the host's death; returns code. */
static int with_reason(nk_error *err, int code, const char *reason)
{
        if (err)
                snprintf(err->reason, sizeof err->reason, "%s", reason);
        return code;
}

/* A thread is done with the transport; teardown may free it once none is. */
static void leave(nk_host *h)
{
        pthread_mutex_lock(&h->lock);
        if (--h->active == 0)
                pthread_cond_broadcast(&h->idle);
        pthread_mutex_unlock(&h->lock);
}

/* Registers a request and sends it. On 0, p is linked and its reply
 * comes to it; on failure p is finished. */
static int request_send(nk_host *h, struct pending *p, uint32_t type, uint32_t expect,
                        const struct iovec *iov, size_t niov, unsigned timeout_ms, const char *what, nk_error *err)
{
        pthread_mutex_lock(&h->lock);
        if (h->state != ST_RUNNING || h->dead) {
                int r;
                if (h->dead) {
                        r = nk_error_set(err, NK_ERR_NOT_RUNNING, -ENOTCONN, "host for %s is not running: %s",
                                         h->library, h->death.msg);
                        if (err) {
                                err->signo = h->death.signo;
                                err->status = h->death.status;
                                memcpy(err->reason, h->death.reason, sizeof err->reason);
                                err->size = h->death.size;
                                err->limit = h->death.limit;
                        }
                } else {
                        r = nk_error_set(err, NK_ERR_NOT_RUNNING, -ENOTCONN, "host for %s is not running",
                                         h->library ? h->library : "(no library)");
                }
                pthread_mutex_unlock(&h->lock);
                return r;
        }
        pending_init_locked(h, p, expect);
        uint64_t id = p->id;
        h->active++;
        pthread_mutex_unlock(&h->lock);

        int r = nk_transport_send(&h->tr, type, id, iov, niov);
        leave(h);
        if (r == -EAGAIN) {
                /* SO_SNDTIMEO ran out: the host stopped reading. */
                pthread_mutex_lock(&h->lock);
                unlink_pending_locked(h, p);
                fail_host_locked(h, NK_ERR_TIMEOUT, -ETIMEDOUT, "host for %s killed: sending %s timed out after %u ms",
                                 h->library, what, timeout_ms);
                pthread_mutex_unlock(&h->lock);
                pending_done(p);
                return with_reason(err, nk_error_set(err, NK_ERR_TIMEOUT, -ETIMEDOUT,
                                                     "host for %s killed: sending %s timed out after %u ms",
                                                     h->library, what, timeout_ms),
                                   "timeout");
        }
        if (r < 0 && r != -EPIPE && r != -ECONNRESET) {
                /* Nothing (or only part) went out: the request is ours to
                 * withdraw, but a half-sent message breaks the stream. */
                pthread_mutex_lock(&h->lock);
                unlink_pending_locked(h, p);
                if (r != -EMSGSIZE && r != -E2BIG)
                        fail_host_locked(h, NK_ERR_SYSTEM, r, "host for %s: cannot send %s: %s", h->library, what,
                                         strerror(-r));
                pthread_mutex_unlock(&h->lock);
                pending_done(p);
                return nk_error_set(err, NK_ERR_SYSTEM, r, "host for %s: cannot send %s: %s", h->library, what,
                                    strerror(-r));
        }
        /* On EPIPE the host is gone; the reader fails p with the reason. */
        return 0;
}

/* After the wait for an unlinked p ended with wait_r: on 0, p->msg is the
 * reply; on failure p is finished. reason names a timeout's cause. */
static int request_finish(nk_host *h, struct pending *p, int wait_r, unsigned timeout_ms, const char *what,
                          const char *reason, nk_error *err)
{
        if (wait_r == -ETIMEDOUT) {
                pthread_mutex_lock(&h->lock);
                bool was_dead = h->dead;
                fail_host_locked(h, NK_ERR_TIMEOUT, -ETIMEDOUT, "host for %s killed: %s timed out after %u ms",
                                 h->library, what, timeout_ms);
                if (!was_dead)
                        snprintf(h->death.reason, sizeof h->death.reason, "%s", reason);
                pthread_mutex_unlock(&h->lock);
                pending_done(p);
                return with_reason(err, nk_error_set(err, NK_ERR_TIMEOUT, -ETIMEDOUT,
                                                     "host for %s killed: %s timed out after %u ms", h->library,
                                                     what, timeout_ms),
                                   reason);
        }
        if (p->failed) {
                int code = nk_error_copy(err, &p->err);
                pending_done(p);
                return code;
        }
        return 0;
}

/* Registers a request, sends it and waits. On 0, p->msg is the reply (or
 * p->failed is set and p->err says why the host died). */
static int request(nk_host *h, struct pending *p, uint32_t type, uint32_t expect,
                   const struct iovec *iov, size_t niov, unsigned timeout_ms, const char *what, nk_error *err)
{
        int r = request_send(h, p, type, expect, iov, niov, timeout_ms, what, err);
        if (r < 0)
                return r;
        return request_finish(h, p, wait_reply(h, p, timeout_ms), timeout_ms, what, "timeout", err);
}

/* Turns an ERROR reply into err. */
static int reply_error(nk_host *h, const struct nk_msg *m, int kind, const char *what, nk_error *err)
{
        struct nk_rd r = nk_rd_init(m->payload, m->h.payload_len);
        uint32_t category = 0;
        const uint8_t *text;
        size_t len;
        char msg[400];

        (void) nk_rd_u32(&r, &category);
        nk_rd_rest(&r, &text, &len);
        nk_sanitize_text(msg, sizeof msg, text, len);
        if (category == NK_PERR_LOAD)
                return nk_error_set(err, NK_ERR_LOAD, -ENOEXEC, "%s", msg);
        if (category == NK_PERR_INTERNAL)
                return nk_error_set(err, NK_ERR_SYSTEM, -EIO, "host for %s failed %s: %s", h->library, what, msg);
        return nk_error_set(err, kind, -EINVAL, "host for %s rejected %s: %s", h->library, what, msg);
}

/* ---- lifecycle ----------------------------------------------------------- */

/* ld.so names the first symbol it could not bind; the runtime reads the
 * files and names them all, with the library that needs each. */
static void explain_undefined(nk_host *h, nk_error *err)
{
        char list[sizeof err->msg];
        _cleanup_free_ char *hb = realpath(nk_host_binary_path(h), NULL);
        if (!hb || nk_scope_missing(hb, h->library, list, sizeof list) <= 0)
                return;
        nk_error_set(err, NK_ERR_LOAD, -ENOEXEC, "%s: undefined symbols: %s (a NIF finds the erl_nif API, the "
                     "driver API outside ports and the libraries beam.smp links; nothing else)", h->library, list);
}

/* Ends the host however far start got: asks it to stop, kills it if it does
 * not, joins the reader (which reaps) and closes everything. */
static void teardown(nk_host *h, const char *why)
{
        pthread_mutex_lock(&h->lock);
        if (!h->dead) {
                nk_error_set(&h->death, NK_ERR_NOT_RUNNING, -ENOTCONN, "host for %s %s", h->library, why);
                h->dead = true;
                wake_for_death_locked(h);
        }
        bool reader = h->reader_running;
        pthread_mutex_unlock(&h->lock);

        if (reader) {
                /* The host exits on STOP; its closing the channel ends the
                 * reader. A host that stopped reading cannot be asked (and
                 * must not block us): it is killed straight away. */
                int r = nk_transport_try_send(&h->tr, NK_MSG_STOP, 0);
                struct timespec t;
                clock_gettime(CLOCK_REALTIME, &t);
                t.tv_sec += EXIT_GRACE_MS / 1000 + 1;
                if (r < 0 || pthread_timedjoin_np(h->reader, NULL, &t) != 0) {
                        pthread_mutex_lock(&h->lock);
                        fail_host_locked(h, NK_ERR_NOT_RUNNING, -ENOTCONN, "host for %s %s", h->library, why);
                        pthread_mutex_unlock(&h->lock);
                        pthread_join(h->reader, NULL);
                }
                h->reader_running = false;
        } else if (h->launched && !h->child.reaped) {
                struct nk_child_exit ex;
                (void) h->launcher->kill(&h->child, SIGKILL);
                (void) h->launcher->wait(&h->child, -1, &ex);
        }
        /* Callers still inside a send (which fails now that the host is
         * gone) must leave before the transport goes away. */
        pthread_mutex_lock(&h->lock);
        while (h->active > 0)
                pthread_cond_wait(&h->idle, &h->lock);
        pthread_mutex_unlock(&h->lock);
        /* The host is gone: nobody is left to ask the broker anything. */
        nk_broker_free(h->broker);
        h->broker = NULL;
        if (h->launched) {
                nk_child_release(&h->child);
                h->launched = false;
        }
        if (h->tr_ready) {
                nk_transport_done(&h->tr);
                h->tr_ready = false;
        }
        if (h->fd >= 0) {
                close(h->fd);
                h->fd = -1;
        }
}

/* The region outlives the host until no call can be using it: calls in
 * flight when a host is stopped still wake on it (and then see the death). */
static void forget_shm(nk_host *h)
{
        nk_shm_chan_free(h->shm);
        h->shm = NULL;
}

static void forget_discovery(nk_host *h)
{
        free(h->names);
        free(h->funcs);
        h->names = NULL;
        h->module = NULL;
        h->funcs = NULL;
        h->nfuncs = 0;
}

/* load_info as the ETF a library's load() gets: NULL means the atom []. */
static void default_load_info(const uint8_t **load_info, size_t *len)
{
        static const uint8_t nil[] = { ETF_VERSION, 106 };
        if (!*load_info) {
                *load_info = nil;
                *len = sizeof nil;
        }
}

/* Launches the host and sends LOAD (with load_info) or OPEN (load_info
 * NULL and open set); waits for LOADED. On failure the host is gone. */
static int start(nk_host *h, bool open, const uint8_t *load_info, size_t load_info_len, nk_error *err)
{
        if (!h->library)
                return nk_error_set(err, NK_ERR_SYSTEM, -EINVAL, "no library set");
        if (h->state != ST_NEW)
                return nk_error_set(err, NK_ERR_SYSTEM, -EALREADY, "host for %s was already started", h->library);

        h->dead = false;
        h->death = (nk_error) {};
        h->violation = false;
        h->sends_seen = 0;
        h->releases_sent = 0;
        h->rel_head = h->rel_n = 0;
        h->rel_waiting = false;
        h->state = ST_RUNNING;
        int r = nk_host_launch(h, err);
        if (r >= 0) {
                r = -pthread_create(&h->reader, NULL, reader_main, h);
                if (r < 0)
                        nk_error_set(err, NK_ERR_SYSTEM, r, "cannot start host for %s: %s", h->library, strerror(-r));
                else
                        h->reader_running = true;
        }
        if (r < 0) {
                teardown(h, "failed to start");
                forget_shm(h);
                h->state = ST_NEW;
                return r;
        }

        default_load_info(&load_info, &load_info_len);
        _cleanup_(nk_buf_free) struct nk_buf head = {};
        const char *const *scope = nk_beam_scope();
        size_t nscope = 0;
        while (scope[nscope])
                nscope++;
        r = nk_put_u32(&head, h->workers);
        if (r >= 0)
                r = nk_put_str(&head, h->library, strlen(h->library));
        if (r >= 0)
                r = nk_put_u32(&head, (uint32_t) nscope);
        for (size_t i = 0; r >= 0 && i < nscope; i++)
                r = nk_put_str(&head, scope[i], strlen(scope[i]));
        if (r < 0) {
                r = nk_error_set(err, NK_ERR_SYSTEM, r, "cannot start host for %s: out of memory", h->library);
                goto failed;
        }
        const struct iovec iov[] = {
                { head.data, head.len },
                { (void *) load_info, open ? 0 : load_info_len },
        };
        struct pending p;
        unsigned timeout = h->call_timeout_ms > START_TIMEOUT_MS ? h->call_timeout_ms : START_TIMEOUT_MS;
        const char *what = open ? "OPEN" : "LOAD";
        r = request(h, &p, open ? NK_MSG_OPEN : NK_MSG_LOAD, NK_MSG_LOADED, iov, NK_ARRAY_SIZE(iov), timeout,
                    what, err);
        if (r == 0 && p.msg.h.type == NK_MSG_ERROR) {
                r = reply_error(h, &p.msg, NK_ERR_LOAD, what, err);
                pending_done(&p);
                if (err && strstr(err->msg, "undefined symbol"))
                        explain_undefined(h, err);
        } else if (r == 0) {
                pending_done(&p);
                h->opened = open;
                nk_status_started(&h->status, h->library, nk_host_pid(h), nk_child_cgroup_path(&h->child));
                return 0;
        }
failed:
        teardown(h, "failed to load");
        forget_discovery(h);
        forget_shm(h);
        h->state = ST_NEW;
        return r;
}

NK_EXPORT int nk_host_start(nk_host *h, const uint8_t *load_info, size_t load_info_len, nk_error *err)
{
        return start(h, false, load_info, load_info_len, err);
}

NK_EXPORT int nk_host_open(nk_host *h, nk_error *err)
{
        return start(h, true, NULL, 0, err);
}

NK_EXPORT int nk_host_load(nk_host *h, const uint8_t *load_info, size_t load_info_len, nk_error *err)
{
        if (h->state != ST_RUNNING || !h->opened)
                return nk_error_set(err, NK_ERR_SYSTEM, -EALREADY, "host for %s is not opened",
                                    h->library ? h->library : "(no library)");
        default_load_info(&load_info, &load_info_len);
        const struct iovec iov[] = { { (void *) load_info, load_info_len } };
        struct pending p;
        unsigned timeout = h->call_timeout_ms > START_TIMEOUT_MS ? h->call_timeout_ms : START_TIMEOUT_MS;
        int r = request(h, &p, NK_MSG_RUN_LOAD, NK_MSG_LOAD_DONE, iov, NK_ARRAY_SIZE(iov), timeout, "RUN_LOAD",
                        err);
        if (r == 0 && p.msg.h.type == NK_MSG_ERROR) {
                r = reply_error(h, &p.msg, NK_ERR_LOAD, "RUN_LOAD", err);
                pending_done(&p);
        } else if (r == 0) {
                pending_done(&p);
                h->opened = false;
                return 0;
        }
        teardown(h, "failed to load");
        nk_status_stopped(&h->status, h->dead ? &h->death : NULL);
        forget_discovery(h);
        forget_shm(h);
        h->state = ST_NEW;
        h->opened = false;
        return r;
}

NK_EXPORT unsigned nk_host_callbacks(const nk_host *h)
{
        return (h->callbacks & NK_CALLBACK_UPGRADE ? NK_HOST_HAS_UPGRADE : 0) |
               (h->callbacks & NK_CALLBACK_UNLOAD ? NK_HOST_HAS_UNLOAD : 0);
}

/* UPGRADE and UNLOAD: a request on a loaded host whose failure leaves it
 * running (the library refused; BEAM keeps the old code). */
static int lifecycle_request(nk_host *h, uint32_t type, const struct iovec *iov, size_t n, const char *what,
                             nk_error *err)
{
        if (h->state != ST_RUNNING || h->opened)
                return nk_error_set(err, NK_ERR_SYSTEM, -EALREADY, "host for %s is not loaded",
                                    h->library ? h->library : "(no library)");
        struct pending p;
        unsigned timeout = h->call_timeout_ms > START_TIMEOUT_MS ? h->call_timeout_ms : START_TIMEOUT_MS;
        int r = request(h, &p, type, NK_MSG_LOAD_DONE, iov, n, timeout, what, err);
        if (r < 0)
                return r;
        if (p.msg.h.type == NK_MSG_ERROR)
                r = reply_error(h, &p.msg, NK_ERR_LOAD, what, err);
        pending_done(&p);
        return r;
}

NK_EXPORT int nk_host_upgrade(nk_host *h, const uint8_t *load_info, size_t load_info_len, nk_error *err)
{
        default_load_info(&load_info, &load_info_len);
        const struct iovec iov[] = { { (void *) load_info, load_info_len } };
        return lifecycle_request(h, NK_MSG_UPGRADE, iov, NK_ARRAY_SIZE(iov), "UPGRADE", err);
}

NK_EXPORT int nk_host_unload(nk_host *h, bool old, nk_error *err)
{
        uint32_t which = old ? 1 : 0;
        const struct iovec iov[] = { { &which, sizeof which } };
        return lifecycle_request(h, NK_MSG_UNLOAD, iov, NK_ARRAY_SIZE(iov), "UNLOAD", err);
}

struct nk_call {
        struct pending p;       /* first: an abandoned call is freed through it */
        nk_host *h;
        unsigned index;
        unsigned timeout_ms;
        struct timespec deadline;
        uint64_t deadline_ns;   /* the same, for calls through shared memory (0: none) */
        uint64_t started_ns;    /* for the latency histogram (status.h) */
        /* Through shared memory: the request's fixed fields (op's iov
         * points here), its progress, and the reply once it is whole. */
        bool shm;
        uint32_t idx, pid_len;
        uint8_t pid[NK_CALLER_PID_MAX];  /* the caller pid's ETF, copied */
        struct nk_shm_op op;
};

/* What the call is, for messages: only built when one is written. */
static const char *call_what(const nk_call *c, char *buf, size_t size)
{
        const nk_function *f = &c->h->funcs[c->index];
        snprintf(buf, size, "call to %s/%u", f->name, f->arity);
        return buf;
}

/* Checks what every call needs; 0 or the error. */
static int call_check(nk_host *h, unsigned index, size_t args_len, size_t caller_pid_len, nk_error *err)
{
        if (h->state != ST_RUNNING)
                return nk_error_set(err, NK_ERR_NOT_RUNNING, -ENOTCONN, "host for %s is not running",
                                    h->library ? h->library : "(no library)");
        if (index >= h->nfuncs)
                return nk_error_set(err, NK_ERR_REJECTED, -EINVAL, "%s has no function with index %u",
                                    h->library, index);
        if (args_len == 0)
                return nk_error_set(err, NK_ERR_REJECTED, -EINVAL, "no arguments ETF for %s/%u",
                                    h->funcs[index].name, h->funcs[index].arity);
        uint64_t max_args = h->policy ? h->policy->limits.max_args_bytes : 0;
        if (max_args && args_len > max_args) {
                int r = nk_error_set(err, NK_ERR_REJECTED, -E2BIG,
                                     "the arguments of %s/%u are %zu bytes as ETF, above max_args_bytes (%llu)",
                                     h->funcs[index].name, h->funcs[index].arity, args_len,
                                     (unsigned long long) max_args);
                if (err) {
                        snprintf(err->reason, sizeof err->reason, "args_too_large");
                        err->size = args_len;
                        err->limit = max_args;
                }
                return r;
        }
        if (caller_pid_len > NK_CALLER_PID_MAX)
                return nk_error_set(err, NK_ERR_REJECTED, -EINVAL, "caller pid ETF too long (%zu bytes, at most %d)",
                                    caller_pid_len, NK_CALLER_PID_MAX);
        return 0;
}

/* The error of a call that found its host dead. */
static int dead_error(nk_host *h, nk_error *err)
{
        pthread_mutex_lock(&h->lock);
        int r = nk_error_set(err, NK_ERR_NOT_RUNNING, -ENOTCONN, "host for %s is not running: %s", h->library,
                             h->death.msg);
        if (err) {
                err->signo = h->death.signo;
                err->status = h->death.status;
                memcpy(err->reason, h->death.reason, sizeof err->reason);
                err->size = h->death.size;
                err->limit = h->death.limit;
        }
        pthread_mutex_unlock(&h->lock);
        return r;
}

static void flush_releases(nk_host *h);
static void drain_releases(nk_host *h);

static int call_start(nk_host *h, unsigned index, const uint8_t *caller_pid, size_t caller_pid_len,
                      const struct iovec *args, size_t nargs, nk_call **ret_call, nk_error *err)
{
        *ret_call = NULL;
        /* Releases that waited go first: a RELEASE issued before this call
         * is carried out before it, as over the socket alone. */
        flush_releases(h);
        if (!caller_pid)
                caller_pid_len = 0;
        if (nargs > NK_CALL_PIECES)
                return nk_error_set(err, NK_ERR_REJECTED, -E2BIG, "arguments ETF in %zu pieces, more than %d", nargs,
                                    NK_CALL_PIECES);
        size_t args_len = 0;
        for (size_t i = 0; i < nargs; i++) {
                if (!args[i].iov_base && args[i].iov_len)
                        return nk_error_set(err, NK_ERR_REJECTED, -EINVAL, "no arguments ETF");
                args_len += args[i].iov_len;
        }
        int r = call_check(h, index, args_len, caller_pid_len, err);
        if (r < 0)
                return r;
        if (h->opened)
                return nk_error_set(err, NK_ERR_REJECTED, -EINVAL, "host for %s rejected a call: its library's "
                                    "load() has not run yet", h->library);

        _cleanup_free_ nk_call *c = malloc(sizeof *c);
        if (!c)
                return nk_error_set(err, NK_ERR_SYSTEM, -ENOMEM, "out of memory");
        c->h = h;
        c->index = index;
        c->started_ns = nk_status_now_ns();
        c->timeout_ms = h->call_timeout_ms;
        c->idx = index;
        c->pid_len = (uint32_t) caller_pid_len;
        if (caller_pid_len > 0) {
                memcpy(c->pid, caller_pid, caller_pid_len);
                caller_pid = c->pid;
        }
        struct iovec iov[3 + NK_CALL_PIECES] = {
                { &c->idx, sizeof c->idx },
                { &c->pid_len, sizeof c->pid_len },
                { (void *) caller_pid, caller_pid_len },
        };
        size_t niov = 3;
        for (size_t i = 0; i < nargs; i++)
                iov[niov++] = args[i];
        c->shm = h->shm != NULL;
        if (c->shm) {
                if (nk_shm_chan_dead(h->shm))
                        return dead_error(h, err);
                c->deadline_ns = c->timeout_ms ? c->started_ns + (uint64_t) c->timeout_ms * 1000000ull : 0;
                nk_shm_op_init(&c->op, h->shm, NK_MSG_CALL, atomic_fetch_add(&h->shm_ids, 1) + 1, iov, niov,
                               atomic_load(&h->releases_sent));
                /* Sent now if a worker is free, else by the first poll;
                 * nothing is waited for here. */
                const char *why;
                (void) nk_shm_op_run(&c->op, 1, &why);
                *ret_call = TAKE_PTR(c);
                return 0;
        }
        /* Over the socket the order is the stream's: what still waits goes
         * out before the request, waiting as the request's own send may. */
        drain_releases(h);
        c->deadline = nk_deadline_in(c->timeout_ms);
        char what[NK_PROTO_NAME_MAX + 32];
        r = request_send(h, &c->p, NK_MSG_CALL, NK_MSG_RESULT, iov, niov, c->timeout_ms,
                         call_what(c, what, sizeof what), err);
        if (r < 0)
                return r;
        *ret_call = TAKE_PTR(c);
        return 0;
}

NK_EXPORT int nk_host_call_start(nk_host *h, unsigned index, const uint8_t *caller_pid, size_t caller_pid_len,
                                 const uint8_t *args, size_t args_len, nk_call **ret_call, nk_error *err)
{
        const struct iovec iov = { (void *) args, args ? args_len : 0 };
        return nk_host_call_startv(h, index, caller_pid, caller_pid_len, &iov, 1, ret_call, err);
}

NK_EXPORT int nk_host_call_startv(nk_host *h, unsigned index, const uint8_t *caller_pid, size_t caller_pid_len,
                                  const struct iovec *args, size_t nargs, nk_call **ret_call, nk_error *err)
{
        int r = call_start(h, index, caller_pid, caller_pid_len, args, nargs, ret_call, err);
        if (r < 0)
                nk_status_call(&h->status, 0, err);
        return r;
}

/* Turns a finished call's reply (type, payload of len bytes, whose
 * memory owner came from alloc) into res or err; takes the memory. */
static int call_result(nk_call *c, uint32_t type, const uint8_t *payload, size_t len, void *owner,
                       const nk_result_alloc *alloc, nk_result *res, nk_error *err)
{
        nk_result r = { .etf = payload, .owner = owner, .alloc = alloc };
        if (type == NK_MSG_ERROR) {
                char what[NK_PROTO_NAME_MAX + 32];
                const struct nk_msg m = { .h = { .type = type, .payload_len = len }, .payload = (uint8_t *) payload };
                int code = reply_error(c->h, &m, NK_ERR_REJECTED, call_what(c, what, sizeof what), err);
                nk_result_free(&r);
                return code;
        }
        /* The reply was checked: u32 status, then ETF. The caller gets the
         * payload itself, not a copy. */
        uint32_t status;
        memcpy(&status, payload, sizeof status);
        r.exception = (int) (status & 1);
        r.no_handles = (status & NK_RESULT_NO_HANDLES) != 0;
        r.etf = payload + sizeof status;
        r.len = len - sizeof status;
        *res = r;
        return 0;
}

/* Kills the host for what a call through shared memory found; the call
 * fails as every other one then does. */
__attribute__((format(printf, 5, 6)))
static int shm_fail(nk_call *c, int kind, int code, const char *reason, const char *fmt, ...)
{
        nk_host *h = c->h;
        char msg[sizeof h->death.msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        pthread_mutex_lock(&h->lock);
        bool was_dead = h->dead;
        fail_host_locked(h, kind, code, "%s", msg);
        if (!was_dead && reason)
                snprintf(h->death.reason, sizeof h->death.reason, "%s", reason);
        pthread_mutex_unlock(&h->lock);
        return -ECONNRESET;
}

/* Waits until the SENDs the host made before this reply are delivered,
 * as they would have been had the reply come over the socket. */
static int wait_sends(nk_call *c, uint64_t deadline_ns)
{
        nk_host *h = c->h;
        uint64_t need = c->op.rx.aux;
        if (atomic_load(&h->sends_seen) >= need)
                return 0;
        struct timespec until = { .tv_sec = (time_t) (deadline_ns / 1000000000ull),
                                  .tv_nsec = (long) (deadline_ns % 1000000000ull) };
        int r = 0;
        pthread_mutex_lock(&h->lock);
        h->sends_waiters++;
        while (atomic_load(&h->sends_seen) < need && !h->dead) {
                if (!deadline_ns) {
                        pthread_cond_wait(&h->sends_cond, &h->lock);
                } else if (pthread_cond_timedwait(&h->sends_cond, &h->lock, &until) == ETIMEDOUT) {
                        r = atomic_load(&h->sends_seen) >= need || h->dead ? 0 : -EAGAIN;
                        break;
                }
        }
        h->sends_waiters--;
        pthread_mutex_unlock(&h->lock);
        return r;
}

static int shm_poll(nk_call *c, int wait_ms, nk_result *res, nk_error *err)
{
        nk_host *h = c->h;
        char what[NK_PROTO_NAME_MAX + 32];
        uint64_t deadline = 0;

        if (wait_ms >= 0)
                deadline = nk_shm_now_ns() + (uint64_t) wait_ms * 1000000ull;
        if (c->deadline_ns && (!deadline || c->deadline_ns < deadline))
                deadline = c->deadline_ns;
        const char *why = NULL;
        int r;
        for (;;) {
                /* While releases wait to be sent, the host may be waiting
                 * for them before it runs this call: wait in 1 ms steps
                 * and send them between steps. */
                flush_releases(h);
                uint64_t step = deadline;
                if (atomic_load_explicit(&h->rel_waiting, memory_order_relaxed)) {
                        uint64_t soon = nk_shm_now_ns() + 1000000ull;
                        if (!step || soon < step)
                                step = soon;
                }
                r = nk_shm_op_run(&c->op, step, &why);
                if (r != -EAGAIN || step == deadline || (deadline && nk_shm_now_ns() >= deadline))
                        break;
        }
        if (r == 0)
                r = wait_sends(c, deadline);
        if (r == -EAGAIN && (!c->deadline_ns || nk_shm_now_ns() < c->deadline_ns))
                return -EAGAIN;

        if (r == -EAGAIN) {
                call_what(c, what, sizeof what);
                shm_fail(c, NK_ERR_TIMEOUT, -ETIMEDOUT, "timeout", "host for %s killed: %s timed out after %u ms",
                         h->library, what, c->timeout_ms);
                r = with_reason(err, nk_error_set(err, NK_ERR_TIMEOUT, -ETIMEDOUT,
                                                  "host for %s killed: %s timed out after %u ms", h->library, what,
                                                  c->timeout_ms),
                                "timeout");
        } else if (r == -EMSGSIZE) {
                /* Refused from its header, before anything is allocated:
                 * beyond what the protocol allows at all, a forgery. */
                bool forged = c->op.rx.total > NK_PAYLOAD_MAX_DEFAULT;
                r = shm_fail(c, NK_ERR_PROTOCOL, -EPROTO, forged ? NULL : "result_too_large",
                             "host for %s killed: it sent a %llu-byte message, above the limit of %zu "
                             "(max_result_bytes)", h->library, (unsigned long long) c->op.rx.total, h->tr.max_payload);
                pthread_mutex_lock(&h->lock);
                if (!forged && strcmp(h->death.reason, "result_too_large") == 0) {
                        h->death.size = c->op.rx.total;
                        h->death.limit = h->policy->limits.max_result_bytes;
                }
                pthread_mutex_unlock(&h->lock);
        } else if (r == -EPROTO || r == -ENOMEM) {
                r = shm_fail(c, NK_ERR_PROTOCOL, r, NULL, "host for %s killed: in shared memory it sent %s",
                             h->library, r == -ENOMEM ? "a reply too large for memory" : why);
        } else if (r == 0) {
                struct nk_shm_rx *rx = &c->op.rx;
                const char *bad = nk_parse_reply(rx->type, NK_MSG_RESULT, rx->buf, rx->total);
                if (bad) {
                        r = shm_fail(c, NK_ERR_PROTOCOL, -EPROTO, NULL, "host for %s sent %s: %s", h->library,
                                     nk_msg_type_name(rx->type), bad);
                } else {
                        r = call_result(c, rx->type, rx->buf, rx->total, rx->owner,
                                        rx->alloc ? h->result_alloc : NULL, res, err);
                        rx->buf = NULL;
                }
        }
        if (r == -ECONNRESET) {
                /* Died with the call in it: the death is the call's error,
                 * as for calls over the socket. */
                pthread_mutex_lock(&h->lock);
                r = nk_error_copy(err, &h->death);
                pthread_mutex_unlock(&h->lock);
        }
        nk_shm_rx_free(&c->op.rx);
        nk_status_call(&h->status, nk_status_now_ns() - c->started_ns, r < 0 ? err : NULL);
        free(c);
        return r;
}

NK_EXPORT int nk_host_call_poll(nk_call *c, int wait_ms, nk_result *res, nk_error *err)
{
        nk_host *h = c->h;
        struct timespec until;
        const struct timespec *up = NULL;

        *res = (nk_result) {};
        if (c->shm)
                return shm_poll(c, wait_ms, res, err);
        if (wait_ms >= 0) {
                until = nk_deadline_in((unsigned) wait_ms);
                if (c->timeout_ms && before(&c->deadline, &until))
                        until = c->deadline;
                up = &until;
        } else if (c->timeout_ms) {
                up = &c->deadline;
        }
        int r = wait_until(h, &c->p, up);
        if (r == -ETIMEDOUT) {
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (!c->timeout_ms || before(&now, &c->deadline))
                        return -EAGAIN;
        }
        pthread_mutex_lock(&h->lock);
        unlink_pending_locked(h, &c->p);
        pthread_mutex_unlock(&h->lock);
        char what[NK_PROTO_NAME_MAX + 32];
        r = request_finish(h, &c->p, r, c->timeout_ms, call_what(c, what, sizeof what), "timeout", err);
        if (r >= 0) {
                struct nk_msg *m = &c->p.msg;
                r = call_result(c, m->h.type, m->payload, m->h.payload_len, m->payload, NULL, res, err);
                m->payload = NULL;
                pending_done(&c->p);
        }
        nk_status_call(&h->status, nk_status_now_ns() - c->started_ns, r < 0 ? err : NULL);
        free(c);
        return r;
}

NK_EXPORT void nk_host_call_cancel(nk_call *c)
{
        if (!c)
                return;
        if (c->shm) {
                nk_shm_op_cancel(&c->op);
                free(c);
                return;
        }
        nk_host *h = c->h;
        pthread_mutex_lock(&h->lock);
        bool done = c->p.done;
        if (done)
                unlink_pending_locked(h, &c->p);
        else
                c->p.abandoned = true;
        pthread_mutex_unlock(&h->lock);
        if (done) {
                pending_done(&c->p);
                free(c);
        }
}

NK_EXPORT size_t nk_host_call_inline_max(const nk_host *h)
{
        /* Less the CALL's fixed fields, with room for a caller pid. */
        return h->shm ? (size_t) nk_shm_chan_inline_max(h->shm) - 256 : SIZE_MAX;
}

NK_EXPORT int nk_host_call(nk_host *h, unsigned index, const uint8_t *caller_pid, size_t caller_pid_len,
                           const uint8_t *args, size_t args_len, nk_result *res, nk_error *err)
{
        nk_call *c;

        *res = (nk_result) {};
        int r = nk_host_call_start(h, index, caller_pid, caller_pid_len, args, args_len, &c, err);
        if (r < 0)
                return r;
        return nk_host_call_poll(c, -1, res, err);
}

NK_EXPORT int nk_host_ping(nk_host *h, unsigned timeout_ms, nk_error *err)
{
        flush_releases(h);
        struct pending p;
        int r = request_send(h, &p, NK_MSG_PING, NK_MSG_PONG, NULL, 0, timeout_ms, "PING", err);
        if (r < 0)
                return r;
        r = request_finish(h, &p, wait_reply(h, &p, timeout_ms), timeout_ms, "PING", "heartbeat", err);
        if (r < 0)
                return r;
        if (p.msg.h.type == NK_MSG_ERROR)
                r = reply_error(h, &p.msg, NK_ERR_PROTOCOL, "PING", err);
        pending_done(&p);
        return r;
}

NK_EXPORT int nk_host_stats(const nk_host *h, struct nk_stats *ret)
{
        return nk_status_get(&h->status, ret);
}

/* RELEASE is sent from BEAM's resource destructors, on schedulers, which
 * must never wait for a host: each is tried without waiting, and what the
 * socket cannot take now waits in rel_q, in order, for the next call or
 * heartbeat to send. A host that lets REL_QUEUE_MAX of them pile up has
 * stopped reading for good, and is killed. */
#define REL_QUEUE_MAX ((size_t) 1 << 20)

static int try_release(nk_host *h, const struct release *rel)
{
        struct iovec iov[] = { { (void *) &rel->handle, sizeof rel->handle }, { (void *) &rel->count, sizeof rel->count } };
        return nk_transport_try_sendv(&h->tr, NK_MSG_RELEASE, 0, iov, rel->count ? 2 : 1);
}

/* Sends what waits in rel_q, in order, one sender at a time: without
 * waiting until the socket is full again (flush_releases), or waiting for
 * room as long as a request's send may, the call timeout (drain_releases:
 * for the socket path, whose request must follow them on the stream). */
static void send_waiting(nk_host *h, bool wait)
{
        if (!atomic_load_explicit(&h->rel_waiting, memory_order_relaxed))
                return;
        pthread_mutex_lock(&h->lock);
        if (h->rel_flushing || h->rel_head == h->rel_n || h->state != ST_RUNNING || h->dead) {
                pthread_mutex_unlock(&h->lock);
                return;
        }
        h->rel_flushing = true;
        h->active++;
        while (h->rel_head < h->rel_n) {
                struct release rel = h->rel_q[h->rel_head];
                pthread_mutex_unlock(&h->lock);
                struct iovec iov[] = { { &rel.handle, sizeof rel.handle }, { &rel.count, sizeof rel.count } };
                int r = wait ? nk_transport_send(&h->tr, NK_MSG_RELEASE, 0, iov, rel.count ? 2 : 1)
                             : try_release(h, &rel);
                pthread_mutex_lock(&h->lock);
                /* Kept for later unless sent, or the host is gone (a
                 * request's own send then meets the same and says why). */
                if (r < 0 && r != -EPIPE && r != -ECONNRESET)
                        break;
                h->rel_head++;
        }
        if (h->rel_head == h->rel_n) {
                h->rel_head = h->rel_n = 0;
                atomic_store(&h->rel_waiting, false);
        }
        h->rel_flushing = false;
        pthread_mutex_unlock(&h->lock);
        leave(h);
}

static void flush_releases(nk_host *h)
{
        send_waiting(h, false);
}

static void drain_releases(nk_host *h)
{
        send_waiting(h, true);
}

static int send_release(nk_host *h, uint64_t handle, uint64_t count)
{
        const struct release rel = { handle, count };
        pthread_mutex_lock(&h->lock);
        bool up = h->state == ST_RUNNING && !h->dead;
        bool queued = up && (h->rel_head < h->rel_n || h->rel_flushing);
        if (up && !queued)
                h->active++;
        pthread_mutex_unlock(&h->lock);
        if (!up)
                return -ENOTCONN;
        int r = -EAGAIN;
        if (!queued) {
                r = try_release(h, &rel);
                leave(h);
        }
        if (r == -EPIPE || r == -ECONNRESET)
                return -ENOTCONN;
        if (r >= 0) {
                atomic_fetch_add(&h->releases_sent, 1);
                return r;
        }
        if (r != -EAGAIN && r != -ENOBUFS && r != -ENOMEM)
                return r;
        pthread_mutex_lock(&h->lock);
        if (h->rel_n == h->rel_cap && h->rel_head > 0 && !h->rel_flushing) {
                /* Room at the front, from releases already sent. */
                h->rel_n -= h->rel_head;
                memmove(h->rel_q, h->rel_q + h->rel_head, h->rel_n * sizeof *h->rel_q);
                h->rel_head = 0;
        }
        if (h->rel_n == h->rel_cap) {
                size_t cap = h->rel_cap ? h->rel_cap * 2 : 64;
                struct release *q = cap <= REL_QUEUE_MAX ? realloc(h->rel_q, cap * sizeof *q) : NULL;
                if (!q) {
                        bool was_dead = h->dead;
                        fail_host_locked(h, NK_ERR_TIMEOUT, -ETIMEDOUT,
                                         "host for %s killed: it stopped reading (%zu RELEASEs could not be sent)",
                                         h->library, h->rel_n - h->rel_head);
                        if (!was_dead)
                                snprintf(h->death.reason, sizeof h->death.reason, "timeout");
                        pthread_mutex_unlock(&h->lock);
                        return -ETIMEDOUT;
                }
                h->rel_q = q;
                h->rel_cap = cap;
        }
        h->rel_q[h->rel_n++] = rel;
        atomic_store(&h->rel_waiting, true);
        /* Counted as it is queued: a call started from now on waits, in
         * the host, for the host to have carried it out (SHM_REGION). */
        atomic_fetch_add(&h->releases_sent, 1);
        pthread_mutex_unlock(&h->lock);
        return 0;
}

NK_EXPORT int nk_host_release_resource(nk_host *h, uint64_t handle)
{
        return send_release(h, handle, 0);
}

NK_EXPORT int nk_host_release_resource_counted(nk_host *h, uint64_t handle, uint64_t count)
{
        if (count == 0)
                return -EINVAL;
        return send_release(h, handle, count);
}

NK_EXPORT int nk_host_kill(nk_host *h, const char *reason, const char *msg)
{
        pthread_mutex_lock(&h->lock);
        bool up = h->state == ST_RUNNING && !h->dead;
        if (up) {
                fail_host_locked(h, NK_ERR_HOST_DIED, -ECONNRESET, "host for %s killed: %s", h->library,
                                 msg ? msg : reason);
                snprintf(h->death.reason, sizeof h->death.reason, "%s", reason);
        }
        pthread_mutex_unlock(&h->lock);
        return up ? 0 : -ENOTCONN;
}

NK_EXPORT void nk_host_stop(nk_host *h)
{
        if (h->state != ST_RUNNING)
                return;
        teardown(h, "was stopped");
        h->state = ST_STOPPED;
        nk_status_stopped(&h->status, h->dead ? &h->death : NULL);
}

NK_EXPORT void nk_host_free(nk_host *h)
{
        if (!h)
                return;
        nk_host_stop(h);
        /* A host that failed in nk_host_load was torn down, not stopped. */
        nk_status_stopped(&h->status, NULL);
        forget_discovery(h);
        forget_shm(h);
        free(h->rel_q);
        free(h->library);
        free(h->host_binary);
        free(h->cgroup_root);
        free(h->audit_log);
        nk_policy_free(h->own_policy);
        pthread_cond_destroy(&h->idle);
        pthread_cond_destroy(&h->sends_cond);
        pthread_mutex_destroy(&h->lock);
        free(h);
}
