/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The capability broker end to end: libnifkit starts nifkit-host with a
 * policy, the test NIF (nif_broker.c) uses files and sockets through the
 * interposed libc, and every escape must fail. Runs with the launcher
 * NK_BROKER_LAUNCHER names: "direct" (the development launcher), "native"
 * or "bwrap" (the sandbox; skipped, saying why, where it cannot start).
 *
 * Files live in a directory under the build tree, not /tmp: /tmp is the
 * host's own and never goes through the broker. Network tests use loopback
 * only, with listeners this test starts.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <ei.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker.h"
#include "macro.h"
#include "nifkit.h"
#include "operator.h"
#include "nifkit_policy.h"

static char work[PATH_MAX];
static bool sandboxed;
static const char *launcher = "unsandboxed-development";
static bool have_v6;
static int port_echo4, port_echo6, port_denied, port_listen, port_udp;
static int denied_accepts;

/* ---- helpers ---------------------------------------------------------------- */

static const char *need_env(const char *name)
{
        const char *v = getenv(name);
        if (!v || !*v)
                fail_msg("%s is not set: run this test through meson test", name);
        return v;
}

static void write_text(const char *rel, const char *text)
{
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", work, rel);
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static char *wpath(const char *rel)
{
        static char bufs[8][PATH_MAX];
        static int i;
        char *b = bufs[i++ % 8];
        snprintf(b, PATH_MAX, "%s/%s", work, rel);
        return b;
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        assert_non_null(d);
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1;
}

static int free_port(int type)
{
        int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof in;
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &in, sizeof in), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &in, &l), 0);
        close(fd);
        return ntohs(in.sin_port);
}

struct server {
        int fd;
        bool echo;
};

static void *server_main(void *arg)
{
        struct server *s = arg;
        for (;;) {
                int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        return NULL;
                if (!s->echo) {
                        __atomic_add_fetch(&denied_accepts, 1, __ATOMIC_SEQ_CST);
                        close(c);
                        continue;
                }
                char buf[256] = "echo:";
                ssize_t n = read(c, buf + 5, sizeof buf - 5);
                if (n > 0 && write(c, buf, (size_t) n + 5) < 0)
                        n = -1;
                close(c);
        }
}

/* A loopback listener on an ephemeral port, served by a thread. */
static int start_server(int family, bool echo)
{
        struct sockaddr_storage ss = {};
        socklen_t len;
        if (family == AF_INET) {
                struct sockaddr_in *in = (struct sockaddr_in *) &ss;
                in->sin_family = AF_INET;
                in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                len = sizeof *in;
        } else {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
                in6->sin6_family = AF_INET6;
                in6->sin6_addr = in6addr_loopback;
                len = sizeof *in6;
        }
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &ss, len) < 0 || listen(fd, 64) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        assert_int_equal(getsockname(fd, (struct sockaddr *) &ss, &len), 0);
        struct server *s = malloc(sizeof *s);
        *s = (struct server) { .fd = fd, .echo = echo };
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, server_main, s), 0);
        pthread_detach(t);
        return ntohs(family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                       : ((struct sockaddr_in6 *) &ss)->sin6_port);
}

/* ---- hosts and calls -------------------------------------------------------- */

struct host {
        nk_host *h;
        struct nk_policy *policy;
};

static char *policy_text(const char *mode, const char *files, const char *network)
{
        char *s = NULL;
        assert_true(asprintf(&s,
                             "{\"nifkit_policy\": 1, \"launcher\": \"%s\", \"cgroup\": \"best-effort\", "
                             "\"mode\": \"%s\", \"limits\": {\"tmp_mb\": 16, \"open_files\": 256, "
                             "\"call_timeout_ms\": 60000}, \"files\": [%s], \"network\": %s}",
                             launcher, mode, files, network) > 0);
        return s;
}

/* Starts the test NIF under the policy text; false (and a skip) if the
 * sandbox cannot start on this machine. */
static bool host_start_text(struct host *hs, const char *text)
{
        struct nk_policy_error perr;
        *hs = (struct host) {};
        if (nk_policy_load_string(text, "test-policy", &hs->policy, &perr) < 0)
                fail_msg("policy: %s\n%s", perr.msg, text);
        hs->h = nk_operator_host_new(NULL);
        nk_host_set_library(hs->h, need_env("NK_TEST_NIF_BROKER"));
        nk_host_set_policy(hs->h, hs->policy);
        nk_error err = {};
        if (nk_host_start(hs->h, NULL, 0, &err) < 0) {
                if (sandboxed) {
                        print_message("SKIP: the %s sandbox cannot start here: %s\n", launcher, err.msg);
                        nk_host_free(hs->h);
                        nk_policy_free(hs->policy);
                        return false;
                }
                fail_msg("start: %s", err.msg);
        }
        return true;
}

static void host_free(struct host *hs)
{
        nk_host_free(hs->h);
        nk_policy_free(hs->policy);
}

/* Calls name with args described by fmt: 'b' a string as a binary, 'i'
 * an int. */
static void call(struct host *hs, const char *name, nk_result *res, const char *fmt, ...)
{
        ei_x_buff x;
        va_list ap;
        ei_x_new_with_version(&x);
        size_t n = strlen(fmt);
        if (n)
                ei_x_encode_list_header(&x, (long) n);
        va_start(ap, fmt);
        for (const char *f = fmt; *f; f++) {
                if (*f == 'b') {
                        const char *s = va_arg(ap, const char *);
                        ei_x_encode_binary(&x, s, (long) strlen(s));
                } else
                        ei_x_encode_long(&x, va_arg(ap, int));
        }
        va_end(ap);
        ei_x_encode_empty_list(&x);
        int i = nk_host_find_function(hs->h, name, (unsigned) n);
        if (i < 0)
                fail_msg("no function %s/%zu", name, n);
        nk_error err = {};
        int r = nk_host_call(hs->h, (unsigned) i, NULL, 0, (uint8_t *) x.buff, (size_t) x.index, res, &err);
        ei_x_free(&x);
        if (r < 0)
                fail_msg("%s: %s", name, err.msg);
        assert_int_equal(res->exception, 0);
}

/* {error, E} → E; anything else → 0. */
static int res_errno(const nk_result *res)
{
        int idx = 0, v, arity;
        char atom[MAXATOMLEN];
        long e;
        if (ei_decode_version((char *) res->etf, &idx, &v) < 0 ||
            ei_decode_tuple_header((char *) res->etf, &idx, &arity) < 0 || arity != 2 ||
            ei_decode_atom((char *) res->etf, &idx, atom) < 0 || strcmp(atom, "error") != 0 ||
            ei_decode_long((char *) res->etf, &idx, &e) < 0)
                return 0;
        return (int) e;
}

/* {ok, Bin} → Bin as a string (static buffer); else NULL. */
static const char *res_okbin(const nk_result *res)
{
        static char buf[8192];
        int idx = 0, v, arity;
        char atom[MAXATOMLEN];
        long len;
        if (ei_decode_version((char *) res->etf, &idx, &v) < 0 ||
            ei_decode_tuple_header((char *) res->etf, &idx, &arity) < 0 || arity != 2 ||
            ei_decode_atom((char *) res->etf, &idx, atom) < 0 || strcmp(atom, "ok") != 0 ||
            ei_decode_binary((char *) res->etf, &idx, buf, &len) < 0)
                return NULL;
        buf[len] = '\0';
        return buf;
}

static long res_long(const nk_result *res, int field)
{
        int idx = 0, v, arity;
        long out = -1;
        char atom[MAXATOMLEN];
        ei_decode_version((char *) res->etf, &idx, &v);
        if (ei_decode_tuple_header((char *) res->etf, &idx, &arity) == 0) {
                for (int i = 0; i < arity; i++) {
                        long l;
                        if (ei_decode_long((char *) res->etf, &idx, &l) == 0) {
                                if (i == field)
                                        out = l;
                        } else if (ei_decode_atom((char *) res->etf, &idx, atom) < 0)
                                ei_skip_term((char *) res->etf, &idx);
                }
                return out;
        }
        ei_decode_long((char *) res->etf, &idx, &out);
        return out;
}

static const char *text(const nk_result *res)
{
        static char buf[1024];
        int idx = 0, v;
        char *s = NULL;
        ei_decode_version((char *) res->etf, &idx, &v);
        if (ei_s_print_term(&s, (char *) res->etf, &idx) < 0)
                return "(unprintable)";
        snprintf(buf, sizeof buf, "%s", s);
        free(s);
        return buf;
}

static void expect_read(struct host *hs, const char *path, const char *content)
{
        nk_result res;
        call(hs, "read_file", &res, "b", path);
        const char *got = res_okbin(&res);
        if (!got || strcmp(got, content) != 0)
                fail_msg("read %s: want \"%s\", got %s", path, content, text(&res));
        nk_result_free(&res);
}

static void expect_open_errno(struct host *hs, const char *path, int flags, int want)
{
        nk_result res;
        call(hs, "open", &res, "bi", path, flags);
        int e = res_errno(&res);
        if (e != want)
                fail_msg("open %s (flags 0x%x): want errno %d (%s), got %s", path, flags, want, strerror(want),
                         text(&res));
        nk_result_free(&res);
}

/* ---- fixture ------------------------------------------------------------------ */

static char *main_policy(void)
{
        char files[8 * PATH_MAX], net[1024], v6[64] = "";
        snprintf(files, sizeof files,
                 "{\"path\": \"%s/ro\", \"access\": \"read\"}, {\"path\": \"%s/nosym\", \"access\": \"read\", "
                 "\"no_symlinks\": true}, {\"path\": \"%s/rw\", \"access\": \"read-write\"}, "
                 "{\"path\": \"%s/cr\", \"access\": \"create\"}, {\"path\": \"%s/par\", \"access\": \"read\"}, "
                 "{\"path\": \"%s/cr/keep\", \"access\": \"read\"}",
                 work, work, work, work, work, work);
        if (have_v6)
                snprintf(v6, sizeof v6, ", \"[::1]:%d\"", port_echo6);
        snprintf(net, sizeof net,
                 "{\"connect\": [\"127.0.0.1:%d\"%s], \"listen\": [\"127.0.0.1:%d\", \"udp:127.0.0.1:%d\"], "
                 "\"resolve\": [\"localhost\"]}",
                 port_echo4, v6, port_listen, port_udp);
        return policy_text("enforce", files, net);
}

static int setup(void **state)
{
        const char *base = need_env("NK_BROKER_WORKDIR");
        /* A build tree under /tmp (a checkout there) would put the files on
         * the host's own side of the interposer, where the broker never sees
         * them: take them to /var/tmp instead. */
        if (strncmp(base, "/tmp", 4) == 0 && (base[4] == '\0' || base[4] == '/'))
                base = "/var/tmp";
        const char *l = getenv("NK_BROKER_LAUNCHER");
        sandboxed = l && strcmp(l, "direct") != 0;
        if (sandboxed)
                launcher = l;
        snprintf(work, sizeof work, "%s/work-XXXXXX", base);
        assert_non_null(mkdtemp(work));
        static const char *const dirs[] = { "ro", "ro/sub", "nosym", "rw", "cr", "par", "sibling", "cr/keep", "cr/sub" };
        for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
                assert_int_equal(mkdir(wpath(dirs[i]), 0755), 0);
        write_text("ro/hello.txt", "hello");
        write_text("ro/sub/inner.txt", "inner");
        write_text("secret.txt", "SECRET");
        write_text("nosym/f", "f");
        write_text("rw/data.txt", "0123456789");
        write_text("sibling/other.txt", "other");
        write_text("ro/race", "safe");
        write_text("cr/keep/kept.txt", "kept");
        for (int i = 0; i < 8; i++) {
                char n[16], c[16];
                snprintf(n, sizeof n, "par/f%d", i);
                snprintf(c, sizeof c, "f%d", i);
                write_text(n, c);
        }
        assert_int_equal(symlink("/etc/passwd", wpath("ro/abs")), 0);
        assert_int_equal(symlink("../secret.txt", wpath("ro/rel")), 0);
        assert_int_equal(symlink("hello.txt", wpath("ro/inlink")), 0);
        assert_int_equal(symlink("/proc/self/root/etc/passwd", wpath("ro/procroot")), 0);
        assert_int_equal(symlink("f", wpath("nosym/link")), 0);
        assert_int_equal(symlink(wpath("par/f0"), wpath("ro/topar")), 0);
        assert_int_equal(link(wpath("secret.txt"), wpath("ro/hard")), 0);
        assert_int_equal(mkfifo(wpath("ro/fifo"), 0600), 0);

        port_echo4 = start_server(AF_INET, true);
        port_echo6 = start_server(AF_INET6, true);
        have_v6 = port_echo6 > 0;
        port_denied = start_server(AF_INET, false);
        port_listen = free_port(SOCK_STREAM);
        port_udp = free_port(SOCK_DGRAM);
        assert_true(port_echo4 > 0 && port_denied > 0);

        struct host *hs = calloc(1, sizeof *hs);
        _cleanup_free_ char *p = main_policy();
        if (!host_start_text(hs, p)) {
                free(hs);
                *state = NULL;
                return 0;
        }
        *state = hs;
        return 0;
}

static int teardown(void **state)
{
        struct host *hs = *state;
        if (hs) {
                host_free(hs);
                free(hs);
        }
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
        return system(cmd) == 0 ? 0 : -1;
}

#define HOST(state)                          \
        struct host *hs = *(state);          \
        if (!hs) {                           \
                skip();                      \
                return;                      \
        }

/* ---- files ------------------------------------------------------------------- */

static void test_read_granted_files(void **state)
{
        HOST(state);
        expect_read(hs, wpath("ro/hello.txt"), "hello");
        expect_read(hs, wpath("ro/sub/inner.txt"), "inner");
        /* A symlink that stays beneath the grant is followed. */
        expect_read(hs, wpath("ro/inlink"), "hello");
        /* An absolute symlink from one grant into another. */
        expect_read(hs, wpath("ro/topar"), "f0");
        /* ".." that stays beneath the grant is fine too. */
        expect_read(hs, wpath("ro/sub/../hello.txt"), "hello");
        /* Relative paths are relative to the runtime's working directory
         * at the time of the call (the VM's: file:set_cwd/1 moves it). */
        char here[PATH_MAX];
        assert_non_null(getcwd(here, sizeof here));
        assert_int_equal(chdir("/"), 0);
        expect_read(hs, wpath("ro/hello.txt") + 1, "hello");
        assert_int_equal(chdir(wpath("ro")), 0);
        expect_read(hs, "hello.txt", "hello");
        expect_read(hs, "sub/../sub/inner.txt", "inner");
        nk_result cwd;
        call(hs, "cwd", &cwd, "");
        assert_string_equal(res_okbin(&cwd), wpath("ro"));
        nk_result_free(&cwd);
        /* Climbing out of every grant is refused like any ungranted path. */
        expect_open_errno(hs, "../secret.txt", O_RDONLY, ENOENT);
        /* From a directory no grant covers, ".." first goes up from it,
         * then down into a grant, as BEAM would open it. */
        assert_int_equal(chdir(wpath("sibling")), 0);
        expect_read(hs, "../ro/hello.txt", "hello");
        assert_int_equal(chdir(here), 0);
        nk_result res;
        call(hs, "stat_size", &res, "b", wpath("ro/hello.txt"));
        assert_int_equal(res_long(&res, 1), 5);
        nk_result_free(&res);
        call(hs, "explicit_open", &res, "b", wpath("ro/sub/inner.txt"));
        assert_string_equal(res_okbin(&res), "inner");
        nk_result_free(&res);
}

static void expect_unlink(struct host *hs, const char *path, int how, int want)
{
        nk_result res;
        call(hs, "unlink", &res, "bi", path, how);
        int e = res_errno(&res);
        if (e != want)
                fail_msg("unlink %s: want errno %d (%s), got %s", path, want, strerror(want), text(&res));
        nk_result_free(&res);
}

/* What a NIF may create it may remove (bitcask unlinks its lock files),
 * and nothing else: not beneath a grant that only reads, not outside every
 * grant, not by climbing out, not a directory, and a symlink goes itself,
 * never its target. */
static void test_unlink(void **state)
{
        HOST(state);
        write_text("cr/gone.txt", "x");
        expect_unlink(hs, wpath("cr/gone.txt"), 0, 0);
        assert_int_equal(access(wpath("cr/gone.txt"), F_OK), -1);
        write_text("cr/removed.txt", "x");
        expect_unlink(hs, wpath("cr/removed.txt"), 1, 0);
        assert_int_equal(access(wpath("cr/removed.txt"), F_OK), -1);
        expect_unlink(hs, wpath("cr/never-there"), 0, ENOENT);
        expect_unlink(hs, wpath("ro/hello.txt"), 0, EACCES);
        expect_unlink(hs, wpath("rw/data.txt"), 0, EACCES);
        expect_unlink(hs, wpath("secret.txt"), 0, ENOENT);
        expect_unlink(hs, wpath("cr/../secret.txt"), 0, EACCES);
        expect_unlink(hs, wpath("cr/../ro/hello.txt"), 0, EACCES);
        assert_int_equal(mkdir(wpath("cr/dir"), 0755), 0);
        expect_unlink(hs, wpath("cr/dir"), 0, EISDIR);
        assert_int_equal(access(wpath("cr/dir"), F_OK), 0);
        rmdir(wpath("cr/dir"));
        assert_int_equal(symlink(wpath("secret.txt"), wpath("cr/link")), 0);
        expect_unlink(hs, wpath("cr/link"), 0, 0);
        assert_int_equal(access(wpath("secret.txt"), F_OK), 0);
        /* A read-only grant nested in the create grant stays read-only,
         * however the path gets there: by name, through "..", or through a
         * symlink in the create grant. */
        expect_unlink(hs, wpath("cr/keep/kept.txt"), 0, EACCES);
        expect_unlink(hs, wpath("cr/sub/../keep/kept.txt"), 0, EACCES);
        assert_int_equal(symlink("keep", wpath("cr/tokeep")), 0);
        expect_unlink(hs, wpath("cr/tokeep/kept.txt"), 0, EACCES);
        unlink(wpath("cr/tokeep"));
        expect_read(hs, wpath("cr/keep/kept.txt"), "kept");
        /* The host's own directories are not the NIF's to change. */
        expect_unlink(hs, "/tmp/anything", 0, EACCES);
        expect_unlink(hs, "/dev/null", 0, EACCES);
        expect_read(hs, wpath("ro/hello.txt"), "hello");
}

/* A grant beneath /tmp, where mktemp -d puts things, is the broker's: the
 * host's own tmpfs does not hide it. Elsewhere in /tmp the host's own. */
static void test_grant_under_tmp(void **state)
{
        HOST(state);
        char dir[] = "/tmp/nk-broker-grant-XXXXXX";
        assert_non_null(mkdtemp(dir));
        char file[PATH_MAX], files[2 * PATH_MAX];
        snprintf(file, sizeof file, "%s/granted.txt", dir);
        FILE *f = fopen(file, "w");
        assert_non_null(f);
        fputs("from the runtime's /tmp", f);
        fclose(f);
        char outside[PATH_MAX];
        snprintf(outside, sizeof outside, "%s.outside", dir);
        f = fopen(outside, "w");
        assert_non_null(f);
        fclose(f);
        snprintf(files, sizeof files, "{\"path\": \"%s\", \"access\": \"read\"}", dir);
        _cleanup_free_ char *text_ = policy_text("enforce", files, "{}");
        struct host tmp_host;
        if (host_start_text(&tmp_host, text_)) {
                expect_read(&tmp_host, file, "from the runtime's /tmp");
                /* Beside the grant, /tmp is the sandbox's own: the file
                 * the runtime put there is not in it. */
                if (sandboxed)
                        expect_open_errno(&tmp_host, outside, O_RDONLY, ENOENT);
                host_free(&tmp_host);
        }
        unlink(file);
        unlink(outside);
        rmdir(dir);
}

/* /proc is the host's own (its pid namespace's), read as any process reads
 * it; the CPU lists thread pools size themselves by are there too. */
static void test_own_proc(void **state)
{
        HOST(state);
        nk_result res;
        call(hs, "own_status", &res, "");
        long pid = res_long(&res, 1), status_pid = res_long(&res, 2);
        nk_result_free(&res);
        assert_true(pid > 0);
        assert_int_equal(pid, status_pid);
        if (sandboxed)
                assert_int_not_equal(pid, nk_host_pid(hs->h));   /* its own pid namespace */
        call(hs, "read_file", &res, "b", "/proc/cpuinfo");
        assert_non_null(res_okbin(&res));
        nk_result_free(&res);
        call(hs, "read_file", &res, "b", "/proc/meminfo");
        assert_non_null(strstr(res_okbin(&res), "MemTotal:"));
        nk_result_free(&res);
        if (access("/sys/devices/system/cpu/online", R_OK) == 0) {
                call(hs, "read_file", &res, "b", "/sys/devices/system/cpu/online");
                const char *online = res_okbin(&res);
                assert_non_null(online);
                assert_true(online[0] >= '0' && online[0] <= '9');
                nk_result_free(&res);
        }
}

static void test_write_by_access(void **state)
{
        HOST(state);
        nk_result res;
        /* read-write: change an existing file, never create one. */
        call(hs, "write_file", &res, "bbb", wpath("rw/data.txt"), "r+", "ABC");
        assert_string_equal(text(&res), "ok");
        nk_result_free(&res);
        expect_read(hs, wpath("rw/data.txt"), "ABC3456789");
        call(hs, "write_file", &res, "bbb", wpath("rw/new.txt"), "w", "x");
        assert_int_equal(res_errno(&res), EACCES);
        nk_result_free(&res);
        assert_int_equal(access(wpath("rw/new.txt"), F_OK), -1);
        /* create: new files, written through fopen/fwrite. */
        call(hs, "write_file", &res, "bbb", wpath("cr/made.txt"), "w", "made by the NIF");
        assert_string_equal(text(&res), "ok");
        nk_result_free(&res);
        FILE *f = fopen(wpath("cr/made.txt"), "r");
        char buf[64] = "";
        assert_non_null(f);
        assert_non_null(fgets(buf, sizeof buf, f));
        fclose(f);
        assert_string_equal(buf, "made by the NIF");
        /* read: no writing at all. */
        expect_open_errno(hs, wpath("ro/hello.txt"), O_WRONLY, EACCES);
        expect_open_errno(hs, wpath("ro/hello.txt"), O_RDONLY | O_APPEND, EACCES);
        expect_open_errno(hs, wpath("ro/hello.txt"), O_RDONLY | O_TRUNC, EACCES);
        expect_open_errno(hs, wpath("ro/x"), O_RDONLY | O_CREAT, EACCES);
        expect_read(hs, wpath("ro/hello.txt"), "hello");
}

static void test_escapes_fail(void **state)
{
        HOST(state);
        print_message("escapes tried: outside every grant, .., absolute and relative symlinks out, "
                      "symlinks under no_symlinks, the sandbox's /proc/self/root, magic links, directories, "
                      "O_DIRECTORY/O_PATH/O_TMPFILE, FIFOs, PATH_MAX, /tmp/.. \n");
        /* Outside every grant nothing exists; beneath one, what the
         * policy refuses is EACCES. */
        expect_open_errno(hs, wpath("secret.txt"), O_RDONLY, ENOENT);
        expect_open_errno(hs, wpath("sibling/other.txt"), O_RDONLY, ENOENT);
        expect_open_errno(hs, wpath("ro/../secret.txt"), O_RDONLY, EACCES);
        expect_open_errno(hs, wpath("ro/sub/../../secret.txt"), O_RDONLY, EACCES);
        /* An absolute symlink is judged by its target, against every
         * grant: /etc/passwd is in none. A relative one that leaves the
         * grant is refused outright. */
        expect_open_errno(hs, wpath("ro/abs"), O_RDONLY, ENOENT);
        expect_open_errno(hs, wpath("ro/rel"), O_RDONLY, EACCES);
        expect_open_errno(hs, wpath("ro/procroot"), O_RDONLY, ENOENT);
        expect_open_errno(hs, wpath("ro/topar"), O_RDONLY | O_NOFOLLOW, ELOOP);
        expect_open_errno(hs, wpath("ro/sub/../../ro/abs"), O_RDONLY, EACCES);
        expect_open_errno(hs, wpath("nosym/link"), O_RDONLY, ELOOP);
        expect_read(hs, wpath("nosym/f"), "f");
        expect_open_errno(hs, "/etc/passwd", O_RDONLY, ENOENT);
        /* /proc is the host's own: its root is the sandbox's, which holds
         * no /etc/passwd, and its pid 1 is itself. (Unsandboxed, the
         * direct launcher's host sees everything anyway.) */
        if (sandboxed) {
                expect_open_errno(hs, "/proc/self/root/etc/passwd", O_RDONLY, ENOENT);
                expect_open_errno(hs, "/proc/1/root/etc/passwd", O_RDONLY, ENOENT);
        }
        expect_open_errno(hs, "/tmp/../etc/passwd", O_RDONLY, ENOENT);
        expect_open_errno(hs, "../../../../etc/passwd", O_RDONLY, ENOENT);
        /* A directory is never handed out, not even the grant's own. */
        expect_open_errno(hs, wpath("ro"), O_RDONLY, EISDIR);
        expect_open_errno(hs, wpath("ro/sub"), O_RDONLY, EISDIR);
        expect_open_errno(hs, wpath("ro/sub"), O_RDONLY | O_DIRECTORY, EACCES);
        expect_open_errno(hs, wpath("ro/hello.txt"), O_PATH, EACCES);
        expect_open_errno(hs, wpath("cr"), O_RDWR | O_TMPFILE, EACCES);
        /* A FIFO neither blocks the broker nor is handed out. */
        expect_open_errno(hs, wpath("ro/fifo"), O_RDONLY, EACCES);
        /* Longer than PATH_MAX. */
        char *longp = malloc(PATH_MAX + 64);
        snprintf(longp, PATH_MAX + 64, "%s/ro/", work);
        size_t n = strlen(longp);
        memset(longp + n, 'a', PATH_MAX + 10 - n);
        longp[PATH_MAX + 10] = '\0';
        expect_open_errno(hs, longp, O_RDONLY, ENAMETOOLONG);
        free(longp);
}

static void test_hardlink_inside_grant(void **state)
{
        HOST(state);
        /* A hard link made inside the grant (by someone outside the host)
         * is a file in the granted directory: openat2 cannot tell, and the
         * broker opens it. Documented in docs/BROKER.md; the NIF itself
         * cannot make one (see test_link_is_denied). */
        expect_read(hs, wpath("ro/hard"), "SECRET");
}

struct flipper {
        const char *path;
        const char *tmp;
        bool stop;                      /* atomic */
        long flips;
};

static void *flip_main(void *arg)
{
        struct flipper *f = arg;
        char other[PATH_MAX];
        snprintf(other, sizeof other, "%s", f->tmp);
        unlink(other);
        if (symlink("/etc/passwd", other) < 0)
                return NULL;
        /* Each exchange is atomic: the path is always either the file or
         * the symlink to /etc/passwd, and flips as fast as the kernel can. */
        while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
                if (renameat2(AT_FDCWD, other, AT_FDCWD, f->path, RENAME_EXCHANGE) < 0)
                        return NULL;
                f->flips++;
        }
        return NULL;
}

static void test_symlink_race(void **state)
{
        HOST(state);
        struct flipper f = { .path = wpath("ro/race"), .tmp = wpath("race-tmp") };
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, flip_main, &f), 0);
        nk_result res;
        call(hs, "race", &res, "bib", wpath("ro/race"), 10000, "root:");
        __atomic_store_n(&f.stop, true, __ATOMIC_RELAXED);
        pthread_join(t, NULL);
        long opened = res_long(&res, 0), leaked = res_long(&res, 1);
        print_message("race: %ld of 10000 opens succeeded during %ld flips, %ld read /etc/passwd\n", opened,
                      f.flips, leaked);
        assert_int_equal(leaked, 0);
        assert_true(opened > 0);
        assert_true(f.flips > 1000);
        nk_result_free(&res);
}

static void test_parallel_requests(void **state)
{
        HOST(state);
        nk_result res;
        call(hs, "parallel", &res, "bii", wpath("par"), 8, 500);
        assert_string_equal(text(&res), "0");
        nk_result_free(&res);
}

static void test_no_fd_leak(void **state)
{
        HOST(state);
        nk_result res;
        call(hs, "fd_count", &res, "");
        long host_before = res_long(&res, 0);
        nk_result_free(&res);
        /* The broker closes its copy of a descriptor just after sending
         * it, which may be after the call has returned: settle first. */
        usleep(50000);
        int rt_before = count_fds();
        /* 10,000 requests, granted and refused. */
        call(hs, "race", &res, "bib", wpath("ro/hello.txt"), 5000, "x");
        assert_int_equal(res_long(&res, 0), 5000);
        nk_result_free(&res);
        call(hs, "race", &res, "bib", wpath("secret.txt"), 5000, "x");
        assert_int_equal(res_long(&res, 0), 0);
        nk_result_free(&res);
        call(hs, "fd_count", &res, "");
        long host_after = res_long(&res, 0);
        nk_result_free(&res);
        int rt_after = count_fds();
        for (int i = 0; i < 100 && rt_after != rt_before; i++) {
                usleep(10000);
                rt_after = count_fds();
        }
        print_message("fds: host %ld -> %ld, runtime %d -> %d\n", host_before, host_after, rt_before, rt_after);
        assert_int_equal(host_before, host_after);
        assert_int_equal(rt_before, rt_after);
}

/* ---- network ----------------------------------------------------------------- */

static void test_connect(void **state)
{
        HOST(state);
        nk_result res;
        call(hs, "tcp_echo", &res, "bib", "127.0.0.1", port_echo4, "ping");
        assert_non_null(res_okbin(&res));
        assert_string_equal(res_okbin(&res), "echo:ping");
        nk_result_free(&res);
        if (have_v6) {
                call(hs, "tcp_echo", &res, "bib", "::1", port_echo6, "ping6");
                assert_string_equal(res_okbin(&res), "echo:ping6");
                nk_result_free(&res);
        } else
                print_message("no IPv6 loopback here: the [::1] connect is not tried\n");
        /* A name the policy lets the runtime resolve. */
        call(hs, "tcp_echo", &res, "bib", "localhost", port_echo4, "byname");
        if (!res_okbin(&res))
                fail_msg("localhost: %s", text(&res));
        assert_string_equal(res_okbin(&res), "echo:byname");
        nk_result_free(&res);
        /* A loopback port that is not in the policy. */
        call(hs, "tcp_echo", &res, "bib", "127.0.0.1", port_denied, "no");
        assert_int_equal(res_errno(&res), EACCES);
        nk_result_free(&res);
        /* A name that is not: the NIF's getaddrinfo fails, with EACCES. */
        call(hs, "tcp_echo", &res, "bib", "ip6-localhost", port_echo4, "no");
        assert_string_equal(text(&res), "{gai_error, 13}");
        nk_result_free(&res);
        assert_int_equal(__atomic_load_n(&denied_accepts, __ATOMIC_SEQ_CST), 0);
}

static void test_listen(void **state)
{
        HOST(state);
        nk_result res;
        call(hs, "listen_on", &res, "bii", "127.0.0.1", port_listen, 0);
        if (res_long(&res, 1) != port_listen)
                fail_msg("listen: %s", text(&res));
        nk_result_free(&res);
        /* The runtime side reaches the NIF's listener. */
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port_listen),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        assert_int_equal(connect(c, (struct sockaddr *) &in, sizeof in), 0);
        assert_int_equal(write(c, "hi", 2), 2);
        close(c);
        call(hs, "accept_one", &res, "");
        if (!res_okbin(&res) && sandboxed)
                fail_msg("accept: %s", text(&res));
        assert_string_equal(res_okbin(&res), "hi");
        nk_result_free(&res);
        call(hs, "listen_on", &res, "bii", "127.0.0.1", port_udp, 1);
        assert_int_equal(res_long(&res, 1), port_udp);
        nk_result_free(&res);
        /* Not in the policy: another port, TCP where UDP is granted, any
         * address. */
        call(hs, "listen_on", &res, "bii", "127.0.0.1", port_denied + 1, 0);
        assert_int_equal(res_errno(&res), EACCES);
        nk_result_free(&res);
        call(hs, "listen_on", &res, "bii", "0.0.0.0", port_listen, 0);
        assert_int_equal(res_errno(&res), EACCES);
        nk_result_free(&res);
        call(hs, "close_all", &res, "");
        nk_result_free(&res);
}

/* ---- audit ------------------------------------------------------------------- */

static void test_audit_and_suggest(void **state)
{
        HOST(state);
        char log[PATH_MAX], files[PATH_MAX + 64];
        snprintf(log, sizeof log, "%s/audit.log", work);
        setenv("NIFKIT_AUDIT_LOG", log, 1);
        snprintf(files, sizeof files, "{\"path\": \"%s/ro\", \"access\": \"read\"}", work);
        _cleanup_free_ char *p = policy_text("audit", files,
                                             "{\"connect\": [], \"listen\": [], \"resolve\": []}");
        struct host a;
        bool up = host_start_text(&a, p);
        unsetenv("NIFKIT_AUDIT_LOG");
        if (!up)
                return;
        /* Outside the grants, allowed and logged. */
        expect_read(&a, wpath("sibling/other.txt"), "other");
        expect_read(&a, wpath("ro/hello.txt"), "hello");
        nk_result res;
        call(&a, "write_file", &res, "bbb", wpath("cr/audited.txt"), "w", "a");
        assert_string_equal(text(&res), "ok");
        nk_result_free(&res);
        call(&a, "tcp_echo", &res, "bib", "127.0.0.1", port_echo4, "audit");
        assert_string_equal(res_okbin(&res), "echo:audit");
        nk_result_free(&res);
        host_free(&a);

        FILE *in = fopen(log, "r");
        assert_non_null(in);
        char *suggested = NULL;
        size_t slen = 0;
        FILE *out = open_memstream(&suggested, &slen);
        char err[256] = "";
        int r = nk_audit_suggest(in, out, err, sizeof err);
        fclose(in);
        fclose(out);
        if (r < 0)
                fail_msg("suggest: %s", err);
        print_message("suggested:\n%s", suggested);

        /* The suggestion, made a policy for this launcher, allows what was
         * observed and nothing beside it. */
        struct nk_policy *sp;
        struct nk_policy_error perr;
        if (nk_policy_load_string(suggested, "suggested", &sp, &perr) < 0)
                fail_msg("suggested policy does not load: %s", perr.msg);
        assert_int_equal(sp->nfiles, 3);
        assert_int_equal(sp->nconnect, 1);
        char sfiles[4 * PATH_MAX], net[256];
        size_t o = 0;
        for (size_t i = 0; i < sp->nfiles; i++) {
                static const char *const acc[] = { "read", "read-write", "create" };
                o += (size_t) snprintf(sfiles + o, sizeof sfiles - o, "%s{\"path\": \"%s\", \"access\": \"%s\"}",
                                       i ? ", " : "", sp->files[i].path, acc[sp->files[i].access]);
        }
        snprintf(net, sizeof net, "{\"connect\": [\"%s:%u\"], \"listen\": [], \"resolve\": []}",
                 sp->connect[0].host, sp->connect[0].port);
        nk_policy_free(sp);
        _cleanup_free_ char *p2 = policy_text("enforce", sfiles, net);
        struct host b;
        if (!host_start_text(&b, p2))
                return;
        expect_read(&b, wpath("sibling/other.txt"), "other");
        expect_read(&b, wpath("ro/hello.txt"), "hello");
        call(&b, "write_file", &res, "bbb", wpath("cr/again.txt"), "w", "b");
        assert_string_equal(text(&res), "ok");
        nk_result_free(&res);
        call(&b, "tcp_echo", &res, "bib", "127.0.0.1", port_echo4, "again");
        assert_string_equal(res_okbin(&res), "echo:again");
        nk_result_free(&res);
        /* Nothing more: a sibling directory, the parent, another port. */
        expect_open_errno(&b, wpath("secret.txt"), O_RDONLY, ENOENT);
        expect_open_errno(&b, wpath("rw/data.txt"), O_RDONLY, ENOENT);
        expect_open_errno(&b, wpath("sibling/other.txt"), O_WRONLY, EACCES);
        call(&b, "tcp_echo", &res, "bib", "127.0.0.1", port_denied, "no");
        assert_int_equal(res_errno(&res), EACCES);
        nk_result_free(&res);
        host_free(&b);
        free(suggested);
}

/* Last: under the sandbox it kills its host. */
static void test_link_is_denied(void **state)
{
        HOST(state);
        if (!sandboxed) {
                skip();
                return;
        }
        struct host l;
        _cleanup_free_ char *p = main_policy();
        if (!host_start_text(&l, p))
                return;
        nk_result res;
        nk_error err = {};
        ei_x_buff x;
        ei_x_new_with_version(&x);
        ei_x_encode_list_header(&x, 2);
        ei_x_encode_binary(&x, "/tmp/a", 6);
        ei_x_encode_binary(&x, "/tmp/b", 6);
        ei_x_encode_empty_list(&x);
        int i = nk_host_find_function(l.h, "make_link", 2);
        int r = nk_host_call(l.h, (unsigned) i, NULL, 0, (uint8_t *) x.buff, (size_t) x.index, &res, &err);
        ei_x_free(&x);
        assert_true(r < 0);
        assert_string_equal(err.reason, "seccomp");
        host_free(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_read_granted_files),
                cmocka_unit_test(test_write_by_access),
                cmocka_unit_test(test_grant_under_tmp),
                cmocka_unit_test(test_unlink),
                cmocka_unit_test(test_own_proc),
                cmocka_unit_test(test_escapes_fail),
                cmocka_unit_test(test_hardlink_inside_grant),
                cmocka_unit_test(test_symlink_race),
                cmocka_unit_test(test_parallel_requests),
                cmocka_unit_test(test_no_fd_leak),
                cmocka_unit_test(test_connect),
                cmocka_unit_test(test_listen),
                cmocka_unit_test(test_audit_and_suggest),
                cmocka_unit_test(test_link_is_denied),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
