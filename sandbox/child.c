/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The child core shared by the launchers (see child.h): the direct and the
 * bubblewrap launcher may run without a pidfd (kernels before 5.3), so every
 * helper here falls back to the pid where the pidfd is missing.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "macro.h"
#include "sandbox.h"
#include "template.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* ---- in the child, before exec ------------------------------------------------ */

int nk_child_fail(struct nk_child_err *e, int code, const char *a, const char *b, const char *c)
{
        const char *parts[] = { a, b, c };
        size_t w = 0;
        for (size_t i = 0; i < NK_ARRAY_SIZE(parts) && parts[i]; i++)
                for (const char *s = parts[i]; *s && w < sizeof e->what - 1; s++)
                        e->what[w++] = *s;
        e->what[w] = '\0';
        e->code = code;
        return code;
}

_Noreturn void nk_child_report(int fd, const struct nk_child_err *e)
{
        (void) !write(fd, e, sizeof *e);
        _exit(127);
}

void nk_child_reset_signals(void)
{
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
}

/* ---- in the parent ---------------------------------------------------------------- */

int nk_child_read_report(int fd, struct nk_child_err *ret)
{
        ssize_t n;
        do
                n = read(fd, ret, sizeof *ret);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if (n == 0)
                return 0;
        /* Written by a copy of ourselves, but checked like any input. */
        if (n != (ssize_t) sizeof *ret || ret->code >= 0)
                return -EIO;
        ret->what[sizeof ret->what - 1] = '\0';
        return 1;
}

int nk_child_kill_and_reap(pid_t pid, int pidfd)
{
        siginfo_t si = {};
        int r = -1;
#ifdef SYS_pidfd_send_signal
        if (pidfd >= 0)
                r = (int) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
#endif
        if (r < 0)
                (void) kill(pid, SIGKILL);
        int w;
        do
                w = pidfd >= 0 ? waitid((idtype_t) P_PIDFD, (id_t) pidfd, &si, WEXITED | __WALL)
                               : waitid(P_PID, (id_t) pid, &si, WEXITED | __WALL);
        while (w < 0 && errno == EINTR);
        return w == 0 && si.si_code == CLD_EXITED ? si.si_status : -1;
}

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

int nk_child_wait(struct nk_child *child, int timeout_ms, const struct nk_child_wait_how *how,
                  struct nk_child_exit *ret)
{
        if (child->reaped)
                return -ECHILD;
        siginfo_t si;
        int r = nk_child_waitid(child, timeout_ms, &si);
        if (r == -ECHILD) {
                if (how && how->reaped_elsewhere)
                        r = how->reaped_elsewhere(child, ret);
                else if (child->pidfd >= 0)
                        r = nk_pidfd_exit(child->pidfd, ret);
                if (r == 0)
                        child->reaped = true;
                return r;
        }
        if (r < 0)
                return r;
        child->reaped = true;
        if (how && how->exited)
                how->exited(child, &si, ret);
        else
                nk_child_exit_from_siginfo(&si, ret);
        return 0;
}

/* ---- how a host ended, and what it leaves ------------------------------------------ */

struct nk_exit_report {
        int fd;         /* read end, non-blocking */
};

/* The pidfd info of Linux 6.15, spelled out for older headers. */
struct pidfd_info_v0 {
        uint64_t mask;
        uint64_t cgroupid;
        uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
        int32_t exit_code;
};
#define NK_PIDFD_GET_INFO _IOWR(0xFF, 11, struct pidfd_info_v0)
#define NK_PIDFD_INFO_EXIT (1ULL << 3)

static void fill_exit_status(int status, struct nk_child_exit *ret)
{
        *ret = (struct nk_child_exit) {};
        if (WIFSIGNALED(status)) {
                ret->signo = WTERMSIG(status);
                ret->core_dumped = WCOREDUMP(status);
        } else {
                ret->status = WEXITSTATUS(status);
        }
}

/* How long a dead host's status may take to appear on its pidfd. */
#define PIDFD_EXIT_WAIT_US 1000000

int nk_pidfd_exit(int pidfd, struct nk_child_exit *ret)
{
        /* Where SIGCHLD is ignored the kernel reaps the host itself; Linux
         * 6.15 keeps the status for the pidfd's holder. Before that it is
         * lost: ECHILD. The kernel takes an auto-reaped child off the
         * parent's list (waitid: ECHILD) a moment before it records the
         * status, so a kernel that records it is asked again, briefly,
         * rather than a death told as unknown (the chaos suite found the
         * window under load). */
        unsigned step = 50, waited = 0;
        for (;;) {
                struct pidfd_info_v0 info = { .mask = NK_PIDFD_INFO_EXIT };
                int r = ioctl(pidfd, NK_PIDFD_GET_INFO, &info);
                if (r < 0 && (errno == ENOTTY || errno == EINVAL))
                        return -ECHILD;
                if (r < 0 && errno != ESRCH)
                        return -errno;
                if (r == 0 && (info.mask & NK_PIDFD_INFO_EXIT)) {
                        fill_exit_status(info.exit_code, ret);
                        return 0;
                }
                if (waited >= PIDFD_EXIT_WAIT_US)
                        return -ECHILD;
                usleep(step);
                waited += step;
                step = step < 10000 ? step * 2 : step;
        }
}

int nk_exit_report_read(struct nk_exit_report *report, struct nk_child_exit *ret)
{
        if (!report || report->fd < 0)
                return -ECHILD;
        /* Written by the host, so not trusted beyond naming a signal. */
        int sig = 0;
        ssize_t n = read(report->fd, &sig, sizeof sig);
        close(report->fd);
        report->fd = -1;
        if (n != (ssize_t) sizeof sig || sig <= 0 || sig >= NSIG)
                return -ECHILD;
        *ret = (struct nk_child_exit) { .signo = sig };
        return 0;
}

struct nk_exit_report *nk_exit_report_new(int fd)
{
        struct nk_exit_report *r = malloc(sizeof *r);
        if (!r) {
                close(fd);
                return NULL;
        }
        r->fd = fd;
        return r;
}

void nk_exit_report_free(struct nk_exit_report *report)
{
        if (!report)
                return;
        nk_closep(&report->fd);
        free(report);
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
        nk_remote_child_free(child->remote);
        child->remote = NULL;
}

const char *nk_child_cgroup_path(const struct nk_child *child)
{
        const char *path = NULL;
        if (child->cgroup)
                return nk_cgroup_path(child->cgroup);
        return nk_remote_child_cgroup(child->remote, &path, NULL) == 0 ? path : NULL;
}

int nk_child_cgroup_events(const struct nk_child *child, struct nk_cgroup_events *ret)
{
        if (child->cgroup)
                return nk_cgroup_events(child->cgroup, ret);
        return nk_remote_child_cgroup(child->remote, NULL, ret);
}
