/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which files the dynamic loader will open to run nifkit-host and a NIF
 * library, so that exactly those are bound into the sandbox's root.
 *
 * The NIF library comes from whoever wrapped it and is parsed here, in the
 * trusted runtime: every offset and size read from the file is checked
 * against the file's size before use, and nothing from it is executed.
 *
 * Resolution follows ld.so without its cache, because the sandbox has no
 * /etc/ld.so.cache: DT_RPATH (only when there is no DT_RUNPATH), then
 * DT_RUNPATH, then the system directories. $ORIGIN is expanded; $LIB and
 * $PLATFORM are not (entries using them are skipped), and LD_LIBRARY_PATH
 * is not used because the host runs with an empty environment.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "sequencer.h"

/* A library tree deeper or wider than this is not something a NIF needs. */
#define MAX_DEPS 512
#define MAX_ELF_SIZE (1ULL << 31)

/* The directories ld.so searches when nothing else names the library, in
 * its order (`ld.so --help` lists them). */
static const char *const system_dirs[] = {
#if defined(__x86_64__)
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
#elif defined(__aarch64__)
        "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
#elif defined(__i386__)
        "/lib/i386-linux-gnu", "/usr/lib/i386-linux-gnu",
#elif defined(__riscv) && __riscv_xlen == 64
        "/lib/riscv64-linux-gnu", "/usr/lib/riscv64-linux-gnu",
#endif
#if __SIZEOF_POINTER__ == 8
        "/lib64", "/usr/lib64",
#endif
        "/lib", "/usr/lib",
};

int nk_pathset_add(struct nk_pathset *s, const char *path)
{
        if (nk_pathset_has(s, path))
                return 0;
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 16;
                char **p = realloc(s->paths, cap * sizeof *p);
                if (!p)
                        return -ENOMEM;
                s->paths = p;
                s->cap = cap;
        }
        char *dup = strdup(path);
        if (!dup)
                return -ENOMEM;
        s->paths[s->n++] = dup;
        return 1;
}

bool nk_pathset_has(const struct nk_pathset *s, const char *path)
{
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->paths[i], path) == 0)
                        return true;
        return false;
}

void nk_pathset_free(struct nk_pathset *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->paths[i]);
        free(s->paths);
        *s = (struct nk_pathset) {};
}

void nk_elf_info_free(struct nk_elf_info *info)
{
        free(info->interp);
        nk_pathset_free(&info->needed);
        nk_pathset_free(&info->search);
        *info = (struct nk_elf_info) {};
}

struct image {
        const uint8_t *p;
        size_t size;
};

static bool in_bounds(const struct image *im, uint64_t off, uint64_t len)
{
        return off <= im->size && len <= im->size - off;
}

/* A NUL-terminated string at off within [off, off + max). */
static const char *string_at(const struct image *im, uint64_t off, uint64_t max)
{
        if (!in_bounds(im, off, 0))
                return NULL;
        if (max > im->size - off)
                max = im->size - off;
        const char *s = (const char *) im->p + off;
        return memchr(s, '\0', max) ? s : NULL;
}

/* File offset of virtual address addr, through the PT_LOAD segments. */
static int vaddr_to_offset(const struct image *im, const ElfW(Phdr) *ph, size_t phnum, uint64_t addr,
                           uint64_t *ret)
{
        for (size_t i = 0; i < phnum; i++) {
                if (ph[i].p_type != PT_LOAD)
                        continue;
                if (addr >= ph[i].p_vaddr && addr - ph[i].p_vaddr < ph[i].p_filesz) {
                        uint64_t off = ph[i].p_offset + (addr - ph[i].p_vaddr);
                        if (!in_bounds(im, off, 0))
                                return -EBADMSG;
                        *ret = off;
                        return 0;
                }
        }
        return -EBADMSG;
}

/* Appends the directories of a DT_RPATH/DT_RUNPATH string to search. */
static int add_search_dirs(struct nk_pathset *search, const char *list, const char *origin)
{
        _cleanup_free_ char *copy = strdup(list);
        if (!copy)
                return -ENOMEM;
        char *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                char buf[PATH_MAX];
                const char *rest = NULL;
                if (strncmp(d, "$ORIGIN", 7) == 0)
                        rest = d + 7;
                else if (strncmp(d, "${ORIGIN}", 9) == 0)
                        rest = d + 9;
                if (rest) {
                        if (*rest != '\0' && *rest != '/')
                                continue;
                        if ((size_t) snprintf(buf, sizeof buf, "%s%s", origin, rest) >= sizeof buf)
                                continue;
                } else {
                        /* Relative entries are relative to the loader's cwd,
                         * which is / in the sandbox; $LIB and $PLATFORM are
                         * not expanded. */
                        if (d[0] != '/' || strchr(d, '$'))
                                continue;
                        if ((size_t) snprintf(buf, sizeof buf, "%s", d) >= sizeof buf)
                                continue;
                }
                int r = nk_pathset_add(search, buf);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_image(const struct image *im, const char *origin, struct nk_elf_info *info, uint16_t *ret_machine,
                       const char **ret_what)
{
        const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *) im->p;

        *ret_what = "not an ELF file";
        if (im->size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
                return -ENOEXEC;
        *ret_what = "an ELF file of another class or byte order";
#if __SIZEOF_POINTER__ == 8
        if (eh->e_ident[EI_CLASS] != ELFCLASS64)
                return -ENOEXEC;
#else
        if (eh->e_ident[EI_CLASS] != ELFCLASS32)
                return -ENOEXEC;
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
                return -ENOEXEC;
#else
        if (eh->e_ident[EI_DATA] != ELFDATA2MSB)
                return -ENOEXEC;
#endif
        *ret_machine = eh->e_machine;
        *ret_what = "a malformed ELF program header table";
        if (eh->e_phentsize != sizeof(ElfW(Phdr)) ||
            !in_bounds(im, eh->e_phoff, (uint64_t) eh->e_phnum * sizeof(ElfW(Phdr))) ||
            eh->e_phoff % _Alignof(ElfW(Phdr)) != 0)
                return -EBADMSG;
        const ElfW(Phdr) *ph = (const ElfW(Phdr) *) (im->p + eh->e_phoff);
        size_t phnum = eh->e_phnum;

        const ElfW(Phdr) *dyn = NULL;
        for (size_t i = 0; i < phnum; i++) {
                if (ph[i].p_type == PT_INTERP) {
                        *ret_what = "a malformed PT_INTERP";
                        const char *s = string_at(im, ph[i].p_offset, ph[i].p_filesz);
                        if (!s || s[0] != '/')
                                return -EBADMSG;
                        free(info->interp);
                        info->interp = strdup(s);
                        if (!info->interp)
                                return -ENOMEM;
                } else if (ph[i].p_type == PT_DYNAMIC) {
                        dyn = &ph[i];
                }
        }
        if (!dyn)
                return 0;       /* static: needs nothing */

        *ret_what = "a malformed dynamic section";
        if (!in_bounds(im, dyn->p_offset, dyn->p_filesz) || dyn->p_offset % _Alignof(ElfW(Dyn)) != 0)
                return -EBADMSG;
        const ElfW(Dyn) *d = (const ElfW(Dyn) *) (im->p + dyn->p_offset);
        size_t nd = dyn->p_filesz / sizeof *d;
        uint64_t strtab = 0, strsz = 0;
        bool have_strtab = false;
        for (size_t i = 0; i < nd && d[i].d_tag != DT_NULL; i++) {
                if (d[i].d_tag == DT_STRTAB) {
                        strtab = d[i].d_un.d_ptr;
                        have_strtab = true;
                } else if (d[i].d_tag == DT_STRSZ) {
                        strsz = d[i].d_un.d_val;
                }
        }
        if (!have_strtab)
                return 0;
        uint64_t stroff;
        if (vaddr_to_offset(im, ph, phnum, strtab, &stroff) < 0 || !in_bounds(im, stroff, strsz))
                return -EBADMSG;

        const char *rpath = NULL, *runpath = NULL;
        for (size_t i = 0; i < nd && d[i].d_tag != DT_NULL; i++) {
                if (d[i].d_tag != DT_NEEDED && d[i].d_tag != DT_RPATH && d[i].d_tag != DT_RUNPATH)
                        continue;
                if (d[i].d_un.d_val >= strsz)
                        return -EBADMSG;
                const char *s = string_at(im, stroff + d[i].d_un.d_val, strsz - d[i].d_un.d_val);
                if (!s)
                        return -EBADMSG;
                if (d[i].d_tag == DT_NEEDED) {
                        if (*s == '\0')
                                return -EBADMSG;
                        int r = nk_pathset_add(&info->needed, s);
                        if (r < 0)
                                return r;
                } else if (d[i].d_tag == DT_RPATH) {
                        rpath = s;
                } else {
                        runpath = s;
                }
        }
        info->has_runpath = runpath != NULL;
        const char *list = runpath ? runpath : rpath;
        return list ? add_search_dirs(&info->search, list, origin) : 0;
}

static int read_elf(const char *file, struct nk_elf_info *ret, uint16_t *ret_machine, struct nk_sandbox_error *err)
{
        *ret = (struct nk_elf_info) {};
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return nk_sandbox_error_set(err, -errno, "cannot open '%s': %s", file, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) < 0)
                return nk_sandbox_error_set(err, -errno, "cannot stat '%s': %s", file, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return nk_sandbox_error_set(err, -ENOEXEC, "'%s' is not a regular file", file);
        if (st.st_size <= 0 || (uint64_t) st.st_size > MAX_ELF_SIZE)
                return nk_sandbox_error_set(err, -ENOEXEC, "'%s' is not an ELF file (size %lld)", file,
                                            (long long) st.st_size);

        void *p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return nk_sandbox_error_set(err, -errno, "cannot map '%s': %s", file, strerror(errno));

        /* $ORIGIN is the directory of the object as ld.so found it, with
         * symbolic links resolved. */
        char origin[PATH_MAX];
        if (!realpath(file, origin))
                snprintf(origin, sizeof origin, "%s", file);
        char *slash = strrchr(origin, '/');
        if (slash && slash != origin)
                *slash = '\0';
        else
                snprintf(origin, sizeof origin, "/");

        const struct image im = { .p = p, .size = (size_t) st.st_size };
        const char *what = "";
        int r = parse_image(&im, origin, ret, ret_machine, &what);
        munmap(p, (size_t) st.st_size);
        if (r < 0) {
                nk_elf_info_free(ret);
                if (r == -ENOMEM)
                        return nk_sandbox_error_set(err, r, "out of memory reading '%s'", file);
                return nk_sandbox_error_set(err, r, "'%s' is %s", file, what);
        }
        return 0;
}

int nk_elf_read(const char *file, struct nk_elf_info *ret, struct nk_sandbox_error *err)
{
        uint16_t machine;
        return read_elf(file, ret, &machine, err);
}

/* Whether path is a loadable object for machine (ld.so skips the others). */
static bool is_compatible(const char *path, uint16_t machine)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0)
                return false;
        ElfW(Ehdr) eh;
        if (pread(fd, &eh, sizeof eh, 0) != (ssize_t) sizeof eh)
                return false;
        struct stat st;
        return memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_machine == machine &&
#if __SIZEOF_POINTER__ == 8
               eh.e_ident[EI_CLASS] == ELFCLASS64 &&
#else
               eh.e_ident[EI_CLASS] == ELFCLASS32 &&
#endif
               fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds soname the way ld.so would for an object with the given search
 * list; *ret is the path ld.so opens. */
static int find_library(const char *soname, const struct nk_pathset *search, uint16_t machine, char *ret,
                        size_t size)
{
        if (strchr(soname, '/')) {
                if (soname[0] != '/' || !is_compatible(soname, machine))
                        return -ENOENT;
                return (size_t) snprintf(ret, size, "%s", soname) < size ? 0 : -ENAMETOOLONG;
        }
        for (size_t i = 0; i < search->n + NK_ARRAY_SIZE(system_dirs); i++) {
                const char *dir = i < search->n ? search->paths[i] : system_dirs[i - search->n];
                if ((size_t) snprintf(ret, size, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, soname) >= size)
                        continue;
                if (is_compatible(ret, machine))
                        return 0;
        }
        return -ENOENT;
}

int nk_elf_resolve(const char *file, struct nk_pathset *deps, struct nk_sandbox_error *err)
{
        /* Work list: the files whose dependencies are still to be read;
         * deps itself remembers what was already seen. */
        struct nk_pathset todo = {};
        size_t next = 0;
        uint16_t machine = 0;
        int r = nk_pathset_add(&todo, file);
        if (r < 0)
                goto oom;

        for (; next < todo.n; next++) {
                const char *cur = todo.paths[next];
                struct nk_elf_info info;
                uint16_t m;
                r = read_elf(cur, &info, &m, err);
                if (r < 0)
                        goto out;
                if (next == 0)
                        machine = m;
                if (info.interp) {
                        r = nk_pathset_add(deps, info.interp);
                        if (r < 0) {
                                nk_elf_info_free(&info);
                                goto oom;
                        }
                }
                for (size_t i = 0; i < info.needed.n; i++) {
                        char path[PATH_MAX];
                        if (find_library(info.needed.paths[i], &info.search, machine, path, sizeof path) < 0) {
                                r = nk_sandbox_error_set(err, -ENOENT,
                                                         "cannot find '%s', needed by '%s', in its run path or the "
                                                         "system library directories",
                                                         info.needed.paths[i], cur);
                                nk_elf_info_free(&info);
                                goto out;
                        }
                        if (nk_pathset_has(deps, path))
                                continue;
                        if (deps->n >= MAX_DEPS) {
                                r = nk_sandbox_error_set(err, -E2BIG, "'%s' needs more than %d libraries",
                                                         file, MAX_DEPS);
                                nk_elf_info_free(&info);
                                goto out;
                        }
                        if (nk_pathset_add(deps, path) < 0 || nk_pathset_add(&todo, path) < 0) {
                                nk_elf_info_free(&info);
                                goto oom;
                        }
                }
                nk_elf_info_free(&info);
        }
        r = 0;
        goto out;
oom:
        r = nk_sandbox_error_set(err, -ENOMEM, "out of memory resolving the libraries of '%s'", file);
out:
        nk_pathset_free(&todo);
        return r;
}

int nk_elf_needed_paths(const char *file, struct nk_pathset *ret, struct nk_sandbox_error *err)
{
        struct nk_elf_info info;
        uint16_t machine;
        int r = read_elf(file, &info, &machine, err);
        if (r < 0)
                return r;
        for (size_t i = 0; r >= 0 && i < info.needed.n; i++) {
                char path[PATH_MAX];
                if (find_library(info.needed.paths[i], &info.search, machine, path, sizeof path) < 0)
                        r = nk_sandbox_error_set(err, -ENOENT, "cannot find '%s', needed by '%s'",
                                                 info.needed.paths[i], file);
                else if (nk_pathset_add(ret, path) < 0)
                        r = nk_sandbox_error_set(err, -ENOMEM, "out of memory");
        }
        nk_elf_info_free(&info);
        return r;
}

/* file and what it needs, into deps; nothing when any of it is missing. */
static int resolve_optional(const char *file, struct nk_pathset *deps)
{
        struct nk_pathset found = {};
        struct nk_sandbox_error ignored;
        if (access(file, R_OK) != 0 || nk_elf_resolve(file, &found, &ignored) < 0) {
                nk_pathset_free(&found);
                return -ENOENT;
        }
        int r = nk_pathset_add(deps, file);
        for (size_t i = 0; r >= 0 && i < found.n; i++)
                r = nk_pathset_add(deps, found.paths[i]);
        nk_pathset_free(&found);
        return r;
}

static bool is_system_dir(const char *dir)
{
        static const char *const system[] = { "/", "/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib",
                                              "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                              "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                                              "/tmp", "/usr", "/usr/local", "/opt" };
        for (size_t i = 0; i < NK_ARRAY_SIZE(system); i++)
                if (strcmp(dir, system[i]) == 0)
                        return true;
        return false;
}

/* Whether name in dir is what nifkit wrap leaves: a real library
 * (NAME.real.so; the host's own is bound as the library) or a proxy (NAME.so
 * with NAME.real.so beside it). Neither is ever a companion, and a
 * directory of a thousand wrapped libraries must not give each host
 * two thousand mounts. */
static bool is_wrapped_artifact(const char *dir, const char *name)
{
        size_t len = strlen(name);
        static const char real[] = ".real.so";
        if (len > sizeof real - 1 && strcmp(name + len - (sizeof real - 1), real) == 0)
                return true;
        char path[PATH_MAX];
        if (len < 4 || strcmp(name + len - 3, ".so") != 0 ||
            (size_t) snprintf(path, sizeof path, "%s/%.*s%s", dir, (int) (len - 3), name, real) >= sizeof path)
                return false;
        return access(path, F_OK) == 0;
}

/* Binds the shared objects in dir, each read-only at its own path, with
 * their dependencies. One by one, not the directory: the directories on
 * the way are the sandbox's own (0755), so a directory only the caller may
 * search (mktemp -d) does not lock the host out. skip_wrapped: not what
 * nifkit wrap left there for other libraries. */
static int bind_plugin_dir(struct nk_pathset *deps, const char *dir, bool skip_wrapped, struct nk_sandbox_error *err)
{
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (len < 4 || !(strcmp(de->d_name + len - 3, ".so") == 0 || strstr(de->d_name, ".so.")))
                        continue;
                char path[PATH_MAX];
                struct stat st;
                if ((size_t) snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path ||
                    stat(path, &st) < 0 || !S_ISREG(st.st_mode) || (skip_wrapped && is_wrapped_artifact(dir, de->d_name)))
                        continue;
                /* A companion that cannot be resolved fails where it is
                 * loaded, with the loader's message; the library itself
                 * was resolved strictly. */
                struct nk_sandbox_error ignored;
                if (nk_elf_resolve(path, deps, &ignored) < 0)
                        continue;
                int r = nk_pathset_add(deps, path);
                if (r < 0) {
                        closedir(d);
                        return nk_sandbox_error_set(err, r, "out of memory");
                }
        }
        closedir(d);
        return 0;
}

/* NIF libraries load companions from their own directory (crypto loads
 * crypto_callback.so with dlopen), which the host's loader opens inside
 * the sandbox: the shared objects beside it are bound too, but for what
 * nifkit wrap left there. A library that sits directly in a system or shared
 * directory gets only itself bound. */
static int prepare_library_dir(const char *library, struct nk_pathset *deps, struct nk_sandbox_error *err)
{
        _cleanup_free_ char *dir = strdup(library);
        if (!dir)
                return nk_sandbox_error_set(err, -ENOMEM, "out of memory");
        char *slash = strrchr(dir, '/');
        if (slash == dir)
                return 0;
        *slash = '\0';
        return is_system_dir(dir) ? 0 : bind_plugin_dir(deps, dir, true, err);
}

/* Libraries that dlopen plugins from a directory beside themselves, at the
 * path they were built with: OpenSSL 3's providers (the legacy provider
 * holds MD4, which OTP's crypto loads) and engines. The directory is
 * looked up beside the library's real path, which is where a distribution
 * build points them. */
static const struct {
        const char *soname;
        const char *dirs[2];
} plugin_dirs[] = {
        { "libcrypto.so.3", { "ossl-modules", "engines-3" } },
        { "libcrypto.so.1.1", { "engines-1.1", NULL } },
};

static int prepare_plugin_dirs(struct nk_pathset *deps, struct nk_sandbox_error *err)
{
        size_t n = deps->n;     /* bind_plugin_dir adds to deps */
        for (size_t i = 0; i < n; i++) {
                const char *base = strrchr(deps->paths[i], '/');
                for (size_t k = 0; base && k < NK_ARRAY_SIZE(plugin_dirs); k++) {
                        if (strcmp(base + 1, plugin_dirs[k].soname) != 0)
                                continue;
                        _cleanup_free_ char *real = realpath(deps->paths[i], NULL);
                        char *slash = real ? strrchr(real, '/') : NULL;
                        if (!slash)
                                continue;
                        *slash = '\0';
                        for (size_t j = 0; j < NK_ARRAY_SIZE(plugin_dirs[k].dirs) && plugin_dirs[k].dirs[j]; j++) {
                                char dir[PATH_MAX];
                                struct stat st;
                                if ((size_t) snprintf(dir, sizeof dir, "%s/%s", real, plugin_dirs[k].dirs[j]) >=
                                            sizeof dir ||
                                    stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                                        continue;
                                int r = bind_plugin_dir(deps, dir, false, err);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        return 0;
}

/* glibc's iconv loads its converters (and reads their list) from the gconv
 * directory beside libc: bound whole, read-only, when libc is there. */
static int prepare_gconv(struct nk_pathset *deps)
{
        for (size_t i = 0, n = deps->n; i < n; i++) {
                const char *base = strrchr(deps->paths[i], '/');
                if (!base || strcmp(base + 1, "libc.so.6") != 0)
                        continue;
                _cleanup_free_ char *real = realpath(deps->paths[i], NULL);
                char *slash = real ? strrchr(real, '/') : NULL;
                if (!slash)
                        return 0;
                *slash = '\0';
                char dir[PATH_MAX];
                struct stat st;
                if ((size_t) snprintf(dir, sizeof dir, "%s/gconv", real) >= sizeof dir || stat(dir, &st) < 0 ||
                    !S_ISDIR(st.st_mode))
                        return 0;
                return nk_pathset_add(deps, dir);
        }
        return 0;
}

int nk_elf_resolve_host(const struct nk_sandbox_config *cfg, struct nk_pathset *deps, struct nk_sandbox_error *err)
{
        int r = nk_elf_resolve(cfg->host_binary, deps, err);
        if (r >= 0)
                r = nk_elf_resolve(cfg->library, deps, err);
        if (r >= 0)
                r = prepare_library_dir(cfg->library, deps, err);
        if (r >= 0)
                r = prepare_plugin_dirs(deps, err);
        if (r >= 0 && prepare_gconv(deps) < 0)
                r = nk_sandbox_error_set(err, -ENOMEM, "out of memory");
        if (r < 0)
                return r;
        /* What the runtime asks the host to load into its global scope
         * comes from the machine's own BEAM; one that does not resolve is
         * left out, and the library that needed it says so. */
        for (size_t i = 0; cfg->scope && cfg->scope[i]; i++)
                if (resolve_optional(cfg->scope[i], deps) == -ENOMEM)
                        return nk_sandbox_error_set(err, -ENOMEM, "out of memory");
        /* glibc dlopens libgcc_s when a thread is cancelled or exits through
         * pthread_exit (enif_thread_exit): bound when the system has it. */
        for (size_t i = 0; i < NK_ARRAY_SIZE(system_dirs); i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/libgcc_s.so.1", system_dirs[i]);
                r = resolve_optional(path, deps);
                if (r == -ENOMEM)
                        return nk_sandbox_error_set(err, -ENOMEM, "out of memory");
                if (r >= 0)
                        break;
        }
        return 0;
}

/* The dynamic symbol table through the section headers (strip keeps them):
 * each entry and name checked against the file. fn returns < 0 to stop. */
static int each_dynsym(const struct image *im, int (*fn)(const ElfW(Sym) *sym, const char *name, void *arg),
                       void *arg)
{
        const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *) im->p;
        if (im->size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
                return -ENOEXEC;
        if (eh->e_shnum == 0)
                return 0;
        if (eh->e_shentsize != sizeof(ElfW(Shdr)) || eh->e_shoff % _Alignof(ElfW(Shdr)) != 0 ||
            !in_bounds(im, eh->e_shoff, (uint64_t) eh->e_shnum * sizeof(ElfW(Shdr))))
                return -EBADMSG;
        const ElfW(Shdr) *sh = (const ElfW(Shdr) *) (im->p + eh->e_shoff);
        for (size_t i = 0; i < eh->e_shnum; i++) {
                if (sh[i].sh_type != SHT_DYNSYM)
                        continue;
                if (sh[i].sh_link >= eh->e_shnum || sh[i].sh_entsize != sizeof(ElfW(Sym)) ||
                    sh[i].sh_offset % _Alignof(ElfW(Sym)) != 0 || !in_bounds(im, sh[i].sh_offset, sh[i].sh_size))
                        return -EBADMSG;
                const ElfW(Shdr) *str = &sh[sh[i].sh_link];
                if (!in_bounds(im, str->sh_offset, str->sh_size))
                        return -EBADMSG;
                const ElfW(Sym) *sym = (const ElfW(Sym) *) (im->p + sh[i].sh_offset);
                size_t n = sh[i].sh_size / sizeof *sym;
                for (size_t k = 1; k < n; k++) {
                        if (sym[k].st_name >= str->sh_size)
                                return -EBADMSG;
                        const char *name = string_at(im, str->sh_offset + sym[k].st_name, str->sh_size - sym[k].st_name);
                        if (!name)
                                return -EBADMSG;
                        if (!*name)
                                continue;
                        int r = fn(&sym[k], name, arg);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int map_file(const char *file, struct image *ret)
{
        /* Non-blocking: a FIFO planted where a library is looked for must
         * not hold the runtime in open(); fstat then refuses it. */
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t) st.st_size > MAX_ELF_SIZE)
                return -ENOEXEC;
        void *p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        *ret = (struct image) { .p = p, .size = (size_t) st.st_size };
        return 0;
}

/* More undefined symbols than a message can list are not looked up: the
 * library is refused either way, and an untrusted file must not make the
 * runtime compare millions of names. */
#define MAX_UNDEFINED 1024

static int add_undefined(const ElfW(Sym) *sym, const char *name, void *arg)
{
        struct nk_pathset *ret = arg;
        /* A weak reference may stay unresolved; ld.so binds none of these. */
        if (sym->st_shndx != SHN_UNDEF || ELF64_ST_BIND(sym->st_info) != STB_GLOBAL || ret->n >= MAX_UNDEFINED)
                return 0;
        return nk_pathset_add(ret, name);
}

struct marking {
        const struct nk_pathset *names;
        bool *found;
};

static int mark_defined(const ElfW(Sym) *sym, const char *name, void *arg)
{
        const struct marking *m = arg;
        unsigned bind = ELF64_ST_BIND(sym->st_info), vis = ELF64_ST_VISIBILITY(sym->st_other);
        if (sym->st_shndx == SHN_UNDEF || (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE) ||
            (vis != STV_DEFAULT && vis != STV_PROTECTED))
                return 0;
        for (size_t i = 0; i < m->names->n; i++)
                if (!m->found[i] && strcmp(m->names->paths[i], name) == 0)
                        m->found[i] = true;
        return 0;
}

int nk_elf_undefined(const char *file, struct nk_pathset *ret)
{
        struct image im;
        int r = map_file(file, &im);
        if (r < 0)
                return r;
        r = each_dynsym(&im, add_undefined, ret);
        munmap((void *) im.p, im.size);
        return r;
}

int nk_elf_mark_defined(const char *file, const struct nk_pathset *names, bool *found)
{
        struct image im;
        int r = map_file(file, &im);
        if (r < 0)
                return r;
        struct marking m = { names, found };
        r = each_dynsym(&im, mark_defined, &m);
        munmap((void *) im.p, im.size);
        return r;
}

int nk_elf_section(const char *file, const char *name, void **ret, size_t *ret_len)
{
        struct image im;
        int r = map_file(file, &im);
        if (r < 0)
                return r;
        *ret = NULL;
        *ret_len = 0;
        const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *) im.p;
        r = 0;
        /* Another class or byte order is not this machine's ELF: read as
         * not ELF at all, so that a sidecar file can stand in. */
        if (im.size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
            eh->e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
            eh->e_ident[EI_DATA] != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB)) {
                r = -ENOEXEC;
        } else if (eh->e_shnum != 0) {
                if (eh->e_shentsize != sizeof(ElfW(Shdr)) || eh->e_shoff % _Alignof(ElfW(Shdr)) != 0 ||
                    !in_bounds(&im, eh->e_shoff, (uint64_t) eh->e_shnum * sizeof(ElfW(Shdr))) ||
                    eh->e_shstrndx >= eh->e_shnum) {
                        r = -EBADMSG;
                } else {
                        const ElfW(Shdr) *sh = (const ElfW(Shdr) *) (im.p + eh->e_shoff);
                        const ElfW(Shdr) *names = &sh[eh->e_shstrndx];
                        if (!in_bounds(&im, names->sh_offset, names->sh_size))
                                r = -EBADMSG;
                        for (size_t i = 0; r == 0 && i < eh->e_shnum; i++) {
                                if (sh[i].sh_name >= names->sh_size)
                                        continue;
                                const char *n = string_at(&im, names->sh_offset + sh[i].sh_name,
                                                          names->sh_size - sh[i].sh_name);
                                if (!n || strcmp(n, name) != 0)
                                        continue;
                                if (sh[i].sh_type == SHT_NOBITS || !in_bounds(&im, sh[i].sh_offset, sh[i].sh_size)) {
                                        r = -EBADMSG;
                                        break;
                                }
                                if (sh[i].sh_size > NK_ELF_SECTION_MAX) {
                                        r = -EFBIG;
                                        break;
                                }
                                void *copy = malloc(sh[i].sh_size + 1);
                                if (!copy) {
                                        r = -ENOMEM;
                                        break;
                                }
                                memcpy(copy, im.p + sh[i].sh_offset, sh[i].sh_size);
                                ((char *) copy)[sh[i].sh_size] = '\0';
                                *ret = copy;
                                *ret_len = sh[i].sh_size;
                                r = 1;
                        }
                }
        }
        munmap((void *) im.p, im.size);
        return r;
}
