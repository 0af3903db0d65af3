/* SPDX-License-Identifier: Apache-2.0 */
/* Counted RELEASE: the host keeps a resource while copies of its handle it
 * sent are still unaccounted for by the runtime. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "host_internal.h"
#include "term.h"

static atomic_int dtor_calls;

static void count_dtor(ErlNifEnv *env, void *obj)
{
        atomic_fetch_add(&dtor_calls, 1);
}

static int setup(void **state)
{
        atomic_store(&dtor_calls, 0);
        return nk_atoms_init() < 0 ? -1 : 0;
}

static ErlNifResourceType *load_type(const char *module, const char *name)
{
        ErlNifResourceTypeInit init = { .dtor = count_dtor, .members = 1 };
        ErlNifResourceFlags tried = 0;
        ErlNifResourceType *t;

        nk_load_begin(module);
        t = enif_init_resource_type(NULL, name, &init, ERL_NIF_RT_CREATE, &tried);
        nk_load_end(t != NULL);
        assert_non_null(t);
        return t;
}

static void release_waits_for_every_copy(void **state)
{
        ErlNifResourceType *t = load_type("mod_rel", "r");
        void *obj = enif_alloc_resource(t, 8);
        struct nk_resource *res = nk_resource_of_data(obj);

        /* Sent three times; the NIF's own reference goes away. */
        uint64_t h = nk_resource_handle(res);
        assert_int_not_equal(h, 0);
        assert_int_equal(nk_resource_handle(res), h);
        assert_int_equal(nk_resource_handle(res), h);
        enif_release_resource(obj);

        /* The runtime saw two of them and let go: the third is in flight. */
        nk_resource_handle_release(h, 2);
        assert_int_equal(atomic_load(&dtor_calls), 0);
        struct nk_resource *again = nk_resource_by_handle(h);
        assert_ptr_equal(again, res);
        nk_resource_release(again);

        /* A release of nothing changes nothing. */
        nk_resource_handle_release(h, 0);
        assert_int_equal(atomic_load(&dtor_calls), 0);

        /* Sent once more; the runtime then accounts for both remaining. */
        assert_int_equal(nk_resource_handle(res), h);
        nk_resource_handle_release(h, 2);
        assert_int_equal(atomic_load(&dtor_calls), 1);
        assert_null(nk_resource_by_handle(h));

        /* An unknown handle, counted or not, is harmless. */
        nk_resource_handle_release(h, 1);
        nk_resource_handle_drop(h);
        assert_int_equal(atomic_load(&dtor_calls), 1);
}

static void overcount_drops(void **state)
{
        ErlNifResourceType *t = load_type("mod_rel2", "r");
        void *obj = enif_alloc_resource(t, 8);
        struct nk_resource *res = nk_resource_of_data(obj);

        uint64_t h = nk_resource_handle(res);
        enif_release_resource(obj);
        /* More than was sent still means "none left": a confused runtime
         * cannot make the count wrap and pin the object forever. */
        nk_resource_handle_release(h, 5);
        assert_int_equal(atomic_load(&dtor_calls), 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(release_waits_for_every_copy, setup),
                cmocka_unit_test_setup(overcount_drops, setup),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
