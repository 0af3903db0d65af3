/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit-host's protocol server, spoken to directly over its channel, and
 * the direct launcher that starts it. Malformed requests must each get an
 * ERROR and leave the host serving. Binaries come from the environment:
 * NIFKIT_HOST, NK_TEST_NIF_GOOD.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "launcher.h"
#include "protocol.h"
#include "transport.h"

static const char *need_env(const char *name)
{
        const char *v = getenv(name);
        if (!v || !*v)
                fail_msg("%s is not set: run this test through meson test", name);
        return v;
}

struct host {
        int fd;
        struct nk_transport tr;
        struct nk_child child;
};

static void host_start(struct host *h)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        const struct nk_launch_config cfg = { .host_binary = need_env("NIFKIT_HOST"), .library = "test" };
        assert_int_equal(nk_launcher_direct.launch(&cfg, sv[1], &h->child), 0);
        close(sv[1]);
        h->fd = sv[0];
        assert_int_equal(nk_transport_init(&h->tr, h->fd, 0), 0);
}

static void host_stop(struct host *h)
{
        assert_int_equal(nk_transport_send(&h->tr, NK_MSG_STOP, 0, NULL, 0), 0);
        struct nk_child_exit ex;
        assert_int_equal(nk_launcher_direct.wait(&h->child, 10000, &ex), 0);
        assert_int_equal(ex.signo, 0);
        assert_int_equal(ex.status, 0);
        nk_child_release(&h->child);
        nk_transport_done(&h->tr);
        close(h->fd);
}

static void send_parts(struct host *h, uint32_t type, uint64_t id, struct nk_buf *b)
{
        struct iovec iov = { b->data, b->len };
        assert_int_equal(nk_transport_send(&h->tr, type, id, &iov, 1), 0);
        nk_buf_free(b);
}

/* Receives the next message and checks it is an ERROR for id whose text
 * contains what. */
static void expect_error(struct host *h, uint64_t id, uint32_t category, const char *what)
{
        struct nk_msg m;
        assert_int_equal(nk_transport_recv(&h->tr, &m), 0);
        assert_int_equal(m.h.type, NK_MSG_ERROR);
        assert_int_equal(m.h.id, id);
        struct nk_rd r = nk_rd_init(m.payload, m.h.payload_len);
        uint32_t cat;
        const uint8_t *text;
        size_t len;
        assert_true(nk_rd_u32(&r, &cat));
        nk_rd_rest(&r, &text, &len);
        char *s = strndup((const char *) text, len);
        if (cat != category || !strstr(s, what))
                fail_msg("expected ERROR %u '%s', got %u '%s'", category, what, cat, s);
        free(s);
        nk_msg_free(&m);
}

static void expect_pong(struct host *h, uint64_t id)
{
        assert_int_equal(nk_transport_send(&h->tr, NK_MSG_PING, id, NULL, 0), 0);
        struct nk_msg m;
        assert_int_equal(nk_transport_recv(&h->tr, &m), 0);
        assert_int_equal(m.h.type, NK_MSG_PONG);
        assert_int_equal(m.h.id, id);
        assert_int_equal(m.h.payload_len, 0);
        nk_msg_free(&m);
}

static void load(struct host *h, uint64_t id, const char *path, const uint8_t *info, size_t info_len)
{
        struct nk_buf b = {};
        nk_put_u32(&b, 2);
        nk_put_str(&b, path, strlen(path));
        nk_put_u32(&b, 0);
        nk_buf_put(&b, info, info_len);
        send_parts(h, NK_MSG_LOAD, id, &b);
}

static void test_requests_before_load(void **state)
{
        struct host h;
        host_start(&h);
        expect_pong(&h, 5);

        struct nk_buf b = {};
        nk_put_u32(&b, 0);
        nk_put_u32(&b, 0);
        send_parts(&h, NK_MSG_CALL, 6, &b);
        expect_error(&h, 6, NK_PERR_REJECTED, "before a library was loaded");

        nk_put_u32(&b, 4);
        send_parts(&h, NK_MSG_LOAD, 7, &b);
        expect_error(&h, 7, NK_PERR_REJECTED, "malformed LOAD");

        assert_int_equal(nk_transport_send(&h.tr, 77, 8, NULL, 0), 0);
        expect_error(&h, 8, NK_PERR_REJECTED, "unexpected message type 77");

        struct nk_msg_header hd = { .type = NK_MSG_PING, .flags = 1, .id = 9 };
        assert_int_equal(send(h.fd, &hd, sizeof hd, 0), (ssize_t) sizeof hd);
        expect_error(&h, 9, NK_PERR_REJECTED, "unknown flags");

        assert_int_equal(send(h.fd, "tiny", 4, 0), 4);
        expect_error(&h, 0, NK_PERR_REJECTED, "malformed datagram");

        /* A library that is not there is a load error naming it. */
        static const uint8_t nil[] = { 131, 106 };
        load(&h, 10, "/nonexistent/x.so", nil, sizeof nil);
        expect_error(&h, 10, NK_PERR_LOAD, "/nonexistent/x.so");
        expect_pong(&h, 11);
        host_stop(&h);
}

static void test_malformed_load_info(void **state)
{
        struct host h;
        host_start(&h);
        static const uint8_t bad[] = { 131, 104, 3, 97 };
        load(&h, 1, need_env("NK_TEST_NIF_GOOD"), bad, sizeof bad);
        expect_error(&h, 1, NK_PERR_LOAD, "malformed load_info");
        host_stop(&h);
}

static void test_requests_after_load(void **state)
{
        struct host h;
        host_start(&h);
        const char *lib = need_env("NK_TEST_NIF_GOOD");
        load(&h, 1, lib, NULL, 0);
        struct nk_msg m;
        assert_int_equal(nk_transport_recv(&h.tr, &m), 0);
        assert_int_equal(m.h.type, NK_MSG_LOADED);
        assert_int_equal(m.h.id, 1);
        struct nk_rd r = nk_rd_init(m.payload, m.h.payload_len);
        const uint8_t *name;
        size_t len;
        uint32_t n;
        assert_true(nk_rd_str(&r, NK_PROTO_NAME_MAX, &name, &len));
        assert_int_equal(len, strlen("nk_test_good"));
        assert_memory_equal(name, "nk_test_good", len);
        assert_true(nk_rd_u32(&r, &n));
        assert_int_equal(n, 15);
        nk_msg_free(&m);

        load(&h, 2, lib, NULL, 0);
        expect_error(&h, 2, NK_PERR_REJECTED, "already loaded");

        struct nk_buf b = {};
        nk_put_u32(&b, 0);
        send_parts(&h, NK_MSG_CALL, 3, &b);
        expect_error(&h, 3, NK_PERR_REJECTED, "payload too short");

        static const uint8_t args[] = { 131, 106 };
        nk_put_u32(&b, 999);
        nk_put_u32(&b, 0);
        nk_buf_put(&b, args, sizeof args);
        send_parts(&h, NK_MSG_CALL, 4, &b);
        expect_error(&h, 4, NK_PERR_REJECTED, "bad function index 999");

        /* A caller pid string whose length runs past the payload. */
        nk_put_u32(&b, 0);
        nk_put_u32(&b, 1000);
        nk_buf_put(&b, args, sizeof args);
        send_parts(&h, NK_MSG_CALL, 5, &b);
        expect_error(&h, 5, NK_PERR_REJECTED, "malformed CALL");

        nk_buf_put(&b, "abc", 3);
        send_parts(&h, NK_MSG_RELEASE, 6, &b);
        expect_error(&h, 6, NK_PERR_REJECTED, "malformed RELEASE");

        /* Releasing a handle the host never gave is harmless and silent:
         * the next reply is the PONG. */
        nk_put_u64(&b, 12345);
        send_parts(&h, NK_MSG_RELEASE, 0, &b);
        expect_pong(&h, 7);

        /* After all that, a well-formed call still works: badarg/0. */
        nk_put_u32(&b, 3);
        nk_put_u32(&b, 0);
        nk_buf_put(&b, args, sizeof args);
        send_parts(&h, NK_MSG_CALL, 8, &b);
        assert_int_equal(nk_transport_recv(&h.tr, &m), 0);
        assert_int_equal(m.h.type, NK_MSG_RESULT);
        assert_int_equal(m.h.id, 8);
        uint32_t status;
        memcpy(&status, m.payload, 4);
        /* Raised, and holds no resource handle. */
        assert_int_equal(status, 1 | NK_RESULT_NO_HANDLES);
        nk_msg_free(&m);
        host_stop(&h);
}

static void test_launcher_closes_other_fds(void **state)
{
        /* A descriptor without CLOEXEC must still not reach the host. */
        int leak[2];
        assert_int_equal(pipe(leak), 0);
        struct stat want;
        assert_int_equal(fstat(leak[0], &want), 0);

        struct host h;
        host_start(&h);
        expect_pong(&h, 1);
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%d/fd", (int) h.child.pid);
        for (int fd = 0; fd < 64; fd++) {
                char path[96];
                struct stat st;
                snprintf(path, sizeof path, "%s/%d", dir, fd);
                if (stat(path, &st) < 0)
                        continue;
                if (st.st_ino == want.st_ino && st.st_dev == want.st_dev)
                        fail_msg("the host inherited fd %d, a pipe of the runtime", fd);
                if (fd == NK_HOST_CHANNEL_FD)
                        assert_true(S_ISSOCK(st.st_mode));
        }
        host_stop(&h);
        close(leak[0]);
        close(leak[1]);
}

static void test_launcher_kill_wait_and_exec_failure(void **state)
{
        struct host h;
        host_start(&h);
        struct nk_child_exit ex;
        assert_int_equal(nk_launcher_direct.wait(&h.child, 50, &ex), -ETIMEDOUT);
        assert_int_equal(nk_launcher_direct.kill(&h.child, SIGTERM), 0);
        assert_int_equal(nk_launcher_direct.wait(&h.child, -1, &ex), 0);
        assert_int_equal(ex.signo, SIGTERM);
        assert_int_equal(nk_launcher_direct.wait(&h.child, -1, &ex), -ECHILD);
        assert_int_equal(nk_launcher_direct.kill(&h.child, SIGTERM), -ESRCH);
        nk_child_release(&h.child);
        nk_transport_done(&h.tr);
        close(h.fd);

        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        const struct nk_launch_config cfg = { .host_binary = "/nonexistent/nifkit-host", .library = "x" };
        struct nk_child c;
        assert_int_equal(nk_launcher_direct.launch(&cfg, sv[1], &c), -ENOENT);
        close(sv[0]);
        close(sv[1]);
}

static void test_host_refuses_to_run_without_channel(void **state)
{
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof cmd, "'%s' 2>&1 </dev/null", need_env("NIFKIT_HOST"));
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        char out[512] = "";
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = '\0';
        int status = pclose(p);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 2);
        assert_non_null(strstr(out, "--fd"));

        snprintf(cmd, sizeof cmd, "'%s' --fd 0 2>&1 </dev/null", need_env("NIFKIT_HOST"));
        p = popen(cmd, "r");
        n = fread(out, 1, sizeof out - 1, p);
        out[n] = '\0';
        status = pclose(p);
        assert_int_equal(WEXITSTATUS(status), 2);
        assert_non_null(strstr(out, "not a SOCK_SEQPACKET socket"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_requests_before_load),
                cmocka_unit_test(test_malformed_load_info),
                cmocka_unit_test(test_requests_after_load),
                cmocka_unit_test(test_launcher_closes_other_fds),
                cmocka_unit_test(test_launcher_kill_wait_and_exec_failure),
                cmocka_unit_test(test_host_refuses_to_run_without_channel),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
