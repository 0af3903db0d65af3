/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The erl_nif API as the host implements it: NIF API 2.17 (OTP 26), built
 * against whatever erl_nif.h the machine has. OTP 25's header stops at 2.16,
 * so the 2.17 additions are declared here; with an OTP 26+ header the block
 * below is skipped and the header's own declarations are used. The guard
 * macro NK_HAVE_ERL_NIF_OPTION is shared with host_internal.h, which
 * declares the same option type, so both may be included together.
 *
 * Also declared here: what the enif_* term functions share between their
 * files (the out-of-memory policy and the ErlNifIOVec flag), for the few
 * host modules that consume ErlNifIOVec (the I/O queue).
 */
#ifndef NIFKIT_HOST_NIF_API_H
#define NIFKIT_HOST_NIF_API_H

#include <stddef.h>
#include <erl_nif.h>

#if ERL_NIF_MAJOR_VERSION == 2 && ERL_NIF_MINOR_VERSION < 17

/* OTP 26 makes this a member of ErlNifCharEncoding; a cast keeps it usable
 * as a case label and as an argument of that enum type. */
#define ERL_NIF_UTF8 ((ErlNifCharEncoding) 2)

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

int enif_get_string_length(ErlNifEnv *env, ERL_NIF_TERM list, unsigned *len,
                           ErlNifCharEncoding encoding);
int enif_make_new_atom(ErlNifEnv *env, const char *name, ERL_NIF_TERM *atom,
                       ErlNifCharEncoding encoding);
int enif_make_new_atom_len(ErlNifEnv *env, const char *name, size_t len, ERL_NIF_TERM *atom,
                           ErlNifCharEncoding encoding);
int enif_set_option(ErlNifEnv *env, ErlNifOption opt, ...);

#endif

/* The NIF API version the host implements, whatever the build header says. */
#define NK_NIF_MAJOR_VERSION 2
#define NK_NIF_MINOR_VERSION 17

/*
 * ErlNifIOVec as enif_inspect_iovec fills it: ref_bins[i] is the
 * struct nk_binobj * that keeps iov[i] alive (a reference the iovec owns
 * when it was made without an env, none when an env holds the binaries),
 * or NULL. NK_IOVEC_PREALLOC in flags: the struct is the caller's, only
 * the references are released by enif_free_iovec.
 */
#define NK_IOVEC_PREALLOC 1
/* NK_IOVEC_ENV: made with an env, which holds the binaries (and the
 * struct, when not preallocated); the iovec owns nothing. */
#define NK_IOVEC_ENV 2

/*
 * Term constructors that the API gives no way to fail (enif_make_tuple,
 * enif_make_int, ...) call this when the env arena cannot grow. BEAM
 * aborts the VM in that case; the host aborts itself, and the runtime
 * reports the host as crashed, which is the nearest honest answer.
 */
_Noreturn void nk_nif_oom(const char *what);

#endif
