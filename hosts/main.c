/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit-host: runs one NIF library for the runtime that started it. It is
 * started by a launcher (sandbox/launcher.h) with its channel as an
 * inherited fd, and is not meant to be run by hand.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pid1.h"
#include "server.h"
#include "sigsys.h"
#include "term.h"

static void usage(FILE *f)
{
        fprintf(f, "usage: nifkit-host --fd N\n"
                   "Runs a NIF library for libnifkit, which passes the channel (an AF_UNIX\n"
                   "SOCK_SEQPACKET socket) as file descriptor N. Not meant to be run by hand.\n");
}

static int parse_fd(const char *s)
{
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < 0 || v > 65535)
                return -EINVAL;
        return (int) v;
}

int main(int argc, char **argv)
{
        int fd = -1;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc)
                        fd = parse_fd(argv[++i]);
                else if (strncmp(argv[i], "--fd=", 5) == 0)
                        fd = parse_fd(argv[i] + 5);
                else if (strcmp(argv[i], "--help") == 0) {
                        usage(stdout);
                        return 0;
                } else {
                        fprintf(stderr, "nifkit-host: unknown argument '%s'\n", argv[i]);
                        usage(stderr);
                        return 2;
                }
        }
        if (fd < 0) {
                fprintf(stderr, "nifkit-host: missing or invalid --fd N: the channel must be passed by the runtime\n");
                usage(stderr);
                return 2;
        }
        int type = 0;
        socklen_t len = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET) {
                fprintf(stderr, "nifkit-host: fd %d is not a SOCK_SEQPACKET socket (%s)\n", fd,
                        errno ? strerror(errno) : "wrong socket type");
                return 2;
        }
        /* The channel must not leak into anything a NIF executes. */
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
                fprintf(stderr, "nifkit-host: fcntl(%d): %s\n", fd, strerror(errno));
                return 1;
        }
        /* A call the seccomp filter denies traps; the handler tells the
         * runtime which one before the host dies, so the caller gets a reason
         * that names the syscall instead of a bare SIGSYS. */
        if (nk_sigsys_install(fd) < 0) {
                fprintf(stderr, "nifkit-host: cannot install the SIGSYS handler: %s\n", strerror(errno));
                return 1;
        }
        /* A vanished runtime must show up as EPIPE, not kill the host mid-reply. */
        signal(SIGPIPE, SIG_IGN);
        /* Under the native launcher the host is its pid namespace's init. */
        if (nk_pid1_setup() < 0) {
                fprintf(stderr, "nifkit-host: cannot install the init's signal handlers: %s\n", strerror(errno));
                return 1;
        }

        /* Calls of a few MiB (a decoded binary, an encoded result) would
         * otherwise get fresh mmap'd memory each time, and pay for zeroing
         * and faulting its pages in on every call; this keeps up to that
         * much freed memory for the next call instead. */
        mallopt(M_MMAP_THRESHOLD, 16 << 20);
        mallopt(M_TRIM_THRESHOLD, 16 << 20);

        if (nk_atoms_init() < 0) {
                fprintf(stderr, "nifkit-host: out of memory\n");
                return 1;
        }
        /* _exit: NIF threads may still run library code that exit()'s
         * destructors would pull away from under them. */
        _exit(nk_server_run(fd));
}
