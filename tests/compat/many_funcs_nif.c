/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A NIF library with NK_NFUNCS functions f0x000 … (each returns its own
 * index), for module NK_MODULE. Built with 256 and 257 functions to test the
 * proxy's trampoline table: every slot must reach its own function, and a
 * library with one function too many must be refused with a message.
 */
#include <erl_nif.h>

#ifndef NK_NFUNCS
#error "NK_NFUNCS must be defined by the build"
#endif
#ifndef NK_MODULE
#error "NK_MODULE must be defined by the build"
#endif

#define F(n)                                                                            \
        static ERL_NIF_TERM f##n(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])   \
        {                                                                               \
                return enif_make_int(env, n);                                           \
        }
#define ENTRY(n) { "f" #n, 0, f##n, 0 },
#define SIXTEEN(X, h)                                                                   \
        X(0x##h##0) X(0x##h##1) X(0x##h##2) X(0x##h##3) X(0x##h##4) X(0x##h##5)         \
        X(0x##h##6) X(0x##h##7) X(0x##h##8) X(0x##h##9) X(0x##h##a) X(0x##h##b)         \
        X(0x##h##c) X(0x##h##d) X(0x##h##e) X(0x##h##f)
#define ALL256(X)                                                                       \
        SIXTEEN(X, 00) SIXTEEN(X, 01) SIXTEEN(X, 02) SIXTEEN(X, 03) SIXTEEN(X, 04)      \
        SIXTEEN(X, 05) SIXTEEN(X, 06) SIXTEEN(X, 07) SIXTEEN(X, 08) SIXTEEN(X, 09)      \
        SIXTEEN(X, 0a) SIXTEEN(X, 0b) SIXTEEN(X, 0c) SIXTEEN(X, 0d) SIXTEEN(X, 0e)      \
        SIXTEEN(X, 0f)

ALL256(F)
#if NK_NFUNCS > 256
F(0x100)
#endif

static ErlNifFunc funcs[] = {
        ALL256(ENTRY)
#if NK_NFUNCS > 256
        ENTRY(0x100)
#endif
};

/* Through a macro, so that NK_MODULE is expanded before ERL_NIF_INIT
 * stringifies it. */
#define INIT(module) ERL_NIF_INIT(module, funcs, NULL, NULL, NULL, NULL)
INIT(NK_MODULE)
