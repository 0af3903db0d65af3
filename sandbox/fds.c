/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host gets its channel as fd 3 and nothing else of the caller's but
 * stdin, stdout and stderr (launcher.h). Until exec the child also keeps the
 * sync socket, as fd 4 and close-on-exec: its closing is how the parent
 * learns that exec succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"
#include "sequencer.h"

#define SYNC_FD (NK_HOST_CHANNEL_FD + 1)

int nk_fds_child_arrange(int channel_fd, int *sync_fd, struct nk_child_err *e)
{
        int s = *sync_fd;

        /* Move both out of the way of 3 and 4 first, so that neither dup
         * overwrites the other. */
        if (s <= SYNC_FD) {
                s = fcntl(s, F_DUPFD_CLOEXEC, SYNC_FD + 1);
                if (s < 0)
                        return nk_child_fail(e, -errno, "moving the sync socket", NULL, NULL);
        }
        if (channel_fd <= SYNC_FD) {
                channel_fd = fcntl(channel_fd, F_DUPFD_CLOEXEC, SYNC_FD + 1);
                if (channel_fd < 0)
                        return nk_child_fail(e, -errno, "moving the channel", NULL, NULL);
        }
        /* dup2 clears close-on-exec on the new fd: the channel survives exec. */
        if (dup2(channel_fd, NK_HOST_CHANNEL_FD) < 0)
                return nk_child_fail(e, -errno, "making the channel fd 3", NULL, NULL);
        if (dup3(s, SYNC_FD, O_CLOEXEC) < 0)
                return nk_child_fail(e, -errno, "making the sync socket fd 4", NULL, NULL);
        *sync_fd = SYNC_FD;
        return 0;
}

int nk_fds_child_close_rest(struct nk_child_err *e)
{
        /* close_range is Linux 5.9; the loop is for older kernels. */
        if (syscall(SYS_close_range, SYNC_FD + 1, ~0U, 0) == 0)
                return 0;
        if (errno != ENOSYS)
                return nk_child_fail(e, -errno, "closing inherited descriptors", NULL, NULL);
        for (int fd = SYNC_FD + 1; fd < 65536; fd++)
                close(fd);
        return 0;
}
