/* SPDX-License-Identifier: Apache-2.0 */
/* Pids, ports, enif_send, liveness, whereis, monitors and select through
 * the runtime operations, with a recording stand-in for the runtime. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hooks.h"
#include "host_internal.h"
#include "term.h"

/* ---- the stand-in runtime ------------------------------------------------------ */

static struct {
        int send_calls;
        ERL_NIF_TERM send_to;
        ERL_NIF_TERM send_msg;
        int send_result;
        ERL_NIF_TERM alive_pid;         /* the one process that is alive */
        ERL_NIF_TERM alive_port;
        ERL_NIF_TERM reg_name, reg_value;
        int monitor_result;
        bool down_before_reply;         /* the DOWN overtakes the reply */
        uint64_t next_monitor;
        uint64_t monitor_handle;
        ERL_NIF_TERM monitor_pid;
        int demonitor_calls;
        uint64_t demonitored;
} rt;

static int rt_send(ERL_NIF_TERM to, ERL_NIF_TERM msg)
{
        rt.send_calls++;
        rt.send_to = to;
        rt.send_msg = msg;
        return rt.send_result;
}

static int rt_process_alive(ERL_NIF_TERM pid)
{
        return pid == rt.alive_pid;
}

static int rt_port_alive(ERL_NIF_TERM port)
{
        return port == rt.alive_port;
}

static int rt_whereis(ERL_NIF_TERM name, ERL_NIF_TERM *ret)
{
        if (name != rt.reg_name)
                return -ENOENT;
        *ret = rt.reg_value;
        return 0;
}

static int rt_monitor(uint64_t handle, ERL_NIF_TERM pid, uint64_t *ret)
{
        if (rt.monitor_result < 0)
                return rt.monitor_result;
        rt.monitor_handle = handle;
        rt.monitor_pid = pid;
        *ret = ++rt.next_monitor;
        if (rt.down_before_reply)
                assert_int_equal(nk_deliver_down(*ret, pid), -ENOENT);
        return 0;
}

static int rt_demonitor(uint64_t monitor)
{
        rt.demonitor_calls++;
        rt.demonitored = monitor;
        return 0;
}

static const struct nk_runtime_ops ops = {
        .send = rt_send,
        .process_alive = rt_process_alive,
        .port_alive = rt_port_alive,
        .whereis = rt_whereis,
        .monitor = rt_monitor,
        .demonitor = rt_demonitor,
};

static ERL_NIF_TERM pid_a, pid_b, port_a;

static int setup(void **state)
{
        if (nk_atoms_init() < 0)
                return -1;
        struct nk_pid_data a = { nk_atom_index(nk_am_nonode), 101, 0, 0 };
        struct nk_pid_data b = { nk_atom_index(nk_am_nonode), 102, 0, 0 };
        struct nk_port_data p = { nk_atom_index(nk_am_nonode), 0, 7 };
        pid_a = nk_pid_intern(&a);
        pid_b = nk_pid_intern(&b);
        port_a = nk_port_intern(&p);
        uint64_t keep_next = rt.next_monitor;
        memset(&rt, 0, sizeof(rt));
        rt.next_monitor = keep_next;
        rt.alive_pid = pid_a;
        rt.alive_port = port_a;
        nk_set_runtime_ops(&ops);
        return 0;
}

static int teardown(void **state)
{
        nk_set_runtime_ops(NULL);
        return 0;
}

/* ---- pids ------------------------------------------------------------------------- */

static void self_and_local_pids(void **state)
{
        ErlNifEnv *env = enif_alloc_env();
        ErlNifPid pid;
        ErlNifPort port;

        assert_null(enif_self(env, &pid));              /* not a call's env */
        env->process_bound = true;
        env->self = pid_a;
        assert_ptr_equal(enif_self(env, &pid), &pid);
        assert_int_equal(pid.pid, pid_a);
        assert_int_equal(enif_make_pid(env, &pid), pid_a);

        assert_int_equal(enif_get_local_pid(env, pid_b, &pid), 1);
        assert_int_equal(pid.pid, pid_b);
        assert_int_equal(enif_get_local_pid(env, nk_am_undefined, &pid), 0);
        assert_int_equal(enif_get_local_pid(env, port_a, &pid), 0);
        assert_int_equal(enif_get_local_port(env, port_a, &port), 1);
        assert_int_equal(port.port_id, port_a);
        assert_int_equal(enif_get_local_port(env, pid_a, &port), 0);

        enif_set_pid_undefined(&pid);
        assert_true(enif_is_pid_undefined(&pid));
        assert_int_equal(enif_make_pid(env, &pid), nk_am_undefined);
        pid.pid = pid_b;
        assert_false(enif_is_pid_undefined(&pid));
        enif_free_env(env);
}

static void liveness_and_whereis(void **state)
{
        ErlNifEnv *env = enif_alloc_env();
        ErlNifPid a = { pid_a }, b = { pid_b }, undef;
        ErlNifPort p = { port_a };

        assert_true(enif_is_process_alive(env, &a));
        assert_false(enif_is_process_alive(env, &b));
        enif_set_pid_undefined(&undef);
        assert_false(enif_is_process_alive(env, &undef));
        assert_true(enif_is_port_alive(env, &p));

        assert_false(enif_is_current_process_alive(env));
        env->process_bound = true;
        env->self = pid_b;
        assert_false(enif_is_current_process_alive(env));
        env->self = pid_a;
        assert_true(enif_is_current_process_alive(env));

        ErlNifPid found;
        ErlNifPort found_port;
        rt.reg_name = nk_atom_latin1("my_server", 9);
        rt.reg_value = pid_b;
        assert_int_equal(enif_whereis_pid(env, rt.reg_name, &found), 1);
        assert_int_equal(found.pid, pid_b);
        assert_int_equal(enif_whereis_port(env, rt.reg_name, &found_port), 0);
        assert_int_equal(enif_whereis_pid(env, nk_atom_latin1("nobody", 6), &found), 0);
        assert_int_equal(enif_whereis_pid(env, nk_make_small(1), &found), 0);
        rt.reg_value = port_a;
        assert_int_equal(enif_whereis_port(NULL, rt.reg_name, &found_port), 1);
        assert_int_equal(found_port.port_id, port_a);
        assert_int_equal(enif_whereis_pid(env, rt.reg_name, &found), 0);

        /* without a runtime nothing is alive or registered */
        nk_set_runtime_ops(NULL);
        assert_false(enif_is_process_alive(env, &a));
        assert_int_equal(enif_whereis_port(env, rt.reg_name, &found_port), 0);
        /* but the caller of a running call is */
        assert_true(enif_is_current_process_alive(env));
        nk_set_runtime_ops(&ops);
        enif_free_env(env);
}

/* ---- send --------------------------------------------------------------------------- */

static void send_goes_through_ops(void **state)
{
        ErlNifEnv *env = enif_alloc_env();
        ErlNifEnv *msg_env = enif_alloc_env();
        ErlNifPid to = { pid_a }, undef;

        ERL_NIF_TERM elems[2] = { nk_am_ok, nk_make_binary_copy(msg_env, "payload", 7) };
        ERL_NIF_TERM msg = nk_make_tuple_n(msg_env, 2, elems);

        assert_int_equal(enif_send(env, &to, msg_env, msg), 1);
        assert_int_equal(rt.send_calls, 1);
        assert_int_equal(rt.send_to, pid_a);
        assert_int_equal(rt.send_msg, msg);
        /* sent: msg_env is cleared, its binary released */
        assert_int_equal(msg_env->nbins, 0);

        /* NULL msg_env: the term is taken from the caller's env as is */
        ERL_NIF_TERM msg2 = nk_make_binary_copy(env, "x", 1);
        assert_int_equal(enif_send(env, &to, NULL, msg2), 1);
        assert_int_equal(rt.send_calls, 2);
        assert_int_equal(rt.send_msg, msg2);
        assert_int_equal(env->nbins, 1);

        /* from a thread of the NIF: no caller env */
        assert_int_equal(enif_send(NULL, &to, NULL, nk_am_ok), 1);
        assert_int_equal(rt.send_msg, nk_am_ok);

        /* undeliverable: 0, and msg_env left intact */
        ERL_NIF_TERM msg3 = nk_make_binary_copy(msg_env, "kept", 4);
        rt.send_result = -ESRCH;
        assert_int_equal(enif_send(env, &to, msg_env, msg3), 0);
        assert_int_equal(msg_env->nbins, 1);
        rt.send_result = 0;

        enif_set_pid_undefined(&undef);
        int calls = rt.send_calls;
        assert_int_equal(enif_send(env, &undef, NULL, nk_am_ok), 0);
        assert_int_equal(rt.send_calls, calls);

        nk_set_runtime_ops(NULL);
        assert_int_equal(enif_send(env, &to, msg_env, msg3), 0);
        nk_set_runtime_ops(&ops);

        ErlNifPort port = { port_a };
        assert_int_equal(enif_port_command(env, &port, NULL, nk_am_ok), 0);
        enif_free_env(msg_env);
        enif_free_env(env);
}

/* ---- monitors ------------------------------------------------------------------------ */

static int down_calls;
static ERL_NIF_TERM down_pid;
static ErlNifMonitor down_mon;
static void *down_obj;
static int dtor_calls;

static void on_down(ErlNifEnv *env, void *obj, ErlNifPid *pid, ErlNifMonitor *mon)
{
        assert_non_null(env);
        down_calls++;
        down_pid = pid->pid;
        down_mon = *mon;
        down_obj = obj;
}

static void on_dtor(ErlNifEnv *env, void *obj)
{
        dtor_calls++;
}

static int stop_calls, stop_direct;
static ErlNifEvent stop_event;

static void on_stop(ErlNifEnv *env, void *obj, ErlNifEvent e, int is_direct_call)
{
        stop_calls++;
        stop_event = e;
        stop_direct = is_direct_call;
}

static ErlNifResourceType *open_type(const char *name, const ErlNifResourceTypeInit *init)
{
        ErlNifResourceFlags tried;
        ErlNifResourceType *t;

        nk_load_begin("mod_proc");
        t = enif_open_resource_type_x(NULL, name, init, ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, &tried);
        nk_load_end(true);
        assert_non_null(t);
        return t;
}

static void monitors(void **state)
{
        ErlNifResourceTypeInit with_down = { .dtor = on_dtor, .down = on_down, .stop = on_stop };
        ErlNifResourceTypeInit no_down = { .dtor = on_dtor };
        ErlNifResourceType *t = open_type("watcher", &with_down);
        ErlNifResourceType *plain = open_type("plain", &no_down);
        ErlNifEnv *env = enif_alloc_env();
        ErlNifPid target = { pid_b };
        ErlNifMonitor m1, m2;

        down_calls = dtor_calls = 0;
        void *p = enif_alloc_resource(plain, 8);
        assert_true(enif_monitor_process(env, p, &target, &m1) < 0);
        enif_release_resource(p);

        void *obj = enif_alloc_resource(t, 8);
        assert_int_equal(enif_monitor_process(env, obj, &target, &m1), 0);
        assert_int_equal(rt.monitor_pid, pid_b);
        assert_int_equal(enif_monitor_process(env, obj, &target, &m2), 0);
        assert_true(enif_compare_monitors(&m1, &m2) < 0);
        assert_true(enif_compare_monitors(&m2, &m1) > 0);
        assert_int_equal(enif_compare_monitors(&m1, &m1), 0);

        /* the monitor term names the monitor: equal for equal monitors */
        ERL_NIF_TERM t1 = enif_make_monitor_term(env, &m1);
        ERL_NIF_TERM t1b = enif_make_monitor_term(env, &m1);
        ERL_NIF_TERM t2 = enif_make_monitor_term(env, &m2);
        assert_true(enif_is_ref(env, t1));
        assert_int_equal(enif_compare(t1, t1b), 0);
        assert_int_not_equal(enif_compare(t1, t2), 0);

        /* DOWN for m1: down runs once, with the pid and the monitor */
        uint64_t id1;
        memcpy(&id1, m1.data, sizeof(id1));
        assert_int_equal(nk_deliver_down(id1, pid_b), 0);
        assert_int_equal(down_calls, 1);
        assert_int_equal(down_pid, pid_b);
        assert_ptr_equal(down_obj, obj);
        assert_int_equal(enif_compare_monitors(&down_mon, &m1), 0);
        assert_int_equal(nk_deliver_down(id1, pid_b), -ENOENT);
        assert_int_equal(down_calls, 1);
        /* fired: cannot be demonitored */
        assert_int_not_equal(enif_demonitor_process(env, obj, &m1), 0);

        /* m2 demonitored: the runtime hears of it, DOWN is dropped */
        uint64_t id2;
        memcpy(&id2, m2.data, sizeof(id2));
        assert_int_equal(enif_demonitor_process(env, obj, &m2), 0);
        assert_int_equal(rt.demonitored, id2);
        assert_int_equal(nk_deliver_down(id2, pid_b), -ENOENT);
        assert_int_equal(down_calls, 1);

        /* a monitor does not keep its resource; dying cancels it */
        ErlNifMonitor m3;
        assert_int_equal(enif_monitor_process(env, obj, &target, &m3), 0);
        uint64_t id3;
        memcpy(&id3, m3.data, sizeof(id3));
        int before = rt.demonitor_calls;
        enif_release_resource(obj);
        assert_int_equal(dtor_calls, 2);
        assert_int_equal(rt.demonitor_calls, before + 1);
        assert_int_equal(rt.demonitored, id3);
        assert_int_equal(nk_deliver_down(id3, pid_b), -ENOENT);
        assert_int_equal(down_calls, 1);

        /* a DOWN that overtakes the monitor's reply fires once it exists */
        down_calls = 0;
        obj = enif_alloc_resource(t, 8);
        rt.down_before_reply = true;
        assert_int_equal(enif_monitor_process(env, obj, &target, &m3), 0);
        rt.down_before_reply = false;
        assert_int_equal(down_calls, 1);
        assert_ptr_equal(down_obj, obj);
        assert_int_equal(enif_compare_monitors(&down_mon, &m3), 0);
        assert_int_not_equal(enif_demonitor_process(env, obj, &m3), 0);
        /* a late DOWN for a gone monitor, with nothing in flight, is dropped */
        memcpy(&id3, m3.data, sizeof(id3));
        assert_int_equal(nk_deliver_down(id3, pid_b), -ENOENT);
        assert_int_equal(down_calls, 1);
        enif_release_resource(obj);

        /* process not alive, or no runtime: > 0 */
        obj = enif_alloc_resource(t, 8);
        rt.monitor_result = -ESRCH;
        assert_true(enif_monitor_process(env, obj, &target, &m3) > 0);
        rt.monitor_result = 0;
        nk_set_runtime_ops(NULL);
        assert_true(enif_monitor_process(env, obj, &target, &m3) > 0);
        nk_set_runtime_ops(&ops);
        ErlNifPid undef;
        enif_set_pid_undefined(&undef);
        assert_true(enif_monitor_process(env, obj, &undef, &m3) > 0);
        enif_release_resource(obj);
        enif_free_env(env);
}

/* ---- select ----------------------------------------------------------------------------- */

static void select_without_poll_set(void **state)
{
        ErlNifResourceTypeInit with_stop = { .dtor = on_dtor, .stop = on_stop };
        ErlNifResourceTypeInit no_stop = { .dtor = on_dtor };
        ErlNifResourceType *t = open_type("sel", &with_stop);
        ErlNifResourceType *t2 = open_type("nostop", &no_stop);
        ErlNifEnv *env = enif_alloc_env();
        void *obj = enif_alloc_resource(t, 8), *obj2 = enif_alloc_resource(t2, 8);
        ErlNifPid pid = { pid_a };
        int r;

        stop_calls = 0;
        r = enif_select(env, 5, ERL_NIF_SELECT_READ, obj, &pid, nk_am_undefined);
        assert_true(r < 0);
        assert_true(r & ERL_NIF_SELECT_FAILED);
        r = enif_select_x(env, 5, ERL_NIF_SELECT_WRITE | ERL_NIF_SELECT_CUSTOM_MSG, obj, &pid, nk_am_ok, NULL);
        assert_true(r < 0);
        assert_true(r & ERL_NIF_SELECT_FAILED);

        r = enif_select(env, -1, ERL_NIF_SELECT_READ, obj, &pid, nk_am_undefined);
        assert_true(r < 0);
        assert_true(r & ERL_NIF_SELECT_INVALID_EVENT);

        /* nothing is ever selected: cancel cancels nothing */
        assert_int_equal(enif_select(env, 5, ERL_NIF_SELECT_CANCEL | ERL_NIF_SELECT_READ, obj, &pid,
                                     nk_am_undefined), 0);

        /* and stop calls the stop callback at once */
        assert_int_equal(enif_select(env, 9, ERL_NIF_SELECT_STOP, obj, NULL, nk_am_undefined),
                         ERL_NIF_SELECT_STOP_CALLED);
        assert_int_equal(stop_calls, 1);
        assert_int_equal(stop_event, 9);
        assert_int_equal(stop_direct, 1);
        r = enif_select(env, 9, ERL_NIF_SELECT_STOP, obj2, NULL, nk_am_undefined);
        assert_true(r < 0);

        enif_release_resource(obj);
        enif_release_resource(obj2);
        enif_free_env(env);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(self_and_local_pids, setup, teardown),
                cmocka_unit_test_setup_teardown(liveness_and_whereis, setup, teardown),
                cmocka_unit_test_setup_teardown(send_goes_through_ops, setup, teardown),
                cmocka_unit_test_setup_teardown(monitors, setup, teardown),
                cmocka_unit_test_setup_teardown(select_without_poll_set, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
