/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the runtime's reader of a host's shared-memory
 * region (common/shm.h, nk_shm_rx_take): the bytes are what a hostile host
 * writes in its slot, frame after frame. The input is a series of frames,
 * each the 48 bytes of a frame header followed by a slot's data area
 * (SLOT bytes, zero-padded when the input runs out), taken as the runtime
 * takes a reply: one message assembled from chunks, checked against the
 * limits. Nothing may crash or read outside the slot, and whatever is
 * accepted must add up.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "shm.h"

#define SLOT 4096
#define MAX_PAYLOAD (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_reply(uint32_t type)
{
        return type == NK_MSG_RESULT || type == NK_MSG_ERROR;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct nk_shm_half half;
        /* Exactly a slot, on the heap: AddressSanitizer sees any read
         * beyond it. */
        uint8_t *area = malloc(SLOT);
        struct nk_shm_rx rx = {};
        const size_t header = sizeof(struct nk_shm_frame);

        if (!area)
                abort();
        while (size >= header) {
                memcpy(&half.f, data, header);
                data += header;
                size -= header;
                size_t n = size < SLOT ? size : SLOT;
                memset(area, 0, SLOT);
                memcpy(area, data, n);
                data += n;
                size -= n;

                const char *why = NULL;
                int r = nk_shm_rx_take(&rx, &half, area, SLOT, MAX_PAYLOAD, is_reply, &why);
                if (r < 0) {
                        if ((r == -EBADMSG) != (why != NULL) || (r != -EBADMSG && r != -EMSGSIZE && r != -ENOMEM))
                                abort();
                        if (r == -EMSGSIZE && rx.total <= MAX_PAYLOAD)
                                abort();
                        break;
                }
                if (!is_reply(rx.type) || rx.total > MAX_PAYLOAD || rx.have > rx.total ||
                    (r == 1) != (rx.have == rx.total))
                        abort();
                if (r == 1) {
                        /* A whole message: every byte of it is readable. */
                        volatile uint8_t sink = 0;
                        for (uint64_t i = 0; i < rx.total; i++)
                                sink ^= rx.buf[i];
                        (void) sink;
                        nk_shm_rx_free(&rx);
                }
        }
        nk_shm_rx_free(&rx);
        free(area);
        return 0;
}
