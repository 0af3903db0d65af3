/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libnifkit's supervision (runtime/supervise.c): which errors are deaths,
 * the restart intensity's window, the heartbeat's back-off, and its thread
 * following what acquire gives it. The proxy's tests (tests/compat:
 * proxy-restarts, proxy-heartbeat*) drive the same code with real hosts.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "nifkit.h"
#include "supervise.h"

static void test_is_death(void **state)
{
        nk_error e = { 0 };
        assert_false(nk_error_is_death(&e));            /* no reason: a refused call */
        static const char *const deaths[] = { "crashed", "oom", "timeout", "heartbeat", "seccomp", "protocol" };
        for (size_t i = 0; i < sizeof deaths / sizeof deaths[0]; i++) {
                snprintf(e.reason, sizeof e.reason, "%s", deaths[i]);
                assert_true(nk_error_is_death(&e));
        }
        snprintf(e.reason, sizeof e.reason, "stopped");
        assert_false(nk_error_is_death(&e));
        snprintf(e.reason, sizeof e.reason, "args_too_large");
        assert_false(nk_error_is_death(&e));
}

static void test_intensity(void **state)
{
        /* 3 within 10 s: the fourth in the window is refused, and allowed
         * again once the first has left it. */
        nk_restart_intensity *ri = nk_restart_intensity_new(3, 10);
        assert_non_null(ri);
        assert_true(nk_restart_intensity_allow_at(ri, 100));
        assert_true(nk_restart_intensity_allow_at(ri, 101));
        assert_true(nk_restart_intensity_allow_at(ri, 105));
        assert_false(nk_restart_intensity_allow_at(ri, 109));
        assert_true(nk_restart_intensity_allow_at(ri, 110));    /* 100 is 10 s old: out */
        assert_false(nk_restart_intensity_allow_at(ri, 110));
        nk_restart_intensity_reset(ri);
        assert_true(nk_restart_intensity_allow_at(ri, 110));
        nk_restart_intensity_free(ri);

        ri = nk_restart_intensity_new(0, 10);
        assert_false(nk_restart_intensity_allow_at(ri, 1));
        assert_false(nk_restart_intensity_allow(ri));
        nk_restart_intensity_free(ri);
        /* More than can be remembered is the most that can. */
        ri = nk_restart_intensity_new(1u << 30, 1);
        assert_non_null(ri);
        assert_true(nk_restart_intensity_allow(ri));
        nk_restart_intensity_free(ri);
}

static void test_backoff(void **state)
{
        unsigned i = 2000;
        i = nk_heartbeat_next_interval(i, false, 2000, 64000);
        assert_int_equal(i, 4000);
        for (int k = 0; k < 10; k++)
                i = nk_heartbeat_next_interval(i, false, 2000, 64000);
        assert_int_equal(i, 64000);
        assert_int_equal(nk_heartbeat_next_interval(i, true, 2000, 64000), 2000);
        assert_int_equal(nk_heartbeat_next_interval(3000, false, 2000, 5000), 5000);
}

/* A heartbeat over no host: acquire is asked at every beat. */
static pthread_mutex_t beat_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t beat_cond = PTHREAD_COND_INITIALIZER;
static unsigned beats;

static nk_host *count_acquire(void *arg, void **ret_token, bool *ret_busy)
{
        pthread_mutex_lock(&beat_lock);
        beats++;
        pthread_cond_broadcast(&beat_cond);
        pthread_mutex_unlock(&beat_lock);
        *ret_token = arg;
        return NULL;
}

static void never_release(void *arg, void *token)
{
        fail_msg("release without a host");
}

static void never_died(void *arg, void *token, const nk_error *why)
{
        fail_msg("died without a host");
}

static void test_heartbeat_thread(void **state)
{
        const struct nk_heartbeat_ops ops = { .acquire = count_acquire, .release = never_release,
                                              .died = never_died };
        nk_heartbeat *hb = NULL;
        const struct nk_heartbeat_ops bad = { .acquire = count_acquire };
        assert_int_equal(nk_heartbeat_start(&bad, NULL, 1, 1, 0, &hb), -EINVAL);
        assert_int_equal(nk_heartbeat_start(&ops, NULL, 0, 1, 0, &hb), -EINVAL);

        assert_int_equal(nk_heartbeat_start(&ops, NULL, 1, 4, 0, &hb), 0);
        struct timespec limit;
        clock_gettime(CLOCK_REALTIME, &limit);
        limit.tv_sec += 30;     /* a bound for a hang, not a measurement */
        pthread_mutex_lock(&beat_lock);
        while (beats < 5) {
                nk_heartbeat_used(hb);  /* back to 1 ms after each back-off */
                assert_int_not_equal(pthread_cond_timedwait(&beat_cond, &beat_lock, &limit), ETIMEDOUT);
        }
        pthread_mutex_unlock(&beat_lock);
        nk_heartbeat_stop(hb);
        pthread_mutex_lock(&beat_lock);
        unsigned after = beats;
        pthread_mutex_unlock(&beat_lock);
        struct timespec pause = { .tv_nsec = 20 * 1000000L };
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&beat_lock);
        assert_int_equal(beats, after);         /* stopped means no more beats */
        pthread_mutex_unlock(&beat_lock);
        nk_heartbeat_used(NULL);
        nk_heartbeat_stop(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_is_death),
                cmocka_unit_test(test_intensity),
                cmocka_unit_test(test_backoff),
                cmocka_unit_test(test_heartbeat_thread),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
