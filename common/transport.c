/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "macro.h"
#include "transport.h"

#define FRAME_BUF_SIZE (NK_PROTO_HEADER_SIZE + NK_FRAME_MAX)
/* Segments one datagram may gather: the header plus slices of the caller's iov. */
#define MAX_SEGMENTS 16

const char *nk_msg_type_name(uint32_t type)
{
        static const char *const names[] = {
                [NK_MSG_LOAD] = "LOAD",       [NK_MSG_LOADED] = "LOADED",
                [NK_MSG_ERROR] = "ERROR",     [NK_MSG_CALL] = "CALL",
                [NK_MSG_RESULT] = "RESULT",   [NK_MSG_SEND] = "SEND",
                [NK_MSG_RELEASE] = "RELEASE", [NK_MSG_PING] = "PING",
                [NK_MSG_PONG] = "PONG",       [NK_MSG_STOP] = "STOP",
                [NK_MSG_VIOLATION] = "VIOLATION",
                [NK_MSG_OPEN] = "OPEN",       [NK_MSG_RUN_LOAD] = "RUN_LOAD",
                [NK_MSG_LOAD_DONE] = "LOAD_DONE", [NK_MSG_UPGRADE] = "UPGRADE", [NK_MSG_UNLOAD] = "UNLOAD",
                [NK_MSG_BROKER_CHANNEL] = "BROKER_CHANNEL", [NK_MSG_SHM_REGION] = "SHM_REGION",
                [NK_MSG_BROKER_CWD] = "BROKER_CWD", [NK_MSG_BROKER_UNLINK] = "BROKER_UNLINK",
        };
        if (type < NK_ARRAY_SIZE(names) && names[type])
                return names[type];
        return "unknown";
}

int nk_transport_init(struct nk_transport *t, int fd, size_t max_payload)
{
        *t = (struct nk_transport) {
                .fd = fd,
                .max_payload = max_payload ? max_payload : NK_PAYLOAD_MAX_DEFAULT,
                .max_send = max_payload ? max_payload : NK_PAYLOAD_MAX_DEFAULT,
        };
        t->frame = malloc(FRAME_BUF_SIZE);
        if (!t->frame)
                return -ENOMEM;
        pthread_mutex_init(&t->send_lock, NULL);
        return 0;
}

void nk_transport_done(struct nk_transport *t)
{
        if (!t->frame)
                return;
        free(t->frame);
        t->frame = NULL;
        pthread_mutex_destroy(&t->send_lock);
}

void nk_msg_free(struct nk_msg *m)
{
        if (!m)
                return;
        free(m->payload);
        m->payload = NULL;
}

/* Fills out[] with the pieces of the logical payload iov[] covering
 * [off, off + len); returns how many, or -E2BIG if more than max. */
static int slice_iov(const struct iovec *iov, size_t niov, size_t off, size_t len,
                     struct iovec *out, size_t max)
{
        size_t n = 0;
        for (size_t i = 0; i < niov && len > 0; i++) {
                if (off >= iov[i].iov_len) {
                        off -= iov[i].iov_len;
                        continue;
                }
                size_t take = iov[i].iov_len - off;
                if (take > len)
                        take = len;
                if (n == max)
                        return -E2BIG;
                out[n++] = (struct iovec) { .iov_base = (char *) iov[i].iov_base + off, .iov_len = take };
                len -= take;
                off = 0;
        }
        return (int) n;
}

static int send_datagram(int fd, struct iovec *seg, size_t nseg)
{
        struct msghdr mh = { .msg_iov = seg, .msg_iovlen = nseg };
        for (;;) {
                /* SEQPACKET sends are atomic: no partial writes to resume. */
                ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
                if (n >= 0)
                        return 0;
                if (errno != EINTR)
                        return -errno;
        }
}

int nk_transport_send(struct nk_transport *t, uint32_t type, uint64_t id,
                      const struct iovec *iov, size_t niov)
{
        size_t total = 0;
        for (size_t i = 0; i < niov; i++) {
                if (iov[i].iov_len > SIZE_MAX - total)
                        return -EMSGSIZE;
                total += iov[i].iov_len;
        }
        if (total > t->max_send)
                return -EMSGSIZE;
        if (niov >= MAX_SEGMENTS)
                return -E2BIG;

        struct nk_msg_header h = { .type = type, .flags = 0, .id = id, .payload_len = total };
        struct iovec seg[MAX_SEGMENTS];
        int r = 0;

        pthread_mutex_lock(&t->send_lock);
        size_t off = 0;
        do {
                size_t chunk = total - off < NK_FRAME_MAX ? total - off : NK_FRAME_MAX;
                size_t first = 0;
                if (off == 0) {
                        seg[0] = (struct iovec) { .iov_base = &h, .iov_len = sizeof h };
                        first = 1;
                }
                int n = slice_iov(iov, niov, off, chunk, seg + first, MAX_SEGMENTS - first);
                if (n < 0) {
                        r = n;
                        break;
                }
                r = send_datagram(t->fd, seg, first + (size_t) n);
                if (r < 0)
                        break;
                off += chunk;
        } while (off < total);
        pthread_mutex_unlock(&t->send_lock);
        return r;
}

int nk_transport_try_send(struct nk_transport *t, uint32_t type, uint64_t id)
{
        return nk_transport_try_sendv(t, type, id, NULL, 0);
}

int nk_transport_try_sendv(struct nk_transport *t, uint32_t type, uint64_t id, const struct iovec *iov,
                           size_t niov)
{
        struct iovec seg[MAX_SEGMENTS];
        struct nk_msg_header h = { .type = type, .flags = 0, .id = id };
        if (niov + 1 > MAX_SEGMENTS)
                return -E2BIG;
        seg[0] = (struct iovec) { &h, sizeof h };
        for (size_t i = 0; i < niov; i++) {
                seg[i + 1] = iov[i];
                h.payload_len += iov[i].iov_len;
        }
        if (h.payload_len > NK_FRAME_MAX || h.payload_len > t->max_send)
                return -EMSGSIZE;
        if (pthread_mutex_trylock(&t->send_lock) != 0)
                return -EAGAIN;
        struct msghdr mh = { .msg_iov = seg, .msg_iovlen = niov + 1 };
        ssize_t n;
        do
                n = sendmsg(t->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        int r = n < 0 ? -errno : 0;
        pthread_mutex_unlock(&t->send_lock);
        return r == -EWOULDBLOCK ? -EAGAIN : r;
}

/* One datagram into buf; returns its length (0 = peer closed), -EBADMSG if
 * it was longer than cap, or -errno. */
static ssize_t recv_datagram(int fd, void *buf, size_t cap)
{
        struct iovec v = { .iov_base = buf, .iov_len = cap };
        struct msghdr mh = { .msg_iov = &v, .msg_iovlen = 1 };
        for (;;) {
                ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == ECONNRESET ? -ECONNRESET : -errno;
                if (mh.msg_flags & MSG_TRUNC)
                        return -EBADMSG;
                return n;
        }
}

/* Discards the rest of a refused message. */
static int skip_payload(struct nk_transport *t)
{
        while (t->skip > 0) {
                ssize_t n = recv_datagram(t->fd, t->frame, FRAME_BUF_SIZE);
                if (n == 0)
                        return -ECONNRESET;
                if (n == -EBADMSG)
                        n = FRAME_BUF_SIZE;
                if (n < 0)
                        return (int) n;
                t->skip -= (uint64_t) n < t->skip ? (uint64_t) n : t->skip;
        }
        return 0;
}

int nk_transport_recv(struct nk_transport *t, struct nk_msg *ret)
{
        *ret = (struct nk_msg) {};
        int r = skip_payload(t);
        if (r < 0)
                return r;

        ssize_t n = recv_datagram(t->fd, t->frame, FRAME_BUF_SIZE);
        if (n == 0)
                return -ECONNRESET;
        if (n < 0)
                return (int) n;
        if ((size_t) n < NK_PROTO_HEADER_SIZE)
                return -EBADMSG;

        struct nk_msg_header h;
        memcpy(&h, t->frame, sizeof h);
        uint64_t have = (uint64_t) n - NK_PROTO_HEADER_SIZE;
        if (have > h.payload_len)
                return -EBADMSG;
        if (h.payload_len > t->max_payload) {
                ret->h = h;
                t->skip = h.payload_len - have;
                return -EMSGSIZE;
        }
        if (h.payload_len == 0) {
                ret->h = h;
                return 0;
        }

        _cleanup_free_ uint8_t *payload = malloc(h.payload_len);
        if (!payload) {
                t->skip = h.payload_len - have;
                return -ENOMEM;
        }
        memcpy(payload, t->frame + NK_PROTO_HEADER_SIZE, have);
        while (have < h.payload_len) {
                size_t want = h.payload_len - have < NK_FRAME_MAX ? h.payload_len - have : NK_FRAME_MAX;
                /* The stream ending within a message is the peer's end,
                 * not a lie: a host killed while it replies. The caller
                 * learns why from the peer's exit, as for any close. */
                n = recv_datagram(t->fd, payload + have, want);
                if (n == 0)
                        return -ECONNRESET;
                if (n < 0)
                        return (int) n;
                have += (uint64_t) n;
        }
        ret->h = h;
        ret->payload = TAKE_PTR(payload);
        return 0;
}
