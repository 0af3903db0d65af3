/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shm.h"

#define PAGE ((uint64_t) 4096)
/* The shortest spin worth making: about what a futex wait and wake-up
 * cost on their own. */
#define SPIN_MIN_NS 2000ull
/* Pure spinning, before each look at the clock also yields the CPU. */
#define YIELD_AFTER_NS 10000ull
/* Spins between two looks at the clock (and at the abort flag). */
#define SPINS_PER_CHECK 16u

int nk_shm_layout(uint32_t nslots, uint64_t slot_data, struct nk_shm_layout *ret)
{
        if (nslots == 0 || nslots > NK_SHM_MAX_SLOTS || slot_data < NK_SHM_SLOT_MIN || slot_data > NK_SHM_SLOT_MAX ||
            slot_data % PAGE != 0)
                return -EINVAL;
        uint64_t ctrl = ((uint64_t) nslots * sizeof(struct nk_shm_slot) + PAGE - 1) / PAGE * PAGE;
        *ret = (struct nk_shm_layout) {
                .nslots = nslots,
                .slot_data = slot_data,
                .data_offset = ctrl,
                .size = ctrl + (uint64_t) nslots * slot_data,
        };
        return 0;
}

int nk_shm_create(const struct nk_shm_layout *l, int *ret_fd, void **ret_base)
{
        int fd = memfd_create("nifkit-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        /* Sealed before anyone else holds it: the host can never shrink
         * the region under the runtime's mapping (which would turn the
         * runtime's next access into SIGBUS) nor grow it. */
        if (ftruncate(fd, (off_t) l->size) < 0 ||
            fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        void *base = mmap(NULL, l->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        *ret_base = base;
        return 0;
}

int nk_shm_map(int fd, const struct nk_shm_layout *l, void **ret_base)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        int seals = fcntl(fd, F_GET_SEALS);
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size != l->size || seals < 0 ||
            (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
                return -EINVAL;
        void *base = mmap(NULL, l->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED)
                return -errno;
        *ret_base = base;
        return 0;
}

void nk_shm_unmap(void *base, const struct nk_shm_layout *l)
{
        if (base)
                munmap(base, l->size);
}

uint64_t nk_shm_now_ns(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (uint64_t) t.tv_sec * 1000000000ull + (uint64_t) t.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield" ::: "memory");
#else
        __asm__ __volatile__("" ::: "memory");
#endif
}

/* Shared, not private, futexes: the word lives in a MAP_SHARED region
 * that two processes map. timeout_ns 0: no limit. */
static void futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t timeout_ns)
{
        struct timespec ts = { .tv_sec = (time_t) (timeout_ns / 1000000000ull),
                               .tv_nsec = (long) (timeout_ns % 1000000000ull) };
        (void) syscall(SYS_futex, word, FUTEX_WAIT, val, timeout_ns ? &ts : NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
        (void) syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void nk_shm_publish(struct nk_shm_half *h, uint32_t seq, const struct nk_shm_spin *since)
{
        h->f.work_ns = since && since->seen_ns ? nk_shm_now_ns() - since->seen_ns : 0;
        atomic_store_explicit(&h->seq, seq, memory_order_release);
        /* Pairs with the fence in nk_shm_wait_seq: either the consumer sees
         * the new seq before it sleeps, or we see that it sleeps. */
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&h->sleeping, memory_order_relaxed))
                futex_wake(&h->seq);
}

void nk_shm_wake(struct nk_shm_half *h)
{
        atomic_fetch_xor_explicit(&h->seq, 0x80000000u, memory_order_seq_cst);
        futex_wake(&h->seq);
}

static inline bool seen(uint32_t v, uint32_t value, bool equal)
{
        return equal ? v == value : v != value;
}

/* The whole ceiling when the other side's work fits in it; when it takes
 * longer, a short spin only: sleeping is cheaper. */
static uint64_t spin_budget(const struct nk_shm_wait *w)
{
        if (!w->spin || w->spin_max_ns == 0)
                return 0;
        const struct nk_shm_spin *s = w->spin;
        uint64_t expect = s->last_ns < s->avg_ns ? s->last_ns : s->avg_ns;
        if (!s->known || expect <= w->spin_max_ns)
                return w->spin_max_ns;
        return SPIN_MIN_NS < w->spin_max_ns ? SPIN_MIN_NS : w->spin_max_ns;
}

/* now: the time the frame was seen, give or take a few spins. */
static void spin_learn(struct nk_shm_spin *s, const struct nk_shm_half *h, uint64_t now)
{
        uint64_t work = __atomic_load_n(&h->f.work_ns, __ATOMIC_RELAXED);
        /* Capped so that one very long pause does not keep spinning off
         * for the next hundred frames. */
        if (work > 10000000ull)
                work = 10000000ull;
        s->last_ns = work;
        s->avg_ns = s->known ? (s->avg_ns * 3 + work) / 4 : work;
        s->known = true;
        s->seen_ns = now;
}

static bool aborted(const struct nk_shm_wait *w)
{
        return w->abort && atomic_load_explicit(w->abort, memory_order_acquire);
}

int nk_shm_wait_seq(struct nk_shm_half *h, uint32_t value, bool equal, const struct nk_shm_wait *w)
{
        if (seen(atomic_load_explicit(&h->seq, memory_order_acquire), value, equal)) {
                if (w->spin)
                        spin_learn(w->spin, h, nk_shm_now_ns());
                return 0;
        }

        uint64_t start = nk_shm_now_ns(), budget = spin_budget(w), t = start;
        if (w->deadline_ns && start >= w->deadline_ns)
                return -ETIMEDOUT;
        for (unsigned i = 1;; i++) {
                cpu_relax();
                if (seen(atomic_load_explicit(&h->seq, memory_order_acquire), value, equal))
                        goto done;
                if (i % SPINS_PER_CHECK != 0)
                        continue;
                t = nk_shm_now_ns();
                if (aborted(w))
                        return -ECONNRESET;
                if (w->deadline_ns && t >= w->deadline_ns)
                        return -ETIMEDOUT;
                if (t - start >= budget)
                        break;
                /* Past the first microseconds, let whatever else is
                 * runnable on this CPU go first: with more waiters than
                 * CPUs, the thread that would publish may be one of them. */
                if (t - start >= YIELD_AFTER_NS)
                        sched_yield();
        }

        for (;;) {
                atomic_store_explicit(&h->sleeping, 1, memory_order_relaxed);
                atomic_thread_fence(memory_order_seq_cst);
                uint32_t v = atomic_load_explicit(&h->seq, memory_order_acquire);
                int r = 1;
                if (seen(v, value, equal))
                        r = 0;
                else if (aborted(w))
                        r = -ECONNRESET;
                else {
                        t = nk_shm_now_ns();
                        if (w->deadline_ns && t >= w->deadline_ns)
                                r = -ETIMEDOUT;
                }
                if (r <= 0) {
                        atomic_store_explicit(&h->sleeping, 0, memory_order_relaxed);
                        if (r < 0)
                                return r;
                        t = nk_shm_now_ns();
                        goto done;
                }
                uint64_t slice = w->slice_ns;
                if (w->deadline_ns && (!slice || w->deadline_ns - t < slice))
                        slice = w->deadline_ns - t;
                futex_wait(&h->seq, v, slice);
        }
done:
        if (w->spin)
                spin_learn(w->spin, h, t);
        return 0;
}

/* ---- messages as chunks ----------------------------------------------- */

void nk_shm_tx_init(struct nk_shm_tx *tx, uint32_t type, uint64_t id, const struct iovec *iov, size_t niov,
                    uint64_t aux)
{
        uint64_t total = 0;
        for (size_t i = 0; i < niov; i++)
                total += iov[i].iov_len;
        *tx = (struct nk_shm_tx) { .iov = iov, .niov = niov, .type = type, .id = id, .aux = aux, .total = total };
}

bool nk_shm_tx_next(struct nk_shm_tx *tx, struct nk_shm_half *h, uint8_t *data, uint64_t slot_data, uint32_t seq,
                    const struct nk_shm_spin *since)
{
        uint64_t len = tx->total - tx->sent < slot_data ? tx->total - tx->sent : slot_data;
        uint64_t put = 0;
        while (put < len) {
                const struct iovec *v = &tx->iov[tx->iov_i];
                size_t take = v->iov_len - tx->iov_off;
                if (take > len - put)
                        take = (size_t) (len - put);
                memcpy(data + put, (const uint8_t *) v->iov_base + tx->iov_off, take);
                put += take;
                tx->iov_off += take;
                if (tx->iov_off == v->iov_len) {
                        tx->iov_i++;
                        tx->iov_off = 0;
                }
        }
        bool last = tx->sent + len == tx->total;
        h->f = (struct nk_shm_frame) {
                .type = tx->type,
                .flags = last ? 0 : NK_SHM_MORE,
                .id = tx->id,
                .total = tx->total,
                .offset = tx->sent,
                .len = len,
                .aux = tx->aux,
        };
        tx->sent += len;
        nk_shm_publish(h, seq, since);
        return last;
}

void nk_shm_ack(struct nk_shm_half *h, uint32_t seq, uint32_t flags, const struct nk_shm_spin *since)
{
        h->f = (struct nk_shm_frame) { .type = NK_SHM_ACK, .flags = flags };
        nk_shm_publish(h, seq, since);
}

int nk_shm_rx_take(struct nk_shm_rx *rx, const struct nk_shm_half *h, const uint8_t *data, uint64_t slot_data,
                   uint64_t max_payload, bool (*want)(uint32_t type), const char **why)
{
        /* One read of each field, into private memory: what is checked is
         * what is used, whatever the other side writes meanwhile. */
        const struct nk_shm_frame f = {
                .type = __atomic_load_n(&h->f.type, __ATOMIC_RELAXED),
                .flags = __atomic_load_n(&h->f.flags, __ATOMIC_RELAXED),
                .id = __atomic_load_n(&h->f.id, __ATOMIC_RELAXED),
                .total = __atomic_load_n(&h->f.total, __ATOMIC_RELAXED),
                .offset = __atomic_load_n(&h->f.offset, __ATOMIC_RELAXED),
                .len = __atomic_load_n(&h->f.len, __ATOMIC_RELAXED),
                .aux = __atomic_load_n(&h->f.aux, __ATOMIC_RELAXED),
        };

        if (!want(f.type)) {
                *why = "a frame of an unexpected type";
                return -EBADMSG;
        }
        if (f.flags & ~NK_SHM_MORE) {
                *why = "a frame with unknown flags";
                return -EBADMSG;
        }
        if (!rx->started) {
                if (f.offset != 0) {
                        *why = "a message whose first chunk does not start at 0";
                        return -EBADMSG;
                }
                *rx = (struct nk_shm_rx) { .alloc = rx->alloc, .type = f.type, .id = f.id, .total = f.total,
                                           .started = true };
                if (f.total > max_payload)
                        return -EMSGSIZE;
                if (f.total > 0) {
                        rx->buf = rx->alloc ? rx->alloc->alloc(rx->alloc->arg, f.total, &rx->owner)
                                            : malloc(f.total);
                        if (!rx->buf)
                                return -ENOMEM;
                }
        } else if (f.type != rx->type || f.id != rx->id || f.total != rx->total) {
                *why = "a chunk of another message than the one it continues";
                return -EBADMSG;
        }
        if (f.offset != rx->have) {
                *why = "a chunk out of order";
                return -EBADMSG;
        }
        if (f.len > slot_data || f.len > rx->total - rx->have) {
                *why = "a chunk longer than its data area or its message";
                return -EBADMSG;
        }
        bool last = rx->have + f.len == rx->total;
        /* Every chunk but the last fills the data area: a message costs
         * at most total / slot_data round trips, never one per byte. */
        if (last != !(f.flags & NK_SHM_MORE) || (!last && f.len != slot_data)) {
                *why = "a chunk whose MORE flag disagrees with its length";
                return -EBADMSG;
        }
        if (f.len > 0)
                memcpy(rx->buf + rx->have, data, f.len);
        rx->have += f.len;
        rx->aux = f.aux;
        return last ? 1 : 0;
}

void nk_shm_rx_free(struct nk_shm_rx *rx)
{
        if (rx->buf && rx->alloc)
                rx->alloc->release(rx->alloc->arg, rx->owner);
        else
                free(rx->buf);
        *rx = (struct nk_shm_rx) { .alloc = rx->alloc };
}
