/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A NIF library that records every callback BEAM makes to it, for the
 * upgrade test (upgrade_beam.sh): load, upgrade and unload, each with the
 * generation of the priv data it got and made, and load_info. history/0
 * returns the record, oldest first. A resource type it takes over on
 * upgrade shows that resources survive one. load_info 99 makes upgrade()
 * refuse (return 7). Built twice: with NK_NO_UPGRADE the entry has no
 * upgrade callback, as many libraries' have not.
 */
#include <stdio.h>
#include <string.h>

#include <erl_nif.h>

struct priv {
        int generation;
        ErlNifResourceType *counter;
};

struct event {
        const char *what;
        int generation, old_generation, info;
};

static struct event history[64];
static int nhistory, generations;

static void record(const char *what, int generation, int old_generation, int info)
{
        if (nhistory < (int) (sizeof history / sizeof *history))
                history[nhistory++] = (struct event) { what, generation, old_generation, info };
}

static int info_int(ErlNifEnv *env, ERL_NIF_TERM t)
{
        int v = -1;
        (void) enif_get_int(env, t, &v);
        return v;
}

static struct priv *new_priv(ErlNifEnv *env)
{
        struct priv *p = enif_alloc(sizeof *p);
        ErlNifResourceFlags tried;
        if (!p)
                return NULL;
        p->generation = ++generations;
        p->counter = enif_open_resource_type(env, NULL, "counter", NULL, ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER,
                                             &tried);
        return p;
}

static int load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info)
{
        struct priv *p = new_priv(env);
        if (!p || !p->counter)
                return 1;
        record("load", p->generation, 0, info_int(env, load_info));
        *priv_data = p;
        return 0;
}

#ifndef NK_NO_UPGRADE
static int upgrade(ErlNifEnv *env, void **priv_data, void **old_priv_data, ERL_NIF_TERM load_info)
{
        struct priv *old = *old_priv_data;
        int info = info_int(env, load_info);
        if (info == 99) {
                record("upgrade_refused", 0, old ? old->generation : -1, info);
                return 7;
        }
        /* BEAM starts the new instance's priv data empty. */
        if (*priv_data != NULL)
                return 8;
        struct priv *p = new_priv(env);
        if (!p || !p->counter)
                return 1;
        record("upgrade", p->generation, old ? old->generation : -1, info);
        *priv_data = p;
        return 0;
}
#else
#define upgrade NULL
#endif

static void unload(ErlNifEnv *env, void *priv_data)
{
        struct priv *p = priv_data;
        /* enif_priv_data in unload is the instance's own. */
        struct priv *seen = enif_priv_data(env);
        record("unload", p->generation, seen ? seen->generation : -1, 0);
}

static ERL_NIF_TERM get_history(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        ERL_NIF_TERM list = enif_make_list(env, 0);
        for (int i = nhistory - 1; i >= 0; i--) {
                const struct event *e = &history[i];
                ERL_NIF_TERM t = enif_make_tuple4(env, enif_make_atom(env, e->what), enif_make_int(env, e->generation),
                                                  enif_make_int(env, e->old_generation), enif_make_int(env, e->info));
                list = enif_make_list_cell(env, t, list);
        }
        return list;
}

static ERL_NIF_TERM get_priv(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct priv *p = enif_priv_data(env);
        return enif_make_int(env, p ? p->generation : -1);
}

static ERL_NIF_TERM make_res(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct priv *p = enif_priv_data(env);
        int v;
        if (!enif_get_int(env, argv[0], &v))
                return enif_make_badarg(env);
        int *obj = enif_alloc_resource(p->counter, sizeof *obj);
        *obj = v;
        ERL_NIF_TERM t = enif_make_resource(env, obj);
        enif_release_resource(obj);
        return t;
}

static ERL_NIF_TERM res_value(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct priv *p = enif_priv_data(env);
        int *obj;
        if (!enif_get_resource(env, argv[0], p->counter, (void **) &obj))
                return enif_make_badarg(env);
        return enif_make_int(env, *obj);
}

static ErlNifFunc funcs[] = {
        { "history", 0, get_history, 0 },
        { "priv", 0, get_priv, 0 },
        { "make_res", 1, make_res, 0 },
        { "res_value", 1, res_value, 0 },
};

ERL_NIF_INIT(nk_upg, funcs, load, NULL, upgrade, unload)
