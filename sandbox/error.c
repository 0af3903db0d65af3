/* SPDX-License-Identifier: Apache-2.0 */
/* The sandbox's caller-owned error: a code and a sentence, no allocation. */
#include <stdarg.h>
#include <stdio.h>

#include "sandbox.h"

int nk_sandbox_error_set(struct nk_sandbox_error *err, int code, const char *fmt, ...)
{
        if (err) {
                va_list ap;

                err->code = code;
                va_start(ap, fmt);
                /* A reason longer than the buffer is cut, never overflows. */
                vsnprintf(err->msg, sizeof err->msg, fmt, ap);
                va_end(ap);
        }
        return code;
}
