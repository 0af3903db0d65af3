/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host template's messages (sandbox/template.h): every field round
 * trips, and every malformed datagram — cut short at each byte, a wrong
 * magic or type, a string without its NUL or with one inside, counts past
 * the end, trailing bytes, impossible values — is refused, never read past
 * its end. The template decodes what the runtime sends and the runtime what
 * the template sends: neither trusts the other's bytes.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "template.h"

static const char *const env[] = { "LANG=C", "NIFKIT_X=1", NULL };
static const char *const scope[] = { "/usr/lib/libfoo.so", NULL };
static const char *const caller_env[] = { "HOME=/root", "PATH=/bin", NULL };

static void launch_bytes(uint32_t launcher, uint8_t **ret, size_t *ret_len)
{
        static const struct nk_sandbox_config sc = {
                .env = env, .scope = scope, .outside_uid = 65534, .outside_gid = 65533,
                .inside_uid = 1000, .inside_gid = 1001, .memory_bytes = 5ull << 32, .pids = 64,
                .cpu_percent = 50, .tmp_mb = 16, .open_files = 256, .cgroup_root = "/sys/fs/cgroup/x",
                .cgroup_required = true,
        };
        const struct nk_launch_config cfg = {
                .host_binary = "/usr/libexec/nifkit/nifkit-host", .library = "/opt/lib/jiffy.so", .sandbox = &sc,
                .env = (char **) caller_env,
        };
        assert_int_equal(nk_template_launch_encode(launcher, &cfg, ret, ret_len), 0);
}

static void launch_round_trip(void **state)
{
        (void) state;
        uint8_t *p;
        size_t n;
        launch_bytes(NK_LAUNCHER_DIRECT, &p, &n);
        assert_int_equal(nk_template_msg_type(p, n), NK_TEMPLATE_LAUNCH);
        struct nk_template_launch l;
        assert_int_equal(nk_template_launch_decode(p, n, &l), 0);
        assert_int_equal(l.launcher, NK_LAUNCHER_DIRECT);
        assert_true(l.have_sandbox);
        assert_string_equal(l.host_binary, "/usr/libexec/nifkit/nifkit-host");
        assert_string_equal(l.library, "/opt/lib/jiffy.so");
        assert_int_equal(l.sc.outside_uid, 65534);
        assert_int_equal(l.sc.outside_gid, 65533);
        assert_int_equal(l.sc.inside_uid, 1000);
        assert_int_equal(l.sc.inside_gid, 1001);
        assert_true(l.sc.memory_bytes == 5ull << 32);
        assert_int_equal(l.sc.pids, 64);
        assert_int_equal(l.sc.cpu_percent, 50);
        assert_int_equal(l.sc.tmp_mb, 16);
        assert_int_equal(l.sc.open_files, 256);
        assert_true(l.sc.cgroup_required);
        assert_string_equal(l.sc.cgroup_root, "/sys/fs/cgroup/x");
        assert_null(l.sc.search_path);
        assert_string_equal(l.sc.env[0], "LANG=C");
        assert_string_equal(l.sc.env[1], "NIFKIT_X=1");
        assert_null(l.sc.env[2]);
        assert_string_equal(l.sc.scope[0], "/usr/lib/libfoo.so");
        assert_null(l.sc.scope[1]);
        assert_null(l.sc.extra_ro[0]);
        /* The direct launcher's host gets the caller's environment. */
        assert_string_equal(l.caller_env[0], "HOME=/root");
        assert_string_equal(l.caller_env[1], "PATH=/bin");
        assert_null(l.caller_env[2]);
        nk_template_launch_free(&l);
        free(p);

        /* The other launchers carry no caller environment. */
        launch_bytes(NK_LAUNCHER_NATIVE, &p, &n);
        assert_int_equal(nk_template_launch_decode(p, n, &l), 0);
        assert_int_equal(l.launcher, NK_LAUNCHER_NATIVE);
        assert_null(l.caller_env[0]);
        nk_template_launch_free(&l);
        free(p);
}

/* Every prefix of a good message is refused, and so is one byte more. */
static void launch_truncated(void **state)
{
        (void) state;
        uint8_t *p;
        size_t n;
        launch_bytes(NK_LAUNCHER_NATIVE, &p, &n);
        struct nk_template_launch l;
        for (size_t k = 0; k < n; k++) {
                /* A copy of exactly k bytes, so that a read past it is
                 * caught by ASan. */
                uint8_t *q = malloc(k ? k : 1);
                memcpy(q, p, k);
                assert_int_equal(nk_template_launch_decode(q, k, &l), -EBADMSG);
                free(q);
        }
        uint8_t *longer = malloc(n + 1);
        memcpy(longer, p, n);
        longer[n] = 0;
        assert_int_equal(nk_template_launch_decode(longer, n + 1, &l), -EBADMSG);
        free(longer);
        free(p);
}

/* Offsets into a LAUNCH: the head (8), eleven words and the memory limit. */
#define OFF_LAUNCHER 8
#define OFF_HOST (8 + 11 * 4 + 8)

static void put32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) (v >> 24), p[1] = (uint8_t) (v >> 16), p[2] = (uint8_t) (v >> 8), p[3] = (uint8_t) v;
}

static void launch_malformed(void **state)
{
        (void) state;
        uint8_t *p;
        size_t n;
        struct nk_template_launch l;
        launch_bytes(NK_LAUNCHER_NATIVE, &p, &n);
        uint8_t *q = malloc(n);

        /* A wrong magic; a type that is no message; another message's type. */
        memcpy(q, p, n);
        q[0] ^= 1;
        assert_int_equal(nk_template_msg_type(q, n), -EBADMSG);
        assert_int_equal(nk_template_launch_decode(q, n, &l), -EBADMSG);
        memcpy(q, p, n);
        put32(q + 4, 99);
        assert_int_equal(nk_template_msg_type(q, n), -EBADMSG);
        put32(q + 4, NK_TEMPLATE_EXITED);
        assert_int_equal(nk_template_launch_decode(q, n, &l), -EBADMSG);

        /* A launcher that does not exist. */
        memcpy(q, p, n);
        put32(q + OFF_LAUNCHER, 7);
        assert_int_equal(nk_template_launch_decode(q, n, &l), -EBADMSG);

        /* The host binary's string: its NUL replaced, a NUL inside it, a
         * length past the end, a missing (zero-length) path. */
        uint32_t len = (uint32_t) strlen("/usr/libexec/nifkit/nifkit-host") + 1;
        memcpy(q, p, n);
        q[OFF_HOST + 4 + len - 1] = 'x';
        assert_int_equal(nk_template_launch_decode(q, n, &l), -EBADMSG);
        memcpy(q, p, n);
        q[OFF_HOST + 4 + 3] = '\0';
        assert_int_equal(nk_template_launch_decode(q, n, &l), -EBADMSG);
        memcpy(q, p, n);
        put32(q + OFF_HOST, 0xffffffffu);
        assert_int_equal(nk_template_launch_decode(q, n, &l), -EBADMSG);
        memcpy(q, p, n);
        put32(q + OFF_HOST, (uint32_t) n);
        assert_int_equal(nk_template_launch_decode(q, n, &l), -EBADMSG);

        free(q);
        free(p);

        /* A vector whose count claims more entries than bytes remain:
         * refused before anything is allocated for it. */
        const struct nk_launch_config cfg = { .host_binary = "/h", .library = "/l" };
        assert_int_equal(nk_template_launch_encode(NK_LAUNCHER_NATIVE, &cfg, &p, &n), 0);
        /* The last vector (the caller's environment, empty) is the last
         * word. */
        put32(p + n - 4, 0x40000000u);
        assert_int_equal(nk_template_launch_decode(p, n, &l), -EBADMSG);
        free(p);

        /* Too big to send in one datagram: said, not cut. */
        char *big = malloc(NK_TEMPLATE_MSG_MAX + 2);
        memset(big, 'a', NK_TEMPLATE_MSG_MAX + 1);
        big[NK_TEMPLATE_MSG_MAX + 1] = '\0';
        const struct nk_launch_config huge = { .host_binary = "/h", .library = big };
        assert_int_equal(nk_template_launch_encode(NK_LAUNCHER_NATIVE, &huge, &p, &n), -E2BIG);
        free(big);
}

static void launched_round_trip_and_refusals(void **state)
{
        (void) state;
        const struct nk_template_launched m = {
                .r = 0, .pid = 4242, .memory_by_rlimit = true, .have_cgroup = true,
                .events = { .oom_kill = 1, .pids_max = 2, .memory_peak = 1ull << 40 },
                .cgroup_path = "/sys/fs/cgroup/nifkit/h1", .notes = { "no cpu controller", "no io" }, .nnotes = 2,
        };
        uint8_t *p;
        size_t n;
        assert_int_equal(nk_template_launched_encode(&m, &p, &n), 0);
        struct nk_template_launched d;
        assert_int_equal(nk_template_launched_decode(p, n, &d), 0);
        assert_int_equal(d.r, 0);
        assert_int_equal(d.pid, 4242);
        assert_true(d.memory_by_rlimit);
        assert_true(d.have_cgroup);
        assert_true(d.events.oom_kill == 1 && d.events.pids_max == 2 && d.events.memory_peak == 1ull << 40);
        assert_string_equal(d.cgroup_path, "/sys/fs/cgroup/nifkit/h1");
        assert_null(d.msg);
        assert_int_equal(d.nnotes, 2);
        assert_string_equal(d.notes[0], "no cpu controller");
        assert_string_equal(d.notes[1], "no io");
        for (size_t k = 0; k < n; k++)
                assert_int_equal(nk_template_launched_decode(p, k, &d), -EBADMSG);
        free(p);

        /* Impossible answers: a start without a pid, a positive result, a
         * cgroup without its path. */
        const struct nk_template_launched bad[] = {
                { .r = 0, .pid = 0 },
                { .r = 3, .pid = 1 },
                { .r = 0, .pid = 1, .have_cgroup = true },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                assert_int_equal(nk_template_launched_encode(&bad[i], &p, &n), 0);
                assert_int_equal(nk_template_launched_decode(p, n, &d), -EBADMSG);
                free(p);
        }

        /* A failure carries its reason. */
        const struct nk_template_launched fail = { .r = -EACCES, .msg = "cannot write uid_map" };
        assert_int_equal(nk_template_launched_encode(&fail, &p, &n), 0);
        assert_int_equal(nk_template_launched_decode(p, n, &d), 0);
        assert_int_equal(d.r, -EACCES);
        assert_string_equal(d.msg, "cannot write uid_map");
        /* More notes than the message may hold. */
        put32(p + n - 4, NK_TEMPLATE_NOTES_MAX + 1);
        assert_int_equal(nk_template_launched_decode(p, n, &d), -EBADMSG);
        free(p);
}

static void exited_and_kill(void **state)
{
        (void) state;
        const struct nk_template_exited m = {
                .ex = { .signo = SIGSEGV, .core_dumped = true }, .have_events = true,
                .events = { .oom_kill = 3 },
        };
        uint8_t *p;
        size_t n;
        assert_int_equal(nk_template_exited_encode(&m, &p, &n), 0);
        struct nk_template_exited d;
        assert_int_equal(nk_template_exited_decode(p, n, &d), 0);
        assert_int_equal(d.ex.signo, SIGSEGV);
        assert_true(d.ex.core_dumped);
        assert_true(d.have_events);
        assert_true(d.events.oom_kill == 3);
        for (size_t k = 0; k < n; k++)
                assert_int_equal(nk_template_exited_decode(p, k, &d), -EBADMSG);
        /* A signal number no signal has. */
        put32(p + 12, NSIG + 5);
        assert_int_equal(nk_template_exited_decode(p, n, &d), -EBADMSG);
        free(p);

        /* KILL: a real signal only. */
        uint8_t k[12];
        put32(k, NK_TEMPLATE_MAGIC);
        put32(k + 4, NK_TEMPLATE_KILL);
        put32(k + 8, SIGKILL);
        assert_int_equal(nk_template_kill_decode(k, sizeof k), SIGKILL);
        assert_int_equal(nk_template_kill_decode(k, sizeof k - 1), -EBADMSG);
        put32(k + 8, 0);
        assert_int_equal(nk_template_kill_decode(k, sizeof k), -EBADMSG);
        put32(k + 8, NSIG);
        assert_int_equal(nk_template_kill_decode(k, sizeof k), -EBADMSG);
        /* Nothing at all. */
        assert_int_equal(nk_template_msg_type(k, 0), -EBADMSG);
        assert_int_equal(nk_template_msg_type(k, 7), -EBADMSG);
}

/* The socket's name is this process's (pid and start time) and this
 * binary's: another process, or a restarted one with the same pid, or
 * another build, reaches another template. */
static void socket_name(void **state)
{
        (void) state;
        char a[160], b[160], c[160];
        assert_true(nk_template_socket_name(getpid(), "/usr/libexec/nifkit/nifkit-template", a, sizeof a) > 0);
        assert_true(nk_template_socket_name(getpid(), "/opt/nifkit/nifkit-template", b, sizeof b) > 0);
        assert_true(nk_template_socket_name(getppid(), "/usr/libexec/nifkit/nifkit-template", c, sizeof c) > 0);
        assert_string_not_equal(a, b);
        assert_string_not_equal(a, c);
        assert_true(nk_process_start_time(getpid()) > 0);
        assert_int_equal(nk_template_socket_name(getpid(), "/x", a, 8), -ENAMETOOLONG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(launch_round_trip),
                cmocka_unit_test(launch_truncated),
                cmocka_unit_test(launch_malformed),
                cmocka_unit_test(launched_round_trip_and_refusals),
                cmocka_unit_test(exited_and_kill),
                cmocka_unit_test(socket_name),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
