/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox plan: everything a host's sandbox holds, decided once from
 * the policy's sandbox config before any process exists — the files the
 * host sees (ELF dependencies, companions, plugin directories, the mount
 * list), its environment, the seccomp program, the capabilities to drop,
 * the cgroup leaf or the best-effort decision to go without one, and the
 * rlimits. The native launcher executes the plan (sequencer.c); the
 * bubblewrap launcher translates it into bwrap's options
 * (launch_bwrap.c). Neither decides anything about the sandbox's contents
 * by itself.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher.h"
#include "macro.h"
#include "sequencer.h"

void nk_sandbox_plan_log(const struct nk_sandbox_plan *p, const char *fmt, ...)
{
        char msg[768];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (p->log)
                p->log(p->log_arg, msg);
}

static unsigned needed_controllers(const struct nk_sandbox_config *cfg)
{
        return (cfg->memory_bytes ? NK_CG_MEMORY : 0) | (cfg->pids ? NK_CG_PIDS : 0) |
               (cfg->cpu_percent ? NK_CG_CPU : 0);
}

/* The cgroup leaf, or the best-effort decision to go without (some of) it.
 * Sets *ret_memory when the leaf limits memory. */
static int prepare_cgroup(struct nk_sandbox_plan *p, bool *ret_memory, struct nk_sandbox_error *err)
{
        static atomic_uint counter;
        const struct nk_sandbox_config *cfg = &p->cfg;
        unsigned needed = needed_controllers(cfg);
        struct nk_cgroup_info info;
        char names[64];

        *ret_memory = false;
        int r = nk_cgroup_detect(cfg->cgroup_root, &info, err);
        if (r < 0) {
                if (cfg->cgroup_required)
                        return r;
                nk_sandbox_plan_log(p, "cgroup v2 limits are NOT enforced for %s: %s; falling back to rlimits "
                                    "(RLIMIT_AS from the memory limit, RLIMIT_NOFILE, RLIMIT_FSIZE); pids and cpu are not limited",
                                    cfg->library, err ? err->msg : "no usable cgroup v2");
                return 0;
        }
        unsigned missing = needed & ~info.available;
        if (missing && cfg->cgroup_required)
                return nk_sandbox_error_set(err, -EOPNOTSUPP,
                                            "the policy requires cgroup controllers that %s does not delegate: %s "
                                            "(enable them in its cgroup.subtree_control, e.g. systemd Delegate=yes)",
                                            info.root, nk_cgroup_mask_name(missing, names, sizeof names));
        if (missing)
                nk_sandbox_plan_log(p, "cgroup controllers %s are missing under %s: those limits are NOT enforced for %s%s",
                                    nk_cgroup_mask_name(missing, names, sizeof names), info.root, cfg->library,
                                    missing & NK_CG_MEMORY ? " (RLIMIT_AS stands in for memory)" : "");
        if (!info.writable) {
                if (cfg->cgroup_required)
                        return nk_sandbox_error_set(err, -EACCES, "cannot create cgroups under %s", info.root);
                nk_sandbox_plan_log(p, "cannot create cgroups under %s: the host for %s runs without a cgroup leaf",
                                    info.root, cfg->library);
                return 0;
        }

        char name[64];
        snprintf(name, sizeof name, "nifkit-host-%d-%u", (int) getpid(), atomic_fetch_add(&counter, 1));
        r = nk_cgroup_create(&info, name, cfg, &p->cgroup, err);
        if (r < 0) {
                if (cfg->cgroup_required)
                        return r;
                nk_sandbox_plan_log(p, "cgroup leaf not created, limits NOT enforced for %s: %s", cfg->library,
                                    err ? err->msg : "");
                p->cgroup = NULL;
                return 0;
        }
        *ret_memory = (info.available & NK_CG_MEMORY) != 0;
        return 0;
}

static int prepare_env(struct nk_sandbox_plan *p)
{
        size_t n;
        int r = nk_sandbox_env(&p->cfg, 1, &p->env, &n);
        if (r < 0)
                return r;
        p->env_n = n;
        /* Where the host reports the signal it dies of (launcher.h), for
         * the launcher that gives it the pipe. */
        if (asprintf(&p->env[n], "NIFKIT_REPORT_FD=%d", NK_HOST_REPORT_FD) < 0) {
                p->env[n] = NULL;
                return -ENOMEM;
        }
        return 0;
}

static int prepare_deps(struct nk_sandbox_plan *p, struct nk_sandbox_error *err)
{
        return nk_elf_resolve_host(&p->cfg, &p->deps, err);
}

int nk_sandbox_prepare(const struct nk_sandbox_config *cfg, nk_sandbox_log_fn log, void *log_arg,
                       struct nk_sandbox_plan **ret, struct nk_sandbox_error *err)
{
        if (!cfg->host_binary || cfg->host_binary[0] != '/' || !cfg->library || cfg->library[0] != '/')
                return nk_sandbox_error_set(err, -EINVAL, "the host binary and the library need absolute paths");

        struct nk_sandbox_plan *p = calloc(1, sizeof *p);
        if (!p)
                return nk_sandbox_error_set(err, -ENOMEM, "out of memory");
        p->cfg = *cfg;
        p->log = log;
        p->log_arg = log_arg;
        p->host_binary = strdup(cfg->host_binary);
        p->library = strdup(cfg->library);
        int r = -ENOMEM;
        if (!p->host_binary || !p->library || prepare_env(p) < 0) {
                nk_sandbox_error_set(err, r, "out of memory");
                goto fail;
        }
        p->cfg.host_binary = p->host_binary;
        p->cfg.library = p->library;
        p->cfg.extra_ro = NULL;

        r = prepare_deps(p, err);
        if (r < 0)
                goto fail;
        for (size_t i = 0; cfg->extra_ro && cfg->extra_ro[i] && r >= 0; i++)
                r = nk_pathset_add(&p->extra, cfg->extra_ro[i]);
        if (r >= 0)
                r = nk_pathset_add(&p->extra, "");      /* room for the terminating NULL */
        if (r < 0) {
                nk_sandbox_error_set(err, r, "out of memory");
                goto fail;
        }
        free(p->extra.paths[p->extra.n - 1]);
        p->extra.paths[--p->extra.n] = NULL;
        p->cfg.extra_ro = (const char *const *) p->extra.paths;
        r = nk_mount_prepare(&p->cfg, &p->deps, &p->mounts, err);
        if (r < 0)
                goto fail;
        p->fds = calloc(p->mounts.n ? p->mounts.n : 1, sizeof *p->fds);
        if (!p->fds) {
                r = nk_sandbox_error_set(err, -ENOMEM, "out of memory");
                goto fail;
        }
        r = nk_netns_prepare(&p->net, err);
        if (r < 0)
                goto fail;
        r = nk_caps_prepare(&p->caps, err);
        if (r < 0)
                goto fail;
        r = nk_seccomp_build(&p->seccomp, err);
        if (r < 0)
                goto fail;
        p->have_seccomp = true;
        bool cg_memory;
        r = prepare_cgroup(p, &cg_memory, err);
        if (r < 0)
                goto fail;
        nk_rlimits_prepare(&p->cfg, !cg_memory, &p->rlimits);
        *ret = p;
        return 0;
fail:
        nk_sandbox_plan_free(p);
        return r;
}

const char *nk_sandbox_plan_mount_at(const struct nk_sandbox_plan *p, const struct nk_mount_entry *e)
{
        return e->dst + strlen(p->mounts.staging);
}

bool nk_sandbox_plan_memory_by_rlimit(const struct nk_sandbox_plan *p)
{
        return p->rlimits.as_bytes != 0;
}

void nk_sandbox_plan_free(struct nk_sandbox_plan *p)
{
        if (!p)
                return;
        nk_pathset_free(&p->deps);
        nk_pathset_free(&p->extra);
        nk_mount_plan_free(&p->mounts);
        free(p->fds);
        nk_netns_plan_free(&p->net);
        if (p->have_seccomp)
                nk_seccomp_free(&p->seccomp);
        nk_cgroup_destroy(p->cgroup);
        nk_sandbox_env_free(p->env);
        free(p->host_binary);
        free(p->library);
        free(p);
}

