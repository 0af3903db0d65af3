/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the erl_nif API in the host needs from the runtime on the other side
 * of the channel. The protocol server installs the real operations; unit
 * tests install their own. Until something is installed, every operation
 * fails with -ENOTCONN and the enif_* functions that need it return their
 * documented failure value.
 */
#ifndef NIFKIT_HOST_HOOKS_H
#define NIFKIT_HOST_HOOKS_H

#include <stdint.h>
#include <erl_nif.h>

struct nk_runtime_ops {
        /* Delivers msg to the process `to` (an interned pid term). 0 or -errno. */
        int (*send)(ERL_NIF_TERM to, ERL_NIF_TERM msg);
        /* 1 if the process/port is alive, 0 if not, -errno if unknown. */
        int (*process_alive)(ERL_NIF_TERM pid);
        int (*port_alive)(ERL_NIF_TERM port);
        /* Registered name → pid or port term. 0, -ENOENT, or -errno. */
        int (*whereis)(ERL_NIF_TERM name, ERL_NIF_TERM *ret);
        /* Monitors pid on behalf of a resource; the runtime later reports
         * the DOWN with nk_deliver_down(). 0, -ESRCH (not alive), -errno. */
        int (*monitor)(uint64_t resource_handle, ERL_NIF_TERM pid, uint64_t *ret_monitor);
        int (*demonitor)(uint64_t monitor);
};

void nk_set_runtime_ops(const struct nk_runtime_ops *ops);
const struct nk_runtime_ops *nk_get_runtime_ops(void);

#endif
