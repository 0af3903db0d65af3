/* SPDX-License-Identifier: Apache-2.0 */
/* nifkit policy explain: a policy in plain words (explain.c). */
#ifndef NIFKIT_EXPLAIN_H
#define NIFKIT_EXPLAIN_H

#include <stdio.h>

#include "nifkit.h"
#include "nifkit_policy.h"

/* What p (loaded from name) lets a host do, and what machine says this
 * machine would leave unenforced. */
void nk_policy_explain(FILE *out, const char *name, const struct nk_policy *p, const struct nk_cgroup_report *machine);

#endif
