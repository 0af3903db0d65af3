/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit status [--format table|json|prometheus]: the hosts that runtimes on
 * this machine run, from the state files libnifkit writes (status_file.h).
 * Records whose runtime process is gone are stale and not shown.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd_status.h"
#include "nifkit.h"
#include "prometheus.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 64

static void usage(FILE *f)
{
        fputs("usage: nifkit status [--format table|json|prometheus] [--json]\n"
              "List the NIF hosts that runtimes (VMs with wrapped libraries, other libnifkit\n"
              "users) run on this machine: runtime and host pids, library, start time, calls,\n"
              "errors by reason, restarts, the last reason a host died, call latency p50/p99\n"
              "and peak memory. The numbers are at most about a second old.\n"
              "\n"
              "  --format table       the default: one row per library\n"
              "  --format json        one JSON object per line (--json says the same)\n"
              "  --format prometheus  the counters and the latency histogram in Prometheus's\n"
              "                       text format, labelled library, runtime_pid and reason\n"
              "  -h, --help           show this help\n"
              "\n"
              "State files: $NIFKIT_STATUS_DIR, $XDG_RUNTIME_DIR/nifkit, /run/nifkit, /tmp/nifkit-UID.\n",
              f);
}

static void human_bytes(uint64_t v, char *buf, size_t size)
{
        if (v == 0)
                snprintf(buf, size, "-");
        else if (v >= 10ull << 30)
                snprintf(buf, size, "%lluG", (unsigned long long) (v >> 30));
        else if (v >= 10ull << 20)
                snprintf(buf, size, "%lluM", (unsigned long long) (v >> 20));
        else
                snprintf(buf, size, "%lluK", (unsigned long long) (v >> 10));
}

static int print_json(const struct nk_status_record *rec, void *arg)
{
        char *text = NULL;
        int r = nk_status_record_format(rec, &text);

        if (r < 0)
                return r;
        puts(text);
        free(text);
        return 0;
}

static int print_row(const struct nk_status_record *rec, void *arg)
{
        const struct nk_stats *st = &rec->st;
        char started[32] = "-", mem[16], errors[256], host[16];
        struct tm tm;
        time_t t = (time_t) st->started;
        size_t off;

        if (st->started > 0 && localtime_r(&t, &tm))
                strftime(started, sizeof started, "%H:%M:%S", &tm);
        human_bytes(st->memory_peak, mem, sizeof mem);
        off = (size_t) snprintf(errors, sizeof errors, "%llu", (unsigned long long) st->errors);
        for (unsigned i = 0; i < st->nreasons && off < sizeof errors; i++)
                off += (size_t) snprintf(errors + off, sizeof errors - off, "%s%s=%llu", i ? "," : " (",
                                         st->errors_by_reason[i].reason,
                                         (unsigned long long) st->errors_by_reason[i].count);
        if (st->nreasons && off < sizeof errors)
                snprintf(errors + off, sizeof errors - off, ")");
        if (st->host_pid > 0)
                snprintf(host, sizeof host, "%d", st->host_pid);
        else
                snprintf(host, sizeof host, "-");
        /* The library goes last: a path is as long as it is. */
        printf("%-8d %-8s %-8s %8llu %-24s %8llu %-10s %8llu %8llu %7s  %s\n", rec->runtime_pid, host, started,
               (unsigned long long) st->calls, errors, (unsigned long long) st->restarts,
               st->last_reason[0] ? st->last_reason : "-", (unsigned long long) st->p50_us,
               (unsigned long long) st->p99_us, mem, rec->library);
        return 0;
}

/* Every record, for formats that group by metric rather than by record. */
struct records {
        struct nk_status_record *v;
        size_t n, cap;
};

static int collect(const struct nk_status_record *rec, void *arg)
{
        struct records *rs = arg;
        if (rs->n == rs->cap) {
                size_t cap = rs->cap ? rs->cap * 2 : 16;
                struct nk_status_record *v = realloc(rs->v, cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                rs->v = v;
                rs->cap = cap;
        }
        rs->v[rs->n++] = *rec;
        return 0;
}

/* By library, then runtime: the same scrape twice reads the same. */
static int record_order(const void *a, const void *b)
{
        const struct nk_status_record *x = a, *y = b;
        int c = strcmp(x->library, y->library);
        return c ? c : (x->runtime_pid > y->runtime_pid) - (x->runtime_pid < y->runtime_pid);
}

static int print_prometheus(void)
{
        struct records rs = {};
        int r = nk_status_list(collect, &rs);
        if (r >= 0) {
                qsort(rs.v, rs.n, sizeof *rs.v, record_order);
                r = nk_prometheus_write(stdout, rs.v, rs.n);
        }
        free(rs.v);
        return r;
}

enum format { FORMAT_TABLE, FORMAT_JSON, FORMAT_PROMETHEUS };

int nk_cmd_status(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "json", no_argument, NULL, 'j' },
                { "format", required_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        enum format format = FORMAT_TABLE;
        int c, r;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
                switch (c) {
                case 'j':
                        format = FORMAT_JSON;
                        break;
                case 'f':
                        if (strcmp(optarg, "table") == 0) {
                                format = FORMAT_TABLE;
                        } else if (strcmp(optarg, "json") == 0) {
                                format = FORMAT_JSON;
                        } else if (strcmp(optarg, "prometheus") == 0) {
                                format = FORMAT_PROMETHEUS;
                        } else {
                                fprintf(stderr, "nifkit status: unknown format '%s' (table, json, prometheus)\n",
                                        optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case ':':
                        fprintf(stderr, "nifkit status: '%s' needs a value\n", argv[optind - 1]);
                        usage(stderr);
                        return EXIT_USAGE;
                default:
                        fprintf(stderr, "nifkit status: unknown option '%s'\n", argv[optind - 1]);
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind != argc) {
                fputs("nifkit status: takes no operands\n", stderr);
                usage(stderr);
                return EXIT_USAGE;
        }
        if (format == FORMAT_TABLE)
                printf("%-8s %-8s %-8s %8s %-24s %8s %-10s %8s %8s %7s  %s\n", "RUNTIME", "HOST", "STARTED",
                       "CALLS", "ERRORS", "RESTARTS", "LAST", "P50_US", "P99_US", "MEMPEAK", "LIBRARY");
        if (format == FORMAT_PROMETHEUS)
                r = print_prometheus();
        else
                r = nk_status_list(format == FORMAT_JSON ? print_json : print_row, NULL);
        if (r < 0) {
                fprintf(stderr, "nifkit status: %s\n", strerror(-r));
                return EXIT_FAILED;
        }
        return fflush(stdout) == 0 ? 0 : EXIT_FAILED;
}
