/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a NIF finds in BEAM's global symbol scope besides the erl_nif API:
 * the shared libraries beam.smp itself links (libz, libtinfo, libstdc++,
 * libm, libgcc_s, libc on Debian). A NIF linked against nothing but libc
 * may call zlib because beam.smp brought it along; the host loads the same
 * libraries into its global scope before the NIF.
 */
#ifndef NIFKIT_BEAM_SCOPE_H
#define NIFKIT_BEAM_SCOPE_H

/* The absolute paths of beam.smp's own DT_NEEDED libraries, in its order,
 * NULL-terminated: read once from the running BEAM (when this process is
 * one) or else from the erts nifkit was built against. An empty list when
 * neither can be read. Never freed. */
const char *const *nk_beam_scope(void);

/* The beam.smp nk_beam_scope read, or NULL. */
const char *nk_beam_scope_source(void);

/* Which global undefined symbols of library (and of the dependencies it
 * brings that the host does not) nothing in reach defines: the host's
 * exports, the scope and its dependencies, the library's own. Writes
 * "LIB needs a, b; LIB2 needs c" into out (truncated to outlen) and returns
 * how many symbols are missing. */
int nk_scope_missing(const char *host_binary, const char *library, char *out, size_t outlen);

#endif
