/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How long a host takes to start, by launcher, next to the cost of the bare
 * namespace tools it is built like.
 *
 *     start_time [N]          (N cold starts of each, default 30)
 *
 * Environment: NIFKIT_HOST (nifkit-host), NK_BENCH_NIF (a small NIF
 * library; the build passes tests/integration/nif_good.c's).
 *
 * Each round starts every variant once, the first variant rotating from
 * round to round, so that the machine's drift (other load, caches, CPU
 * frequency) spreads over all of them. One untimed round warms the page
 * cache first. Variants:
 *
 *   native    nk_host_new + nk_host_start (launch, load, discovery) +
 *             nk_host_stop + nk_host_free, native launcher
 *   bwrap     the same with the bubblewrap launcher
 *   direct    the same with the unsandboxed development launcher (its
 *             warning on stderr is sent to /dev/null while it runs)
 *   bare bwrap   `bwrap --unshare-all --ro-bind / / true`
 *   unshare      `unshare -Urmnpiu true`
 *
 * Policies: cgroup "best-effort", so the numbers mean the same on machines
 * with and without delegated controllers (where there are, the leaf's
 * creation and removal are included).
 *
 * This is a measurement, not a test: it asserts nothing about time. It
 * fails only when a variant cannot run at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nifkit.h"
#include "operator.h"
#include "nifkit_policy.h"

extern char **environ;

enum variant { V_NATIVE, V_BWRAP, V_DIRECT, V_BARE_BWRAP, V_UNSHARE, V_COUNT };

static const char *const names[V_COUNT] = {
        [V_NATIVE] = "nifkit host, native launcher",
        [V_BWRAP] = "nifkit host, bwrap launcher",
        [V_DIRECT] = "nifkit host, direct (unsandboxed) launcher",
        [V_BARE_BWRAP] = "`bwrap --unshare-all --ro-bind / / true`",
        [V_UNSHARE] = "`unshare -Urmnpiu true`",
};

static const char *const policy_text[3] = {
        [V_NATIVE] = "{\"nifkit_policy\": 1, \"launcher\": \"native\", \"cgroup\": \"best-effort\"}",
        [V_BWRAP] = "{\"nifkit_policy\": 1, \"launcher\": \"bwrap\", \"cgroup\": \"best-effort\"}",
        [V_DIRECT] = "{\"nifkit_policy\": 1, \"launcher\": \"unsandboxed-development\", \"cgroup\": \"best-effort\"}",
};

static struct nk_policy *policies[3];
static const char *library, *host_binary;

static double now_ms(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) t.tv_sec * 1e3 + (double) t.tv_nsec / 1e6;
}

/* What a best-effort sandbox does not enforce (libnifkit notes it once). */
static void log_note(void *arg, const struct nk_log_record *rec)
{
        if (rec->note)
                fprintf(stderr, "start_time: note: %s\n", rec->note);
}

static int host_cycle(enum variant v)
{
        nk_host *h = nk_operator_host_new(NULL);
        if (!h)
                return -ENOMEM;
        nk_host_set_policy(h, policies[v]);
        int r = nk_host_set_library(h, library);
        if (r >= 0)
                r = nk_host_set_host_binary(h, host_binary);
        nk_error err;
        if (r >= 0) {
                r = nk_host_start(h, NULL, 0, &err);
                if (r < 0)
                        fprintf(stderr, "start_time: %s: %s\n", names[v], err.msg);
        }
        nk_host_stop(h);
        nk_host_free(h);
        return r;
}

static int command(char *const argv[])
{
        pid_t pid;
        int r = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
        if (r != 0)
                return -r;
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

static int run(enum variant v)
{
        static char *const bare_bwrap[] = { "bwrap", "--unshare-all", "--ro-bind", "/", "/", "true", NULL };
        static char *const unshare[] = { "unshare", "-Urmnpiu", "true", NULL };
        switch (v) {
        case V_NATIVE:
        case V_BWRAP:
                return host_cycle(v);
        case V_DIRECT: {
                /* The development launcher warns on every start. */
                fflush(stderr);
                int saved = dup(STDERR_FILENO);
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (saved < 0 || null < 0)
                        return -errno;
                dup2(null, STDERR_FILENO);
                close(null);
                int r = host_cycle(v);
                fflush(stderr);
                dup2(saved, STDERR_FILENO);
                close(saved);
                return r;
        }
        case V_BARE_BWRAP:
                return command(bare_bwrap);
        case V_UNSHARE:
                return command(unshare);
        default:
                return -EINVAL;
        }
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *sorted, int n, int pct)
{
        int rank = (pct * n + 99) / 100;
        return sorted[rank > 0 ? rank - 1 : 0];
}

int main(int argc, char **argv)
{
        int n = argc > 1 ? atoi(argv[1]) : 30;
        library = getenv("NK_BENCH_NIF");
        host_binary = getenv("NIFKIT_HOST");
        if (n < 1 || !library || !host_binary) {
                fprintf(stderr, "usage: NIFKIT_HOST=… NK_BENCH_NIF=… %s [N]\n", argv[0]);
                return 64;
        }
        nk_log_set_sink(log_note, NULL, NK_LOG_WARNING);
        for (int v = 0; v < 3; v++) {
                struct nk_policy_error perr;
                if (nk_policy_load_string(policy_text[v], "start_time", &policies[v], &perr) < 0) {
                        fprintf(stderr, "start_time: %s\n", perr.msg);
                        return 1;
                }
        }
        double *ms[V_COUNT];
        for (int v = 0; v < V_COUNT; v++) {
                ms[v] = calloc((size_t) n, sizeof *ms[v]);
                if (!ms[v])
                        return 1;
                if (run((enum variant) v) < 0) {
                        fprintf(stderr, "start_time: %s cannot run here\n", names[v]);
                        return 1;
                }
        }
        for (int i = 0; i < n; i++)
                for (int k = 0; k < V_COUNT; k++) {
                        int v = (i + k) % V_COUNT;
                        double t0 = now_ms();
                        int r = run((enum variant) v);
                        ms[v][i] = now_ms() - t0;
                        if (r < 0) {
                                fprintf(stderr, "start_time: %s failed in round %d: %s\n", names[v], i,
                                        strerror(-r));
                                return 1;
                        }
                }

        double p50[V_COUNT];
        for (int v = 0; v < V_COUNT; v++) {
                qsort(ms[v], (size_t) n, sizeof *ms[v], cmp_double);
                p50[v] = percentile(ms[v], n, 50);
        }
        printf("N = %d cold starts of each variant, interleaved\n\n", n);
        printf("| variant | min ms | p50 ms | p90 ms | p50 / unshare p50 | min / unshare min |\n");
        printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
        for (int v = 0; v < V_COUNT; v++)
                printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", names[v], ms[v][0], p50[v],
                       percentile(ms[v], n, 90), p50[v] / p50[V_UNSHARE], ms[v][0] / ms[V_UNSHARE][0]);
        for (int v = 0; v < V_COUNT; v++)
                free(ms[v]);
        for (int v = 0; v < 3; v++)
                nk_policy_free(policies[v]);
        return 0;
}
