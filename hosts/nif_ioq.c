/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enif_ioq_*: a byte queue made of binary slices, as BEAM's I/O queues.
 *
 * Each slice holds a reference to the struct nk_binobj its bytes live in,
 * so enqueueing shares data instead of copying it, and a slice stays valid
 * however long the queue keeps it. Data that comes without a binary object
 * (an ErlNifBinary or iovec entry whose ref_bin is NULL: bytes an env owns)
 * is copied into a new one, as BEAM copies bytes it cannot reference.
 *
 * The slices are kept as one array of SysIOVec (what enif_ioq_peek hands
 * out) and a parallel array of objects, between head and tail indexes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host_internal.h"
#include "nif_api.h"
#include "term.h"

struct erts_io_queue {
        SysIOVec *iov;
        struct nk_binobj **objs;
        size_t head, tail, cap;         /* live slices are [head, tail) */
        size_t size;                    /* bytes */
};

ErlNifIOQueue *enif_ioq_create(ErlNifIOQueueOpts opts)
{
        if (opts != ERL_NIF_IOQ_NORMAL)
                return NULL;
        return calloc(1, sizeof(ErlNifIOQueue));
}

void enif_ioq_destroy(ErlNifIOQueue *q)
{
        if (!q)
                return;
        for (size_t i = q->head; i < q->tail; i++)
                nk_binobj_release(q->objs[i]);
        free(q->iov);
        free(q->objs);
        free(q);
}

/* Room for n more slices at the tail. */
static int reserve(ErlNifIOQueue *q, size_t n)
{
        size_t live = q->tail - q->head, cap;
        SysIOVec *iov;
        struct nk_binobj **objs;

        if (q->tail + n <= q->cap)
                return 0;
        if (q->head > 0 && live + n <= q->cap) {
                memmove(q->iov, q->iov + q->head, live * sizeof(*q->iov));
                memmove(q->objs, q->objs + q->head, live * sizeof(*q->objs));
                q->head = 0;
                q->tail = live;
                return 0;
        }
        cap = q->cap ? q->cap : 8;
        while (cap < live + n)
                cap *= 2;
        iov = malloc(cap * sizeof(*iov));
        objs = malloc(cap * sizeof(*objs));
        if (!iov || !objs) {
                free(iov);
                free(objs);
                return -ENOMEM;
        }
        if (live) {
                memcpy(iov, q->iov + q->head, live * sizeof(*iov));
                memcpy(objs, q->objs + q->head, live * sizeof(*objs));
        }
        free(q->iov);
        free(q->objs);
        q->iov = iov;
        q->objs = objs;
        q->cap = cap;
        q->head = 0;
        q->tail = live;
        return 0;
}

/* Appends len bytes at data, referencing obj (which contains them) or, when
 * obj is NULL, a private copy. */
static int push(ErlNifIOQueue *q, const uint8_t *data, size_t len, struct nk_binobj *obj)
{
        if (len == 0)
                return 0;
        if (obj)
                nk_binobj_keep(obj);
        else {
                obj = nk_binobj_new(len);
                if (!obj)
                        return -ENOMEM;
                memcpy(obj->data, data, len);
                data = obj->data;
        }
        q->iov[q->tail].iov_base = (void *) data;
        q->iov[q->tail].iov_len = len;
        q->objs[q->tail] = obj;
        q->tail++;
        q->size += len;
        return 0;
}

/* Undoes pushes back to tail `mark` after a failure half-way. */
static void unwind(ErlNifIOQueue *q, size_t mark)
{
        while (q->tail > mark) {
                q->tail--;
                q->size -= q->iov[q->tail].iov_len;
                nk_binobj_release(q->objs[q->tail]);
        }
}

/* 1 when queued, 0 when skip exceeds the vector or memory ran out. The
 * vector itself stays the caller's. */
int enif_ioq_enqv(ErlNifIOQueue *q, ErlNifIOVec *iov, size_t skip)
{
        size_t mark;

        if (!q || !iov || skip > iov->size)
                return 0;
        if (reserve(q, (size_t) iov->iovcnt) < 0)
                return 0;
        mark = q->tail;
        for (int i = 0; i < iov->iovcnt; i++) {
                const uint8_t *data = (const uint8_t *) iov->iov[i].iov_base;
                size_t len = iov->iov[i].iov_len;
                struct nk_binobj *obj = iov->ref_bins ? iov->ref_bins[i] : NULL;

                if (skip >= len) {
                        skip -= len;
                        continue;
                }
                if (push(q, data + skip, len - skip, obj) < 0) {
                        unwind(q, mark);
                        return 0;
                }
                skip = 0;
        }
        return 1;
}

/* Takes the caller's ErlNifBinary: on success it is released (the queue
 * keeps its own reference), as BEAM transfers ownership to the queue. */
int enif_ioq_enq_binary(ErlNifIOQueue *q, ErlNifBinary *bin, size_t skip)
{
        struct nk_binobj *obj = bin->ref_bin;

        if (!q || skip > bin->size)
                return 0;
        if (skip < bin->size) {
                if (reserve(q, 1) < 0 || push(q, bin->data + skip, bin->size - skip, obj) < 0)
                        return 0;
        }
        enif_release_binary(bin);
        return 1;
}

size_t enif_ioq_size(ErlNifIOQueue *q)
{
        return q->size;
}

/* Drops count bytes from the head. 1 on success with *size (if given) the
 * bytes left; 0, with the queue untouched, when it holds fewer. */
int enif_ioq_deq(ErlNifIOQueue *q, size_t count, size_t *size)
{
        if (count > q->size)
                return 0;
        q->size -= count;
        while (count > 0) {
                SysIOVec *v = &q->iov[q->head];
                if (count < v->iov_len) {
                        v->iov_base = (char *) v->iov_base + count;
                        v->iov_len -= count;
                        break;
                }
                count -= v->iov_len;
                nk_binobj_release(q->objs[q->head]);
                q->head++;
        }
        if (q->head == q->tail)
                q->head = q->tail = 0;
        if (size)
                *size = q->size;
        return 1;
}

/* The queue's own slice array: valid until the queue next changes. */
SysIOVec *enif_ioq_peek(ErlNifIOQueue *q, int *iovlen)
{
        if (iovlen)
                *iovlen = (int) (q->tail - q->head);
        return q->iov ? q->iov + q->head : NULL;
}

/* The first slice as a binary term in env, sharing the queue's bytes. */
int enif_ioq_peek_head(ErlNifEnv *env, ErlNifIOQueue *q, size_t *size, ERL_NIF_TERM *head)
{
        struct nk_binobj *obj;
        SysIOVec *v;
        ERL_NIF_TERM t;

        if (q->head == q->tail)
                return 0;
        v = &q->iov[q->head];
        obj = q->objs[q->head];
        t = nk_make_binary_of(env, obj, (size_t) ((uint8_t *) v->iov_base - obj->data), v->iov_len, 0);
        if (t == NK_NONE)
                return 0;
        if (size)
                *size = v->iov_len;
        *head = t;
        return 1;
}
