/* SPDX-License-Identifier: Apache-2.0 */
/* nifkit wrap: put the proxy NIF in place of a NIF library. */
#ifndef NIFKIT_CMD_WRAP_H
#define NIFKIT_CMD_WRAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * argv[0] is "wrap". Exit status: 0 wrapped, 1 refused or failed (invalid
 * policy, unreadable library, a library that is already a proxy, a write
 * that failed: nothing is left half-done), 64 usage error.
 */
int nk_cmd_wrap(int argc, char **argv);

#endif
