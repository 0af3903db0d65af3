/* SPDX-License-Identifier: Apache-2.0 */
/* The NIFKIT_* variables that concern one host, applied to it (operator.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nifkit_policy.h"
#include "operator.h"

/* The process's environment at each start: secure_getenv, so a setuid
 * program gives its hosts nothing. */
static const char *process_getenv(void *arg, const char *name)
{
        (void) arg;
        return secure_getenv(name);
}

int nk_operator_env_apply(const struct nk_operator_env *e, nk_host *h, bool override_host)
{
        int r = 0;

        if (e->host && override_host)
                r = nk_host_set_host_binary(h, e->host);
        if (r >= 0 && e->cgroup_root)
                r = nk_host_set_cgroup_root(h, e->cgroup_root);
        if (r >= 0 && e->audit_log)
                r = nk_host_set_audit_log(h, e->audit_log);
        if (r < 0)
                return r;
        if (e->unsandboxed)
                nk_host_allow_unsandboxed_development(h);
        nk_host_set_sandbox_ids(h, e->sandbox_uid, e->sandbox_gid);
        nk_host_set_environment(h, process_getenv, NULL);
        return 0;
}

/* $NIFKIT_POLICY's policy, loaded at the first host and kept for the
 * process's life: a host does not copy its policy. */
static pthread_mutex_t policy_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nk_policy *env_policy;
static char env_policy_path[4096];

nk_host *nk_operator_host_new(struct nk_policy_error *err)
{
        struct nk_operator_env e;
        struct nk_policy_error ignored;
        int r = 0;

        if (!err)
                err = &ignored;
        memset(err, 0, sizeof *err);
        nk_operator_env_read(&e);
        nk_host *h = nk_host_new();
        if (!h) {
                snprintf(err->msg, sizeof err->msg, "%s", strerror(ENOMEM));
                return NULL;
        }
        if (e.policy) {
                pthread_mutex_lock(&policy_lock);
                if (!env_policy || strcmp(env_policy_path, e.policy) != 0) {
                        struct nk_policy *p;
                        r = nk_policy_load(e.policy, &p, err);
                        if (r >= 0) {
                                /* The previous one may still serve a host. */
                                env_policy = p;
                                snprintf(env_policy_path, sizeof env_policy_path, "%s", e.policy);
                        }
                }
                if (r >= 0)
                        nk_host_set_policy(h, env_policy);
                pthread_mutex_unlock(&policy_lock);
        }
        if (r >= 0 && (r = nk_operator_env_apply(&e, h, true)) < 0)
                snprintf(err->msg, sizeof err->msg, "%s", strerror(-r));
        if (r < 0) {
                nk_host_free(h);
                return NULL;
        }
        return h;
}
