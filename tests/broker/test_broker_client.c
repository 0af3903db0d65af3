/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's broker client against a fake runtime that answers out of
 * order: every thread must get its own answer (the id matching and the
 * hand-over of the reader's role), and malformed answers must fail the
 * request without leaving a descriptor behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker_client.h"
#include "fdpass.h"
#include "protocol.h"

#define THREADS 16

static int runtime_sock;

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1;
}

struct req {
        uint64_t id;
        char path[64];
};

static void answer(uint64_t id, uint32_t err, int fd)
{
        struct nk_msg_header h = { .type = NK_MSG_BROKER_REPLY, .id = id, .payload_len = 4 };
        const struct iovec iov[] = { { &h, sizeof h }, { &err, 4 } };
        assert_int_equal(nk_fdpass_send(runtime_sock, iov, 2, fd), 0);
}

/* Reads THREADS open requests, then answers them last first: paths
 * "/ok/N" with a pipe whose other end carries N, "/no/N" with errno N. */
static void *fake_runtime(void *arg)
{
        static struct req reqs[THREADS];
        for (int i = 0; i < THREADS; i++) {
                uint8_t buf[NK_BROKER_MSG_MAX];
                int fd;
                ssize_t n = nk_fdpass_recv(runtime_sock, buf, sizeof buf, 0, &fd);
                assert_true(n > (ssize_t) (sizeof(struct nk_msg_header) + 8));
                struct nk_msg_header h;
                memcpy(&h, buf, sizeof h);
                assert_int_equal(h.type, NK_MSG_BROKER_OPEN);
                reqs[i].id = h.id;
                size_t len = (size_t) n - sizeof h - 8;
                memcpy(reqs[i].path, buf + sizeof h + 8, len);
                reqs[i].path[len] = '\0';
        }
        for (int i = THREADS - 1; i >= 0; i--) {
                int k = atoi(reqs[i].path + 4);
                if (strncmp(reqs[i].path, "/ok/", 4) == 0) {
                        int p[2];
                        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
                        char c = (char) k;
                        assert_int_equal(write(p[1], &c, 1), 1);
                        answer(reqs[i].id, 0, p[0]);
                        close(p[0]);
                        close(p[1]);
                } else
                        answer(reqs[i].id, (uint32_t) k, -1);
        }
        return NULL;
}

static void *client(void *arg)
{
        long k = (long) arg;
        char path[64];
        snprintf(path, sizeof path, "/%s/%ld", k % 2 ? "no" : "ok", k + 1);
        int r = nk_broker_client_open(path, O_RDONLY, 0);
        if (k % 2)
                return (void *) (long) (r == -(k + 1));
        char c = 0;
        bool ok = r >= 0 && read(r, &c, 1) == 1 && c == (char) (k + 1);
        if (r >= 0)
                close(r);
        return (void *) (long) ok;
}

static void test_out_of_order_answers(void **state)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        runtime_sock = sv[1];
        nk_broker_client_set_socket(sv[0]);
        assert_true(nk_broker_client_present());
        int before = count_fds();

        pthread_t rt, t[THREADS];
        assert_int_equal(pthread_create(&rt, NULL, fake_runtime, NULL), 0);
        for (long i = 0; i < THREADS; i++)
                assert_int_equal(pthread_create(&t[i], NULL, client, (void *) i), 0);
        for (int i = 0; i < THREADS; i++) {
                void *ok;
                pthread_join(t[i], &ok);
                assert_true((long) ok);
        }
        pthread_join(rt, NULL);
        assert_int_equal(count_fds(), before);
}

/* A success without a descriptor, an error with one: refused, the
 * descriptor closed, the request failed with EIO. */
static void *bad_runtime(void *arg)
{
        for (int i = 0; i < 2; i++) {
                uint8_t buf[NK_BROKER_MSG_MAX];
                int fd;
                ssize_t n = nk_fdpass_recv(runtime_sock, buf, sizeof buf, 0, &fd);
                assert_true(n > 0);
                struct nk_msg_header h;
                memcpy(&h, buf, sizeof h);
                if (i == 0)
                        answer(h.id, 0, -1);
                else {
                        int p[2];
                        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
                        answer(h.id, EACCES, p[0]);
                        close(p[0]);
                        close(p[1]);
                }
        }
        return NULL;
}

static void test_malformed_answers(void **state)
{
        int before = count_fds();
        pthread_t rt;
        assert_int_equal(pthread_create(&rt, NULL, bad_runtime, NULL), 0);
        assert_int_equal(nk_broker_client_open("/x", O_RDONLY, 0), -EIO);
        assert_int_equal(nk_broker_client_open("/y", O_RDONLY, 0), -EIO);
        pthread_join(rt, NULL);
        assert_int_equal(count_fds(), before);
}

/* The runtime goes away: waiting requests fail, later ones find no broker. */
static void *closing_runtime(void *arg)
{
        uint8_t buf[NK_BROKER_MSG_MAX];
        int fd;
        (void) nk_fdpass_recv(runtime_sock, buf, sizeof buf, 0, &fd);
        close(runtime_sock);
        return NULL;
}

static void test_runtime_gone(void **state)
{
        pthread_t rt;
        assert_int_equal(pthread_create(&rt, NULL, closing_runtime, NULL), 0);
        assert_int_equal(nk_broker_client_open("/z", O_RDONLY, 0), -EIO);
        pthread_join(rt, NULL);
        assert_false(nk_broker_client_present());
        /* No broker: no file exists, no socket is granted. */
        assert_int_equal(nk_broker_client_open("/z", O_RDONLY, 0), -ENOENT);
        struct sockaddr_storage ss;
        assert_int_equal(nk_broker_client_resolve("localhost", AF_UNSPEC, &ss, 1), -EACCES);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_out_of_order_answers),
                cmocka_unit_test(test_malformed_answers),
                cmocka_unit_test(test_runtime_gone),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
