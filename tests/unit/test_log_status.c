/* SPDX-License-Identifier: Apache-2.0 */
/* The JSON-lines log (runtime/log.c), the state files (status_file.c), the
 * per-library statistics (status.c), and the operator's variables that
 * choose where they go (operator.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "log.h"
#include "nifkit.h"
#include "operator.h"
#include "status.h"
#include "status_file.h"

static char *escape(const char *s)
{
        struct nk_buf b = { 0 };
        assert_int_equal(nk_json_escape(&b, s), 0);
        assert_int_equal(nk_buf_put_u8(&b, 0), 0);
        return (char *) nk_buf_steal(&b, NULL);
}

static void test_escape(void **state)
{
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "plain", "\"plain\"" },
                { "a\"b\\c", "\"a\\\"b\\\\c\"" },
                { "line\nbreak\t\x01", "\"line\\u000abreak\\u0009\\u0001\"" },
                { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"" },
                /* not UTF-8: a lone continuation byte, a truncated sequence,
                 * an overlong '/', a surrogate */
                { "x\x80y", "\"x\\ufffdy\"" },
                { "\xe2\x82", "\"\\ufffd\\ufffd\"" },
                { "\xc0\xaf", "\"\\ufffd\\ufffd\"" },
                { "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" },
                { "del\x7f", "\"del\\u007f\"" },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *got = escape(cases[i].in);
                assert_string_equal(got, cases[i].out);
                free(got);
        }
}

static void test_format(void **state)
{
        const struct timespec ts = { .tv_sec = 1795500000, .tv_nsec = 123456789 };
        const struct nk_log_field fields[] = {
                NK_LOG_INT("host_pid", 42),
                NK_LOG_STR("reason", "crashed"),
                NK_LOG_STR("message", "said \"boom\"\n"),
                NK_LOG_STR("none", NULL),
                NK_LOG_INT("negative", -7),
        };
        char *line = NULL;

        assert_int_equal(nk_log_format(NK_LOG_WARNING, "/x/\"evil\".so", "host_died", fields, 5, &ts, &line), 0);
        assert_string_equal(line, "{\"ts\":\"2026-11-24T06:00:00.123Z\",\"level\":\"warning\","
                                  "\"library\":\"/x/\\\"evil\\\".so\",\"event\":\"host_died\",\"host_pid\":42,"
                                  "\"reason\":\"crashed\",\"message\":\"said \\\"boom\\\"\\u000a\",\"none\":null,"
                                  "\"negative\":-7}");
        free(line);
        assert_int_equal(nk_log_format(NK_LOG_INFO, NULL, "e", NULL, 0, &ts, &line), 0);
        assert_string_equal(line, "{\"ts\":\"2026-11-24T06:00:00.123Z\",\"level\":\"info\",\"event\":\"e\"}");
        free(line);
}

struct captured {
        int n;
        char lines[16][1024];
        char notes[16][256];    /* "" for an event without one */
};

static void capture(void *arg, const struct nk_log_record *rec)
{
        struct captured *c = arg;
        if (c->n >= 16)
                return;
        snprintf(c->lines[c->n], sizeof c->lines[0], "%s", rec->line);
        snprintf(c->notes[c->n], sizeof c->notes[0], "%s", rec->note ? rec->note : "");
        c->n++;
}

static void test_sink(void **state)
{
        struct captured c = { 0 };

        /* No sink: nothing happens, and nothing crashes. */
        nk_log_set_sink(NULL, NULL, NK_LOG_DEBUG);
        nk_log_event(NK_LOG_ERROR, "lib", "dropped", NK_LOG_INT("x", 1));

        nk_log_set_sink(capture, &c, NK_LOG_INFO);
        nk_log_event(NK_LOG_DEBUG, "lib", "too_quiet", NK_LOG_INT("x", 1));
        nk_log_event(NK_LOG_INFO, "lib", "kept", NK_LOG_INT("x", 2));
        nk_log_event(NK_LOG_ERROR, "lib", "also_kept", NK_LOG_STR("y", "z"));
        /* A warning for a person: the same record, with its note. */
        nk_log_note(NK_LOG_WARNING, "lib", "noted", "read me", NK_LOG_INT("x", 4));
        nk_log_note(NK_LOG_DEBUG, "lib", "noted_quietly", "not me", NK_LOG_INT("x", 5));
        nk_log_set_sink(NULL, NULL, NK_LOG_INFO);
        nk_log_event(NK_LOG_ERROR, "lib", "after", NK_LOG_INT("x", 3));

        assert_int_equal(c.n, 3);
        assert_non_null(strstr(c.lines[0], "\"event\":\"kept\",\"x\":2}"));
        assert_string_equal(c.notes[0], "");
        assert_non_null(strstr(c.lines[1], "\"level\":\"error\",\"library\":\"lib\",\"event\":\"also_kept\""));
        assert_non_null(strstr(c.lines[2], "\"level\":\"warning\",\"library\":\"lib\",\"event\":\"noted\",\"x\":4}"));
        assert_string_equal(c.notes[2], "read me");
}

/* What the proxy's and the tool's sink does with a record: NIFKIT_LOG's
 * file gets its line. */
static void file_sink(void *arg, const struct nk_log_record *rec)
{
        nk_operator_log_write(*(int *) arg, rec);
}

static void test_operator_log(void **state)
{
        char path[] = "/tmp/nifkit-log-test.XXXXXX";
        char buf[4096] = { 0 };
        int fd = mkstemp(path), log_fd = -1;
        struct nk_operator_env e;
        FILE *f;

        assert_true(fd >= 0);
        close(fd);
        unsetenv("NIFKIT_LOG");
        nk_operator_env_read(&e);
        assert_int_equal(nk_operator_log_open(&e, &log_fd), 0);
        assert_int_equal(log_fd, -1);
        setenv("NIFKIT_LOG", path, 1);
        setenv("NIFKIT_LOG_LEVEL", "loud", 1);
        nk_operator_env_read(&e);
        assert_true(e.log_level_bad);
        assert_int_equal(e.log_level, NK_LOG_INFO);
        setenv("NIFKIT_LOG_LEVEL", "warning", 1);
        nk_operator_env_read(&e);
        assert_false(e.log_level_bad);
        assert_int_equal(e.log_level, NK_LOG_WARNING);
        assert_int_equal(nk_operator_log_open(&e, &log_fd), 1);
        assert_true(log_fd > STDERR_FILENO);
        /* One descriptor per process, however often it is asked for. */
        int again = -1;
        assert_int_equal(nk_operator_log_open(&e, &again), 1);
        assert_int_equal(again, log_fd);
        nk_log_set_sink(file_sink, &log_fd, e.log_level);
        nk_log_event(NK_LOG_INFO, "lib", "below", NK_LOG_INT("x", 1));
        nk_log_event(NK_LOG_WARNING, "lib", "first", NK_LOG_INT("x", 1));
        nk_log_event(NK_LOG_ERROR, "lib", "second", NK_LOG_INT("x", 2));
        nk_log_set_sink(NULL, NULL, NK_LOG_INFO);
        f = fopen(path, "r");
        assert_non_null(f);
        assert_true(fread(buf, 1, sizeof buf - 1, f) > 0);
        fclose(f);
        unlink(path);
        unsetenv("NIFKIT_LOG");
        unsetenv("NIFKIT_LOG_LEVEL");
        /* Two lines, each ending in a newline, the quieter event dropped. */
        assert_null(strstr(buf, "below"));
        char *nl = strchr(buf, '\n');
        assert_non_null(nl);
        assert_non_null(strstr(buf, "\"event\":\"first\""));
        assert_true(strstr(buf, "\"event\":\"second\"") > nl);
        assert_int_equal(buf[strlen(buf) - 1], '\n');
}

static void test_record_roundtrip(void **state)
{
        struct nk_status_record in = { .runtime_pid = 1234, .updated = 99 }, out;
        char *text = NULL;

        snprintf(in.library, sizeof in.library, "/lib/\"odd\"\n\xc3\xa9.so");
        in.st.host_pid = 77;
        in.st.started = 1795500000;
        in.st.calls = 1000;
        in.st.errors = 5;
        in.st.nreasons = 2;
        snprintf(in.st.errors_by_reason[0].reason, 32, "crashed");
        in.st.errors_by_reason[0].count = 2;
        snprintf(in.st.errors_by_reason[1].reason, 32, "timeout");
        in.st.errors_by_reason[1].count = 3;
        in.st.restarts = 2;
        snprintf(in.st.last_reason, sizeof in.st.last_reason, "timeout");
        in.st.latency_us[3] = 990;
        in.st.latency_us[12] = 10;
        nk_stats_percentiles(&in.st);
        in.st.memory_peak = 1u << 20;

        assert_int_equal(nk_status_record_format(&in, &text), 0);
        assert_null(strchr(text, '\n'));
        assert_int_equal(nk_status_record_parse(text, &out), 0);
        free(text);
        assert_int_equal(out.runtime_pid, 1234);
        assert_string_equal(out.library, in.library);
        assert_int_equal(out.updated, 99);
        assert_int_equal(out.st.host_pid, 77);
        assert_int_equal(out.st.calls, 1000);
        assert_int_equal(out.st.errors, 5);
        assert_int_equal(out.st.nreasons, 2);
        assert_int_equal(out.st.restarts, 2);
        assert_string_equal(out.st.last_reason, "timeout");
        assert_int_equal(out.st.p50_us, 8);
        assert_int_equal(out.st.p99_us, 8);
        assert_int_equal(out.st.latency_us[12], 10);
        assert_int_equal(out.st.memory_peak, 1u << 20);
        for (unsigned i = 0; i < 2; i++) {
                const char *r = out.st.errors_by_reason[i].reason;
                assert_int_equal(out.st.errors_by_reason[i].count, strcmp(r, "crashed") == 0 ? 2 : 3);
        }

        assert_int_equal(nk_status_record_parse("not json", &out), -EINVAL);
        assert_int_equal(nk_status_record_parse("[1]", &out), -EINVAL);
        assert_int_equal(nk_status_record_parse("{\"library\":\"x\",\"runtime_pid\":0,\"host_pid\":1}", &out),
                         -EINVAL);
        assert_int_equal(nk_status_record_parse("{\"library\":1,\"runtime_pid\":5,\"host_pid\":1}", &out), -EINVAL);
}

static void test_percentiles(void **state)
{
        struct nk_stats st = { 0 };

        nk_stats_percentiles(&st);
        assert_int_equal(st.p50_us, 0);
        assert_int_equal(st.p99_us, 0);
        st.latency_us[5] = 50;  /* 16..31 µs */
        st.latency_us[6] = 49;
        st.latency_us[20] = 1;
        nk_stats_percentiles(&st);
        assert_int_equal(st.p50_us, 32);
        assert_int_equal(st.p99_us, 64);
        st.latency_us[20] = 2;
        nk_stats_percentiles(&st);
        assert_int_equal(st.p99_us, 1u << 20);
}

static int count_records(const struct nk_status_record *rec, void *arg)
{
        struct nk_status_record *last = arg;
        *last = *rec;
        return 0;
}

static void test_status_lifecycle(void **state)
{
        char dir[] = "/tmp/nifkit-status-test.XXXXXX";
        struct nk_status_ref a = { 0 }, b = { 0 }, none = { 0 };
        struct nk_status_record *rec = calloc(1, sizeof *rec);
        struct captured c = { 0 };
        struct nk_stats st;
        nk_error died = { .kind = NK_ERR_HOST_DIED, .signo = 11 };
        nk_error rejected = { .kind = NK_ERR_REJECTED };

        assert_non_null(rec);
        assert_non_null(mkdtemp(dir));
        assert_int_equal(nk_status_set_dir(dir), 0);
        nk_log_set_sink(capture, &c, NK_LOG_INFO);
        snprintf(died.reason, sizeof died.reason, "crashed");
        snprintf(died.msg, sizeof died.msg, "host for x killed by SIGSEGV");

        assert_int_equal(nk_status_get(&none, &st), -ENOTCONN);
        nk_status_call(&none, 1000, NULL);      /* never started: ignored */

        nk_status_started(&a, "/libs/x.real.so", getpid(), NULL);
        /* The state file is written at start, not a second later. */
        assert_int_equal(nk_status_list(count_records, rec), 1);
        assert_string_equal(rec->library, "/libs/x.real.so");
        assert_int_equal(rec->runtime_pid, getpid());
        assert_int_equal(rec->st.host_pid, getpid());
        /* Our own VmHWM stands in for the host's. */
        assert_true(rec->st.memory_peak > 0);

        nk_status_call(&a, 3000, NULL);         /* 3 µs: bucket 2 */
        nk_status_call(&a, 40000, &rejected);   /* 40 µs: bucket 6 */
        nk_status_call(&a, 5000000, &died);     /* 5 ms: bucket 13 */
        nk_status_call(&a, 0, &died);           /* a dead host's next call: counted once as a death */
        assert_int_equal(nk_status_get(&a, &st), 0);
        assert_int_equal(st.calls, 4);
        assert_int_equal(st.errors, 3);
        assert_int_equal(st.nreasons, 2);
        assert_string_equal(st.errors_by_reason[0].reason, "rejected");
        assert_int_equal(st.errors_by_reason[0].count, 1);
        assert_string_equal(st.errors_by_reason[1].reason, "crashed");
        assert_int_equal(st.errors_by_reason[1].count, 2);
        assert_string_equal(st.last_reason, "crashed");
        assert_int_equal(st.latency_us[2], 1);
        assert_int_equal(st.latency_us[6], 1);
        assert_int_equal(st.latency_us[13], 1);
        assert_int_equal(st.restarts, 0);
        /* The death is on disk at once. */
        assert_int_equal(nk_status_list(count_records, rec), 1);
        assert_string_equal(rec->st.last_reason, "crashed");

        /* The supervisor replaces the host: a new nk_host, the same library. */
        nk_status_stopped(&a, NULL);
        nk_status_started(&b, "/libs/x.real.so", getpid(), NULL);
        assert_int_equal(nk_status_get(&b, &st), 0);
        assert_int_equal(st.restarts, 1);
        assert_int_equal(st.calls, 4);
        /* The old host's reference still reads the library's record. */
        assert_int_equal(nk_status_get(&a, &st), 0);
        assert_int_equal(st.restarts, 1);

        /* A clean stop and start is not a restart. */
        nk_status_stopped(&b, NULL);
        assert_int_equal(nk_status_list(count_records, rec), 0);
        nk_status_started(&b, "/libs/x.real.so", getpid(), NULL);
        assert_int_equal(nk_status_get(&b, &st), 0);
        assert_int_equal(st.restarts, 1);
        /* A death only the stop saw (the host crashed while idle). */
        nk_status_stopped(&b, &died);
        nk_status_stopped(&b, &died);   /* idempotent */
        nk_status_started(&b, "/libs/x.real.so", getpid(), NULL);
        assert_int_equal(nk_status_get(&b, &st), 0);
        assert_int_equal(st.restarts, 2);
        nk_status_stopped(&b, NULL);

        nk_log_set_sink(NULL, NULL, NK_LOG_INFO);
        assert_true(c.n >= 6);
        assert_non_null(strstr(c.lines[0], "\"library\":\"/libs/x.real.so\",\"event\":\"host_started\""));
        assert_non_null(strstr(c.lines[1], "\"event\":\"host_died\""));
        assert_non_null(strstr(c.lines[1], "\"reason\":\"crashed\",\"message\":\"host for x killed by SIGSEGV\""));
        assert_non_null(strstr(c.lines[2], "\"event\":\"host_stopped\""));
        assert_non_null(strstr(c.lines[3], "\"event\":\"host_started\""));
        assert_non_null(strstr(c.lines[3], "\"restarts\":1"));

        /* Every host stopped: no state file is left behind. */
        assert_int_equal(nk_status_list(count_records, rec), 0);
        assert_int_equal(rmdir(dir), 0);
        assert_int_equal(nk_status_set_dir(NULL), 0);
        free(rec);
}

/* NIFKIT_STATUS_DIR first, else $XDG_RUNTIME_DIR/nifkit; a relative one
 * is refused, the default kept. */
static void test_operator_status_dir(void **state)
{
        struct nk_operator_env e;

        unsetenv("NIFKIT_STATUS_DIR");
        unsetenv("XDG_RUNTIME_DIR");
        nk_operator_env_read(&e);
        assert_string_equal(e.status_dir, "");
        assert_int_equal(nk_operator_env_status(&e), 0);
        setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
        nk_operator_env_read(&e);
        assert_string_equal(e.status_dir, "/run/user/4242/nifkit");
        setenv("NIFKIT_STATUS_DIR", "relative/dir", 1);
        nk_operator_env_read(&e);
        assert_string_equal(e.status_dir, "relative/dir");
        assert_int_equal(nk_operator_env_status(&e), -EINVAL);
        assert_int_equal(nk_status_set_dir(NULL), 0);
        unsetenv("NIFKIT_STATUS_DIR");
        unsetenv("XDG_RUNTIME_DIR");
}

/* NIFKIT_SANDBOX_UID/GID: an id other than 0 and -1, else the default (0
 * here, 65534 in the launcher) and a line saying so. */
static void test_operator_sandbox_ids(void **state)
{
        struct nk_operator_env e;

        unsetenv("NIFKIT_SANDBOX_UID");
        unsetenv("NIFKIT_SANDBOX_GID");
        nk_operator_env_read(&e);
        assert_int_equal(e.sandbox_uid, 0);
        assert_int_equal(e.sandbox_gid, 0);
        assert_false(e.sandbox_ids_bad);
        setenv("NIFKIT_SANDBOX_UID", "4242", 1);
        setenv("NIFKIT_SANDBOX_GID", "4343", 1);
        nk_operator_env_read(&e);
        assert_int_equal(e.sandbox_uid, 4242);
        assert_int_equal(e.sandbox_gid, 4343);
        assert_false(e.sandbox_ids_bad);
        static const char *const bad[] = { "0", "4294967295", "-5", "12x", "99999999999" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                setenv("NIFKIT_SANDBOX_GID", bad[i], 1);
                nk_operator_env_read(&e);
                assert_int_equal(e.sandbox_uid, 4242);
                assert_int_equal(e.sandbox_gid, 0);
                assert_true(e.sandbox_ids_bad);
        }
        unsetenv("NIFKIT_SANDBOX_UID");
        unsetenv("NIFKIT_SANDBOX_GID");
}

static char said[3][256];
static int nsaid;

static void say(const char *line)
{
        if (nsaid < 3)
                snprintf(said[nsaid++], sizeof said[0], "%s", line);
}

/* What is wrong with the variables is said, one line each, and the
 * default used; the sink's level lets notes (warnings) through. */
static void test_operator_setup(void **state)
{
        struct nk_operator_env e;
        int fd = 42;

        setenv("NIFKIT_LOG_LEVEL", "loud", 1);
        setenv("NIFKIT_STATUS_DIR", "relative/dir", 1);
        setenv("NIFKIT_LOG", "/nonexistent/dir/log", 1);
        nsaid = 0;
        nk_operator_setup(&e, &fd, say);
        assert_int_equal(nsaid, 3);
        assert_string_equal(said[0], "$NIFKIT_LOG_LEVEL names no level (debug, info, warning, error): info is used");
        assert_string_equal(said[1], "the status directory 'relative/dir' is not an absolute path: "
                                     "the default one is used");
        assert_string_equal(said[2], "$NIFKIT_LOG '/nonexistent/dir/log': No such file or directory: "
                                     "events are not logged");
        assert_int_equal(fd, -1);
        assert_int_equal(nk_operator_sink_level(&e, fd), NK_LOG_WARNING);

        unsetenv("NIFKIT_LOG_LEVEL");
        unsetenv("NIFKIT_STATUS_DIR");
        setenv("NIFKIT_LOG", "stderr", 1);
        setenv("NIFKIT_LOG_LEVEL", "debug", 1);
        nsaid = 0;
        nk_operator_setup(&e, &fd, say);
        assert_int_equal(nsaid, 0);
        assert_int_equal(fd, STDERR_FILENO);
        assert_int_equal(nk_operator_sink_level(&e, fd), NK_LOG_DEBUG);
        setenv("NIFKIT_LOG_LEVEL", "error", 1);
        nk_operator_setup(&e, &fd, say);
        assert_int_equal(nk_operator_sink_level(&e, fd), NK_LOG_WARNING);
        unsetenv("NIFKIT_LOG");
        unsetenv("NIFKIT_LOG_LEVEL");
        assert_int_equal(nk_status_set_dir(NULL), 0);
}

/* The /tmp fallback refuses a directory another user could write into, or
 * one that is not a directory of ours. */
static void test_status_dir_fallback(void **state)
{
        char base[] = "/tmp/nk-status-dir-XXXXXX";
        assert_non_null(mkdtemp(base));
        char d[PATH_MAX];
        snprintf(d, sizeof d, "%s/own", base);
        assert_int_equal(nk_status_own_dir(d, 0700), 0);
        assert_int_equal(chmod(d, 0770), 0);
        assert_int_equal(nk_status_own_dir(d, 0700), -EPERM);
        assert_int_equal(chmod(d, 0702), 0);
        assert_int_equal(nk_status_own_dir(d, 0700), -EPERM);
        assert_int_equal(chmod(d, 0755), 0);
        assert_int_equal(nk_status_own_dir(d, 0700), 0);
        char l[PATH_MAX];
        snprintf(l, sizeof l, "%s/link", base);
        assert_int_equal(symlink(d, l), 0);
        assert_int_equal(nk_status_own_dir(l, 0700), -EPERM);
        unlink(l);
        rmdir(d);
        rmdir(base);
}

static void test_stale_records(void **state)
{
        char dir[] = "/tmp/nifkit-status-test.XXXXXX";
        struct nk_status_record rec = { .runtime_pid = 0 }, seen;
        char name[64];
        pid_t pid;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(nk_status_set_dir(dir), 0);
        pid = fork();
        if (pid == 0)
                _exit(0);
        assert_true(pid > 0);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        snprintf(rec.library, sizeof rec.library, "/stale.so");
        rec.runtime_pid = pid;
        snprintf(name, sizeof name, "%d-0.json", (int) pid);
        assert_int_equal(nk_status_record_write(dir, name, &rec), 0);
        snprintf(rec.library, sizeof rec.library, "/live.so");
        rec.runtime_pid = getpid();
        assert_int_equal(nk_status_record_write(dir, "live.json", &rec), 0);
        assert_int_equal(nk_status_list(count_records, &seen), 1);
        assert_string_equal(seen.library, "/live.so");
        /* The reader removed the stale record, and only that one. */
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(errno, ENOENT);
        snprintf(path, sizeof path, "%s/live.json", dir);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
        assert_int_equal(nk_status_set_dir(NULL), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_escape),
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_sink),
                /* Before test_operator_log: a process opens NIFKIT_LOG's file once. */
                cmocka_unit_test(test_operator_setup),
                cmocka_unit_test(test_operator_log),
                cmocka_unit_test(test_operator_status_dir),
                cmocka_unit_test(test_operator_sandbox_ids),
                cmocka_unit_test(test_record_roundtrip),
                cmocka_unit_test(test_percentiles),
                cmocka_unit_test(test_status_lifecycle),
                cmocka_unit_test(test_stale_records),
                cmocka_unit_test(test_status_dir_fallback),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
