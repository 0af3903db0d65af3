/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdpass.h"
#include "macro.h"

/* Room for several descriptors although one is allowed: a peer that sends
 * more must see them closed, not lost to MSG_CTRUNC where we cannot close
 * them (the kernel closes what does not fit, but room for a few lets us
 * refuse cleanly and tell the two cases apart in tests). */
#define MAX_FDS_SEEN 8

int nk_fdpass_send(int sock, const struct iovec *iov, size_t niov, int fd)
{
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control;
        struct msghdr mh = { .msg_iov = (struct iovec *) iov, .msg_iovlen = niov };

        if (fd >= 0) {
                memset(&control, 0, sizeof control);
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof control.buf;
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof fd);
        }
        for (;;) {
                if (sendmsg(sock, &mh, MSG_NOSIGNAL) >= 0)
                        return 0;
                if (errno != EINTR)
                        return -errno;
        }
}

static void close_all(struct msghdr *mh)
{
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                        close(fd);
                }
        }
}

ssize_t nk_fdpass_recv(int sock, void *buf, size_t cap, int flags, int *ret_fd)
{
        union {
                char buf[CMSG_SPACE(MAX_FDS_SEEN * sizeof(int))];
                struct cmsghdr align;
        } control;
        struct iovec v = { .iov_base = buf, .iov_len = cap };
        struct msghdr mh;
        ssize_t n;

        *ret_fd = -1;
        do {
                mh = (struct msghdr) { .msg_iov = &v, .msg_iovlen = 1,
                                       .msg_control = control.buf, .msg_controllen = sizeof control.buf };
                n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;

        int fd = -1, count = 0;
        bool other = false;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        count += (int) k;
                        if (k >= 1)
                                memcpy(&fd, CMSG_DATA(c), sizeof fd);
                } else
                        other = true;
        }
        if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || count > 1 || other) {
                close_all(&mh);
                return -EBADMSG;
        }
        *ret_fd = count == 1 ? fd : -1;
        return n;
}
