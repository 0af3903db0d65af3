/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime operations the erl_nif API uses (hooks.h). The table is
 * swapped atomically so that NIF threads calling enif_send while the server
 * installs its operations see either the old table or the new one whole.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#include "hooks.h"

static int none_send(ERL_NIF_TERM to, ERL_NIF_TERM msg)
{
        return -ENOTCONN;
}

static int none_alive(ERL_NIF_TERM id)
{
        return -ENOTCONN;
}

static int none_whereis(ERL_NIF_TERM name, ERL_NIF_TERM *ret)
{
        return -ENOTCONN;
}

static int none_monitor(uint64_t resource_handle, ERL_NIF_TERM pid, uint64_t *ret_monitor)
{
        return -ENOTCONN;
}

static int none_demonitor(uint64_t monitor)
{
        return -ENOTCONN;
}

static const struct nk_runtime_ops none_ops = {
        .send = none_send,
        .process_alive = none_alive,
        .port_alive = none_alive,
        .whereis = none_whereis,
        .monitor = none_monitor,
        .demonitor = none_demonitor,
};

/* A table with holes gets them filled from none_ops, so callers never test
 * for NULL members. Installed tables are copied: the caller's may be
 * temporary. Old copies are kept (a NIF thread may still be reading one);
 * the server installs once, tests a handful of times. */
struct ops_copy {
        struct nk_runtime_ops ops;
        struct ops_copy *prev;
};

static _Atomic(const struct nk_runtime_ops *) current = &none_ops;
static struct ops_copy *_Atomic copies;

void nk_set_runtime_ops(const struct nk_runtime_ops *ops)
{
        struct ops_copy *c;

        if (!ops) {
                atomic_store_explicit(&current, &none_ops, memory_order_release);
                return;
        }
        c = malloc(sizeof(*c));
        if (!c) {
                /* Without a copy, keep the caller's table: the server's is
                 * static, and failing to install would be worse. */
                atomic_store_explicit(&current, ops, memory_order_release);
                return;
        }
        c->ops = *ops;
#define FILL(m) if (!c->ops.m) c->ops.m = none_ops.m
        FILL(send);
        FILL(process_alive);
        FILL(port_alive);
        FILL(whereis);
        FILL(monitor);
        FILL(demonitor);
#undef FILL
        c->prev = atomic_load_explicit(&copies, memory_order_relaxed);
        while (!atomic_compare_exchange_weak(&copies, &c->prev, c))
                ;
        atomic_store_explicit(&current, &c->ops, memory_order_release);
}

const struct nk_runtime_ops *nk_get_runtime_ops(void)
{
        return atomic_load_explicit(&current, memory_order_acquire);
}
