/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The erl_nif binary API: ErlNifBinary, binary terms, sub-binaries, iolists
 * and I/O vectors.
 *
 * ErlNifBinary.ref_bin holds the struct nk_binobj * the binary owns one
 * reference to (enif_alloc_binary), or NULL for a binary that only looks
 * into a term (enif_inspect_binary), exactly where BEAM keeps its Binary *.
 * __spare__ is never touched. Inspected data stays valid while the env that
 * holds the term lives, because the env holds a reference to the binobj.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "nif_api.h"
#include "term.h"

/* BEAM splits a binary into I/O vector entries of at most this many bytes
 * (MAX_SYSIOVEC_IOVLEN on 64-bit Unix). */
#define IOV_CHUNK_MAX ((size_t) 1 << 31)

static const struct nk_binary *binary_of(ERL_NIF_TERM t)
{
        return nk_is_kind(t, NK_BINARY) ? (const struct nk_binary *) nk_box_of(t) : NULL;
}

/* ---- ErlNifBinary ---------------------------------------------------------------- */

int enif_alloc_binary(size_t size, ErlNifBinary *bin)
{
        struct nk_binobj *obj = nk_binobj_new(size);
        if (!obj)
                return 0;
        bin->size = size;
        bin->data = obj->data;
        bin->ref_bin = obj;
        return 1;
}

int enif_realloc_binary(ErlNifBinary *bin, size_t size)
{
        /* Always into a fresh binobj: the old one may be external
         * (enif_term_to_binary) and its buffer is not ours to realloc. */
        struct nk_binobj *obj = nk_binobj_new(size);
        if (!obj)
                return 0;
        memcpy(obj->data, bin->data, size < bin->size ? size : bin->size);
        /* Without ref_bin the old data belongs to a term (an inspected
         * binary): BEAM leaves it alone and so do we. */
        nk_binobj_release(bin->ref_bin);
        bin->size = size;
        bin->data = obj->data;
        bin->ref_bin = obj;
        return 1;
}

void enif_release_binary(ErlNifBinary *bin)
{
        nk_binobj_release(bin->ref_bin);
        /* A second release, or enif_make_binary after release, is a NIF bug
         * that BEAM turns into a double free; here it becomes a no-op. */
        bin->ref_bin = NULL;
}

int enif_inspect_binary(ErlNifEnv *env, ERL_NIF_TERM bin_term, ErlNifBinary *bin)
{
        const struct nk_binary *b = binary_of(bin_term);

        if (!b || b->bits != 0)
                return 0;       /* not a binary, or a bitstring */
        bin->size = b->size;
        bin->data = (unsigned char *) b->data;
        bin->ref_bin = NULL;
        return 1;
}

ERL_NIF_TERM enif_make_binary(ErlNifEnv *env, ErlNifBinary *bin)
{
        struct nk_binobj *obj = bin->ref_bin;
        ERL_NIF_TERM t;

        if (!obj) {
                /* Not ours (inspected or hand-made): BEAM copies. */
                t = nk_make_binary_copy(env, bin->data, bin->size);
                if (t == NK_NONE)
                        nk_nif_oom("enif_make_binary");
                return t;
        }
        size_t off = 0;
        if (bin->data >= obj->data && bin->data <= obj->data + obj->size)
                off = (size_t) (bin->data - obj->data);
        if (off + bin->size > obj->size)
                off = 0;
        size_t size = bin->size <= obj->size ? bin->size : obj->size;
        t = nk_make_binary_of(env, obj, off, size, 0);
        if (t == NK_NONE)
                nk_nif_oom("enif_make_binary");
        /* The term now holds the data; the NIF's reference goes away, but
         * bin->data stays readable while env lives, as BEAM documents. */
        nk_binobj_release(obj);
        bin->ref_bin = NULL;
        return t;
}

unsigned char *enif_make_new_binary(ErlNifEnv *env, size_t size, ERL_NIF_TERM *termp)
{
        struct nk_binobj *obj = nk_binobj_new(size);
        if (!obj)
                nk_nif_oom("enif_make_new_binary");
        ERL_NIF_TERM t = nk_make_binary_of(env, obj, 0, size, 0);
        nk_binobj_release(obj);         /* the env holds its own reference */
        if (t == NK_NONE)
                nk_nif_oom("enif_make_new_binary");
        *termp = t;
        return obj->data;
}

ERL_NIF_TERM enif_make_sub_binary(ErlNifEnv *env, ERL_NIF_TERM bin_term, size_t pos, size_t size)
{
        const struct nk_binary *b = binary_of(bin_term);

        /* BEAM only asserts these; a NIF that breaks them gets badarg here
         * instead of a term pointing outside the binary. */
        if (!b)
                return enif_make_badarg(env);
        size_t whole = b->bits ? b->size - 1 : b->size;
        if (pos > whole || size > whole - pos)
                return enif_make_badarg(env);
        ERL_NIF_TERM t = nk_make_binary_of(env, b->obj, (size_t) (b->data - b->obj->data) + pos, size, 0);
        if (t == NK_NONE)
                nk_nif_oom("enif_make_sub_binary");
        return t;
}

/* ---- iolists --------------------------------------------------------------------- */

/*
 * Walks an iolist without recursion: deep or long lists come from Erlang
 * code and must not overflow a worker's stack. Heads that are lists push
 * their cell's tail on an explicit stack. With out == NULL only validates
 * and counts; otherwise copies. Returns the byte count, or -EINVAL / -ENOMEM.
 */
struct tail_stack {
        ERL_NIF_TERM *v;
        size_t n, cap;
};

static int push_tail(struct tail_stack *s, ERL_NIF_TERM t)
{
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 32;
                ERL_NIF_TERM *v = realloc(s->v, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                s->v = v;
                s->cap = cap;
        }
        s->v[s->n++] = t;
        return 0;
}

static ssize_t iolist_walk(ERL_NIF_TERM term, uint8_t *out)
{
        struct tail_stack st = { 0 };
        size_t size = 0;
        ERL_NIF_TERM cur = term;
        ssize_t r = -EINVAL;

        for (;;) {
                const struct nk_binary *b;

                if (cur == NK_NIL) {
                        if (st.n == 0)
                                break;
                        cur = st.v[--st.n];
                        continue;
                }
                if ((b = binary_of(cur))) {
                        /* a binary tail ends its list: [1 | <<2>>] */
                        if (b->bits)
                                goto done;
                        if (out)
                                memcpy(out + size, b->data, b->size);
                        size += b->size;
                        cur = NK_NIL;
                        continue;
                }
                if (!nk_is_kind(cur, NK_CONS))
                        goto done;
                const struct nk_cons *c = (const struct nk_cons *) nk_box_of(cur);
                ERL_NIF_TERM h = c->head;
                if (nk_is_small(h)) {
                        int64_t v = nk_small_value(h);
                        if (v < 0 || v > 255)
                                goto done;
                        if (out)
                                out[size] = (uint8_t) v;
                        size++;
                        cur = c->tail;
                } else if ((b = binary_of(h))) {
                        if (b->bits)
                                goto done;
                        if (out)
                                memcpy(out + size, b->data, b->size);
                        size += b->size;
                        cur = c->tail;
                } else if (h == NK_NIL) {
                        cur = c->tail;
                } else if (nk_is_kind(h, NK_CONS)) {
                        if (push_tail(&st, c->tail) < 0) {
                                r = -ENOMEM;
                                goto done;
                        }
                        cur = h;
                } else
                        goto done;
        }
        r = size > SSIZE_MAX ? -E2BIG : (ssize_t) size;
done:
        free(st.v);
        return r;
}

int enif_inspect_iolist_as_binary(ErlNifEnv *env, ERL_NIF_TERM term, ErlNifBinary *bin)
{
        static unsigned char empty;

        if (nk_is_kind(term, NK_BINARY))
                return enif_inspect_binary(env, term, bin);
        if (term == NK_NIL) {
                bin->data = &empty;     /* non-NULL, as in BEAM */
                bin->size = 0;
                bin->ref_bin = NULL;
                return 1;
        }
        /* A top-level binary tail is handled above; anything else must be a
         * list for the walk, which would otherwise accept a bare tail. */
        if (!nk_is_kind(term, NK_CONS))
                return 0;
        ssize_t n = iolist_walk(term, NULL);
        if (n < 0)
                return 0;
        /* The flattened bytes live in the env's arena, as long as the env. */
        uint8_t *data = nk_env_alloc(env, (size_t) n);
        if (!data)
                return 0;
        iolist_walk(term, data);
        bin->data = data;
        bin->size = (size_t) n;
        bin->ref_bin = NULL;
        return 1;
}

/* ---- I/O vectors ------------------------------------------------------------------ */

/* Bytes an element contributes: none for a bitstring under a byte. */
static size_t iov_bytes(const struct nk_binary *b)
{
        return b->bits ? 0 : b->size;
}

struct iovec_slice {
        ERL_NIF_TERM start, end;
        size_t size;
        size_t iovcnt;
};

/* The first elements of list, up to max_length of them (at least one, as in
 * BEAM, which tests the count only after taking an element). */
static bool examine_iovec(ERL_NIF_TERM list, size_t max_length, struct iovec_slice *s)
{
        size_t taken = 0;

        *s = (struct iovec_slice) { .start = list };
        while (nk_is_kind(list, NK_CONS)) {
                const struct nk_cons *c = (const struct nk_cons *) nk_box_of(list);
                const struct nk_binary *b = binary_of(c->head);
                if (!b)
                        return false;
                /* OTP 25 takes a bitstring shorter than a byte as empty and
                 * refuses longer ones (OTP 26 refuses all). */
                if (b->bits && b->size > 1)
                        return false;
                s->size += iov_bytes(b);
                s->iovcnt += (iov_bytes(b) + IOV_CHUNK_MAX - 1) / IOV_CHUNK_MAX;
                list = c->tail;
                if (++taken >= max_length)
                        break;
        }
        if (list != NK_NIL && !nk_is_kind(list, NK_CONS))
                return false;
        s->end = list;
        return true;
}

int enif_inspect_iovec(ErlNifEnv *env, size_t max_length, ERL_NIF_TERM iovec_term, ERL_NIF_TERM *tail,
                       ErlNifIOVec **iovec)
{
        struct iovec_slice s;
        ErlNifIOVec *v = *iovec;

        if (!examine_iovec(iovec_term, max_length, &s) || s.iovcnt > INT_MAX)
                return 0;

        if (v && s.iovcnt < ERL_NIF_IOVEC_SIZE) {
                v->iov = v->small_iov;
                v->ref_bins = v->small_ref_bin;
                v->flags = NK_IOVEC_PREALLOC;
        } else {
                /* One block: the struct, then the entries, then ref_bins.
                 * With an env it lives in the env's arena and goes with it;
                 * without one the caller frees it with enif_free_iovec. */
                size_t bytes = sizeof(ErlNifIOVec) + s.iovcnt * (sizeof(SysIOVec) + sizeof(void *));
                char *base = env ? nk_env_alloc(env, bytes) : malloc(bytes);
                if (!base)
                        return 0;
                v = (ErlNifIOVec *) base;
                v->iov = (SysIOVec *) (base + sizeof(ErlNifIOVec));
                v->ref_bins = (void **) (base + sizeof(ErlNifIOVec) + s.iovcnt * sizeof(SysIOVec));
                v->flags = 0;
        }
        if (env)
                v->flags |= NK_IOVEC_ENV;
        v->iovcnt = (int) s.iovcnt;
        v->size = s.size;

        size_t i = 0;
        for (ERL_NIF_TERM l = s.start; l != s.end;) {
                const struct nk_cons *c = (const struct nk_cons *) nk_box_of(l);
                const struct nk_binary *b = binary_of(c->head);
                size_t bytes = iov_bytes(b);
                for (size_t off = 0; off < bytes;) {
                        size_t n = bytes - off < IOV_CHUNK_MAX ? bytes - off : IOV_CHUNK_MAX;
                        v->iov[i].iov_base = (char *) b->data + off;
                        v->iov[i].iov_len = n;
                        v->ref_bins[i] = b->obj;
                        /* Without an env nothing else keeps the data alive. */
                        if (!env)
                                nk_binobj_keep(b->obj);
                        off += n;
                        i++;
                }
                l = c->tail;
        }
        *tail = s.end;
        *iovec = v;
        return 1;
}

void enif_free_iovec(ErlNifIOVec *iov)
{
        /* BEAM documents the call only for iovecs made without an env and
         * corrupts reference counts otherwise; here it does nothing. */
        if (iov->flags & NK_IOVEC_ENV)
                return;
        for (int i = 0; i < iov->iovcnt; i++)
                nk_binobj_release(iov->ref_bins[i]);
        if (!(iov->flags & NK_IOVEC_PREALLOC))
                free(iov);
}
