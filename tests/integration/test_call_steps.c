/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libnifkit's calls in steps (nk_host_call_start / _poll / _cancel), PING,
 * nk_host_kill and the counted release, against nk_test_nif_good.so in a
 * real host (the development launcher, as the other libnifkit tests).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "nifkit.h"
#include "operator.h"

/* ETF: [N] for a small N, and [] */
#define ARGS_INT(n) ((const uint8_t[]) { 131, 108, 0, 0, 0, 1, 97, (uint8_t) (n), 106 })
static const uint8_t no_args[] = { 131, 106 };
static const uint8_t ok_atom[] = { 131, 119, 2, 'o', 'k' };

static nk_host *start_good(unsigned timeout_ms)
{
        const char *lib = getenv("NK_TEST_NIF_GOOD");
        nk_error err = { 0 };
        if (!lib || !*lib)
                fail_msg("NK_TEST_NIF_GOOD is not set: run this test through meson test");
        nk_host *h = nk_operator_host_new(NULL);
        assert_non_null(h);
        assert_int_equal(nk_host_set_library(h, lib), 0);
        if (timeout_ms)
                nk_host_set_call_timeout(h, timeout_ms);
        if (nk_host_start(h, NULL, 0, &err) < 0)
                fail_msg("start: %s", err.msg);
        return h;
}

static int fn(nk_host *h, const char *name, unsigned arity)
{
        int i = nk_host_find_function(h, name, arity);
        assert_true(i >= 0);
        return i;
}

static bool is_ok(const nk_result *res)
{
        /* The host may encode the atom as SMALL_ATOM_UTF8 or ATOM_EXT. */
        return res->exception == 0 && res->len >= 3 &&
               ((res->len == sizeof ok_atom && memcmp(res->etf, ok_atom, sizeof ok_atom) == 0) ||
                (res->len == 6 && res->etf[1] == 100 && memcmp(res->etf + 4, "ok", 2) == 0));
}

static void poll_until_done(void **state)
{
        nk_host *h = start_good(0);
        nk_call *c;
        nk_result res;
        nk_error err = { 0 };

        assert_int_equal(nk_host_call_start(h, (unsigned) fn(h, "sleep", 1), NULL, 0, ARGS_INT(200), 9, &c, &err), 0);
        /* Not yet: the call stays the caller's. */
        assert_int_equal(nk_host_call_poll(c, 0, &res, &err), -EAGAIN);
        assert_int_equal(nk_host_call_poll(c, 20, &res, &err), -EAGAIN);
        assert_int_equal(nk_host_call_poll(c, -1, &res, &err), 0);
        assert_true(is_ok(&res));
        nk_result_free(&res);
        nk_host_free(h);
}

static void cancel_drops_the_reply(void **state)
{
        nk_host *h = start_good(0);
        nk_call *c;
        nk_result res;
        nk_error err = { 0 };

        assert_int_equal(nk_host_call_start(h, (unsigned) fn(h, "sleep", 1), NULL, 0, ARGS_INT(100), 9, &c, &err), 0);
        nk_host_call_cancel(c);
        /* The reply comes to nobody; the host must not be taken for
         * broken because of it. */
        usleep(250 * 1000);
        assert_int_equal(nk_host_call(h, (unsigned) fn(h, "sleep", 1), NULL, 0, ARGS_INT(1), 9, &res, &err), 0);
        assert_true(is_ok(&res));
        nk_result_free(&res);
        assert_int_equal(nk_host_ping(h, 2000, &err), 0);

        /* Cancelled after it finished: freed at once. */
        assert_int_equal(nk_host_call_start(h, (unsigned) fn(h, "sleep", 1), NULL, 0, ARGS_INT(1), 9, &c, &err), 0);
        usleep(100 * 1000);
        nk_host_call_cancel(c);
        /* Cancelled and then the host stopped: freed by the teardown. */
        assert_int_equal(nk_host_call_start(h, (unsigned) fn(h, "sleep", 1), NULL, 0, ARGS_INT(200), 9, &c, &err), 0);
        nk_host_call_cancel(c);
        nk_host_free(h);
}

static void poll_reports_the_call_timeout(void **state)
{
        nk_host *h = start_good(300);
        nk_call *c;
        nk_result res;
        nk_error err = { 0 };
        static const uint8_t long_sleep[] = { 131, 108, 0, 0, 0, 1, 98, 0, 0, 0x0b, 0xb8, 106 };     /* [3000] */

        assert_int_equal(nk_host_call_start(h, (unsigned) fn(h, "sleep", 1), NULL, 0, long_sleep, sizeof long_sleep,
                                            &c, &err), 0);
        assert_int_equal(nk_host_call_poll(c, 50, &res, &err), -EAGAIN);
        assert_int_equal(nk_host_call_poll(c, -1, &res, &err), -ETIMEDOUT);
        assert_int_equal(err.kind, NK_ERR_TIMEOUT);
        assert_string_equal(err.reason, "timeout");
        nk_host_free(h);
}

static void ping_finds_a_stopped_host(void **state)
{
        nk_host *h = start_good(0);
        nk_error err = { 0 };

        assert_int_equal(nk_host_ping(h, 1000, &err), 0);
        assert_int_equal(kill(nk_host_pid(h), SIGSTOP), 0);
        assert_int_equal(nk_host_ping(h, 200, &err), -ETIMEDOUT);
        assert_string_equal(err.reason, "heartbeat");
        /* Dead now, for every later request too. */
        err = (nk_error) { 0 };
        assert_true(nk_host_ping(h, 200, &err) < 0);
        assert_string_equal(err.reason, "heartbeat");
        nk_host_free(h);
}

static void kill_names_the_reason(void **state)
{
        nk_host *h = start_good(0);
        nk_result res;
        nk_error err = { 0 };

        assert_int_equal(nk_host_kill(h, "atom_budget", "too many atoms"), 0);
        assert_true(nk_host_call(h, (unsigned) fn(h, "destructed", 0), NULL, 0, no_args, sizeof no_args, &res,
                                 &err) < 0);
        assert_string_equal(err.reason, "atom_budget");
        assert_non_null(strstr(err.msg, "too many atoms"));
        assert_int_equal(nk_host_kill(h, "again", NULL), -ENOTCONN);
        nk_host_free(h);
}

/* The destructor count the NIF reports: [] → small integer. */
static int destructed(nk_host *h)
{
        nk_result res;
        nk_error err = { 0 };
        assert_int_equal(nk_host_call(h, (unsigned) fn(h, "destructed", 0), NULL, 0, no_args, sizeof no_args, &res,
                                      &err), 0);
        assert_int_equal(res.etf[1], 97);
        int n = res.etf[2];
        nk_result_free(&res);
        return n;
}

static void counted_release(void **state)
{
        nk_host *h = start_good(0);
        nk_result res, again;
        nk_error err = { 0 };

        assert_int_equal(nk_host_call(h, (unsigned) fn(h, "make_resource", 1), NULL, 0, ARGS_INT(5), 9, &res, &err), 0);
        /* NEWER_REFERENCE_EXT of 'nifkit_resource@nohost': ids at the end;
         * the host does not say the result is free of handles. */
        assert_int_equal(res.etf[1], 90);
        assert_false(res.no_handles);
        const uint8_t *ids = res.etf + res.len - 12;
        uint64_t handle = (uint64_t) ids[0] << 24 | (uint64_t) ids[1] << 16 | (uint64_t) ids[2] << 8 | ids[3] |
                          ((uint64_t) ids[4] << 24 | (uint64_t) ids[5] << 16 | (uint64_t) ids[6] << 8 | ids[7]) << 32;
        /* Send it back through echo: a second copy comes out. */
        size_t n = res.len - 1;
        uint8_t *args = malloc(n + 7);
        assert_non_null(args);
        memcpy(args, (const uint8_t[]) { 131, 108, 0, 0, 0, 1 }, 6);
        memcpy(args + 6, res.etf + 1, n);
        args[6 + n] = 106;
        assert_int_equal(nk_host_call(h, (unsigned) fn(h, "echo", 1), NULL, 0, args, n + 7, &again, &err), 0);
        assert_int_equal(again.len, res.len);
        free(args);
        nk_result_free(&again);
        nk_result_free(&res);

        int before = destructed(h);
        /* A plain result is said to hold none, so the proxy skips its search. */
        assert_int_equal(nk_host_call(h, (unsigned) fn(h, "destructed", 0), NULL, 0, no_args, sizeof no_args, &res,
                                      &err), 0);
        assert_true(res.no_handles);
        nk_result_free(&res);
        assert_int_equal(nk_host_release_resource_counted(h, handle, 1), 0);
        assert_int_equal(destructed(h), before);        /* one copy still out */
        assert_int_equal(nk_host_release_resource_counted(h, handle, 1), 0);
        /* RELEASE has no reply: a later request sees its effect. */
        assert_int_equal(destructed(h), before + 1);
        assert_int_equal(nk_host_release_resource_counted(h, handle, 0), -EINVAL);
        nk_host_free(h);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(poll_until_done),
                cmocka_unit_test(cancel_drops_the_reply),
                cmocka_unit_test(poll_reports_the_call_timeout),
                cmocka_unit_test(ping_finds_a_stopped_host),
                cmocka_unit_test(kill_names_the_reason),
                cmocka_unit_test(counted_release),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
