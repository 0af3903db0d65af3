/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The nifkit command-line tool: a thin main() over libnifkit.
 *
 * Exit codes, the same for every command:
 *   0   done (call: the function returned)
 *   1   the function raised an exception
 *   2   the host failed: the library did not load, the host crashed, timed out
 *   64  usage error (EX_USAGE)
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <ei.h>

#include "cmd_doctor.h"
#include "cmd_policy.h"
#include "cmd_release.h"
#include "cmd_status.h"
#include "cmd_wrap.h"
#include "literal.h"
#include "macro.h"
#include "nifkit.h"
#include "nifkit_entitlements.h"
#include "nifkit_policy.h"
#include "operator.h"
#include "parts.h"
#include "print.h"

#define EXIT_EXCEPTION 1
#define EXIT_HOST 2
#define EXIT_USAGE 64

/* A command takes its own name as argv[0] and answers --help itself, so a
 * command written elsewhere (nk_cmd_policy) plugs in with one table line. */
struct command {
        const char *name;
        const char *summary;
        int (*run)(int argc, char **argv);
};

/* How a command of this file is used, for its help and its usage errors. */
struct usage {
        const char *name;
        const char *args;
        const char *summary;
};

static const struct usage call_usage = {
        "call", "[OPTION]... LIBRARY FUNCTION [ARG]...",
        "Load LIBRARY in a host, call FUNCTION with the ARG terms (Erlang literals) and print the result.",
};

static const struct usage inspect_usage = {
        "inspect", "[OPTION]... LIBRARY",
        "Load LIBRARY in a host and print its module name and functions (name/arity and dirty flags). "
        "The library's load() runs only when --load-info gives it its argument.",
};

/* Options every command that starts a host shares. */
struct host_options {
        const char *host;
        const char *load_info;
        const char *policy;
        unsigned timeout_ms;
        bool open_only;         /* no load() unless --load-info: nif_init's table is all it needs */
};

/* The NIFKIT_* variables, read once by main(). */
static struct nk_operator_env cli_env;
static int cli_log_fd = -1;

/* The policy of --policy: libnifkit does not copy it, so it lives until
 * exit, after every host is gone. */
static struct nk_policy *cli_policy;

static void cli_policy_free(void)
{
        nk_policy_free(cli_policy);
        cli_policy = NULL;
}

static void host_freep(nk_host **h)
{
        nk_host_free(*h);
}

static void ei_x_done(ei_x_buff *x)
{
        if (x->buff)
                ei_x_free(x);
        x->buff = NULL;
}

static int usage_error(const struct usage *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const struct usage *cmd, const char *fmt, ...)
{
        va_list ap;

        fputs("nifkit: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        if (cmd)
                fprintf(stderr, "usage: nifkit %s %s\nTry 'nifkit %s --help'.\n", cmd->name, cmd->args,
                        cmd->name);
        else
                fputs("Try 'nifkit --help'.\n", stderr);
        return EXIT_USAGE;
}

static void command_help(const struct usage *cmd, FILE *f)
{
        fprintf(f, "usage: nifkit %s %s\n%s\n\nOptions:\n", cmd->name, cmd->args, cmd->summary);
        /* inspect accepts --timeout too, but makes no call for it to bound. */
        if (cmd == &call_usage)
                fputs("  --timeout MS       kill the host when the call takes longer (default: no limit)\n", f);
        fputs("  --load-info TERM   the term load() receives, as an Erlang literal (default: [])\n"
              "  --policy FILE      the JSON policy the host runs under (default: $NIFKIT_POLICY,\n"
              "                     else the built-in deny-all policy)\n"
              "  --host PATH        the nifkit-host executable (default: $NIFKIT_HOST, else this build tree's,\n"
              "                     else the installed one)\n"
              "  -h, --help         show this help\n"
              "\n",
              f);
        if (cmd == &call_usage)
                fputs("Exit status: 0 the function returned, 1 it raised, 2 the host failed\n"
                      "(load failure, crash, timeout), 64 usage error or no such function.\n",
                      f);
        else
                fputs("Exit status: 0 done, 2 the host failed (load failure, crash), 64 usage error.\n", f);
}

/*
 * Reads the shared options and leaves optind at the first operand. Options
 * stop at the first operand, so an argument such as -1 that follows the
 * function name is a term, not an option. Returns 0, 1 when help was
 * printed, or the usage exit code.
 */
static int parse_host_options(const struct usage *cmd, int argc, char **argv, struct host_options *o)
{
        static const struct option longopts[] = {
                { "timeout", required_argument, NULL, 't' },
                { "load-info", required_argument, NULL, 'l' },
                { "host", required_argument, NULL, 'H' },
                { "policy", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
                switch (c) {
                case 't': {
                        char *end;
                        unsigned long v;
                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-' || v > UINT_MAX)
                                return usage_error(cmd, "--timeout wants milliseconds, not '%s'", optarg);
                        o->timeout_ms = (unsigned) v;
                        break;
                }
                case 'l':
                        o->load_info = optarg;
                        break;
                case 'H':
                        o->host = optarg;
                        break;
                case 'p':
                        o->policy = optarg;
                        break;
                case 'h':
                        command_help(cmd, stdout);
                        return 1;
                case ':':
                        return usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
                default:
                        return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
                }
        }
        return 0;
}

static void print_host_error(const nk_error *err)
{
        /* libnifkit's messages already name the library where it matters. */
        fprintf(stderr, "nifkit: %s\n", err->msg[0] ? err->msg : nk_error_kind_name(err->kind));
}

/* Creates, configures and starts a host for lib; prints why it failed. */
static int start_host(const char *lib, const struct host_options *o, nk_host **ret_h)
{
        _cleanup_(host_freep) nk_host *h = NULL;
        _cleanup_(ei_x_done) ei_x_buff info = { 0 };
        const uint8_t *info_etf = NULL;
        size_t info_len = 0;
        nk_error err = { 0 };
        int r;

        if (o->load_info) {
                struct nk_literal_error lerr;
                r = nk_literal_to_etf(o->load_info, &info, &lerr);
                if (r == -EINVAL) {
                        fprintf(stderr, "nifkit: --load-info, %s\n", lerr.msg);
                        return EXIT_USAGE;
                }
                if (r < 0) {
                        fprintf(stderr, "nifkit: --load-info: %s\n", strerror(-r));
                        return EXIT_HOST;
                }
                info_etf = (const uint8_t *) info.buff;
                info_len = (size_t) info.index;
        }
        /* --policy, else $NIFKIT_POLICY, else libnifkit's default. */
        const char *policy = o->policy ? o->policy : cli_env.policy;
        if (policy && !cli_policy) {
                struct nk_policy_error perr;
                r = nk_policy_load(policy, &cli_policy, &perr);
                if (r < 0) {
                        fprintf(stderr, "nifkit: %s%s\n", o->policy ? "" : "$NIFKIT_POLICY: ",
                                perr.msg[0] ? perr.msg : strerror(-r));
                        return r == -EINVAL ? EXIT_USAGE : EXIT_HOST;
                }
                atexit(cli_policy_free);
        }
        h = nk_host_new();
        if (!h) {
                fprintf(stderr, "nifkit: %s\n", strerror(ENOMEM));
                return EXIT_HOST;
        }
        if (cli_policy)
                nk_host_set_policy(h, cli_policy);
        char host[PATH_MAX];
        nk_cli_find_host(o->host, host, sizeof host);
        r = nk_host_set_library(h, lib);
        if (r >= 0)
                r = nk_host_set_host_binary(h, host);
        if (r >= 0)
                r = nk_operator_env_apply(&cli_env, h, false);
        if (r < 0) {
                fprintf(stderr, "nifkit: %s: %s\n", lib, strerror(-r));
                return EXIT_HOST;
        }
        nk_host_set_call_timeout(h, o->timeout_ms);
        r = o->open_only && !o->load_info ? nk_host_open(h, &err) : nk_host_start(h, info_etf, info_len, &err);
        if (r < 0) {
                print_host_error(&err);
                return EXIT_HOST;
        }
        *ret_h = TAKE_PTR(h);
        return 0;
}

/* The arities FUNCTION has, or every function when it has none. */
static void print_candidates(const nk_host *h, const char *name)
{
        unsigned n = nk_host_function_count(h), found = 0;
        bool any = false;

        for (unsigned i = 0; i < n; i++)
                any = any || strcmp(nk_host_function(h, i)->name, name) == 0;
        for (unsigned i = 0; i < n; i++) {
                const nk_function *f = nk_host_function(h, i);
                if (!any || strcmp(f->name, name) == 0)
                        fprintf(stderr, "%s%s/%u", found++ ? ", " : "nifkit: available: ", f->name, f->arity);
        }
        if (found)
                fputc('\n', stderr);
}

/* The ETF of the list of argument terms, each parsed from its literal. */
static int encode_args(char **lits, int n, ei_x_buff *ret_x)
{
        _cleanup_(ei_x_done) ei_x_buff x = { 0 };

        if (ei_x_new_with_version(&x) < 0)
                return -ENOMEM;
        if (n > 0 && ei_x_encode_list_header(&x, n) < 0)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                struct nk_literal_error lerr;
                int r = nk_literal_encode(&x, lits[i], &lerr);
                if (r == -EINVAL) {
                        fprintf(stderr, "nifkit: argument %d, %s\n", i + 1, lerr.msg);
                        return r;
                }
                if (r < 0)
                        return r;
        }
        if (ei_x_encode_empty_list(&x) < 0)
                return -ENOMEM;
        *ret_x = x;
        x.buff = NULL;
        return 0;
}

static int print_result(const nk_result *res)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = res->exception ? nk_print_exception(res->etf, res->len, &text)
                           : nk_print_etf(res->etf, res->len, &text);
        if (r < 0) {
                fprintf(stderr, "nifkit: the host's %s is not a valid term: %s\n",
                        res->exception ? "exception" : "result", strerror(-r));
                return EXIT_HOST;
        }
        if (res->exception) {
                fprintf(stderr, "** %s\n", text);
                return EXIT_EXCEPTION;
        }
        printf("%s\n", text);
        return fflush(stdout) == 0 ? 0 : EXIT_HOST;
}

static int cmd_call(int argc, char **argv)
{
        const struct usage *cmd = &call_usage;
        _cleanup_(host_freep) nk_host *h = NULL;
        _cleanup_(ei_x_done) ei_x_buff args = { 0 };
        struct host_options o = { 0 };
        nk_result res = { 0 };
        nk_error err = { 0 };
        const char *lib, *fun;
        int r, nargs, index;

        r = parse_host_options(cmd, argc, argv, &o);
        if (r != 0)
                return r == 1 ? 0 : r;
        if (argc - optind < 2)
                return usage_error(cmd, "call needs a library and a function name");
        lib = argv[optind];
        fun = argv[optind + 1];
        nargs = argc - optind - 2;
        /* Parse before starting a host: a typo costs no process. */
        r = encode_args(argv + optind + 2, nargs, &args);
        if (r == -EINVAL)
                return EXIT_USAGE;
        if (r < 0) {
                fprintf(stderr, "nifkit: %s\n", strerror(-r));
                return EXIT_HOST;
        }
        r = start_host(lib, &o, &h);
        if (r != 0)
                return r;
        index = nk_host_find_function(h, fun, (unsigned) nargs);
        if (index < 0) {
                fprintf(stderr, "nifkit: %s has no function %s/%d\n", nk_host_module(h), fun, nargs);
                print_candidates(h, fun);
                return EXIT_USAGE;
        }
        r = nk_host_call(h, (unsigned) index, NULL, 0, (const uint8_t *) args.buff, (size_t) args.index, &res,
                         &err);
        if (r < 0) {
                print_host_error(&err);
                return EXIT_HOST;
        }
        r = print_result(&res);
        nk_result_free(&res);
        return r;
}

/* What the library declares it needs (nifkit_entitlements.h). */
static int print_entitlements(const char *library)
{
        _cleanup_free_ char *text = NULL;
        struct nk_policy *want = NULL;
        struct nk_policy_error perr;
        char where[PATH_MAX + 64];
        int r = nk_entitlements_find(library, NULL, &text, where, sizeof where);

        if (r < 0) {
                fprintf(stderr, "nifkit: entitlements of %s: %s\n", where, strerror(-r));
                return EXIT_EXCEPTION;
        }
        if (r == 0) {
                printf("entitlements: none declared (no %s section, no %s)\n", NIFKIT_ENTITLEMENTS_SECTION, where);
                return 0;
        }
        if (nk_entitlements_load_string(text, where, &want, &perr) < 0) {
                fprintf(stderr, "nifkit: invalid entitlements: %s\n", perr.msg);
                return EXIT_EXCEPTION;
        }
        printf("entitlements (%s):\n", where);
        nk_entitlements_describe(want, stdout);
        nk_policy_free(want);
        return 0;
}

static int cmd_inspect(int argc, char **argv)
{
        const struct usage *cmd = &inspect_usage;
        _cleanup_(host_freep) nk_host *h = NULL;
        struct host_options o = { 0 };
        int r;

        r = parse_host_options(cmd, argc, argv, &o);
        if (r != 0)
                return r == 1 ? 0 : r;
        if (argc - optind != 1)
                return usage_error(cmd, "inspect takes exactly one library");
        o.open_only = true;
        r = start_host(argv[optind], &o, &h);
        if (r != 0)
                return r;
        printf("module %s\n", nk_host_module(h));
        for (unsigned i = 0; i < nk_host_function_count(h); i++) {
                const nk_function *f = nk_host_function(h, i);
                /* ERL_NIF_DIRTY_JOB_CPU_BOUND is 1, ERL_NIF_DIRTY_JOB_IO_BOUND 2. */
                printf("%s/%u%s%s\n", f->name, f->arity, f->flags & 1 ? " dirty_cpu" : "",
                       f->flags & 2 ? " dirty_io" : "");
        }
        r = print_entitlements(argv[optind]);
        if (fflush(stdout) != 0)
                return EXIT_HOST;
        return r;
}

static int cmd_help(int argc, char **argv);

/* One line per command; the order is the order of `nifkit --help`. */
static const struct command commands[] = {
        { "call", "Call a function of a NIF library with Erlang terms and print the result.", cmd_call },
        { "inspect", "Print a NIF library's module name and functions.", cmd_inspect },
        { "policy", "Check, explain or suggest policies: nifkit policy check|explain FILE, suggest LOG.", nk_cmd_policy },
        { "wrap", "Put the proxy NIF in place of a NIF library: nifkit wrap LIB.so -o DIR.", nk_cmd_wrap },
        { "wrap-release", "Wrap every NIF library of an OTP release in place: nifkit wrap-release DIR.",
          nk_cmd_wrap_release },
        { "unwrap-release", "Give an OTP release wrapped by wrap-release its original libraries back.",
          nk_cmd_unwrap_release },
        { "status", "List the NIF hosts running on this machine, with their statistics.", nk_cmd_status },
        { "doctor", "Check what this machine allows a sandboxed host, and how to fix what it lacks.", nk_cmd_doctor },
        { "help", "Show the commands, or one command's help.", cmd_help },
};

static const struct command *find_command(const char *name)
{
        for (size_t i = 0; i < NK_ARRAY_SIZE(commands); i++)
                if (strcmp(commands[i].name, name) == 0)
                        return &commands[i];
        return NULL;
}

static void main_help(FILE *f)
{
        fputs("usage: nifkit COMMAND [ARG]...\n"
              "Run Erlang NIF libraries outside the VM, in a separate host process.\n"
              "\n"
              "Commands:\n",
              f);
        for (size_t i = 0; i < NK_ARRAY_SIZE(commands); i++)
                fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].summary);
        fputs("\nRun 'nifkit help COMMAND' or 'nifkit COMMAND --help' for a command's options.\n", f);
}

/* help COMMAND is COMMAND --help. */
static int cmd_help(int argc, char **argv)
{
        const struct command *c;
        char *args[3];

        if (argc <= 1 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                main_help(stdout);
                return 0;
        }
        if (argc > 2)
                return usage_error(NULL, "help takes at most one command");
        c = find_command(argv[1]);
        if (!c)
                return usage_error(NULL, "unknown command '%s'", argv[1]);
        if (c->run == cmd_help) {
                main_help(stdout);
                return 0;
        }
        args[0] = argv[1];
        args[1] = (char *) "--help";
        args[2] = NULL;
        return c->run(2, args);
}

/* The printer recurses once per level of a result, up to
 * NK_PRINT_MAX_DEPTH levels of a few hundred bytes each. Linux grows the
 * main thread's stack up to the current soft limit (and keeps at least
 * 128 MiB free below it at exec), so raising the limit here is enough to
 * print the deepest accepted term under a small `ulimit -s`. */
static void ensure_stack(void)
{
        const rlim_t want = 64u << 20;
        struct rlimit rl;

        if (getrlimit(RLIMIT_STACK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
                return;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
        (void) setrlimit(RLIMIT_STACK, &rl);
}

/* libnifkit's one sink: events to $NIFKIT_LOG. The tool's stderr carries
 * its own errors (scripts read it) and one warning: a host that runs with
 * no sandbox at all, said at every start. Other notes (limits a
 * best-effort policy leaves unenforced here) reach the operator as their
 * events in the log, not as an extra line on every call. */
static void log_sink(void *arg, const struct nk_log_record *rec)
{
        (void) arg;
        if (rec->note && strcmp(rec->event, "sandbox_disabled") == 0)
                fprintf(stderr, "nifkit: %s\n", rec->note);
        if (cli_log_fd >= 0 && rec->level >= cli_env.log_level)
                nk_operator_log_write(cli_log_fd, rec);
}

static void say(const char *line)
{
        fprintf(stderr, "nifkit: %s\n", line);
}

/* The operator's variables become libnifkit calls here, and only here
 * ($NIFKIT_HOST: parts.c, with --host first). */
static void read_environment(void)
{
        nk_operator_setup(&cli_env, &cli_log_fd, say);
        nk_log_set_sink(log_sink, NULL, nk_operator_sink_level(&cli_env, cli_log_fd));
}

int main(int argc, char **argv)
{
        const struct command *cmd;

        ensure_stack();
        read_environment();
        if (argc < 2) {
                main_help(stderr);
                return EXIT_USAGE;
        }
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                main_help(stdout);
                return 0;
        }
        cmd = find_command(argv[1]);
        if (!cmd)
                return usage_error(NULL, "unknown command '%s'", argv[1]);
        /* The command sees itself as argv[0], as getopt expects. */
        return cmd->run(argc - 1, argv + 1);
}
