/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit status --format prometheus: what `nifkit status` shows, in the
 * text format Prometheus scrapes (through node_exporter's textfile
 * collector, or any exporter that serves a command's output). Names follow
 * Prometheus's conventions: a nifkit_ prefix, base units (seconds, bytes),
 * _total on counters. The latency histogram is the one libnifkit keeps,
 * powers of two of microseconds, made cumulative as the format wants.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "prometheus.h"
#include "utf8.h"

/* A label value: UTF-8 with \, " and newline escaped; a byte that is not
 * UTF-8 (a path may hold any) becomes U+FFFD. */
static void put_label(FILE *out, const char *s)
{
        const uint8_t *p = (const uint8_t *) s;
        size_t n = strlen(s);

        for (size_t i = 0; i < n;) {
                uint32_t cp;
                size_t k = nk_utf8_decode(p + i, n - i, &cp);
                if (k == 0) {
                        fputs("\xef\xbf\xbd", out);
                        i++;
                        continue;
                }
                if (cp == '\\')
                        fputs("\\\\", out);
                else if (cp == '"')
                        fputs("\\\"", out);
                else if (cp == '\n')
                        fputs("\\n", out);
                else
                        fwrite(p + i, 1, k, out);
                i += k;
        }
}

static void labels(FILE *out, const struct nk_status_record *rec, const char *key, const char *value)
{
        fputs("{library=\"", out);
        put_label(out, rec->library);
        fprintf(out, "\",runtime_pid=\"%d\"", rec->runtime_pid);
        if (key) {
                fprintf(out, ",%s=\"", key);
                put_label(out, value);
                fputc('"', out);
        }
        fputc('}', out);
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u64(FILE *out, const char *name, const struct nk_status_record *rec, uint64_t v)
{
        fputs(name, out);
        labels(out, rec, NULL, NULL);
        fprintf(out, " %" PRIu64 "\n", v);
}

/* 2^i µs in seconds, exactly ("0.000128", "1073.741824"): a float
 * printed with %g would round the larger bounds. */
static void le_of(unsigned i, char *buf, size_t size)
{
        uint64_t us = 1ull << i;
        int n = snprintf(buf, size, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
        while (n > 0 && (size_t) n < size && buf[n - 1] == '0' && buf[n - 2] != '.')
                buf[--n] = '\0';
}

/* Bucket i holds calls under 2^i µs; the last one everything longer. */
static void histogram(FILE *out, const struct nk_status_record *rec)
{
        const struct nk_stats *st = &rec->st;
        const char *name = "nifkit_call_duration_seconds";
        uint64_t cumulative = 0;
        char le[32];

        for (unsigned i = 0; i + 1 < NK_STATS_LATENCY_BUCKETS; i++) {
                cumulative += st->latency_us[i];
                le_of(i, le, sizeof le);
                fprintf(out, "%s_bucket", name);
                labels(out, rec, "le", le);
                fprintf(out, " %" PRIu64 "\n", cumulative);
        }
        cumulative += st->latency_us[NK_STATS_LATENCY_BUCKETS - 1];
        fprintf(out, "%s_bucket", name);
        labels(out, rec, "le", "+Inf");
        fprintf(out, " %" PRIu64 "\n", cumulative);
        fprintf(out, "%s_sum", name);
        labels(out, rec, NULL, NULL);
        fprintf(out, " %.9f\n", (double) st->latency_sum_ns / 1e9);
        fprintf(out, "%s_count", name);
        labels(out, rec, NULL, NULL);
        fprintf(out, " %" PRIu64 "\n", cumulative);
}

int nk_prometheus_write(FILE *out, const struct nk_status_record *recs, size_t n)
{
        family(out, "nifkit_calls_total", "counter", "Calls to the library's functions, failed ones included.");
        for (size_t i = 0; i < n; i++)
                sample_u64(out, "nifkit_calls_total", &recs[i], recs[i].st.calls);

        family(out, "nifkit_call_errors_total", "counter",
               "Calls that failed, by reason (crashed, timeout, oom, seccomp, restart_limit, ...).");
        for (size_t i = 0; i < n; i++)
                for (unsigned k = 0; k < recs[i].st.nreasons && k < NK_STATS_MAX_REASONS; k++) {
                        fputs("nifkit_call_errors_total", out);
                        labels(out, &recs[i], "reason", recs[i].st.errors_by_reason[k].reason);
                        fprintf(out, " %" PRIu64 "\n", recs[i].st.errors_by_reason[k].count);
                }

        family(out, "nifkit_call_duration_seconds", "histogram", "Time from a call's start to its result.");
        for (size_t i = 0; i < n; i++)
                histogram(out, &recs[i]);

        family(out, "nifkit_host_restarts_total", "counter", "Hosts started after one of the library's hosts died.");
        for (size_t i = 0; i < n; i++)
                sample_u64(out, "nifkit_host_restarts_total", &recs[i], recs[i].st.restarts);

        family(out, "nifkit_host_up", "gauge", "1 while a host runs the library, else 0.");
        for (size_t i = 0; i < n; i++)
                sample_u64(out, "nifkit_host_up", &recs[i], recs[i].st.host_pid > 0);

        family(out, "nifkit_host_start_time_seconds", "gauge", "Unix time the current host started.");
        for (size_t i = 0; i < n; i++)
                if (recs[i].st.started > 0)
                        sample_u64(out, "nifkit_host_start_time_seconds", &recs[i], (uint64_t) recs[i].st.started);

        family(out, "nifkit_host_memory_peak_bytes", "gauge",
               "Peak memory of the library's host (its cgroup's memory.peak, else VmHWM); absent when unknown.");
        for (size_t i = 0; i < n; i++)
                if (recs[i].st.memory_peak > 0)
                        sample_u64(out, "nifkit_host_memory_peak_bytes", &recs[i], recs[i].st.memory_peak);

        family(out, "nifkit_status_updated_time_seconds", "gauge",
               "Unix time the runtime last wrote these numbers (about once a second while calls run).");
        for (size_t i = 0; i < n; i++)
                if (recs[i].updated > 0)
                        sample_u64(out, "nifkit_status_updated_time_seconds", &recs[i], (uint64_t) recs[i].updated);

        return ferror(out) ? -EIO : 0;
}
