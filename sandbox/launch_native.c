/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The native launcher: every host in its own namespaces, root, cgroup leaf
 * and seccomp filter, built by the sequencer (sequencer.c) with clone3.
 * This is what libnifkit uses unless a policy explicitly asks for the
 * unsandboxed development launcher.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "launcher.h"
#include "macro.h"
#include "sequencer.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct nk_exit_report {
        int fd;         /* read end, non-blocking */
};

static int native_launch(const struct nk_launch_config *cfg, int channel_fd, struct nk_child *ret_child)
{
        struct nk_sandbox_config sc = {};
        if (cfg->sandbox)
                sc = *cfg->sandbox;
        sc.host_binary = cfg->host_binary;
        sc.library = cfg->library;
        nk_sandbox_fill_defaults(&sc);

        struct nk_sandbox_error local;
        struct nk_sandbox_error *err = cfg->err ? cfg->err : &local;
        struct nk_sandbox_plan *plan = NULL;
        int r = nk_sandbox_prepare(&sc, cfg->log, cfg->log_arg, &plan, err);
        if (r < 0)
                return r;
        /* The host's stdout and stderr: pipes, never the caller's own. */
        int out[2] = { -1, -1 }, errp[2] = { -1, -1 }, rep[2] = { -1, -1 };
        struct nk_exit_report *report = NULL;
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
            pipe2(rep, O_CLOEXEC | O_NONBLOCK) < 0) {
                r = nk_sandbox_error_set(err, -errno, "cannot create the host's pipes: %s", strerror(errno));
                goto fail;
        }
        report = nk_exit_report_new(TAKE_FD(rep[0]));
        if (!report) {
                r = nk_sandbox_error_set(err, -ENOMEM, "out of memory");
                goto fail;
        }

        pid_t pid;
        int pidfd;
        struct nk_cgroup *cg = NULL;
        r = nk_sandbox_spawn(plan, channel_fd, out[1], errp[1], rep[1], &pid, &pidfd, &cg, err);
        bool memory_by_rlimit = nk_sandbox_plan_memory_by_rlimit(plan);
        nk_sandbox_plan_free(plan);
        plan = NULL;
        nk_closep(&out[1]);
        nk_closep(&errp[1]);
        nk_closep(&rep[1]);
        out[1] = errp[1] = rep[1] = -1;
        if (r < 0)
                goto fail;

        /* Without a drain thread the host's output goes nowhere; it runs on. */
        struct nk_drain *drain;
        (void) nk_drain_start(&out[0], &errp[0], &drain);
        *ret_child = (struct nk_child) { .pid = pid, .pidfd = pidfd, .cgroup = cg, .report = report,
                                         .drain = drain, .memory_by_rlimit = memory_by_rlimit };
        return 0;
fail:
        nk_sandbox_plan_free(plan);
        for (int i = 0; i < 2; i++) {
                nk_closep(&out[i]);
                nk_closep(&errp[i]);
                nk_closep(&rep[i]);
        }
        nk_exit_report_free(report);
        return r;
}

static int native_kill(struct nk_child *child, int signo)
{
        if (child->reaped)
                return -ESRCH;
        /* The pidfd names this host even if its pid was reused. */
        if (syscall(SYS_pidfd_send_signal, child->pidfd, signo, NULL, 0) < 0)
                return -errno;
        return 0;
}

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

static int native_wait(struct nk_child *child, int timeout_ms, struct nk_child_exit *ret)
{
        if (child->reaped)
                return -ECHILD;
        if (timeout_ms >= 0) {
                int r = nk_child_poll_exit(child->pidfd, timeout_ms);
                if (r < 0)
                        return r;
        }
        /* __WALL: the host has no exit signal (see sequencer.c). */
        siginfo_t si = {};
        int r;
        do
                r = waitid((idtype_t) P_PIDFD, (id_t) child->pidfd, &si, WEXITED | __WALL);
        while (r < 0 && errno == EINTR);
        if (r < 0 && errno == ECHILD) {
                r = nk_pidfd_exit(child->pidfd, ret);
                if (r == -ECHILD)
                        r = nk_exit_report_read(child->report, ret);
                if (r == 0)
                        child->reaped = true;
                return r;
        }
        if (r < 0)
                return -errno;
        child->reaped = true;
        nk_child_exit_from_siginfo(&si, ret);
        return 0;
}

const struct nk_launcher nk_launcher_native = {
        .name = "native (sandboxed)",
        .launch = native_launch,
        .kill = native_kill,
        .wait = native_wait,
};
