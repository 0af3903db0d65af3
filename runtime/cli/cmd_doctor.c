/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit doctor: what this machine allows a sandboxed host, check by check
 * (nk_machine_checks), each with what was found and, where something is
 * missing, the fix for this kind of machine. Reads only.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_doctor.h"
#include "nifkit.h"
#include "operator.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 64
#define MAX_CHECKS 16

static void usage(FILE *f)
{
        fputs("usage: nifkit doctor [--proc-sys DIR]\n"
              "Check what this machine allows the sandboxed host of a NIF library: the kernel,\n"
              "the sysctls that restrict user namespaces, creating the namespaces and the\n"
              "seccomp filter a host gets (tried in a child process), cgroup v2 delegation\n"
              "(under $NIFKIT_CGROUP_ROOT, else this process's cgroup) and bubblewrap. Each\n"
              "problem comes with its fix. Nothing is changed.\n"
              "\n"
              "  --proc-sys DIR  read the sysctls from DIR instead of /proc/sys\n"
              "  -h, --help      show this help\n"
              "\n"
              "Exit status: 0 sandboxed hosts can start here (warnings aside), 1 they cannot,\n"
              "64 usage error.\n",
              f);
}

static const char *status_word(enum nk_check_status s)
{
        switch (s) {
        case NK_CHECK_OK:
                return "ok";
        case NK_CHECK_WARN:
                return "warn";
        case NK_CHECK_FAIL:
                return "FAIL";
        }
        return "?";
}

int nk_cmd_doctor(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "proc-sys", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *proc_sys = NULL;
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
                switch (c) {
                case 'p':
                        proc_sys = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case ':':
                        fprintf(stderr, "nifkit doctor: '%s' needs a value\n", argv[optind - 1]);
                        usage(stderr);
                        return EXIT_USAGE;
                default:
                        fprintf(stderr, "nifkit doctor: unknown option '%s'\n", argv[optind - 1]);
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind != argc) {
                fputs("nifkit doctor: takes no operands\n", stderr);
                usage(stderr);
                return EXIT_USAGE;
        }

        struct nk_operator_env env;
        struct nk_check checks[MAX_CHECKS];
        nk_operator_env_read(&env);
        size_t n = nk_machine_checks(proc_sys, env.cgroup_root, getenv("PATH"), checks, MAX_CHECKS);
        unsigned fails = 0, warns = 0;

        printf("nifkit doctor: what this machine allows a sandboxed NIF host\n\n");
        for (size_t i = 0; i < n; i++) {
                printf("  %-4s  %-16s %s\n", status_word(checks[i].status), checks[i].name, checks[i].detail);
                if (checks[i].fix[0])
                        printf("        %-16s fix: %s\n", "", checks[i].fix);
                fails += checks[i].status == NK_CHECK_FAIL;
                warns += checks[i].status == NK_CHECK_WARN;
        }
        if (fails)
                printf("\nSandboxed hosts cannot start here: %u problem%s above.\n", fails, fails == 1 ? "" : "s");
        else
                printf("\nSandboxed hosts can start here%s.\n", warns ? ", with the warnings above" : "");
        if (fflush(stdout) != 0)
                return EXIT_REFUSED;
        return fails ? EXIT_REFUSED : 0;
}
