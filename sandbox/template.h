/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host template: a small process that starts hosts for the runtime, so
 * that no host is ever created by duplicating the VM.
 *
 * A host cloned from BEAM itself (clone3 without CLONE_VM) makes the kernel
 * copy the VM's page tables, so every start and restart costs in proportion
 * to the VM's size, and memory a 10 GB VM cannot spare. Instead the first
 * launch in a process starts nifkit-template with posix_spawn (glibc's
 * CLONE_VM | CLONE_VFORK: nothing is copied), and every launch after that
 * asks it over a unix socket. The template runs the same launchers
 * (native, bubblewrap, direct) in itself: a few hundred KiB, one thread,
 * whose clone3 copies almost nothing. It drains the hosts' output, reaps
 * them and reports how each ended; the VM keeps per host the channel and
 * one connection to the template, and no thread of its own for the host.
 *
 *   VM ──posix_spawn (once)──> nifkit-template ──launcher──> host, host, ...
 *   VM ──connect, LAUNCH + channel fd──> template ──LAUNCHED / EXITED──> VM
 *
 * One template serves the whole process, every copy of libnifkit in it (each
 * wrapped library's proxy has its own): it listens on an abstract unix
 * socket named after the process (pid and start time) and the template
 * binary, and accepts only connections from its parent process
 * (SO_PEERCRED). The hosts are in network namespaces of their own, where
 * that name does not exist. The template exits when its parent does,
 * killing its hosts; its hosts die with it (PR_SET_PDEATHSIG, bwrap's
 * --die-with-parent), and the next launch starts a new template and says
 * so.
 *
 * The messages (SOCK_SEQPACKET, one per datagram, big-endian):
 *   VM → template  LAUNCH  launcher, the sandbox config, the host and
 *                          library paths; the channel's end as SCM_RIGHTS
 *                  KILL    a signal for the host
 *   template → VM  LAUNCHED  0 or -errno with the reason, pid, whether
 *                            RLIMIT_AS stands for memory, the cgroup leaf
 *                            and its counters, what is not enforced
 *                  EXITED    how the host ended, its cgroup's counters then
 */
#ifndef NIFKIT_TEMPLATE_H
#define NIFKIT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "launcher.h"
#include "sandbox.h"

#define NK_TEMPLATE_MAGIC 0x4e4b5431u   /* "NKT1" */
/* A datagram's largest size: the config's strings (environment, scope,
 * paths) with room to spare, below the socket's default buffer. */
#define NK_TEMPLATE_MSG_MAX (160u * 1024)
/* What LAUNCHED carries of the launch's notes. */
#define NK_TEMPLATE_NOTES_MAX 8

enum nk_template_msg {
        NK_TEMPLATE_LAUNCH = 1,
        NK_TEMPLATE_LAUNCHED = 2,
        NK_TEMPLATE_KILL = 3,
        NK_TEMPLATE_EXITED = 4,
};

enum nk_launcher_id {
        NK_LAUNCHER_DIRECT = 0,
        NK_LAUNCHER_NATIVE = 1,
        NK_LAUNCHER_BWRAP = 2,
};

/* The launcher with this id, or NULL. */
const struct nk_launcher *nk_launcher_by_id(uint32_t id);
/* -1 for a launcher that is none of the three. */
int nk_launcher_id_of(const struct nk_launcher *l);

/* A decoded LAUNCH: the strings point into the datagram it was read from,
 * the arrays are allocated (nk_template_launch_free). */
struct nk_template_launch {
        uint32_t launcher;
        struct nk_sandbox_config sc;
        bool have_sandbox;
        const char *host_binary;
        const char *library;
        char **env, **scope, **extra_ro;
        /* The direct launcher's: the caller's whole environment, as it
         * would have given the host itself. */
        char **caller_env;
};
/* A LAUNCH for cfg and the launcher with this id; the direct launcher's
 * carries cfg->env, or this process's environment. -E2BIG past
 * NK_TEMPLATE_MSG_MAX. */
int nk_template_launch_encode(uint32_t launcher, const struct nk_launch_config *cfg, uint8_t **ret,
                              size_t *ret_len);
int nk_template_launch_decode(const uint8_t *p, size_t n, struct nk_template_launch *ret);
void nk_template_launch_free(struct nk_template_launch *l);

/* LAUNCHED and EXITED, both ways. */
struct nk_template_launched {
        int32_t r;
        int32_t pid;
        bool memory_by_rlimit;
        bool have_cgroup;
        struct nk_cgroup_events events;
        const char *cgroup_path;        /* NULL without a leaf */
        const char *msg;                /* the reason when r < 0 */
        const char *notes[NK_TEMPLATE_NOTES_MAX];
        size_t nnotes;
};
int nk_template_launched_encode(const struct nk_template_launched *m, uint8_t **ret, size_t *ret_len);
int nk_template_launched_decode(const uint8_t *p, size_t n, struct nk_template_launched *ret);

struct nk_template_exited {
        int32_t r;                      /* the launcher's wait: 0 or -errno */
        struct nk_child_exit ex;
        bool have_events;
        struct nk_cgroup_events events;
};
int nk_template_exited_encode(const struct nk_template_exited *m, uint8_t **ret, size_t *ret_len);
int nk_template_exited_decode(const uint8_t *p, size_t n, struct nk_template_exited *ret);

/* The type of a datagram (its magic checked), or -EBADMSG. */
int nk_template_msg_type(const uint8_t *p, size_t n);
/* A KILL's signal, or -EBADMSG. */
int nk_template_kill_decode(const uint8_t *p, size_t n);

/* The abstract socket name of the template for this process and binary,
 * without its leading NUL. */
int nk_template_socket_name(pid_t pid, const char *template_binary, char *buf, size_t size);
/* When this process started (field 22 of /proc/PID/stat), 0 if unknown. */
unsigned long long nk_process_start_time(pid_t pid);

/* The launcher that asks the template to start hosts with inner's sandbox:
 * the same name and root, the same reasons; itself for one that already
 * is. NULL for an unknown inner. */
const struct nk_launcher *nk_launcher_via_template(const struct nk_launcher *inner);

/* What a host started through the template keeps in the caller
 * (struct nk_child's remote): its connection to the template, which is also
 * how the caller learns that it ended. */
struct nk_remote_child;
void nk_remote_child_free(struct nk_remote_child *rc);
/* The host's cgroup leaf and counters as the template saw them: at start,
 * and once it ended, then. -ENOENT without a leaf. */
int nk_remote_child_cgroup(const struct nk_remote_child *rc, const char **ret_path, struct nk_cgroup_events *ret);

#endif
