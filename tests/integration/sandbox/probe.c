/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A NIF library that reports what it sees from inside its host, so that a
 * test can check the sandbox from where a hostile NIF stands. Every
 * function is an attempt a NIF could make; sandbox_test.c says what each
 * must find.
 *
 * The host interposes libc's file and socket calls to route them through
 * the capability broker; a hostile NIF would bypass that with raw system
 * calls, so the probe makes raw system calls and sees the sandbox itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <erl_nif.h>

static ERL_NIF_TERM make_errno(ErlNifEnv *env, int e)
{
        return enif_make_tuple2(env, enif_make_atom(env, "error"), enif_make_int(env, e));
}

static ERL_NIF_TERM make_text(ErlNifEnv *env, const char *s, size_t len)
{
        ERL_NIF_TERM t;
        unsigned char *p = enif_make_new_binary(env, len, &t);
        memcpy(p, s, len);
        return t;
}

/* Reads a whole (small) file as a binary, or {error, Errno}. */
static ERL_NIF_TERM read_file(ErlNifEnv *env, const char *path)
{
        char buf[8192];
        int fd = (int) syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return make_errno(env, errno);
        size_t len = 0;
        ssize_t n;
        while (len < sizeof buf && (n = read(fd, buf + len, sizeof buf - len)) > 0)
                len += (size_t) n;
        close(fd);
        return make_text(env, buf, len);
}

static bool get_path(ErlNifEnv *env, ERL_NIF_TERM t, char *buf, size_t size)
{
        ErlNifBinary bin;
        if (!enif_inspect_binary(env, t, &bin) || bin.size >= size || memchr(bin.data, 0, bin.size))
                return false;
        memcpy(buf, bin.data, bin.size);
        buf[bin.size] = '\0';
        return true;
}

static ERL_NIF_TERM ids(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_tuple4(env, enif_make_uint(env, getuid()), enif_make_uint(env, getgid()),
                                enif_make_uint(env, geteuid()), enif_make_uint(env, getegid()));
}

static ERL_NIF_TERM file(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char path[256];
        if (!get_path(env, argv[0], path, sizeof path))
                return enif_make_badarg(env);
        return read_file(env, path);
}

/* true if path exists (lstat), else {error, Errno}. */
static ERL_NIF_TERM exists(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char path[256];
        struct stat st;
        if (!get_path(env, argv[0], path, sizeof path))
                return enif_make_badarg(env);
        if (syscall(SYS_newfstatat, AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return make_errno(env, errno);
        return enif_make_atom(env, "true");
}

struct linux_dirent64 {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
};

/* The names in a directory as strings, in the kernel's order, without the
 * descriptor the listing itself uses when skip_self. */
static ERL_NIF_TERM names_in(ErlNifEnv *env, const char *path, bool skip_self)
{
        int fd = (int) syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return make_errno(env, errno);
        char self[16];
        snprintf(self, sizeof self, "%d", fd);
        ERL_NIF_TERM list = enif_make_list(env, 0);
        char buf[8192];
        long n;
        while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
                for (long off = 0; off < n;) {
                        struct linux_dirent64 *de = (struct linux_dirent64 *) (buf + off);
                        off += de->d_reclen;
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                            (skip_self && strcmp(de->d_name, self) == 0))
                                continue;
                        list = enif_make_list_cell(env, enif_make_string(env, de->d_name, ERL_NIF_LATIN1), list);
                }
        }
        int e = errno;
        close(fd);
        return n < 0 ? make_errno(env, e) : list;
}

static ERL_NIF_TERM list_dir(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char path[256];
        if (!get_path(env, argv[0], path, sizeof path))
                return enif_make_badarg(env);
        return names_in(env, path, false);
}

/* {Bytes, Magic, Flags} of the file system at path. */
static ERL_NIF_TERM fs_size(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char path[256];
        if (!get_path(env, argv[0], path, sizeof path))
                return enif_make_badarg(env);
        int fd = (int) syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return make_errno(env, errno);
        struct statfs sfs;
        int r = fstatfs(fd, &sfs);
        int e = errno;
        close(fd);
        if (r < 0)
                return make_errno(env, e);
        return enif_make_tuple3(env, enif_make_uint64(env, (ErlNifUInt64) sfs.f_blocks * (ErlNifUInt64) sfs.f_bsize),
                                enif_make_uint64(env, (ErlNifUInt64) sfs.f_type),
                                enif_make_uint64(env, (ErlNifUInt64) sfs.f_flags));
}

/* Creates path through libc, as an ordinary NIF would, and writes size
 * bytes to it: ok or {error, Errno}. */
static ERL_NIF_TERM write_file(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char path[256];
        unsigned long size;
        if (!get_path(env, argv[0], path, sizeof path) || !enif_get_ulong(env, argv[1], &size))
                return enif_make_badarg(env);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return make_errno(env, errno);
        static char chunk[65536];
        memset(chunk, 'x', sizeof chunk);
        int e = 0;
        while (size > 0) {
                size_t n = size < sizeof chunk ? size : sizeof chunk;
                ssize_t w = write(fd, chunk, n);
                if (w < 0) {
                        e = errno;
                        break;
                }
                size -= (unsigned long) w;
        }
        close(fd);
        unlink(path);
        return e ? make_errno(env, e) : enif_make_atom(env, "ok");
}

static ERL_NIF_TERM pid(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return enif_make_int(env, (int) getpid());
}

static ERL_NIF_TERM hostname(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct utsname u;
        if (uname(&u) < 0)
                return make_errno(env, errno);
        return enif_make_string(env, u.nodename, ERL_NIF_LATIN1);
}

/* The seccomp filter denies socket(): the host dies of it, with a reason. */
static ERL_NIF_TERM make_socket(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        int fd = (int) syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
                return make_errno(env, errno);
        close(fd);
        return enif_make_atom(env, "ok");
}

/* The descriptors the host has open (numbers as strings). */
static ERL_NIF_TERM fds(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return names_in(env, "/proc/self/fd", true);
}

static ERL_NIF_TERM crash(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        raise(SIGSEGV);
        return enif_make_atom(env, "survived");
}

/* A real fault (the kernel forces SIGFPE), unlike raise(). */
static ERL_NIF_TERM divide(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        volatile int a = 1, b;
        int d;
        if (!enif_get_int(env, argv[0], &d))
                return enif_make_badarg(env);
        b = d;
        return enif_make_int(env, a / b);
}

/* Writes text on the host's stderr, as a NIF that logs would. */
static ERL_NIF_TERM say(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ErlNifBinary bin;
        if (!enif_inspect_binary(env, argv[0], &bin))
                return enif_make_badarg(env);
        ssize_t n = write(2, bin.data, bin.size);
        return n < 0 ? make_errno(env, errno) : enif_make_long(env, (long) n);
}

/* What enif_getenv gives a NIF for name: the value, or false. */
static ERL_NIF_TERM env_var(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        char name[64], value[256];
        size_t size = sizeof value;
        if (!get_path(env, argv[0], name, sizeof name))
                return enif_make_badarg(env);
        if (enif_getenv(name, value, &size) != 0)
                return enif_make_atom(env, "false");
        return enif_make_string(env, value, ERL_NIF_LATIN1);
}

static ERL_NIF_TERM exit_now(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        int status;
        if (!enif_get_int(env, argv[0], &status))
                return enif_make_badarg(env);
        _exit(status);
}

static ERL_NIF_TERM sleep_ms(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        unsigned ms;
        if (!enif_get_uint(env, argv[0], &ms))
                return enif_make_badarg(env);
        usleep((useconds_t) ms * 1000);
        return enif_make_atom(env, "slept");
}

static ErlNifFunc funcs[] = {
        { "crash", 0, crash, 0 },
        { "say", 1, say, 0 },
        { "env_var", 1, env_var, 0 },
        { "divide", 1, divide, 0 },
        { "exit", 1, exit_now, 0 },
        { "sleep", 1, sleep_ms, 0 },
        { "ids", 0, ids, 0 },
        { "file", 1, file, 0 },
        { "exists", 1, exists, 0 },
        { "list_dir", 1, list_dir, 0 },
        { "write_file", 2, write_file, 0 },
        { "fs_size", 1, fs_size, 0 },
        { "pid", 0, pid, 0 },
        { "hostname", 0, hostname, 0 },
        { "socket", 0, make_socket, 0 },
        { "fds", 0, fds, 0 },
};

ERL_NIF_INIT(nk_sandbox_probe, funcs, NULL, NULL, NULL, NULL)
