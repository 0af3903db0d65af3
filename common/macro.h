/* SPDX-License-Identifier: Apache-2.0 */
/* Cleanup helpers and small macros, after systemd's and crun's. */
#ifndef NIFKIT_MACRO_H
#define NIFKIT_MACRO_H

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define NK_EXPORT __attribute__((visibility("default")))
#define NK_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void nk_freep(void *p) { free(*(void **) p); }
static inline void nk_closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(nk_freep)
#define _cleanup_close_ _cleanup_(nk_closep)

/* Hands ownership on: returns the value and leaves the variable empty. */
#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -1; _fd; })

#endif
