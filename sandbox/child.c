/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Child handling shared by the launchers (see child.h): the direct and the
 * bubblewrap launcher may run without a pidfd (kernels before 5.3), so every
 * helper here falls back to the pid where the pidfd is missing.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int nk_child_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
        /* pidfds are close-on-exec by definition. */
        int fd = (int) syscall(SYS_pidfd_open, pid, 0);
        return fd < 0 ? -errno : fd;
#else
        return -ENOSYS;
#endif
}

pid_t nk_child_fork_quiet(void)
{
        struct {
                uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
        } args = {};
        pid_t pid = (pid_t) syscall(SYS_clone3, &args, sizeof args);
        return pid < 0 ? -errno : pid;
}

void nk_child_close_from(int from)
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

int nk_child_signal(struct nk_child *child, int signo)
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

int nk_child_poll_exit(int pidfd, int timeout_ms)
{
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        int r;
        do
                r = poll(&p, 1, timeout_ms);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (r == 0)
                return -ETIMEDOUT;
        return 0;
}

int nk_child_waitid(const struct nk_child *child, int timeout_ms, siginfo_t *ret_si)
{
        if (timeout_ms >= 0 && child->pidfd >= 0) {
                int r = nk_child_poll_exit(child->pidfd, timeout_ms);
                if (r < 0)
                        return r;
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
                if (r < 0)
                        return -errno;
                if (si.si_pid != 0)
                        break;
                /* WNOHANG without a pidfd: poll in 10 ms steps. */
                if (waited >= timeout_ms)
                        return -ETIMEDOUT;
                usleep(10000);
        }
        *ret_si = si;
        return 0;
}

void nk_child_exit_from_siginfo(const siginfo_t *si, struct nk_child_exit *ret)
{
        *ret = (struct nk_child_exit) {};
        if (si->si_code == CLD_EXITED) {
                ret->status = si->si_status;
        } else {
                ret->signo = si->si_status;
                ret->core_dumped = si->si_code == CLD_DUMPED;
        }
}
