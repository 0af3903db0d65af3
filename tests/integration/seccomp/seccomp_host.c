/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit-host under the seccomp allow-list, exec'd the way the sandbox
 * does it (no_new_privs, filter, then execve): the host must start, load
 * real NIF libraries with the dynamic loader, run calls on worker threads,
 * threads a NIF starts, sends and dirty calls, and exit cleanly; a NIF that
 * tries a denied call must end the host by SIGSYS (and, once the host
 * installs its SIGSYS handler, the runtime hears which call it was).
 *
 * Environment: NIFKIT_HOST, NK_TEST_NIF_GOOD, NK_TEST_NIF_SECCOMP, and
 * NK_JIFFY (jiffy.so, empty when erlang-jiffy is not installed), NK_SANITIZE
 * (the build's b_sanitize).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "protocol.h"
#include "sandbox.h"
#include "transport.h"
#include "violation.h"

static struct nk_seccomp_program prog;

static const char *need_env(const char *name)
{
        const char *v = getenv(name);
        if (!v)
                fail_msg("%s is not set: run this test through meson test", name);
        return v;
}

struct host {
        int fd;
        pid_t pid;
        struct nk_transport tr;
};

/* The child side of a sandboxed launch, reduced to what this test needs:
 * channel on fd 3, no_new_privs, the filter, exec. */
static void host_start(struct host *h)
{
        int sv[2];
        const char *binary = need_env("NIFKIT_HOST");
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct rlimit no_core = { 0, 0 };
                setrlimit(RLIMIT_CORE, &no_core);
                signal(SIGSYS, SIG_DFL);
                if (dup2(sv[1], 3) < 0)
                        _exit(120);
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                        _exit(121);
                if (nk_seccomp_apply(&prog) < 0)
                        _exit(122);
                execl(binary, "nifkit-host", "--fd", "3", (char *) NULL);
                _exit(123);
        }
        close(sv[1]);
        h->fd = sv[0];
        h->pid = pid;
        assert_int_equal(nk_transport_init(&h->tr, h->fd, 0), 0);
}

static int host_wait(struct host *h)
{
        int status;
        assert_int_equal(waitpid(h->pid, &status, 0), h->pid);
        nk_transport_done(&h->tr);
        close(h->fd);
        return status;
}

static void send_buf(struct host *h, uint32_t type, uint64_t id, struct nk_buf *b)
{
        struct iovec iov = { b->data, b->len };
        assert_int_equal(nk_transport_send(&h->tr, type, id, &iov, 1), 0);
        nk_buf_free(b);
}

/* LOAD, then the index of each name in the LOADED list (-1 if absent). */
static void load(struct host *h, const char *path, const char *const *names, int *ret_index, size_t n)
{
        struct nk_buf b = { 0 };
        nk_put_u32(&b, 2);
        nk_put_str(&b, path, strlen(path));
        nk_put_u32(&b, 0);
        send_buf(h, NK_MSG_LOAD, 1, &b);

        struct nk_msg m;
        assert_int_equal(nk_transport_recv(&h->tr, &m), 0);
        if (m.h.type == NK_MSG_ERROR)
                fail_msg("LOAD %s failed: %.*s", path, (int) m.h.payload_len - 4, (char *) m.payload + 4);
        assert_int_equal(m.h.type, NK_MSG_LOADED);
        for (size_t i = 0; i < n; i++)
                ret_index[i] = -1;
        struct nk_rd r = nk_rd_init(m.payload, m.h.payload_len);
        const uint8_t *s = NULL;
        size_t len = 0;
        uint32_t count = 0, arity, flags;
        assert_true(nk_rd_str(&r, NK_PROTO_NAME_MAX, &s, &len));
        assert_true(nk_rd_u32(&r, &count));
        for (uint32_t k = 0; k < count; k++) {
                assert_true(nk_rd_str(&r, NK_PROTO_NAME_MAX, &s, &len));
                assert_true(nk_rd_u32(&r, &arity) && nk_rd_u32(&r, &flags));
                for (size_t i = 0; i < n; i++)
                        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
                                ret_index[i] = (int) k;
        }
        nk_msg_free(&m);
}

/* A pid term for the caller, so enif_self and enif_send have a target. */
static const uint8_t caller_pid[] = {
        131, 88, 119, 13, 'n', 'o', 'n', 'o', 'd', 'e', '@', 'n', 'o', 'h', 'o', 's', 't',
        0, 0, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0,
};

static void call(struct host *h, uint64_t id, int index, const uint8_t *args, size_t len)
{
        struct nk_buf b = { 0 };
        assert_true(index >= 0);
        nk_put_u32(&b, (uint32_t) index);
        nk_put_str(&b, caller_pid, sizeof caller_pid);
        nk_buf_put(&b, args, len);
        send_buf(h, NK_MSG_CALL, id, &b);
}

/* Waits for the RESULT of id, counting the SENDs that come before it;
 * checks status 0 and the result's ETF. */
static int expect_result(struct host *h, uint64_t id, const uint8_t *want, size_t want_len)
{
        int sends = 0;
        for (;;) {
                struct nk_msg m;
                int r = nk_transport_recv(&h->tr, &m);
                if (r < 0)
                        fail_msg("waiting for the result of call %llu: %s", (unsigned long long) id, strerror(-r));
                if (m.h.type == NK_MSG_SEND) {
                        sends++;
                        nk_msg_free(&m);
                        continue;
                }
                assert_int_equal(m.h.type, NK_MSG_RESULT);
                assert_int_equal(m.h.id, id);
                uint32_t status;
                memcpy(&status, m.payload, 4);
                assert_int_equal(status, NK_RESULT_NO_HANDLES);
                assert_int_equal(m.h.payload_len - 4, want_len);
                assert_memory_equal(m.payload + 4, want, want_len);
                nk_msg_free(&m);
                return sends;
        }
}

static void stop_cleanly(struct host *h)
{
        assert_int_equal(nk_transport_send(&h->tr, NK_MSG_STOP, 0, NULL, 0), 0);
        int status = host_wait(h);
        if (WIFSIGNALED(status))
                fail_msg("the host died by signal %d under the filter", WTERMSIG(status));
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

#define ETF(...) ((const uint8_t[]) { __VA_ARGS__ }), sizeof((const uint8_t[]) { __VA_ARGS__ })

static void test_good_nif_runs_under_the_filter(void **state)
{
        static const char *const names[] = { "add", "send_thread", "yield", "sleep", "load_info" };
        int ix[5];
        struct host h;
        host_start(&h);
        load(&h, need_env("NK_TEST_NIF_GOOD"), names, ix, 5);

        /* add(2, 3) = 5 */
        call(&h, 10, ix[0], ETF(131, 108, 0, 0, 0, 2, 97, 2, 97, 3, 106));
        expect_result(&h, 10, ETF(131, 97, 5));
        /* send_thread(x): a NIF thread (clone with CLONE_THREAD) sends. */
        call(&h, 11, ix[1], ETF(131, 108, 0, 0, 0, 1, 119, 1, 'x', 106));
        assert_int_equal(expect_result(&h, 11, ETF(131, 100, 0, 2, 'o', 'k')), 1);
        /* yield(100) = 5050 through enif_schedule_nif. */
        call(&h, 12, ix[2], ETF(131, 108, 0, 0, 0, 1, 97, 100, 106));
        expect_result(&h, 12, ETF(131, 98, 0, 0, 0x13, 0xba));
        /* sleep(1) on a dirty I/O worker. */
        call(&h, 13, ix[3], ETF(131, 108, 0, 0, 0, 1, 97, 1, 106));
        expect_result(&h, 13, ETF(131, 100, 0, 2, 'o', 'k'));
        stop_cleanly(&h);
}

static void test_jiffy_runs_under_the_filter(void **state)
{
        const char *jiffy = need_env("NK_JIFFY");
        if (!*jiffy || access(jiffy, R_OK) < 0) {
                printf("SKIP: jiffy is not installed (erlang-jiffy)\n");
                skip();
        }
        static const char *const names[] = { "nif_decode_init" };
        int ix[1];
        struct host h;
        host_start(&h);
        /* jiffy.so pulls in libstdc++ and friends: the loader's opens. */
        load(&h, jiffy, names, ix, 1);
        /* nif_decode_init(<<"[1,2]">>, []) = [1,2] */
        call(&h, 20, ix[0], ETF(131, 108, 0, 0, 0, 2, 109, 0, 0, 0, 5, '[', '1', ',', '2', ']', 106, 106));
        expect_result(&h, 20, ETF(131, 107, 0, 2, 1, 2));
        stop_cleanly(&h);
}

static void test_denied_calls_end_the_host_by_sigsys(void **state)
{
        static const char *const names[] = { "ptrace", "socket", "fork", "unshare", "thread", "write_file" };
        static const long nrs[] = { SYS_ptrace, SYS_socket, SYS_clone, SYS_unshare };
        int ix[6];

        for (size_t i = 0; i < 4; i++) {
                struct host h;
                host_start(&h);
                load(&h, need_env("NK_TEST_NIF_SECCOMP"), names, ix, 6);
                /* The library itself works: a thread is allowed. */
                call(&h, 30, ix[4], ETF(131, 106));
                expect_result(&h, 30, ETF(131, 100, 0, 2, 'o', 'k'));
                /* Writing a file is refused with an errno, not trapped:
                 * write_file() = {returned, -1}. */
                call(&h, 32, ix[5], ETF(131, 106));
                expect_result(&h, 32, ETF(131, 104, 2, 100, 0, 8, 'r', 'e', 't', 'u', 'r', 'n', 'e', 'd',
                                          98, 255, 255, 255, 255));

                call(&h, 31, ix[i], ETF(131, 106));
                struct nk_msg m;
                bool reported = false;
                int r;
                while ((r = nk_transport_recv(&h.tr, &m)) == 0) {
                        if (m.h.type == NK_MSG_RESULT)
                                fail_msg("%s returned: the filter let it through", names[i]);
                        if (m.h.type == NK_MSG_VIOLATION) {
                                int nr;
                                uint32_t arch;
                                assert_int_equal(nk_violation_parse(m.payload, m.h.payload_len, &nr, &arch), 0);
                                assert_int_equal(nr, nrs[i]);
                                reported = true;
                        }
                        nk_msg_free(&m);
                }
                int status = host_wait(&h);
                assert_true(WIFSIGNALED(status));
                assert_int_equal(WTERMSIG(status), SIGSYS);
                char name[64];
                printf("%-10s host died by SIGSYS, %s\n", names[i],
                       reported ? nk_seccomp_syscall_name(nrs[i], name, sizeof name)
                                : "no report (the host has not installed its SIGSYS handler)");
        }
        assert_int_equal(access("/tmp/nifkit-seccomp-must-not-exist", F_OK), -1);
}

static int setup(void **state)
{
        const char *san = getenv("NK_SANITIZE");
        if (san && *san && strcmp(san, "none") != 0) {
                /* ASan and friends set rlimits and personality at start-up,
                 * before main(): a sandboxed host cannot be instrumented. */
                printf("SKIP: nifkit-host is built with -fsanitize=%s, whose runtime makes calls the "
                       "allow-list denies\n", san);
                exit(77);
        }
        struct nk_sandbox_error err = { 0 };
        if (nk_seccomp_build(&prog, &err) < 0) {
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

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good_nif_runs_under_the_filter),
                cmocka_unit_test(test_jiffy_runs_under_the_filter),
                cmocka_unit_test(test_denied_calls_end_the_host_by_sigsys),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
