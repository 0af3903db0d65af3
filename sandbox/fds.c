/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host gets its channel as fd 3 and nothing else of the caller's: not
 * its stdin (a NIF could read what the VM's stdin holds), not its stdout
 * or stderr (a file there could be written at any offset, over the VM's
 * log): /dev/null and two pipes the launcher copies to the caller's stdout
 * and stderr. Until exec the child also keeps the sync socket, as fd 4 and
 * close-on-exec: its closing is how the parent learns that exec succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"
#include "sequencer.h"

#define SYNC_FD (NK_HOST_CHANNEL_FD + 1)
#define LAST_FD NK_HOST_REPORT_FD

int nk_fds_child_arrange(struct nk_child_fds *f, struct nk_child_err *e)
{
        int *const all[] = { &f->out, &f->err, &f->channel, &f->sync, &f->report };

        /* Everything above 4 first, so that no dup below overwrites a
         * descriptor still to be placed. */
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
                if (*all[i] < 0 || *all[i] > LAST_FD)
                        continue;
                *all[i] = fcntl(*all[i], F_DUPFD_CLOEXEC, LAST_FD + 1);
                if (*all[i] < 0)
                        return nk_child_fail(e, -errno, "moving the host's descriptors", NULL, NULL);
        }
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0)
                return nk_child_fail(e, -errno, "opening /dev/null for stdin", NULL, NULL);
        /* dup2 clears close-on-exec on the new fd: these survive exec. */
        if (null == 0 ? fcntl(0, F_SETFD, 0) < 0 : dup2(null, 0) < 0)
                return nk_child_fail(e, -errno, "making /dev/null stdin", NULL, NULL);
        if (null != 0)
                close(null);
        if ((f->out >= 0 && dup2(f->out, 1) < 0) || (f->err >= 0 && dup2(f->err, 2) < 0))
                return nk_child_fail(e, -errno, "making the output pipes stdout and stderr", NULL, NULL);
        if (dup2(f->channel, NK_HOST_CHANNEL_FD) < 0)
                return nk_child_fail(e, -errno, "making the channel fd 3", NULL, NULL);
        if (dup3(f->sync, SYNC_FD, O_CLOEXEC) < 0)
                return nk_child_fail(e, -errno, "making the sync socket fd 4", NULL, NULL);
        if (f->report >= 0 && dup2(f->report, NK_HOST_REPORT_FD) < 0)
                return nk_child_fail(e, -errno, "making the exit report fd 5", NULL, NULL);
        f->sync = SYNC_FD;
        return 0;
}

int nk_fds_child_close_rest(struct nk_child_err *e)
{
        /* close_range is Linux 5.9; the loop is for older kernels. */
        if (syscall(SYS_close_range, LAST_FD + 1, ~0U, 0) == 0)
                return 0;
        if (errno != ENOSYS)
                return nk_child_fail(e, -errno, "closing inherited descriptors", NULL, NULL);
        for (int fd = LAST_FD + 1; fd < 65536; fd++)
                close(fd);
        return 0;
}
