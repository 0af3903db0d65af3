/* SPDX-License-Identifier: Apache-2.0 */
/* Time, system information, getenv, dlopen, scheduling, options, memory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "host_internal.h"
#include "nif_api.h"
#include "term.h"

static int setup(void **state)
{
        return nk_atoms_init() < 0 ? -1 : 0;
}

/* ---- time ---------------------------------------------------------------------- */

static void convert_time_units(void **state)
{
        assert_int_equal(enif_convert_time_unit(1, ERL_NIF_SEC, ERL_NIF_MSEC), 1000);
        assert_int_equal(enif_convert_time_unit(3, ERL_NIF_MSEC, ERL_NIF_NSEC), 3000000);
        assert_int_equal(enif_convert_time_unit(1999, ERL_NIF_MSEC, ERL_NIF_SEC), 1);
        assert_int_equal(enif_convert_time_unit(999999, ERL_NIF_USEC, ERL_NIF_SEC), 0);
        /* towards coarser units BEAM rounds down, also below zero */
        assert_int_equal(enif_convert_time_unit(-1, ERL_NIF_NSEC, ERL_NIF_SEC), -1);
        assert_int_equal(enif_convert_time_unit(-1000, ERL_NIF_MSEC, ERL_NIF_SEC), -1);
        assert_int_equal(enif_convert_time_unit(-1001, ERL_NIF_MSEC, ERL_NIF_SEC), -2);
        assert_int_equal(enif_convert_time_unit(-1500, ERL_NIF_USEC, ERL_NIF_MSEC), -2);
        assert_int_equal(enif_convert_time_unit(0, ERL_NIF_NSEC, ERL_NIF_SEC), 0);
        assert_int_equal(enif_convert_time_unit(42, ERL_NIF_USEC, ERL_NIF_USEC), 42);
        /* bad units */
        assert_int_equal(enif_convert_time_unit(1, (ErlNifTimeUnit) 4, ERL_NIF_SEC), ERL_NIF_TIME_ERROR);
        assert_int_equal(enif_convert_time_unit(1, ERL_NIF_SEC, (ErlNifTimeUnit) -1), ERL_NIF_TIME_ERROR);
        assert_int_equal(enif_monotonic_time((ErlNifTimeUnit) 9), ERL_NIF_TIME_ERROR);
        assert_int_equal(enif_time_offset((ErlNifTimeUnit) 9), ERL_NIF_TIME_ERROR);
}

static int64_t realtime_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void monotonic_and_offset(void **state)
{
        ErlNifTime a = enif_monotonic_time(ERL_NIF_NSEC);
        ErlNifTime b = enif_monotonic_time(ERL_NIF_NSEC);
        assert_true(b >= a);

        ErlNifTime s = enif_monotonic_time(ERL_NIF_SEC);
        ErlNifTime ns = enif_monotonic_time(ERL_NIF_NSEC);
        assert_true(ns / 1000000000 - s <= 1 && ns / 1000000000 >= s);

        /* monotonic + offset is the OS system time */
        int64_t sys = enif_monotonic_time(ERL_NIF_USEC) + enif_time_offset(ERL_NIF_USEC);
        int64_t real = realtime_us();
        assert_true(llabs(sys - real) < 1000000);
}

static int64_t now_us(ERL_NIF_TERM t)
{
        const struct nk_tuple *tup;

        assert_true(nk_is_kind(t, NK_TUPLE));
        tup = (const struct nk_tuple *) nk_box_of(t);
        assert_int_equal(tup->h.n, 3);
        for (int i = 0; i < 3; i++)
                assert_true(nk_is_small(tup->elems[i]));
        assert_true(nk_small_value(tup->elems[1]) < 1000000);
        assert_true(nk_small_value(tup->elems[2]) < 1000000);
        return nk_small_value(tup->elems[0]) * 1000000000000 + nk_small_value(tup->elems[1]) * 1000000 +
               nk_small_value(tup->elems[2]);
}

static void now_and_cpu_time(void **state)
{
        ErlNifEnv *env = enif_alloc_env();
        int64_t prev = now_us(enif_now_time(env));

        assert_true(llabs(prev - realtime_us()) < 1000000);
        /* strictly increasing, even when called faster than the clock ticks */
        for (int i = 0; i < 1000; i++) {
                int64_t cur = now_us(enif_now_time(env));
                assert_true(cur > prev);
                prev = cur;
        }

        int64_t c0 = now_us(enif_cpu_time(env));
        volatile uint64_t x = 0;
        while (now_us(enif_cpu_time(env)) - c0 < 20000)
                for (int i = 0; i < 100000; i++)
                        x += (uint64_t) i * i;
        assert_true(now_us(enif_cpu_time(env)) >= c0 + 20000);
        enif_free_env(env);
}

/* ---- system info, environment, memory ----------------------------------------- */

static void system_info(void **state)
{
        ErlNifSysInfo si;

        memset(&si, 0x5a, sizeof(si));
        enif_system_info(&si, sizeof(si));
        assert_int_equal(si.driver_major_version, 3);
        assert_true(si.driver_minor_version >= 0);
        assert_string_equal(si.otp_release, NK_OTP_RELEASE);
        assert_non_null(si.erts_version);
        assert_int_equal(si.thread_support, 1);
        assert_int_equal(si.smp_support, 1);
        assert_int_equal(si.scheduler_threads, 1);
        assert_int_equal(si.nif_major_version, 2);
        assert_int_equal(si.nif_minor_version, 17);
        assert_int_equal(si.dirty_scheduler_support, 1);

        nk_set_scheduler_count(4);
        nk_set_erts_version("13.1.5");
        enif_system_info(&si, sizeof(si));
        assert_int_equal(si.scheduler_threads, 4);
        assert_string_equal(si.erts_version, "13.1.5");
        nk_set_scheduler_count(1);

        /* a struct from an older header: only what it has is written */
        memset(&si, 0x5a, sizeof(si));
        enif_system_info(&si, offsetof(ErlNifSysInfo, async_threads));
        assert_int_equal(si.smp_support, 1);
        assert_int_equal(si.scheduler_threads, 0x5a5a5a5a);
        assert_int_equal(si.nif_major_version, 0x5a5a5a5a);
        assert_int_equal(si.dirty_scheduler_support, 0x5a5a5a5a);

        memset(&si, 0x5a, sizeof(si));
        enif_system_info(&si, offsetof(ErlNifSysInfo, dirty_scheduler_support));
        assert_int_equal(si.nif_minor_version, 17);
        assert_int_equal(si.dirty_scheduler_support, 0x5a5a5a5a);

        /* too small to hold even smp_support: untouched */
        memset(&si, 0x5a, sizeof(si));
        enif_system_info(&si, offsetof(ErlNifSysInfo, thread_support));
        assert_int_equal(si.driver_major_version, 0x5a5a5a5a);
}

static void getenv_codes(void **state)
{
        char buf[16];
        size_t size;

        setenv("NK_TEST_VAR", "hello", 1);
        size = sizeof(buf);
        assert_int_equal(enif_getenv("NK_TEST_VAR", buf, &size), 0);
        assert_string_equal(buf, "hello");
        assert_int_equal(size, 5);

        /* exactly too small: the NUL does not fit */
        size = 5;
        memset(buf, 'x', sizeof(buf));
        assert_int_equal(enif_getenv("NK_TEST_VAR", buf, &size), 1);
        assert_int_equal(size, 6);
        assert_int_equal(buf[0], 'x');
        size = 6;
        assert_int_equal(enif_getenv("NK_TEST_VAR", buf, &size), 0);
        assert_int_equal(size, 5);

        unsetenv("NK_TEST_VAR");
        size = sizeof(buf);
        assert_int_equal(enif_getenv("NK_TEST_VAR", buf, &size), -1);
        assert_int_equal(size, sizeof(buf));

        setenv("NK_TEST_EMPTY", "", 1);
        size = 1;
        assert_int_equal(enif_getenv("NK_TEST_EMPTY", buf, &size), 0);
        assert_int_equal(size, 0);
        assert_string_equal(buf, "");
}

static void memory(void **state)
{
        char *p = enif_alloc(10);
        assert_non_null(p);
        assert_int_equal((uintptr_t) p % 8, 0);
        memcpy(p, "0123456789", 10);
        p = enif_realloc(p, 100000);
        assert_non_null(p);
        assert_memory_equal(p, "0123456789", 10);
        enif_free(p);
        enif_free(NULL);

        ErlNifEnv *env = enif_alloc_env();
        static int priv;
        env->priv = &priv;
        assert_ptr_equal(enif_priv_data(env), &priv);
        enif_free_env(env);
}

/* ---- dlopen ------------------------------------------------------------------------ */

struct err_seen {
        int calls;
        char msg[256];
};

static void on_error(void *arg, const char *msg)
{
        struct err_seen *e = arg;
        e->calls++;
        snprintf(e->msg, sizeof(e->msg), "%s", msg);
}

static void dl_open_and_sym(void **state)
{
        struct err_seen e = {};

        assert_null(enif_dlopen("libnk-does-not-exist.so", on_error, &e));
        assert_int_equal(e.calls, 1);
        assert_non_null(strstr(e.msg, "libnk-does-not-exist.so"));
        /* no handler: still fails, quietly */
        assert_null(enif_dlopen("libnk-does-not-exist.so", NULL, NULL));

        /* the name without its extension, as BEAM's enif_dlopen takes it */
        const char *probe = getenv("NK_DL_PROBE");
        assert_non_null(probe);
        void *h = enif_dlopen(probe, on_error, &e);
        assert_non_null(h);
        assert_int_equal(e.calls, 1);
        int (*answer)(void) = (int (*)(void)) enif_dlsym(h, "nk_dl_probe_answer", on_error, &e);
        assert_non_null(answer);
        assert_int_equal(answer(), 42);
        assert_int_equal(e.calls, 1);
        /* "x.so" is looked for as "x.so.so": BEAM appends the extension always */
        char full[4096];
        snprintf(full, sizeof(full), "%s.so", probe);
        assert_null(enif_dlopen(full, on_error, &e));
        assert_int_equal(e.calls, 2);
        e.calls = 1;
        assert_null(enif_dlsym(h, "nk_no_such_symbol", on_error, &e));
        assert_int_equal(e.calls, 2);
        assert_non_null(strstr(e.msg, "nk_no_such_symbol"));
}

/* ---- scheduling --------------------------------------------------------------------- */

static ERL_NIF_TERM continuation(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return argv[0];
}

static void schedule_nif_sets_continuation(void **state)
{
        ErlNifEnv *env = enif_alloc_env();
        ERL_NIF_TERM args[3] = { nk_make_small(1), nk_am_ok, nk_make_small(3) };
        ERL_NIF_TERM r, reason;

        env->process_bound = true;
        r = enif_schedule_nif(env, "step", 0, continuation, 3, args);
        assert_int_equal(r, NK_RESCHEDULE);
        assert_ptr_equal(env->resched_fp, continuation);
        assert_int_equal(env->resched_argc, 3);
        assert_ptr_not_equal(env->resched_argv, args);  /* copied */
        args[1] = nk_am_error;
        assert_int_equal(env->resched_argv[0], nk_make_small(1));
        assert_int_equal(env->resched_argv[1], nk_am_ok);
        assert_int_equal(env->resched_argv[2], nk_make_small(3));
        assert_int_equal(nk_resched_flags(env), 0);
        assert_false(enif_has_pending_exception(env, NULL));

        r = enif_schedule_nif(env, "dirty_step", ERL_NIF_DIRTY_JOB_IO_BOUND, continuation, 0, NULL);
        assert_int_equal(r, NK_RESCHEDULE);
        assert_int_equal(env->resched_argc, 0);
        assert_int_equal(nk_resched_flags(env), ERL_NIF_DIRTY_JOB_IO_BOUND);

        /* bad flags and bad arity raise badarg, as in BEAM */
        r = enif_schedule_nif(env, "step", 4, continuation, 0, NULL);
        assert_int_equal(r, NK_EXCEPTION);
        assert_true(enif_has_pending_exception(env, &reason));
        assert_int_equal(reason, nk_am_badarg);
        enif_clear_env(env);
        env->process_bound = true;
        assert_int_equal(enif_schedule_nif(env, "step", 0, continuation, 256, args), NK_EXCEPTION);
        enif_clear_env(env);

        /* only a call's env can be rescheduled */
        env->process_bound = false;
        assert_int_equal(enif_schedule_nif(env, "step", 0, continuation, 1, args), NK_EXCEPTION);
        enif_free_env(env);
}

static void consume_timeslice(void **state)
{
        ErlNifEnv *env = enif_alloc_env();

        env->process_bound = true;
        assert_int_equal(enif_consume_timeslice(env, 50), 0);
        assert_int_equal(enif_consume_timeslice(env, 49), 0);
        assert_int_equal(enif_consume_timeslice(env, 1), 1);
        assert_int_equal(enif_consume_timeslice(env, 1), 1);    /* stays used up */
        enif_clear_env(env);

        /* out-of-range percentages are clamped */
        assert_int_equal(enif_consume_timeslice(env, 500), 1);
        enif_clear_env(env);
        for (int i = 0; i < 99; i++)
                assert_int_equal(enif_consume_timeslice(env, -7), 0);
        assert_int_equal(enif_consume_timeslice(env, 0), 1);
        enif_clear_env(env);

        /* no time slice on a dirty scheduler */
        nk_set_thread_type(ERL_NIF_THR_DIRTY_CPU_SCHEDULER);
        assert_int_equal(enif_consume_timeslice(env, 100), 0);
        nk_set_thread_type(ERL_NIF_THR_UNDEFINED);
        enif_free_env(env);
}

/* ---- options ------------------------------------------------------------------------ */

static void on_halt(void *priv)
{
}

static void set_option_during_load(void **state)
{
        ErlNifEnv *env = enif_alloc_env();
        struct nk_module_options o;

        assert_int_equal(enif_set_option(env, ERL_NIF_OPT_DELAY_HALT), EINVAL);
        assert_int_equal(nk_module_get_options("mod_opt", &o), -ENOENT);

        nk_load_begin("mod_opt");
        assert_int_equal(enif_set_option(env, ERL_NIF_OPT_DELAY_HALT), 0);
        assert_int_equal(enif_set_option(env, ERL_NIF_OPT_ON_HALT, on_halt), 0);
        assert_int_equal(enif_set_option(env, ERL_NIF_OPT_ON_HALT, NULL), EINVAL);
        assert_int_equal(enif_set_option(env, (ErlNifOption) 77), EINVAL);
        nk_load_end(true);

        assert_int_equal(nk_module_get_options("mod_opt", &o), 0);
        assert_true(o.delay_halt);
        assert_ptr_equal(o.on_halt, on_halt);
        assert_null(o.on_unload_thread);

        /* options of a failed load are dropped */
        nk_load_begin("mod_opt_fail");
        assert_int_equal(enif_set_option(env, ERL_NIF_OPT_DELAY_HALT), 0);
        nk_load_end(false);
        assert_int_equal(nk_module_get_options("mod_opt_fail", &o), -ENOENT);
        enif_free_env(env);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(convert_time_units),
                cmocka_unit_test(monotonic_and_offset),
                cmocka_unit_test(now_and_cpu_time),
                cmocka_unit_test(system_info),
                cmocka_unit_test(getenv_codes),
                cmocka_unit_test(memory),
                cmocka_unit_test(dl_open_and_sym),
                cmocka_unit_test(schedule_nif_sets_continuation),
                cmocka_unit_test(consume_timeslice),
                cmocka_unit_test(set_option_during_load),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
