/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writing, refreshing and undoing the wrap of one library (wrap.h).
 * Everything that can be refused is checked before the first byte is
 * written; each file is staged under a temporary name in its final
 * directory and renamed into place.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "nifkit_entitlements.h"
#include "nifkit_policy.h"
#include "parts.h"
#include "wrap.h"

/* Libraries bigger than this are not NIFs anyone should wrap by accident. */
#define MAX_IMAGE (1u << 30)

static void policy_freep(struct nk_policy **p)
{
        nk_policy_free(*p);
}

int nk_wrap_read_file(const char *path, uint8_t **ret, size_t *ret_len, mode_t *ret_mode)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        _cleanup_free_ uint8_t *data = NULL;
        struct stat st;
        size_t off = 0;

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        if ((uint64_t) st.st_size > MAX_IMAGE)
                return -EFBIG;
        /* One byte more, a NUL, so that a text read this way is a string. */
        data = malloc((size_t) st.st_size + 1);
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
        data[off] = '\0';
        *ret = TAKE_PTR(data);
        *ret_len = off;
        if (ret_mode)
                *ret_mode = st.st_mode & 07777;
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
                if (strtab.sh_size - name > strlen(NK_WRAP_MARKER_SECTION) &&
                    memcmp(image + strtab.sh_offset + name, NK_WRAP_MARKER_SECTION,
                           sizeof NK_WRAP_MARKER_SECTION) == 0)
                        return 1;
        }
        return 0;
}

int nk_wrap_find_parts(const char *who, const char *proxy_opt, const char *host_opt, struct nk_wrap_parts *ret)
{
        int r;

        *ret = (struct nk_wrap_parts) { 0 };
        nk_cli_find_proxy(proxy_opt, ret->proxy_path, sizeof ret->proxy_path);
        r = nk_wrap_read_file(ret->proxy_path, &ret->proxy, &ret->proxy_len, NULL);
        if (r < 0) {
                fprintf(stderr, "%s: cannot read the proxy NIF '%s': %s (set $NIFKIT_PROXY or --proxy)\n", who,
                        ret->proxy_path, strerror(-r));
                return r;
        }
        if (nk_elf_is_proxy(ret->proxy, ret->proxy_len) <= 0) {
                fprintf(stderr, "%s: '%s' is not nifkit's proxy NIF (no %s section)\n", who, ret->proxy_path,
                        NK_WRAP_MARKER_SECTION);
                nk_wrap_parts_free(ret);
                return -EINVAL;
        }
        nk_cli_find_host(host_opt, ret->host_path, sizeof ret->host_path);
        if (ret->host_path[0] != '/' || access(ret->host_path, X_OK) < 0) {
                r = ret->host_path[0] != '/' ? -EINVAL : -errno;
                fprintf(stderr, "%s: cannot use the host '%s': %s (set $NIFKIT_HOST or --host)\n", who,
                        ret->host_path, r == -EINVAL ? "not an absolute path" : strerror(-r));
                nk_wrap_parts_free(ret);
                return r;
        }
        return 0;
}

void nk_wrap_parts_free(struct nk_wrap_parts *p)
{
        free(p->proxy);
        p->proxy = NULL;
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
static int render_default(const char *who, char **ret)
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
        /* What is written must load back as a policy (test_policy holds the
         * default's values equal to policies/default.json's). */
        r = nk_policy_load_string(text, "<default>", &check, &perr);
        if (r < 0) {
                fprintf(stderr, "%s: the default policy does not render to a valid file: %s\n", who, perr.msg);
                free(text);
                return r;
        }
        *ret = text;
        return 0;
}

int nk_wrap_policy_text(const char *who, const char *policy, char **text, size_t *len)
{
        struct nk_policy_error perr;
        struct nk_policy *p = NULL;
        uint8_t *data = NULL;
        int r;

        if (!policy) {
                r = render_default(who, text);
                if (r < 0) {
                        fprintf(stderr, "%s: the default policy: %s\n", who, strerror(-r));
                        return r;
                }
                *len = strlen(*text);
                return 0;
        }
        r = nk_policy_load(policy, &p, &perr);
        if (r < 0) {
                fprintf(stderr, "%s: invalid policy: %s\n", who, perr.msg[0] ? perr.msg : strerror(-r));
                return r;
        }
        nk_policy_free(p);
        r = nk_wrap_read_file(policy, &data, len, NULL);
        if (r < 0) {
                fprintf(stderr, "%s: '%s': %s\n", who, policy, strerror(-r));
                return r;
        }
        *text = (char *) data;
        return 0;
}

int nk_wrap_entitled_policy(const char *who, const char *lib, const char *sidecar, const char *policy_text,
                            const char *policy_name, bool strict, FILE *out, char **ret_text, size_t *ret_len,
                            bool *ret_declared)
{
        _cleanup_free_ char *doc = NULL, *notes = NULL;
        _cleanup_(policy_freep) struct nk_policy *want = NULL;
        struct nk_policy_error perr;
        char where[PATH_MAX + 64];
        int r;

        *ret_text = NULL;
        *ret_declared = false;
        r = nk_entitlements_find(lib, sidecar, &doc, where, sizeof where);
        if (r < 0) {
                fprintf(stderr, "%s: the entitlements of '%s' (%s): %s\n", who, lib, where,
                        r == -ENOTUNIQ ? "the section holds more than one document" : strerror(-r));
                return r;
        }
        if (r == 0)
                return 0;
        *ret_declared = true;
        r = nk_entitlements_load_string(doc, where, &want, &perr);
        if (r < 0) {
                fprintf(stderr, "%s: invalid entitlements: %s\n", who, perr.msg[0] ? perr.msg : strerror(-r));
                return r;
        }
        r = nk_policy_intersect(policy_text, policy_name, want, ret_text, &notes, &perr);
        if (r < 0) {
                fprintf(stderr, "%s: cannot apply the entitlements of '%s' to %s: %s\n", who, lib, policy_name,
                        perr.msg[0] ? perr.msg : strerror(-r));
                return r;
        }
        *ret_len = strlen(*ret_text);
        fprintf(out, "%s: entitlements (%s):\n", lib, where);
        nk_entitlements_describe(want, out);
        if (!notes[0]) {
                fprintf(out, "%s: the policy grants exactly that\n", lib);
                return 0;
        }
        fprintf(out, "%s: the policy and the entitlements differ; the host gets what both allow:\n", lib);
        for (char *line = strtok(notes, "\n"); line; line = strtok(NULL, "\n"))
                fprintf(out, "  %s\n", line);
        if (strict) {
                fprintf(stderr, "%s: --strict: '%s' asks for what %s does not grant, or the other way round; "
                                "nothing written\n", who, lib, policy_name);
                free(*ret_text);
                *ret_text = NULL;
                return -EPERM;
        }
        return 0;
}

int nk_wrap_names(const char *who, const char *lib, const char *dir, struct nk_wrap_names *ret)
{
        _cleanup_free_ char *copy = strdup(lib), *dcopy = strdup(lib);
        struct nk_wrap_names n = { 0 };
        const char *base;
        size_t len;

        if (!copy || !dcopy)
                return -ENOMEM;
        base = basename(copy);
        len = strlen(base);
        if (len <= 3 || strcmp(base + len - 3, ".so") != 0) {
                fprintf(stderr, "%s: '%s' does not end in .so, as erlang:load_nif/2 expects\n", who, lib);
                return -EINVAL;
        }
        n.name = strndup(base, len - 3);
        n.dir = strdup(dir ? dir : dirname(dcopy));
        if (!n.name || !n.dir || asprintf(&n.proxy, "%s/%s.so", n.dir, n.name) < 0 ||
            asprintf(&n.real, "%s/%s.real.so", n.dir, n.name) < 0 ||
            asprintf(&n.policy, "%s/%s.policy.json", n.dir, n.name) < 0 ||
            asprintf(&n.host, "%s/%s.host", n.dir, n.name) < 0) {
                nk_wrap_names_free(&n);
                return -ENOMEM;
        }
        *ret = n;
        return 0;
}

void nk_wrap_names_free(struct nk_wrap_names *n)
{
        free(n->proxy);
        free(n->real);
        free(n->policy);
        free(n->host);
        free(n->dir);
        free(n->name);
        *n = (struct nk_wrap_names) { 0 };
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
        const char *dest;
};

/* Renames every staged file into place, in order; on the first failure
 * the rest are removed, and *renamed says how many went into place. */
static int commit_staged(struct staged *s, size_t n, size_t *renamed)
{
        int r = 0;

        *renamed = 0;
        for (size_t i = 0; i < n; i++) {
                if (r == 0 && s[i].tmp && rename(s[i].tmp, s[i].dest) < 0)
                        r = -errno;
                else if (r == 0)
                        *renamed = i + 1;
                if (r < 0 && s[i].tmp)
                        unlink(s[i].tmp);
                free(s[i].tmp);
                s[i].tmp = NULL;
        }
        return r;
}

static void staged_abort(struct staged *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (s[i].tmp)
                        unlink(s[i].tmp);
                free(s[i].tmp);
                s[i].tmp = NULL;
        }
}

static int check_library(const char *who, const char *lib, const uint8_t *image, size_t len)
{
        int r = nk_elf_is_proxy(image, len);
        if (r == -ENOEXEC) {
                fprintf(stderr, "%s: '%s' is not an ELF shared object\n", who, lib);
                return r;
        }
        if (r > 0) {
                fprintf(stderr,
                        "%s: '%s' is already a nifkit proxy (it carries the %s section); "
                        "wrap the original library instead (its NAME.real.so)\n",
                        who, lib, NK_WRAP_MARKER_SECTION);
                return -EEXIST;
        }
        return 0;
}

int nk_wrap_check_library(const char *who, const char *lib)
{
        _cleanup_free_ uint8_t *image = NULL;
        size_t len;
        int r = nk_wrap_read_file(lib, &image, &len, NULL);

        if (r < 0) {
                fprintf(stderr, "%s: cannot read '%s': %s\n", who, lib, strerror(-r));
                return r;
        }
        return check_library(who, lib, image, len);
}

int nk_wrap_install(const char *who, const char *lib, const struct nk_wrap_names *n, const char *policy_text,
                    size_t policy_len, const struct nk_wrap_parts *parts)
{
        _cleanup_free_ uint8_t *real = NULL;
        struct staged st[4] = { { .dest = n->real }, { .dest = n->policy }, { .dest = n->host }, { .dest = n->proxy } };
        bool in_place = strcmp(lib, n->proxy) == 0;
        size_t real_len, renamed = 0;
        struct stat st_lib;
        mode_t mode;
        int r;

        /* In place, the original becomes NAME.real.so by a second name for
         * its inode: of a link that would be the link, and a NAME.real.so
         * already there is some earlier wrap's, which this must not take. */
        if (in_place && lstat(lib, &st_lib) == 0 && S_ISLNK(st_lib.st_mode)) {
                fprintf(stderr, "%s: '%s' is a symbolic link: wrap the file it names\n", who, lib);
                return -ELOOP;
        }
        if (in_place && lstat(n->real, &st_lib) == 0) {
                fprintf(stderr, "%s: '%s' already exists beside '%s' (a wrap left half-done, or a file of the "
                                "same name): move it away first\n", who, n->real, lib);
                return -EEXIST;
        }
        r = nk_wrap_read_file(lib, &real, &real_len, &mode);
        if (r < 0) {
                fprintf(stderr, "%s: cannot read '%s': %s\n", who, lib, strerror(-r));
                return r;
        }
        r = check_library(who, lib, real, real_len);
        if (r < 0)
                return r;

        /* The real library, the policy and the host first, the proxy that
         * needs them last. */
        r = in_place ? link_temp(n->dir, n->name, lib, false, &st[0].tmp) : -EXDEV;
        if (r < 0)
                r = write_temp(n->dir, n->name, real, real_len, mode | 0444, &st[0].tmp);
        if (r >= 0)
                r = write_temp(n->dir, n->name, policy_text, policy_len, 0644, &st[1].tmp);
        if (r >= 0)
                r = link_temp(n->dir, n->name, parts->host_path, true, &st[2].tmp);
        if (r >= 0)
                r = write_temp(n->dir, n->name, parts->proxy, parts->proxy_len, 0755, &st[3].tmp);
        if (r < 0) {
                staged_abort(st, 4);
        } else {
                r = commit_staged(st, 4, &renamed);
                /* The proxy goes last, so a failure leaves the original in
                 * place; in place, what went in before it is taken back
                 * out (none of it was there: see above). */
                for (size_t i = 0; r < 0 && in_place && i < renamed; i++)
                        unlink(st[i].dest);
        }
        if (r < 0)
                fprintf(stderr, "%s: cannot write into '%s': %s\n", who, n->dir, strerror(-r));
        return r;
}

/* Whether path holds exactly data. */
static bool same_content(const char *path, const void *data, size_t len)
{
        _cleanup_free_ uint8_t *have = NULL;
        size_t have_len;

        return nk_wrap_read_file(path, &have, &have_len, NULL) == 0 && have_len == len &&
               memcmp(have, data, len) == 0;
}

static bool same_link(const char *path, const char *target)
{
        char buf[PATH_MAX];
        ssize_t k = readlink(path, buf, sizeof buf - 1);
        if (k < 0)
                return false;
        buf[k] = '\0';
        return strcmp(buf, target) == 0;
}

int nk_wrap_refresh(const char *who, const struct nk_wrap_names *n, const char *policy_text, size_t policy_len,
                    const char *host_path, const uint8_t *proxy, size_t proxy_len, bool dry_run, unsigned *changed)
{
        struct staged st[3] = { { .dest = n->policy }, { .dest = n->host }, { .dest = n->proxy } };
        int r = 0;

        *changed = 0;
        if (!same_content(n->policy, policy_text, policy_len))
                *changed |= NK_WRAP_CHANGED_POLICY;
        if (!same_link(n->host, host_path))
                *changed |= NK_WRAP_CHANGED_HOST;
        if (!same_content(n->proxy, proxy, proxy_len))
                *changed |= NK_WRAP_CHANGED_PROXY;
        if (dry_run || *changed == 0)
                return 0;
        if (*changed & NK_WRAP_CHANGED_POLICY)
                r = write_temp(n->dir, n->name, policy_text, policy_len, 0644, &st[0].tmp);
        if (r >= 0 && (*changed & NK_WRAP_CHANGED_HOST))
                r = link_temp(n->dir, n->name, host_path, true, &st[1].tmp);
        if (r >= 0 && (*changed & NK_WRAP_CHANGED_PROXY))
                r = write_temp(n->dir, n->name, proxy, proxy_len, 0755, &st[2].tmp);
        size_t renamed;
        if (r < 0)
                staged_abort(st, 3);
        else
                r = commit_staged(st, 3, &renamed);     /* each file whole: old or new, never half */
        if (r < 0)
                fprintf(stderr, "%s: cannot update the wrap in '%s': %s\n", who, n->dir, strerror(-r));
        return r;
}

int nk_wrap_undo(const char *who, const struct nk_wrap_names *n)
{
        struct stat st;

        if (lstat(n->real, &st) < 0 || !S_ISREG(st.st_mode)) {
                fprintf(stderr, "%s: '%s' is a proxy without its real library '%s': cannot restore it\n", who,
                        n->proxy, n->real);
                return -ENOENT;
        }
        if (rename(n->real, n->proxy) < 0) {
                int r = -errno;
                fprintf(stderr, "%s: cannot restore '%s': %s\n", who, n->proxy, strerror(-r));
                return r;
        }
        if ((unlink(n->policy) < 0 && errno != ENOENT) || (unlink(n->host) < 0 && errno != ENOENT)) {
                int r = -errno;
                fprintf(stderr, "%s: '%s' is restored, but its wrap's files remain: %s\n", who, n->proxy,
                        strerror(-r));
                return r;
        }
        return 0;
}
