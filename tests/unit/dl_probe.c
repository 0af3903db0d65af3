/* SPDX-License-Identifier: Apache-2.0 */
/* A library for enif_dlopen's test: BEAM and the host append ".so" to the
 * name a NIF gives, so the test needs a library it can name without one. */
int nk_dl_probe_answer(void);
int nk_dl_probe_answer(void)
{
        return 42;
}
