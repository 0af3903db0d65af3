/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Supervision (nifkit.h): the restart intensity and the heartbeat, for
 * every program that keeps a library's host alive, not only the proxy.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"
#include "macro.h"
#include "nifkit.h"
#include "supervise.h"

NK_EXPORT bool nk_error_is_death(const nk_error *err)
{
        return err->reason[0] != '\0' && strcmp(err->reason, "stopped") != 0 &&
               strcmp(err->reason, "args_too_large") != 0;
}

/* ---- restart intensity ----------------------------------------------------- */

/* Restarts remembered: a policy may allow more, but not usefully. */
#define MAX_RESTARTS_TRACKED 1024

struct nk_restart_intensity {
        unsigned max, period_s;
        unsigned n;
        time_t when[];          /* the recent restarts, oldest first */
};

NK_EXPORT nk_restart_intensity *nk_restart_intensity_new(unsigned max_restarts, unsigned period_s)
{
        unsigned max = max_restarts > MAX_RESTARTS_TRACKED ? MAX_RESTARTS_TRACKED : max_restarts;
        nk_restart_intensity *ri = calloc(1, sizeof *ri + max * sizeof ri->when[0]);
        if (ri)
                *ri = (nk_restart_intensity) { .max = max, .period_s = period_s };
        return ri;
}

bool nk_restart_intensity_allow_at(nk_restart_intensity *ri, time_t now)
{
        time_t since = now - (time_t) ri->period_s;
        unsigned kept = 0;

        for (unsigned i = 0; i < ri->n; i++)
                if (ri->when[i] > since)
                        ri->when[kept++] = ri->when[i];
        ri->n = kept;
        if (kept >= ri->max)
                return false;
        ri->when[ri->n++] = now;
        return true;
}

NK_EXPORT bool nk_restart_intensity_allow(nk_restart_intensity *ri)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return nk_restart_intensity_allow_at(ri, t.tv_sec);
}

NK_EXPORT void nk_restart_intensity_reset(nk_restart_intensity *ri)
{
        ri->n = 0;
}

NK_EXPORT void nk_restart_intensity_free(nk_restart_intensity *ri)
{
        free(ri);
}

/* ---- the heartbeat ------------------------------------------------------------ */

struct nk_heartbeat {
        struct nk_heartbeat_ops ops;
        void *arg;
        unsigned interval_ms, idle_max_ms, timeout_ms;
        pthread_t thread;
        pthread_mutex_t lock;           /* stopping, poked, and backing_off's writes */
        pthread_cond_t wake;
        bool stopping;
        bool poked;                     /* a call came while backing off */
        _Atomic bool backing_off;       /* the interval is above interval_ms */
        _Atomic bool used;              /* a call came since the last beat */
};

unsigned nk_heartbeat_next_interval(unsigned interval, bool used, unsigned interval_ms, unsigned idle_max_ms)
{
        if (used)
                return interval_ms;
        return interval > idle_max_ms / 2 ? idle_max_ms : interval * 2;
}

static void *beat_main(void *arg)
{
        nk_heartbeat *hb = arg;
        unsigned interval = hb->interval_ms;
        struct timespec deadline = nk_deadline_in(interval);

        pthread_setname_np(pthread_self(), "nk-heartbeat");
        pthread_mutex_lock(&hb->lock);
        while (!hb->stopping) {
                if (hb->poked) {
                        hb->poked = false;
                        interval = hb->interval_ms;
                        deadline = nk_deadline_in(interval);
                }
                int r = pthread_cond_timedwait(&hb->wake, &hb->lock, &deadline);
                if (hb->stopping || r != ETIMEDOUT)
                        continue;
                pthread_mutex_unlock(&hb->lock);

                void *token = NULL;
                bool busy = false;
                nk_host *h = hb->ops.acquire(hb->arg, &token, &busy);

                pthread_mutex_lock(&hb->lock);
                bool used = atomic_exchange(&hb->used, false) || busy;
                interval = nk_heartbeat_next_interval(interval, used, hb->interval_ms, hb->idle_max_ms);
                atomic_store(&hb->backing_off, interval > hb->interval_ms);
                deadline = nk_deadline_in(interval);
                pthread_mutex_unlock(&hb->lock);

                if (h) {
                        nk_error err = { 0 };
                        /* A dead host answers at once with why; a hung one
                         * is killed with reason heartbeat. */
                        if (nk_host_ping(h, hb->timeout_ms, &err) < 0 && nk_error_is_death(&err))
                                hb->ops.died(hb->arg, token, &err);
                        hb->ops.release(hb->arg, token);
                }
                pthread_mutex_lock(&hb->lock);
        }
        pthread_mutex_unlock(&hb->lock);
        return NULL;
}

NK_EXPORT int nk_heartbeat_start(const struct nk_heartbeat_ops *ops, void *arg, unsigned interval_ms,
                                 unsigned idle_max_ms, unsigned timeout_ms, nk_heartbeat **ret)
{
        if (!ops || !ops->acquire || !ops->release || !ops->died || interval_ms == 0)
                return -EINVAL;
        nk_heartbeat *hb = calloc(1, sizeof *hb);
        if (!hb)
                return -ENOMEM;
        *hb = (nk_heartbeat) {
                .ops = *ops, .arg = arg, .interval_ms = interval_ms,
                .idle_max_ms = idle_max_ms > interval_ms ? idle_max_ms : interval_ms, .timeout_ms = timeout_ms,
                .lock = PTHREAD_MUTEX_INITIALIZER,
        };
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&hb->wake, &ca);
        pthread_condattr_destroy(&ca);
        int r = -pthread_create(&hb->thread, NULL, beat_main, hb);
        if (r < 0) {
                pthread_cond_destroy(&hb->wake);
                free(hb);
                return r;
        }
        *ret = hb;
        return 0;
}

NK_EXPORT void nk_heartbeat_used(nk_heartbeat *hb)
{
        if (!hb)
                return;
        atomic_store_explicit(&hb->used, true, memory_order_relaxed);
        if (!atomic_load_explicit(&hb->backing_off, memory_order_relaxed))
                return;
        pthread_mutex_lock(&hb->lock);
        if (atomic_load(&hb->backing_off)) {
                atomic_store(&hb->backing_off, false);
                hb->poked = true;
                pthread_cond_signal(&hb->wake);
        }
        pthread_mutex_unlock(&hb->lock);
}

NK_EXPORT void nk_heartbeat_stop(nk_heartbeat *hb)
{
        if (!hb)
                return;
        pthread_mutex_lock(&hb->lock);
        hb->stopping = true;
        pthread_cond_broadcast(&hb->wake);
        pthread_mutex_unlock(&hb->lock);
        pthread_join(hb->thread, NULL);
        pthread_cond_destroy(&hb->wake);
        free(hb);
}
