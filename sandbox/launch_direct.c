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
#include <stdint.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "launcher.h"
#include "macro.h"
#include "sandbox.h"

extern char **environ;

/* Runs in the forked child of a possibly multithreaded parent: only
 * async-signal-safe calls until exec. On failure reports on err_fd. */
static _Noreturn void child_exec(const struct nk_launch_config *cfg, int channel_fd, int err_fd)
{
        struct nk_child_err e;
        nk_child_reset_signals();

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
        nk_child_close_from(NK_HOST_CHANNEL_FD + 2);
        if (cfg->die_with_parent && prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
                nk_child_fail(&e, -errno, "setting the parent-death signal", NULL, NULL);
                nk_child_report(err_fd, &e);
        }

        char *const argv[] = { (char *) "nifkit-host", (char *) "--fd", (char *) "3", NULL };
        execve(cfg->host_binary, argv, cfg->env ? cfg->env : environ);
        nk_child_fail(&e, -errno, "executing '", cfg->host_binary, "'");
        nk_child_report(err_fd, &e);
fail:
        nk_child_fail(&e, -errno, "moving the channel to fd 3", NULL, NULL);
        nk_child_report(err_fd, &e);
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
        pid_t pid = nk_child_fork_quiet();
        if (pid < 0)
                return pid;
        if (pid == 0)
                child_exec(cfg, channel_fd, wr);
        _cleanup_child_ struct nk_child_pending pending = { .pid = pid, .pidfd = -1 };

        nk_closep(&wr);
        wr = -1;
        /* The pipe closes on exec: EOF means the exec succeeded. */
        struct nk_child_err e;
        int r = nk_child_read_report(rd, &e);
        if (r < 0)
                return r;
        if (r > 0) {
                if (cfg->err)
                        nk_sandbox_error_set(cfg->err, e.code, "cannot start the host: %s: %s", e.what,
                                             strerror(-e.code));
                return e.code;
        }

        pending.pid = -1;
        int pidfd = nk_child_pidfd_open(pid);
        *ret_child = (struct nk_child) { .pid = pid, .pidfd = pidfd >= 0 ? pidfd : -1 };
        return 0;
}

static int direct_wait(struct nk_child *child, int timeout_ms, struct nk_child_exit *ret)
{
        return nk_child_wait(child, timeout_ms, NULL, ret);
}

const struct nk_launcher nk_launcher_direct = {
        .name = "direct (unsandboxed)",
        .launch = direct_launch,
        .kill = nk_child_signal,
        .wait = direct_wait,
};
