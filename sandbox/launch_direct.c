/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ============================================================================
 *  THE UNSANDBOXED DEVELOPMENT LAUNCHER.
 *
 *  This launcher runs nifkit-host with plain fork + exec. There are no
 *  namespaces, no cgroup, no seccomp filter and no dropped capabilities:
 *  the NIF library can do anything the calling process can. It exists so
 *  that the protocol, the host and libnifkit can be developed and tested on
 *  machines without the sandbox's requirements. Never use it for a library
 *  you do not trust.
 * ============================================================================
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher.h"
#include "macro.h"
#include "sandbox.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
        /* pidfds are close-on-exec by definition. */
        int fd = (int) syscall(SYS_pidfd_open, pid, 0);
        return fd < 0 ? -errno : fd;
#else
        return -ENOSYS;
#endif
}

/* Closes every fd from `from` up. close_range() is Linux 5.9; older kernels
 * get the loop up to the descriptor limit. Async-signal-safe. */
static void close_from(int from)
{
#ifdef SYS_close_range
        if (syscall(SYS_close_range, from, ~0U, 0) == 0)
                return;
#endif
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > 65536)
                max = 65536;
        for (int fd = from; fd < max; fd++)
                close(fd);
}

/* Runs in the forked child of a possibly multithreaded parent: only
 * async-signal-safe calls until exec. On failure writes errno to err_fd. */
static _Noreturn void child_exec(const struct nk_launch_config *cfg, int channel_fd, int err_fd)
{
        int e;
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_DFL);

        /* Move err_fd out of the way of the channel's number first. */
        if (err_fd == NK_HOST_CHANNEL_FD) {
                int fd = fcntl(err_fd, F_DUPFD_CLOEXEC, NK_HOST_CHANNEL_FD + 1);
                if (fd < 0)
                        goto fail;
                err_fd = fd;
        }
        if (channel_fd == NK_HOST_CHANNEL_FD) {
                /* dup2 onto itself would keep CLOEXEC: clear it instead. */
                if (fcntl(channel_fd, F_SETFD, 0) < 0)
                        goto fail;
        } else if (dup2(channel_fd, NK_HOST_CHANNEL_FD) < 0) {
                goto fail;
        }
        if (err_fd != NK_HOST_CHANNEL_FD + 1) {
                if (fcntl(err_fd, F_DUPFD_CLOEXEC, NK_HOST_CHANNEL_FD + 1) != NK_HOST_CHANNEL_FD + 1) {
                        /* fd 4 is taken: dup3 over it, keeping CLOEXEC. */
                        if (dup3(err_fd, NK_HOST_CHANNEL_FD + 1, O_CLOEXEC) < 0)
                                goto fail;
                }
                err_fd = NK_HOST_CHANNEL_FD + 1;
        }
        close_from(NK_HOST_CHANNEL_FD + 2);

        char *const argv[] = { (char *) "nifkit-host", (char *) "--fd", (char *) "3", NULL };
        execve(cfg->host_binary, argv, environ);
fail:
        e = errno;
        (void) !write(err_fd, &e, sizeof e);
        _exit(127);
}

static int direct_launch(const struct nk_launch_config *cfg, int channel_fd, struct nk_child *ret_child)
{
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        _cleanup_close_ int rd = pipefd[0];
        _cleanup_close_ int wr = pipefd[1];

        /* exit_signal 0, not fork()'s SIGCHLD, so that nothing else reaps
         * the child before it execs (exec makes it SIGCHLD again, and where
         * SIGCHLD is ignored, as in BEAM, the kernel reaps it: wait then
         * reads the status through the pidfd, nk_pidfd_exit). */
        struct {
                uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
        } args = {};
        pid_t pid = (pid_t) syscall(SYS_clone3, &args, sizeof args);
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_exec(cfg, channel_fd, wr);

        nk_closep(&wr);
        wr = -1;
        /* The pipe closes on exec: EOF means the exec succeeded. */
        int child_errno = 0;
        ssize_t n;
        do
                n = read(rd, &child_errno, sizeof child_errno);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t) sizeof child_errno) {
                while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR)
                        ;
                return child_errno > 0 ? -child_errno : -EIO;
        }

        int pidfd = pidfd_open_compat(pid);
        *ret_child = (struct nk_child) { .pid = pid, .pidfd = pidfd >= 0 ? pidfd : -1 };
        return 0;
}

static int direct_kill(struct nk_child *child, int signo)
{
        if (child->reaped)
                return -ESRCH;
#ifdef SYS_pidfd_send_signal
        if (child->pidfd >= 0) {
                if (syscall(SYS_pidfd_send_signal, child->pidfd, signo, NULL, 0) == 0)
                        return 0;
                if (errno != ENOSYS)
                        return -errno;
        }
#endif
        /* Not reaped yet, so the pid cannot have been reused. */
        return kill(child->pid, signo) < 0 ? -errno : 0;
}

static void fill_exit(const siginfo_t *si, struct nk_child_exit *ret)
{
        *ret = (struct nk_child_exit) {};
        if (si->si_code == CLD_EXITED)
                ret->status = si->si_status;
        else {
                ret->signo = si->si_status;
                ret->core_dumped = si->si_code == CLD_DUMPED;
        }
}

static int direct_wait(struct nk_child *child, int timeout_ms, struct nk_child_exit *ret)
{
        if (child->reaped)
                return -ECHILD;
        if (timeout_ms >= 0 && child->pidfd >= 0) {
                struct pollfd p = { .fd = child->pidfd, .events = POLLIN };
                int r;
                do
                        r = poll(&p, 1, timeout_ms);
                while (r < 0 && errno == EINTR);
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
        }

        siginfo_t si = {};
        int options = WEXITED | __WALL;
        if (timeout_ms >= 0 && child->pidfd < 0)
                options |= WNOHANG;
        for (int waited = 0;; waited += 10) {
                int r = child->pidfd >= 0 ? waitid((idtype_t) P_PIDFD, (id_t) child->pidfd, &si, options)
                                          : waitid(P_PID, (id_t) child->pid, &si, options);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0 && errno == ECHILD && child->pidfd >= 0) {
                        int e = nk_pidfd_exit(child->pidfd, ret);
                        if (e == 0)
                                child->reaped = true;
                        return e;
                }
                if (r < 0)
                        return -errno;
                if (si.si_pid != 0)
                        break;
                /* WNOHANG without a pidfd: poll in 10 ms steps. */
                if (waited >= timeout_ms)
                        return -ETIMEDOUT;
                usleep(10000);
        }
        child->reaped = true;
        fill_exit(&si, ret);
        return 0;
}

void nk_child_release(struct nk_child *child)
{
        if (!child)
                return;
        nk_closep(&child->pidfd);
        child->pidfd = -1;
        nk_cgroup_destroy(child->cgroup);
        child->cgroup = NULL;
        nk_exit_report_free(child->report);
        child->report = NULL;
        nk_drain_stop(child->drain);
        child->drain = NULL;
}

const struct nk_launcher nk_launcher_direct = {
        .name = "direct (unsandboxed)",
        .launch = direct_launch,
        .kill = direct_kill,
        .wait = direct_wait,
};
