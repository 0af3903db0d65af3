/* SPDX-License-Identifier: Apache-2.0 */
/* enif_ioq_*: byte-exact enqueue, dequeue and peek, and binary lifetime. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "host_internal.h"
#include "term.h"

static int setup(void **state)
{
        return nk_atoms_init() < 0 ? -1 : 0;
}

/* Concatenates what enif_ioq_peek shows. */
static size_t peek_all(ErlNifIOQueue *q, char *out, size_t cap)
{
        int n = -1;
        SysIOVec *v = enif_ioq_peek(q, &n);
        size_t len = 0;

        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
                assert_true(v[i].iov_len > 0);
                assert_true(len + v[i].iov_len <= cap);
                memcpy(out + len, v[i].iov_base, v[i].iov_len);
                len += v[i].iov_len;
        }
        return len;
}

static void bin_of(ErlNifBinary *bin, const char *s)
{
        assert_true(enif_alloc_binary(strlen(s), bin));
        memcpy(bin->data, s, strlen(s));
}

static void create_and_options(void **state)
{
        assert_null(enif_ioq_create((ErlNifIOQueueOpts) 2));
        ErlNifIOQueue *q = enif_ioq_create(ERL_NIF_IOQ_NORMAL);
        assert_non_null(q);
        assert_int_equal(enif_ioq_size(q), 0);
        int n = -1;
        enif_ioq_peek(q, &n);
        assert_int_equal(n, 0);
        ErlNifEnv *env = enif_alloc_env();
        ERL_NIF_TERM head;
        assert_int_equal(enif_ioq_peek_head(env, q, NULL, &head), 0);
        enif_free_env(env);
        enif_ioq_destroy(q);
        enif_ioq_destroy(NULL);
}

static void enqueue_dequeue_peek(void **state)
{
        ErlNifIOQueue *q = enif_ioq_create(ERL_NIF_IOQ_NORMAL);
        ErlNifBinary b1, b2, b3;
        char out[256];
        size_t left = 0;

        bin_of(&b1, "hello ");
        bin_of(&b2, "XXbrave ");
        bin_of(&b3, "new world");
        assert_int_equal(enif_ioq_enq_binary(q, &b1, 0), 1);
        assert_int_equal(enif_ioq_enq_binary(q, &b2, 2), 1);        /* skips "XX" */
        assert_int_equal(enif_ioq_enq_binary(q, &b3, 0), 1);
        assert_int_equal(enif_ioq_size(q), 6 + 6 + 9);
        assert_int_equal(peek_all(q, out, sizeof(out)), 21);
        assert_memory_equal(out, "hello brave new world", 21);

        /* skip larger than the binary: refused, binary still the caller's */
        ErlNifBinary b4;
        bin_of(&b4, "abc");
        assert_int_equal(enif_ioq_enq_binary(q, &b4, 4), 0);
        assert_int_equal(enif_ioq_size(q), 21);
        enif_release_binary(&b4);

        /* dequeue within a slice, across slices, and too much */
        assert_int_equal(enif_ioq_deq(q, 3, &left), 1);
        assert_int_equal(left, 18);
        assert_int_equal(peek_all(q, out, sizeof(out)), 18);
        assert_memory_equal(out, "lo brave new world", 18);
        assert_int_equal(enif_ioq_deq(q, 9, NULL), 1);
        assert_int_equal(peek_all(q, out, sizeof(out)), 9);
        assert_memory_equal(out, "new world", 9);
        assert_int_equal(enif_ioq_deq(q, 10, &left), 0);
        assert_int_equal(enif_ioq_size(q), 9);

        /* head as a binary term sharing the queue's bytes */
        ErlNifEnv *env = enif_alloc_env();
        ERL_NIF_TERM head;
        size_t hs = 0;
        ErlNifBinary hb;
        assert_int_equal(enif_ioq_peek_head(env, q, &hs, &head), 1);
        assert_int_equal(hs, 9);
        assert_true(enif_inspect_binary(env, head, &hb));
        assert_int_equal(hb.size, 9);
        assert_memory_equal(hb.data, "new world", 9);

        /* the term outlives the queue: it holds the bytes itself */
        assert_int_equal(enif_ioq_deq(q, 9, &left), 1);
        assert_int_equal(left, 0);
        enif_ioq_destroy(q);
        assert_true(enif_inspect_binary(env, head, &hb));
        assert_memory_equal(hb.data, "new world", 9);
        enif_free_env(env);
}

static int releases;

static void count_release(void *arg)
{
        releases++;
        free(arg);
}

static void enqv_shares_or_copies(void **state)
{
        ErlNifIOQueue *q = enif_ioq_create(ERL_NIF_IOQ_NORMAL);
        char *ext = malloc(8);
        memcpy(ext, "01234567", 8);
        struct nk_binobj *obj = nk_binobj_external(ext, 8, count_release, ext);
        char stack_bytes[] = "abcdef";
        ErlNifIOVec v = {};
        char out[64];

        releases = 0;
        v.iovcnt = 3;
        v.iov = v.small_iov;
        v.ref_bins = v.small_ref_bin;
        v.iov[0].iov_base = ext + 2;            /* "234567", from a binary object */
        v.iov[0].iov_len = 6;
        v.ref_bins[0] = obj;
        v.iov[1].iov_base = stack_bytes;        /* no object: must be copied */
        v.iov[1].iov_len = 6;
        v.ref_bins[1] = NULL;
        v.iov[2].iov_base = ext;                /* "01" */
        v.iov[2].iov_len = 2;
        v.ref_bins[2] = obj;
        v.size = 14;

        assert_int_equal(enif_ioq_enqv(q, &v, 15), 0);       /* skip > size */
        assert_int_equal(enif_ioq_size(q), 0);
        /* skip 8: all of iov[0] and two bytes of iov[1] */
        assert_int_equal(enif_ioq_enqv(q, &v, 8), 1);
        assert_int_equal(enif_ioq_size(q), 6);
        assert_int_equal(enif_ioq_enqv(q, &v, 0), 1);
        assert_int_equal(enif_ioq_size(q), 20);
        memset(stack_bytes, '!', 6);            /* the queue kept a copy */
        assert_int_equal(peek_all(q, out, sizeof(out)), 20);
        assert_memory_equal(out, "cdef01" "234567abcdef01", 20);

        /* the queue keeps the object alive after its owner lets go */
        nk_binobj_release(obj);
        assert_int_equal(releases, 0);
        assert_int_equal(enif_ioq_deq(q, 12, NULL), 1);
        assert_int_equal(releases, 0);          /* "01" still queued */
        assert_int_equal(enif_ioq_deq(q, 8, NULL), 1);
        assert_int_equal(releases, 1);
        enif_ioq_destroy(q);
        assert_int_equal(releases, 1);
}

static void many_slices_grow_and_compact(void **state)
{
        ErlNifIOQueue *q = enif_ioq_create(ERL_NIF_IOQ_NORMAL);
        char expect[3000], out[3000];
        size_t n = 0, head = 0;

        for (int round = 0; round < 300; round++) {
                ErlNifBinary b;
                char s[8];
                snprintf(s, sizeof(s), "%03d|", round);
                bin_of(&b, s);
                assert_int_equal(enif_ioq_enq_binary(q, &b, 0), 1);
                memcpy(expect + n, s, 4);
                n += 4;
                if (round % 3 == 2) {
                        assert_int_equal(enif_ioq_deq(q, 5, NULL), 1);
                        head += 5;
                }
        }
        assert_int_equal(enif_ioq_size(q), n - head);
        assert_int_equal(peek_all(q, out, sizeof(out)), n - head);
        assert_memory_equal(out, expect + head, n - head);
        enif_ioq_destroy(q);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(create_and_options),
                cmocka_unit_test(enqueue_dequeue_peek),
                cmocka_unit_test(enqv_shares_or_copies),
                cmocka_unit_test(many_slices_grow_and_compact),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
