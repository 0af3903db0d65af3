/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the host's own code (the loader and protocol server) needs from the
 * erl_nif "system" half: resources types under load, scheduler thread
 * identity, system facts the runtime reports, monitors firing, and the 2.17
 * declarations the installed OTP 25 header lacks. None of this is exported
 * to NIFs (exports.list exports enif_* only).
 */
#ifndef NIFKIT_HOST_INTERNAL_H
#define NIFKIT_HOST_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <erl_nif.h>

#include "term.h"

/* ---- NIF API 2.17 (OTP 26) declarations missing from older headers ------ */

#if ERL_NIF_MAJOR_VERSION == 2 && ERL_NIF_MINOR_VERSION < 17
#ifndef NK_HAVE_ERL_NIF_OPTION
#define NK_HAVE_ERL_NIF_OPTION 1
typedef enum {
        ERL_NIF_OPT_DELAY_HALT = 1,
        ERL_NIF_OPT_ON_HALT = 2,
        ERL_NIF_OPT_ON_UNLOAD_THREAD = 3,
} ErlNifOption;
typedef void ErlNifOnHaltCallback(void *priv_data);
typedef void ErlNifOnUnloadThreadCallback(void *priv_data);
#endif
int enif_set_option(ErlNifEnv *env, ErlNifOption opt, ...);
#endif

/* ---- library load: resource types and options --------------------------- */

/*
 * BEAM lets a library open resource types and set options only from its
 * load/upgrade callback, and undoes everything that callback opened when it
 * fails. The loader brackets the callback with these two calls on the thread
 * that runs it. `module` is the module name from the library's ErlNifEntry.
 */
void nk_load_begin(const char *module);
/* success: commit created types and take-overs; otherwise roll them back. */
void nk_load_end(bool success);

/* The module whose load callback runs on this thread, or NULL. */
const char *nk_loading_module(void);
/* Options of the load running on this thread (committed with the load), or
 * NULL outside a load. */
struct nk_module_options;
struct nk_module_options *nk_loading_options(void);

/* The priv data a library's load callback produced; destructors and down
 * callbacks of its resource types see it through enif_priv_data. */
void nk_module_set_priv(const char *module, void *priv);
void *nk_module_get_priv(const char *module);

/* What the library asked for through enif_set_option during load. */
struct nk_module_options {
        bool delay_halt;
        void (*on_halt)(void *priv);
        void (*on_unload_thread)(void *priv);
};
/* 0, or -ENOENT if the module set no option. */
int nk_module_get_options(const char *module, struct nk_module_options *ret);

/* ---- scheduling -------------------------------------------------------- */

/* ERL_NIF_DIRTY_JOB_* flags passed to the enif_schedule_nif that set env's
 * continuation (0: a normal scheduler). Read on the call's thread. */
int nk_resched_flags(ErlNifEnv *env);

/* ---- threads --------------------------------------------------------- */

/* Sets what enif_thread_type() reports on the calling thread: the server's
 * call workers are ERL_NIF_THR_NORMAL_SCHEDULER (or a dirty kind while they
 * serve a dirty call); threads NIFs create stay ERL_NIF_THR_UNDEFINED. */
void nk_set_thread_type(int type);

/* ---- system facts the runtime knows better than the host ---------------- */

/* Number of scheduler threads enif_system_info reports: one per worker. */
void nk_set_scheduler_count(int n);
/* erts version of the VM on the other side (e.g. "13.1.5"), which the
 * runtime reports at start; the string is copied. Until then the host reports
 * the build's NK_ERTS_VERSION when the build defines it, else "0". */
void nk_set_erts_version(const char *version);

/* ---- printing ---------------------------------------------------------- */

struct nk_buf;
/* Appends t in Erlang syntax (what %T prints). 0 or -ENOMEM. */
int nk_print_term(struct nk_buf *b, ERL_NIF_TERM t);

/* ---- monitors ---------------------------------------------------------- */

/*
 * The runtime reports that a process monitored through enif_monitor_process
 * went down: runs the resource type's down callback once, with an env, the
 * pid and the monitor. Returns 0, or -ENOENT if the monitor is not active
 * (demonitored, already fired, or the resource is gone). A DOWN that arrives
 * while its enif_monitor_process is still waiting for the runtime's answer
 * is kept and fires as soon as the monitor is recorded. The resource handle
 * the runtime receives with the monitor request is informational (0 when
 * the resource never crossed): DOWNs are matched by monitor id.
 */
int nk_deliver_down(uint64_t monitor, ERL_NIF_TERM pid);

/* ---- resources --------------------------------------------------------- */

struct nk_resource_type {
        struct nk_resource_type *next;  /* registry list */
        char *module;
        char *name;
        ERL_NIF_TERM module_atom;
        ERL_NIF_TERM name_atom;
        /* Callbacks; replaced as a whole on take-over, read under the
         * registry lock (resource.c). */
        ErlNifResourceTypeInit fn;
        bool committed;                 /* false while its load may roll back */
};

/* The resource type's module and name atoms (enif_dynamic_resource_call). */
ERL_NIF_TERM nk_resource_type_module(const struct nk_resource_type *type);
ERL_NIF_TERM nk_resource_type_name(const struct nk_resource_type *type);
/* Runs the type's stop callback directly (enif_select with STOP). */
bool nk_resource_call_stop(struct nk_resource *res, ErlNifEvent e, int is_direct_call);
/* The type's current down/dyncall callback; NULL if it has none. */
ErlNifResourceDown *nk_resource_down_fn(const struct nk_resource_type *type);
ErlNifResourceDynCall *nk_resource_dyncall_fn(const struct nk_resource_type *type);
/* Takes a reference unless the count already reached zero (the object is
 * being destroyed); for lookups through weak pointers. */
bool nk_resource_try_keep(struct nk_resource *res);
/* An env for running a callback of the type (dtor, stop, down): process
 * independent, with the priv data of the module owning the type. */
ErlNifEnv *nk_callback_env_new(const struct nk_resource_type *type);
void nk_callback_env_free(ErlNifEnv *env);

/* Monitors still active on a resource are cancelled when it dies. */
void nk_monitors_drop_resource(struct nk_resource *res);

#endif
