/* SPDX-License-Identifier: Apache-2.0 */
/* Framing of protocol messages over SOCK_SEQPACKET, and malformed frames. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "protocol.h"
#include "transport.h"

struct pair {
        int fd[2];
        struct nk_transport a, b;       /* a sends on fd[0], b receives on fd[1] */
};

static void pair_open(struct pair *p, size_t max_b)
{
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p->fd), 0);
        assert_int_equal(nk_transport_init(&p->a, p->fd[0], 0), 0);
        assert_int_equal(nk_transport_init(&p->b, p->fd[1], max_b), 0);
}

static void pair_close(struct pair *p)
{
        nk_transport_done(&p->a);
        nk_transport_done(&p->b);
        if (p->fd[0] >= 0)
                close(p->fd[0]);
        close(p->fd[1]);
}

static uint8_t pattern(size_t i, unsigned seed)
{
        return (uint8_t) (i * 131 + seed * 7 + (i >> 16));
}

struct sender {
        struct nk_transport *t;
        size_t len;
        unsigned seed;
        int count;
        bool then_empty;        /* then one empty message, id seq = count */
        int result;
};

/* Sends count messages of len bytes, each in three iov parts so the gather
 * crosses frame boundaries at odd offsets. */
static void *send_thread(void *arg)
{
        struct sender *s = arg;
        uint8_t *buf = malloc(s->len ? s->len : 1);
        for (int k = 0; k < s->count; k++) {
                for (size_t i = 0; i < s->len; i++)
                        buf[i] = pattern(i, s->seed + (unsigned) k);
                size_t a = s->len / 3, b = s->len / 2;
                struct iovec iov[] = {
                        { buf, a }, { buf + a, b - a }, { buf + b, s->len - b },
                };
                s->result = nk_transport_send(s->t, NK_MSG_CALL, ((uint64_t) s->seed << 32) | (unsigned) k, iov, 3);
                if (s->result < 0)
                        break;
        }
        if (s->then_empty && s->result == 0)
                s->result = nk_transport_send(s->t, NK_MSG_CALL, ((uint64_t) s->seed << 32) | (unsigned) s->count,
                                              NULL, 0);
        free(buf);
        return NULL;
}

static void check_payload(const struct nk_msg *m, size_t len, unsigned seed)
{
        assert_int_equal(m->h.payload_len, len);
        for (size_t i = 0; i < len; i++)
                if (m->payload[i] != pattern(i, seed))
                        fail_msg("byte %zu of a %zu-byte payload differs", i, len);
}

static void test_roundtrip_sizes(void **state)
{
        static const size_t sizes[] = {
                0, 1, 23, NK_FRAME_MAX - 1, NK_FRAME_MAX, NK_FRAME_MAX + 1, 3 * NK_FRAME_MAX + 5, 1000000,
        };
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
                struct pair p;
                pair_open(&p, 0);
                struct sender s = { .t = &p.a, .len = sizes[k], .seed = 9, .count = 1 };
                pthread_t t;
                pthread_create(&t, NULL, send_thread, &s);
                struct nk_msg m;
                assert_int_equal(nk_transport_recv(&p.b, &m), 0);
                pthread_join(t, NULL);
                assert_int_equal(s.result, 0);
                assert_int_equal(m.h.type, NK_MSG_CALL);
                assert_int_equal(m.h.flags, 0);
                assert_int_equal(m.h.id, (uint64_t) 9 << 32);
                check_payload(&m, sizes[k], 9);
                if (sizes[k] == 0)
                        assert_null(m.payload);
                nk_msg_free(&m);
                pair_close(&p);
        }
}

static void send_simple(struct nk_transport *t, uint32_t type, uint64_t id, const void *p, size_t len)
{
        struct iovec iov = { (void *) p, len };
        assert_int_equal(nk_transport_send(t, type, id, &iov, 1), 0);
}

static void recv_simple(struct nk_transport *t, uint32_t type, uint64_t id, const char *text)
{
        struct nk_msg m;
        assert_int_equal(nk_transport_recv(t, &m), 0);
        assert_int_equal(m.h.type, type);
        assert_int_equal(m.h.id, id);
        assert_int_equal(m.h.payload_len, strlen(text));
        assert_memory_equal(m.payload, text, strlen(text));
        nk_msg_free(&m);
}

static void test_refuses_large_and_resyncs(void **state)
{
        struct pair p;
        pair_open(&p, 100000);
        struct sender s = { .t = &p.a, .len = 300000, .seed = 1, .count = 1, .then_empty = true };
        pthread_t t;
        pthread_create(&t, NULL, send_thread, &s);
        struct nk_msg m;
        assert_int_equal(nk_transport_recv(&p.b, &m), -EMSGSIZE);
        /* The header survives so the request can be refused by id. */
        assert_int_equal(m.h.id, (uint64_t) 1 << 32);
        assert_int_equal(m.h.payload_len, 300000);
        assert_null(m.payload);
        /* The sender is still blocked on the refused message's tail: the
         * next receive discards it, then finds the following message. */
        recv_simple(&p.b, NK_MSG_CALL, ((uint64_t) 1 << 32) | 1, "");
        pthread_join(t, NULL);
        assert_int_equal(s.result, 0);
        pair_close(&p);
}

static void test_sender_limit(void **state)
{
        struct pair p;
        pair_open(&p, 0);
        /* The sender's own limit, which the runtime sets from
         * max_args_bytes apart from what it accepts (max_payload). */
        p.a.max_send = 10;
        uint8_t big[11] = {};
        struct iovec iov = { big, sizeof big };
        assert_int_equal(nk_transport_send(&p.a, NK_MSG_SEND, 0, &iov, 1), -EMSGSIZE);
        iov.iov_len = 10;
        assert_int_equal(nk_transport_send(&p.a, NK_MSG_SEND, 0, &iov, 1), 0);
        struct nk_msg m;
        assert_int_equal(nk_transport_recv(&p.b, &m), 0);
        nk_msg_free(&m);
        send_simple(&p.a, NK_MSG_PONG, 3, "ok", 2);
        recv_simple(&p.b, NK_MSG_PONG, 3, "ok");
        pair_close(&p);
}

static void test_short_datagram(void **state)
{
        struct pair p;
        pair_open(&p, 0);
        uint8_t junk[10] = { 1, 2, 3 };
        assert_int_equal(send(p.fd[0], junk, sizeof junk, 0), (ssize_t) sizeof junk);
        send_simple(&p.a, NK_MSG_PING, 5, "", 0);
        struct nk_msg m;
        assert_int_equal(nk_transport_recv(&p.b, &m), -EBADMSG);
        assert_int_equal(m.h.type, 0);
        recv_simple(&p.b, NK_MSG_PING, 5, "");
        pair_close(&p);
}

static void test_payload_longer_than_declared(void **state)
{
        struct pair p;
        pair_open(&p, 0);
        uint8_t frame[NK_PROTO_HEADER_SIZE + 8] = {};
        struct nk_msg_header h = { .type = NK_MSG_RESULT, .id = 1, .payload_len = 4 };
        memcpy(frame, &h, sizeof h);
        assert_int_equal(send(p.fd[0], frame, sizeof frame, 0), (ssize_t) sizeof frame);
        struct nk_msg m;
        assert_int_equal(nk_transport_recv(&p.b, &m), -EBADMSG);
        pair_close(&p);
}

static void test_continuation_too_long(void **state)
{
        struct pair p;
        pair_open(&p, 0);
        /* Declares 10 bytes, sends 4 with the header and then 8 more. */
        uint8_t frame[NK_PROTO_HEADER_SIZE + 4] = {};
        struct nk_msg_header h = { .type = NK_MSG_RESULT, .id = 1, .payload_len = 10 };
        memcpy(frame, &h, sizeof h);
        assert_int_equal(send(p.fd[0], frame, sizeof frame, 0), (ssize_t) sizeof frame);
        uint8_t more[8] = {};
        assert_int_equal(send(p.fd[0], more, sizeof more, 0), (ssize_t) sizeof more);
        struct nk_msg m;
        assert_int_equal(nk_transport_recv(&p.b, &m), -EBADMSG);
        assert_null(m.payload);
        pair_close(&p);
}

static void test_eof(void **state)
{
        struct pair p;
        pair_open(&p, 0);
        send_simple(&p.a, NK_MSG_PONG, 1, "x", 1);
        close(p.fd[0]);
        p.fd[0] = -1;
        recv_simple(&p.b, NK_MSG_PONG, 1, "x");
        struct nk_msg m;
        assert_int_equal(nk_transport_recv(&p.b, &m), -ECONNRESET);
        pair_close(&p);

        /* Closed after the first datagram of a two-datagram message: a
         * close like any other (the peer's exit says why it went). */
        pair_open(&p, 0);
        uint8_t frame[NK_PROTO_HEADER_SIZE + 4] = {};
        struct nk_msg_header h = { .type = NK_MSG_RESULT, .id = 2, .payload_len = 10 };
        memcpy(frame, &h, sizeof h);
        assert_int_equal(send(p.fd[0], frame, sizeof frame, 0), (ssize_t) sizeof frame);
        close(p.fd[0]);
        p.fd[0] = -1;
        assert_int_equal(nk_transport_recv(&p.b, &m), -ECONNRESET);
        pair_close(&p);
}

static void test_concurrent_senders_do_not_interleave(void **state)
{
        struct pair p;
        pair_open(&p, 0);
        enum { THREADS = 4, EACH = 6 };
        struct sender s[THREADS];
        pthread_t t[THREADS];
        for (unsigned i = 0; i < THREADS; i++) {
                s[i] = (struct sender) { .t = &p.a, .len = 150000 + i * 1000, .seed = i + 1, .count = EACH };
                pthread_create(&t[i], NULL, send_thread, &s[i]);
        }
        int next[THREADS] = {};
        for (int k = 0; k < THREADS * EACH; k++) {
                struct nk_msg m;
                assert_int_equal(nk_transport_recv(&p.b, &m), 0);
                unsigned seed = (unsigned) (m.h.id >> 32), seq = (unsigned) m.h.id;
                assert_true(seed >= 1 && seed <= THREADS);
                /* One sender's messages stay in order. */
                assert_int_equal(seq, next[seed - 1]++);
                check_payload(&m, s[seed - 1].len, seed + seq);
                nk_msg_free(&m);
        }
        for (unsigned i = 0; i < THREADS; i++) {
                pthread_join(t[i], NULL);
                assert_int_equal(s[i].result, 0);
        }
        pair_close(&p);
}

static void test_payload_reader(void **state)
{
        struct nk_buf b = {};
        assert_int_equal(nk_put_u32(&b, 7), 0);
        assert_int_equal(nk_put_str(&b, "abc", 3), 0);
        assert_int_equal(nk_put_u64(&b, UINT64_C(0x1122334455667788)), 0);
        assert_int_equal(nk_buf_put(&b, "rest", 4), 0);

        struct nk_rd r = nk_rd_init(b.data, b.len);
        uint32_t v;
        uint64_t w;
        const uint8_t *s;
        size_t n;
        assert_true(nk_rd_u32(&r, &v));
        assert_int_equal(v, 7);
        /* A too-small maximum refuses the string and consumes nothing. */
        assert_false(nk_rd_str(&r, 2, &s, &n));
        assert_true(nk_rd_str(&r, 3, &s, &n));
        assert_int_equal(n, 3);
        assert_memory_equal(s, "abc", 3);
        assert_true(nk_rd_u64(&r, &w));
        assert_true(w == UINT64_C(0x1122334455667788));
        nk_rd_rest(&r, &s, &n);
        assert_int_equal(n, 4);
        assert_memory_equal(s, "rest", 4);
        assert_false(nk_rd_u32(&r, &v));
        assert_false(nk_rd_u64(&r, &w));

        /* A string whose length runs past the payload. */
        uint8_t bad[8];
        uint32_t len = 5;
        memcpy(bad, &len, 4);
        memcpy(bad + 4, "abcd", 4);
        r = nk_rd_init(bad, sizeof bad);
        assert_false(nk_rd_str(&r, SIZE_MAX, &s, &n));
        assert_int_equal(r.left, sizeof bad);
        /* And one whose length wraps when 4 is added. */
        len = UINT32_MAX;
        memcpy(bad, &len, 4);
        r = nk_rd_init(bad, sizeof bad);
        assert_false(nk_rd_str(&r, SIZE_MAX, &s, &n));
        nk_buf_free(&b);
}

static void test_type_names(void **state)
{
        assert_string_equal(nk_msg_type_name(NK_MSG_LOAD), "LOAD");
        assert_string_equal(nk_msg_type_name(NK_MSG_STOP), "STOP");
        assert_string_equal(nk_msg_type_name(0), "unknown");
        assert_string_equal(nk_msg_type_name(999), "unknown");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip_sizes),
                cmocka_unit_test(test_refuses_large_and_resyncs),
                cmocka_unit_test(test_sender_limit),
                cmocka_unit_test(test_short_datagram),
                cmocka_unit_test(test_payload_longer_than_declared),
                cmocka_unit_test(test_continuation_too_long),
                cmocka_unit_test(test_eof),
                cmocka_unit_test(test_concurrent_senders_do_not_interleave),
                cmocka_unit_test(test_payload_reader),
                cmocka_unit_test(test_type_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
