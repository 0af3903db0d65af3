/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdpass.h"
#include "host_internal.h"
#include "protocol.h"
#include "server.h"
#include "shm.h"
#include "shm_serve.h"
#include "term.h"

/* How long an idle worker spins for the next request before it sleeps, at
 * most: back-to-back calls find it awake. */
#define REQUEST_SPIN_MAX_NS 50000ull
/* The runtime copies a reply's chunk out and acknowledges it at once. */
#define ACK_SPIN_MAX_NS 200000ull

struct worker {
        struct nk_reply_sink sink;      /* first: the sink is the worker */
        struct nk_shm_slot *slot;
        uint8_t *data;
        uint32_t seen;                  /* the request half's last frame */
        struct nk_shm_spin spin;          /* for every wait on the request half */
};

static struct {
        void *base;
        struct nk_shm_layout layout;
        struct worker *workers;
} region;

int nk_shm_serve_accept(int channel)
{
        uint8_t buf[NK_PROTO_HEADER_SIZE + 16];
        int fd;
        ssize_t n = nk_fdpass_recv(channel, buf, sizeof buf, 0, &fd);
        if (n < 0)
                return (int) n;
        struct nk_msg_header h;
        uint32_t version, nslots;
        uint64_t slot_data;
        memcpy(&h, buf, sizeof h);
        struct nk_rd rd = nk_rd_init(buf + sizeof h, (size_t) n - (n >= (ssize_t) sizeof h ? sizeof h : (size_t) n));
        int r = -EPROTO;
        if (fd >= 0 && n == (ssize_t) sizeof buf && h.payload_len == 16 && region.base == NULL &&
            nk_rd_u32(&rd, &version) && nk_rd_u32(&rd, &nslots) && nk_rd_u64(&rd, &slot_data) &&
            version == NK_SHM_VERSION && nk_shm_layout(nslots, slot_data, &region.layout) >= 0)
                r = nk_shm_map(fd, &region.layout, &region.base);
        if (fd >= 0)
                close(fd);
        return r < 0 ? r : 1;
}

bool nk_shm_serve_active(void)
{
        return region.base != NULL;
}

/* Waits for the runtime's next frame in w's slot. */
static void wait_request(struct worker *w, uint64_t spin_max)
{
        const struct nk_shm_wait wait = { .spin = &w->spin, .spin_max_ns = spin_max };
        (void) nk_shm_wait_seq(&w->slot->req, w->seen, false, &wait);
        w->seen = atomic_load_explicit(&w->slot->req.seq, memory_order_acquire);
}

/* The sink: a reply goes back in chunks, each after the runtime took the
 * one before. The first answers the request's last frame. */
static int slot_send(struct nk_reply_sink *sink, uint32_t type, uint64_t id, const struct iovec *iov, size_t niov)
{
        struct worker *w = (struct worker *) sink;
        struct nk_shm_tx tx;

        nk_shm_tx_init(&tx, type, id, iov, niov, nk_server_sends());
        while (!nk_shm_tx_next(&tx, &w->slot->resp, w->data, region.layout.slot_data, w->seen, &w->spin)) {
                wait_request(w, ACK_SPIN_MAX_NS);
                if (w->slot->req.f.type != NK_SHM_ACK || (w->slot->req.f.flags & NK_SHM_ABORT)) {
                        /* The caller gave up: an ABORT is answered with an
                         * ACK, and the slot is idle again. */
                        nk_shm_ack(&w->slot->resp, w->seen, 0, &w->spin);
                        return -ECANCELED;
                }
        }
        return 0;
}

static bool is_call(uint32_t type)
{
        return type == NK_MSG_CALL;
}

/* The request whose first frame was just seen: 1 with its payload (in
 * place when it came in one chunk, else assembled in rx), 0 when there is
 * nothing to run (an abort or a stray frame, answered already). */
static int take_request(struct worker *w, struct nk_shm_rx *rx, uint64_t *ret_id, const uint8_t **ret_p,
                        size_t *ret_len, uint64_t *ret_aux)
{
        const struct nk_shm_frame f = w->slot->req.f;
        const char *why;

        if (f.type != NK_MSG_CALL || (f.flags & NK_SHM_ABORT)) {
                nk_shm_ack(&w->slot->resp, w->seen, 0, &w->spin);
                return 0;
        }
        if (!(f.flags & NK_SHM_MORE) && f.offset == 0 && f.len == f.total && f.len <= region.layout.slot_data) {
                *ret_id = f.id;
                *ret_p = w->data;
                *ret_len = f.len;
                *ret_aux = f.aux;
                return 1;
        }
        bool failed = false;
        for (;;) {
                uint32_t flags = w->slot->req.f.flags;
                if (flags & NK_SHM_ABORT) {
                        nk_shm_rx_free(rx);
                        nk_shm_ack(&w->slot->resp, w->seen, 0, &w->spin);
                        return 0;
                }
                int r = failed ? 0 : nk_shm_rx_take(rx, &w->slot->req, w->data, region.layout.slot_data, SIZE_MAX,
                                                    is_call, &why);
                if (r == 1)
                        break;
                if (r < 0)
                        failed = true;
                if (failed && !(flags & NK_SHM_MORE)) {
                        /* Taken whole, kept in part: the reply says why. */
                        nk_server_reply_error(&w->sink, f.id, r == -ENOMEM ? NK_PERR_INTERNAL : NK_PERR_REJECTED,
                                              "cannot receive a CALL of %llu bytes: %s",
                                              (unsigned long long) f.total,
                                              r == -ENOMEM ? "out of memory" : "malformed chunks");
                        nk_shm_rx_free(rx);
                        return 0;
                }
                nk_shm_ack(&w->slot->resp, w->seen, 0, &w->spin);
                wait_request(w, ACK_SPIN_MAX_NS);
        }
        *ret_id = rx->id;
        *ret_p = rx->buf;
        *ret_len = rx->total;
        *ret_aux = rx->aux;
        return 1;
}

static void *worker_main(void *arg)
{
        struct worker *w = arg;
        ErlNifEnv env;
        struct nk_buf out = {};

        nk_env_init(&env);
        nk_set_thread_type(ERL_NIF_THR_NORMAL_SCHEDULER);
        for (;;) {
                wait_request(w, REQUEST_SPIN_MAX_NS);
                struct nk_shm_rx rx = {};
                uint64_t id, aux;
                const uint8_t *p;
                size_t len;
                if (take_request(w, &rx, &id, &p, &len, &aux) == 1) {
                        nk_server_wait_releases(aux);
                        nk_server_call(&env, id, p, len, &out, &w->sink);
                }
                nk_shm_rx_free(&rx);
        }
        return NULL;
}

unsigned nk_shm_serve_start(void)
{
        uint32_t n = region.layout.nslots;
        region.workers = calloc(n, sizeof *region.workers);
        if (!region.workers)
                return 0;
        unsigned started = 0;
        for (uint32_t i = 0; i < n; i++) {
                struct worker *w = &region.workers[i];
                *w = (struct worker) {
                        .sink = { .send = slot_send },
                        .slot = nk_shm_slot(region.base, i),
                        .data = nk_shm_data(region.base, &region.layout, i),
                        .seen = atomic_load(&nk_shm_slot(region.base, i)->req.seq),
                };
                pthread_t t;
                if (pthread_create(&t, NULL, worker_main, w) != 0)
                        break;
                pthread_detach(t);
                started++;
        }
        /* A slot without its worker would hold its calls for ever. */
        return started == n ? started : 0;
}
