/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The port-program versions of trivial_nif's functions, for {packet, 4}:
 * how a NIF's work is usually moved out of the VM without nifkit.
 *   trivial_port        each request is two big-endian int32, each reply
 *                       their sum (add/2)
 *   trivial_port echo   each reply is its request (echo/1 of a binary)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int write_full(int fd, const uint8_t *p, size_t n)
{
        while (n > 0) {
                ssize_t r = write(fd, p, n);
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

static void put_be32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static int echo(void)
{
        uint8_t len[4];
        uint8_t *buf = NULL;
        size_t cap = 0;

        while (read_full(0, len, sizeof len) == 0) {
                size_t n = be32(len);
                if (n > cap) {
                        free(buf);
                        buf = malloc(n);
                        if (!buf)
                                return 1;
                        cap = n;
                }
                if (read_full(0, buf, n) < 0 || write_full(1, len, sizeof len) < 0 || write_full(1, buf, n) < 0)
                        return 1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        uint8_t req[12], reply[8];

        if (argc > 1 && strcmp(argv[1], "echo") == 0)
                return echo();
        /* Until the VM closes the port. */
        while (read_full(0, req, sizeof req) == 0) {
                if (be32(req) != 8)
                        return 1;
                put_be32(reply, 4);
                put_be32(reply + 4, be32(req + 4) + be32(req + 8));
                if (write_full(1, reply, sizeof reply) < 0)
                        return 1;
        }
        return 0;
}
