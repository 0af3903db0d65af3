/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Round-trip cost of a call through libnifkit and nifkit-host over the
 * SOCK_SEQPACKET transport: add/2 of the test NIF, from 1 and from 4
 * threads. Run with `meson test --benchmark`; prints microseconds per call.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nifkit.h"
#include "operator.h"

#define CALLS 20000

/* term_to_binary([20, 22]) */
static const uint8_t args[] = { 131, 107, 0, 2, 20, 22 };

struct worker {
        nk_host *h;
        int index;
        int failures;
};

static void *run(void *arg)
{
        struct worker *w = arg;
        for (int i = 0; i < CALLS; i++) {
                nk_result res;
                nk_error err;
                if (nk_host_call(w->h, (unsigned) w->index, NULL, 0, args, sizeof args, &res, &err) < 0) {
                        w->failures++;
                        continue;
                }
                nk_result_free(&res);
        }
        return NULL;
}

static double now(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

int main(void)
{
        const char *lib = getenv("NK_TEST_NIF_GOOD");
        if (!lib) {
                fprintf(stderr, "NK_TEST_NIF_GOOD is not set: run through meson test --benchmark\n");
                return 1;
        }
        nk_host *h = nk_operator_host_new(NULL);
        nk_error err;
        if (!h || nk_host_set_library(h, lib) < 0 || nk_host_start(h, NULL, 0, &err) < 0) {
                fprintf(stderr, "cannot start the host: %s\n", h ? err.msg : "out of memory");
                return 1;
        }
        int index = nk_host_find_function(h, "add", 2);
        int failures = 0;
        for (int threads = 1; threads <= 4; threads *= 4) {
                struct worker w[4];
                pthread_t t[4];
                double start = now();
                for (int i = 0; i < threads; i++) {
                        w[i] = (struct worker) { .h = h, .index = index };
                        pthread_create(&t[i], NULL, run, &w[i]);
                }
                for (int i = 0; i < threads; i++) {
                        pthread_join(t[i], NULL);
                        failures += w[i].failures;
                }
                double secs = now() - start;
                printf("%d thread(s): %d calls in %.3f s, %.2f us per call, %.0f calls/s\n", threads,
                       CALLS * threads, secs, secs * 1e6 / CALLS, CALLS * threads / secs);
        }
        nk_host_free(h);
        return failures ? 1 : 0;
}
