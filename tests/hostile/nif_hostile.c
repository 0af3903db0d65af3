/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A NIF library written to attack the sandbox it runs in: one function per
 * attack, each trying as hard as an ordinary malicious library would.
 *
 * Every function returns the list of steps it tried, [{What, Outcome, N}]:
 * What a binary naming the step, Outcome the atom `ok` when the step
 * succeeded (an escape, unless the driver says otherwise) or the errno's
 * name in lower case (`eacces`), N a count or size the step measured. An
 * attack the sandbox stops by seccomp never returns: the host dies by SIGSYS
 * and the runtime reports the trapped call.
 *
 * System calls are made directly (syscall(2)) where glibc would do more than
 * one call or a different one, so that the call the sandbox sees is the one
 * named here.
 *
 * Files and sockets are attacked both ways a NIF can reach them: through
 * libc, whose open, connect… nifkit-host interposes and hands to the
 * capability broker (the runtime checks the policy), and with the system
 * call itself, which a hostile NIF uses to go around the broker, so that only
 * the sandbox (mount namespace, seccomp) stands in the way.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <erl_nif.h>
#include <linux/futex.h>
#include <stdatomic.h>

#include "shm.h"

#define MAX_STEPS 64

struct steps {
        ErlNifEnv *env;
        unsigned n;
        ERL_NIF_TERM t[MAX_STEPS];
};

/* err: 0 when the step succeeded, else the errno it failed with. */
static void step(struct steps *s, int err, long long n, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void step(struct steps *s, int err, long long n, const char *fmt, ...)
{
        if (s->n >= MAX_STEPS)
                return;
        char what[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);

        char name[32] = "ok";
        if (err) {
                const char *e = strerrorname_np(err);
                if (e)
                        snprintf(name, sizeof name, "%s", e);
                else
                        snprintf(name, sizeof name, "errno_%d", err);
                for (char *c = name; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
        }
        ErlNifBinary bin;
        size_t len = strlen(what);
        if (!enif_alloc_binary(len, &bin))
                return;
        memcpy(bin.data, what, len);
        s->t[s->n++] = enif_make_tuple3(s->env, enif_make_binary(s->env, &bin), enif_make_atom(s->env, name),
                                        enif_make_int64(s->env, n));
}

static ERL_NIF_TERM done(struct steps *s)
{
        return enif_make_list_from_array(s->env, s->t, s->n);
}

/* Copies the i-th binary of a list argument into buf as a C string. */
static bool arg_path(ErlNifEnv *env, ERL_NIF_TERM list, unsigned i, char *buf, size_t size)
{
        ERL_NIF_TERM head, tail = list;
        for (unsigned k = 0;; k++) {
                if (!enif_get_list_cell(env, tail, &head, &tail))
                        return false;
                if (k < i)
                        continue;
                ErlNifBinary b;
                if (!enif_inspect_binary(env, head, &b) || b.size >= size)
                        return false;
                memcpy(buf, b.data, b.size);
                buf[b.size] = '\0';
                return true;
        }
}

/* openat(2) itself, around the host's interposed open(). */
static int sys_open(const char *path, int flags, mode_t mode)
{
        return (int) syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, mode);
}

static void read_fd(struct steps *s, int fd, const char *how, const char *path)
{
        char buf[4096];
        ssize_t k = read(fd, buf, sizeof buf);
        int e = k < 0 ? errno : 0;
        close(fd);
        step(s, e, k < 0 ? 0 : k, "read(%s) after %s", path, how);
}

/* Opens path read-only and reads it, through libc and with the system
 * call; a step each. */
static void try_read(struct steps *s, const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                step(s, errno, 0, "open(%s, O_RDONLY) via libc", path);
        else
                read_fd(s, fd, "open via libc", path);
        fd = sys_open(path, O_RDONLY, 0);
        if (fd < 0)
                step(s, errno, 0, "openat syscall(%s, O_RDONLY)", path);
        else
                read_fd(s, fd, "openat syscall", path);
}

/* Opens path for writing with flags, through libc and with the system
 * call, and writes a line; a step each. */
static void try_write(struct steps *s, const char *path, int flags, const char *line)
{
        for (int raw = 0; raw < 2; raw++) {
                const char *how = raw ? "openat syscall" : "open via libc";
                int fd = raw ? sys_open(path, flags, 0644) : open(path, flags | O_CLOEXEC, 0644);
                if (fd < 0) {
                        step(s, errno, 0, "%s(%s, %s)%s", raw ? "openat syscall" : "open", path,
                             flags & O_CREAT ? "O_WRONLY|O_CREAT" : "O_WRONLY", raw ? "" : " via libc");
                        continue;
                }
                ssize_t k = write(fd, line, strlen(line));
                step(s, k < 0 ? errno : 0, k, "write(%s) after %s", path, how);
                close(fd);
        }
}

/* ---- files ---------------------------------------------------------------- */

static ERL_NIF_TERM read_shadow(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        try_read(&s, "/etc/shadow");
        try_read(&s, "/etc/gshadow");
        return done(&s);
}

/* read_runtime([Path]): the runtime's own files, named by the driver (its
 * environment through /proc, its binary, its policy, its build log). */
static ERL_NIF_TERM read_runtime(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        char path[4096];
        for (unsigned i = 0; arg_path(env, argv[0], i, path, sizeof path); i++)
                try_read(&s, path);
        /* The parent as the host sees it: 0 for the init of a pid namespace. */
        snprintf(path, sizeof path, "/proc/%d/environ", (int) getppid());
        try_read(&s, path);
        return done(&s);
}

/* write_outside([Path]): creates each path (or, for an existing file such as
 * the NIF itself, opens it for writing). A file it manages to create stays:
 * unlink is not something the host may do, and the driver looks for it. */
static ERL_NIF_TERM write_outside(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        char path[4096];
        for (unsigned i = 0; arg_path(env, argv[0], i, path, sizeof path); i++)
                try_write(&s, path, O_WRONLY | O_CREAT, "nk_hostile\n");
        return done(&s);
}

/* Paths relative to the working directory, which must be inside the new
 * root: a cwd left on the old root would reach every file through "..". */
static ERL_NIF_TERM read_relative(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        static const char *const rel[] = { "etc/passwd", "../../../../../../../../etc/passwd",
                                           "./etc/hostname", "../../../../../../../../root/.profile" };
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++)
                try_read(&s, rel[i]);
        try_read(&s, "/etc/passwd");
        return done(&s);
}

/* read_env(Name): whether the runtime's variable Name reached the host,
 * through getenv or its own /proc/self/environ. */
static ERL_NIF_TERM read_env(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        char name[256];
        if (!arg_path(env, argv[0], 0, name, sizeof name))
                return enif_make_badarg(env);
        step(&s, getenv(name) ? 0 : ENOENT, 0, "getenv(%s)", name);
        int fd = sys_open("/proc/self/environ", O_RDONLY, 0);
        if (fd < 0) {
                step(&s, errno, 0, "openat syscall(/proc/self/environ)");
                return done(&s);
        }
        static char buf[1 << 16];
        ssize_t k = read(fd, buf, sizeof buf - 1);
        close(fd);
        bool found = false;
        size_t nl = strlen(name);
        for (ssize_t i = 0; k > 0 && i < k; i += (ssize_t) strnlen(buf + i, (size_t) (k - i)) + 1)
                if (strncmp(buf + i, name, nl) == 0 && buf[i + (ssize_t) nl] == '=')
                        found = true;
        step(&s, found ? 0 : ENOENT, k, "/proc/self/environ has %s", name);
        return done(&s);
}

/* The lines of /proc/self/status that say what the host may do: ids,
 * capability sets, no_new_privs, seccomp mode. Each is a step with outcome
 * ok; the driver judges the values. */
static ERL_NIF_TERM status_privileges(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        int fd = sys_open("/proc/self/status", O_RDONLY, 0);
        if (fd < 0) {
                step(&s, errno, 0, "openat syscall(/proc/self/status)");
                return done(&s);
        }
        static char buf[8192];
        ssize_t k = read(fd, buf, sizeof buf - 1);
        close(fd);
        buf[k > 0 ? k : 0] = '\0';
        static const char *const keys[] = { "Uid:", "Gid:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:",
                                            "CapAmb:", "NoNewPrivs:", "Seccomp:" };
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
                for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                        if (strncmp(line, keys[i], strlen(keys[i])) == 0)
                                step(&s, 0, 0, "%s", line);
        return done(&s);
}

static ERL_NIF_TERM dev_mem(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        static const char *const devs[] = { "/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg" };
        for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++)
                try_read(&s, devs[i]);
        return done(&s);
}

static ERL_NIF_TERM proc_sys_write(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        static const struct {
                const char *path, *value;
        } knobs[] = {
                { "/proc/sys/kernel/hostname", "pwned\n" },
                { "/proc/sys/vm/drop_caches", "3\n" },
                { "/proc/sys/kernel/core_pattern", "|/tmp/x\n" },
                { "/proc/sysrq-trigger", "b" },
        };
        for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
                try_write(&s, knobs[i].path, O_WRONLY, knobs[i].value);
        return done(&s);
}

/* The standard descriptors the host inherited from the runtime: reads what
 * the runtime's stdin holds, and writes over the start of whatever its
 * stderr is (a log file, when the runtime's stderr is one). */
static ERL_NIF_TERM stdio(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        struct pollfd p = { .fd = 0, .events = POLLIN };
        int r = poll(&p, 1, 200);
        if (r < 0)
                step(&s, errno, 0, "poll(stdin)");
        else if (r == 0 || !(p.revents & POLLIN))
                step(&s, EAGAIN, 0, "read(stdin): nothing to read");
        else {
                char buf[256];
                ssize_t k = read(0, buf, sizeof buf);
                step(&s, k < 0 ? errno : k == 0 ? ENODATA : 0, k, "read(stdin)");
        }
        ssize_t k = pwrite(2, "OVERWRITTEN BY THE NIF\n", 23, 0);
        step(&s, k < 0 ? errno : 0, k, "pwrite(stderr, offset 0)");
        return done(&s);
}

/* ---- processes ------------------------------------------------------------ */

/* Every process the host can see, as {<<"pid N comm">>, ok, N}. */
static ERL_NIF_TERM list_procs(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        int dfd = sys_open("/proc", O_RDONLY | O_DIRECTORY, 0);
        DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
        if (!d) {
                step(&s, errno, 0, "openat syscall(/proc, O_DIRECTORY)");
                if (dfd >= 0)
                        close(dfd);
                return done(&s);
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 0)
                        continue;
                char path[64], comm[64] = "";
                snprintf(path, sizeof path, "/proc/%ld/comm", pid);
                int fd = sys_open(path, O_RDONLY, 0);
                if (fd >= 0) {
                        ssize_t k = read(fd, comm, sizeof comm - 1);
                        comm[k > 0 ? k : 0] = '\0';
                        comm[strcspn(comm, "\n")] = '\0';
                        close(fd);
                }
                step(&s, 0, pid, "pid %ld %s", pid, comm);
        }
        closedir(d);
        return done(&s);
}

static ERL_NIF_TERM kill_parent(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        pid_t ppid = getppid();
        long r = syscall(SYS_kill, ppid, SIGKILL);
        step(&s, r < 0 ? errno : 0, ppid, "kill(%d, SIGKILL)", (int) ppid);
        return done(&s);
}

static ERL_NIF_TERM kill_all(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        long r = syscall(SYS_kill, -1, SIGKILL);
        step(&s, r < 0 ? errno : 0, -1, "kill(-1, SIGKILL)");
        return done(&s);
}

static ERL_NIF_TERM ptrace_parent(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        pid_t ppid = getppid();
        long r = syscall(SYS_ptrace, PTRACE_ATTACH, ppid, 0, 0);
        step(&s, r < 0 ? errno : 0, ppid, "ptrace(PTRACE_ATTACH, %d)", (int) ppid);
        return done(&s);
}

/* Reach the processes around this host by their pids outside it: the
 * host beside it from the same template, that host's launcher process, the
 * template, the runtime. seccomp lets tgkill and tkill through (raise()
 * needs them), so only the pid namespace stands in the way; /proc by the
 * same pids. Each signal is SIGKILL: a success kills its target. */
static ERL_NIF_TERM signal_siblings(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        ERL_NIF_TERM head, tail = argv[0];
        while (enif_get_list_cell(env, tail, &head, &tail)) {
                int pid;
                if (!enif_get_int(env, head, &pid) || pid <= 0)
                        return enif_make_badarg(env);
                long r = syscall(SYS_tgkill, pid, pid, SIGKILL);
                step(&s, r < 0 ? errno : 0, pid, "tgkill(%d, %d, SIGKILL)", pid, pid);
                r = syscall(SYS_tkill, pid, SIGKILL);
                step(&s, r < 0 ? errno : 0, pid, "tkill(%d, SIGKILL)", pid);
                char path[64];
                snprintf(path, sizeof path, "/proc/%d/status", pid);
                int fd = sys_open(path, O_RDONLY, 0);
                step(&s, fd < 0 ? errno : 0, pid, "openat syscall(%s)", path);
                if (fd >= 0)
                        close(fd);
        }
        return done(&s);
}

/* fork until it fails. A child that is born exits at once: the attack is
 * the number of processes, not what they do. */
static ERL_NIF_TERM fork_bomb(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        long n = 0;
        for (; n < 100000; n++) {
                pid_t pid = fork();
                if (pid < 0)
                        break;
                if (pid == 0) {
                        pause();
                        _exit(0);
                }
        }
        step(&s, n < 100000 ? errno : 0, n, "fork() x %ld", n);
        return done(&s);
}

static void *park(void *arg)
{
        for (;;)
                pause();
        return arg;
}

/* Threads count against pids.max as processes do; this is what reaches the
 * limit when fork itself traps. Once the limit refuses one, the library
 * gives up the way a bomb does: it crashes, and the runtime must name the
 * limit, not a crash. */
static ERL_NIF_TERM thread_bomb(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 64 * 1024);
        long n = 0;
        for (; n < 100000; n++) {
                pthread_t t;
                int r = pthread_create(&t, &a, park, NULL);
                if (r != 0) {
                        fprintf(stderr, "nk_hostile: thread %ld refused: %s\n", n, strerror(r));
                        abort();
                }
        }
        struct steps s = { .env = env };
        step(&s, 0, n, "pthread_create x %ld", n);
        return done(&s);
}

/* ---- network -------------------------------------------------------------- */

/* connect_tcp(Port): the driver's listener on 127.0.0.1 outside, through
 * libc's socket and connect, which the broker answers per the policy. */
static ERL_NIF_TERM connect_tcp(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        unsigned port;
        if (!enif_get_uint(env, argv[0], &port) || port > 65535)
                return enif_make_badarg(env);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                step(&s, errno, 0, "socket(AF_INET, SOCK_STREAM) via libc");
                return done(&s);
        }
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int r = connect(fd, (struct sockaddr *) &sa, sizeof sa);
        step(&s, r < 0 ? errno : 0, port, "connect(127.0.0.1:%u) via libc", port);
        close(fd);
        return done(&s);
}

/* The same with the system calls themselves, around the broker. */
static ERL_NIF_TERM connect_tcp_raw(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        unsigned port;
        if (!enif_get_uint(env, argv[0], &port) || port > 65535)
                return enif_make_badarg(env);
        int fd = (int) syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                step(&s, errno, 0, "socket syscall(AF_INET, SOCK_STREAM)");
                return done(&s);
        }
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        long r = syscall(SYS_connect, fd, &sa, sizeof sa);
        step(&s, r < 0 ? errno : 0, port, "connect syscall(127.0.0.1:%u)", port);
        close(fd);
        return done(&s);
}

/* ---- namespaces and privileges ---------------------------------------------- */

static ERL_NIF_TERM mount_tmpfs(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        long r = syscall(SYS_mount, "none", "/tmp", "tmpfs", 0UL, "size=1m");
        step(&s, r < 0 ? errno : 0, 0, "mount(tmpfs, /tmp)");
        return done(&s);
}

static ERL_NIF_TERM mount_bind(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        long r = syscall(SYS_mount, "/", "/tmp", NULL, (unsigned long) (MS_BIND | MS_REC), NULL);
        step(&s, r < 0 ? errno : 0, 0, "mount(/, /tmp, MS_BIND|MS_REC)");
        return done(&s);
}

static ERL_NIF_TERM unshare_user(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        long r = syscall(SYS_unshare, CLONE_NEWUSER);
        step(&s, r < 0 ? errno : 0, 0, "unshare(CLONE_NEWUSER)");
        return done(&s);
}

static ERL_NIF_TERM unshare_mount(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        long r = syscall(SYS_unshare, CLONE_NEWNS);
        step(&s, r < 0 ? errno : 0, 0, "unshare(CLONE_NEWNS)");
        return done(&s);
}

/* Opens each of its own namespace handles and joins it; joining the one it
 * is in already is harmless, so any success means the call is reachable. */
static ERL_NIF_TERM setns_handles(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        static const char *const ns[] = { "user", "mnt", "net", "pid", "ipc", "uts", "cgroup" };
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
                char path[64];
                snprintf(path, sizeof path, "/proc/self/ns/%s", ns[i]);
                int fd = sys_open(path, O_RDONLY, 0);
                if (fd < 0) {
                        step(&s, errno, 0, "openat syscall(%s)", path);
                        continue;
                }
                long r = syscall(SYS_setns, fd, 0);
                step(&s, r < 0 ? errno : 0, 0, "setns(%s)", path);
                close(fd);
        }
        return done(&s);
}

static ERL_NIF_TERM clone_newuser(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        long pid = syscall(SYS_clone, (unsigned long) (CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, 0UL);
        if (pid == 0)
                _exit(0);
        step(&s, pid < 0 ? errno : 0, pid, "clone(CLONE_NEWUSER)");
        return done(&s);
}

static ERL_NIF_TERM setuid_root(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        long r = syscall(SYS_setuid, 0);
        step(&s, r < 0 ? errno : 0, 0, "setuid(0)");
        return done(&s);
}

static ERL_NIF_TERM capset_raise(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct data[2];
        for (int i = 0; i < 2; i++)
                data[i] = (struct __user_cap_data_struct) { .effective = ~0u, .permitted = ~0u,
                                                            .inheritable = ~0u };
        long r = syscall(SYS_capset, &hdr, data);
        step(&s, r < 0 ? errno : 0, 0, "capset(all)");
        return done(&s);
}

static ERL_NIF_TERM ambient_raise(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        long r = syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0UL, 0UL);
        step(&s, r < 0 ? errno : 0, 0, "prctl(PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN)");
        return done(&s);
}

/* Lifts its own open-files limit back up (setrlimit is prlimit64 with a
 * new limit, which the allow-list only permits as a read). */
static ERL_NIF_TERM raise_nofile(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        struct rlimit rl = { .rlim_cur = 1 << 20, .rlim_max = 1 << 20 };
        long r = syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &rl, NULL);
        step(&s, r < 0 ? errno : 0, 0, "prlimit64(RLIMIT_NOFILE, 1048576)");
        return done(&s);
}

/* Writes garbage on the host's own channel to the runtime, as a host taken
 * over by its NIF would: a datagram that is no protocol message, then
 * waits for the runtime to react. */
static ERL_NIF_TERM forge_channel(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        unsigned char junk[64];
        memset(junk, 0xff, sizeof junk);
        ssize_t k = send(3, junk, sizeof junk, MSG_NOSIGNAL);
        step(&s, k < 0 ? errno : 0, k, "send(channel, 64 bytes of 0xff)");
        sleep(5);
        return done(&s);
}

/* ---- kernel attack surface ---------------------------------------------------- */

static ERL_NIF_TERM io_uring(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        /* struct io_uring_params is 120 bytes; zeroed asks for defaults. */
        uint64_t params[15] = { 0 };
        long fd = syscall(SYS_io_uring_setup, 8, params);
        step(&s, fd < 0 ? errno : 0, fd, "io_uring_setup(8)");
        if (fd >= 0)
                close((int) fd);
        return done(&s);
}

static ERL_NIF_TERM bpf_load(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        /* r0 = 0; exit: the smallest valid socket filter. */
        struct bpf_insn prog[] = {
                { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
                { .code = BPF_JMP | BPF_EXIT },
        };
        static const char license[] = "GPL";
        union bpf_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
        attr.insns = (uint64_t) (uintptr_t) prog;
        attr.insn_cnt = 2;
        attr.license = (uint64_t) (uintptr_t) license;
        long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
        step(&s, fd < 0 ? errno : 0, fd, "bpf(BPF_PROG_LOAD, socket filter)");
        if (fd >= 0)
                close((int) fd);
        return done(&s);
}

/* Pushes a character into the input of the terminal stderr may be, for the
 * runtime's shell to run (the classic TIOCSTI escape). */
static ERL_NIF_TERM tiocsti(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        char c = '\n';
        long r = syscall(SYS_ioctl, 2, TIOCSTI, &c);
        step(&s, r < 0 ? errno : 0, 0, "ioctl(2, TIOCSTI)");
        return done(&s);
}

/* The session keyring is shared by every process of a user outside. */
static ERL_NIF_TERM keyctl_read(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        char buf[256];
        /* KEYCTL_READ (11) of KEY_SPEC_USER_KEYRING (-4) */
        long r = syscall(SYS_keyctl, 11, -4, buf, sizeof buf, 0);
        step(&s, r < 0 ? errno : 0, r, "keyctl(KEYCTL_READ, user keyring)");
        return done(&s);
}

static ERL_NIF_TERM perf_event(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        /* struct perf_event_attr of PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK */
        uint32_t attr[32] = { 1, 128 };
        long fd = syscall(SYS_perf_event_open, attr, 0, -1, -1, 0UL);
        step(&s, fd < 0 ? errno : 0, fd, "perf_event_open(cpu clock)");
        if (fd >= 0)
                close((int) fd);
        return done(&s);
}

static ERL_NIF_TERM userfaultfd(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
        step(&s, fd < 0 ? errno : 0, fd, "userfaultfd()");
        if (fd >= 0)
                close((int) fd);
        return done(&s);
}

/* ---- resources ---------------------------------------------------------------- */

static ERL_NIF_TERM spin(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        for (volatile unsigned long i = 0;; i++)
                ;
        return enif_make_atom(env, "unreachable");
}

/* Allocates and touches memory in 1 MiB pieces until refused; what it got
 * stays allocated until the call ends, then goes back. */
static ERL_NIF_TERM alloc_unbounded(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        const size_t chunk = 1 << 20;
        void **chunks = NULL;
        size_t n = 0, cap = 0;
        int err = 0;
        for (;;) {
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 1024;
                        void **p = realloc(chunks, ncap * sizeof *p);
                        if (!p) {
                                err = ENOMEM;
                                break;
                        }
                        chunks = p;
                        cap = ncap;
                }
                void *c = malloc(chunk);
                if (!c) {
                        err = ENOMEM;
                        break;
                }
                memset(c, 0xa5, chunk);
                chunks[n++] = c;
        }
        for (size_t i = 0; i < n; i++)
                free(chunks[i]);
        free(chunks);
        step(&s, err, (long long) (n * chunk), "malloc+memset 1 MiB x %zu", n);
        return done(&s);
}

/* alloc_terms(_): makes 1 MiB binaries, touched, in an ever longer list,
 * until the host's own allocator gives up (or the OOM killer comes). Never
 * returns. */
static ERL_NIF_TERM alloc_terms(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ERL_NIF_TERM list = enif_make_list(env, 0), bin;
        for (;;) {
                unsigned char *p = enif_make_new_binary(env, 1 << 20, &bin);
                memset(p, 0x5a, 1 << 20);
                list = enif_make_list_cell(env, bin, list);
        }
        return list;
}

/* fill_tmp(_): writes /tmp/nk_hostile_fill until the file system refuses. SIGXFSZ is
 * blocked so RLIMIT_FSIZE shows as EFBIG rather than a death. */
static ERL_NIF_TERM fill_tmp(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        int fd = open("/tmp/nk_hostile_fill", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                step(&s, errno, 0, "open(/tmp/nk_hostile_fill, O_WRONLY|O_CREAT)");
                return done(&s);
        }
        sigset_t xfsz, old;
        sigemptyset(&xfsz);
        sigaddset(&xfsz, SIGXFSZ);
        pthread_sigmask(SIG_BLOCK, &xfsz, &old);
        static char buf[64 * 1024];
        memset(buf, 'x', sizeof buf);
        long long total = 0;
        int err = 0;
        for (;;) {
                ssize_t k = write(fd, buf, sizeof buf);
                if (k < 0) {
                        err = errno;
                        break;
                }
                if (k == 0) {
                        err = ENOSPC;
                        break;
                }
                total += k;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        close(fd);
        step(&s, err, total, "write(/tmp/nk_hostile_fill) until refused");
        return done(&s);
}

/* Duplicates the channel until refused (a descriptor every host has, and a
 * call no sandbox can take away); returns how many it held, then closes
 * them. */
static ERL_NIF_TERM leak_fds(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct steps s = { .env = env };
        static int fds[1 << 16];
        long n = 0;
        int err = 0;
        while (n < (long) (sizeof fds / sizeof fds[0])) {
                int fd = fcntl(3, F_DUPFD_CLOEXEC, 0);
                if (fd < 0) {
                        err = errno;
                        break;
                }
                fds[n++] = fd;
        }
        for (long i = 0; i < n; i++)
                close(fds[i]);
        step(&s, err, n, "fcntl(channel, F_DUPFD) x %ld", n);
        return done(&s);
}

/* huge_result(Bytes): a result as large as asked, for the runtime to take
 * in whole unless it holds the host to the policy's max_result_bytes. */
static ERL_NIF_TERM huge_result(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ErlNifUInt64 n;
        ERL_NIF_TERM t;
        if (!enif_get_uint64(env, argv[0], &n) || n > (1ULL << 31))
                return enif_make_badarg(env);
        unsigned char *p = enif_make_new_binary(env, (size_t) n, &t);
        if (!p)
                return enif_make_badarg(env);
        memset(p, 0x5a, (size_t) n);
        return t;
}

/* ---- the shared-memory region ------------------------------------------------- */

/*
 * The region this host shares with the runtime is mapped in the host, where
 * the NIF can write it: these attacks find it in /proc/self/maps, as any
 * library could, and lie in it. [Slots, SlotBytes] say the policy's layout
 * (workers, shm_slot_kb), which an attacker can read in its policy file.
 */
struct region {
        uint8_t *base;
        size_t size;
        unsigned nslots;
        size_t slot_data;
        struct nk_shm_slot *slot;       /* the one serving this call */
        uint8_t *data;
        uint32_t seq;                   /* its request's frame */
};

static bool find_region(ErlNifEnv *env, ERL_NIF_TERM arg, struct region *r)
{
        ERL_NIF_TERM head, tail;
        unsigned n;
        ErlNifUInt64 slot;
        if (!enif_get_list_cell(env, arg, &head, &tail) || !enif_get_uint(env, head, &n) ||
            !enif_get_list_cell(env, tail, &head, &tail) || !enif_get_uint64(env, head, &slot))
                return false;
        /* The system call itself: libc's open goes to the broker. */
        int fd = sys_open("/proc/self/maps", O_RDONLY, 0);
        FILE *f = fd < 0 ? NULL : fdopen(fd, "r");
        if (!f)
                return false;
        char line[512];
        *r = (struct region) { .nslots = n, .slot_data = (size_t) slot };
        while (fgets(line, sizeof line, f)) {
                unsigned long lo, hi;
                if (strstr(line, "nifkit-shm") && sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
                        r->base = (uint8_t *) lo;
                        r->size = hi - lo;
                        break;
                }
        }
        fclose(f);
        if (!r->base)
                return false;
        for (unsigned i = 0; i < n; i++) {
                struct nk_shm_slot *s = nk_shm_slot(r->base, i);
                uint32_t req = atomic_load(&s->req.seq);
                if (req != 0 && req != atomic_load(&s->resp.seq)) {
                        r->slot = s;
                        r->seq = req;
                        r->data = r->base + 4096 + (size_t) i * r->slot_data;
                        return true;
                }
        }
        return false;
}

/* Publishes whatever the slot's response half now says as the answer. */
static void forge_publish(struct region *r, bool wake)
{
        atomic_store(&r->slot->resp.seq, r->seq);
        if (wake)
                syscall(SYS_futex, &r->slot->resp.seq, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static _Noreturn void hang(void)
{
        for (;;)
                pause();
}

/* A reply whose length is far beyond anything the protocol allows. */
static ERL_NIF_TERM shm_huge_length(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct region r;
        if (!find_region(env, argv[0], &r))
                return enif_make_badarg(env);
        r.slot->resp.f = (struct nk_shm_frame) { .type = 5 /* RESULT */, .total = 1ull << 62, .len = 1ull << 40 };
        forge_publish(&r, true);
        hang();
}

/* A reply of 64 bytes whose chunk claims to be a TiB long. */
static ERL_NIF_TERM shm_bad_chunk(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct region r;
        if (!find_region(env, argv[0], &r))
                return enif_make_badarg(env);
        r.slot->resp.f = (struct nk_shm_frame) { .type = 5, .total = 64, .len = 1ull << 40 };
        forge_publish(&r, true);
        hang();
}

/* Random bytes over the whole region, sequence words and all, then the
 * call's slot published. */
static ERL_NIF_TERM shm_scribble(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct region r;
        if (!find_region(env, argv[0], &r))
                return enif_make_badarg(env);
        uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t) getpid();
        for (size_t i = 0; i + 8 <= r.size; i += 8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                memcpy(r.base + i, &x, 8);
        }
        forge_publish(&r, true);
        hang();
}

struct flipper {
        struct region r;
        size_t len;
};

/* Once the worker publishes the real reply, flips its lengths between the
 * truth and lies while the runtime reads it. */
static void *flip_main(void *arg)
{
        struct flipper *fl = arg;
        struct nk_shm_half *h = &fl->r.slot->resp;
        while (atomic_load(&h->seq) != fl->r.seq)
                ;
        uint64_t total = h->f.total, len = h->f.len;
        for (unsigned long i = 0; i < 200000000ul; i++) {
                bool lie = i & 1;
                __atomic_store_n(&h->f.len, lie ? 1ull << 40 : len, __ATOMIC_RELAXED);
                __atomic_store_n(&h->f.total, lie ? (i & 2 ? 1ull << 62 : 3) : total, __ATOMIC_RELAXED);
                __atomic_store_n(&h->f.offset, lie && (i & 4) ? 12345 : 0, __ATOMIC_RELAXED);
        }
        free(fl);
        return NULL;
}

/* Returns a real binary of Bytes while a thread rewrites the reply's
 * lengths under the runtime that reads them. */
static ERL_NIF_TERM shm_flip_length(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct flipper *fl = malloc(sizeof *fl);
        pthread_t t;
        ERL_NIF_TERM head, tail, bin;
        ErlNifUInt64 n;
        if (!fl || !find_region(env, argv[0], &fl->r) || !enif_get_list_cell(env, argv[0], &head, &tail) ||
            !enif_get_list_cell(env, tail, &head, &tail) || !enif_get_list_cell(env, tail, &head, &tail) ||
            !enif_get_uint64(env, head, &n) || n > (64u << 20)) {
                free(fl);
                return enif_make_badarg(env);
        }
        unsigned char *p = enif_make_new_binary(env, (size_t) n, &bin);
        if (!p || pthread_create(&t, NULL, flip_main, fl) != 0) {
                free(fl);
                return enif_make_badarg(env);
        }
        pthread_detach(t);
        memset(p, 0x42, (size_t) n);
        return bin;
}

/* The first chunk of a reply of two, and never the second. */
static ERL_NIF_TERM shm_half_reply(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct region r;
        if (!find_region(env, argv[0], &r))
                return enif_make_badarg(env);
        memset(r.data, 0, r.slot_data);
        r.data[4] = 131;
        r.slot->resp.f = (struct nk_shm_frame) { .type = 5, .flags = NK_SHM_MORE, .total = 2 * r.slot_data,
                                                 .len = r.slot_data };
        forge_publish(&r, true);
        hang();
}

/* A valid reply, `ok`, published long after the runtime went to sleep on
 * the futex, and never woken. */
static ERL_NIF_TERM shm_no_wake(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct region r;
        if (!find_region(env, argv[0], &r))
                return enif_make_badarg(env);
        usleep(300 * 1000);
        static const uint8_t ok[] = { 0, 0, 0, 0, 131, 119, 2, 'o', 'k' };
        memcpy(r.data, ok, sizeof ok);
        r.slot->resp.f = (struct nk_shm_frame) { .type = 5, .id = r.slot->req.f.id, .total = sizeof ok,
                                                 .len = sizeof ok };
        forge_publish(&r, false);
        hang();
}

/* make_atoms(N): N atoms never seen before, returned so they cross. */
static ERL_NIF_TERM make_atoms(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        static unsigned long serial;
        unsigned n;
        if (!enif_get_uint(env, argv[0], &n) || n > 1000000)
                return enif_make_badarg(env);
        ERL_NIF_TERM list = enif_make_list(env, 0);
        unsigned long base = __atomic_fetch_add(&serial, n, __ATOMIC_RELAXED);
        for (unsigned i = 0; i < n; i++) {
                char name[64];
                snprintf(name, sizeof name, "nk_hostile_%lu", base + i);
                list = enif_make_list_cell(env, enif_make_atom(env, name), list);
        }
        return list;
}

static ErlNifFunc funcs[] = {
        { "read_shadow", 1, read_shadow, 0 },
        { "shm_huge_length", 1, shm_huge_length, 0 },
        { "shm_bad_chunk", 1, shm_bad_chunk, 0 },
        { "shm_scribble", 1, shm_scribble, 0 },
        { "shm_flip_length", 1, shm_flip_length, 0 },
        { "shm_half_reply", 1, shm_half_reply, 0 },
        { "shm_no_wake", 1, shm_no_wake, 0 },
        { "read_runtime", 1, read_runtime, 0 },
        { "write_outside", 1, write_outside, 0 },
        { "read_relative", 1, read_relative, 0 },
        { "read_env", 1, read_env, 0 },
        { "status_privileges", 1, status_privileges, 0 },
        { "dev_mem", 1, dev_mem, 0 },
        { "stdio", 1, stdio, 0 },
        { "proc_sys_write", 1, proc_sys_write, 0 },
        { "list_procs", 1, list_procs, 0 },
        { "kill_parent", 1, kill_parent, 0 },
        { "kill_all", 1, kill_all, 0 },
        { "signal_siblings", 1, signal_siblings, 0 },
        { "ptrace_parent", 1, ptrace_parent, 0 },
        { "fork_bomb", 1, fork_bomb, 0 },
        { "thread_bomb", 1, thread_bomb, 0 },
        { "connect_tcp", 1, connect_tcp, 0 },
        { "connect_tcp_raw", 1, connect_tcp_raw, 0 },
        { "mount_tmpfs", 1, mount_tmpfs, 0 },
        { "mount_bind", 1, mount_bind, 0 },
        { "unshare_user", 1, unshare_user, 0 },
        { "unshare_mount", 1, unshare_mount, 0 },
        { "setns_handles", 1, setns_handles, 0 },
        { "clone_newuser", 1, clone_newuser, 0 },
        { "setuid_root", 1, setuid_root, 0 },
        { "capset_raise", 1, capset_raise, 0 },
        { "ambient_raise", 1, ambient_raise, 0 },
        { "raise_nofile", 1, raise_nofile, 0 },
        { "forge_channel", 1, forge_channel, 0 },
        { "tiocsti", 1, tiocsti, 0 },
        { "keyctl_read", 1, keyctl_read, 0 },
        { "perf_event", 1, perf_event, 0 },
        { "userfaultfd", 1, userfaultfd, 0 },
        { "io_uring", 1, io_uring, 0 },
        { "bpf_load", 1, bpf_load, 0 },
        { "spin", 1, spin, 0 },
        { "alloc_unbounded", 1, alloc_unbounded, 0 },
        { "alloc_terms", 1, alloc_terms, 0 },
        { "fill_tmp", 1, fill_tmp, 0 },
        { "leak_fds", 1, leak_fds, 0 },
        { "huge_result", 1, huge_result, 0 },
        { "make_atoms", 1, make_atoms, 0 },
};

ERL_NIF_INIT(nk_hostile, funcs, NULL, NULL, NULL, NULL)
