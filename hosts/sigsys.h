/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit-host's SIGSYS handler: a system call the seccomp filter does not
 * allow traps, and the host tells the runtime which one before it dies.
 */
#ifndef NIFKIT_SIGSYS_H
#define NIFKIT_SIGSYS_H

/*
 * Installs the handler; the host calls it at start-up with its channel.
 * On a trapped call the handler sends one NK_MSG_VIOLATION datagram on
 * channel_fd (protocol.h) and the process dies by SIGSYS (exit status 159
 * if the signal somehow does not kill it). A SIGSYS that is not a seccomp
 * trap kills the process the same way without a message.
 * Returns 0 or -errno.
 */
int nk_sigsys_install(int channel_fd);

#endif
