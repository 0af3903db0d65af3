/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the capability broker costs: one brokered open and one brokered
 * connect, next to the same open and connect made directly, in the same
 * run and the same host process.
 *
 *     broker_bench [N]        (N operations per measurement, default 20000)
 *
 * Environment: NIFKIT_HOST, NK_TEST_NIF_BROKER (tests/broker/nif_broker.c),
 * NK_BENCH_DIR (where the file to open is made: not /tmp, which the host
 * opens itself).
 *
 * The loops run inside the NIF (bench_open/3, bench_connect/3), so one call
 * round trip is spread over N operations. "direct" makes the system calls
 * itself, bypassing the interposed libc; it can only reach the runtime's
 * files and network without a sandbox, so the ratio is measured with the
 * development launcher. The brokered numbers are then measured again in
 * the native sandbox, where "direct" is impossible by design. Each
 * measurement is repeated 5 times, alternating brokered and direct, and the
 * median is printed.
 *
 * A measurement, not a test: it asserts nothing about time.
 */
#include <arpa/inet.h>
#include <ei.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nifkit.h"
#include "operator.h"
#include "nifkit_policy.h"

#define ROUNDS 5

static int listen_fd;

static void *acceptor(void *arg)
{
        for (;;) {
                int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        return NULL;
                close(c);
        }
}

static int start_listener(void)
{
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof in;
        listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *) &in, sizeof in) < 0 || listen(listen_fd, 4096) < 0 ||
            getsockname(listen_fd, (struct sockaddr *) &in, &l) < 0)
                return -errno;
        pthread_t t;
        pthread_create(&t, NULL, acceptor, NULL);
        pthread_detach(t);
        return ntohs(in.sin_port);
}

static nk_host *start(const char *launcher, const char *dir, int port, struct nk_policy **ret_policy)
{
        char text[8192];
        snprintf(text, sizeof text,
                 "{\"nifkit_policy\": 1, \"launcher\": \"%s\", \"cgroup\": \"best-effort\", "
                 "\"limits\": {\"call_timeout_ms\": 600000, \"open_files\": 1024}, "
                 "\"files\": [{\"path\": \"%s\", \"access\": \"read\"}], "
                 "\"network\": {\"connect\": [\"127.0.0.1:%d\"], \"listen\": [], \"resolve\": []}}",
                 launcher, dir, port);
        struct nk_policy_error perr;
        if (nk_policy_load_string(text, "bench", ret_policy, &perr) < 0) {
                fprintf(stderr, "policy: %s\n", perr.msg);
                exit(1);
        }
        nk_host *h = nk_operator_host_new(NULL);
        nk_host_set_library(h, getenv("NK_TEST_NIF_BROKER"));
        nk_host_set_policy(h, *ret_policy);
        nk_error err = {};
        if (nk_host_start(h, NULL, 0, &err) < 0) {
                fprintf(stderr, "%s launcher: cannot start: %s\n", launcher, err.msg);
                nk_host_free(h);
                nk_policy_free(*ret_policy);
                return NULL;
        }
        return h;
}

/* Nanoseconds per operation, or -1. */
static long measure(nk_host *h, const char *fn, const char *path, int port, int n, int direct)
{
        ei_x_buff x;
        ei_x_new_with_version(&x);
        ei_x_encode_list_header(&x, 3);
        if (path)
                ei_x_encode_binary(&x, path, (long) strlen(path));
        else
                ei_x_encode_long(&x, port);
        ei_x_encode_long(&x, n);
        ei_x_encode_long(&x, direct);
        ei_x_encode_empty_list(&x);
        nk_result res;
        nk_error err = {};
        int i = nk_host_find_function(h, fn, 3);
        long v = -1;
        if (i >= 0 && nk_host_call(h, (unsigned) i, NULL, 0, (uint8_t *) x.buff, (size_t) x.index, &res, &err) == 0) {
                int idx = 0, ver;
                ei_decode_version((char *) res.etf, &idx, &ver);
                if (ei_decode_long((char *) res.etf, &idx, &v) < 0)
                        v = -1;
                nk_result_free(&res);
        }
        ei_x_free(&x);
        return v;
}

static int cmp_long(const void *a, const void *b)
{
        long x = *(const long *) a, y = *(const long *) b;
        return (x > y) - (x < y);
}

static long median(long *v)
{
        qsort(v, ROUNDS, sizeof *v, cmp_long);
        return v[ROUNDS / 2];
}

int main(int argc, char **argv)
{
        int n = argc > 1 ? atoi(argv[1]) : 20000;
        const char *base = getenv("NK_BENCH_DIR");
        if (!getenv("NK_TEST_NIF_BROKER") || !base || n < 1) {
                fprintf(stderr, "usage: NIFKIT_HOST=… NK_TEST_NIF_BROKER=… NK_BENCH_DIR=… broker_bench [N]\n");
                return 2;
        }
        char dir[4096], file[4200];
        snprintf(dir, sizeof dir, "%s/broker-bench-XXXXXX", base);
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        snprintf(file, sizeof file, "%s/f", dir);
        FILE *f = fopen(file, "w");
        fputs("x", f);
        fclose(f);
        int port = start_listener();
        if (port < 0) {
                fprintf(stderr, "listener: %s\n", strerror(-port));
                return 1;
        }

        /* Each connect leaves a TIME_WAIT socket behind: fewer of them,
         * so that a run stays far from the ephemeral port range's end. */
        int nconn = n / 20 > 0 ? n / 20 : 1;
        printf("broker_bench: %d opens, %d connects per measurement, median of %d\n\n", n, nconn, ROUNDS);
        printf("| operation | launcher | brokered | direct | ratio |\n| --- | --- | --- | --- | --- |\n");
        struct nk_policy *p;
        nk_host *h = start("unsandboxed-development", dir, port, &p);
        if (!h)
                return 1;
        static const char *const ops[2] = { "bench_open", "bench_connect" };
        static const char *const labels[2] = { "open + close", "socket + connect + close (TCP, loopback)" };
        for (int op = 0; op < 2; op++) {
                long b[ROUNDS], d[ROUNDS];
                for (int r = 0; r < ROUNDS; r++) {
                        b[r] = measure(h, ops[op], op ? NULL : file, port, op ? nconn : n, 0);
                        d[r] = measure(h, ops[op], op ? NULL : file, port, op ? nconn : n, 1);
                        if (b[r] < 0 || d[r] < 0) {
                                fprintf(stderr, "%s failed\n", ops[op]);
                                return 1;
                        }
                }
                long mb = median(b), md = median(d);
                printf("| %s | direct (unsandboxed) | %.2f µs | %.2f µs | %.1f× |\n", labels[op], mb / 1000.0,
                       md / 1000.0, (double) mb / (double) md);
        }
        nk_host_free(h);
        nk_policy_free(p);

        h = start("native", dir, port, &p);
        if (h) {
                for (int op = 0; op < 2; op++) {
                        long b[ROUNDS];
                        for (int r = 0; r < ROUNDS; r++)
                                b[r] = measure(h, ops[op], op ? NULL : file, port, op ? nconn : n, 0);
                        printf("| %s | native (sandboxed) | %.2f µs | impossible | |\n", labels[op],
                               median(b) / 1000.0);
                }
                nk_host_free(h);
                nk_policy_free(p);
        } else
                printf("| (native sandbox could not start here: brokered numbers not measured in it) | | | | |\n");
        unlink(file);
        rmdir(dir);
        return 0;
}
