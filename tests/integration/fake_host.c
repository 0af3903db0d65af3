/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A hostile stand-in for nifkit-host: answers LOAD or the first CALL with
 * the malformed message $NK_FAKE_MODE names (or, for "no-read", stops
 * reading after LOAD), then waits to be killed. The
 * runtime must notice, kill it and report a protocol error.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol.h"
#include "transport.h"

static struct nk_transport tr;

static void send_buf(uint32_t type, uint64_t id, struct nk_buf *b)
{
        struct iovec iov = { b->data, b->len };
        nk_transport_send(&tr, type, id, &iov, 1);
        nk_buf_free(b);
}

static void loaded(struct nk_buf *b, const char *module)
{
        nk_put_str(b, module, strlen(module));
        nk_put_u32(b, 1);
        nk_put_str(b, "f", 1);
        nk_put_u32(b, 0);
        nk_put_u32(b, 0);
}

static _Noreturn void hang(void)
{
        for (;;)
                pause();
}

int main(int argc, char **argv)
{
        const char *mode = getenv("NK_FAKE_MODE");
        if (argc != 3 || strcmp(argv[1], "--fd") != 0 || !mode) {
                fprintf(stderr, "fake_host: usage: NK_FAKE_MODE=mode fake_host --fd N\n");
                return 2;
        }
        int fd = atoi(argv[2]);
        nk_transport_init(&tr, fd, 0);

        struct nk_msg m;
        struct nk_buf b = {};
        if (nk_transport_recv(&tr, &m) < 0 || m.h.type != NK_MSG_LOAD)
                return 1;
        if (strcmp(mode, "loaded-bad-name") == 0) {
                nk_put_u32(&b, 0);
                nk_put_u32(&b, 0);
                send_buf(NK_MSG_LOADED, m.h.id, &b);
                hang();
        }
        if (strcmp(mode, "loaded-bad-utf8") == 0) {
                loaded(&b, "fa\xc0\xafke");
                send_buf(NK_MSG_LOADED, m.h.id, &b);
                hang();
        }
        if (strcmp(mode, "loaded-count-lie") == 0) {
                /* A count the payload cannot hold: refused before
                 * anything is allocated for it. */
                nk_put_str(&b, "fake", 4);
                nk_put_u32(&b, 65536);
                send_buf(NK_MSG_LOADED, m.h.id, &b);
                hang();
        }
        if (strcmp(mode, "loaded-bad-arity") == 0 || strcmp(mode, "loaded-nul-name") == 0) {
                bool arity = strcmp(mode, "loaded-bad-arity") == 0;
                nk_put_str(&b, "fake", 4);
                nk_put_u32(&b, 1);
                nk_put_str(&b, arity ? "f" : "f\0g", arity ? 1 : 3);
                nk_put_u32(&b, arity ? 256 : 0);
                nk_put_u32(&b, 0);
                send_buf(NK_MSG_LOADED, m.h.id, &b);
                hang();
        }
        loaded(&b, "fake");
        if (strcmp(mode, "loaded-trailing") == 0) {
                nk_put_u32(&b, 0);      /* the optional callbacks, then more */
                nk_put_u32(&b, 12345);
        }
        if (strcmp(mode, "loaded-bad-callbacks") == 0)
                nk_put_u32(&b, 12345);
        send_buf(NK_MSG_LOADED, m.h.id, &b);
        nk_msg_free(&m);

        if (strcmp(mode, "no-read") == 0)
                hang();
        if (nk_transport_recv(&tr, &m) < 0 || m.h.type != NK_MSG_CALL)
                hang();
        static const uint8_t nil[] = { 131, 106 };
        if (strcmp(mode, "result-bad-status") == 0) {
                nk_put_u32(&b, 7);
                nk_buf_put(&b, nil, sizeof nil);
                send_buf(NK_MSG_RESULT, m.h.id, &b);
        } else if (strcmp(mode, "result-not-etf") == 0) {
                nk_put_u32(&b, 0);
                nk_buf_put(&b, "xx", 2);
                send_buf(NK_MSG_RESULT, m.h.id, &b);
        } else if (strcmp(mode, "unknown-id") == 0) {
                nk_put_u32(&b, 0);
                nk_buf_put(&b, nil, sizeof nil);
                send_buf(NK_MSG_RESULT, m.h.id + 1000, &b);
        } else if (strcmp(mode, "huge") == 0) {
                struct nk_msg_header h = { .type = NK_MSG_RESULT, .id = m.h.id, .payload_len = UINT64_C(1) << 40 };
                (void) !send(fd, &h, sizeof h, 0);
        } else if (strcmp(mode, "unexpected-type") == 0) {
                nk_put_u32(&b, 0);
                send_buf(NK_MSG_CALL, 5, &b);
        } else if (strcmp(mode, "send-with-id") == 0) {
                /* SEND needs no reply: an id would make it one. */
                nk_put_str(&b, nil, sizeof nil);
                nk_buf_put(&b, nil, sizeof nil);
                send_buf(NK_MSG_SEND, m.h.id, &b);
        } else if (strcmp(mode, "short-datagram") == 0) {
                (void) !send(fd, "short", 5, 0);
        } else if (strcmp(mode, "killed-mid-message") == 0) {
                /* The first datagram of a long RESULT, then death by a
                 * signal, as a host killed while it replies. */
                struct nk_msg_header h = { .type = NK_MSG_RESULT, .id = m.h.id, .payload_len = 1 << 20 };
                uint8_t first[sizeof h + 64] = {};
                memcpy(first, &h, sizeof h);
                (void) !send(fd, first, sizeof first, 0);
                raise(SIGKILL);
        }
        hang();
}
