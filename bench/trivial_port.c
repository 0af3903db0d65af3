/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The port-program version of trivial_nif:add/2, for {packet, 4}: each
 * request is two big-endian int32, each reply their sum. It is how a NIF's
 * work is usually moved out of the VM without nifkit.
 */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static int read_full(int fd, uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t r = read(fd, p, n);
                if (r <= 0)
                        return -1;
                p += r;
                n -= (size_t) r;
        }
        return 0;
}

static uint32_t be32(const uint8_t *p)
{
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

int main(void)
{
        uint8_t req[12], reply[8];

        /* Until the VM closes the port. */
        while (read_full(0, req, sizeof req) == 0) {
                if (be32(req) != 8)
                        return 1;
                uint32_t sum = be32(req + 4) + be32(req + 8);
                reply[0] = reply[1] = reply[2] = 0;
                reply[3] = 4;
                reply[4] = (uint8_t) (sum >> 24);
                reply[5] = (uint8_t) (sum >> 16);
                reply[6] = (uint8_t) (sum >> 8);
                reply[7] = (uint8_t) sum;
                if (write(1, reply, sizeof reply) != (ssize_t) sizeof reply)
                        return 1;
        }
        return 0;
}
