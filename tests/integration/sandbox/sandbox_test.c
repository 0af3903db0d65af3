/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The native launcher's sandbox, checked from inside a host: the probe NIF
 * (probe.c) reports what a NIF sees, this program asserts it, and every
 * escape attempt must fail. Then the reasons libnifkit gives for deaths.
 *
 * Environment (set by meson): NIFKIT_HOST, NK_SANDBOX_PROBE (probe.so),
 * NIFKIT_POLICY (a best-effort policy: this suite must run on machines
 * whose cgroup v2 has no controllers; what is not enforced is printed).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <ei.h>

#include "nifkit.h"
#include "operator.h"
#include "nifkit_policy.h"

/* An fd the runtime has open without close-on-exec: it must not reach the host. */
#define MARKER_FD 200
#define TMP_MB 16       /* the test policy's limits.tmp_mb */

static const char *need_env(const char *name)
{
        const char *v = getenv(name);
        if (!v || !*v)
                fail_msg("%s is not set: run this test through meson test", name);
        return v;
}

static unsigned notes, sink_notes;

static void sink(void *arg, const struct nk_log_record *rec)
{
        (void) arg;
        if (strcmp(rec->event, "sandbox_not_enforced") != 0)
                return;
        assert_int_equal(rec->level, NK_LOG_WARNING);
        assert_non_null(strstr(rec->line, "\"event\":\"sandbox_not_enforced\""));
        sink_notes++;
        if (rec->note) {
                notes++;
                printf("# NOTE (not enforced on this machine): %s\n", rec->note);
        }
}

static nk_host *start_probe(void)
{
        nk_host *h = nk_operator_host_new(NULL);
        assert_non_null(h);
        assert_int_equal(nk_host_set_library(h, need_env("NK_SANDBOX_PROBE")), 0);
        assert_int_equal(nk_host_set_host_binary(h, need_env("NIFKIT_HOST")), 0);
        nk_error err = { 0 };
        if (nk_host_start(h, NULL, 0, &err) < 0)
                fail_msg("cannot start the probe: %s", err.msg);
        return h;
}

/* Calls name with the arguments in x (NULL: none); returns the result as
 * Erlang text (caller frees), or NULL with err filled. */
static char *call(nk_host *h, const char *name, unsigned arity, ei_x_buff *x, nk_error *err)
{
        ei_x_buff none;
        if (!x) {
                ei_x_new_with_version(&none);
                ei_x_encode_empty_list(&none);
                x = &none;
        } else {
                ei_x_encode_empty_list(x);
        }
        int index = nk_host_find_function(h, name, arity);
        assert_true(index >= 0);
        nk_result res;
        int r = nk_host_call(h, (unsigned) index, NULL, 0, (const uint8_t *) x->buff, (size_t) x->index, &res, err);
        ei_x_free(x);
        if (r < 0)
                return NULL;
        assert_int_equal(res.exception, 0);
        int i = 0, version;
        char *s = NULL;
        assert_int_equal(ei_decode_version((const char *) res.etf, &i, &version), 0);
        assert_true(ei_s_print_term(&s, (const char *) res.etf, &i) >= 0);
        nk_result_free(&res);
        /* ei prints "{a, b}"; the results compared here have no spaces of
         * their own. */
        char *w = s;
        for (const char *c = s; *c; c++)
                if (*c != ' ')
                        *w++ = *c;
        *w = '\0';
        return s;
}

static char *call0(nk_host *h, const char *name)
{
        nk_error err;
        char *s = call(h, name, 0, NULL, &err);
        if (!s)
                fail_msg("%s/0 failed: %s", name, err.msg);
        return s;
}

static char *call_path(nk_host *h, const char *name, const char *path)
{
        ei_x_buff x;
        ei_x_new_with_version(&x);
        ei_x_encode_list_header(&x, 1);
        ei_x_encode_binary(&x, path, (long) strlen(path));
        nk_error err;
        char *s = call(h, name, 1, &x, &err);
        if (!s)
                fail_msg("%s(%s) failed: %s", name, path, err.msg);
        return s;
}

/* The bytes of a binary result printed by ei as <<"...">> or <<1,2,...>>
 * are awkward to compare; file/1 results are read back with ei instead. */
static size_t call_file(nk_host *h, const char *path, char *buf, size_t size)
{
        ei_x_buff x;
        ei_x_new_with_version(&x);
        ei_x_encode_list_header(&x, 1);
        ei_x_encode_binary(&x, path, (long) strlen(path));
        ei_x_encode_empty_list(&x);
        nk_result res;
        nk_error err;
        int fn = nk_host_find_function(h, "file", 1);
        assert_true(fn >= 0);
        if (nk_host_call(h, (unsigned) fn, NULL, 0, (const uint8_t *) x.buff, (size_t) x.index, &res, &err) < 0)
                fail_msg("file(%s) failed: %s", path, err.msg);
        ei_x_free(&x);
        int i = 0, version, type, len;
        assert_int_equal(ei_decode_version((const char *) res.etf, &i, &version), 0);
        assert_int_equal(ei_get_type((const char *) res.etf, &i, &type, &len), 0);
        if (type != ERL_BINARY_EXT)
                fail_msg("cannot read %s inside the host", path);
        assert_true((size_t) len < size);
        long got;
        assert_int_equal(ei_decode_binary((const char *) res.etf, &i, buf, &got), 0);
        buf[got] = '\0';
        nk_result_free(&res);
        return (size_t) got;
}

static void assert_text(char *got, const char *want, const char *what)
{
        if (strcmp(got, want) != 0)
                fail_msg("%s: expected %s, got %s", what, want, got);
        printf("# %s: %s\n", what, got);
        free(got);
}

static unsigned long status_field(const char *status, const char *key, int base)
{
        const char *p = strstr(status, key);
        if (!p)
                fail_msg("/proc/self/status has no %s", key);
        return strtoul(p + strlen(key), NULL, base);
}

/* ---- what the host sees ------------------------------------------------------- */

static void test_ids(void **state)
{
        nk_host *h = *state;
        assert_text(call0(h, "ids"), "{1000,1000,1000,1000}", "uid, gid, euid, egid inside");

        /* A root runtime maps its hosts to nobody, or to the ids the
         * operator chose; an unprivileged one maps only itself. */
        unsigned want_outside = geteuid() == 0 ? 65534 : (unsigned) geteuid();
        unsigned want_outside_gid = geteuid() == 0 ? 65534 : (unsigned) getegid();
        const char *env = getenv("NIFKIT_SANDBOX_UID"), *genv = getenv("NIFKIT_SANDBOX_GID");
        if (geteuid() == 0 && env && *env)
                want_outside = (unsigned) strtoul(env, NULL, 10);
        if (geteuid() == 0 && genv && *genv)
                want_outside_gid = (unsigned) strtoul(genv, NULL, 10);
        char buf[256];
        unsigned inside, outside, count;
        call_file(h, "/proc/self/uid_map", buf, sizeof buf);
        assert_int_equal(sscanf(buf, "%u %u %u", &inside, &outside, &count), 3);
        assert_int_equal(inside, 1000);
        assert_int_equal(outside, want_outside);
        assert_int_equal(count, 1);
        assert_null(strchr(strchr(buf, '\n') + 1, '\n'));       /* one line: one id mapped */
        call_file(h, "/proc/self/gid_map", buf, sizeof buf);
        assert_int_equal(sscanf(buf, "%u %u %u", &inside, &outside, &count), 3);
        assert_int_equal(inside, 1000);
        assert_int_equal(outside, want_outside_gid);
        assert_int_equal(count, 1);
        call_file(h, "/proc/self/setgroups", buf, sizeof buf);
        assert_string_equal(buf, "deny\n");
        printf("# uid_map: 1000 -> %u, gid_map: 1000 -> %u, one id each; setgroups denied\n", want_outside,
               want_outside_gid);
}

static void test_escapes_to_files_fail(void **state)
{
        nk_host *h = *state;
        /* Of /sys only the two CPU lists are bound (for thread pools). */
        static const char *const hidden[] = { "/etc/shadow", "/etc/passwd", "/etc", "/home", "/root",
                                              "/sys/kernel", "/sys/class", "/sys/fs", "/sys/block",
                                              "/sys/devices/system/cpu/cpu0", "/sys/devices/virtual",
                                              "/var", "/dev/mem", "/dev/kmem", "/dev/sda", "/proc/1/root/etc",
                                              "/run", "/boot" };
        for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++) {
                char *s = call_path(h, "exists", hidden[i]);
                if (strcmp(s, "{error,2}") != 0)
                        fail_msg("%s is reachable inside the host: %s", hidden[i], s);
                printf("# escape attempt: lstat(%s) -> ENOENT\n", hidden[i]);
                free(s);
        }
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* First path component of an absolute path, in buf. */
static const char *top(const char *path, char *buf, size_t size)
{
        const char *s = path + 1;
        size_t n = strcspn(s, "/");
        snprintf(buf, size, "%.*s", (int) n, s);
        return buf;
}

static void test_root_is_minimal(void **state)
{
        nk_host *h = *state;
        char *s = call_path(h, "list_dir", "/");
        printf("# / contains %s\n", s);
        char a[256], b[256];
        const char *allowed[] = { "dev", "proc", "tmp", "lib", "lib64", "usr", "sys", top(need_env("NIFKIT_HOST"), a, sizeof a),
                                  top(need_env("NK_SANDBOX_PROBE"), b, sizeof b) };
        /* ["x","y"]: walk the quoted names. */
        unsigned found_required = 0;
        for (char *p = strchr(s, '"'); p; p = strchr(p + 1, '"')) {
                char *end = strchr(p + 1, '"');
                assert_non_null(end);
                *end = '\0';
                const char *name = p + 1;
                bool ok = false;
                for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
                        ok = ok || strcmp(name, allowed[i]) == 0;
                if (!ok)
                        fail_msg("unexpected entry in the host's root: '%s'", name);
                found_required += strcmp(name, "dev") == 0 || strcmp(name, "proc") == 0 || strcmp(name, "tmp") == 0;
                p = end;
        }
        assert_int_equal(found_required, 3);
        free(s);

        s = call_path(h, "list_dir", "/dev");
        char *names[8];
        size_t n = 0;
        for (char *p = strchr(s, '"'); p && n < 8; p = strchr(p + 1, '"')) {
                char *end = strchr(p + 1, '"');
                *end = '\0';
                names[n++] = p + 1;
                p = end;
        }
        qsort(names, n, sizeof *names, cmp_str);
        assert_int_equal(n, 4);
        assert_string_equal(names[0], "null");
        assert_string_equal(names[1], "random");
        assert_string_equal(names[2], "urandom");
        assert_string_equal(names[3], "zero");
        printf("# /dev holds null, random, urandom, zero only\n");
        free(s);
}

static char *write_file(nk_host *h, const char *path, unsigned long size)
{
        ei_x_buff x;
        ei_x_new_with_version(&x);
        ei_x_encode_list_header(&x, 2);
        ei_x_encode_binary(&x, path, (long) strlen(path));
        ei_x_encode_ulong(&x, size);
        nk_error err;
        char *s = call(h, "write_file", 2, &x, &err);
        if (!s)
                fail_msg("write_file(%s) failed: %s", path, err.msg);
        return s;
}

static bool is_errno(const char *s, int e)
{
        char want[32];
        snprintf(want, sizeof want, "{error,%d}", e);
        return strcmp(s, want) == 0;
}

static void test_writes(void **state)
{
        nk_host *h = *state;
        char path[512];
        snprintf(path, sizeof path, "%s.x", need_env("NK_SANDBOX_PROBE"));
        const char *const escapes[] = { "/escape", path, "/proc/escape", "/dev/escape" };
        for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
                /* Whichever layer refuses (the broker, seccomp, the
                 * read-only mount), nothing may be created. */
                char *s = write_file(h, escapes[i], 1);
                if (strncmp(s, "{error,", 7) != 0)
                        fail_msg("creating %s gave %s", escapes[i], s);
                char *e = call_path(h, "exists", escapes[i]);
                if (!is_errno(e, ENOENT))
                        fail_msg("%s exists after a refused creation: %s", escapes[i], e);
                printf("# escape attempt: create %s -> %s, and it does not exist\n", escapes[i], s);
                free(s);
                free(e);
        }
        char *s;

        /* /tmp is a tmpfs of the policy's size, nosuid and nodev. */
        char want[64];
        snprintf(want, sizeof want, "{%lu,%lu,", (unsigned long) TMP_MB << 20, 0x01021994UL);
        s = call_path(h, "fs_size", "/tmp");
        if (strncmp(s, want, strlen(want)) != 0)
                fail_msg("/tmp is not a %d MiB tmpfs: %s", TMP_MB, s);
        unsigned long flags = strtoul(strrchr(s, ',') + 1, NULL, 10);
        assert_true(flags & ST_NOSUID);
        assert_true(flags & ST_NODEV);
        printf("# /tmp: %d MiB tmpfs, nosuid, nodev\n", TMP_MB);
        free(s);

        s = write_file(h, "/tmp/small", 1 << 20);
        if (is_errno(s, EACCES)) {
                /* The seccomp filter refuses opens that create files; the
                 * size limit then stands behind it unused. */
                printf("# creating files in /tmp: refused (EACCES), the size limit is not reached\n");
                free(s);
                return;
        }
        assert_text(s, "ok", "write 1 MiB to /tmp");
        s = write_file(h, "/tmp/big", (unsigned long) (TMP_MB + 1) << 20);
        if (!is_errno(s, EFBIG) && !is_errno(s, ENOSPC))
                fail_msg("writing %d MiB to a %d MiB /tmp gave %s", TMP_MB + 1, TMP_MB, s);
        printf("# write %d MiB to the %d MiB /tmp: %s\n", TMP_MB + 1, TMP_MB, s);
        free(s);
}

/* Every mount is read-only but /proc, /tmp and the device nodes, and none
 * allows set-uid programs or (but /dev) devices. */
static void test_mounts(void **state)
{
        nk_host *h = *state;
        char buf[8192];
        call_file(h, "/proc/self/mountinfo", buf, sizeof buf);
        unsigned n = 0;
        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                char point[512], opts[256];
                /* id parent major:minor root mount-point options ... */
                if (sscanf(line, "%*u %*u %*s %*s %511s %255s", point, opts) != 2)
                        fail_msg("cannot parse mountinfo line: %s", line);
                bool rw = strncmp(opts, "rw", 2) == 0;
                bool writable_ok = strcmp(point, "/proc") == 0 || strcmp(point, "/tmp") == 0 ||
                                   strncmp(point, "/dev/", 5) == 0;
                if (rw && !writable_ok)
                        fail_msg("%s is mounted read-write: %s", point, line);
                if (!strstr(opts, "nosuid"))
                        fail_msg("%s allows set-uid programs: %s", point, line);
                if (strncmp(point, "/dev/", 5) != 0 && !strstr(opts, "nodev"))
                        fail_msg("%s allows device nodes: %s", point, line);
                if (strcmp(point, "/") == 0)
                        assert_true(!rw);
                n++;
        }
        printf("# %u mounts: / and every bind read-only, all nosuid\n", n);
}

static void test_no_capabilities(void **state)
{
        nk_host *h = *state;
        char buf[4096];
        call_file(h, "/proc/self/status", buf, sizeof buf);
        assert_int_equal(status_field(buf, "CapInh:", 16), 0);
        assert_int_equal(status_field(buf, "CapPrm:", 16), 0);
        assert_int_equal(status_field(buf, "CapEff:", 16), 0);
        assert_int_equal(status_field(buf, "CapBnd:", 16), 0);
        assert_int_equal(status_field(buf, "CapAmb:", 16), 0);
        assert_int_equal(status_field(buf, "NoNewPrivs:", 10), 1);
        assert_int_equal(status_field(buf, "Seccomp:", 10), 2);      /* filter mode */
        printf("# capabilities: none, bounding set empty, no_new_privs, seccomp filter\n");
}

static void test_namespaces(void **state)
{
        nk_host *h = *state;
        assert_text(call0(h, "pid"), "1", "pid inside (its own pid namespace)");
        assert_text(call0(h, "hostname"), "\"nifkit-host\"", "hostname (its own uts namespace)");

        char buf[4096];
        call_file(h, "/proc/self/net/dev", buf, sizeof buf);
        /* Two header lines, then one line per interface: lo alone. */
        unsigned lines = 0;
        for (char *p = buf; (p = strchr(p, '\n')); p++)
                lines++;
        assert_int_equal(lines, 3);
        assert_non_null(strstr(buf, "lo:"));
        printf("# network interfaces: lo only\n");
        char *s = call_path(h, "exists", "/proc/self/net/if_inet6");
        if (strcmp(s, "true") == 0) {
                call_file(h, "/proc/self/net/if_inet6", buf, sizeof buf);
                /* ::1 is on lo only once lo is up. */
                assert_non_null(strstr(buf, "00000000000000000000000000000001"));
                printf("# loopback is up (::1 assigned)\n");
        } else {
                printf("# no IPv6 here: loopback's state not checked through ::1\n");
        }
        free(s);
}

static void test_fds(void **state)
{
        nk_host *h = *state;
        char *s = call0(h, "fds");
        printf("# the host's descriptors: %s\n", s);
        char marker[16];
        snprintf(marker, sizeof marker, "%d", MARKER_FD);
        for (char *p = s; (p = strstr(p, marker)); p++)
                if (!isdigit((unsigned char) p[-1]) && !isdigit((unsigned char) p[strlen(marker)]))
                        fail_msg("the runtime's fd %d leaked into the host", MARKER_FD);
        /* stdin, stdout, stderr, the channel, and the native launcher's
         * exit report. */
        const char *launcher = getenv("NIFKIT_TEST_LAUNCHER");
        bool native = !launcher || !*launcher || strcmp(launcher, "native") == 0;
        for (const char *fd = native ? "\"0\"\0\"1\"\0\"2\"\0\"3\"\0\"5\"\0" : "\"0\"\0\"1\"\0\"2\"\0\"3\"\0"; *fd;
             fd += strlen(fd) + 1)
                if (!strstr(s, fd))
                        fail_msg("the host lacks fd %s: %s", fd, s);
        free(s);
        /* The environment is the launcher's, and the report's variable is
         * gone before a NIF runs. */
        s = call_path(h, "env_var", "NIFKIT_REPORT_FD");
        assert_string_equal(s, "false");
        free(s);
        /* A few fixed values, nothing of the runtime's own environment. */
        s = call_path(h, "env_var", "HOME");
        assert_string_equal(s, "\"/\"");
        free(s);
        s = call_path(h, "env_var", "PATH");
        assert_string_equal(s, "\"/usr/bin:/bin\"");
        free(s);
        s = call_path(h, "env_var", "NIFKIT_POLICY");
        assert_string_equal(s, "false");
        free(s);
}

/* What is not enforced reaches the log sink for every host, with a note
 * for a person (which the proxy prints) once per process: three hosts of
 * one library under one policy log three times as much as one, and carry
 * no new note after the first. */
static void test_notes_reach_log_sink(void **state)
{
        (void) state;
        notes = sink_notes = 0;
        nk_log_set_sink(sink, NULL, NK_LOG_DEBUG);
        nk_host_free(start_probe());
        unsigned per_host = sink_notes, told = notes;
        nk_host_free(start_probe());
        nk_host_free(start_probe());
        nk_log_set_sink(NULL, NULL, NK_LOG_DEBUG);
        assert_int_equal(sink_notes, 3 * per_host);
        assert_int_equal(notes, told);
        assert_true(told <= per_host);
        printf("# %u event(s) per host about limits not enforced here, each logged; %u with a note\n",
               per_host, told);
}

/* The test policy's text with the text from `from` to the next `until`
 * (or just `from` when until is NULL) replaced by `to`, loaded. */
static struct nk_policy *policy_with(const char *from, const char *until, const char *to)
{
        FILE *f = fopen(need_env("NIFKIT_POLICY"), "r");
        assert_non_null(f);
        char text[8192], out[8192];
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = '\0';
        char *at = strstr(text, from);
        assert_non_null(at);
        const char *rest = at + strlen(from);
        if (until) {
                rest = strstr(rest, until);
                assert_non_null(rest);
                rest += strlen(until);
        }
        snprintf(out, sizeof out, "%.*s%s%s", (int) (at - text), text, to, rest);
        struct nk_policy *p = NULL;
        struct nk_policy_error perr;
        if (nk_policy_load_string(out, "test", &p, &perr) < 0)
                fail_msg("policy: %s", perr.msg);
        return p;
}

static nk_host *start_with_policy(const struct nk_policy *p)
{
        nk_host *h = nk_operator_host_new(NULL);
        assert_non_null(h);
        assert_int_equal(nk_host_set_library(h, need_env("NK_SANDBOX_PROBE")), 0);
        assert_int_equal(nk_host_set_host_binary(h, need_env("NIFKIT_HOST")), 0);
        nk_host_set_policy(h, p);
        nk_error err = { 0 };
        if (nk_host_start(h, NULL, 0, &err) < 0)
                fail_msg("cannot start the probe: %s", err.msg);
        return h;
}

/* A policy set on the host decides its sandbox's limits... */
static void test_policy_limits(void **state)
{
        (void) state;
        struct nk_policy *p = policy_with("\"tmp_mb\": ", ",", "\"tmp_mb\": 4,");
        nk_host *h = start_with_policy(p);
        char want[64];
        snprintf(want, sizeof want, "{%lu,", 4UL << 20);
        char *s = call_path(h, "fs_size", "/tmp");
        if (strncmp(s, want, strlen(want)) != 0)
                fail_msg("the policy's tmp_mb 4 gave %s", s);
        printf("# policy tmp_mb 4: /tmp is 4 MiB\n");
        free(s);
        nk_host_free(h);
        nk_policy_free(p);
}

/* The policy's "env" passes the VM's values of the variables it names, and
 * nothing else of the VM's environment (secrets included) reaches the host. */
static void test_policy_env(void **state)
{
        (void) state;
        setenv("NK_TEST_TZ", "Europe/Lisbon", 1);
        setenv("NK_TEST_SECRET", "hunter2", 1);
        char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
        setenv("HOME", "/home/vm", 1);
        struct nk_policy *p = policy_with("\"workers\": ", NULL, "\"env\": [\"NK_TEST_TZ\", \"NK_TEST_UNSET\", \"HOME\"], "
                                          "\"workers\": ");
        nk_host *h = start_with_policy(p);
        static const char *const want[][2] = {
                { "NK_TEST_TZ", "\"Europe/Lisbon\"" }, { "HOME", "\"/home/vm\"" },
                { "NK_TEST_UNSET", "false" }, { "NK_TEST_SECRET", "false" }, { "TMPDIR", "\"/tmp\"" },
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
                char *s = call_path(h, "env_var", want[i][0]);
                if (strcmp(s, want[i][1]) != 0)
                        fail_msg("%s in the host: want %s, got %s", want[i][0], want[i][1], s);
                free(s);
        }
        printf("# policy env: listed variables pass with the VM's values, the rest does not\n");
        nk_host_free(h);
        nk_policy_free(p);
        unsetenv("NK_TEST_TZ");
        unsetenv("NK_TEST_SECRET");
        if (home)
                setenv("HOME", home, 1);
        else
                unsetenv("HOME");
        free(home);
}

/* ...and only a policy that names it runs a host unsandboxed. */
static void test_policy_unsandboxed(void **state)
{
        (void) state;
        struct nk_policy *p = policy_with("\"launcher\": \"", "\",", "\"launcher\": \"unsandboxed-development\",");
        nk_host *h = start_with_policy(p);
        char *s = call0(h, "pid");
        assert_string_not_equal(s, "1");
        char want[32];
        snprintf(want, sizeof want, "%d", nk_host_pid(h));
        assert_string_equal(s, want);
        printf("# policy launcher unsandboxed-development: the host is pid %s of the caller's namespace\n", s);
        free(s);
        nk_host_free(h);
        nk_policy_free(p);
}

/* The host's stderr is a pipe copied to the caller's stderr: a NIF's
 * messages still arrive, but the NIF never holds the caller's. Hosts start
 * from the host template, whose stderr is the process's when it started:
 * so in a process of its own, whose stderr is the log from the start. */
static void test_output_reaches_caller(void **state)
{
        (void) state;
        char path[] = "/tmp/nk-sandbox-stderr.XXXXXX";
        int log = mkstemp(path);
        assert_true(log >= 0);
        static const char text[] = "a line from inside the host\n";
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(log, 2);
                nk_host *h = start_probe();
                char *s = call_path(h, "say", text);
                nk_host_free(h);
                _exit(s && strcmp(s, "28") == 0 ? 0 : 1);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);

        /* The copy runs on its own thread: give it a moment. */
        char buf[256] = "";
        for (int i = 0; i < 200 && !strstr(buf, text); i++) {
                ssize_t k = pread(log, buf, sizeof buf - 1, 0);
                buf[k > 0 ? k : 0] = '\0';
                if (!strstr(buf, text))
                        usleep(10000);
        }
        close(log);
        unlink(path);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (!strstr(buf, text))
                fail_msg("the host's stderr did not reach the caller's: '%s'", buf);
        printf("# the host's stderr reached the caller's through the launcher's pipe\n");
}

/* ---- reasons ---------------------------------------------------------------------- */

static void expect_death(const char *fn, ei_x_buff *args, unsigned arity, unsigned timeout_ms, const char *reason,
                         const char *in_msg)
{
        nk_host *h = start_probe();
        if (timeout_ms)
                nk_host_set_call_timeout(h, timeout_ms);
        nk_error err = { 0 };
        char *s = call(h, fn, arity, args, &err);
        if (s)
                fail_msg("%s returned %s; the host should have died", fn, s);
        printf("# %s: reason \"%s\": %s\n", fn, err.reason, err.msg);
        assert_string_equal(err.reason, reason);
        if (in_msg && !strstr(err.msg, in_msg))
                fail_msg("the message does not say '%s': %s", in_msg, err.msg);
        nk_error again;
        assert_null(call(h, "pid", 0, NULL, &again));
        assert_string_equal(again.reason, reason);      /* later calls keep the reason */
        nk_host_free(h);
}

static void test_reason_seccomp(void **state)
{
        (void) state;
        expect_death("socket", NULL, 0, 0, "seccomp", "seccomp denied socket(2)");
}

static void test_reason_crashed(void **state)
{
        (void) state;
        expect_death("crash", NULL, 0, 0, "crashed", "signal 11 (SIGSEGV)");
}

/* A fault the kernel forces on the host (its pid namespace's init). */
static void test_reason_crashed_by_fault(void **state)
{
        (void) state;
        ei_x_buff x;
        ei_x_new_with_version(&x);
        ei_x_encode_list_header(&x, 1);
        ei_x_encode_long(&x, 0);
        expect_death("divide", &x, 1, 0, "crashed", "signal 8 (SIGFPE)");
}

/* BEAM ignores SIGCHLD, so the kernel reaps the host by itself: the
 * status must still come back (through the pidfd). */
static void test_reason_crashed_sigchld_ignored(void **state)
{
        (void) state;
        struct sigaction ign = { .sa_handler = SIG_IGN }, old;
        sigemptyset(&ign.sa_mask);
        assert_int_equal(sigaction(SIGCHLD, &ign, &old), 0);
        expect_death("crash", NULL, 0, 0, "crashed", "signal 11 (SIGSEGV)");
        assert_int_equal(sigaction(SIGCHLD, &old, NULL), 0);
}

static void test_reason_exited(void **state)
{
        (void) state;
        ei_x_buff x;
        ei_x_new_with_version(&x);
        ei_x_encode_list_header(&x, 1);
        ei_x_encode_long(&x, 3);
        expect_death("exit", &x, 1, 0, "exited", "status 3");
}

static void test_reason_timeout(void **state)
{
        (void) state;
        ei_x_buff x;
        ei_x_new_with_version(&x);
        ei_x_encode_list_header(&x, 1);
        ei_x_encode_long(&x, 5000);
        expect_death("sleep", &x, 1, 200, "timeout", "timed out");
}

static int group_setup(void **state)
{
        *state = start_probe();
        return 0;
}

static int group_teardown(void **state)
{
        nk_host_free(*state);
        return 0;
}

/* sandbox_test [PATTERN]: only the tests whose names match (cmocka's
 * filter, e.g. test_ids). */
int main(int argc, char **argv)
{
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        /* A descriptor the runtime holds without close-on-exec. */
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0 || dup2(fd, MARKER_FD) < 0)
                return 1;
        printf("# cgroup v2 limits (memory, pids, cpu) are only enforced where the controllers are\n"
               "# delegated; this run uses a best-effort policy and prints what is not enforced.\n");

        const struct CMUnitTest inside[] = {
                cmocka_unit_test(test_ids),
                cmocka_unit_test(test_escapes_to_files_fail),
                cmocka_unit_test(test_root_is_minimal),
                cmocka_unit_test(test_writes),
                cmocka_unit_test(test_mounts),
                cmocka_unit_test(test_no_capabilities),
                cmocka_unit_test(test_namespaces),
                cmocka_unit_test(test_fds),
                cmocka_unit_test(test_notes_reach_log_sink),
                cmocka_unit_test(test_output_reaches_caller),
                cmocka_unit_test(test_policy_limits),
                cmocka_unit_test(test_policy_env),
                cmocka_unit_test(test_policy_unsandboxed),
        };
        const struct CMUnitTest reasons[] = {
                cmocka_unit_test(test_reason_seccomp),
                cmocka_unit_test(test_reason_crashed),
                cmocka_unit_test(test_reason_crashed_sigchld_ignored),
                cmocka_unit_test(test_reason_crashed_by_fault),
                cmocka_unit_test(test_reason_exited),
                cmocka_unit_test(test_reason_timeout),
        };
        int failed = cmocka_run_group_tests_name("inside the host", inside, group_setup, group_teardown);
        failed += cmocka_run_group_tests_name("reasons for deaths", reasons, NULL, NULL);
        return failed ? 1 : 0;
}
