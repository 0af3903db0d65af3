/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libnifkit's side of a host's shared-memory region (common/shm.h): which
 * slot each call uses, and a call's steps through its slot. host.c keeps
 * everything else (deaths, timeouts, statistics) as for calls over the
 * socket.
 *
 * Slots are handed out in private memory: nothing the host writes decides
 * which call a slot belongs to. A call without a free slot waits for one
 * (on a private futex), so no more calls are in the host at once than it
 * has workers, as with the socket's queue.
 */
#ifndef NIFKIT_SHM_CHAN_H
#define NIFKIT_SHM_CHAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "shm.h"

struct nk_shm_chan;

/* A region of nslots slots of slot_data bytes; messages from the host above
 * max_payload are refused. *ret_fd is the memfd to pass to the host (the
 * caller closes it). 0 or -errno. */
int nk_shm_chan_new(uint32_t nslots, uint64_t slot_data, uint64_t max_payload, struct nk_shm_chan **ret,
                    int *ret_fd);
/* No call may be in flight. Accepts NULL. */
void nk_shm_chan_free(struct nk_shm_chan *c);
/* The host is gone: every wait ends with -ECONNRESET, now and later. */
void nk_shm_chan_kill(struct nk_shm_chan *c);
bool nk_shm_chan_dead(const struct nk_shm_chan *c);
/* What SHM_REGION tells the host. */
const struct nk_shm_layout *nk_shm_chan_layout(const struct nk_shm_chan *c);

/* A request that fits here goes in one chunk: sending it never waits. */
uint64_t nk_shm_chan_inline_max(const struct nk_shm_chan *c);

enum nk_shm_op_state {
        NK_SHM_OP_QUEUED,       /* no slot yet; nothing sent */
        NK_SHM_OP_SENDING,      /* a chunk of a long request waits for its ACK */
        NK_SHM_OP_SENT,         /* the request is in the host; waiting for the reply */
        NK_SHM_OP_DONE,         /* the reply is in rx; the slot is free again */
};

/* One call through the region. Owned by the caller; the request's buffers
 * (iov and what it points to) must stay valid until the op is done or
 * cancelled. */
struct nk_shm_op {
        struct nk_shm_chan *chan;
        enum nk_shm_op_state state;
        int slot;                       /* while SENDING or SENT */
        uint32_t seq;                   /* the request half's last frame */
        uint32_t type;
        uint64_t id;
        uint64_t aux;                   /* sent with the request: the runtime's RELEASE count */
        struct iovec iov[16];
        size_t niov;
        struct nk_shm_tx tx;            /* the request, while SENDING */
        struct nk_shm_rx rx;            /* the reply, assembled */
};

/* Sets op up for a request of type and id whose payload is iov[0..niov)
 * (at most 16 pieces). */
void nk_shm_op_init(struct nk_shm_op *op, struct nk_shm_chan *c, uint32_t type, uint64_t id,
                    const struct iovec *iov, size_t niov, uint64_t aux);
/* The reply's bytes come from alloc (NULL: malloc). */
void nk_shm_chan_set_alloc(struct nk_shm_chan *c, const struct nk_shm_alloc *alloc);

/*
 * Moves op on until its reply is complete or deadline_ns passes (0: no
 * limit): takes a slot, sends the request (chunk after acknowledged chunk
 * when it is longer than a slot), waits for the reply. Returns 0 (DONE:
 * op->rx holds the reply, RESULT or ERROR, its id checked), -EAGAIN at the
 * deadline (op keeps its state), -ECONNRESET (the channel was killed),
 * -EMSGSIZE (the reply is above max_payload), -EPROTO (the host broke the
 * rules: *why says how; kill it), or -ENOMEM.
 */
int nk_shm_op_run(struct nk_shm_op *op, uint64_t deadline_ns, const char **why);

/* Gives up on op. A slot with the reply still to come is left to be
 * reclaimed once the host is done with it. Frees op->rx. */
void nk_shm_op_cancel(struct nk_shm_op *op);

#endif
