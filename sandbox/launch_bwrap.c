/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bubblewrap launcher: the same sandbox as the native launcher, built by
 * bwrap(1) from its options instead of by our sequencer. Both consume one
 * plan (plan.c): the files, environment, seccomp program, cgroup leaf and
 * rlimits come from it, translated here into options; nothing about what
 * the sandbox holds is decided in this file. It exists for machines where
 * people trust bubblewrap's well-reviewed setup code more than ours, and as
 * a second implementation the tests compare ours with
 * (tests/integration/bwrap: the same files, mounts, rlimits and privileges
 * under both).
 *
 *   runtime ──clone3──> bwrap (the "monitor", outside, in our cgroup)
 *                         └─ clone ─> sandboxed child (pid 1 of its pid ns,
 *                                     in the host's cgroup leaf) ─exec─> nifkit-host --fd 3
 *
 * Order: the runtime forks, applies the rlimits (inherited through both
 * execs), becomes the outside ids, and execs bwrap with the channel at fd 3,
 * --info-fd 4, --block-fd 5, --seccomp 6, --json-status-fd 7. bwrap writes
 * the child's pid to fd 4 once its namespaces exist; the runtime moves that
 * pid into the cgroup leaf and only then writes to fd 5, so nothing of the
 * host runs outside it. Fd 7 gets the exit code as bwrap's monitor exits.
 * The host's bwrap closes 4 to 7 before exec: the host inherits /dev/null
 * as stdin, two pipes the launcher copies to the caller's stdout and
 * stderr, and the channel (every other descriptor is closed before bwrap).
 *
 * Differences from the native launcher that remain:
 *  - The outside ids: bwrap is run as the outside uid/gid (setresuid before
 *    exec), so when the runtime is root the user namespace is created
 *    unprivileged: this needs unprivileged user namespaces
 *    (kernel.unprivileged_userns_clone=1, Debian's default), and the host
 *    binary, the NIF and its libraries must be readable by that uid. The
 *    native launcher maps the ids from the privileged parent instead.
 *  - The environment: the same as the native launcher's (nk_sandbox_env),
 *    but bwrap always sets PWD=/.
 *  - Mount flags: the binds are ro,nosuid,nodev, /proc is
 *    nosuid,nodev,noexec, and /dev is a directory of the read-only root
 *    holding the same four device nodes (null, zero, random, urandom; not
 *    --dev, whose devpts would make bwrap nest a second user namespace)
 *    with both launchers; but bwrap's root and device binds lack the
 *    noexec the native launcher gives them (the root holds only
 *    directories either way). bwrap's root and /tmp belong to the host's
 *    uid, /tmp with mode 755 (native: 1777); the host alone uses it.
 *  - /tmp's size: passed with --size (bubblewrap 0.7.0 and later, not
 *    setuid). With an older or setuid bwrap the tmpfs has the kernel's
 *    default size (half of RAM), only RLIMIT_FSIZE bounds each file, and
 *    the launcher says so through the log callback.
 *  - The cgroup namespace is created at clone time, before the child is
 *    moved into its leaf, so its root is the runtime's cgroup, not the
 *    leaf (no cgroupfs is mounted inside either way). bwrap's monitor
 *    process stays in the runtime's cgroup.
 *  - Loopback is brought up by bwrap itself (its loopback_setup), not by
 *    libnl-route-3.
 *  - The host is pid 1 of its pid namespace (--as-pid-1): bwrap's own init
 *    would otherwise run under the host's seccomp filter, which does not
 *    allow the wait4 it reaps with.
 *  - The runtime's child is bwrap's monitor, not the host: a signal other
 *    than SIGKILL kills the monitor, whose death kills the host
 *    (--die-with-parent); the monitor reports a host killed by signal N as
 *    exit status 128 + N, which wait turns back into signal N (nifkit-host
 *    never exits with a status above 128 by itself, except 128 + SIGSYS
 *    after a seccomp trap, which is reported as SIGSYS either way).
 *    bwrap's child sets its parent-death signal only after --block-fd, so
 *    a runtime that dies in that instant leaves the host without it; the
 *    host then finds its channel closed and exits by itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bwrap_probe.h"
#include "child.h"
#include "launcher.h"
#include "macro.h"
#include "sequencer.h"


/* The descriptors bwrap is started with. The channel is 3 for bwrap and
 * stays 3 for the host. */
enum {
        FD_INFO = NK_HOST_CHANNEL_FD + 1,
        FD_BLOCK,
        FD_SECCOMP,
        FD_STATUS,      /* --json-status-fd: the exit code, whoever reaps bwrap */
        FD_ERR,         /* close-on-exec: EOF tells the runtime bwrap was executed */
        FD_FIRST_FREE,
};

/* How long bwrap may take to create its namespaces and report the child. */
#define INFO_TIMEOUT_MS 10000
#define INFO_MAX 4096

/* ---- the command line ------------------------------------------------------------ */

struct argv_builder {
        char **v;
        size_t n, cap;
        bool failed;
};

static void arg(struct argv_builder *a, const char *s)
{
        if (a->failed)
                return;
        if (a->n + 2 > a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 64;
                char **v = realloc(a->v, cap * sizeof *v);
                if (!v) {
                        a->failed = true;
                        return;
                }
                a->v = v;
                a->cap = cap;
        }
        a->v[a->n] = strdup(s);
        if (!a->v[a->n]) {
                a->failed = true;
                return;
        }
        a->v[++a->n] = NULL;
}

__attribute__((format(printf, 2, 3)))
static void argf(struct argv_builder *a, const char *fmt, ...)
{
        char buf[64];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        arg(a, buf);
}

static void argv_free(struct argv_builder *a)
{
        for (size_t i = 0; i < a->n; i++)
                free(a->v[i]);
        free(a->v);
        *a = (struct argv_builder) {};
}

static int build_argv(const struct nk_sandbox_plan *plan, bool have_size, bool have_status, struct argv_builder *a)
{
        const struct nk_sandbox_config *sc = &plan->cfg;
        arg(a, "bwrap");
        /* --unshare-all only tries the user and cgroup namespaces: insist. */
        arg(a, "--unshare-all");
        arg(a, "--unshare-user");
        arg(a, "--unshare-cgroup");
        arg(a, "--uid");
        argf(a, "%u", (unsigned) sc->inside_uid);
        arg(a, "--gid");
        argf(a, "%u", (unsigned) sc->inside_gid);
        arg(a, "--hostname");
        arg(a, "nifkit-host");
        arg(a, "--die-with-parent");
        arg(a, "--new-session");
        arg(a, "--as-pid-1");
        arg(a, "--cap-drop");
        arg(a, "ALL");
        /* No --clearenv (0.6.0 and later): bwrap itself is started with an
         * empty environment, which is what the host inherits, with the
         * plan's (not its exit report's: bwrap's status fd stands in). */
        for (size_t i = 0; i < plan->env_n; i++) {
                const char *eq = strchr(plan->env[i], '=');
                if (!eq)
                        continue;
                _cleanup_free_ char *name = strndup(plan->env[i], (size_t) (eq - plan->env[i]));
                if (!name)
                        return -ENOMEM;
                arg(a, "--setenv");
                arg(a, name);
                arg(a, eq + 1);
        }
        /* The file systems first: binds of files that live under /tmp
         * (a build tree, say) must land on the new /tmp, not under it. */
        arg(a, "--proc");
        arg(a, "/proc");
        if (have_size && sc->tmp_mb) {
                arg(a, "--size");
                argf(a, "%llu", (unsigned long long) sc->tmp_mb << 20);
        }
        arg(a, "--tmpfs");
        arg(a, "/tmp");
        /* Then the plan's mounts, each at its own path: the device nodes the
         * native root has, not --dev (that would add tty, pts and shm, and
         * its devpts needs bwrap to nest a second user namespace), and
         * every file and directory read-only. /dev itself is read-only
         * with the root. */
        for (size_t i = 0; i < plan->mounts.n; i++) {
                const struct nk_mount_entry *e = &plan->mounts.entries[i];
                const char *at = nk_sandbox_plan_mount_at(plan, e);
                arg(a, e->kind == NK_MOUNT_DEV ? "--dev-bind" : "--ro-bind");
                arg(a, e->src);
                arg(a, at);
        }
        /* After every mount that needs to create its mount point. */
        arg(a, "--remount-ro");
        arg(a, "/");
        arg(a, "--seccomp");
        argf(a, "%d", FD_SECCOMP);
        arg(a, "--info-fd");
        argf(a, "%d", FD_INFO);
        arg(a, "--block-fd");
        argf(a, "%d", FD_BLOCK);
        if (have_status) {
                arg(a, "--json-status-fd");
                argf(a, "%d", FD_STATUS);
        }
        arg(a, "--chdir");
        arg(a, "/");
        arg(a, "--");
        arg(a, sc->host_binary);
        arg(a, "--fd");
        argf(a, "%d", NK_HOST_CHANNEL_FD);
        return a->failed ? -ENOMEM : 0;
}

/* ---- the cgroup leaf ---------------------------------------------------------- */

/* Moves pid into the leaf (bwrap's child, blocked before it execs). */
static int cgroup_place(struct nk_cgroup *cg, pid_t pid)
{
        _cleanup_close_ int fd = openat(nk_cgroup_fd(cg), "cgroup.procs", O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%d\n", (int) pid);
        ssize_t n = write(fd, buf, (size_t) len);
        if (n < 0)
                return -errno;
        return n == len ? 0 : -EIO;
}

/* ---- the child of the runtime ---------------------------------------------------- */

struct child_args {
        const char *bwrap;
        char *const *argv;
        /* Become 0..7: /dev/null, the output pipes' write ends, the channel,
         * info (write end), block (read end), seccomp, status (write end). */
        int fds[8];
        int err_fd;
        const struct nk_rlimits_plan *rlimits;
        bool set_ids;
        uid_t uid;
        gid_t gid;
};

/* Reports what failed on err_fd and exits (child.h's one format). */
static _Noreturn void child_fail(int err_fd, int code, const char *what)
{
        struct nk_child_err e;
        nk_child_fail(&e, code, what, NULL, NULL);
        nk_child_report(err_fd, &e);
}

/* The child of clone3 is a copy of one thread of a possibly multithreaded
 * process: system calls only until exec. */
static _Noreturn void child_exec(const struct child_args *a)
{
        /* Ignored signals stay ignored across exec; bwrap's monitor relies
         * on SIGCHLD, which BEAM may ignore. */
        nk_child_reset_signals();

        /* First out of the way of 0..8, then into place: a source may sit
         * on another one's target. dup2 clears close-on-exec. */
        int err_fd = fcntl(a->err_fd, F_DUPFD_CLOEXEC, FD_FIRST_FREE + 8);
        if (err_fd < 0)
                child_fail(a->err_fd, -errno, "moving descriptors");
        int tmp[NK_ARRAY_SIZE(a->fds)];
        for (size_t i = 0; i < NK_ARRAY_SIZE(tmp); i++) {
                tmp[i] = fcntl(a->fds[i], F_DUPFD_CLOEXEC, FD_FIRST_FREE + 8);
                if (tmp[i] < 0)
                        child_fail(err_fd, -errno, "moving descriptors");
        }
        for (size_t i = 0; i < NK_ARRAY_SIZE(tmp); i++)
                if (dup2(tmp[i], (int) i) < 0)
                        child_fail(err_fd, -errno, "moving descriptors");
        if (dup3(err_fd, FD_ERR, O_CLOEXEC) < 0)
                child_fail(err_fd, -errno, "moving descriptors");
        err_fd = FD_ERR;
        nk_child_close_from(FD_FIRST_FREE);

        struct nk_child_err ce;
        int r = nk_rlimits_child(a->rlimits, &ce);
        if (r < 0)
                child_fail(err_fd, r, "setting rlimits");
        if (a->set_ids) {
                /* Raw system calls: glibc's wrappers signal every thread of
                 * the process, a list this child only inherited a copy of. */
                if (syscall(SYS_setgroups, 0, NULL) < 0)
                        child_fail(err_fd, -errno, "setgroups");
                if (syscall(SYS_setresgid, a->gid, a->gid, a->gid) < 0)
                        child_fail(err_fd, -errno, "setresgid");
                if (syscall(SYS_setresuid, a->uid, a->uid, a->uid) < 0)
                        child_fail(err_fd, -errno, "setresuid");
        }
        /* Until bwrap's own --die-with-parent takes over; set after the id
         * change, which clears it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                child_fail(err_fd, -errno, "PR_SET_PDEATHSIG");

        char *const envp[] = { NULL };
        execve(a->bwrap, a->argv, envp);
        child_fail(err_fd, -errno, "executing bwrap");
}

/* Reads fd to EOF into buf (NUL-terminated), waiting at most timeout_ms
 * between reads. */
static int read_all(int fd, char *buf, size_t size, int timeout_ms, size_t *ret_len)
{
        size_t len = 0;
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r = poll(&p, 1, timeout_ms);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                ssize_t n = read(fd, buf + len, size - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len == size - 1)
                        break;
        }
        buf[len] = '\0';
        *ret_len = len;
        return 0;
}

/* ---- exit statuses that outlive a reaped bwrap -------------------------------------- */

/*
 * Where SIGCHLD is ignored (BEAM), kernels before 6.15 reap bwrap's
 * monitor by themselves once it has exec'd, and its status is gone; 6.15
 * and later keep it for the pidfd. bwrap's --json-status-fd reports the
 * exit code whoever reaps it, so the read end of that pipe is kept per
 * monitor here (struct nk_child has no room for it) until wait.
 */
struct status_pipe {
        pid_t pid;
        int fd;
};

static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;
static struct status_pipe *status_pipes;
static size_t n_status_pipes, status_pipes_cap;

/* Keeps fd (owned from now on) as pid's status pipe. */
static int status_keep(pid_t pid, int fd)
{
        int r = 0;
        pthread_mutex_lock(&status_lock);
        if (n_status_pipes == status_pipes_cap) {
                size_t cap = status_pipes_cap ? status_pipes_cap * 2 : 8;
                struct status_pipe *p = realloc(status_pipes, cap * sizeof *p);
                if (p) {
                        status_pipes = p;
                        status_pipes_cap = cap;
                } else {
                        r = -ENOMEM;
                }
        }
        if (r == 0)
                status_pipes[n_status_pipes++] = (struct status_pipe) { .pid = pid, .fd = fd };
        pthread_mutex_unlock(&status_lock);
        if (r < 0)
                close(fd);
        return r;
}

/* Hands pid's status pipe over to the caller (-1 if none). */
static int status_take(pid_t pid)
{
        int fd = -1;
        pthread_mutex_lock(&status_lock);
        for (size_t i = 0; i < n_status_pipes; i++)
                if (status_pipes[i].pid == pid) {
                        fd = status_pipes[i].fd;
                        status_pipes[i] = status_pipes[--n_status_pipes];
                        break;
                }
        pthread_mutex_unlock(&status_lock);
        return fd;
}

/* The exit code bwrap's monitor reported before it exited, or -ECHILD. */
static int status_read(pid_t pid, int *ret_code)
{
        _cleanup_close_ int fd = status_take(pid);
        if (fd < 0)
                return -ECHILD;
        char buf[INFO_MAX];
        size_t len;
        /* The monitor is gone, so the pipe is at EOF unless its host still
         * holds it for the instant its parent-death signal takes. */
        int r = read_all(fd, buf, sizeof buf, 1000, &len);
        int code;
        if (r < 0 || nk_bwrap_parse_exit_code(buf, &code) < 0)
                return -ECHILD;
        *ret_code = code;
        return 0;
}

/* ---- the spawner thread ------------------------------------------------------------ */

/*
 * --die-with-parent is PR_SET_PDEATHSIG, which follows the parent *thread*:
 * bwrap's monitor, and with it the host, would be killed as soon as the
 * thread that called launch exits, although the runtime still uses the
 * host. So every bwrap is cloned by one thread that lives as long as the
 * process; the host then dies with the runtime, not with a caller's thread.
 */
struct spawn_req {
        const struct child_args *args;
        pid_t pid;              /* the monitor's pid, or -errno */
        bool done;
};

static pthread_mutex_t spawn_serial = PTHREAD_MUTEX_INITIALIZER;        /* one request at a time */
static pthread_mutex_t spawn_lock = PTHREAD_MUTEX_INITIALIZER;          /* spawn_slot and its fields */
static pthread_cond_t spawn_cond = PTHREAD_COND_INITIALIZER;
static struct spawn_req *spawn_slot;
static pthread_once_t spawner_once = PTHREAD_ONCE_INIT;
static int spawner_error;

static pid_t clone_bwrap(const struct child_args *args)
{
        /* exit_signal 0 as in the other launchers: BEAM may ignore SIGCHLD,
         * and the kernel would then reap the monitor by itself. */
        pid_t pid = nk_child_fork_quiet();
        if (pid < 0)
                return pid;
        if (pid == 0)
                child_exec(args);
        return pid;
}

static void *spawner_main(void *unused)
{
        pthread_setname_np(pthread_self(), "nk-bwrap-spawn");
        pthread_mutex_lock(&spawn_lock);
        for (;;) {
                while (!spawn_slot || spawn_slot->done)
                        pthread_cond_wait(&spawn_cond, &spawn_lock);
                /* The child gets a copy of spawn_lock, held; it never uses it. */
                spawn_slot->pid = clone_bwrap(spawn_slot->args);
                spawn_slot->done = true;
                pthread_cond_broadcast(&spawn_cond);
        }
        return NULL;
}

static void start_spawner(void)
{
        /* Every signal blocked, so that none meant for the process lands on
         * a thread that never looks at them. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_attr_t attr;
        pthread_t thread;
        int r = pthread_attr_init(&attr);
        if (r == 0) {
                pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                r = pthread_create(&thread, &attr, spawner_main, NULL);
                pthread_attr_destroy(&attr);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        spawner_error = -r;
}

/* Clones bwrap from the spawner thread; returns the monitor's pid or
 * -errno. Without the thread (it could not be created), from this one. */
static pid_t spawn(const struct child_args *args)
{
        pthread_once(&spawner_once, start_spawner);
        if (spawner_error < 0)
                return clone_bwrap(args);
        struct spawn_req req = { .args = args };
        pthread_mutex_lock(&spawn_serial);
        pthread_mutex_lock(&spawn_lock);
        spawn_slot = &req;
        pthread_cond_broadcast(&spawn_cond);
        while (!req.done)
                pthread_cond_wait(&spawn_cond, &spawn_lock);
        spawn_slot = NULL;
        pthread_mutex_unlock(&spawn_lock);
        pthread_mutex_unlock(&spawn_serial);
        return req.pid;
}

/* ---- launch ---------------------------------------------------------------------- */

/* Kills and reaps a bwrap that did not get as far as the host. Returns its
 * exit status, or -1 if it was killed. */
static int abandon(pid_t pid)
{
        return nk_child_kill_and_reap(pid, -1);
}

/* What launch holds until the host runs; freed on every path. */
struct launch_state {
        struct nk_sandbox_plan *plan;
        struct argv_builder argv;
        int seccomp_fd;
        int pipes[6][2];        /* info, block, err, status, stdout, stderr */
        int null_fd;
};

static void state_free(struct launch_state *s)
{
        nk_sandbox_plan_free(s->plan);
        argv_free(&s->argv);
        nk_closep(&s->seccomp_fd);
        nk_closep(&s->null_fd);
        for (int i = 0; i < 6; i++)
                for (int j = 0; j < 2; j++)
                        nk_closep(&s->pipes[i][j]);
}

/* The plan, as bwrap's options and descriptors. */
static int prepare(const struct nk_launch_config *cfg, const struct nk_sandbox_config *sc, const char *bwrap,
                   struct launch_state *s, struct nk_sandbox_error *err)
{
        unsigned version = 0;
        int r = nk_bwrap_version(bwrap, &version);
        if (r < 0)
                return nk_sandbox_error_set(err, r, "cannot tell the version of %s: %s", bwrap, strerror(-r));
        r = nk_sandbox_prepare(sc, cfg->log, cfg->log_arg, &s->plan, err);
        if (r < 0)
                return r;
        /* --size came with 0.7.0, and a setuid bwrap refuses it. */
        struct stat st;
        bool setuid_bwrap = stat(bwrap, &st) == 0 && (st.st_mode & S_ISUID);
        bool have_size = version >= 700 && !setuid_bwrap;
        if (!have_size && sc->tmp_mb)
                nk_sandbox_plan_log(s->plan,
                                    "%s %s: /tmp of the host for %s is not size-limited (RLIMIT_FSIZE still bounds each file)",
                                    bwrap,
                                    setuid_bwrap ? "is setuid and refuses --size" : "is older than 0.7.0 and has no --size",
                                    sc->library);
        /* --json-status-fd came with 0.4.0; without it an exit status the
         * kernel reaped is lost on kernels before 6.15, as it is natively. */
        if (build_argv(s->plan, have_size, version >= 400, &s->argv) < 0)
                return nk_sandbox_error_set(err, -ENOMEM, "out of memory");

        /* A memfd, not a pipe: bwrap reads it to EOF, and a program larger
         * than a pipe's buffer would block us. */
        s->seccomp_fd = memfd_create("nifkit-seccomp", MFD_CLOEXEC);
        if (s->seccomp_fd < 0)
                return nk_sandbox_error_set(err, -errno, "memfd_create: %m");
        r = nk_seccomp_write(&s->plan->seccomp, s->seccomp_fd);
        if (r >= 0 && lseek(s->seccomp_fd, 0, SEEK_SET) < 0)
                r = -errno;
        if (r < 0)
                return nk_sandbox_error_set(err, r, "writing the seccomp program: %s", strerror(-r));

        s->null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (s->null_fd < 0)
                return nk_sandbox_error_set(err, -errno, "opening /dev/null: %m");
        for (int i = 0; i < 6; i++)
                if (pipe2(s->pipes[i], O_CLOEXEC) < 0)
                        return nk_sandbox_error_set(err, -errno, "pipe2: %m");
        return 0;
}

/* What bwrap said before it gave up: its stderr is the host's, a pipe no
 * one drains until the host runs, so its message would be lost. The last
 * line, control characters shown as '?'; empty when it said nothing. */
static void bwrap_said(int fd, char *buf, size_t size)
{
        char text[2048];
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        buf[0] = '\0';
        if (fd < 0 || poll(&p, 1, 200) <= 0)
                return;
        n = read(fd, text, sizeof text - 1);
        if (n <= 0)
                return;
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
                n--;
        text[n] = '\0';
        const char *line = strrchr(text, '\n');
        line = line ? line + 1 : text;
        size_t len = strlen(line) < size - 1 ? strlen(line) : size - 1;
        memcpy(buf, line, len);
        buf[len] = '\0';
        for (char *c = buf; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        *c = '?';
}

/* After the clone: waits for bwrap to run and report its child, places the
 * child in the leaf and lets it go on. */
static int start(const struct nk_sandbox_config *sc, const char *bwrap, pid_t pid, struct launch_state *s,
                 struct nk_sandbox_error *err)
{
        struct nk_child_err rep;
        int r = nk_child_read_report(s->pipes[2][0], &rep);
        if (r != 0) {
                abandon(pid);
                if (r < 0)
                        return nk_sandbox_error_set(err, -EIO, "cannot start %s for %s: no reason given", bwrap,
                                                    sc->library);
                return nk_sandbox_error_set(err, rep.code, "cannot start %s for %s: %s: %s", bwrap, sc->library,
                                            rep.what, strerror(-rep.code));
        }

        char info[INFO_MAX];
        size_t len;
        r = read_all(s->pipes[0][0], info, sizeof info, INFO_TIMEOUT_MS, &len);
        pid_t child;
        if (r >= 0)
                r = nk_bwrap_parse_child_pid(info, &child);
        if (r < 0) {
                int status = abandon(pid);
                char said[300];
                bwrap_said(s->pipes[5][0], said, sizeof said);
                if (status >= 0)
                        return nk_sandbox_error_set(err, -ECHILD, "bwrap could not build the sandbox for %s "
                                                    "(exit status %d): %s", sc->library, status,
                                                    said[0] ? said : "it said nothing");
                return nk_sandbox_error_set(err, r, "bwrap did not report its sandbox for %s: %s", sc->library,
                                            strerror(-r));
        }
        /* From here on a failure kills the child first: blocked on fd 5, it
         * has no --die-with-parent in force yet, and EOF on that fd would
         * let it go on to exec the host outside its leaf. Its pid is its
         * own while it waits for us; only if its own setup already failed
         * has the monitor reaped it (and the monitor then exits too). */
        if (s->plan->cgroup) {
                r = cgroup_place(s->plan->cgroup, child);
                if (r < 0) {
                        kill(child, SIGKILL);
                        abandon(pid);
                        return nk_sandbox_error_set(err, r, "cannot move the host for %s into %s: %s", sc->library,
                                                    nk_cgroup_path(s->plan->cgroup), strerror(-r));
                }
        }
        ssize_t n;
        do
                n = write(s->pipes[1][1], "1", 1);
        while (n < 0 && errno == EINTR);
        if (n != 1) {
                r = n < 0 ? -errno : -EIO;
                kill(child, SIGKILL);
                abandon(pid);
                return nk_sandbox_error_set(err, r, "cannot release the host for %s: %s", sc->library, strerror(-r));
        }
        return 0;
}

static int bwrap_launch(const struct nk_launch_config *cfg, int channel_fd, struct nk_child *ret_child)
{
        struct nk_sandbox_error local;
        struct nk_sandbox_error *err = cfg->err ? cfg->err : &local;
        struct nk_sandbox_config sc = {};
        if (cfg->sandbox)
                sc = *cfg->sandbox;
        sc.host_binary = cfg->host_binary;
        sc.library = cfg->library;
        nk_sandbox_fill_defaults(&sc);

        char bwrap[PATH_MAX];
        if (nk_bwrap_find(sc.search_path, bwrap, sizeof bwrap) < 0)
                return nk_sandbox_error_set(err, -ENOENT, "bubblewrap (bwrap) not found: install the bubblewrap "
                                                          "package or use the native launcher");

        struct launch_state s = { .seccomp_fd = -1, .null_fd = -1,
                                  .pipes = { { -1, -1 }, { -1, -1 }, { -1, -1 }, { -1, -1 }, { -1, -1 }, { -1, -1 } } };
        int r = prepare(cfg, &sc, bwrap, &s, err);
        if (r < 0)
                goto out;

        const struct child_args args = {
                .bwrap = bwrap,
                .argv = s.argv.v,
                .fds = { s.null_fd, s.pipes[4][1], s.pipes[5][1], channel_fd, s.pipes[0][1], s.pipes[1][0],
                         s.seccomp_fd, s.pipes[3][1] },
                .err_fd = s.pipes[2][1],
                .rlimits = &s.plan->rlimits,
                .set_ids = sc.outside_uid != geteuid() || sc.outside_gid != getegid(),
                .uid = sc.outside_uid,
                .gid = sc.outside_gid,
        };
        pid_t pid = spawn(&args);
        if (pid < 0) {
                r = nk_sandbox_error_set(err, pid, "clone3: %s", strerror(-pid));
                goto out;
        }

        /* Our copies of the child's ends go, so that EOF means what it says. */
        nk_closep(&s.pipes[0][1]);
        s.pipes[0][1] = -1;
        nk_closep(&s.pipes[1][0]);
        s.pipes[1][0] = -1;
        nk_closep(&s.pipes[2][1]);
        s.pipes[2][1] = -1;
        nk_closep(&s.pipes[3][1]);
        s.pipes[3][1] = -1;
        nk_closep(&s.pipes[4][1]);
        s.pipes[4][1] = -1;
        nk_closep(&s.pipes[5][1]);
        s.pipes[5][1] = -1;
        r = start(&sc, bwrap, pid, &s, err);
        if (r < 0)
                goto out;

        r = status_keep(pid, s.pipes[3][0]);
        if (r < 0) {
                kill(pid, SIGKILL);
                abandon(pid);
                r = nk_sandbox_error_set(err, r, "out of memory");
                goto out;
        }
        s.pipes[3][0] = -1;
        /* Without a drain thread the host's output goes nowhere; it runs on. */
        struct nk_drain *drain;
        (void) nk_drain_start(&s.pipes[4][0], &s.pipes[5][0], &drain);
        int pidfd = nk_child_pidfd_open(pid);
        *ret_child = (struct nk_child) { .pid = pid, .pidfd = pidfd >= 0 ? pidfd : -1,
                                         .memory_by_rlimit = nk_sandbox_plan_memory_by_rlimit(s.plan),
                                         .cgroup = TAKE_PTR(s.plan->cgroup), .drain = drain };
        r = 0;
out:
        state_free(&s);
        return r;
}

/* bwrap's monitor was reaped by the kernel (SIGCHLD ignored): its status
 * from the pidfd (Linux 6.15+), else from what it wrote to its status
 * pipe. */
static int wait_reaped(struct nk_child *child, struct nk_child_exit *ret)
{
        struct nk_child_exit ex;
        int code;
        if (child->pidfd >= 0 && nk_pidfd_exit(child->pidfd, &ex) == 0) {
                nk_closep((int[]) { status_take(child->pid) });
                if (ex.signo == 0)
                        nk_bwrap_translate_exit(ex.status, ret);
                else
                        *ret = ex;
        } else if (status_read(child->pid, &code) == 0) {
                nk_bwrap_translate_exit(code, ret);
        } else {
                /* Killed before it could say (SIGKILL): nobody knows. */
                return -ECHILD;
        }
        return 0;
}

/* Reaped here: bwrap's exit status says how the host ended. */
static void bwrap_exited(struct nk_child *child, const siginfo_t *si, struct nk_child_exit *ret)
{
        nk_closep((int[]) { status_take(child->pid) });
        if (si->si_code == CLD_EXITED)
                nk_bwrap_translate_exit(si->si_status, ret);
        else    /* the monitor itself was killed (by us, or by the OOM killer) */
                nk_child_exit_from_siginfo(si, ret);
}

static int bwrap_wait(struct nk_child *child, int timeout_ms, struct nk_child_exit *ret)
{
        static const struct nk_child_wait_how how = { .exited = bwrap_exited, .reaped_elsewhere = wait_reaped };
        return nk_child_wait(child, timeout_ms, &how, ret);
}

const struct nk_launcher nk_launcher_bwrap = {
        .name = "bubblewrap (sandboxed)",
        .own_root = true,
        .launch = bwrap_launch,
        .kill = nk_child_signal,
        .wait = bwrap_wait,
};
