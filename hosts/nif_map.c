/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The erl_nif map API.
 *
 * A map keeps its keys sorted in map key order (nk_map_key_cmp), which is
 * the order BEAM iterates maps of up to 32 pairs in ("flatmaps"). Larger
 * maps that came from the runtime carry iter_order, the order BEAM's hash
 * trie gave them (the order of maps:to_list/1 and of the ETF that carried
 * them), and iterators follow it backwards, as BEAM's NIF iterator does.
 * BEAM keeps a map of more than 32 pairs in its hash order and a map of
 * 32 or fewer in key order; the functions here do the same, with one
 * approximation where BEAM's order comes from its internal hash, which the
 * host does not reproduce: a pair added to a map that has iter_order goes
 * at the end of iter_order (first for a NIF iterator, which runs the other
 * way), and a map that grows past 32 pairs here (rather than arriving that
 * large) stays in key order.
 *
 * ErlNifMapIterator: map, size, idx as BEAM (idx counts from 1; 0 is the
 * position before the first pair and size + 1 the one after the last);
 * u.flat.ks / u.flat.vs point at the map's key and value arrays.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "nif_api.h"
#include "term.h"

#define FLATMAP_MAX 32

static const struct nk_map *map_of(ERL_NIF_TERM t)
{
        return nk_is_kind(t, NK_MAP) ? (const struct nk_map *) nk_box_of(t) : NULL;
}

/* Position of key in m->keys, or -(insertion point) - 1. */
static long map_find(const struct nk_map *m, ERL_NIF_TERM key)
{
        size_t lo = 0, hi = m->h.n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = nk_map_key_cmp(m->keys[mid], key);
                if (c == 0)
                        return (long) mid;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -(long) lo - 1;
}

/* A map of n pairs with uninitialised arrays, laid out inline after the
 * header; with_order adds an iter_order array. Aborts on ENOMEM, as every
 * NIF term constructor does. */
static struct nk_map *map_alloc(ErlNifEnv *env, size_t n, bool with_order)
{
        size_t bytes = sizeof(struct nk_map) + 2 * n * sizeof(ERL_NIF_TERM);
        if (with_order)
                bytes += n * sizeof(uint32_t);
        struct nk_map *m = nk_env_alloc(env, bytes);
        if (!m)
                nk_nif_oom("map");
        m->h.kind = NK_MAP;
        m->h.n = (uint32_t) n;
        m->keys = (ERL_NIF_TERM *) (m + 1);
        m->vals = m->keys + n;
        m->iter_order = with_order ? (uint32_t *) (m->vals + n) : NULL;
        return m;
}

/* Copy of m with vals[pos] replaced: same keys, same iteration order. */
static ERL_NIF_TERM map_replace(ErlNifEnv *env, const struct nk_map *m, size_t pos, ERL_NIF_TERM value)
{
        size_t n = m->h.n;
        struct nk_map *r = map_alloc(env, n, m->iter_order != NULL);

        memcpy(r->keys, m->keys, n * sizeof(ERL_NIF_TERM));
        memcpy(r->vals, m->vals, n * sizeof(ERL_NIF_TERM));
        if (m->iter_order)
                memcpy(r->iter_order, m->iter_order, n * sizeof(uint32_t));
        r->vals[pos] = value;
        return nk_box_term(r);
}

static ERL_NIF_TERM map_insert(ErlNifEnv *env, const struct nk_map *m, size_t pos, ERL_NIF_TERM key,
                               ERL_NIF_TERM value)
{
        size_t n = m->h.n;
        struct nk_map *r = map_alloc(env, n + 1, m->iter_order && n + 1 > FLATMAP_MAX);

        memcpy(r->keys, m->keys, pos * sizeof(ERL_NIF_TERM));
        memcpy(r->vals, m->vals, pos * sizeof(ERL_NIF_TERM));
        r->keys[pos] = key;
        r->vals[pos] = value;
        memcpy(r->keys + pos + 1, m->keys + pos, (n - pos) * sizeof(ERL_NIF_TERM));
        memcpy(r->vals + pos + 1, m->vals + pos, (n - pos) * sizeof(ERL_NIF_TERM));
        if (r->iter_order) {
                for (size_t j = 0; j < n; j++)
                        r->iter_order[j] = m->iter_order[j] + (m->iter_order[j] >= pos);
                r->iter_order[n] = (uint32_t) pos;
        }
        return nk_box_term(r);
}

static ERL_NIF_TERM map_delete(ErlNifEnv *env, const struct nk_map *m, size_t pos)
{
        size_t n = m->h.n;
        /* Down to 32 pairs BEAM turns the map back into a sorted flatmap. */
        struct nk_map *r = map_alloc(env, n - 1, m->iter_order && n - 1 > FLATMAP_MAX);

        memcpy(r->keys, m->keys, pos * sizeof(ERL_NIF_TERM));
        memcpy(r->vals, m->vals, pos * sizeof(ERL_NIF_TERM));
        memcpy(r->keys + pos, m->keys + pos + 1, (n - pos - 1) * sizeof(ERL_NIF_TERM));
        memcpy(r->vals + pos, m->vals + pos + 1, (n - pos - 1) * sizeof(ERL_NIF_TERM));
        if (r->iter_order) {
                size_t o = 0;
                for (size_t j = 0; j < n; j++) {
                        uint32_t p = m->iter_order[j];
                        if (p == pos)
                                continue;
                        r->iter_order[o++] = p - (p > pos);
                }
        }
        return nk_box_term(r);
}

/* ---- the API ------------------------------------------------------------------ */

int enif_get_map_size(ErlNifEnv *env, ERL_NIF_TERM term, size_t *size)
{
        const struct nk_map *m = map_of(term);

        if (!m)
                return 0;
        *size = m->h.n;
        return 1;
}

ERL_NIF_TERM enif_make_new_map(ErlNifEnv *env)
{
        return nk_box_term(map_alloc(env, 0, false));
}

int enif_make_map_from_arrays(ErlNifEnv *env, ERL_NIF_TERM keys[], ERL_NIF_TERM values[], size_t cnt,
                              ERL_NIF_TERM *map_out)
{
        /* NK_NONE: a duplicate key (BEAM's failure) or no memory. */
        ERL_NIF_TERM m = nk_make_map(env, cnt, keys, values, true);

        if (m == NK_NONE)
                return 0;
        *map_out = m;
        return 1;
}

int enif_make_map_put(ErlNifEnv *env, ERL_NIF_TERM map_in, ERL_NIF_TERM key, ERL_NIF_TERM value,
                      ERL_NIF_TERM *map_out)
{
        const struct nk_map *m = map_of(map_in);

        if (!m)
                return 0;
        long pos = map_find(m, key);
        if (pos >= 0)
                *map_out = map_replace(env, m, (size_t) pos, value);
        else
                *map_out = map_insert(env, m, (size_t) (-pos - 1), key, value);
        return 1;
}

int enif_get_map_value(ErlNifEnv *env, ERL_NIF_TERM map, ERL_NIF_TERM key, ERL_NIF_TERM *value)
{
        const struct nk_map *m = map_of(map);

        if (!m)
                return 0;
        long pos = map_find(m, key);
        if (pos < 0)
                return 0;
        *value = m->vals[pos];
        return 1;
}

int enif_make_map_update(ErlNifEnv *env, ERL_NIF_TERM map_in, ERL_NIF_TERM key, ERL_NIF_TERM value,
                         ERL_NIF_TERM *map_out)
{
        const struct nk_map *m = map_of(map_in);

        if (!m)
                return 0;
        long pos = map_find(m, key);
        if (pos < 0)
                return 0;
        *map_out = map_replace(env, m, (size_t) pos, value);
        return 1;
}

int enif_make_map_remove(ErlNifEnv *env, ERL_NIF_TERM map_in, ERL_NIF_TERM key, ERL_NIF_TERM *map_out)
{
        const struct nk_map *m = map_of(map_in);

        if (!m)
                return 0;
        long pos = map_find(m, key);
        /* Removing an absent key succeeds with the map unchanged, as in BEAM. */
        *map_out = pos < 0 ? map_in : map_delete(env, m, (size_t) pos);
        return 1;
}

/* ---- iterators ------------------------------------------------------------------- */

int enif_map_iterator_create(ErlNifEnv *env, ERL_NIF_TERM map, ErlNifMapIterator *iter,
                             ErlNifMapIteratorEntry entry)
{
        const struct nk_map *m = map_of(map);

        if (!m)
                return 0;
        switch (entry) {
        case ERL_NIF_MAP_ITERATOR_FIRST:
                iter->idx = 1;
                break;
        case ERL_NIF_MAP_ITERATOR_LAST:
                iter->idx = m->h.n;
                break;
        default:
                return 0;
        }
        iter->map = map;
        iter->size = m->h.n;
        iter->u.flat.ks = m->keys;
        iter->u.flat.vs = m->vals;
        return 1;
}

void enif_map_iterator_destroy(ErlNifEnv *env, ErlNifMapIterator *iter)
{
        /* Nothing is allocated; the map lives in its env. Poison the
         * iterator so that use after destroy fails its range checks. */
        iter->size = 0;
        iter->idx = 0;
}

int enif_map_iterator_is_head(ErlNifEnv *env, ErlNifMapIterator *iter)
{
        return iter->size == 0 || iter->idx == 0;
}

int enif_map_iterator_is_tail(ErlNifEnv *env, ErlNifMapIterator *iter)
{
        return iter->size == 0 || iter->idx > iter->size;
}

int enif_map_iterator_next(ErlNifEnv *env, ErlNifMapIterator *iter)
{
        if (iter->idx <= iter->size)
                iter->idx++;
        return iter->idx <= iter->size;
}

int enif_map_iterator_prev(ErlNifEnv *env, ErlNifMapIterator *iter)
{
        if (iter->idx > 0)
                iter->idx--;
        return iter->idx > 0;
}

int enif_map_iterator_get_pair(ErlNifEnv *env, ErlNifMapIterator *iter, ERL_NIF_TERM *key,
                               ERL_NIF_TERM *value)
{
        if (iter->idx == 0 || iter->idx > iter->size)
                return 0;
        const struct nk_map *m = map_of(iter->map);
        size_t pos = iter->idx - 1;
        /* BEAM's NIF iterator walks its hash trie the opposite way to
         * maps:to_list/1 and term_to_binary, whose order iter_order keeps. */
        if (m && m->iter_order)
                pos = m->iter_order[iter->size - iter->idx];
        *key = iter->u.flat.ks[pos];
        *value = iter->u.flat.vs[pos];
        return 1;
}
