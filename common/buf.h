/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer, shared by the host and the runtime. */
#ifndef NIFKIT_BUF_H
#define NIFKIT_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct nk_buf {
        uint8_t *data;
        size_t len;
        size_t cap;
};

/* Makes room for n more bytes. Returns 0 or -ENOMEM. */
int nk_buf_reserve(struct nk_buf *b, size_t n);
int nk_buf_put(struct nk_buf *b, const void *p, size_t n);
int nk_buf_put_u8(struct nk_buf *b, uint8_t v);
int nk_buf_put_be16(struct nk_buf *b, uint16_t v);
int nk_buf_put_be32(struct nk_buf *b, uint32_t v);
int nk_buf_put_be64(struct nk_buf *b, uint64_t v);
void nk_buf_free(struct nk_buf *b);
/* Hands the bytes to the caller and leaves b empty. */
uint8_t *nk_buf_steal(struct nk_buf *b, size_t *ret_len);

static inline uint16_t nk_get_be16(const uint8_t *p) { return (uint16_t) (p[0] << 8 | p[1]); }
static inline uint32_t nk_get_be32(const uint8_t *p)
{
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}
static inline uint64_t nk_get_be64(const uint8_t *p)
{
        return (uint64_t) nk_get_be32(p) << 32 | nk_get_be32(p + 4);
}

#endif
