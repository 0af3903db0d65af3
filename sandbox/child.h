/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The child core: what every launcher does alike with a host it starts.
 * In the forked child, before exec: reset the signals, close what must not
 * reach the host, and report a failure in one format ({errno, what it was
 * doing}) on a close-on-exec descriptor whose EOF means exec succeeded. In
 * the parent: read that report, kill and reap a child that got no
 * further, then open its pidfd, signal it, wait for it, read how it ended
 * when the kernel reaped it, and release what it held. Each launcher
 * keeps only what differs: how it starts the host.
 */
#ifndef NIFKIT_SANDBOX_CHILD_H
#define NIFKIT_SANDBOX_CHILD_H

#include <signal.h>
#include <sys/types.h>

#include "launcher.h"

/* What a child step that failed was doing; built without formatting
 * functions (the child may only make async-signal-safe calls). The parent
 * appends strerror(). */
struct nk_child_err {
        int code;               /* negative errno */
        char what[256];
};

/* Fills e from up to three strings (NULL ends early); returns code. */
int nk_child_fail(struct nk_child_err *e, int code, const char *a, const char *b, const char *c);

/* Child: sends e on fd (the report descriptor, close-on-exec) and exits
 * with status 127. Async-signal-safe. */
_Noreturn void nk_child_report(int fd, const struct nk_child_err *e);

/* Parent: waits for the child's report on fd. 0 at EOF (exec succeeded
 * and closed the child's end), 1 with *ret filled (ret->what terminated,
 * ret->code negative), -EIO for a report that is not one, -errno. */
int nk_child_read_report(int fd, struct nk_child_err *ret);

/* Child, first: every handler back to its default, the ignored ones too
 * (they would stay ignored across exec), and no signal blocked. The
 * handlers are the caller's code, and none may run in the child. */
void nk_child_reset_signals(void);

/* Parent: kills (SIGKILL) and reaps a child that got no further than its
 * set-up, by pidfd when pidfd >= 0, else by pid. Its exit status if it had
 * exited by itself, -1 if the signal ended it. */
int nk_child_kill_and_reap(pid_t pid, int pidfd);

/* A child until it runs the host: killed and reaped when the variable goes
 * out of scope with pid > 0 (crun's cleanup_pid; set pid to -1 once it
 * is the caller's). */
struct nk_child_pending {
        pid_t pid;
        int pidfd;
};
static inline void nk_child_pending_abandon(struct nk_child_pending *c)
{
        if (c->pid > 0)
                (void) nk_child_kill_and_reap(c->pid, c->pidfd);
}
#define _cleanup_child_ __attribute__((cleanup(nk_child_pending_abandon)))

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

/* How a launcher reads its child's end, for nk_child_wait. */
struct nk_child_wait_how {
        /* Reaped here: the status as an exit. NULL: nk_child_exit_from_siginfo. */
        void (*exited)(struct nk_child *child, const siginfo_t *si, struct nk_child_exit *ret);
        /* Something else reaped it (a VM that ignores SIGCHLD): how it
         * ended, or -ECHILD when nobody knows. NULL: the pidfd's record
         * (nk_pidfd_exit), where there is a pidfd. */
        int (*reaped_elsewhere)(struct nk_child *child, struct nk_child_exit *ret);
};

/* The wait of every launcher: -ECHILD once reaped; otherwise waits up to
 * timeout_ms (-1: forever) as nk_child_waitid does, and marks the child
 * reaped once how it ended is known. how may be NULL. */
int nk_child_wait(struct nk_child *child, int timeout_ms, const struct nk_child_wait_how *how,
                  struct nk_child_exit *ret);

#endif
