/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Memory for results: libnifkit copies each result out of the host's
 * region exactly once, into a buffer from here (nk_host_set_result_alloc).
 *
 * Large buffers are kept for reuse once freed, so that a result of a few
 * MiB does not pay for fresh pages on every call: on a virtual machine,
 * faulting in and zeroing a page costs more than copying it, and BEAM's own
 * allocator hands large binaries fresh memory each time. A result that is
 * one binary becomes a binary term over its buffer (a resource binary) with
 * no copy; the buffer comes back here when BEAM's GC drops the term.
 *
 * Buffers are power-of-two sizes from POOL_MIN; smaller results come from
 * enif_alloc, and the smallest (most of them) from a buffer of the calling
 * thread's, free again once decoded. At most POOL_KEEP bytes wait here for
 * reuse.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "proxy.h"

#define POOL_MIN_SHIFT 16
#define POOL_MIN ((size_t) 1 << POOL_MIN_SHIFT)
#define POOL_CLASSES 16                         /* up to 2 GiB */
#define POOL_KEEP ((size_t) 64 << 20)
#define SCRATCH 4096

struct buffer {
        uint8_t *data;
        size_t cap;                             /* 0: enif_alloc'd or a thread's scratch */
        struct buffer *next;                    /* in its class's free list */
        _Atomic bool *busy;                     /* a thread's scratch: in use */
};

/* A thread's buffer for small results. A call that moved to another
 * thread frees it from there, hence the atomic flag; until then its thread
 * takes memory elsewhere. */
static __thread struct {
        struct buffer b;
        _Atomic bool busy;
        uint8_t data[SCRATCH];
} scratch;

static struct {
        pthread_mutex_t lock;
        struct buffer *free[POOL_CLASSES];
        size_t kept;
        ErlNifResourceType *type;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int class_of(size_t n, size_t *ret_cap)
{
        size_t cap = POOL_MIN;
        int c = 0;
        while (cap < n) {
                if (++c == POOL_CLASSES)
                        return -1;
                cap <<= 1;
        }
        *ret_cap = cap;
        return c;
}

static void buffer_put(struct buffer *b)
{
        if (b->busy) {
                atomic_store(b->busy, false);
                return;
        }
        if (b->cap == 0) {
                enif_free(b->data);
                enif_free(b);
                return;
        }
        size_t cap;
        int c = class_of(b->cap, &cap);
        pthread_mutex_lock(&pool.lock);
        if (pool.kept + b->cap <= POOL_KEEP) {
                b->next = pool.free[c];
                pool.free[c] = b;
                pool.kept += b->cap;
                b = NULL;
        }
        pthread_mutex_unlock(&pool.lock);
        if (b) {
                munmap(b->data, b->cap);
                enif_free(b);
        }
}

static uint8_t *pool_alloc(void *arg, size_t n, void **ret_owner)
{
        size_t cap = 0;
        int c = n < POOL_MIN ? -1 : class_of(n, &cap);
        struct buffer *b = NULL;

        if (n <= SCRATCH && !atomic_exchange(&scratch.busy, true)) {
                scratch.b = (struct buffer) { .data = scratch.data, .busy = &scratch.busy };
                *ret_owner = &scratch.b;
                return scratch.data;
        }
        if (c >= 0) {
                pthread_mutex_lock(&pool.lock);
                b = pool.free[c];
                if (b) {
                        pool.free[c] = b->next;
                        pool.kept -= b->cap;
                }
                pthread_mutex_unlock(&pool.lock);
                if (b) {
                        *ret_owner = b;
                        return b->data;
                }
        }
        b = enif_alloc(sizeof *b);
        if (!b)
                return NULL;
        *b = (struct buffer) { .cap = c >= 0 ? cap : 0 };
        if (c >= 0) {
                void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                b->data = p == MAP_FAILED ? NULL : p;
        } else {
                b->data = enif_alloc(n ? n : 1);
        }
        if (!b->data) {
                enif_free(b);
                return NULL;
        }
        *ret_owner = b;
        return b->data;
}

static void pool_release(void *arg, void *owner)
{
        buffer_put(owner);
}

const nk_result_alloc pool_results = { .alloc = pool_alloc, .release = pool_release };

/* What a resource binary holds: the buffer under it. */
struct hold {
        struct buffer *b;
};

static void hold_dtor(ErlNifEnv *env, void *obj)
{
        struct hold *h = obj;
        if (h->b)
                buffer_put(h->b);
}

int pool_init(ErlNifEnv *env)
{
        ErlNifResourceFlags tried;
        pool.type = enif_open_resource_type(env, NULL, "nifkit_result", hold_dtor,
                                            ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, &tried);
        return pool.type ? 0 : -1;
}

bool pool_binary(ErlNifEnv *env, void *owner, const uint8_t *data, size_t len, ERL_NIF_TERM *ret)
{
        /* Only pooled buffers: a binary may live for ever, and a small one
         * is cheaper copied than held. */
        if (((struct buffer *) owner)->cap == 0)
                return false;
        struct hold *h = pool.type ? enif_alloc_resource(pool.type, sizeof *h) : NULL;
        if (!h)
                return false;
        h->b = owner;
        *ret = enif_make_resource_binary(env, h, data, len);
        enif_release_resource(h);
        return true;
}
