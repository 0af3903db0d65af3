/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime's reading of NK_MSG_VIOLATION (protocol.h): which system call
 * the host's seccomp filter trapped.
 */
#ifndef NIFKIT_VIOLATION_H
#define NIFKIT_VIOLATION_H

#include <stddef.h>
#include <stdint.h>

/* Size of a VIOLATION payload: u32 syscall number, u32 audit arch. */
#define NK_VIOLATION_PAYLOAD_SIZE 8

/*
 * Parses a VIOLATION payload. Returns 0 with the syscall number (as the
 * host's thread passed it, a signed int) and the AUDIT_ARCH_* value, or
 * -EBADMSG for a payload that is not exactly one violation. The host is not
 * trusted: the number only names the call in a message, and a caller must
 * not use it for anything else (nk_seccomp_syscall_name prints unknown
 * numbers as "syscall_N").
 */
int nk_violation_parse(const uint8_t *payload, size_t len, int *ret_nr, uint32_t *ret_arch);

#endif
