/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resource limits the host runs under, whether or not a cgroup limits it:
 * open files (policy), no core dumps (a core of the host holds the NIF's
 * data and would be written where the runtime cannot control), the largest
 * file it may write (its /tmp's size).
 *
 * Where the cgroup cannot limit memory (policy "best-effort" without the
 * memory controller), RLIMIT_AS stands in. It bounds address space, not
 * memory in use: thread stacks and glibc's per-thread malloc arenas reserve
 * far more than they touch, so the limit is the policy's memory plus
 * AS_ALLOWANCE. A NIF that allocates the policy's memory still fails;
 * one that maps without touching is not caught.
 *
 * RLIMIT_NPROC is not a fallback for pids.max: it counts every process of
 * the real uid outside, and every host shares that uid (65534 or the
 * caller's), so a per-host limit cannot be expressed with it.
 */
#include <errno.h>
#include <sys/resource.h>

#include "sequencer.h"

#define AS_ALLOWANCE (512ULL << 20)

void nk_rlimits_prepare(const struct nk_sandbox_config *cfg, bool as_fallback, struct nk_rlimits_plan *ret)
{
        *ret = (struct nk_rlimits_plan) {
                .nofile = cfg->open_files,
                .as_bytes = as_fallback && cfg->memory_bytes ? cfg->memory_bytes + AS_ALLOWANCE : 0,
                .fsize_bytes = cfg->tmp_mb ? (uint64_t) cfg->tmp_mb << 20 : 0,
        };
}

static int set_limit(int resource, uint64_t value, const char *name, struct nk_child_err *e)
{
        const struct rlimit rl = { .rlim_cur = value, .rlim_max = value };
        if (setrlimit(resource, &rl) < 0)
                return nk_child_fail(e, -errno, "setting ", name, NULL);
        return 0;
}

int nk_rlimits_child(const struct nk_rlimits_plan *plan, struct nk_child_err *e)
{
        int r = set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE", e);
        if (r >= 0 && plan->nofile)
                r = set_limit(RLIMIT_NOFILE, plan->nofile, "RLIMIT_NOFILE", e);
        if (r >= 0 && plan->as_bytes)
                r = set_limit(RLIMIT_AS, plan->as_bytes, "RLIMIT_AS", e);
        if (r >= 0 && plan->fsize_bytes)
                r = set_limit(RLIMIT_FSIZE, plan->fsize_bytes, "RLIMIT_FSIZE", e);
        return r;
}
