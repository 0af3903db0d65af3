/* SPDX-License-Identifier: Apache-2.0 */
/*
 * File descriptors over AF_UNIX sockets (SCM_RIGHTS). Every sendmsg or
 * recvmsg that carries descriptors in the project goes through this file,
 * so the rules live in one place:
 *   - at most one descriptor per datagram;
 *   - received descriptors are close-on-exec from the moment they exist
 *     (MSG_CMSG_CLOEXEC), never for a window after;
 *   - a datagram whose data or control part was truncated (MSG_TRUNC,
 *     MSG_CTRUNC), or that carries anything but exactly zero or one
 *     descriptor, is refused, and every descriptor it brought is closed, so
 *     that a peer cannot make us leak descriptors or act on half a message.
 */
#ifndef NIFKIT_FDPASS_H
#define NIFKIT_FDPASS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/*
 * Sends one datagram made of iov[0..niov), with fd attached when fd >= 0
 * (the caller keeps its own copy of fd). Never raises SIGPIPE. Returns 0,
 * or -errno (-EPIPE when the peer is gone).
 */
int nk_fdpass_send(int sock, const struct iovec *iov, size_t niov, int fd);

/*
 * Receives one datagram of at most cap bytes into buf. *ret_fd is the
 * descriptor it carried (close-on-exec, owned by the caller), or -1.
 * Returns the datagram's length (0: the peer closed), -EBADMSG (the
 * datagram was longer than cap, its control data was truncated, or it
 * carried more than one descriptor or other ancillary data; it is dropped
 * and *ret_fd is -1), or -errno. flags are passed to recvmsg (MSG_DONTWAIT).
 */
ssize_t nk_fdpass_recv(int sock, void *buf, size_t cap, int flags, int *ret_fd);

#endif
