/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one place that decides in which order the sandbox is built
 * (DESIGN.md, "The sandbox"):
 *
 *   parent, before clone3: the plan (plan.c: ELF dependencies, mounts,
 *       netlink message, capabilities to drop, seccomp program, cgroup
 *       leaf or the best-effort decision, rlimits);
 *   clone3: new user, mount, network, pid, ipc, uts and cgroup namespaces,
 *       a pidfd, placed in the leaf (CLONE_INTO_CGROUP), exit_signal 0;
 *   parent: setgroups deny, uid_map, gid_map, then releases the child;
 *   child: /dev/null, output pipes, channel as fd 3, exit report as fd 5
 *       → sources opened → inside ids → new root,
 *       pivot_root, old root detached, / read-only → hostname → loopback up
 *       → rlimits → every other fd closed → capabilities, bounding set,
 *       securebits, no_new_privs → seccomp, last → exec nifkit-host.
 *
 * BEAM ignores SIGCHLD, and the kernel then reaps a SIGCHLD child by itself,
 * losing the exit status a reason needs. exit_signal 0 keeps the child out
 * of that (and out of BEAM's own wait4(-1) calls) until it execs, but exec
 * resets the exit signal to SIGCHLD; so the launcher reads a reaped host's
 * status through its pidfd (Linux 6.15+, nk_pidfd_exit) or, before that,
 * from the signal the host reported on its exit report pipe.
 *
 * The host is the init of its pid namespace. SIGKILL from the runtime (an
 * ancestor namespace) always works; the kernel ignores default-action
 * signals an init sends itself, so the host catches the fatal ones and
 * turns them into faults (hosts/pid1.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>

#include "launcher.h"
#include "macro.h"
#include "sequencer.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define HOSTNAME "nifkit-host"

/* clone3's argument, spelled out for kernel headers older than 5.7. */
struct clone_args_v2 {
        uint64_t flags;
        uint64_t pidfd;
        uint64_t child_tid;
        uint64_t parent_tid;
        uint64_t exit_signal;
        uint64_t stack;
        uint64_t stack_size;
        uint64_t tls;
        uint64_t set_tid;
        uint64_t set_tid_size;
        uint64_t cgroup;
};

/* ---- the child ------------------------------------------------------------- */

static int child_steps(struct nk_sandbox_plan *p, struct nk_child_fds *fds, int *sync_fd, struct nk_child_err *e)
{
        int r = nk_fds_child_arrange(fds, e);
        *sync_fd = fds->sync;
        if (r < 0)
                return r;

        /* The parent writes the id maps, then says go; EOF means it gave up. */
        char go = 0;
        ssize_t n;
        do
                n = read(*sync_fd, &go, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1)
                return nk_child_fail(e, -ECANCELED, "waiting for the parent", NULL, NULL);

        r = nk_mount_child_open(&p->mounts, p->fds, e);
        if (r >= 0)
                r = nk_userns_child(p->cfg.inside_uid, p->cfg.inside_gid, e);
        /* After the ids change, which clears it. */
        if (r >= 0 && p->die_with_parent && prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                r = nk_child_fail(e, -errno, "setting the parent-death signal", NULL, NULL);
        if (r >= 0)
                r = nk_mount_child_build(&p->mounts, p->fds, e);
        if (r < 0)
                return r;
        if (sethostname(HOSTNAME, sizeof HOSTNAME - 1) < 0)
                return nk_child_fail(e, -errno, "setting the hostname", NULL, NULL);
        r = nk_netns_child(&p->net, e);
        if (r >= 0)
                r = nk_rlimits_child(&p->rlimits, e);
        if (r >= 0)
                r = nk_fds_child_close_rest(e);
        if (r >= 0)
                r = nk_caps_child(&p->caps, e);
        if (r < 0)
                return r;
        r = nk_seccomp_apply(&p->seccomp);
        if (r < 0)
                return nk_child_fail(e, r, "installing the seccomp filter", NULL, NULL);

        char *const argv[] = { (char *) "nifkit-host", (char *) "--fd", (char *) "3", NULL };
        execve(p->host_binary, argv, p->env);
        return nk_child_fail(e, -errno, "executing '", p->host_binary, "'");
}

static _Noreturn void child_main(struct nk_sandbox_plan *p, struct nk_child_fds fds)
{
        int sync_fd = fds.sync;
        nk_child_reset_signals();
        struct nk_child_err e = { 0 };
        (void) child_steps(p, &fds, &sync_fd, &e);
        nk_child_report(sync_fd, &e);
}

/* ---- the parent ---------------------------------------------------------------- */

static int do_clone(struct nk_sandbox_plan *p, struct nk_child_fds fds, bool into_cgroup, int *ret_pidfd)
{
        struct clone_args_v2 args = {
                .flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC |
                         CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_PIDFD,
                .pidfd = (uint64_t) (uintptr_t) ret_pidfd,
                .exit_signal = 0,
        };
        if (into_cgroup) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t) nk_cgroup_fd(p->cgroup);
        }

        /* No handler of the caller may run in the child before it resets
         * them; the parent's mask comes back right after. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        long pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0)
                child_main(p, fds);
        int saved = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return pid < 0 ? -saved : (int) pid;
}

int nk_sandbox_spawn(struct nk_sandbox_plan *p, int channel_fd, int out_fd, int err_fd, int report_fd,
                     pid_t *ret_pid, int *ret_pidfd, struct nk_cgroup **ret_cgroup, struct nk_sandbox_error *err)
{
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return nk_sandbox_error_set(err, -errno, "cannot create the sync socket: %s", strerror(errno));
        _cleanup_close_ int sync_parent = sv[0];
        _cleanup_close_ int sync_child = sv[1];
        _cleanup_close_ int pidfd = -1;

        const struct nk_child_fds fds = { .out = out_fd, .err = err_fd, .channel = channel_fd, .sync = sync_child,
                                          .report = report_fd };
        int pid = do_clone(p, fds, p->cgroup != NULL, &pidfd);
        if (pid < 0 && p->cgroup && !p->cfg.cgroup_required) {
                nk_sandbox_plan_log(p, "cannot start the host for %s in cgroup %s (%s): it runs without a cgroup leaf",
                                    p->library, nk_cgroup_path(p->cgroup), strerror(-pid));
                nk_cgroup_destroy(p->cgroup);
                p->cgroup = NULL;
                pid = do_clone(p, fds, false, &pidfd);
        }
        if (pid < 0)
                return nk_sandbox_error_set(err, pid, "clone3 into new namespaces failed: %s%s", strerror(-pid),
                                            pid == -ENOSYS ? " (clone3 needs Linux 5.3)" : "");
        /* From here until it runs the host, leaving kills and reaps it. */
        _cleanup_child_ struct nk_child_pending pending = { .pid = pid, .pidfd = pidfd };
        nk_closep(&sync_child);
        sync_child = -1;

        int r = nk_userns_parent(pid, &p->cfg, err);
        if (r < 0)
                return r;
        char go = 1;
        if (write(sync_parent, &go, 1) != 1)
                return nk_sandbox_error_set(err, -errno, "cannot release the host: %s", strerror(errno));

        /* EOF: exec succeeded and closed the child's end. */
        struct nk_child_err e;
        r = nk_child_read_report(sync_parent, &e);
        if (r < 0)
                return nk_sandbox_error_set(err, -EIO, "the host's sandbox set-up failed without a reason");
        if (r > 0)
                return nk_sandbox_error_set(err, e.code, "sandbox set-up failed: %s: %s", e.what, strerror(-e.code));

        r = nk_caps_verify(pid, err);
        if (r < 0 && r != -ESRCH)
                return r;
        pending.pid = -1;
        *ret_pid = pid;
        *ret_pidfd = TAKE_FD(pidfd);
        *ret_cgroup = TAKE_PTR(p->cgroup);
        return 0;
}
