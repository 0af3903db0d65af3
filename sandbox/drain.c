/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Copies a host's stdout and stderr to the caller's 1 and 2.
 *
 * A host never gets the caller's own descriptors: a file there could be
 * sought in, read, or truncated. It writes to pipes instead, and one thread
 * per host copies what arrives. The thread is joined when the host is
 * released, never left detached: the runtime may live in a shared object
 * that BEAM unloads (the proxy NIF), and a detached thread would then
 * return into unmapped code.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "launcher.h"
#include "macro.h"

struct nk_drain {
        pthread_t thread;
        int fds[2];     /* read ends: the host's stdout, stderr */
        int stop_fd;    /* eventfd: the host was released, finish now */
};

/* Writes all of buf to fd, or drops it: the caller's output may be gone or
 * full of errors, and the host's output is then lost rather than queued. */
static void put(int fd, const char *buf, size_t n)
{
        for (size_t off = 0; off < n;) {
                ssize_t w = write(fd, buf + off, n - off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return;
                off += (size_t) w;
        }
}

/* Reads once from p->fd and copies it; closes it at EOF or error. */
static void pump(struct pollfd *p, int out_fd)
{
        char buf[4096];
        ssize_t n = read(p->fd, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n <= 0) {
                close(p->fd);
                p->fd = -1;     /* poll ignores negative fds */
                return;
        }
        put(out_fd, buf, (size_t) n);
}

static void *drain_main(void *arg)
{
        pthread_setname_np(pthread_self(), "nk-drain");
        struct nk_drain *d = arg;
        struct pollfd p[3] = {
                { .fd = d->fds[0], .events = POLLIN },
                { .fd = d->fds[1], .events = POLLIN },
                { .fd = d->stop_fd, .events = POLLIN },
        };
        bool stopping = false;

        while (p[0].fd >= 0 || p[1].fd >= 0) {
                /* Once stopped, take what is already in the pipes and go:
                 * a process the host left behind must not hold us. */
                if (poll(p, stopping ? 2 : 3, stopping ? 0 : -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (!stopping && p[2].revents)
                        stopping = true;
                bool any = false;
                for (int i = 0; i < 2; i++) {
                        if (p[i].fd >= 0 && p[i].revents) {
                                pump(&p[i], STDOUT_FILENO + i);
                                any = true;
                        }
                }
                if (stopping && !any)
                        break;
        }
        for (int i = 0; i < 2; i++)
                nk_closep(&p[i].fd);
        return NULL;
}

int nk_drain_start(int *out, int *err_out, struct nk_drain **ret)
{
        struct nk_drain *d = calloc(1, sizeof *d);
        int r = -ENOMEM;

        *ret = NULL;
        if (!d)
                goto fail;
        d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (d->stop_fd < 0) {
                r = -errno;
                goto fail;
        }
        d->fds[0] = *out;
        d->fds[1] = *err_out;
        r = -pthread_create(&d->thread, NULL, drain_main, d);
        if (r < 0)
                goto fail;
        *out = *err_out = -1;   /* the thread owns them now */
        *ret = d;
        return 0;
fail:
        /* Without a reader the pipes close, and a host writing to them gets
         * EPIPE rather than blocking on a full pipe. */
        if (d)
                nk_closep(&d->stop_fd);
        free(d);
        nk_closep(out);
        nk_closep(err_out);
        *out = *err_out = -1;
        return r;
}

void nk_drain_stop(struct nk_drain *d)
{
        if (!d)
                return;
        uint64_t one = 1;
        (void) !write(d->stop_fd, &one, sizeof one);
        pthread_join(d->thread, NULL);
        close(d->stop_fd);
        free(d);
}
