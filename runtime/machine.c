/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What this machine allows and enforces (nifkit.h): the cgroup report for
 * `nifkit policy explain`, and the checks of `nifkit doctor`. Probes that
 * could change anything run in a child process; nothing is written.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bwrap_probe.h"
#include "machine.h"
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
        if (r < 0)
                snprintf(ret->problem, sizeof ret->problem, "%s", err.msg);
        else if (!info.writable)
                snprintf(ret->problem, sizeof ret->problem,
                         "this process cannot create cgroups under %.900s: hosts run without a cgroup leaf",
                         info.root);
        else
                ret->limits = (info.available & NK_CG_MEMORY ? NK_LIMIT_MEMORY : 0) |
                              (info.available & NK_CG_PIDS ? NK_LIMIT_PIDS : 0) |
                              (info.available & NK_CG_CPU ? NK_LIMIT_CPU : 0);
}

/* ---- nk_machine_checks ------------------------------------------------------- */

struct checks {
        struct nk_check *v;
        size_t n, max;
};

__attribute__((format(printf, 4, 5))) static struct nk_check *add(struct checks *c, const char *name,
                                                                  enum nk_check_status st, const char *fmt, ...)
{
        static struct nk_check spare;
        struct nk_check *k = c->n < c->max ? &c->v[c->n++] : &spare;
        va_list ap;

        *k = (struct nk_check) { .status = st };
        snprintf(k->name, sizeof k->name, "%s", name);
        va_start(ap, fmt);
        vsnprintf(k->detail, sizeof k->detail, fmt, ap);
        va_end(ap);
        return k;
}

/* A sysctl's integer, or -1 when the file is not there (not this kernel's). */
static long sysctl_value(const char *dir, const char *name)
{
        char path[4200], buf[64];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        char *got = fgets(buf, sizeof buf, f);
        fclose(f);
        return got ? strtol(buf, NULL, 10) : -1;
}

static void kernel(struct checks *c)
{
        struct utsname u;
        int major = 0, minor = 0;

        if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2) {
                add(c, "kernel", NK_CHECK_WARN, "cannot read the kernel's release");
                return;
        }
        /* clone3 into a cgroup (5.7); the broker's openat2 (5.6). */
        if (major < 5 || (major == 5 && minor < 7)) {
                struct nk_check *k = add(c, "kernel", NK_CHECK_FAIL, "Linux %s: nifkit needs 5.7 or later "
                                         "(clone3 into a cgroup, openat2 for the broker)", u.release);
                snprintf(k->fix, sizeof k->fix, "run a newer kernel");
                return;
        }
        add(c, "kernel", NK_CHECK_OK, "Linux %s", u.release);
}

/* The sysctls that restrict user namespaces, in the order they are
 * weighed, and the value at which each does. Debian's and Ubuntu's
 * switches stop unprivileged callers only. */
enum userns_switch { SW_MAX, SW_CLONE, SW_APPARMOR, SW_NONE };
static const struct {
        const char *file;
        long restricts;
        bool stops_root;
} userns_switches[] = {
        [SW_MAX] = { "user/max_user_namespaces", 0, true },
        [SW_CLONE] = { "kernel/unprivileged_userns_clone", 0, false },
        [SW_APPARMOR] = { "kernel/apparmor_restrict_unprivileged_userns", 1, false },
};

/* The first switch set to restrict, and whether it stops this process. */
static enum userns_switch userns_restricted(const char *dir, bool *ret_stops)
{
        for (int i = SW_MAX; i < SW_NONE; i++)
                if (sysctl_value(dir, userns_switches[i].file) == userns_switches[i].restricts) {
                        *ret_stops = userns_switches[i].stops_root || geteuid() != 0;
                        return (enum userns_switch) i;
                }
        *ret_stops = false;
        return SW_NONE;
}

/* What an errno from creating a host's namespaces means, with what to do. */
static const char *namespaces_cause(int e)
{
        switch (e) {
        case EPERM:
                return "refused by policy, not by the kernel's limits: in a container, its seccomp profile or "
                       "missing capabilities (Docker: --security-opt seccomp=unconfined or a profile that allows "
                       "clone/unshare with CLONE_NEWUSER; Kubernetes: a pod with user namespaces or an allowing "
                       "seccompProfile)";
        case ENOSPC:
                return "a namespace limit is reached: raise user.max_user_namespaces (or the other "
                       "max_*_namespaces under /proc/sys/user)";
        case EINVAL:
                return "this kernel lacks a namespace type nifkit needs (CONFIG_USER_NS, CONFIG_PID_NS, "
                       "CONFIG_NET_NS, CONFIG_CGROUPS)";
        default:
                return NULL;
        }
}

static void userns_sysctls(struct checks *c, const char *dir)
{
        bool root = geteuid() == 0, stops;
        enum userns_switch sw = userns_restricted(dir, &stops);
        enum nk_check_status st = stops ? NK_CHECK_FAIL : NK_CHECK_WARN;
        struct nk_check *k;

        if (sw == SW_MAX) {
                k = add(c, "user namespaces", NK_CHECK_FAIL, "user.max_user_namespaces is 0: no process may "
                        "create a user namespace, so no host can start sandboxed");
                snprintf(k->fix, sizeof k->fix, "sysctl -w user.max_user_namespaces=15000, and the same line in "
                         "/etc/sysctl.d/ to keep it; in a container, the host's value applies");
                return;
        }
        if (sw == SW_CLONE) {
                k = add(c, "user namespaces", st,
                        "kernel.unprivileged_userns_clone is 0: only root may create user namespaces%s", root
                        ? "; this runtime is root, so the native launcher works, but the bwrap launcher runs "
                          "bubblewrap as the hosts' unprivileged id and is refused"
                        : ", and this runtime is not root");
                snprintf(k->fix, sizeof k->fix, "sysctl -w kernel.unprivileged_userns_clone=1, and the same line "
                         "in /etc/sysctl.d/ to keep it");
                return;
        }
        if (sw == SW_APPARMOR) {
                k = add(c, "user namespaces", st,
                        "kernel.apparmor_restrict_unprivileged_userns is 1: AppArmor lets an unconfined "
                        "unprivileged process create a user namespace only to lose every capability in it%s",
                        root ? "; this runtime is root, so the native launcher works, but bubblewrap is refused"
                             : ", and this runtime is not root");
                snprintf(k->fix, sizeof k->fix, "give beam.smp (and bwrap) an AppArmor profile that allows "
                         "\"userns,\" (Ubuntu 23.10 and later ship one for bwrap), or sysctl -w "
                         "kernel.apparmor_restrict_unprivileged_userns=0");
                return;
        }
        long max = sysctl_value(dir, userns_switches[SW_MAX].file);
        if (max > 0)
                add(c, "user namespaces", NK_CHECK_OK, "allowed (user.max_user_namespaces %ld)", max);
        else
                add(c, "user namespaces", NK_CHECK_OK, "no sysctl restricts them");
}

/* Runs fn in a child and returns its errno (0: it worked), so that
 * nothing it tries touches this process. */
static int in_child(int (*fn)(void))
{
        pid_t pid = fork();
        if (pid < 0)
                return errno;
        if (pid == 0)
                _exit(fn() < 0 ? (errno & 0xff) : 0);
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
}

static int try_namespaces(void)
{
        return unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                       CLONE_NEWCGROUP);
}

static void namespaces(struct checks *c)
{
        int e = in_child(try_namespaces);
        struct nk_check *k;

        if (e == 0) {
                add(c, "namespaces", NK_CHECK_OK, "a new user, mount, pid, network, IPC, UTS and cgroup namespace "
                    "can be made");
                return;
        }
        k = add(c, "namespaces", NK_CHECK_FAIL, "creating a host's namespaces failed: %s", strerror(e));
        const char *cause = namespaces_cause(e);
        /* On a whole machine, a security module is one more suspect. */
        if (cause)
                snprintf(k->fix, sizeof k->fix, "%s%s", cause, e == EPERM ? "; otherwise AppArmor or SELinux" : "");
}

static int try_seccomp(void)
{
        struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        struct sock_fprog prog = { .len = 1, .filter = &allow };
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -1;
        return (int) syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static void seccomp(struct checks *c)
{
        int e = in_child(try_seccomp);
        struct nk_check *k;
        char line[128];
        int mode = -1;
        FILE *f = fopen("/proc/self/status", "re");
        while (f && fgets(line, sizeof line, f))
                if (sscanf(line, "Seccomp: %d", &mode) == 1)
                        break;
        if (f)
                fclose(f);

        if (e != 0) {
                k = add(c, "seccomp", NK_CHECK_FAIL, "installing a seccomp filter failed: %s", strerror(e));
                snprintf(k->fix, sizeof k->fix, "the kernel needs CONFIG_SECCOMP_FILTER; in a container, allow "
                         "seccomp(2) and prctl(2)");
                return;
        }
        add(c, "seccomp", NK_CHECK_OK, "a filter can be installed%s",
            mode == 2 ? " (this process already runs under one, a container's: the hosts' stacks on it)" : "");
}

static void cgroup(struct checks *c, const char *cgroup_root)
{
        struct nk_cgroup_report r;
        struct nk_check *k;

        nk_cgroup_report(cgroup_root, &r);
        if (r.limits == (NK_LIMIT_MEMORY | NK_LIMIT_PIDS | NK_LIMIT_CPU)) {
                add(c, "cgroup v2", NK_CHECK_OK, "memory, pids and cpu are delegated under %.900s", r.root);
                return;
        }
        k = add(c, "cgroup v2", NK_CHECK_WARN, "limits not enforceable by a cgroup here: policies with "
                "\"cgroup\": \"required\" refuse to start, best-effort ones start with rlimits only (%s%s%s "
                "available)", r.limits & NK_LIMIT_MEMORY ? "memory " : "", r.limits & NK_LIMIT_PIDS ? "pids " : "",
                r.limits & NK_LIMIT_CPU ? "cpu " : r.limits ? "" : "none");
        snprintf(k->fix, sizeof k->fix, "%s", r.problem[0] ? r.problem
                                                           : "delegate memory, pids and cpu (systemd: Delegate=yes)");
}

static void bubblewrap(struct checks *c, const char *search_path)
{
        char path[4096];
        unsigned v = 0;
        struct nk_check *k;

        if (nk_bwrap_find(search_path, path, sizeof path) < 0) {
                k = add(c, "bubblewrap", NK_CHECK_WARN, "bwrap is not installed: policies with \"launcher\": "
                        "\"bwrap\" cannot start (the native launcher is not affected)");
                snprintf(k->fix, sizeof k->fix, "apt-get install bubblewrap");
                return;
        }
        if (nk_bwrap_version(path, &v) < 0) {
                add(c, "bubblewrap", NK_CHECK_WARN, "%.900s does not say its version", path);
                return;
        }
        if (v < 700) {
                k = add(c, "bubblewrap", NK_CHECK_WARN, "%.900s is %u.%u.%u: /tmp's size limit needs 0.7.0 (--size)",
                        path, v / 10000, v / 100 % 100, v % 100);
                snprintf(k->fix, sizeof k->fix, "install bubblewrap 0.7.0 or later");
                return;
        }
        add(c, "bubblewrap", NK_CHECK_OK, "%.900s %u.%u.%u", path, v / 10000, v / 100 % 100, v % 100);
}

NK_EXPORT size_t nk_machine_checks(const char *proc_sys, const char *cgroup_root, const char *search_path,
                                   struct nk_check *ret, size_t max)
{
        struct checks c = { .v = ret, .max = max };

        kernel(&c);
        userns_sysctls(&c, proc_sys ? proc_sys : "/proc/sys");
        namespaces(&c);
        seccomp(&c);
        cgroup(&c, cgroup_root);
        bubblewrap(&c, search_path);
        return c.n;
}

/* ---- why a host's namespaces could not be made ------------------------------- */

void nk_machine_start_hint(const char *proc_sys, int err, char *buf, size_t size)
{
        bool stops;
        enum userns_switch sw = userns_restricted(proc_sys ? proc_sys : "/proc/sys", &stops);
        const char *cause = namespaces_cause(err);

        if (!stops)
                sw = SW_NONE;   /* set, but not for this process: the errno says what stopped it */
        switch (sw) {
        case SW_MAX:
                snprintf(buf, size, "user namespaces are switched off here (user.max_user_namespaces is 0); fix: "
                         "sysctl -w user.max_user_namespaces=15000");
                break;
        case SW_CLONE:
                snprintf(buf, size, "only root may create user namespaces here "
                         "(kernel.unprivileged_userns_clone is 0); fix: sysctl -w kernel.unprivileged_userns_clone=1");
                break;
        case SW_APPARMOR:
                snprintf(buf, size, "AppArmor restricts unprivileged user namespaces "
                         "(kernel.apparmor_restrict_unprivileged_userns is 1); fix: an AppArmor profile allowing "
                         "\"userns,\" for beam.smp, or that sysctl at 0");
                break;
        case SW_NONE:
                if (!cause) {
                        buf[0] = '\0';
                        return;
                }
                snprintf(buf, size, "%s", cause);
                break;
        }
        size_t n = strlen(buf);
        if (n + 1 < size)
                snprintf(buf + n, size - n, " (nifkit doctor checks the whole machine)");
}
