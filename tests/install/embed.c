/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A C program built only from what meson install put in place (nifkit.pc,
 * include/nifkit/, libnifkit.a), as an embedder builds one:
 *   embed POLICY HOST NIF
 * loads POLICY, checks that NIF is a NIF library and the host binary is
 * not, starts NIF in a host under POLICY and prints its module name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nifkit.h>
#include <nifkit_policy.h>

int main(int argc, char **argv)
{
        struct nk_policy_error perr;
        struct nk_policy *policy = NULL;
        nk_error err;
        nk_host *h;

        if (argc != 4) {
                fprintf(stderr, "usage: embed POLICY HOST NIF\n");
                return 64;
        }
        if (nk_policy_load(argv[1], &policy, &perr) < 0) {
                fprintf(stderr, "embed: %s\n", perr.msg);
                return 1;
        }
        printf("is_nif(nif)=%d is_nif(host)=%d\n", nk_library_is_nif(argv[3]), nk_library_is_nif(argv[2]));
        h = nk_host_new();
        if (!h || nk_host_set_library(h, argv[3]) < 0 || nk_host_set_host_binary(h, argv[2]) < 0)
                return 1;
        nk_host_set_policy(h, policy);
        if (getenv("NIFKIT_UNSANDBOXED_DEVELOPMENT"))
                nk_host_allow_unsandboxed_development(h);
        if (nk_host_start(h, NULL, 0, &err) < 0) {
                fprintf(stderr, "embed: start: %s\n", err.msg);
                return 1;
        }
        printf("module=%s functions=%u\n", nk_host_module(h), nk_host_function_count(h));
        nk_host_free(h);
        nk_policy_free(policy);
        return 0;
}
