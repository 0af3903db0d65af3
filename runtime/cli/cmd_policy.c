/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit policy check FILE...: load each file as the runtime would and say
 * "FILE: ok" or why not, with the place in the file. Checking every file,
 * not stopping at the first bad one, lets a CI job list all its mistakes.
 *
 * nifkit policy suggest LOG: the smallest policy that allows what an audit
 * log (the broker's JSON lines, NIFKIT_AUDIT_LOG) saw allowed.
 *
 * nifkit policy explain FILE: the policy in plain words (explain.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd_policy.h"
#include "explain.h"
#include "nifkit.h"
#include "nifkit_policy.h"
#include "operator.h"

#define EXIT_INVALID 1
#define EXIT_USAGE 64

static void usage(FILE *f)
{
        fputs("usage: nifkit policy check FILE...\n"
              "       nifkit policy suggest LOG\n"
              "       nifkit policy explain FILE\n"
              "Check that each FILE is a valid nifkit policy (see policies/schema.json).\n"
              "\n"
              "Prints \"FILE: ok\" on stdout for a valid policy, and FILE:LINE:COLUMN: PATH: REASON\n"
              "on stderr for one that is not.\n"
              "\n"
              "suggest reads LOG, the capability broker's audit log (JSON lines, written where\n"
              "NIFKIT_AUDIT_LOG says, under a policy with \"mode\": \"audit\"; \"-\" is stdin), and\n"
              "prints the smallest policy that allows what the log records as allowed: the\n"
              "directory of each file with the weakest access that covers it, the endpoints\n"
              "and the names. Limits and launcher are left to their defaults: add your own.\n"
              "\n"
              "explain prints in plain words what FILE lets a library's host do (files,\n"
              "sockets, limits, restarts) and which limits this machine would enforce only\n"
              "in part (cgroup controllers not delegated under $NIFKIT_CGROUP_ROOT, else this\n"
              "process's cgroup). It reads the cgroup files and changes nothing.\n"
              "\n"
              "Exit status: 0 all valid (or a policy printed), 1 some file invalid or\n"
              "unreadable, 64 usage error.\n",
              f);
}

static int usage_error(const char *what)
{
        fprintf(stderr, "nifkit policy: %s\n", what);
        usage(stderr);
        return EXIT_USAGE;
}

static int check_file(const char *path)
{
        struct nk_policy_error err;
        struct nk_policy *p = NULL;
        int r;

        r = nk_policy_load(path, &p, &err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err.msg[0] ? err.msg : strerror(-r));
                return r;
        }
        if (p->launcher == NK_POLICY_LAUNCHER_UNSANDBOXED)
                printf("%s: ok (launcher \"%s\": the library will run WITHOUT a sandbox)\n", path,
                       nk_policy_launcher_name(p->launcher));
        else
                printf("%s: ok\n", path);
        nk_policy_free(p);
        return 0;
}

/* argv[0] is "explain". */
static int explain(int argc, char **argv)
{
        struct nk_policy_error err;
        struct nk_policy *p = NULL;
        struct nk_operator_env env;
        struct nk_cgroup_report machine;

        if (argc != 2 || (argv[1][0] == '-' && argv[1][1] != '\0'))
                return usage_error("explain takes one policy file");
        int r = nk_policy_load(argv[1], &p, &err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err.msg[0] ? err.msg : strerror(-r));
                return EXIT_INVALID;
        }
        nk_operator_env_read(&env);
        nk_cgroup_report(env.cgroup_root, &machine);
        nk_policy_explain(stdout, argv[1], p, &machine);
        nk_policy_free(p);
        return fflush(stdout) == 0 ? 0 : EXIT_INVALID;
}

/* argv[0] is "suggest". */
static int suggest(int argc, char **argv)
{
        if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
                usage(stdout);
                return 0;
        }
        if (argc != 2)
                return usage_error("suggest takes one audit log");
        bool stdin_log = strcmp(argv[1], "-") == 0;
        FILE *in = stdin_log ? stdin : fopen(argv[1], "re");
        if (!in) {
                fprintf(stderr, "nifkit policy suggest: %s: %s\n", argv[1], strerror(errno));
                return EXIT_INVALID;
        }
        char err[256] = "";
        int r = nk_audit_suggest(in, stdout, err, sizeof err);
        if (!stdin_log)
                fclose(in);
        if (r < 0) {
                fprintf(stderr, "nifkit policy suggest: %s: %s\n", argv[1], err);
                return EXIT_INVALID;
        }
        return 0;
}

int nk_cmd_policy(int argc, char **argv)
{
        int status = 0, first = 2;

        if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
                usage(stdout);
                return 0;
        }
        if (argc < 2)
                return usage_error("missing subcommand");
        if (strcmp(argv[1], "suggest") == 0)
                return suggest(argc - 1, argv + 1);
        if (strcmp(argv[1], "explain") == 0)
                return explain(argc - 1, argv + 1);
        if (strcmp(argv[1], "check") != 0)
                return usage_error("unknown subcommand; they are 'check', 'suggest' and 'explain'");
        if (argc >= 3 && (strcmp(argv[2], "-h") == 0 || strcmp(argv[2], "--help") == 0)) {
                usage(stdout);
                return 0;
        }
        /* "--" lets a file whose name starts with '-' be checked. */
        if (argc >= 3 && strcmp(argv[2], "--") == 0)
                first = 3;
        else
                for (int i = 2; i < argc; i++)
                        if (argv[i][0] == '-' && argv[i][1] != '\0')
                                return usage_error("unknown option");
        if (first >= argc)
                return usage_error("no policy file given");
        for (int i = first; i < argc; i++)
                if (check_file(argv[i]) < 0)
                        status = EXIT_INVALID;
        fflush(stdout);
        return status;
}
