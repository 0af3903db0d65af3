/* SPDX-License-Identifier: Apache-2.0 */
/* Resource types, resource lifetime, resource terms and binaries, handles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "host_internal.h"
#include "term.h"

static atomic_int dtor_calls;
static atomic_int dtor2_calls;
static void *dtor_priv_seen;
static ErlNifEnv *dtor_env_seen;

static void count_dtor(ErlNifEnv *env, void *obj)
{
        dtor_env_seen = env;
        dtor_priv_seen = enif_priv_data(env);
        atomic_fetch_add(&dtor_calls, 1);
}

static void count_dtor2(ErlNifEnv *env, void *obj)
{
        atomic_fetch_add(&dtor2_calls, 1);
}

static void dyncall_add(ErlNifEnv *env, void *obj, void *call_data)
{
        *(int *) call_data += *(int *) obj;
}

static int setup(void **state)
{
        atomic_store(&dtor_calls, 0);
        atomic_store(&dtor2_calls, 0);
        dtor_priv_seen = NULL;
        return nk_atoms_init() < 0 ? -1 : 0;
}

/* Opens (creates) a type the way a library's load callback would. */
static ErlNifResourceType *load_type(const char *module, const char *name,
                                     const ErlNifResourceTypeInit *init)
{
        ErlNifResourceFlags tried = 0;
        ErlNifResourceType *t;

        nk_load_begin(module);
        t = enif_init_resource_type(NULL, name, init, ERL_NIF_RT_CREATE, &tried);
        nk_load_end(t != NULL);
        assert_non_null(t);
        assert_int_equal(tried, ERL_NIF_RT_CREATE);
        return t;
}

static void open_only_during_load(void **state)
{
        ErlNifResourceFlags tried = 0;

        assert_null(enif_open_resource_type(NULL, NULL, "early", count_dtor, ERL_NIF_RT_CREATE, &tried));
        assert_int_equal(tried, ERL_NIF_RT_CREATE);

        nk_load_begin("mod_a");
        /* module_str is reserved and must be NULL */
        assert_null(enif_open_resource_type(NULL, "mod_a", "x", count_dtor, ERL_NIF_RT_CREATE, &tried));
        ErlNifResourceType *t = enif_open_resource_type(NULL, NULL, "x", count_dtor,
                                                        ERL_NIF_RT_CREATE, &tried);
        assert_non_null(t);
        assert_int_equal(tried, ERL_NIF_RT_CREATE);
        nk_load_end(true);
}

static void create_takeover_and_rollback(void **state)
{
        ErlNifResourceFlags tried = 0;
        ErlNifResourceType *t1, *t2;

        nk_load_begin("mod_b");
        t1 = enif_open_resource_type(NULL, NULL, "thing", count_dtor, ERL_NIF_RT_CREATE, &tried);
        assert_non_null(t1);
        nk_load_end(true);

        /* Exists now: CREATE alone gives nothing, CREATE|TAKEOVER takes over. */
        nk_load_begin("mod_b");
        assert_null(enif_open_resource_type(NULL, NULL, "thing", count_dtor2, ERL_NIF_RT_CREATE, &tried));
        assert_int_equal(tried, ERL_NIF_RT_CREATE);
        t2 = enif_open_resource_type(NULL, NULL, "thing", count_dtor2,
                                     ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, &tried);
        assert_ptr_equal(t1, t2);
        assert_int_equal(tried, ERL_NIF_RT_TAKEOVER);
        nk_load_end(true);

        /* The same name in another module is another type. */
        nk_load_begin("mod_c");
        ErlNifResourceType *t3 = enif_open_resource_type(NULL, NULL, "thing", count_dtor,
                                                         ERL_NIF_RT_CREATE, &tried);
        assert_non_null(t3);
        assert_ptr_not_equal(t3, t1);
        nk_load_end(true);

        /* The new destructor is the one that runs. */
        void *obj = enif_alloc_resource(t1, 8);
        enif_release_resource(obj);
        assert_int_equal(atomic_load(&dtor2_calls), 1);
        assert_int_equal(atomic_load(&dtor_calls), 0);

        /* A failed load leaves nothing behind. */
        nk_load_begin("mod_b");
        assert_non_null(enif_open_resource_type(NULL, NULL, "ghost", count_dtor, ERL_NIF_RT_CREATE, &tried));
        nk_load_end(false);
        nk_load_begin("mod_b");
        assert_null(enif_open_resource_type(NULL, NULL, "ghost", count_dtor, ERL_NIF_RT_TAKEOVER, &tried));
        assert_int_equal(tried, ERL_NIF_RT_TAKEOVER);
        /* and a take-over undone keeps the committed callbacks */
        assert_non_null(enif_open_resource_type(NULL, NULL, "thing", count_dtor, ERL_NIF_RT_TAKEOVER, &tried));
        nk_load_end(false);
        obj = enif_alloc_resource(t1, 8);
        enif_release_resource(obj);
        assert_int_equal(atomic_load(&dtor2_calls), 2);
        assert_int_equal(atomic_load(&dtor_calls), 0);
}

static void init_members_limit_callbacks(void **state)
{
        ErlNifResourceTypeInit init = { .dtor = count_dtor, .dyncall = dyncall_add, .members = 1 };
        ErlNifResourceType *t = load_type("mod_m", "one_member", &init);
        ErlNifEnv *env = enif_alloc_env();
        int *obj = enif_alloc_resource(t, sizeof(int));
        int sum = 0;

        *obj = 5;
        ERL_NIF_TERM term = enif_make_resource(env, obj);
        /* members = 1: only dtor was read, so there is no dyncall */
        assert_int_equal(enif_dynamic_resource_call(env, nk_atom_latin1("mod_m", 5),
                                                    nk_atom_latin1("one_member", 10), term, &sum), 1);
        assert_int_equal(sum, 0);
        enif_release_resource(obj);
        enif_free_env(env);
        assert_int_equal(atomic_load(&dtor_calls), 1);

        /* members out of range is refused */
        ErlNifResourceFlags tried;
        init.members = 5;
        nk_load_begin("mod_m");
        assert_null(enif_init_resource_type(NULL, "bad", &init, ERL_NIF_RT_CREATE, &tried));
        nk_load_end(true);
}

static void dynamic_call(void **state)
{
        ErlNifResourceTypeInit init = { .dtor = count_dtor, .dyncall = dyncall_add, .members = 4 };
        ErlNifResourceType *t = load_type("mod_dyn", "adder", &init);
        ErlNifEnv *env = enif_alloc_env();
        int *obj = enif_alloc_resource(t, sizeof(int));
        int sum = 1;

        *obj = 41;
        ERL_NIF_TERM term = enif_make_resource(env, obj);
        ERL_NIF_TERM mod = nk_atom_latin1("mod_dyn", 7), name = nk_atom_latin1("adder", 5);
        assert_int_equal(enif_dynamic_resource_call(env, mod, name, term, &sum), 0);
        assert_int_equal(sum, 42);
        assert_int_equal(enif_dynamic_resource_call(env, mod, nk_atom_latin1("other", 5), term, &sum), 1);
        assert_int_equal(enif_dynamic_resource_call(env, nk_am_ok, name, term, &sum), 1);
        assert_int_equal(enif_dynamic_resource_call(env, mod, name, nk_make_small(3), &sum), 1);
        assert_int_equal(sum, 42);
        enif_release_resource(obj);
        enif_free_env(env);
}

static void alloc_alignment_and_size(void **state)
{
        ErlNifResourceTypeInit init = { .dtor = count_dtor, .members = 1 };
        ErlNifResourceType *t = load_type("mod_al", "al", &init);

        for (size_t sz = 0; sz < 70; sz += 7) {
                void *obj = enif_alloc_resource(t, sz);
                assert_non_null(obj);
                assert_int_equal((uintptr_t) obj % 16, 0);
                assert_int_equal(enif_sizeof_resource(obj), sz);
                memset(obj, 0xa5, sz);
                enif_release_resource(obj);
        }
        assert_int_equal(atomic_load(&dtor_calls), 10);
}

static void dtor_env_has_module_priv(void **state)
{
        static int priv;
        ErlNifResourceTypeInit init = { .dtor = count_dtor, .members = 1 };
        ErlNifResourceType *t = load_type("mod_priv", "p", &init);

        nk_module_set_priv("mod_priv", &priv);
        void *obj = enif_alloc_resource(t, 4);
        enif_release_resource(obj);
        assert_int_equal(atomic_load(&dtor_calls), 1);
        assert_non_null(dtor_env_seen);
        assert_ptr_equal(dtor_priv_seen, &priv);
        assert_ptr_equal(nk_module_get_priv("mod_priv"), &priv);
}

struct churn {
        void *obj;
        int rounds;
};

static void *churn_main(void *p)
{
        struct churn *c = p;

        for (int i = 0; i < c->rounds; i++) {
                enif_keep_resource(c->obj);
                enif_keep_resource(c->obj);
                enif_release_resource(c->obj);
                enif_release_resource(c->obj);
        }
        /* each thread owns one reference given to it, dropped last */
        enif_release_resource(c->obj);
        return NULL;
}

static void dtor_once_across_threads(void **state)
{
        ErlNifResourceTypeInit init = { .dtor = count_dtor, .members = 1 };
        ErlNifResourceType *t = load_type("mod_thr", "shared", &init);

        for (int round = 0; round < 20; round++) {
                void *obj = enif_alloc_resource(t, 32);
                pthread_t th[4];
                struct churn c = { obj, 2000 };

                atomic_store(&dtor_calls, 0);
                for (int i = 0; i < 4; i++)
                        enif_keep_resource(obj);
                for (int i = 0; i < 4; i++)
                        assert_int_equal(pthread_create(&th[i], NULL, churn_main, &c), 0);
                for (int i = 0; i < 4; i++)
                        pthread_join(th[i], NULL);
                /* the creator's reference still holds it */
                assert_int_equal(atomic_load(&dtor_calls), 0);
                enif_release_resource(obj);
                assert_int_equal(atomic_load(&dtor_calls), 1);
        }
}

static void terms_keep_resources(void **state)
{
        ErlNifResourceTypeInit init = { .dtor = count_dtor, .members = 1 };
        ErlNifResourceType *t = load_type("mod_term", "r", &init);
        ErlNifResourceType *other = load_type("mod_term", "other", &init);
        ErlNifEnv *env = enif_alloc_env();
        void *obj = enif_alloc_resource(t, 16), *got = NULL;

        ERL_NIF_TERM term = enif_make_resource(env, obj);
        enif_release_resource(obj);
        /* the env's term keeps it alive */
        assert_int_equal(atomic_load(&dtor_calls), 0);
        assert_int_equal(enif_get_resource(env, term, t, &got), 1);
        assert_ptr_equal(got, obj);
        got = NULL;
        assert_int_equal(enif_get_resource(env, term, other, &got), 0);
        assert_null(got);
        assert_int_equal(enif_get_resource(env, nk_am_ok, t, &got), 0);
        assert_int_equal(enif_get_resource(env, nk_make_binary_copy(env, "ab", 2), t, &got), 0);

        /* a copy into another env holds its own reference */
        ErlNifEnv *env2 = enif_alloc_env();
        ERL_NIF_TERM copy = nk_copy_term(env2, term);
        enif_free_env(env);
        assert_int_equal(atomic_load(&dtor_calls), 0);
        assert_int_equal(enif_get_resource(env2, copy, t, &got), 1);
        assert_ptr_equal(got, obj);
        enif_free_env(env2);
        assert_int_equal(atomic_load(&dtor_calls), 1);
}

static void resource_binary_lives_with_binary(void **state)
{
        ErlNifResourceTypeInit init = { .dtor = count_dtor, .members = 1 };
        ErlNifResourceType *t = load_type("mod_rb", "buf", &init);
        ErlNifEnv *env = enif_alloc_env();
        char *obj = enif_alloc_resource(t, 64);
        void *got = NULL;

        memcpy(obj, "resource-backed bytes", 21);
        ERL_NIF_TERM bin = enif_make_resource_binary(env, obj, obj + 9, 12);
        enif_release_resource(obj);
        assert_int_equal(atomic_load(&dtor_calls), 0);

        const struct nk_binary *b = (const struct nk_binary *) nk_box_of(bin);
        assert_true(nk_is_kind(bin, NK_BINARY));
        assert_int_equal(b->size, 12);
        /* no copy: the binary's bytes are the resource's */
        assert_ptr_equal(b->data, obj + 9);
        assert_memory_equal(b->data, "backed bytes", 12);
        assert_int_equal(enif_get_resource(env, bin, t, &got), 1);
        assert_ptr_equal(got, obj);

        enif_free_env(env);
        assert_int_equal(atomic_load(&dtor_calls), 1);
}

struct handle_race {
        struct nk_resource *res;
        uint64_t got[200];
};

static void *handle_main(void *p)
{
        struct handle_race *h = p;

        for (int i = 0; i < 200; i++)
                h->got[i] = nk_resource_handle(h->res);
        return NULL;
}

static void handle_table(void **state)
{
        ErlNifResourceTypeInit init = { .dtor = count_dtor, .members = 1 };
        ErlNifResourceType *t = load_type("mod_h", "h", &init);
        void *a = enif_alloc_resource(t, 8), *b = enif_alloc_resource(t, 8);
        struct nk_resource *ra = nk_resource_of_data(a), *rb = nk_resource_of_data(b);

        uint64_t ha = nk_resource_handle(ra);
        assert_int_not_equal(ha, 0);
        assert_int_equal(nk_resource_handle(ra), ha);
        uint64_t hb = nk_resource_handle(rb);
        assert_int_not_equal(hb, ha);

        struct nk_resource *r = nk_resource_by_handle(ha);
        assert_ptr_equal(r, ra);
        nk_resource_release(r);
        assert_null(nk_resource_by_handle(ha + hb + 1000));

        /* the table holds a reference: the NIF's release does not destroy */
        enif_release_resource(a);
        assert_int_equal(atomic_load(&dtor_calls), 0);
        nk_resource_handle_drop(ha);
        assert_int_equal(atomic_load(&dtor_calls), 1);
        assert_null(nk_resource_by_handle(ha));
        nk_resource_handle_drop(ha);    /* unknown: no effect */

        /* dropped and sent again: the same name comes back */
        uint64_t hb2;
        nk_resource_handle_drop(hb);
        assert_int_equal(atomic_load(&dtor_calls), 1);
        hb2 = nk_resource_handle(rb);
        assert_int_equal(hb2, hb);

        /* many threads asking at once get one handle */
        pthread_t th[4];
        static struct handle_race hr[4];
        for (int i = 0; i < 4; i++) {
                hr[i].res = rb;
                assert_int_equal(pthread_create(&th[i], NULL, handle_main, &hr[i]), 0);
        }
        for (int i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
        for (int i = 0; i < 4; i++)
                for (int j = 0; j < 200; j++)
                        assert_int_equal(hr[i].got[j], hb);
        enif_release_resource(b);
        assert_int_equal(atomic_load(&dtor_calls), 1);
        nk_resource_handle_drop(hb);
        assert_int_equal(atomic_load(&dtor_calls), 2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(open_only_during_load, setup),
                cmocka_unit_test_setup(create_takeover_and_rollback, setup),
                cmocka_unit_test_setup(init_members_limit_callbacks, setup),
                cmocka_unit_test_setup(dynamic_call, setup),
                cmocka_unit_test_setup(alloc_alignment_and_size, setup),
                cmocka_unit_test_setup(dtor_env_has_module_priv, setup),
                cmocka_unit_test_setup(dtor_once_across_threads, setup),
                cmocka_unit_test_setup(terms_keep_resources, setup),
                cmocka_unit_test_setup(resource_binary_lives_with_binary, setup),
                cmocka_unit_test_setup(handle_table, setup),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
