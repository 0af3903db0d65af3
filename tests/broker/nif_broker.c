/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test NIF that uses files and sockets the way an unmodified library
 * does: fopen/fread/fwrite, open, stat, getaddrinfo + socket + connect,
 * bind + listen. Under nifkit-host each of these goes through the
 * capability broker. Errors come back as {error, Errno}.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <erl_nif.h>

/* From nifkit-host (nifkit_broker.h); weak so the library loads anywhere. */
extern int nifkit_open(const char *path, int flags, mode_t mode) __attribute__((weak));
extern int nifkit_connect(const char *host, uint16_t port) __attribute__((weak));

static ERL_NIF_TERM error(ErlNifEnv *env, int e)
{
        return enif_make_tuple2(env, enif_make_atom(env, "error"), enif_make_int(env, e));
}

static ERL_NIF_TERM ok(ErlNifEnv *env, ERL_NIF_TERM t)
{
        return enif_make_tuple2(env, enif_make_atom(env, "ok"), t);
}

/* A binary argument as a C string (a NUL inside ends it, as for any C
 * caller). */
static int path_arg(ErlNifEnv *env, ERL_NIF_TERM t, char *buf, size_t size)
{
        ErlNifBinary b;
        if (!enif_inspect_binary(env, t, &b) || b.size >= size)
                return -1;
        memcpy(buf, b.data, b.size);
        buf[b.size] = '\0';
        return 0;
}

static ERL_NIF_TERM bytes(ErlNifEnv *env, const void *p, size_t n)
{
        ERL_NIF_TERM t;
        memcpy(enif_make_new_binary(env, n, &t), p, n);
        return t;
}

/* read_file(Path) -> {ok, Bin} | {error, Errno}: fopen + fread. */
static ERL_NIF_TERM read_file(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char path[8192], buf[4096];
        if (path_arg(env, argv[0], path, sizeof path) < 0)
                return enif_make_badarg(env);
        FILE *f = fopen(path, "r");
        if (!f)
                return error(env, errno);
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        return ok(env, bytes(env, buf, n));
}

/* write_file(Path, Mode, Data) -> ok | {error, Errno}: fopen(Mode) + fwrite. */
static ERL_NIF_TERM write_file(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char path[8192], mode[8];
        ErlNifBinary data;
        if (path_arg(env, argv[0], path, sizeof path) < 0 || path_arg(env, argv[1], mode, sizeof mode) < 0 ||
            !enif_inspect_binary(env, argv[2], &data))
                return enif_make_badarg(env);
        FILE *f = fopen(path, mode);
        if (!f)
                return error(env, errno);
        size_t n = fwrite(data.data, 1, data.size, f);
        int e = n == data.size ? 0 : errno;
        if (fclose(f) != 0 && !e)
                e = errno;
        return e ? error(env, e) : enif_make_atom(env, "ok");
}

/* open(Path, Flags) -> {ok, FirstBytes} | {error, Errno}: open(2) flags as
 * given, then up to 64 bytes read (nothing for a write-only descriptor). */
static ERL_NIF_TERM open_path(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char path[8192], buf[64];
        int flags;
        if (path_arg(env, argv[0], path, sizeof path) < 0 || !enif_get_int(env, argv[1], &flags))
                return enif_make_badarg(env);
        int fd = open(path, flags, 0600);
        if (fd < 0)
                return error(env, errno);
        ssize_t n = (flags & O_ACCMODE) == O_WRONLY ? 0 : read(fd, buf, sizeof buf);
        close(fd);
        return ok(env, bytes(env, buf, n > 0 ? (size_t) n : 0));
}

/* stat_size(Path) -> {ok, Size} | {error, Errno} */
static ERL_NIF_TERM stat_size(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char path[8192];
        struct stat st;
        if (path_arg(env, argv[0], path, sizeof path) < 0)
                return enif_make_badarg(env);
        if (stat(path, &st) < 0)
                return error(env, errno);
        return ok(env, enif_make_int64(env, st.st_size));
}

/* explicit_open(Path) -> {ok, FirstBytes} | {error, Errno}: nifkit_open. */
static ERL_NIF_TERM explicit_open(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char path[8192], buf[64];
        if (path_arg(env, argv[0], path, sizeof path) < 0)
                return enif_make_badarg(env);
        if (!nifkit_open)
                return error(env, ENOSYS);
        int fd = nifkit_open(path, O_RDONLY, 0);
        if (fd < 0)
                return error(env, -fd);
        ssize_t n = read(fd, buf, sizeof buf);
        close(fd);
        return ok(env, bytes(env, buf, n > 0 ? (size_t) n : 0));
}

/* race(Path, N, Secret) -> {Opened, Leaked}: opens Path N times and reads
 * it; Leaked counts reads whose bytes begin with Secret. */
static ERL_NIF_TERM race(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char path[8192], secret[256], buf[256];
        int n;
        if (path_arg(env, argv[0], path, sizeof path) < 0 || !enif_get_int(env, argv[1], &n) ||
            path_arg(env, argv[2], secret, sizeof secret) < 0)
                return enif_make_badarg(env);
        size_t slen = strlen(secret);
        int opened = 0, leaked = 0;
        for (int i = 0; i < n; i++) {
                int fd = open(path, O_RDONLY);
                if (fd < 0)
                        continue;
                opened++;
                ssize_t r = read(fd, buf, sizeof buf);
                if (r >= (ssize_t) slen && memcmp(buf, secret, slen) == 0)
                        leaked++;
                close(fd);
        }
        return enif_make_tuple2(env, enif_make_int(env, opened), enif_make_int(env, leaked));
}

struct worker {
        char path[4096];
        char expect[64];
        int rounds;
        int wrong;
};

static void *worker_main(void *arg)
{
        struct worker *w = arg;
        char buf[64];
        for (int i = 0; i < w->rounds; i++) {
                int fd = open(w->path, O_RDONLY);
                ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
                if (fd >= 0)
                        close(fd);
                if (n < 0 || (size_t) n != strlen(w->expect) || memcmp(buf, w->expect, (size_t) n) != 0)
                        w->wrong++;
        }
        return NULL;
}

/* parallel(Dir, Threads, Rounds) -> Wrong: thread i opens Dir/f<i>, whose
 * content is "f<i>", Rounds times; Wrong counts answers that were not. */
static ERL_NIF_TERM parallel(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char dir[4000];
        int threads, rounds;
        if (path_arg(env, argv[0], dir, sizeof dir) < 0 || !enif_get_int(env, argv[1], &threads) ||
            !enif_get_int(env, argv[2], &rounds) || threads < 1 || threads > 64)
                return enif_make_badarg(env);
        struct worker w[64];
        pthread_t t[64];
        for (int i = 0; i < threads; i++) {
                w[i] = (struct worker) { .rounds = rounds };
                snprintf(w[i].path, sizeof w[i].path, "%s/f%d", dir, i);
                snprintf(w[i].expect, sizeof w[i].expect, "f%d", i);
                pthread_create(&t[i], NULL, worker_main, &w[i]);
        }
        int wrong = 0;
        for (int i = 0; i < threads; i++) {
                pthread_join(t[i], NULL);
                wrong += w[i].wrong;
        }
        return enif_make_int(env, wrong);
}

/* fd_count() -> N: entries of /proc/self/fd, less the directory's own. */
static ERL_NIF_TERM fd_count(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return error(env, errno);
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return enif_make_int(env, n - 1);
}

/* tcp_echo(Host, Port, Msg) -> {ok, Reply} | {error, Errno}: getaddrinfo,
 * then socket + connect to each address in turn, send Msg, read a reply. */
static ERL_NIF_TERM tcp_echo(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char host[256], port[16], msg[256], buf[256];
        int p;
        if (path_arg(env, argv[0], host, sizeof host) < 0 || !enif_get_int(env, argv[1], &p) ||
            path_arg(env, argv[2], msg, sizeof msg) < 0)
                return enif_make_badarg(env);
        snprintf(port, sizeof port, "%d", p);
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
        int g = getaddrinfo(host, port, &hints, &res);
        if (g != 0)
                return enif_make_tuple2(env, enif_make_atom(env, "gai_error"),
                                        enif_make_int(env, g == EAI_SYSTEM ? errno : -g));
        int e = ENOENT, fd = -1;
        for (struct addrinfo *a = res; a; a = a->ai_next) {
                fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
                if (fd < 0) {
                        e = errno;
                        continue;
                }
                if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
                        break;
                e = errno;
                close(fd);
                fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0)
                return error(env, e);
        ssize_t n = -1;
        if (write(fd, msg, strlen(msg)) == (ssize_t) strlen(msg))
                n = read(fd, buf, sizeof buf);
        e = errno;
        close(fd);
        return n < 0 ? error(env, e) : ok(env, bytes(env, buf, (size_t) n));
}

/* listen_on(Addr, Port, Udp) -> {ok, BoundPort} | {error, Errno}: socket +
 * bind (+ listen for TCP), then getsockname; the socket stays open in the
 * host for the test to reach, until close_all(). */
static int listening[64];
static int nlistening;

static ERL_NIF_TERM listen_on(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char addr[64];
        int port, udp;
        if (path_arg(env, argv[0], addr, sizeof addr) < 0 || !enif_get_int(env, argv[1], &port) ||
            !enif_get_int(env, argv[2], &udp) || nlistening == 64)
                return enif_make_badarg(env);
        struct sockaddr_storage ss = {};
        socklen_t len;
        struct sockaddr_in *in = (struct sockaddr_in *) &ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
        if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t) port);
                len = sizeof *in;
        } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t) port);
                len = sizeof *in6;
        } else
                return enif_make_badarg(env);
        int fd = socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return error(env, errno);
        if (bind(fd, (struct sockaddr *) &ss, len) < 0 || (!udp && listen(fd, 8) < 0)) {
                int e = errno;
                close(fd);
                return error(env, e);
        }
        struct sockaddr_storage got;
        socklen_t gl = sizeof got;
        if (getsockname(fd, (struct sockaddr *) &got, &gl) < 0) {
                int e = errno;
                close(fd);
                return error(env, e);
        }
        listening[nlistening++] = fd;
        int bound = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *) &got)->sin_port
                                                   : ((struct sockaddr_in6 *) &got)->sin6_port);
        return ok(env, enif_make_int(env, bound));
}

/* accept_one() -> {ok, Bytes} | {error, Errno}: accepts on the last TCP
 * listener and reads what the peer sent. */
static ERL_NIF_TERM accept_one(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char buf[256];
        if (nlistening == 0)
                return error(env, EBADF);
        int c = accept4(listening[nlistening - 1], NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
                return error(env, errno);
        ssize_t n = read(c, buf, sizeof buf);
        int e = errno;
        close(c);
        return n < 0 ? error(env, e) : ok(env, bytes(env, buf, (size_t) n));
}

static ERL_NIF_TERM close_all(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        while (nlistening > 0)
                close(listening[--nlistening]);
        return enif_make_atom(env, "ok");
}

/* make_link(Old, New) -> ok | {error, Errno}: link(2), which the sandbox's
 * filter does not allow: under it, the host dies by SIGSYS. */
static ERL_NIF_TERM make_link(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char a[4096], b[4096];
        if (path_arg(env, argv[0], a, sizeof a) < 0 || path_arg(env, argv[1], b, sizeof b) < 0)
                return enif_make_badarg(env);
        return link(a, b) < 0 ? error(env, errno) : enif_make_atom(env, "ok");
}

static long long now_ns(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (long long) t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* bench_open(Path, N, Direct) -> nanoseconds per open+close: through the
 * interposed open() (the broker), or with the system call itself (Direct =
 * 1; only meaningful where the host can see the file, unsandboxed). */
static ERL_NIF_TERM bench_open(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char path[4096];
        int n, direct;
        if (path_arg(env, argv[0], path, sizeof path) < 0 || !enif_get_int(env, argv[1], &n) ||
            !enif_get_int(env, argv[2], &direct) || n < 1)
                return enif_make_badarg(env);
        long long t0 = now_ns();
        for (int i = 0; i < n; i++) {
                int fd = direct ? (int) syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC) : open(path, O_RDONLY);
                if (fd < 0)
                        return error(env, errno);
                close(fd);
        }
        return enif_make_int64(env, (now_ns() - t0) / n);
}

/* bench_connect(Port, N, Direct) -> nanoseconds per socket+connect+close to
 * 127.0.0.1:Port, through the broker or with the system calls themselves. */
static ERL_NIF_TERM bench_connect(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        int port, n, direct;
        if (!enif_get_int(env, argv[0], &port) || !enif_get_int(env, argv[1], &n) ||
            !enif_get_int(env, argv[2], &direct) || n < 1)
                return enif_make_badarg(env);
        struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        long long t0 = now_ns();
        for (int i = 0; i < n; i++) {
                int fd = direct ? (int) syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)
                                : socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return error(env, errno);
                int r = direct ? (int) syscall(SYS_connect, fd, &in, sizeof in)
                               : connect(fd, (struct sockaddr *) &in, sizeof in);
                int e = errno;
                close(fd);
                if (r < 0)
                        return error(env, e);
        }
        return enif_make_int64(env, (now_ns() - t0) / n);
}

/* unlink(Path, How) -> ok | {error, Errno}: unlink(), or remove() when How
 * is 1. */
static ERL_NIF_TERM unlink_path(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char path[8192];
        int how;
        if (path_arg(env, argv[0], path, sizeof path) < 0 || !enif_get_int(env, argv[1], &how))
                return enif_make_badarg(env);
        int r = how == 1 ? remove(path) : unlink(path);
        return r < 0 ? error(env, errno) : enif_make_atom(env, "ok");
}

/* cwd() -> {ok, Dir} | {error, Errno}: getcwd(). */
static ERL_NIF_TERM cwd(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char buf[4096];
        if (!getcwd(buf, sizeof buf))
                return error(env, errno);
        return ok(env, bytes(env, buf, strlen(buf)));
}

/* own_status() -> {ok, Pid, PidFromStatus}: the host's getpid() and the Pid
 * line of its /proc/self/status, read with fopen as a runtime would. */
static ERL_NIF_TERM own_status(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        FILE *f = fopen("/proc/self/status", "r");
        if (!f)
                return error(env, errno);
        char line[256];
        long pid = -1;
        while (fgets(line, sizeof line, f))
                if (strncmp(line, "Pid:", 4) == 0)
                        pid = strtol(line + 4, NULL, 10);
        fclose(f);
        return enif_make_tuple3(env, enif_make_atom(env, "ok"), enif_make_long(env, (long) getpid()),
                                enif_make_long(env, pid));
}

static ErlNifFunc funcs[] = {
        { "cwd", 0, cwd, 0 },
        { "unlink", 2, unlink_path, 0 },
        { "own_status", 0, own_status, 0 },
        { "bench_open", 3, bench_open, 0 },
        { "bench_connect", 3, bench_connect, 0 },
        { "read_file", 1, read_file, 0 },
        { "write_file", 3, write_file, 0 },
        { "open", 2, open_path, 0 },
        { "stat_size", 1, stat_size, 0 },
        { "explicit_open", 1, explicit_open, 0 },
        { "race", 3, race, 0 },
        { "parallel", 3, parallel, 0 },
        { "fd_count", 0, fd_count, 0 },
        { "tcp_echo", 3, tcp_echo, 0 },
        { "listen_on", 3, listen_on, 0 },
        { "accept_one", 0, accept_one, 0 },
        { "close_all", 0, close_all, 0 },
        { "make_link", 2, make_link, 0 },
};

ERL_NIF_INIT(nk_broker_test, funcs, NULL, NULL, NULL, NULL)
