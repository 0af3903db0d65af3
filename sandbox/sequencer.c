/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one place that decides in which order the sandbox is built
 * (DESIGN.md, "The sandbox"):
 *
 *   parent, before clone3: ELF dependencies, mount plan, netlink message,
 *       capabilities to drop, seccomp program, cgroup leaf (or the
 *       best-effort decision), rlimits;
 *   clone3: new user, mount, network, pid, ipc, uts and cgroup namespaces,
 *       a pidfd, placed in the leaf (CLONE_INTO_CGROUP), exit_signal 0;
 *   parent: setgroups deny, uid_map, gid_map, then releases the child;
 *   child: /dev/null, output pipes, channel as fd 3, exit report as fd 5
 *       → sources opened → inside ids → new root,
 *       pivot_root, old root detached, / read-only → hostname → loopback up
 *       → rlimits → every other fd closed → capabilities, bounding set,
 *       securebits, no_new_privs → seccomp, last → exec nifkit-host.
 *
 * BEAM ignores SIGCHLD, and the kernel then reaps a SIGCHLD child by itself,
 * losing the exit status a reason needs. exit_signal 0 keeps the child out
 * of that (and out of BEAM's own wait4(-1) calls) until it execs, but exec
 * resets the exit signal to SIGCHLD; so the launcher reads a reaped host's
 * status through its pidfd (Linux 6.15+, nk_pidfd_exit) or, before that,
 * from the signal the host reported on its exit report pipe.
 *
 * The host is the init of its pid namespace. SIGKILL from the runtime (an
 * ancestor namespace) always works; the kernel ignores default-action
 * signals an init sends itself, so the host catches the fatal ones and
 * turns them into faults (hosts/pid1.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>

#include "launcher.h"
#include "macro.h"
#include "sequencer.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define HOSTNAME "nifkit-host"

/* clone3's argument, spelled out for kernel headers older than 5.7. */
struct clone_args_v2 {
        uint64_t flags;
        uint64_t pidfd;
        uint64_t child_tid;
        uint64_t parent_tid;
        uint64_t exit_signal;
        uint64_t stack;
        uint64_t stack_size;
        uint64_t tls;
        uint64_t set_tid;
        uint64_t set_tid_size;
        uint64_t cgroup;
};

struct nk_sandbox_plan {
        struct nk_sandbox_config cfg;
        char *host_binary;
        char *library;
        struct nk_pathset deps;
        struct nk_pathset extra;        /* the caller's extra_ro and the library's directory */
        struct nk_mount_plan mounts;
        int *fds;               /* room for the child's O_PATH fds, one per mount */
        struct nk_netns_plan net;
        struct nk_rlimits_plan rlimits;
        struct nk_caps_plan caps;
        struct nk_seccomp_program seccomp;
        bool have_seccomp;
        struct nk_cgroup *cgroup;
        bool cgroup_required;
        nk_sandbox_log_fn log;
        void *log_arg;
        char **env;             /* nk_sandbox_env's, and NIFKIT_REPORT_FD */
};

int nk_child_fail(struct nk_child_err *e, int code, const char *a, const char *b, const char *c)
{
        const char *parts[] = { a, b, c };
        size_t w = 0;
        for (size_t i = 0; i < NK_ARRAY_SIZE(parts) && parts[i]; i++)
                for (const char *s = parts[i]; *s && w < sizeof e->what - 1; s++)
                        e->what[w++] = *s;
        e->what[w] = '\0';
        e->code = code;
        return code;
}

__attribute__((format(printf, 2, 3)))
static void plan_log(const struct nk_sandbox_plan *p, const char *fmt, ...)
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
                plan_log(p, "cgroup v2 limits are NOT enforced for %s: %s; falling back to rlimits "
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
                plan_log(p, "cgroup controllers %s are missing under %s: those limits are NOT enforced for %s%s",
                         nk_cgroup_mask_name(missing, names, sizeof names), info.root, cfg->library,
                         missing & NK_CG_MEMORY ? " (RLIMIT_AS stands in for memory)" : "");
        if (!info.writable) {
                if (cfg->cgroup_required)
                        return nk_sandbox_error_set(err, -EACCES, "cannot create cgroups under %s", info.root);
                plan_log(p, "cannot create cgroups under %s: the host for %s runs without a cgroup leaf",
                         info.root, cfg->library);
                return 0;
        }

        char name[64];
        snprintf(name, sizeof name, "nifkit-host-%d-%u", (int) getpid(), atomic_fetch_add(&counter, 1));
        r = nk_cgroup_create(&info, name, cfg, &p->cgroup, err);
        if (r < 0) {
                if (cfg->cgroup_required)
                        return r;
                plan_log(p, "cgroup leaf not created, limits NOT enforced for %s: %s", cfg->library,
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
        /* Where the host reports the signal it dies of (launcher.h). */
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

/* ---- the child ------------------------------------------------------------- */

static int child_steps(struct nk_sandbox_plan *p, struct nk_child_fds *fds, int *sync_fd, struct nk_child_err *e)
{
        int r = nk_fds_child_arrange(fds, e);
        *sync_fd = fds->sync;
        if (r < 0)
                return r;

        /* The parent writes the id maps, then says go; EOF means it gave up. */
        char go = 0;
        ssize_t n;
        do
                n = read(*sync_fd, &go, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1)
                return nk_child_fail(e, -ECANCELED, "waiting for the parent", NULL, NULL);

        r = nk_mount_child_open(&p->mounts, p->fds, e);
        if (r >= 0)
                r = nk_userns_child(p->cfg.inside_uid, p->cfg.inside_gid, e);
        if (r >= 0)
                r = nk_mount_child_build(&p->mounts, p->fds, e);
        if (r < 0)
                return r;
        if (sethostname(HOSTNAME, sizeof HOSTNAME - 1) < 0)
                return nk_child_fail(e, -errno, "setting the hostname", NULL, NULL);
        r = nk_netns_child(&p->net, e);
        if (r >= 0)
                r = nk_rlimits_child(&p->rlimits, e);
        if (r >= 0)
                r = nk_fds_child_close_rest(e);
        if (r >= 0)
                r = nk_caps_child(&p->caps, e);
        if (r < 0)
                return r;
        r = nk_seccomp_apply(&p->seccomp);
        if (r < 0)
                return nk_child_fail(e, r, "installing the seccomp filter", NULL, NULL);

        char *const argv[] = { (char *) "nifkit-host", (char *) "--fd", (char *) "3", NULL };
        execve(p->host_binary, argv, p->env);
        return nk_child_fail(e, -errno, "executing '", p->host_binary, "'");
}

static _Noreturn void child_main(struct nk_sandbox_plan *p, struct nk_child_fds fds)
{
        int sync_fd = fds.sync;
        /* Handlers are the caller's code: none may run here. */
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);

        struct nk_child_err e = { 0 };
        (void) child_steps(p, &fds, &sync_fd, &e);
        (void) !write(sync_fd, &e, sizeof e);
        _exit(127);
}

/* ---- the parent ---------------------------------------------------------------- */

static int do_clone(struct nk_sandbox_plan *p, struct nk_child_fds fds, bool into_cgroup, int *ret_pidfd)
{
        struct clone_args_v2 args = {
                .flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC |
                         CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_PIDFD,
                .pidfd = (uint64_t) (uintptr_t) ret_pidfd,
                .exit_signal = 0,
        };
        if (into_cgroup) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t) nk_cgroup_fd(p->cgroup);
        }

        /* No handler of the caller may run in the child before it resets
         * them; the parent's mask comes back right after. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        long pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0)
                child_main(p, fds);
        int saved = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return pid < 0 ? -saved : (int) pid;
}

static void kill_and_reap(int pidfd)
{
        siginfo_t si;
        (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        while (waitid((idtype_t) P_PIDFD, (id_t) pidfd, &si, WEXITED | __WALL) < 0 && errno == EINTR)
                ;
}

int nk_sandbox_spawn(struct nk_sandbox_plan *p, int channel_fd, int out_fd, int err_fd, int report_fd,
                     pid_t *ret_pid, int *ret_pidfd, struct nk_cgroup **ret_cgroup, struct nk_sandbox_error *err)
{
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return nk_sandbox_error_set(err, -errno, "cannot create the sync socket: %s", strerror(errno));
        _cleanup_close_ int sync_parent = sv[0];
        _cleanup_close_ int sync_child = sv[1];
        _cleanup_close_ int pidfd = -1;

        const struct nk_child_fds fds = { .out = out_fd, .err = err_fd, .channel = channel_fd, .sync = sync_child,
                                          .report = report_fd };
        int pid = do_clone(p, fds, p->cgroup != NULL, &pidfd);
        if (pid < 0 && p->cgroup && !p->cfg.cgroup_required) {
                plan_log(p, "cannot start the host for %s in cgroup %s (%s): it runs without a cgroup leaf",
                         p->library, nk_cgroup_path(p->cgroup), strerror(-pid));
                nk_cgroup_destroy(p->cgroup);
                p->cgroup = NULL;
                pid = do_clone(p, fds, false, &pidfd);
        }
        if (pid < 0)
                return nk_sandbox_error_set(err, pid, "clone3 into new namespaces failed: %s%s", strerror(-pid),
                                            pid == -ENOSYS ? " (clone3 needs Linux 5.3)" : "");
        nk_closep(&sync_child);
        sync_child = -1;

        int r = nk_userns_parent(pid, &p->cfg, err);
        if (r < 0) {
                kill_and_reap(pidfd);
                return r;
        }
        char go = 1;
        if (write(sync_parent, &go, 1) != 1) {
                r = nk_sandbox_error_set(err, -errno, "cannot release the host: %s", strerror(errno));
                kill_and_reap(pidfd);
                return r;
        }

        /* EOF: exec succeeded and closed the child's end. */
        struct nk_child_err e = { 0 };
        ssize_t n;
        do
                n = read(sync_parent, &e, sizeof e);
        while (n < 0 && errno == EINTR);
        if (n != 0) {
                kill_and_reap(pidfd);
                if (n != (ssize_t) sizeof e || e.code >= 0)
                        return nk_sandbox_error_set(err, -EIO, "the host's sandbox set-up failed without a reason");
                e.what[sizeof e.what - 1] = '\0';
                return nk_sandbox_error_set(err, e.code, "sandbox set-up failed: %s: %s", e.what, strerror(-e.code));
        }

        r = nk_caps_verify(pid, err);
        if (r < 0 && r != -ESRCH) {
                kill_and_reap(pidfd);
                return r;
        }
        *ret_pid = pid;
        *ret_pidfd = TAKE_FD(pidfd);
        *ret_cgroup = TAKE_PTR(p->cgroup);
        return 0;
}
