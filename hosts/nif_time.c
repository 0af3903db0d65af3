/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enif_* time functions.
 *
 * The host's clocks are the kernel's: monotonic time is CLOCK_MONOTONIC,
 * system time CLOCK_REALTIME. BEAM's own monotonic time has another origin
 * and NIFs cannot compare the two anyway (a term crosses as a number, not as
 * a time); what they rely on is that monotonic time never goes back and that
 * monotonic + offset is the OS system time, which holds here.
 */
#include <stdatomic.h>
#include <time.h>

#include "host_internal.h"
#include "term.h"

static const int64_t unit_hz[] = {
        [ERL_NIF_SEC] = 1,
        [ERL_NIF_MSEC] = 1000,
        [ERL_NIF_USEC] = 1000000,
        [ERL_NIF_NSEC] = 1000000000,
};

static bool unit_ok(ErlNifTimeUnit u)
{
        return (int) u >= ERL_NIF_SEC && (int) u <= ERL_NIF_NSEC;
}

/*
 * Towards a finer unit values are multiplied; towards a coarser one they are
 * divided rounding towards negative infinity, so that -1 ns is -1 s, not 0:
 * BEAM's rule, which keeps converted time stamps ordered.
 */
static int64_t convert(int64_t val, ErlNifTimeUnit from, ErlNifTimeUnit to)
{
        int64_t ffreq = unit_hz[from], tfreq = unit_hz[to], denom;

        if (tfreq >= ffreq)
                return val * (tfreq / ffreq);
        denom = ffreq / tfreq;
        if (val >= 0)
                return val / denom;
        return (val - (denom - 1)) / denom;
}

static int64_t clock_ns(clockid_t id)
{
        struct timespec ts;

        clock_gettime(id, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

ErlNifTime enif_monotonic_time(ErlNifTimeUnit unit)
{
        if (!unit_ok(unit))
                return ERL_NIF_TIME_ERROR;
        return convert(clock_ns(CLOCK_MONOTONIC), ERL_NIF_NSEC, unit);
}

ErlNifTime enif_time_offset(ErlNifTimeUnit unit)
{
        int64_t mono, sys;

        if (!unit_ok(unit))
                return ERL_NIF_TIME_ERROR;
        mono = clock_ns(CLOCK_MONOTONIC);
        sys = clock_ns(CLOCK_REALTIME);
        return convert(sys - mono, ERL_NIF_NSEC, unit);
}

ErlNifTime enif_convert_time_unit(ErlNifTime val, ErlNifTimeUnit from, ErlNifTimeUnit to)
{
        if (!unit_ok(from) || !unit_ok(to))
                return ERL_NIF_TIME_ERROR;
        return convert(val, from, to);
}

static ERL_NIF_TERM now_tuple(ErlNifEnv *env, int64_t us)
{
        ERL_NIF_TERM elems[3] = {
                nk_make_small(us / 1000000000000),
                nk_make_small(us / 1000000 % 1000000),
                nk_make_small(us % 1000000),
        };

        return nk_make_tuple_n(env, 3, elems);
}

/* erlang:now/0: system time in microseconds, but strictly increasing across
 * all callers, so every call returns a distinct value. */
ERL_NIF_TERM enif_now_time(ErlNifEnv *env)
{
        static _Atomic int64_t last;
        int64_t now = clock_ns(CLOCK_REALTIME) / 1000;
        int64_t prev = atomic_load_explicit(&last, memory_order_relaxed);
        int64_t next;

        do
                next = now > prev ? now : prev + 1;
        while (!atomic_compare_exchange_weak_explicit(&last, &prev, next, memory_order_relaxed,
                                                      memory_order_relaxed));
        return now_tuple(env, next);
}

/* CPU time consumed by the host process, in erlang:now/0's format. */
ERL_NIF_TERM enif_cpu_time(ErlNifEnv *env)
{
        return now_tuple(env, clock_ns(CLOCK_PROCESS_CPUTIME_ID) / 1000);
}
