/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Descriptor passing (fdpass.c), the broker's decisions called directly
 * (broker.c), and audit records and the policy they suggest (audit.c).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker.h"
#include "fdpass.h"
#include "macro.h"
#include "nifkit.h"
#include "nifkit_policy.h"

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

static void pair(int sv[2])
{
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void test_fd_travels_cloexec(void **state)
{
        int sv[2], p[2];
        pair(sv);
        assert_int_equal(pipe(p), 0);   /* not close-on-exec on purpose */
        struct iovec iov = { "abc", 3 };
        assert_int_equal(nk_fdpass_send(sv[0], &iov, 1, p[1]), 0);
        char buf[16];
        int fd;
        assert_int_equal(nk_fdpass_recv(sv[1], buf, sizeof buf, 0, &fd), 3);
        assert_memory_equal(buf, "abc", 3);
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        /* The same pipe. */
        assert_int_equal(write(fd, "x", 1), 1);
        assert_int_equal(read(p[0], buf, 1), 1);
        assert_int_equal(buf[0], 'x');
        /* Without a descriptor. */
        assert_int_equal(nk_fdpass_send(sv[0], &iov, 1, -1), 0);
        assert_int_equal(nk_fdpass_recv(sv[1], buf, sizeof buf, 0, &fd), 3);
        assert_int_equal(fd, -1);
        close(fd);
        close(p[0]);
        close(p[1]);
        close(sv[0]);
        /* The peer closed. */
        assert_int_equal(nk_fdpass_recv(sv[1], buf, sizeof buf, 0, &fd), 0);
        close(sv[1]);
}

/* A hostile peer's datagram with two descriptors, built by hand. */
static void send_two(int sock, int a, int b)
{
        union {
                char buf[CMSG_SPACE(2 * sizeof(int))];
                struct cmsghdr align;
        } c = {};
        struct iovec iov = { "zz", 2 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
                             .msg_controllen = sizeof c.buf };
        struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(2 * sizeof(int));
        int fds[2] = { a, b };
        memcpy(CMSG_DATA(h), fds, sizeof fds);
        assert_true(sendmsg(sock, &mh, 0) == 2);
}

static void test_refusals_close_what_came(void **state)
{
        int sv[2], p[2];
        char buf[16];
        int fd;
        pair(sv);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        int before = count_fds();

        /* Two descriptors: refused, both closed. */
        send_two(sv[0], p[0], p[1]);
        assert_int_equal(nk_fdpass_recv(sv[1], buf, sizeof buf, 0, &fd), -EBADMSG);
        assert_int_equal(fd, -1);
        assert_int_equal(count_fds(), before);

        /* Longer than the buffer: refused, its descriptor closed. */
        char big[64] = { 0 };
        struct iovec iov = { big, sizeof big };
        assert_int_equal(nk_fdpass_send(sv[0], &iov, 1, p[0]), 0);
        assert_int_equal(nk_fdpass_recv(sv[1], buf, sizeof buf, 0, &fd), -EBADMSG);
        assert_int_equal(fd, -1);
        assert_int_equal(count_fds(), before);

        /* Nothing waiting, without blocking. */
        assert_int_equal(nk_fdpass_recv(sv[1], buf, sizeof buf, MSG_DONTWAIT, &fd), -EAGAIN);
        close(p[0]);
        close(p[1]);
        close(sv[0]);
        close(sv[1]);
}

/* ---- decisions -------------------------------------------------------------- */

static char work[PATH_MAX];

static char *wp(const char *rel)
{
        static char bufs[4][PATH_MAX];
        static int i;
        char *b = bufs[i++ % 4];
        snprintf(b, PATH_MAX, "%s/%s", work, rel);
        return b;
}

static struct nk_policy *policy;
static struct nk_broker *broker;

static int setup(void **state)
{
        const char *base = getenv("NK_BROKER_WORKDIR");
        snprintf(work, sizeof work, "%s/unit-XXXXXX", base && *base ? base : ".");
        assert_non_null(mkdtemp(work));
        mkdir(wp("a"), 0755);
        mkdir(wp("a/b"), 0755);
        mkdir(wp("ab"), 0755);
        FILE *f = fopen(wp("a/f"), "w");
        fputs("af", f);
        fclose(f);
        f = fopen(wp("ab/f"), "w");
        fputs("abf", f);
        fclose(f);
        char text[4 * PATH_MAX];
        snprintf(text, sizeof text,
                 "{\"nifkit_policy\": 1, \"files\": [{\"path\": \"%s/a\", \"access\": \"read\"}, "
                 "{\"path\": \"%s/a/b\", \"access\": \"create\"}, {\"path\": \"%s/missing\", \"access\": \"read\"}],"
                 " \"network\": {\"connect\": [\"127.0.0.1:9\"], \"listen\": [], \"resolve\": [\"localhost\"]}}",
                 work, work, work);
        struct nk_policy_error err;
        if (nk_policy_load_string(text, "unit", &policy, &err) < 0)
                fail_msg("%s", err.msg);
        assert_int_equal(nk_broker_new(policy, "unit.so", NULL, &broker), 0);
        return 0;
}

static int teardown(void **state)
{
        nk_broker_free(broker);
        nk_policy_free(policy);
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
        return system(cmd) == 0 ? 0 : -1;
}

static int try_open(const char *path, size_t len, int flags)
{
        int fd = -1;
        int r = nk_broker_open(broker, path, len, flags, 0600, &fd);
        if (r == 0) {
                assert_true(fd >= 0);
                assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
                close(fd);
        } else
                assert_int_equal(fd, -1);
        return r;
}

static int try_path(const char *path, int flags)
{
        return try_open(path, strlen(path), flags);
}

static void test_open_decisions(void **state)
{
        assert_int_equal(try_path(wp("a/f"), O_RDONLY), 0);
        /* Whole components: "ab" is not beneath "a". */
        assert_int_equal(try_path(wp("ab/f"), O_RDONLY), -ENOENT);
        /* The longest grant wins: a/b may create, a may not. */
        assert_int_equal(try_path(wp("a/b/new"), O_WRONLY | O_CREAT), 0);
        assert_int_equal(try_path(wp("a/new"), O_WRONLY | O_CREAT), -EACCES);
        /* Redundant slashes and "." are normalised before matching. */
        char odd[PATH_MAX];
        snprintf(odd, sizeof odd, "/%s//./a/./f", work);
        assert_int_equal(try_path(odd, O_RDONLY), 0);
        /* Relative: from the runtime's working directory, now. */
        char here[PATH_MAX];
        assert_non_null(getcwd(here, sizeof here));
        assert_int_equal(chdir("/"), 0);
        assert_int_equal(try_path(wp("a/f") + 1, O_RDONLY), 0);
        assert_int_equal(chdir(wp("a")), 0);
        assert_int_equal(try_path("f", O_RDONLY), 0);
        assert_int_equal(try_path("../ab/f", O_RDONLY), -ENOENT);   /* out of the grant: outside all */
        assert_int_equal(chdir(here), 0);
        /* What the wire can carry and a C string cannot. */
        char nul[PATH_MAX];
        int n = snprintf(nul, sizeof nul, "%s/a/f", work);
        nul[n - 2] = '\0';
        assert_int_equal(try_open(nul, (size_t) n, O_RDONLY), -EINVAL);
        assert_int_equal(try_open("", 0, O_RDONLY), -ENOENT);
        char *longp = malloc(PATH_MAX + 1);
        memset(longp, 'a', PATH_MAX);
        longp[0] = '/';
        assert_int_equal(try_open(longp, PATH_MAX, O_RDONLY), -ENAMETOOLONG);
        free(longp);
        /* A grant whose directory does not exist. */
        assert_int_equal(try_path(wp("missing/x"), O_RDONLY), -ENOENT);
        /* Unknown or unsupported flags. */
        assert_int_equal(try_path(wp("a/f"), O_RDONLY | O_DIRECT), -EINVAL);
        assert_int_equal(try_path(wp("a/f"), O_RDONLY | O_DIRECTORY), -EACCES);
        assert_int_equal(try_path(wp("a"), O_RDONLY), -EISDIR);
        assert_int_equal(try_path(wp("a/b"), O_RDONLY), -EISDIR);
}

static void test_network_decisions(void **state)
{
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(10) };
        inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
        int fd = -1;
        /* Port 10 is not listed; port 9 is (nothing listens: refused by
         * the kernel, not by the policy). */
        assert_int_equal(nk_broker_connect(broker, SOCK_STREAM, 0, (struct sockaddr *) &in, sizeof in, &fd), -EACCES);
        in.sin_port = htons(9);
        assert_int_equal(nk_broker_connect(broker, SOCK_STREAM, 0, (struct sockaddr *) &in, sizeof in, &fd),
                         -ECONNREFUSED);
        /* UDP is never connected, raw sockets never made. */
        assert_int_equal(nk_broker_connect(broker, SOCK_DGRAM, 0, (struct sockaddr *) &in, sizeof in, &fd), -EACCES);
        assert_int_equal(nk_broker_connect(broker, SOCK_RAW, 0, (struct sockaddr *) &in, sizeof in, &fd),
                         -EPROTONOSUPPORT);
        struct sockaddr_un_like { sa_family_t f; char p[20]; } un = { .f = AF_UNIX };
        assert_int_equal(nk_broker_connect(broker, SOCK_STREAM, 0, (struct sockaddr *) &un, sizeof un, &fd),
                         -EAFNOSUPPORT);
        assert_int_equal(nk_broker_listen(broker, SOCK_STREAM, 0, 1, (struct sockaddr *) &in, sizeof in, &fd),
                         -EACCES);
        struct sockaddr_storage ss[4];
        size_t got;
        assert_int_equal(nk_broker_resolve(broker, "example.invalid", AF_UNSPEC, ss, 4, &got), -EACCES);
        assert_int_equal(nk_broker_resolve(broker, "LocalHost", AF_INET, ss, 4, &got), 0);
        assert_true(got >= 1);
        assert_int_equal(ss[0].ss_family, AF_INET);
}

/* Magic links (/proc/self/root, /proc/self/fd/N, /proc/self/cwd) are
 * refused even beneath a grant that contains them, and so is every other
 * file of the runtime's /proc: the VM's environment, memory and maps are
 * never handed to a host, whatever a grant of "/" covers. A grant of /proc
 * itself is a policy error. */
static void test_magic_links_refused(void **state)
{
        struct nk_policy *p;
        struct nk_broker *b;
        struct nk_policy_error err;
        assert_int_equal(nk_policy_load_string("{\"nifkit_policy\": 1, \"files\": "
                                               "[{\"path\": \"/proc/self\", \"access\": \"read\"}]}",
                                               "magic", &p, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "the VM's /proc is never handed to it"));
        assert_int_equal(nk_policy_load_string("{\"nifkit_policy\": 1, \"files\": "
                                               "[{\"path\": \"/\", \"access\": \"read-write\"}]}",
                                               "magic", &p, &err), 0);
        assert_int_equal(nk_broker_new(p, "magic.so", NULL, &b), 0);
        static const char *const magic[] = { "/proc/self/root/etc/passwd", "/proc/self/fd/0", "/proc/self/cwd/x",
                                             "/proc/self/exe" };
        for (size_t i = 0; i < sizeof magic / sizeof *magic; i++) {
                int fd = -1;
                int r = nk_broker_open(b, magic[i], strlen(magic[i]), O_RDONLY, 0, &fd);
                if (r != -ELOOP)
                        fail_msg("%s: want ELOOP, got %d (%s)", magic[i], r, strerror(-r));
                assert_int_equal(fd, -1);
        }
        static const char *const proc[] = { "/proc/self/status", "/proc/self/environ", "/proc/self/mem",
                                            "/proc/1/cmdline", "/proc/self/../self/maps" };
        for (size_t i = 0; i < sizeof proc / sizeof *proc; i++) {
                int fd = -1;
                int r = nk_broker_open(b, proc[i], strlen(proc[i]), O_RDONLY, 0, &fd);
                if (r != -EACCES)
                        fail_msg("%s: want EACCES, got %d (%s)", proc[i], r, strerror(-r));
                assert_int_equal(fd, -1);
        }
        /* An ordinary file beneath the grant is fine. */
        int fd = -1;
        assert_int_equal(nk_broker_open(b, "/etc/hostname", 13, O_RDONLY, 0, &fd), 0);
        close(fd);
        nk_broker_free(b);
        nk_policy_free(p);
}

static int notes;

static void note(void *arg, const struct nk_log_record *rec)
{
        if (rec->note && strstr(rec->note, "openat2") && strcmp(rec->event, "broker_degraded") == 0)
                notes++;
}

/* A kernel without openat2 (before 5.6), made with a filter in a child:
 * every file request fails closed, and the broker says why once. */
static void test_no_openat2_fails_closed(void **state)
{
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct sock_filter f[] = {
                        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
                        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
                        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
                };
                struct sock_fprog prog = { .len = sizeof f / sizeof *f, .filter = f };
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                        _exit(3);
                nk_log_set_sink(note, NULL, NK_LOG_WARNING);
                int fd;
                bool ok = nk_broker_open(broker, wp("a/f"), strlen(wp("a/f")), O_RDONLY, 0, &fd) == -ENOSYS &&
                          nk_broker_open(broker, wp("a/f"), strlen(wp("a/f")), O_RDONLY, 0, &fd) == -ENOSYS;
                _exit(ok && notes == 1 ? 0 : 1);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- audit ---------------------------------------------------------------- */

static void test_audit_format(void **state)
{
        char buf[512];
        struct nk_audit_record r = { .library = "/x/\"q\".so", .op = "open", .path = "/d/a\nb", .flags = 65,
                                     .decision = "audit-allow" };
        int n = nk_audit_format(&r, buf, sizeof buf);
        assert_true(n > 0);
        assert_non_null(strstr(buf, "\"library\":\"/x/\\\"q\\\".so\""));
        assert_non_null(strstr(buf, "\"path\":\"/d/a\\u000ab\",\"flags\":65,\"decision\":\"audit-allow\"}"));
        assert_int_equal(nk_audit_format(&r, buf, 20), -ENOBUFS);
}

static char last_record[1024];
static int records;

static void record(void *arg, const struct nk_log_record *rec)
{
        snprintf(last_record, sizeof last_record, "%s", rec->line);
        records++;
}

/* Audit mode without an audit log: the decisions go to the log sink as
 * broker_decision events; enforce mode sends none there. */
static void test_audit_to_log_sink(void **state)
{
        char text[2 * PATH_MAX];
        struct nk_policy *p;
        struct nk_broker *b;
        struct nk_policy_error err;
        snprintf(text, sizeof text, "{\"nifkit_policy\": 1, \"mode\": \"audit\", \"files\": "
                                    "[{\"path\": \"%s/a\", \"access\": \"read\"}]}", work);
        assert_int_equal(nk_policy_load_string(text, "audit", &p, &err), 0);
        assert_int_equal(nk_broker_new(p, "audit.so", NULL, &b), 0);
        nk_log_set_sink(record, NULL, NK_LOG_INFO);
        int fd = -1;
        records = 0;
        assert_int_equal(nk_broker_open(b, wp("ab/f"), strlen(wp("ab/f")), O_RDONLY, 0, &fd), 0);
        close(fd);
        assert_int_equal(records, 1);
        assert_non_null(strstr(last_record, "\"event\":\"broker_decision\",\"op\":\"open\""));
        assert_non_null(strstr(last_record, "\"decision\":\"audit-allow\""));
        assert_non_null(strstr(last_record, "\"library\":\"audit.so\""));
        /* Directories stay refused in audit mode. */
        assert_int_equal(nk_broker_open(b, wp("ab"), strlen(wp("ab")), O_RDONLY, 0, &fd), -EISDIR);
        assert_non_null(strstr(last_record, "\"decision\":\"deny\""));
        nk_broker_free(b);
        nk_policy_free(p);

        records = 0;
        assert_int_equal(nk_broker_open(broker, wp("ab/f"), strlen(wp("ab/f")), O_RDONLY, 0, &fd), -ENOENT);
        nk_log_set_sink(NULL, NULL, NK_LOG_INFO);
        assert_int_equal(records, 0);
}

static char *suggest(const char *log, int *ret)
{
        FILE *in = fmemopen((void *) log, strlen(log), "r");
        char *out = NULL;
        size_t len = 0;
        FILE *o = open_memstream(&out, &len);
        char err[256] = "";
        *ret = nk_audit_suggest(in, o, err, sizeof err);
        fclose(in);
        fclose(o);
        if (*ret < 0) {
                free(out);
                return strdup(err);
        }
        return out;
}

static void test_suggest(void **state)
{
        const char *log =
                "{\"ts\":1.0,\"library\":\"l\",\"op\":\"open\",\"path\":\"/d/x/f\",\"flags\":0,\"decision\":\"allow\"}\n"
                "{\"ts\":1.0,\"library\":\"l\",\"op\":\"open\",\"path\":\"/d/x/g\",\"flags\":2,\"decision\":\"audit-allow\"}\n"
                "{\"ts\":1.0,\"library\":\"l\",\"op\":\"open\",\"path\":\"/d/y/h\",\"flags\":65,\"decision\":\"audit-allow\"}\n"
                "{\"ts\":1.0,\"library\":\"l\",\"op\":\"open\",\"path\":\"/d/z/h\",\"flags\":0,\"decision\":\"deny\",\"errno\":2}\n"
                "\n"
                "{\"ts\":1.0,\"library\":\"l\",\"op\":\"connect\",\"host\":\"::1\",\"port\":80,\"udp\":false,\"decision\":\"audit-allow\"}\n"
                "{\"ts\":1.0,\"library\":\"l\",\"op\":\"listen\",\"host\":\"127.0.0.1\",\"port\":53,\"udp\":true,\"decision\":\"audit-allow\"}\n"
                "{\"ts\":1.0,\"library\":\"l\",\"op\":\"resolve\",\"host\":\"db.internal\",\"decision\":\"audit-allow\"}\n";
        int r;
        _cleanup_free_ char *out = suggest(log, &r);
        if (r < 0)
                fail_msg("%s", out);
        struct nk_policy *p;
        struct nk_policy_error err;
        if (nk_policy_load_string(out, "suggested", &p, &err) < 0)
                fail_msg("%s\n%s", err.msg, out);
        assert_int_equal(p->mode, NK_POLICY_MODE_ENFORCE);
        assert_int_equal(p->nfiles, 2);
        assert_string_equal(p->files[0].path, "/d/x");
        assert_int_equal(p->files[0].access, NK_POLICY_ACCESS_READ_WRITE);
        assert_string_equal(p->files[1].path, "/d/y");
        assert_int_equal(p->files[1].access, NK_POLICY_ACCESS_CREATE);
        assert_int_equal(p->nconnect, 1);
        assert_string_equal(p->connect[0].host, "::1");
        assert_int_equal(p->nlisten, 1);
        assert_true(p->listen[0].udp);
        assert_int_equal(p->nresolve, 1);
        nk_policy_free(p);

        _cleanup_free_ char *bad = suggest("{\"op\":\"open\",\"decision\":\"allow\"}\nnot json\n", &r);
        assert_int_equal(r, -EINVAL);
        assert_non_null(strstr(bad, "line 1"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fd_travels_cloexec),
                cmocka_unit_test(test_refusals_close_what_came),
                cmocka_unit_test(test_open_decisions),
                cmocka_unit_test(test_network_decisions),
                cmocka_unit_test(test_no_openat2_fails_closed),
                cmocka_unit_test(test_magic_links_refused),
                cmocka_unit_test(test_audit_format),
                cmocka_unit_test(test_audit_to_log_sink),
                cmocka_unit_test(test_suggest),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
