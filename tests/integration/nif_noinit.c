/* SPDX-License-Identifier: Apache-2.0 */
/* A shared library that is not a NIF library: it has no nif_init. */
int nk_test_not_a_nif(int x);

int nk_test_not_a_nif(int x)
{
        return x + 1;
}
