/* SPDX-License-Identifier: Apache-2.0 */
/* enif_* threads, mutexes, condition variables, rwlocks and TSD. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <cmocka.h>

#include "host_internal.h"

static void *add_one(void *arg)
{
        int *n = arg;
        (*n)++;
        return (void *) (intptr_t) (*n * 10);
}

static void threads_run_and_join(void **state)
{
        ErlNifTid tid;
        int n = 4;
        void *res = NULL;

        assert_int_equal(enif_thread_create("adder", &tid, add_one, &n, NULL), 0);
        assert_int_equal(enif_thread_join(tid, &res), 0);
        assert_int_equal(n, 5);
        assert_int_equal((intptr_t) res, 50);
        /* joining oneself fails (EDEADLK) instead of hanging */
        assert_int_not_equal(enif_thread_join(enif_thread_self(), NULL), 0);
}

struct self_info {
        ErlNifTid self;
        char name[64];
        char comm[16];          /* what the kernel calls the thread */
        int type;
        size_t stack;
};

static void *report_self(void *arg)
{
        struct self_info *si = arg;
        pthread_attr_t attr;
        char *name;

        si->self = enif_thread_self();
        name = enif_thread_name(si->self);
        snprintf(si->name, sizeof(si->name), "%s", name ? name : "(none)");
        (void) prctl(PR_GET_NAME, si->comm, 0, 0, 0);
        si->type = enif_thread_type();
        if (pthread_getattr_np(pthread_self(), &attr) == 0) {
                pthread_attr_getstacksize(&attr, &si->stack);
                pthread_attr_destroy(&attr);
        }
        return NULL;
}

static void thread_identity_name_and_type(void **state)
{
        struct self_info si = {};
        ErlNifThreadOpts *opts = enif_thread_opts_create("opts");
        ErlNifTid tid;

        assert_non_null(opts);
        assert_int_equal(opts->suggested_stack_size, -1);
        opts->suggested_stack_size = 512;       /* kilowords */
        nk_set_thread_type(ERL_NIF_THR_NORMAL_SCHEDULER);
        assert_int_equal(enif_thread_type(), ERL_NIF_THR_NORMAL_SCHEDULER);

        assert_int_equal(enif_thread_create("a-long-thread-name-for-test", &tid, report_self, &si, opts), 0);
        assert_int_equal(enif_thread_join(tid, NULL), 0);
        enif_thread_opts_destroy(opts);

        assert_true(enif_equal_tids(si.self, tid));
        assert_false(enif_equal_tids(si.self, enif_thread_self()));
        assert_true(enif_equal_tids(enif_thread_self(), enif_thread_self()));
        assert_string_equal(si.name, "a-long-thread-name-for-test");
        assert_string_equal(si.comm, "a-long-thread-n");
        /* threads NIFs make are not schedulers, whatever their creator is */
        assert_int_equal(si.type, ERL_NIF_THR_UNDEFINED);
        assert_true(si.stack >= (size_t) 512 * 1024 * sizeof(void *));
        /* gone after join; never known for threads it did not make */
        assert_null(enif_thread_name(tid));
        assert_null(enif_thread_name(enif_thread_self()));

        nk_set_thread_type(ERL_NIF_THR_UNDEFINED);
        assert_int_equal(enif_thread_type(), ERL_NIF_THR_UNDEFINED);
}

static void *exit_early(void *arg)
{
        enif_thread_exit(arg);
        return NULL;
}

static void thread_exit_value(void **state)
{
        ErlNifTid tid;
        void *res = NULL;
        int marker;

        assert_int_equal(enif_thread_create("exiter", &tid, exit_early, &marker, NULL), 0);
        assert_int_equal(enif_thread_join(tid, &res), 0);
        assert_ptr_equal(res, &marker);
}

struct locked {
        ErlNifMutex *mtx;
        ErlNifCond *cnd;
        ErlNifRWLock *rw;
        int flag;
        int seen;
        int result;
};

static void *try_mutex(void *arg)
{
        struct locked *l = arg;

        l->result = enif_mutex_trylock(l->mtx);
        if (l->result == 0)
                enif_mutex_unlock(l->mtx);
        return NULL;
}

static void run(void *(*fn)(void *), struct locked *l)
{
        ErlNifTid tid;

        assert_int_equal(enif_thread_create("helper", &tid, fn, l, NULL), 0);
        assert_int_equal(enif_thread_join(tid, NULL), 0);
}

static void mutex_excludes(void **state)
{
        struct locked l = {};

        l.mtx = enif_mutex_create("my mutex");
        assert_non_null(l.mtx);
        assert_string_equal(enif_mutex_name(l.mtx), "my mutex");

        enif_mutex_lock(l.mtx);
        run(try_mutex, &l);
        assert_int_equal(l.result, EBUSY);
        enif_mutex_unlock(l.mtx);
        run(try_mutex, &l);
        assert_int_equal(l.result, 0);

        assert_int_equal(enif_mutex_trylock(l.mtx), 0);
        enif_mutex_unlock(l.mtx);
        enif_mutex_destroy(l.mtx);
}

static void *waiter(void *arg)
{
        struct locked *l = arg;

        enif_mutex_lock(l->mtx);
        while (!l->flag)
                enif_cond_wait(l->cnd, l->mtx);
        l->seen = l->flag;
        enif_mutex_unlock(l->mtx);
        return NULL;
}

static void condvar_wakes(void **state)
{
        struct locked l = {};
        ErlNifTid tids[3];

        l.mtx = enif_mutex_create("cv mutex");
        l.cnd = enif_cond_create("cv");
        assert_string_equal(enif_cond_name(l.cnd), "cv");

        /* one waiter, signal */
        assert_int_equal(enif_thread_create("w", &tids[0], waiter, &l, NULL), 0);
        enif_mutex_lock(l.mtx);
        l.flag = 7;
        enif_cond_signal(l.cnd);
        enif_mutex_unlock(l.mtx);
        assert_int_equal(enif_thread_join(tids[0], NULL), 0);
        assert_int_equal(l.seen, 7);

        /* several waiters, broadcast */
        struct locked m[3];
        for (int i = 0; i < 3; i++) {
                m[i] = (struct locked) { .mtx = l.mtx, .cnd = l.cnd };
                assert_int_equal(enif_thread_create("w", &tids[i], waiter, &m[i], NULL), 0);
        }
        enif_mutex_lock(l.mtx);
        for (int i = 0; i < 3; i++)
                m[i].flag = 10 + i;
        enif_cond_broadcast(l.cnd);
        enif_mutex_unlock(l.mtx);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(enif_thread_join(tids[i], NULL), 0);
                assert_int_equal(m[i].seen, 10 + i);
        }
        enif_cond_destroy(l.cnd);
        enif_mutex_destroy(l.mtx);
}

static void *try_read(void *arg)
{
        struct locked *l = arg;

        l->result = enif_rwlock_tryrlock(l->rw);
        if (l->result == 0)
                enif_rwlock_runlock(l->rw);
        return NULL;
}

static void *try_write(void *arg)
{
        struct locked *l = arg;

        l->result = enif_rwlock_tryrwlock(l->rw);
        if (l->result == 0)
                enif_rwlock_rwunlock(l->rw);
        return NULL;
}

static void rwlock_excludes(void **state)
{
        struct locked l = {};

        l.rw = enif_rwlock_create("rw");
        assert_string_equal(enif_rwlock_name(l.rw), "rw");

        enif_rwlock_rwlock(l.rw);
        run(try_read, &l);
        assert_int_equal(l.result, EBUSY);
        run(try_write, &l);
        assert_int_equal(l.result, EBUSY);
        enif_rwlock_rwunlock(l.rw);

        enif_rwlock_rlock(l.rw);
        run(try_read, &l);
        assert_int_equal(l.result, 0);          /* readers share */
        run(try_write, &l);
        assert_int_equal(l.result, EBUSY);      /* writers wait for readers */
        enif_rwlock_runlock(l.rw);

        run(try_write, &l);
        assert_int_equal(l.result, 0);
        enif_rwlock_destroy(l.rw);
}

static ErlNifTSDKey key;

static void *tsd_thread(void *arg)
{
        static int mine;
        void **seen = arg;

        seen[0] = enif_tsd_get(key);
        enif_tsd_set(key, &mine);
        seen[1] = enif_tsd_get(key);
        return NULL;
}

static void tsd_per_thread(void **state)
{
        static int main_value;
        void *seen[2] = { (void *) 1, NULL };
        ErlNifTid tid;

        assert_int_equal(enif_tsd_key_create("key", &key), 0);
        assert_null(enif_tsd_get(key));
        enif_tsd_set(key, &main_value);
        assert_int_equal(enif_thread_create("tsd", &tid, tsd_thread, seen, NULL), 0);
        assert_int_equal(enif_thread_join(tid, NULL), 0);
        assert_null(seen[0]);                   /* a new thread starts empty */
        assert_non_null(seen[1]);
        assert_ptr_not_equal(seen[1], &main_value);
        assert_ptr_equal(enif_tsd_get(key), &main_value);
        enif_tsd_key_destroy(key);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(threads_run_and_join),
                cmocka_unit_test(thread_identity_name_and_type),
                cmocka_unit_test(thread_exit_value),
                cmocka_unit_test(mutex_excludes),
                cmocka_unit_test(condvar_wakes),
                cmocka_unit_test(rwlock_excludes),
                cmocka_unit_test(tsd_per_thread),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
