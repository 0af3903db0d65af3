/* SPDX-License-Identifier: Apache-2.0 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "macro.h"

NK_EXPORT const char *nk_error_kind_name(int kind)
{
        static const char *const names[] = {
                [NK_ERR_NONE] = "none",
                [NK_ERR_SYSTEM] = "system",
                [NK_ERR_LOAD] = "load",
                [NK_ERR_HOST_DIED] = "host_died",
                [NK_ERR_PROTOCOL] = "protocol",
                [NK_ERR_TIMEOUT] = "timeout",
                [NK_ERR_REJECTED] = "rejected",
                [NK_ERR_NOT_RUNNING] = "not_running",
        };
        if (kind >= 0 && (size_t) kind < NK_ARRAY_SIZE(names) && names[kind])
                return names[kind];
        return "unknown";
}

int nk_error_set(nk_error *err, int kind, int code, const char *fmt, ...)
{
        if (!err)
                return code;
        *err = (nk_error) { .kind = kind, .code = code };
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        return code;
}

int nk_error_copy(nk_error *err, const nk_error *src)
{
        if (err)
                *err = *src;
        return src->code;
}

const char *nk_signal_name(int signo)
{
        /* sigabbrev_np() is glibc 2.32; keep our own table of the ones a
         * crashing or killed host actually dies of. */
        switch (signo) {
        case SIGSEGV: return "SIGSEGV";
        case SIGBUS: return "SIGBUS";
        case SIGILL: return "SIGILL";
        case SIGFPE: return "SIGFPE";
        case SIGABRT: return "SIGABRT";
        case SIGKILL: return "SIGKILL";
        case SIGTERM: return "SIGTERM";
        case SIGSYS: return "SIGSYS";
        case SIGPIPE: return "SIGPIPE";
        case SIGXCPU: return "SIGXCPU";
        case SIGXFSZ: return "SIGXFSZ";
        case SIGTRAP: return "SIGTRAP";
        case SIGINT: return "SIGINT";
        case SIGHUP: return "SIGHUP";
        case SIGQUIT: return "SIGQUIT";
        case SIGALRM: return "SIGALRM";
        case SIGUSR1: return "SIGUSR1";
        case SIGUSR2: return "SIGUSR2";
        default: return "unknown signal";
        }
}

void nk_sanitize_text(char *dst, size_t dstlen, const uint8_t *src, size_t len)
{
        if (dstlen == 0)
                return;
        size_t n = 0;
        for (size_t i = 0; i < len && n + 1 < dstlen; i++) {
                uint8_t c = src[i];
                /* Bytes >= 0x80 pass: the text is UTF-8 and may name files. */
                dst[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char) c;
        }
        dst[n] = '\0';
}
