/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libnifkit against a real nifkit-host and small test NIF libraries.
 * Binaries come from the environment (set by meson): NIFKIT_HOST and
 * NK_TEST_NIF_{GOOD,CRASH,LOADFAIL,NOINIT,NOTELF}, NK_TEST_FAKE_HOST.
 * Terms are built and read with libei.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <ei.h>
#include <erl_nif.h>

#include "nifkit.h"
#include "operator.h"
#include "nifkit_policy.h"

static const char *need_env(const char *name)
{
        const char *v = getenv(name);
        if (!v || !*v)
                fail_msg("%s is not set: run this test through meson test", name);
        return v;
}

/* The sandboxing launcher this run uses (NIFKIT_POLICY names it), or NULL
 * for the development launcher. A sandboxing launcher reads the library's
 * ELF headers before it starts anything, and clears the host's environment
 * (where the fake host takes its mode from). */
static const char *test_launcher(void)
{
        const char *v = getenv("NIFKIT_TEST_LAUNCHER");
        return v && *v ? v : NULL;
}

/* ---- terms -------------------------------------------------------------- */

/* Prints ETF as Erlang text; the caller frees. */
static char *show(const uint8_t *etf, size_t len)
{
        int index = 0, version;
        char *s = NULL;
        assert_true(len > 0);
        assert_int_equal(ei_decode_version((const char *) etf, &index, &version), 0);
        if (ei_s_print_term(&s, (const char *) etf, &index) < 0)
                fail_msg("ei cannot print the term");
        assert_int_equal((size_t) index, len);
        return s;
}

static void assert_term(const nk_result *res, int exception, const char *text)
{
        char *s = show(res->etf, res->len);
        if (res->exception != exception || strcmp(s, text) != 0)
                fail_msg("expected %s %s, got %s %s", exception ? "exception" : "result", text,
                         res->exception ? "exception" : "result", s);
        free(s);
}

static void args_begin(ei_x_buff *x, int n)
{
        assert_int_equal(ei_x_new_with_version(x), 0);
        if (n > 0)
                assert_int_equal(ei_x_encode_list_header(x, n), 0);
}

static void args_end(ei_x_buff *x)
{
        assert_int_equal(ei_x_encode_empty_list(x), 0);
}

static erlang_pid test_pid(unsigned num)
{
        erlang_pid p = { .num = num, .serial = 2, .creation = 1234 };
        strcpy(p.node, "nifkit_test@localhost");
        return p;
}

/* ---- hosts ---------------------------------------------------------------- */

static nk_host *start_lib(const char *env_name, const uint8_t *load_info, size_t len)
{
        nk_host *h = nk_operator_host_new(NULL);
        assert_non_null(h);
        assert_int_equal(nk_host_set_library(h, need_env(env_name)), 0);
        nk_error err = {};
        int r = nk_host_start(h, load_info, len, &err);
        if (r < 0)
                fail_msg("start %s: %s (%s)", env_name, err.msg, nk_error_kind_name(err.kind));
        return h;
}

static int fn(nk_host *h, const char *name, unsigned arity)
{
        int i = nk_host_find_function(h, name, arity);
        if (i < 0)
                fail_msg("no function %s/%u", name, arity);
        return i;
}

/* Calls name/arity with x's args (freed here); r is the return value. */
static int call(nk_host *h, const char *name, unsigned arity, ei_x_buff *x, nk_result *res, nk_error *err)
{
        int r = nk_host_call(h, (unsigned) fn(h, name, arity), NULL, 0, (const uint8_t *) x->buff,
                             (size_t) x->index, res, err);
        ei_x_free(x);
        return r;
}

static void call_ok(nk_host *h, const char *name, unsigned arity, ei_x_buff *x, int exception, const char *text)
{
        nk_result res;
        nk_error err = {};
        if (call(h, name, arity, x, &res, &err) < 0)
                fail_msg("%s/%u: %s (%s)", name, arity, err.msg, nk_error_kind_name(err.kind));
        assert_term(&res, exception, text);
        nk_result_free(&res);
}

static void call0_ok(nk_host *h, const char *name, int exception, const char *text)
{
        ei_x_buff x;
        args_begin(&x, 0);
        args_end(&x);
        call_ok(h, name, 0, &x, exception, text);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_discovery(void **state)
{
        nk_host *h = start_lib("NK_TEST_NIF_GOOD", NULL, 0);
        assert_string_equal(nk_host_module(h), "nk_test_good");
        assert_int_equal(nk_host_function_count(h), 15);
        const nk_function *f = nk_host_function(h, 0);
        assert_string_equal(f->name, "add");
        assert_int_equal(f->arity, 2);
        assert_int_equal(f->flags, 0);
        f = nk_host_function(h, (unsigned) fn(h, "sleep", 1));
        assert_int_equal(f->flags, ERL_NIF_DIRTY_JOB_IO_BOUND);
        f = nk_host_function(h, (unsigned) fn(h, "thread_type_cpu", 0));
        assert_int_equal(f->flags, ERL_NIF_DIRTY_JOB_CPU_BOUND);
        assert_null(nk_host_function(h, 15));
        assert_int_equal(nk_host_find_function(h, "add", 3), -ENOENT);
        assert_true(nk_host_pid(h) > 0);
        nk_host_free(h);
}

static void test_results_round_trip(void **state)
{
        nk_host *h = start_lib("NK_TEST_NIF_GOOD", NULL, 0);
        ei_x_buff x;

        args_begin(&x, 2);
        ei_x_encode_long(&x, 40);
        ei_x_encode_long(&x, 2);
        args_end(&x);
        call_ok(h, "add", 2, &x, 0, "42");

        /* Beyond 64 bits on the way back: add goes through int64. */
        args_begin(&x, 2);
        ei_x_encode_long(&x, 1L << 40);
        ei_x_encode_long(&x, -(1L << 41));
        args_end(&x);
        call_ok(h, "add", 2, &x, 0, "-1099511627776");

        args_begin(&x, 1);
        ei_x_encode_tuple_header(&x, 5);
        ei_x_encode_atom(&x, "hello");
        ei_x_encode_binary(&x, "bytes\0here", 10);
        ei_x_encode_double(&x, 1.5);
        ei_x_encode_list_header(&x, 2);
        ei_x_encode_long(&x, -7);
        ei_x_encode_string(&x, "abc");
        ei_x_encode_empty_list(&x);
        ei_x_encode_map_header(&x, 1);
        ei_x_encode_atom(&x, "k");
        ei_x_encode_long(&x, 100000000000L);
        args_end(&x);
        char *want;
        {
                ei_x_buff y;
                args_begin(&y, 0);
                ei_x_encode_tuple_header(&y, 5);
                ei_x_encode_atom(&y, "hello");
                ei_x_encode_binary(&y, "bytes\0here", 10);
                ei_x_encode_double(&y, 1.5);
                ei_x_encode_list_header(&y, 2);
                ei_x_encode_long(&y, -7);
                ei_x_encode_string(&y, "abc");
                ei_x_encode_empty_list(&y);
                ei_x_encode_map_header(&y, 1);
                ei_x_encode_atom(&y, "k");
                ei_x_encode_long(&y, 100000000000L);
                want = show((const uint8_t *) y.buff, (size_t) y.index);
                ei_x_free(&y);
        }
        call_ok(h, "echo", 1, &x, 0, want);
        free(want);

        /* A large binary crosses in many datagrams both ways. */
        size_t big = 3u << 20;
        char *blob = malloc(big);
        for (size_t i = 0; i < big; i++)
                blob[i] = (char) (i * 7);
        args_begin(&x, 1);
        ei_x_encode_binary(&x, blob, (long) big);
        args_end(&x);
        nk_result res;
        nk_error err;
        assert_int_equal(call(h, "echo", 1, &x, &res, &err), 0);
        int index = 0, version, type, size;
        long got;
        assert_int_equal(ei_decode_version((char *) res.etf, &index, &version), 0);
        assert_int_equal(ei_get_type((char *) res.etf, &index, &type, &size), 0);
        assert_int_equal(size, (int) big);
        char *back = malloc(big);
        assert_int_equal(ei_decode_binary((char *) res.etf, &index, back, &got), 0);
        assert_int_equal(got, (long) big);
        assert_memory_equal(back, blob, big);
        free(back);
        free(blob);
        nk_result_free(&res);

        args_begin(&x, 1);
        ei_x_encode_long(&x, 100);
        args_end(&x);
        call_ok(h, "yield", 1, &x, 0, "5050");
        nk_host_free(h);
}

static void test_exceptions(void **state)
{
        nk_host *h = start_lib("NK_TEST_NIF_GOOD", NULL, 0);
        ei_x_buff x;
        args_begin(&x, 1);
        ei_x_encode_tuple_header(&x, 2);
        ei_x_encode_atom(&x, "my");
        ei_x_encode_atom(&x, "reason");
        args_end(&x);
        call_ok(h, "raise", 1, &x, 1, "{my, reason}");
        call0_ok(h, "badarg", 1, "badarg");

        args_begin(&x, 2);
        ei_x_encode_atom(&x, "not_a_number");
        ei_x_encode_long(&x, 1);
        args_end(&x);
        call_ok(h, "add", 2, &x, 1, "badarg");
        /* An exception is a result: the host keeps serving. */
        call0_ok(h, "thread_type", 0, "1");
        nk_host_free(h);
}

static void test_load_info_and_thread_types(void **state)
{
        ei_x_buff li;
        args_begin(&li, 0);
        ei_x_encode_tuple_header(&li, 2);
        ei_x_encode_atom(&li, "config");
        ei_x_encode_long(&li, 7);
        nk_host *h = start_lib("NK_TEST_NIF_GOOD", (const uint8_t *) li.buff, (size_t) li.index);
        ei_x_free(&li);
        call0_ok(h, "load_info", 0, "{config, 7}");

        char want[16];
        snprintf(want, sizeof want, "%d", ERL_NIF_THR_NORMAL_SCHEDULER);
        call0_ok(h, "thread_type", 0, want);
        snprintf(want, sizeof want, "%d", ERL_NIF_THR_DIRTY_CPU_SCHEDULER);
        call0_ok(h, "thread_type_cpu", 0, want);
        nk_host_free(h);
}

static void test_caller_pid(void **state)
{
        nk_host *h = start_lib("NK_TEST_NIF_GOOD", NULL, 0);
        call0_ok(h, "self", 0, "undefined");

        ei_x_buff pid, x;
        erlang_pid p = test_pid(77);
        args_begin(&pid, 0);
        ei_x_encode_pid(&pid, &p);
        args_begin(&x, 0);
        args_end(&x);
        nk_result res;
        nk_error err;
        assert_int_equal(nk_host_call(h, (unsigned) fn(h, "self", 0), (uint8_t *) pid.buff, (size_t) pid.index,
                                      (uint8_t *) x.buff, (size_t) x.index, &res, &err), 0);
        erlang_pid back;
        int index = 0, version;
        assert_int_equal(ei_decode_version((char *) res.etf, &index, &version), 0);
        assert_int_equal(ei_decode_pid((char *) res.etf, &index, &back), 0);
        assert_string_equal(back.node, p.node);
        assert_int_equal(back.num, p.num);
        assert_int_equal(back.serial, p.serial);
        assert_int_equal(back.creation, p.creation);
        nk_result_free(&res);

        /* A caller "pid" that is not a pid is refused, and the host goes on. */
        ei_x_buff notpid;
        args_begin(&notpid, 0);
        ei_x_encode_atom(&notpid, "nobody");
        assert_int_equal(nk_host_call(h, (unsigned) fn(h, "self", 0), (uint8_t *) notpid.buff,
                                      (size_t) notpid.index, (uint8_t *) x.buff, (size_t) x.index, &res, &err),
                         -EINVAL);
        assert_int_equal(err.kind, NK_ERR_REJECTED);
        ei_x_free(&notpid);
        ei_x_free(&pid);
        ei_x_free(&x);
        call0_ok(h, "self", 0, "undefined");
        nk_host_free(h);
}

static void test_resources(void **state)
{
        nk_host *h = start_lib("NK_TEST_NIF_GOOD", NULL, 0);
        ei_x_buff x;
        args_begin(&x, 1);
        ei_x_encode_long(&x, 42);
        args_end(&x);
        nk_result res;
        nk_error err;
        assert_int_equal(call(h, "make_resource", 1, &x, &res, &err), 0);
        assert_int_equal(res.exception, 0);

        /* A resource crosses as a reference of the reserved node whose id
         * words carry the handle. */
        erlang_ref ref;
        int index = 0, version;
        assert_int_equal(ei_decode_version((char *) res.etf, &index, &version), 0);
        assert_int_equal(ei_decode_ref((char *) res.etf, &index, &ref), 0);
        assert_string_equal(ref.node, "nifkit_resource@nohost");
        uint64_t handle = ref.n[0] | (uint64_t) ref.n[1] << 32;
        assert_true(handle != 0);

        /* And comes back to the same object. */
        args_begin(&x, 1);
        ei_x_append_buf(&x, (char *) res.etf + 1, (int) res.len - 1);
        args_end(&x);
        call_ok(h, "resource_value", 1, &x, 0, "42");
        call0_ok(h, "destructed", 0, "0");

        /* Once the runtime drops the handle nothing holds the object. */
        assert_int_equal(nk_host_release_resource(h, handle), 0);
        call0_ok(h, "destructed", 0, "1");
        nk_result_free(&res);
        nk_host_free(h);
}

static void test_crash_is_contained(void **state)
{
        nk_host *good = start_lib("NK_TEST_NIF_GOOD", NULL, 0);
        nk_host *bad = start_lib("NK_TEST_NIF_CRASH", NULL, 0);
        call0_ok(bad, "ok", 0, "ok");

        ei_x_buff x;
        args_begin(&x, 0);
        args_end(&x);
        nk_result res;
        nk_error err = {};
        int r = call(bad, "crash", 0, &x, &res, &err);
        assert_true(r < 0);
        assert_int_equal(err.kind, NK_ERR_HOST_DIED);
        assert_int_equal(err.signo, SIGSEGV);
        assert_non_null(strstr(err.msg, "signal 11 (SIGSEGV)"));
        assert_non_null(strstr(err.msg, need_env("NK_TEST_NIF_CRASH")));
        assert_null(res.etf);
        assert_int_equal(nk_host_pid(bad), -1);

        /* Later calls say the host is gone, and why. */
        args_begin(&x, 0);
        args_end(&x);
        assert_true(call(bad, "ok", 0, &x, &res, &err) < 0);
        assert_int_equal(err.kind, NK_ERR_NOT_RUNNING);
        assert_int_equal(err.signo, SIGSEGV);

        /* The host beside it never noticed. */
        args_begin(&x, 2);
        ei_x_encode_long(&x, 1);
        ei_x_encode_long(&x, 2);
        args_end(&x);
        call_ok(good, "add", 2, &x, 0, "3");
        nk_host_free(bad);
        nk_host_free(good);
}

static void test_crash_in_load(void **state)
{
        nk_host *h = nk_operator_host_new(NULL);
        assert_int_equal(nk_host_set_library(h, need_env("NK_TEST_NIF_CRASH")), 0);
        ei_x_buff li;
        args_begin(&li, 0);
        ei_x_encode_atom(&li, "crash_in_load");
        nk_error err = {};
        assert_true(nk_host_start(h, (uint8_t *) li.buff, (size_t) li.index, &err) < 0);
        assert_int_equal(err.kind, NK_ERR_HOST_DIED);
        assert_int_equal(err.signo, SIGSEGV);
        assert_int_equal(nk_host_pid(h), -1);
        ei_x_free(&li);

        /* A failed start leaves the host ready to start again. */
        assert_int_equal(nk_host_start(h, NULL, 0, &err), 0);
        call0_ok(h, "ok", 0, "ok");
        nk_host_free(h);
}

static void test_timeout(void **state)
{
        nk_host *h = nk_operator_host_new(NULL);
        assert_int_equal(nk_host_set_library(h, need_env("NK_TEST_NIF_GOOD")), 0);
        nk_host_set_call_timeout(h, 300);
        nk_error err;
        assert_int_equal(nk_host_start(h, NULL, 0, &err), 0);
        int pid = nk_host_pid(h);

        ei_x_buff x;
        args_begin(&x, 1);
        ei_x_encode_long(&x, 50);
        args_end(&x);
        call_ok(h, "sleep", 1, &x, 0, "ok");

        args_begin(&x, 1);
        ei_x_encode_long(&x, 60000);
        args_end(&x);
        nk_result res;
        assert_int_equal(call(h, "sleep", 1, &x, &res, &err), -ETIMEDOUT);
        assert_int_equal(err.kind, NK_ERR_TIMEOUT);
        assert_non_null(strstr(err.msg, "sleep/1"));

        args_begin(&x, 0);
        args_end(&x);
        assert_true(call(h, "self", 0, &x, &res, &err) < 0);
        assert_int_equal(err.kind, NK_ERR_NOT_RUNNING);
        nk_host_free(h);
        /* Killed and reaped: the pid is gone. */
        assert_int_equal(kill(pid, 0), -1);
        assert_int_equal(errno, ESRCH);
}

static void expect_load_failure(const char *env_name, const char *reason)
{
        nk_host *h = nk_operator_host_new(NULL);
        const char *lib = need_env(env_name);
        assert_int_equal(nk_host_set_library(h, lib), 0);
        nk_error err = {};
        assert_true(nk_host_start(h, NULL, 0, &err) < 0);
        if (err.kind != NK_ERR_LOAD || !strstr(err.msg, lib) || !strstr(err.msg, reason))
                fail_msg("%s: expected a load error naming it and '%s', got %s: %s", env_name, reason,
                         nk_error_kind_name(err.kind), err.msg);
        assert_int_equal(nk_host_pid(h), -1);
        assert_int_equal(nk_host_function_count(h), 0);
        nk_host_free(h);
}

static void test_load_failures(void **state)
{
        expect_load_failure("NK_TEST_NIF_LOADFAIL", "load() returned 1");
        expect_load_failure("NK_TEST_NIF_NOINIT", "no nif_init symbol");
        nk_host *h;
        nk_error err;
        if (!test_launcher()) {
                expect_load_failure("NK_TEST_NIF_NOTELF", "dlopen failed");
        } else {
                /* Refused before launch: its dependencies cannot be read. */
                h = nk_operator_host_new(NULL);
                assert_int_equal(nk_host_set_library(h, need_env("NK_TEST_NIF_NOTELF")), 0);
                assert_true(nk_host_start(h, NULL, 0, &err) < 0);
                if (err.kind != NK_ERR_SYSTEM || !strstr(err.msg, "not an ELF file"))
                        fail_msg("not an ELF file: got %s: %s", nk_error_kind_name(err.kind), err.msg);
                assert_int_equal(nk_host_pid(h), -1);
                nk_host_free(h);
        }

        h = nk_operator_host_new(NULL);
        assert_int_equal(nk_host_set_library(h, "/nonexistent/lib.so"), 0);
        assert_true(nk_host_start(h, NULL, 0, &err) < 0);
        assert_int_equal(err.kind, test_launcher() ? NK_ERR_SYSTEM : NK_ERR_LOAD);
        assert_non_null(strstr(err.msg, "/nonexistent/lib.so"));
        nk_host_free(h);

        /* A host binary that does not exist is a system error naming it. */
        h = nk_operator_host_new(NULL);
        assert_int_equal(nk_host_set_library(h, need_env("NK_TEST_NIF_GOOD")), 0);
        assert_int_equal(nk_host_set_host_binary(h, "/nonexistent/nifkit-host"), 0);
        assert_int_equal(nk_host_start(h, NULL, 0, &err), -ENOENT);
        assert_int_equal(err.kind, NK_ERR_SYSTEM);
        assert_non_null(strstr(err.msg, "/nonexistent/nifkit-host"));
        nk_host_free(h);
}

static void expect_rejected(nk_host *h, const char *name, unsigned arity, const void *args, size_t len,
                            const char *reason)
{
        nk_result res;
        nk_error err = {};
        int r = nk_host_call(h, (unsigned) fn(h, name, arity), NULL, 0, args, len, &res, &err);
        if (r != -EINVAL || err.kind != NK_ERR_REJECTED || !strstr(err.msg, reason))
                fail_msg("expected rejection with '%s', got %d %s: %s", reason, r, nk_error_kind_name(err.kind),
                         err.msg);
}

static void test_malformed_args(void **state)
{
        nk_host *h = start_lib("NK_TEST_NIF_GOOD", NULL, 0);
        static const uint8_t garbage[] = { 131, 200, 1, 2 };
        expect_rejected(h, "add", 2, garbage, sizeof garbage, "malformed args ETF");
        static const uint8_t truncated[] = { 131, 108, 0, 0, 0, 2, 97 };
        expect_rejected(h, "add", 2, truncated, sizeof truncated, "malformed args ETF");

        ei_x_buff x;
        args_begin(&x, 3);
        for (int i = 0; i < 3; i++)
                ei_x_encode_long(&x, i);
        args_end(&x);
        expect_rejected(h, "add", 2, x.buff, (size_t) x.index, "wrong arity");
        ei_x_free(&x);

        args_begin(&x, 0);
        ei_x_encode_atom(&x, "not_a_list");
        expect_rejected(h, "echo", 1, x.buff, (size_t) x.index, "not a proper list");
        ei_x_free(&x);

        nk_result res;
        nk_error err;
        assert_int_equal(nk_host_call(h, 99, NULL, 0, garbage, sizeof garbage, &res, &err), -EINVAL);
        assert_int_equal(err.kind, NK_ERR_REJECTED);

        /* The same host serves the next call. */
        args_begin(&x, 2);
        ei_x_encode_long(&x, 5);
        ei_x_encode_long(&x, 6);
        args_end(&x);
        call_ok(h, "add", 2, &x, 0, "11");
        nk_host_free(h);
}

struct caller {
        nk_host *h;
        int n;
        int failures;
};

static void *caller_main(void *arg)
{
        struct caller *c = arg;
        for (int k = 0; k < 40; k++) {
                ei_x_buff x;
                char want[64];
                ei_x_new_with_version(&x);
                ei_x_encode_list_header(&x, 1);
                ei_x_encode_tuple_header(&x, 2);
                ei_x_encode_long(&x, c->n);
                ei_x_encode_long(&x, k);
                ei_x_encode_empty_list(&x);
                snprintf(want, sizeof want, "{%d, %d}", c->n, k);
                nk_result res;
                nk_error err;
                int r = nk_host_call(c->h, 1, NULL, 0, (uint8_t *) x.buff, (size_t) x.index, &res, &err);
                ei_x_free(&x);
                if (r < 0) {
                        c->failures++;
                        continue;
                }
                int index = 1;
                char *s = NULL;
                if (ei_s_print_term(&s, (char *) res.etf, &index) < 0 || strcmp(s, want) != 0)
                        c->failures++;
                free(s);
                nk_result_free(&res);
        }
        return NULL;
}

static void test_concurrent_callers(void **state)
{
        nk_host *h = start_lib("NK_TEST_NIF_GOOD", NULL, 0);
        assert_int_equal(fn(h, "echo", 1), 1);
        enum { N = 8 };
        struct caller c[N];
        pthread_t t[N];
        for (int i = 0; i < N; i++) {
                c[i] = (struct caller) { .h = h, .n = i };
                assert_int_equal(pthread_create(&t[i], NULL, caller_main, &c[i]), 0);
        }
        for (int i = 0; i < N; i++) {
                pthread_join(t[i], NULL);
                assert_int_equal(c[i].failures, 0);
        }
        nk_host_free(h);
}

struct inbox {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int count;
        char *to[4];
        char *msg[4];
};

static void on_send(void *arg, const uint8_t *to, size_t to_len, const uint8_t *msg, size_t msg_len)
{
        struct inbox *in = arg;
        pthread_mutex_lock(&in->lock);
        if (in->count < 4) {
                in->to[in->count] = show(to, to_len);
                in->msg[in->count] = show(msg, msg_len);
        }
        in->count++;
        pthread_cond_broadcast(&in->cond);
        pthread_mutex_unlock(&in->lock);
}

static void test_sends_arrive(void **state)
{
        struct inbox in = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
        nk_host *h = nk_operator_host_new(NULL);
        assert_int_equal(nk_host_set_library(h, need_env("NK_TEST_NIF_GOOD")), 0);
        nk_host_set_send_callback(h, on_send, &in);
        nk_error err;
        assert_int_equal(nk_host_start(h, NULL, 0, &err), 0);

        ei_x_buff pid;
        erlang_pid p = test_pid(99);
        args_begin(&pid, 0);
        ei_x_encode_pid(&pid, &p);
        char *pid_text = show((uint8_t *) pid.buff, (size_t) pid.index);

        static const char *const fns[] = { "send_self", "send_thread" };
        for (int i = 0; i < 2; i++) {
                ei_x_buff x;
                args_begin(&x, 1);
                ei_x_encode_atom(&x, i == 0 ? "hello" : "world");
                args_end(&x);
                nk_result res;
                assert_int_equal(nk_host_call(h, (unsigned) fn(h, fns[i], 1), (uint8_t *) pid.buff,
                                              (size_t) pid.index, (uint8_t *) x.buff, (size_t) x.index, &res, &err),
                                 0);
                ei_x_free(&x);
                assert_term(&res, 0, "ok");
                nk_result_free(&res);
        }
        /* A SEND goes out before the RESULT of the call that made it, and
         * the reader delivers in order: both are here already. */
        pthread_mutex_lock(&in.lock);
        assert_int_equal(in.count, 2);
        assert_string_equal(in.to[0], pid_text);
        assert_string_equal(in.msg[0], "{from_call, hello}");
        assert_string_equal(in.to[1], pid_text);
        assert_string_equal(in.msg[1], "{from_thread, world}");
        pthread_mutex_unlock(&in.lock);

        /* From a thread that outlives its call: it arrives between calls. */
        ei_x_buff x;
        args_begin(&x, 1);
        ei_x_encode_tuple_header(&x, 2);
        ei_x_encode_atom(&x, "later");
        ei_x_encode_atom(&x, "again");
        args_end(&x);
        nk_result res;
        assert_int_equal(nk_host_call(h, (unsigned) fn(h, "send_thread", 1), (uint8_t *) pid.buff,
                                      (size_t) pid.index, (uint8_t *) x.buff, (size_t) x.index, &res, &err), 0);
        ei_x_free(&x);
        assert_term(&res, 0, "ok");
        nk_result_free(&res);
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 10;
        pthread_mutex_lock(&in.lock);
        while (in.count < 3)
                if (pthread_cond_timedwait(&in.cond, &in.lock, &deadline) != 0)
                        break;
        assert_int_equal(in.count, 3);
        assert_string_equal(in.to[2], pid_text);
        assert_string_equal(in.msg[2], "{from_thread, {later, again}}");
        for (int i = 0; i < 3; i++) {
                free(in.to[i]);
                free(in.msg[i]);
        }
        pthread_mutex_unlock(&in.lock);
        free(pid_text);
        ei_x_free(&pid);
        nk_host_free(h);
}

static void test_stop(void **state)
{
        nk_host *h = start_lib("NK_TEST_NIF_GOOD", NULL, 0);
        int pid = nk_host_pid(h);
        assert_true(pid > 0);
        nk_host_stop(h);
        nk_host_stop(h);
        assert_int_equal(nk_host_pid(h), -1);
        assert_int_equal(kill(pid, 0), -1);
        assert_int_equal(errno, ESRCH);

        ei_x_buff x;
        args_begin(&x, 0);
        args_end(&x);
        nk_result res;
        nk_error err;
        assert_int_equal(call(h, "self", 0, &x, &res, &err), -ENOTCONN);
        assert_int_equal(err.kind, NK_ERR_NOT_RUNNING);
        assert_int_equal(nk_host_release_resource(h, 1), -ENOTCONN);
        nk_host_free(h);
        nk_host_free(NULL);
}

/* The fake host speaks the socket protocol only: calls go over the socket
 * (the shared-memory path's own attacks are in tests/hostile). */
static struct nk_policy *socket_policy(void)
{
        static struct nk_policy *p;
        struct nk_policy_error perr;
        if (!p && nk_policy_load_string("{\"nifkit_policy\": 1, \"launcher\": \"unsandboxed-development\", "
                                        "\"transport\": \"socket\", \"limits\": {\"call_timeout_ms\": 86400000}}",
                                        "fake-host policy", &p, &perr) < 0)
                fail_msg("%s", perr.msg);
        return p;
}

static nk_host *new_fake(const char *mode)
{
        setenv("NK_FAKE_MODE", mode, 1);
        nk_host *h = nk_operator_host_new(NULL);
        assert_int_equal(nk_host_set_library(h, "fake.so"), 0);
        assert_int_equal(nk_host_set_host_binary(h, need_env("NK_TEST_FAKE_HOST")), 0);
        nk_host_set_policy(h, socket_policy());
        nk_host_set_call_timeout(h, 0);
        return h;
}

/* A fake host that answers LOAD or CALL with a malformed message. */
static void expect_protocol_error(const char *mode, bool at_start, const char *what)
{
        nk_host *h = new_fake(mode);
        nk_error err = {};
        int r = nk_host_start(h, NULL, 0, &err);
        if (!at_start) {
                if (r < 0)
                        fail_msg("%s: start failed: %s", mode, err.msg);
                int pid = nk_host_pid(h);
                static const uint8_t nil[] = { 131, 106 };
                nk_result res;
                r = nk_host_call(h, 0, NULL, 0, nil, sizeof nil, &res, &err);
                /* The runtime killed it: it would otherwise wait forever. */
                nk_host_free(h);
                assert_int_equal(kill(pid, 0), -1);
                h = NULL;
        }
        if (r != -EPROTO || err.kind != NK_ERR_PROTOCOL || !strstr(err.msg, what))
                fail_msg("%s: expected a protocol error about '%s', got %d %s: %s", mode, what, r,
                         nk_error_kind_name(err.kind), err.msg);
        nk_host_free(h);
        unsetenv("NK_FAKE_MODE");
}

static void test_malformed_host_messages(void **state)
{
        if (test_launcher())
                skip();
        expect_protocol_error("loaded-bad-name", true, "bad module name");
        expect_protocol_error("loaded-trailing", true, "trailing bytes");
        expect_protocol_error("loaded-bad-callbacks", true, "bad callbacks");
        expect_protocol_error("loaded-bad-utf8", true, "bad module name");
        expect_protocol_error("result-bad-status", false, "bad status");
        expect_protocol_error("result-not-etf", false, "not ETF");
        expect_protocol_error("unknown-id", false, "no pending request");
        expect_protocol_error("huge", false, "above the limit");
        expect_protocol_error("unexpected-type", false, "unexpected message");
        expect_protocol_error("short-datagram", false, "malformed datagram");
        expect_protocol_error("loaded-count-lie", true, "bad function count");
        expect_protocol_error("loaded-bad-arity", true, "bad arity");
        expect_protocol_error("loaded-nul-name", true, "bad function name");
        expect_protocol_error("send-with-id", false, "malformed SEND");
}

/* A host killed while it sends a reply of several datagrams died of the
 * signal: the reason is crashed with signal 9, never protocol, however
 * the reply ends. */
static void test_killed_mid_message(void **state)
{
        if (test_launcher())
                skip();
        for (int i = 0; i < 20; i++) {
                nk_host *h = new_fake("killed-mid-message");
                nk_error err = {};
                if (nk_host_start(h, NULL, 0, &err) < 0)
                        fail_msg("start: %s", err.msg);
                static const uint8_t nil[] = { 131, 106 };
                nk_result res;
                int r = nk_host_call(h, 0, NULL, 0, nil, sizeof nil, &res, &err);
                if (r >= 0 || err.kind != NK_ERR_HOST_DIED || strcmp(err.reason, "crashed") != 0 || err.signo != SIGKILL)
                        fail_msg("run %d: want crashed by signal 9, got %d %s (%s, signal %d): %s", i, r,
                                 nk_error_kind_name(err.kind), err.reason, err.signo, err.msg);
                nk_host_free(h);
        }
        unsetenv("NK_FAKE_MODE");
}

static nk_host *start_fake(const char *mode, unsigned timeout_ms)
{
        nk_host *h = new_fake(mode);
        nk_host_set_call_timeout(h, timeout_ms);
        nk_error err;
        if (nk_host_start(h, NULL, 0, &err) < 0)
                fail_msg("fake host: %s", err.msg);
        unsetenv("NK_FAKE_MODE");
        return h;
}

struct big_call {
        nk_host *h;
        int r;
        nk_error err;
};

/* Sends more than the socket buffers hold to a host that reads nothing. */
static void *big_call_main(void *arg)
{
        struct big_call *c = arg;
        size_t len = 8u << 20;
        uint8_t *args = calloc(1, len);
        args[0] = 131;
        args[1] = 109; /* BINARY_EXT: never decoded, the host reads nothing */
        nk_result res;
        c->r = nk_host_call(c->h, 0, NULL, 0, args, len, &res, &c->err);
        free(args);
        return NULL;
}

static void test_host_that_stops_reading(void **state)
{
        if (test_launcher())
                skip();
        /* With a call timeout the send itself times out. */
        struct big_call c = { .h = start_fake("no-read", 300) };
        int pid = nk_host_pid(c.h);
        big_call_main(&c);
        assert_int_equal(c.r, -ETIMEDOUT);
        assert_int_equal(c.err.kind, NK_ERR_TIMEOUT);
        assert_non_null(strstr(c.err.msg, "sending"));
        nk_host_free(c.h);
        assert_int_equal(kill(pid, 0), -1);

        /* Without one, stop must still get through: it cannot ask a host
         * whose channel is full, so it kills it, and the stuck caller
         * learns the host was stopped. */
        c = (struct big_call) { .h = start_fake("no-read", 0) };
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, big_call_main, &c), 0);
        usleep(200 * 1000);
        nk_host_stop(c.h);
        pthread_join(t, NULL);
        assert_int_equal(c.r, -ENOTCONN);
        assert_int_equal(c.err.kind, NK_ERR_NOT_RUNNING);
        assert_non_null(strstr(c.err.msg, "stopped"));
        nk_host_free(c.h);
}

/* Releases come from BEAM's resource destructors, on schedulers, which a
 * host must never hold up: to a host that stopped reading, with or
 * without a call timeout, every release returns at once (what the socket
 * cannot take waits in the runtime), until so many wait that the host is
 * killed as stuck; its next call or heartbeat finds it dead. */
struct releaser {
        nk_host *h;
        uint64_t n;
        int r;
        _Atomic bool done;
};

static void *releaser_main(void *arg)
{
        struct releaser *rl = arg;
        for (uint64_t i = 1; i <= rl->n && rl->r == 0; i++)
                rl->r = nk_host_release_resource_counted(rl->h, i, 1);
        atomic_store(&rl->done, true);
        return NULL;
}

/* Runs n releases on a thread; a watchdog (not a timing) fails the test if
 * they have not returned after 60 s: one blocked send would hang them. */
static int release_n(nk_host *h, uint64_t n)
{
        struct releaser rl = { .h = h, .n = n };
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, releaser_main, &rl), 0);
        for (int i = 0; i < 6000 && !atomic_load(&rl.done); i++)
                usleep(10000);
        if (!atomic_load(&rl.done))
                fail_msg("releases to a host that stopped reading blocked");
        pthread_join(t, NULL);
        return rl.r;
}

static void test_release_to_a_host_that_stops_reading(void **state)
{
        if (test_launcher())
                skip();
        for (unsigned timeout = 0; timeout <= 300; timeout += 300) {
                nk_host *h = start_fake("no-read", timeout);
                int pid = nk_host_pid(h);
                /* Far more than the socket's buffer holds. */
                assert_int_equal(release_n(h, 200000), 0);
                nk_error err;
                if (timeout) {
                        /* The next request cannot be sent in time: killed. */
                        assert_true(nk_host_ping(h, 1000, &err) < 0);
                        assert_string_equal(err.reason, "timeout");
                        assert_int_equal(nk_host_release_resource(h, 7), -ENOTCONN);
                } else {
                        /* Piled up to the bound: killed as stuck. */
                        int r = release_n(h, (uint64_t) 3 << 20);
                        assert_int_equal(r, -ETIMEDOUT);
                        assert_int_equal(nk_host_ping(h, 1000, &err), -ENOTCONN);
                        assert_non_null(strstr(err.msg, "stopped reading"));
                }
                nk_host_free(h);
                assert_int_equal(kill(pid, 0), -1);
        }
}

int main(void)
{
        ei_init();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_discovery),
                cmocka_unit_test(test_results_round_trip),
                cmocka_unit_test(test_exceptions),
                cmocka_unit_test(test_load_info_and_thread_types),
                cmocka_unit_test(test_caller_pid),
                cmocka_unit_test(test_resources),
                cmocka_unit_test(test_crash_is_contained),
                cmocka_unit_test(test_crash_in_load),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_load_failures),
                cmocka_unit_test(test_malformed_args),
                cmocka_unit_test(test_concurrent_callers),
                cmocka_unit_test(test_sends_arrive),
                cmocka_unit_test(test_stop),
                cmocka_unit_test(test_malformed_host_messages),
                cmocka_unit_test(test_killed_mid_message),
                cmocka_unit_test(test_host_that_stops_reading),
                cmocka_unit_test(test_release_to_a_host_that_stops_reading),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
