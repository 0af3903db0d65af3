/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The NIF behind nifkit:stats/0. It reads the state files (nk_status_list)
 * rather than asking the proxies of this VM, so that it sees every runtime
 * on the machine; it starts no host: a plain NIF, not a proxy.
 */
#include <stdbool.h>
#include <string.h>

#include <erl_nif.h>

#include "nifkit.h"
#include "operator.h"

/* Reasons libnifkit reports become atoms; anything else in a state file
 * (another version, a file someone edited) stays a binary, so reading
 * state files never grows the atom table. */
static const char *const known_reasons[] = {
        "oom",    "pids_limit", "timeout",  "seccomp", "crashed",   "exited", "protocol", "stopped",
        "system", "load",       "host_died", "rejected", "not_running", "heartbeat", "result_too_large",
        "other",
};

static ERL_NIF_TERM make_binary(ErlNifEnv *env, const char *s)
{
        ERL_NIF_TERM t;
        size_t n = strlen(s);
        unsigned char *p = enif_make_new_binary(env, n, &t);

        if (p)
                memcpy(p, s, n);
        return t;
}

static ERL_NIF_TERM make_reason(ErlNifEnv *env, const char *s)
{
        for (size_t i = 0; i < sizeof known_reasons / sizeof known_reasons[0]; i++)
                if (strcmp(s, known_reasons[i]) == 0)
                        return enif_make_atom(env, s);
        return make_binary(env, s);
}

struct collect {
        ErlNifEnv *env;
        ERL_NIF_TERM list;
        bool failed;
};

static bool put(ErlNifEnv *env, ERL_NIF_TERM *map, const char *key, ERL_NIF_TERM value)
{
        return enif_make_map_put(env, *map, enif_make_atom(env, key), value, map);
}

static int add_record(const struct nk_status_record *rec, void *arg)
{
        struct collect *c = arg;
        ErlNifEnv *env = c->env;
        const struct nk_stats *st = &rec->st;
        ERL_NIF_TERM m = enif_make_new_map(env), errors = enif_make_new_map(env);
        bool ok = true;

        for (unsigned i = 0; ok && i < st->nreasons && i < NK_STATS_MAX_REASONS; i++)
                ok = enif_make_map_put(env, errors, make_reason(env, st->errors_by_reason[i].reason),
                                       enif_make_uint64(env, st->errors_by_reason[i].count), &errors);
        ok = ok && put(env, &m, "library", make_binary(env, rec->library)) &&
             put(env, &m, "runtime_pid", enif_make_int(env, rec->runtime_pid)) &&
             put(env, &m, "host_pid",
                 st->host_pid > 0 ? enif_make_int(env, st->host_pid) : enif_make_atom(env, "undefined")) &&
             put(env, &m, "started", enif_make_int64(env, st->started)) &&
             put(env, &m, "calls", enif_make_uint64(env, st->calls)) &&
             put(env, &m, "errors", errors) &&
             put(env, &m, "restarts", enif_make_uint64(env, st->restarts)) &&
             put(env, &m, "last_reason",
                 st->last_reason[0] ? make_reason(env, st->last_reason) : enif_make_atom(env, "undefined")) &&
             put(env, &m, "p50_us", enif_make_uint64(env, st->p50_us)) &&
             put(env, &m, "p99_us", enif_make_uint64(env, st->p99_us)) &&
             put(env, &m, "memory_peak", enif_make_uint64(env, st->memory_peak));
        if (!ok) {
                c->failed = true;
                return -1;
        }
        c->list = enif_make_list_cell(env, m, c->list);
        return 0;
}

static ERL_NIF_TERM stats(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
        struct collect c = { .env = env, .list = enif_make_list(env, 0) };
        int r = nk_status_list(add_record, &c);

        if (c.failed)
                return enif_raise_exception(env, enif_make_atom(env, "badmap"));
        if (r < 0)
                return enif_raise_exception(env, enif_make_tuple2(env, enif_make_atom(env, "nifkit"),
                                                                  enif_make_int(env, -r)));
        return c.list;
}

/* Reading files: a dirty I/O scheduler, never a normal one. */
static ErlNifFunc funcs[] = {
        { "stats", 0, stats, ERL_NIF_DIRTY_JOB_IO_BOUND },
};

/* The status directory the VM's own proxies write to, as they choose it.
 * One that is not an absolute path leaves the default ones, which readers
 * search anyway; the proxies report the variable. */
static int load(ErlNifEnv *env, void **priv, ERL_NIF_TERM info)
{
        struct nk_operator_env e;

        (void) env, (void) priv, (void) info;
        nk_operator_env_read(&e);
        (void) nk_operator_env_status(&e);
        return 0;
}

ERL_NIF_INIT(nifkit, funcs, load, NULL, NULL, NULL)
