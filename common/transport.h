/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Message transport over one SOCK_SEQPACKET socket.
 *
 * A message is sent as datagrams: the first holds the 24-byte header and up
 * to NK_FRAME_MAX bytes of payload, each following one up to NK_FRAME_MAX
 * more, until payload_len bytes have gone. Datagrams are never empty (a
 * zero-length read means the peer closed). A sender holds the transport's
 * send lock for a whole message, so messages from several threads never
 * interleave. Receiving is not locked: each end has exactly one reader
 * thread.
 *
 * This is the only code that touches the socket, so that the hot path can
 * move to a shared-memory ring later without changing the protocol.
 */
#ifndef NIFKIT_TRANSPORT_H
#define NIFKIT_TRANSPORT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "protocol.h"

struct nk_transport {
        int fd;                 /* not owned: the caller closes it */
        size_t max_payload;     /* larger incoming messages are refused */
        size_t max_send;        /* larger outgoing ones too (max_payload unless set) */
        pthread_mutex_t send_lock;
        uint64_t skip;          /* payload bytes of a refused message still to discard */
        uint8_t *frame;         /* receive buffer for first datagrams */
};

struct nk_msg {
        struct nk_msg_header h;
        uint8_t *payload;       /* malloc'd, NULL when payload_len is 0 */
};

/* max_payload 0 means NK_PAYLOAD_MAX_DEFAULT. Returns 0 or -ENOMEM. */
int nk_transport_init(struct nk_transport *t, int fd, size_t max_payload);
void nk_transport_done(struct nk_transport *t);

/*
 * Sends one message whose payload is the concatenation of iov[0..niov).
 * Thread-safe. Returns 0, -EMSGSIZE (payload above the limit, nothing
 * sent), -EPIPE / -ECONNRESET (peer gone), or another -errno. After a
 * failure in the middle of a message the stream is broken: the caller must
 * give up on the peer.
 */
int nk_transport_send(struct nk_transport *t, uint32_t type, uint64_t id,
                      const struct iovec *iov, size_t niov);

/*
 * Sends a message without payload (STOP, PING) without ever blocking:
 * -EAGAIN if another thread is in the middle of a message or the socket's
 * buffer is full. For shutting a peer down that may have stopped reading.
 */
int nk_transport_try_send(struct nk_transport *t, uint32_t type, uint64_t id);
/* The same with a payload that fits one datagram (NK_FRAME_MAX): sent
 * whole or not at all, never waiting (-EAGAIN when another sender holds
 * the transport or the socket is full; -EMSGSIZE when it does not fit). */
int nk_transport_try_sendv(struct nk_transport *t, uint32_t type, uint64_t id, const struct iovec *iov,
                           size_t niov);

/*
 * Receives one message into *ret (free with nk_msg_free). Returns:
 *   0            a message
 *   -ECONNRESET  the peer closed or reset the socket, between messages or
 *                in the middle of one (a peer that dies while it sends:
 *                why it went is its exit's to say, not the stream's)
 *   -EBADMSG     a malformed datagram (shorter than a header, longer than
 *                the payload it continues, truncated); that datagram is
 *                dropped, ret->h is zeroed
 *   -EMSGSIZE    payload_len above the limit; ret->h holds the header so
 *                the caller can refuse that request by id, and the rest of
 *                the message is discarded by the next call
 *   -ENOMEM, other -errno
 */
int nk_transport_recv(struct nk_transport *t, struct nk_msg *ret);

void nk_msg_free(struct nk_msg *m);

#endif
