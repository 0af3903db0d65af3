/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libnifkit: the trusted side's API for running a NIF library in a separate
 * host process.
 *
 * Lifecycle, as in minijail: create → configure → start → call… → stop → free.
 *
 *     nk_host *h = nk_host_new();
 *     nk_host_set_library(h, "/usr/lib/erlang/lib/jiffy-1.1.1/priv/jiffy.so");
 *     nk_error err;
 *     if (nk_host_start(h, load_info, load_info_len, &err) < 0) { … err.msg … }
 *     for (unsigned i = 0; i < nk_host_function_count(h); i++) … nk_host_function(h, i) …
 *     nk_result res;
 *     if (nk_host_call(h, index, NULL, 0, args, args_len, &res, &err) < 0) { … }
 *     … res.etf / res.len, res.exception …
 *     nk_result_free(&res);
 *     nk_host_free(h);              // stops the host if it runs
 *
 * Terms cross as External Term Format (the bytes of term_to_binary/1). The
 * library never trusts what the host sends: every response is length-checked
 * and a malformed one kills that host, never the caller.
 *
 * Errors are values. Functions that can fail return 0 (or a count) on
 * success and a negative errno on failure, and fill the caller's nk_error
 * with the kind of failure and a message that says what and where.
 *
 * Thread safety: nk_host_call may be called from many threads at once on the
 * same host; each call gets its own response. Configuration functions must
 * not race with start, call or free.
 */
#ifndef NIFKIT_H
#define NIFKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nk_host nk_host;

enum nk_error_kind {
        NK_ERR_NONE = 0,
        NK_ERR_SYSTEM,          /* a system call failed; code is -errno */
        NK_ERR_LOAD,            /* the library failed to load (dlopen, nif_init, load) */
        NK_ERR_HOST_DIED,       /* the host exited (status) or was killed (signo) */
        NK_ERR_PROTOCOL,        /* the host sent a malformed or unexpected message */
        NK_ERR_TIMEOUT,         /* the host did not answer in time; it was killed */
        NK_ERR_REJECTED,        /* the host rejected the request (bad arguments ETF, bad index) */
        NK_ERR_NOT_RUNNING,     /* the host is not started, or was stopped */
};

typedef struct nk_error {
        int kind;               /* enum nk_error_kind */
        int code;               /* negative errno, as returned */
        int signo;              /* NK_ERR_HOST_DIED: signal that killed it, or 0 */
        int status;             /* NK_ERR_HOST_DIED: exit status when signo == 0 */
        char msg[512];
        /* Why the host is gone, on every error that reports its death: "oom"
         * (its cgroup's memory.events oom_kill rose), "pids_limit" (it died
         * after pids.max refused a fork), "timeout", "seccomp" (the filter
         * trapped a system call; msg names it), "crashed" (a signal killed
         * it; signo), "exited" (status), "protocol" (it sent a malformed
         * message and was killed), "result_too_large" (a result above
         * max_result_bytes), "heartbeat" (it stopped answering PING),
         * "stopped", or the reason given to nk_host_kill; "" otherwise.
         * One reason is not a death: "args_too_large" (NK_ERR_REJECTED: the
         * call's arguments are above max_args_bytes; nothing was sent, the
         * host lives). */
        char reason[32];
        /* args_too_large and result_too_large: the message's size in bytes
         * and the limit it is above. */
        uint64_t size, limit;
} nk_error;

/* Name of an error kind: "system", "load", "host_died", "protocol", … */
const char *nk_error_kind_name(int kind);

typedef struct nk_function {
        const char *name;
        unsigned arity;
        unsigned flags;         /* ERL_NIF_DIRTY_JOB_* as the library declared */
} nk_function;

typedef struct nk_result {
        int exception;          /* 0: the function returned; 1: it raised (etf is the reason) */
        int no_handles;         /* the host says etf holds no resource handle */
        const uint8_t *etf;     /* owned by the result; free with nk_result_free */
        size_t len;
        /* Where etf's memory came from: the allocator's handle for it
         * (nk_host_set_result_alloc), or the malloc'd block. */
        void *owner;
        const struct nk_result_alloc *alloc;    /* NULL: malloc */
} nk_result;

/* Releases the result's memory; accepts an empty result. */
void nk_result_free(nk_result *res);

/*
 * Where the bytes of results received over shared memory go: the runtime
 * copies each out of the region exactly once, into memory from alloc, so
 * that a caller with an allocator of its own (the proxy gives BEAM's
 * binaries) needs no copy of its own. alloc returns n bytes and sets
 * *ret_owner to what release is later given; NULL for out of memory. The
 * struct must outlive the host and its results.
 */
typedef struct nk_result_alloc {
        uint8_t *(*alloc)(void *arg, size_t n, void **ret_owner);
        void (*release)(void *arg, void *owner);
        void *arg;
} nk_result_alloc;
void nk_host_set_result_alloc(nk_host *h, const nk_result_alloc *alloc);

/* Called for every enif_send the host makes, on an internal thread. Both
 * terms are ETF; the memory is valid during the call only. */
typedef void (*nk_send_fn)(void *arg, const uint8_t *to_pid, size_t to_len,
                           const uint8_t *msg, size_t msg_len);

/* Returns NULL only when memory runs out. */
nk_host *nk_host_new(void);

/* Whether the file at path is a NIF library: an ELF shared object whose
 * dynamic symbols define nif_init. 1 yes, 0 no, -ENOEXEC not ELF, else
 * -errno. Reads the file only; nothing of it runs. */
int nk_library_is_nif(const char *path);

/* The NIF library to load (a path; copied). Required. */
int nk_host_set_library(nk_host *h, const char *path);
/* The nifkit-host executable. Default: the installed one. */
int nk_host_set_host_binary(nk_host *h, const char *path);
/* Milliseconds a call may take before the host is killed (0 = no limit, the default). */
void nk_host_set_call_timeout(nk_host *h, unsigned ms);
/* Worker threads in the host: how many calls run at once (default 4). */
void nk_host_set_workers(nk_host *h, unsigned n);
void nk_host_set_send_callback(nk_host *h, nk_send_fn fn, void *arg);

/*
 * The operator's choices that are not part of a policy. libnifkit reads no
 * environment variable: a program's main() decides (the proxy and the
 * nifkit tool map the NIFKIT_* variables to these calls, see
 * runtime/operator.h). Paths are copied.
 *
 * cgroup_root: the delegated cgroup v2 subtree the hosts' leaves go under
 * (a multi-tenant server's unit with Delegate=yes); NULL, the default: the
 * subtree this process is in.
 */
int nk_host_set_cgroup_root(nk_host *h, const char *path);
/* Every broker decision (in either mode) appended to path, one JSON object
 * per line (docs/BROKER.md); NULL, the default: none, and under a policy
 * in "audit" mode the decisions go to the log sink as "broker_decision"
 * events. */
int nk_host_set_audit_log(nk_host *h, const char *path);
/* Where the variables a policy's "env" names take their values: lookup
 * returns name's value or NULL, at each start (a restart sees the values
 * of then; the proxy looks in the VM's environment). The same lookup gives
 * the PATH bubblewrap is looked for in and the sanitizers' settings
 * (ASAN_OPTIONS, UBSAN_OPTIONS, LSAN_OPTIONS) a sanitizer build's host
 * needs. NULL, the default: the names get no value, the host sees only the
 * fixed PATH, HOME and TMPDIR, bwrap is looked for in /usr/local/bin,
 * /usr/bin and /bin. libnifkit reads no environment of its own. */
typedef const char *(*nk_getenv_fn)(void *arg, const char *name);
void nk_host_set_environment(nk_host *h, nk_getenv_fn lookup, void *arg);
/* Starts this host with no sandbox at all, whatever its policy says: the
 * NIF gets every right of this process. For development only; every start
 * logs a warning with a note (nk_log_record). The policy's
 * "unsandboxed-development" launcher does the same. */
void nk_host_allow_unsandboxed_development(nk_host *h);
/* The ids a sandboxed host runs as outside its user namespace when this
 * process is root (an unprivileged process maps only itself, and these are
 * ignored). 0 leaves the default, 65534 (nobody). Giving each tenant an id
 * of its own keeps one tenant's hosts from signalling or reading another's
 * outside the sandbox. */
void nk_host_set_sandbox_ids(nk_host *h, unsigned uid, unsigned gid);

struct nk_policy;
/*
 * The policy the host runs under (nifkit_policy.h): its launcher, limits,
 * workers and call timeout (taken now; set_workers and set_call_timeout
 * after this override them). The policy is not copied and must outlive h.
 * Without one, start uses nk_policy_default(): every host is sandboxed
 * unless a policy names the "unsandboxed-development" launcher or
 * nk_host_allow_unsandboxed_development was called.
 */
void nk_host_set_policy(nk_host *h, const struct nk_policy *policy);

/*
 * Launches the host, loads the library in it and runs its load() with
 * load_info (ETF; NULL means the atom []), then discovers its functions.
 * On failure the host is gone and err says why (for a library that failed
 * to load: NK_ERR_LOAD with the library's path and dlerror or load's result).
 */
int nk_host_start(nk_host *h, const uint8_t *load_info, size_t load_info_len, nk_error *err);

/*
 * Two-step start, for the proxy NIF: BEAM asks for the function table
 * (nif_init) before it hands over load_info (load()). nk_host_open launches
 * the host and loads the library without running its load(), then discovers
 * its functions; nk_host_load then runs load() once. Calls are refused until
 * nk_host_load succeeded. On failure of either the host is gone, as for
 * nk_host_start.
 */
int nk_host_open(nk_host *h, nk_error *err);
int nk_host_load(nk_host *h, const uint8_t *load_info, size_t load_info_len, nk_error *err);

/* What discovery found; valid from a successful start (or open) until free. */
const char *nk_host_module(const nk_host *h);
unsigned nk_host_function_count(const nk_host *h);
const nk_function *nk_host_function(const nk_host *h, unsigned index);
/* Index of name/arity, or -ENOENT. */
int nk_host_find_function(const nk_host *h, const char *name, unsigned arity);

/* Which of the library's entry callbacks exist (from a successful open). */
#define NK_HOST_HAS_UPGRADE 1u
#define NK_HOST_HAS_UNLOAD 2u
unsigned nk_host_callbacks(const nk_host *h);

/*
 * BEAM's module upgrade, on a loaded host: runs the library's
 * upgrade(env, &priv, &old_priv, load_info); the old instance keeps its
 * priv until nk_host_unload(h, true). A library without upgrade() gets
 * BEAM's refusal (NK_ERR_LOAD, "Upgrade not supported by this NIF
 * library."); one whose upgrade() fails, BEAM's words for that. The host
 * runs on either way.
 */
int nk_host_upgrade(nk_host *h, const uint8_t *load_info, size_t load_info_len, nk_error *err);
/* Runs the library's unload(env, priv) for the current instance, or (old)
 * for the one the last upgrade left old. The host runs on. */
int nk_host_unload(nk_host *h, bool old, nk_error *err);

/* Process id of the host, or -1. */
int nk_host_pid(const nk_host *h);

/* The longest ETF a pid can have: tag, NEW_PID_EXT, a node name of 255
 * characters of up to 4 bytes in ATOM_UTF8_EXT, id, serial and creation. */
#define NK_CALLER_PID_MAX (1 + 1 + 3 + 255 * 4 + 12)

/*
 * Calls function `index` with args, the ETF of a list of exactly arity
 * terms. caller_pid is the ETF of the calling process's pid (what
 * enif_self() gives in the host), or NULL; at most NK_CALLER_PID_MAX
 * bytes. On success res holds the result
 * or the exception the NIF raised. After NK_ERR_HOST_DIED, NK_ERR_TIMEOUT or
 * NK_ERR_PROTOCOL the host is dead and every later call fails with
 * NK_ERR_NOT_RUNNING.
 */
int nk_host_call(nk_host *h, unsigned index, const uint8_t *caller_pid, size_t caller_pid_len,
                 const uint8_t *args, size_t args_len, nk_result *res, nk_error *err);

/*
 * The same call in steps, for a caller that must not block long (the proxy
 * NIF on a normal scheduler): start sends the request (over shared memory,
 * as soon as one of the host's workers is free: at start when one is, else
 * during the first poll that finds one); poll waits up to wait_ms (0: only
 * looks; -1: until the reply or the call timeout) and returns -EAGAIN
 * while the reply has not come, the call still the caller's; any other
 * return finishes the call and frees it, with res or err filled as by
 * nk_host_call. cancel gives up on a call not finished: its reply, when it
 * comes, is dropped. args must stay valid until the call is finished or
 * cancelled (caller_pid is copied). A call must be finished or cancelled
 * before its host is freed.
 *
 * A request longer than nk_host_call_inline_max bytes crosses in chunks,
 * each taken by the host before the next: start or poll may then wait for
 * the host (never beyond the call timeout) however short wait_ms is.
 */
typedef struct nk_call nk_call;
int nk_host_call_start(nk_host *h, unsigned index, const uint8_t *caller_pid, size_t caller_pid_len,
                       const uint8_t *args, size_t args_len, nk_call **ret_call, nk_error *err);
/* The same with the arguments' ETF in pieces: the concatenation of
 * args[0..nargs), at most NK_CALL_PIECES of them. */
#define NK_CALL_PIECES 12
struct iovec;
int nk_host_call_startv(nk_host *h, unsigned index, const uint8_t *caller_pid, size_t caller_pid_len,
                        const struct iovec *args, size_t nargs, nk_call **ret_call, nk_error *err);
int nk_host_call_poll(nk_call *call, int wait_ms, nk_result *res, nk_error *err);
void nk_host_call_cancel(nk_call *call);
/* The longest request sent without waiting for the host (SIZE_MAX over the
 * socket transport, where the kernel buffers requests). */
size_t nk_host_call_inline_max(const nk_host *h);

/* Liveness: PING, PONG within timeout_ms (0: no limit), else the host is
 * killed with reason "heartbeat". 0 or a negative errno as for calls. */
int nk_host_ping(nk_host *h, unsigned timeout_ms, nk_error *err);

/* Tells the host the runtime dropped its last reference to a resource handle.
 * A host that stops reading is killed once the send times out (the call
 * timeout): -ETIMEDOUT, then -ENOTCONN for every later release. */
int nk_host_release_resource(nk_host *h, uint64_t handle);
/* The same, counted: count is how many times the runtime received the
 * handle since it last released it; the host keeps the resource until
 * every copy it sent is accounted for (protocol.h, RELEASE). */
int nk_host_release_resource_counted(nk_host *h, uint64_t handle, uint64_t count);

/* Kills the host because its user found it misbehaving: later calls and
 * the death report say reason (e.g. "atom_budget") and msg. 0, or
 * -ENOTCONN when it is not running. The reader still reaps it. */
int nk_host_kill(nk_host *h, const char *reason, const char *msg);

/* Stops the host (asks, then kills) and reaps it. Idempotent. */
void nk_host_stop(nk_host *h);
/* Stops if needed and frees. Accepts NULL. */
void nk_host_free(nk_host *h);

/* ---- observability: JSON-lines events and per-host statistics ---------- */

enum nk_log_level {
        NK_LOG_DEBUG = 0,
        NK_LOG_INFO,
        NK_LOG_WARNING,
        NK_LOG_ERROR,
};

/*
 * Where libnifkit's events go: one record per event, the event as one JSON
 * object (line, without the newline), e.g.
 * {"ts":"…","level":"info","library":"…","event":"host_started",…}.
 * Process-wide. Without a sink nothing is written (the default): a library
 * never writes on its own. Events below min_level are dropped. The sink may
 * be called from any thread, one record at a time; the record is valid
 * during the call only.
 *
 * note, when set, is one line for a person, not JSON: what a best-effort
 * sandbox does not enforce here (once per process and kind of note, not
 * for every host), or that a host runs unsandboxed (every start). A sink
 * that feeds a terminal or the VM's stderr prints it.
 */
struct nk_log_record {
        enum nk_log_level level;
        const char *library;    /* or NULL */
        const char *event;
        const char *note;       /* or NULL */
        const char *line;
};
typedef void (*nk_log_sink_fn)(void *arg, const struct nk_log_record *rec);
void nk_log_set_sink(nk_log_sink_fn fn, void *arg, enum nk_log_level min_level);
/* "debug", "info", "warning", "error". */
const char *nk_log_level_name(enum nk_log_level level);

/* Where the state files of `nifkit status` go (process-wide; the
 * directory must be the caller's own, not group- or other-writable).
 * NULL, the default: /run/nifkit when writable, else /tmp/nifkit-UID. */
int nk_status_set_dir(const char *dir);

#define NK_STATS_LATENCY_BUCKETS 32
#define NK_STATS_MAX_REASONS 16

/*
 * What the hosts of one library did in this process, across restarts
 * (every nk_host of the same library path counts into the same record).
 * latency_us[i] counts calls that took less than 2^i µs and at least
 * 2^(i-1) (bucket 0: under 1 µs); p50_us and p99_us are the upper bounds of
 * the buckets those percentiles fall in.
 */
struct nk_stats {
        int host_pid;                   /* the current host, or -1 */
        int64_t started;                /* Unix time the current host started */
        uint64_t calls;                 /* every nk_host_call, failed ones included */
        uint64_t errors;                /* calls that failed */
        unsigned nreasons;
        struct {
                char reason[32];        /* nk_error.reason, else the kind's name; "other" */
                uint64_t count;
        } errors_by_reason[NK_STATS_MAX_REASONS];
        uint64_t restarts;              /* hosts started after one of the library died */
        char last_reason[32];           /* why the last host died, or "" */
        uint64_t latency_us[NK_STATS_LATENCY_BUCKETS];
        uint64_t latency_sum_ns;        /* every call's time added up */
        uint64_t p50_us, p99_us;
        uint64_t memory_peak;           /* bytes: the cgroup's memory.peak, else the host's VmHWM; 0 unknown */
};

/* 0, or -ENOTCONN when h was never started. */
int nk_host_stats(const nk_host *h, struct nk_stats *ret);

/*
 * Every runtime's statistics, as `nifkit status` and nifkit:stats() read
 * them: one state file per library per runtime process, in the directory
 * nk_status_set_dir chose and the default ones (the VM and the reader may
 * not share an environment).
 */
struct nk_status_record {
        int runtime_pid;        /* the process that runs libnifkit (the VM) */
        char library[4096];
        int64_t updated;        /* Unix time of the last write */
        struct nk_stats st;
};

/*
 * Calls fn for each live record, in no particular order; a record whose
 * runtime process is gone is stale, skipped, and removed where this
 * process may. Stops at the first negative return of fn and returns it;
 * otherwise returns the number of records seen. Unreadable or malformed
 * files are skipped: a reader must not fail because a runtime died while
 * writing.
 */
int nk_status_list(int (*fn)(const struct nk_status_record *rec, void *arg), void *arg);

/* The record as one JSON object (a state file's text), newly allocated
 * (free()). 0 or -ENOMEM. */
int nk_status_record_format(const struct nk_status_record *rec, char **ret);

/* ---- what this machine enforces ------------------------------------------------ */

#define NK_LIMIT_MEMORY 1u
#define NK_LIMIT_PIDS 2u
#define NK_LIMIT_CPU 4u

struct nk_cgroup_report {
        char root[4096];        /* where hosts' cgroup leaves go, or "" when there is none */
        unsigned limits;        /* NK_LIMIT_*: what their cgroup can enforce (0: no leaf at all) */
        char problem[1024];     /* why a limit is missing, and the fix; "" when none is */
};

/* What cgroup v2 gives hosts started now, under cgroup_root (a delegated
 * subtree; NULL: this process's own cgroup), as a start would find it.
 * Reads only: nothing is enabled or created. */
void nk_cgroup_report(const char *cgroup_root, struct nk_cgroup_report *ret);

/* One finding of nk_machine_checks, as `nifkit doctor` prints it. */
enum nk_check_status { NK_CHECK_OK, NK_CHECK_WARN, NK_CHECK_FAIL };
struct nk_check {
        char name[48];
        enum nk_check_status status;    /* FAIL: sandboxed hosts cannot start here */
        char detail[1024];              /* what was found */
        char fix[1024];                 /* what to do about it, or "" */
};

/*
 * What this machine allows a sandboxed host, each as a host start would
 * meet it: the kernel, the sysctls that restrict user namespaces (read from
 * proc_sys, NULL: /proc/sys), creating every namespace a host gets (tried in
 * a child process), a seccomp filter (likewise), cgroup v2 under
 * cgroup_root (NULL: this process's cgroup; nk_cgroup_report), and
 * bubblewrap in search_path (a $PATH; NULL: the default). Nothing is
 * changed. Fills at most max checks; returns how many.
 */
size_t nk_machine_checks(const char *proc_sys, const char *cgroup_root, const char *search_path,
                         struct nk_check *ret, size_t max);

/* ---- supervision ---------------------------------------------------------- */

/*
 * What a program that keeps a library's host alive needs besides the host
 * itself, as an OTP supervisor would do it: a restart intensity, and a
 * heartbeat that finds a host that hangs while nothing calls it. The proxy
 * uses both; a C embedder may.
 */

/* Whether err says the host is gone (crashed, killed, timed out, stopped
 * answering...), as opposed to a call refused while the host lives on. */
bool nk_error_is_death(const nk_error *err);

/* At most max_restarts within period_s seconds (max_restarts 0: none). */
typedef struct nk_restart_intensity nk_restart_intensity;
nk_restart_intensity *nk_restart_intensity_new(unsigned max_restarts, unsigned period_s);
/* Whether one more restart is allowed now; counts it when it is. */
bool nk_restart_intensity_allow(nk_restart_intensity *ri);
/* Forgets the restarts counted (a new load starts with the whole budget). */
void nk_restart_intensity_reset(nk_restart_intensity *ri);
void nk_restart_intensity_free(nk_restart_intensity *ri);

/*
 * A thread that pings a host every interval_ms while it is used and, while
 * nothing uses it, at intervals doubling up to idle_max_ms: a thousand idle
 * libraries then cost a ping a minute each. A ping may take timeout_ms; a
 * host that does not answer is killed (reason "heartbeat"). The host is
 * whatever acquire returns at each beat, so a host replaced after a
 * restart is followed.
 */
typedef struct nk_heartbeat nk_heartbeat;
struct nk_heartbeat_ops {
        /* The host to ping now, kept alive until release(token); NULL skips
         * this beat. *ret_busy: calls are running on it now. */
        nk_host *(*acquire)(void *arg, void **ret_token, bool *ret_busy);
        void (*release)(void *arg, void *token);
        /* The ping found the host gone: why (nk_error_is_death). On the
         * heartbeat's thread, before release. */
        void (*died)(void *arg, void *token, const nk_error *why);
};
int nk_heartbeat_start(const struct nk_heartbeat_ops *ops, void *arg, unsigned interval_ms,
                       unsigned idle_max_ms, unsigned timeout_ms, nk_heartbeat **ret);
/* A call is using the host: brings an idle heartbeat back to interval_ms,
 * so a host that hangs in this call is found as soon as in a busy one.
 * Costs a lock only after an idle spell. hb may be NULL. */
void nk_heartbeat_used(nk_heartbeat *hb);
/* Stops the thread and waits for it; hb may be NULL. */
void nk_heartbeat_stop(nk_heartbeat *hb);

/* ---- policy authoring -------------------------------------------------- */

/*
 * Reads broker audit records (JSON lines, NIFKIT_AUDIT_LOG's format) from
 * in and writes to out the smallest policy, as JSON loadable by
 * nk_policy_load, that allows every request the log records as allowed or
 * audit-allowed: for each file, its directory with the weakest access that
 * covers every flag seen there; the connect and listen endpoints; the
 * resolved names. Records the policy refused while enforcing are left out.
 * Malformed lines are errors: errbuf says which line. Returns 0, -EINVAL,
 * -ENOMEM or -errno of a write.
 */
int nk_audit_suggest(FILE *in, FILE *out, char *errbuf, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
