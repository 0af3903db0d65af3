/* SPDX-License-Identifier: Apache-2.0 */
/* machine.c's part for the launch path (private to libnifkit). */
#ifndef NIFKIT_MACHINE_H
#define NIFKIT_MACHINE_H

#include <stddef.h>

/* Why creating a host's namespaces failed with err (a positive errno), in
 * a few words with the fix, from the sysctls under proc_sys (NULL:
 * /proc/sys); "" when nothing is known. */
void nk_machine_start_hint(const char *proc_sys, int err, char *buf, size_t size);

#endif
