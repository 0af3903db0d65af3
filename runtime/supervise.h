/* SPDX-License-Identifier: Apache-2.0 */
/* supervise.c's pure parts, for its unit test (private to libnifkit). */
#ifndef NIFKIT_SUPERVISE_H
#define NIFKIT_SUPERVISE_H

#include <stdbool.h>
#include <time.h>

#include "nifkit.h"

/* nk_restart_intensity_allow with the clock (seconds) given. */
bool nk_restart_intensity_allow_at(nk_restart_intensity *ri, time_t now);

/* The heartbeat's next interval: interval_ms after a used one, else
 * doubling up to idle_max_ms. */
unsigned nk_heartbeat_next_interval(unsigned interval, bool used, unsigned interval_ms, unsigned idle_max_ms);

#endif
