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
        plan->die_with_parent = cfg->die_with_parent;
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

/* Reaped by someone else: the pidfd's record, else the host's own report
 * of how it ended. */
static int native_reaped_elsewhere(struct nk_child *child, struct nk_child_exit *ret)
{
        int r = nk_pidfd_exit(child->pidfd, ret);
        return r == -ECHILD ? nk_exit_report_read(child->report, ret) : r;
}

static int native_wait(struct nk_child *child, int timeout_ms, struct nk_child_exit *ret)
{
        static const struct nk_child_wait_how how = { .reaped_elsewhere = native_reaped_elsewhere };
        return nk_child_wait(child, timeout_ms, &how, ret);
}

const struct nk_launcher nk_launcher_native = {
        .name = "native (sandboxed)",
        .own_root = true,
        .launch = native_launch,
        .kill = native_kill,
        .wait = native_wait,
};
