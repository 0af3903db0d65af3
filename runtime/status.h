/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-library statistics of this process's hosts, kept in memory for
 * nk_host_stats and written to a state file (status_file.h) at most once a
 * second by one writer thread, which runs only while some host is up.
 *
 * host.c calls these at the points they describe; each takes the
 * process-wide status lock briefly.
 */
#ifndef NIFKIT_STATUS_H
#define NIFKIT_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "nifkit.h"

struct nk_status;

/* What an nk_host holds: its library's record, and whether it counts as
 * one of the record's live hosts. */
struct nk_status_ref {
        struct nk_status *st;
        bool attached;
        int host_pid;
};

/* A host of library started: attaches ref to the library's record (made on
 * first use), counts a restart when the previous host died, logs
 * host_started. cgroup: the host's cgroup directory, or NULL. */
void nk_status_started(struct nk_status_ref *ref, const char *library, int host_pid, const char *cgroup);
/* A call finished after ns nanoseconds; err is NULL when it succeeded. A
 * failure that reports the host's death records why and logs host_died. */
void nk_status_call(struct nk_status_ref *ref, uint64_t ns, const nk_error *err);
/* The host is stopped (death: why it had died, when it had). Idempotent. */
void nk_status_stopped(struct nk_status_ref *ref, const nk_error *death);
int nk_status_get(const struct nk_status_ref *ref, struct nk_stats *ret);

uint64_t nk_status_now_ns(void);

#endif
