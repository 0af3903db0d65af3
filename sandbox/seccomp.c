/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's seccomp allow-list, built with libseccomp in the parent and
 * installed by the child as raw BPF right before exec.
 *
 * Everything not allowed here traps (SECCOMP_RET_TRAP): the kernel sends
 * SIGSYS to the calling thread, nifkit-host's handler (hosts/sigsys.c)
 * reports the syscall number on the channel and the host dies by SIGSYS, so
 * the runtime can say "seccomp: ptrace" instead of "crashed". Calls made
 * with another architecture's calling convention (int 0x80, x32) kill the
 * process outright: nothing of ours uses them and the numbers would not
 * mean what the allow-list thinks they mean.
 *
 * The filter is applied before execve and stays in force for the whole life
 * of nifkit-host, so it also allows what the dynamic loader and glibc's
 * start-up do after exec (arch_prctl, set_tid_address, prlimit64 reads, the
 * loader's read-only opens).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "macro.h"
#include "sandbox.h"

static inline void seccomp_releasep(scmp_filter_ctx *ctx)
{
        if (*ctx)
                seccomp_release(*ctx);
}
#define _cleanup_seccomp_ _cleanup_(seccomp_releasep)

/*
 * Allowed without conditions. Each line is one need of nifkit-host or of an
 * ordinary NIF; anything a NIF could use to leave the sandbox, widen it, or
 * reach the kernel's rarely exercised corners is absent (and so traps).
 */
static const char *const allowed[] = {
        /* memory */
        "mmap", "munmap", "mprotect", "mremap", "brk", "madvise", "msync",
        /* threads: clone is conditional below; clone3 fails with ENOSYS */
        "futex", "set_robust_list", "rseq", "set_tid_address", "sched_yield",
        "sched_getaffinity",
        /* signals. tgkill and tkill cannot be limited to our own thread
         * group by the filter (the tgid is not known when it is built, in
         * the parent), but the host's pid namespace holds only the host, so
         * they reach nothing else. kill is not needed: raise() is tgkill. */
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
        "tgkill", "tkill", "restart_syscall",
        "exit", "exit_group",
        /* I/O on descriptors the host already has (the channel, and later
         * the ones the capability broker passes) */
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
        "pwritev", "recvmsg", "sendmsg", "recvfrom", "sendto", "recvmmsg",
        "sendmmsg", "shutdown", "getsockname", "getpeername",
        /* Connections to a socket the broker made listening: accepting
         * reaches only that socket's own peers. Making, binding and
         * connecting sockets is the broker's (socket, bind, connect and
         * listen trap below). */
        "accept", "accept4",
        "close", "fstat", "newfstatat", "lseek", "fcntl", "dup", "dup2", "dup3",
        "pipe", "pipe2", "poll", "ppoll", "select", "pselect6",
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
        "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
        "timerfd_create", "timerfd_settime", "timerfd_gettime",
        "fsync", "fdatasync", "ftruncate", "flock", "fstatfs",
        /* time */
        "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "pause",
        "gettimeofday", "time",
        /* identity: reads only; every set*id call traps */
        "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid",
        "getegid", "getresuid", "getresgid",
        /* process information */
        "getrandom", "uname", "getrusage", "sysinfo", "getrlimit", "arch_prctl",
        /* The exec of nifkit-host itself happens after the filter is in
         * place. The minimal read-only root holds nothing else worth
         * executing (the host binary, the NIF, their libraries), and
         * no_new_privs keeps exec from gaining anything. */
        "execve",
        /* The dynamic loader reads the NIF and its libraries inside the
         * minimal read-only root. Until the capability broker hands the
         * host its files (and replaces these calls with descriptors it
         * passes), these stay allowed; open and openat only read-only,
         * see the conditional rules. */
        "readlink", "readlinkat", "access", "faccessat", "faccessat2", "statx",
        "stat", "lstat", "getdents64", "getcwd",
        /* A file system's type and size by path, in the same root
         * (libselinux's constructor looks for selinuxfs this way: OTP's wx
         * loads it); fstatfs does as much for any descriptor. */
        "statfs",
};

/*
 * Denied explicitly: the build refuses an allow-list that contains any of
 * these, so that a later edit cannot let one through by accident. They trap
 * like everything not allowed.
 */
static const char *const denied[] = {
        "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "ptrace",
        "mount", "umount2", "pivot_root", "unshare", "setns", "clone3", "keyctl",
        "add_key", "request_key", "perf_event_open", "init_module",
        "finit_module", "delete_module", "kexec_load", "kexec_file_load",
        "userfaultfd", "process_vm_readv", "process_vm_writev", "setuid",
        "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
        "setfsgid", "setgroups", "capset", "socket", "socketpair", "connect",
        "bind", "listen", "personality", "chroot", "reboot",
        "swapon", "swapoff", "acct", "quotactl", "open_by_handle_at",
        "name_to_handle_at", "membarrier", "kill", "fork", "vfork",
        "memfd_create", "get_robust_list", "move_pages", "migrate_pages",
        "mbind", "set_mempolicy", "iopl", "ioperm", "modify_ldt", "lookup_dcookie",
        "fanotify_init", "open_tree", "move_mount", "fsopen", "fsmount",
        "fsconfig", "fspick", "mount_setattr", "landlock_create_ruleset",
        "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "kcmp", "syslog",
        "vhangup", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
};

/* Namespace flags: a thread may not be born in a new namespace. CLONE_NEWTIME
 * is left out on purpose: in clone() its bit is part of CSIGNAL, the exit
 * signal, and the kernel only honours it through clone3 (which is ENOSYS). */
#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | \
                  CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

/* open flags that write or create: the loader never needs them. O_TMPFILE
 * contains O_DIRECTORY, which read-only opens use, so only its own bit. */
#define WRITE_FLAGS (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | (O_TMPFILE & ~O_DIRECTORY))

static int add_simple(scmp_filter_ctx ctx, struct nk_sandbox_error *err)
{
        for (size_t i = 0; i < NK_ARRAY_SIZE(allowed); i++) {
                for (size_t j = 0; j < NK_ARRAY_SIZE(denied); j++)
                        if (strcmp(allowed[i], denied[j]) == 0)
                                return nk_sandbox_error_set(err, -EINVAL,
                                                            "seccomp: \"%s\" is both allowed and denied",
                                                            allowed[i]);

                int nr = seccomp_syscall_resolve_name(allowed[i]);
                /* Negative: this architecture has no such call (aarch64 has
                 * no open, poll, pipe…), or this libseccomp does not know it
                 * yet; not allowing it only makes the filter stricter. */
                if (nr < 0)
                        continue;
                int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
                if (r < 0)
                        return nk_sandbox_error_set(err, r, "seccomp: allowing %s: %s",
                                                    allowed[i], strerror(-r));
        }
        return 0;
}

#define RULE(action, name, ...)                                                      \
        do {                                                                         \
                int _nr = seccomp_syscall_resolve_name(name);                        \
                if (_nr >= 0) {                                                      \
                        int _r = seccomp_rule_add(ctx, action, _nr, __VA_ARGS__);    \
                        if (_r < 0)                                                  \
                                return nk_sandbox_error_set(err, _r,                 \
                                        "seccomp: rule for %s: %s", name, strerror(-_r)); \
                }                                                                    \
        } while (0)

static int add_conditional(scmp_filter_ctx ctx, struct nk_sandbox_error *err)
{
        /* Threads only: fork, vfork-style spawns and new namespaces trap. */
        RULE(SCMP_ACT_ALLOW, "clone", 1,
             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD | NS_FLAGS, CLONE_THREAD));
        /* glibc (2.34+) tries clone3 first and falls back to clone on
         * ENOSYS; clone3 passes its flags in memory, where a filter cannot
         * look, so it must never be allowed. */
        RULE(SCMP_ACT_ERRNO(ENOSYS), "clone3", 0);

        RULE(SCMP_ACT_ALLOW, "openat", 1, SCMP_A2(SCMP_CMP_MASKED_EQ, WRITE_FLAGS, O_RDONLY));
        RULE(SCMP_ACT_ALLOW, "open", 1, SCMP_A1(SCMP_CMP_MASKED_EQ, WRITE_FLAGS, O_RDONLY));
        /* Opens that would write or create are refused with EACCES rather
         * than trapped: ordinary code tries them and copes with failure
         * (glibc's pthread_setname_np on another thread writes
         * /proc/self/task/N/comm; libraries write logs or temp files), and
         * the capability broker will answer them with an errno too. */
        static const struct {
                unsigned long mask, value;
        } writes[] = {
                { O_ACCMODE, O_WRONLY }, { O_ACCMODE, O_RDWR }, { O_CREAT, O_CREAT },
                { O_TRUNC, O_TRUNC }, { O_APPEND, O_APPEND },
                { O_TMPFILE & ~O_DIRECTORY, O_TMPFILE & ~O_DIRECTORY },
        };
        for (size_t i = 0; i < NK_ARRAY_SIZE(writes); i++) {
                RULE(SCMP_ACT_ERRNO(EACCES), "openat", 1,
                     SCMP_A2(SCMP_CMP_MASKED_EQ, writes[i].mask, writes[i].value));
                RULE(SCMP_ACT_ERRNO(EACCES), "open", 1,
                     SCMP_A1(SCMP_CMP_MASKED_EQ, writes[i].mask, writes[i].value));
        }

        /* Thread names, and reading the capability bounding set (libcap's
         * and libcap-ng's constructors probe it to find the last
         * capability: OTP's wx loads them; the set is empty in a host).
         * Every other prctl (no_new_privs is already set, seccomp, dumpable,
         * ptracer, changing capabilities…) traps. */
        RULE(SCMP_ACT_ALLOW, "prctl", 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
        RULE(SCMP_ACT_ALLOW, "prctl", 1, SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME));
        RULE(SCMP_ACT_ALLOW, "prctl", 1, SCMP_A0(SCMP_CMP_EQ, PR_CAPBSET_READ));

        /* glibc reads RLIMIT_STACK at start-up through prlimit64; reading our
         * own limits is fine, changing them (or another process's) is not. */
        RULE(SCMP_ACT_ALLOW, "prlimit64", 2, SCMP_A0(SCMP_CMP_EQ, 0), SCMP_A2(SCMP_CMP_EQ, 0));

        /* isatty() (stdio asks it of a terminal stderr) and FIONREAD; the
         * rest of ioctl, TIOCSTI first of all, traps. */
        RULE(SCMP_ACT_ALLOW, "ioctl", 1, SCMP_A1(SCMP_CMP_EQ, TCGETS));
        RULE(SCMP_ACT_ALLOW, "ioctl", 1, SCMP_A1(SCMP_CMP_EQ, FIONREAD));

        /* Socket options on the sockets the broker passes: NIFs tune them
         * (TCP_NODELAY, SO_KEEPALIVE, buffer sizes). Only the ordinary
         * levels; options that need privileges fail on their own in an
         * unprivileged host, and TCP_ULP, which makes the kernel load and
         * attach a protocol module (kTLS), traps. */
        static const int levels[] = { SOL_SOCKET, IPPROTO_IP, IPPROTO_IPV6 };
        for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
                RULE(SCMP_ACT_ALLOW, "getsockopt", 1, SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t) levels[i]));
                RULE(SCMP_ACT_ALLOW, "setsockopt", 1, SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t) levels[i]));
        }
        RULE(SCMP_ACT_ALLOW, "getsockopt", 1, SCMP_A1(SCMP_CMP_EQ, IPPROTO_TCP));
        RULE(SCMP_ACT_ALLOW, "setsockopt", 2, SCMP_A1(SCMP_CMP_EQ, IPPROTO_TCP),
             SCMP_A2(SCMP_CMP_NE, TCP_ULP));
        return 0;
}

/* libseccomp 2.5 can only export to a descriptor: export into a memfd and
 * read the program back. */
static int export_bpf(scmp_filter_ctx ctx, struct nk_seccomp_program *ret,
                      struct nk_sandbox_error *err)
{
        _cleanup_close_ int fd = memfd_create("nifkit-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                return nk_sandbox_error_set(err, -errno, "seccomp: memfd_create: %m");

        int r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return nk_sandbox_error_set(err, r, "seccomp: exporting the filter: %s", strerror(-r));

        struct stat st;
        if (fstat(fd, &st) < 0)
                return nk_sandbox_error_set(err, -errno, "seccomp: fstat: %m");
        size_t size = (size_t) st.st_size;
        if (size == 0 || size % sizeof(struct sock_filter) != 0 ||
            size / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return nk_sandbox_error_set(err, -EINVAL,
                                            "seccomp: exported filter has an impossible size (%zu bytes)", size);

        _cleanup_free_ void *bpf = malloc(size);
        if (!bpf)
                return nk_sandbox_error_set(err, -ENOMEM, "seccomp: out of memory");
        size_t off = 0;
        while (off < size) {
                ssize_t n = pread(fd, (char *) bpf + off, size - off, (off_t) off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return nk_sandbox_error_set(err, n < 0 ? -errno : -EIO,
                                                    "seccomp: reading the exported filter back failed");
                off += (size_t) n;
        }
        ret->bpf = TAKE_PTR(bpf);
        ret->len = size / sizeof(struct sock_filter);
        return 0;
}

int nk_seccomp_build(struct nk_seccomp_program *ret, struct nk_sandbox_error *err)
{
        if (!ret)
                return nk_sandbox_error_set(err, -EINVAL, "seccomp: no program to fill");
        *ret = (struct nk_seccomp_program) { 0 };

        /* Only the native architecture is in the filter (seccomp_init adds
         * it); on x86_64 libseccomp also sends x32 numbers to the bad-arch
         * action. */
        _cleanup_seccomp_ scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
        if (!ctx)
                return nk_sandbox_error_set(err, -ENOMEM, "seccomp: seccomp_init failed");

        int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r < 0)
                return nk_sandbox_error_set(err, r, "seccomp: bad-arch action: %s", strerror(-r));
        /* no_new_privs is the capabilities step's job; the program is only
         * exported here, but keep libseccomp from relying on it. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        if (r < 0)
                return nk_sandbox_error_set(err, r, "seccomp: NNP attribute: %s", strerror(-r));

        r = add_simple(ctx, err);
        if (r < 0)
                return r;
        r = add_conditional(ctx, err);
        if (r < 0)
                return r;
        return export_bpf(ctx, ret, err);
}

int nk_seccomp_write(const struct nk_seccomp_program *prog, int fd)
{
        if (!prog || !prog->bpf || prog->len == 0)
                return -EINVAL;
        const char *p = prog->bpf;
        size_t left = prog->len * sizeof(struct sock_filter);
        while (left > 0) {
                ssize_t n = write(fd, p, left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                p += n;
                left -= (size_t) n;
        }
        return 0;
}

int nk_seccomp_apply(const struct nk_seccomp_program *prog)
{
        if (!prog || !prog->bpf || prog->len == 0 || prog->len > BPF_MAXINSNS)
                return -EINVAL;
        struct sock_fprog fprog = {
                .len = (unsigned short) prog->len,
                .filter = prog->bpf,
        };
        /* No TSYNC: the child of clone is single-threaded. The raw syscall,
         * not libseccomp's loader: this runs between clone and exec. */
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)
                return -errno;
        return 0;
}

void nk_seccomp_free(struct nk_seccomp_program *prog)
{
        if (!prog)
                return;
        free(prog->bpf);
        prog->bpf = NULL;
        prog->len = 0;
}

const char *nk_seccomp_syscall_name(int nr, char *buf, size_t size)
{
        if (!buf || size == 0)
                return NULL;
        /* Allocates: for the runtime's messages, never in a child step. */
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        if (name && name[0])
                snprintf(buf, size, "%s", name);
        else
                snprintf(buf, size, "syscall_%d", nr);
        free(name);
        return buf;
}
