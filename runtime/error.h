/* SPDX-License-Identifier: Apache-2.0 */
/* Filling nk_error (internal to libnifkit). */
#ifndef NIFKIT_RUNTIME_ERROR_H
#define NIFKIT_RUNTIME_ERROR_H

#include "nifkit.h"

/* Sets err (if non-NULL) to kind/code and a formatted message, and returns
 * code so that callers can `return nk_error_set(...)`. Never allocates. */
__attribute__((format(printf, 4, 5)))
int nk_error_set(nk_error *err, int kind, int code, const char *fmt, ...);

/* Copies src into err (if non-NULL) and returns src->code. */
int nk_error_copy(nk_error *err, const nk_error *src);

/* "SIGSEGV" for 11; "signal N" style text is left to the caller for unknown ones. */
const char *nk_signal_name(int signo);

/* Copies untrusted text (from the host) into dst, replacing control
 * characters and stopping at dstlen - 1 bytes. */
void nk_sanitize_text(char *dst, size_t dstlen, const uint8_t *src, size_t len);

#endif
