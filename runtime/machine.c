/* SPDX-License-Identifier: Apache-2.0 */
/* What this machine enforces of a policy (nifkit.h): the cgroup report. */
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "nifkit.h"
#include "sandbox.h"

NK_EXPORT void nk_cgroup_report(const char *cgroup_root, struct nk_cgroup_report *ret)
{
        struct nk_cgroup_info info;
        struct nk_sandbox_error err = { 0 };

        *ret = (struct nk_cgroup_report) { 0 };
        int r = nk_cgroup_inspect(cgroup_root, &info, &err);
        snprintf(ret->root, sizeof ret->root, "%s", info.root);
        ret->limits = (info.available & NK_CG_MEMORY ? NK_LIMIT_MEMORY : 0) |
                      (info.available & NK_CG_PIDS ? NK_LIMIT_PIDS : 0) | (info.available & NK_CG_CPU ? NK_LIMIT_CPU : 0);
        ret->can_create = r >= 0 && info.writable;
        if (r < 0) {
                ret->limits = 0;
                snprintf(ret->problem, sizeof ret->problem, "%s", err.msg);
        } else if (!info.writable) {
                snprintf(ret->problem, sizeof ret->problem,
                         "this process cannot create cgroups under %.900s: hosts run without a cgroup leaf",
                         info.root);
                ret->limits = 0;
        }
}
