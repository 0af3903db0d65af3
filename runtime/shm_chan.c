/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "protocol.h"
#include "shm_chan.h"

/* How long a caller spins for a reply before it sleeps, at most; the
 * spin adapts below that to how soon replies have come. */
#define REPLY_SPIN_MAX_NS 50000ull
/* The host copies a chunk out and acknowledges it at once. */
#define ACK_SPIN_MAX_NS 200000ull

enum slot_owner {
        SLOT_FREE,
        SLOT_TAKEN,             /* by a call */
        SLOT_ABANDONED,         /* by a cancelled call whose host is not done with it */
        SLOT_RECLAIMING,        /* a caller is looking whether it is done */
};

struct chan_slot {
        _Atomic int owner;
        /* Written by whoever owns the slot. */
        uint32_t seq;           /* the request half's last frame */
        bool abort_sent;        /* abandoned: an ABORT went out, its ACK is awaited */
        struct nk_shm_spin spin;
};

struct nk_shm_chan {
        struct nk_shm_layout layout;
        void *base;
        uint64_t max_payload;
        const struct nk_shm_alloc *alloc;
        _Atomic bool dead;
        /* Callers waiting for a slot sleep on gen (a private futex). */
        _Atomic uint32_t gen;
        _Atomic uint32_t waiters;
        struct chan_slot *slots;
};

static void futex_wait_private(_Atomic uint32_t *word, uint32_t val, uint64_t timeout_ns)
{
        struct timespec ts = { .tv_sec = (time_t) (timeout_ns / 1000000000ull),
                               .tv_nsec = (long) (timeout_ns % 1000000000ull) };
        (void) syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static void futex_wake_private(_Atomic uint32_t *word, int n)
{
        (void) syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

int nk_shm_chan_new(uint32_t nslots, uint64_t slot_data, uint64_t max_payload, struct nk_shm_chan **ret,
                    int *ret_fd)
{
        struct nk_shm_chan *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        int r = nk_shm_layout(nslots, slot_data, &c->layout);
        if (r < 0) {
                free(c);
                return r;
        }
        c->max_payload = max_payload;
        c->slots = calloc(nslots, sizeof *c->slots);
        if (!c->slots) {
                free(c);
                return -ENOMEM;
        }
        r = nk_shm_create(&c->layout, ret_fd, &c->base);
        if (r < 0) {
                free(c->slots);
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

void nk_shm_chan_free(struct nk_shm_chan *c)
{
        if (!c)
                return;
        nk_shm_unmap(c->base, &c->layout);
        free(c->slots);
        free(c);
}

void nk_shm_chan_kill(struct nk_shm_chan *c)
{
        if (!c || atomic_exchange(&c->dead, true))
                return;
        for (uint32_t i = 0; i < c->layout.nslots; i++)
                nk_shm_wake(&nk_shm_slot(c->base, i)->resp);
        atomic_fetch_add(&c->gen, 1);
        futex_wake_private(&c->gen, INT_MAX);
}

bool nk_shm_chan_dead(const struct nk_shm_chan *c)
{
        return atomic_load(&c->dead);
}

const struct nk_shm_layout *nk_shm_chan_layout(const struct nk_shm_chan *c)
{
        return &c->layout;
}

void nk_shm_chan_set_alloc(struct nk_shm_chan *c, const struct nk_shm_alloc *alloc)
{
        c->alloc = alloc;
}

uint64_t nk_shm_chan_inline_max(const struct nk_shm_chan *c)
{
        return c->layout.slot_data;
}

/* ---- slots ----------------------------------------------------------- */

static uint32_t load_u32(const uint32_t *p)
{
        return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/*
 * An abandoned slot, held by us: whether the host is done with it. The host
 * answers every frame but the last of a reply; an ABORT (of a request the
 * runtime was still sending, or of a reply it was still receiving) is
 * answered with an ACK, after which the host is idle again.
 */
static bool reclaim(struct nk_shm_chan *c, uint32_t i)
{
        struct chan_slot *cs = &c->slots[i];
        struct nk_shm_slot *s = nk_shm_slot(c->base, i);

        if (atomic_load_explicit(&s->resp.seq, memory_order_acquire) != cs->seq)
                return false;
        uint32_t type = load_u32(&s->resp.f.type), flags = load_u32(&s->resp.f.flags);
        if (cs->abort_sent)
                return type == NK_SHM_ACK;
        if (type == NK_SHM_ACK) {
                /* It took a chunk of a request nobody will finish. */
                s->req.f = (struct nk_shm_frame) { .type = NK_MSG_CALL, .flags = NK_SHM_ABORT };
                nk_shm_publish(&s->req, ++cs->seq, NULL);
                cs->abort_sent = true;
                return false;
        }
        if (flags & NK_SHM_MORE) {
                nk_shm_ack(&s->req, ++cs->seq, NK_SHM_ABORT, NULL);
                cs->abort_sent = true;
                return false;
        }
        /* The reply's last chunk (or a host that breaks the rules, which
         * a later call over this slot finds out). */
        return true;
}

/* Takes a free slot, starting with the one this thread used last (its host
 * worker may still be spinning for it). -1 when none is free. */
static int take_slot(struct nk_shm_chan *c)
{
        static __thread uint32_t hint;
        uint32_t n = c->layout.nslots;

        for (uint32_t k = 0; k < n; k++) {
                uint32_t i = (hint + k) % n;
                int expect = SLOT_FREE;
                if (atomic_compare_exchange_strong(&c->slots[i].owner, &expect, SLOT_TAKEN)) {
                        hint = i;
                        return (int) i;
                }
        }
        for (uint32_t i = 0; i < n; i++) {
                int expect = SLOT_ABANDONED;
                if (!atomic_compare_exchange_strong(&c->slots[i].owner, &expect, SLOT_RECLAIMING))
                        continue;
                if (reclaim(c, i)) {
                        c->slots[i].abort_sent = false;
                        atomic_store(&c->slots[i].owner, SLOT_TAKEN);
                        return (int) i;
                }
                atomic_store(&c->slots[i].owner, SLOT_ABANDONED);
        }
        return -1;
}

static void release_slot(struct nk_shm_chan *c, int i, int owner)
{
        atomic_store(&c->slots[i].owner, owner);
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load(&c->waiters) > 0) {
                atomic_fetch_add(&c->gen, 1);
                futex_wake_private(&c->gen, 1);
        }
}

static int wait_slot(struct nk_shm_chan *c, uint64_t deadline_ns)
{
        int i = take_slot(c);
        if (i >= 0)
                return i;
        atomic_fetch_add(&c->waiters, 1);
        for (;;) {
                uint32_t g = atomic_load(&c->gen);
                i = take_slot(c);
                if (i >= 0)
                        break;
                if (atomic_load(&c->dead)) {
                        i = -ECONNRESET;
                        break;
                }
                uint64_t now = nk_shm_now_ns(), slice = NK_SHM_SLICE_NS;
                if (deadline_ns && now >= deadline_ns) {
                        i = -EAGAIN;
                        break;
                }
                if (deadline_ns && deadline_ns - now < slice)
                        slice = deadline_ns - now;
                futex_wait_private(&c->gen, g, slice);
        }
        atomic_fetch_sub(&c->waiters, 1);
        return i;
}

/* ---- a call's steps ----------------------------------------------------- */

void nk_shm_op_init(struct nk_shm_op *op, struct nk_shm_chan *c, uint32_t type, uint64_t id,
                    const struct iovec *iov, size_t niov, uint64_t aux)
{
        *op = (struct nk_shm_op) { .chan = c, .state = NK_SHM_OP_QUEUED, .slot = -1, .type = type, .id = id,
                                   .aux = aux, .rx = { .alloc = c->alloc } };
        for (size_t i = 0; i < niov && i < NK_ARRAY_SIZE(op->iov); i++)
                if (iov[i].iov_len > 0)
                        op->iov[op->niov++] = iov[i];
}

static bool is_reply(uint32_t type)
{
        return type == NK_MSG_RESULT || type == NK_MSG_ERROR;
}

static int wait_host(struct nk_shm_op *op, uint64_t deadline_ns, uint64_t spin_max)
{
        struct nk_shm_chan *c = op->chan;
        struct chan_slot *cs = &c->slots[op->slot];
        const struct nk_shm_wait w = { .deadline_ns = deadline_ns, .abort = &c->dead, .spin = &cs->spin,
                                       .spin_max_ns = spin_max, .slice_ns = NK_SHM_SLICE_NS };
        int r = nk_shm_wait_seq(&nk_shm_slot(c->base, (uint32_t) op->slot)->resp, op->seq, true, &w);
        return r == -ETIMEDOUT ? -EAGAIN : r;
}

/* Publishes the request's next chunk; the last one makes op SENT. */
static void send_chunk(struct nk_shm_op *op)
{
        struct nk_shm_chan *c = op->chan;
        uint32_t i = (uint32_t) op->slot;
        bool last = nk_shm_tx_next(&op->tx, &nk_shm_slot(c->base, i)->req, nk_shm_data(c->base, &c->layout, i),
                                   c->layout.slot_data, ++op->seq, &c->slots[i].spin);
        c->slots[i].seq = op->seq;
        op->state = last ? NK_SHM_OP_SENT : NK_SHM_OP_SENDING;
}

int nk_shm_op_run(struct nk_shm_op *op, uint64_t deadline_ns, const char **why)
{
        struct nk_shm_chan *c = op->chan;
        struct nk_shm_slot *s;
        int r;

        *why = NULL;
        for (;;) {
                switch (op->state) {
                case NK_SHM_OP_QUEUED:
                        r = wait_slot(c, deadline_ns);
                        if (r < 0)
                                return r;
                        op->slot = r;
                        op->seq = c->slots[r].seq;
                        nk_shm_tx_init(&op->tx, op->type, op->id, op->iov, op->niov, op->aux);
                        send_chunk(op);
                        continue;
                case NK_SHM_OP_SENDING:
                        r = wait_host(op, deadline_ns, ACK_SPIN_MAX_NS);
                        if (r < 0)
                                return r;
                        s = nk_shm_slot(c->base, (uint32_t) op->slot);
                        if (load_u32(&s->resp.f.type) != NK_SHM_ACK) {
                                *why = "a frame other than ACK in the middle of a request";
                                return -EPROTO;
                        }
                        send_chunk(op);
                        continue;
                case NK_SHM_OP_SENT:
                        r = wait_host(op, deadline_ns, REPLY_SPIN_MAX_NS);
                        if (r < 0)
                                return r;
                        s = nk_shm_slot(c->base, (uint32_t) op->slot);
                        r = nk_shm_rx_take(&op->rx, &s->resp, nk_shm_data(c->base, &c->layout, (uint32_t) op->slot),
                                           c->layout.slot_data, c->max_payload, is_reply, why);
                        if (r < 0)
                                return r == -EBADMSG ? -EPROTO : r;
                        if (r == 0) {
                                nk_shm_ack(&s->req, ++op->seq, 0, &c->slots[op->slot].spin);
                                c->slots[op->slot].seq = op->seq;
                                continue;
                        }
                        if (op->rx.id != op->id) {
                                *why = "a reply with another call's id";
                                return -EPROTO;
                        }
                        op->state = NK_SHM_OP_DONE;
                        release_slot(c, op->slot, SLOT_FREE);
                        op->slot = -1;
                        return 0;
                case NK_SHM_OP_DONE:
                        return 0;
                }
        }
}

void nk_shm_op_cancel(struct nk_shm_op *op)
{
        if (op->state == NK_SHM_OP_SENDING || op->state == NK_SHM_OP_SENT) {
                struct chan_slot *cs = &op->chan->slots[op->slot];
                cs->seq = op->seq;
                cs->abort_sent = false;
                release_slot(op->chan, op->slot, SLOT_ABANDONED);
        }
        nk_shm_rx_free(&op->rx);
        op->state = NK_SHM_OP_DONE;
        op->slot = -1;
}
