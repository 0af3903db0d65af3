/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit policies: what a wrapped NIF library's host may do.
 *
 * One JSON file per wrapped library, validated against policies/schema.json.
 * nk_policy_load turns it into an immutable struct nk_policy; nothing outside
 * the policy module ever sees JSON. Unknown keys are errors, and every error
 * names the file, line, column and JSON path:
 *
 *     tenant.json:7:15: $.limits.memory_mb: expected a positive integer, got "256"
 *
 * Lifecycle: nk_policy_load (or nk_policy_default) → read fields → nk_policy_free.
 * A loaded policy is never modified; share it freely between threads.
 */
#ifndef NIFKIT_POLICY_H
#define NIFKIT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NK_POLICY_VERSION 1

enum nk_policy_launcher {
        NK_POLICY_LAUNCHER_NATIVE = 0,  /* clone3 + namespaces, the default */
        NK_POLICY_LAUNCHER_BWRAP,       /* bubblewrap, same sandbox */
        NK_POLICY_LAUNCHER_UNSANDBOXED, /* DEVELOPMENT ONLY: "unsandboxed-development" */
};

enum nk_policy_cgroup {
        NK_POLICY_CGROUP_REQUIRED = 0,  /* refuse to start without the controllers */
        NK_POLICY_CGROUP_BEST_EFFORT,   /* fall back to rlimits, and say so */
};

enum nk_policy_mode {
        NK_POLICY_MODE_ENFORCE = 0,
        NK_POLICY_MODE_AUDIT,           /* allow and log what is outside the grants */
};

/* How calls travel between the VM and the host (docs/PROXY.md). */
enum nk_policy_transport {
        NK_POLICY_TRANSPORT_SHM = 0,    /* a shared-memory region, one slot per worker: the default */
        NK_POLICY_TRANSPORT_SOCKET,     /* the control socket, as everything else */
};

enum nk_policy_access {
        NK_POLICY_ACCESS_READ = 0,
        NK_POLICY_ACCESS_READ_WRITE,
        NK_POLICY_ACCESS_CREATE,        /* read-write, and may create files */
};

struct nk_policy_file {
        const char *path;               /* absolute, normalised directory */
        enum nk_policy_access access;
        bool no_symlinks;               /* adds RESOLVE_NO_SYMLINKS */
};

/* "host:port" entries; host is an IPv4/IPv6 literal or a name. */
struct nk_policy_endpoint {
        const char *host;
        uint16_t port;
        bool udp;                       /* listen entries only: "udp:host:port" */
};

struct nk_policy {
        int version;                    /* NK_POLICY_VERSION */
        enum nk_policy_launcher launcher;
        enum nk_policy_cgroup cgroup;
        enum nk_policy_mode mode;
        enum nk_policy_transport transport;
        struct {
                uint64_t memory_mb;     /* memory.max (and RLIMIT_AS fallback) */
                uint32_t pids;          /* pids.max (RLIMIT_NPROC fallback) */
                uint32_t cpu_percent;   /* cpu.max: percent of one CPU, 1..(100 × CPUs) */
                uint32_t call_timeout_ms;
                uint64_t max_args_bytes;        /* largest encoded argument list sent to the host */
                uint64_t max_result_bytes;
                uint32_t max_new_atoms;
                uint32_t tmp_mb;        /* size of the host's /tmp */
                uint32_t open_files;    /* RLIMIT_NOFILE */
                uint32_t shm_slot_kb;   /* one call's room in the shared region (transport shm) */
        } limits;
        struct {
                uint32_t max_restarts;
                uint32_t period_s;
        } restart;
        const struct nk_policy_file *files;
        size_t nfiles;
        const struct nk_policy_endpoint *connect;
        size_t nconnect;
        const struct nk_policy_endpoint *listen;
        size_t nlisten;
        const char *const *resolve;     /* names the runtime may resolve */
        size_t nresolve;
        const char *const *env;         /* variables of the VM's environment the host sees */
        size_t nenv;
        uint32_t workers;               /* host worker threads */
        const char *source;             /* file it came from, or "<default>" */
};

/* Why a policy was rejected. */
struct nk_policy_error {
        char file[256];
        int line;                       /* 0 when not about a place in the file */
        int column;
        char path[128];                 /* JSON path, e.g. "$.limits.pids" */
        char msg[256];                  /* the whole message, ready to print */
};

/* 0, or -EINVAL (invalid policy), -ENOENT/-EACCES… (cannot read), -ENOMEM. */
int nk_policy_load(const char *path, struct nk_policy **ret, struct nk_policy_error *err);
int nk_policy_load_string(const char *text, const char *name, struct nk_policy **ret,
                          struct nk_policy_error *err);
/* The built-in default: deny everything, small limits (policies/default.json). */
int nk_policy_default(struct nk_policy **ret);
void nk_policy_free(struct nk_policy *p);

const char *nk_policy_launcher_name(enum nk_policy_launcher l);

/* ---- a library's entitlements (nifkit_entitlements.h) ---------------------- */

#define NK_ENTITLEMENTS_VERSION 1

/*
 * The document a library carries: its ELF section .nifkit_entitlements,
 * else the sidecar file (sidecar NULL: NAME.entitlements.json beside
 * NAME.so; a wrapped library's real file, NAME.real.so, passes its
 * NAME's). 1 found (*ret_text malloc'd), 0 none, else -errno (-ENOTUNIQ:
 * the section holds two documents, -EFBIG: larger than 64 KiB). where
 * names it, for messages: "LIB[.nifkit_entitlements]" or the sidecar.
 */
int nk_entitlements_find(const char *library, const char *sidecar, char **ret_text, char *where,
                         size_t where_size);

/*
 * An entitlements document, checked as a policy is (errors with line,
 * column and JSON path): an object with "files", "network" and "limits" as
 * in a policy, and optionally "nifkit_entitlements": 1. In the result only
 * files, network and limits mean anything; a limit the document does not
 * name is all ones in its own width (UINT32_MAX or UINT64_MAX).
 */
int nk_entitlements_load_string(const char *text, const char *name, struct nk_policy **ret,
                                struct nk_policy_error *err);

/* One line per thing want asks for ("  files: /var/lib/app (read)"). */
void nk_entitlements_describe(const struct nk_policy *want, FILE *out);

/*
 * The policy a library runs under: policy_text (the operator's policy)
 * with its grants cut down to what want asks for — each file grant to the
 * part a request shares with it (the deeper directory, the lesser
 * access), the endpoints and names to those both list, each limit want
 * names to the lower of the two. Everything else is the operator's. The
 * result is checked by the loader. *ret_notes (malloc'd, one line per
 * difference, empty when the two agree) says what was requested but not
 * granted and what was granted but not requested.
 */
int nk_policy_intersect(const char *policy_text, const char *policy_name, const struct nk_policy *want,
                        char **ret_text, char **ret_notes, struct nk_policy_error *err);

#ifdef __cplusplus
}
#endif

#endif
