/* SPDX-License-Identifier: Apache-2.0 */
/* The host as the init of its pid namespace (see pid1.c). */
#ifndef NIFKIT_HOST_PID1_H
#define NIFKIT_HOST_PID1_H

/* When this process is pid 1, installs handlers that let a fatal signal the
 * host raises itself kill it as it would any other process. 0 or -errno. */
int nk_pid1_setup(void);

/* From a handler of sig: sig back to its default action and unblocked (it
 * is blocked while its handler runs), so that raising it again kills the
 * process by it. Async-signal-safe. */
void nk_signal_default_unblocked(int sig);

#endif
