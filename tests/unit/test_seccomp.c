/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's seccomp allow-list, applied for real in forked children: every
 * denied call must trap (and with the host's SIGSYS handler, be reported
 * with the right number), the calls a NIF host needs must keep working.
 *
 * The denied calls are made with arguments that would fail harmlessly even
 * if the filter let them through (bad magic, NULL pointers, fd -1): a bug
 * in the filter fails a test, it does not reboot the machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/vfs.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <cmocka.h>

#include "protocol.h"
#include "sandbox.h"
#include "sigsys.h"
#include "violation.h"

static struct nk_seccomp_program prog;

static int setup(void **state)
{
        struct nk_sandbox_error err = { 0 };
        int r = nk_seccomp_build(&prog, &err);
        if (r < 0) {
                fprintf(stderr, "nk_seccomp_build: %s\n", err.msg);
                return -1;
        }
        return 0;
}

static int teardown(void **state)
{
        nk_seccomp_free(&prog);
        return 0;
}

/* How a sandboxed child ended, and what its SIGSYS handler reported. */
struct outcome {
        int status;
        bool reported;
        int nr;
        uint32_t arch;
};

typedef int (*child_fn)(const void *arg);

/* Forks a child that applies the filter (after no_new_privs, as the
 * sequencer does), optionally with the host's SIGSYS handler, and runs fn;
 * the child exits with fn's value. */
static struct outcome run_sandboxed(child_fn fn, const void *arg, bool handler)
{
        struct outcome o = { .nr = -1 };
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);

        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(sv[0]);
                /* A test that dies by SIGSYS must not leave core files. */
                struct rlimit no_core = { 0, 0 };
                setrlimit(RLIMIT_CORE, &no_core);
                /* cmocka catches SIGSYS in the test process; the child
                 * must see the kernel's default or the host's handler. */
                signal(SIGSYS, SIG_DFL);
                if (handler && nk_sigsys_install(sv[1]) < 0)
                        _exit(90);
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                        _exit(91);
                if (nk_seccomp_apply(&prog) < 0)
                        _exit(92);
                _exit(fn(arg));
        }
        close(sv[1]);
        assert_int_equal(waitpid(pid, &o.status, 0), pid);

        uint8_t frame[256];
        ssize_t n = recv(sv[0], frame, sizeof frame, MSG_DONTWAIT);
        if (n > 0) {
                struct nk_msg_header h;
                assert_int_equal(n, NK_PROTO_HEADER_SIZE + NK_VIOLATION_PAYLOAD_SIZE);
                memcpy(&h, frame, sizeof h);
                assert_int_equal(h.type, NK_MSG_VIOLATION);
                assert_int_equal(h.id, 0);
                assert_int_equal(h.payload_len, NK_VIOLATION_PAYLOAD_SIZE);
                assert_int_equal(nk_violation_parse(frame + NK_PROTO_HEADER_SIZE, h.payload_len,
                                                    &o.nr, &o.arch), 0);
                o.reported = true;
        }
        close(sv[0]);
        return o;
}

static bool died_by_sigsys(const struct outcome *o)
{
        return WIFSIGNALED(o->status) && WTERMSIG(o->status) == SIGSYS;
}

/* ---- denied calls --------------------------------------------------------- */

struct denied_call {
        const char *name;
        long nr;
        long a[6];
};

#define D(n, ...) { #n, SYS_##n, { __VA_ARGS__ } }
static const struct denied_call denied[] = {
        D(io_uring_setup, 0, 0),
        D(io_uring_enter, -1, 0, 0, 0, 0, 0),
        D(io_uring_register, -1, 0, 0, 0),
        D(bpf, 0x7fffffff, 0, 0),
        D(ptrace, -1, 0, 0, 0),
        D(mount, 0, 0, 0, 0, 0),
        D(umount2, 0, 0),
        D(pivot_root, 0, 0),
        D(unshare, CLONE_NEWUSER),
        D(setns, -1, 0),
        D(keyctl, -1, 0, 0, 0, 0),
        D(add_key, 0, 0, 0, 0, 0),
        D(request_key, 0, 0, 0, 0),
        D(perf_event_open, 0, 0, -1, -1, 0),
        D(init_module, 0, 0, 0),
        D(finit_module, -1, 0, 0),
        D(delete_module, 0, 0),
        D(kexec_load, 0, 0, 0, 0xdead0000L),
        D(kexec_file_load, -1, -1, 0, 0, 0xdead0000L),
        D(userfaultfd, 0xdead),
        D(process_vm_readv, 0, 0, 0, 0, 0, 0),
        D(process_vm_writev, 0, 0, 0, 0, 0, 0),
        D(setuid, -1),
        D(setgid, -1),
        D(setreuid, -1, -1),
        D(setregid, -1, -1),
        D(setresuid, -1, -1, -1),
        D(setresgid, -1, -1, -1),
        D(setfsuid, -1),
        D(setfsgid, -1),
        D(setgroups, -1, 0),
        D(capset, 0, 0),
        D(socket, -1, 0, 0),
        D(socketpair, -1, 0, 0, 0),
        D(connect, -1, 0, 0),
        D(bind, -1, 0, 0),
        D(listen, -1, 0),
        D(personality, 0xffffffffL),
        D(chroot, 0),
        D(reboot, 0, 0, 0, 0),
        D(swapon, 0, 0),
        D(acct, 1),
        D(quotactl, 0, 0, 0, 0),
        D(open_by_handle_at, -1, 0, 0),
        D(name_to_handle_at, -1, 0, 0, 0, 0),
        D(membarrier, 0, 0, 0),
        D(kill, 0, 0),
        D(memfd_create, 0, 0),
        D(pidfd_open, -1, 0),
        D(fsopen, 0, 0),
        D(open_tree, -1, 0, 0),
        D(mkdir, 0, 0),
        D(unlink, 0),
        D(execveat, -1, 0, 0, 0, 0),
        D(fork),
};

static int make_call(const void *arg)
{
        const struct denied_call *c = arg;
        pid_t self = getpid();
        long r = syscall(c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
        /* Only reached if the call was let through; a forked copy leaves. */
        if (r == 0 && getpid() != self)
                _exit(0);
        return 1;
}

static void test_denied_calls_trap_and_are_reported(void **state)
{
        int failures = 0;
        for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
                struct outcome o = run_sandboxed(make_call, &denied[i], true);
                bool ok = died_by_sigsys(&o) && o.reported && o.nr == denied[i].nr &&
                          o.arch == AUDIT_ARCH_X86_64;
                printf("denied %-18s %s\n", denied[i].name, ok ? "trapped, reported" : "NOT DENIED");
                if (!ok) {
                        fprintf(stderr, "%s: status %#x reported %d nr %d arch %#x\n", denied[i].name,
                                o.status, o.reported, o.nr, o.arch);
                        failures++;
                }
        }
        assert_int_equal(failures, 0);
}

/* Without the handler the kernel's default for SIGSYS ends the process. */
static void test_trap_without_handler_kills_by_sigsys(void **state)
{
        const struct denied_call ptrace_call = D(ptrace, -1, 0, 0, 0);
        struct outcome o = run_sandboxed(make_call, &ptrace_call, false);
        assert_true(died_by_sigsys(&o));
        assert_false(o.reported);
}

/* ---- clone: threads yes, namespaces and processes no ---------------------- */

static void *thread_main(void *arg)
{
        *(int *) arg = 42;
        return arg;
}

static int make_thread(const void *arg)
{
        pthread_t t;
        int v = 0;
        void *res = NULL;
        if (pthread_create(&t, NULL, thread_main, &v) != 0)
                return 10;
        if (pthread_join(t, &res) != 0 || res != &v || v != 42)
                return 11;
        return 0;
}

static int clone_newuser(const void *arg)
{
        /* fork-like clone into a new user namespace: must trap. */
        long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (r == 0)
                _exit(0);
        return 20;
}

static int clone_thread_newnet(const void *arg)
{
        /* CLONE_THREAD is there, but so is a namespace flag: must trap. */
        long r = syscall(SYS_clone, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWNET, 0, 0, 0, 0);
        (void) r;
        return 21;
}

static int clone3_is_enosys(const void *arg)
{
        long r = syscall(SYS_clone3, NULL, 0);
        return r == -1 && errno == ENOSYS ? 0 : 22;
}

static void test_threads_yes_namespaces_no(void **state)
{
        struct outcome o = run_sandboxed(make_thread, NULL, true);
        assert_true(WIFEXITED(o.status));
        assert_int_equal(WEXITSTATUS(o.status), 0);

        o = run_sandboxed(clone_newuser, NULL, true);
        assert_true(died_by_sigsys(&o));
        assert_int_equal(o.nr, SYS_clone);

        o = run_sandboxed(clone_thread_newnet, NULL, true);
        assert_true(died_by_sigsys(&o));
        assert_int_equal(o.nr, SYS_clone);

        o = run_sandboxed(clone3_is_enosys, NULL, true);
        assert_true(WIFEXITED(o.status));
        assert_int_equal(WEXITSTATUS(o.status), 0);
}

/* ---- what a NIF host needs keeps working ---------------------------------- */

static int ordinary_work(const void *arg)
{
        const char *path = arg;
        size_t size = 8 << 20;
        char *p = malloc(size);
        if (!p)
                return 30;
        memset(p, 0x5a, size);
        p = realloc(p, 2 * size);
        if (!p)
                return 31;
        free(p);

        struct timespec ts;
        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0 || clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return 32;
        struct timespec nap = { 0, 1000 };
        if (nanosleep(&nap, NULL) < 0)
                return 33;
        uint64_t rnd;
        if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
                return 34;
        if (prctl(PR_SET_NAME, "nk-test", 0, 0, 0) < 0)
                return 35;
        char name[16] = "";
        if (prctl(PR_GET_NAME, name, 0, 0, 0) < 0 || strcmp(name, "nk-test") != 0)
                return 36;
        /* libcap's probe for the last capability: read-only, allowed. */
        if (prctl(PR_CAPBSET_READ, 0, 0, 0, 0) < 0)
                return 42;
        struct statfs root_fs;
        if (statfs("/", &root_fs) < 0)
                return 43;

        /* What the loader does: read-only opens. */
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 37;
        char buf[16];
        if (read(fd, buf, sizeof buf) <= 0)
                return 38;
        /* Calls on descriptors the host holds; their results do not matter
         * here (procfs refuses some), only that none traps. */
        struct statfs sfs;
        (void) fstatfs(fd, &sfs);
        (void) fdatasync(fd);
        (void) fsync(fd);
        close(fd);
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0 || write(pfd[1], "x", 1) != 1 || read(pfd[0], buf, 1) != 1)
                return 39;
        struct rlimit rl;
        if (getrlimit(RLIMIT_STACK, &rl) < 0)
                return 40;
        return make_thread(NULL) == 0 ? 0 : 41;
}

static void test_allowed_calls_work(void **state)
{
        struct outcome o = run_sandboxed(ordinary_work, "/proc/self/status", true);
        if (o.reported)
                fprintf(stderr, "trapped syscall %d\n", o.nr);
        assert_false(o.reported);
        assert_true(WIFEXITED(o.status));
        assert_int_equal(WEXITSTATUS(o.status), 0);
}

/* ---- conditional rules deny the dangerous variants ------------------------ */

/* Each way of opening for writing or creating is refused with EACCES, not
 * trapped: ordinary code copes with a failed open. Exits 0 if all were. */
static int write_opens(const void *arg)
{
        const char *path = arg;
        static const int flags[] = {
                O_WRONLY, O_RDWR, O_RDONLY | O_CREAT, O_RDONLY | O_TRUNC, O_RDONLY | O_APPEND,
                O_WRONLY | O_CREAT | O_EXCL,
        };
        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
                errno = 0;
                int fd = open(path, flags[i] | O_CLOEXEC, 0600);
                if (fd >= 0 || errno != EACCES)
                        return 50 + (int) i;
                errno = 0;
                fd = (int) syscall(SYS_open, path, flags[i] | O_CLOEXEC, 0600);
                if (fd >= 0 || errno != EACCES)
                        return 60 + (int) i;
        }
        errno = 0;
        if (open("/tmp", O_TMPFILE | O_RDWR, 0600) >= 0 || errno != EACCES)
                return 70;
        /* The same file still opens for reading. */
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        return fd >= 0 ? 0 : 71;
}

static void test_write_opens_are_refused(void **state)
{
        char path[] = "/tmp/nk-seccomp-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "keep", 4), 4);
        close(fd);

        struct outcome o = run_sandboxed(write_opens, path, true);
        assert_false(o.reported);
        assert_true(WIFEXITED(o.status));
        assert_int_equal(WEXITSTATUS(o.status), 0);

        /* Nothing was truncated or created. */
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 4);
        unlink(path);
}

static int prctl_dumpable(const void *arg)
{
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        return 54;
}

static int ioctl_tiocsti(const void *arg)
{
        char c = 'x';
        ioctl(-1, TIOCSTI, &c);
        return 55;
}

static int prlimit_set(const void *arg)
{
        struct rlimit rl = { 16, 16 };
        setrlimit(RLIMIT_NOFILE, &rl);
        return 56;
}

/* The broker hands the host connected sockets: their options may be set
 * at the ordinary levels, but not TCP_ULP, which loads a kernel module. */
static int sockopts(const void *arg)
{
        int fd = *(const int *) arg, one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0)
                return 40;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
                return 41;
        socklen_t len = sizeof one;
        if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, &len) < 0 || !one)
                return 42;
        setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", 3);
        return 43;
}

static void test_socket_options(void **state)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct outcome o = run_sandboxed(sockopts, &fd, true);
        close(fd);
        assert_true(died_by_sigsys(&o));
        assert_true(o.reported);
        assert_int_equal(o.nr, SYS_setsockopt);
}

static void test_conditional_rules(void **state)
{
        struct {
                child_fn fn;
                long nr;
        } cases[] = {
                { prctl_dumpable, SYS_prctl },
                { ioctl_tiocsti, SYS_ioctl },
                { prlimit_set, SYS_prlimit64 },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                struct outcome o = run_sandboxed(cases[i].fn, NULL, true);
                assert_true(died_by_sigsys(&o));
                assert_true(o.reported);
                assert_int_equal(o.nr, cases[i].nr);
        }
}

/* Another architecture's numbering is not trapped but kills the process
 * (x32 numbers carry bit 30 and reach an x86_64 filter). */
static int x32_getpid(const void *arg)
{
        syscall(0x40000000L | SYS_getpid);
        return 60;
}

static void test_other_arch_is_killed(void **state)
{
        struct outcome o = run_sandboxed(x32_getpid, NULL, true);
        assert_true(died_by_sigsys(&o));
        /* SECCOMP_RET_KILL_PROCESS runs no handler. */
        assert_false(o.reported);
}

/* ---- export, apply errors, names ------------------------------------------ */

static void test_write_is_raw_bpf(void **state)
{
        assert_true(prog.len > 10);
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        /* The program fits a pipe's default 64 KiB buffer many times. */
        assert_int_equal(nk_seccomp_write(&prog, pfd[1]), 0);
        close(pfd[1]);
        size_t total = 0;
        char buf[4096];
        ssize_t n;
        while ((n = read(pfd[0], buf, sizeof buf)) > 0) {
                assert_memory_equal(buf, (char *) prog.bpf + total, (size_t) n);
                total += (size_t) n;
        }
        close(pfd[0]);
        assert_int_equal(total, prog.len * 8);

        struct nk_seccomp_program empty = { 0 };
        assert_int_equal(nk_seccomp_write(&empty, 1), -EINVAL);
        assert_int_equal(nk_seccomp_write(&prog, -1), -EBADF);
        assert_int_equal(nk_seccomp_apply(&empty), -EINVAL);
        nk_seccomp_free(&empty);
        nk_seccomp_free(NULL);
}

static void test_syscall_names(void **state)
{
        char buf[64];
        assert_string_equal(nk_seccomp_syscall_name(SYS_ptrace, buf, sizeof buf), "ptrace");
        assert_string_equal(nk_seccomp_syscall_name(SYS_io_uring_setup, buf, sizeof buf), "io_uring_setup");
        assert_string_equal(nk_seccomp_syscall_name(SYS_clone, buf, sizeof buf), "clone");
        assert_string_equal(nk_seccomp_syscall_name(99999, buf, sizeof buf), "syscall_99999");
        assert_string_equal(nk_seccomp_syscall_name(-5, buf, sizeof buf), "syscall_-5");
        char small[4];
        assert_string_equal(nk_seccomp_syscall_name(SYS_ptrace, small, sizeof small), "ptr");
        assert_null(nk_seccomp_syscall_name(SYS_ptrace, NULL, 0));
}

static void test_violation_parse(void **state)
{
        uint8_t p[9];
        uint32_t nr = (uint32_t) -7, arch = AUDIT_ARCH_X86_64;
        memcpy(p, &nr, 4);
        memcpy(p + 4, &arch, 4);
        int got_nr = 0;
        uint32_t got_arch = 0;
        assert_int_equal(nk_violation_parse(p, 8, &got_nr, &got_arch), 0);
        assert_int_equal(got_nr, -7);
        assert_int_equal(got_arch, AUDIT_ARCH_X86_64);
        assert_int_equal(nk_violation_parse(p, 7, &got_nr, &got_arch), -EBADMSG);
        assert_int_equal(nk_violation_parse(p, 9, &got_nr, &got_arch), -EBADMSG);
        assert_int_equal(nk_violation_parse(NULL, 8, &got_nr, &got_arch), -EBADMSG);
        assert_int_equal(nk_sigsys_install(-1), -EBADF);
}

int main(void)
{
#ifndef __x86_64__
        /* The expected numbers and the x32 case are x86_64's. */
        printf("SKIP: these expectations are written for x86_64\n");
        return 77;
#endif
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_write_is_raw_bpf),
                cmocka_unit_test(test_syscall_names),
                cmocka_unit_test(test_violation_parse),
                cmocka_unit_test(test_denied_calls_trap_and_are_reported),
                cmocka_unit_test(test_trap_without_handler_kills_by_sigsys),
                cmocka_unit_test(test_threads_yes_namespaces_no),
                cmocka_unit_test(test_allowed_calls_work),
                cmocka_unit_test(test_conditional_rules),
                cmocka_unit_test(test_socket_options),
                cmocka_unit_test(test_write_opens_are_refused),
                cmocka_unit_test(test_other_arch_is_killed),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
