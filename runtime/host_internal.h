/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What host.c (requests, the reader, calls) and host_launch.c (starting the
 * host process) share of an nk_host. Private to libnifkit.
 */
#ifndef NIFKIT_HOST_INTERNAL_H
#define NIFKIT_HOST_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "launcher.h"
#include "nifkit.h"
#include "nifkit_policy.h"
#include "sandbox.h"
#include "shm.h"
#include "status.h"
#include "transport.h"

enum host_state { ST_NEW, ST_RUNNING, ST_STOPPED };

struct pending {
        struct pending *next;
        uint64_t id;
        uint32_t expect;        /* the reply type besides ERROR */
        bool done;
        bool failed;            /* the host died: err says why */
        bool abandoned;         /* an nk_call its caller cancelled: whoever
                                 * completes it frees it (it is an nk_call) */
        nk_error err;
        struct nk_msg msg;      /* the reply when done && !failed */
        pthread_cond_t cond;
};

struct nk_host {
        char *library;
        char *host_binary;
        unsigned call_timeout_ms;
        unsigned workers;
        nk_send_fn send_fn;
        void *send_arg;
        const struct nk_launcher *launcher;
        const struct nk_policy *policy;         /* the caller's, or own_policy */
        struct nk_policy *own_policy;           /* the default, when the caller set none */
        char *cgroup_root;                      /* a delegated subtree, or NULL */
        char *audit_log;                        /* the broker's decisions go here, or NULL */
        nk_getenv_fn getenv_fn;                 /* where the policy's env takes values, or NULL */
        void *getenv_arg;
        bool unsandboxed;                       /* nk_host_allow_unsandboxed_development */
        unsigned sandbox_uid, sandbox_gid;      /* nk_host_set_sandbox_ids; 0: the default */
        struct nk_broker *broker;               /* files and sockets for the host, or NULL */
        struct nk_shm_chan *shm;                /* calls' shared memory, or NULL (transport socket) */
        const nk_result_alloc *result_alloc;    /* for results over shared memory, or NULL */
        struct nk_shm_alloc shm_alloc;          /* the same, as the channel takes it */

        pthread_mutex_t lock;   /* everything below */
        enum host_state state;
        bool opened;            /* nk_host_open done, nk_host_load not yet */
        int fd;
        struct nk_transport tr;
        bool tr_ready;
        struct nk_child child;
        bool launched;
        pthread_t reader;
        bool reader_running;
        struct pending *pending;
        uint64_t next_id;
        bool dead;              /* no more requests: death says why */
        nk_error death;
        struct nk_cgroup_events cg_start;       /* the leaf's counters at start */
        bool violation;         /* the host reported a trapped system call */
        int violation_nr;
        unsigned active;        /* threads using the transport outside teardown */
        pthread_cond_t idle;    /* signalled when active drops to 0 */
        /* The order of calls through shared memory against the socket
         * (protocol.h, SHM_REGION): SENDs delivered, RELEASEs sent. */
        _Atomic uint64_t sends_seen;
        _Atomic uint64_t releases_sent;         /* sent, or waiting in rel_q to be: in order */
        _Atomic uint64_t shm_ids;
        /* RELEASEs the socket could not take without waiting, in order,
         * under lock; one thread at a time sends them (flushing). */
        struct release { uint64_t handle, count; } *rel_q;
        size_t rel_head, rel_n, rel_cap;        /* waiting: rel_q[rel_head .. rel_n) */
        bool rel_flushing;
        _Atomic bool rel_waiting;               /* rel_head < rel_n, readable without lock */
        pthread_cond_t sends_cond;      /* under lock: sends_seen went up, or the host died */
        unsigned sends_waiters;

        /* discovery, written by the reader before LOAD's waiter wakes */
        char *module;
        nk_function *funcs;
        unsigned nfuncs;
        unsigned callbacks;             /* NK_CALLBACK_*: the library's upgrade and unload */
        char *names;

        struct nk_status_ref status;    /* statistics and the state file (status.h) */
};

/* The host binary this host runs: the caller's, or the installed one. */
const char *nk_host_binary_path(const nk_host *h);

/* Resolves the policy, picks the launcher, makes the channel and starts the
 * host process with its shared memory and broker attached (host_launch.c).
 * The reader is not running yet. On failure the caller tears down what was
 * made. */
int nk_host_launch(nk_host *h, nk_error *err);

#endif
