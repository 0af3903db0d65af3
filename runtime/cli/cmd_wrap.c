/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit wrap LIB.so [--policy P.json] (-o DIR | --in-place)
 *
 * Writes, for LIB = …/NAME.so:
 *   DIR/NAME.so           a physical copy of the proxy NIF (glibc gives every
 *                         dlopen of one inode the same handle, so two
 *                         libraries wrapped by one proxy file would share its
 *                         state)
 *   DIR/NAME.real.so      the real library, where the proxy's nif_init looks
 *   DIR/NAME.policy.json  the policy the host runs under
 *   DIR/NAME.host         a symbolic link to the nifkit-host binary that runs
 *                         it (the one this tool found, or --host)
 *
 * Everything that can be refused is checked before the first byte is
 * written: the policy (with its file:line:column message), the library (it
 * must be readable, ELF, and not a proxy already) and the proxy. Each file
 * is then written under a temporary name and renamed into place, the proxy
 * last, so an interrupted wrap never leaves a proxy without its library.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd_wrap.h"
#include "macro.h"
#include "nifkit_policy.h"
#include "parts.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 64
#define MARKER_SECTION ".nifkit_proxy_marker"
/* Libraries bigger than this are not NIFs anyone should wrap by accident. */
#define MAX_IMAGE (1u << 30)

struct wrap_options {
        const char *policy;
        const char *out_dir;
        const char *proxy;
        const char *host;
        bool in_place;
};

struct file_image {
        uint8_t *data;
        size_t len;
        mode_t mode;
};

static void image_free(struct file_image *f)
{
        free(f->data);
        f->data = NULL;
}

static void policy_freep(struct nk_policy **p)
{
        nk_policy_free(*p);
}

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

static int read_image(const char *path, struct file_image *ret)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ uint8_t *data = NULL;
        struct stat st;
        size_t off = 0;

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        if ((uint64_t) st.st_size > MAX_IMAGE)
                return -EFBIG;
        data = malloc(st.st_size ? (size_t) st.st_size : 1);
        if (!data)
                return -ENOMEM;
        while (off < (size_t) st.st_size) {
                ssize_t n = read(fd, data + off, (size_t) st.st_size - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;    /* it shrank under us */
                off += (size_t) n;
        }
        *ret = (struct file_image) { .data = TAKE_PTR(data), .len = off, .mode = st.st_mode & 07777 };
        return 0;
}

int nk_elf_is_proxy(const uint8_t *image, size_t len)
{
        Elf64_Ehdr eh;
        Elf64_Shdr sh, strtab;

        if (len < EI_NIDENT || memcmp(image, ELFMAG, SELFMAG) != 0)
                return -ENOEXEC;
        /* The proxy is built for this machine: a 32-bit object is not one. */
        if (image[EI_CLASS] != ELFCLASS64 || len < sizeof eh)
                return 0;
        /* Copies, not casts: nothing says the headers are aligned in the file. */
        memcpy(&eh, image, sizeof eh);
        if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shoff > len ||
            (uint64_t) eh.e_shnum * sizeof(Elf64_Shdr) > len - eh.e_shoff || eh.e_shstrndx >= eh.e_shnum)
                return 0;
        memcpy(&strtab, image + eh.e_shoff + (size_t) eh.e_shstrndx * sizeof(Elf64_Shdr), sizeof strtab);
        if (strtab.sh_offset > len || strtab.sh_size > len - strtab.sh_offset)
                return 0;
        for (unsigned i = 0; i < eh.e_shnum; i++) {
                memcpy(&sh, image + eh.e_shoff + (size_t) i * sizeof(Elf64_Shdr), sizeof sh);
                size_t name = sh.sh_name;
                if (name >= strtab.sh_size)
                        continue;
                if (strtab.sh_size - name > strlen(MARKER_SECTION) &&
                    memcmp(image + strtab.sh_offset + name, MARKER_SECTION, sizeof MARKER_SECTION) == 0)
                        return 1;
        }
        return 0;
}

static int put_u64(FILE *f, const char *key, uint64_t v, bool last)
{
        return fprintf(f, "    \"%s\": %llu%s\n", key, (unsigned long long) v, last ? "" : ",");
}

/*
 * The built-in default as a policy file, so that the wrapped directory says
 * what its host runs under. The default grants nothing (no files, no
 * network): a default that did would be a bug this refuses to write down.
 */
static int render_default(char **ret)
{
        _cleanup_(policy_freep) struct nk_policy *p = NULL;
        _cleanup_(policy_freep) struct nk_policy *check = NULL;
        struct nk_policy_error perr;
        char *text = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        r = nk_policy_default(&p);
        if (r < 0)
                return r;
        if (p->nfiles || p->nconnect || p->nlisten || p->nresolve)
                return -ENOTRECOVERABLE;
        f = open_memstream(&text, &size);
        if (!f)
                return -errno;
        fprintf(f, "{\n  \"nifkit_policy\": %d,\n  \"launcher\": \"%s\",\n  \"cgroup\": \"%s\",\n  \"mode\": \"%s\",\n",
                p->version, nk_policy_launcher_name(p->launcher),
                p->cgroup == NK_POLICY_CGROUP_REQUIRED ? "required" : "best-effort",
                p->mode == NK_POLICY_MODE_AUDIT ? "audit" : "enforce");
        fputs("  \"limits\": {\n", f);
        put_u64(f, "memory_mb", p->limits.memory_mb, false);
        put_u64(f, "pids", p->limits.pids, false);
        put_u64(f, "cpu_percent", p->limits.cpu_percent, false);
        put_u64(f, "call_timeout_ms", p->limits.call_timeout_ms, false);
        put_u64(f, "max_args_bytes", p->limits.max_args_bytes, false);
        put_u64(f, "max_result_bytes", p->limits.max_result_bytes, false);
        put_u64(f, "max_new_atoms", p->limits.max_new_atoms, false);
        put_u64(f, "tmp_mb", p->limits.tmp_mb, false);
        put_u64(f, "open_files", p->limits.open_files, true);
        fprintf(f, "  },\n  \"restart\": {\"max_restarts\": %u, \"period_s\": %u},\n", p->restart.max_restarts,
                p->restart.period_s);
        fprintf(f, "  \"files\": [],\n  \"network\": {\"connect\": [], \"listen\": [], \"resolve\": []},\n"
                   "  \"workers\": %u\n}\n", p->workers);
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        /* What is written must load back as the same default. */
        r = nk_policy_load_string(text, "<default>", &check, &perr);
        if (r < 0) {
                fprintf(stderr, "nifkit wrap: the default policy does not render to a valid file: %s\n", perr.msg);
                free(text);
                return r;
        }
        *ret = text;
        return 0;
}

/* DIR/.NAME.XXXXXX holding data with mode; its path in ret (malloc'd). */
static int write_temp(const char *dir, const char *name, const void *data, size_t len, mode_t mode, char **ret)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        size_t off = 0;
        int r = 0;

        if (asprintf(&path, "%s/.%s.XXXXXX", dir, name) < 0)
                return -ENOMEM;
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        while (r == 0 && off < len) {
                ssize_t n = write(fd, (const uint8_t *) data + off, len - off);
                if (n < 0 && errno != EINTR)
                        r = -errno;
                else if (n > 0)
                        off += (size_t) n;
        }
        if (r == 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r < 0) {
                unlink(path);
                return r;
        }
        *ret = TAKE_PTR(path);
        return 0;
}

/* The original file as NAME.real.so without copying: a second name for
 * the same inode, so a VM that has it mapped is not disturbed. */
/* A temporary name in dir for src: a hard link to it, or (symbolic) a
 * symbolic link whose target is src. */
static int link_temp(const char *dir, const char *name, const char *src, bool symbolic, char **ret)
{
        _cleanup_free_ char *path = NULL;

        for (int attempt = 0; attempt < 16; attempt++) {
                free(path);
                if (asprintf(&path, "%s/.%s.%d.%d", dir, name, (int) getpid(), attempt) < 0)
                        return -ENOMEM;
                if ((symbolic ? symlink(src, path) : link(src, path)) == 0) {
                        *ret = TAKE_PTR(path);
                        return 0;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

struct staged {
        char *tmp;
        char *dest;
};

static void staged_abort(struct staged *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (s[i].tmp)
                        unlink(s[i].tmp);
                free(s[i].tmp);
                free(s[i].dest);
        }
}

static int check_library(const char *lib, const struct file_image *img)
{
        int r = nk_elf_is_proxy(img->data, img->len);
        if (r == -ENOEXEC) {
                fprintf(stderr, "nifkit wrap: '%s' is not an ELF shared object\n", lib);
                return r;
        }
        if (r > 0) {
                fprintf(stderr,
                        "nifkit wrap: '%s' is already a nifkit proxy (it carries the %s section); "
                        "wrap the original library instead (its NAME.real.so)\n",
                        lib, MARKER_SECTION);
                return -EEXIST;
        }
        return 0;
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
        _cleanup_(image_free) struct file_image real = { 0 }, proxy = { 0 };
        _cleanup_free_ char *policy_text = NULL, *libcopy = strdup(lib), *name = NULL, *dir = NULL;
        struct staged st[4] = { 0 };
        char proxy_path[PATH_MAX], host_path[PATH_MAX];
        const char *base;
        size_t n, policy_len;
        int r;

        if (!libcopy)
                return -ENOMEM;
        base = basename(libcopy);
        n = strlen(base);
        if (n <= 3 || strcmp(base + n - 3, ".so") != 0) {
                fprintf(stderr, "nifkit wrap: '%s' does not end in .so, as erlang:load_nif/2 expects\n", lib);
                return -EINVAL;
        }
        name = strndup(base, n - 3);
        if (!name)
                return -ENOMEM;

        /* 1. the policy */
        if (o->policy) {
                struct nk_policy *p = NULL;
                struct nk_policy_error perr;
                struct file_image img = { 0 };
                r = nk_policy_load(o->policy, &p, &perr);
                if (r < 0) {
                        fprintf(stderr, "nifkit wrap: invalid policy: %s\n", perr.msg[0] ? perr.msg : strerror(-r));
                        return r;
                }
                nk_policy_free(p);
                r = read_image(o->policy, &img);
                if (r < 0) {
                        fprintf(stderr, "nifkit wrap: '%s': %s\n", o->policy, strerror(-r));
                        return r;
                }
                policy_text = (char *) img.data;
                policy_len = img.len;
        } else {
                r = render_default(&policy_text);
                if (r < 0) {
                        fprintf(stderr, "nifkit wrap: the default policy: %s\n", strerror(-r));
                        return r;
                }
                policy_len = strlen(policy_text);
        }

        /* 2. the library and the proxy */
        r = read_image(lib, &real);
        if (r < 0) {
                fprintf(stderr, "nifkit wrap: cannot read '%s': %s\n", lib, strerror(-r));
                return r;
        }
        r = check_library(lib, &real);
        if (r < 0)
                return r;
        nk_cli_find_proxy(o->proxy, proxy_path, sizeof proxy_path);
        r = read_image(proxy_path, &proxy);
        if (r < 0) {
                fprintf(stderr, "nifkit wrap: cannot read the proxy NIF '%s': %s (set $NIFKIT_PROXY or --proxy)\n",
                        proxy_path, strerror(-r));
                return r;
        }
        if (nk_elf_is_proxy(proxy.data, proxy.len) <= 0) {
                fprintf(stderr, "nifkit wrap: '%s' is not nifkit's proxy NIF (no %s section)\n", proxy_path,
                        MARKER_SECTION);
                return -EINVAL;
        }
        nk_cli_find_host(o->host, host_path, sizeof host_path);
        if (host_path[0] != '/' || access(host_path, X_OK) < 0) {
                r = host_path[0] != '/' ? -EINVAL : -errno;
                fprintf(stderr, "nifkit wrap: cannot use the host '%s': %s (set $NIFKIT_HOST or --host)\n",
                        host_path, host_path[0] != '/' ? "not an absolute path" : strerror(-r));
                return r;
        }

        /* 3. where */
        if (o->in_place) {
                _cleanup_free_ char *c = strdup(lib);
                dir = c ? strdup(dirname(c)) : NULL;
        } else {
                if (mkdir(o->out_dir, 0755) < 0 && errno != EEXIST) {
                        r = -errno;
                        fprintf(stderr, "nifkit wrap: cannot create '%s': %s\n", o->out_dir, strerror(-r));
                        return r;
                }
                dir = strdup(o->out_dir);
        }
        if (!dir)
                return -ENOMEM;
        if (asprintf(&st[0].dest, "%s/%s.real.so", dir, name) < 0 ||
            asprintf(&st[1].dest, "%s/%s.policy.json", dir, name) < 0 ||
            asprintf(&st[2].dest, "%s/%s.host", dir, name) < 0 ||
            asprintf(&st[3].dest, "%s/%s.so", dir, name) < 0) {
                staged_abort(st, 4);
                return -ENOMEM;
        }

        /* 4. stage all four, then rename: the real library, the policy and
         * the host first, the proxy that needs them last. */
        r = o->in_place ? link_temp(dir, name, lib, false, &st[0].tmp) : -EXDEV;
        if (r < 0)
                r = write_temp(dir, name, real.data, real.len, real.mode | 0444, &st[0].tmp);
        if (r >= 0)
                r = write_temp(dir, name, policy_text, policy_len, 0644, &st[1].tmp);
        if (r >= 0)
                r = link_temp(dir, name, host_path, true, &st[2].tmp);
        if (r >= 0)
                r = write_temp(dir, name, proxy.data, proxy.len, 0755, &st[3].tmp);
        for (size_t i = 0; r >= 0 && i < 4; i++) {
                if (rename(st[i].tmp, st[i].dest) < 0) {
                        r = -errno;
                        break;
                }
                free(st[i].tmp);
                st[i].tmp = NULL;
        }
        if (r < 0) {
                if (st[0].tmp || st[1].tmp || st[2].tmp || st[3].tmp)
                        fprintf(stderr, "nifkit wrap: cannot write into '%s': %s\n", dir, strerror(-r));
                staged_abort(st, 4);
                return r;
        }
        printf("%s: proxy NIF, wrapping %s\n%s: the real library\n%s: the policy%s\n%s: the host, %s\n",
               st[3].dest, lib, st[0].dest, st[1].dest, o->policy ? "" : " (the built-in default)", st[2].dest,
               host_path);
        staged_abort(st, 4);
        return 0;
}

int nk_cmd_wrap(int argc, char **argv)
{
        struct wrap_options o = { 0 };
        int r = parse(argc, argv, &o);

        if (r != 0)
                return r == 1 ? 0 : r;
        return wrap(argv[optind], &o) < 0 ? EXIT_FAILED : 0;
}
