/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox's primitives (userns.c, mount.c, elfdeps.c, netns.c, caps.c,
 * rlimits.c, fds.c), the plan both launchers consume (plan.c) and the
 * native launcher's sequencer that alone orders the primitives.
 *
 * Every primitive that needs memory prepares it in the parent, before
 * clone3, into a struct nk_sandbox_plan; its child step then only makes
 * system calls on what the plan holds. The child of clone3 is a copy of one
 * thread of a multithreaded BEAM: malloc, stdio, locale, glibc's setxid
 * broadcast and anything else that may take a lock are off limits there.
 *
 * Child steps return 0 or a negative errno and fill a struct nk_child_err
 * (child.h) with what they were doing; the sequencer reports it to the
 * parent, which appends strerror() (not async-signal-safe, so never called
 * in the child).
 */
#ifndef NIFKIT_SEQUENCER_H
#define NIFKIT_SEQUENCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "child.h"
#include "sandbox.h"

/* ---- ELF dependencies (elfdeps.c) ----------------------------------------- */

/* A growing, de-duplicated list of absolute paths. */
struct nk_pathset {
        char **paths;
        size_t n, cap;
};

int nk_pathset_add(struct nk_pathset *s, const char *path);
bool nk_pathset_has(const struct nk_pathset *s, const char *path);
void nk_pathset_free(struct nk_pathset *s);

/* Adds to deps the ELF interpreter (PT_INTERP) of file and, transitively,
 * every DT_NEEDED library, searched in DT_RPATH, DT_RUNPATH (with $ORIGIN)
 * and the standard multiarch directories, as ld.so does without its cache.
 * Each path is added as ld.so will open it inside the sandbox. Libraries
 * provided by the executable itself (the erl_nif API) are never needed. */
int nk_elf_resolve(const char *file, struct nk_pathset *deps, struct nk_sandbox_error *err);

/* Where ld.so finds each of file's own DT_NEEDED entries, in their order. */
int nk_elf_needed_paths(const char *file, struct nk_pathset *ret, struct nk_sandbox_error *err);

/* The global (non-weak) undefined dynamic symbols of file, added to ret. */
int nk_elf_undefined(const char *file, struct nk_pathset *ret);
/* Sets found[i] for each names->paths[i] that file defines and exports. */
int nk_elf_mark_defined(const char *file, const struct nk_pathset *names, bool *found);
/* A copy of file's section name (one NUL added past its end): 1 found,
 * 0 no such section, -ENOEXEC not ELF (or not this machine's class and
 * byte order), -EBADMSG malformed headers, -EFBIG larger than
 * NK_ELF_SECTION_MAX. */
#define NK_ELF_SECTION_MAX (1u << 20)
int nk_elf_section(const char *file, const char *name, void **ret, size_t *ret_len);

/* Everything the loader opens for a host of cfg, whichever launcher starts
 * it: the host binary's and the library's dependencies (strictly); the
 * shared objects beside the library (companions it dlopens, as crypto does
 * crypto_callback.so), OpenSSL's provider and engine directories, glibc's
 * gconv directory; the scope libraries with theirs, and libgcc_s (those
 * when they resolve). Directories are added whole (gconv) or file by file. */
int nk_elf_resolve_host(const struct nk_sandbox_config *cfg, struct nk_pathset *deps, struct nk_sandbox_error *err);

/* Exposed for tests: the interpreter, DT_NEEDED and search paths of one file. */
struct nk_elf_info {
        char *interp;                   /* NULL if none */
        struct nk_pathset needed;       /* sonames, in order */
        struct nk_pathset search;       /* RPATH/RUNPATH directories, $ORIGIN expanded */
        bool has_runpath;               /* DT_RUNPATH present: DT_RPATH is ignored */
};
int nk_elf_read(const char *file, struct nk_elf_info *ret, struct nk_sandbox_error *err);
void nk_elf_info_free(struct nk_elf_info *info);

/* ---- mounts (mount.c) ------------------------------------------------------- */

enum nk_mount_kind {
        NK_MOUNT_FILE,          /* read-only bind of a file */
        NK_MOUNT_DIR,           /* read-only bind of a directory */
        NK_MOUNT_DEV,           /* a device node: bound read-write, nosuid, noexec */
};

struct nk_mount_entry {
        char *src;              /* where it is now, absolute */
        char *dst;              /* the mount point under the new root's staging dir */
        enum nk_mount_kind kind;
};

struct nk_mount_plan {
        struct nk_mount_entry *entries;
        size_t n;
        char **dirs;            /* directories to create, parents first */
        size_t ndirs;
        char staging[64];       /* where the new root is built before pivot_root */
        char root_opts[64];     /* tmpfs options of the new root */
        char proc_dir[96];
        char tmp_dir[96];
        char tmp_opts[64];      /* size-limited, mode 1777 */
};

/* Parent: the mounts for the host binary, the library, their resolved
 * dependencies, cfg->extra_ro, /dev's four nodes, /proc and /tmp. */
int nk_mount_prepare(const struct nk_sandbox_config *cfg, const struct nk_pathset *deps,
                     struct nk_mount_plan *ret, struct nk_sandbox_error *err);
void nk_mount_plan_free(struct nk_mount_plan *plan);

/* Child, first step in the new mount namespace, while the child still has
 * its creator's filesystem identity: makes the propagation private and opens
 * every source (O_PATH) into fds[plan->n], so that lookups in directories
 * only the caller may search still work once the ids are dropped. */
int nk_mount_child_open(const struct nk_mount_plan *plan, int *fds, struct nk_child_err *e);
/* Child, after the ids are the inside ones (new inodes need a mapped owner):
 * builds the root, mounts proc and /tmp, pivot_root, detaches the old root,
 * remounts / read-only. Closes fds. */
int nk_mount_child_build(const struct nk_mount_plan *plan, int *fds, struct nk_child_err *e);

/* ---- user namespace (userns.c) ---------------------------------------------- */

/* The ids the host gets by default: inside 1000; outside the caller's own
 * ids, or when the caller is root 65534 (nobody; nk_host_set_sandbox_ids
 * chooses others). */
void nk_userns_default_ids(uid_t *ret_outside_uid, gid_t *ret_outside_gid, uid_t *ret_inside_uid,
                           gid_t *ret_inside_gid);
/* Fills what the caller left 0 in sc: the default ids above and a 16 MiB
 * /tmp; shared by the launchers that build a sandbox. */
void nk_sandbox_fill_defaults(struct nk_sandbox_config *sc);
/* "INSIDE OUTSIDE 1\n"; exposed for tests. */
int nk_userns_map_line(unsigned inside, unsigned outside, char *buf, size_t size);
/* Parent: setgroups deny, uid_map and gid_map of pid. */
int nk_userns_parent(pid_t pid, const struct nk_sandbox_config *cfg, struct nk_sandbox_error *err);
/* Child: becomes the inside ids, keeping its capabilities in the namespace
 * for the steps that follow (SECBIT_NO_SETUID_FIXUP). */
int nk_userns_child(uid_t uid, gid_t gid, struct nk_child_err *e);

/* ---- network namespace (netns.c) -------------------------------------------- */

struct nk_netns_plan {
        uint8_t *msg;           /* RTM_NEWLINK setting lo up, built by libnl-route-3 */
        size_t len;
};
int nk_netns_prepare(struct nk_netns_plan *ret, struct nk_sandbox_error *err);
void nk_netns_plan_free(struct nk_netns_plan *plan);
/* Child: sends the message on a NETLINK_ROUTE socket and checks the ack. */
int nk_netns_child(const struct nk_netns_plan *plan, struct nk_child_err *e);

/* ---- rlimits (rlimits.c) ---------------------------------------------------- */

struct nk_rlimits_plan {
        uint64_t nofile;        /* 0: leave as is */
        uint64_t as_bytes;      /* 0: leave as is */
        uint64_t fsize_bytes;   /* 0: leave as is */
};
/* as_fallback: the cgroup cannot limit memory, so RLIMIT_AS stands in. */
void nk_rlimits_prepare(const struct nk_sandbox_config *cfg, bool as_fallback, struct nk_rlimits_plan *ret);
int nk_rlimits_child(const struct nk_rlimits_plan *plan, struct nk_child_err *e);

/* ---- file descriptors (fds.c) ----------------------------------------------- */

/* What the host starts with: 0 /dev/null, 1 and 2 the write ends of the
 * pipes the launcher drains (the caller's own 1 and 2 when -1), 3 the
 * channel; and 4, close-on-exec, the sync socket, whose closing tells the
 * parent that exec succeeded. */
struct nk_child_fds {
        int out, err, channel, sync;
        int report;     /* becomes NK_HOST_REPORT_FD; -1: none */
};
/* Child: puts them there; f->sync becomes 4. */
int nk_fds_child_arrange(struct nk_child_fds *f, struct nk_child_err *e);
/* Child: closes every fd above NK_HOST_REPORT_FD. */
int nk_fds_child_close_rest(struct nk_child_err *e);

/* ---- capabilities (caps.c) ---------------------------------------------------- */

struct nk_caps_plan {
        int last_cap;           /* highest capability the kernel knows */
};
int nk_caps_prepare(struct nk_caps_plan *ret, struct nk_sandbox_error *err);
/* Child: drops the bounding set, the ambient set and every capability,
 * locks the securebits, sets no_new_privs. */
int nk_caps_child(const struct nk_caps_plan *plan, struct nk_child_err *e);
/* Parent, after exec: reads the host's sets with libcap-ng; -EPERM if any
 * capability or bounding-set entry is left. */
int nk_caps_verify(pid_t pid, struct nk_sandbox_error *err);

/* ---- the plan (plan.c) ---------------------------------------------------------- */

/* Messages about what is not enforced (best-effort cgroup). */
typedef void (*nk_sandbox_log_fn)(void *arg, const char *msg);

/* One host's sandbox, decided before any process exists, the same for
 * every launcher: the native one executes it, the bubblewrap one
 * translates it into options. Read-only once prepared, but for the
 * cgroup leaf, which passes to the host's nk_child (TAKE_PTR). */
struct nk_sandbox_plan {
        struct nk_sandbox_config cfg;   /* host_binary, library, extra_ro point into the plan */
        char *host_binary;
        char *library;
        struct nk_pathset deps;         /* what the loader opens (nk_elf_resolve_host) */
        struct nk_pathset extra;        /* the caller's extra_ro */
        struct nk_mount_plan mounts;    /* every path the host sees, at its own path */
        struct nk_rlimits_plan rlimits;
        struct nk_caps_plan caps;
        struct nk_seccomp_program seccomp;
        bool have_seccomp;
        struct nk_cgroup *cgroup;       /* the leaf, or NULL (best effort) */
        char **env;                     /* env_n entries for every launcher, then NIFKIT_REPORT_FD */
        size_t env_n;
        nk_sandbox_log_fn log;
        void *log_arg;
        /* The native launcher's own: loopback's netlink message, and room
         * for the child's O_PATH fds, one per mount. */
        struct nk_netns_plan net;
        int *fds;
        /* PR_SET_PDEATHSIG for the host (nk_launch_config's die_with_parent). */
        bool die_with_parent;
};

/* Parent, before clone: everything the sandbox holds. */
int nk_sandbox_prepare(const struct nk_sandbox_config *cfg, nk_sandbox_log_fn log, void *log_arg,
                       struct nk_sandbox_plan **ret, struct nk_sandbox_error *err);
/* Tells the plan's log what is not enforced. */
void nk_sandbox_plan_log(const struct nk_sandbox_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Where mount entry e is in the host's root. */
const char *nk_sandbox_plan_mount_at(const struct nk_sandbox_plan *p, const struct nk_mount_entry *e);

/* ---- the sequencer (sequencer.c) ---------------------------------------------- */

/* Clones the host into its namespaces, runs the parent and child steps and
 * execs nifkit-host with channel_fd as fd 3, out_fd and err_fd (or -1) as
 * its stdout and stderr. On success the host runs, and
 * *ret_cgroup (NULL when none) passes to the caller. */
int nk_sandbox_spawn(struct nk_sandbox_plan *plan, int channel_fd, int out_fd, int err_fd, int report_fd,
                     pid_t *ret_pid, int *ret_pidfd, struct nk_cgroup **ret_cgroup, struct nk_sandbox_error *err);
void nk_sandbox_plan_free(struct nk_sandbox_plan *plan);
/* Whether RLIMIT_AS stands in for the memory limit (no memory controller). */
bool nk_sandbox_plan_memory_by_rlimit(const struct nk_sandbox_plan *plan);

#endif
