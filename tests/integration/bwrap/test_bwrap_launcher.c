/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bubblewrap launcher through the launcher interface: the parsers it
 * relies on, the error when bwrap is missing, and the sandbox a probe
 * (bwrap_probe.c, started in place of nifkit-host) reports from inside:
 * ids and uid map, capabilities, no_new_privs, seccomp, descriptors,
 * mounts, loopback, namespaces, rlimits, environment, /dev; then exit
 * statuses, a real crash, kill and wait.
 *
 * Environment (set by meson): NK_BWRAP_PROBE, NK_TEST_NIF_GOOD (a library
 * to bind), NK_SANITIZE (the build's b_sanitize). The launching tests skip,
 * saying why, where bwrap is missing or cannot create namespaces here, and
 * in sanitized builds.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bwrap_probe.h"
#include "launcher.h"
#include "sandbox.h"
#include "sequencer.h"

static const char *skip_reason;

static const char *need_env(const char *name)
{
        const char *v = getenv(name);
        if (!v || !*v)
                fail_msg("%s is not set: run this test through meson test", name);
        return v;
}

/* ---- parsers ----------------------------------------------------------------- */

static void test_parse_version(void **state)
{
        unsigned v;
        assert_int_equal(nk_bwrap_parse_version("bubblewrap 0.8.0\n", &v), 0);
        assert_int_equal(v, 800);
        assert_int_equal(nk_bwrap_parse_version("bubblewrap 0.11.1", &v), 0);
        assert_int_equal(v, 1101);
        assert_int_equal(nk_bwrap_parse_version("bubblewrap 0.6\n", &v), 0);
        assert_int_equal(v, 600);
        assert_int_equal(nk_bwrap_parse_version("bubblewrap 1.0.0-rc1\n", &v), 0);
        assert_int_equal(v, 10000);
        assert_int_equal(nk_bwrap_parse_version("bwrap 0.8.0", &v), -EINVAL);
        assert_int_equal(nk_bwrap_parse_version("bubblewrap x.8", &v), -EINVAL);
        assert_int_equal(nk_bwrap_parse_version("bubblewrap 0.8x", &v), -EINVAL);
        assert_int_equal(nk_bwrap_parse_version("bubblewrap 0.800.1", &v), -EINVAL);
        assert_int_equal(nk_bwrap_parse_version("", &v), -EINVAL);
}

static void test_parse_child_pid(void **state)
{
        pid_t pid = 0;
        /* What bubblewrap 0.8.0 writes to --info-fd. */
        assert_int_equal(nk_bwrap_parse_child_pid("{\n    \"child-pid\": 19471,\n    \"cgroup-namespace\": 4026532182,\n"
                                                  "    \"ipc-namespace\": 4026532180\n}\n",
                                                  &pid),
                         0);
        assert_int_equal(pid, 19471);
        assert_int_equal(nk_bwrap_parse_child_pid("{\n    \"child-pid\": 42\n}\n", &pid), 0);
        assert_int_equal(pid, 42);
        assert_int_equal(nk_bwrap_parse_child_pid("{\"child-pid\":7}", &pid), 0);
        assert_int_equal(pid, 7);
        assert_int_equal(nk_bwrap_parse_child_pid("", &pid), -ENOENT);
        assert_int_equal(nk_bwrap_parse_child_pid("{\"ipc-namespace\": 4}", &pid), -ENOENT);
        assert_int_equal(nk_bwrap_parse_child_pid("{\"child-pid\" 42}", &pid), -EINVAL);
        assert_int_equal(nk_bwrap_parse_child_pid("{\"child-pid\": -1}", &pid), -EINVAL);
        assert_int_equal(nk_bwrap_parse_child_pid("{\"child-pid\": 0}", &pid), -EINVAL);
        assert_int_equal(nk_bwrap_parse_child_pid("{\"child-pid\": 12a}", &pid), -EINVAL);
        assert_int_equal(nk_bwrap_parse_child_pid("{\"child-pid\": 99999999999}", &pid), -EINVAL);
        /* A truncated report is not a pid. */
        assert_int_equal(nk_bwrap_parse_child_pid("{\"child-pid\": 12", &pid), -EINVAL);
}

static void test_parse_exit_code(void **state)
{
        int code = -1;
        /* What bubblewrap 0.8.0 writes to --json-status-fd: one document at
         * start, one as the monitor exits. */
        const char *both = "{ \"child-pid\": 15130, \"cgroup-namespace\": 4026532182, \"ipc-namespace\": 4026532180 }\n"
                           "{ \"exit-code\": 7 }\n";
        assert_int_equal(nk_bwrap_parse_exit_code(both, &code), 0);
        assert_int_equal(code, 7);
        assert_int_equal(nk_bwrap_parse_exit_code("{ \"exit-code\": 139 }\n", &code), 0);
        assert_int_equal(code, 139);
        assert_int_equal(nk_bwrap_parse_exit_code("{\"exit-code\":0}", &code), 0);
        assert_int_equal(code, 0);
        /* The last one counts, should there be several. */
        assert_int_equal(nk_bwrap_parse_exit_code("{\"exit-code\": 1}\n{\"exit-code\": 2}\n", &code), 0);
        assert_int_equal(code, 2);
        /* Killed before it could say. */
        assert_int_equal(nk_bwrap_parse_exit_code("{ \"child-pid\": 15130 }\n", &code), -ENOENT);
        assert_int_equal(nk_bwrap_parse_exit_code("", &code), -ENOENT);
        assert_int_equal(nk_bwrap_parse_exit_code("{ \"exit-code\": 256 }", &code), -EINVAL);
        assert_int_equal(nk_bwrap_parse_exit_code("{ \"exit-code\": -1 }", &code), -EINVAL);
        assert_int_equal(nk_bwrap_parse_exit_code("{ \"exit-code\": 1", &code), -EINVAL);
}

static void test_translate_exit(void **state)
{
        struct nk_child_exit ex;
        nk_bwrap_translate_exit(0, &ex);
        assert_int_equal(ex.signo, 0);
        assert_int_equal(ex.status, 0);
        nk_bwrap_translate_exit(1, &ex);
        assert_int_equal(ex.signo, 0);
        assert_int_equal(ex.status, 1);
        nk_bwrap_translate_exit(128, &ex);
        assert_int_equal(ex.signo, 0);
        assert_int_equal(ex.status, 128);
        nk_bwrap_translate_exit(128 + SIGSEGV, &ex);
        assert_int_equal(ex.signo, SIGSEGV);
        assert_int_equal(ex.status, 0);
        nk_bwrap_translate_exit(128 + SIGSYS, &ex);
        assert_int_equal(ex.signo, SIGSYS);
        nk_bwrap_translate_exit(255, &ex);
        assert_int_equal(ex.signo, 0);
        assert_int_equal(ex.status, 255);
}

static void make_file(const char *path, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(chmod(path, mode), 0);
}

static void test_find(void **state)
{
        char dir[] = "/tmp/nk-bwrap-find-XXXXXX";
        assert_non_null(mkdtemp(dir));
        char a[128], b[128], path[512], found[256];
        snprintf(a, sizeof a, "%s/a", dir);
        snprintf(b, sizeof b, "%s/b", dir);
        assert_int_equal(mkdir(a, 0755), 0);
        assert_int_equal(mkdir(b, 0755), 0);

        /* Not executable in a, executable in b: b's. Relative and empty
         * entries are never searched. */
        char fa[160], fb[160];
        snprintf(fa, sizeof fa, "%s/bwrap", a);
        snprintf(fb, sizeof fb, "%s/bwrap", b);
        make_file(fa, 0644);
        make_file(fb, 0755);
        snprintf(path, sizeof path, "::relative:/nonexistent:%s:%s", a, b);
        assert_int_equal(nk_bwrap_find(path, found, sizeof found), 0);
        assert_string_equal(found, fb);

        /* A directory named bwrap is not a program. */
        unlink(fb);
        assert_int_equal(mkdir(fb, 0755), 0);
        assert_int_equal(nk_bwrap_find(path, found, sizeof found), -ENOENT);
        /* Too small a buffer never truncates a path into another file's. */
        snprintf(path, sizeof path, "%s", a);
        chmod(fa, 0755);
        assert_int_equal(nk_bwrap_find(path, found, sizeof found), 0);
        assert_string_equal(found, fa);
        assert_int_equal(nk_bwrap_find(path, found, 8), -ENOENT);

        unlink(fa);
        rmdir(fb);
        rmdir(a);
        rmdir(b);
        rmdir(dir);
}

/* ---- launching the probe ---------------------------------------------------------- */

struct probe {
        int fd;                 /* our end of the channel */
        struct nk_child child;
        struct nk_sandbox_config sc;
};

static int launch_probe_with(const struct nk_launcher *launcher, struct probe *p, const char *probe,
                             const char *library, const struct nk_sandbox_config *sc, struct nk_sandbox_error *err)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        p->sc = *sc;
        const struct nk_launch_config cfg = {
                .host_binary = probe,
                .library = library,
                .sandbox = &p->sc,
                .err = err,
        };
        int r = launcher->launch(&cfg, sv[1], &p->child);
        close(sv[1]);
        if (r < 0) {
                close(sv[0]);
                p->fd = -1;
                return r;
        }
        p->fd = sv[0];
        return 0;
}

static int launch_probe_at(struct probe *p, const char *probe, const char *library,
                           const struct nk_sandbox_config *sc, struct nk_sandbox_error *err)
{
        return launch_probe_with(&nk_launcher_bwrap, p, probe, library, sc, err);
}

static int launch_probe(struct probe *p, const struct nk_sandbox_config *sc, struct nk_sandbox_error *err)
{
        return launch_probe_at(p, need_env("NK_BWRAP_PROBE"), need_env("NK_TEST_NIF_GOOD"), sc, err);
}

static struct nk_sandbox_config default_config(void)
{
        return (struct nk_sandbox_config) {
                .memory_bytes = 256ULL << 20,
                .pids = 16,
                .cpu_percent = 100,
                .tmp_mb = 16,
                .open_files = 256,
                .cgroup_required = false,
        };
}

static void start_probe(struct probe *p)
{
        struct nk_sandbox_error err = {};
        struct nk_sandbox_config sc = default_config();
        int r = launch_probe(p, &sc, &err);
        if (r < 0)
                fail_msg("launch: %d %s", r, err.msg);
}

static void say(struct probe *p, const char *cmd)
{
        assert_int_equal(send(p->fd, cmd, strlen(cmd), 0), (ssize_t) strlen(cmd));
}

static void finish(struct probe *p, struct nk_child_exit *ex)
{
        assert_int_equal(nk_launcher_bwrap.wait(&p->child, 10000, ex), 0);
        nk_child_release(&p->child);
        close(p->fd);
}

static void skip_unless_bwrap(void)
{
        if (skip_reason) {
                printf("SKIP: %s\n", skip_reason);
                skip();
        }
}

/* The value of key in the report ("" when absent); at most one per key
 * except mount=, which report_mount reads. */
static const char *value(const char *report, const char *key, char *buf, size_t size)
{
        size_t len = strlen(key);
        for (const char *p = report; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, key, len) == 0 && p[len] == '=') {
                        snprintf(buf, size, "%.*s", (int) strcspn(p + len + 1, "\n"), p + len + 1);
                        return buf;
                }
        snprintf(buf, size, "%s", "");
        return buf;
}

static void expect(const char *report, const char *key, const char *want)
{
        char buf[1024];
        if (strcmp(value(report, key, buf, sizeof buf), want) != 0)
                fail_msg("%s: expected \"%s\", got \"%s\"", key, want, buf);
}

/* The "mount=" line for a mount point: "POINT FSTYPE OPTS SUPEROPTS". */
static bool report_mount(const char *report, const char *point, char *buf, size_t size)
{
        char prefix[256];
        snprintf(prefix, sizeof prefix, "mount=%s ", point);
        const char *p = strstr(report, prefix);
        if (!p)
                return false;
        snprintf(buf, size, "%.*s", (int) strcspn(p, "\n"), p);
        return true;
}

/* Every comma-separated name of list is in allowed. */
static void expect_subset(const char *what, const char *list, const char *const *allowed)
{
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", list);
        for (char *save, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                bool ok = false;
                for (const char *const *a = allowed; *a; a++)
                        ok = ok || strcmp(tok, *a) == 0;
                if (!ok)
                        fail_msg("%s: unexpected \"%s\" in %s", what, tok, list);
        }
}

static bool has_item(const char *list, const char *item)
{
        size_t len = strlen(item);
        for (const char *p = list; p; p = strchr(p, ','), p = p ? p + 1 : NULL)
                if (strncmp(p, item, len) == 0 && (p[len] == ',' || p[len] == '\0'))
                        return true;
        return false;
}

static void check_ids(const char *r)
{
        uid_t ou, iu;
        gid_t og, ig;
        char buf[256];
        nk_userns_default_ids(&ou, &og, &iu, &ig);
        expect(r, "args", "3 --fd 3");
        expect(r, "uid", "1000");
        expect(r, "gid", "1000");
        expect(r, "euid", "1000");
        /* --as-pid-1: alone in its pid namespace. */
        expect(r, "pid", "1");
        /* One id mapped, straight to the outside id: one user namespace
         * (bwrap nests a second only to mount a devpts, which --dev would). */
        unsigned in, out, count;
        assert_int_equal(sscanf(value(r, "uid_map", buf, sizeof buf), "%u %u %u", &in, &out, &count), 3);
        assert_int_equal(in, 1000);
        assert_int_equal(out, ou);
        assert_int_equal(count, 1);
        assert_int_equal(sscanf(value(r, "gid_map", buf, sizeof buf), "%u %u %u", &in, &out, &count), 3);
        assert_int_equal(in, 1000);
        assert_int_equal(out, og);
        assert_int_equal(count, 1);
}

/* The sandboxed process: the only child of bwrap's monitor. */
static pid_t host_pid(const struct probe *p)
{
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int) p->child.pid, (int) p->child.pid);
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        assert_non_null(fgets(line, sizeof line, f));
        fclose(f);
        int pid = 0, end = 0;
        assert_int_equal(sscanf(line, "%d %n", &pid, &end), 1);
        assert_int_equal(line[end], '\0');
        return pid;
}

/* Seen from here, the host runs as the outside ids: never root. */
static void check_outside_ids(const struct probe *p)
{
        uid_t ou, iu;
        gid_t og, ig;
        nk_userns_default_ids(&ou, &og, &iu, &ig);
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/status", (int) host_pid(p));
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        int seen = 0;
        while (fgets(line, sizeof line, f)) {
                unsigned a, b, c, d;
                bool uid = strncmp(line, "Uid:", 4) == 0, gid = strncmp(line, "Gid:", 4) == 0;
                if (!uid && !gid)
                        continue;
                assert_int_equal(sscanf(line + 4, "%u %u %u %u", &a, &b, &c, &d), 4);
                unsigned want = uid ? (unsigned) ou : (unsigned) og;
                if (a != want || b != want || c != want || d != want)
                        fail_msg("host runs as %s outside, expected %u everywhere", line, want);
                seen++;
        }
        fclose(f);
        assert_int_equal(seen, 2);
        assert_true(ou != 0 && og != 0);
}

static void check_privileges(const char *r)
{
        expect(r, "cap_eff", "0000000000000000");
        expect(r, "cap_prm", "0000000000000000");
        expect(r, "cap_bnd", "0000000000000000");
        expect(r, "cap_amb", "0000000000000000");
        expect(r, "no_new_privs", "1");
        expect(r, "seccomp", "2");
}

static void check_mounts(const char *r)
{
        char m[1024];
        if (!report_mount(r, "/", m, sizeof m))
                fail_msg("no root mount in the report");
        /* "mount=/ tmpfs ro,nosuid,nodev,... rw,..." */
        char point[64], type[64], opts[256];
        assert_int_equal(sscanf(m, "mount=%63s %63s %255s", point, type, opts), 3);
        if (strncmp(opts, "ro,", 3) != 0 && strcmp(opts, "ro") != 0)
                fail_msg("root not read-only: %s", m);
        if (!report_mount(r, "/tmp", m, sizeof m) || !strstr(m, " tmpfs rw") || !strstr(m, "size=16384k"))
                fail_msg("/tmp is not a 16 MiB tmpfs: %s", m);
        if (!report_mount(r, "/proc", m, sizeof m) || !strstr(m, " proc "))
                fail_msg("no /proc of its own: %s", m);
        /* /dev is a directory of the read-only root, not a mount. */
        if (report_mount(r, "/dev", m, sizeof m))
                fail_msg("/dev is a mount of its own: %s", m);
        if (!report_mount(r, "/dev/null", m, sizeof m) || strstr(m, "nodev"))
                fail_msg("/dev/null is not a usable device: %s", m);
        /* Each bind is read-only. */
        const char *probe = need_env("NK_BWRAP_PROBE");
        if (!report_mount(r, probe, m, sizeof m) || !strstr(m, " ro,"))
                fail_msg("%s is not bound read-only: %s", probe, m);
}

static void check_namespaces(const char *r)
{
        static const char *const ns[] = { "user", "mnt", "net", "pid", "ipc", "uts", "cgroup" };
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
                char key[32], path[64], ours[128], theirs[256];
                snprintf(key, sizeof key, "ns_%s", ns[i]);
                snprintf(path, sizeof path, "/proc/self/ns/%s", ns[i]);
                ssize_t n = readlink(path, ours, sizeof ours - 1);
                assert_true(n > 0);
                ours[n] = '\0';
                value(r, key, theirs, sizeof theirs);
                if (strncmp(theirs, ns[i], strlen(ns[i])) != 0 || strcmp(theirs, ours) == 0)
                        fail_msg("%s namespace not new: ours %s, the host's %s", ns[i], ours, theirs);
        }
}

static void check_rest(const char *r)
{
        char buf[1024];
        expect(r, "loopback_up", "1");
        expect(r, "links", "lo");
        expect(r, "nofile", "256");
        expect(r, "core", "0");
        expect(r, "cwd", "/");
        /* Nothing of ours; bwrap always sets PWD to the --chdir directory. */
        expect(r, "env", "PWD=/");
        expect(r, "hostname", "nifkit-host");
        static const char *const dev[] = { "null", "zero", "random", "urandom", NULL };
        value(r, "dev", buf, sizeof buf);
        expect_subset("/dev", buf, dev);
        for (const char *const *d = dev; *d; d++)
                if (!has_item(buf, *d))
                        fail_msg("/dev/%s missing: %s", *d, buf);
        /* Nothing of the machine's root but what the binds needed (and
         * /sys's two CPU lists, which the sandbox_bwrap run checks). */
        value(r, "root", buf, sizeof buf);
        for (const char *const *d = (const char *const[]) { "etc", "home", "root", "var", "run", "boot", NULL };
             *d; d++)
                if (has_item(buf, *d))
                        fail_msg("/%s is visible in the sandbox: %s", *d, buf);
}

static void test_sandbox_report(void **state)
{
        skip_unless_bwrap();
        /* A descriptor without close-on-exec must not reach the host. */
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(null >= 0);
        int leak = fcntl(null, F_DUPFD, 20);
        assert_true(leak >= 20);
        close(null);
        struct probe p;
        start_probe(&p);
        close(leak);

        say(&p, "report");
        char r[16384];
        struct pollfd pfd = { .fd = p.fd, .events = POLLIN };
        assert_int_equal(poll(&pfd, 1, 10000), 1);
        ssize_t n = recv(p.fd, r, sizeof r - 1, 0);
        assert_true(n > 0);
        r[n] = '\0';

        check_ids(r);
        check_outside_ids(&p);
        check_privileges(r);
        char fds[256];
        value(r, "fds", fds, sizeof fds);
        expect_subset("fds", fds, (const char *const[]) { "0", "1", "2", "3", NULL });
        assert_true(has_item(fds, "3"));
        /* Never the caller's stdio: /dev/null and two pipes. */
        expect(r, "fd0", "/dev/null");
        char fd[64];
        if (strncmp(value(r, "fd1", fd, sizeof fd), "pipe:", 5) != 0)
                fail_msg("stdout is %s, not a pipe", fd);
        if (strncmp(value(r, "fd2", fd, sizeof fd), "pipe:", 5) != 0)
                fail_msg("stderr is %s, not a pipe", fd);
        check_mounts(r);
        check_namespaces(r);
        check_rest(r);

        if (p.child.cgroup) {
                /* The leaf holds the host and nothing else: the pid it
                 * lists is pid 1 in its own namespace. */
                char path[4200], line[256];
                snprintf(path, sizeof path, "%s/cgroup.procs", nk_cgroup_path(p.child.cgroup));
                FILE *f = fopen(path, "re");
                assert_non_null(f);
                assert_non_null(fgets(line, sizeof line, f));
                assert_null(fgets(line + 128, 128, f));
                fclose(f);
                snprintf(path, sizeof path, "/proc/%d/status", atoi(line));
                f = fopen(path, "re");
                assert_non_null(f);
                bool pid1 = false;
                while (fgets(line, sizeof line, f))
                        if (strncmp(line, "NSpid:", 6) == 0)
                                pid1 = strcmp(strrchr(line, '\t') + 1, "1\n") == 0;
                fclose(f);
                assert_true(pid1);
                printf("# cgroup leaf %s holds the host, pid 1 of its namespace, alone\n",
                       nk_cgroup_path(p.child.cgroup));
        } else {
                printf("# no cgroup v2 leaf on this machine: its placement is not checked here\n");
        }
        fflush(stdout);

        say(&p, "exit 0");
        struct nk_child_exit ex;
        finish(&p, &ex);
        assert_int_equal(ex.signo, 0);
        assert_int_equal(ex.status, 0);
}

/* ---- one plan, two launchers ------------------------------------------------------- */

static int cmp_line(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The probe's "sandbox" lines under launcher, sorted; n set. */
static char **sandbox_lines(const struct nk_launcher *launcher, size_t *ret_n, char **ret_text)
{
        struct probe p;
        struct nk_sandbox_error err = {};
        struct nk_sandbox_config sc = default_config();
        int r = launch_probe_with(launcher, &p, need_env("NK_BWRAP_PROBE"), need_env("NK_TEST_NIF_GOOD"), &sc, &err);
        if (r < 0)
                fail_msg("%s: launch: %d %s", launcher->name, r, err.msg);
        say(&p, "sandbox");
        size_t cap = 1 << 20, len = 0;
        char *text = malloc(cap + 1);
        assert_non_null(text);
        for (;;) {
                struct pollfd pfd = { .fd = p.fd, .events = POLLIN };
                assert_int_equal(poll(&pfd, 1, 10000), 1);
                ssize_t n = recv(p.fd, text + len, cap - len, 0);
                assert_true(n >= 0);
                if (n == 0)
                        break;
                len += (size_t) n;
                assert_true(len < cap);
        }
        text[len] = '\0';
        say(&p, "exit 0");
        struct nk_child_exit ex;
        assert_int_equal(launcher->wait(&p.child, 10000, &ex), 0);
        nk_child_release(&p.child);
        close(p.fd);

        size_t n = 0, lcap = 1024;
        char **lines = malloc(lcap * sizeof *lines);
        assert_non_null(lines);
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                if (n == lcap) {
                        lcap *= 2;
                        lines = realloc(lines, lcap * sizeof *lines);
                        assert_non_null(lines);
                }
                lines[n++] = l;
        }
        qsort(lines, n, sizeof *lines, cmp_line);
        *ret_n = n;
        *ret_text = text;
        return lines;
}

/* Both launchers consume one plan: for one config the host sees the same
 * files, mount points, rlimits, privileges and filter under each. */
static void test_same_sandbox_as_native(void **state)
{
        skip_unless_bwrap();
        size_t nn, nb;
        char *tn, *tb;
        char **native = sandbox_lines(&nk_launcher_native, &nn, &tn);
        char **bwrap = sandbox_lines(&nk_launcher_bwrap, &nb, &tb);
        size_t i = 0, j = 0, differ = 0, paths = 0;
        while (i < nn || j < nb) {
                int c = i == nn ? 1 : j == nb ? -1 : strcmp(native[i], bwrap[j]);
                if (c == 0) {
                        paths += strncmp(native[i], "path=", 5) == 0;
                        i++, j++;
                        continue;
                }
                printf("# %s: %s\n", c < 0 ? "native only" : "bwrap only", c < 0 ? native[i] : bwrap[j]);
                differ++;
                if (c < 0)
                        i++;
                else
                        j++;
        }
        printf("# %zu lines compared, %zu paths visible under both launchers\n", nn, paths);
        fflush(stdout);
        /* Something was seen, and what a host sees is the policy's. */
        assert_true(paths > 10);
        assert_int_equal(differ, 0);
        free(native);
        free(bwrap);
        free(tn);
        free(tb);
}

static void test_exit_status(void **state)
{
        skip_unless_bwrap();
        struct probe p;
        start_probe(&p);
        say(&p, "exit 3");
        struct nk_child_exit ex;
        finish(&p, &ex);
        assert_int_equal(ex.signo, 0);
        assert_int_equal(ex.status, 3);
}

static void test_crash_is_a_signal(void **state)
{
        skip_unless_bwrap();
        struct probe p;
        start_probe(&p);
        say(&p, "crash");
        struct nk_child_exit ex;
        finish(&p, &ex);
        assert_int_equal(ex.signo, SIGSEGV);
        assert_int_equal(ex.status, 0);
}

static void test_kill_and_wait(void **state)
{
        skip_unless_bwrap();
        struct probe p;
        start_probe(&p);
        /* A round trip first: the probe is past bwrap's set-up (its death
         * signal armed) and reading, however slow the machine (the qemu
         * guest is), before it is told to hang and killed. */
        say(&p, "report");
        char r[16384];
        struct pollfd ready = { .fd = p.fd, .events = POLLIN };
        assert_int_equal(poll(&ready, 1, 60000), 1);
        assert_true(recv(p.fd, r, sizeof r, 0) > 0);
        say(&p, "hang");
        struct nk_child_exit ex;
        assert_int_equal(nk_launcher_bwrap.wait(&p.child, 100, &ex), -ETIMEDOUT);
        assert_int_equal(nk_launcher_bwrap.kill(&p.child, SIGKILL), 0);
        assert_int_equal(nk_launcher_bwrap.wait(&p.child, 10000, &ex), 0);
        assert_int_equal(ex.signo, SIGKILL);
        /* The host died with its monitor: the channel's other end is gone.
         * A host killed before it read "hang" leaves it unread in its end,
         * and the close then reads as a reset (AF_UNIX): both say gone. */
        struct pollfd pfd = { .fd = p.fd, .events = POLLIN };
        assert_int_equal(poll(&pfd, 1, 10000), 1);
        char c;
        ssize_t n = recv(p.fd, &c, 1, 0);
        if (!(n == 0 || (n < 0 && errno == ECONNRESET)))
                fail_msg("the channel of a killed host: recv gave %zd (%s)", n, n < 0 ? strerror(errno) : "data");
        assert_int_equal(nk_launcher_bwrap.kill(&p.child, SIGKILL), -ESRCH);
        assert_int_equal(nk_launcher_bwrap.wait(&p.child, 0, &ex), -ECHILD);
        nk_child_release(&p.child);
        close(p.fd);
}

/* Where SIGCHLD is ignored, as in BEAM, statuses and signals still come
 * back, whether the kernel reaps bwrap's monitor itself (Linux before
 * 6.15 does once it has exec'd) or not: from waitid, the pidfd, or what
 * bwrap wrote to its --json-status-fd. */
static void test_sigchld_ignored(void **state)
{
        skip_unless_bwrap();
        struct sigaction ign = { .sa_handler = SIG_IGN }, old;
        assert_int_equal(sigaction(SIGCHLD, &ign, &old), 0);
        struct probe p, q;
        start_probe(&p);
        start_probe(&q);
        say(&p, "exit 3");
        say(&q, "crash");
        struct nk_child_exit ep, eq;
        int rp = nk_launcher_bwrap.wait(&p.child, 10000, &ep);
        int rq = nk_launcher_bwrap.wait(&q.child, 10000, &eq);
        sigaction(SIGCHLD, &old, NULL);
        nk_child_release(&p.child);
        nk_child_release(&q.child);
        close(p.fd);
        close(q.fd);
        assert_int_equal(rp, 0);
        assert_int_equal(ep.signo, 0);
        assert_int_equal(ep.status, 3);
        assert_int_equal(rq, 0);
        assert_int_equal(eq.signo, SIGSEGV);
        assert_int_equal(eq.status, 0);
}

static void copy_file(const char *from, const char *to)
{
        int in = open(from, O_RDONLY | O_CLOEXEC);
        int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        assert_true(in >= 0 && out >= 0);
        char buf[65536];
        ssize_t n;
        while ((n = read(in, buf, sizeof buf)) > 0)
                assert_int_equal(write(out, buf, (size_t) n), n);
        assert_int_equal(n, 0);
        close(in);
        close(out);
}

/* A host binary and library that live under /tmp (a build tree there)
 * are still found once the sandbox has its own /tmp. */
static void test_binaries_under_tmp(void **state)
{
        skip_unless_bwrap();
        char dir[] = "/tmp/nk-bwrap-tmp-XXXXXX";
        assert_non_null(mkdtemp(dir));
        assert_int_equal(chmod(dir, 0755), 0);
        char probe[128], lib[128];
        snprintf(probe, sizeof probe, "%s/probe", dir);
        snprintf(lib, sizeof lib, "%s/nif.so", dir);
        copy_file(need_env("NK_BWRAP_PROBE"), probe);
        copy_file(need_env("NK_TEST_NIF_GOOD"), lib);

        struct probe p;
        struct nk_sandbox_error err = {};
        struct nk_sandbox_config sc = default_config();
        int r = launch_probe_at(&p, probe, lib, &sc, &err);
        if (r < 0)
                fail_msg("launch from %s: %s", dir, err.msg);
        say(&p, "report");
        struct pollfd pfd = { .fd = p.fd, .events = POLLIN };
        assert_int_equal(poll(&pfd, 1, 10000), 1);
        char rep[16384], m[1024];
        ssize_t n = recv(p.fd, rep, sizeof rep - 1, 0);
        if (n <= 0)
                fail_msg("the probe under %s did not run", dir);
        rep[n] = '\0';
        if (!report_mount(rep, "/tmp", m, sizeof m) || !strstr(m, "size=16384k"))
                fail_msg("/tmp is not the sandbox's own: %s", m);
        if (!report_mount(rep, probe, m, sizeof m) || !strstr(m, " ro,"))
                fail_msg("%s is not bound read-only: %s", probe, m);
        say(&p, "exit 0");
        struct nk_child_exit ex;
        finish(&p, &ex);
        assert_int_equal(ex.status, 0);
        unlink(probe);
        unlink(lib);
        rmdir(dir);
}

/* What the host writes to stdout and stderr reaches the caller's, through
 * the launcher's pipes. */
static void test_output_reaches_caller(void **state)
{
        skip_unless_bwrap();
        char out_path[] = "/tmp/nk-bwrap-out-XXXXXX", err_path[] = "/tmp/nk-bwrap-err-XXXXXX";
        int out = mkstemp(out_path), errf = mkstemp(err_path);
        assert_true(out >= 0 && errf >= 0);
        fflush(stdout);
        fflush(stderr);
        int saved_out = dup(1), saved_err = dup(2);
        assert_true(saved_out >= 0 && saved_err >= 0);
        assert_true(dup2(out, 1) >= 0 && dup2(errf, 2) >= 0);

        /* The copies go to whatever 1 and 2 are when they are made: keep
         * them redirected until the lines arrived. */
        struct probe p;
        start_probe(&p);
        say(&p, "say hello from the sandbox");
        say(&p, "exit 0");
        struct nk_child_exit ex;
        finish(&p, &ex);

        char buf[256] = "";
        bool seen = false;
        for (int i = 0; i < 100 && !seen; i++) {
                ssize_t n = pread(out, buf, sizeof buf - 1, 0);
                buf[n > 0 ? n : 0] = '\0';
                char b2[256] = "";
                ssize_t m = pread(errf, b2, sizeof b2 - 1, 0);
                b2[m > 0 ? m : 0] = '\0';
                seen = strstr(buf, "hello from the sandbox (stdout)") && strstr(b2, "hello from the sandbox (stderr)");
                if (!seen)
                        usleep(20 * 1000);
        }
        dup2(saved_out, 1);
        dup2(saved_err, 2);
        close(saved_out);
        close(saved_err);
        close(out);
        close(errf);
        unlink(out_path);
        unlink(err_path);
        assert_int_equal(ex.status, 0);
        if (!seen)
                fail_msg("the host's output did not reach the caller's stdout and stderr");
}

static void *start_in_thread(void *arg)
{
        start_probe(arg);
        return NULL;
}

/* --die-with-parent follows the parent thread: a host started by a thread
 * that then exits must still run. */
static void test_outlives_starting_thread(void **state)
{
        skip_unless_bwrap();
        struct probe p;
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, start_in_thread, &p), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        /* Give a parent-death signal time to arrive, were there one. */
        usleep(200 * 1000);
        say(&p, "report");
        struct pollfd pfd = { .fd = p.fd, .events = POLLIN };
        assert_int_equal(poll(&pfd, 1, 10000), 1);
        char r[16384];
        ssize_t n = recv(p.fd, r, sizeof r - 1, 0);
        if (n <= 0)
                fail_msg("the host died with the thread that started it");
        r[n] = '\0';
        expect(r, "pid", "1");
        say(&p, "exit 0");
        struct nk_child_exit ex;
        finish(&p, &ex);
        assert_int_equal(ex.signo, 0);
        assert_int_equal(ex.status, 0);
}

static void test_required_cgroup(void **state)
{
        skip_unless_bwrap();
        struct nk_sandbox_config sc = default_config();
        sc.cgroup_required = true;
        struct nk_cgroup_info info;
        struct nk_sandbox_error derr = {};
        bool usable = nk_cgroup_detect(NULL, &info, &derr) >= 0 && info.writable &&
                      (info.available & (NK_CG_MEMORY | NK_CG_PIDS | NK_CG_CPU)) ==
                              (NK_CG_MEMORY | NK_CG_PIDS | NK_CG_CPU);
        struct probe p;
        struct nk_sandbox_error err = {};
        int r = launch_probe(&p, &sc, &err);
        if (!usable) {
                /* Refused before anything ran, with the reason. */
                assert_true(r < 0);
                assert_true(err.msg[0] != '\0');
                printf("# refused as expected: %s\n", err.msg);
                return;
        }
        if (r < 0)
                fail_msg("launch with delegated controllers: %s", err.msg);
        assert_non_null(p.child.cgroup);
        char path[4200], line[64];
        snprintf(path, sizeof path, "%s/memory.max", nk_cgroup_path(p.child.cgroup));
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        assert_non_null(fgets(line, sizeof line, f));
        fclose(f);
        assert_string_equal(line, "268435456\n");
        say(&p, "exit 0");
        struct nk_child_exit ex;
        finish(&p, &ex);
        assert_int_equal(ex.status, 0);
}

static void test_bwrap_missing(void **state)
{
        char dir[] = "/tmp/nk-bwrap-none-XXXXXX";
        assert_non_null(mkdtemp(dir));
        struct probe p;
        struct nk_sandbox_error err = {};
        struct nk_sandbox_config sc = default_config();
        /* The caller says where to look; the launcher reads no $PATH. */
        sc.search_path = dir;
        int r = launch_probe(&p, &sc, &err);
        rmdir(dir);
        assert_int_equal(r, -ENOENT);
        assert_string_equal(err.msg,
                            "bubblewrap (bwrap) not found: install the bubblewrap package or use the native launcher");
}

/* A bwrap that refuses, as one does where user namespaces are off: its
 * message reaches the error instead of an undrained pipe. */
static void test_bwrap_refusal_said(void **state)
{
        char dir[] = "/tmp/nk-bwrap-refuses-XXXXXX", fake[64];
        assert_non_null(mkdtemp(dir));
        assert_int_equal(chmod(dir, 0755), 0);  /* bwrap runs as the sandbox's user */
        snprintf(fake, sizeof fake, "%s/bwrap", dir);
        FILE *f = fopen(fake, "w");
        assert_non_null(f);
        fputs("#!/bin/sh\n"
              "[ \"$1\" = --version ] && { echo 'bubblewrap 0.8.0'; exit 0; }\n"
              "echo 'bwrap: setting up uid map: Permission denied' >&2\n"
              "exit 1\n", f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(fake, 0755), 0);
        struct probe p;
        struct nk_sandbox_error err = {};
        struct nk_sandbox_config sc = default_config();
        sc.search_path = dir;
        int r = launch_probe(&p, &sc, &err);
        unlink(fake);
        rmdir(dir);
        printf("# %s\n", err.msg);
        assert_true(r < 0);
        assert_non_null(strstr(err.msg, "bwrap could not build the sandbox for "));
        assert_non_null(strstr(err.msg, "(exit status 1): bwrap: setting up uid map: Permission denied"));
}

/* Whether bwrap can build a sandbox here, as the id the launcher runs it as. */
static int detect(void **state)
{
        const char *sanitize = getenv("NK_SANITIZE");
        if (sanitize && *sanitize && strcmp(sanitize, "none") != 0) {
                skip_reason = "sanitized build: the sanitizer runtime's start-up calls are denied by the host's "
                              "seccomp filter";
                return 0;
        }
        char path[4096];
        if (nk_bwrap_find(getenv("PATH"), path, sizeof path) < 0) {
                skip_reason = "bubblewrap (bwrap) is not installed";
                return 0;
        }
        uid_t ou, iu;
        gid_t og, ig;
        nk_userns_default_ids(&ou, &og, &iu, &ig);
        char cmd[8192];
        if (geteuid() != ou)
                snprintf(cmd, sizeof cmd,
                         "setpriv --reuid %u --regid %u --clear-groups %s --unshare-all --unshare-user "
                         "--ro-bind / / true 2>/dev/null",
                         (unsigned) ou, (unsigned) og, path);
        else
                snprintf(cmd, sizeof cmd, "%s --unshare-all --unshare-user --ro-bind / / true 2>/dev/null", path);
        if (system(cmd) != 0)
                skip_reason = "bwrap cannot create its namespaces on this machine (unprivileged user namespaces?)";
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_version),
                cmocka_unit_test(test_parse_child_pid),
                cmocka_unit_test(test_parse_exit_code),
                cmocka_unit_test(test_translate_exit),
                cmocka_unit_test(test_find),
                cmocka_unit_test(test_bwrap_missing),
                cmocka_unit_test(test_bwrap_refusal_said),
                cmocka_unit_test(test_sandbox_report),
                cmocka_unit_test(test_same_sandbox_as_native),
                cmocka_unit_test(test_exit_status),
                cmocka_unit_test(test_crash_is_a_signal),
                cmocka_unit_test(test_kill_and_wait),
                cmocka_unit_test(test_outlives_starting_thread),
                cmocka_unit_test(test_binaries_under_tmp),
                cmocka_unit_test(test_output_reaches_caller),
                cmocka_unit_test(test_sigchld_ignored),
                cmocka_unit_test(test_required_cgroup),
        };
        return cmocka_run_group_tests(tests, detect, NULL);
}
