/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the runtime's side of the host channel: the bytes
 * are what a hostile host writes. The input is cut into datagrams (each a
 * u16 length, then that many bytes), written to a SOCK_SEQPACKET pair and
 * read back by the runtime's transport, then every message is parsed as
 * libnifkit's reader parses it. Nothing may crash, over-read or leak, and
 * whatever parses must respect the protocol's limits.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg_parse.h"
#include "protocol.h"
#include "transport.h"
#include "violation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_loaded(const struct nk_msg *m)
{
        struct nk_discovery d;
        if (nk_parse_loaded(m->payload, m->h.payload_len, &d))
                return;
        if (d.nfuncs > NK_PROTO_FUNCS_MAX || !d.module ||
            !nk_parse_is_atom_text((const uint8_t *) d.module, strlen(d.module)))
                abort();
        for (unsigned i = 0; i < d.nfuncs; i++) {
                const nk_function *f = &d.funcs[i];
                size_t n = strlen(f->name);
                if (n == 0 || n > NK_PROTO_NAME_MAX || f->arity > NK_PROTO_ARITY_MAX || f->flags > 2 ||
                    !nk_parse_is_atom_text((const uint8_t *) f->name, n))
                        abort();
        }
        nk_discovery_free(&d);
}

static void check_send(const struct nk_msg *m)
{
        const uint8_t *to, *msg;
        size_t to_len, msg_len;
        if (nk_parse_send(m->h.id, m->payload, m->h.payload_len, &to, &to_len, &msg, &msg_len) < 0)
                return;
        const uint8_t *end = m->payload + m->h.payload_len;
        if (to < m->payload || to_len > (size_t) (end - to) || msg < to + to_len || msg + msg_len != end ||
            to_len < 2 || msg_len < 2)
                abort();
}

static void parse(const struct nk_msg *m)
{
        /* The request a reply answers is the runtime's choice; the id
         * stands in for it here. */
        static const uint32_t expect[] = { NK_MSG_RESULT, NK_MSG_PONG, NK_MSG_LOAD_DONE, NK_MSG_LOADED };
        int nr;
        uint32_t arch;

        switch (m->h.type) {
        case NK_MSG_LOADED:
                check_loaded(m);
                break;
        case NK_MSG_SEND:
                check_send(m);
                break;
        case NK_MSG_VIOLATION:
                if (nk_violation_parse(m->payload, m->h.payload_len, &nr, &arch) == 0 &&
                    m->h.payload_len != NK_VIOLATION_PAYLOAD_SIZE)
                        abort();
                break;
        default:
                (void) nk_parse_reply(m->h.type, expect[m->h.id % 4], m->payload, m->h.payload_len);
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        int sv[2];
        struct nk_transport t;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        while (size >= 2) {
                size_t n = (size_t) data[0] | (size_t) data[1] << 8;
                data += 2;
                size -= 2;
                if (n > size)
                        n = size;
                if (send(sv[1], data, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                        break;
                data += n;
                size -= n;
        }
        close(sv[1]);

        /* A small limit, so that refusals by size are reached too. */
        if (nk_transport_init(&t, sv[0], 4096) < 0)
                abort();
        for (int i = 0; i < 64; i++) {
                struct nk_msg m;
                int r = nk_transport_recv(&t, &m);
                if (r < 0 && r != -EMSGSIZE)
                        break;
                if (r == 0) {
                        if (m.h.payload_len > 4096 || (m.h.payload_len > 0 && !m.payload))
                                abort();
                        parse(&m);
                }
                nk_msg_free(&m);
        }
        nk_transport_done(&t);
        close(sv[0]);
        return 0;
}
