/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A NIF library that tries what the host's seccomp filter denies, one
 * function per attempt, and one that does what it allows (a thread). Each
 * denied attempt must end the host by SIGSYS; none may return.
 */
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <erl_nif.h>

static ERL_NIF_TERM returned(ErlNifEnv *env, long r)
{
        /* Only reached if the filter let the call through. */
        return enif_make_tuple2(env, enif_make_atom(env, "returned"), enif_make_long(env, r));
}

static ERL_NIF_TERM try_ptrace(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return returned(env, syscall(SYS_ptrace, -1L, 0L, 0L, 0L));
}

static ERL_NIF_TERM try_socket(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        /* The system call itself: nifkit-host exports its own socket(),
         * which hands out placeholders for the capability broker and never
         * reaches the kernel. */
        int fd = (int) syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0)
                close(fd);
        return returned(env, fd);
}

static ERL_NIF_TERM try_fork(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        pid_t p = fork();
        if (p == 0)
                _exit(0);
        return returned(env, p);
}

static ERL_NIF_TERM try_unshare(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        return returned(env, unshare(CLONE_NEWUSER));
}

static ERL_NIF_TERM try_write_file(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        int fd = open("/tmp/nifkit-seccomp-must-not-exist", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
                close(fd);
        return returned(env, fd);
}

static void *thread_main(void *arg)
{
        *(long *) arg = (long) getpid();
        return arg;
}

static ERL_NIF_TERM thread(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ErlNifTid tid;
        long v = 0;
        void *res = NULL;
        if (enif_thread_create("nk-seccomp", &tid, thread_main, &v, NULL) != 0)
                return enif_make_atom(env, "create_failed");
        enif_thread_join(tid, &res);
        return enif_make_atom(env, res == &v && v == (long) getpid() ? "ok" : "wrong");
}

static ErlNifFunc funcs[] = {
        { "ptrace", 0, try_ptrace, 0 },
        { "socket", 0, try_socket, 0 },
        { "fork", 0, try_fork, 0 },
        { "unshare", 0, try_unshare, 0 },
        { "write_file", 0, try_write_file, 0 },
        { "thread", 0, thread, 0 },
};

ERL_NIF_INIT(nk_test_seccomp, funcs, NULL, NULL, NULL, NULL)
