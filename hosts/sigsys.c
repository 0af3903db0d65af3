/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SIGSYS handler. It runs on the thread whose system call trapped, at
 * any point of any code, so it is async-signal-safe throughout: the frame is
 * built on the stack and goes out with one send(). It must not use the
 * transport: its send lock may be held by a thread this signal interrupted,
 * or by this very thread. A SOCK_SEQPACKET datagram is delivered whole, so
 * the runtime reads the message complete or not at all.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pid1.h"
#include "protocol.h"
#include "sigsys.h"

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

static volatile sig_atomic_t channel = -1;

static void report(const siginfo_t *si)
{
        uint8_t frame[NK_PROTO_HEADER_SIZE + 8];
        struct nk_msg_header h = {
                .type = NK_MSG_VIOLATION,
                .flags = 0,
                .id = 0,
                .payload_len = 8,
        };
        uint32_t nr = (uint32_t) si->si_syscall;
        uint32_t arch = si->si_arch;

        memcpy(frame, &h, sizeof h);
        memcpy(frame + NK_PROTO_HEADER_SIZE, &nr, 4);
        memcpy(frame + NK_PROTO_HEADER_SIZE + 4, &arch, 4);
        /* MSG_NOSIGNAL: a runtime that is gone must not turn this into a
         * death by SIGPIPE, which would hide the real reason. Blocking: a
         * full socket drains as the runtime reads; a runtime that stopped
         * reading kills the host on its call timeout anyway. */
        ssize_t n;
        do
                n = send(channel, frame, sizeof frame, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
}

static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
        (void) uctx;
        int saved = errno;

        if (si && si->si_code == SYS_SECCOMP && channel >= 0)
                report(si);

        /* Die by the signal itself, so the runtime's wait status says
         * SIGSYS: default action, unblocked (it is blocked while this
         * handler runs), raised on this thread. */
        nk_signal_default_unblocked(sig);
        raise(sig);
        errno = saved;
        /* 128 + SIGSYS, as a shell would report it. */
        _exit(128 + SIGSYS);
}

int nk_sigsys_install(int channel_fd)
{
        if (channel_fd < 0)
                return -EBADF;
        channel = channel_fd;

        struct sigaction sa = {
                .sa_sigaction = on_sigsys,
                /* SA_ONSTACK: a trap deep in a NIF's recursion may come with
                 * little stack left, where the NIF set up an altstack. */
                .sa_flags = SA_SIGINFO | SA_ONSTACK,
        };
        /* Nothing else may run its handler in the middle of ours. */
        sigfillset(&sa.sa_mask);
        if (sigaction(SIGSYS, &sa, NULL) < 0)
                return -errno;
        return 0;
}
