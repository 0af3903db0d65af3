/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the launchers do alike with a host they started: open its pidfd,
 * signal it, wait for it, and, in the forked child, close what must not
 * reach it. Each launcher keeps only what differs (how it starts the host,
 * and how a host reaped by the kernel reports its end).
 */
#ifndef NIFKIT_SANDBOX_CHILD_H
#define NIFKIT_SANDBOX_CHILD_H

#include <signal.h>
#include <sys/types.h>

#include "launcher.h"

/* A pidfd for pid (close-on-exec), or -errno; -ENOSYS where the headers
 * do not know pidfd_open. */
int nk_child_pidfd_open(pid_t pid);

/* fork() with no exit signal (clone3 with every argument 0): 0 in the
 * child, its pid in the parent, or -errno. Without SIGCHLD nothing else
 * reaps the child before it execs (see the launchers for what follows). */
pid_t nk_child_fork_quiet(void);

/* Closes every fd from `from` up. close_range() is Linux 5.9; older kernels
 * get the loop up to the descriptor limit. Async-signal-safe. */
void nk_child_close_from(int from);

/* Signals an unreaped child through its pidfd, falling back to its pid
 * where the pidfd is missing or pidfd_send_signal is not there: 0, -ESRCH
 * if already reaped, -errno. */
int nk_child_signal(struct nk_child *child, int signo);

/* Waits at most timeout_ms (-1: forever) for pidfd to become readable, that
 * is for the child to exit: 0, -ETIMEDOUT, -errno. */
int nk_child_poll_exit(int pidfd, int timeout_ms);

/* Waits for the child's exit (by pidfd if it has one, else by pid in 10 ms
 * steps) and reaps it: 0 with *ret_si filled, -ETIMEDOUT, -ECHILD when
 * something else reaped it (the caller then asks the pidfd or the host's
 * own report), -errno. Does not look at or set child->reaped. */
int nk_child_waitid(const struct nk_child *child, int timeout_ms, siginfo_t *ret_si);

/* How a waitid() status reads as an exit. */
void nk_child_exit_from_siginfo(const siginfo_t *si, struct nk_child_exit *ret);

#endif
