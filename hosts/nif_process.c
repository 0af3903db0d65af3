/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enif_* for processes, ports, messages, monitors and select.
 *
 * The host has no processes of its own: everything about a process goes
 * through the runtime operations (hooks.h). Where the runtime cannot answer,
 * each function returns the API's documented "no" (not alive, not sent, not
 * monitored), which NIFs already handle because BEAM gives the same answers
 * for dead processes.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hooks.h"
#include "host_internal.h"
#include "term.h"

/* ---- pids and ports -------------------------------------------------------- */

ErlNifPid *enif_self(ErlNifEnv *caller_env, ErlNifPid *pid)
{
        if (!caller_env || !caller_env->process_bound || !nk_is_pid(caller_env->self))
                return NULL;
        pid->pid = caller_env->self;
        return pid;
}

int enif_get_local_pid(ErlNifEnv *env, ERL_NIF_TERM term, ErlNifPid *pid)
{
        if (!nk_is_pid(term))
                return 0;
        pid->pid = term;
        return 1;
}

int enif_get_local_port(ErlNifEnv *env, ERL_NIF_TERM term, ErlNifPort *port)
{
        if (!nk_is_port(term))
                return 0;
        port->port_id = term;
        return 1;
}

/* BEAM's undefined pid is the atom 'undefined', which enif_make_pid then
 * turns into that atom; the host does the same. */
void enif_set_pid_undefined(ErlNifPid *pid)
{
        pid->pid = nk_am_undefined;
}

int enif_is_pid_undefined(const ErlNifPid *pid)
{
        return pid->pid == nk_am_undefined;
}

int enif_is_process_alive(ErlNifEnv *env, ErlNifPid *pid)
{
        if (!pid || !nk_is_pid(pid->pid))
                return 0;
        return nk_get_runtime_ops()->process_alive(pid->pid) == 1;
}

/* The caller of a running call is alive unless the runtime knows better:
 * it waits for the answer. */
int enif_is_current_process_alive(ErlNifEnv *env)
{
        int r;

        if (!env || !env->process_bound || !nk_is_pid(env->self))
                return 0;
        r = nk_get_runtime_ops()->process_alive(env->self);
        return r < 0 ? 1 : r == 1;
}

int enif_is_port_alive(ErlNifEnv *env, ErlNifPort *port)
{
        if (!port || !nk_is_port(port->port_id))
                return 0;
        return nk_get_runtime_ops()->port_alive(port->port_id) == 1;
}

static int whereis(ERL_NIF_TERM name, ERL_NIF_TERM *ret)
{
        if (!nk_is_atom(name))
                return -EINVAL;
        return nk_get_runtime_ops()->whereis(name, ret);
}

int enif_whereis_pid(ErlNifEnv *env, ERL_NIF_TERM name, ErlNifPid *pid)
{
        ERL_NIF_TERM t = NK_NONE;

        if (whereis(name, &t) < 0 || !nk_is_pid(t))
                return 0;
        pid->pid = t;
        return 1;
}

int enif_whereis_port(ErlNifEnv *env, ERL_NIF_TERM name, ErlNifPort *port)
{
        ERL_NIF_TERM t = NK_NONE;

        if (whereis(name, &t) < 0 || !nk_is_port(t))
                return 0;
        port->port_id = t;
        return 1;
}

/* ---- messages ------------------------------------------------------------- */

/*
 * The runtime serialises msg before send returns, so terms of msg_env (or
 * of the caller's env when msg_env is NULL) need not outlive the call. As in
 * BEAM, a successful send invalidates msg_env (it is cleared here), a failed
 * one leaves it and msg valid.
 */
int enif_send(ErlNifEnv *env, const ErlNifPid *to_pid, ErlNifEnv *msg_env, ERL_NIF_TERM msg)
{
        if (!to_pid || !nk_is_pid(to_pid->pid) || msg == NK_NONE || msg == NK_EXCEPTION)
                return 0;
        if (nk_get_runtime_ops()->send(to_pid->pid, msg) < 0)
                return 0;
        if (msg_env)
                nk_env_reset(msg_env);
        return 1;
}

/* The host runs no ports: BEAM's answer for a port that is not alive. */
int enif_port_command(ErlNifEnv *env, const ErlNifPort *to_port, ErlNifEnv *msg_env, ERL_NIF_TERM msg)
{
        return 0;
}

/* ---- monitors ------------------------------------------------------------- */

/*
 * Active monitors, by the id the runtime gave them. A monitor does not keep
 * its resource alive (as in BEAM): the resource pointer here is weak, and a
 * dying resource removes its monitors (nk_monitors_drop_resource) before it
 * is freed.
 */
struct monitor {
        struct monitor *next;
        uint64_t id;
        struct nk_resource *res;
        ERL_NIF_TERM pid;
};

static pthread_mutex_t mon_lock = PTHREAD_MUTEX_INITIALIZER;
static struct monitor *monitors;

/* A DOWN can overtake the monitor it belongs to: the runtime may report it
 * between answering the monitor request and the requesting thread recording
 * the monitor. While requests are in flight, unknown DOWNs wait here (same
 * struct, res unused) for their monitor; once none is in flight, whatever
 * is left belonged to monitors already gone and is dropped. */
static struct monitor *early_downs;
static unsigned monitors_in_flight;

/* Call with mon_lock held. */
static void early_downs_gc(void)
{
        struct monitor *m;

        if (monitors_in_flight > 0)
                return;
        while ((m = early_downs)) {
                early_downs = m->next;
                free(m);
        }
}

/* ErlNifMonitor is 32 opaque bytes; the host keeps the runtime's id. */
static void monitor_encode(ErlNifMonitor *m, uint64_t id)
{
        memset(m, 0, sizeof(*m));
        memcpy(m->data, &id, sizeof(id));
}

static uint64_t monitor_id(const ErlNifMonitor *m)
{
        uint64_t id;

        memcpy(&id, m->data, sizeof(id));
        return id;
}

static struct monitor *monitor_take_from(struct monitor **list, uint64_t id,
                                         const struct nk_resource *res);

/*
 * 0: monitoring. <0: the resource type has no down callback. >0: the
 * process is not alive, or the runtime cannot monitor it, the answer a NIF
 * already handles for a process that died first.
 */
int enif_monitor_process(ErlNifEnv *env, void *obj, const ErlNifPid *target, ErlNifMonitor *mon)
{
        struct nk_resource *res = nk_resource_of_data(obj);
        struct monitor *m, *early;
        uint64_t id = 0;
        int r;

        if (!nk_resource_down_fn(res->type))
                return -1;
        if (!target || !nk_is_pid(target->pid))
                return 1;
        m = malloc(sizeof(*m));
        if (!m)
                return 1;
        pthread_mutex_lock(&mon_lock);
        monitors_in_flight++;
        pthread_mutex_unlock(&mon_lock);
        /* The handle tells the runtime which resource asks; 0 when it never
         * crossed. DOWN comes back by monitor id. */
        r = nk_get_runtime_ops()->monitor(res->handle, target->pid, &id);
        pthread_mutex_lock(&mon_lock);
        monitors_in_flight--;
        if (r < 0 || id == 0) {
                early_downs_gc();
                pthread_mutex_unlock(&mon_lock);
                free(m);
                return 1;
        }
        m->id = id;
        m->res = res;
        m->pid = target->pid;
        m->next = monitors;
        monitors = m;
        early = monitor_take_from(&early_downs, id, NULL);
        early_downs_gc();
        pthread_mutex_unlock(&mon_lock);
        if (mon)
                monitor_encode(mon, id);
        /* Already down: the callback runs now, after the monitor exists for
         * the NIF, as it would have if the DOWN had come later. */
        if (early) {
                nk_deliver_down(id, early->pid);
                free(early);
        }
        return 0;
}

/* Call with mon_lock held. */
static struct monitor *monitor_take_from(struct monitor **list, uint64_t id,
                                         const struct nk_resource *res)
{
        for (struct monitor **pp = list; *pp; pp = &(*pp)->next)
                if ((*pp)->id == id && (!res || (*pp)->res == res)) {
                        struct monitor *m = *pp;
                        *pp = m->next;
                        return m;
                }
        return NULL;
}

static struct monitor *monitor_take(uint64_t id, const struct nk_resource *res)
{
        return monitor_take_from(&monitors, id, res);
}

/* 0: removed. 1: no such active monitor on obj (already fired, removed,
 * or never made). */
int enif_demonitor_process(ErlNifEnv *env, void *obj, const ErlNifMonitor *mon)
{
        struct monitor *m;

        pthread_mutex_lock(&mon_lock);
        m = monitor_take(monitor_id(mon), nk_resource_of_data(obj));
        pthread_mutex_unlock(&mon_lock);
        if (!m)
                return 1;
        /* If the runtime fails to cancel it, a DOWN may still arrive; it
         * finds no entry and is dropped. */
        nk_get_runtime_ops()->demonitor(m->id);
        free(m);
        return 0;
}

int enif_compare_monitors(const ErlNifMonitor *a, const ErlNifMonitor *b)
{
        uint64_t x = monitor_id(a), y = monitor_id(b);

        return x < y ? -1 : x > y;
}

/* A reference of node 'nifkit_monitor@nohost' naming the monitor: equal
 * monitors give equal terms, as BEAM's monitor references do. */
ERL_NIF_TERM enif_make_monitor_term(ErlNifEnv *env, const ErlNifMonitor *mon)
{
        static const char node[] = "nifkit_monitor@nohost";
        uint64_t id = monitor_id(mon);
        struct nk_ref *r;
        ERL_NIF_TERM node_atom = nk_atom_latin1(node, sizeof(node) - 1);

        if (node_atom == NK_NONE)
                return NK_NONE;
        r = nk_env_alloc(env, sizeof(*r));
        if (!r)
                return NK_NONE;
        memset(r, 0, sizeof(*r));
        r->h.kind = NK_REF;
        r->h.n = 3;
        r->node = node_atom;
        r->creation = 0;
        r->ids[0] = (uint32_t) id;
        r->ids[1] = (uint32_t) (id >> 32);
        return nk_box_term(r);
}

int nk_deliver_down(uint64_t id, ERL_NIF_TERM pid)
{
        ErlNifResourceDown *down;
        struct nk_resource *res;
        struct monitor *m;
        ErlNifMonitor mon;
        ErlNifPid p;
        ErlNifEnv *env;

        pthread_mutex_lock(&mon_lock);
        m = monitor_take(id, NULL);
        if (!m && monitors_in_flight > 0) {
                struct monitor *e = calloc(1, sizeof(*e));
                if (e) {
                        e->id = id;
                        e->pid = pid;
                        e->next = early_downs;
                        early_downs = e;
                }
        }
        /* A resource being destroyed removes its monitors itself. */
        if (m && !nk_resource_try_keep(m->res)) {
                m->next = monitors;
                monitors = m;
                m = NULL;
        }
        pthread_mutex_unlock(&mon_lock);
        if (!m)
                return -ENOENT;
        res = m->res;
        p.pid = nk_is_pid(pid) ? pid : m->pid;
        free(m);

        down = nk_resource_down_fn(res->type);
        if (down) {
                monitor_encode(&mon, id);
                env = nk_callback_env_new(res->type);
                down(env, res->data, &p, &mon);
                nk_callback_env_free(env);
        }
        nk_resource_release(res);
        return 0;
}

void nk_monitors_drop_resource(struct nk_resource *res)
{
        struct monitor *dropped = NULL, *m;

        pthread_mutex_lock(&mon_lock);
        for (struct monitor **pp = &monitors; *pp;) {
                m = *pp;
                if (m->res == res) {
                        *pp = m->next;
                        m->next = dropped;
                        dropped = m;
                } else
                        pp = &m->next;
        }
        pthread_mutex_unlock(&mon_lock);
        while ((m = dropped)) {
                dropped = m->next;
                nk_get_runtime_ops()->demonitor(m->id);
                free(m);
        }
}

/* ---- select ---------------------------------------------------------------- */

/*
 * The host has no poll set of BEAM's to add descriptors to, so nothing is
 * ever selected. That makes STOP and CANCEL exact: STOP finds no active
 * selection and calls the stop callback directly (ERL_NIF_SELECT_STOP_CALLED,
 * is_direct_call = 1), CANCEL cancels nothing (0). READ, WRITE and ERROR
 * cannot be honoured and fail with ERL_NIF_SELECT_FAILED |
 * ERL_NIF_SELECT_NOTSUP (negative, as every enif_select failure is).
 */
static int select_common(ErlNifEvent e, enum ErlNifSelectFlags mode, void *obj)
{
        struct nk_resource *res;

        if (e < 0)
                return INT_MIN | ERL_NIF_SELECT_INVALID_EVENT;
        if (!obj)
                return INT_MIN | ERL_NIF_SELECT_FAILED;
        res = nk_resource_of_data(obj);
        if (mode & ERL_NIF_SELECT_STOP) {
                if (mode & ~ERL_NIF_SELECT_STOP)
                        return INT_MIN | ERL_NIF_SELECT_FAILED;
                if (!nk_resource_call_stop(res, e, 1))
                        return INT_MIN | ERL_NIF_SELECT_FAILED;
                return ERL_NIF_SELECT_STOP_CALLED;
        }
        if (mode & ERL_NIF_SELECT_CANCEL)
                return 0;
        return INT_MIN | ERL_NIF_SELECT_FAILED | ERL_NIF_SELECT_NOTSUP;
}

int enif_select(ErlNifEnv *env, ErlNifEvent e, enum ErlNifSelectFlags mode, void *obj,
                const ErlNifPid *pid, ERL_NIF_TERM ref)
{
        return select_common(e, mode, obj);
}

int enif_select_x(ErlNifEnv *env, ErlNifEvent e, enum ErlNifSelectFlags mode, void *obj,
                  const ErlNifPid *pid, ERL_NIF_TERM msg, ErlNifEnv *msg_env)
{
        return select_common(e, mode, obj);
}
