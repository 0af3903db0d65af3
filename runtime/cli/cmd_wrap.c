/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit wrap LIB.so [--policy P.json] (-o DIR | --in-place): the four files
 * of wrap.h for one library. Everything that can be refused is checked
 * before the first byte is written: the policy (with its file:line:column
 * message), the proxy and the host, then the library (readable, ELF, not a
 * proxy already) before the output directory is made.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd_wrap.h"
#include "macro.h"
#include "nifkit_policy.h"
#include "wrap.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 64
#define WHO "nifkit wrap"

struct wrap_options {
        const char *policy;
        const char *out_dir;
        const char *proxy;
        const char *host;
        bool in_place;
        bool strict;
};

static void usage(FILE *f)
{
        fputs("usage: nifkit wrap [--policy FILE] (-o DIR | --in-place) LIBRARY.so\n"
              "Put nifkit's proxy NIF in place of LIBRARY, so that an unmodified Erlang module\n"
              "that loads it runs the real library in a sandboxed host process.\n"
              "\n"
              "For LIBRARY = NAME.so, writes DIR/NAME.so (a copy of the proxy), DIR/NAME.real.so\n"
              "(a copy of LIBRARY), DIR/NAME.policy.json and DIR/NAME.host (a link to the host\n"
              "binary that runs it). Copy the application around it (its ebin/) as it is:\n"
              "only the .so changes.\n"
              "\n"
              "Options:\n"
              "  --policy FILE   the policy the host runs under, checked first (default: the\n"
              "                  built-in default policy, written out)\n"
              "  -o, --output DIR  write into DIR (created if missing)\n"
              "  --in-place      replace LIBRARY itself by the proxy and keep the original as\n"
              "                  NAME.real.so beside it\n"
              "  --proxy FILE    the proxy NIF to copy (default: $NIFKIT_PROXY, else the one built\n"
              "                  by this tool's build tree, else " NK_PROXY_INSTALL_PATH ")\n"
              "  --strict        refuse when the library's entitlements and the policy differ\n"
              "                  (without it, the host runs under what both allow, and the\n"
              "                  differences are listed)\n"
              "  --host FILE     the nifkit-host to record (default: $NIFKIT_HOST, else the one\n"
              "                  built by this tool's build tree, else " NK_HOST_INSTALL_PATH ")\n"
              "  -h, --help      show this help\n"
              "\n"
              "Exit status: 0 wrapped, 1 refused (invalid policy, unreadable library, already a\n"
              "proxy) or failed, nothing written; 64 usage error.\n",
              f);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
        va_list ap;

        fputs("nifkit wrap: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry 'nifkit wrap --help'.\n", stderr);
        return EXIT_USAGE;
}

/* argv[0] is "wrap" */
static int parse(int argc, char **argv, struct wrap_options *o)
{
        static const struct option longopts[] = {
                { "policy", required_argument, NULL, 'p' },
                { "output", required_argument, NULL, 'o' },
                { "in-place", no_argument, NULL, 'i' },
                { "proxy", required_argument, NULL, 'P' },
                { "host", required_argument, NULL, 'H' },
                { "strict", no_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'p':
                        o->policy = optarg;
                        break;
                case 'o':
                        o->out_dir = optarg;
                        break;
                case 'i':
                        o->in_place = true;
                        break;
                case 'P':
                        o->proxy = optarg;
                        break;
                case 'H':
                        o->host = optarg;
                        break;
                case 's':
                        o->strict = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 1;
                case ':':
                        return usage_error("option '%s' needs a value", argv[optind - 1]);
                default:
                        return usage_error("unknown option '%s'", argv[optind - 1]);
                }
        }
        if (argc - optind != 1)
                return usage_error("wrap takes exactly one library");
        if (!!o->out_dir == o->in_place)
                return usage_error("give exactly one of -o DIR and --in-place");
        return 0;
}

/* Checks everything, then stages and renames. */
static int wrap(const char *lib, const struct wrap_options *o)
{
        _cleanup_free_ char *policy_text = NULL, *effective = NULL;
        struct nk_wrap_parts parts;
        size_t effective_len = 0;
        bool declared = false;
        struct nk_wrap_names names;
        size_t policy_len;
        int r;

        r = nk_wrap_names(WHO, lib, o->in_place ? NULL : o->out_dir, &names);
        if (r < 0)
                return r;
        r = nk_wrap_policy_text(WHO, o->policy, &policy_text, &policy_len);
        if (r < 0)
                goto out_names;
        r = nk_wrap_find_parts(WHO, o->proxy, o->host, &parts);
        if (r < 0)
                goto out_names;
        /* The library is checked before the output directory is made. */
        r = nk_wrap_check_library(WHO, lib);
        if (r < 0)
                goto out;
        /* What the library says it needs, and the policy cut down to it. */
        r = nk_wrap_entitled_policy(WHO, lib, NULL, policy_text, o->policy ? o->policy : "the built-in default policy",
                                    o->strict, stdout, &effective, &effective_len, &declared);
        if (r < 0)
                goto out;
        if (effective) {
                free(policy_text);
                policy_text = TAKE_PTR(effective);
                policy_len = effective_len;
        }
        if (!o->in_place && mkdir(o->out_dir, 0755) < 0 && errno != EEXIST) {
                r = -errno;
                fprintf(stderr, WHO ": cannot create '%s': %s\n", o->out_dir, strerror(-r));
                goto out;
        }
        r = nk_wrap_install(WHO, lib, &names, policy_text, policy_len, &parts);
        if (r >= 0)
                printf("%s: proxy NIF, wrapping %s\n%s: the real library\n%s: the policy%s\n%s: the host, %s\n",
                       names.proxy, lib, names.real, names.policy,
                       declared ? " (cut down to the library's entitlements)"
                       : o->policy ? "" : " (the built-in default)",
                       names.host, parts.host_path);
out:
        nk_wrap_parts_free(&parts);
out_names:
        nk_wrap_names_free(&names);
        return r;
}

int nk_cmd_wrap(int argc, char **argv)
{
        struct wrap_options o = { 0 };
        int r = parse(argc, argv, &o);

        if (r != 0)
                return r == 1 ? 0 : r;
        return wrap(argv[optind], &o) < 0 ? EXIT_FAILED : 0;
}
