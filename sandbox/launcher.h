/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Launchers start nifkit-host with one end of its channel and nothing else.
 *
 * Every launcher implements the same three operations, so that the runtime
 * does not know whether the host runs sandboxed (crun's cgroup backends do
 * the same with a struct of function pointers):
 *
 *   launch  starts the host; the channel fd becomes its fd 3 and the host
 *           is told so with `--fd 3`. Every other descriptor the caller has
 *           is closed in the child. The development launcher leaves stdin,
 *           stdout and stderr; the sandboxing ones give /dev/null and pipes
 *           whose output they copy to the caller's stdout and stderr.
 *   kill    sends a signal to the host, safely even after it exited.
 *   wait    reaps the host, waiting at most timeout_ms (-1: forever).
 *
 * A launched host is always waited for exactly once, by its owner.
 */
#ifndef NIFKIT_LAUNCHER_H
#define NIFKIT_LAUNCHER_H

#include <stdbool.h>
#include <sys/types.h>

/* The fd number the channel has in the host. */
#define NK_HOST_CHANNEL_FD 3
/* Sandboxed hosts: a pipe on which the host, as its pid namespace's init,
 * writes the fatal signal it is about to die of (an int), for kernels that
 * lose the status of a child the kernel reaps by itself (before 6.15, when
 * the caller ignores SIGCHLD, as BEAM does). The host learns the number
 * from NIFKIT_REPORT_FD. */
#define NK_HOST_REPORT_FD 5

struct nk_cgroup;
struct nk_exit_report;
struct nk_sandbox_config;
struct nk_sandbox_error;

struct nk_launch_config {
        const char *host_binary;        /* path of nifkit-host */
        const char *library;            /* the NIF library (for messages) */
        /* Sandboxing launchers: limits and ids (NULL: defaults); its
         * host_binary and library are ignored for the two above. */
        const struct nk_sandbox_config *sandbox;
        /* Told what is not enforced (best-effort cgroup); may be NULL. */
        void (*log)(void *arg, const char *msg);
        void *log_arg;
        /* Filled with the reason when launch fails; may be NULL. */
        struct nk_sandbox_error *err;
        /* Told of events a person should hear of (the host template
         * restarted), with log_arg; may be NULL. */
        void (*notice)(void *arg, const char *kind, const char *msg);
        /* The host template (template.h), for the launchers that go through
         * it; NULL: nifkit-template beside host_binary. */
        const char *template_binary;
        /* The host dies with the thread that launched it (PR_SET_PDEATHSIG):
         * for the template, single-threaded, whose hosts must not outlive
         * it. Never in a multithreaded caller, whose threads come and go. */
        bool die_with_parent;
        /* The direct launcher's environment for the host; NULL: environ. */
        char *const *env;
};

struct nk_child {
        pid_t pid;
        int pidfd;      /* -1 where pidfd_open is missing (kernels before 5.3) */
        bool reaped;
        /* The host's cgroup leaf (its counters explain a death), or NULL;
         * nk_child_release destroys it. */
        struct nk_cgroup *cgroup;
        /* RLIMIT_AS stands in for the memory limit (no memory controller):
         * a host that runs out says so by its exit status,
         * NK_HOST_EXIT_OOM. */
        bool memory_by_rlimit;
        /* Where the host writes the fatal signal it dies of, or NULL (see
         * NK_HOST_REPORT_FD); nk_child_release closes it. */
        struct nk_exit_report *report;
        /* Copies the host's stdout and stderr to the caller's, or NULL;
         * nk_child_release stops and joins it. */
        struct nk_drain *drain;
        /* Started by the host template: the connection to it, through which
         * kill and wait go; nk_child_release closes it. NULL otherwise. */
        struct nk_remote_child *remote;
};

/* Starts a thread copying *out and *err_out (read ends of the host's stdout
 * and stderr pipes) to the caller's 1 and 2; takes both (left -1), also on
 * failure, when they are closed. 0 or -errno. */
struct nk_drain;
int nk_drain_start(int *out, int *err_out, struct nk_drain **ret);
/* Copies what is already in the pipes, then joins the thread. Accepts NULL. */
void nk_drain_stop(struct nk_drain *d);

/* How a reaped host ended: signo != 0 if a signal killed it, else status. */
struct nk_child_exit {
        int signo;
        int status;
        bool core_dumped;
};

struct nk_launcher {
        const char *name;
        /* The host runs in a root of its own, whose / is its working
         * directory: the library must be given by an absolute path that
         * exists now (the caller resolves it). */
        bool own_root;
        /* 0, or -errno; -errno from the child's failed exec (e.g. -ENOENT,
         * -EACCES) is reported after the child is reaped. */
        int (*launch)(const struct nk_launch_config *cfg, int channel_fd, struct nk_child *ret_child);
        /* 0, -ESRCH if already gone, -errno. */
        int (*kill)(struct nk_child *child, int signo);
        /* 0 and *ret filled, -ETIMEDOUT, -ECHILD if already reaped, -errno. */
        int (*wait)(struct nk_child *child, int timeout_ms, struct nk_child_exit *ret);
};

/*
 * DEVELOPMENT ONLY: starts the host with plain fork + exec, without any
 * sandbox. The NIF runs with the caller's user, files, network and
 * capabilities; only a crash is contained. Use it to develop and test the
 * protocol, never to run a library you do not trust.
 */
extern const struct nk_launcher nk_launcher_direct;

/*
 * The default: clone3 into new user, mount, network, pid, ipc, uts and
 * cgroup namespaces, a minimal read-only root, loopback only, a cgroup leaf
 * or the policy's best-effort fallback, rlimits, no capabilities, a seccomp
 * allow-list (sequencer.c).
 */
extern const struct nk_launcher nk_launcher_native;

/* The same sandbox built by bubblewrap (bwrap on $PATH), for machines that
 * prefer its setup code; launch_bwrap.c lists what still differs. */
extern const struct nk_launcher nk_launcher_bwrap;

/* How a host that something else reaped ended, from its pidfd (Linux
 * 6.15+; waits up to a second for the kernel to record it): 0, or -ECHILD
 * where the kernel does not keep it. */
int nk_pidfd_exit(int pidfd, struct nk_child_exit *ret);
/* Takes fd, the report pipe's non-blocking read end. NULL: out of memory
 * (fd is then closed). */
struct nk_exit_report *nk_exit_report_new(int fd);
/* The signal the host reported before dying: 0 with ret filled, -ECHILD if
 * it reported nothing. Closes the report. Accepts NULL (-ECHILD). */
int nk_exit_report_read(struct nk_exit_report *report, struct nk_child_exit *ret);
void nk_exit_report_free(struct nk_exit_report *report);

/* The host's cgroup leaf, or NULL. */
const char *nk_child_cgroup_path(const struct nk_child *child);
/* Its counters: read now from a leaf of this process; from the template, as
 * it saw them at start and, once the host ended, then. -ENOENT without a
 * leaf. */
struct nk_cgroup_events;
int nk_child_cgroup_events(const struct nk_child *child, struct nk_cgroup_events *ret);

/* Closes the child's pidfd and destroys its cgroup leaf (killing whatever
 * is left in it); does not reap. Accepts NULL. */
void nk_child_release(struct nk_child *child);

#endif
