/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting a host process: the policy in force, the launcher it names and
 * the sandbox it describes, the host's environment, the channel, and the
 * descriptors that go to the host before LOAD (the calls' shared memory,
 * the broker's socket). host.c sends LOAD and runs everything after.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "beam_scope.h"
#include "broker.h"
#include "error.h"
#include "fdpass.h"
#include "host_internal.h"
#include "log.h"
#include "machine.h"
#include "hash.h"
#include "macro.h"
#include "protocol.h"
#include "shm_chan.h"
#include "template.h"

#ifndef NK_HOST_INSTALL_PATH
#error "NK_HOST_INSTALL_PATH must be defined by the build"
#endif

const char *nk_host_binary_path(const nk_host *h)
{
        return h->host_binary ? h->host_binary : NK_HOST_INSTALL_PATH;
}

/* The policy in force: the caller's, or the default. */
static int resolve_policy(nk_host *h, nk_error *err)
{
        if (h->policy)
                return 0;
        if (!h->own_policy) {
                int r = nk_policy_default(&h->own_policy);
                if (r < 0)
                        return nk_error_set(err, NK_ERR_SYSTEM, r, "cannot build the default policy: %s",
                                            strerror(-r));
                /* Explicit set_call_timeout/set_workers calls win. */
                if (!h->call_timeout_ms)
                        h->call_timeout_ms = h->own_policy->limits.call_timeout_ms;
        }
        h->policy = h->own_policy;
        return 0;
}

/* The notes already said, with the library's name taken
 * out: a VM with a thousand libraries under one best-effort policy is told
 * once, not at every start and restart of every host. */
#define NOTES_KEPT 32
static struct {
        pthread_mutex_t lock;
        char *said[NOTES_KEPT];
        unsigned n, oldest;     /* when full, the next to make room */
} notes = { .lock = PTHREAD_MUTEX_INITIALIZER };

/*
 * Whether key is claimed for the first time in this process, across every
 * copy of libnifkit in it: each wrapped library's proxy carries its own
 * copy, with its own statics, so a static table alone would speak once per
 * library. The claim is an abstract unix socket named after this process
 * (pid and start time, so never another's) and a hash of the key: the
 * first bind wins and keeps its descriptor open until the process exits,
 * when the kernel frees the name. True also when no socket can be made:
 * a note said twice beats a note lost.
 */
static bool first_in_process(const char *key)
{
        static unsigned long long start;
        if (!start)
                start = nk_process_start_time(getpid());
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        int len = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "nifkit-note/%d/%llu/%016" PRIx64,
                           (int) getpid(), start, nk_fnv1a64(key));
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return true;
        if (bind(fd, (struct sockaddr *) &a, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + len)) == 0)
                return true;    /* fd stays open: the claim */
        int e = errno;
        close(fd);
        return e != EADDRINUSE;
}

/* True the first time this text (library aside) is seen in this process. */
static bool note_is_new(const char *library, const char *msg)
{
        char key[1024];
        size_t k = 0, llen = library ? strlen(library) : 0;
        for (const char *p = msg; *p && k + 1 < sizeof key;) {
                if (llen && strncmp(p, library, llen) == 0) {
                        p += llen;
                        continue;
                }
                key[k++] = *p++;
        }
        key[k] = '\0';
        pthread_mutex_lock(&notes.lock);
        bool seen = false;
        for (unsigned i = 0; i < notes.n && !seen; i++)
                seen = strcmp(notes.said[i], key) == 0;
        char *copy = seen ? NULL : strdup(key);
        if (copy && notes.n < NOTES_KEPT) {
                notes.said[notes.n++] = copy;
        } else if (copy) {
                free(notes.said[notes.oldest]);
                notes.said[notes.oldest] = copy;
                notes.oldest = (notes.oldest + 1) % NOTES_KEPT;
        }
        pthread_mutex_unlock(&notes.lock);
        return !seen && first_in_process(key);
}

/* What the sandbox does not enforce here (a best-effort policy without
 * cgroup controllers): an event for every host, with a note for a person
 * once per process and kind of note. */
static void sandbox_note(void *arg, const char *msg)
{
        nk_host *h = arg;
        char line[512];
        bool say = note_is_new(h->library, msg);
        if (say) {
                /* One line: the first sentence, which says what is not
                 * enforced and why; how to fix it is in the README. */
                char lib[300];
                const char *stop = strstr(msg, ". ");
                int n = stop ? (int) (stop - msg) : (int) strlen(msg);
                /* It speaks for every library: none is named. */
                snprintf(lib, sizeof lib, " for %s", h->library ? h->library : "");
                const char *at = h->library ? strstr(msg, lib) : NULL;
                if (at && at - msg < n)
                        snprintf(line, sizeof line, "%.*s%.*s (said once per VM; see README, \"Sandbox and limits\")",
                                 (int) (at - msg), msg, n - (int) (at - msg) - (int) strlen(lib),
                                 at + strlen(lib));
                else
                        snprintf(line, sizeof line, "%.*s (said once per VM; see README, \"Sandbox and limits\")",
                                 n, msg);
        }
        nk_log_note(NK_LOG_WARNING, h->library, "sandbox_not_enforced", say ? line : NULL,
                    NK_LOG_STR("message", msg));
}

/* Picks the launcher the policy names and the sandbox it describes. */
static int choose_launcher(nk_host *h, struct nk_sandbox_config *sc, nk_error *err)
{
        int r = resolve_policy(h, err);
        if (r < 0)
                return r;
        const struct nk_policy *p = h->policy;
        *sc = (struct nk_sandbox_config) {
                .memory_bytes = p->limits.memory_mb << 20,
                .pids = p->limits.pids,
                .cpu_percent = p->limits.cpu_percent,
                .tmp_mb = p->limits.tmp_mb,
                .open_files = p->limits.open_files,
                .cgroup_required = p->cgroup == NK_POLICY_CGROUP_REQUIRED,
                .scope = nk_beam_scope(),
        };
        /* A delegated subtree other than the one this process sits in, as a
         * multi-tenant server's unit gets from systemd (Delegate=yes). */
        if (h->cgroup_root)
                sc->cgroup_root = h->cgroup_root;
        /* Ids left 0: the launcher's defaults (never root, see userns.c). */
        if (geteuid() == 0) {
                sc->outside_uid = h->sandbox_uid;
                sc->outside_gid = h->sandbox_gid;
        }
        sc->search_path = h->getenv_fn ? h->getenv_fn(h->getenv_arg, "PATH") : NULL;

        if (p->launcher == NK_POLICY_LAUNCHER_UNSANDBOXED || h->unsandboxed) {
                h->launcher = &nk_launcher_direct;
                char note[PATH_MAX + 200];
                snprintf(note, sizeof note, "WARNING: the host for %s runs UNSANDBOXED (%s): the NIF has every "
                         "right of this process. For development only.", h->library,
                         h->unsandboxed ? "unsandboxed development allowed by the caller"
                                        : "policy launcher \"unsandboxed-development\"");
                nk_log_note(NK_LOG_WARNING, h->library, "sandbox_disabled", note,
                            NK_LOG_STR("launcher", nk_launcher_direct.name));
        } else {
                h->launcher = p->launcher == NK_POLICY_LAUNCHER_BWRAP ? &nk_launcher_bwrap : &nk_launcher_native;
        }
        if (h->launcher->own_root && h->library[0] != '/') {
                _cleanup_free_ char *abs = realpath(h->library, NULL);
                if (!abs)
                        return nk_error_set(err, NK_ERR_SYSTEM, -errno, "cannot find %s: %s", h->library,
                                            strerror(errno));
                free(h->library);
                h->library = TAKE_PTR(abs);
        }
        return 0;
}

/* The shared-memory region for calls (transport shm), one slot per
 * worker, passed to the host with SHM_REGION. */
static int attach_shm(nk_host *h, nk_error *err)
{
        if (h->policy->transport != NK_POLICY_TRANSPORT_SHM)
                return 0;
        uint64_t slot = ((uint64_t) h->policy->limits.shm_slot_kb * 1024 + 4095) / 4096 * 4096;
        int fd;
        int r = nk_shm_chan_new(h->workers, slot, h->tr.max_payload, &h->shm, &fd);
        if (r >= 0 && h->result_alloc)
                nk_shm_chan_set_alloc(h->shm, &h->shm_alloc);
        if (r < 0)
                return nk_error_set(err, NK_ERR_SYSTEM, r, "cannot create the shared memory for %s's calls "
                                    "(%u slots of %llu KiB): %s", h->library, h->workers,
                                    (unsigned long long) slot / 1024, strerror(-r));
        _cleanup_close_ int region = fd;
        const struct nk_shm_layout *l = nk_shm_chan_layout(h->shm);
        struct nk_msg_header hd = { .type = NK_MSG_SHM_REGION, .payload_len = 16 };
        uint32_t version = NK_SHM_VERSION, nslots = l->nslots;
        uint64_t slot_data = l->slot_data;
        const struct iovec iov[] = { { &hd, sizeof hd }, { &version, 4 }, { &nslots, 4 }, { &slot_data, 8 } };
        r = nk_fdpass_send(h->fd, iov, NK_ARRAY_SIZE(iov), region);
        if (r < 0)
                return nk_error_set(err, NK_ERR_SYSTEM, r, "cannot pass the shared memory to the host for %s: %s",
                                    h->library, strerror(-r));
        return 0;
}

/* The host's environment: a few fixed values that carry nothing of the
 * VM, then the variables the policy names, with the VM's values now (a
 * name the VM does not set is left out; one of the fixed names replaces
 * its value). BEAM shows a NIF the VM's whole environment, secrets and
 * all; the host shows only this. */
static const char *const fixed_env[] = { "PATH=/usr/bin:/bin", "HOME=/", "TMPDIR=/tmp" };

/* Given from the same lookup besides the policy's names: the sanitizers'
 * settings, so that an instrumented host behaves as asked. */
static const char *const sanitizer_env[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" };

static void env_freep(char ***env)
{
        nk_sandbox_env_free(*env);
}

static int host_env(const nk_host *h, char ***ret)
{
        const struct nk_policy *p = h->policy;
        size_t n = 0;
        char **env = calloc(NK_ARRAY_SIZE(fixed_env) + p->nenv + NK_ARRAY_SIZE(sanitizer_env) + 1, sizeof *env);
        if (!env)
                return -ENOMEM;
        for (size_t i = 0; i < NK_ARRAY_SIZE(fixed_env); i++)
                if (!(env[n++] = strdup(fixed_env[i])))
                        goto oom;
        for (size_t i = 0; i < p->nenv; i++) {
                const char *v = h->getenv_fn ? h->getenv_fn(h->getenv_arg, p->env[i]) : NULL;
                if (!v)
                        continue;
                char *e;
                if (asprintf(&e, "%s=%s", p->env[i], v) < 0)
                        goto oom;
                size_t k = 0, len = strlen(p->env[i]);
                while (k < n && !(strncmp(env[k], e, len + 1) == 0))
                        k++;
                if (k < n)
                        free(env[k]);
                else
                        n++;
                env[k] = e;
        }
        for (size_t i = 0; h->getenv_fn && i < NK_ARRAY_SIZE(sanitizer_env); i++) {
                const char *v = h->getenv_fn(h->getenv_arg, sanitizer_env[i]);
                if (v && asprintf(&env[n++], "%s=%s", sanitizer_env[i], v) < 0) {
                        env[--n] = NULL;
                        goto oom;
                }
        }
        *ret = env;
        return 0;
oom:
        nk_sandbox_env_free(env);
        return -ENOMEM;
}

static const char *host_getenv(const nk_host *h, const char *name)
{
        return h->getenv_fn ? h->getenv_fn(h->getenv_arg, name) : getenv(name);
}

static void launch_notice(void *arg, const char *kind, const char *msg)
{
        nk_host *h = arg;
        nk_log_note(NK_LOG_WARNING, h->library, kind, msg, NK_LOG_STR("message", msg));
}

/* Where the host template is (template.h): $NIFKIT_TEMPLATE, else beside
 * the host binary, as given or resolved. NULL in *ret: hosts start from
 * this process (NIFKIT_TEMPLATE=off), which copies it for each. */
static int find_template(const nk_host *h, const char *given, const char *resolved, char **ret, nk_error *err)
{
        const char *env = host_getenv(h, "NIFKIT_TEMPLATE");
        *ret = NULL;
        if (env && strcmp(env, "off") == 0)
                return 0;
        if (env && env[0]) {
                if (access(env, X_OK) < 0)
                        return nk_error_set(err, NK_ERR_SYSTEM, -errno, "cannot start host for %s: NIFKIT_TEMPLATE "
                                            "'%s': %s", h->library, env, strerror(errno));
                *ret = strdup(env);
                return *ret ? 0 : nk_error_set(err, NK_ERR_SYSTEM, -ENOMEM, "out of memory");
        }
        const char *const bins[] = { given, resolved };
        for (size_t i = 0; i < NK_ARRAY_SIZE(bins); i++) {
                const char *slash = strrchr(bins[i], '/');
                char *path;
                if (asprintf(&path, "%.*s%snifkit-template", slash ? (int) (slash - bins[i]) : 0, bins[i],
                             slash ? "/" : "") < 0)
                        return nk_error_set(err, NK_ERR_SYSTEM, -ENOMEM, "out of memory");
                if (access(path, X_OK) == 0) {
                        *ret = path;
                        return 0;
                }
                free(path);
        }
        return nk_error_set(err, NK_ERR_SYSTEM, -ENOENT, "cannot start host for %s: no nifkit-template beside "
                            "'%s' (it is installed with nifkit-host; NIFKIT_TEMPLATE names another, "
                            "NIFKIT_TEMPLATE=off starts hosts from this process)", h->library, resolved);
}

int nk_host_launch(nk_host *h, nk_error *err)
{
        struct nk_sandbox_config sc;
        int r = choose_launcher(h, &sc, err);
        if (r < 0)
                return r;
        _cleanup_(env_freep) char **env = NULL;
        r = host_env(h, &env);
        if (r < 0)
                return nk_error_set(err, NK_ERR_SYSTEM, r, "cannot start host for %s: out of memory", h->library);
        sc.env = (const char *const *) env;

        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return nk_error_set(err, NK_ERR_SYSTEM, -errno, "cannot create the channel for %s: %s",
                                    h->library, strerror(errno));
        h->fd = sv[0];
        _cleanup_close_ int theirs = sv[1];
        if (h->call_timeout_ms > 0) {
                /* A host that stops reading must not hold a caller in send()
                 * past its timeout either. */
                struct timeval tv = { .tv_sec = h->call_timeout_ms / 1000,
                                      .tv_usec = (suseconds_t) (h->call_timeout_ms % 1000) * 1000 };
                if (setsockopt(h->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
                        return nk_error_set(err, NK_ERR_SYSTEM, -errno, "cannot set the channel's timeout: %s",
                                            strerror(errno));
        }

        /* max_result_bytes bounds every message from the host (a result is
         * the largest); a few bytes on top for RESULT's status word. */
        uint64_t max_result = h->policy->limits.max_result_bytes;
        r = nk_transport_init(&h->tr, h->fd, max_result && max_result < SIZE_MAX - 64 ? (size_t) max_result + 64 : 0);
        if (r < 0)
                return nk_error_set(err, NK_ERR_SYSTEM, r, "cannot start host for %s: %s", h->library, strerror(-r));
        /* A CALL is its arguments (max_args_bytes, checked in call_check)
         * with the function's index and the caller's pid in front; other
         * requests (LOAD with its load_info) keep the protocol's own bound,
         * whatever max_args_bytes says. */
        uint64_t max_args = h->policy->limits.max_args_bytes;
        if (max_args && max_args < SIZE_MAX - NK_CALLER_PID_MAX - 64 &&
            max_args + NK_CALLER_PID_MAX + 64 > NK_PAYLOAD_MAX_DEFAULT)
                h->tr.max_send = (size_t) max_args + NK_CALLER_PID_MAX + 64;
        else
                h->tr.max_send = NK_PAYLOAD_MAX_DEFAULT;
        h->tr_ready = true;

        /* A sandbox binds the binary at its absolute path. */
        const char *hb = nk_host_binary_path(h);
        _cleanup_free_ char *abs_host = realpath(hb, NULL);
        if (!abs_host)
                return nk_error_set(err, NK_ERR_SYSTEM, -errno, "cannot start host '%s' for %s: %s", hb,
                                    h->library, strerror(errno));
        _cleanup_free_ char *template = NULL;
        r = find_template(h, hb, abs_host, &template, err);
        if (r < 0)
                return r;
        if (template)
                h->launcher = nk_launcher_via_template(h->launcher);
        hb = abs_host;
        struct nk_sandbox_error serr = { 0 };
        const struct nk_launch_config cfg = { .host_binary = hb, .library = h->library, .sandbox = &sc,
                                              .log = sandbox_note, .log_arg = h, .err = &serr,
                                              .notice = launch_notice, .template_binary = template };
        r = h->launcher->launch(&cfg, theirs, &h->child);
        char hint[400] = "";
        /* bwrap's own words do not carry an errno: only a switch that
         * restricts user namespaces explains its refusal for certain. */
        if (r < 0 && strstr(serr.msg, "clone3 into new namespaces failed"))
                nk_machine_start_hint(NULL, -r, hint, sizeof hint);
        else if (r < 0 && strstr(serr.msg, "bwrap could not build the sandbox"))
                nk_machine_start_hint(NULL, 0, hint, sizeof hint);
        if (hint[0])
                /* The cause first: the paths may be long, and the message is cut at its end. */
                return nk_error_set(err, NK_ERR_SYSTEM, r, "cannot start the host for %s (%s launcher): %s; %s",
                                    h->library, h->launcher->name, hint, serr.msg);
        if (r < 0 && serr.msg[0])
                return nk_error_set(err, NK_ERR_SYSTEM, r, "cannot start host '%s' for %s (%s launcher): %s",
                                    cfg.host_binary, h->library, h->launcher->name, serr.msg);
        if (r < 0)
                return nk_error_set(err, NK_ERR_SYSTEM, r, "cannot start host '%s' for %s (%s launcher): %s",
                                    cfg.host_binary, h->library, h->launcher->name, strerror(-r));
        h->launched = true;
        if (nk_child_cgroup_events(&h->child, &h->cg_start) < 0)
                h->cg_start = (struct nk_cgroup_events) {};

        /* The descriptors go first: the host reads them before LOAD. */
        r = attach_shm(h, err);
        if (r < 0)
                return r;
        if (nk_broker_needed(h->policy)) {
                r = nk_broker_new(h->policy, h->library, h->audit_log, &h->broker);
                if (r >= 0)
                        r = nk_broker_attach(h->broker, h->fd);
                if (r < 0)
                        return nk_error_set(err, NK_ERR_SYSTEM, r, "cannot start the capability broker for %s: %s",
                                            h->library, strerror(-r));
        }

        return 0;
}
