/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's side of the shared-memory region (common/shm.h): one worker
 * thread per slot waits for a request in its slot, runs the call
 * (nk_server_call) and writes the reply back into the slot. The host
 * trusts the runtime, so requests are read in place.
 */
#ifndef NIFKIT_HOST_SHM_SERVE_H
#define NIFKIT_HOST_SHM_SERVE_H

#include <stdbool.h>

/* Reads the SHM_REGION datagram waiting on channel and maps the region it
 * carries: 1, or -errno (a malformed message, a region that is not
 * sealed or not of the size it claims). */
int nk_shm_serve_accept(int channel);
/* Whether calls come through a region. */
bool nk_shm_serve_active(void);
/* Starts one worker per slot; returns how many started. */
unsigned nk_shm_serve_start(void);

#endif
