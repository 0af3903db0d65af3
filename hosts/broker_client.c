/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Requests from many threads share one socket. Sending needs no lock (a
 * SEQPACKET datagram is sent whole, and each request is one datagram).
 * Receiving is done by whichever waiting thread takes the reader's role:
 * it reads answers, hands each to the waiter whose id it carries, and when
 * its own has come passes the role to another waiter. So no thread of our
 * own runs in the host, and a NIF's thread that asks waits only for its
 * own answer.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker_client.h"
#include "fdpass.h"
#include "macro.h"
#include "protocol.h"

struct waiter {
        struct waiter *next;
        uint64_t id;
        bool done;
        int error;              /* positive errno from the runtime, or ours */
        int fd;
        uint8_t *payload;       /* the answer's bytes after the error field */
        size_t len;
        pthread_cond_t cond;
};

static struct {
        pthread_mutex_t lock;
        int sock;
        bool reading;           /* a waiter has the reader's role */
        bool broken;            /* the socket failed: every request fails */
        uint64_t next_id;
        struct waiter *waiters;
} bc = { .lock = PTHREAD_MUTEX_INITIALIZER, .sock = -1 };

void nk_broker_client_set_socket(int sock)
{
        pthread_mutex_lock(&bc.lock);
        if (bc.sock >= 0)
                close(bc.sock);
        bc.sock = sock;
        bc.broken = false;
        pthread_mutex_unlock(&bc.lock);
}

bool nk_broker_client_present(void)
{
        pthread_mutex_lock(&bc.lock);
        bool r = bc.sock >= 0 && !bc.broken;
        pthread_mutex_unlock(&bc.lock);
        return r;
}

/* BROKER_CHANNEL's grants beneath /tmp and /dev, set once before any
 * library code runs and read-only after. */
static struct {
        char *paths[NK_BROKER_LOCAL_MAX];
        size_t n;
} local_grants;

static int read_local_grants(const uint8_t *payload, size_t len)
{
        struct nk_rd rd = nk_rd_init(payload, len);
        uint32_t n;
        if (!nk_rd_u32(&rd, &n) || n > NK_BROKER_LOCAL_MAX - local_grants.n)
                return -EPROTO;
        for (uint32_t i = 0; i < n; i++) {
                const uint8_t *p;
                size_t plen;
                if (!nk_rd_str(&rd, PATH_MAX - 1, &p, &plen) || plen == 0 || p[0] != '/' || memchr(p, 0, plen))
                        return -EPROTO;
                char *copy = strndup((const char *) p, plen);
                if (!copy)
                        return -ENOMEM;
                local_grants.paths[local_grants.n++] = copy;
        }
        return rd.left == 0 ? 0 : -EPROTO;
}

bool nk_broker_client_granted(const char *path)
{
        /* Compared as the broker will see it: without empty or "."
         * components (the grants are normalised by the policy loader). */
        char norm[PATH_MAX];
        size_t o = 0;
        for (const char *p = path; *p;) {
                while (*p == '/')
                        p++;
                size_t n = strcspn(p, "/");
                if (n > 0 && !(n == 1 && p[0] == '.')) {
                        if (o + 1 + n >= sizeof norm)
                                return true;    /* too long to be the host's own: the broker's */
                        norm[o++] = '/';
                        memcpy(norm + o, p, n);
                        o += n;
                }
                p += n;
        }
        norm[o] = '\0';
        for (size_t i = 0; i < local_grants.n; i++) {
                size_t n = strlen(local_grants.paths[i]);
                if (strncmp(norm, local_grants.paths[i], n) == 0 && (norm[n] == '/' || norm[n] == '\0'))
                        return true;
        }
        return false;
}

int nk_broker_client_accept(int channel)
{
        struct nk_msg_header h;
        int fd;
        _cleanup_free_ uint8_t *buf = malloc(sizeof h + NK_BROKER_CHANNEL_MAX);
        if (!buf)
                return -ENOMEM;
        ssize_t n = nk_fdpass_recv(channel, buf, sizeof h + NK_BROKER_CHANNEL_MAX, 0, &fd);
        if (n < 0)
                return (int) n;
        if (n >= (ssize_t) sizeof h)
                memcpy(&h, buf, sizeof h);
        if (n < (ssize_t) sizeof h || h.type != NK_MSG_BROKER_CHANNEL || h.payload_len != (uint64_t) n - sizeof h ||
            fd < 0 || read_local_grants(buf + sizeof h, (size_t) n - sizeof h) < 0) {
                if (fd >= 0)
                        close(fd);
                return -EPROTO;
        }
        int type = 0;
        socklen_t tl = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET) {
                close(fd);
                return -EPROTO;
        }
        nk_broker_client_set_socket(fd);
        return 1;
}

/* With bc.lock held: fails every waiter (the socket is gone). */
static void fail_all_locked(int error)
{
        bc.broken = true;
        for (struct waiter *w = bc.waiters; w; w = w->next)
                if (!w->done) {
                        w->done = true;
                        w->error = error;
                        pthread_cond_signal(&w->cond);
                }
}

/* Reads one answer and gives it to its waiter. Called without the lock by
 * the thread that has the reader's role. */
static void read_one(void)
{
        uint8_t buf[NK_BROKER_MSG_MAX];
        int fd;
        ssize_t n = nk_fdpass_recv(bc.sock, buf, sizeof buf, 0, &fd);
        struct nk_msg_header h;
        uint32_t err;

        pthread_mutex_lock(&bc.lock);
        if (n == 0 || (n < 0 && n != -EBADMSG)) {
                fail_all_locked(n == 0 ? EIO : (int) -n);
                goto out;
        }
        if (n < (ssize_t) (sizeof h + sizeof err))
                goto drop;
        memcpy(&h, buf, sizeof h);
        memcpy(&err, buf + sizeof h, sizeof err);
        if (h.type != NK_MSG_BROKER_REPLY || h.payload_len != (uint64_t) n - sizeof h)
                goto drop;
        for (struct waiter *w = bc.waiters; w; w = w->next) {
                if (w->id != h.id || w->done)
                        continue;
                /* An answer to open or connect carries a descriptor or an
                 * errno; one to resolve never a descriptor. Anything else
                 * fails the request, and the descriptor is closed. */
                size_t extra = (size_t) n - sizeof h - sizeof err;
                bool bad = w->payload ? fd >= 0 || extra > w->len : (err == 0) != (fd >= 0) || extra;
                w->done = true;
                w->error = bad ? EIO : err ? (int) (err < 4096 ? err : EIO) : 0;
                if (!bad && w->payload) {
                        memcpy(w->payload, buf + sizeof h + sizeof err, extra);
                        w->len = extra;
                }
                pthread_cond_signal(&w->cond);
                if (bad)
                        break;
                w->fd = fd;
                goto out;
        }
drop:
        /* An answer to nobody, or malformed: its descriptor must not stay
         * open in the host for a NIF to find. */
        if (fd >= 0)
                close(fd);
out:
        pthread_mutex_unlock(&bc.lock);
}

static int request(uint32_t type, struct iovec *iov, size_t niov, uint8_t *payload, size_t *len)
{
        struct waiter w = { .fd = -1, .payload = payload, .len = len ? *len : 0 };
        pthread_cond_init(&w.cond, NULL);

        pthread_mutex_lock(&bc.lock);
        if (bc.sock < 0 || bc.broken) {
                pthread_mutex_unlock(&bc.lock);
                pthread_cond_destroy(&w.cond);
                return -ENOTCONN;
        }
        w.id = ++bc.next_id;
        w.next = bc.waiters;
        bc.waiters = &w;
        int sock = bc.sock;
        pthread_mutex_unlock(&bc.lock);

        size_t total = 0;
        for (size_t i = 1; i < niov; i++)
                total += iov[i].iov_len;
        struct nk_msg_header h = { .type = type, .id = w.id, .payload_len = total };
        iov[0] = (struct iovec) { &h, sizeof h };
        int r = total + sizeof h > NK_BROKER_MSG_MAX ? -ENAMETOOLONG : nk_fdpass_send(sock, iov, niov, -1);

        pthread_mutex_lock(&bc.lock);
        if (r < 0) {
                w.done = true;
                w.error = -r;
        }
        while (!w.done) {
                if (!bc.reading) {
                        bc.reading = true;
                        pthread_mutex_unlock(&bc.lock);
                        read_one();
                        pthread_mutex_lock(&bc.lock);
                        bc.reading = false;
                        /* Someone else's answer may be next: let a
                         * waiter that is still waiting read it. */
                        for (struct waiter *o = bc.waiters; o; o = o->next)
                                if (!o->done && o != &w) {
                                        pthread_cond_signal(&o->cond);
                                        break;
                                }
                } else
                        pthread_cond_wait(&w.cond, &bc.lock);
        }
        for (struct waiter **pp = &bc.waiters; *pp; pp = &(*pp)->next)
                if (*pp == &w) {
                        *pp = w.next;
                        break;
                }
        if (!bc.reading)
                for (struct waiter *o = bc.waiters; o; o = o->next)
                        if (!o->done) {
                                pthread_cond_signal(&o->cond);
                                break;
                        }
        pthread_mutex_unlock(&bc.lock);
        pthread_cond_destroy(&w.cond);
        if (len)
                *len = w.len;
        if (w.error)
                return -w.error;
        return w.fd >= 0 ? w.fd : 0;
}

int nk_broker_client_open(const char *path, int flags, unsigned mode)
{
        size_t len = strnlen(path, PATH_MAX);
        if (len >= PATH_MAX)
                return -ENAMETOOLONG;
        uint32_t f = (uint32_t) flags, m = mode;
        struct iovec iov[] = { {}, { &f, 4 }, { &m, 4 }, { (void *) path, len } };
        int r = request(NK_MSG_BROKER_OPEN, iov, NK_ARRAY_SIZE(iov), NULL, NULL);
        /* No broker: no grants, so no file exists (see broker.c). */
        return r == -ENOTCONN ? -ENOENT : r;
}

int nk_broker_client_connect(int type, int protocol, const struct sockaddr *sa, socklen_t len)
{
        uint32_t t = (uint32_t) type, p = (uint32_t) protocol;
        if (len > sizeof(struct sockaddr_storage))
                return -EINVAL;
        struct iovec iov[] = { {}, { &t, 4 }, { &p, 4 }, { (void *) sa, len } };
        int r = request(NK_MSG_BROKER_CONNECT, iov, NK_ARRAY_SIZE(iov), NULL, NULL);
        return r == -ENOTCONN ? -EACCES : r;
}

int nk_broker_client_listen(int type, int protocol, int backlog, const struct sockaddr *sa, socklen_t len)
{
        uint32_t t = (uint32_t) type, p = (uint32_t) protocol, b = (uint32_t) backlog;
        if (len > sizeof(struct sockaddr_storage))
                return -EINVAL;
        struct iovec iov[] = { {}, { &t, 4 }, { &p, 4 }, { &b, 4 }, { (void *) sa, len } };
        int r = request(NK_MSG_BROKER_LISTEN, iov, NK_ARRAY_SIZE(iov), NULL, NULL);
        return r == -ENOTCONN ? -EACCES : r;
}

int nk_broker_client_resolve(const char *name, int family, struct sockaddr_storage *ret, size_t max)
{
        uint32_t f = (uint32_t) family;
        size_t len = strnlen(name, 1025);
        if (len == 0 || len > 1024)
                return -EINVAL;
        uint8_t answer[NK_BROKER_MSG_MAX];
        size_t alen = sizeof answer;
        struct iovec iov[] = { {}, { &f, 4 }, { (void *) name, len } };
        int r = request(NK_MSG_BROKER_RESOLVE, iov, NK_ARRAY_SIZE(iov), answer, &alen);
        if (r < 0)
                return r == -ENOTCONN ? -EACCES : r;
        struct nk_rd rd = nk_rd_init(answer, alen);
        uint32_t n;
        if (!nk_rd_u32(&rd, &n))
                return -EIO;
        size_t got = 0;
        for (uint32_t i = 0; i < n; i++) {
                const uint8_t *sa;
                size_t salen;
                if (!nk_rd_str(&rd, sizeof *ret, &sa, &salen))
                        return -EIO;
                if (got < max) {
                        memset(&ret[got], 0, sizeof ret[got]);
                        memcpy(&ret[got], sa, salen);
                        got++;
                }
        }
        return (int) got;
}

int nk_broker_client_cwd(char *buf, size_t size)
{
        uint8_t answer[PATH_MAX];
        size_t alen = sizeof answer;
        struct iovec iov[] = { {} };
        int r = request(NK_MSG_BROKER_CWD, iov, NK_ARRAY_SIZE(iov), answer, &alen);
        if (r < 0)
                return r;
        if (alen == 0 || answer[0] != '/' || memchr(answer, 0, alen))
                return -EIO;
        if (alen + 1 > size)
                return -ERANGE;
        memcpy(buf, answer, alen);
        buf[alen] = '\0';
        return 0;
}

int nk_broker_client_unlink(const char *path)
{
        size_t len = strnlen(path, PATH_MAX);
        if (len >= PATH_MAX)
                return -ENAMETOOLONG;
        /* An answer buffer of no room: the reply carries an error only,
         * never a descriptor. */
        uint8_t none[1];
        size_t nlen = 0;
        struct iovec iov[] = { {}, { (void *) path, len } };
        int r = request(NK_MSG_BROKER_UNLINK, iov, NK_ARRAY_SIZE(iov), none, &nlen);
        return r == -ENOTCONN ? -ENOENT : r;
}
