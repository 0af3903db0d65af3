/* SPDX-License-Identifier: Apache-2.0 */
/* enif_* for resource objects (types and lifetime live in resource.c). */
#include <stdlib.h>
#include <string.h>

#include "host_internal.h"
#include "term.h"

void *enif_alloc_resource(ErlNifResourceType *type, size_t size)
{
        struct nk_resource *res;
        size_t total;

        if (!type || size > SIZE_MAX - sizeof(*res) - 15)
                return NULL;
        /* aligned_alloc wants a multiple of the alignment; the data array of
         * struct nk_resource is 16-aligned, so the header size already is. */
        total = (sizeof(*res) + size + 15) & ~(size_t) 15;
        res = aligned_alloc(16, total);
        if (!res)
                return NULL;
        res->magic = NK_RESOURCE_MAGIC;
        atomic_init(&res->refc, 1);
        res->type = (struct nk_resource_type *) type;
        res->size = size;
        res->handle = 0;
        res->pad_ = 0;
        return res->data;
}

void enif_release_resource(void *obj)
{
        nk_resource_release(nk_resource_of_data(obj));
}

void enif_keep_resource(void *obj)
{
        nk_resource_keep(nk_resource_of_data(obj));
}

ERL_NIF_TERM enif_make_resource(ErlNifEnv *env, void *obj)
{
        return nk_make_resource_term(env, nk_resource_of_data(obj));
}

size_t enif_sizeof_resource(void *obj)
{
        return nk_resource_of_data(obj)->size;
}

/* A resource binary's nk_binobj holds a resource reference in release_arg;
 * this function is both its release hook and how it is recognised. */
static void resource_binary_release(void *arg)
{
        nk_resource_release(arg);
}

ERL_NIF_TERM enif_make_resource_binary(ErlNifEnv *env, void *obj, const void *data, size_t size)
{
        struct nk_resource *res = nk_resource_of_data(obj);
        struct nk_binobj *bo;
        ERL_NIF_TERM t;

        nk_resource_keep(res);
        bo = nk_binobj_external((void *) data, size, resource_binary_release, res);
        if (!bo) {
                nk_resource_release(res);
                return NK_NONE;
        }
        t = nk_make_binary_of(env, bo, 0, size, 0);
        /* The term took its own reference; ours goes, so the binary object
         * (and with it the resource reference) lives exactly as long as the
         * binary's last holder. */
        nk_binobj_release(bo);
        return t;
}

/* The resource behind a resource term or a resource binary, or NULL. */
static struct nk_resource *resource_of_term(ERL_NIF_TERM term)
{
        if (nk_is_kind(term, NK_RESOURCE))
                return ((struct nk_resource_term *) nk_box_of(term))->res;
        if (nk_is_kind(term, NK_BINARY)) {
                struct nk_binobj *bo = ((struct nk_binary *) nk_box_of(term))->obj;
                if (bo && bo->release_fn == resource_binary_release)
                        return bo->release_arg;
        }
        return NULL;
}

int enif_get_resource(ErlNifEnv *env, ERL_NIF_TERM term, ErlNifResourceType *type, void **objp)
{
        struct nk_resource *res = resource_of_term(term);

        if (!res || res->magic != NK_RESOURCE_MAGIC || res->type != (struct nk_resource_type *) type)
                return 0;
        *objp = res->data;
        return 1;
}

/* Returns 0 when the dyncall ran, 1 when the term is not a resource of a
 * type named (rt_module, rt_name) with a dyncall callback, as BEAM does. */
int enif_dynamic_resource_call(ErlNifEnv *env, ERL_NIF_TERM rt_module, ERL_NIF_TERM rt_name,
                               ERL_NIF_TERM rsrc, void *call_data)
{
        struct nk_resource *res;
        ErlNifResourceDynCall *dyncall;

        if (!nk_is_kind(rsrc, NK_RESOURCE))
                return 1;
        res = resource_of_term(rsrc);
        if (!res || res->magic != NK_RESOURCE_MAGIC)
                return 1;
        if (nk_resource_type_module(res->type) != rt_module ||
            nk_resource_type_name(res->type) != rt_name)
                return 1;
        dyncall = nk_resource_dyncall_fn(res->type);
        if (!dyncall)
                return 1;
        dyncall(env, res->data, call_data);
        return 0;
}
