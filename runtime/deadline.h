/* SPDX-License-Identifier: Apache-2.0 */
/* Absolute CLOCK_MONOTONIC deadlines for condition waits (private to
 * libnifkit; the condition variables waited on use that clock). */
#ifndef NIFKIT_DEADLINE_H
#define NIFKIT_DEADLINE_H

#include <time.h>

/* ms milliseconds from now. */
static inline struct timespec nk_deadline_in(unsigned ms)
{
        struct timespec d;
        clock_gettime(CLOCK_MONOTONIC, &d);
        d.tv_sec += ms / 1000;
        d.tv_nsec += (long) (ms % 1000) * 1000000L;
        if (d.tv_nsec >= 1000000000L) {
                d.tv_sec++;
                d.tv_nsec -= 1000000000L;
        }
        return d;
}

#endif
