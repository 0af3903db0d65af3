/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shared-memory call channel between libnifkit and nifkit-host.
 *
 * One region per host: a memfd that the runtime creates, sizes and seals
 * against shrinking and growing, and passes to the host once, with the
 * SHM_REGION message on the control socket (protocol.h). Both map it
 * MAP_SHARED. It holds nslots slots; one host worker thread serves each
 * slot, and each slot carries one call at a time:
 *
 *     [ slot 0 control | slot 1 control | … ]  [ slot 0 data ][ slot 1 data ] …
 *
 * A slot's control block has two halves of one cache line each: the request
 * half, which the runtime publishes and the host consumes, and the response
 * half, the other way round. A call is a strict alternation of frames: the
 * runtime publishes a frame in the request half (its sequence number goes
 * up by one), the host answers with a frame in the response half carrying
 * the same sequence number, and so on. A frame is a chunk of one message of
 * protocol.h (CALL one way; RESULT or ERROR the other), with that message's
 * type, id and whole payload length; the chunk itself is in the slot's data
 * area, which the two directions share because they never overlap in time.
 * A message longer than the data area goes in several chunks, each but the
 * last flagged NK_SHM_MORE and answered by an ACK frame from the receiver.
 *
 * Waiting: a bounded spin on the sequence word (with the CPU's pause
 * instruction), then a futex wait on it. The consumer says it is about to
 * sleep in the half's `sleeping` word; the publisher makes the FUTEX_WAKE
 * system call only when it sees that, so back-to-back calls make none. The
 * runtime's futex waits never last longer than NK_SHM_SLICE_NS at a time:
 * a wake-up that a host forgets (or withholds) costs at most that.
 *
 * Trust (DESIGN.md): the runtime never decodes bytes the host can still
 * change. nk_shm_rx_take copies a frame's header out of the region once,
 * checks it against what the receiver expects and against the region's
 * bounds, and copies the chunk into private memory; only that copy is ever
 * parsed. A frame that breaks the rules is a protocol violation of that
 * host. The host trusts the runtime and reads requests in place.
 */
#ifndef NIFKIT_SHM_H
#define NIFKIT_SHM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* The region's layout version, carried by SHM_REGION. */
#define NK_SHM_VERSION 1
#define NK_SHM_MAX_SLOTS 256
/* Bounds of one slot's data area (the policy's shm_slot_kb). */
#define NK_SHM_SLOT_MIN ((uint64_t) 4096)
#define NK_SHM_SLOT_MAX ((uint64_t) 64 << 20)
/* Longest single futex wait. */
#define NK_SHM_SLICE_NS (50 * 1000000ull)

/* Frame flags. */
#define NK_SHM_MORE 1u          /* more chunks of this message follow */
#define NK_SHM_ABORT 2u         /* ACK only: drop the rest of the message */
/* Frame type of an acknowledgement; messages use protocol.h's types. */
#define NK_SHM_ACK 0x100u

/* A frame's header: written before the half's seq is published, read
 * after it is seen. */
struct nk_shm_frame {
        uint32_t type;
        uint32_t flags;
        uint64_t id;
        uint64_t total;                 /* the message's whole payload length */
        uint64_t offset;                /* where this chunk starts in it */
        uint64_t len;                   /* this chunk's length in the data area */
        uint64_t aux;                   /* RESULT and ERROR: the host's SEND count */
        uint64_t work_ns;               /* how long its publisher took since it saw the other side's last frame */
};

struct nk_shm_spin;

/* One direction of a slot. */
struct nk_shm_half {
        _Atomic uint32_t seq;           /* written by this half's publisher */
        _Atomic uint32_t sleeping;      /* written by its consumer: 1 while it may sleep */
        struct nk_shm_frame f;
} __attribute__((aligned(64)));

struct nk_shm_slot {
        struct nk_shm_half req;         /* runtime → host */
        struct nk_shm_half resp;        /* host → runtime */
};
_Static_assert(sizeof(struct nk_shm_slot) == 128, "two cache lines per slot");

/* Where everything lies in a region of nslots slots of slot_data bytes. */
struct nk_shm_layout {
        uint32_t nslots;
        uint64_t slot_data;             /* a multiple of the page size */
        uint64_t data_offset;           /* the control blocks, rounded to a page */
        uint64_t size;                  /* the whole region */
};

/* Checks the numbers and computes the layout: 0 or -EINVAL. */
int nk_shm_layout(uint32_t nslots, uint64_t slot_data, struct nk_shm_layout *ret);

static inline struct nk_shm_slot *nk_shm_slot(void *base, uint32_t i)
{
        return (struct nk_shm_slot *) base + i;
}

static inline uint8_t *nk_shm_data(void *base, const struct nk_shm_layout *l, uint32_t i)
{
        return (uint8_t *) base + l->data_offset + (uint64_t) i * l->slot_data;
}

/* The runtime's side: a new sealed memfd of l->size bytes, mapped. The fd
 * is close-on-exec; the caller passes it on and closes it. 0 or -errno. */
int nk_shm_create(const struct nk_shm_layout *l, int *ret_fd, void **ret_base);
/* The host's side: checks that fd is a memfd sealed against shrinking and
 * growing and l->size bytes long, and maps it. 0, -EINVAL, or -errno. */
int nk_shm_map(int fd, const struct nk_shm_layout *l, void **ret_base);
void nk_shm_unmap(void *base, const struct nk_shm_layout *l);

uint64_t nk_shm_now_ns(void);

/*
 * Makes the frame already written into h visible with sequence number seq,
 * and wakes its consumer if it said it may be asleep. since: the spin state
 * of this side's waits (its seen_ns dates the frame's work), or NULL.
 */
void nk_shm_publish(struct nk_shm_half *h, uint32_t seq, const struct nk_shm_spin *since);

/*
 * How long to spin before sleeping, adapted to how soon frames come. Each
 * frame says how long its publisher worked on it: the time from when it
 * saw the other side's last frame to when it published this one. That,
 * not the time the waiter waited, is what is learnt: a waiter that slept
 * (and woke the other side late) would otherwise learn that frames come
 * late, and the two sides would settle into putting each other to sleep.
 * A waiter spins the whole ceiling when the other side's recent work (the
 * smaller of the last and a moving average: a burst brings spinning back
 * at once, one pause does not stop it) fits in it, and only briefly when
 * it does not. The host's figure is not trusted for anything but this: a
 * lying host makes its callers spin at most spin_max_ns per wait.
 */
struct nk_shm_spin {
        uint64_t avg_ns;                /* moving average of the other side's work */
        uint64_t last_ns;
        bool known;
        uint64_t seen_ns;               /* when this side last saw a frame (0: never) */
};

struct nk_shm_wait {
        uint64_t deadline_ns;           /* nk_shm_now_ns() clock; 0: none */
        const _Atomic bool *abort;      /* stop waiting when it becomes true; may be NULL */
        struct nk_shm_spin *spin;       /* NULL: no spinning */
        uint64_t spin_max_ns;           /* the adaptive spin's ceiling */
        /* Longest single futex wait, against a publisher that withholds its
         * wake-up (the runtime waiting for a host: NK_SHM_SLICE_NS); 0 for
         * none, where the publisher is trusted (a host waiting for its
         * runtime), so that an idle waiter never wakes. */
        uint64_t slice_ns;
};

/*
 * Waits until h->seq == value (equal) or h->seq != value (!equal), spinning
 * first, then sleeping on the futex. Returns 0, -ETIMEDOUT at the deadline,
 * or -ECONNRESET once *abort is true (checked before every sleep and every
 * few hundred spins).
 */
int nk_shm_wait_seq(struct nk_shm_half *h, uint32_t value, bool equal, const struct nk_shm_wait *w);

/* Wakes whoever sleeps on h without publishing anything: after poisoning
 * seq so that a sleeper cannot miss the change. */
void nk_shm_wake(struct nk_shm_half *h);

/* ---- messages as chunks ----------------------------------------------- */

/* One outgoing message: the payload is the concatenation of iov. */
struct nk_shm_tx {
        const struct iovec *iov;
        size_t niov;
        uint32_t type;
        uint64_t id;
        uint64_t aux;
        uint64_t total;
        uint64_t sent;                  /* payload bytes already in earlier chunks */
        size_t iov_i, iov_off;          /* where the next chunk starts in iov */
};

/* Sets tx up for the message; total is the sum of the iov lengths. */
void nk_shm_tx_init(struct nk_shm_tx *tx, uint32_t type, uint64_t id, const struct iovec *iov, size_t niov,
                    uint64_t aux);
/* Writes the next chunk (up to slot_data bytes) into h and data and
 * publishes it as seq (since as for nk_shm_publish). Returns true when it
 * was the last. */
bool nk_shm_tx_next(struct nk_shm_tx *tx, struct nk_shm_half *h, uint8_t *data, uint64_t slot_data,
                    uint32_t seq, const struct nk_shm_spin *since);

/* Publishes an ACK (flags 0 or NK_SHM_ABORT) as seq. */
void nk_shm_ack(struct nk_shm_half *h, uint32_t seq, uint32_t flags, const struct nk_shm_spin *since);

/* Where an incoming message's bytes go, instead of malloc. */
struct nk_shm_alloc {
        uint8_t *(*alloc)(void *arg, size_t n, void **ret_owner);
        void (*release)(void *arg, void *owner);
        void *arg;
};

/* One incoming message, assembled in private memory. */
struct nk_shm_rx {
        const struct nk_shm_alloc *alloc;       /* set before the first chunk; NULL: malloc */
        uint32_t type;
        uint64_t id;
        uint64_t total;
        uint64_t have;                  /* bytes received so far */
        uint64_t aux;                   /* the last chunk's */
        uint8_t *buf;                   /* total bytes (NULL when total is 0) */
        void *owner;                    /* alloc's handle for buf */
        bool started;
};

/*
 * Takes the frame just seen in h (its data in data, slot_data bytes): the
 * header is copied out of the region exactly once and checked — a known
 * message type (want(type) true), the same type, id and total as earlier
 * chunks of the message, total at most max_payload, offset equal to what
 * has arrived, the chunk inside the data area and the message, MORE set
 * exactly when bytes are missing — then the chunk is copied into rx->buf.
 * Returns 1 when the message is complete, 0 when more chunks follow (the
 * caller ACKs), -EMSGSIZE (total above max_payload; rx->type, id and total
 * say what), -EBADMSG (*why says what is wrong), -ENOMEM. Pure but for the
 * copy: the fuzzer drives it with arbitrary regions.
 */
int nk_shm_rx_take(struct nk_shm_rx *rx, const struct nk_shm_half *h, const uint8_t *data, uint64_t slot_data,
                   uint64_t max_payload, bool (*want)(uint32_t type), const char **why);
void nk_shm_rx_free(struct nk_shm_rx *rx);

#endif
