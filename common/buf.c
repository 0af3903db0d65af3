/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>

#include "buf.h"

int nk_buf_reserve(struct nk_buf *b, size_t n)
{
        if (b->cap - b->len >= n)
                return 0;
        if (n > SIZE_MAX / 2 - b->len)
                return -ENOMEM;
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
                cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = cap;
        return 0;
}

int nk_buf_put(struct nk_buf *b, const void *p, size_t n)
{
        int r = nk_buf_reserve(b, n);
        if (r < 0)
                return r;
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

int nk_buf_put_u8(struct nk_buf *b, uint8_t v)
{
        return nk_buf_put(b, &v, 1);
}

int nk_buf_put_be16(struct nk_buf *b, uint16_t v)
{
        uint8_t p[2] = { (uint8_t) (v >> 8), (uint8_t) v };
        return nk_buf_put(b, p, 2);
}

int nk_buf_put_be32(struct nk_buf *b, uint32_t v)
{
        uint8_t p[4] = { (uint8_t) (v >> 24), (uint8_t) (v >> 16), (uint8_t) (v >> 8), (uint8_t) v };
        return nk_buf_put(b, p, 4);
}

int nk_buf_put_be64(struct nk_buf *b, uint64_t v)
{
        int r = nk_buf_put_be32(b, (uint32_t) (v >> 32));
        return r < 0 ? r : nk_buf_put_be32(b, (uint32_t) v);
}

void nk_buf_free(struct nk_buf *b)
{
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

uint8_t *nk_buf_steal(struct nk_buf *b, size_t *ret_len)
{
        uint8_t *p = b->data;
        if (ret_len)
                *ret_len = b->len;
        b->data = NULL;
        b->len = b->cap = 0;
        return p;
}
