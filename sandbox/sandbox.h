/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox a host runs in, and the primitives that build it.
 *
 * One file per primitive (userns.c, mount.c, netns.c, cgroup2.c, caps.c,
 * seccomp.c, rlimits.c, fds.c); sequencer.c alone decides their order.
 * Each primitive has up to three steps:
 *
 *   prepare  in the parent, before clone: anything that allocates (ELF
 *            dependency lists, the seccomp program, the netlink message,
 *            the cgroup leaf). The runtime lives inside a multithreaded
 *            BEAM, so the child of clone may only make async-signal-safe
 *            calls: every allocation happens here.
 *   parent   in the parent, after clone (uid/gid maps, cgroup placement
 *            checks).
 *   child    in the child, before exec: system calls only.
 *
 * A child step that fails writes {errno, message} to the sync socket and
 * _exit()s (crun does the same), so the runtime reports why, not just that.
 *
 * Launch order (DESIGN.md): user ns + uid/gid maps → mount ns with a minimal
 * read-only root, pivot_root, old root detached → net ns with loopback up →
 * cgroup v2 leaf (CLONE_INTO_CGROUP) → rlimits → every fd but the channel
 * closed → capabilities and bounding set dropped, no_new_privs → seccomp,
 * last, right before exec.
 */
#ifndef NIFKIT_SANDBOX_H
#define NIFKIT_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Room for a reason a person reads; fixed size, no allocation on the error
 * path (jansson's json_error_t, crun's libcrun_error_t). */
struct nk_sandbox_error {
        int code;               /* negative errno */
        char msg[512];
};

/* Fills err (if not NULL) and returns code (a negative errno). */
int nk_sandbox_error_set(struct nk_sandbox_error *err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* What the sandbox must enforce; the runtime derives it from the policy. */
struct nk_sandbox_config {
        const char *host_binary;        /* absolute path of nifkit-host */
        const char *library;            /* absolute path of the NIF library */
        const char *const *extra_ro;    /* more paths to bind read-only (NULL-terminated, may be NULL) */
        const char *const *env;         /* the host's environment, "NAME=value" (NULL-terminated,
                                         * may be NULL), all of it: nothing is added */
        const char *const *scope;       /* libraries the host loads into its global scope before the
                                         * library, bound with their dependencies (NULL-terminated,
                                         * may be NULL) */

        uid_t outside_uid;              /* the unprivileged id the host runs as outside */
        gid_t outside_gid;
        uid_t inside_uid;               /* its id inside the user namespace (not 0) */
        gid_t inside_gid;

        uint64_t memory_bytes;          /* memory.max; 0 = no limit */
        uint32_t pids;                  /* pids.max; 0 = no limit */
        uint32_t cpu_percent;           /* cpu.max; 0 = no limit */
        uint32_t tmp_mb;                /* size of /tmp (tmpfs) */
        uint32_t open_files;            /* RLIMIT_NOFILE */

        const char *cgroup_root;        /* delegated cgroup v2 subtree; NULL = find it */
        const char *search_path;        /* a $PATH to find bwrap in; NULL = /usr/local/bin:/usr/bin:/bin */
        bool cgroup_required;           /* refuse to start without the controllers */
};

/* What every sandbox holds besides the host's own files, whichever launcher
 * builds it (NULL-terminated): the device nodes, and the system files a
 * NIF's thread pool reads to size itself (bound where they exist). */
extern const char *const nk_sandbox_dev_nodes[];
extern const char *const nk_sandbox_sys_files[];

/* The host's environment as every launcher gives it: a copy of cfg->env,
 * NULL-terminated, with room more free slots before the terminator;
 * *ret_n entries set. The sandbox reads no environment of its own. */
int nk_sandbox_env(const struct nk_sandbox_config *cfg, size_t room, char ***ret, size_t *ret_n);
void nk_sandbox_env_free(char **env);

/* ---- cgroup v2 (cgroup2.c) -------------------------------------------------- */

enum nk_cgroup_controller {
        NK_CG_MEMORY = 1 << 0,
        NK_CG_PIDS = 1 << 1,
        NK_CG_CPU = 1 << 2,
};

struct nk_cgroup_info {
        char root[4096];                /* the delegated subtree we may create leaves in */
        unsigned available;             /* NK_CG_* enabled for our leaves (subtree_control) */
        bool writable;
};

/* Finds the cgroup v2 subtree to use (root_hint or the one this process is
 * in, under the cgroup2 mount) and which controllers it can give leaves.
 * 0, or -ENOENT (no cgroup v2) / -EACCES (not delegated) with err saying
 * what is missing and how to delegate (systemd Delegate=yes). On -EACCES
 * *ret still names the root, what is available and whether it is writable,
 * so a best-effort caller can make leaves with what there is. */
int nk_cgroup_detect(const char *root_hint, struct nk_cgroup_info *ret, struct nk_sandbox_error *err);
/* The same answer without changing anything (no controller enabled, no
 * directory made): what a start would find, for reports. */
int nk_cgroup_inspect(const char *root_hint, struct nk_cgroup_info *ret, struct nk_sandbox_error *err);

/* Names the controllers in mask, "memory pids cpu", for messages. */
const char *nk_cgroup_mask_name(unsigned mask, char *buf, size_t size);

struct nk_cgroup;       /* one host's leaf */

/* Creates a leaf named name under info->root with the limits of cfg, and
 * opens it for CLONE_INTO_CGROUP. Controllers missing from info->available
 * are skipped (the caller decided, per policy, that this is acceptable). */
int nk_cgroup_create(const struct nk_cgroup_info *info, const char *name,
                     const struct nk_sandbox_config *cfg, struct nk_cgroup **ret,
                     struct nk_sandbox_error *err);
/* The leaf's directory fd, for clone3's cgroup field. */
int nk_cgroup_fd(const struct nk_cgroup *cg);
const char *nk_cgroup_path(const struct nk_cgroup *cg);

/* Counters that explain a death: memory.events oom_kill, pids.events max. */
struct nk_cgroup_events {
        uint64_t oom_kill;
        uint64_t pids_max;
        uint64_t memory_peak;           /* bytes, where memory.peak exists (6.1+) */
};
int nk_cgroup_events(const struct nk_cgroup *cg, struct nk_cgroup_events *ret);

/* Kills every process in the leaf (cgroup.kill, 5.14+; older kernels: SIGKILL
 * to each pid in cgroup.procs until empty), then removes it and frees cg.
 * Accepts NULL. */
void nk_cgroup_destroy(struct nk_cgroup *cg);

/* Text parsers, exposed for unit tests. */
int nk_cgroup_parse_events(const char *text, const char *key, uint64_t *ret);
int nk_cgroup_parse_controllers(const char *text, unsigned *ret_mask);
/* The cgroup v2 directory of the process whose /proc/<pid>/cgroup and
 * mountinfo texts are given: its "0::" path under the cgroup2 mount that
 * holds it. -ENOENT without either. */
int nk_cgroup_parse_root(const char *proc_cgroup, const char *mountinfo, char *buf, size_t size);

/* ---- seccomp (seccomp.c) ---------------------------------------------------- */

struct nk_seccomp_program {
        void *bpf;                      /* struct sock_filter[] */
        size_t len;                     /* number of instructions */
};

/* Builds the host's allow-list with libseccomp and exports it as BPF, in the
 * parent (allocates). Denied calls trap (SECCOMP_RET_TRAP) so the host can
 * report the syscall before it dies. */
int nk_seccomp_build(struct nk_seccomp_program *ret, struct nk_sandbox_error *err);
/* Writes the program as raw BPF to fd (for bwrap --seccomp FD). */
int nk_seccomp_write(const struct nk_seccomp_program *prog, int fd);
/* Child step: installs it. Async-signal-safe. */
int nk_seccomp_apply(const struct nk_seccomp_program *prog);
void nk_seccomp_free(struct nk_seccomp_program *prog);
/* Syscall number → name ("ptrace"), for reasons; "syscall_N" if unknown. */
const char *nk_seccomp_syscall_name(int nr, char *buf, size_t size);

#endif
